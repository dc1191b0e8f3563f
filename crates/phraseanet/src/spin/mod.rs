//! The Spin side (wasm32 only): the `upload` and `ingest` components'
//! HTTP routing, streaming and outbound calls over the plain modules.

pub mod ingest;
pub mod upload;
