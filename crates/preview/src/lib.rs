//! The preview proxy (Elvis proxy protocol): the `preview-args` grammar,
//! the proxy's decisions (tickets, object resolution, access, ETags and
//! `If-None-Match`) and the render through `assetgate-imaging`. Other
//! protocols' object ids and read rules arrive through the catalog's
//! `Provenance`. Built natively for fast tests and for `wasm32-wasip2`.

pub mod args;
pub mod cache;
pub mod etag;
pub mod pipeline;
pub mod proxy;
pub mod source;
#[cfg(target_arch = "wasm32")]
pub mod spin;

pub use args::{Format, PreviewArgs, Rendition};
