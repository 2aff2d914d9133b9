//! Signing in: log in over REST, open the per-account cache, start the
//! runtime. One call for the desktop shell and the CLI.

use std::path::{Path, PathBuf};
use std::time::Duration;

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
    let safe = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    let host = endpoint
        .http_url
        .split("://")
        .nth(1)
        .unwrap_or(&endpoint.http_url);
    data_dir
        .join("accounts")
        .join(safe(host))
        .join(safe(username))
        .join("cache.db")
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
    let cache = account_cache(data_dir, &endpoint, username);
    let (handle, task, recovered) =
        start(&endpoint, &login.token, cache, client_name, sink).await?;
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
    let cache = account_cache(data_dir, &endpoint, username);
    let (handle, task, recovered) = start(&endpoint, token, cache, client_name, sink).await?;
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
    client_name: &str,
    sink: impl EffectSink,
) -> Result<(ClientHandle, tokio::task::JoinHandle<()>, Option<Recovered>), ClientError> {
    let mut options = ClientOptions::new(endpoint.clone(), token.to_owned(), cache);
    options.client_name = client_name.to_owned();
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
}
