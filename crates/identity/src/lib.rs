//! Identity: who is asking, for every protocol that needs to know. The
//! user directory (`epifiles_users`: PBKDF2 passwords, roles per
//! repository) behind EpiFiles' HTTP Basic and the preview proxy's log-on,
//! the log-on tickets, the read rules per repository, and the secrets
//! (API keys, commit and client tokens) compared in constant time and
//! stored only by hash. Protocol crates map its refusals to their own
//! error envelopes.

pub mod access;
pub mod tickets;
pub mod token;
pub mod users;

pub use tickets::{TicketError, Tickets};
pub use users::{Directory, Roles, Unauthorized, User};
