//! The hub service: every state change (ingress, agent commands, timers,
//! presence) happens here, inside one SQLite transaction, serialized by one
//! write lock. A change appends per-agent events to the durable event log;
//! after commit, live connections are woken and send what they have not sent.
//! Delivery and replay therefore share one path: nothing committed is lost,
//! nothing is sent twice on one connection.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use switchboard_protocol::{
    rest::{AgentSpec, AgentStatus, IngressMessage, IngressResponse, QueueSpec},
    AgentEvent, AgentId, AgentProfile, AgentSnapshot, AssignMode, Author, Channel, Command,
    CommandId, CommandReply, ConversationId, ConversationState, ConversationStatus,
    ConversationSummary, Customer, ErrorCode, EventFrame, Message, MessageId, Millis, NoticeKind,
    NotificationKind, NotificationTemplate, Offer, OfferId, OfferOrigin, OfferOutcome, Presence,
    PresenceReason, ResumeMode, ResyncReason, RevokeReason, Role, Scenario, Seq,
    MAX_MESSAGE_TEXT_BYTES,
};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

use crate::allocator::FreeMemoryRelease;
use crate::auth::{self, LoginLimiter};
use crate::clock::Clock;
use crate::config::{effective_template, HubConfig, TemplateOverride};
use crate::error::{HubError, HubResult};
use crate::links::LinkRegistry;
use crate::routing::{self, Candidate, RouteDecision};

/// How long a timer whose handling failed waits before it is tried again.
const TIMER_RETRY_MS: i64 = 30_000;

/// Messages included with an assignment or snapshot, per conversation (at
/// most; [`crate::fit`] trims them to the frame limit).
const RECENT_MESSAGES: i64 = switchboard_protocol::RECENT_MESSAGES_SENT as i64;

/// The most conversations [`Hub::team_conversations`] lists (a team's
/// open work; a backlog beyond it is the oldest-waiting first).
pub const TEAM_CONVERSATIONS_LISTED: i64 = 500;
/// The longest user name a login considers (admin-made ones are at most
/// 64 bytes).
const MAX_USERNAME_BYTES: usize = 256;

/// The routing hub.
pub struct Hub {
    pool: SqlitePool,
    config: HubConfig,
    clock: Arc<dyn Clock>,
    write_lock: Arc<Mutex<()>>,
    /// Live connections.
    pub links: LinkRegistry,
    /// Woken when timers change, so the scheduler re-reads the next due one.
    pub timers_changed: Notify,
    /// Failed-login counter.
    pub login_limiter: LoginLimiter,
    /// A real argon2 hash, checked when the user name is unknown so both
    /// paths cost the same and user names cannot be probed by timing.
    dummy_hash: String,
    /// Password checks at once, hub-wide: each takes argon2's 19 MiB, and
    /// the per-name and per-address limits do not bound guesses spread
    /// over many addresses.
    password_checks: tokio::sync::Semaphore,
    /// Freed heap pages go back to the OS after commits, once a minute.
    memory_release: FreeMemoryRelease,
    /// When connectors' message ids past their retention were last
    /// forgotten (hub clock, ms; 0: not yet since start).
    ingress_ids_pruned_at: std::sync::atomic::AtomicI64,
}

/// How often connectors' old message ids are forgotten.
const INGRESS_ID_PRUNE_EVERY_MS: i64 = 3_600_000;

/// How many old message ids one ingress forgets at most.
const INGRESS_ID_PRUNE_BATCH: i64 = 500;

/// A signed-in agent, as resolved from a bearer token.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub profile: AgentProfile,
    /// Hash of the token used, to re-check revocation.
    pub token_hash: String,
    /// When the token expires unless it is renewed ([`Hub::renew_session`]).
    pub expires_at: Millis,
    /// When the token was issued (the sign-in), for `token_max_age_secs`.
    pub issued_at: Millis,
}

/// Per-queue behaviour beyond templates.
#[derive(Debug, Clone, Copy, Default)]
struct QueueOptions {
    team_owned: bool,
    idle_timeout_secs: Option<u32>,
}

#[path = "handoff.rs"]
mod handoff;
#[path = "records.rs"]
mod records;

/// A persisted timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    /// An alert offer's deadline; `ref_id` is the offer.
    OfferTimeout,
    /// A disconnected owner's grace period; `ref_id` is the conversation.
    DisconnectedGrace,
    /// The owner has not answered the customer in time; `ref_id` is the
    /// conversation, `agent_id` the owner.
    OwnerIdle,
    /// A team chat's offers all lapsed: the team is asked again; `ref_id`
    /// is the conversation, `agent_id` the last to let it lapse.
    TeamReminder,
}

impl TimerKind {
    fn as_str(self) -> &'static str {
        match self {
            TimerKind::OfferTimeout => "offer_timeout",
            TimerKind::DisconnectedGrace => "disconnected_grace",
            TimerKind::OwnerIdle => "owner_idle",
            TimerKind::TeamReminder => "team_reminder",
        }
    }
}

fn wire<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn unwire<T: DeserializeOwned>(s: &str) -> HubResult<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|e| HubError::Corrupt(format!("{s:?}: {e}")))
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn unjson<T: DeserializeOwned>(s: &str) -> HubResult<T> {
    serde_json::from_str(s).map_err(|e| HubError::Corrupt(e.to_string()))
}

/// A change made by an edit (admin API or configuration file) that can
/// leave offers with people who may no longer answer them, or chats with
/// nobody. Settled ([`Work::settle_routing_changes`]) once the whole edit
/// is applied, so that an agent and a queue moved together keep that
/// queue's offers.
#[derive(Debug, Clone, Copy)]
enum RoutingChange {
    /// An agent left team `from` (none: had no team).
    AgentMoved { agent: AgentId, from: Option<i64> },
    /// A supervisor or admin given a lesser role: escalations it may no
    /// longer take (an agent: none; a supervisor: its own team's only).
    AgentDemoted { agent: AgentId, to: Role },
    /// A queue created or edited: its team, whether the team owns its
    /// chats, the presences it gives work to may have changed.
    QueueEdited { queue: i64 },
}

/// Which of an agent's pending offers [`Work::hand_on_offers`] hands on.
#[derive(Debug, Clone, Copy)]
enum OfferScope {
    /// Every one (the agent signed out).
    All,
    /// Those of this team's queues (the agent left the team).
    OfTeam(i64),
    /// Escalations, but those of team `keep`'s queues (the agent's role
    /// was lowered: a supervisor keeps its own team's, an agent none).
    Escalations { keep: Option<i64> },
}

/// One serialized change: the write lock, an open transaction, and the
/// agents to wake after commit.
struct Work<'h> {
    hub: &'h Hub,
    tx: Transaction<'static, Sqlite>,
    now: Millis,
    woken: BTreeMap<AgentId, u64>,
    timers_changed: bool,
    _guard: OwnedMutexGuard<()>,
}

impl Hub {
    /// Opens the database, applies the configuration, and schedules grace
    /// periods for agents whose clients are (after a restart) not connected.
    pub async fn open(config: HubConfig, clock: Arc<dyn Clock>) -> HubResult<Arc<Hub>> {
        config.validate()?;
        if let Some(dir) = config.server.database.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let pool = crate::store::open(&config.server.database).await?;
        let hub = Arc::new(Hub {
            pool,
            login_limiter: LoginLimiter::new(config.auth.login_failures_per_minute),
            config,
            clock,
            write_lock: Arc::new(Mutex::new(())),
            links: LinkRegistry::default(),
            timers_changed: Notify::new(),
            dummy_hash: auth::hash_password(&auth::new_token())
                .map_err(|e| HubError::Corrupt(format!("hashing failed: {e}")))?,
            password_checks: tokio::sync::Semaphore::new(MAX_PASSWORD_CHECKS),
            memory_release: FreeMemoryRelease::default(),
            ingress_ids_pruned_at: std::sync::atomic::AtomicI64::new(0),
        });
        hub.apply_config().await?;
        hub.after_restart().await?;
        Ok(hub)
    }

    /// The configuration in force.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The current time.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The database pool (read-only use outside this module).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn work(&self) -> HubResult<Work<'_>> {
        let guard = self.write_lock.clone().lock_owned().await;
        // IMMEDIATE takes SQLite's write lock up front: a deferred
        // transaction that reads first would fail with SQLITE_BUSY if a
        // write outside the lock (an ack, a login) committed meanwhile.
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Work {
            hub: self,
            tx,
            now: self.clock.now(),
            woken: BTreeMap::new(),
            timers_changed: false,
            _guard: guard,
        })
    }

    async fn commit(&self, work: Work<'_>) -> HubResult<()> {
        let Work {
            tx,
            woken,
            timers_changed,
            _guard,
            ..
        } = work;
        tx.commit().await?;
        drop(_guard);
        for (agent, seq) in woken {
            self.links.notify_seq(agent, seq);
        }
        if timers_changed {
            self.timers_changed.notify_one();
        }
        self.memory_release.after_work(self.clock.now());
        Ok(())
    }

    /// How many times the hub has checked whether freed heap memory is
    /// worth handing back to the OS (after commits, at most once per
    /// [`crate::allocator::RELEASE_PERIOD`]).
    pub fn memory_release_checks(&self) -> u64 {
        self.memory_release.checks()
    }

    // -- configuration --------------------------------------------------

    /// Writes the configuration file's teams, agents and queues into the
    /// database. An agent or queue is written when it is new, or when its
    /// entry in the file changed since the hub last applied it; otherwise
    /// the database's version stands. So what an admin changed over the
    /// REST API (a password reset after a leak, a demotion, a template)
    /// survives a restart, and editing the file still takes effect.
    /// An agent or queue already in a database from before this was
    /// tracked keeps what the database says; its file entry is recorded as
    /// applied.
    async fn apply_config(&self) -> HubResult<()> {
        let config = self.config.clone();
        let mut w = self.work().await?;
        let mut moves = Vec::new();
        for team in &config.teams {
            sqlx::query("INSERT INTO teams (name) VALUES (?) ON CONFLICT(name) DO NOTHING")
                .bind(&team.name)
                .execute(&mut *w.tx)
                .await?;
        }
        for a in &config.agents {
            if a.password_hash.is_none() && a.password.is_none() {
                continue;
            }
            // The entry without its plain password (never stored); whether
            // that changed is told by the hash applied last time.
            let entry = json(&crate::config::AgentConfig {
                password: None,
                ..a.clone()
            });
            let applied = w.config_applied("agent", &a.username).await?;
            let current: Option<String> =
                sqlx::query_scalar("SELECT password_hash FROM agents WHERE username = ?")
                    .bind(&a.username)
                    .fetch_optional(&mut *w.tx)
                    .await?;
            if let (Some(stored), None) = (&current, &applied) {
                // Here already, and no start has recorded what the file
                // set (a database from before this was tracked, or an
                // agent made over the API and later added to the file):
                // the database stands, and the file entry is recorded as
                // applied, with a hash of its password, so that only an
                // edit of the entry changes the agent from now on.
                let file_hash = match (&a.password_hash, &a.password) {
                    (Some(h), _) => h.clone(),
                    (None, Some(p)) if auth::verify_password(p, stored) => stored.clone(),
                    (None, Some(p)) => auth::hash_password(p)
                        .map_err(|e| HubError::Corrupt(format!("hashing failed: {e}")))?,
                    (None, None) => continue,
                };
                w.record_config_applied("agent", &a.username, &entry, Some(&file_hash))
                    .await?;
                continue;
            }
            let password_as_applied = match (&a.password_hash, &a.password, &applied) {
                (Some(h), _, Some((_, Some(last)))) => h == last,
                (None, Some(p), Some((_, Some(last)))) => auth::verify_password(p, last),
                _ => false,
            };
            let entry_as_applied = applied.as_ref().is_some_and(|(e, _)| *e == entry);
            let hash = match (&current, password_as_applied) {
                // The file's password is the one applied last time: the
                // stored one stands (it may have been reset since).
                (Some(stored), true) => stored.clone(),
                _ => match (&a.password_hash, &a.password) {
                    (Some(h), _) => h.clone(),
                    // Keep the stored hash when the plain password still
                    // matches, so a restart does not re-hash every agent.
                    (None, Some(p))
                        if current
                            .as_deref()
                            .is_some_and(|old| auth::verify_password(p, old)) =>
                    {
                        current.clone().unwrap_or_default()
                    }
                    (None, Some(p)) => auth::hash_password(p)
                        .map_err(|e| HubError::Corrupt(format!("hashing failed: {e}")))?,
                    (None, None) => continue,
                },
            };
            let applied_hash = if password_as_applied {
                applied.and_then(|(_, h)| h)
            } else {
                Some(hash.clone())
            };
            if current.is_none() || !entry_as_applied || !password_as_applied {
                let spec = AgentSpec {
                    username: a.username.clone(),
                    display_name: a.display_name.clone().unwrap_or_else(|| a.username.clone()),
                    password: None,
                    role: a.role,
                    team: a.team.clone(),
                    capacity: a.capacity,
                };
                if current.is_none() || !entry_as_applied {
                    let (_, changes) = w.upsert_agent(&spec, &hash).await?;
                    moves.extend(changes);
                } else {
                    sqlx::query("UPDATE agents SET password_hash = ? WHERE username = ?")
                        .bind(&hash)
                        .bind(&a.username)
                        .execute(&mut *w.tx)
                        .await?;
                }
            }
            if current.is_some() && !password_as_applied {
                // The file gives a new password (a reset after a leak): the
                // tokens signed in with the old one end.
                sqlx::query(
                    "UPDATE tokens SET revoked = 1 WHERE revoked = 0
                       AND agent_id = (SELECT id FROM agents WHERE username = ?)",
                )
                .bind(&a.username)
                .execute(&mut *w.tx)
                .await?;
            }
            w.record_config_applied("agent", &a.username, &entry, applied_hash.as_deref())
                .await?;
        }
        for q in &config.queues {
            let entry = json(q);
            let applied = w.config_applied("queue", &q.name).await?;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM queues WHERE name = ?)")
                    .bind(&q.name)
                    .fetch_one(&mut *w.tx)
                    .await?;
            match &applied {
                Some((e, _)) if exists && *e == entry => continue,
                // Here already and never recorded (see the agents above).
                None if exists => {
                    w.record_config_applied("queue", &q.name, &entry, None)
                        .await?;
                    continue;
                }
                _ => {}
            }
            let moved = w
                .upsert_queue(
                    &q.name,
                    &q.team,
                    &q.channels,
                    &q.allowed_presences,
                    &q.templates,
                    QueueOptions {
                        team_owned: q.team_owned,
                        idle_timeout_secs: q.idle_timeout_secs,
                    },
                )
                .await?;
            moves.push(moved);
            w.record_config_applied("queue", &q.name, &entry, None)
                .await?;
        }
        // Once the whole file is applied: an agent and a queue moved to
        // another team together keep that queue's offers.
        w.settle_routing_changes(&moves).await?;
        self.commit(w).await
    }

    /// Grace periods for every owner, since after a (re)start nobody is
    /// connected yet; they are cancelled as agents reconnect.
    async fn after_restart(&self) -> HubResult<()> {
        let mut w = self.work().await?;
        let rows = sqlx::query(
            "SELECT id, owner_id FROM conversations WHERE status = 'assigned' AND owner_id IS NOT NULL",
        )
        .fetch_all(&mut *w.tx)
        .await?;
        let due = Millis(w.now.0 + self.grace_ms());
        for r in rows {
            let conv: i64 = r.get(0);
            let owner: i64 = r.get(1);
            w.add_timer(
                TimerKind::DisconnectedGrace,
                conv,
                AgentId(owner),
                due,
                false,
            )
            .await?;
        }
        self.commit(w).await
    }

    fn grace_ms(&self) -> i64 {
        (self.config.routing.disconnected_grace_secs as i64).saturating_mul(1000)
    }

    // -- authentication ---------------------------------------------------

    /// Checks a password and issues a token.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client_addr: &str,
    ) -> HubResult<(String, Millis, AgentProfile)> {
        // Limiter keys are kept for a minute: no unbounded names in them.
        if username.len() > MAX_USERNAME_BYTES {
            return Err(HubError::invalid(format!(
                "user name longer than {MAX_USERNAME_BYTES} bytes"
            )));
        }
        let keys = [format!("user:{username}"), format!("ip:{client_addr}")];
        // Held until the outcome is known, so parallel guesses cannot all
        // pass the check before any of them counts.
        let attempt =
            self.login_limiter
                .reserve(&keys)
                .await
                .map_err(|secs| HubError::Throttled {
                    retry_after_secs: secs,
                })?;
        let row = sqlx::query("SELECT id, password_hash FROM agents WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        // An unknown user is checked against a dummy hash: the same time
        // as a real check, so user names cannot be probed by timing.
        let phc = match &row {
            Some(r) => r.get::<String, _>(1),
            None => self.dummy_hash.clone(),
        };
        let password = password.to_owned();
        // argon2id takes tens of ms in 19 MiB: off the runtime's workers,
        // so a burst of logins cannot hold up heartbeats and timers, and a
        // few at a time, so a flood of them cannot take gigabytes.
        let permit = self
            .password_checks
            .acquire()
            .await
            .map_err(|_| HubError::Corrupt("password checks closed".into()))?;
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &phc))
            .await?
            && row.is_some();
        drop(permit);
        let Some(row) = row.filter(|_| ok) else {
            attempt.failed();
            return Err(HubError::unauthorized("wrong user name or password"));
        };
        attempt.succeeded(&keys[0]);
        let agent = AgentId(row.get(0));
        let token = auth::new_token();
        let now = self.now();
        let expires = self.token_expiry(now, now);
        sqlx::query(
            "INSERT INTO tokens (hash, agent_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(auth::token_hash(&token))
        .bind(agent.0)
        .bind(now.0)
        .bind(expires.0)
        .execute(&self.pool)
        .await?;
        // Expired tokens answer like unknown ones: forgetting them here
        // (logins are rare, a few a day per agent) keeps the table to the
        // tokens that can still be used.
        sqlx::query("DELETE FROM tokens WHERE expires_at <= ?")
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        let profile = self.profile(agent).await?;
        tracing::info!(agent = %agent, "login");
        Ok((token, expires, profile))
    }

    /// Forgets connectors' message ids older than their retention, at most
    /// once an hour (in the ingress's own transaction: a retry inside the
    /// retention is still recognised).
    async fn prune_ingress_ids(&self, w: &mut Work<'_>, now: i64) -> HubResult<()> {
        use std::sync::atomic::Ordering;
        let last = self.ingress_ids_pruned_at.load(Ordering::Relaxed);
        if last != 0 && now - last < INGRESS_ID_PRUNE_EVERY_MS {
            return Ok(());
        }
        let retention = i64::try_from(self.config.server.ingress_id_retention_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        // A batch at a time: the ingress holds the hub's write lock, and the
        // first prune after an upgrade finds two weeks of ids at once. A
        // full batch means more are due: the next ingress goes on.
        let forgotten = sqlx::query(
            "DELETE FROM ingress_ids WHERE (channel, thread, message_id) IN
               (SELECT channel, thread, message_id FROM ingress_ids WHERE seen_at < ? LIMIT ?)",
        )
        .bind(now.saturating_sub(retention))
        .bind(INGRESS_ID_PRUNE_BATCH)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if forgotten < INGRESS_ID_PRUNE_BATCH as u64 {
            self.ingress_ids_pruned_at.store(now, Ordering::Relaxed);
        }
        if forgotten > 0 {
            tracing::info!(
                forgotten,
                "connectors' message ids past their retention forgotten"
            );
        }
        Ok(())
    }

    /// Resolves a bearer token.
    pub async fn authenticate(&self, token: &str) -> HubResult<Session> {
        let hash = auth::token_hash(token);
        let row = sqlx::query(
            "SELECT agent_id, expires_at, revoked, created_at FROM tokens WHERE hash = ?",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Err(HubError::unauthorized("unknown token"));
        };
        let expires_at = Millis(row.get(1));
        if row.get::<i64, _>(2) != 0 {
            return Err(HubError::unauthorized("token revoked"));
        }
        if expires_at <= self.now() {
            return Err(HubError::unauthorized("token expired"));
        }
        let profile = self.profile(AgentId(row.get(0))).await?;
        let mut session = Session {
            profile,
            token_hash: hash,
            expires_at,
            issued_at: Millis(row.get(3)),
        };
        self.renew_session(&mut session).await?;
        Ok(session)
    }

    /// When a token issued at `issued_at` and used at `now` expires: a
    /// TTL from its last use, within the maximum age from its issue.
    fn token_expiry(&self, issued_at: Millis, now: Millis) -> Millis {
        let auth = &self.config.auth;
        let idle = now
            .0
            .saturating_add((auth.token_ttl_secs as i64).saturating_mul(1000));
        match auth.token_max_age_secs {
            Some(max) => Millis(
                idle.min(
                    issued_at
                        .0
                        .saturating_add((max as i64).saturating_mul(1000)),
                ),
            ),
            None => Millis(idle),
        }
    }

    /// Renews a session's token in use: once half its TTL has passed, its
    /// expiry moves to a TTL from now (within the maximum age). At most
    /// one write per token per half TTL, however often it is used. An
    /// expired or revoked token is not renewed.
    pub async fn renew_session(&self, session: &mut Session) -> HubResult<()> {
        let now = self.now();
        let half = (self.config.auth.token_ttl_secs as i64).saturating_mul(500);
        if session.expires_at <= now || session.expires_at.0 - now.0 > half {
            return Ok(());
        }
        let renewed = self.token_expiry(session.issued_at, now);
        if renewed <= session.expires_at {
            return Ok(());
        }
        let updated = sqlx::query(
            "UPDATE tokens SET expires_at = ? WHERE hash = ? AND revoked = 0 AND expires_at < ?",
        )
        .bind(renewed.0)
        .bind(&session.token_hash)
        .bind(renewed.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            session.expires_at = renewed;
            tracing::debug!(agent = %session.profile.id, "token renewed");
        } else {
            // Renewed already by another request (at the maximum age, so
            // the condition above no longer holds): the stored expiry is
            // this session's too, or its link would close while the token
            // is still good.
            let stored: Option<i64> =
                sqlx::query_scalar("SELECT expires_at FROM tokens WHERE hash = ? AND revoked = 0")
                    .bind(&session.token_hash)
                    .fetch_optional(&self.pool)
                    .await?;
            if let Some(stored) = stored.filter(|e| *e > session.expires_at.0) {
                session.expires_at = Millis(stored);
            }
        }
        Ok(())
    }

    /// Whether a session's token is still valid (not revoked, not expired).
    pub async fn session_valid(&self, session: &Session) -> HubResult<bool> {
        let revoked: Option<i64> = sqlx::query_scalar("SELECT revoked FROM tokens WHERE hash = ?")
            .bind(&session.token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(revoked == Some(0) && session.expires_at > self.now())
    }

    /// Revokes one token (logout).
    pub async fn revoke_token(self: &Arc<Self>, session: &Session) -> HubResult<()> {
        sqlx::query("UPDATE tokens SET revoked = 1 WHERE hash = ?")
            .bind(&session.token_hash)
            .execute(&self.pool)
            .await?;
        self.links.notify_revoked(session.profile.id);
        self.hand_on_if_signed_out(session.profile.id);
        Ok(())
    }

    /// Revokes every token of an agent and disconnects its clients.
    pub async fn revoke_agent_tokens(self: &Arc<Self>, agent: AgentId) -> HubResult<u32> {
        let n = sqlx::query("UPDATE tokens SET revoked = 1 WHERE agent_id = ? AND revoked = 0")
            .bind(agent.0)
            .execute(&self.pool)
            .await?
            .rows_affected();
        self.links.notify_revoked(agent);
        self.hand_on_if_signed_out(agent);
        Ok(n as u32)
    }

    /// [`Work::hand_on_if_signed_out`] on its own transaction, after a
    /// revocation that is done whatever this does: on its own task, tried
    /// again on failure as the link's close is (the link may have closed
    /// already, and nothing else would hand the offers on).
    fn hand_on_if_signed_out(self: &Arc<Self>, agent: AgentId) {
        self.retry_detached(agent, "sign-out hand-on", move |hub| async move {
            let mut w = hub.work().await?;
            w.hand_on_if_signed_out(agent).await?;
            hub.commit(w).await
        });
    }

    /// Runs `job` on its own task, and again after each of
    /// [`RETRY_DETACHED_MS`] while it fails: bookkeeping that must not be
    /// lost to a passing failure (a busy or full disk) and that no caller
    /// waits for.
    pub fn retry_detached<F, Fut>(self: &Arc<Self>, agent: AgentId, what: &'static str, job: F)
    where
        F: Fn(Arc<Hub>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = HubResult<()>> + Send,
    {
        let hub = self.clone();
        tokio::spawn(async move {
            for (attempt, wait_ms) in RETRY_DETACHED_MS.iter().enumerate() {
                tokio::time::sleep(std::time::Duration::from_millis(*wait_ms)).await;
                match job(hub.clone()).await {
                    Ok(()) => return,
                    Err(e) => tracing::error!(agent = %agent, attempt, error = %e, "{what} failed"),
                }
            }
        });
    }

    /// An agent's profile.
    pub async fn profile(&self, agent: AgentId) -> HubResult<AgentProfile> {
        let mut conn = self.pool.acquire().await?;
        load_profile(&mut conn, agent).await
    }

    // -- connections ------------------------------------------------------

    /// Called when an agent's first connection opens: cancels grace periods
    /// and lets waiting work reach the agent.
    pub async fn agent_connected(&self, agent: AgentId) -> HubResult<()> {
        let mut w = self.work().await?;
        let n = sqlx::query("DELETE FROM timers WHERE kind = ? AND agent_id = ?")
            .bind(TimerKind::DisconnectedGrace.as_str())
            .bind(agent.0)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if n > 0 {
            w.timers_changed = true;
        }
        w.route_waiting().await?;
        w.team_catch_up(agent).await?;
        self.commit(w).await
    }

    /// Called when an agent's last connection closes: starts the grace
    /// period of every conversation the agent owns.
    pub async fn agent_disconnected(&self, agent: AgentId) -> HubResult<()> {
        let mut w = self.work().await?;
        if self.links.is_connected(agent) {
            // Reconnected meanwhile.
            return self.commit(w).await;
        }
        let convs: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM conversations WHERE owner_id = ? AND status = 'assigned'",
        )
        .bind(agent.0)
        .fetch_all(&mut *w.tx)
        .await?;
        let due = Millis(w.now.0 + self.grace_ms());
        for c in convs {
            w.add_timer(TimerKind::DisconnectedGrace, c, agent, due, false)
                .await?;
        }
        w.hand_on_if_signed_out(agent).await?;
        self.commit(w).await
    }

    /// How a connection resuming from `cursor` continues, and the seq it
    /// starts streaming after. For a full resync, the snapshot as of that
    /// seq. Taken under the write lock so snapshot and seq agree.
    pub async fn resume(
        &self,
        agent: AgentId,
        cursor: Option<Seq>,
    ) -> HubResult<(ResumeMode, Seq, Option<AgentSnapshot>)> {
        let _guard = self.write_lock.clone().lock_owned().await;
        let mut conn = self.pool.acquire().await?;
        let last: i64 = sqlx::query_scalar("SELECT last_seq FROM agents WHERE id = ?")
            .bind(agent.0)
            .fetch_one(&mut *conn)
            .await?;
        let last = last as u64;
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM events WHERE agent_id = ?")
                .bind(agent.0)
                .fetch_one(&mut *conn)
                .await?;
        let resync = match cursor {
            None => Some(ResyncReason::NoCursor),
            Some(Seq(c)) if c > last => Some(ResyncReason::CursorAhead),
            Some(Seq(c)) if c == last => None,
            Some(Seq(c)) => match oldest {
                Some(o) if (o as u64) <= c + 1 => None,
                _ => Some(ResyncReason::BeyondRetention),
            },
        };
        match resync {
            None => Ok((ResumeMode::Replay, cursor.unwrap_or_default(), None)),
            Some(reason) => {
                let snapshot = build_snapshot(&mut conn, agent).await?;
                Ok((ResumeMode::FullResync { reason }, Seq(last), Some(snapshot)))
            }
        }
    }

    /// Events after `after`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        agent: AgentId,
        after: Seq,
        limit: i64,
    ) -> HubResult<Vec<EventFrame>> {
        let rows = sqlx::query(
            "SELECT seq, at, body FROM events WHERE agent_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(agent.0)
        .bind(after.0 as i64)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(EventFrame {
                    seq: Seq(r.get::<i64, _>(0) as u64),
                    at: Millis(r.get(1)),
                    event: unjson(r.get::<&str, _>(2))?,
                })
            })
            .collect()
    }

    /// Records the client's ack.
    pub async fn ack(&self, agent: AgentId, seq: Seq) -> HubResult<()> {
        sqlx::query(
            "UPDATE agents SET acked_seq = MAX(acked_seq, ?) WHERE id = ? AND ? <= last_seq",
        )
        .bind(seq.0 as i64)
        .bind(agent.0)
        .bind(seq.0 as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest seq of an agent.
    pub async fn last_seq(&self, agent: AgentId) -> HubResult<Seq> {
        let last: i64 = sqlx::query_scalar("SELECT last_seq FROM agents WHERE id = ?")
            .bind(agent.0)
            .fetch_one(&self.pool)
            .await?;
        Ok(Seq(last as u64))
    }

    // -- agent commands ---------------------------------------------------

    /// Executes an agent command, idempotently by `(agent, id)`.
    pub async fn execute(
        &self,
        agent: AgentId,
        id: &CommandId,
        command: Command,
    ) -> HubResult<CommandReply> {
        if id.0.is_empty() || id.0.len() > switchboard_protocol::MAX_COMMAND_ID_BYTES {
            return Err(HubError::invalid("command id must be 1 to 64 bytes"));
        }
        let mut w = self.work().await?;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT reply FROM commands WHERE agent_id = ? AND command_id = ?")
                .bind(agent.0)
                .bind(&id.0)
                .fetch_optional(&mut *w.tx)
                .await?;
        if let Some(reply) = stored {
            // A retry: same answer, no second effect.
            self.commit(w).await?;
            return unjson(&reply);
        }
        let reply = match command {
            Command::AcceptOffer { offer_id } => w.accept(agent, offer_id).await?,
            Command::RejectOffer { offer_id, reason } => w.reject(agent, offer_id, reason).await?,
            Command::SetPresence { presence } => {
                if let Some(why) = unsettable(presence) {
                    return Err(HubError::refused(ErrorCode::InvalidPresence, why));
                }
                w.set_presence(agent, presence, PresenceReason::Agent)
                    .await?;
                w.route_waiting().await?;
                w.team_catch_up(agent).await?;
                CommandReply::Done
            }
            Command::ResetPresence => {
                w.reset_presence(agent, PresenceReason::Agent).await?;
                w.route_waiting().await?;
                w.team_catch_up(agent).await?;
                CommandReply::Done
            }
            Command::SendMessage {
                conversation_id,
                text,
            } => w.agent_message(agent, conversation_id, text, id).await?,
            Command::MarkRead {
                conversation_id,
                message_id,
            } => {
                w.mark_read(agent, conversation_id, message_id).await?;
                CommandReply::Done
            }
            Command::CloseConversation { conversation_id } => {
                w.close(agent, conversation_id).await?;
                w.route_waiting().await?;
                // A session fewer: the team chats it was passed over for
                // at the session limit (`may_ask`).
                w.team_catch_up(agent).await?;
                CommandReply::Done
            }
            Command::TransferConversation {
                conversation_id,
                target,
                note,
            } => {
                w.transfer(agent, conversation_id, target, note).await?;
                w.route_waiting().await?;
                w.team_catch_up(agent).await?;
                CommandReply::Done
            }
            Command::EscalateConversation {
                conversation_id,
                supervisor_id,
                note,
            } => {
                w.escalate(agent, conversation_id, supervisor_id, note)
                    .await?;
                w.route_waiting().await?;
                w.team_catch_up(agent).await?;
                CommandReply::Done
            }
            Command::Consult {
                conversation_id,
                agent_id,
            } => {
                w.ask(agent, conversation_id, agent_id, |from| {
                    OfferOrigin::Consult { from }
                })
                .await?;
                CommandReply::Done
            }
            Command::RequestAssign {
                conversation_id,
                agent_id,
                reason,
            } => {
                let reason = reason
                    .map(|r| truncate(r.trim(), switchboard_protocol::MAX_NOTE_BYTES))
                    .filter(|r| !r.is_empty());
                w.ask(agent, conversation_id, agent_id, |from| {
                    OfferOrigin::AssignRequest { from, reason }
                })
                .await?;
                CommandReply::Done
            }
            Command::RequestDiscuss {
                conversation_id,
                agent_id,
            } => {
                w.ask(agent, conversation_id, agent_id, |from| {
                    OfferOrigin::DiscussRequest { from }
                })
                .await?;
                CommandReply::Done
            }
            Command::AssignConversation {
                conversation_id,
                agent_id,
            } => {
                w.supervisor_assign(agent, conversation_id, agent_id)
                    .await?;
                w.route_waiting().await?;
                CommandReply::Done
            }
            Command::TakeTeamChat { conversation_id } => {
                w.take_team_chat(agent, conversation_id).await?
            }
            Command::Unknown => {
                return Err(HubError::invalid("unknown command kind"));
            }
        };
        sqlx::query("INSERT INTO commands (agent_id, command_id, reply, at) VALUES (?, ?, ?, ?)")
            .bind(agent.0)
            .bind(&id.0)
            .bind(json(&reply))
            .bind(w.now.0)
            .execute(&mut *w.tx)
            .await?;
        self.commit(w).await?;
        Ok(reply)
    }

    /// A supervisor sets an agent's presence.
    pub async fn supervisor_set_presence(
        &self,
        supervisor: &AgentProfile,
        agent: AgentId,
        presence: Presence,
    ) -> HubResult<()> {
        if let Some(why) = unsettable(presence) {
            return Err(HubError::refused(ErrorCode::InvalidPresence, why));
        }
        self.supervisor_presence(supervisor, agent, Some(presence))
            .await
            .map(drop)
    }

    /// A supervisor resets an agent's presence after the hub changed it
    /// (missed or rejected offer, session limit): back to what the agent
    /// had set, or Available. Returns the presence set.
    pub async fn supervisor_reset_presence(
        &self,
        supervisor: &AgentProfile,
        agent: AgentId,
    ) -> HubResult<Presence> {
        self.supervisor_presence(supervisor, agent, None).await
    }

    /// Sets (`Some`) or resets (`None`) a presence for a supervisor.
    async fn supervisor_presence(
        &self,
        supervisor: &AgentProfile,
        agent: AgentId,
        presence: Option<Presence>,
    ) -> HubResult<Presence> {
        if !supervisor.role.is_supervisor() {
            return Err(HubError::forbidden("supervisors only"));
        }
        let mut w = self.work().await?;
        let target = load_profile(&mut w.tx, agent).await?;
        // A supervisor answers for its own team's agents: not for admins,
        // and a supervisor with no team for nobody (before, two without a
        // team counted as one team).
        if supervisor.role == Role::Supervisor
            && (supervisor.team.is_none()
                || target.team != supervisor.team
                || target.role == Role::Admin)
        {
            return Err(HubError::forbidden("agent is not in your team"));
        }
        match presence {
            Some(p) => w.set_presence(agent, p, PresenceReason::Supervisor).await?,
            None => drop(w.reset_presence(agent, PresenceReason::Supervisor).await?),
        }
        w.route_waiting().await?;
        w.team_catch_up(agent).await?;
        // As routing left it: an agent reset at the session limit with work
        // waiting is back on Do not disturb at once.
        let now: String = sqlx::query_scalar("SELECT presence FROM agents WHERE id = ?")
            .bind(agent.0)
            .fetch_one(&mut *w.tx)
            .await?;
        let now = unwire(&now)?;
        self.commit(w).await?;
        Ok(now)
    }

    // -- ingress ----------------------------------------------------------

    /// A customer message from a channel connector: joins the open
    /// conversation of its thread or creates (and routes) a new one.
    pub async fn ingress(&self, m: IngressMessage) -> HubResult<IngressResponse> {
        // Values a newer connector knows and this hub does not decode as
        // `Other`: refused, not routed as something else.
        if m.channel == Channel::Other {
            return Err(HubError::invalid("unknown channel"));
        }
        if m.scenario == Some(Scenario::Other) {
            return Err(HubError::invalid("unknown scenario"));
        }
        if m.text.len() > MAX_MESSAGE_TEXT_BYTES {
            return Err(HubError::refused(
                ErrorCode::TooLarge,
                "message text too long",
            ));
        }
        if m.thread.is_empty() || m.thread.len() > 256 {
            return Err(HubError::invalid("thread must be 1 to 256 bytes"));
        }
        if m.message_id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > 256)
        {
            return Err(HubError::invalid("message_id must be 1 to 256 bytes"));
        }
        let mut w = self.work().await?;
        if let Some(id) = &m.message_id {
            let seen: Option<(i64, bool)> = sqlx::query_as(
                "SELECT conversation_id, created FROM ingress_ids WHERE channel = ? AND thread = ? AND message_id = ?",
            )
            .bind(wire(&m.channel))
            .bind(&m.thread)
            .bind(id)
            .fetch_optional(&mut *w.tx)
            .await?;
            if let Some((conv, created)) = seen {
                // A retry: done already (the connector lost our answer),
                // answered as the first time.
                self.commit(w).await?;
                return Ok(IngressResponse {
                    conversation_id: ConversationId(conv),
                    created,
                });
            }
        }
        // A call is a work item of its own: a WhatsApp call from a customer
        // whose chat is open rings as an incoming call (seed 003) instead
        // of joining the chat silently, and the chat's next messages still
        // go to the chat. Calls join only an open call on their thread
        // (`is_call`, fixed at creation: a transfer rewrites the scenario).
        let is_call = m.scenario.unwrap_or(m.channel.incoming_scenario()) == Scenario::IncomingCall;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM conversations WHERE channel = ? AND thread = ? AND status <> 'closed'
               AND is_call = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(wire(&m.channel))
        .bind(&m.thread)
        .bind(is_call)
        .fetch_optional(&mut *w.tx)
        .await?;
        let (conv, created) = match existing {
            Some(id) => (ConversationId(id), false),
            None => (w.create_conversation(&m).await?, true),
        };
        if created {
            for line in m.transcript.iter().take(200) {
                w.insert_message(conv, &Author::System, &truncate(line, 2000), None)
                    .await?;
            }
        }
        if !m.text.is_empty() {
            w.customer_message(conv, &m.text).await?;
        }
        if let Some(id) = &m.message_id {
            let now = self.now().0;
            sqlx::query(
                "INSERT INTO ingress_ids (channel, thread, message_id, conversation_id, created, seen_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(wire(&m.channel))
            .bind(&m.thread)
            .bind(id)
            .bind(conv.0)
            .bind(created)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
            self.prune_ingress_ids(&mut w, now).await?;
        }
        if created {
            w.route(conv).await?;
        }
        self.commit(w).await?;
        Ok(IngressResponse {
            conversation_id: conv,
            created,
        })
    }

    /// Messages of a conversation, for its owner, a supervisor, or a
    /// connector (`viewer` None).
    pub async fn conversation_messages(
        &self,
        viewer: Option<&AgentProfile>,
        conv: ConversationId,
        after: Option<MessageId>,
    ) -> HubResult<Vec<Message>> {
        let mut conn = self.pool.acquire().await?;
        let summary = load_summary(&mut conn, conv).await?;
        if let Some(v) = viewer {
            if !may_see(&mut conn, v, &summary).await? {
                return Err(HubError::not_found("no such conversation"));
            }
        }
        let rows = sqlx::query(
            "SELECT id, conversation_id, author_kind, author_agent_id, text, sent_at, command_id FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT 1000",
        )
        .bind(conv.0)
        .bind(after.map_or(0, |m| m.0))
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows.iter().map(message_from_row).collect())
    }

    /// Up to `limit` (1 to 1,000) of a conversation's messages before
    /// `before`, the newest of them, oldest first: a page further back than
    /// what the app keeps. For those who may see the conversation, as the
    /// history.
    pub async fn conversation_messages_before(
        &self,
        viewer: &AgentProfile,
        conv: ConversationId,
        before: MessageId,
        limit: u32,
    ) -> HubResult<Vec<Message>> {
        let mut conn = self.pool.acquire().await?;
        let summary = load_summary(&mut conn, conv).await?;
        if !may_see(&mut conn, viewer, &summary).await? {
            return Err(HubError::not_found("no such conversation"));
        }
        let rows = sqlx::query(
            "SELECT id, conversation_id, author_kind, author_agent_id, text, sent_at, command_id FROM messages WHERE conversation_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(conv.0)
        .bind(before.0)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows.iter().rev().map(message_from_row).collect())
    }

    // -- timers -----------------------------------------------------------

    /// The next timer's due time, if any.
    pub async fn next_timer_due(&self) -> HubResult<Option<Millis>> {
        let due: Option<i64> = sqlx::query_scalar("SELECT MIN(due_at) FROM timers")
            .fetch_one(&self.pool)
            .await?;
        Ok(due.map(Millis))
    }

    /// Fires every timer due now; returns how many fired.
    pub async fn fire_due_timers(&self) -> HubResult<usize> {
        let mut fired = 0;
        loop {
            let mut w = self.work().await?;
            let row = sqlx::query(
                "SELECT id, kind, ref_id, agent_id FROM timers WHERE due_at <= ? ORDER BY due_at, id LIMIT 1",
            )
            .bind(w.now.0)
            .fetch_optional(&mut *w.tx)
            .await?;
            let Some(row) = row else {
                self.commit(w).await?;
                return Ok(fired);
            };
            let id: i64 = row.get(0);
            let kind: String = row.get(1);
            let ref_id: i64 = row.get(2);
            let agent = AgentId(row.get(3));
            sqlx::query("DELETE FROM timers WHERE id = ?")
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
            let handled = match kind.as_str() {
                "offer_timeout" => w.offer_timed_out(OfferId(ref_id)).await,
                "disconnected_grace" => w.grace_expired(ConversationId(ref_id), agent).await,
                "owner_idle" => w.owner_idle(ConversationId(ref_id), agent).await,
                "team_reminder" => w.team_reminder(ConversationId(ref_id), agent).await,
                other => {
                    tracing::warn!(kind = other, "unknown timer kind dropped");
                    Ok(())
                }
            };
            match handled {
                Ok(()) => {
                    self.commit(w).await?;
                    fired += 1;
                }
                Err(e) => {
                    // Rolled back (the timer stays). Retried later rather
                    // than at once: first in line, it would hold up every
                    // timer due after it.
                    drop(w);
                    tracing::error!(timer = id, kind = %kind, error = %e, "timer failed; retrying later");
                    let mut w = self.work().await?;
                    sqlx::query("UPDATE timers SET due_at = ? WHERE id = ?")
                        .bind(w.now.0 + TIMER_RETRY_MS)
                        .bind(id)
                        .execute(&mut *w.tx)
                        .await?;
                    self.commit(w).await?;
                }
            }
        }
    }

    // -- admin ------------------------------------------------------------

    /// Creates or updates an agent.
    pub async fn admin_upsert_agent(self: &Arc<Self>, spec: &AgentSpec) -> HubResult<AgentId> {
        if spec.username.is_empty() || spec.username.len() > 64 {
            return Err(HubError::invalid("username must be 1 to 64 bytes"));
        }
        if spec.role == Role::Other {
            return Err(HubError::invalid("unknown role"));
        }
        let mut w = self.work().await?;
        // "A1" beside "a1" is a second account a person would take for the
        // first (sign-in names are exact).
        // Only for a new name: two that a database from before this check
        // holds must both stay editable (a password reset after a leak).
        let lookalike: Option<String> = sqlx::query_scalar(
            "SELECT username FROM agents WHERE lower(username) = lower(?1) AND username <> ?1
               AND NOT EXISTS (SELECT 1 FROM agents WHERE username = ?1)",
        )
        .bind(&spec.username)
        .fetch_optional(&mut *w.tx)
        .await?;
        if let Some(other) = lookalike {
            return Err(HubError::conflict(format!(
                "user name {:?} differs from {other:?} only in case",
                spec.username
            )));
        }
        let existing: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM agents WHERE username = ?")
                .bind(&spec.username)
                .fetch_optional(&mut *w.tx)
                .await?;
        let hash = match (&spec.password, existing) {
            (Some(p), _) => auth::hash_password(p)
                .map_err(|e| HubError::Corrupt(format!("hashing failed: {e}")))?,
            (None, Some(old)) => old,
            (None, None) => return Err(HubError::invalid("a new agent needs a password")),
        };
        let (id, changes) = w.upsert_agent(spec, &hash).await?;
        w.settle_routing_changes(&changes).await?;
        w.route_waiting().await?;
        self.commit(w).await?;
        if spec.password.is_some() {
            // A new password (a reset after a leak): the tokens signed in
            // with the old one end, and their links close.
            self.revoke_agent_tokens(id).await?;
        }
        Ok(id)
    }

    /// Creates or updates a queue.
    pub async fn admin_upsert_queue(&self, spec: &QueueSpec) -> HubResult<()> {
        let overrides: BTreeMap<Scenario, TemplateOverride> = spec
            .templates
            .iter()
            .map(|(s, t)| {
                (
                    *s,
                    TemplateOverride {
                        kind: Some(t.kind),
                        timeout_secs: Some(t.timeout_secs),
                        show_timeout: Some(t.show_timeout),
                        allow_reject: Some(t.allow_reject),
                        reject_reason_required: Some(t.reject_reason_required),
                        auto_accept: Some(t.auto_accept),
                        auto_assign: Some(t.auto_assign),
                        details: Some(t.details.clone()),
                        desktop: Some(t.desktop),
                    },
                )
            })
            .collect();
        if let Some(problem) = crate::config::queue_problem(
            &spec.channels,
            &spec.allowed_presences,
            &overrides,
            spec.idle_timeout_secs,
        ) {
            return Err(HubError::invalid(problem));
        }
        let mut w = self.work().await?;
        let moved = w
            .upsert_queue(
                &spec.name,
                &spec.team,
                &spec.channels,
                &spec.allowed_presences,
                &overrides,
                QueueOptions {
                    team_owned: spec.team_owned,
                    idle_timeout_secs: spec.idle_timeout_secs,
                },
            )
            .await?;
        w.settle_routing_changes(&[moved]).await?;
        w.route_waiting().await?;
        self.commit(w).await
    }

    /// Every queue with its effective templates.
    pub async fn admin_queues(&self) -> HubResult<Vec<QueueSpec>> {
        let rows = sqlx::query(
            "SELECT q.name, t.name, q.channels, q.allowed_presences, q.templates, q.team_owned, q.idle_timeout_secs FROM queues q JOIN teams t ON t.id = q.team_id ORDER BY q.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let overrides: BTreeMap<Scenario, TemplateOverride> = unjson(r.get::<&str, _>(4))?;
                Ok(QueueSpec {
                    name: r.get(0),
                    team: r.get(1),
                    channels: unjson(r.get::<&str, _>(2))?,
                    allowed_presences: unjson(r.get::<&str, _>(3))?,
                    templates: Scenario::ALL
                        .iter()
                        .map(|s| (*s, effective_template(&overrides, *s)))
                        .collect(),
                    team_owned: r.get(5),
                    idle_timeout_secs: r.get::<Option<i64>, _>(6).map(|v| v as u32),
                })
            })
            .collect()
    }

    /// Every agent with presence and load.
    /// Every agent's status, for an admin; a supervisor's own team's only
    /// (as everything else a supervisor sees is scoped to its team).
    pub async fn admin_agents(&self, viewer: &AgentProfile) -> HubResult<Vec<AgentStatus>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM agents ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let agent = AgentId(id);
            let profile = load_profile(&mut conn, agent).await?;
            if viewer.role != Role::Admin && (viewer.team.is_none() || profile.team != viewer.team)
            {
                continue;
            }
            let row = sqlx::query(
                "SELECT presence, capacity, (SELECT COUNT(*) FROM conversations c WHERE c.status = 'assigned'
                   AND (c.owner_id = agents.id OR c.id IN
                     (SELECT p.conversation_id FROM conversation_participants p WHERE p.agent_id = agents.id)))
                 FROM agents WHERE id = ?",
            )
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
            out.push(AgentStatus {
                profile,
                presence: unwire(row.get::<&str, _>(0))?,
                connected: self.links.is_connected(agent),
                open_sessions: row.get::<i64, _>(2) as u32,
                capacity: row.get::<i64, _>(1) as u32,
            });
        }
        Ok(out)
    }

    /// The open conversations of the viewer's team (a supervisor's, or an
    /// admin's; an admin with no team: every team's), waiting ones first
    /// (queued, or offered to someone), oldest first, then those being
    /// worked, as the Team panel beside the team's members shows them:
    /// what a supervisor assigns from, including customers nobody has
    /// taken (a team chat between reminders, a queue with nobody free).
    /// At most [`TEAM_CONVERSATIONS_LISTED`].
    pub async fn team_conversations(
        &self,
        viewer: &AgentProfile,
    ) -> HubResult<Vec<ConversationSummary>> {
        if !viewer.role.is_supervisor() {
            return Err(HubError::forbidden("supervisors only"));
        }
        if viewer.role != Role::Admin && viewer.team.is_none() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT c.id FROM conversations c
               JOIN queues q ON q.id = c.queue_id
               JOIN teams t ON t.id = q.team_id
             WHERE c.status IN ('queued', 'offered', 'assigned') AND (?1 OR t.name = ?2)
             ORDER BY c.status = 'assigned', c.created_at, c.id
             LIMIT ?3",
        )
        .bind(viewer.team.is_none())
        .bind(viewer.team.as_deref())
        .bind(TEAM_CONVERSATIONS_LISTED)
        .fetch_all(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(load_summary(&mut conn, ConversationId(id)).await?);
        }
        Ok(out)
    }

    /// The team-owned conversations of the viewer's team that nobody owns
    /// yet, longest waiting first, each with its customer's newest message:
    /// what any teammate can take (`take_team_chat`). At most
    /// [`TEAM_CONVERSATIONS_LISTED`]; none for an agent with no team.
    pub async fn waiting_team_chats(
        &self,
        viewer: &AgentProfile,
    ) -> HubResult<Vec<switchboard_protocol::rest::WaitingTeamChat>> {
        let sql = format!(
            "SELECT c.id,
               (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id AND m.author_kind = 'customer'),
               (SELECT text FROM messages m WHERE m.conversation_id = c.id AND m.author_kind = 'customer'
                  ORDER BY m.id DESC LIMIT 1)
             FROM conversations c
               JOIN queues q ON q.id = c.queue_id
               JOIN agents a ON a.id = ?1 AND a.team_id = q.team_id
             WHERE q.team_owned AND c.status = 'offered' AND c.owner_id IS NULL
               AND NOT {}
             ORDER BY c.created_at, c.id
             LIMIT ?2",
            handoff::OFFERED_TO_ONE_PERSON
        );
        let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(&sql)
            .bind(viewer.id.0)
            .bind(TEAM_CONVERSATIONS_LISTED)
            .fetch_all(&self.pool)
            .await?;
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, messages, preview) in rows {
            out.push(switchboard_protocol::rest::WaitingTeamChat {
                conversation: load_summary(&mut conn, ConversationId(id)).await?,
                preview: preview
                    .unwrap_or_default()
                    .chars()
                    .take(handoff::PREVIEW_CHARS)
                    .collect(),
                messages: u32::try_from(messages).unwrap_or(u32::MAX),
            });
        }
        Ok(out)
    }

    /// An agent id by user name.
    pub async fn agent_id(&self, username: &str) -> HubResult<AgentId> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM agents WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        id.map(AgentId)
            .ok_or_else(|| HubError::not_found(format!("no agent {username:?}")))
    }

    /// An agent's current presence.
    pub async fn presence(&self, agent: AgentId) -> HubResult<Presence> {
        let p: String = sqlx::query_scalar("SELECT presence FROM agents WHERE id = ?")
            .bind(agent.0)
            .fetch_one(&self.pool)
            .await?;
        unwire(&p)
    }

    /// A conversation's summary.
    pub async fn conversation(&self, conv: ConversationId) -> HubResult<ConversationSummary> {
        let mut conn = self.pool.acquire().await?;
        load_summary(&mut conn, conv).await
    }

    /// Open (queued, offered or assigned) conversations, newest first.
    pub async fn open_conversations(&self, limit: i64) -> HubResult<Vec<ConversationSummary>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM conversations WHERE status <> 'closed' ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::new();
        for id in ids {
            out.push(load_summary(&mut conn, ConversationId(id)).await?);
        }
        Ok(out)
    }

    /// The customer thread a conversation belongs to (for simulators and
    /// connectors).
    pub async fn conversation_thread(&self, conv: ConversationId) -> HubResult<String> {
        let t: Option<String> = sqlx::query_scalar("SELECT thread FROM conversations WHERE id = ?")
            .bind(conv.0)
            .fetch_optional(&self.pool)
            .await?;
        t.ok_or_else(|| HubError::not_found("no such conversation"))
    }
}

impl Work<'_> {
    /// The configuration entry last applied for `kind`/`name`, with the
    /// password hash it set (agents).
    async fn config_applied(
        &mut self,
        kind: &str,
        name: &str,
    ) -> HubResult<Option<(String, Option<String>)>> {
        let row = sqlx::query(
            "SELECT entry, password_hash FROM config_applied WHERE kind = ? AND name = ?",
        )
        .bind(kind)
        .bind(name)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn record_config_applied(
        &mut self,
        kind: &str,
        name: &str,
        entry: &str,
        password_hash: Option<&str>,
    ) -> HubResult<()> {
        sqlx::query(
            "INSERT INTO config_applied (kind, name, entry, password_hash) VALUES (?, ?, ?, ?)
             ON CONFLICT (kind, name) DO UPDATE SET entry = excluded.entry,
               password_hash = excluded.password_hash",
        )
        .bind(kind)
        .bind(name)
        .bind(entry)
        .bind(password_hash)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Creates or updates an agent; a change of team or a demotion is
    /// returned, to be settled ([`Work::settle_routing_changes`]) once the
    /// whole edit is applied.
    async fn upsert_agent(
        &mut self,
        spec: &AgentSpec,
        hash: &str,
    ) -> HubResult<(AgentId, Vec<RoutingChange>)> {
        let team_id = match &spec.team {
            Some(t) => Some(self.team_id(t).await?),
            None => None,
        };
        let before: Option<(Option<i64>, String)> =
            sqlx::query_as("SELECT team_id, role FROM agents WHERE username = ?")
                .bind(&spec.username)
                .fetch_optional(&mut *self.tx)
                .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO agents (username, display_name, password_hash, role, team_id, capacity, idle_since)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(username) DO UPDATE SET display_name = excluded.display_name,
               password_hash = excluded.password_hash, role = excluded.role,
               team_id = excluded.team_id, capacity = excluded.capacity
             RETURNING id",
        )
        .bind(&spec.username)
        .bind(&spec.display_name)
        .bind(hash)
        .bind(spec.role.as_str())
        .bind(team_id)
        .bind(spec.capacity as i64)
        .bind(self.now.0)
        .fetch_one(&mut *self.tx)
        .await?;
        let id = AgentId(id);
        let mut changes = Vec::new();
        if let Some((from, role)) = before {
            if from != team_id {
                changes.push(RoutingChange::AgentMoved { agent: id, from });
            }
            let rank = |r: &str| match r {
                "admin" => 2,
                "supervisor" => 1,
                _ => 0,
            };
            if rank(spec.role.as_str()) < rank(&role) {
                changes.push(RoutingChange::AgentDemoted {
                    agent: id,
                    to: spec.role,
                });
            }
        }
        Ok((id, changes))
    }

    /// Hands on what an edit leaves with the wrong people, and routes what
    /// it leaves with nobody. Run after every change of one edit is
    /// applied, so that an agent and a queue moved together keep that
    /// queue's offers.
    async fn settle_routing_changes(&mut self, changes: &[RoutingChange]) -> HubResult<()> {
        for change in changes {
            match *change {
                RoutingChange::AgentMoved { agent, from } => {
                    // The old team's chats and team messages are not theirs
                    // to answer any more (an escalation from another team
                    // to an admin still is), and the new team's waiting
                    // chats are.
                    tracing::info!(%agent, "agent moved to another team; handing on the old team's offers");
                    if let Some(old) = from {
                        self.hand_on_offers(agent, OfferScope::OfTeam(old)).await?;
                    }
                    self.team_catch_up(agent).await?;
                }
                RoutingChange::AgentDemoted { agent, to } => {
                    tracing::info!(%agent, "role lowered; handing on escalations it may not take");
                    let keep = if to == Role::Supervisor {
                        sqlx::query_scalar("SELECT team_id FROM agents WHERE id = ?")
                            .bind(agent.0)
                            .fetch_one(&mut *self.tx)
                            .await?
                    } else {
                        None
                    };
                    self.hand_on_offers(agent, OfferScope::Escalations { keep })
                        .await?;
                }
                RoutingChange::QueueEdited { queue } => self.settle_queue(queue).await?,
            }
        }
        Ok(())
    }

    async fn team_id(&mut self, name: &str) -> HubResult<i64> {
        sqlx::query("INSERT INTO teams (name) VALUES (?) ON CONFLICT(name) DO NOTHING")
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(sqlx::query_scalar("SELECT id FROM teams WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *self.tx)
            .await?)
    }

    async fn upsert_queue(
        &mut self,
        name: &str,
        team: &str,
        channels: &[Channel],
        allowed: &[Presence],
        templates: &BTreeMap<Scenario, TemplateOverride>,
        options: QueueOptions,
    ) -> HubResult<RoutingChange> {
        let team_id = self.team_id(team).await?;
        let queue: i64 = sqlx::query_scalar(
            "INSERT INTO queues (name, team_id, channels, allowed_presences, templates, team_owned, idle_timeout_secs) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET team_id = excluded.team_id, channels = excluded.channels,
               allowed_presences = excluded.allowed_presences, templates = excluded.templates,
               team_owned = excluded.team_owned, idle_timeout_secs = excluded.idle_timeout_secs
             RETURNING id",
        )
        .bind(name)
        .bind(team_id)
        .bind(json(&channels))
        .bind(json(&allowed))
        .bind(json(templates))
        .bind(options.team_owned)
        .bind(options.idle_timeout_secs.map(i64::from))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(RoutingChange::QueueEdited { queue })
    }

    /// Appends an event to the agent's log.
    async fn append(&mut self, agent: AgentId, mut event: AgentEvent) -> HubResult<Seq> {
        // Embedded history is trimmed before it is logged: a frame over the
        // limit would be dropped by the client, leaving the agent owning a
        // conversation it never sees.
        crate::fit::fit_event(&mut event);
        let seq: i64 = sqlx::query_scalar(
            "UPDATE agents SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq",
        )
        .bind(agent.0)
        .fetch_one(&mut *self.tx)
        .await?;
        sqlx::query("INSERT INTO events (agent_id, seq, at, body) VALUES (?, ?, ?, ?)")
            .bind(agent.0)
            .bind(seq)
            .bind(self.now.0)
            .bind(json(&event))
            .execute(&mut *self.tx)
            .await?;
        let retention = self.hub.config.protocol.event_retention.max(1) as i64;
        if seq % 64 == 0 && seq > retention {
            sqlx::query("DELETE FROM events WHERE agent_id = ? AND seq <= ?")
                .bind(agent.0)
                .bind(seq - retention)
                .execute(&mut *self.tx)
                .await?;
        }
        self.woken.insert(agent, seq as u64);
        Ok(Seq(seq as u64))
    }

    async fn add_timer(
        &mut self,
        kind: TimerKind,
        ref_id: i64,
        agent: AgentId,
        due: Millis,
        replace: bool,
    ) -> HubResult<()> {
        let sql = if replace {
            "INSERT INTO timers (kind, ref_id, agent_id, due_at) VALUES (?, ?, ?, ?)
             ON CONFLICT(kind, ref_id) DO UPDATE SET agent_id = excluded.agent_id, due_at = excluded.due_at"
        } else {
            "INSERT INTO timers (kind, ref_id, agent_id, due_at) VALUES (?, ?, ?, ?)
             ON CONFLICT(kind, ref_id) DO NOTHING"
        };
        sqlx::query(sql)
            .bind(kind.as_str())
            .bind(ref_id)
            .bind(agent.0)
            .bind(due.0)
            .execute(&mut *self.tx)
            .await?;
        self.timers_changed = true;
        Ok(())
    }

    async fn delete_timer(&mut self, kind: TimerKind, ref_id: i64) -> HubResult<()> {
        let deleted = sqlx::query("DELETE FROM timers WHERE kind = ? AND ref_id = ?")
            .bind(kind.as_str())
            .bind(ref_id)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        // Nothing deleted: the next wake is as it was.
        if deleted > 0 {
            self.timers_changed = true;
        }
        Ok(())
    }

    async fn set_presence(
        &mut self,
        agent: AgentId,
        presence: Presence,
        reason: PresenceReason,
    ) -> HubResult<()> {
        // A change of the hub's own keeps the presence a person had set
        // (the first one, through several such changes) for a reset to go
        // back to; a person's change forgets it. SET reads the old row.
        let by_person = matches!(reason, PresenceReason::Agent | PresenceReason::Supervisor);
        let sql = if by_person {
            "UPDATE agents SET presence = ?, presence_before_system = NULL WHERE id = ?"
        } else {
            "UPDATE agents SET presence = ?,
                presence_before_system = COALESCE(presence_before_system, presence)
             WHERE id = ?"
        };
        let n = sqlx::query(sql)
            .bind(presence.as_str())
            .bind(agent.0)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(HubError::not_found("no such agent"));
        }
        self.append(agent, AgentEvent::PresenceChanged { presence, reason })
            .await?;
        Ok(())
    }

    /// Resets `agent`'s presence (the banner's or a supervisor's Reset
    /// presence): [`reset_target`], or nothing when the presence is a
    /// person's choice. Returns the presence the agent has now.
    async fn reset_presence(
        &mut self,
        agent: AgentId,
        reason: PresenceReason,
    ) -> HubResult<Presence> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT presence, presence_before_system FROM agents WHERE id = ?")
                .bind(agent.0)
                .fetch_optional(&mut *self.tx)
                .await?;
        let Some((now, before)) = row else {
            return Err(HubError::not_found("no such agent"));
        };
        let now: Presence = unwire(&now)?;
        match reset_target(now, before.as_deref()) {
            Some(presence) => {
                self.set_presence(agent, presence, reason).await?;
                Ok(presence)
            }
            // A person's own choice: nothing to reset.
            None => Ok(now),
        }
    }

    async fn notice(&mut self, agent: AgentId, notice: NoticeKind, message: &str) -> HubResult<()> {
        self.append(
            agent,
            AgentEvent::Notice {
                notice,
                message: message.to_owned(),
            },
        )
        .await?;
        Ok(())
    }

    /// Keeps `agent` out of `conv`'s routing. A [`Exclusion::Declined`]
    /// one goes when nobody else can take the conversation (`route_waiting`);
    /// an [`Exclusion::Sender`] one stays: a transfer never comes back.
    async fn exclude(
        &mut self,
        conv: ConversationId,
        agent: AgentId,
        kind: Exclusion,
    ) -> HubResult<()> {
        sqlx::query(
            "INSERT INTO offer_exclusions (conversation_id, agent_id, hard) VALUES (?, ?, ?)
             ON CONFLICT (conversation_id, agent_id) DO UPDATE SET hard = MAX(hard, excluded.hard)",
        )
        .bind(conv.0)
        .bind(agent.0)
        .bind(i64::from(kind == Exclusion::Sender))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn set_status(
        &mut self,
        conv: ConversationId,
        status: ConversationStatus,
        owner: Option<AgentId>,
    ) -> HubResult<()> {
        sqlx::query("UPDATE conversations SET status = ?, owner_id = ? WHERE id = ?")
            .bind(wire(&status))
            .bind(owner.map(|a| a.0))
            .bind(conv.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn create_conversation(&mut self, m: &IngressMessage) -> HubResult<ConversationId> {
        let queue: Option<(i64, String)> = match &m.queue {
            Some(name) => {
                sqlx::query_as("SELECT id, channels FROM queues WHERE name = ?")
                    .bind(name)
                    .fetch_optional(&mut *self.tx)
                    .await?
            }
            None => {
                let rows: Vec<(i64, String)> =
                    sqlx::query_as("SELECT id, channels FROM queues ORDER BY id")
                        .fetch_all(&mut *self.tx)
                        .await?;
                rows.into_iter().find(|(_, ch)| {
                    unjson::<Vec<Channel>>(ch).is_ok_and(|c| c.contains(&m.channel))
                })
            }
        };
        let Some((queue_id, _)) = queue else {
            return Err(HubError::not_found(format!(
                "no queue serves channel {}",
                m.channel.as_str()
            )));
        };
        let scenario = m.scenario.unwrap_or(m.channel.incoming_scenario());
        let identification = self.identify(m).await?;
        let origin = (scenario == Scenario::BotEscalation).then(|| OfferOrigin::BotEscalation {
            transcript: m
                .transcript
                .iter()
                .take(50)
                .map(|l| truncate(l, 500))
                .collect(),
        });
        let case_id = match m.case_id {
            Some(c) => self.case_contact(c).await?.map(|_| c.0),
            None => None,
        };
        let contact_id = match (&identification, m.case_id) {
            (_, Some(c)) => self.case_contact(c).await?.map(|x| x.0),
            (Some(switchboard_protocol::Identification::One { contact_id }), None) => {
                Some(contact_id.0)
            }
            _ => None,
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO conversations (channel, thread, queue_id, scenario, customer_name, customer_phone, customer_email, comment, status, created_at, identification, route_origin, case_id, contact_id, is_call)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(wire(&m.channel))
        .bind(&m.thread)
        .bind(queue_id)
        .bind(wire(&scenario))
        .bind(truncate(&m.customer_name, 200))
        .bind(m.phone.as_deref().map(|s| truncate(s, 64)))
        .bind(m.email.as_deref().map(|s| truncate(s, 254)))
        .bind(m.comment.as_deref().map(|s| truncate(s, 2000)))
        .bind(self.now.0)
        .bind(identification.as_ref().map(json))
        .bind(origin.as_ref().map(json))
        .bind(case_id)
        .bind(contact_id)
        .bind(scenario == Scenario::IncomingCall)
        .fetch_one(&mut *self.tx)
        .await?;
        tracing::info!(
            conversation = id,
            channel = m.channel.as_str(),
            "conversation created"
        );
        Ok(ConversationId(id))
    }

    async fn insert_message(
        &mut self,
        conv: ConversationId,
        author: &Author,
        text: &str,
        command_id: Option<&CommandId>,
    ) -> HubResult<Message> {
        let (kind, agent) = match author {
            Author::Customer => ("customer", None),
            Author::Agent { agent_id } => ("agent", Some(agent_id.0)),
            // The hub writes no author it does not know.
            Author::System | Author::Other => ("system", None),
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (conversation_id, author_kind, author_agent_id, text, sent_at, command_id) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(conv.0)
        .bind(kind)
        .bind(agent)
        .bind(text)
        .bind(self.now.0)
        .bind(command_id.map(|c| c.0.as_str()))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Message {
            id: MessageId(id),
            conversation_id: conv,
            author: author.clone(),
            text: text.to_owned(),
            sent_at: self.now,
            command_id: command_id.cloned(),
        })
    }

    async fn customer_message(&mut self, conv: ConversationId, text: &str) -> HubResult<()> {
        let message = self
            .insert_message(conv, &Author::Customer, text, None)
            .await?;
        let summary = load_summary(&mut self.tx, conv).await?;
        if let (ConversationStatus::Assigned, Some(owner)) = (summary.status, summary.owner) {
            for p in &summary.participants {
                self.append(
                    *p,
                    AgentEvent::MessageAdded {
                        message: message.clone(),
                    },
                )
                .await?;
            }
            self.append(owner, AgentEvent::MessageAdded { message })
                .await?;
            self.start_idle_timer(conv, owner).await?;
        } else if summary.status == ConversationStatus::Offered && self.team_owned(conv).await? {
            // Nobody owns it yet: every teammate hears of each message.
            self.team_notify(conv).await?;
        }
        Ok(())
    }

    async fn agent_message(
        &mut self,
        agent: AgentId,
        conv: ConversationId,
        text: String,
        command_id: &CommandId,
    ) -> HubResult<CommandReply> {
        if text.len() > MAX_MESSAGE_TEXT_BYTES {
            return Err(HubError::refused(
                ErrorCode::TooLarge,
                "message text too long",
            ));
        }
        if text.trim().is_empty() {
            return Err(HubError::invalid("empty message"));
        }
        let summary = self.member(agent, conv).await?;
        let message = self
            .insert_message(
                conv,
                &Author::Agent { agent_id: agent },
                &text,
                Some(command_id),
            )
            .await?;
        if summary.owner == Some(agent) {
            // The owner answered: no "Assign to me?" for this wait.
            self.delete_timer(TimerKind::OwnerIdle, conv.0).await?;
            self.withdraw_offers(conv, |o| matches!(o, OfferOrigin::AssignToMe { .. }))
                .await?;
        }
        // Everyone in the conversation sees every agent's message.
        let members = summary.owner.into_iter().chain(summary.participants);
        for m in members.filter(|m| *m != agent) {
            self.append(
                m,
                AgentEvent::MessageAdded {
                    message: message.clone(),
                },
            )
            .await?;
        }
        self.append(
            agent,
            AgentEvent::MessageAdded {
                message: message.clone(),
            },
        )
        .await?;
        Ok(CommandReply::MessageSent { message })
    }

    /// The conversation, if the agent owns it and it is open. Another
    /// agent's conversation is reported as not found, leaking nothing.
    async fn owned(
        &mut self,
        agent: AgentId,
        conv: ConversationId,
    ) -> HubResult<ConversationSummary> {
        let summary = load_summary(&mut self.tx, conv).await?;
        if summary.owner != Some(agent) {
            return Err(HubError::not_found("no such conversation"));
        }
        if summary.status != ConversationStatus::Assigned {
            return Err(HubError::conflict("conversation is closed"));
        }
        Ok(summary)
    }

    async fn mark_read(
        &mut self,
        agent: AgentId,
        conv: ConversationId,
        message: MessageId,
    ) -> HubResult<()> {
        self.member(agent, conv).await?;
        let belongs: Option<i64> =
            sqlx::query_scalar("SELECT id FROM messages WHERE id = ? AND conversation_id = ?")
                .bind(message.0)
                .bind(conv.0)
                .fetch_optional(&mut *self.tx)
                .await?;
        if belongs.is_none() {
            return Err(HubError::not_found("no such message in this conversation"));
        }
        let moved = sqlx::query(
            "INSERT INTO read_markers (agent_id, conversation_id, message_id) VALUES (?, ?, ?)
             ON CONFLICT(agent_id, conversation_id) DO UPDATE SET message_id = excluded.message_id
             WHERE excluded.message_id > read_markers.message_id",
        )
        .bind(agent.0)
        .bind(conv.0)
        .bind(message.0)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if moved > 0 {
            let unread: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND author_kind = 'customer' AND id > ?",
            )
            .bind(conv.0)
            .bind(message.0)
            .fetch_one(&mut *self.tx)
            .await?;
            self.append(
                agent,
                AgentEvent::ReadMarkerMoved {
                    conversation_id: conv,
                    message_id: message,
                    unread: unread as u32,
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn close(&mut self, agent: AgentId, conv: ConversationId) -> HubResult<()> {
        let summary = self.member(agent, conv).await?;
        if summary.owner != Some(agent) {
            // A consultant closing its tab leaves; the conversation goes on.
            return self.leave(conv, agent, RevokeReason::LeftConsult).await;
        }
        self.end_membership(conv, &summary).await?;
        sqlx::query("UPDATE conversations SET status = 'closed', closed_at = ? WHERE id = ?")
            .bind(self.now.0)
            .bind(conv.0)
            .execute(&mut *self.tx)
            .await?;
        self.delete_timer(TimerKind::DisconnectedGrace, conv.0)
            .await?;
        self.append(
            agent,
            AgentEvent::ConversationClosed {
                conversation_id: conv,
            },
        )
        .await?;
        Ok(())
    }

    async fn load_offer(&mut self, offer: OfferId) -> HubResult<Option<OfferRow>> {
        let row = sqlx::query(
            "SELECT agent_id, conversation_id, template, status, expires_at, origin FROM offers WHERE id = ?",
        )
        .bind(offer.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| {
            Ok(OfferRow {
                agent: AgentId(r.get(0)),
                conv: ConversationId(r.get(1)),
                template: unjson(r.get::<&str, _>(2))?,
                status: r.get(3),
                expires_at: Millis(r.get(4)),
                origin: origin_of(r.get(5))?,
            })
        })
        .transpose()
    }

    async fn resolve_offer(
        &mut self,
        offer: OfferId,
        status: &str,
        reason: Option<&str>,
    ) -> HubResult<()> {
        sqlx::query(
            "UPDATE offers SET status = ?, resolved_at = ?, reject_reason = ? WHERE id = ?",
        )
        .bind(status)
        .bind(self.now.0)
        .bind(reason)
        .bind(offer.0)
        .execute(&mut *self.tx)
        .await?;
        self.delete_timer(TimerKind::OfferTimeout, offer.0).await
    }

    /// Withdraws a pending offer (moot, or its agent gone) and tells its
    /// agent.
    async fn withdraw(
        &mut self,
        offer: OfferId,
        agent: AgentId,
        conv: ConversationId,
    ) -> HubResult<()> {
        self.resolve_offer(offer, "withdrawn", None).await?;
        self.append(
            agent,
            AgentEvent::OfferResolved {
                offer_id: offer,
                conversation_id: conv,
                outcome: OfferOutcome::Withdrawn,
            },
        )
        .await?;
        Ok(())
    }

    /// A pending offer owned by `agent`, or the right refusal.
    async fn pending_offer(&mut self, agent: AgentId, offer: OfferId) -> HubResult<OfferRow> {
        let Some(row) = self.load_offer(offer).await? else {
            return Err(HubError::not_found("no such offer"));
        };
        let (owner, status, expires) = (row.agent, row.status.clone(), row.expires_at);
        if owner != agent {
            // Another agent's offer: indistinguishable from a missing one.
            return Err(HubError::not_found("no such offer"));
        }
        if status != "pending" {
            return Err(HubError::conflict(format!(
                "offer is no longer pending ({status})"
            )));
        }
        if expires <= self.now {
            return Err(HubError::conflict("offer has expired"));
        }
        Ok(row)
    }

    async fn accept(&mut self, agent: AgentId, offer: OfferId) -> HubResult<CommandReply> {
        let row = self.pending_offer(agent, offer).await?;
        if row.origin.is_request() {
            return self.accept_request(agent, offer, row).await;
        }
        let (conv, template) = (row.conv, row.template);
        if !self.awaits_owner(conv).await? {
            // Taken meanwhile (a teammate accepted a team message, say):
            // assigning would give it a second owner.
            return Err(HubError::conflict("the conversation has changed hands"));
        }
        self.under_session_limit(agent, agent, conv).await?;
        self.resolve_offer(offer, "accepted", None).await?;
        self.append(
            agent,
            AgentEvent::OfferResolved {
                offer_id: offer,
                conversation_id: conv,
                outcome: OfferOutcome::Accepted,
            },
        )
        .await?;
        let conversation = self
            .assign(
                conv,
                agent,
                AssignMode::Accepted,
                true,
                template,
                row.origin,
            )
            .await?;
        Ok(CommandReply::OfferAccepted { conversation })
    }

    async fn reject(
        &mut self,
        agent: AgentId,
        offer: OfferId,
        reason: Option<String>,
    ) -> HubResult<CommandReply> {
        let row = self.pending_offer(agent, offer).await?;
        let (conv, template) = (row.conv, row.template.clone());
        if !template.allow_reject {
            return Err(HubError::refused(
                ErrorCode::RejectNotAllowed,
                "this offer cannot be rejected",
            ));
        }
        let reason = reason
            .map(|r| truncate(r.trim(), switchboard_protocol::MAX_NOTE_BYTES))
            .filter(|r| !r.is_empty());
        if (template.reject_reason_required || row.origin.reason_required()) && reason.is_none() {
            return Err(HubError::refused(
                ErrorCode::ReasonRequired,
                "a reason is required to reject",
            ));
        }
        if row.origin.is_request() {
            // Declining a request costs nothing and moves nothing.
            self.decline_request(offer, row, OfferOutcome::Rejected, reason)
                .await?;
            return Ok(CommandReply::Done);
        }
        self.decline_and_reroute(
            offer,
            agent,
            conv,
            OfferOutcome::Rejected,
            reason.as_deref(),
        )
        .await?;
        Ok(CommandReply::Done)
    }

    /// An offer the agent rejected or missed: record it, set the presence
    /// the reference prescribes with its banner, keep the agent away from
    /// this item, and route it to someone else.
    async fn decline_and_reroute(
        &mut self,
        offer: OfferId,
        agent: AgentId,
        conv: ConversationId,
        outcome: OfferOutcome,
        reject_reason: Option<&str>,
    ) -> HubResult<()> {
        let (status, presence, reason, notice, text) = if outcome == OfferOutcome::Rejected {
            (
                "rejected",
                Presence::DoNotDisturb,
                PresenceReason::RejectedOffer,
                NoticeKind::RejectedOffer,
                "You rejected a conversation. Your presence is set to Do not disturb.",
            )
        } else {
            (
                "timed_out",
                Presence::Inactive,
                PresenceReason::MissedOffer,
                NoticeKind::MissedOffer,
                "You missed a conversation request. Your presence is set to Inactive until you reset it.",
            )
        };
        self.resolve_offer(offer, status, reject_reason).await?;
        self.append(
            agent,
            AgentEvent::OfferResolved {
                offer_id: offer,
                conversation_id: conv,
                outcome,
            },
        )
        .await?;
        // Each is a feature the administrator turns on (seed 001: "the
        // alert is displayed only when the missed notifications feature is
        // enabled"; the same for agent reject). Off, the offer only moves on.
        let routing = &self.hub.config.routing;
        let feature_on = if outcome == OfferOutcome::Rejected {
            routing.agent_reject_notifications
        } else {
            routing.missed_notifications
        };
        if feature_on {
            self.set_presence(agent, presence, reason).await?;
            self.notice(agent, notice, text).await?;
        }
        self.exclude(conv, agent, Exclusion::Declined).await?;
        if !self.awaits_owner(conv).await? {
            // Someone else owns it now: requeueing would take it from them.
            return Ok(());
        }
        self.set_status(conv, ConversationStatus::Queued, None)
            .await?;
        self.route(conv).await
    }

    /// Whether the conversation is still waiting for someone to take a
    /// routed offer: offered, nobody owning it.
    async fn awaits_owner(&mut self, conv: ConversationId) -> HubResult<bool> {
        let summary = load_summary(&mut self.tx, conv).await?;
        Ok(summary.status == ConversationStatus::Offered && summary.owner.is_none())
    }

    /// Once an agent has signed out (no connection left, no token still
    /// valid), the offers still up for them are handed on at once: a
    /// routed one goes back to routing with no presence penalty, a request
    /// is answered as unanswered. Left, a routed offer would lapse into an
    /// assignment to someone who is not coming back, for the eight-minute
    /// grace: that is for an agent whose app closed or lost the network
    /// (seed 001), not one who signed out. Called from both ends of a
    /// sign-out, as the link may close before or after the logout.
    async fn hand_on_if_signed_out(&mut self, agent: AgentId) -> HubResult<()> {
        if self.hub.links.is_connected(agent) {
            return Ok(());
        }
        let valid: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tokens WHERE agent_id = ? AND revoked = 0 AND expires_at > ?",
        )
        .bind(agent.0)
        .bind(self.now.0)
        .fetch_one(&mut *self.tx)
        .await?;
        if valid > 0 {
            return Ok(());
        }
        self.hand_on_offers(agent, OfferScope::All).await
    }

    /// Hands on the offers still up for an agent who can no longer answer
    /// them (signed out, or moved to another team): a routed one goes back
    /// to routing, a request is answered as unanswered, a team message is
    /// withdrawn (and the team reminded).
    async fn hand_on_offers(&mut self, agent: AgentId, scope: OfferScope) -> HubResult<()> {
        let (of_team, escalations, keep) = match scope {
            OfferScope::All => (None, false, None),
            OfferScope::OfTeam(team) => (Some(team), false, None),
            OfferScope::Escalations { keep } => (None, true, keep),
        };
        let pending: Vec<i64> = sqlx::query_scalar(
            "SELECT o.id FROM offers o
               JOIN conversations c ON c.id = o.conversation_id
               JOIN queues q ON q.id = c.queue_id
             WHERE o.agent_id = ?1 AND o.status = 'pending' AND (?2 IS NULL OR q.team_id = ?2)
               AND (NOT ?3 OR json_extract(o.origin, '$.kind') = 'escalation')
               AND (?4 IS NULL OR q.team_id IS NOT ?4)
             ORDER BY o.id",
        )
        .bind(agent.0)
        .bind(of_team)
        .bind(escalations)
        .bind(keep)
        .fetch_all(&mut *self.tx)
        .await?;
        for offer in pending.into_iter().map(OfferId) {
            self.hand_on_offer(offer).await?;
        }
        Ok(())
    }

    /// A pending offer whose agent cannot answer it any more goes on: a
    /// request is declined (its requester hears), a team message withdrawn
    /// (the team is reminded), a routed offer routed again.
    async fn hand_on_offer(&mut self, offer: OfferId) -> HubResult<()> {
        let Some(row) = self.load_offer(offer).await? else {
            return Ok(());
        };
        if row.origin.answered_request().is_some() {
            // Its requester hears it went unanswered.
            return self
                .decline_request(offer, row, OfferOutcome::TimedOut, None)
                .await;
        }
        // A team message or "Assign to me?" is withdrawn, not declined,
        // so signing in again asks again (`team_catch_up` skips only
        // questions put and answered); a routed offer is routed again.
        let (agent, conv) = (row.agent, row.conv);
        self.withdraw(offer, agent, conv).await?;
        if matches!(row.origin, OfferOrigin::TeamMessage { .. }) {
            self.remind_team_if_unheard(conv, agent).await?;
        }
        if !row.origin.is_request() && self.awaits_owner(conv).await? {
            tracing::info!(offer = %offer, agent = %agent, "offer's agent cannot answer it; rerouting");
            // Not straight back to them (one still connected, moved or
            // demoted); asked again only if nobody else can take it.
            self.exclude(conv, agent, Exclusion::Declined).await?;
            self.set_status(conv, ConversationStatus::Queued, None)
                .await?;
            self.route(conv).await?;
        }
        Ok(())
    }

    /// A queue created or edited. Its chats offered to people outside its
    /// team (it moved to another team: a new, transferred, escalated or
    /// bot-escalated chat, a team message) go to its team, as declined
    /// ones do; an admin's stay (an escalation to an admin crosses teams
    /// by design), and so do requests between agents about a chat its
    /// owner still holds. A chat waiting on team messages in a
    /// queue its team no longer owns is routed as any other (nothing else
    /// would: team reminders and the Waiting list are for team-owned
    /// queues). The team's members online hear of the queue's waiting
    /// team chats they may now take (moved here, or a presence the queue
    /// now gives work to).
    async fn settle_queue(&mut self, queue: i64) -> HubResult<()> {
        let (team, team_owned): (i64, bool) =
            sqlx::query_as("SELECT team_id, team_owned FROM queues WHERE id = ?")
                .bind(queue)
                .fetch_one(&mut *self.tx)
                .await?;
        let stale: Vec<i64> = sqlx::query_scalar(
            "SELECT o.id FROM offers o
               JOIN conversations c ON c.id = o.conversation_id
               JOIN agents a ON a.id = o.agent_id
             WHERE c.queue_id = ?1 AND o.status = 'pending' AND a.team_id IS NOT ?2
               AND a.role <> 'admin'
               AND COALESCE(json_extract(o.origin, '$.kind'), 'new_conversation')
                 IN ('new_conversation', 'bot_escalation', 'transfer', 'escalation', 'team_message')
             ORDER BY o.id",
        )
        .bind(queue)
        .bind(team)
        .fetch_all(&mut *self.tx)
        .await?;
        for offer in stale.into_iter().map(OfferId) {
            self.hand_on_offer(offer).await?;
        }
        if !team_owned {
            let stranded: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT c.id FROM conversations c
                 WHERE c.queue_id = ? AND c.status = 'offered' AND c.owner_id IS NULL
                   AND NOT {}
                 ORDER BY c.id",
                handoff::OFFERED_TO_ONE_PERSON
            ))
            .bind(queue)
            .fetch_all(&mut *self.tx)
            .await?;
            for conv in stranded.into_iter().map(ConversationId) {
                tracing::info!(conversation = %conv, "queue no longer team-owned; routing its waiting chat");
                self.withdraw_offers(conv, |o| matches!(o, OfferOrigin::TeamMessage { .. }))
                    .await?;
                self.set_status(conv, ConversationStatus::Queued, None)
                    .await?;
                self.route(conv).await?;
            }
        }
        let members: Vec<i64> = sqlx::query_scalar("SELECT id FROM agents WHERE team_id = ?")
            .bind(team)
            .fetch_all(&mut *self.tx)
            .await?;
        for member in members.into_iter().map(AgentId) {
            if self.hub.links.is_connected(member) {
                self.team_catch_up(member).await?;
            }
        }
        Ok(())
    }

    async fn offer_timed_out(&mut self, offer: OfferId) -> HubResult<()> {
        let Some(row) = self.load_offer(offer).await? else {
            return Ok(());
        };
        if row.status != "pending" {
            return Ok(());
        }
        if row.origin.is_request() {
            return self
                .decline_request(offer, row, OfferOutcome::TimedOut, None)
                .await;
        }
        let (agent, conv, template, origin) = (row.agent, row.conv, row.template, row.origin);
        if !self.awaits_owner(conv).await? {
            // Taken by someone else meanwhile: the offer is moot.
            return self.withdraw(offer, agent, conv).await;
        }
        if self.hub.links.is_connected(agent) {
            // Seen and ignored: missed. Inactive, no new work until reset.
            tracing::info!(offer = %offer, agent = %agent, "offer missed; rerouting");
            self.decline_and_reroute(offer, agent, conv, OfferOutcome::TimedOut, None)
                .await
        } else {
            // The client was gone: the notification may never have been
            // seen. Assign anyway; reroute only if the agent stays away
            // past the grace period (the reference's eight minutes).
            self.resolve_offer(offer, "assigned_on_timeout", None)
                .await?;
            self.append(
                agent,
                AgentEvent::OfferResolved {
                    offer_id: offer,
                    conversation_id: conv,
                    outcome: OfferOutcome::AssignedOnTimeout,
                },
            )
            .await?;
            self.assign(conv, agent, AssignMode::OnTimeout, false, template, origin)
                .await?;
            let due = Millis(self.now.0 + self.hub.grace_ms());
            self.add_timer(TimerKind::DisconnectedGrace, conv.0, agent, due, true)
                .await?;
            tracing::info!(offer = %offer, agent = %agent, "offer timed out while disconnected; assigned with grace");
            Ok(())
        }
    }

    async fn grace_expired(&mut self, conv: ConversationId, agent: AgentId) -> HubResult<()> {
        if self.hub.links.is_connected(agent) {
            return Ok(());
        }
        let summary = load_summary(&mut self.tx, conv).await?;
        if summary.owner != Some(agent) || summary.status != ConversationStatus::Assigned {
            return Ok(());
        }
        self.append(
            agent,
            AgentEvent::ConversationRevoked {
                conversation_id: conv,
                reason: RevokeReason::DisconnectedGrace,
            },
        )
        .await?;
        // Consultants leave with the owner; pending requests are moot.
        self.end_membership(conv, &summary).await?;
        self.exclude(conv, agent, Exclusion::Declined).await?;
        self.set_status(conv, ConversationStatus::Queued, None)
            .await?;
        tracing::info!(conversation = %conv, agent = %agent, "owner away past grace; rerouting");
        self.route(conv).await
    }

    /// Routes a queued conversation: deliver it to the best candidate, or
    /// leave it waiting.
    async fn route(&mut self, conv: ConversationId) -> HubResult<()> {
        let row = sqlx::query(
            "SELECT c.queue_id, c.scenario, c.status, q.team_id, q.allowed_presences, q.templates, c.is_call
             FROM conversations c JOIN queues q ON q.id = c.queue_id WHERE c.id = ?",
        )
        .bind(conv.0)
        .fetch_one(&mut *self.tx)
        .await?;
        let status: ConversationStatus = unwire(row.get::<&str, _>(2))?;
        if status != ConversationStatus::Queued {
            return Ok(());
        }
        let scenario: Scenario = unwire(row.get::<&str, _>(1))?;
        let team_id: i64 = row.get(3);
        let allowed: Vec<Presence> = unjson(row.get::<&str, _>(4))?;
        let overrides: BTreeMap<Scenario, TemplateOverride> = unjson(row.get::<&str, _>(5))?;
        let is_call: bool = row.get(6);
        let template = effective_template(&overrides, scenario);
        if self.team_owned(conv).await? {
            self.set_status(conv, ConversationStatus::Offered, None)
                .await?;
            return self.team_notify(conv).await;
        }
        // A call from a customer whose chat is open rings first for the
        // chat's owner, who has the conversation in front of them (seed
        // 003: the call is taken in the chat's Chat UI); routed by idle
        // time, it went to a teammate with none of it. One who cannot take
        // it (presence, capacity, the session limit) is passed over.
        let max_sessions = self.hub.config.routing.max_sessions;
        let owner = if is_call {
            self.chat_owner_for_call(team_id, conv).await?
        } else {
            None
        };
        if let Some(owner) = owner {
            if routing::eligible(&owner, &allowed) && owner.open_sessions < max_sessions {
                return self.deliver(conv, owner.agent_id, scenario, template).await;
            }
        }
        let mut passed_over: HashSet<AgentId> = HashSet::new();
        loop {
            let best = self
                .first_eligible(team_id, conv, &passed_over, &allowed)
                .await?;
            match routing::choose(best.as_slice(), &allowed, max_sessions) {
                RouteDecision::Wait => return Ok(()),
                RouteDecision::MaxSessions(agent) => {
                    passed_over.insert(agent);
                    self.set_presence(agent, Presence::DoNotDisturb, PresenceReason::MaxSessions)
                        .await?;
                    self.notice(
                        agent,
                        NoticeKind::MaxSessions,
                        "You have reached the maximum number of open sessions. Your presence is set to Do not disturb.",
                    )
                    .await?;
                }
                RouteDecision::Deliver(agent) => {
                    return self.deliver(conv, agent, scenario, template).await;
                }
            }
        }
    }

    /// The team member [`routing::choose`] would pick among all of them
    /// (minus `passed_over` and the conversation's exclusions), if any.
    ///
    /// Members are read in [`routing::preference`] order (index
    /// `agents_team_routing`) and the load counts are computed row by row
    /// as the rows are read, so reading stops at the first eligible member:
    /// one or a few rows per route instead of the whole team with two
    /// counting sub-queries each (at 5,000 agents that full read held the
    /// write transaction ~25 ms per offer and capped the hub at ~40 offers/s).
    ///
    /// Only routed offers (see [`FIRST_ELIGIBLE_SQL`]) use capacity.
    async fn first_eligible(
        &mut self,
        team_id: i64,
        conv: ConversationId,
        passed_over: &HashSet<AgentId>,
        allowed: &[Presence],
    ) -> HubResult<Option<Candidate>> {
        use futures_util::TryStreamExt;
        let links = &self.hub.links;
        let mut rows = sqlx::query(FIRST_ELIGIBLE_SQL)
            .bind(team_id)
            .bind(conv.0)
            .fetch(&mut *self.tx);
        while let Some(r) = rows.try_next().await? {
            if passed_over.contains(&AgentId(r.get(0))) {
                continue;
            }
            let candidate = candidate(&r, links)?;
            if routing::eligible(&candidate, allowed) {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    /// For a call, the owner of the open chat on its thread, as a routing
    /// candidate (see [`CHAT_OWNER_SQL`]).
    async fn chat_owner_for_call(
        &mut self,
        team_id: i64,
        conv: ConversationId,
    ) -> HubResult<Option<Candidate>> {
        let row = sqlx::query(CHAT_OWNER_SQL)
            .bind(team_id)
            .bind(conv.0)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| candidate(&r, &self.hub.links)).transpose()
    }

    /// Offers or assigns per the template.
    async fn deliver(
        &mut self,
        conv: ConversationId,
        agent: AgentId,
        scenario: Scenario,
        template: NotificationTemplate,
    ) -> HubResult<()> {
        sqlx::query("UPDATE agents SET idle_since = ? WHERE id = ?")
            .bind(self.now.0)
            .bind(agent.0)
            .execute(&mut *self.tx)
            .await?;
        let assign_mode = if scenario == Scenario::CaseAssignment {
            Some((AssignMode::CaseAssignment, false))
        } else if template.kind == NotificationKind::Toast {
            Some((AssignMode::Toast, false))
        } else if template.auto_accept {
            Some((AssignMode::AutoAccept, true))
        } else if template.auto_assign {
            Some((AssignMode::AutoAssign, false))
        } else {
            None
        };
        let origin: Option<String> =
            sqlx::query_scalar("SELECT route_origin FROM conversations WHERE id = ?")
                .bind(conv.0)
                .fetch_one(&mut *self.tx)
                .await?;
        let origin = origin_of(origin)?;
        if let Some((mode, open)) = assign_mode {
            self.assign(conv, agent, mode, open, template, origin)
                .await?;
            return Ok(());
        }
        self.set_status(conv, ConversationStatus::Offered, None)
            .await?;
        self.offer_to(conv, agent, template, origin).await?;
        Ok(())
    }

    /// Creates a pending offer with its deadline timer and tells the agent.
    async fn offer_to(
        &mut self,
        conv: ConversationId,
        agent: AgentId,
        template: NotificationTemplate,
        origin: OfferOrigin,
    ) -> HubResult<OfferId> {
        let expires = Millis(self.now.0 + template.timeout_secs as i64 * 1000);
        let offer_id: i64 = sqlx::query_scalar(
            "INSERT INTO offers (conversation_id, agent_id, template, status, created_at, expires_at, origin) VALUES (?, ?, ?, 'pending', ?, ?, ?) RETURNING id",
        )
        .bind(conv.0)
        .bind(agent.0)
        .bind(json(&template))
        .bind(self.now.0)
        .bind(expires.0)
        .bind(json(&origin))
        .fetch_one(&mut *self.tx)
        .await?;
        let offer = Offer {
            id: OfferId(offer_id),
            conversation: load_summary(&mut self.tx, conv).await?,
            template,
            created_at: self.now,
            expires_at: expires,
            origin,
        };
        self.add_timer(TimerKind::OfferTimeout, offer_id, agent, expires, true)
            .await?;
        self.append(agent, AgentEvent::OfferCreated { offer })
            .await?;
        tracing::info!(conversation = %conv, agent = %agent, offer = offer_id, "offered");
        Ok(OfferId(offer_id))
    }

    async fn assign(
        &mut self,
        conv: ConversationId,
        agent: AgentId,
        mode: AssignMode,
        open_session: bool,
        template: NotificationTemplate,
        origin: OfferOrigin,
    ) -> HubResult<ConversationSummary> {
        // Someone has it: who declined it or sent it away before does not
        // matter to its next routing (a transfer on by this owner starts
        // afresh; kept, two transfers' senders would leave nobody).
        sqlx::query("DELETE FROM offer_exclusions WHERE conversation_id = ?")
            .bind(conv.0)
            .execute(&mut *self.tx)
            .await?;
        // One owner at a time: every other offer that would hand the
        // conversation over (transfer, escalation, team message, assign
        // requests) is withdrawn, so its alert clears and it cannot be
        // accepted later. Consults and discussions join the owner instead,
        // except the new owner's own: as owner and participant it would get
        // every event twice. For the same reason it stops being a
        // participant.
        self.withdraw_offers_where(conv, |to, o| {
            to == agent
                || !matches!(
                    o,
                    OfferOrigin::Consult { .. } | OfferOrigin::DiscussRequest { .. }
                )
        })
        .await?;
        self.remove_participant(conv, agent).await?;
        self.set_status(conv, ConversationStatus::Assigned, Some(agent))
            .await?;
        sqlx::query("UPDATE conversations SET route_origin = NULL WHERE id = ?")
            .bind(conv.0)
            .execute(&mut *self.tx)
            .await?;
        let conversation = load_summary(&mut self.tx, conv).await?;
        let (messages, has_earlier) = recent_messages(&mut self.tx, conv).await?;
        // A customer left waiting for an answer starts the new owner's
        // answer clock now: a new chat's first message came while it was
        // queued, and a transferred chat's unanswered message is this
        // owner's to answer (an earlier owner's clock no longer applies).
        let customer_waiting = messages
            .iter()
            .rev()
            .find(|m| m.author != Author::System)
            .is_some_and(|m| m.author == Author::Customer);
        self.owner_clock_for_new_owner(conv, agent, customer_waiting)
            .await?;
        let (last_read, unread) = read_state(&mut self.tx, agent, conv).await?;
        self.append(
            agent,
            AgentEvent::ConversationAssigned {
                conversation: conversation.clone(),
                mode,
                open_session,
                template,
                messages,
                origin,
                last_read,
                unread: Some(unread),
                has_earlier: Some(has_earlier),
            },
        )
        .await?;
        tracing::info!(conversation = %conv, agent = %agent, ?mode, "assigned");
        Ok(conversation)
    }

    /// Offers waiting conversations again, oldest first, at most
    /// [`ROUTE_WAITING_PER_TEAM`] of each team per pass. The cap is per team
    /// because one team's backlog (nobody there free) must not hide another
    /// team's waiting customers from the agent who just became free for them.
    async fn route_waiting(&mut self) -> HubResult<()> {
        let waiting: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM (
               SELECT c.id, c.created_at, ROW_NUMBER() OVER (
                 PARTITION BY q.team_id ORDER BY c.created_at, c.id) AS n
               FROM conversations c JOIN queues q ON q.id = c.queue_id
               WHERE c.status = 'queued')
             WHERE n <= ? ORDER BY created_at, id",
        )
        .bind(ROUTE_WAITING_PER_TEAM)
        .fetch_all(&mut *self.tx)
        .await?;
        for id in waiting.into_iter().map(ConversationId) {
            self.route(id).await?;
            if load_summary(&mut self.tx, id).await?.status != ConversationStatus::Queued {
                continue;
            }
            // Still waiting with nobody eligible. If that is because every
            // agent who could take it once declined or missed it, the
            // exclusions go: asking one of them again (now that it is back)
            // beats leaving the customer to nobody for good.
            let cleared =
                sqlx::query("DELETE FROM offer_exclusions WHERE conversation_id = ? AND hard = 0")
                    .bind(id.0)
                    .execute(&mut *self.tx)
                    .await?
                    .rows_affected();
            if cleared > 0 {
                tracing::info!(conversation = %id, "nobody else eligible; asking those who declined again");
                self.route(id).await?;
            }
        }
        Ok(())
    }
}

/// Why an agent is kept out of a conversation's routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exclusion {
    /// It declined or missed the offer, or lost the conversation by staying
    /// away: asked again if nobody else can take it.
    Declined,
    /// It transferred the conversation away: never asked again.
    Sender,
}

/// Password checks (argon2id, 19 MiB each) run at once, at most.
const MAX_PASSWORD_CHECKS: usize = 4;

/// Waits before each try of [`Hub::retry_detached`] (ms).
const RETRY_DETACHED_MS: [u64; 6] = [0, 250, 1_000, 5_000, 30_000, 120_000];

/// How many of one team's waiting conversations a routing pass looks at.
/// Beyond it, the oldest are served first and the rest wait for the next
/// pass (each accept, close or presence change starts one).
const ROUTE_WAITING_PER_TEAM: i64 = 500;

/// A routing candidate's columns, read by [`candidate`]: id, presence,
/// capacity, idle since, conversations owned, pending routed offers, and
/// conversations taken part in (consult, discussion) that it does not own.
macro_rules! candidate_columns {
    () => {
        "SELECT a.id, a.presence, a.capacity, a.idle_since,
   (SELECT COUNT(*) FROM conversations c WHERE c.owner_id = a.id AND c.status = 'assigned'),
   (SELECT COUNT(*) FROM offers o WHERE o.agent_id = a.id AND o.status = 'pending'
      AND (o.origin IS NULL OR json_extract(o.origin, '$.kind') IN
        ('new_conversation', 'transfer', 'escalation', 'bot_escalation'))),
   (SELECT COUNT(*) FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
      WHERE p.agent_id = a.id AND c.status = 'assigned' AND c.owner_id IS NOT a.id)
 FROM agents a "
    };
}

/// Team members in [`routing::preference`] order with their load. Only
/// routed offers (new conversation, transfer, escalation, bot escalation;
/// NULL is a new conversation stored before origins existed) count against
/// capacity, not requests (`OfferOrigin::is_request`): those cost nothing,
/// and team messages go to every teammate again on each customer message,
/// so counting them let a few unclaimed team chats block the whole team.
const FIRST_ELIGIBLE_SQL: &str = concat!(
    candidate_columns!(),
    "WHERE a.team_id = ?
   AND a.id NOT IN (SELECT agent_id FROM offer_exclusions WHERE conversation_id = ?)
 ORDER BY a.idle_since, a.id"
);

/// For a call (`?2`), the owner of the open chat on its thread, if one of
/// the team (`?1`) and not excluded from the call.
const CHAT_OWNER_SQL: &str = concat!(
    candidate_columns!(),
    "WHERE a.team_id = ?1
   AND a.id NOT IN (SELECT agent_id FROM offer_exclusions WHERE conversation_id = ?2)
   AND a.id = (SELECT chat.owner_id FROM conversations call
       JOIN conversations chat ON chat.channel = call.channel AND chat.thread = call.thread
     WHERE call.id = ?2 AND call.is_call AND NOT chat.is_call AND chat.status = 'assigned'
       -- Spelled out for the planner: it matches the open-thread index
       -- (status <> 'closed'), where 'assigned' alone scanned every
       -- assigned conversation.
       AND chat.status <> 'closed'
     ORDER BY chat.id DESC LIMIT 1)"
);

/// A routing candidate from a row of [`candidate_columns`].
fn candidate(r: &sqlx::sqlite::SqliteRow, links: &LinkRegistry) -> HubResult<Candidate> {
    let agent_id = AgentId(r.get(0));
    Ok(Candidate {
        agent_id,
        presence: unwire(r.get::<&str, _>(1))?,
        connected: links.is_connected(agent_id),
        capacity: r.get::<i64, _>(2) as u32,
        idle_since: Millis(r.get(3)),
        owned: r.get::<i64, _>(4) as u32,
        pending_offers: r.get::<i64, _>(5) as u32,
        // Owned and taken part in (read from the participants' index, not
        // by a scan of every assigned conversation per candidate).
        open_sessions: (r.get::<i64, _>(4) + r.get::<i64, _>(6)) as u32,
    })
}

/// A stored offer.
#[derive(Debug, Clone)]
struct OfferRow {
    agent: AgentId,
    conv: ConversationId,
    template: NotificationTemplate,
    status: String,
    expires_at: Millis,
    origin: OfferOrigin,
}

/// An offer origin column (NULL in rows written before origins existed).
fn origin_of(text: Option<String>) -> HubResult<OfferOrigin> {
    match text {
        Some(t) => unjson(&t),
        None => Ok(OfferOrigin::NewConversation),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

async fn load_profile(conn: &mut SqliteConnection, agent: AgentId) -> HubResult<AgentProfile> {
    let row = sqlx::query(
        "SELECT a.username, a.display_name, a.role, t.name FROM agents a LEFT JOIN teams t ON t.id = a.team_id WHERE a.id = ?",
    )
    .bind(agent.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else {
        return Err(HubError::not_found("no such agent"));
    };
    Ok(AgentProfile {
        id: agent,
        username: r.get(0),
        display_name: r.get(1),
        role: Role::parse(r.get::<&str, _>(2))
            .ok_or_else(|| HubError::Corrupt("unknown role".into()))?,
        team: r.get(3),
    })
}

async fn load_summary(
    conn: &mut SqliteConnection,
    conv: ConversationId,
) -> HubResult<ConversationSummary> {
    let row = sqlx::query(
        "SELECT c.channel, q.name, c.scenario, c.customer_name, c.customer_phone, c.customer_email,
                c.comment, c.created_at, c.status, c.owner_id, c.identification, c.contact_id, c.case_id
         FROM conversations c JOIN queues q ON q.id = c.queue_id WHERE c.id = ?",
    )
    .bind(conv.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else {
        return Err(HubError::not_found("no such conversation"));
    };
    let participants: Vec<i64> = sqlx::query_scalar(
        "SELECT agent_id FROM conversation_participants WHERE conversation_id = ? ORDER BY agent_id",
    )
    .bind(conv.0)
    .fetch_all(&mut *conn)
    .await?;
    let identification = match r.get::<Option<&str>, _>(10) {
        Some(text) => Some(unjson(text)?),
        None => None,
    };
    let link = r
        .get::<Option<i64>, _>(11)
        .map(|c| switchboard_protocol::RecordLink {
            contact_id: switchboard_protocol::ContactId(c),
            case_id: r
                .get::<Option<i64>, _>(12)
                .map(switchboard_protocol::CaseId),
        });
    Ok(ConversationSummary {
        identification,
        link,
        participants: participants.into_iter().map(AgentId).collect(),
        id: conv,
        channel: unwire(r.get::<&str, _>(0))?,
        queue: r.get(1),
        scenario: unwire(r.get::<&str, _>(2))?,
        customer: Customer {
            name: r.get(3),
            phone: r.get(4),
            email: r.get(5),
        },
        comment: r.get(6),
        created_at: Millis(r.get(7)),
        status: unwire(r.get::<&str, _>(8))?,
        owner: r.get::<Option<i64>, _>(9).map(AgentId),
    })
}

fn message_from_row(r: &sqlx::sqlite::SqliteRow) -> Message {
    let author = match (r.get::<&str, _>(2), r.get::<Option<i64>, _>(3)) {
        ("agent", Some(a)) => Author::Agent {
            agent_id: AgentId(a),
        },
        ("customer", _) => Author::Customer,
        _ => Author::System,
    };
    Message {
        id: MessageId(r.get(0)),
        conversation_id: ConversationId(r.get(1)),
        author,
        text: r.get(4),
        sent_at: Millis(r.get(5)),
        command_id: r.get::<Option<String>, _>(6).map(CommandId),
    }
}

/// Whether `viewer` may read or link a conversation: its owner, a
/// participant, an admin, or a supervisor of its queue's team (as for
/// presence and assignment); to anyone else it does not exist.
pub(crate) async fn may_see(
    conn: &mut SqliteConnection,
    viewer: &AgentProfile,
    summary: &ConversationSummary,
) -> HubResult<bool> {
    if summary.owner == Some(viewer.id)
        || summary.participants.contains(&viewer.id)
        || viewer.role == Role::Admin
    {
        return Ok(true);
    }
    if viewer.role != Role::Supervisor {
        return Ok(false);
    }
    let same_team: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM conversations c JOIN queues q ON q.id = c.queue_id JOIN agents a ON a.id = ?
         WHERE c.id = ? AND a.team_id = q.team_id",
    )
    .bind(viewer.id.0)
    .bind(summary.id.0)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(same_team.is_some())
}

/// An agent's read marker in a conversation and the customer messages
/// after it (all of them without a marker): what a snapshot and an
/// assignment tell the client, so both count alike.
async fn read_state(
    conn: &mut SqliteConnection,
    agent: AgentId,
    conv: ConversationId,
) -> HubResult<(Option<MessageId>, u32)> {
    let last_read: Option<i64> = sqlx::query_scalar(
        "SELECT message_id FROM read_markers WHERE agent_id = ? AND conversation_id = ?",
    )
    .bind(agent.0)
    .bind(conv.0)
    .fetch_optional(&mut *conn)
    .await?;
    let unread: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND author_kind = 'customer' AND id > ?",
    )
    .bind(conv.0)
    .bind(last_read.unwrap_or(0))
    .fetch_one(&mut *conn)
    .await?;
    Ok((last_read.map(MessageId), unread as u32))
}

/// Why a person may not set `presence`, if they may not: Inactive is the
/// system's, and a presence this hub does not know (a newer client's,
/// decoded as `Other`) is no presence at all.
fn unsettable(presence: Presence) -> Option<&'static str> {
    match presence {
        Presence::Inactive => Some("inactive is set by the system only"),
        Presence::Other => Some("this hub does not know that presence"),
        _ => None,
    }
}

/// What Reset presence sets for an agent whose presence is `now`, with
/// `before` the presence a person had set before the hub's own change
/// (`presence_before_system`): that one, or Available after Inactive
/// (which only the system sets); `None` when the presence is a person's
/// choice, which a reset leaves alone.
pub(crate) fn reset_target(now: Presence, before: Option<&str>) -> Option<Presence> {
    match before.and_then(Presence::parse) {
        Some(p) if p != Presence::Inactive => Some(p),
        _ if now == Presence::Inactive || before.is_some() => Some(Presence::Available),
        _ => None,
    }
}

/// A conversation's newest [`RECENT_MESSAGES`], oldest first, and whether
/// older ones exist (one more is read to tell).
pub(crate) async fn recent_messages(
    conn: &mut SqliteConnection,
    conv: ConversationId,
) -> HubResult<(Vec<Message>, bool)> {
    let rows = sqlx::query(
        "SELECT id, conversation_id, author_kind, author_agent_id, text, sent_at, command_id
         FROM (SELECT * FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
    )
    .bind(conv.0)
    .bind(RECENT_MESSAGES + 1)
    .fetch_all(&mut *conn)
    .await?;
    let has_earlier = rows.len() as i64 > RECENT_MESSAGES;
    let skip = usize::from(has_earlier);
    Ok((
        rows[skip..].iter().map(message_from_row).collect(),
        has_earlier,
    ))
}

async fn build_snapshot(conn: &mut SqliteConnection, agent: AgentId) -> HubResult<AgentSnapshot> {
    let profile = load_profile(conn, agent).await?;
    let presence: String = sqlx::query_scalar("SELECT presence FROM agents WHERE id = ?")
        .bind(agent.0)
        .fetch_one(&mut *conn)
        .await?;
    let conv_ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM conversations WHERE status = 'assigned' AND (owner_id = ?
           OR id IN (SELECT conversation_id FROM conversation_participants WHERE agent_id = ?))
         ORDER BY id",
    )
    .bind(agent.0)
    .bind(agent.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut conversations = Vec::with_capacity(conv_ids.len());
    for id in conv_ids {
        let conv = ConversationId(id);
        let (last_read, unread) = read_state(conn, agent, conv).await?;
        let (messages, has_earlier) = recent_messages(conn, conv).await?;
        conversations.push(ConversationState {
            conversation: load_summary(conn, conv).await?,
            unread,
            last_read,
            messages,
            has_earlier: Some(has_earlier),
        });
    }
    let offer_rows = sqlx::query(
        "SELECT id, conversation_id, template, created_at, expires_at, origin FROM offers WHERE agent_id = ? AND status = 'pending' ORDER BY id",
    )
    .bind(agent.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut offers = Vec::with_capacity(offer_rows.len());
    for r in offer_rows {
        offers.push(Offer {
            id: OfferId(r.get(0)),
            conversation: load_summary(conn, ConversationId(r.get(1))).await?,
            template: unjson(r.get::<&str, _>(2))?,
            created_at: Millis(r.get(3)),
            expires_at: Millis(r.get(4)),
            origin: origin_of(r.get(5))?,
        });
    }
    let mut snapshot = AgentSnapshot {
        agent: profile,
        presence: unwire(&presence)?,
        conversations,
        offers,
    };
    // A snapshot the client cannot take would leave the agent unable to
    // resync at all.
    crate::fit::fit_snapshot(&mut snapshot);
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The capacity count names exactly the routed origins: a new origin
    /// kind must be classed here as well as in `is_request`.
    #[test]
    fn only_routed_offer_kinds_use_capacity() {
        let who = switchboard_protocol::AgentRef {
            id: AgentId(1),
            name: "A".into(),
        };
        let origins = [
            OfferOrigin::NewConversation,
            OfferOrigin::Transfer {
                from: who.clone(),
                note: None,
            },
            OfferOrigin::Escalation {
                from: who.clone(),
                note: None,
            },
            OfferOrigin::BotEscalation {
                transcript: Vec::new(),
            },
            OfferOrigin::Consult { from: who.clone() },
            OfferOrigin::AssignRequest {
                from: who.clone(),
                reason: None,
            },
            OfferOrigin::DiscussRequest { from: who.clone() },
            OfferOrigin::AssignToMe {
                owner: who,
                idle_secs: 1,
            },
            OfferOrigin::TeamMessage {
                preview: String::new(),
                messages: 1,
            },
        ];
        for origin in origins {
            let value = serde_json::to_value(&origin).expect("origin serialises");
            let kind = value["kind"].as_str().expect("tagged origin");
            assert_eq!(
                FIRST_ELIGIBLE_SQL.contains(&format!("'{kind}'")),
                !origin.is_request(),
                "{kind}"
            );
        }
    }
}
