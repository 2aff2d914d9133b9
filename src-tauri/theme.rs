//! The OS light/dark preference. On Linux the window toolkit reads the
//! portal only at window creation and WebKitGTK may report light to CSS, so
//! we read `org.freedesktop.appearance color-scheme` from the XDG desktop
//! portal ourselves and watch `SettingChanged`. Elsewhere the UI's
//! `prefers-color-scheme` is reliable and this reports nothing.

use std::sync::Mutex;

use tauri::{AppHandle, Manager};

use crate::events::emit;
use crate::models::ShellEvent;

/// The last system preference seen (`Some(true)` = dark), managed state.
#[derive(Default)]
pub struct SystemTheme(pub Mutex<Option<bool>>);

/// Portal `color-scheme`: 1 prefers dark, 2 prefers light, 0 no preference.
pub fn dark_from_color_scheme(v: u32) -> Option<bool> {
    match v {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    }
}

fn publish(app: &AppHandle, dark: Option<bool>) {
    if let Some(state) = app.try_state::<SystemTheme>() {
        *state.0.lock().unwrap_or_else(|e| e.into_inner()) = dark;
    }
    crate::tray::set_theme(app, None, Some(dark));
    emit(app, ShellEvent::SystemTheme { dark });
}

/// Tells the window toolkit the theme in use, so what it draws (on Linux
/// the title bar: GTK's dark variant, `_GTK_THEME_VARIANT` for the window
/// manager) matches the page. Process-wide on GTK, so the alert window
/// follows too. `None` drops the dark preference (GTK's default; tao
/// cannot restore a preference the user's GTK settings had). False when
/// there is no main window yet.
pub fn set_window_theme(app: &AppHandle, dark: Option<bool>) -> bool {
    let Some(window) = app.get_webview_window(crate::sink::MAIN_LABEL) else {
        return false;
    };
    let theme = dark.map(|dark| {
        if dark {
            tauri::Theme::Dark
        } else {
            tauri::Theme::Light
        }
    });
    match window.set_theme(theme) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "could not set the window theme");
            false
        }
    }
}

/// Starts watching the system theme.
pub fn watch(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        if let Err(e) = platform::watch(&app).await {
            tracing::info!(error = %e, "no D-Bus session; the window follows the toolkit's theme");
        }
    });
}

#[cfg(target_os = "linux")]
mod platform {
    use super::*;
    use futures_util::StreamExt;
    use zbus::zvariant::{OwnedValue, Value};

    #[zbus::proxy(
        interface = "org.freedesktop.portal.Settings",
        default_service = "org.freedesktop.portal.Desktop",
        default_path = "/org/freedesktop/portal/desktop"
    )]
    trait Settings {
        fn read_one(&self, namespace: &str, key: &str) -> zbus::Result<OwnedValue>;
        fn read(&self, namespace: &str, key: &str) -> zbus::Result<OwnedValue>;
        #[zbus(signal)]
        fn setting_changed(
            &self,
            namespace: String,
            key: String,
            value: OwnedValue,
        ) -> zbus::Result<()>;
    }

    /// Unwraps nested variants (the old `Read` wraps the value twice).
    fn as_u32(v: &Value<'_>) -> Option<u32> {
        match v {
            Value::U32(n) => Some(*n),
            Value::Value(inner) => as_u32(inner),
            _ => None,
        }
    }

    const PORTAL: &str = "org.freedesktop.portal.Desktop";

    async fn read(proxy: &SettingsProxy<'_>) -> zbus::Result<Option<bool>> {
        let value = match proxy
            .read_one("org.freedesktop.appearance", "color-scheme")
            .await
        {
            Ok(v) => v,
            Err(_) => {
                proxy
                    .read("org.freedesktop.appearance", "color-scheme")
                    .await?
            }
        };
        Ok(as_u32(&value).and_then(dark_from_color_scheme))
    }

    /// Follows the portal's colour scheme for the app's life: read at
    /// start and whenever a portal takes the bus name (one that starts
    /// after the app, or restarts), and on every `SettingChanged`. A
    /// portal without the key, or none, leaves the toolkit's theme.
    pub async fn watch(app: &AppHandle) -> zbus::Result<()> {
        let conn = zbus::Connection::session().await?;
        let proxy = SettingsProxy::new(&conn).await?;
        let mut changes = proxy.receive_setting_changed().await?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let mut owners = dbus
            .receive_name_owner_changed_with_args(&[(0, PORTAL)])
            .await?;
        match read(&proxy).await {
            Ok(dark) => publish(app, dark),
            Err(e) => {
                tracing::info!(error = %e, "no colour scheme from a desktop portal (yet); the window follows the toolkit's theme")
            }
        }
        loop {
            tokio::select! {
                sig = changes.next() => {
                    let Some(sig) = sig else { return Ok(()) };
                    if let Ok(args) = sig.args() {
                        if args.namespace == "org.freedesktop.appearance" && args.key == "color-scheme" {
                            publish(app, as_u32(&args.value).and_then(dark_from_color_scheme));
                        }
                    }
                }
                sig = owners.next() => {
                    let Some(sig) = sig else { return Ok(()) };
                    if sig.args().is_ok_and(|a| a.new_owner().is_some()) {
                        match read(&proxy).await {
                            Ok(dark) => publish(app, dark),
                            Err(e) => {
                                // Not the last portal's answer: none.
                                tracing::info!(error = %e, "the desktop portal has no colour scheme");
                                publish(app, None);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use super::*;

    pub async fn watch(_app: &AppHandle) -> Result<(), std::io::Error> {
        // Tauri's ThemeChanged reaches the webview's prefers-color-scheme.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn color_scheme_values() {
        assert_eq!(super::dark_from_color_scheme(1), Some(true));
        assert_eq!(super::dark_from_color_scheme(2), Some(false));
        assert_eq!(super::dark_from_color_scheme(0), None);
        assert_eq!(super::dark_from_color_scheme(7), None);
    }
}
