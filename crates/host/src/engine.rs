//! The wasmtime configuration every component runs under. Instances come
//! from the pooling allocator when the machine has the address space for it,
//! as in `spin up` (spin-core's defaults, `crates/core/src/lib.rs`): one
//! instance per request, and with the on-demand allocator the page faults
//! of each instance's fresh memory alone were a fifth of the host's CPU
//! time in a chunked download. Spin's `SPIN_WASMTIME_POOLING=0|1` forces
//! the choice; `SPIN_MAX_INSTANCE_COUNT` sizes the pool (1000 live
//! instances).

use anyhow::{Result, bail};
use std::path::Path;
use std::sync::OnceLock;
use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

const MB: usize = 1 << 20;

pub fn config(compile_cache: Option<&Path>) -> Result<wasmtime::Config> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    // A guest in a long computation yields to the executor every tick, so
    // one busy component cannot starve the other requests.
    config.epoch_interruption(true);
    // `perf record` then names the guests' functions (docs/benchmarks.md
    // profiles the components this way).
    if std::env::var_os("ASSETGATE_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if let Some(dir) = compile_cache {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(wasmtime::Cache::new(cache)?));
    }
    if use_pooling()? {
        let instances = env_number("SPIN_MAX_INSTANCE_COUNT", 1_000)?.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_memories(instances)
            .total_tables(2 * instances)
            .total_stacks(instances)
            .total_core_instances(4 * instances)
            .table_elements(100_000)
            .max_component_instance_size(10 * MB)
            .max_core_instance_size(10 * MB)
            .max_core_instances_per_component(200)
            .max_tables_per_component(64)
            .max_memories_per_component(32)
            .max_tables_per_module(2)
            .max_memories_per_module(2)
            // The per-instance cap is the store's limiter (--max-instance-memory-mib).
            .max_memory_size(1 << 32)
            // A freed slot keeps its first pages mapped: the next request's
            // stack and small heap start without page faults.
            .linear_memory_keep_resident(env_number(
                "SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT",
                2 * MB as u32,
            )? as usize)
            .table_keep_resident(MB / 2);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(config)
}

fn env_number(name: &str, default: u32) -> Result<u32> {
    match std::env::var(name) {
        Ok(v) => match v.trim().parse() {
            Ok(n) => Ok(n),
            _ => bail!("{name}={v}: expected a whole number"),
        },
        Err(_) => Ok(default),
    }
}

/// Whether the pool fits: it reserves about 4 GiB of address space per
/// instance, more than some 39-bit systems have. Probed once, as spin-core
/// does, by reserving 2^42 bytes.
fn use_pooling() -> Result<bool> {
    match std::env::var("SPIN_WASMTIME_POOLING").as_deref() {
        Ok("1") => return Ok(true),
        Ok("0") => return Ok(false),
        Ok(other) => bail!("SPIN_WASMTIME_POOLING={other}: expected 0 or 1"),
        Err(_) => {}
    }
    static PROBE: OnceLock<bool> = OnceLock::new();
    Ok(*PROBE.get_or_init(|| {
        const BITS: u32 = 42;
        let mut config = wasmtime::Config::new();
        config.wasm_memory64(true);
        config.memory_reservation(1 << BITS);
        let Ok(engine) = wasmtime::Engine::new(&config) else {
            return false;
        };
        let mut store = wasmtime::Store::new(&engine, ());
        let ty = wasmtime::MemoryType::new64(0, Some(1 << (BITS - 16)));
        wasmtime::Memory::new(&mut store, ty).is_ok()
    }))
}
