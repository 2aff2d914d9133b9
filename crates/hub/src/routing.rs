//! Pure routing decisions: which agent gets a work item. No I/O; the hub
//! gathers [`Candidate`]s and acts on the [`RouteDecision`].

use switchboard_protocol::{AgentId, Millis, Presence};

/// An agent who might receive a work item, as seen at routing time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The agent.
    pub agent_id: AgentId,
    /// Current presence.
    pub presence: Presence,
    /// Whether a client is connected now.
    pub connected: bool,
    /// Open conversations the agent owns: what counts against capacity.
    pub owned: u32,
    /// Open sessions: the conversations it owns and those it takes part
    /// in (a consult, a discussion), each a tab. The session limit counts
    /// these (seed 001: "10 sessions open"); capacity does not count the
    /// ones it only takes part in.
    pub open_sessions: u32,
    /// Pending offers.
    pub pending_offers: u32,
    /// Routing capacity.
    pub capacity: u32,
    /// When the agent last received work (longest idle goes first).
    pub idle_since: Millis,
}

/// What to do with a work item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteDecision {
    /// Offer or assign it to this agent.
    Deliver(AgentId),
    /// This agent was chosen but already has the maximum number of sessions:
    /// tell them, set Do Not Disturb, and route again without them.
    MaxSessions(AgentId),
    /// Nobody can take it now; it waits in the queue.
    Wait,
}

/// Whether a candidate may receive work: connected, in an allowed
/// presence, with free capacity.
pub fn eligible(c: &Candidate, allowed: &[Presence]) -> bool {
    c.connected
        && c.presence != Presence::Inactive
        && allowed.contains(&c.presence)
        && c.owned + c.pending_offers < c.capacity
}

/// The order in which candidates are preferred: longest idle first, ties by
/// id (for determinism). The hub reads team members in this order and
/// stops at the first [`eligible`] one, which is the one [`choose`] picks.
pub fn preference(c: &Candidate) -> (Millis, AgentId) {
    (c.idle_since, c.agent_id)
}

/// Chooses among candidates: the most preferred [`eligible`] one.
pub fn choose(candidates: &[Candidate], allowed: &[Presence], max_sessions: u32) -> RouteDecision {
    let best = candidates
        .iter()
        .filter(|c| eligible(c, allowed))
        .min_by_key(|c| preference(c));
    match best {
        None => RouteDecision::Wait,
        Some(c) if c.open_sessions >= max_sessions => RouteDecision::MaxSessions(c.agent_id),
        Some(c) => RouteDecision::Deliver(c.agent_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: i64, idle: i64) -> Candidate {
        Candidate {
            agent_id: AgentId(id),
            presence: Presence::Available,
            connected: true,
            owned: 0,
            open_sessions: 0,
            pending_offers: 0,
            capacity: 10,
            idle_since: Millis(idle),
        }
    }

    const ALLOWED: &[Presence] = &[Presence::Available, Presence::Busy];

    #[test]
    fn longest_idle_first() {
        let c = [cand(1, 500), cand(2, 100), cand(3, 300)];
        assert_eq!(choose(&c, ALLOWED, 10), RouteDecision::Deliver(AgentId(2)));
    }

    #[test]
    fn skips_disconnected_full_and_disallowed() {
        let mut a = cand(1, 0);
        a.connected = false;
        let mut b = cand(2, 1);
        b.presence = Presence::DoNotDisturb;
        let mut c = cand(3, 2);
        c.owned = 9;
        c.open_sessions = 9;
        c.pending_offers = 1;
        let mut d = cand(4, 3);
        d.presence = Presence::Inactive;
        let e = cand(5, 4);
        assert_eq!(
            choose(&[a, b, c, d, e], ALLOWED, 10),
            RouteDecision::Deliver(AgentId(5))
        );
    }

    #[test]
    fn nobody_means_wait() {
        let mut a = cand(1, 0);
        a.presence = Presence::Away;
        assert_eq!(choose(&[a], ALLOWED, 10), RouteDecision::Wait);
        assert_eq!(choose(&[], ALLOWED, 10), RouteDecision::Wait);
    }

    #[test]
    fn max_sessions_when_capacity_exceeds_limit() {
        let mut a = cand(1, 0);
        a.capacity = 20;
        a.open_sessions = 10;
        assert_eq!(
            choose(&[a], ALLOWED, 10),
            RouteDecision::MaxSessions(AgentId(1))
        );
    }

    /// With capacity equal to the limit (the defaults), sessions the agent
    /// only takes part in fill the limit before capacity runs out.
    #[test]
    fn max_sessions_when_consults_fill_the_limit() {
        let mut a = cand(1, 0);
        a.owned = 8;
        a.open_sessions = 10;
        assert_eq!(
            choose(&[a], ALLOWED, 10),
            RouteDecision::MaxSessions(AgentId(1))
        );
        // Owned conversations alone reach capacity first: no notice.
        let mut b = cand(2, 0);
        b.owned = 10;
        b.open_sessions = 10;
        assert_eq!(choose(&[b], ALLOWED, 10), RouteDecision::Wait);
    }

    #[test]
    fn queue_may_allow_busy_only() {
        let mut a = cand(1, 0);
        a.presence = Presence::Busy;
        let b = cand(2, 5);
        assert_eq!(
            choose(&[a, b], &[Presence::Busy], 10),
            RouteDecision::Deliver(AgentId(1))
        );
    }
}
