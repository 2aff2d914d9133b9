//! The app's own small always-on-top alert window (adapter), used instead
//! of OS notifications when the notification server has no `actions`
//! capability: an alert the agent cannot answer from the notification
//! would otherwise be easy to miss behind other windows.
//!
//! The window shows the same UI as the in-app alert (Accept / Reject with
//! reason / countdown), driven by the same engine view, so it needs no
//! state of its own beyond which alerts are open: it opens with the first
//! and closes when the last is resolved (window, tray, timeout, taken by
//! another agent — the engine closes them all alike).

use std::collections::HashSet;

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};
use tokio::sync::mpsc;

use crate::notify::FallbackAlert;

/// The window's label (also named in the capability file).
pub const ALERT_LABEL: &str = "alert";

/// Logical size: room for the headline, two detail lines, the countdown
/// and the buttons (longer customer text is clamped by the UI).
const WIDTH: f64 = 400.0;
const HEIGHT: f64 = 300.0;

/// Starts the task that opens and closes the window.
pub fn spawn(app: AppHandle) -> mpsc::UnboundedSender<FallbackAlert> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tauri::async_runtime::spawn(async move {
        let mut open: HashSet<switchboard_client::engine::NotificationKey> = HashSet::new();
        while let Some(cmd) = rx.recv().await {
            match cmd {
                FallbackAlert::Show(key) => {
                    open.insert(key);
                    if let Err(e) = show(&app) {
                        // The main window's in-app alert still carries it.
                        tracing::warn!(error = %e, "alert window could not open");
                    }
                }
                FallbackAlert::Close(key) => {
                    open.remove(&key);
                    if open.is_empty() {
                        if let Some(w) = app.get_webview_window(ALERT_LABEL) {
                            let _ = w.destroy();
                            // Destroying is only asked of the event loop:
                            // until the window has left the registry, a
                            // Show right behind this would find it and
                            // show a window about to vanish (the next
                            // offer seen nowhere). Commands wait meanwhile.
                            for _ in 0..50 {
                                if app.get_webview_window(ALERT_LABEL).is_none() {
                                    break;
                                }
                                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            }
                        }
                    }
                }
            }
        }
    });
    tx
}

fn show(app: &AppHandle) -> tauri::Result<()> {
    if let Some(w) = app.get_webview_window(ALERT_LABEL) {
        return w.show();
    }
    // Top-right of the primary screen, where notifications usually are.
    let (x, y) = match app.primary_monitor() {
        Ok(Some(m)) => {
            let size = m.size().to_logical::<f64>(m.scale_factor());
            ((size.width - WIDTH - 16.0).max(0.0), 16.0)
        }
        _ => (16.0, 16.0),
    };
    // Not focused on creation: an agent typing elsewhere must not have
    // keystrokes land on Accept.
    WebviewWindowBuilder::new(app, ALERT_LABEL, WebviewUrl::App("index.html".into()))
        .title("Switchboard alert")
        .inner_size(WIDTH, HEIGHT)
        .position(x, y)
        .resizable(false)
        .always_on_top(true)
        .visible_on_all_workspaces(true)
        .skip_taskbar(true)
        .focused(false)
        .build()?;
    Ok(())
}
