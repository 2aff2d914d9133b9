//! Tauri commands: thin adapters. Each takes the managed [`Shell`], calls
//! one operation, and returns `Result<_, IpcError>`.

use switchboard_client::view::{Customer360View, EarlierMessages, ViewRead, ViewUpdate};
use switchboard_client::AgentAction;
use switchboard_protocol::rest::{
    Account, Contact, LinkRequest, NewAccount, NewContact, RecordSearch, TeamDirectory,
    WaitingTeamChat,
};
use switchboard_protocol::{
    AgentId, AgentProfile, ContactId, ConversationId, ConversationSummary, MessageId,
};
use tauri::{AppHandle, State};

use crate::error::IpcError;
use crate::models::{LastLogin, SignInRequest};
use crate::shell::Shell;
use crate::theme::SystemTheme;

/// The view, and the conversation in front when it may have changed: what
/// the UI reads after each `view_changed`.
#[tauri::command]
pub async fn view_update(shell: State<'_, Shell>, read: ViewRead) -> Result<ViewUpdate, IpcError> {
    shell.view_update(read).await
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

/// The agent chose to sign in by hand while the kept session was being
/// resumed: that resume must not take over the window later.
#[tauri::command]
pub async fn cancel_resume(app: AppHandle, shell: State<'_, Shell>) -> Result<(), IpcError> {
    shell.cancel_resume(&app).await;
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

/// Customer records matching a search.
#[tauri::command]
pub async fn search_records(
    shell: State<'_, Shell>,
    query: RecordSearch,
) -> Result<Vec<Contact>, IpcError> {
    shell.search_records(query).await
}

/// Customer 360 of a contact.
#[tauri::command]
pub async fn customer_360(shell: State<'_, Shell>, id: i64) -> Result<Customer360View, IpcError> {
    shell.customer_360(ContactId(id)).await
}

/// A page of a conversation's messages from before the oldest shown.
#[tauri::command]
pub async fn earlier_messages(
    shell: State<'_, Shell>,
    conversation_id: i64,
    before: i64,
) -> Result<EarlierMessages, IpcError> {
    shell
        .earlier_messages(ConversationId(conversation_id), MessageId(before))
        .await
}

/// Quick create of a contact.
#[tauri::command]
pub async fn create_contact(
    shell: State<'_, Shell>,
    contact: NewContact,
) -> Result<Contact, IpcError> {
    shell.create_contact(contact).await
}

/// Quick create of an account.
#[tauri::command]
pub async fn create_account(
    shell: State<'_, Shell>,
    account: NewAccount,
) -> Result<Account, IpcError> {
    shell.create_account(account).await
}

/// Links a conversation to a record or case.
#[tauri::command]
pub async fn link_record(
    shell: State<'_, Shell>,
    id: i64,
    link: LinkRequest,
) -> Result<ConversationSummary, IpcError> {
    shell.link_record(ConversationId(id), link).await
}

/// Teammates and queues, for transfer, escalation and requests.
#[tauri::command]
pub async fn team_directory(shell: State<'_, Shell>) -> Result<TeamDirectory, IpcError> {
    shell.team_directory().await
}

/// A supervisor's team's open conversations (waiting ones first), to
/// assign from.
#[tauri::command]
pub async fn team_conversations(
    shell: State<'_, Shell>,
) -> Result<Vec<ConversationSummary>, IpcError> {
    shell.team_conversations().await
}

/// The agent's team's team chats nobody owns yet, to take one.
#[tauri::command]
pub async fn waiting_team_chats(shell: State<'_, Shell>) -> Result<Vec<WaitingTeamChat>, IpcError> {
    shell.waiting_team_chats().await
}

/// A supervisor resets a teammate's presence after the hub changed it.
#[tauri::command]
pub async fn reset_presence(
    shell: State<'_, Shell>,
    agent_id: i64,
) -> Result<switchboard_protocol::Presence, IpcError> {
    shell.reset_presence(AgentId(agent_id)).await
}
