//! Types that exist only at the IPC boundary.

use serde::{Deserialize, Serialize};
use switchboard_client::engine::{NotificationKey, UiEvent};
use switchboard_protocol::{AgentProfile, ConversationId};
use ts_rs::TS;

/// The sign-in form.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct SignInRequest {
    /// `http(s)://host:port` of the hub.
    pub hub_url: String,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// What the sign-in form is pre-filled with (never a password).
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
pub struct LastLogin {
    /// Last hub URL.
    pub hub_url: String,
    /// Last user name.
    pub username: String,
    /// What became of the session kept from the last run (the form says
    /// so; the `kept_session` and `signed_out` events may have come before
    /// the page listened).
    #[serde(default, skip_deserializing)]
    pub kept_session: KeptSession,
}

/// What became of the session the keychain kept from the last run: the
/// sign-in form shows it, so an agent is not left looking at an empty form
/// while a restart resumes them, nor wondering why it did not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KeptSession {
    /// Nothing to say: none was kept, it resumed, or the agent signed in.
    #[default]
    Quiet,
    /// Being resumed: the keychain may be asking to be unlocked, or the
    /// hub taking its time to answer (up to 5 s before the cached profile
    /// is used).
    Resuming {
        /// Whose session.
        username: String,
        /// On which hub.
        hub_url: String,
    },
    /// The hub refused its token (expired, revoked, signed out elsewhere).
    Refused,
    /// It could not be resumed (the keychain stayed locked, or the hub was
    /// unreachable with nothing cached for the account): sign in by hand.
    Failed {
        /// Why, for the agent.
        message: String,
    },
}

/// Which part of a notification brought the window forward.
#[derive(Debug, Clone, Copy, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FocusTarget {
    /// An offer's in-app alert.
    Offer {
        /// The offer.
        #[ts(type = "number")]
        id: i64,
    },
    /// A conversation.
    Conversation {
        /// The conversation.
        #[ts(type = "number")]
        id: i64,
    },
    /// The banners.
    Banners,
}

impl From<NotificationKey> for FocusTarget {
    fn from(k: NotificationKey) -> Self {
        match k {
            NotificationKey::Offer(id) => FocusTarget::Offer { id: id.0 },
            NotificationKey::Conversation(id) => FocusTarget::Conversation { id: id.0 },
            NotificationKey::Notice(_) => FocusTarget::Banners,
        }
    }
}

/// Everything the shell tells the UI, on one event channel.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShellEvent {
    /// The engine's view changed: read the list again, and the open
    /// conversation if `all` or if it is among `conversations` (engine
    /// events that carry nothing to show, folded; see `events.rs`).
    ViewChanged {
        /// Every conversation may have changed.
        all: bool,
        /// These conversations changed.
        conversations: Vec<ConversationId>,
    },
    /// From the engine.
    Ui {
        /// The engine's event.
        event: UiEvent,
    },
    /// A session started.
    SignedIn {
        /// Who.
        profile: AgentProfile,
    },
    /// The session ended.
    SignedOut {
        /// The hub refused the session's token (it expired, was revoked,
        /// or the agent signed out elsewhere), not the agent signing out.
        refused: bool,
    },
    /// The local cache was unreadable and is being rebuilt from the hub.
    CacheRecovered {
        /// Where the broken file was moved; none when only some rows were
        /// unreadable (skipped, the file kept).
        moved_to: Option<String>,
    },
    /// Start at login could not be turned on or off (the autostart entry
    /// could not be written or removed). One that could not be turned on
    /// is turned off again in the settings, so they say what is true.
    StartAtLoginFailed {
        /// What went wrong, for the agent.
        message: String,
    },
    /// The operating system's light/dark preference changed.
    SystemTheme {
        /// `true` dark, `false` light, `None` no preference.
        dark: Option<bool>,
    },
    /// The window was brought forward for this.
    Focus {
        /// What to show.
        target: Option<FocusTarget>,
    },
    /// The session kept from the last run: being resumed, or why it was
    /// not (a refusal also comes as `signed_out`).
    KeptSession {
        /// Where it stands.
        kept: KeptSession,
    },
}
