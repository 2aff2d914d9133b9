//! A small client of the freedesktop Secret Service API
//! (<https://specifications.freedesktop.org/secret-service/>), async on
//! the app's tokio runtime.
//!
//! Items carry the attributes `service` and `username` (as the `keyring`
//! crate sets them on other platforms) and live in the default collection
//! (the login keyring). Secrets travel in a `plain` session: the session
//! bus is the user's own, and the token is a bearer token the hub can
//! revoke.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, Proxy};

use super::{KeychainError, KEYCHAIN_PATIENCE};

const BUS_NAME: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const DEFAULT_COLLECTION: &str = "/org/freedesktop/secrets/aliases/default";
/// How long an unlock prompt may wait for the agent (a person typing a
/// password, not a service answering).
const PROMPT_PATIENCE: Duration = Duration::from_secs(120);

/// `(session, parameters, value, content type)`: the spec's Secret struct.
type Secret = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);

fn platform(e: zbus::Error) -> KeychainError {
    KeychainError::Platform(e.to_string())
}

/// One D-Bus step, within [`KEYCHAIN_PATIENCE`].
async fn step<T>(
    f: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T, KeychainError> {
    match tokio::time::timeout(KEYCHAIN_PATIENCE, f).await {
        Ok(r) => r.map_err(platform),
        Err(_) => Err(KeychainError::TimedOut),
    }
}

struct Service {
    conn: Connection,
    proxy: Proxy<'static>,
}

impl Service {
    async fn connect() -> Result<Service, KeychainError> {
        let conn = step(Connection::session())
            .await
            .map_err(|e| KeychainError::Unavailable(format!("session bus: {e}")))?;
        let dbus = step(zbus::fdo::DBusProxy::new(&conn)).await?;
        let name = zbus::names::BusName::try_from(BUS_NAME).map_err(|e| platform(e.into()))?;
        // Activatable services (a keyring started on demand) count too.
        let running = step(async { Ok(dbus.name_has_owner(name.clone()).await?) }).await?;
        if !running {
            let activatable = step(async { Ok(dbus.list_activatable_names().await?) }).await?;
            if !activatable.iter().any(|n| n.as_str() == BUS_NAME) {
                return Err(KeychainError::Unavailable(
                    "no Secret Service on the session bus".into(),
                ));
            }
        }
        let proxy = step(Proxy::new(
            &conn,
            BUS_NAME,
            SERVICE_PATH,
            "org.freedesktop.Secret.Service",
        ))
        .await?;
        Ok(Service { conn, proxy })
    }

    async fn object(
        &self,
        path: &str,
        interface: &'static str,
    ) -> Result<Proxy<'static>, KeychainError> {
        let path = ObjectPath::try_from(path.to_owned()).map_err(|e| platform(e.into()))?;
        step(Proxy::new(&self.conn, BUS_NAME, path, interface)).await
    }

    async fn open_session(&self) -> Result<OwnedObjectPath, KeychainError> {
        let (_, session): (OwnedValue, OwnedObjectPath) =
            step(self.proxy.call("OpenSession", &("plain", Value::from("")))).await?;
        Ok(session)
    }

    /// Items of ours with this key, unlocked (the agent is prompted for
    /// locked ones).
    async fn find(&self, service: &str, key: &str) -> Result<Vec<OwnedObjectPath>, KeychainError> {
        let attributes = HashMap::from([("service", service), ("username", key)]);
        let (mut unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) =
            step(self.proxy.call("SearchItems", &(attributes,))).await?;
        if !locked.is_empty() {
            self.unlock(locked.clone()).await?;
            unlocked.extend(locked);
        }
        Ok(unlocked)
    }

    async fn unlock(&self, objects: Vec<OwnedObjectPath>) -> Result<(), KeychainError> {
        let (_, prompt): (Vec<OwnedObjectPath>, OwnedObjectPath) =
            step(self.proxy.call("Unlock", &(objects,))).await?;
        self.complete(prompt).await
    }

    /// Runs a prompt the service asked for ("/" is none) and waits for
    /// the agent's answer.
    async fn complete(&self, prompt: OwnedObjectPath) -> Result<(), KeychainError> {
        if prompt.as_str() == "/" {
            return Ok(());
        }
        let proxy = self
            .object(prompt.as_str(), "org.freedesktop.Secret.Prompt")
            .await?;
        let mut completed = step(proxy.receive_signal("Completed")).await?;
        step(proxy.call_method("Prompt", &("",))).await?;
        let answer = match tokio::time::timeout(PROMPT_PATIENCE, completed.next()).await {
            Ok(answer) => answer.ok_or(KeychainError::Locked)?,
            Err(_) => {
                // Not left on screen: answered after the app gave up, it
                // would unlock, or store a token, behind the app's back
                // (a sign-out meanwhile has forgotten that token).
                if let Err(e) = step(proxy.call_method("Dismiss", &())).await {
                    tracing::debug!(error = %e, "could not dismiss the keychain prompt");
                }
                return Err(KeychainError::TimedOut);
            }
        };
        let (dismissed, _): (bool, OwnedValue) = answer.body().deserialize().map_err(platform)?;
        if dismissed {
            return Err(KeychainError::Locked);
        }
        Ok(())
    }
}

/// The secret kept under `service` / `key`, if any.
pub async fn load(service: &str, key: &str) -> Result<Option<String>, KeychainError> {
    let ss = Service::connect().await?;
    let Some(item) = ss.find(service, key).await?.into_iter().next() else {
        return Ok(None);
    };
    let session = ss.open_session().await?;
    let item = ss
        .object(item.as_str(), "org.freedesktop.Secret.Item")
        .await?;
    let (_, _, value, _): Secret = step(item.call("GetSecret", &(session,))).await?;
    String::from_utf8(value)
        .map(Some)
        .map_err(|_| KeychainError::Platform("the kept secret is not text".into()))
}

/// Keeps `secret` under `service` / `key` in the default collection,
/// replacing an item with the same attributes.
pub async fn save(service: &str, key: &str, secret: &str) -> Result<(), KeychainError> {
    let ss = Service::connect().await?;
    let collection = ss
        .object(DEFAULT_COLLECTION, "org.freedesktop.Secret.Collection")
        .await?;
    let locked: bool = step(collection.get_property("Locked")).await?;
    if locked {
        let path = OwnedObjectPath::try_from(DEFAULT_COLLECTION).map_err(|e| platform(e.into()))?;
        ss.unlock(vec![path]).await?;
    }
    let session = ss.open_session().await?;
    let attributes = HashMap::from([("service", service), ("username", key)]);
    let label = format!("Switchboard session of {key}");
    let properties = HashMap::from([
        ("org.freedesktop.Secret.Item.Label", Value::from(label)),
        (
            "org.freedesktop.Secret.Item.Attributes",
            Value::from(attributes),
        ),
    ]);
    let secret = (
        session,
        Vec::<u8>::new(),
        secret.as_bytes().to_vec(),
        "text/plain",
    );
    let (_, prompt): (OwnedObjectPath, OwnedObjectPath) =
        step(collection.call("CreateItem", &(properties, secret, true))).await?;
    ss.complete(prompt).await
}

/// Deletes every item under `service` / `key` (none is fine).
pub async fn forget(service: &str, key: &str) -> Result<(), KeychainError> {
    let ss = Service::connect().await?;
    for item in ss.find(service, key).await? {
        let item = ss
            .object(item.as_str(), "org.freedesktop.Secret.Item")
            .await?;
        let prompt: OwnedObjectPath = step(item.call("Delete", &())).await?;
        ss.complete(prompt).await?;
    }
    Ok(())
}
