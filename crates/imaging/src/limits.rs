//! Source and output limits, checked from the header before decoding.

/// Source and output limits; defaults in comments (docs/configuration.md).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest source, in pixels (50 MP).
    pub max_source_pixels: u64,
    /// Largest source file, in bytes (256 MiB).
    pub max_source_bytes: u64,
    /// Largest output side, in pixels (4096).
    pub max_output_side: u32,
    /// Memory a render may plan to use, in bytes (96 MiB): the source file
    /// plus the decoded pixels at the scale the output needs. A request
    /// over it is refused before decoding instead of running out of
    /// memory (edge platforms cap a request at 128 MiB).
    pub max_decode_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_pixels: 50_000_000,
            max_source_bytes: 256 << 20,
            max_output_side: 4096,
            max_decode_bytes: 96 << 20,
        }
    }
}
