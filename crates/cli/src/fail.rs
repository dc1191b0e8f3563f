//! How a command fails: each kind has its own exit status, so a script can
//! tell a refusal from a network outage from corrupted data.

use std::fmt;

#[derive(Debug)]
pub enum Fail {
    /// The server answered with an error (after retries for 5xx): exit 1.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// Bad arguments the parser could not catch: exit 2 (as clap's own).
    Usage(String),
    /// The server could not be reached, or the connection broke: exit 3.
    Network(String),
    /// Data that does not check out (an MD5, a size, an answer we cannot
    /// read, a file that changed under us): exit 4.
    Integrity(String),
    /// A local file could not be read or written: exit 5.
    Io(String),
    /// A watched request ended with failed renditions: exit 6.
    Renditions(String),
}

impl Fail {
    pub fn exit_code(&self) -> i32 {
        match self {
            Fail::Refused { .. } => 1,
            Fail::Usage(_) => 2,
            Fail::Network(_) => 3,
            Fail::Integrity(_) => 4,
            Fail::Io(_) => 5,
            Fail::Renditions(_) => 6,
        }
    }

    pub fn io(what: impl fmt::Display, e: std::io::Error) -> Fail {
        Fail::Io(format!("{what}: {e}"))
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Refused {
                status,
                code,
                message,
            } => write!(f, "{status} {code}: {message}"),
            Fail::Usage(m)
            | Fail::Network(m)
            | Fail::Integrity(m)
            | Fail::Io(m)
            | Fail::Renditions(m) => f.write_str(m),
        }
    }
}

pub type Result<T> = std::result::Result<T, Fail>;
