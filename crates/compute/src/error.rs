//! Two kinds of failure: an [`ApiError`] refuses a request synchronously
//! with its HTTP status; a [`Failure`] ends one rendition and becomes a
//! `rendition_failed` event with the reference's `errorReason`.

use assetgate_store::{ErrorCode, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.code {
            ErrorCode::NotFound => ApiError::new(404, e.message),
            ErrorCode::Invalid => ApiError::new(400, e.message),
            ErrorCode::TooLarge => ApiError::new(413, e.message),
            ErrorCode::Conflict => ApiError::new(409, e.message),
            ErrorCode::Unsupported => ApiError::new(415, e.message),
            ErrorCode::Corrupt | ErrorCode::Backend => {
                eprintln!("compute: internal error: {e}");
                ApiError::new(500, "internal error")
            }
        }
    }
}

/// `errorReason` of a `rendition_failed` event (stable strings of the
/// reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    RenditionFormatUnsupported,
    SourceUnsupported,
    SourceFormatUnsupported,
    SourceCorrupt,
    RenditionTooLarge,
    ServiceOverLoad,
    GenericError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RenditionFormatUnsupported => "RenditionFormatUnsupported",
            Reason::SourceUnsupported => "SourceUnsupported",
            Reason::SourceFormatUnsupported => "SourceFormatUnsupported",
            Reason::SourceCorrupt => "SourceCorrupt",
            Reason::RenditionTooLarge => "RenditionTooLarge",
            Reason::ServiceOverLoad => "ServiceOverLoad",
            Reason::GenericError => "GenericError",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
    /// Size of the rendition that could not be delivered (`repo:size`).
    pub size: Option<u64>,
}

impl Failure {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Failure {
            reason,
            message: message.into(),
            size: None,
        }
    }
    pub fn generic(message: impl Into<String>) -> Self {
        Self::new(Reason::GenericError, message)
    }
}
