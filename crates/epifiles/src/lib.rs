//! The EpiFiles web services (`Manifest`, `ManifestFile`) on the shared
//! store: chunked base64 uploads and downloads with MD5 per chunk and per
//! file, `process_id` resumption, XML answers in the envelope a
//! `Zend_Rest_Client` reads, users and repositories from configuration.
//! [`api::handle`] is the whole service as a plain function; the `spin`
//! module is the component's glue.

pub mod api;
pub mod chunk_encode;
pub mod config;
pub mod error;
mod files;
mod manifests;
pub mod model;
pub mod outbox;
pub mod params;
pub mod provenance;
pub mod render;
pub mod service;
#[cfg(target_arch = "wasm32")]
pub mod spin;
mod upload;
pub mod xml;

pub use api::{Body, Request, Response, handle};
pub use config::Config;
pub use error::ApiError;
pub use service::Service;
