//! Switchboard agent protocol, version 1: the wire types exchanged between an
//! agent's desktop client and the routing hub, and their JSON Schema.
//!
//! Terminology:
//! - **frame**: one WebSocket text message holding one JSON object, tagged by
//!   its `type` field ([`ClientFrame`], [`ServerFrame`]).
//! - **event**: something that happened to one agent ([`AgentEvent`]). Every
//!   event carries a per-agent, strictly increasing [`Seq`]; the client acks
//!   what it has durably stored and resumes from it after a reconnect.
//! - **command**: an agent's request ([`Command`]), wrapped with a
//!   client-chosen [`CommandId`] so that a retry is idempotent.
//! - **offer**: a work item proposed to one agent, with a deadline.
//! - **snapshot**: the agent's whole current state, sent instead of a replay
//!   when the hub cannot (or need not) replay events.
//!
//! This crate does no I/O. `docs/protocol.md` is the prose specification;
//! the committed schemas under `schema/` are generated from these types
//! (`cargo run -p switchboard-protocol --example export-schema`) and a test
//! fails when they drift.

pub mod rest;
mod schema;

pub use schema::{schema_documents, SchemaDocument};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Versions this crate can speak, newest first.
pub const SUPPORTED_VERSIONS: &[u16] = &[1];

/// Largest frame either side accepts, in bytes. Larger frames are refused
/// with close code [`close_code::MESSAGE_TOO_BIG`].
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Longest accepted [`CommandId`], in bytes.
pub const MAX_COMMAND_ID_BYTES: usize = 64;

/// Longest accepted message text, in bytes.
pub const MAX_MESSAGE_TEXT_BYTES: usize = 64 * 1024;

/// Longest note or reason kept (a transfer's or escalation's note, a
/// rejection's or assign request's reason), in bytes: the hub cuts longer
/// ones at a character boundary, and the client cuts them before sending,
/// so that a paste cannot make a frame over [`MAX_FRAME_BYTES`].
pub const MAX_NOTE_BYTES: usize = 500;

/// How many of a conversation's newest messages the hub sends with it (in
/// a snapshot, an assignment), at most: fewer when they must be trimmed to
/// fit a frame ([`MAX_FRAME_BYTES`]), otherwise fewer means all of them.
/// Older ones are read from the history endpoint (`?before=`).
pub const RECENT_MESSAGES_SENT: u32 = 50;

/// WebSocket close codes used by the hub.
pub mod close_code {
    /// RFC 6455: normal closure.
    pub const NORMAL: u16 = 1000;
    /// RFC 6455: the hub is shutting down or restarting.
    pub const GOING_AWAY: u16 = 1001;
    /// RFC 6455: a frame larger than [`crate::MAX_FRAME_BYTES`].
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// RFC 6455: the hub failed (its database, say); try again later.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The first frame was not a valid `hello`, or it did not come in time.
    pub const HELLO_REQUIRED: u16 = 4000;
    /// The token was missing, unknown, expired or revoked.
    pub const UNAUTHORIZED: u16 = 4001;
    /// No protocol version in common.
    pub const UNSUPPORTED_VERSION: u16 = 4002;
    /// No frame arrived within the heartbeat budget.
    pub const HEARTBEAT_TIMEOUT: u16 = 4003;
    /// The token was revoked while connected.
    pub const TOKEN_REVOKED: u16 = 4004;
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
        )]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[serde(transparent)]
        pub struct $name(#[cfg_attr(feature = "ts", ts(type = "number"))] pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An agent (user) of the hub.
    AgentId
);
id_type!(
    /// A conversation (work item).
    ConversationId
);
id_type!(
    /// A message inside a conversation.
    MessageId
);
id_type!(
    /// An offer of a work item to one agent.
    OfferId
);
id_type!(
    /// A contact (customer record) in the hub's customer store.
    ContactId
);
id_type!(
    /// An account (company) in the hub's customer store.
    AccountId
);
id_type!(
    /// A case (service request) in the hub's customer store.
    CaseId
);

/// Per-agent event sequence number. Strictly increasing, starting at 1; 0
/// means "nothing yet".
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(transparent)]
pub struct Seq(#[cfg_attr(feature = "ts", ts(type = "number"))] pub u64);

/// Milliseconds since the Unix epoch (UTC).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(transparent)]
pub struct Millis(#[cfg_attr(feature = "ts", ts(type = "number"))] pub i64);

/// A client-chosen command id (1 to 64 bytes). A command sent again with the
/// same id is not executed twice; the first result is returned.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct CommandId(pub String);

/// The last seq a client durably stored; the hub replays what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResumeCursor {
    /// Last event seq the client has durably stored.
    pub last_seq: Seq,
}

// ---------------------------------------------------------------------------
// Client → hub
// ---------------------------------------------------------------------------

/// A frame sent by the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame on every connection.
    Hello(Hello),
    /// The client has durably stored every event up to `seq`.
    Ack {
        /// Highest stored seq.
        seq: Seq,
    },
    /// An agent command.
    Command(CommandFrame),
    /// Heartbeat; the hub answers with `pong` carrying the same nonce.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// A frame kind this version does not know; ignored and logged.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// The opening frame: versions, credentials, and where to resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Hello {
    /// Protocol versions the client speaks.
    pub versions: Vec<u16>,
    /// Bearer token from `POST /api/v1/login`.
    pub token: String,
    /// Where to resume; absent on a first start (the hub sends a snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeCursor>,
    /// Free-form client identification, for logs.
    #[serde(default)]
    pub client: ClientInfo,
}

/// Client identification, for logs only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientInfo {
    /// Program name.
    #[serde(default)]
    pub name: String,
    /// Program version.
    #[serde(default)]
    pub version: String,
}

/// A command with its idempotency id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommandFrame {
    /// Client-chosen id; retries reuse it.
    pub id: CommandId,
    /// What to do.
    pub command: Command,
}

/// An agent command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// Accept a pending offer made to this agent.
    AcceptOffer {
        /// The offer.
        offer_id: OfferId,
    },
    /// Reject a pending offer (only where its template allows it).
    RejectOffer {
        /// The offer.
        offer_id: OfferId,
        /// Why; required when the template says so.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Set the agent's own presence (any but `inactive`).
    SetPresence {
        /// The new presence.
        presence: Presence,
    },
    /// Reset the agent's own presence after the hub changed it (a missed
    /// or rejected offer, the session limit): back to the presence the agent
    /// (or a supervisor) had set before that, or Available after Inactive.
    /// A presence a person chose is left alone. The hub answers with
    /// `presence_changed` when it changes one.
    ResetPresence,
    /// Send a message to the customer of an owned conversation.
    SendMessage {
        /// The conversation.
        conversation_id: ConversationId,
        /// Plain text, at most [`MAX_MESSAGE_TEXT_BYTES`].
        text: String,
    },
    /// Everything up to and including `message_id` has been read.
    MarkRead {
        /// The conversation.
        conversation_id: ConversationId,
        /// Last read message.
        message_id: MessageId,
    },
    /// End an owned conversation (frees a session slot).
    CloseConversation {
        /// The conversation.
        conversation_id: ConversationId,
    },
    /// Hand an owned conversation to another agent or to a queue. The
    /// conversation leaves the sender at once; the target gets an offer
    /// whose origin is `transfer`.
    TransferConversation {
        /// The conversation.
        conversation_id: ConversationId,
        /// Where it goes.
        target: TransferTarget,
        /// A note for the receiver (shown in the alert).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Escalate an owned conversation to a supervisor of the agent's team
    /// (a named one, or the first connected one).
    EscalateConversation {
        /// The conversation.
        conversation_id: ConversationId,
        /// The supervisor; by default the first connected supervisor.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        supervisor_id: Option<AgentId>,
        /// A note for the supervisor.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Ask another agent to join an owned conversation as a consultant
    /// (ownership stays with the sender).
    Consult {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who is asked.
        agent_id: AgentId,
    },
    /// Ask a named agent to take over an owned conversation. The agent
    /// accepts (ownership moves) or rejects with a reason; the requester
    /// is told the outcome.
    RequestAssign {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who is asked.
        agent_id: AgentId,
        /// Why (shown to the receiver).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Ask a named agent to discuss an owned conversation: on accept the
    /// agent joins; ownership stays with the requester. A reject needs a
    /// reason; the requester is told the outcome.
    RequestDiscuss {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who is asked.
        agent_id: AgentId,
    },
    /// Supervisor: assign a conversation of the team to a named agent
    /// outright (no decision); the new owner is notified.
    AssignConversation {
        /// The conversation.
        conversation_id: ConversationId,
        /// The new owner.
        agent_id: AgentId,
    },
    /// Take a team-owned conversation nobody owns yet (one of
    /// `GET /team/waiting`), as accepting its team message would: the
    /// first to take it owns it, with its session open.
    TakeTeamChat {
        /// The conversation.
        conversation_id: ConversationId,
    },
    /// A command kind this version does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

impl Command {
    /// The wire name of the command's kind (its `kind` tag), for logs that
    /// must not carry the payload (customer text, notes).
    pub fn kind(&self) -> &'static str {
        match self {
            Command::AcceptOffer { .. } => "accept_offer",
            Command::RejectOffer { .. } => "reject_offer",
            Command::SetPresence { .. } => "set_presence",
            Command::ResetPresence => "reset_presence",
            Command::SendMessage { .. } => "send_message",
            Command::MarkRead { .. } => "mark_read",
            Command::CloseConversation { .. } => "close_conversation",
            Command::TransferConversation { .. } => "transfer_conversation",
            Command::EscalateConversation { .. } => "escalate_conversation",
            Command::Consult { .. } => "consult",
            Command::RequestAssign { .. } => "request_assign",
            Command::RequestDiscuss { .. } => "request_discuss",
            Command::AssignConversation { .. } => "assign_conversation",
            Command::TakeTeamChat { .. } => "take_team_chat",
            Command::Unknown => "unknown",
        }
    }
}

// ---------------------------------------------------------------------------
// Hub → client
// ---------------------------------------------------------------------------

/// A frame sent by the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Answer to `hello`: the session is open.
    Welcome(Welcome),
    /// One agent event.
    Event(EventFrame),
    /// The agent's whole state as of `seq` (after a full resync).
    Snapshot {
        /// Events up to this seq are reflected in the snapshot.
        seq: Seq,
        /// The state.
        snapshot: AgentSnapshot,
    },
    /// The result of a command.
    CommandResult {
        /// The command's id.
        id: CommandId,
        /// Success or error.
        outcome: CommandOutcome,
    },
    /// Answer to `ping`.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// A frame could not be processed (not tied to a command).
    Error(ErrorBody),
    /// A frame kind this version does not know; ignored and logged.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Session parameters chosen by the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Welcome {
    /// Negotiated protocol version.
    pub version: u16,
    /// Who is signed in.
    pub agent: AgentProfile,
    /// The client pings at least this often; the hub closes a link that
    /// stays silent for three intervals.
    pub heartbeat_interval_ms: u64,
    /// Largest accepted frame.
    pub max_frame_bytes: u64,
    /// What follows: a replay or a snapshot.
    pub resume: ResumeMode,
    /// The agent's newest seq at the time of the welcome.
    pub last_seq: Seq,
    /// The hub's clock, so the client can correct deadlines for skew.
    pub server_time: Millis,
}

/// How the hub continues after `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ResumeMode {
    /// Events after the client's cursor follow (possibly none).
    Replay,
    /// A `snapshot` frame follows; the client must replace its state.
    FullResync {
        /// Why a replay was not possible.
        reason: ResyncReason,
    },
}

/// Why the hub answered with a full resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResyncReason {
    /// The client sent no cursor.
    NoCursor,
    /// Events after the cursor are no longer retained.
    BeyondRetention,
    /// The cursor is ahead of the hub's log (e.g. the hub lost its data).
    CursorAhead,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// An event with its sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventFrame {
    /// Per-agent sequence number.
    pub seq: Seq,
    /// When the event happened (hub clock).
    pub at: Millis,
    /// What happened.
    pub event: AgentEvent,
}

/// Something that happened to one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentEvent {
    /// The agent's presence changed.
    PresenceChanged {
        /// New presence.
        presence: Presence,
        /// Who or what changed it.
        reason: PresenceReason,
    },
    /// A work item is offered to the agent.
    OfferCreated {
        /// The offer.
        offer: Offer,
    },
    /// A pending offer is no longer pending.
    OfferResolved {
        /// The offer.
        offer_id: OfferId,
        /// Its conversation.
        conversation_id: ConversationId,
        /// How it ended.
        outcome: OfferOutcome,
    },
    /// A conversation is now owned by the agent.
    ConversationAssigned {
        /// The conversation.
        conversation: ConversationSummary,
        /// How it came to the agent.
        mode: AssignMode,
        /// Whether the client should open a session for it right away.
        open_session: bool,
        /// The notification to show for it (toasts, case assignments).
        template: NotificationTemplate,
        /// Recent history, oldest first.
        messages: Vec<Message>,
        /// Why it reached the agent (transfer, escalation, request ...); a
        /// new conversation when absent.
        #[serde(default)]
        origin: OfferOrigin,
        /// The agent's read marker in it (a conversation coming back to
        /// someone who read it before).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_read: Option<MessageId>,
        /// Customer messages after that marker, over the whole thread (as a
        /// snapshot counts them); absent from older hubs, when the client
        /// counts the customer messages in `messages`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unread: Option<u32>,
        /// Whether the conversation has messages older than the first in
        /// `messages` (`GET …/messages?before=` pages them); absent from
        /// older hubs, when the client guesses from how many came.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        has_earlier: Option<bool>,
    },
    /// A conversation was taken away from the agent.
    ConversationRevoked {
        /// The conversation.
        conversation_id: ConversationId,
        /// Why.
        reason: RevokeReason,
    },
    /// A message was added to an owned conversation.
    MessageAdded {
        /// The message (its `conversation_id` says where).
        message: Message,
    },
    /// The agent's read marker moved (possibly from another device).
    ReadMarkerMoved {
        /// The conversation.
        conversation_id: ConversationId,
        /// Last read message.
        message_id: MessageId,
        /// Customer messages still unread after the marker (authoritative).
        unread: u32,
    },
    /// An owned conversation was closed.
    ConversationClosed {
        /// The conversation.
        conversation_id: ConversationId,
    },
    /// An owned (or joined) conversation changed without changing hands:
    /// customer identification, record link, participants.
    ConversationUpdated {
        /// The conversation as it is now.
        conversation: ConversationSummary,
    },
    /// A request this agent made (consult, assign, discuss) was answered.
    RequestAnswered {
        /// The conversation.
        conversation_id: ConversationId,
        /// What was asked.
        request: RequestKind,
        /// Who answered.
        by: AgentRef,
        /// Accepted (true) or rejected / timed out (false).
        accepted: bool,
        /// Declined by the target (false when accepted or unanswered). A
        /// consult is declined with no reason, so the reason alone cannot
        /// tell a "no" from no answer; absent from older hubs (false).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rejected: bool,
        /// The reject reason, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A banner for the agent (missed offer, reject, max sessions).
    Notice {
        /// Which banner.
        notice: NoticeKind,
        /// Human-readable text.
        message: String,
    },
    /// An event kind this version does not know; ignored and logged.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Agent presence.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Ready for work.
    Available,
    /// Working, may still receive work if the queue allows it.
    Busy,
    /// Do not disturb.
    DoNotDisturb,
    /// Away from the desk.
    Away,
    /// Appears offline.
    Offline,
    /// Set by the system after a missed offer; cleared by the agent or a
    /// supervisor setting another presence, or by a reset
    /// ([`Command::ResetPresence`]).
    Inactive,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

impl Presence {
    /// Every presence, in display order.
    pub const ALL: [Presence; 6] = [
        Presence::Available,
        Presence::Busy,
        Presence::DoNotDisturb,
        Presence::Away,
        Presence::Offline,
        Presence::Inactive,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Available => "available",
            Presence::Busy => "busy",
            Presence::DoNotDisturb => "do_not_disturb",
            Presence::Away => "away",
            Presence::Offline => "offline",
            Presence::Inactive => "inactive",
            Presence::Other => "other",
        }
    }

    /// How people read it ("Do not disturb").
    pub fn label(self) -> &'static str {
        match self {
            Presence::Available => "Available",
            Presence::Busy => "Busy",
            Presence::DoNotDisturb => "Do not disturb",
            Presence::Away => "Away",
            Presence::Offline => "Offline",
            Presence::Inactive => "Inactive",
            Presence::Other => "Other",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Presence> {
        Presence::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Why a presence changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceReason {
    /// The agent chose it.
    Agent,
    /// A supervisor set it.
    Supervisor,
    /// The agent missed an offer (→ inactive).
    MissedOffer,
    /// The agent rejected an offer (→ do not disturb).
    RejectedOffer,
    /// The agent reached the session limit (→ do not disturb).
    MaxSessions,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// Communication channel of a conversation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Web chat.
    Chat,
    /// SMS.
    Sms,
    /// WhatsApp messages or calls.
    Whatsapp,
    /// Facebook Messenger.
    Facebook,
    /// Voice call.
    Voice,
    /// A case (record) routed to an agent.
    Case,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 6] = [
        Channel::Chat,
        Channel::Sms,
        Channel::Whatsapp,
        Channel::Facebook,
        Channel::Voice,
        Channel::Case,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Chat => "chat",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::Facebook => "facebook",
            Channel::Voice => "voice",
            Channel::Case => "case",
            Channel::Other => "other",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The scenario of a new conversation arriving on this channel.
    pub fn incoming_scenario(self) -> Scenario {
        match self {
            Channel::Chat => Scenario::IncomingChat,
            Channel::Sms => Scenario::IncomingSms,
            Channel::Whatsapp => Scenario::IncomingWhatsapp,
            Channel::Facebook => Scenario::IncomingFacebook,
            Channel::Voice => Scenario::IncomingCall,
            Channel::Case => Scenario::CaseAssignment,
            Channel::Other => Scenario::Other,
        }
    }
}

/// Why a work item reaches an agent; each queue has a template per scenario.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// New chat conversation.
    IncomingChat,
    /// New SMS conversation.
    IncomingSms,
    /// New WhatsApp conversation.
    IncomingWhatsapp,
    /// New Facebook conversation.
    IncomingFacebook,
    /// Incoming voice or WhatsApp call.
    IncomingCall,
    /// A case (record) routed to the agent; cannot be rejected.
    CaseAssignment,
    /// A work item assigned to the agent.
    WorkItemAssignment,
    /// A conversation transferred to the agent.
    Transfer,
    /// A conversation escalated to the agent.
    Escalation,
    /// A conversation escalated from a bot.
    BotEscalation,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 10] = [
        Scenario::IncomingChat,
        Scenario::IncomingSms,
        Scenario::IncomingWhatsapp,
        Scenario::IncomingFacebook,
        Scenario::IncomingCall,
        Scenario::CaseAssignment,
        Scenario::WorkItemAssignment,
        Scenario::Transfer,
        Scenario::Escalation,
        Scenario::BotEscalation,
    ];
}

/// Toast (information, disappears) or alert (Accept / Reject, countdown).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Information that disappears after `timeout_secs`; a click opens the
    /// session.
    Toast,
    /// Accept / Reject within `timeout_secs`.
    Alert,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// A detail the notification shows, chosen by the admin's template.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DetailField {
    /// The customer's name.
    CustomerName,
    /// The customer's comment (first words, pre-chat survey).
    Comment,
    /// How long the customer has waited.
    WaitTime,
    /// The channel.
    Channel,
    /// The queue (workstream).
    Queue,
    /// The customer's phone.
    Phone,
    /// The customer's email.
    Email,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// How a notification looks and behaves; set per queue and scenario.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NotificationTemplate {
    /// Toast or alert.
    pub kind: NotificationKind,
    /// Seconds the agent has to act (alert) or the toast stays.
    pub timeout_secs: u32,
    /// Whether the countdown is shown (the deadline applies either way).
    pub show_timeout: bool,
    /// Whether Reject is offered.
    pub allow_reject: bool,
    /// Whether a reject must give a reason.
    #[serde(default)]
    pub reject_reason_required: bool,
    /// Accept automatically and open the session.
    #[serde(default)]
    pub auto_accept: bool,
    /// Assign the work item automatically, without opening a session.
    #[serde(default)]
    pub auto_assign: bool,
    /// Details to show, in order.
    pub details: Vec<DetailField>,
    /// Default for desktop (OS) notifications; the agent may override it.
    #[serde(default)]
    pub desktop: DesktopNotifications,
}

/// When OS-level desktop notifications are raised.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DesktopNotifications {
    /// Always, even when the app is in focus.
    Always,
    /// Only when the app is not in focus (the reference's default).
    #[default]
    WhenUnfocused,
    /// Never; in-app notifications only.
    Never,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// The customer side of a conversation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Customer {
    /// Display name (customer-supplied: untrusted text).
    pub name: String,
    /// Phone number, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Email, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Lifecycle of a conversation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Waiting for an agent.
    Queued,
    /// Offered to an agent.
    Offered,
    /// Owned by an agent.
    Assigned,
    /// Ended.
    Closed,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// What an agent needs to know about a conversation to list and notify it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationSummary {
    /// Id.
    pub id: ConversationId,
    /// Channel.
    pub channel: Channel,
    /// Queue (workstream) name.
    pub queue: String,
    /// Why it was routed.
    pub scenario: Scenario,
    /// The customer.
    pub customer: Customer,
    /// The customer's comment, if any (untrusted text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When the customer started it (wait time counts from here).
    pub created_at: Millis,
    /// Status.
    pub status: ConversationStatus,
    /// Owning agent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<AgentId>,
    /// Customer identification, for channels that carry a phone or email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identification: Option<Identification>,
    /// The record (and case) the conversation is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<RecordLink>,
    /// Agents who joined without owning it (consult, discuss).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<AgentId>,
}

/// Who wrote a message.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Author {
    /// The customer.
    Customer,
    /// An agent.
    Agent {
        /// The agent.
        agent_id: AgentId,
    },
    /// The system (bot transcripts, notes).
    System,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// One message in a conversation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// Id; increasing within the hub.
    pub id: MessageId,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Who wrote it.
    pub author: Author,
    /// Plain text (untrusted when from a customer).
    pub text: String,
    /// When the hub received it.
    pub sent_at: Millis,
    /// The id of the agent command that sent it, for outbox dedupe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<CommandId>,
}

/// A work item proposed to one agent.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Offer {
    /// Id.
    pub id: OfferId,
    /// The conversation offered.
    pub conversation: ConversationSummary,
    /// How to notify.
    pub template: NotificationTemplate,
    /// When the offer was made.
    pub created_at: Millis,
    /// Deadline (hub clock); after it the offer times out.
    pub expires_at: Millis,
    /// Why the offer reaches the agent (a new conversation unless said
    /// otherwise; older hubs do not send it).
    #[serde(default)]
    pub origin: OfferOrigin,
}

/// An agent named in an offer or an answer.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentRef {
    /// Id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
}

/// Why an offer reaches an agent. Routing offers (a new conversation,
/// transfer, escalation, bot escalation) are rerouted when declined;
/// requests (consult, assign, discuss, "assign to me?", team message) are
/// not, and declining them costs the agent nothing.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OfferOrigin {
    /// A new conversation routed from its queue.
    #[default]
    NewConversation,
    /// Transferred by another agent (to this agent or to its queue).
    Transfer {
        /// Who transferred it.
        from: AgentRef,
        /// The sender's note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Escalated to this supervisor.
    Escalation {
        /// Who escalated it.
        from: AgentRef,
        /// The sender's note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Escalated from a bot; the bot's transcript comes along.
    BotEscalation {
        /// The bot conversation, oldest line first (untrusted text).
        transcript: Vec<String>,
    },
    /// Asked to join as a consultant; ownership stays with `from`.
    Consult {
        /// The owner asking.
        from: AgentRef,
    },
    /// Asked to take the conversation over.
    AssignRequest {
        /// The owner asking.
        from: AgentRef,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Asked to discuss; ownership stays with `from`.
    DiscussRequest {
        /// The owner asking.
        from: AgentRef,
    },
    /// The owner has not answered the customer in time: "Assign to me?"
    AssignToMe {
        /// The current owner.
        owner: AgentRef,
        /// How long the customer has waited for an answer, in seconds.
        idle_secs: u32,
    },
    /// A customer wrote in a team-owned conversation nobody owns yet; the
    /// first teammate to accept owns it.
    TeamMessage {
        /// The newest customer message (first 200 characters).
        preview: String,
        /// Customer messages so far.
        messages: u32,
    },
    /// An origin this version does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

impl OfferOrigin {
    /// Whether this is a request between agents (declining costs nothing
    /// and reroutes nothing) rather than a routed work item.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            OfferOrigin::Consult { .. }
                | OfferOrigin::AssignRequest { .. }
                | OfferOrigin::DiscussRequest { .. }
                | OfferOrigin::AssignToMe { .. }
                | OfferOrigin::TeamMessage { .. }
        )
    }

    /// The request kind whose requester is told the outcome, if any.
    pub fn answered_request(&self) -> Option<(RequestKind, &AgentRef)> {
        match self {
            OfferOrigin::Consult { from } => Some((RequestKind::Consult, from)),
            OfferOrigin::AssignRequest { from, .. } => Some((RequestKind::Assign, from)),
            OfferOrigin::DiscussRequest { from } => Some((RequestKind::Discuss, from)),
            _ => None,
        }
    }

    /// Whether a reject must carry a reason whatever the template says
    /// (assign and discuss requests, as in the reference).
    pub fn reason_required(&self) -> bool {
        matches!(
            self,
            OfferOrigin::AssignRequest { .. } | OfferOrigin::DiscussRequest { .. }
        )
    }
}

/// A request between agents whose outcome the requester is told.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Join as a consultant.
    Consult,
    /// Take the conversation over.
    Assign,
    /// Discuss it.
    Discuss,
    /// A kind this version does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Where a transfer goes.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum TransferTarget {
    /// A named agent (offered to them; rerouted in the queue if declined).
    Agent {
        /// The agent.
        agent_id: AgentId,
    },
    /// A queue (routed like a new item, with the transfer template).
    Queue {
        /// The queue's name.
        queue: String,
    },
}

/// The result of matching a conversation's customer against the contacts
/// (by phone for SMS, WhatsApp and voice; by email for chat).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Identification {
    /// No record matches: "No records found".
    #[serde(rename = "none")]
    NoMatch,
    /// Exactly one: the screen pop opens its Customer 360.
    One {
        /// The contact.
        contact_id: ContactId,
    },
    /// Several: "One or more records found. Select a record or create new."
    Several {
        /// The candidates (at most 20).
        contact_ids: Vec<ContactId>,
    },
    /// A result this version does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// The record (and case) a conversation is linked to.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordLink {
    /// The contact.
    pub contact_id: ContactId,
    /// The case, if any (the conversation's assigned case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<CaseId>,
}

/// How an offer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferOutcome {
    /// The agent accepted.
    Accepted,
    /// The agent rejected.
    Rejected,
    /// Nobody answered in time; rerouted.
    TimedOut,
    /// Timed out while the agent's client was disconnected; assigned anyway
    /// and rerouted only if the agent stays away past the grace period.
    AssignedOnTimeout,
    /// Withdrawn by the hub (e.g. the customer left).
    Withdrawn,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// How a conversation came to its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignMode {
    /// The agent accepted an offer.
    Accepted,
    /// The template accepts automatically.
    AutoAccept,
    /// The template assigns automatically.
    AutoAssign,
    /// A toast-template scenario: assigned with an informational toast.
    Toast,
    /// A case assignment: cannot be rejected.
    CaseAssignment,
    /// The offer timed out while the agent was disconnected.
    OnTimeout,
    /// Assigned outright by a supervisor.
    Supervisor,
    /// Joined as a consultant or for a discussion; the owner is someone
    /// else.
    Joined,
    /// A mode this version does not know.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// Why a conversation was taken away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The agent's client stayed disconnected past the grace period.
    DisconnectedGrace,
    /// Reassigned by a supervisor.
    Reassigned,
    /// The agent transferred or escalated it.
    Transferred,
    /// A teammate took it over ("Assign to me?" or an accepted assign
    /// request).
    TakenOver,
    /// The agent's consult or discussion ended (the owner closed or handed
    /// the conversation on).
    LeftConsult,
    /// A reason this version does not know.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// Banners shown at the top of the agent's screen.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// An offer timed out unanswered; presence is now inactive.
    MissedOffer,
    /// The agent rejected an offer; presence is now do not disturb.
    RejectedOffer,
    /// The agent has the maximum number of sessions open.
    MaxSessions,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// Role of a user.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Handles conversations.
    Agent,
    /// Also resets presences and watches the team.
    Supervisor,
    /// Also configures the hub.
    Admin,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Other => "other",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Agent, Role::Supervisor, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Whether this role includes supervisor rights.
    pub fn is_supervisor(self) -> bool {
        matches!(self, Role::Supervisor | Role::Admin)
    }
}

/// Who is signed in.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentProfile {
    /// Id.
    pub id: AgentId,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Team name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// One conversation in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationState {
    /// The conversation.
    pub conversation: ConversationSummary,
    /// Customer messages after the read marker.
    pub unread: u32,
    /// The agent's read marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read: Option<MessageId>,
    /// Recent history, oldest first.
    pub messages: Vec<Message>,
    /// Whether the conversation has messages older than the first in
    /// `messages`; absent from older hubs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_earlier: Option<bool>,
}

/// The agent's whole state, for a full resync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentSnapshot {
    /// Who.
    pub agent: AgentProfile,
    /// Current presence.
    pub presence: Presence,
    /// Open conversations owned by the agent.
    pub conversations: Vec<ConversationState>,
    /// Pending offers.
    pub offers: Vec<Offer>,
}

/// Result of a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CommandOutcome {
    /// Done.
    Ok {
        /// What it produced.
        reply: CommandReply,
    },
    /// Refused.
    Error(ErrorBody),
}

/// What a successful command produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandReply {
    /// Nothing to report.
    Done,
    /// The offer was accepted; the conversation is now the agent's.
    OfferAccepted {
        /// The conversation.
        conversation: ConversationSummary,
    },
    /// The message was stored.
    MessageSent {
        /// The stored message.
        message: Message,
    },
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// A machine-readable error with a human-readable message.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// Closed set of codes.
    pub code: ErrorCode,
    /// For people and logs.
    pub message: String,
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

/// The closed set of error codes, shared by WebSocket and REST.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a valid frame / request body.
    InvalidFrame,
    /// A frame other than `hello` arrived first.
    HelloRequired,
    /// No protocol version in common.
    UnsupportedVersion,
    /// Missing, unknown, expired or revoked credentials.
    Unauthorized,
    /// Authenticated, but not allowed to do this.
    Forbidden,
    /// No such thing (or not visible to this agent).
    NotFound,
    /// The thing is no longer in a state that allows this (e.g. the offer
    /// already timed out).
    Conflict,
    /// The template does not allow rejecting.
    RejectNotAllowed,
    /// A reason is required.
    ReasonRequired,
    /// That presence cannot be set this way.
    InvalidPresence,
    /// Too large.
    TooLarge,
    /// Too many attempts; retry later.
    RateLimited,
    /// The agent who would own the conversation already has the most open
    /// sessions allowed; what was asked is left as it was (an offer stays
    /// pending, to accept once a session is closed).
    SessionLimit,
    /// The hub failed; the command may be retried with the same id.
    Internal,
    /// A value this version does not know: a newer hub's. Decoding keeps
    /// the frame (an older client would otherwise drop it, and resync
    /// forever once a snapshot holds it); the hub refuses it as input.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The frame exceeds [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes")]
    TooLarge(usize),
    /// Not JSON or not a valid frame.
    #[error("invalid frame: {0}")]
    Invalid(#[from] serde_json::Error),
}

/// Decodes a client frame. Unknown frame kinds decode to
/// [`ClientFrame::Unknown`], which receivers ignore.
pub fn decode_client_frame(text: &str) -> Result<ClientFrame, DecodeError> {
    decode(text)
}

/// Decodes a server frame. Unknown frame kinds decode to
/// [`ServerFrame::Unknown`], which receivers ignore.
pub fn decode_server_frame(text: &str) -> Result<ServerFrame, DecodeError> {
    decode(text)
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge(text.len()));
    }
    Ok(serde_json::from_str(text)?)
}

/// Encodes a frame as JSON text.
pub fn encode<T: Serialize>(frame: &T) -> String {
    // Serializing these types cannot fail: no maps with non-string keys, no
    // custom serializers. Fall back to an error frame rather than panic.
    serde_json::to_string(frame).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","code":"internal","message":"encode failed: {e}"}}"#)
    })
}
