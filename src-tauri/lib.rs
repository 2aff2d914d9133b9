//! Switchboard desktop shell (Tauri 2). Thin adapters only: commands call
//! one [`shell::Shell`] operation each, the engine's effects are performed
//! by [`sink::DesktopSink`], and every event reaches the UI through
//! [`events`] (`emit`, or `UiEvents` folding view-only engine events).
//! All behaviour lives in `switchboard-client`.

pub mod alert_window;
pub mod autostart;
pub mod bindings;
pub mod commands;
pub mod error;
pub mod events;
pub mod keychain;
pub mod launcher_badge;
pub mod models;
pub mod notify;
pub mod shell;
pub mod shortcut;
mod signal_stream;
pub mod sink;
pub mod sound;
pub mod theme;
pub mod tray;
pub mod webview_engine;

use tauri::{Manager, WindowEvent};
use tauri_plugin_window_state::StateFlags;

use crate::shell::Shell;

pub use shortcut::ACCEPT_SHORTCUT;

/// Window focus changes, forwarded to the engine by one task in the order
/// they happened (a task per event could overtake another and leave the
/// engine believing the window unfocused: a ring in focus).
struct FocusEvents(tokio::sync::mpsc::UnboundedSender<bool>);

/// Runs the desktop app. The binary sets up the tracing subscriber first,
/// so what the engine and allocator set-up log before this is seen.
pub fn run() -> anyhow::Result<()> {
    let data_dir = switchboard_client::paths::data_dir();
    let demo = std::env::args().any(|a| a == "--demo");
    // A login start stays in the tray: the window is created hidden
    // (tauri.conf.json) and shown here unless started with --hidden.
    let hidden = std::env::args().any(|a| a == autostart::HIDDEN_ARG);
    tracing::info!(data_dir = %data_dir.display(), "starting");
    let notifications_file = switchboard_client::paths::shown_notifications_file(&data_dir);
    tauri::Builder::default()
        // A second launch focuses the first window instead.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            sink::show_main_window(app);
        }))
        // Remember size and position, but never force the window visible:
        // a start at login stays in the tray.
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_state_flags(StateFlags::all() - StateFlags::VISIBLE)
                .build(),
        )
        .plugin(platform_plugins())
        .plugin(shortcut::plugin())
        .manage(Shell::new(data_dir))
        .manage(theme::SystemTheme::default())
        .invoke_handler(tauri::generate_handler![
            commands::view_update,
            commands::last_login,
            commands::sign_in,
            commands::start_demo,
            commands::sign_out,
            commands::cancel_resume,
            commands::act,
            commands::system_theme,
            commands::search_records,
            commands::customer_360,
            commands::earlier_messages,
            commands::create_contact,
            commands::create_account,
            commands::link_record,
            commands::team_directory,
            commands::reset_presence,
            commands::team_conversations,
            commands::waiting_team_chats,
        ])
        .setup(move |app| {
            // Engine events to the UI, view-only ones folded (events.rs).
            app.manage(events::UiEvents::start(app.handle().clone()));
            // OS notifications: the engine's Notify/Close effects go to the
            // notifier; button clicks come back as engine inputs.
            let (clicked_tx, mut clicked_rx) = tokio::sync::mpsc::unbounded_channel();
            let fallback = alert_window::spawn(app.handle().clone());
            let handle = app.handle().clone();
            // Hidden to the tray, or minimised (a desktop with no tray host
            // minimises on close): either way the in-app alert is unseen.
            let window_out_of_sight: notify::WindowOutOfSight = Box::new(move || {
                handle
                    .get_webview_window(sink::MAIN_LABEL)
                    .is_some_and(|w| {
                        !w.is_visible().unwrap_or(true) || w.is_minimized().unwrap_or(false)
                    })
            });
            app.manage(sink::Notifier(notify::spawn(
                clicked_tx,
                fallback,
                window_out_of_sight,
                notifications_file.clone(),
            )));
            // Ring and chime on their own thread (no device: visual only).
            app.manage(sound::Sound::spawn());
            // The unread count on the dock or launcher icon.
            app.manage(launcher_badge::LauncherBadge::spawn(
                launcher_badge::desktop_id(&app.package_info().name),
            ));
            let (focus_tx, mut focus_rx) = tokio::sync::mpsc::unbounded_channel();
            app.manage(FocusEvents(focus_tx));
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                while let Some(focused) = focus_rx.recv().await {
                    handle.state::<Shell>().focus(focused).await;
                }
            });
            // Before the theme watch: its first answer reaches the tray and
            // the window theme through this state.
            app.manage(tray::TrayView::default());
            theme::watch(app.handle().clone());
            shortcut::start(app.handle());
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                while let Some((key, action)) = clicked_rx.recv().await {
                    handle
                        .state::<Shell>()
                        .notification_clicked(key, action)
                        .await;
                }
            });
            if demo {
                // `switchboard --demo`: start the embedded demo hub at once.
                let handle = app.handle().clone();
                tauri::async_runtime::spawn(async move {
                    let shell = handle.state::<Shell>();
                    if let Err(e) = shell.start_demo(&handle).await {
                        tracing::error!(error = %e, "demo failed to start");
                    }
                });
            } else {
                // The last account's session, with the token the keychain
                // kept: a restart, crash or login start needs no password.
                let handle = app.handle().clone();
                tauri::async_runtime::spawn(async move {
                    handle.state::<Shell>().resume(&handle).await;
                });
            }
            let tray_ok = tray::create(app.handle());
            if !hidden || !tray_ok {
                sink::show_main_window(app.handle());
            } else {
                // The icon exists whether or not anything shows it: with no
                // tray host (stock GNOME) a login start would leave no
                // icon, no window and no taskbar entry all day.
                let handle = app.handle().clone();
                tauri::async_runtime::spawn(async move {
                    if !tray::tray_host_present().await {
                        tracing::info!("no tray host: the window shows at a login start");
                        sink::show_main_window(&handle);
                    }
                });
            }
            Ok(())
        })
        .on_window_event(|window, event| match event {
            // Only the main window's focus means the agent is looking at
            // the conversation in front (the fallback alert window's does
            // not: reading there would mark messages read unseen).
            WindowEvent::Focused(focused) if window.label() == sink::MAIN_LABEL => {
                if let Some(f) = window.app_handle().try_state::<FocusEvents>() {
                    let _ = f.0.send(*focused);
                }
                if !focused {
                    sink::main_window_sight_changed(window.app_handle());
                }
            }
            // Close to tray (or minimise with no tray host): agents keep
            // receiving offers.
            WindowEvent::CloseRequested { api, .. }
                if window.app_handle().tray_by_id(tray::TRAY_ID).is_some() =>
            {
                api.prevent_close();
                tray::close_requested(window.clone());
            }
            _ => {}
        })
        .run(tauri::generate_context!())?;
    Ok(())
}

/// Plugins only some platforms need.
#[cfg(target_os = "linux")]
fn platform_plugins() -> tauri::plugin::TauriPlugin<tauri::Wry> {
    // Nothing extra on Linux (autostart is written by `autostart.rs`).
    tauri::plugin::Builder::new("switchboard-platform").build()
}

/// Plugins only some platforms need.
#[cfg(not(target_os = "linux"))]
fn platform_plugins() -> tauri::plugin::TauriPlugin<tauri::Wry> {
    tauri_plugin_autostart::init(
        tauri_plugin_autostart::MacosLauncher::LaunchAgent,
        Some(vec![autostart::HIDDEN_ARG]),
    )
}
