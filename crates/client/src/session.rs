//! Signing in: log in over REST, open the per-account cache, start the
//! runtime. One call for the desktop shell and the CLI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use switchboard_protocol::{AgentProfile, ErrorCode};

use crate::error::ClientError;
use crate::runtime::{spawn, ClientHandle, ClientOptions, EffectSink, HubEndpoint};
use crate::store::Recovered;

/// A signed-in, running client.
pub struct Session {
    /// Who.
    pub profile: AgentProfile,
    /// Talk to the runtime.
    pub handle: ClientHandle,
    /// The runtime task.
    pub task: tokio::task::JoinHandle<()>,
    /// Set when the cache had to be rebuilt.
    pub recovered: Option<Recovered>,
    /// The hub, for REST look-ups (Customer 360, team directory).
    pub endpoint: HubEndpoint,
    /// The session's bearer token, for those look-ups.
    pub token: String,
}

/// The cache of one account on one hub, so that two users (or two hubs) on
/// one machine never share state.
pub fn account_cache(data_dir: &Path, endpoint: &HubEndpoint, username: &str) -> PathBuf {
    data_dir
        .join("accounts")
        .join(safe_name(hub_host(endpoint)))
        .join(user_dir(username))
        .join("cache.db")
}

/// The hub's `host:port`.
fn hub_host(endpoint: &HubEndpoint) -> &str {
    endpoint
        .http_url
        .split("://")
        .nth(1)
        .unwrap_or(&endpoint.http_url)
}

/// `s` with everything but ASCII letters, digits, `.` and `-` made `_`.
fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A user's folder: the name itself when it is lower-case ASCII letters,
/// digits, `.`, `-` and `_` (most names, and the folders of earlier
/// versions); otherwise its safe characters and a hash of the exact name.
/// Before, "müller" and "möller" (or "иван" and "петр") were both `m_ller`
/// or `____`, and "Ada" and "ada" one folder on macOS and Windows: two
/// users on one machine read each other's cache.
fn user_dir(username: &str) -> String {
    let plain = !username.is_empty()
        && !username.starts_with('.')
        && username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if plain {
        return username.to_owned();
    }
    let digest = Sha256::digest(username.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}~{hash}", safe_name(username))
}

/// Where earlier versions kept `username`'s cache, when that differs.
fn legacy_account_cache(
    data_dir: &Path,
    endpoint: &HubEndpoint,
    username: &str,
) -> Option<PathBuf> {
    let old = data_dir
        .join("accounts")
        .join(safe_name(hub_host(endpoint)))
        .join(safe_name(username))
        .join("cache.db");
    (old != account_cache(data_dir, endpoint, username)).then_some(old)
}

/// The account's cache, moving one an earlier version kept under the old
/// folder name to the new one first (unsent replies and drafts are in it),
/// if it is this user's: a folder two names shared holds the other's cache
/// just as well, which stays where it is for its owner.
async fn cache_for(data_dir: &Path, endpoint: &HubEndpoint, username: &str) -> PathBuf {
    let cache = account_cache(data_dir, endpoint, username);
    if let Some(old) = legacy_account_cache(data_dir, endpoint, username) {
        if old.exists() && !cache.exists() && cached_user(&old).await.as_deref() == Some(username) {
            let moved = cache
                .parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| std::fs::rename(&old, &cache));
            for ext in ["db-wal", "db-shm"] {
                let side = old.with_extension(ext);
                if moved.is_ok() && side.exists() {
                    let _ = std::fs::rename(&side, cache.with_extension(ext));
                }
            }
            if let Err(e) = moved {
                tracing::warn!(error = %e, from = %old.display(), "could not move the cache to its new folder");
            }
        }
    }
    cache
}

/// The user name of the profile a cache holds, if it can be read.
async fn cached_user(path: &Path) -> Option<String> {
    let (store, recovered) = crate::store::Store::open(path).await.ok()?;
    let user = match recovered {
        Some(_) => None,
        None => store.load().await.ok()?.state.profile.map(|p| p.username),
    };
    store.close().await;
    user
}

/// How long resuming waits for the hub to say who a token is for before
/// it goes on with the cached profile (a login start often comes before
/// the network).
pub const RESUME_CHECK: Duration = Duration::from_secs(5);

/// Logs in and starts the client.
pub async fn sign_in(
    endpoint: HubEndpoint,
    username: &str,
    password: &str,
    data_dir: &Path,
    client_name: &str,
    sink: impl EffectSink,
) -> Result<Session, ClientError> {
    let login = endpoint.login(username, password).await?;
    let cache = cache_for(data_dir, &endpoint, username).await;
    let (handle, task, recovered) =
        match start(&endpoint, &login.token, cache, username, client_name, sink).await {
            Ok(started) => started,
            Err(e) => {
                // Not left valid with nothing using it (a cache that could
                // not be opened): best effort, the error is the start's.
                let _ = endpoint.logout(&login.token).await;
                return Err(e);
            }
        };
    Ok(Session {
        profile: login.agent,
        handle,
        task,
        recovered,
        endpoint,
        token: login.token,
    })
}

/// Starts the client with the token of an earlier sign-in (kept in the
/// OS keychain by the desktop shell), without asking for the password.
///
/// The hub is asked who the token is for (`GET /api/v1/me`). If it
/// refuses it as unauthorized, this is [`ClientError::Refused`] and nothing
/// is started. If it cannot be reached within [`RESUME_CHECK`], or answers
/// with another error (restarting, overloaded), the profile cached with the
/// account is used and the runtime connects when it can; a token the hub
/// refuses then ends in `ConnectionStatus::SignedOut`, as it does for a
/// token revoked mid-session. With neither, this is the network error.
pub async fn resume(
    endpoint: HubEndpoint,
    username: &str,
    token: &str,
    data_dir: &Path,
    client_name: &str,
    sink: impl EffectSink,
) -> Result<Session, ClientError> {
    let asked = match tokio::time::timeout(RESUME_CHECK, endpoint.me(token)).await {
        Ok(answer) => answer,
        Err(_) => Err(ClientError::Network(
            "the hub did not answer in time".into(),
        )),
    };
    let profile = match asked {
        // Another account's token (a keychain entry written for someone
        // else): its cache is not this account's to open.
        Ok(profile) if profile.username != username => {
            return Err(ClientError::Refused(switchboard_protocol::ErrorBody::new(
                ErrorCode::Unauthorized,
                format!(
                    "the kept token is {:?}'s, not {username:?}'s",
                    profile.username
                ),
            )))
        }
        Ok(profile) => Some(profile),
        Err(ClientError::Refused(e)) if e.code == ErrorCode::Unauthorized => {
            return Err(ClientError::Refused(e))
        }
        // Unreachable, or failing for now (restarting, overloaded): the
        // token may well be good.
        Err(e) => {
            tracing::info!(error = %e, "the hub did not say who the token is for; resuming with the cached profile");
            None
        }
    };
    let cache = cache_for(data_dir, &endpoint, username).await;
    let (handle, task, recovered) =
        start(&endpoint, token, cache, username, client_name, sink).await?;
    let profile = match profile {
        Some(p) => p,
        None => match handle.query(|e| e.state().profile.clone()).await {
            Ok(Some(p)) if p.username == username => p,
            _ => {
                handle.shutdown().await;
                let _ = task.await;
                return Err(ClientError::Network(
                    "the hub is unreachable and no profile is cached for this account".into(),
                ));
            }
        },
    };
    Ok(Session {
        profile,
        handle,
        task,
        recovered,
        endpoint,
        token: token.to_owned(),
    })
}

async fn start(
    endpoint: &HubEndpoint,
    token: &str,
    cache: PathBuf,
    username: &str,
    client_name: &str,
    sink: impl EffectSink,
) -> Result<(ClientHandle, tokio::task::JoinHandle<()>, Option<Recovered>), ClientError> {
    let mut options = ClientOptions::new(endpoint.clone(), token.to_owned(), cache);
    options.client_name = client_name.to_owned();
    options.account = Some(username.to_owned());
    spawn(options, sink).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_are_per_hub_and_user_and_path_safe() {
        let a = account_cache(
            Path::new("/d"),
            &HubEndpoint::new("http://127.0.0.1:8787"),
            "ada",
        );
        let b = account_cache(
            Path::new("/d"),
            &HubEndpoint::new("https://hub.example:443"),
            "../../etc",
        );
        assert_eq!(a, PathBuf::from("/d/accounts/127.0.0.1_8787/ada/cache.db"));
        assert!(b.starts_with("/d/accounts/hub.example_443/"));
        assert!(!b.to_string_lossy().contains("/../"));
    }

    /// Names that made one folder before (non-ASCII letters all became
    /// `_`; case folds on macOS and Windows) make distinct ones now.
    #[test]
    fn names_that_look_alike_get_folders_of_their_own() {
        let hub = HubEndpoint::new("http://127.0.0.1:8787");
        let dir = |u: &str| {
            account_cache(Path::new("/d"), &hub, u)
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default()
        };
        let names = [
            "müller", "möller", "иван", "петр", "Ada", "ada", "ada b", "ada_b", ".",
        ];
        let dirs: std::collections::BTreeSet<String> = names.iter().map(|u| dir(u)).collect();
        assert_eq!(dirs.len(), names.len(), "{dirs:?}");
        assert_eq!(dir("john_doe"), "john_doe", "plain names keep their folder");
        for d in &dirs {
            assert!(!d.contains('/') && !d.contains('\\') && d != "." && d != "..");
        }
    }
}
