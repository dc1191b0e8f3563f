//! One error type carrying its HTTP status and a stable code; store errors
//! map onto it in one place, internal ones are logged and answered blandly.

use assetgate_store::{ErrorCode, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// Stable, documented in docs/02-epifiles.md (error codes).
    pub code: &'static str,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(413, code, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.code {
            ErrorCode::NotFound => ApiError::not_found("not_found", e.message),
            ErrorCode::Conflict => ApiError::conflict("conflict", e.message),
            ErrorCode::TooLarge => ApiError::too_large("too_large", e.message),
            ErrorCode::Invalid => ApiError::bad_request("invalid_parameter", e.message),
            ErrorCode::Unsupported => ApiError::new(415, "unsupported_media_type", e.message),
            ErrorCode::Corrupt | ErrorCode::Backend => {
                eprintln!("epifiles: internal error: {e}");
                ApiError::new(500, "internal", "internal error")
            }
        }
    }
}

/// Store conflicts from create-if-absent steps mean "already done", which
/// is what makes retried requests harmless.
pub fn done_if_conflict(r: Result<(), StoreError>) -> Result<(), StoreError> {
    match r {
        Err(e) if e.code == ErrorCode::Conflict => Ok(()),
        other => other,
    }
}
