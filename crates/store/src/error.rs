//! One error type for every store operation, with a stable code that the
//! components map to an HTTP status in one place (`ErrorCode::http_status`).

use std::fmt;

/// Stable, machine-readable error codes (also used as strings in logs and
/// error bodies; never renamed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The thing asked for does not exist (or is not visible yet).
    NotFound,
    /// A concurrent writer changed it first, or it already exists.
    Conflict,
    /// A size limit was exceeded.
    TooLarge,
    /// Stored data failed a consistency check (bad JSON, wrong hash…).
    Corrupt,
    /// The caller's request is malformed (bad index, wrong chunk size…).
    Invalid,
    /// The content's type is not accepted.
    Unsupported,
    /// The key-value backend failed.
    Backend,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not-found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::Corrupt => "corrupt",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Unsupported => "unsupported-media-type",
            ErrorCode::Backend => "backend",
        }
    }

    /// The HTTP status a component answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::Invalid => 400,
            ErrorCode::Unsupported => 415,
            ErrorCode::Corrupt | ErrorCode::Backend => 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    pub code: ErrorCode,
    pub message: String,
}

impl StoreError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        StoreError {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, m)
    }
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::TooLarge, m)
    }
    pub fn corrupt(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Corrupt, m)
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, m)
    }
    pub fn unsupported(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unsupported, m)
    }
    /// The store error a [`crate::blob_reader::BlobReader`] wrapped in an
    /// `io::Error`, or a backend error for any other.
    pub fn from_io(e: std::io::Error) -> Self {
        let text = e.to_string();
        match e.into_inner().map(|inner| inner.downcast::<StoreError>()) {
            Some(Ok(inner)) => *inner,
            _ => StoreError::backend(text),
        }
    }

    pub fn backend(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Backend, m)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for StoreError {}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
