//! The unread count on the app's dock or launcher icon (adapter), beside
//! the window title and the tray icon's dot: an agent working in another
//! program sees at a glance that customers wrote, as Mattermost's and
//! Rocket.Chat's desktop apps show it. The engine decides the count (its
//! `Badge` effect: chats with unread messages); this only shows it.
//!
//! - Linux: the Unity LauncherEntry signal on the session bus, which
//!   Ubuntu's dock, KDE Plasma's task manager, elementary's dock and Plank
//!   read, naming the app by its desktop entry ([`desktop_id`]). A dock
//!   that starts (or restarts) after the app takes the bus name
//!   [`LAUNCHER_SERVICE`]; the count is sent again then, since a signal
//!   sent before it listened is lost. (Tauri's own `set_badge_count` sends
//!   the same signal once, and never again.) No session bus, or no dock:
//!   nothing shows it, and the title and tray still do.
//! - macOS: the dock tile's badge, through Tauri.
//! - Windows: none. Its taskbar shows an overlay icon, not a count; the
//!   title and the tray carry the count there.

use tokio::sync::watch;

/// The desktop entry the launcher knows the app by: the one the package
/// installs (`packaging/linux/switchboard.desktop` is its template; Tauri's
/// bundler names the file after the product, `Switchboard.desktop`, which
/// is also the window's `WM_CLASS` class, by which docks match windows to
/// entries). Docks compare the id exactly, case included.
pub fn desktop_id(product_name: &str) -> String {
    format!("{product_name}.desktop")
}

/// The bus name a Unity-API launcher owns while it runs.
pub const LAUNCHER_SERVICE: &str = "com.canonical.Unity";

/// The signal's interface.
pub const LAUNCHER_INTERFACE: &str = "com.canonical.Unity.LauncherEntry";

/// Where the signal comes from (any path; launchers match on the app's
/// URI).
const OBJECT_PATH: &str = "/com/canonical/unity/launcherentry/switchboard";

/// The count to show, handed to the task that shows it (managed state).
pub struct LauncherBadge(watch::Sender<u32>);

impl LauncherBadge {
    /// Starts showing counts for the app installed as `desktop_id`
    /// (Linux: the bus task; elsewhere, nothing to start).
    pub fn spawn(desktop_id: String) -> LauncherBadge {
        let (tx, rx) = watch::channel(0);
        #[cfg(target_os = "linux")]
        tauri::async_runtime::spawn(linux::run(rx, format!("application://{desktop_id}")));
        #[cfg(not(target_os = "linux"))]
        drop((rx, desktop_id));
        LauncherBadge(tx)
    }

    /// Shows `unread` chats (0 hides the badge).
    pub fn show(&self, app: &tauri::AppHandle, unread: u32) {
        let changed = self.0.send_if_modified(|shown| {
            let changed = *shown != unread;
            *shown = unread;
            changed
        });
        if changed {
            show_elsewhere(app, unread);
        }
    }
}

/// The Unity API's properties for `unread`: the count, shown only when
/// there is one.
pub fn entry_properties(unread: u32) -> (i64, bool) {
    (i64::from(unread), unread > 0)
}

#[cfg(target_os = "macos")]
fn show_elsewhere(app: &tauri::AppHandle, unread: u32) {
    use tauri::Manager;
    if let Some(w) = app.get_webview_window(crate::sink::MAIN_LABEL) {
        // `Some(0)` would show a "0".
        let count = (unread > 0).then_some(i64::from(unread));
        if let Err(e) = w.set_badge_count(count) {
            tracing::info!(error = %e, "the dock badge could not be set");
        }
    }
}

#[cfg(not(target_os = "macos"))]
fn show_elsewhere(_app: &tauri::AppHandle, _unread: u32) {}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashMap;

    use tokio::sync::watch;
    use zbus::zvariant::Value;

    use super::{entry_properties, LAUNCHER_INTERFACE, LAUNCHER_SERVICE, OBJECT_PATH};

    /// Sends each new count, and the current one again whenever a
    /// launcher takes the bus name.
    pub async fn run(mut counts: watch::Receiver<u32>, app_uri: String) {
        let conn = match zbus::Connection::session().await {
            Ok(c) => c,
            Err(e) => {
                tracing::info!(error = %e, "no session bus: no launcher badge");
                return;
            }
        };
        let mut launchers = match zbus::fdo::DBusProxy::new(&conn).await {
            Ok(d) => d
                .receive_name_owner_changed_with_args(&[(0, LAUNCHER_SERVICE)])
                .await
                .ok(),
            Err(_) => None,
        };
        // Sent at start too: a badge a crashed run left on a dock that
        // outlived it is replaced.
        let mut sent: Option<u32> = None;
        loop {
            let unread = *counts.borrow_and_update();
            if sent != Some(unread) {
                match emit(&conn, &app_uri, unread).await {
                    Ok(()) => sent = Some(unread),
                    Err(e) => tracing::info!(error = %e, "the launcher badge was not sent"),
                }
            }
            tokio::select! {
                changed = counts.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                Some(change) = crate::signal_stream::next_or_never(&mut launchers) => {
                    if change.args().is_ok_and(|a| a.new_owner().is_some()) {
                        tracing::debug!("a launcher appeared: the badge is sent again");
                        sent = None;
                    }
                }
            }
        }
    }

    async fn emit(conn: &zbus::Connection, app_uri: &str, unread: u32) -> zbus::Result<()> {
        let (count, visible) = entry_properties(unread);
        let mut properties: HashMap<&str, Value<'_>> = HashMap::new();
        properties.insert("count", Value::I64(count));
        properties.insert("count-visible", Value::Bool(visible));
        conn.emit_signal(
            None::<zbus::names::BusName<'_>>,
            OBJECT_PATH,
            LAUNCHER_INTERFACE,
            "Update",
            &(app_uri, properties),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_is_named_as_the_bundler_names_it() {
        assert_eq!(desktop_id("Switchboard"), "Switchboard.desktop");
    }

    #[test]
    fn the_count_shows_only_when_a_chat_is_unread() {
        assert_eq!(entry_properties(0), (0, false));
        assert_eq!(entry_properties(3), (3, true));
    }
}
