//! The session token in the OS keychain, so that a restart, a crash or a
//! start at login resumes the session without the password. Never in a
//! file.
//!
//! - Linux: the freedesktop Secret Service (GNOME Keyring, KWallet,
//!   KeePassXC), spoken over D-Bus with zbus on the app's own runtime
//!   (`keychain/secret_service.rs`): no blocking thread, no second async
//!   runtime. A locked collection is unlocked through the service's own
//!   prompt, as any desktop app does.
//! - macOS and Windows: Keychain and Credential Manager through the
//!   `keyring` crate, on the blocking pool.
//!
//! Without a keychain (no Secret Service on the bus, a prompt dismissed)
//! the app works as before: one warning, and the agent signs in at each
//! start. A keychain that does not answer is given up on after
//! [`KEYCHAIN_PATIENCE`] per call.

use std::time::Duration;

#[cfg(target_os = "linux")]
#[path = "keychain/secret_service.rs"]
mod secret_service;

/// How long one keychain call may take before the app goes on without it.
pub const KEYCHAIN_PATIENCE: Duration = Duration::from_secs(5);

/// The keychain's service name for Switchboard's items (the `service`
/// attribute on Linux, as the `keyring` crate names it elsewhere).
pub const SERVICE: &str = "switchboard";

/// One account's entry: the hub and the user name (one token per account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The hub's URL, as signed in to.
    pub hub_url: String,
    /// The agent's user name.
    pub username: String,
}

impl Account {
    /// The item's user key: `<user>@<hub URL>`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.username, self.hub_url)
    }
}

/// Keychain failures (logged by the shell; none stops the app).
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    /// There is no keychain to talk to (no Secret Service on the bus).
    #[error("no keychain: {0}")]
    Unavailable(String),
    /// The keychain is locked and the agent did not unlock it.
    #[error("the keychain stayed locked")]
    Locked,
    /// It did not answer within [`KEYCHAIN_PATIENCE`].
    #[error("the keychain did not answer in time")]
    TimedOut,
    /// The keychain refused or failed.
    #[error("keychain: {0}")]
    Platform(String),
}

/// The OS keychain (managed by the shell; it holds no connection between
/// calls, which are rare: start, sign-in, sign-out).
#[derive(Debug, Default)]
pub struct Keychain;

impl Keychain {
    /// The token kept for `account`, if any.
    pub async fn load(&self, account: &Account) -> Result<Option<String>, KeychainError> {
        #[cfg(target_os = "linux")]
        return secret_service::load(SERVICE, &account.key()).await;
        #[cfg(not(target_os = "linux"))]
        return native::load(account.key()).await;
    }

    /// Keeps `token` for `account` (replacing an older one).
    pub async fn save(&self, account: &Account, token: &str) -> Result<(), KeychainError> {
        #[cfg(target_os = "linux")]
        return secret_service::save(SERVICE, &account.key(), token).await;
        #[cfg(not(target_os = "linux"))]
        return native::save(account.key(), token.to_owned()).await;
    }

    /// Forgets the token of `account` (none kept is fine).
    pub async fn forget(&self, account: &Account) -> Result<(), KeychainError> {
        #[cfg(target_os = "linux")]
        return secret_service::forget(SERVICE, &account.key()).await;
        #[cfg(not(target_os = "linux"))]
        return native::forget(account.key()).await;
    }
}

/// macOS and Windows: the `keyring` crate (blocking OS APIs).
#[cfg(not(target_os = "linux"))]
mod native {
    use super::{KeychainError, KEYCHAIN_PATIENCE, SERVICE};

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, keyring::Error> + Send + 'static,
    ) -> Result<T, KeychainError> {
        match tokio::time::timeout(KEYCHAIN_PATIENCE, tauri::async_runtime::spawn_blocking(f)).await
        {
            Ok(Ok(Ok(r))) => Ok(r),
            Ok(Ok(Err(keyring::Error::NoDefaultStore))) => {
                Err(KeychainError::Unavailable("no credential store".into()))
            }
            Ok(Ok(Err(e))) => Err(KeychainError::Platform(e.to_string())),
            Ok(Err(e)) => Err(KeychainError::Platform(e.to_string())),
            Err(_) => Err(KeychainError::TimedOut),
        }
    }

    pub async fn load(key: String) -> Result<Option<String>, KeychainError> {
        blocking(
            move || match keyring::Entry::new(SERVICE, &key)?.get_password() {
                Ok(token) => Ok(Some(token)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(e),
            },
        )
        .await
    }

    pub async fn save(key: String, token: String) -> Result<(), KeychainError> {
        blocking(move || keyring::Entry::new(SERVICE, &key)?.set_password(&token)).await
    }

    pub async fn forget(key: String) -> Result<(), KeychainError> {
        blocking(
            move || match keyring::Entry::new(SERVICE, &key)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(e),
            },
        )
        .await
    }
}
