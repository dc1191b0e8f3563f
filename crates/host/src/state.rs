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
    pub limits: wasmtime::StoreLimits,
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
