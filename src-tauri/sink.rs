//! Performs the engine's effects in the desktop shell.

use switchboard_client::engine::{Effect, Engine};
use switchboard_client::EffectSink;
use tauri::{AppHandle, Manager};

use crate::events::emit;
use crate::models::ShellEvent;
use crate::notify::NotifyCommand;

/// The managed sender to the OS notification adapter.
pub struct Notifier(pub tokio::sync::mpsc::UnboundedSender<NotifyCommand>);

/// The desktop's effect adapter.
pub struct DesktopSink {
    app: AppHandle,
}

impl DesktopSink {
    /// An adapter for this app.
    pub fn new(app: AppHandle) -> Self {
        DesktopSink { app }
    }
}

/// Brings the main window forward.
pub fn show_main_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

impl DesktopSink {
    fn notify(&self, cmd: NotifyCommand) {
        if let Some(n) = self.app.try_state::<Notifier>() {
            let _ = n.0.send(cmd);
        }
    }
}

impl EffectSink for DesktopSink {
    fn perform(&mut self, effect: Effect, _engine: &Engine) {
        match effect {
            Effect::Ui(event) => emit(&self.app, ShellEvent::Ui { event }),
            Effect::FocusWindow(key) => {
                show_main_window(&self.app);
                emit(
                    &self.app,
                    ShellEvent::Focus {
                        target: key.map(Into::into),
                    },
                );
            }
            Effect::Badge(n) => {
                if let Some(w) = self.app.get_webview_window("main") {
                    let title = if n == 0 {
                        "Switchboard".to_owned()
                    } else {
                        format!("Switchboard ({n})")
                    };
                    let _ = w.set_title(&title);
                }
            }
            Effect::Notify(n) => self.notify(NotifyCommand::Show(n)),
            Effect::CloseNotification(k) => self.notify(NotifyCommand::Close(k)),
            // Sound and the tray's live menu come with the rest of the
            // native integration; the in-app alert carries offers meanwhile.
            Effect::StartRing | Effect::StopRing | Effect::Chime | Effect::Tray(_) => {
                tracing::debug!(?effect, "native effect not wired yet")
            }
            Effect::StartAtLogin(on) => {
                if let Err(e) = crate::autostart::set(&self.app, on) {
                    tracing::warn!(error = %e, "could not change start at login");
                }
            }
            Effect::Send(_) | Effect::Store(_) => {}
        }
    }
}
