//! Imaging: the image steps the preview proxy (`assetgate-preview`) and
//! Asset Compute (`assetgate-compute`) both run, as an ordered pipeline a
//! protocol crate composes — probe the header and check the limits before
//! any pixel is decoded ([`probe`]), decode the region the output needs at
//! the smallest JPEG DCT scale that covers it, orient and crop
//! ([`decode`]), resize ([`resize`]), encode with density ([`encode`]).
//! It knows no protocol: arguments arrive as sizes, regions and formats.

pub mod decode;
pub mod density;
pub mod encode;
pub mod error;
pub mod geometry;
mod jpeg_bands;
pub mod limits;
mod png_rows;
pub mod probe;
pub mod resize;
pub mod shrink;
pub mod source;

pub use decode::{Pixels, decode_region};
pub use density::Density;
pub use encode::{Format, Options, encode};
pub use error::ImagingError;
pub use limits::Limits;
pub use probe::{Probe, SourceFormat, probe, probe_source};
pub use resize::resize;
pub use source::Source;
