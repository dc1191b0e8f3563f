//! Reading a client's journal the way Adobe I/O Events journaling does:
//! 200 `{events:[{position, event}], _page:{last, count}}` or, when nothing
//! is new, 204; both with `Link: <…?since=POSITION>; rel="next"`, which is
//! all the Node client follows. Positions are opaque strings, strictly
//! increasing and gap-free (the store's journal guarantees it), so paging
//! by `since` neither skips nor repeats an event.
//!
//! A read changes nothing on the server: a consumer's position travels in
//! the `Link` it follows, as in Adobe I/O Events, so any number of
//! consumers can read one journal at once, each at its own pace, and none
//! can make another miss an event.

use crate::error::{ApiError, ApiResult};
use crate::events;
use crate::service::Service;
use assetgate_store::{Journal, Kv, Position};
use serde_json::{Value, json};

/// Events per page when `limit` is not given, and the most it may ask.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// How recent an event must be for `latest=true` to still count it as
/// "latest". Adobe's Node client starts polling with `latest=true` while
/// its first `/process` is on its way, and renditions here are often
/// reported within 10 ms of the answer: starting at the bare end would
/// lose that race whenever the poll is a little late (measured: half the
/// time at 10 ms). Events of the last few seconds are therefore included.
pub const LATEST_GRACE_SECS: u64 = 10;
/// The most events `latest=true` reaches back over, however recent.
const LATEST_MAX_BACK: u64 = MAX_LIMIT as u64;

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

/// Without `since`, from the start of the journal; with `latest=true`,
/// from its current end (Adobe I/O Events' "events from now on") less the
/// events reported in the last [`LATEST_GRACE_SECS`] at `now`.
pub fn read<K: Kv + ?Sized>(
    svc: &Service<'_, K>,
    journal: &str,
    q: &Query,
    now: u64,
) -> ApiResult<Page> {
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
    let j = svc.journal(journal)?;
    let end = j.last()?;
    let after = match (&q.since, q.latest) {
        (Some(s), _) => Position::parse(s).map_err(|_| {
            ApiError::bad_request(format!("`since` = `{s}` is not a position of this journal"))
        })?,
        (None, true) => latest_start(&j, end, now.saturating_sub(LATEST_GRACE_SECS))?,
        (None, false) => Position::START,
    };
    if after > end {
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

fn number(p: Position) -> u64 {
    p.token().parse().unwrap_or(0)
}

fn position(n: u64) -> Position {
    Position::parse(&n.to_string()).unwrap_or(Position::START)
}

/// The position after which the events reported at or after `since` begin
/// (at most [`LATEST_MAX_BACK`] before `end`), read backwards from `end` in
/// growing batches: usually one small read.
fn latest_start<K: Kv + ?Sized>(
    j: &Journal<'_, K>,
    end: Position,
    since: u64,
) -> ApiResult<Position> {
    let floor = number(end).saturating_sub(LATEST_MAX_BACK);
    let mut start = number(end);
    let mut batch = 8;
    while start > floor {
        let lo = start.saturating_sub(batch).max(floor);
        let entries = j.read_after(position(lo), (start - lo) as usize)?;
        if entries.is_empty() {
            break;
        }
        for e in entries.iter().rev() {
            let event: Value = serde_json::from_slice(&e.payload).unwrap_or(Value::Null);
            if events::reported_at(&event).is_none_or(|t| t < since) {
                return Ok(position(start));
            }
            start = number(e.position) - 1;
        }
        batch *= 4;
    }
    Ok(position(start))
}
