//! The proxy's decisions as plain functions: parameters, credentials,
//! object resolution, access, ETag and `If-None-Match` — all from metadata,
//! before any pixel or blob byte is read. The Spin component executes the
//! [`Decision`]: a status, a 304, a streamed blob, or a render.

use crate::args::{PreviewArgs, Rendition};
use crate::etag;
use crate::pipeline;
use crate::source::StoredSource;
use assetgate_catalog::provenance::Provenance;
use assetgate_catalog::{Asset, Catalog, Origin};
use assetgate_identity::access::{self, COMPUTE_REPOSITORY, PHRASEANET_REPOSITORY};
use assetgate_identity::{Directory, TicketError, Tickets, User};
use assetgate_imaging::{ImagingError, Limits};
use assetgate_store::settings::number;
use assetgate_store::{BlobConfig, Blobs, ErrorCode, Kv, StoreError};

/// Cookie that carries the ticket for `ww-app` requests.
pub const TICKET_COOKIE: &str = "ticket";

#[derive(Debug, Clone, Copy)]
pub struct ProxyConfig {
    pub limits: Limits,
    /// `Cache-Control: private, max-age=…` (`preview_cache_max_age`, 3600).
    pub max_age: u64,
    /// Ticket lifetime (`preview_ticket_ttl_secs`, 8 h).
    pub ticket_ttl: u64,
    /// How long a rendered preview is kept (`preview_cache_days`, 30).
    pub cache_secs: u64,
}

impl ProxyConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ProxyConfig, StoreError> {
        let num = |name: &str, default: u64, min: u64, max: u64| {
            number(get(name), name, default, min, max)
        };
        Ok(ProxyConfig {
            limits: Limits {
                max_source_pixels: num("preview_max_source_pixels", 50_000_000, 1, 1 << 40)?,
                max_source_bytes: num("preview_max_source_bytes", 64 << 20, 1, 1 << 40)?,
                max_output_side: num("preview_max_output_side", 4096, 16, 65_535)? as u32,
                max_decode_bytes: num("preview_max_decode_bytes", 96 << 20, 1 << 20, 1 << 40)?,
            },
            max_age: num("preview_cache_max_age", 3600, 0, 31_536_000)?,
            ticket_ttl: num("preview_ticket_ttl_secs", 8 * 3600, 60, 30 * 86_400)?,
            cache_secs: num("preview_cache_days", 30, 1, 3650)? * 86_400,
        })
    }

    pub fn cache_control(&self) -> String {
        format!("private, max-age={}", self.max_age)
    }
}

pub struct ProxyRequest<'a> {
    /// Query string and form body parameters.
    pub params: &'a [(String, String)],
    pub authorization: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
}

impl ProxyRequest<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The ticket: the `ticket` parameter, else (with `ww-app`) `Authorization:
    /// Bearer …` or the `ticket` cookie.
    fn ticket(&self) -> Option<&str> {
        if let Some(t) = self.param("ticket") {
            return Some(t);
        }
        let bearer = self
            .authorization
            .and_then(|h| h.trim().split_once(' '))
            .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        bearer.or_else(|| {
            self.cookie?.split(';').find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (k == TICKET_COOKIE).then_some(v.trim())
            })
        })
    }
}

#[derive(Debug)]
pub enum Decision {
    Refuse {
        status: u16,
        code: &'static str,
        message: String,
    },
    NotModified {
        etag: String,
    },
    Native {
        asset: Asset,
        etag: String,
    },
    Preview {
        asset: Asset,
        args: PreviewArgs,
        etag: String,
        cache_id: String,
    },
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> Decision {
    Decision::Refuse {
        status,
        code,
        message: message.into(),
    }
}

fn internal(e: StoreError) -> Decision {
    eprintln!("preview: internal error: {e}");
    refuse(500, "internal", "internal error")
}

/// Everything up to the bytes.
pub fn decide<K: Kv>(
    kv: &K,
    users: &Directory,
    provenance: &dyn Provenance,
    req: &ProxyRequest<'_>,
    now: u64,
) -> Decision {
    let Some(objectid) = req.param("objectid") else {
        return refuse(400, "missing-parameter", "`objectid` is required");
    };
    let Some(rendition) = req.param("rendition") else {
        return refuse(
            400,
            "missing-parameter",
            "`rendition` is required (native, preview or thumb)",
        );
    };
    let rendition = match Rendition::parse(rendition) {
        Ok(r) => r,
        Err(e) => return refuse(400, "invalid-parameter", e.0),
    };
    // `native` ignores `preview-args`, but a malformed one is still a bad
    // parameter (the reference's 400), not silently dropped.
    let args = match PreviewArgs::parse(req.param("preview-args"), rendition) {
        Ok(_) if rendition == Rendition::Native => None,
        Ok(a) => Some(a),
        Err(e) => return refuse(400, "invalid-preview-args", e.0),
    };
    if req.param("ticket").is_none() && req.param("ww-app").is_none() {
        return refuse(400, "missing-parameter", "`ticket` or `ww-app` is required");
    }
    let Some(ticket) = req.ticket() else {
        return refuse(
            401,
            "no-ticket",
            "no ticket: log on, then send it as a cookie or `Authorization: Bearer`",
        );
    };
    let user = match Tickets::new(kv).resolve(ticket, req.param("ww-app"), now) {
        Ok(Ok(name)) => users.get(&name),
        Ok(Err(TicketError::OtherApp)) => {
            return refuse(
                401,
                "invalid-ticket",
                "the ticket was issued to another client application (`ww-app`); log on with this one",
            );
        }
        Ok(Err(TicketError::Expired)) => {
            return refuse(
                401,
                "ticket-expired",
                "the ticket has expired; log on again",
            );
        }
        Ok(Err(TicketError::Unknown)) => None,
        Err(e) => return internal(e),
    };
    let Some(user) = user else {
        return refuse(
            401,
            "invalid-ticket",
            "the ticket is not valid; log on again",
        );
    };
    let asset = match resolve(kv, provenance, objectid, now) {
        Ok(Some(a)) => a,
        Ok(None) => return refuse(404, "not-found", "no such object"),
        Err(e) => return internal(e),
    };
    match may_read(kv, provenance, user, &asset) {
        Ok(true) => {}
        Ok(false) => return refuse(403, "forbidden", "no read access to this object"),
        Err(e) => return internal(e),
    }
    let (etag, decision) = match args {
        None => {
            let etag = etag::native(&asset.content_tag());
            (etag.clone(), Decision::Native { asset, etag })
        }
        Some(args) => {
            let etag = etag::preview(&asset.content_tag(), rendition.as_str(), &args.normalized());
            let cache_id = format!("preview-{}", etag.trim_matches('"'));
            (
                etag.clone(),
                Decision::Preview {
                    asset,
                    args,
                    etag,
                    cache_id,
                },
            )
        }
    };
    if etag::none_match(req.if_none_match, &etag) {
        return Decision::NotModified { etag };
    }
    decision
}

/// An object id names a catalog asset, or another protocol's object
/// (an EpiFiles ManifestFile), whose asset it then is.
fn resolve<K: Kv>(
    kv: &K,
    provenance: &dyn Provenance,
    objectid: &str,
    now: u64,
) -> Result<Option<Asset>, StoreError> {
    let asset_id = if let Some(id) = provenance.asset_of(kv, objectid)? {
        id
    } else if assetgate_store::keys::check_id("object", objectid).is_ok()
        && !objectid.bytes().all(|b| b.is_ascii_digit())
    {
        objectid.to_string()
    } else {
        return Ok(None);
    };
    let catalog = Catalog::new(kv, Blobs::new(kv, BlobConfig::default()));
    match catalog.get(&asset_id, now) {
        Ok(a) => Ok(Some(a)),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// EpiFiles files: whoever sees their manifest. Phraseanet assets: the
/// members of the `phraseanet` repository. Stored renditions: the readers
/// of the `compute` repository.
fn may_read(
    kv: &dyn Kv,
    provenance: &dyn Provenance,
    user: &User,
    asset: &Asset,
) -> Result<bool, StoreError> {
    match &asset.origin {
        Origin::Epifiles { .. } => Ok(provenance
            .readers(kv, asset)?
            .is_some_and(|r| access::reads(user, &r.owner, &r.repository))),
        Origin::Upload | Origin::Ingest { .. } => {
            Ok(access::is_member(user, PHRASEANET_REPOSITORY))
        }
        Origin::Compute { .. } => Ok(user.roles(COMPUTE_REPOSITORY).reads_all()),
    }
}

/// Renders a preview and keeps it in the blob store under `cache_id`.
/// The source size is checked before its bytes are read; a failed render
/// leaves no cache entry.
pub fn render_and_cache<K: Kv + ?Sized>(
    kv: &K,
    blobs: BlobConfig,
    cfg: &ProxyConfig,
    asset: &Asset,
    args: &PreviewArgs,
    cache_id: &str,
    now: u64,
) -> Result<Vec<u8>, (u16, String)> {
    if asset.size > cfg.limits.max_source_bytes {
        return Err((
            413,
            format!(
                "the source has {} bytes; previews are made from at most {} (preview_max_source_bytes)",
                asset.size, cfg.limits.max_source_bytes
            ),
        ));
    }
    let source = StoredSource::new(kv, blobs, &asset.id, asset.size);
    let rendered = pipeline::render(&source, args, &cfg.limits).map_err(|e: ImagingError| {
        if e.status() >= 500 {
            eprintln!("preview: {}: {}", asset.id, e.message());
            (500, "internal error".to_string())
        } else {
            (e.status(), e.message().to_string())
        }
    })?;
    // A concurrent request may have cached the same bytes meanwhile: either
    // way the entry is whole (the descriptor is written last).
    let cached = match Blobs::new(kv, blobs).put(cache_id, &rendered.bytes, args.format.mime(), now)
    {
        Err(e) if e.code != ErrorCode::Conflict => Err(e),
        _ => crate::cache::remember(kv, cache_id, &asset.id, now),
    };
    if let Err(e) = cached {
        eprintln!("preview: cannot cache {cache_id}: {e}");
    }
    Ok(rendered.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use assetgate_store::MemoryKv;

    const NOW: u64 = 1_700_000_000;

    fn users() -> Directory {
        let hash = "pbkdf2_sha256$1000$s$AAAAAAAAAAAAAAAAAAAAAA==";
        Directory::parse(&format!(
            r#"[{{"user":"lab","password":"{hash}","repositories":{{"23":"uploader"}}}},
                {{"user":"boss","password":"{hash}","repositories":{{"23":"manager","phraseanet":"downloader"}}}},
                {{"user":"other","password":"{hash}","repositories":{{"24":"manager"}}}}]"#
        ))
        .unwrap()
    }

    /// EpiFiles' side as the proxy sees it: file 7 is asset-e, whose
    /// manifest lab owns in repository 23 (crates/epifiles implements it
    /// on its records; tests/preview.rs runs the two together).
    struct Files;

    impl Provenance for Files {
        fn asset_of(&self, _: &dyn Kv, id: &str) -> assetgate_store::Result<Option<String>> {
            Ok((id == "7").then(|| "asset-e".to_string()))
        }

        fn readers(
            &self,
            _: &dyn Kv,
            asset: &Asset,
        ) -> assetgate_store::Result<Option<assetgate_catalog::provenance::Readers>> {
            Ok(
                (asset.id == "asset-e").then(|| assetgate_catalog::provenance::Readers {
                    owner: "lab".into(),
                    repository: "23".into(),
                }),
            )
        }
    }

    /// An EpiFiles file (manifest 1, file 7, owner lab, repository 23) and
    /// a Phraseanet upload.
    fn store() -> MemoryKv {
        let kv = MemoryKv::new();
        let blobs = Blobs::new(&kv, BlobConfig::default());
        let catalog = Catalog::new(&kv, Blobs::new(&kv, BlobConfig::default()));
        for (id, origin) in [
            (
                "asset-e",
                Origin::Epifiles {
                    repository: "23".into(),
                    manifest: "1".into(),
                    manifest_file: "7".into(),
                },
            ),
            ("asset-p", Origin::Upload),
        ] {
            let d = blobs.put(id, b"bytes", "image/jpeg", NOW).unwrap();
            catalog
                .add(&Asset::from_blob(
                    &d,
                    "x.jpg",
                    serde_json::Value::Null,
                    origin,
                    NOW,
                ))
                .unwrap();
        }
        kv
    }

    fn outcome(d: &Decision) -> String {
        match d {
            Decision::Refuse { status, code, .. } => format!("{status} {code}"),
            Decision::NotModified { .. } => "304".into(),
            Decision::Native { asset, .. } => format!("native {}", asset.id),
            Decision::Preview { asset, args, .. } => {
                format!("preview {} {}", asset.id, args.normalized())
            }
        }
    }

    /// Query, Authorization, Cookie, If-None-Match, expected outcome.
    type Case = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        &'static str,
    );

    #[test]
    fn decision_table() {
        let kv = store();
        let users = users();
        let tickets = Tickets::new(&kv);
        let lab = tickets.issue("lab", None, 3600, NOW).unwrap();
        let boss = tickets.issue("boss", None, 3600, NOW).unwrap();
        let other = tickets.issue("other", None, 3600, NOW).unwrap();
        let old = tickets.issue("lab", None, 60, NOW - 120).unwrap();
        let gone = tickets.issue("nobody", None, 3600, NOW).unwrap();
        let app = tickets.issue("lab", Some("Foo Bar"), 3600, NOW).unwrap();
        let preview_etag = etag::preview(
            &Catalog::new(&kv, Blobs::new(&kv, BlobConfig::default()))
                .get("asset-e", NOW)
                .unwrap()
                .content_tag(),
            "preview",
            "maxWidth_600_maxHeight_400_quality_85.jpg",
        );
        let q = |s: &str| assetgate_web::query::parse_strict(s.as_bytes()).unwrap();
        let bearer = |t: &str| format!("Bearer {t}");
        let cookie = |t: &str| format!("theme=dark; ticket={t}");
        let args = "preview-args=maxWidth_600_maxHeight_400.jpg";
        // (query, authorization, cookie, if-none-match, expected)
        let cases: Vec<Case> = vec![
            (
                format!("rendition=preview&ticket={lab}"),
                None,
                None,
                None,
                "400 missing-parameter",
            ),
            (
                format!("objectid=7&ticket={lab}"),
                None,
                None,
                None,
                "400 missing-parameter",
            ),
            (
                format!("objectid=7&rendition=original&ticket={lab}"),
                None,
                None,
                None,
                "400 invalid-parameter",
            ),
            (
                format!("objectid=7&rendition=preview&preview-args=maxWidth_x.jpg&ticket={lab}"),
                None,
                None,
                None,
                "400 invalid-preview-args",
            ),
            (
                "objectid=7&rendition=preview".into(),
                Some(bearer(&lab)),
                None,
                None,
                "400 missing-parameter",
            ),
            (
                "objectid=7&rendition=preview&ww-app=Foo".into(),
                None,
                None,
                None,
                "401 no-ticket",
            ),
            (
                "objectid=7&rendition=preview&ww-app=Foo".into(),
                Some(bearer("forged")),
                None,
                None,
                "401 invalid-ticket",
            ),
            (
                format!("objectid=7&rendition=preview&ticket={old}"),
                None,
                None,
                None,
                "401 ticket-expired",
            ),
            (
                format!("objectid=7&rendition=preview&ticket={gone}"),
                None,
                None,
                None,
                "401 invalid-ticket",
            ),
            (
                format!("objectid=8&rendition=preview&ticket={lab}"),
                None,
                None,
                None,
                "404 not-found",
            ),
            (
                format!("objectid=../etc&rendition=native&ticket={lab}"),
                None,
                None,
                None,
                "404 not-found",
            ),
            (
                format!("objectid=7&rendition=preview&ticket={other}"),
                None,
                None,
                None,
                "403 forbidden",
            ),
            (
                format!("objectid=asset-p&rendition=native&ticket={lab}"),
                None,
                None,
                None,
                "403 forbidden",
            ),
            (
                format!("objectid=asset-p&rendition=native&ticket={boss}"),
                None,
                None,
                None,
                "native asset-p",
            ),
            (
                format!("objectid=7&rendition=native&ticket={lab}"),
                None,
                None,
                None,
                "native asset-e",
            ),
            (
                format!("objectid=7&rendition=native&preview-args=maxWidth_600.jpg&ticket={lab}"),
                None,
                None,
                None,
                "native asset-e",
            ),
            (
                format!("objectid=7&rendition=native&preview-args=maxWidth_600&ticket={lab}"),
                None,
                None,
                None,
                "400 invalid-preview-args",
            ),
            (
                format!("objectid=7&rendition=native&preview-args=size_600.jpg&ticket={lab}"),
                None,
                None,
                None,
                "400 invalid-preview-args",
            ),
            (
                "objectid=7&rendition=native&ww-app=Foo%20Bar".into(),
                None,
                Some(cookie(&app)),
                None,
                "native asset-e",
            ),
            (
                format!("objectid=7&rendition=native&ticket={app}"),
                None,
                None,
                None,
                "native asset-e",
            ),
            (
                "objectid=7&rendition=native&ww-app=Baz".into(),
                None,
                Some(cookie(&app)),
                None,
                "401 invalid-ticket",
            ),
            (
                "objectid=7&rendition=native&ww-app=Baz".into(),
                Some(bearer(&app)),
                None,
                None,
                "401 invalid-ticket",
            ),
            (
                format!("objectid=asset-e&rendition=thumb&ticket={boss}"),
                None,
                None,
                None,
                "preview asset-e maxWidth_256_maxHeight_256_quality_85.jpg",
            ),
            (
                format!("objectid=7&rendition=preview&{args}&ww-app=Foo%20Bar"),
                Some(bearer(&lab)),
                None,
                None,
                "preview asset-e maxWidth_600_maxHeight_400_quality_85.jpg",
            ),
            (
                format!("objectid=7&rendition=preview&{args}&ww-app=Foo%20Bar"),
                None,
                Some(cookie(&boss)),
                None,
                "preview asset-e maxWidth_600_maxHeight_400_quality_85.jpg",
            ),
            (
                format!("objectid=7&rendition=preview&{args}&ww-app=Foo"),
                None,
                Some(cookie(&boss)),
                Some(preview_etag.clone()),
                "304",
            ),
            (
                format!("objectid=7&rendition=preview&{args}&ww-app=Foo"),
                None,
                Some(cookie(&boss)),
                Some("\"stale\"".into()),
                "preview asset-e maxWidth_600_maxHeight_400_quality_85.jpg",
            ),
            (
                "objectid=7&rendition=preview&preview-args=maxWidth_601.jpg&ww-app=Foo".to_string(),
                None,
                Some(cookie(&boss)),
                Some(preview_etag),
                "preview asset-e maxWidth_601_quality_85.jpg",
            ),
        ];
        for (query, auth, cookie, inm, expected) in cases {
            let params = q(&query);
            let req = ProxyRequest {
                params: &params,
                authorization: auth.as_deref(),
                cookie: cookie.as_deref(),
                if_none_match: inm.as_deref(),
            };
            assert_eq!(
                outcome(&decide(&kv, &users, &Files, &req, NOW)),
                expected,
                "{query}"
            );
        }
    }
}
