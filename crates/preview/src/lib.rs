//! The protocol-free core of the preview proxy (Elvis proxy protocol): the
//! `preview-args` grammar, ETags and `If-None-Match`, and the image
//! pipeline. Built natively for fast tests and for `wasm32-wasip2`.

pub mod args;
pub mod cache;
pub mod etag;
pub mod pipeline;
pub mod proxy;
pub mod tickets;

pub use args::{Format, PreviewArgs, Rendition};
