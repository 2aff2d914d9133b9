//! Bodies of the hub's REST API (`/api/v1/...`). Errors are
//! [`ErrorBody`](crate::ErrorBody) with an HTTP status that matches the
//! [`ErrorCode`](crate::ErrorCode).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    AgentId, AgentProfile, Channel, ConversationId, DetailField, Millis, NotificationTemplate,
    Presence, Role, Scenario,
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
    /// Open conversations owned.
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
