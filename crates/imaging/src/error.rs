//! What a refused or failed image step answers: each kind carries its
//! HTTP status, the message names the limit or the reason.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImagingError {
    /// Over a source limit (413).
    TooLarge(String),
    /// Not an image we can read, or an output we will not make (422).
    Unprocessable(String),
    /// The arguments do not fit the image, e.g. a crop outside it (400).
    BadArgs(String),
    /// The source could not be read from where it is stored (500).
    Unavailable(String),
}

impl ImagingError {
    pub fn status(&self) -> u16 {
        match self {
            ImagingError::TooLarge(_) => 413,
            ImagingError::Unprocessable(_) => 422,
            ImagingError::BadArgs(_) => 400,
            ImagingError::Unavailable(_) => 500,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ImagingError::TooLarge(m)
            | ImagingError::Unprocessable(m)
            | ImagingError::BadArgs(m)
            | ImagingError::Unavailable(m) => m,
        }
    }
}

pub type Result<T> = std::result::Result<T, ImagingError>;

pub(crate) fn unreadable(e: impl std::fmt::Display) -> ImagingError {
    ImagingError::Unprocessable(format!("the image cannot be read: {e}"))
}

/// A decoder's error: its own memory limit is a source too large (413,
/// as docs/configuration.md documents), not an unreadable image.
pub(crate) fn decoder_failed(e: image::ImageError) -> ImagingError {
    match e {
        image::ImageError::Limits(_) => ImagingError::TooLarge(
            "decoding this source needs more memory than a render may use \
             (preview_max_decode_bytes, and the decoder's own ceiling)"
                .into(),
        ),
        other => unreadable(other),
    }
}
