//! The Phraseanet upload-service protocol, without HTTP: limits, commits
//! and their `AssetToken`s, the pull listing in Hydra form, push
//! notifications, and the ingest side's jobs; its `spin` module is the
//! `upload` and `ingest` components' glue, which they call in a few lines.

pub mod commit;
pub mod hydra;
pub mod ingest;
pub mod limits;
#[cfg(target_arch = "wasm32")]
pub mod spin;

pub use commit::{Access, Commit, Commits, PushState};
pub use limits::Limits;
