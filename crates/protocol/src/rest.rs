//! Bodies of the hub's REST API (`/api/v1/...`). Errors are
//! [`ErrorBody`](crate::ErrorBody) with an HTTP status that matches the
//! [`ErrorCode`](crate::ErrorCode).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    AccountId, AgentId, AgentProfile, CaseId, Channel, ContactId, ConversationId,
    ConversationSummary, DetailField, Millis, NotificationTemplate, Presence, Role, Scenario,
};

/// `POST /api/v1/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Answer to a successful login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LoginResponse {
    /// Bearer token for REST and the WebSocket `hello`.
    pub token: String,
    /// When the token stops working.
    pub expires_at: Millis,
    /// Who signed in.
    pub agent: AgentProfile,
}

/// `POST /api/v1/ingress/messages`: a customer message from a channel
/// connector. Creates a conversation when `thread` names no open one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IngressMessage {
    /// Channel it arrived on.
    pub channel: Channel,
    /// The connector's thread id (phone number, chat session id, ...);
    /// messages with the same thread join the same open conversation.
    pub thread: String,
    /// Customer's name.
    pub customer_name: String,
    /// Customer's phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Customer's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Pre-chat comment (used when the conversation is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Queue to route to; by default the first queue serving the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Scenario; by default the channel's incoming scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<Scenario>,
    /// The message text (may be empty for a call or a case).
    #[serde(default)]
    pub text: String,
    /// For a bot escalation: the bot conversation so far, oldest first.
    /// Stored as system messages and shown in the alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<String>,
    /// The case this conversation is about, if the connector knows it (the
    /// conversation's assigned case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<CaseId>,
    /// The connector's id for this message (at most 256 bytes). A message
    /// posted again with the same channel, thread and id (a retry after a
    /// lost response) is not stored or delivered twice: the hub answers as
    /// it did the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// Answer to an ingress message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IngressResponse {
    /// The conversation the message joined or created.
    pub conversation_id: ConversationId,
    /// Whether the conversation was created by this message.
    pub created: bool,
}

/// `POST /api/v1/agents/{id}/presence` (supervisor): reset an agent's
/// presence, e.g. after a missed offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PresenceRequest {
    /// New presence (not `inactive`).
    pub presence: Presence,
}

/// What a presence reset set (`POST /agents/{id}/presence/reset`): the
/// presence the hub's own change replaced, or Available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PresenceReset {
    /// The agent's presence now.
    pub presence: Presence,
}

/// An agent as the admin API shows and accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentSpec {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Password (write-only; never returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Role.
    pub role: Role,
    /// Team name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Work items the agent can hold at once (routing capacity).
    #[serde(default = "default_capacity")]
    pub capacity: u32,
}

fn default_capacity() -> u32 {
    10
}

/// An agent as listed by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentStatus {
    /// Profile.
    pub profile: AgentProfile,
    /// Current presence.
    pub presence: Presence,
    /// Whether a client is connected.
    pub connected: bool,
    /// Open sessions: conversations owned and those taken part in
    /// (consult, discussion), as the session limit counts them.
    pub open_sessions: u32,
    /// Routing capacity.
    pub capacity: u32,
}

/// A queue (workstream) as the admin API shows and accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueueSpec {
    /// Unique name.
    pub name: String,
    /// Team whose members receive its work.
    pub team: String,
    /// Channels it serves.
    pub channels: Vec<Channel>,
    /// Presences that can receive its work.
    pub allowed_presences: Vec<Presence>,
    /// Notification template per scenario; missing scenarios use defaults.
    #[serde(default)]
    pub templates: std::collections::BTreeMap<Scenario, NotificationTemplate>,
    /// Team-owned: a new conversation is not routed to one agent; every
    /// team member is notified of its messages until one accepts it.
    #[serde(default)]
    pub team_owned: bool,
    /// Ask teammates "Assign to me?" when the owner has not answered the
    /// customer within this many seconds (none: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_secs: Option<u32>,
}

/// `POST /api/v1/admin/agents/{id}/revoke`: revoke every token of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RevokeResponse {
    /// The agent.
    pub agent_id: AgentId,
    /// How many tokens were revoked.
    pub revoked: u32,
}

/// Default details shown for a scenario.
pub fn default_details() -> Vec<DetailField> {
    vec![
        DetailField::CustomerName,
        DetailField::Comment,
        DetailField::WaitTime,
    ]
}

/// An account (company) as stored in the hub.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Account {
    /// Id.
    pub id: AccountId,
    /// Name.
    pub name: String,
    /// Main phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Street address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A contact (customer record) with the name of its account.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Contact {
    /// Id.
    pub id: ContactId,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone, as entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Street address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    /// The account's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
}

/// A case (service request).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CaseRecord {
    /// Id.
    pub id: CaseId,
    /// Title.
    pub title: String,
    /// Still open.
    pub open: bool,
    /// The contact it belongs to.
    pub contact_id: ContactId,
    /// When it was opened.
    pub created_at: Millis,
}

/// `GET /api/v1/records/contacts/{id}`: everything an agent sees in the
/// Customer 360 panel.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Customer360 {
    /// The contact.
    pub contact: Contact,
    /// Its account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// Open cases, newest first.
    pub open_cases: Vec<CaseRecord>,
    /// Earlier conversations linked to the contact, newest first.
    pub earlier_conversations: Vec<ConversationSummary>,
}

/// `GET /api/v1/records/search`: every given field must match (a
/// case-insensitive prefix; phone numbers are compared normalised; the
/// case id exactly). At least one field is required.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordSearch {
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Account name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// Address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Case id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub case_id: Option<i64>,
}

impl RecordSearch {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        [
            &self.first_name,
            &self.last_name,
            &self.account_name,
            &self.address,
            &self.city,
            &self.state,
            &self.phone,
            &self.email,
        ]
        .iter()
        .all(|f| f.as_deref().is_none_or(|v| v.trim().is_empty()))
            && self.case_id.is_none()
    }
}

/// `POST /api/v1/records/contacts`: quick create of a contact.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NewContact {
    /// First name.
    pub first_name: String,
    /// Last name (required).
    pub last_name: String,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Street address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
}

/// `POST /api/v1/records/accounts`: quick create of an account.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NewAccount {
    /// Name (required).
    pub name: String,
    /// Main phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Street address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `POST /api/v1/conversations/{id}/link`: link the conversation to a
/// record and optionally a case. Choosing a case other than the assigned
/// one is refused with `conflict` unless `confirm_other_case` is set.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LinkRequest {
    /// The contact.
    pub contact_id: ContactId,
    /// The case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<CaseId>,
    /// The agent confirmed linking to a case other than the assigned one.
    #[serde(default)]
    pub confirm_other_case: bool,
}

/// One of `GET /api/v1/team/waiting` (any agent): a team-owned
/// conversation of the agent's team that nobody owns yet, with what its
/// customer last wrote. Any teammate takes it with `take_team_chat`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WaitingTeamChat {
    /// The conversation.
    pub conversation: ConversationSummary,
    /// The customer's newest message (first 200 characters; untrusted text).
    pub preview: String,
    /// Customer messages so far.
    pub messages: u32,
}

/// `GET /api/v1/team` (any agent): the people and queues an agent can
/// transfer to, escalate to, or ask.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeamDirectory {
    /// The agent's teammates (the agent excluded).
    pub agents: Vec<TeamMember>,
    /// Every queue by name.
    pub queues: Vec<String>,
}

/// A teammate in the [`TeamDirectory`].
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeamMember {
    /// Id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// Role (escalations go to supervisors).
    pub role: Role,
    /// Presence.
    pub presence: Presence,
    /// Whether a client is connected.
    pub connected: bool,
    /// What Reset presence would set, while the hub's own change (a missed
    /// or rejected offer, the session limit) is in effect; `null` when the
    /// presence is the teammate's own choice. Absent from older hubs.
    #[serde(default)]
    pub reset_to: Option<Presence>,
}

/// Reduces a phone number to its digits (a leading `+` kept), so that
/// `+1 (555) 010-2000` and `+15550102000` match. `00` is read as `+`.
pub fn normalize_phone(raw: &str) -> String {
    let trimmed = raw.trim();
    let mut out = String::with_capacity(trimmed.len());
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if trimmed.starts_with('+') {
        out.push('+');
        out.push_str(&digits);
    } else if let Some(rest) = digits.strip_prefix("00") {
        out.push('+');
        out.push_str(rest);
    } else {
        out.push_str(&digits);
    }
    out
}
