//! The one event channel from the shell to the UI. Every event goes
//! through [`emit`]; the name lives here only.

use tauri::{AppHandle, Emitter};

use crate::models::ShellEvent;

/// The event name the UI listens to.
pub const EVENT: &str = "switchboard://event";

/// Sends an event to the UI.
pub fn emit(app: &AppHandle, event: ShellEvent) {
    if let Err(e) = app.emit(EVENT, &event) {
        tracing::warn!(error = %e, "emitting a UI event failed");
    }
}
