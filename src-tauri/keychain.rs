//! The session token in the OS keychain, so that a restart, a crash or a
//! start at login resumes the session without the password: Secret Service
//! on Linux (GNOME Keyring, KWallet, KeePassXC), Keychain on macOS,
//! Credential Manager on Windows, all through the `keyring` crate. Never in
//! a file.
//!
//! Without a keychain (no Secret Service on the bus, a locked collection)
//! the app works as before: one warning, and the agent signs in at each
//! start. Keychain calls block (D-Bus or OS APIs), so they run on the
//! blocking pool, and a keychain that does not answer (an unlock prompt
//! nobody sees) is given up on after [`KEYCHAIN_PATIENCE`].

use std::time::Duration;

/// How long a keychain call may take before the app goes on without it.
pub const KEYCHAIN_PATIENCE: Duration = Duration::from_secs(5);

/// The keychain's service name for Switchboard's items.
const SERVICE: &str = "switchboard";

/// One account's entry: the hub and the user name (one token per account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The hub's URL, as signed in to.
    pub hub_url: String,
    /// The agent's user name.
    pub username: String,
}

impl Account {
    fn key(&self) -> String {
        format!("{}@{}", self.username, self.hub_url)
    }
}

/// Keychain failures (logged by the shell; none stops the app).
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    /// The platform keychain refused or is not there.
    #[error("keychain: {0}")]
    Keychain(#[from] keyring::Error),
    /// It did not answer within [`KEYCHAIN_PATIENCE`].
    #[error("the keychain did not answer in time")]
    TimedOut,
    /// The blocking task failed.
    #[error("keychain task: {0}")]
    Task(String),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, keyring::Error> + Send + 'static,
) -> Result<T, KeychainError> {
    match tokio::time::timeout(KEYCHAIN_PATIENCE, tauri::async_runtime::spawn_blocking(f)).await {
        Ok(Ok(r)) => Ok(r?),
        Ok(Err(e)) => Err(KeychainError::Task(e.to_string())),
        Err(_) => Err(KeychainError::TimedOut),
    }
}

/// The token kept for `account`, if any.
pub async fn load(account: &Account) -> Result<Option<String>, KeychainError> {
    let key = account.key();
    blocking(
        move || match keyring::Entry::new(SERVICE, &key)?.get_password() {
            Ok(token) => Ok(Some(token)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e),
        },
    )
    .await
}

/// Keeps `token` for `account` (replacing an older one).
pub async fn save(account: &Account, token: &str) -> Result<(), KeychainError> {
    let (key, token) = (account.key(), token.to_owned());
    blocking(move || keyring::Entry::new(SERVICE, &key)?.set_password(&token)).await
}

/// Forgets the token of `account` (none kept is fine).
pub async fn forget(account: &Account) -> Result<(), KeychainError> {
    let key = account.key();
    blocking(
        move || match keyring::Entry::new(SERVICE, &key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e),
        },
    )
    .await
}
