//! Log-on tickets: random 192-bit strings handed out by `POST /proxy/logon`
//! against the shared user directory, stored (by their SHA-256, never in
//! clear) with an expiry.

use crate::token::lookup_key;
use assetgate_store::{ErrorCode, Kv, Records, Result};
use assetgate_web::secret;
use serde::{Deserialize, Serialize};

const KIND: &str = "preview-ticket";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ticket {
    user: String,
    app: Option<String>,
    expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketError {
    Unknown,
    Expired,
    /// Issued to another client application (`ww-app` at log-on).
    OtherApp,
}

pub struct Tickets<'a, K: Kv + ?Sized> {
    kv: &'a K,
}

impl<'a, K: Kv + ?Sized> Tickets<'a, K> {
    pub fn new(kv: &'a K) -> Self {
        Tickets { kv }
    }

    /// A new ticket for `user`, valid `ttl` seconds.
    pub fn issue(&self, user: &str, app: Option<&str>, ttl: u64, now: u64) -> Result<String> {
        let ticket = secret::random_hex(24);
        let t = Ticket {
            user: user.to_string(),
            app: app.map(String::from),
            expires_at: now + ttl,
        };
        Records::new(self.kv, KIND).create(&lookup_key(&ticket), &t)?;
        Ok(ticket)
    }

    /// The user a ticket belongs to. An expired ticket is deleted. A
    /// ticket issued to a client application (`ww-app` at log-on) serves
    /// requests that name that application or none: Elvis keeps one
    /// ticket per application, so another application's `ww-app` does not
    /// find it.
    pub fn resolve(
        &self,
        ticket: &str,
        app: Option<&str>,
        now: u64,
    ) -> Result<std::result::Result<String, TicketError>> {
        if ticket.is_empty() || ticket.len() > 200 {
            return Ok(Err(TicketError::Unknown));
        }
        let records = Records::new(self.kv, KIND);
        let id = lookup_key(ticket);
        let t = match records.try_get::<Ticket>(&id)? {
            None => return Ok(Err(TicketError::Unknown)),
            Some(v) => v.value,
        };
        if t.expires_at <= now {
            match records.delete(&id) {
                Ok(()) => {}
                Err(e) if e.code == ErrorCode::NotFound => {}
                Err(e) => return Err(e),
            }
            return Ok(Err(TicketError::Expired));
        }
        if let (Some(issued), Some(asked)) = (t.app.as_deref(), app)
            && issued != asked
        {
            return Ok(Err(TicketError::OtherApp));
        }
        Ok(Ok(t.user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assetgate_store::MemoryKv;

    #[test]
    fn issue_resolve_expire() {
        let kv = MemoryKv::new();
        let t = Tickets::new(&kv);
        let ticket = t.issue("lab", Some("Foo Bar"), 60, 1000).unwrap();
        assert_eq!(ticket.len(), 48);
        assert!(
            !kv.keys().iter().any(|k| k.contains(&ticket)),
            "stored hashed"
        );
        assert_eq!(t.resolve(&ticket, None, 1059).unwrap(), Ok("lab".into()));
        assert_eq!(
            t.resolve(&ticket, None, 1060).unwrap(),
            Err(TicketError::Expired)
        );
        assert_eq!(
            t.resolve(&ticket, None, 1061).unwrap(),
            Err(TicketError::Unknown)
        );
        assert_eq!(
            t.resolve("forged", None, 1000).unwrap(),
            Err(TicketError::Unknown)
        );
    }

    #[test]
    fn a_ticket_serves_its_application_only() {
        let kv = MemoryKv::new();
        let t = Tickets::new(&kv);
        let bound = t.issue("lab", Some("Foo Bar"), 60, 1000).unwrap();
        let free = t.issue("lab", None, 60, 1000).unwrap();
        for (ticket, app, expect) in [
            (&bound, Some("Foo Bar"), Ok("lab".to_string())),
            (&bound, None, Ok("lab".to_string())),
            (&bound, Some("Other"), Err(TicketError::OtherApp)),
            (&bound, Some("foo bar"), Err(TicketError::OtherApp)),
            (&free, Some("Other"), Ok("lab".to_string())),
        ] {
            assert_eq!(t.resolve(ticket, app, 1001).unwrap(), expect, "{app:?}");
        }
    }
}
