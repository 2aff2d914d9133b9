//! Test kit shared by the hub's and the client's test suites (feature
//! `testkit`): a configuration with short timeouts so that every routing
//! rule can be observed within seconds.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use switchboard_protocol::{Channel, Presence, Role, Scenario};

use crate::config::{AgentConfig, HubConfig, QueueConfig, TeamConfig, TemplateOverride};

/// Every test user's password.
pub const PASSWORD: &str = "pw-for-tests";
/// The ingress (connector) token.
pub const INGRESS: &str = "ingress-secret";

/// Agents a1..a3 (agents), sup (supervisor), admin; queue "Q" on every
/// channel with short timeouts so rules can be observed in seconds.
pub fn base_config(dir: &std::path::Path) -> HubConfig {
    let mut c = HubConfig::default();
    c.server.database = dir.join("hub.db");
    c.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.server.ingress_token = Some(INGRESS.into());
    c.routing.disconnected_grace_secs = 2;
    c.protocol.heartbeat_interval_ms = 30_000;
    c.teams.push(TeamConfig { name: "T".into() });
    c.teams.push(TeamConfig {
        name: "Other".into(),
    });
    let person = |u: &str, role, team: &str| AgentConfig {
        username: u.into(),
        display_name: Some(format!("Agent {u}")),
        password: Some(PASSWORD.into()),
        password_hash: None,
        role,
        team: Some(team.into()),
        capacity: 10,
    };
    c.agents = vec![
        person("a1", Role::Agent, "T"),
        person("a2", Role::Agent, "T"),
        person("a3", Role::Agent, "T"),
        person("sup", Role::Supervisor, "T"),
        person("admin", Role::Admin, "T"),
        person("outsider", Role::Agent, "Other"),
    ];
    let mut templates = BTreeMap::new();
    let t = |f: fn(&mut TemplateOverride)| {
        let mut o = TemplateOverride::default();
        f(&mut o);
        o
    };
    templates.insert(Scenario::IncomingChat, t(|o| o.timeout_secs = Some(2)));
    templates.insert(
        Scenario::IncomingSms,
        t(|o| {
            o.timeout_secs = Some(30);
            o.reject_reason_required = Some(true);
        }),
    );
    templates.insert(
        Scenario::IncomingWhatsapp,
        t(|o| o.auto_accept = Some(true)),
    );
    templates.insert(
        Scenario::IncomingFacebook,
        t(|o| o.auto_assign = Some(true)),
    );
    templates.insert(Scenario::CaseAssignment, t(|o| o.timeout_secs = Some(1)));
    templates.insert(Scenario::IncomingCall, t(|o| o.timeout_secs = Some(30)));
    c.queues.push(QueueConfig {
        name: "Q".into(),
        team: "T".into(),
        channels: Channel::ALL.to_vec(),
        allowed_presences: vec![Presence::Available, Presence::Busy],
        templates,
        team_owned: false,
        idle_timeout_secs: None,
    });
    c
}
