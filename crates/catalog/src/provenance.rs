//! Where a protocol's own ids and read rules meet the catalog. The
//! preview proxy serves assets every protocol brought in; some of them are
//! addressed by the bringing protocol's ids (an EpiFiles ManifestFile
//! number) and readable by that protocol's rules (who sees the manifest).
//! That protocol implements this trait; the component that composes the
//! proxy passes it in, so no protocol crate depends on another.

use crate::Asset;
use assetgate_store::{Kv, Result};

/// Who reads an asset: its owner and the readers of its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readers {
    pub owner: String,
    pub repository: String,
}

pub trait Provenance {
    /// The asset id a protocol-specific object id names; `None` when the
    /// id is not one of this protocol's, or names nothing.
    fn asset_of(&self, kv: &dyn Kv, object_id: &str) -> Result<Option<String>>;

    /// Who may read `asset`, if this protocol brought it in and the record
    /// that says so still exists; `None` otherwise (nobody).
    fn readers(&self, kv: &dyn Kv, asset: &Asset) -> Result<Option<Readers>>;
}
