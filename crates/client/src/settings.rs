//! The agent's own notification and sound settings, stored locally.

use serde::{Deserialize, Serialize};
use switchboard_protocol::DesktopNotifications;

pub use crate::wall_clock::ClockChoice;

/// When sounds play.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoundWhen {
    /// Always.
    Always,
    /// Only when the app is not in focus.
    #[default]
    WhenUnfocused,
    /// Never.
    Never,
}

/// Which bundled tone rings.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// Two-tone ring.
    #[default]
    Classic,
    /// A soft single tone.
    Soft,
    /// A short digital pattern.
    Digital,
}

/// Light / dark / follow the OS.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThemeChoice {
    /// Follow the operating system.
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

/// Everything the agent can set.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentSettings {
    /// Desktop notifications; `None` follows each template's default.
    pub desktop_notifications: Option<DesktopNotifications>,
    /// When sounds play.
    pub sound_when: SoundWhen,
    /// Volume, 0–100.
    pub volume: u8,
    /// Ring tone.
    pub tone: Tone,
    /// Chime every N seconds while owned conversations have unread messages.
    pub reminder_secs: Option<u32>,
    /// Theme.
    pub theme: ThemeChoice,
    /// Start at login.
    pub start_at_login: bool,
    /// 24-hour or 12-hour times.
    pub clock: ClockChoice,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            desktop_notifications: None,
            sound_when: SoundWhen::WhenUnfocused,
            volume: 80,
            tone: Tone::Classic,
            reminder_secs: None,
            theme: ThemeChoice::System,
            start_at_login: false,
            clock: ClockChoice::System,
        }
    }
}
