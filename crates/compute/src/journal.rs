//! Reading a client's journal the way Adobe I/O Events journaling does:
//! 200 `{events:[{position, event}], _page:{last, count}}` or, when nothing
//! is new, 204; both with `Link: <…?since=POSITION>; rel="next"`, which is
//! all the Node client follows. Positions are opaque strings, strictly
//! increasing and gap-free (the store's journal guarantees it), so paging
//! by `since` neither skips nor repeats an event.

use crate::error::{ApiError, ApiResult};
use crate::service::Service;
use assetgate_store::{Kv, Position};
use serde_json::{Value, json};

/// Events per page when `limit` is not given, and the most it may ask.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Clone, Default)]
pub struct Query {
    pub since: Option<String>,
    pub limit: Option<String>,
    pub latest: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// `None`: nothing new (204).
    pub body: Option<Value>,
    /// The `since` the next request should carry.
    pub next_since: String,
    pub limit: Option<usize>,
}

/// `latest=true` continues after the last event this journal served (from
/// the start when it served none): a client that starts polling after its
/// first `/process` misses nothing, and one that restarts after an error
/// gets nothing twice.
pub fn read<K: Kv + ?Sized>(svc: &Service<'_, K>, journal: &str, q: &Query) -> ApiResult<Page> {
    let limit = match &q.limit {
        None => None,
        Some(l) => Some(
            l.parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("`limit` must be in 1..={MAX_LIMIT}"))
                })?,
        ),
    };
    let after = match (&q.since, q.latest) {
        (Some(s), _) => Position::parse(s).map_err(|_| {
            ApiError::bad_request(format!("`since` = `{s}` is not a position of this journal"))
        })?,
        (None, true) => Position::parse(&svc.read_mark(journal)?.to_string())?,
        (None, false) => Position::START,
    };
    let j = svc.journal(journal)?;
    if after > j.last()? {
        return Err(ApiError::bad_request(
            "`since` is past the end of this journal",
        ));
    }
    let entries = j.read_after(after, limit.unwrap_or(DEFAULT_LIMIT))?;
    let Some(last) = entries.last().map(|e| e.position) else {
        return Ok(Page {
            body: None,
            next_since: after.token(),
            limit,
        });
    };
    svc.advance_read_mark(journal, last.token().parse().unwrap_or(0))?;
    let events: Vec<Value> = entries
        .iter()
        .map(|e| {
            let event: Value = serde_json::from_slice(&e.payload).unwrap_or(Value::Null);
            json!({ "position": e.position.token(), "event": event })
        })
        .collect();
    Ok(Page {
        body: Some(json!({
            "events": events,
            "_page": { "last": last.token(), "count": events.len() },
        })),
        next_since: last.token(),
        limit,
    })
}
