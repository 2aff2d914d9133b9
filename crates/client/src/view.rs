//! What the UI shows, computed from the engine's state. Pure functions: the
//! desktop shell only serializes these.

use serde::{Deserialize, Serialize};
use switchboard_protocol::{
    AgentProfile, Author, Channel, ConversationId, ConversationSummary, Message, Millis, Offer,
    Presence, RECENT_MESSAGES_SENT,
};

use crate::engine::{offer_title, origin_notes, AnswerWords, Banner, ConnectionStatus, Engine};
use crate::settings::AgentSettings;
use crate::wall_clock::WallClock;
use switchboard_protocol::rest::{Account, CaseRecord, Contact, Customer360};

/// One line of the conversation list.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRow {
    /// Id.
    pub id: ConversationId,
    /// Channel.
    pub channel: Channel,
    /// Customer name (untrusted text).
    pub customer_name: String,
    /// Unread customer messages.
    pub unread: u32,
    /// Preview of the newest message (untrusted text).
    pub last_text: Option<String>,
    /// When the newest message arrived.
    pub last_at: Option<Millis>,
    /// Whether a session is open for it.
    pub session_open: bool,
    /// Whether the composer holds a draft.
    pub has_draft: bool,
}

/// A pending offer as the alert shows it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferCard {
    /// The offer.
    pub offer: Offer,
    /// `offer.expires_at` corrected for clock skew.
    pub deadline: Millis,
    /// The alert's heading, worded by the engine like the OS notification
    /// ("Transfer from Ana: Ada Lovelace"); untrusted text inside.
    pub headline: String,
    /// What the origin adds, line by line ([`origin_notes`]: "Note: …",
    /// "Reason: …", the idle owner, the team message); untrusted text.
    pub notes: Vec<String>,
    /// The accepting button ("Accept", or "Yes" to "Assign to me?").
    pub accept_label: String,
    /// The declining button ("Reject", or "No").
    pub reject_label: String,
}

/// Everything the main window renders.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppView {
    /// Who is signed in.
    pub profile: Option<AgentProfile>,
    /// Whether the agent may assign a conversation outright (a supervisor
    /// or admin); the engine and the hub refuse anyone else.
    pub can_assign: bool,
    /// Presence.
    pub presence: Option<Presence>,
    /// Connection.
    pub connection: ConnectionStatus,
    /// Owned conversations with unread messages (the bubble).
    pub unread_chats: u32,
    /// Owned conversations, most recent activity first.
    pub conversations: Vec<ConversationRow>,
    /// The conversation in front.
    pub active: Option<ConversationId>,
    /// Pending offers, newest first.
    pub offers: Vec<OfferCard>,
    /// Banners.
    pub banners: Vec<Banner>,
    /// Settings.
    pub settings: AgentSettings,
}

/// One conversation with its history and draft.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationDetail {
    /// The conversation.
    pub summary: ConversationSummary,
    /// Recent history, oldest first.
    pub messages: Vec<MessageLine>,
    /// Composer draft.
    pub draft: String,
    /// Unread customer messages.
    pub unread: u32,
    /// Whether the hub holds messages before the oldest here (it sends a
    /// conversation with its newest [`RECENT_MESSAGES_SENT`] and says
    /// whether there are more; the cache keeps up to
    /// [`crate::engine::RECENT_MESSAGES`]): the window offers to show
    /// earlier ones ([`EarlierMessages`]). A record cached before the hub
    /// said guesses from a full first page.
    pub may_have_earlier: bool,
}

/// A page of messages from before the oldest the window shows.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierMessages {
    /// Oldest first.
    pub messages: Vec<MessageLine>,
    /// Whether there are more before these.
    pub more: bool,
}

/// A message as the history shows it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageLine {
    /// The message.
    #[serde(flatten)]
    pub message: Message,
    /// When it was sent, on the agent's clock ("14:05"; [`WallClock`]).
    pub time: String,
}

/// A Customer 360 record as the panel shows it: the hub's record, with
/// each earlier conversation carrying its start on the agent's clock.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer360View {
    /// The contact.
    pub contact: Contact,
    /// Its account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// Open cases, newest first.
    pub open_cases: Vec<CaseRecord>,
    /// Earlier conversations linked to the contact, newest first.
    pub earlier_conversations: Vec<EarlierConversation>,
}

/// An earlier conversation as Customer 360 lists it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierConversation {
    /// The conversation.
    #[serde(flatten)]
    pub summary: ConversationSummary,
    /// Its start, on the agent's clock with the date ("2026-11-20 14:05").
    pub started: String,
}

/// Labels a Customer 360 record's times.
pub fn customer_360_view(
    record: Customer360,
    clock: &WallClock,
    settings: &AgentSettings,
) -> Customer360View {
    let Customer360 {
        contact,
        account,
        open_cases,
        earlier_conversations,
    } = record;
    Customer360View {
        contact,
        account,
        open_cases,
        earlier_conversations: earlier_conversations
            .into_iter()
            .map(|summary| EarlierConversation {
                started: clock.date_time(summary.created_at, settings.clock),
                summary,
            })
            .collect(),
    }
}

/// The main window's view of the engine.
pub fn app_view(engine: &Engine) -> AppView {
    let st = engine.state();
    let me = st.profile.as_ref().map(|p| p.id);
    let mut conversations: Vec<ConversationRow> = st
        .conversations
        .values()
        .map(|c| {
            let last = c.messages.back();
            ConversationRow {
                id: c.summary.id,
                channel: c.summary.channel,
                customer_name: c.summary.customer.name.clone(),
                unread: c.unread,
                last_text: last.map(|m| {
                    // Who wrote it, when it was not the customer: the agent
                    // ("You"), another agent (the owner, to a consultant; a
                    // previous owner), or nobody to name (a bot transcript,
                    // a note, an author a newer hub added).
                    let prefix = match m.author {
                        // With no profile yet, an agent's message is taken
                        // for the agent's own, as the chat shows it.
                        Author::Agent { agent_id } if me.is_none_or(|me| me == agent_id) => "You: ",
                        Author::Agent { .. } => "Teammate: ",
                        Author::Customer | Author::System | Author::Other => "",
                    };
                    format!("{prefix}{}", m.text.chars().take(120).collect::<String>())
                }),
                last_at: last.map(|m| m.sent_at).or(Some(c.summary.created_at)),
                session_open: c.session_open,
                has_draft: st.drafts.contains_key(&c.summary.id),
            }
        })
        .collect();
    conversations.sort_by_key(|r| std::cmp::Reverse((r.last_at, r.id)));
    let mut offers: Vec<OfferCard> = st
        .offers
        .values()
        .map(|p| OfferCard {
            headline: offer_title(&p.offer),
            notes: origin_notes(&p.offer.origin),
            accept_label: AnswerWords::of(&p.offer.origin).accept().into(),
            reject_label: AnswerWords::of(&p.offer.origin).reject().into(),
            offer: p.offer.clone(),
            deadline: p.deadline,
        })
        .collect();
    offers.sort_by_key(|p| std::cmp::Reverse((p.offer.created_at, p.offer.id)));
    AppView {
        profile: st.profile.clone(),
        can_assign: st.profile.as_ref().is_some_and(|p| p.role.is_supervisor()),
        presence: st.presence,
        connection: engine.connection(),
        unread_chats: st.unread_chats(),
        conversations,
        active: st.active,
        offers,
        banners: st.banners.clone(),
        settings: st.settings.clone(),
    }
}

/// What the UI asks for when it reads the view again after a change: the
/// conversation it shows, and what the change named (`view_changed`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewRead {
    /// The conversation the UI shows now, if any.
    pub shown: Option<ConversationId>,
    /// Every conversation may have changed.
    pub all: bool,
    /// These conversations changed.
    pub changed: Vec<ConversationId>,
}

/// The conversation in front, as a [`ViewUpdate`] carries it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetailUpdate {
    /// What the UI shows is still right: nothing was read.
    Unchanged,
    /// No conversation is in front (or it is gone).
    Nothing,
    /// The conversation in front, read again.
    Shown {
        /// It (boxed: the other variants are empty).
        detail: Box<ConversationDetail>,
    },
}

/// The view and, when it may have changed, the conversation in front: one
/// read for what used to take two round trips per event.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewUpdate {
    /// The list, offers, banners and settings.
    pub view: AppView,
    /// The conversation in front.
    pub detail: DetailUpdate,
}

/// The view, with the conversation in front read again only if the UI
/// shows another one or the change may have touched it (`read.all`, or it
/// is in `read.changed`): a message in a background conversation costs
/// the list, not the open conversation's whole history.
pub fn view_update(engine: &Engine, read: &ViewRead, clock: &WallClock) -> ViewUpdate {
    let view = app_view(engine);
    let detail = match view.active {
        None => DetailUpdate::Nothing,
        Some(active)
            if !read.all && read.shown == Some(active) && !read.changed.contains(&active) =>
        {
            DetailUpdate::Unchanged
        }
        Some(active) => match conversation_detail(engine, active, clock) {
            Some(detail) => DetailUpdate::Shown {
                detail: Box::new(detail),
            },
            None => DetailUpdate::Nothing,
        },
    };
    ViewUpdate { view, detail }
}

/// A page read from the hub's history as the window shows it: `page`
/// holds up to one more than the page size, which says there are more.
pub fn earlier_messages(
    mut page: Vec<Message>,
    page_size: usize,
    clock: &WallClock,
    settings: &AgentSettings,
) -> EarlierMessages {
    let more = page.len() > page_size;
    if more {
        // The extra one is the oldest: not shown, it only said "more".
        page.remove(0);
    }
    EarlierMessages {
        messages: page
            .into_iter()
            .map(|message| MessageLine {
                time: clock.message_time(message.sent_at, settings.clock),
                message,
            })
            .collect(),
        more,
    }
}

/// One conversation, if the agent owns it.
pub fn conversation_detail(
    engine: &Engine,
    id: ConversationId,
    clock: &WallClock,
) -> Option<ConversationDetail> {
    let st = engine.state();
    let c = st.conversations.get(&id)?;
    Some(ConversationDetail {
        summary: c.summary.clone(),
        messages: c
            .messages
            .iter()
            .map(|m| MessageLine {
                time: clock.message_time(m.sent_at, st.settings.clock),
                message: m.clone(),
            })
            .collect(),
        draft: st.drafts.get(&id).cloned().unwrap_or_default(),
        unread: c.unread,
        // As the hub said; a record cached before it said (or from an
        // older hub) guesses from a full first page.
        may_have_earlier: c
            .has_earlier
            .unwrap_or(c.messages.len() >= RECENT_MESSAGES_SENT as usize),
    })
}
