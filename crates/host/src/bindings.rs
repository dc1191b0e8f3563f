//! Host-side bindings of the Spin interfaces in `wit/` (world
//! `assetgate:platform/host`).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "assetgate:platform/host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": crate::host_kv::SpinStore,
        "fermyon:spin/redis.connection": crate::host_redis::RedisConnection,
        "wasi:keyvalue/store.bucket": crate::host_kv::Bucket,
        "wasi:keyvalue/atomics.cas": crate::host_kv::Cas,
    },
});
