//! Signing in: log in over REST, open the per-account cache, start the
//! runtime. One call for the desktop shell and the CLI.

use std::path::{Path, PathBuf};

use switchboard_protocol::AgentProfile;

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
    let mut options = ClientOptions::new(endpoint.clone(), login.token.clone(), cache);
    options.client_name = client_name.to_owned();
    let (handle, task, recovered) = spawn(options, sink).await?;
    Ok(Session {
        profile: login.agent,
        handle,
        task,
        recovered,
        endpoint,
        token: login.token,
    })
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
