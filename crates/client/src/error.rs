//! The client's error type.

use switchboard_protocol::ErrorBody;

use crate::store::StoreError;

/// Anything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The hub refused (login, hello, command).
    #[error("refused by the hub: {} ({:?})", .0.message, .0.code)]
    Refused(ErrorBody),
    /// The hub could not be reached or the link broke.
    #[error("network: {0}")]
    Network(String),
    /// TLS setup failed (bad certificate file).
    #[error("tls: {0}")]
    Tls(String),
    /// The local cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The client task has stopped.
    #[error("the client has stopped")]
    Stopped,
}
