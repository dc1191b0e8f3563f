//! assetgate's protocol-free store, shared by every component: chunked
//! blobs, versioned records, indexes, job queues and event journals, all on
//! a plain key-value capability ([`Kv`]) that every Spin platform offers.
//!
//! Nothing here knows about HTTP or a protocol; components map
//! [`StoreError`] codes to statuses with [`ErrorCode::http_status`].

pub mod backend;
pub mod blob;
pub mod blob_reader;
pub mod error;
pub mod hash;
pub mod index;
pub mod journal;
pub mod keys;
#[cfg(all(target_arch = "wasm32", not(feature = "edge")))]
pub mod keyvalue;
pub mod memory;
pub mod queue;
pub mod record;
#[cfg(target_arch = "wasm32")]
pub mod redis;
pub mod settings;
#[cfg(target_arch = "wasm32")]
pub mod spin;

pub use backend::Kv;
pub use blob::{BlobConfig, BlobWriter, Blobs, ChunkWrite, Descriptor};
pub use blob_reader::BlobReader;
pub use error::{ErrorCode, Result, StoreError};
pub use hash::{Digests, MultiHasher};
pub use index::{Index, Page};
pub use journal::{Entry, Journal, Position};
pub use memory::MemoryKv;
pub use queue::{Job, JobState, Queue, QueueConfig};
pub use record::{Records, Versioned};
pub use settings::StoreSettings;
