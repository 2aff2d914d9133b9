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

/// glibc malloc arenas besides the main one (the `brk` heap) in process
/// `pid`, as glibc lays each one's heap out in the mmap area: 64 MiB
/// reserved on a 64 MiB boundary, its used part read-write and the rest
/// inaccessible (`---p`) up to the boundary. Other mappings that happen to
/// start on such a boundary (WebKit's reservations in the desktop app;
/// the hub's mimalloc arenas, placed at hinted addresses from 2 to 30
/// TiB) are not counted. Returns the arenas' read-write lines of
/// `/proc/{pid}/maps`.
pub fn malloc_arenas(pid: u32) -> Vec<String> {
    const HEAP_SIZE: u64 = 64 << 20;
    const MIMALLOC_HINTS_END: u64 = 30 << 40;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let parse = |l: &str| -> Option<(u64, u64, String)> {
        let fields: Vec<&str> = l.split_whitespace().collect();
        let (start, end) = fields.first()?.split_once('-')?;
        Some((
            u64::from_str_radix(start, 16).ok()?,
            u64::from_str_radix(end, 16).ok()?,
            (*fields.get(1)?).to_owned(),
        ))
    };
    let lines: Vec<&str> = maps.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            let Some((start, end, perms)) = parse(l) else {
                return false;
            };
            let anonymous = l.split_whitespace().count() == 5;
            let heap_start = start % HEAP_SIZE == 0 && start >= MIMALLOC_HINTS_END;
            if !(anonymous && perms == "rw-p" && heap_start) {
                return false;
            }
            // Its reservation ends on the next boundary: at once when the
            // heap is fully used, or after an inaccessible remainder.
            let boundary = start.saturating_add(HEAP_SIZE);
            end == boundary
                || lines
                    .get(i + 1)
                    .and_then(|n| parse(n))
                    .is_some_and(|(s, e, p)| s == end && e == boundary && p == "---p")
        })
        .map(|(_, l)| (*l).to_owned())
        .collect()
}
