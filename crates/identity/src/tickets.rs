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

    /// The user a ticket belongs to. An expired ticket is deleted.
    pub fn resolve(
        &self,
        ticket: &str,
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
        assert_eq!(t.resolve(&ticket, 1059).unwrap(), Ok("lab".into()));
        assert_eq!(t.resolve(&ticket, 1060).unwrap(), Err(TicketError::Expired));
        assert_eq!(t.resolve(&ticket, 1061).unwrap(), Err(TicketError::Unknown));
        assert_eq!(
            t.resolve("forged", 1000).unwrap(),
            Err(TicketError::Unknown)
        );
    }
}
