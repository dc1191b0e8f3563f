//! EpiFiles' side of the catalog's [`Provenance`]: ManifestFile numbers
//! name their assets, and whoever sees a manifest reads its files (the
//! preview proxy serves them by these rules).

use crate::model::{self, Manifest, ManifestFile};
use assetgate_catalog::provenance::{Provenance, Readers};
use assetgate_catalog::{Asset, Origin};
use assetgate_store::{Kv, Result};

pub struct Manifests;

impl Provenance for Manifests {
    /// Record ids of this protocol are decimal numbers.
    fn asset_of(&self, kv: &dyn Kv, object_id: &str) -> Result<Option<String>> {
        if object_id.is_empty()
            || object_id.len() > 20
            || !object_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Ok(None);
        }
        Ok(model::manifest_files(kv)
            .try_get::<ManifestFile>(object_id)?
            .map(|v| v.value.asset))
    }

    fn readers(&self, kv: &dyn Kv, asset: &Asset) -> Result<Option<Readers>> {
        let Origin::Epifiles { manifest, .. } = &asset.origin else {
            return Ok(None);
        };
        Ok(model::manifests(kv)
            .try_get::<Manifest>(manifest)?
            .map(|m| Readers {
                owner: m.value.owner,
                repository: m.value.repository,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assetgate_store::MemoryKv;

    #[test]
    fn manifest_files_name_their_assets_and_manifests_their_readers() {
        let kv = MemoryKv::new();
        let m = Manifest {
            id: "1".into(),
            repository: "23".into(),
            owner: "lab".into(),
            comment: String::new(),
            created_at: 0,
            files: vec!["7".into()],
            status: 1,
            archived: false,
            archived_at: None,
            archived_by: None,
        };
        model::manifests(&kv).create("1", &m).unwrap();
        let f = ManifestFile {
            id: "7".into(),
            manifest: "1".into(),
            repository: "23".into(),
            uploader: "lab".into(),
            asset: "asset-e".into(),
            filename: "x.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 5,
            md5: String::new(),
            created_at: 0,
            purge_at: 86_400,
            downloaded_by_mg: false,
        };
        model::manifest_files(&kv).create("7", &f).unwrap();
        let asset_of = |id: &str| Manifests.asset_of(&kv, id).unwrap();
        assert_eq!(asset_of("7").as_deref(), Some("asset-e"));
        for other in ["8", "asset-e", "", "123456789012345678901", "7 "] {
            assert_eq!(asset_of(other), None, "{other:?}");
        }
        let asset = |manifest: &str| Asset {
            id: "asset-e".into(),
            size: 5,
            mime_type: "image/jpeg".into(),
            original_name: "x.jpg".into(),
            submitted_name: None,
            form_data: serde_json::Value::Null,
            created_at: 0,
            md5: String::new(),
            sha256: String::new(),
            origin: Origin::Epifiles {
                repository: "23".into(),
                manifest: manifest.into(),
                manifest_file: "7".into(),
            },
            commit: None,
            acknowledged: false,
            expires_at: None,
        };
        assert_eq!(
            Manifests.readers(&kv, &asset("1")).unwrap(),
            Some(Readers {
                owner: "lab".into(),
                repository: "23".into()
            })
        );
        assert_eq!(Manifests.readers(&kv, &asset("2")).unwrap(), None, "gone");
        let mut upload = asset("1");
        upload.origin = Origin::Upload;
        assert_eq!(Manifests.readers(&kv, &upload).unwrap(), None, "not ours");
    }
}
