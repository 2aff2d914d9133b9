//! Performs the engine's effects in the desktop shell.

use switchboard_client::engine::{ConnectionStatus, Effect, Engine, UiEvent};
use switchboard_client::EffectSink;
use switchboard_hub::allocator::FreeMemoryRelease;
use switchboard_hub::clock::{Clock, SystemClock};
use tauri::{AppHandle, Manager};

use crate::events::{emit, UiEvents};
use crate::models::ShellEvent;
use crate::notify::NotifyCommand;
use crate::sound::{Sound, SoundCommand};

/// The managed sender to the OS notification adapter.
pub struct Notifier(pub tokio::sync::mpsc::UnboundedSender<NotifyCommand>);

/// The desktop's effect adapter.
pub struct DesktopSink {
    app: AppHandle,
    /// Which session this sink serves (`Shell`'s count), so that a late
    /// refusal from an ended session cannot end the next one.
    session: u64,
    /// Freed heap pages go back to the OS after a burst of the engine's
    /// work, checked at most once a minute (as in the hub:
    /// `allocator.rs`). Driven by effects, so an idle app never wakes
    /// for it.
    memory_release: FreeMemoryRelease,
}

impl DesktopSink {
    /// An adapter for this app, serving session number `session`.
    pub fn new(app: AppHandle, session: u64) -> Self {
        DesktopSink {
            app,
            session,
            memory_release: FreeMemoryRelease::default(),
        }
    }
}

/// The main window's label (from `tauri.conf.json`).
pub const MAIN_LABEL: &str = "main";

/// Brings the main window forward.
pub fn show_main_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN_LABEL) {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// Tells the notifier the main window may have gone out of sight (hidden,
/// minimised, or it lost focus), so that alerts only its in-app alert
/// showed move to the alert window at once. Told again half a second
/// later: a minimise's focus-out can come before the window manager has
/// iconified the window, and the check then still sees it in view.
pub fn main_window_sight_changed(app: &AppHandle) {
    fn tell(app: &AppHandle) {
        if let Some(n) = app.try_state::<Notifier>() {
            let _ = n.0.send(NotifyCommand::WindowSightChanged);
        }
    }
    tell(app);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        tell(&app);
    });
}

/// The window title, with the count of unread chats when there is one.
fn title(unread: u32) -> String {
    if unread == 0 {
        "Switchboard".to_owned()
    } else {
        format!("Switchboard ({unread})")
    }
}

/// Withdraws what a session raised on the desktop, after it ended: stops
/// the ring, closes its notifications and alert window, and takes the
/// unread count out of the title and off the launcher icon.
pub fn withdraw_alerts(app: &AppHandle) {
    withdraw_alerts_then(app, None);
}

/// Before the app quits: what is on the desktop is withdrawn, as at a
/// sign-out, and the notifier is given a moment to close it. Left, the
/// alerts (critical, never expiring) stayed on screen after the app had
/// gone, with buttons nothing listened to; the session itself is kept,
/// and a restart raises its offers again.
pub async fn withdraw_alerts_before_quit(app: &AppHandle) {
    let (done, closed) = tokio::sync::oneshot::channel();
    withdraw_alerts_then(app, Some(done));
    if tokio::time::timeout(QUIT_PATIENCE, closed).await.is_err() {
        tracing::info!("the notification service did not close the alerts in time");
    }
}

/// How long quitting waits for the notifications to close.
const QUIT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

fn withdraw_alerts_then(app: &AppHandle, done: Option<tokio::sync::oneshot::Sender<()>>) {
    // The session's tray lines ("Accept … from …", the unread count): an
    // effect that rebuilt them while the session was closing would leave
    // them behind.
    crate::tray::show_menu(app, None);
    if let Some(s) = app.try_state::<Sound>() {
        s.send(SoundCommand::StopRing);
    }
    if let Some(n) = app.try_state::<Notifier>() {
        let _ = n.0.send(NotifyCommand::CloseAll { done });
    }
    show_unread(app, 0);
}

/// The count of unread chats where the agent sees it outside the page:
/// the window title and the dock or launcher icon (the tray's dot follows
/// the tray menu).
fn show_unread(app: &AppHandle, unread: u32) {
    if let Some(w) = app.get_webview_window(MAIN_LABEL) {
        let _ = w.set_title(&title(unread));
    }
    if let Some(b) = app.try_state::<crate::launcher_badge::LauncherBadge>() {
        b.show(app, unread);
    }
}

impl DesktopSink {
    fn notify(&self, cmd: NotifyCommand) {
        if let Some(n) = self.app.try_state::<Notifier>() {
            let _ = n.0.send(cmd);
        }
    }
}

impl DesktopSink {
    fn sound(&self, cmd: SoundCommand) {
        if let Some(s) = self.app.try_state::<Sound>() {
            s.send(cmd);
        }
    }
}

/// The ring with the agent's current tone and volume.
fn ring(engine: &Engine) -> SoundCommand {
    let s = &engine.state().settings;
    SoundCommand::Ring {
        tone: s.tone,
        volume: s.volume,
    }
}

impl EffectSink for DesktopSink {
    fn perform(&mut self, effect: Effect, engine: &Engine) {
        // A session superseded before it was installed (a resume the agent
        // chose "Sign in instead" over, whose runtime started after all)
        // raises nothing: it is ended as soon as it is found, and what it
        // raised would stay (a ring looping for good, notifications and
        // tray items for offers nobody can answer, a count in the title).
        let superseded = self
            .app
            .try_state::<crate::shell::Shell>()
            .is_some_and(|shell| !shell.is_newest(self.session));
        if superseded {
            tracing::debug!(
                session = self.session,
                "effect of a superseded session dropped"
            );
            return;
        }
        self.memory_release.after_work(SystemClock.now());
        // A new volume or tone while ringing: ring on with it (the engine
        // only says start and stop).
        if matches!(effect, Effect::Ui(UiEvent::SettingsChanged)) && engine.ringing() {
            self.sound(ring(engine));
        }
        if let Effect::Ui(UiEvent::Connection {
            status: ConnectionStatus::SignedOut,
        }) = &effect
        {
            // The hub refused the token (expired, revoked, signed out
            // elsewhere): end the session and show the sign-in form. On
            // its own task: ending it waits for the runtime calling us.
            let (app, session) = (self.app.clone(), self.session);
            tauri::async_runtime::spawn(async move {
                app.state::<crate::shell::Shell>()
                    .session_refused(&app, session)
                    .await;
            });
        }
        match effect {
            Effect::Ui(event) => {
                if matches!(event, UiEvent::SettingsChanged) {
                    crate::tray::set_theme(&self.app, Some(engine.state().settings.theme), None);
                }
                if let Some(ui) = self.app.try_state::<UiEvents>() {
                    ui.engine(event);
                }
            }
            Effect::FocusWindow(key) => {
                show_main_window(&self.app);
                emit(
                    &self.app,
                    ShellEvent::Focus {
                        target: key.map(Into::into),
                    },
                );
            }
            Effect::Badge(n) => show_unread(&self.app, n),
            Effect::Notify(n) => self.notify(NotifyCommand::Show(n)),
            Effect::CloseNotification(k) => self.notify(NotifyCommand::Close(k)),
            Effect::StartRing => self.sound(ring(engine)),
            Effect::StopRing => self.sound(SoundCommand::StopRing),
            Effect::Chime => self.sound(SoundCommand::Chime {
                volume: engine.state().settings.volume,
            }),
            Effect::Tray(menu) => {
                crate::tray::set_theme(&self.app, Some(engine.state().settings.theme), None);
                crate::tray::show_menu(&self.app, Some(menu));
            }
            Effect::StartAtLogin(on) => {
                if let Err(e) = crate::autostart::set(&self.app, on) {
                    tracing::warn!(error = %e, "could not change start at login");
                    let what = if on { "turn on" } else { "turn off" };
                    emit(
                        &self.app,
                        ShellEvent::StartAtLoginFailed {
                            message: format!("Could not {what} start at login: {e}"),
                        },
                    );
                    if on {
                        // The setting said on while nothing starts the app:
                        // the engine turns it off (that setting alone).
                        let app = self.app.clone();
                        tauri::async_runtime::spawn(async move {
                            app.state::<crate::shell::Shell>()
                                .start_at_login_failed()
                                .await;
                        });
                    }
                }
            }
            Effect::Send(_) | Effect::Store(_) => {}
        }
    }
}
