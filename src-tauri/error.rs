//! The one error type of the IPC boundary: `{code, message}` with a closed
//! set of codes.

use serde::Serialize;
use switchboard_client::ClientError;
use switchboard_protocol::ErrorCode;
use ts_rs::TS;

/// Closed set of error codes the UI can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum IpcErrorCode {
    /// No one is signed in.
    NotSignedIn,
    /// Wrong user name or password, or the session was revoked.
    Unauthorized,
    /// Too many attempts.
    RateLimited,
    /// The hub could not be reached.
    HubUnreachable,
    /// The request itself is wrong (bad URL, empty field).
    InvalidInput,
    /// The hub refused for another reason.
    Refused,
    /// The hub refused because the thing changed or needs a confirmation
    /// (e.g. linking to a case other than the assigned one).
    Conflict,
    /// Something failed inside the app.
    Internal,
}

/// An error for the UI.
#[derive(Debug, Clone, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct IpcError {
    /// What kind.
    pub code: IpcErrorCode,
    /// For people.
    pub message: String,
}

impl IpcError {
    /// Builds an error.
    pub fn new(code: IpcErrorCode, message: impl Into<String>) -> Self {
        IpcError {
            code,
            message: message.into(),
        }
    }
}

impl From<ClientError> for IpcError {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Refused(body) => match body.code {
                ErrorCode::Unauthorized => IpcErrorCode::Unauthorized,
                ErrorCode::RateLimited => IpcErrorCode::RateLimited,
                ErrorCode::InvalidFrame => IpcErrorCode::InvalidInput,
                ErrorCode::Conflict | ErrorCode::SessionLimit => IpcErrorCode::Conflict,
                _ => IpcErrorCode::Refused,
            },
            ClientError::Network(_) => IpcErrorCode::HubUnreachable,
            ClientError::Tls(_) => IpcErrorCode::InvalidInput,
            ClientError::Store(_) => IpcErrorCode::Internal,
            ClientError::Stopped => IpcErrorCode::NotSignedIn,
        };
        let message = match &e {
            ClientError::Refused(body) => body.message.clone(),
            other => other.to_string(),
        };
        IpcError { code, message }
    }
}
