//! Tauri commands: thin adapters. Each takes the managed [`Shell`], calls
//! one operation, and returns `Result<_, IpcError>`.

use switchboard_client::view::{AppView, ConversationDetail};
use switchboard_client::AgentAction;
use switchboard_protocol::{AgentProfile, ConversationId};
use tauri::{AppHandle, State};

use crate::error::IpcError;
use crate::models::{LastLogin, SignInRequest};
use crate::shell::Shell;
use crate::theme::SystemTheme;

/// The main window's state.
#[tauri::command]
pub async fn app_view(shell: State<'_, Shell>) -> Result<AppView, IpcError> {
    shell.app_view().await
}

/// One conversation with history and draft.
#[tauri::command]
pub async fn conversation(
    shell: State<'_, Shell>,
    id: i64,
) -> Result<ConversationDetail, IpcError> {
    shell.conversation(ConversationId(id)).await
}

/// Defaults for the sign-in form.
#[tauri::command]
pub async fn last_login(shell: State<'_, Shell>) -> Result<LastLogin, IpcError> {
    Ok(shell.last_login())
}

/// Signs in to a hub.
#[tauri::command]
pub async fn sign_in(
    app: AppHandle,
    shell: State<'_, Shell>,
    request: SignInRequest,
) -> Result<AgentProfile, IpcError> {
    shell.sign_in(&app, request).await
}

/// Starts the embedded demo hub and signs in to it.
#[tauri::command]
pub async fn start_demo(app: AppHandle, shell: State<'_, Shell>) -> Result<AgentProfile, IpcError> {
    shell.start_demo(&app).await
}

/// Signs out.
#[tauri::command]
pub async fn sign_out(app: AppHandle, shell: State<'_, Shell>) -> Result<(), IpcError> {
    shell.sign_out(&app).await;
    Ok(())
}

/// Any agent action (accept, reject, send, presence, drafts, settings...).
#[tauri::command]
pub async fn act(shell: State<'_, Shell>, action: AgentAction) -> Result<(), IpcError> {
    shell.act(action).await
}

/// The operating system's light/dark preference, when known.
#[tauri::command]
pub async fn system_theme(theme: State<'_, SystemTheme>) -> Result<Option<bool>, IpcError> {
    Ok(*theme.0.lock().unwrap_or_else(|e| e.into_inner()))
}
