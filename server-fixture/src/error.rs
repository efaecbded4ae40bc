//! The fixture's two error types, at the bottom of the crate: [`Error`] (why it could not
//! start) and [`Rejection`] (why a request was refused: a status and a message naming the
//! cause).

use std::fmt;

/// Why the fixture could not start.
#[derive(Debug)]
pub enum Error {
    /// An invalid setting.
    Config(String),
    /// An I/O failure (binding, data directory), with what was being done.
    Io(String, std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(_) => None,
            Error::Io(_, e) => Some(e),
        }
    }
}

/// A rejected request: the status and a message naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status (400, 409, 413, ...).
    pub status: u16,
    /// Human-readable reason; names the bad or missing parameter.
    pub message: String,
}

impl Rejection {
    /// A 400 Bad Request.
    pub fn bad(message: impl Into<String>) -> Self {
        Rejection {
            status: 400,
            message: message.into(),
        }
    }
    /// Any other status.
    pub fn with(status: u16, message: impl Into<String>) -> Self {
        Rejection {
            status,
            message: message.into(),
        }
    }
}
