//! Read rules that span protocols: who sees what, by repository role.

use crate::User;

/// The repository whose members read assets uploaded or ingested through
/// the Phraseanet protocol (through the preview proxy).
pub const PHRASEANET_REPOSITORY: &str = "phraseanet";
/// The repository whose readers see renditions Asset Compute kept.
pub const COMPUTE_REPOSITORY: &str = "compute";

/// Who sees an item of `repository` owned by `owner` (an EpiFiles
/// manifest and its files): the owner, and the repository's managers and
/// downloaders.
pub fn reads(user: &User, owner: &str, repository: &str) -> bool {
    owner == user.name || user.roles(repository).reads_all()
}

/// Members of `repository` with any role.
pub fn is_member(user: &User, repository: &str) -> bool {
    let r = user.roles(repository);
    r.reads_all() || r.uploader
}
