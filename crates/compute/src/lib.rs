//! The Asset Compute HTTP API (`/register`, `/unregister`, `/process`, the
//! event journal). The plain modules are the protocol; the `spin` module
//! (wasm32) is the `compute` and `journal` components' glue, which moves
//! bytes and makes the outbound requests through [`runner::Transport`].
//!
//! A `/process` request is validated ([`request`]), persisted as a job in a
//! durable queue, answered, then worked: each rendition is made
//! ([`render`]), delivered to its target ([`multipart`]) or stored, and
//! reported as one event in the client's journal ([`events`], [`journal`]).

pub mod api;
pub mod clients;
pub mod config;
pub mod error;
pub mod events;
pub mod journal;
pub mod multipart;
pub mod render;
pub mod request;
pub mod runner;
pub mod service;
#[cfg(target_arch = "wasm32")]
pub mod spin;
pub mod urls;
pub mod zipper;

pub use api::{Request, Response};
pub use config::Config;
pub use service::Service;
