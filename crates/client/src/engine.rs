//! The engine: a pure state machine. It turns hub events, agent actions and
//! the passage of time into state changes and [`Effect`] values; it does no
//! I/O and reads no clock (every input comes with `now`). The runtime
//! ([`crate::runtime`]) performs the effects.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use switchboard_protocol::{
    AgentEvent, AgentProfile, AgentSnapshot, AssignMode, Author, Channel, Command, CommandFrame,
    CommandId, CommandOutcome, ConversationId, ConversationSummary, DesktopNotifications,
    DetailField, ErrorBody, ErrorCode, EventFrame, Message, MessageId, Millis, NoticeKind,
    NotificationKind, NotificationTemplate, Offer, OfferId, OfferOrigin, OfferOutcome, Presence,
    PresenceReason, RequestKind, RevokeReason, Scenario, Seq, TransferTarget,
};

use crate::settings::{AgentSettings, SoundWhen};

/// Messages kept per conversation in memory and in the cache.
pub const RECENT_MESSAGES: usize = 200;
/// At most one OS notification update per conversation per this many ms.
/// The engine's clock counts whole milliseconds, so an update is due only
/// once *more* than this has passed on it ([`coalesce_due`]): two updates
/// are then more than `COALESCE_MS` apart in real time too, whatever
/// fraction of a millisecond each reading dropped.
pub const COALESCE_MS: i64 = 1000;
/// The shortest reminder interval the engine keeps (shorter ones are raised).
const MIN_REMINDER_SECS: u32 = 5;

/// How long the in-app toast for new messages in a conversation not in
/// front stays.
const MESSAGE_TOAST_MS: u64 = 6_000;

/// How often an offer's OS notification has its countdown ("Respond
/// within 50 s") brought up to date while it is shown: often enough to
/// read as a countdown, rare enough not to busy the notification server.
pub const COUNTDOWN_STEP_MS: i64 = 10_000;

/// Whether a conversation last notified at `last` may be notified again at
/// `now`.
fn coalesce_due(last: Millis, now: Millis) -> bool {
    now.0 - last.0 > COALESCE_MS
}
/// Handled offer ids remembered (so a replay never shows them again).
const HANDLED_MEMORY: usize = 5000;

/// The missed-offer banner's text when the engine raises it itself (from a
/// snapshot's presence); the hub's notice says the same.
const MISSED_OFFER_MESSAGE: &str =
    "You missed a conversation request. Your presence is set to Inactive until you reset it.";

/// One conversation as the client knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    /// From the hub.
    pub summary: ConversationSummary,
    /// Customer messages after the read marker.
    pub unread: u32,
    /// The read marker.
    pub last_read: Option<MessageId>,
    /// Newest message id seen (dedupe: an older or equal id is not new).
    pub newest_message: Option<MessageId>,
    /// Whether a session (tab) is open for it.
    pub session_open: bool,
    /// Recent history, oldest first (not serialized with the record).
    #[serde(skip)]
    pub messages: VecDeque<Message>,
    /// Whether the hub holds messages older than the first in `messages`:
    /// as the hub said when the history came, and true once the cache let
    /// one go. `None` in records cached before the hub said (and from
    /// older hubs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_earlier: Option<bool>,
}

impl ConversationView {
    /// The stored record: everything but the recent history, which is
    /// stored message by message. Cloning without the history keeps a
    /// message flood from copying up to [`RECENT_MESSAGES`] messages per
    /// message.
    pub fn record(&self) -> ConversationView {
        ConversationView {
            summary: self.summary.clone(),
            unread: self.unread,
            last_read: self.last_read,
            newest_message: self.newest_message,
            session_open: self.session_open,
            messages: VecDeque::new(),
            has_earlier: self.has_earlier,
        }
    }
}

/// An offer waiting for the agent, with its deadline on the local clock.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOffer {
    /// The offer.
    pub offer: Offer,
    /// `offer.expires_at` corrected for clock skew.
    pub deadline: Millis,
}

/// A banner at the top of the window.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Banner {
    /// Which.
    pub notice: NoticeKind,
    /// Text from the hub.
    pub message: String,
    /// When it arrived.
    pub at: Millis,
}

/// Everything the client keeps across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentState {
    /// Who is signed in.
    pub profile: Option<AgentProfile>,
    /// Current presence.
    pub presence: Option<Presence>,
    /// Last event seq applied (and stored).
    pub last_seq: Seq,
    /// Owned conversations.
    pub conversations: BTreeMap<ConversationId, ConversationView>,
    /// Offers waiting for a decision.
    pub offers: BTreeMap<OfferId, PendingOffer>,
    /// Offers already decided or expired: never shown again.
    pub handled_offers: BTreeSet<OfferId>,
    /// The conversation in front.
    pub active: Option<ConversationId>,
    /// Unsent composer text.
    pub drafts: BTreeMap<ConversationId, String>,
    /// Banners not yet dismissed.
    pub banners: Vec<Banner>,
    /// The agent's settings.
    pub settings: AgentSettings,
}

impl AgentState {
    /// Total unread customer messages in owned conversations.
    pub fn unread_messages(&self) -> u32 {
        self.conversations.values().map(|c| c.unread).sum()
    }

    /// Owned conversations with an unread customer message: the bubble,
    /// the badge, the tray line and the title count chats, not messages
    /// (a customer who sends seven lines is one chat waiting).
    pub fn unread_chats(&self) -> u32 {
        let n = self.conversations.values().filter(|c| c.unread > 0).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// What a desktop notification is about; one notification per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum NotificationKey {
    /// An offer (alert).
    Offer(OfferId),
    /// A conversation (toast or new messages).
    Conversation(ConversationId),
    /// A banner.
    Notice(NoticeKind),
}

/// A button on a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationAction {
    /// Accept the offer.
    Accept,
    /// Reject the offer.
    Reject,
    /// Open the item (body click or "Open").
    Open,
}

/// Toast or alert, in OS terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStyle {
    /// Accept / Reject, critical, stays until decided or expired.
    Alert,
    /// Information that disappears.
    Toast,
}

/// The words on an offer's two buttons: "Assign to me?" is answered Yes /
/// No, everything else Accept / Reject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerWords {
    /// Accept / Reject.
    #[default]
    AcceptReject,
    /// Yes / No.
    YesNo,
}

impl AnswerWords {
    /// The words for an offer of this origin.
    pub fn of(origin: &OfferOrigin) -> AnswerWords {
        if matches!(origin, OfferOrigin::AssignToMe { .. }) {
            AnswerWords::YesNo
        } else {
            AnswerWords::AcceptReject
        }
    }

    /// The accepting button.
    pub fn accept(self) -> &'static str {
        match self {
            AnswerWords::AcceptReject => "Accept",
            AnswerWords::YesNo => "Yes",
        }
    }

    /// The declining button.
    pub fn reject(self) -> &'static str {
        match self {
            AnswerWords::AcceptReject => "Reject",
            AnswerWords::YesNo => "No",
        }
    }
}

/// A desktop notification to show (or replace, same key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsNotification {
    /// Identity; a new one with the same key replaces the old.
    pub key: NotificationKey,
    /// Alert or toast.
    pub style: NotificationStyle,
    /// Title (plain text; sinks escape it).
    pub title: String,
    /// Body lines (plain text; sinks escape them).
    pub body: Vec<String>,
    /// Buttons, in order.
    pub actions: Vec<NotificationAction>,
    /// When it must disappear (local clock).
    pub expires_at: Option<Millis>,
    /// Show a countdown to `expires_at`.
    pub countdown: bool,
    /// Only the countdown moved: replace the one shown in place, quietly
    /// (no sound, no new banner); a sink that cannot replace a shown
    /// notification drops it rather than raise a second one.
    #[serde(default)]
    pub refresh: bool,
    /// The words on the Accept and Reject buttons.
    #[serde(default)]
    pub answer_words: AnswerWords,
}

/// Connection state, for the UI.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Connecting or reconnecting.
    Connecting,
    /// Connected and resumed.
    Online,
    /// Not connected; will retry.
    Offline,
    /// Credentials refused; needs a new sign-in.
    SignedOut,
}

/// Why an offer left the screen.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferClosed {
    /// The agent accepted.
    Accepted,
    /// The agent rejected.
    Rejected,
    /// Its time ran out.
    Expired,
    /// The hub resolved it (another device, timeout, withdrawn).
    Resolved,
}

/// Events for the UI.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UiEvent {
    /// Everything changed (start, resync): re-read the state.
    Reset,
    /// Show the in-app alert.
    OfferShown {
        /// The offer and its local deadline (boxed: the other events are
        /// small).
        offer: Box<PendingOffer>,
        /// Its one-line title ([`offer_title`]), for announcements.
        headline: String,
    },
    /// Remove the in-app alert.
    OfferClosed {
        /// Which.
        offer_id: OfferId,
        /// Why.
        why: OfferClosed,
    },
    /// A conversation was added or changed.
    ConversationChanged {
        /// Its id.
        conversation_id: ConversationId,
    },
    /// A conversation was removed (closed, revoked).
    ConversationRemoved {
        /// Its id.
        conversation_id: ConversationId,
    },
    /// A message arrived.
    MessageAdded {
        /// The message.
        message: Message,
    },
    /// Presence changed.
    PresenceChanged {
        /// New presence.
        presence: Presence,
    },
    /// A banner to show.
    Banner {
        /// The banner.
        banner: Banner,
    },
    /// An in-app toast.
    Toast {
        /// The conversation it opens.
        conversation_id: ConversationId,
        /// Title.
        title: String,
        /// Body.
        body: String,
        /// How long it stays, ms.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        duration_ms: u64,
    },
    /// The conversation in front changed.
    ActiveChanged {
        /// Which, if any.
        conversation_id: Option<ConversationId>,
    },
    /// Connection status changed.
    Connection {
        /// The status.
        status: ConnectionStatus,
    },
    /// The agent's settings changed.
    SettingsChanged,
    /// The banners changed (dismissed, cleared by a presence reset).
    BannersChanged,
    /// Something the agent asked for was refused.
    CommandFailed {
        /// What the agent tried.
        what: String,
        /// Why.
        error: ErrorBody,
        /// The conversation it was about, if any: a panel that sent it
        /// tells its own refusal from an earlier one's.
        conversation_id: Option<ConversationId>,
    },
    /// A reply that could not be sent (refused here or by the hub) is the
    /// conversation's draft again, so the composer can show it: what the
    /// agent typed is never lost to a failed send.
    DraftRestored {
        /// The conversation.
        conversation_id: ConversationId,
        /// The draft now: the reply, before anything typed since.
        draft: String,
    },
}

/// Which part of the view (`crate::view`) an event changes. A reader that
/// keeps the conversation list and one open conversation re-reads the
/// open one only when its scope says so: most events while an agent works
/// are about other conversations, and each read of the open one carries
/// all its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewScope {
    /// The list and every conversation (a resync, or a setting that
    /// changes how messages are labelled).
    Everything,
    /// The list only: offers, presence, banners, connection, toasts.
    List,
    /// The list and this conversation.
    Conversation(ConversationId),
}

impl UiEvent {
    /// What this event changes in the view.
    pub fn scope(&self) -> ViewScope {
        match self {
            UiEvent::Reset | UiEvent::SettingsChanged | UiEvent::ActiveChanged { .. } => {
                ViewScope::Everything
            }
            UiEvent::ConversationChanged { conversation_id }
            | UiEvent::ConversationRemoved { conversation_id } => {
                ViewScope::Conversation(*conversation_id)
            }
            UiEvent::MessageAdded { message } => ViewScope::Conversation(message.conversation_id),
            UiEvent::DraftRestored {
                conversation_id, ..
            } => ViewScope::Conversation(*conversation_id),
            UiEvent::OfferShown { .. }
            | UiEvent::OfferClosed { .. }
            | UiEvent::PresenceChanged { .. }
            | UiEvent::Banner { .. }
            | UiEvent::Toast { .. }
            | UiEvent::Connection { .. }
            | UiEvent::BannersChanged
            | UiEvent::CommandFailed { .. } => ViewScope::List,
        }
    }
}

/// A tray menu line for a pending offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrayOffer {
    /// The offer.
    pub offer_id: OfferId,
    /// "Accept WhatsApp from Ada".
    pub label: String,
    /// Whether Reject is offered.
    pub can_reject: bool,
    /// Whether a reject must give a reason (the tray then opens the window).
    pub reject_needs_reason: bool,
}

/// What the tray menu shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrayMenu {
    /// Current presence.
    pub presence: Option<Presence>,
    /// Owned conversations with unread messages.
    pub unread_chats: u32,
    /// Pending offers, newest first.
    pub offers: Vec<TrayOffer>,
}

/// A command sent and not yet answered.
#[derive(Debug, Clone)]
struct InFlight {
    /// What the agent did, for a failure message ("send", "accept").
    what: String,
    /// A reply's conversation and text.
    reply: Option<(ConversationId, String)>,
    /// An accepted offer, shown again if the hub refuses the accept
    /// because of the session limit or fails on it (it stays pending
    /// there).
    offer: Option<PendingOffer>,
    /// What to send instead if the hub answers `invalid_frame` because it does
    /// not know the command (a hub older than the client).
    fallback: Option<Command>,
    /// The conversation the command is about, for its failure.
    conversation: Option<ConversationId>,
    /// A read marker's message.
    read_to: Option<MessageId>,
}

impl InFlight {
    fn of(command: &Command, offer: Option<PendingOffer>) -> InFlight {
        let reply = match command {
            Command::SendMessage {
                conversation_id,
                text,
            } => Some((*conversation_id, text.clone())),
            _ => None,
        };
        // A hub from before `reset_presence` knew only "set Available".
        let fallback = matches!(command, Command::ResetPresence).then_some(Command::SetPresence {
            presence: Presence::Available,
        });
        InFlight {
            what: action_name(command).to_owned(),
            reply,
            offer,
            fallback,
            conversation: about(command),
            read_to: match command {
                Command::MarkRead { message_id, .. } => Some(*message_id),
                _ => None,
            },
        }
    }
}

/// The conversation a command is about, if it names one.
fn about(command: &Command) -> Option<ConversationId> {
    match command {
        Command::SendMessage {
            conversation_id, ..
        }
        | Command::MarkRead {
            conversation_id, ..
        }
        | Command::CloseConversation { conversation_id }
        | Command::TransferConversation {
            conversation_id, ..
        }
        | Command::EscalateConversation {
            conversation_id, ..
        }
        | Command::Consult {
            conversation_id, ..
        }
        | Command::RequestAssign {
            conversation_id, ..
        }
        | Command::RequestDiscuss {
            conversation_id, ..
        }
        | Command::AssignConversation {
            conversation_id, ..
        }
        | Command::TakeTeamChat { conversation_id } => Some(*conversation_id),
        Command::AcceptOffer { .. }
        | Command::RejectOffer { .. }
        | Command::SetPresence { .. }
        | Command::ResetPresence
        | Command::Unknown => None,
    }
}

/// Taking a waiting team chat, as a failure names it.
const TAKE: &str = "take";
/// Moving the read marker, as a failure names it.
const MARK_READ: &str = "mark read";

/// What the agent did, as a failure message names it ("send failed").
fn action_name(command: &Command) -> &'static str {
    match command {
        Command::AcceptOffer { .. } => "accept",
        Command::RejectOffer { .. } => "reject",
        Command::SetPresence { .. } => "set presence",
        Command::ResetPresence => "reset presence",
        Command::SendMessage { .. } => "send",
        Command::MarkRead { .. } => MARK_READ,
        Command::CloseConversation { .. } => "close",
        Command::TransferConversation { .. } => "transfer",
        Command::EscalateConversation { .. } => "escalate",
        Command::Consult { .. } => "consult",
        Command::RequestAssign { .. } => "assign request",
        Command::RequestDiscuss { .. } => "discuss request",
        Command::AssignConversation { .. } => "assign",
        Command::TakeTeamChat { .. } => TAKE,
        Command::Unknown => "command",
    }
}

/// A persistence operation; the runtime applies a batch in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    /// Forget everything from the hub (before a snapshot is applied).
    ResetHubState,
    /// Who is signed in.
    PutProfile(AgentProfile),
    /// Presence.
    PutPresence(Presence),
    /// A conversation record (without messages).
    PutConversation(ConversationView),
    /// Remove a conversation with its messages and draft.
    DeleteConversation(ConversationId),
    /// A message.
    PutMessage(Message),
    /// A pending offer.
    PutOffer(PendingOffer),
    /// An offer decided or expired.
    OfferHandled(OfferId),
    /// Forget every handled offer id (the hub lost data and reuses ids).
    ForgetHandledOffers,
    /// An offer being accepted by `command`, kept until the hub answers so
    /// that a refusal after a restart can still show it again.
    PutAccepting {
        /// The accept command.
        command: CommandId,
        /// The offer as it was pending.
        offer: PendingOffer,
    },
    /// The hub answered `command`: out of the outbox, and its accepted
    /// offer need not be kept. In the same transaction as what the answer
    /// changed (a refused reply back in the draft, a refused accept's offer
    /// pending again), so a crash cannot keep one without the other.
    CommandAnswered(CommandId),
    /// The outbox holds exactly these commands (those still unanswered):
    /// with a whole-state write after a failed one, whose answered
    /// commands' [`StoreOp::CommandAnswered`] were lost with it.
    KeepOutbox(BTreeSet<CommandId>),
    /// The conversation in front.
    PutActive(Option<ConversationId>),
    /// A draft (empty deletes).
    PutDraft(ConversationId, String),
    /// The banners.
    PutBanners(Vec<Banner>),
    /// The settings.
    PutSettings(AgentSettings),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
// Effects live for one batch; a store op carrying a conversation record is
// the common case, so boxing it would only add allocations.
#[allow(clippy::large_enum_variant)]
pub enum Effect {
    /// Show or replace a desktop notification.
    Notify(OsNotification),
    /// Close a desktop notification.
    CloseNotification(NotificationKey),
    /// Start the repeating ring.
    StartRing,
    /// Stop the ring.
    StopRing,
    /// Play the short chime once.
    Chime,
    /// How many chats have unread messages, for the badge and title.
    Badge(u32),
    /// The tray menu contents.
    Tray(TrayMenu),
    /// Bring the window forward (showing this, if any).
    FocusWindow(Option<NotificationKey>),
    /// Tell the UI.
    Ui(UiEvent),
    /// Send a command to the hub (via the durable outbox).
    Send(CommandFrame),
    /// Register (or remove) the app to start at login.
    StartAtLogin(bool),
    /// Persist.
    Store(StoreOp),
}

/// What the agent can do (from the window, tray, OS notification or a
/// shortcut).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AgentAction {
    /// Accept an offer.
    Accept {
        /// Which.
        offer_id: OfferId,
    },
    /// Accept the offer the window's alert card shows (global shortcut):
    /// the one the agent or the desktop brought forward ([`AgentAction::ShowOffer`],
    /// a notification's body or the tray), else the one that lapses first.
    AcceptSoonest,
    /// The agent brought this pending offer into the window's alert card
    /// (picked it from the list, or is answering it): the global shortcut
    /// accepts it, not a sooner one the card does not show.
    ShowOffer {
        /// Which.
        offer_id: OfferId,
    },
    /// Reject an offer.
    Reject {
        /// Which.
        offer_id: OfferId,
        /// Why (required by some templates).
        reason: Option<String>,
    },
    /// Set presence.
    SetPresence {
        /// The presence.
        presence: Presence,
    },
    /// Reset presence after the hub changed it (the banner's button): back
    /// to what the agent had set, or Available (the hub decides).
    ResetPresence,
    /// Send a message.
    SendMessage {
        /// Where.
        conversation_id: ConversationId,
        /// What.
        text: String,
    },
    /// Bring a conversation to the front (and read it).
    Open {
        /// Which.
        conversation_id: ConversationId,
    },
    /// Mark everything in a conversation read.
    MarkRead {
        /// Which.
        conversation_id: ConversationId,
    },
    /// Close a conversation.
    Close {
        /// Which.
        conversation_id: ConversationId,
    },
    /// Save the composer text.
    SetDraft {
        /// Where.
        conversation_id: ConversationId,
        /// Text.
        text: String,
    },
    /// Change settings.
    UpdateSettings {
        /// New settings.
        settings: AgentSettings,
    },
    /// Dismiss a banner.
    DismissBanner {
        /// Which.
        notice: NoticeKind,
    },
    /// Transfer an owned conversation to an agent or a queue.
    Transfer {
        /// Which.
        conversation_id: ConversationId,
        /// Where to.
        target: TransferTarget,
        /// A note for the receiver.
        note: Option<String>,
    },
    /// Escalate an owned conversation to a supervisor (a named one, or the
    /// team's first connected one).
    Escalate {
        /// Which.
        conversation_id: ConversationId,
        /// The supervisor, if chosen.
        supervisor_id: Option<switchboard_protocol::AgentId>,
        /// A note for the supervisor.
        note: Option<String>,
    },
    /// Ask an agent to join as a consultant.
    Consult {
        /// Which.
        conversation_id: ConversationId,
        /// Who.
        agent_id: switchboard_protocol::AgentId,
    },
    /// Ask an agent to take the conversation over.
    RequestAssign {
        /// Which.
        conversation_id: ConversationId,
        /// Who.
        agent_id: switchboard_protocol::AgentId,
        /// Why.
        reason: Option<String>,
    },
    /// Ask an agent to discuss the conversation (ownership stays).
    RequestDiscuss {
        /// Which.
        conversation_id: ConversationId,
        /// Who.
        agent_id: switchboard_protocol::AgentId,
    },
    /// Supervisor: assign the conversation to an agent outright (no
    /// request; the new owner is notified).
    AssignTo {
        /// Which.
        conversation_id: ConversationId,
        /// The new owner.
        agent_id: switchboard_protocol::AgentId,
    },
    /// Take a team chat nobody owns (from the team's waiting list); the
    /// hub's assignment opens its session.
    TakeTeamChat {
        /// Which.
        conversation_id: ConversationId,
    },
}

/// An input to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The hub welcomed us; `server_time` vs our clock gives the skew.
    Welcome {
        /// Hub clock at welcome.
        server_time: Millis,
    },
    /// Replace hub state (full resync).
    Snapshot {
        /// Seq the snapshot reflects.
        seq: Seq,
        /// The state.
        snapshot: AgentSnapshot,
    },
    /// One hub event.
    Event(EventFrame),
    /// A command's result.
    CommandResult {
        /// The command id.
        id: CommandId,
        /// Its outcome.
        outcome: CommandOutcome,
    },
    /// Connection status.
    Connection(ConnectionStatus),
    /// Window focus changed.
    Focus(bool),
    /// Time passed (see [`Engine::next_wake`]).
    Tick,
    /// The agent did something.
    Agent(AgentAction),
    /// A desktop notification button or body was clicked.
    Notification {
        /// Which notification.
        key: NotificationKey,
        /// Which action.
        action: NotificationAction,
    },
    /// The shell could not register start at login
    /// ([`Effect::StartAtLogin`]): the setting goes back to off, so it
    /// does not say on while nothing starts the app.
    StartAtLoginFailed,
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    state: AgentState,
    focused: bool,
    ringing: bool,
    skew_ms: i64,
    connection: ConnectionStatus,
    /// The offer brought into the window's alert card (by the agent, a
    /// notification's body, the tray), while it is pending; none: the
    /// card shows the one that lapses first.
    shown_offer: Option<OfferId>,
    id_prefix: String,
    next_id: u64,
    /// Commands sent and what they were, for failure messages (and a
    /// reply's text, to give it back if it fails).
    in_flight: BTreeMap<CommandId, InFlight>,
    last_notified: BTreeMap<ConversationId, Millis>,
    dirty: BTreeSet<ConversationId>,
    /// A toast's OS notification held back because the conversation's
    /// notification changed less than COALESCE_MS ago (a revoke and the
    /// answer to the request behind it come together): shown, the newest
    /// one, once the window has passed.
    deferred_toasts: BTreeMap<ConversationId, OsNotification>,
    next_reminder: Option<Millis>,
    /// When each offer's OS notification next has its countdown updated.
    countdown_due: BTreeMap<OfferId, Millis>,
    /// Pending offers with an OS notification up. The others were shown
    /// in the app only (it had focus): losing focus raises theirs, so an
    /// offer the agent clicked or minimised away from is not left with
    /// nothing on screen but a ring.
    on_desktop: BTreeSet<OfferId>,
    last_badge: Option<u32>,
    last_tray: Option<TrayMenu>,
}

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Chat => "Chat",
        Channel::Sms => "SMS",
        Channel::Whatsapp => "WhatsApp",
        Channel::Facebook => "Facebook",
        Channel::Voice => "Call",
        Channel::Case => "Case",
        // A newer hub's channel: the offer still shows, named plainly.
        Channel::Other => "Message",
    }
}

fn wait_text(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    if s <= 90 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// A toast to raise ([`Engine::toast`]).
struct Toast {
    conversation_id: ConversationId,
    title: String,
    body: Vec<String>,
    /// The template's desktop-notification rule.
    desktop: DesktopNotifications,
    duration_ms: u64,
}

/// An assignment event, unpacked.
struct Assignment {
    summary: ConversationSummary,
    mode: AssignMode,
    open_session: bool,
    template: NotificationTemplate,
    messages: Vec<Message>,
    origin: OfferOrigin,
    /// The hub's read marker and unread count for it, when it says.
    read: Option<(Option<MessageId>, u32)>,
    /// Whether older messages than `messages` exist, when the hub says.
    has_earlier: Option<bool>,
}

/// A note or reason as sent: trimmed, none when empty, and cut at a
/// character boundary to what the hub keeps
/// ([`switchboard_protocol::MAX_NOTE_BYTES`]). Uncut, a pasted megabyte
/// would make a frame the hub closes the link on, and the outbox would
/// send it again at every connect, holding up every command after it.
fn clean(text: Option<String>) -> Option<String> {
    text.map(|t| {
        let t = t.trim();
        let mut end = t.len().min(switchboard_protocol::MAX_NOTE_BYTES);
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        t[..end].trim_end().to_owned()
    })
    .filter(|t| !t.is_empty())
}

/// What an offer is, in one line: the OS notification title, the tray
/// item and the toast title ("Transfer from Ana: Ada Lovelace").
pub fn offer_headline(origin: &OfferOrigin, s: &ConversationSummary) -> String {
    let customer = &s.customer.name;
    match origin {
        OfferOrigin::Transfer { from, .. } => format!("Transfer from {}: {customer}", from.name),
        OfferOrigin::Escalation { from, .. } => {
            format!("Escalation from {}: {customer}", from.name)
        }
        OfferOrigin::BotEscalation { .. } => format!("Escalated from a bot: {customer}"),
        OfferOrigin::Consult { from } => format!("{} asks you to consult: {customer}", from.name),
        OfferOrigin::AssignRequest { from, .. } => {
            format!("{} asks you to take over: {customer}", from.name)
        }
        OfferOrigin::DiscussRequest { from } => {
            format!("{} asks to discuss: {customer}", from.name)
        }
        OfferOrigin::AssignToMe { .. } => format!("Assign to me? {customer}"),
        OfferOrigin::TeamMessage { .. } => {
            format!("Team {}: {customer}", channel_name(s.channel))
        }
        OfferOrigin::NewConversation | OfferOrigin::Unknown => {
            if s.scenario == Scenario::IncomingCall {
                let what = if s.channel == Channel::Whatsapp {
                    "WhatsApp call"
                } else {
                    "call"
                };
                format!("Incoming {what} from {customer}")
            } else {
                format!("Incoming {} from {customer}", channel_name(s.channel))
            }
        }
    }
}

/// The title of an offer everywhere it is shown: the OS notification, the
/// in-app alert (through the view) and screen-reader announcements. A plain
/// new conversation offered as a toast is "WhatsApp: Ada"; everything else
/// is its [`offer_headline`].
pub fn offer_title(o: &Offer) -> String {
    let s = &o.conversation;
    match (&o.origin, o.template.kind) {
        (OfferOrigin::NewConversation | OfferOrigin::Unknown, NotificationKind::Toast) => {
            format!("{}: {}", channel_name(s.channel), s.customer.name)
        }
        (origin, _) => offer_headline(origin, s),
    }
}

/// The tray item of an offer: "Accept WhatsApp from Ada" for a new
/// conversation, "Accept: Transfer from Ana: Ada" ("Yes: Assign to me?
/// Ada") for anything else.
pub fn tray_label(origin: &OfferOrigin, s: &ConversationSummary) -> String {
    match origin {
        OfferOrigin::NewConversation | OfferOrigin::Unknown
            if s.scenario != Scenario::IncomingCall =>
        {
            format!(
                "Accept {} from {}",
                channel_name(s.channel),
                s.customer.name
            )
        }
        _ => format!(
            "{}: {}",
            AnswerWords::of(origin).accept(),
            offer_headline(origin, s)
        ),
    }
}

/// Extra notification lines an origin brings: its [`origin_notes`], or the
/// end of a bot transcript.
pub fn origin_lines(origin: &OfferOrigin) -> Vec<String> {
    match origin {
        OfferOrigin::BotEscalation { transcript } => {
            let skip = transcript.len().saturating_sub(3);
            transcript.iter().skip(skip).cloned().collect()
        }
        _ => origin_notes(origin),
    }
}

/// What an origin says about itself, line by line, in the OS notification
/// and the in-app alert alike: the sender's note or reason, the idle
/// owner, the team message. (A bot transcript is not a note: the alert
/// lists it whole.)
pub fn origin_notes(origin: &OfferOrigin) -> Vec<String> {
    match origin {
        OfferOrigin::Transfer { note: Some(n), .. }
        | OfferOrigin::Escalation { note: Some(n), .. } => vec![format!("Note: {n}")],
        OfferOrigin::AssignRequest {
            reason: Some(r), ..
        } => vec![format!("Reason: {r}")],
        OfferOrigin::AssignToMe { owner, idle_secs } => vec![format!(
            "{} has not answered the customer for {}",
            owner.name,
            wait_text(i64::from(*idle_secs) * 1000)
        )],
        OfferOrigin::TeamMessage { preview, messages } => {
            let mut lines = vec![preview.clone()];
            if *messages > 1 {
                lines.push(format!("{messages} messages, no owner yet"));
            }
            lines
        }
        _ => Vec::new(),
    }
}

/// The lines a template asks for.
pub fn detail_lines(
    summary: &ConversationSummary,
    template: &NotificationTemplate,
    hub_now: Millis,
) -> Vec<String> {
    template
        .details
        .iter()
        .filter_map(|d| match d {
            DetailField::CustomerName => Some(format!("Customer: {}", summary.customer.name)),
            DetailField::Comment => summary.comment.as_ref().map(|c| format!("Comment: {c}")),
            DetailField::WaitTime => Some(format!(
                "Wait time: {}",
                wait_text(hub_now.0 - summary.created_at.0)
            )),
            DetailField::Channel => Some(format!("Channel: {}", channel_name(summary.channel))),
            DetailField::Queue => Some(format!("Queue: {}", summary.queue)),
            DetailField::Phone => summary
                .customer
                .phone
                .as_ref()
                .map(|p| format!("Phone: {p}")),
            DetailField::Email => summary
                .customer
                .email
                .as_ref()
                .map(|e| format!("Email: {e}")),
            // A newer hub's detail: nothing this version can show.
            DetailField::Other => None,
        })
        .collect()
}

impl Engine {
    /// An engine over restored state. `id_prefix` makes command ids unique
    /// across runs (e.g. a random string per process).
    pub fn new(state: AgentState, id_prefix: impl Into<String>) -> Engine {
        Engine {
            state,
            focused: false,
            ringing: false,
            skew_ms: 0,
            connection: ConnectionStatus::Connecting,
            shown_offer: None,
            id_prefix: id_prefix.into(),
            next_id: 0,
            in_flight: BTreeMap::new(),
            last_notified: BTreeMap::new(),
            dirty: BTreeSet::new(),
            deferred_toasts: BTreeMap::new(),
            next_reminder: None,
            last_badge: None,
            last_tray: None,
            countdown_due: BTreeMap::new(),
            on_desktop: BTreeSet::new(),
        }
    }

    /// The state.
    pub fn state(&self) -> &AgentState {
        &self.state
    }

    /// Whether the window is focused, as last reported.
    pub fn focused(&self) -> bool {
        self.focused
    }

    /// Store operations that write the whole state afresh: after a failed
    /// cache write (the runtime could not store a batch), so that what the
    /// agent has on screen is what a restart finds, whatever was lost.
    pub fn checkpoint(&self) -> Vec<StoreOp> {
        let st = &self.state;
        let mut ops = vec![StoreOp::ResetHubState];
        ops.extend(st.profile.clone().map(StoreOp::PutProfile));
        ops.extend(st.presence.map(StoreOp::PutPresence));
        for c in st.conversations.values() {
            ops.push(StoreOp::PutConversation(c.record()));
            ops.extend(c.messages.iter().cloned().map(StoreOp::PutMessage));
        }
        ops.extend(st.offers.values().cloned().map(StoreOp::PutOffer));
        ops.extend(st.handled_offers.iter().copied().map(StoreOp::OfferHandled));
        ops.push(StoreOp::PutActive(st.active));
        for (c, d) in &st.drafts {
            ops.push(StoreOp::PutDraft(*c, d.clone()));
        }
        ops.push(StoreOp::PutBanners(st.banners.clone()));
        ops.push(StoreOp::PutSettings(st.settings.clone()));
        ops.push(StoreOp::KeepOutbox(
            self.in_flight.keys().cloned().collect(),
        ));
        for (command, sent) in &self.in_flight {
            if let Some(offer) = &sent.offer {
                ops.push(StoreOp::PutAccepting {
                    command: command.clone(),
                    offer: offer.clone(),
                });
            }
        }
        ops
    }

    /// Whether the ring is playing.
    pub fn ringing(&self) -> bool {
        self.ringing
    }

    /// The connection status.
    pub fn connection(&self) -> ConnectionStatus {
        self.connection
    }

    /// After a (re)start: show again every offer still within its time
    /// (with the remaining time), drop the expired ones, publish badge and
    /// tray.
    pub fn start(&mut self, now: Millis) -> Vec<Effect> {
        let mut fx = vec![Effect::Ui(UiEvent::Reset)];
        let ids: Vec<OfferId> = self.state.offers.keys().copied().collect();
        for id in ids {
            let Some(p) = self.state.offers.get(&id).cloned() else {
                continue;
            };
            if p.deadline <= now {
                self.forget_offer(id, OfferClosed::Expired, &mut fx);
            } else {
                self.show_offer(&p, now, &mut fx);
            }
        }
        self.finish(now, &mut fx);
        fx
    }

    /// When the engine next needs a [`Input::Tick`].
    pub fn next_wake(&self) -> Option<Millis> {
        let offers = self.state.offers.values().map(|p| p.deadline).min();
        let flush = self
            .dirty
            .iter()
            .chain(self.deferred_toasts.keys())
            .filter_map(|c| {
                self.last_notified
                    .get(c)
                    .map(|t| Millis(t.0 + COALESCE_MS + 1))
            })
            .min();
        let countdown = self.countdown_due.values().min().copied();
        [offers, flush, self.next_reminder, countdown]
            .into_iter()
            .flatten()
            .min()
    }

    /// Handles one input at time `now` (local clock).
    pub fn handle(&mut self, input: Input, now: Millis) -> Vec<Effect> {
        let mut fx = Vec::new();
        match input {
            Input::Welcome { server_time } => self.skew_ms = server_time.0 - now.0,
            Input::Snapshot { seq, snapshot } => self.apply_snapshot(seq, snapshot, now, &mut fx),
            Input::Event(ev) => self.apply_event(ev, now, &mut fx),
            Input::CommandResult { id, outcome } => {
                let sent = self.in_flight.remove(&id);
                fx.push(Effect::Store(StoreOp::CommandAnswered(id.clone())));
                if let Some(InFlight {
                    conversation: Some(cid),
                    read_to: Some(answered),
                    ..
                }) = &sent
                {
                    // The agent read on while it was unanswered: the newest
                    // goes now, unless another unanswered one will say it.
                    let read = self.state.conversations.get(cid).and_then(|c| c.last_read);
                    if read > Some(*answered) && self.read_in_flight(*cid).is_none() {
                        self.send_read_marker(*cid, &mut fx);
                    }
                }
                if let CommandOutcome::Error(error) = outcome {
                    let (what, reply, offer, fallback, conversation_id) = match sent {
                        Some(InFlight {
                            what,
                            reply,
                            offer,
                            fallback,
                            conversation,
                            ..
                        }) => (what, reply, offer, fallback, conversation),
                        None => ("command".into(), None, None, None, None),
                    };
                    let gone =
                        conversation_id.is_some_and(|c| !self.state.conversations.contains_key(&c));
                    if what == MARK_READ && gone {
                        // Read up to a point in a conversation the agent no
                        // longer holds (closed or handed on meanwhile):
                        // nothing to tell them.
                        tracing::debug!(error = %error.message, "read marker for a conversation no longer held");
                    } else if let (Some(instead), ErrorCode::InvalidFrame) = (fallback, error.code)
                    {
                        tracing::info!(what = %what, "the hub does not know the command; sending what it knows");
                        self.command(instead, &mut fx);
                    } else {
                        if let Some((conversation_id, text)) = reply {
                            self.restore_reply(conversation_id, &text, &mut fx);
                        }
                        // Both leave the offer pending on the hub: the
                        // session limit by design, a hub failure
                        // (`internal`) because nothing was done. A code
                        // only a newer hub knows may be either: the offer
                        // stays (its deadline still ends it). Anything
                        // else means it is gone.
                        if let (
                            Some(p),
                            ErrorCode::SessionLimit | ErrorCode::Internal | ErrorCode::Other,
                        ) = (offer, error.code)
                        {
                            self.restore_offer(p, now, &mut fx);
                        }
                        fx.push(Effect::Ui(UiEvent::CommandFailed {
                            what,
                            error,
                            conversation_id,
                        }));
                    }
                }
            }
            Input::Connection(status) => {
                if status != self.connection {
                    self.connection = status;
                    fx.push(Effect::Ui(UiEvent::Connection { status }));
                }
            }
            Input::Focus(focused) => {
                self.focused = focused;
                if focused {
                    if let Some(c) = self.state.active {
                        self.read_if_visible(c, &mut fx);
                    }
                } else {
                    self.raise_offers_shown_in_app(now, &mut fx);
                }
            }
            Input::Tick => self.tick(now, &mut fx),
            Input::StartAtLoginFailed => {
                if self.state.settings.start_at_login {
                    self.state.settings.start_at_login = false;
                    fx.push(Effect::Store(StoreOp::PutSettings(
                        self.state.settings.clone(),
                    )));
                    fx.push(Effect::Ui(UiEvent::SettingsChanged));
                }
            }
            Input::Agent(action) => self.agent(action, now, &mut fx),
            Input::Notification { key, action } => {
                self.notification_clicked(key, action, now, &mut fx)
            }
        }
        self.finish(now, &mut fx);
        fx
    }

    // ---------------------------------------------------------------- hub

    fn hub_to_local(&self, t: Millis) -> Millis {
        Millis(t.0 - self.skew_ms)
    }

    fn apply_snapshot(
        &mut self,
        seq: Seq,
        snapshot: AgentSnapshot,
        now: Millis,
        fx: &mut Vec<Effect>,
    ) {
        // Reads held back for a burst go to the hub now, with the marker
        // the agent reached: the snapshot carries the hub's, which may be
        // older, and would otherwise be all that is left of them. (Not for
        // a conversation the snapshot no longer has: the hub would refuse.)
        let held: Vec<ConversationId> = snapshot
            .conversations
            .iter()
            .map(|c| c.conversation.id)
            .filter(|c| self.read_held_back(*c))
            .collect();
        for cid in held {
            self.send_read_marker(cid, fx);
        }
        // Offers shown now but absent from the snapshot were resolved.
        let before: Vec<OfferId> = self.state.offers.keys().copied().collect();
        let still: BTreeSet<OfferId> = snapshot.offers.iter().map(|o| o.id).collect();
        for id in before.into_iter().filter(|id| !still.contains(id)) {
            self.forget_offer(id, OfferClosed::Resolved, fx);
        }
        if seq < self.state.last_seq {
            // The hub is behind what we saw (restored from a backup, its
            // database lost): the offer ids we handled may be given to new
            // offers, which must not be taken for old ones and hidden.
            // After the loop above, which records the ids it drops as
            // handled: those too may come back as new offers.
            tracing::warn!(
                ours = self.state.last_seq.0,
                hub = seq.0,
                "the hub went back in time; forgetting handled offers"
            );
            self.state.handled_offers.clear();
            fx.push(Effect::Store(StoreOp::ForgetHandledOffers));
        }
        let old_convs: BTreeSet<ConversationId> =
            self.state.conversations.keys().copied().collect();
        fx.push(Effect::Store(StoreOp::ResetHubState));
        self.state.last_seq = seq;
        self.state.profile = Some(snapshot.agent.clone());
        fx.push(Effect::Store(StoreOp::PutProfile(snapshot.agent)));
        self.state.presence = Some(snapshot.presence);
        fx.push(Effect::Store(StoreOp::PutPresence(snapshot.presence)));
        self.banners_for_snapshot(snapshot.presence, now, fx);
        let mut convs = BTreeMap::new();
        for cs in snapshot.conversations {
            let id = cs.conversation.id;
            let session_open = self
                .state
                .conversations
                .get(&id)
                .is_some_and(|c| c.session_open);
            let newest = cs.messages.iter().map(|m| m.id).max();
            let view = ConversationView {
                summary: cs.conversation,
                unread: cs.unread,
                last_read: cs.last_read,
                newest_message: newest,
                session_open,
                messages: cs.messages.into_iter().collect(),
                has_earlier: cs.has_earlier,
            };
            fx.push(Effect::Store(StoreOp::PutConversation(view.record())));
            for m in &view.messages {
                fx.push(Effect::Store(StoreOp::PutMessage(m.clone())));
            }
            convs.insert(id, view);
        }
        for gone in old_convs.iter().filter(|c| !convs.contains_key(c)) {
            fx.push(Effect::CloseNotification(NotificationKey::Conversation(
                *gone,
            )));
            self.last_notified.remove(gone);
            self.dirty.remove(gone);
            self.deferred_toasts.remove(gone);
        }
        // Read meanwhile (on another device): its "new messages" go.
        for (id, view) in &convs {
            let was_unread = self
                .state
                .conversations
                .get(id)
                .is_some_and(|c| c.unread > 0);
            if was_unread && view.unread == 0 {
                self.dirty.remove(id);
                fx.push(Effect::CloseNotification(NotificationKey::Conversation(
                    *id,
                )));
            }
        }
        // Drafts go with their conversations (and any a late save left).
        self.state.drafts.retain(|c, _| convs.contains_key(c));
        self.state.conversations = convs;
        if self
            .state
            .active
            .is_some_and(|a| !self.state.conversations.contains_key(&a))
        {
            self.state.active = None;
        }
        fx.push(Effect::Store(StoreOp::PutActive(self.state.active)));
        // What the agent has in front of them is read, whatever the hub
        // had heard of it (a read marker still held back for a burst).
        if let Some(active) = self.state.active {
            self.read_if_visible(active, fx);
        }
        for (c, d) in &self.state.drafts {
            fx.push(Effect::Store(StoreOp::PutDraft(*c, d.clone())));
        }
        for offer in snapshot.offers {
            if self.state.handled_offers.contains(&offer.id) {
                continue;
            }
            let pending = PendingOffer {
                deadline: self.hub_to_local(offer.expires_at),
                offer,
            };
            fx.push(Effect::Store(StoreOp::PutOffer(pending.clone())));
            let new = !self.state.offers.contains_key(&pending.offer.id);
            self.state.offers.insert(pending.offer.id, pending.clone());
            if new && pending.deadline > now {
                self.show_offer(&pending, now, fx);
            }
        }
        fx.push(Effect::Ui(UiEvent::Reset));
    }

    fn apply_event(&mut self, ev: EventFrame, now: Millis, fx: &mut Vec<Effect>) {
        if ev.seq <= self.state.last_seq {
            // Already applied (replay overlap): dedupe by seq.
            return;
        }
        self.state.last_seq = ev.seq;
        match ev.event {
            AgentEvent::PresenceChanged { presence, reason } => {
                self.state.presence = Some(presence);
                fx.push(Effect::Store(StoreOp::PutPresence(presence)));
                fx.push(Effect::Ui(UiEvent::PresenceChanged { presence }));
                // A person set it (a supervisor's reset, or the agent on
                // another device): the banners asking for a reset are
                // answered. The system's own changes come with their notice.
                if matches!(reason, PresenceReason::Agent | PresenceReason::Supervisor) {
                    self.clear_banners(fx);
                }
            }
            AgentEvent::OfferCreated { offer } => {
                if self.state.handled_offers.contains(&offer.id)
                    || self.state.offers.contains_key(&offer.id)
                {
                    return;
                }
                let pending = PendingOffer {
                    deadline: self.hub_to_local(offer.expires_at),
                    offer,
                };
                fx.push(Effect::Store(StoreOp::PutOffer(pending.clone())));
                if pending.deadline <= now {
                    // Arrived too late (e.g. replayed after a long outage).
                    self.state.handled_offers.insert(pending.offer.id);
                    fx.push(Effect::Store(StoreOp::OfferHandled(pending.offer.id)));
                    return;
                }
                self.state.offers.insert(pending.offer.id, pending.clone());
                self.show_offer(&pending, now, fx);
            }
            AgentEvent::OfferResolved {
                offer_id, outcome, ..
            } => {
                let why = match outcome {
                    OfferOutcome::Accepted => OfferClosed::Accepted,
                    OfferOutcome::Rejected => OfferClosed::Rejected,
                    _ => OfferClosed::Resolved,
                };
                self.forget_offer(offer_id, why, fx);
            }
            AgentEvent::ConversationAssigned {
                conversation,
                mode,
                open_session,
                template,
                messages,
                origin,
                last_read,
                unread,
                has_earlier,
            } => self.assigned(
                Assignment {
                    summary: conversation,
                    mode,
                    open_session,
                    template,
                    messages,
                    origin,
                    read: unread.map(|u| (last_read, u)),
                    has_earlier,
                },
                now,
                fx,
            ),
            AgentEvent::ConversationRevoked {
                conversation_id,
                reason,
            } => {
                let name = self
                    .state
                    .conversations
                    .get(&conversation_id)
                    .map(|c| c.summary.customer.name.clone());
                self.remove_conversation(conversation_id, fx);
                let text = match reason {
                    RevokeReason::TakenOver => Some("was taken over by a teammate"),
                    RevokeReason::Reassigned => Some("was reassigned by a supervisor"),
                    RevokeReason::DisconnectedGrace => Some("was rerouted while you were away"),
                    _ => None,
                };
                if let (Some(name), Some(text)) = (name, text) {
                    self.info_toast(
                        conversation_id,
                        format!("Conversation with {name} {text}"),
                        Vec::new(),
                        now,
                        fx,
                    );
                }
            }
            AgentEvent::ConversationClosed { conversation_id } => {
                self.remove_conversation(conversation_id, fx);
            }
            AgentEvent::ConversationUpdated { conversation } => {
                let id = conversation.id;
                if let Some(c) = self.state.conversations.get_mut(&id) {
                    c.summary = conversation;
                    fx.push(Effect::Store(StoreOp::PutConversation(c.record())));
                    fx.push(Effect::Ui(UiEvent::ConversationChanged {
                        conversation_id: id,
                    }));
                }
            }
            AgentEvent::RequestAnswered {
                conversation_id,
                request,
                by,
                accepted,
                rejected,
                reason,
            } => {
                let what = match request {
                    RequestKind::Consult => "consult request",
                    RequestKind::Assign => "assign request",
                    RequestKind::Discuss => "discuss request",
                    RequestKind::Unknown => "request",
                };
                // An older hub says no `rejected`: a reason still means one.
                let title = if accepted {
                    format!("{} accepted your {what}", by.name)
                } else if rejected || reason.is_some() {
                    format!("{} rejected your {what}", by.name)
                } else {
                    format!("{} did not answer your {what}", by.name)
                };
                let body = reason
                    .map(|r| vec![format!("Reason: {r}")])
                    .unwrap_or_default();
                self.info_toast(conversation_id, title, body, now, fx);
            }
            AgentEvent::MessageAdded { message } => self.message(message, now, fx),
            AgentEvent::ReadMarkerMoved {
                conversation_id,
                message_id,
                unread,
            } => {
                if let Some(c) = self.state.conversations.get_mut(&conversation_id) {
                    if c.last_read.is_none_or(|r| message_id >= r) {
                        c.last_read = Some(message_id);
                        // The hub's count is authoritative: events are
                        // ordered, so it covers every message applied so far.
                        c.unread = unread;
                        fx.push(Effect::Store(StoreOp::PutConversation(c.record())));
                        fx.push(Effect::Ui(UiEvent::ConversationChanged { conversation_id }));
                    }
                    if c.unread == 0 {
                        self.dirty.remove(&conversation_id);
                        fx.push(Effect::CloseNotification(NotificationKey::Conversation(
                            conversation_id,
                        )));
                    }
                }
            }
            AgentEvent::Notice { notice, message } => {
                let banner = Banner {
                    notice,
                    message,
                    at: now,
                };
                self.state.banners.retain(|b| b.notice != notice);
                self.state.banners.push(banner.clone());
                fx.push(Effect::Store(StoreOp::PutBanners(
                    self.state.banners.clone(),
                )));
                if self.desktop_allowed(DesktopNotifications::WhenUnfocused) {
                    fx.push(Effect::Notify(OsNotification {
                        key: NotificationKey::Notice(notice),
                        style: NotificationStyle::Toast,
                        title: "Switchboard".into(),
                        body: vec![banner.message.clone()],
                        actions: vec![NotificationAction::Open],
                        expires_at: Some(Millis(now.0 + 10_000)),
                        countdown: false,
                        refresh: false,
                        answer_words: AnswerWords::AcceptReject,
                    }));
                }
                fx.push(Effect::Ui(UiEvent::Banner { banner }));
            }
            AgentEvent::Unknown => {}
        }
    }

    /// A toast that only informs: OS notification (per the agent's
    /// setting), chime, in-app toast. Clicking it opens the conversation if
    /// it is still here.
    fn info_toast(
        &mut self,
        conversation_id: ConversationId,
        title: String,
        body: Vec<String>,
        now: Millis,
        fx: &mut Vec<Effect>,
    ) {
        let toast = Toast {
            conversation_id,
            title,
            body,
            desktop: DesktopNotifications::WhenUnfocused,
            duration_ms: 10_000,
        };
        self.toast(toast, now, fx);
    }

    /// Raises a toast: the OS notification (if the setting and `desktop`
    /// allow it), the chime, the in-app toast. Returns whether the OS
    /// notification was raised.
    fn toast(&mut self, t: Toast, now: Millis, fx: &mut Vec<Effect>) -> bool {
        let Toast {
            conversation_id,
            title,
            body,
            desktop,
            duration_ms,
        } = t;
        let notified = self.desktop_allowed(desktop);
        // At most one OS notification (and chime) per conversation per
        // COALESCE_MS, as for messages: a second toast in the window waits
        // for it to pass instead of replacing the first at once.
        let recent = self
            .last_notified
            .get(&conversation_id)
            .is_some_and(|t| !coalesce_due(*t, now));
        if notified {
            let n = OsNotification {
                key: NotificationKey::Conversation(conversation_id),
                style: NotificationStyle::Toast,
                title: title.clone(),
                body: body.clone(),
                actions: vec![NotificationAction::Open],
                expires_at: Some(Millis(now.0 + duration_ms as i64)),
                countdown: false,
                refresh: false,
                answer_words: AnswerWords::AcceptReject,
            };
            if recent {
                self.deferred_toasts.insert(conversation_id, n);
            } else {
                fx.push(Effect::Notify(n));
                self.last_notified.insert(conversation_id, now);
            }
        }
        if self.sound_allowed() && !recent {
            fx.push(Effect::Chime);
        }
        fx.push(Effect::Ui(UiEvent::Toast {
            conversation_id,
            title,
            body: body.join("\n"),
            duration_ms,
        }));
        notified
    }

    fn assigned(&mut self, a: Assignment, now: Millis, fx: &mut Vec<Effect>) {
        let Assignment {
            summary,
            mode,
            open_session,
            template,
            messages,
            origin,
            read,
            has_earlier,
        } = a;
        let id = summary.id;
        let existing = self.state.conversations.remove(&id);
        let mut view = existing.unwrap_or(ConversationView {
            summary: summary.clone(),
            unread: 0,
            last_read: None,
            newest_message: None,
            session_open: false,
            messages: VecDeque::new(),
            has_earlier: None,
        });
        view.summary = summary.clone();
        view.session_open |= open_session;
        // The hub's flag is about the history it sent; a history already
        // cached keeps what is known about its own first message.
        if view.messages.is_empty() {
            view.has_earlier = has_earlier;
        }
        for m in messages {
            if view.newest_message.is_none_or(|n| m.id > n) {
                if m.author == Author::Customer && view.last_read.is_none_or(|r| m.id > r) {
                    view.unread += 1;
                }
                view.newest_message = Some(m.id);
                fx.push(Effect::Store(StoreOp::PutMessage(m.clone())));
                view.messages.push_back(m);
            }
        }
        while view.messages.len() > RECENT_MESSAGES {
            view.messages.pop_front();
            view.has_earlier = Some(true);
        }
        // The hub's count covers the whole thread and its read marker (a
        // conversation back with someone who read it): as a resync would
        // count, where the history alone counts every customer message.
        if let Some((last_read, unread)) = read {
            view.unread = unread;
            if last_read.is_some() {
                view.last_read = last_read;
            }
        }
        fx.push(Effect::Store(StoreOp::PutConversation(view.record())));
        self.state.conversations.insert(id, view);
        fx.push(Effect::Ui(UiEvent::ConversationChanged {
            conversation_id: id,
        }));
        if open_session {
            // Accepted by the agent: to the front. Accepted for them
            // (auto-accept) while they work in another conversation at the
            // window: its session opens beside it and the toast says so;
            // brought to the front, the rest of a sentence typed for one
            // customer would go into another's composer.
            let working_elsewhere = self.focused && self.state.active.is_some_and(|a| a != id);
            if !(mode == AssignMode::AutoAccept && working_elsewhere) {
                self.set_active(Some(id), fx);
                // Accepted or joined at the window: what the customer
                // wrote is on screen in front of the agent who just acted,
                // so it is read (the badge, the tray and the hub must not
                // count it as waiting). One assigned on a timeout or by a
                // supervisor may have come while the agent was away.
                // Auto-accepted into a focused window with nothing else
                // in front, no offer card over it either: on screen just
                // the same.
                let decided = matches!(mode, AssignMode::Accepted | AssignMode::Joined);
                let auto_in_view = mode == AssignMode::AutoAccept && self.state.offers.is_empty();
                if decided || auto_in_view {
                    self.read_if_visible(id, fx);
                }
            }
        }
        // Notify what the agent did not decide themselves.
        if !matches!(mode, AssignMode::Accepted | AssignMode::Joined) {
            let title = match (&origin, mode) {
                (OfferOrigin::NewConversation | OfferOrigin::Unknown, _)
                | (_, AssignMode::Supervisor) => None,
                _ => Some(offer_headline(&origin, &summary)),
            };
            let title = title.unwrap_or_else(|| match mode {
                AssignMode::Supervisor => {
                    format!("Assigned to you by a supervisor: {}", summary.customer.name)
                }
                AssignMode::CaseAssignment => format!("Case assigned: {}", summary.customer.name),
                AssignMode::AutoAccept => format!(
                    "{} conversation started: {}",
                    channel_name(summary.channel),
                    summary.customer.name
                ),
                AssignMode::OnTimeout => format!("Assigned to you: {}", summary.customer.name),
                _ => format!(
                    "{} assigned: {}",
                    channel_name(summary.channel),
                    summary.customer.name
                ),
            });
            let mut body = detail_lines(&summary, &template, Millis(now.0 + self.skew_ms));
            body.extend(origin_lines(&origin));
            let toast = Toast {
                conversation_id: id,
                title,
                body,
                desktop: template.desktop,
                duration_ms: u64::from(template.timeout_secs.max(1)) * 1000,
            };
            self.toast(toast, now, fx);
        }
    }

    fn message(&mut self, message: Message, now: Millis, fx: &mut Vec<Effect>) {
        let cid = message.conversation_id;
        let visible = self.focused && self.state.active == Some(cid);
        let Some(c) = self.state.conversations.get_mut(&cid) else {
            return;
        };
        if c.newest_message.is_some_and(|n| message.id <= n) {
            return;
        }
        c.newest_message = Some(message.id);
        let from_customer = message.author == Author::Customer;
        if from_customer && c.last_read.is_none_or(|r| message.id > r) {
            c.unread += 1;
        }
        c.messages.push_back(message.clone());
        while c.messages.len() > RECENT_MESSAGES {
            c.messages.pop_front();
            c.has_earlier = Some(true);
        }
        fx.push(Effect::Store(StoreOp::PutMessage(message.clone())));
        fx.push(Effect::Store(StoreOp::PutConversation(c.record())));
        fx.push(Effect::Ui(UiEvent::MessageAdded { message }));
        fx.push(Effect::Ui(UiEvent::ConversationChanged {
            conversation_id: cid,
        }));
        if !from_customer {
            return;
        }
        if visible {
            self.read_if_visible(cid, fx);
            return;
        }
        // Coalesce: at most one notification (and chime) per conversation
        // per COALESCE_MS; later messages in the window update it once.
        let recent = self
            .last_notified
            .get(&cid)
            .is_some_and(|t| !coalesce_due(*t, now));
        if recent {
            self.dirty.insert(cid);
        } else {
            self.notify_messages(cid, now, fx);
            if self.sound_allowed() {
                fx.push(Effect::Chime);
            }
        }
    }

    fn notify_messages(&mut self, cid: ConversationId, now: Millis, fx: &mut Vec<Effect>) {
        self.dirty.remove(&cid);
        let Some(c) = self.state.conversations.get(&cid) else {
            return;
        };
        if c.unread == 0 {
            return;
        }
        self.last_notified.insert(cid, now);
        let desktop = self.desktop_allowed(DesktopNotifications::WhenUnfocused);
        let latest = c
            .messages
            .iter()
            .rev()
            .find(|m| m.author == Author::Customer)
            .map(|m| m.text.chars().take(200).collect::<String>())
            .unwrap_or_default();
        let count = if c.unread == 1 {
            "1 new message".to_string()
        } else {
            format!("{} new messages", c.unread)
        };
        let title = format!(
            "{} ({})",
            c.summary.customer.name,
            channel_name(c.summary.channel)
        );
        if !desktop {
            // In the app (the agent is working in another conversation, or
            // wants no desktop notifications): the seed's "View chat"
            // notification is an in-app toast that opens it.
            fx.push(Effect::Ui(UiEvent::Toast {
                conversation_id: cid,
                title,
                body: format!("{count}\n{latest}"),
                duration_ms: MESSAGE_TOAST_MS,
            }));
            return;
        }
        fx.push(Effect::Notify(OsNotification {
            key: NotificationKey::Conversation(cid),
            style: NotificationStyle::Toast,
            title,
            body: vec![count, latest],
            actions: vec![NotificationAction::Open],
            expires_at: Some(Millis(now.0 + 10_000)),
            countdown: false,
            refresh: false,
            answer_words: AnswerWords::AcceptReject,
        }));
    }

    fn remove_conversation(&mut self, cid: ConversationId, fx: &mut Vec<Effect>) {
        if self.state.conversations.remove(&cid).is_some() {
            fx.push(Effect::Store(StoreOp::DeleteConversation(cid)));
            fx.push(Effect::Ui(UiEvent::ConversationRemoved {
                conversation_id: cid,
            }));
        }
        self.state.drafts.remove(&cid);
        self.dirty.remove(&cid);
        self.last_notified.remove(&cid);
        // A toast held back for it goes with it (its in-app toast was
        // shown); kept, it had no time to fall due and came at some later
        // tick, for a conversation whose notification was just closed.
        self.deferred_toasts.remove(&cid);
        fx.push(Effect::CloseNotification(NotificationKey::Conversation(
            cid,
        )));
        if self.state.active == Some(cid) {
            self.set_active(None, fx);
        }
    }

    // ------------------------------------------------------------- offers

    fn show_offer(&mut self, p: &PendingOffer, now: Millis, fx: &mut Vec<Effect>) {
        let o = &p.offer;
        if self.desktop_allowed(o.template.desktop) {
            self.raise_offer(p, now, fx);
        }
        fx.push(Effect::Ui(UiEvent::OfferShown {
            offer: Box::new(p.clone()),
            headline: offer_title(o),
        }));
    }

    /// Puts up a pending offer's OS notification, with its countdown.
    fn raise_offer(&mut self, p: &PendingOffer, now: Millis, fx: &mut Vec<Effect>) {
        fx.push(Effect::Notify(self.offer_notification(p, now, false)));
        self.schedule_countdown(p, now);
        self.on_desktop.insert(p.offer.id);
    }

    /// The app lost focus: offers shown only in the app (the policy kept
    /// them off the desktop while it had focus) get their OS notification
    /// now, if the policy allows it unfocused. Those already up stay as
    /// they are.
    fn raise_offers_shown_in_app(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        let unraised: Vec<PendingOffer> = self
            .state
            .offers
            .values()
            .filter(|p| p.deadline > now && !self.on_desktop.contains(&p.offer.id))
            .cloned()
            .collect();
        for p in unraised {
            if self.desktop_allowed(p.offer.template.desktop) {
                self.raise_offer(&p, now, fx);
            }
        }
    }

    /// An offer's OS notification as of `now` (its wait time and
    /// countdown).
    fn offer_notification(&self, p: &PendingOffer, now: Millis, refresh: bool) -> OsNotification {
        let o = &p.offer;
        let t = &o.template;
        let mut body = detail_lines(&o.conversation, t, Millis(now.0 + self.skew_ms));
        body.extend(origin_lines(&o.origin));
        if t.show_timeout {
            body.push(format!(
                "Respond within {}",
                wait_text(p.deadline.0 - now.0)
            ));
        }
        let mut actions = vec![NotificationAction::Accept];
        if t.allow_reject {
            actions.push(NotificationAction::Reject);
        }
        OsNotification {
            key: NotificationKey::Offer(o.id),
            style: NotificationStyle::Alert,
            title: offer_title(o),
            body,
            actions,
            expires_at: Some(p.deadline),
            countdown: t.show_timeout,
            refresh,
            answer_words: AnswerWords::of(&o.origin),
        }
    }

    /// Plans the next countdown update of a shown offer notification, if
    /// it has a countdown and time left after the step.
    fn schedule_countdown(&mut self, p: &PendingOffer, now: Millis) {
        let next = Millis(now.0 + COUNTDOWN_STEP_MS);
        if p.offer.template.show_timeout && next < p.deadline {
            self.countdown_due.insert(p.offer.id, next);
        } else {
            self.countdown_due.remove(&p.offer.id);
        }
    }

    /// Removes an offer from the screen for good.
    fn forget_offer(&mut self, id: OfferId, why: OfferClosed, fx: &mut Vec<Effect>) {
        let was_pending = self.state.offers.remove(&id).is_some();
        self.countdown_due.remove(&id);
        self.on_desktop.remove(&id);
        if self.state.handled_offers.insert(id) {
            fx.push(Effect::Store(StoreOp::OfferHandled(id)));
            while self.state.handled_offers.len() > HANDLED_MEMORY {
                self.state.handled_offers.pop_first();
            }
        }
        if was_pending {
            fx.push(Effect::CloseNotification(NotificationKey::Offer(id)));
            fx.push(Effect::Ui(UiEvent::OfferClosed { offer_id: id, why }));
        }
    }

    // ------------------------------------------------------------- agent

    fn command(&mut self, command: Command, fx: &mut Vec<Effect>) -> CommandId {
        // A read held back for a burst goes before anything else the agent
        // does in that conversation: after a close or a transfer it would
        // be refused, and the hub's marker left behind.
        if let Some(cid) = about(&command) {
            if !matches!(command, Command::MarkRead { .. }) && self.read_held_back(cid) {
                self.send_read_marker(cid, fx);
            }
        }
        self.next_id += 1;
        let id = CommandId(format!("{}-{}", self.id_prefix, self.next_id));
        self.in_flight
            .insert(id.clone(), InFlight::of(&command, None));
        fx.push(Effect::Send(CommandFrame {
            id: id.clone(),
            command,
        }));
        id
    }

    /// Takes on the commands a previous run sent and saw no answer to (the
    /// runtime sends them again, same ids), with the offers they accepted,
    /// so that a refusal after a restart is handled as before it: a reply
    /// goes back into the draft, an offer still pending on the hub is
    /// shown again, and the failure names what the agent did.
    pub fn adopt_outbox(&mut self, outbox: &[CommandFrame], accepting: Vec<PendingOffer>) {
        let mut accepting: BTreeMap<OfferId, PendingOffer> =
            accepting.into_iter().map(|p| (p.offer.id, p)).collect();
        for frame in outbox {
            let offer = match frame.command {
                Command::AcceptOffer { offer_id } => accepting.remove(&offer_id),
                _ => None,
            };
            self.in_flight
                .insert(frame.id.clone(), InFlight::of(&frame.command, offer));
        }
    }

    /// Makes a reply that was not sent the conversation's draft again, in
    /// front of anything typed since (which is kept after it), unless the
    /// draft already holds it (a local refusal, before the draft was
    /// cleared). A conversation gone meanwhile has nowhere to keep it; the
    /// failure message still says the send failed.
    fn restore_reply(&mut self, conversation_id: ConversationId, text: &str, fx: &mut Vec<Effect>) {
        if !self.state.conversations.contains_key(&conversation_id) {
            return;
        }
        let draft = self.state.drafts.entry(conversation_id).or_default();
        if draft.is_empty() {
            text.clone_into(draft);
        } else if !draft.starts_with(text) {
            *draft = format!("{text}\n\n{draft}");
        }
        let draft = draft.clone();
        fx.push(Effect::Store(StoreOp::PutDraft(
            conversation_id,
            draft.clone(),
        )));
        fx.push(Effect::Ui(UiEvent::DraftRestored {
            conversation_id,
            draft,
        }));
    }

    fn refuse(&self, what: &str, code: ErrorCode, message: &str, fx: &mut Vec<Effect>) {
        self.refuse_about(what, None, code, message, fx);
    }

    /// A refusal that names the conversation the action was about, so the
    /// panel that asked knows it is its own.
    fn refuse_about(
        &self,
        what: &str,
        conversation_id: Option<ConversationId>,
        code: ErrorCode,
        message: &str,
        fx: &mut Vec<Effect>,
    ) {
        fx.push(Effect::Ui(UiEvent::CommandFailed {
            what: what.into(),
            error: ErrorBody::new(code, message),
            conversation_id,
        }));
    }

    fn agent(&mut self, action: AgentAction, now: Millis, fx: &mut Vec<Effect>) {
        match action {
            AgentAction::Accept { offer_id } => self.accept(offer_id, fx),
            AgentAction::AcceptSoonest => {
                // The one brought forward, while pending; else the one that
                // lapses first, as the window's alert card shows it (the
                // newest among equal deadlines, as the card keeps the
                // view's newest-first order for those).
                let shown = self
                    .shown_offer
                    .filter(|id| self.state.offers.contains_key(id));
                let soonest = shown.or_else(|| {
                    self.state
                        .offers
                        .values()
                        .min_by_key(|p| {
                            (
                                p.deadline,
                                std::cmp::Reverse((p.offer.created_at, p.offer.id)),
                            )
                        })
                        .map(|p| p.offer.id)
                });
                match soonest {
                    Some(id) => self.accept(id, fx),
                    None => self.refuse("accept", ErrorCode::NotFound, "no pending offer", fx),
                }
            }
            AgentAction::ShowOffer { offer_id } => {
                if self.state.offers.contains_key(&offer_id) {
                    self.shown_offer = Some(offer_id);
                }
            }
            AgentAction::Reject { offer_id, reason } => {
                let Some(p) = self.state.offers.get(&offer_id) else {
                    return self.refuse("reject", ErrorCode::NotFound, "no such pending offer", fx);
                };
                if !p.offer.template.allow_reject {
                    return self.refuse(
                        "reject",
                        ErrorCode::RejectNotAllowed,
                        "this offer cannot be rejected",
                        fx,
                    );
                }
                let reason = clean(reason);
                let needs_reason =
                    p.offer.template.reject_reason_required || p.offer.origin.reason_required();
                if needs_reason && reason.is_none() {
                    return self.refuse(
                        "reject",
                        ErrorCode::ReasonRequired,
                        "a reason is required to reject",
                        fx,
                    );
                }
                self.command(Command::RejectOffer { offer_id, reason }, fx);
                self.forget_offer(offer_id, OfferClosed::Rejected, fx);
            }
            AgentAction::SetPresence { presence } => {
                if presence == Presence::Inactive {
                    return self.refuse(
                        "set presence",
                        ErrorCode::InvalidPresence,
                        "inactive is set by the system",
                        fx,
                    );
                }
                if presence == Presence::Other {
                    return self.refuse(
                        "set presence",
                        ErrorCode::InvalidPresence,
                        "that presence is set by the hub",
                        fx,
                    );
                }
                self.command(Command::SetPresence { presence }, fx);
                // A reset clears the banners that asked for it.
                self.clear_banners(fx);
            }
            AgentAction::ResetPresence => {
                self.command(Command::ResetPresence, fx);
                self.clear_banners(fx);
            }
            AgentAction::SendMessage {
                conversation_id,
                text,
            } => {
                if !self.state.conversations.contains_key(&conversation_id) {
                    return self.refuse("send", ErrorCode::NotFound, "no such conversation", fx);
                }
                if text.trim().is_empty() {
                    return self.refuse("send", ErrorCode::InvalidFrame, "empty message", fx);
                }
                if text.len() > switchboard_protocol::MAX_MESSAGE_TEXT_BYTES {
                    // The composer gave it up on sending: give it back.
                    self.restore_reply(conversation_id, &text, fx);
                    return self.refuse("send", ErrorCode::TooLarge, "message too long", fx);
                }
                self.command(
                    Command::SendMessage {
                        conversation_id,
                        text,
                    },
                    fx,
                );
                if self.state.drafts.remove(&conversation_id).is_some() {
                    fx.push(Effect::Store(StoreOp::PutDraft(
                        conversation_id,
                        String::new(),
                    )));
                }
            }
            AgentAction::Open { conversation_id } => {
                let Some(c) = self.state.conversations.get_mut(&conversation_id) else {
                    return self.refuse("open", ErrorCode::NotFound, "no such conversation", fx);
                };
                if !c.session_open {
                    c.session_open = true;
                    fx.push(Effect::Store(StoreOp::PutConversation(c.record())));
                }
                self.set_active(Some(conversation_id), fx);
                fx.push(Effect::CloseNotification(NotificationKey::Conversation(
                    conversation_id,
                )));
                // Opening is the agent looking at it, whatever the (often
                // unreliable) focus events said.
                self.mark_read(conversation_id, fx);
            }
            AgentAction::MarkRead { conversation_id } => self.mark_read(conversation_id, fx),
            AgentAction::Close { conversation_id } => {
                if !self.state.conversations.contains_key(&conversation_id) {
                    return self.refuse("close", ErrorCode::NotFound, "no such conversation", fx);
                }
                self.command(Command::CloseConversation { conversation_id }, fx);
            }
            AgentAction::SetDraft {
                conversation_id,
                text,
            } => {
                // A save that lands after the conversation left (closed,
                // transferred) has nothing to belong to: kept, it would
                // sit in the cache for good.
                if !self.state.conversations.contains_key(&conversation_id) {
                    return;
                }
                if text.is_empty() {
                    self.state.drafts.remove(&conversation_id);
                } else {
                    self.state.drafts.insert(conversation_id, text.clone());
                }
                fx.push(Effect::Store(StoreOp::PutDraft(conversation_id, text)));
            }
            AgentAction::UpdateSettings { mut settings } => {
                // In range whatever the page sent: a volume is a percentage,
                // and a reminder under five seconds would chime on and on.
                settings.volume = settings.volume.min(100);
                settings.reminder_secs = settings
                    .reminder_secs
                    .filter(|s| *s > 0)
                    .map(|s| s.max(MIN_REMINDER_SECS));
                if settings.start_at_login != self.state.settings.start_at_login {
                    fx.push(Effect::StartAtLogin(settings.start_at_login));
                }
                self.state.settings = settings.clone();
                fx.push(Effect::Store(StoreOp::PutSettings(settings)));
                fx.push(Effect::Ui(UiEvent::SettingsChanged));
                self.next_reminder = None;
                self.schedule_reminder(now);
            }
            AgentAction::Transfer {
                conversation_id,
                target,
                note,
            } => {
                if self.owned_or_refuse("transfer", conversation_id, fx) {
                    self.command(
                        Command::TransferConversation {
                            conversation_id,
                            target,
                            note: clean(note),
                        },
                        fx,
                    );
                }
            }
            AgentAction::Escalate {
                conversation_id,
                supervisor_id,
                note,
            } => {
                if self.owned_or_refuse("escalate", conversation_id, fx) {
                    self.command(
                        Command::EscalateConversation {
                            conversation_id,
                            supervisor_id,
                            note: clean(note),
                        },
                        fx,
                    );
                }
            }
            AgentAction::Consult {
                conversation_id,
                agent_id,
            } => {
                if self.owned_or_refuse("consult", conversation_id, fx) {
                    self.command(
                        Command::Consult {
                            conversation_id,
                            agent_id,
                        },
                        fx,
                    );
                }
            }
            AgentAction::RequestAssign {
                conversation_id,
                agent_id,
                reason,
            } => {
                if self.owned_or_refuse("assign request", conversation_id, fx) {
                    self.command(
                        Command::RequestAssign {
                            conversation_id,
                            agent_id,
                            reason: clean(reason),
                        },
                        fx,
                    );
                }
            }
            AgentAction::RequestDiscuss {
                conversation_id,
                agent_id,
            } => {
                if self.owned_or_refuse("discuss request", conversation_id, fx) {
                    self.command(
                        Command::RequestDiscuss {
                            conversation_id,
                            agent_id,
                        },
                        fx,
                    );
                }
            }
            AgentAction::TakeTeamChat { conversation_id } => {
                // One take at a time, whatever the UI remembers (its panel
                // may have been closed and opened again meanwhile): two
                // clicks on two chats must not leave the agent owning both.
                if let Some(earlier) = self.in_flight.values().find(|f| f.what == TAKE) {
                    if earlier.conversation == Some(conversation_id) {
                        // That one is on its way: its answer is this one's.
                        return;
                    }
                    return self.refuse_about(
                        TAKE,
                        Some(conversation_id),
                        ErrorCode::Conflict,
                        "your earlier take is still waiting for the hub's answer",
                        fx,
                    );
                }
                // The hub checks the team and that nobody took it.
                self.command(Command::TakeTeamChat { conversation_id }, fx);
            }
            AgentAction::AssignTo {
                conversation_id,
                agent_id,
            } => {
                let supervisor = self
                    .state
                    .profile
                    .as_ref()
                    .is_some_and(|p| p.role.is_supervisor());
                // Any conversation of the team, not only those in the
                // supervisor's own view (a waiting customer, a teammate's
                // chat from the Team panel): the hub checks the team.
                if !supervisor {
                    self.refuse("assign", ErrorCode::Forbidden, "supervisors only", fx);
                } else {
                    self.command(
                        Command::AssignConversation {
                            conversation_id,
                            agent_id,
                        },
                        fx,
                    );
                }
            }
            AgentAction::DismissBanner { notice } => {
                self.state.banners.retain(|b| b.notice != notice);
                fx.push(Effect::Store(StoreOp::PutBanners(
                    self.state.banners.clone(),
                )));
                fx.push(Effect::CloseNotification(NotificationKey::Notice(notice)));
                fx.push(Effect::Ui(UiEvent::BannersChanged));
            }
        }
    }

    /// Whether this agent owns the conversation; refuses (with a UI
    /// message) otherwise. Consultants and discussion partners do not hand
    /// a conversation on.
    fn owned_or_refuse(&self, what: &str, cid: ConversationId, fx: &mut Vec<Effect>) -> bool {
        let me = self.state.profile.as_ref().map(|p| p.id);
        match self.state.conversations.get(&cid) {
            Some(c) if c.summary.owner.is_some() && c.summary.owner == me => true,
            Some(_) => {
                self.refuse(what, ErrorCode::Forbidden, "only the owner can do this", fx);
                false
            }
            None => {
                self.refuse(what, ErrorCode::NotFound, "no such conversation", fx);
                false
            }
        }
    }

    fn accept(&mut self, offer_id: OfferId, fx: &mut Vec<Effect>) {
        if !self.state.offers.contains_key(&offer_id) {
            return self.refuse("accept", ErrorCode::NotFound, "no such pending offer", fx);
        }
        let pending = self.state.offers.get(&offer_id).cloned();
        let id = self.command(Command::AcceptOffer { offer_id }, fx);
        if let Some(p) = pending {
            // Kept with the outbox row, so a restart before the answer can
            // still bring it back (`adopt_outbox`).
            fx.push(Effect::Store(StoreOp::PutAccepting {
                command: id.clone(),
                offer: p.clone(),
            }));
            if let Some(sent) = self.in_flight.get_mut(&id) {
                sent.offer = Some(p);
            }
        }
        self.forget_offer(offer_id, OfferClosed::Accepted, fx);
        // Wherever it was accepted (notification, tray, alert window,
        // shortcut), the app comes forward to work on it (seed 001: "the
        // app is made active and displayed to you").
        self.focus_window(None, fx);
    }

    /// An offer whose accept the hub refused while keeping it pending (the
    /// session limit): pending here again, with its alert, until its
    /// deadline, so the agent can accept it once a session is closed.
    fn restore_offer(&mut self, p: PendingOffer, now: Millis, fx: &mut Vec<Effect>) {
        let id = p.offer.id;
        if p.deadline <= now || self.state.offers.contains_key(&id) {
            return;
        }
        self.state.handled_offers.remove(&id);
        fx.push(Effect::Store(StoreOp::PutOffer(p.clone())));
        self.state.offers.insert(id, p.clone());
        self.show_offer(&p, now, fx);
    }

    fn mark_read(&mut self, cid: ConversationId, fx: &mut Vec<Effect>) {
        let Some(c) = self.state.conversations.get_mut(&cid) else {
            return;
        };
        let Some(newest) = c.newest_message else {
            return;
        };
        if c.last_read.is_some_and(|r| r >= newest) && c.unread == 0 {
            return;
        }
        // Optimistic: the hub's read_marker_moved confirms with its count.
        c.last_read = Some(newest);
        c.unread = 0;
        fx.push(Effect::Store(StoreOp::PutConversation(c.record())));
        fx.push(Effect::Ui(UiEvent::ConversationChanged {
            conversation_id: cid,
        }));
        fx.push(Effect::CloseNotification(NotificationKey::Conversation(
            cid,
        )));
        self.dirty.remove(&cid);
        // While one is unanswered, the rest wait for its answer (a burst
        // of messages read as they come costs two commands, not one each).
        if self.read_in_flight(cid).is_none() {
            self.send_read_marker(cid, fx);
        }
    }

    /// Whether the agent has read further in a conversation than the
    /// unanswered read marker sent for it says (held back for a burst).
    fn read_held_back(&self, cid: ConversationId) -> bool {
        let read = self.state.conversations.get(&cid).and_then(|c| c.last_read);
        self.read_in_flight(cid)
            .is_some_and(|sent| read > Some(sent))
    }

    /// The furthest unanswered read marker sent for a conversation.
    fn read_in_flight(&self, cid: ConversationId) -> Option<MessageId> {
        self.in_flight
            .values()
            .filter(|f| f.conversation == Some(cid))
            .filter_map(|f| f.read_to)
            .max()
    }

    /// Tells the hub the agent has read the conversation up to where the
    /// engine's read marker is.
    fn send_read_marker(&mut self, cid: ConversationId, fx: &mut Vec<Effect>) {
        let Some(message_id) = self.state.conversations.get(&cid).and_then(|c| c.last_read) else {
            return;
        };
        if self
            .read_in_flight(cid)
            .is_some_and(|sent| sent >= message_id)
        {
            return;
        }
        self.command(
            Command::MarkRead {
                conversation_id: cid,
                message_id,
            },
            fx,
        );
    }

    /// The banners a snapshot's presence calls for. A snapshot carries no
    /// notices: one taken with a fresh cache (another desk, a rebuilt
    /// cache) would otherwise leave an Inactive agent with no banner and
    /// no Reset presence, getting no work all shift; and one taken after a
    /// supervisor's reset would leave a banner asking for a reset already
    /// made. Inactive is only ever the system's (a missed offer); Do not
    /// disturb may be the agent's own or the system's, so its banners stay
    /// as they are; any other presence answers them.
    fn banners_for_snapshot(&mut self, presence: Presence, now: Millis, fx: &mut Vec<Effect>) {
        match presence {
            Presence::Inactive => {
                if self
                    .state
                    .banners
                    .iter()
                    .any(|b| b.notice == NoticeKind::MissedOffer)
                {
                    return;
                }
                self.state.banners.push(Banner {
                    notice: NoticeKind::MissedOffer,
                    message: MISSED_OFFER_MESSAGE.into(),
                    at: now,
                });
                fx.push(Effect::Store(StoreOp::PutBanners(
                    self.state.banners.clone(),
                )));
                fx.push(Effect::Ui(UiEvent::BannersChanged));
            }
            Presence::DoNotDisturb => {}
            _ => self.clear_banners(fx),
        }
    }

    /// Drops every banner (all ask for a presence reset) and its desktop
    /// notification.
    fn clear_banners(&mut self, fx: &mut Vec<Effect>) {
        if self.state.banners.is_empty() {
            return;
        }
        for b in std::mem::take(&mut self.state.banners) {
            fx.push(Effect::CloseNotification(NotificationKey::Notice(b.notice)));
        }
        fx.push(Effect::Store(StoreOp::PutBanners(Vec::new())));
        fx.push(Effect::Ui(UiEvent::BannersChanged));
    }

    fn read_if_visible(&mut self, cid: ConversationId, fx: &mut Vec<Effect>) {
        if self.focused && self.state.active == Some(cid) {
            self.mark_read(cid, fx);
        }
    }

    fn set_active(&mut self, active: Option<ConversationId>, fx: &mut Vec<Effect>) {
        if self.state.active != active {
            self.state.active = active;
            fx.push(Effect::Store(StoreOp::PutActive(active)));
            fx.push(Effect::Ui(UiEvent::ActiveChanged {
                conversation_id: active,
            }));
        }
    }

    fn notification_clicked(
        &mut self,
        key: NotificationKey,
        action: NotificationAction,
        now: Millis,
        fx: &mut Vec<Effect>,
    ) {
        match (key, action) {
            (NotificationKey::Offer(id), NotificationAction::Accept) => self.accept(id, fx),
            (NotificationKey::Offer(id), NotificationAction::Reject) => {
                let needs_reason = self.state.offers.get(&id).is_some_and(|p| {
                    p.offer.template.reject_reason_required || p.offer.origin.reason_required()
                });
                if needs_reason {
                    // A reason cannot be typed into an OS notification: bring
                    // the in-app alert forward instead.
                    self.focus_window(Some(key), fx);
                } else {
                    self.agent(
                        AgentAction::Reject {
                            offer_id: id,
                            reason: None,
                        },
                        now,
                        fx,
                    );
                }
            }
            (NotificationKey::Offer(_), NotificationAction::Open) => {
                self.focus_window(Some(key), fx);
            }
            (NotificationKey::Conversation(cid), _) => {
                self.focus_window(Some(key), fx);
                if self.state.conversations.contains_key(&cid) {
                    self.agent(
                        AgentAction::Open {
                            conversation_id: cid,
                        },
                        now,
                        fx,
                    );
                }
            }
            (NotificationKey::Notice(_), _) => fx.push(Effect::FocusWindow(Some(key))),
        }
    }

    /// Brings the window forward showing `key`; an offer's key is what the
    /// alert card shows from now on, as the page does on the same event.
    fn focus_window(&mut self, key: Option<NotificationKey>, fx: &mut Vec<Effect>) {
        self.shown_offer = match key {
            Some(NotificationKey::Offer(id)) => Some(id),
            _ => None,
        };
        fx.push(Effect::FocusWindow(key));
    }

    // -------------------------------------------------------------- time

    fn tick(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        let expired: Vec<OfferId> = self
            .state
            .offers
            .values()
            .filter(|p| p.deadline <= now)
            .map(|p| p.offer.id)
            .collect();
        for id in expired {
            self.forget_offer(id, OfferClosed::Expired, fx);
        }
        let counting: Vec<OfferId> = self
            .countdown_due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in counting {
            match self.state.offers.get(&id).cloned() {
                Some(p) => {
                    fx.push(Effect::Notify(self.offer_notification(&p, now, true)));
                    self.schedule_countdown(&p, now);
                }
                None => {
                    self.countdown_due.remove(&id);
                }
            }
        }
        // Toasts held back first; a message update due at the same tick
        // then waits a window more (one notification change per window).
        let toasts_due = self.window_passed(self.deferred_toasts.keys(), now);
        for c in toasts_due {
            if let Some(n) = self.deferred_toasts.remove(&c) {
                fx.push(Effect::Notify(n));
                self.last_notified.insert(c, now);
            }
        }
        for c in self.window_passed(self.dirty.iter(), now) {
            self.notify_messages(c, now, fx);
        }
        if let Some(at) = self.next_reminder {
            if now >= at {
                self.next_reminder = None;
                if self.state.unread_messages() > 0 && self.sound_allowed() {
                    fx.push(Effect::Chime);
                }
            }
        }
    }

    /// Those of `convs` whose notification may change again at `now` (its
    /// last change is a coalescing window old, or there was none).
    fn window_passed<'a>(
        &self,
        convs: impl Iterator<Item = &'a ConversationId>,
        now: Millis,
    ) -> Vec<ConversationId> {
        convs
            .copied()
            .filter(|c| {
                self.last_notified
                    .get(c)
                    .is_none_or(|t| coalesce_due(*t, now))
            })
            .collect()
    }

    fn schedule_reminder(&mut self, now: Millis) {
        if self.next_reminder.is_none() && self.state.unread_messages() > 0 {
            if let Some(secs) = self.state.settings.reminder_secs.filter(|s| *s > 0) {
                self.next_reminder = Some(Millis(now.0 + i64::from(secs) * 1000));
            }
        }
    }

    // ------------------------------------------------------------ policy

    fn desktop_allowed(&self, template_default: DesktopNotifications) -> bool {
        // Unknown focus counts as unfocused: better one alert too many than
        // a missed offer.
        match self
            .state
            .settings
            .desktop_notifications
            .unwrap_or(template_default)
        {
            DesktopNotifications::Always => true,
            // A newer hub's default: the reference's default.
            DesktopNotifications::WhenUnfocused | DesktopNotifications::Other => !self.focused,
            DesktopNotifications::Never => false,
        }
    }

    fn sound_allowed(&self) -> bool {
        match self.state.settings.sound_when {
            SoundWhen::Always => true,
            SoundWhen::WhenUnfocused => !self.focused,
            SoundWhen::Never => false,
        }
    }

    /// Effects that follow from the state as a whole: ring, badge, tray,
    /// reminder.
    fn finish(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        let alerts = self
            .state
            .offers
            .values()
            // A kind a newer hub added counts as an alert: an offer that
            // waits for an answer should not wait in silence.
            .any(|p| p.offer.template.kind != NotificationKind::Toast && p.deadline > now);
        let ring = alerts && self.sound_allowed() && self.state.settings.volume > 0;
        if ring != self.ringing {
            self.ringing = ring;
            fx.push(if ring {
                Effect::StartRing
            } else {
                Effect::StopRing
            });
        }
        let total = self.state.unread_chats();
        if self.last_badge != Some(total) {
            self.last_badge = Some(total);
            fx.push(Effect::Badge(total));
        }
        if total == 0 {
            self.next_reminder = None;
        } else {
            self.schedule_reminder(now);
        }
        let mut offers: Vec<&PendingOffer> = self.state.offers.values().collect();
        offers.sort_by_key(|p| std::cmp::Reverse((p.offer.created_at, p.offer.id)));
        let tray = TrayMenu {
            presence: self.state.presence,
            unread_chats: total,
            offers: offers
                .into_iter()
                .map(|p| TrayOffer {
                    offer_id: p.offer.id,
                    label: tray_label(&p.offer.origin, &p.offer.conversation),
                    can_reject: p.offer.template.allow_reject,
                    reject_needs_reason: p.offer.template.reject_reason_required
                        || p.offer.origin.reason_required(),
                })
                .collect(),
        };
        if self.last_tray.as_ref() != Some(&tray) {
            self.last_tray = Some(tray.clone());
            fx.push(Effect::Tray(tray));
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
