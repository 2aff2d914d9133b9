//! The hub's error type. Every refusal carries a protocol [`ErrorCode`], so
//! WebSocket and REST report the same closed set of codes.

use switchboard_protocol::{ErrorBody, ErrorCode};

use crate::config::ConfigError;
use crate::store::StoreError;

/// Anything that can go wrong in the hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A request refused for a reason the client can act on.
    #[error("{message}")]
    Refused {
        /// Protocol code.
        code: ErrorCode,
        /// Human-readable reason.
        message: String,
    },
    /// SQLite failed.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Listening or file access failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A task on the blocking pool (password checks) panicked or was
    /// cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Stored data did not decode.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Too many failed logins: `rate_limited`, and when to try again.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled {
        /// Seconds until a try is accepted again.
        retry_after_secs: u64,
    },
}

/// Shorthand for hub results.
pub type HubResult<T> = Result<T, HubError>;

impl HubError {
    /// A refusal with a code.
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        HubError::Refused {
            code,
            message: message.into(),
        }
    }

    /// `not_found`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::refused(ErrorCode::NotFound, what)
    }

    /// `conflict`.
    pub fn conflict(what: impl Into<String>) -> Self {
        Self::refused(ErrorCode::Conflict, what)
    }

    /// `forbidden`.
    pub fn forbidden(what: impl Into<String>) -> Self {
        Self::refused(ErrorCode::Forbidden, what)
    }

    /// `unauthorized`.
    pub fn unauthorized(what: impl Into<String>) -> Self {
        Self::refused(ErrorCode::Unauthorized, what)
    }

    /// `invalid_frame` (bad request body).
    pub fn invalid(what: impl Into<String>) -> Self {
        Self::refused(ErrorCode::InvalidFrame, what)
    }

    /// The protocol code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            HubError::Refused { code, .. } => *code,
            HubError::Throttled { .. } => ErrorCode::RateLimited,
            _ => ErrorCode::Internal,
        }
    }

    /// The error as sent to clients. Internal errors are not detailed to
    /// clients (they are logged instead).
    pub fn body(&self) -> ErrorBody {
        match self {
            HubError::Refused { code, message } => ErrorBody::new(*code, message.clone()),
            HubError::Throttled { .. } => ErrorBody::new(ErrorCode::RateLimited, self.to_string()),
            _ => ErrorBody::new(
                ErrorCode::Internal,
                "internal error; retry with the same command id",
            ),
        }
    }
}
