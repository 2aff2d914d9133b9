//! Live agent connections ("links"): who is connected, and the per-agent
//! signals a connection waits on — the newest event seq (so it can fetch and
//! send what it has not sent yet) and token revocations.

use std::collections::HashMap;
use std::sync::Mutex;

use switchboard_protocol::AgentId;
use tokio::sync::watch;

#[derive(Debug)]
struct AgentLinks {
    connections: usize,
    newest_seq: watch::Sender<u64>,
    revocations: watch::Sender<u64>,
}

impl AgentLinks {
    fn new() -> Self {
        AgentLinks {
            connections: 0,
            newest_seq: watch::Sender::new(0),
            revocations: watch::Sender::new(0),
        }
    }
}

/// Registry of live connections per agent.
#[derive(Debug, Default)]
pub struct LinkRegistry {
    agents: Mutex<HashMap<AgentId, AgentLinks>>,
}

/// What a connection subscribes to.
#[derive(Debug)]
pub struct LinkSignals {
    /// Newest seq appended for the agent (0 until one is appended after the
    /// subscription).
    pub newest_seq: watch::Receiver<u64>,
    /// Bumped when the agent's tokens are revoked.
    pub revocations: watch::Receiver<u64>,
}

impl LinkRegistry {
    fn with<R>(&self, agent: AgentId, f: impl FnOnce(&mut AgentLinks) -> R) -> R {
        let mut map = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(agent).or_insert_with(AgentLinks::new))
    }

    /// Registers a connection; returns its signals and whether it is the
    /// agent's first live connection.
    pub fn connect(&self, agent: AgentId) -> (LinkSignals, bool) {
        self.with(agent, |l| {
            l.connections += 1;
            (
                LinkSignals {
                    newest_seq: l.newest_seq.subscribe(),
                    revocations: l.revocations.subscribe(),
                },
                l.connections == 1,
            )
        })
    }

    /// Unregisters a connection; returns whether it was the agent's last.
    pub fn disconnect(&self, agent: AgentId) -> bool {
        self.with(agent, |l| {
            l.connections = l.connections.saturating_sub(1);
            l.connections == 0
        })
    }

    /// Whether the agent has a live connection.
    pub fn is_connected(&self, agent: AgentId) -> bool {
        let map = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&agent).is_some_and(|l| l.connections > 0)
    }

    /// Number of live connections, all agents.
    pub fn connection_count(&self) -> usize {
        let map = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        map.values().map(|l| l.connections).sum()
    }

    /// Wakes the agent's connections: events up to `seq` are committed.
    pub fn notify_seq(&self, agent: AgentId, seq: u64) {
        self.with(agent, |l| {
            l.newest_seq.send_if_modified(|v| {
                if seq > *v {
                    *v = seq;
                    true
                } else {
                    false
                }
            });
        });
    }

    /// Tells the agent's connections to re-check their token.
    pub fn notify_revoked(&self, agent: AgentId) {
        self.with(agent, |l| {
            l.revocations.send_modify(|v| *v += 1);
        });
    }
}
