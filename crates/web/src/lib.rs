//! Protocol-free HTTP helpers shared by assetgate's components. Everything
//! here is plain Rust, unit-tested natively, and builds for wasm32-wasip2.

pub mod decode;
pub mod filename;
pub mod mime;
pub mod multipart;
pub mod query;
pub mod range;
pub mod secret;
pub mod time;
