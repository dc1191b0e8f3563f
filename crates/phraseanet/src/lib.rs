//! The Phraseanet upload-service protocol, without HTTP: limits, commits
//! and their `AssetToken`s, the pull listing in Hydra form, push
//! notifications, and the ingest side's jobs. The `upload` and `ingest`
//! components are thin adapters over this crate.

pub mod commit;
pub mod hydra;
pub mod ingest;
pub mod limits;

pub use commit::{Access, Commit, Commits, PushState};
pub use limits::Limits;
