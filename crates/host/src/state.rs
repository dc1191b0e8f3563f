//! Per-request state: one wasmtime `Store` per request, as Spin does, so no
//! guest state survives between requests.

use crate::kv::KvStores;
use crate::outbound::OutboundPolicy;
use crate::server::OutboundHooks;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What the host knows about a component, fixed at start-up.
pub struct ComponentConfig {
    pub id: String,
    /// Key-value store labels the component may open.
    pub stores: BTreeSet<String>,
    /// Resolved `[component.x.variables]`.
    pub variables: BTreeMap<String, String>,
    pub environment: BTreeMap<String, String>,
    pub outbound: OutboundPolicy,
}

pub struct RequestState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub hooks: OutboundHooks,
    pub component: Arc<ComponentConfig>,
    /// Every key-value store label of the app.
    pub kv: KvStores,
    pub limits: MemoryLimits,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The instance's memory cap (`--max-instance-memory-mib`, the profile's;
/// wasmtime applies it to each linear memory) and its peak: the sum of the
/// instance's linear memories at their largest, which the host logs when
/// the instance ends (tests and benchmarks read it). A component has one
/// main memory beside the WASI adapter's small one.
pub struct MemoryLimits {
    inner: wasmtime::StoreLimits,
    total: usize,
    pub peak: usize,
}

impl MemoryLimits {
    pub fn new(max_instance_memory: usize) -> MemoryLimits {
        MemoryLimits {
            inner: wasmtime::StoreLimitsBuilder::new()
                .memory_size(max_instance_memory)
                .build(),
            total: 0,
            peak: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        if ok {
            self.total = self.total + desired - current.min(desired);
            self.peak = self.peak.max(self.total);
        }
        Ok(ok)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
