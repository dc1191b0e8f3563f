//! `GET manifest`, `GET manifest/{id}` and `PUT manifest/{id}` (archive,
//! optionally notifying the owner and the repository's managers).

use crate::error::{ApiError, ApiResult};
use crate::model::{self, Manifest};
use crate::params::{Params, decode_base64};
use crate::render;
use crate::service::{Service, can_read};
use crate::xml::Xml;
use assetgate_identity::User;
use assetgate_store::Kv;

/// Characters of `notify_message` that make the subject.
const SUBJECT_CHARS: usize = 74;

impl<K: Kv + ?Sized> Service<'_, K> {
    /// The non-archived manifests the user sees, oldest first.
    pub fn visible_manifests(&self, user: &User) -> ApiResult<Vec<Manifest>> {
        let mut out = Vec::new();
        for repository in user.repositories.keys() {
            for id in model::open_manifests(self.kv, repository)?.all()? {
                if let Some(v) = model::manifests(self.kv).try_get::<Manifest>(&id)?
                    && !v.value.archived
                    && can_read(user, &v.value)
                {
                    out.push(v.value);
                }
            }
        }
        out.sort_by_key(|m| m.id.parse::<u64>().unwrap_or(u64::MAX));
        Ok(out)
    }

    pub fn list_manifests(&self, user: &User) -> ApiResult<Xml> {
        let mut x = Xml::new();
        for m in self.visible_manifests(user)? {
            render::manifest(&mut x, &m);
        }
        Ok(x)
    }

    pub fn show_manifest(&self, user: &User, id: &str) -> ApiResult<Xml> {
        let m = self.readable_manifest(user, id)?;
        let mut x = Xml::new();
        render::manifest(&mut x, &m);
        Ok(x)
    }

    fn readable_manifest(&self, user: &User, id: &str) -> ApiResult<Manifest> {
        let m = self.manifest(id)?;
        if can_read(user, &m) {
            Ok(m)
        } else {
            Err(ApiError::forbidden(format!(
                "{} may not see manifest {id}",
                user.name
            )))
        }
    }

    /// `PUT manifest/{id}` with `archived=1`, optionally `notify=1` and a
    /// base64 `notify_message`. Archiving twice is harmless and notifies
    /// once.
    pub fn archive(&self, user: &User, id: &str, params: &Params) -> ApiResult<Xml> {
        match params.flag("archived")? {
            Some(true) => {}
            Some(false) => {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    "manifests can be archived (archived=1), not un-archived",
                ));
            }
            None => {
                return Err(ApiError::bad_request(
                    "missing_parameter",
                    "parameter `archived` is required (archived=1)",
                ));
            }
        }
        let notify = params.flag("notify")?.unwrap_or(false);
        let message = params
            .get("notify_message")
            .map(|m| {
                // The shared decoder's message names `content`.
                let bytes = decode_base64(m).map_err(|e| {
                    ApiError::bad_request(e.code, "`notify_message` is not valid base64")
                })?;
                String::from_utf8(bytes).map_err(|_| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        "`notify_message` must be base64 of UTF-8 text",
                    )
                })
            })
            .transpose()?;
        let m = self.readable_manifest(user, id)?;
        if m.owner != user.name && !user.roles(&m.repository).manager {
            return Err(ApiError::forbidden(format!(
                "only the owner or a manager may archive manifest {id}"
            )));
        }
        let (now, who) = (self.now, user.name.clone());
        let (m, changed) = model::manifests(self.kv).modify(id, |m: &mut Manifest| {
            let changed = !m.archived;
            if changed {
                m.archived = true;
                m.archived_at = Some(now);
                m.archived_by = Some(who.clone());
            }
            Ok((m.clone(), changed))
        })?;
        model::open_manifests(self.kv, &m.repository)?.remove(&m.id)?;
        if changed && notify {
            let message = message.unwrap_or_default();
            let subject = match message.trim() {
                "" => format!("Manifest {id} archived"),
                text => text
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(SUBJECT_CHARS)
                    .collect(),
            };
            self.notify(
                format!("archive-{id}"),
                "archive",
                &m,
                None,
                subject,
                message,
                &m.owner,
                |r| r.manager,
            )?;
        }
        Ok(Xml::new())
    }
}
