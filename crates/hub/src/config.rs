//! Hub configuration: a TOML file (see `docs/hub.example.toml`) with defaults
//! for everything but the people and queues.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchboard_protocol::{
    rest::default_details, Channel, DesktopNotifications, DetailField, NotificationKind,
    NotificationTemplate, Presence, Role, Scenario,
};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: Box<toml::de::Error>,
    },
    /// The file parses but does not make sense.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole hub configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// Listening, storage and TLS.
    #[serde(default)]
    pub server: ServerConfig,
    /// Routing rules.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Authentication.
    #[serde(default)]
    pub auth: AuthConfig,
    /// WebSocket protocol parameters.
    #[serde(default)]
    pub protocol: ProtocolConfig,
    /// Teams.
    #[serde(default)]
    pub teams: Vec<TeamConfig>,
    /// Agents, supervisors and admins.
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// Queues (workstreams).
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
}

/// Where the hub listens and stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// SQLite database file (created if missing).
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Serve `wss://` and `https://` with these PEM files.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Bearer token that channel connectors use for the ingress endpoint.
    /// Without it, only admins can post ingress messages.
    #[serde(default)]
    pub ingress_token: Option<String>,
    /// How long a connector's `message_id` is remembered, so that a retry
    /// of the same message is not stored twice. Fourteen days: WhatsApp's
    /// Cloud API retries an undelivered webhook for up to seven. Older ids
    /// are forgotten (hourly), so the table holds two weeks of traffic,
    /// not every message ever received.
    #[serde(default = "default_ingress_id_retention")]
    pub ingress_id_retention_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            database: default_database(),
            tls: None,
            ingress_token: None,
            ingress_id_retention_secs: default_ingress_id_retention(),
        }
    }
}

fn default_ingress_id_retention() -> u64 {
    14 * 24 * 3600
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8787))
}

fn default_database() -> PathBuf {
    PathBuf::from("switchboard-hub.db")
}

/// TLS certificate options (rustls).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Routing rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Sessions an agent may have open; a new item beyond it brings a notice
    /// and Do Not Disturb.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: u32,
    /// How long after an offer's timeout (or a disconnect) an item assigned
    /// to a disconnected agent waits before it is rerouted.
    #[serde(default = "default_grace")]
    pub disconnected_grace_secs: u64,
    /// The missed notifications feature: an agent who lets an offer time
    /// out is set Inactive and told so. Off, the offer is only rerouted.
    #[serde(default = "yes")]
    pub missed_notifications: bool,
    /// The agent reject feature: an agent who rejects an offer is set Do
    /// not disturb and told so. Off, the offer is only rerouted.
    #[serde(default = "yes")]
    pub agent_reject_notifications: bool,
    /// A team-owned chat whose offers all ended unanswered (lapsed,
    /// declined, withdrawn at a sign-out) is offered to the whole team
    /// again this long after the last ended, and again while the customer
    /// waits. 0: only when the customer writes again or a teammate comes
    /// online.
    #[serde(default = "default_team_reminder")]
    pub team_reminder_secs: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            max_sessions: default_max_sessions(),
            disconnected_grace_secs: default_grace(),
            missed_notifications: true,
            agent_reject_notifications: true,
            team_reminder_secs: default_team_reminder(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_max_sessions() -> u32 {
    10
}

fn default_grace() -> u64 {
    8 * 60
}

fn default_team_reminder() -> u64 {
    120
}

/// Authentication settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a login token stays valid unused. A token in use is
    /// renewed (by its client's live link, and by REST calls with it) once
    /// half of this has passed, so an agent signed in all day is not cut
    /// off mid-shift; a token nobody uses for this long expires (an app
    /// closed overnight asks to sign in the next morning).
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// A limit from sign-in that use does not extend, for sites that want
    /// a fresh sign-in at least this often. None by default.
    #[serde(default)]
    pub token_max_age_secs: Option<u64>,
    /// Failed logins allowed per user name and per client address in one
    /// minute before further attempts are refused.
    #[serde(default = "default_login_attempts")]
    pub login_failures_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_ttl_secs: default_token_ttl(),
            token_max_age_secs: None,
            login_failures_per_minute: default_login_attempts(),
        }
    }
}

fn default_token_ttl() -> u64 {
    12 * 3600
}

fn default_login_attempts() -> u32 {
    5
}

/// WebSocket protocol parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolConfig {
    /// The client pings at least this often.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_ms: u64,
    /// How long a new connection may take to send `hello`.
    #[serde(default = "default_hello_timeout")]
    pub hello_timeout_ms: u64,
    /// Events kept per agent for replay; older gaps get a full resync.
    #[serde(default = "default_retention")]
    pub event_retention: u64,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        ProtocolConfig {
            heartbeat_interval_ms: default_heartbeat(),
            hello_timeout_ms: default_hello_timeout(),
            event_retention: default_retention(),
        }
    }
}

fn default_heartbeat() -> u64 {
    10_000
}

fn default_hello_timeout() -> u64 {
    5_000
}

fn default_retention() -> u64 {
    10_000
}

/// A team.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// Unique name.
    pub name: String,
}

/// A user of the hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Login name.
    pub username: String,
    /// Display name; defaults to the login name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Plain password (hashed with argon2 at start; for development).
    #[serde(default)]
    pub password: Option<String>,
    /// Argon2 PHC hash (`$argon2id$...`), preferred in production.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Role.
    #[serde(default = "default_role")]
    pub role: Role,
    /// Team name.
    #[serde(default)]
    pub team: Option<String>,
    /// Work items the agent can hold at once.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
}

fn default_role() -> Role {
    Role::Agent
}

fn default_capacity() -> u32 {
    10
}

/// A queue (workstream).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Unique name.
    pub name: String,
    /// Team whose members receive its work.
    pub team: String,
    /// Channels it serves.
    pub channels: Vec<Channel>,
    /// Presences that can receive its work.
    #[serde(default = "default_allowed_presences")]
    pub allowed_presences: Vec<Presence>,
    /// Per-scenario overrides of the default notification templates.
    #[serde(default)]
    pub templates: BTreeMap<Scenario, TemplateOverride>,
    /// Team-owned: every team member is notified of a new conversation's
    /// messages until one accepts it (instead of routing to one agent).
    #[serde(default)]
    pub team_owned: bool,
    /// Ask teammates "Assign to me?" when the owner has not answered the
    /// customer within this many seconds.
    #[serde(default)]
    pub idle_timeout_secs: Option<u32>,
}

/// The default presences that can receive work.
pub fn default_allowed_presences() -> Vec<Presence> {
    vec![Presence::Available, Presence::Busy]
}

/// A partial notification template; unset fields keep the scenario default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateOverride {
    /// Toast or alert.
    pub kind: Option<NotificationKind>,
    /// Seconds to act.
    pub timeout_secs: Option<u32>,
    /// Show the countdown.
    pub show_timeout: Option<bool>,
    /// Offer Reject.
    pub allow_reject: Option<bool>,
    /// Require a reason to reject.
    pub reject_reason_required: Option<bool>,
    /// Accept automatically.
    pub auto_accept: Option<bool>,
    /// Assign automatically.
    pub auto_assign: Option<bool>,
    /// Details to show.
    pub details: Option<Vec<DetailField>>,
    /// Default for desktop notifications.
    pub desktop: Option<switchboard_protocol::DesktopNotifications>,
}

impl TemplateOverride {
    /// Applies this override over `base`.
    pub fn apply(&self, base: NotificationTemplate) -> NotificationTemplate {
        NotificationTemplate {
            kind: self.kind.unwrap_or(base.kind),
            timeout_secs: self.timeout_secs.unwrap_or(base.timeout_secs),
            show_timeout: self.show_timeout.unwrap_or(base.show_timeout),
            allow_reject: self.allow_reject.unwrap_or(base.allow_reject),
            reject_reason_required: self
                .reject_reason_required
                .unwrap_or(base.reject_reason_required),
            auto_accept: self.auto_accept.unwrap_or(base.auto_accept),
            auto_assign: self.auto_assign.unwrap_or(base.auto_assign),
            details: self.details.clone().unwrap_or(base.details),
            desktop: self.desktop.unwrap_or(base.desktop),
        }
    }
}

/// The template a scenario uses when the queue does not override it,
/// following the reference: incoming conversations are alerts, assignments,
/// transfers and escalations are toasts, a case cannot be rejected.
pub fn default_template(scenario: Scenario) -> NotificationTemplate {
    let alert = |timeout_secs| NotificationTemplate {
        kind: NotificationKind::Alert,
        timeout_secs,
        show_timeout: true,
        allow_reject: true,
        reject_reason_required: false,
        auto_accept: false,
        auto_assign: false,
        details: default_details(),
        desktop: Default::default(),
    };
    let toast = NotificationTemplate {
        kind: NotificationKind::Toast,
        timeout_secs: 10,
        show_timeout: false,
        allow_reject: false,
        reject_reason_required: false,
        auto_accept: false,
        auto_assign: false,
        details: vec![DetailField::CustomerName, DetailField::Queue],
        desktop: Default::default(),
    };
    match scenario {
        Scenario::IncomingChat
        | Scenario::IncomingSms
        | Scenario::IncomingWhatsapp
        | Scenario::IncomingFacebook
        | Scenario::BotEscalation
        // Refused as input (`queue_problem`, ingress); an alert if one got by.
        | Scenario::Other => alert(60),
        Scenario::IncomingCall => alert(30),
        Scenario::CaseAssignment => NotificationTemplate {
            allow_reject: false,
            ..alert(60)
        },
        Scenario::WorkItemAssignment | Scenario::Transfer | Scenario::Escalation => toast,
    }
}

/// The effective template of a queue for a scenario. A case assignment can
/// never be rejected, whatever the override says.
pub fn effective_template(
    overrides: &BTreeMap<Scenario, TemplateOverride>,
    scenario: Scenario,
) -> NotificationTemplate {
    let base = default_template(scenario);
    let mut t = match overrides.get(&scenario) {
        Some(o) => o.apply(base),
        None => base,
    };
    if scenario == Scenario::CaseAssignment {
        t.allow_reject = false;
    }
    t
}

/// The longest disconnected-owner grace the hub accepts (30 days); beyond
/// it a deadline would not fit the clock's range.
pub const MAX_GRACE_SECS: u64 = 30 * 24 * 3600;

/// What is wrong with a queue's settings, if anything (the same rules for
/// the configuration file and the admin API): an offer that lapses the
/// moment it is made would set every agent Inactive in turn.
pub fn queue_problem(
    channels: &[Channel],
    allowed_presences: &[Presence],
    templates: &BTreeMap<Scenario, TemplateOverride>,
    idle_timeout_secs: Option<u32>,
) -> Option<String> {
    // A value this hub does not know decodes as `Other` (so that clients
    // read a newer hub's frames); as configuration it is a typo or a
    // newer hub's setting, and refused.
    if channels.contains(&Channel::Other) {
        return Some("unknown channel".into());
    }
    if allowed_presences.contains(&Presence::Other) {
        return Some("unknown presence in allowed_presences".into());
    }
    for (scenario, t) in templates {
        if *scenario == Scenario::Other {
            return Some("unknown scenario in templates".into());
        }
        if t.kind == Some(NotificationKind::Other)
            || t.desktop == Some(DesktopNotifications::Other)
            || t.details
                .as_ref()
                .is_some_and(|d| d.contains(&DetailField::Other))
        {
            return Some(format!(
                "the {scenario:?} template has an unknown kind, desktop or detail"
            ));
        }
    }
    if allowed_presences.contains(&Presence::Inactive) {
        return Some("inactive agents never receive work".into());
    }
    if let Some((scenario, _)) = templates.iter().find(|(_, t)| t.timeout_secs == Some(0)) {
        return Some(format!(
            "the {scenario:?} template's timeout_secs must be at least 1"
        ));
    }
    if idle_timeout_secs == Some(0) {
        return Some("idle_timeout_secs must be at least 1".into());
    }
    None
}

impl HubConfig {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<HubConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = HubConfig::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<HubConfig, ConfigError> {
        let config: HubConfig = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::new(),
            source: Box::new(source),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks cross references.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let team_known = |t: &str| self.teams.iter().any(|x| x.name == t);
        // One entry per name: two for one agent were both applied at every
        // start, in turn (moved between teams and its offers handed on
        // each time); an empty name is nobody's.
        for (what, names) in [
            (
                "agent",
                self.agents
                    .iter()
                    .map(|a| a.username.as_str())
                    .collect::<Vec<_>>(),
            ),
            ("team", self.teams.iter().map(|t| t.name.as_str()).collect()),
            (
                "queue",
                self.queues.iter().map(|q| q.name.as_str()).collect(),
            ),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for name in names {
                if name.trim().is_empty() {
                    return Err(ConfigError::Invalid(format!("a {what} has an empty name")));
                }
                if !seen.insert(name) {
                    return Err(ConfigError::Invalid(format!(
                        "{what} {name:?} is listed twice"
                    )));
                }
            }
        }
        for a in &self.agents {
            if a.role == Role::Other {
                return Err(ConfigError::Invalid(format!(
                    "agent {:?} has an unknown role",
                    a.username
                )));
            }
            if a.password.is_none() && a.password_hash.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "agent {:?} has neither password nor password_hash",
                    a.username
                )));
            }
            if let Some(t) = &a.team {
                if !team_known(t) {
                    return Err(ConfigError::Invalid(format!(
                        "agent {:?} names unknown team {t:?}",
                        a.username
                    )));
                }
            }
        }
        for q in &self.queues {
            if !team_known(&q.team) {
                return Err(ConfigError::Invalid(format!(
                    "queue {:?} names unknown team {:?}",
                    q.name, q.team
                )));
            }
            if let Some(problem) = queue_problem(
                &q.channels,
                &q.allowed_presences,
                &q.templates,
                q.idle_timeout_secs,
            ) {
                return Err(ConfigError::Invalid(format!(
                    "queue {:?}: {problem}",
                    q.name
                )));
            }
        }
        if self.routing.max_sessions == 0 {
            return Err(ConfigError::Invalid(
                "routing.max_sessions must be at least 1 (0 would refuse every accept)".into(),
            ));
        }
        if self.routing.disconnected_grace_secs > MAX_GRACE_SECS {
            return Err(ConfigError::Invalid(format!(
                "routing.disconnected_grace_secs must be at most {MAX_GRACE_SECS} (30 days)"
            )));
        }
        if self.protocol.hello_timeout_ms < 100 {
            return Err(ConfigError::Invalid(
                "protocol.hello_timeout_ms must be at least 100".into(),
            ));
        }
        if self.auth.token_ttl_secs == 0 || self.auth.token_max_age_secs == Some(0) {
            return Err(ConfigError::Invalid(
                "auth.token_ttl_secs and auth.token_max_age_secs must be more than 0".into(),
            ));
        }
        if self.protocol.heartbeat_interval_ms < 100 {
            return Err(ConfigError::Invalid(
                "protocol.heartbeat_interval_ms must be at least 100".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../../docs/hub.example.toml");
        let c = HubConfig::from_toml(text).expect("example config");
        assert!(!c.agents.is_empty());
        assert!(!c.queues.is_empty());
        assert!(!c.queues[0].team_owned);
        assert_eq!(c.queues[0].idle_timeout_secs, Some(120));
    }

    #[test]
    fn unknown_team_is_refused() {
        let err = HubConfig::from_toml(
            r#"
            [[queues]]
            name = "q"
            team = "nope"
            channels = ["chat"]
            "#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown team"), "{err}");
    }

    /// Values that would break routing are refused with what to fix: an
    /// alert that lapses as it is made (every agent Inactive in turn), a
    /// session limit of 0 (every accept refused), a grace beyond the
    /// clock's range, a hello nobody can meet.
    #[test]
    fn values_that_break_routing_are_refused() {
        let base = r#"
            [[teams]]
            name = "t"
            [[queues]]
            name = "q"
            team = "t"
            channels = ["chat"]
        "#;
        for (extra, says) in [
            (
                "[queues.templates.incoming_chat]\ntimeout_secs = 0",
                "timeout_secs",
            ),
            ("idle_timeout_secs = 0", "idle_timeout_secs"),
            ("[routing]\nmax_sessions = 0", "max_sessions"),
            (
                "[routing]\ndisconnected_grace_secs = 9223372036854775807",
                "disconnected_grace_secs",
            ),
            ("[protocol]\nhello_timeout_ms = 0", "hello_timeout_ms"),
            // Values this hub does not know (decoded as `Other`).
            ("allowed_presences = [\"on_break\"]", "unknown presence"),
            (
                "[queues.templates.incoming_fax]\ntimeout_secs = 5",
                "unknown scenario",
            ),
            (
                "[queues.templates.incoming_chat]\nkind = \"banner\"",
                "unknown kind",
            ),
            (
                "[queues.templates.incoming_chat]\ndetails = [\"sentiment\"]",
                "unknown kind, desktop or detail",
            ),
            (
                "[queues.templates.incoming_chat]\ndesktop = \"in_focus\"",
                "unknown kind, desktop or detail",
            ),
            (
                "[[agents]]\nusername = \"au\"\npassword = \"x\"\nrole = \"auditor\"",
                "unknown role",
            ),
        ] {
            let err = HubConfig::from_toml(&format!("{base}\n{extra}")).unwrap_err();
            assert!(err.to_string().contains(says), "{extra}: {err}");
        }
        let err = HubConfig::from_toml(&base.replace(r#"["chat"]"#, r#"["chat", "instagram"]"#))
            .unwrap_err();
        assert!(err.to_string().contains("unknown channel"), "{err}");
        HubConfig::from_toml(base).expect("the defaults are valid");
    }

    #[test]
    fn case_template_never_allows_reject() {
        let mut o = BTreeMap::new();
        o.insert(
            Scenario::CaseAssignment,
            TemplateOverride {
                allow_reject: Some(true),
                ..Default::default()
            },
        );
        assert!(!effective_template(&o, Scenario::CaseAssignment).allow_reject);
        assert!(effective_template(&o, Scenario::IncomingChat).allow_reject);
    }
}
