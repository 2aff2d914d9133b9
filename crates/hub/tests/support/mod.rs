//! Test support: a real hub on loopback with a temp-dir SQLite file, and a
//! protocol-speaking WebSocket agent client.

#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_hub::clock::{Clock, SystemClock};
use switchboard_hub::{HubConfig, RunningHub};
use switchboard_protocol::rest::{IngressMessage, IngressResponse, LoginResponse};
use switchboard_protocol::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use switchboard_hub::testkit::{base_config, INGRESS, PASSWORD};
/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Stopped at `ms` since the epoch.
    pub fn at(ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(ms)))
    }

    /// Moves the time on.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        Millis(self.0.load(Ordering::SeqCst))
    }
}

/// A hub for one test, with its own database file.
pub struct TestHub {
    pub running: Option<RunningHub>,
    pub config: HubConfig,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// Once per test process: log to the test output, and the rustls crypto
/// provider that HTTPS clients need (the hub installs the same one).
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .try_init();
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl TestHub {
    pub async fn start() -> TestHub {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(customize: impl FnOnce(&mut HubConfig)) -> TestHub {
        Self::start_with_clock(customize, Arc::new(SystemClock)).await
    }

    /// A hub that reads the time from `clock` (a [`ManualClock`] for
    /// rules about time).
    pub async fn start_with_clock(
        customize: impl FnOnce(&mut HubConfig),
        clock: Arc<dyn Clock>,
    ) -> TestHub {
        init();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = base_config(dir.path());
        customize(&mut config);
        let running = switchboard_hub::start_with_clock(config.clone(), clock)
            .await
            .expect("hub starts");
        TestHub {
            running: Some(running),
            config,
            dir,
            http: reqwest::Client::new(),
        }
    }

    pub fn running(&self) -> &RunningHub {
        self.running.as_ref().expect("hub running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.running().http_url(), path)
    }

    pub fn ws_url(&self) -> String {
        self.running().ws_url()
    }

    /// `PUT /api/v1/admin/queues` with `queue` as its body, as `token`.
    pub async fn put_queue(&self, token: &str, queue: &serde_json::Value) -> reqwest::Response {
        self.http
            .put(self.url("/api/v1/admin/queues"))
            .bearer_auth(token)
            .json(queue)
            .send()
            .await
            .unwrap()
    }

    /// `POST /api/v1/admin/agents` with `agent` as its body, as `token`.
    pub async fn post_agent(&self, token: &str, agent: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/admin/agents"))
            .bearer_auth(token)
            .json(agent)
            .send()
            .await
            .unwrap()
    }

    /// Stops the hub (connections close) and starts it again on the same
    /// database and port.
    pub async fn restart(&mut self) {
        let old = self.running.take().expect("hub running");
        let addr = old.addr;
        old.shutdown().await;
        self.config.server.listen = addr;
        let mut tries = 0;
        let running = loop {
            match switchboard_hub::start(self.config.clone()).await {
                Ok(r) => break r,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("restart failed: {e}"),
            }
        };
        self.running = Some(running);
    }

    pub async fn login(&self, user: &str) -> LoginResponse {
        let resp = self
            .http
            .post(self.url("/api/v1/login"))
            .json(&serde_json::json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .expect("login request");
        assert_eq!(resp.status(), 200, "login {user}");
        resp.json().await.expect("login body")
    }

    /// A customer of the Other team's queue ([`other_team_sms_queue`]).
    pub async fn ingress_other_team(&self, thread: &str, name: &str) -> IngressResponse {
        self.ingress_msg(IngressMessage {
            channel: Channel::Sms,
            thread: thread.into(),
            customer_name: name.into(),
            phone: None,
            email: None,
            comment: None,
            queue: Some("OQ".into()),
            scenario: None,
            text: "hi".into(),
            transcript: Vec::new(),
            case_id: None,
            message_id: None,
        })
        .await
    }

    /// `GET path` as `user` (signed in for it).
    pub async fn get_as(&self, user: &str, path: &str) -> reqwest::Response {
        let token = self.login(user).await.token;
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Signs out over REST (`POST /api/v1/logout`): the token is revoked.
    pub async fn logout(&self, token: &str) {
        let resp = self
            .http
            .post(self.url("/api/v1/logout"))
            .bearer_auth(token)
            .send()
            .await
            .expect("logout request");
        assert_eq!(resp.status(), 204, "logout");
    }

    pub async fn agent_id(&self, user: &str) -> AgentId {
        self.running().hub.agent_id(user).await.expect("agent id")
    }

    pub async fn ingress(
        &self,
        channel: Channel,
        thread: &str,
        name: &str,
        text: &str,
    ) -> IngressResponse {
        self.ingress_msg(IngressMessage {
            channel,
            thread: thread.into(),
            customer_name: name.into(),
            phone: Some("+15550100".into()),
            email: None,
            comment: Some(format!("comment from {name}")),
            queue: None,
            scenario: None,
            text: text.into(),
            transcript: Vec::new(),
            case_id: None,
            message_id: None,
        })
        .await
    }

    pub async fn ingress_msg(&self, m: IngressMessage) -> IngressResponse {
        let resp = self
            .http
            .post(self.url("/api/v1/ingress/messages"))
            .bearer_auth(INGRESS)
            .json(&m)
            .send()
            .await
            .expect("ingress request");
        assert_eq!(resp.status(), 200, "ingress");
        resp.json().await.expect("ingress body")
    }

    /// Logs in and connects with no cursor (a snapshot follows).
    pub async fn connect(&self, user: &str) -> Agent {
        let login = self.login(user).await;
        let (agent, _, _) = Agent::connect(&self.ws_url(), &login.token, None).await;
        agent
    }

    pub async fn conversation(&self, id: ConversationId) -> ConversationSummary {
        self.running()
            .hub
            .conversation(id)
            .await
            .expect("conversation")
    }

    pub async fn presence(&self, user: &str) -> Presence {
        let id = self.agent_id(user).await;
        self.running().hub.presence(id).await.expect("presence")
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connected agent speaking protocol v1 over a real WebSocket.
pub struct Agent {
    pub ws: Ws,
    pub token: String,
    /// Seq of the last event received (events must arrive gapless).
    pub last_seq: Seq,
    /// Every event received, in order.
    pub events: Vec<EventFrame>,
    /// Index into `events` of the first one no `wait_event` has passed.
    unseen: usize,
    /// Length of the largest text frame received, in bytes.
    pub largest_frame: usize,
    next_command: u64,
}

impl Agent {
    pub async fn connect(
        url: &str,
        token: &str,
        resume: Option<Seq>,
    ) -> (Agent, Welcome, Option<(Seq, AgentSnapshot)>) {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let mut agent = Agent {
            ws,
            token: token.into(),
            last_seq: resume.unwrap_or_default(),
            events: Vec::new(),
            unseen: 0,
            largest_frame: 0,
            next_command: 0,
        };
        agent
            .send(&ClientFrame::Hello(Hello {
                versions: vec![1],
                token: token.into(),
                resume: resume.map(|s| ResumeCursor { last_seq: s }),
                client: ClientInfo {
                    name: "hub-tests".into(),
                    version: "0".into(),
                },
            }))
            .await;
        let welcome = match agent.frame().await {
            ServerFrame::Welcome(w) => w,
            other => panic!("expected welcome, got {other:?}"),
        };
        let snapshot = if matches!(welcome.resume, ResumeMode::FullResync { .. }) {
            match agent.frame().await {
                ServerFrame::Snapshot { seq, snapshot } => {
                    agent.last_seq = seq;
                    Some((seq, snapshot))
                }
                other => panic!("expected snapshot, got {other:?}"),
            }
        } else {
            None
        };
        (agent, welcome, snapshot)
    }

    /// Wraps a raw connection that has not said hello.
    pub fn from_stream(ws: Ws) -> Agent {
        Agent {
            ws,
            token: String::new(),
            last_seq: Seq(0),
            events: Vec::new(),
            unseen: 0,
            largest_frame: 0,
            next_command: 0,
        }
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.ws
            .send(WsMessage::Text(encode(frame).into()))
            .await
            .expect("ws send");
    }

    pub async fn send_raw(&mut self, text: String) {
        self.ws
            .send(WsMessage::Text(text.into()))
            .await
            .expect("ws send");
    }

    /// The next protocol frame (skipping WebSocket pings); panics on close.
    pub async fn frame(&mut self) -> ServerFrame {
        self.try_frame(PATIENCE).await.expect("a frame in time")
    }

    pub async fn try_frame(&mut self, patience: Duration) -> Option<ServerFrame> {
        loop {
            let msg = tokio::time::timeout(patience, self.ws.next()).await.ok()?;
            match msg {
                Some(Ok(WsMessage::Text(t))) => {
                    self.largest_frame = self.largest_frame.max(t.len());
                    let f = decode_server_frame(&t).expect("hub sends valid frames");
                    if let ServerFrame::Event(ev) = &f {
                        assert_eq!(
                            ev.seq.0,
                            self.last_seq.0 + 1,
                            "events arrive gapless and once: {ev:?}"
                        );
                        self.last_seq = ev.seq;
                        self.events.push(ev.clone());
                    }
                    if let ServerFrame::Snapshot { seq, .. } = &f {
                        self.last_seq = *seq;
                    }
                    return Some(f);
                }
                Some(Ok(WsMessage::Close(c))) => panic!("closed by hub: {c:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("ws error: {e}"),
                None => panic!("ws ended"),
            }
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn closed_with(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("close in time");
            match msg {
                Some(Ok(WsMessage::Close(Some(CloseFrame { code, .. })))) => {
                    return u16::from(code)
                }
                Some(Ok(WsMessage::Close(None))) => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("ws error instead of close frame: {e}"),
                None => panic!("ws ended without close frame"),
            }
        }
    }

    /// The next event matching `pred`, skipping others (which are still
    /// recorded in `events`).
    pub async fn wait_event(
        &mut self,
        what: &str,
        pred: impl Fn(&AgentEvent) -> bool,
    ) -> AgentEvent {
        // Events that came in while waiting for a command result count too.
        while self.unseen < self.events.len() {
            let ev = self.events[self.unseen].event.clone();
            self.unseen += 1;
            if pred(&ev) {
                return ev;
            }
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(f) = self.try_frame(left).await else {
                panic!("timed out waiting for {what}; got {:#?}", self.events);
            };
            if let ServerFrame::Event(ev) = f {
                self.unseen = self.events.len();
                if pred(&ev.event) {
                    return ev.event;
                }
            }
        }
    }

    pub async fn wait_offer(&mut self) -> Offer {
        match self
            .wait_event("an offer", |e| matches!(e, AgentEvent::OfferCreated { .. }))
            .await
        {
            AgentEvent::OfferCreated { offer } => offer,
            _ => unreachable!(),
        }
    }

    /// The next `n` assignments: each conversation with the history it
    /// came with and whether it said earlier messages exist.
    pub async fn assignments(
        &mut self,
        n: usize,
    ) -> Vec<(ConversationId, Vec<Message>, Option<bool>)> {
        let mut got = Vec::new();
        while got.len() < n {
            if let AgentEvent::ConversationAssigned {
                conversation,
                messages,
                has_earlier,
                ..
            } = self
                .wait_event("assigned", |e| assigned_mode(e).is_some())
                .await
            {
                got.push((conversation.id, messages, has_earlier));
            }
        }
        got
    }

    /// Asserts no event matching `pred` arrives within `quiet`.
    pub async fn no_event(
        &mut self,
        quiet: Duration,
        what: &str,
        pred: impl Fn(&AgentEvent) -> bool,
    ) {
        for ev in &self.events[self.unseen..] {
            assert!(!pred(&ev.event), "unexpected {what}: {ev:?}");
        }
        self.unseen = self.events.len();
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            if let Some(ServerFrame::Event(ev)) = self.try_frame(left).await {
                self.unseen = self.events.len();
                assert!(!pred(&ev.event), "unexpected {what}: {ev:?}");
            }
        }
    }

    pub async fn command_with_id(&mut self, id: &str, command: Command) -> CommandOutcome {
        let id = CommandId(id.into());
        self.send(&ClientFrame::Command(CommandFrame {
            id: id.clone(),
            command,
        }))
        .await;
        loop {
            if let ServerFrame::CommandResult { id: got, outcome } = self.frame().await {
                if got == id {
                    return outcome;
                }
            }
        }
    }

    pub async fn command(&mut self, command: Command) -> CommandOutcome {
        self.next_command += 1;
        let id = format!("cmd-{}-{}", self.next_command, rand_suffix());
        self.command_with_id(&id, command).await
    }

    pub async fn ok(&mut self, command: Command) -> CommandReply {
        match self.command(command.clone()).await {
            CommandOutcome::Ok { reply } => reply,
            CommandOutcome::Error(e) => panic!("{command:?} refused: {e:?}"),
        }
    }

    pub async fn refused(&mut self, command: Command) -> ErrorCode {
        match self.command(command.clone()).await {
            CommandOutcome::Ok { reply } => panic!("{command:?} should be refused, got {reply:?}"),
            CommandOutcome::Error(e) => e.code,
        }
    }

    pub async fn ack(&mut self) {
        let seq = self.last_seq;
        self.send(&ClientFrame::Ack { seq }).await;
    }

    pub async fn ping(&mut self, nonce: u64) {
        self.send(&ClientFrame::Ping { nonce }).await;
        loop {
            if let ServerFrame::Pong { nonce: n } = self.frame().await {
                assert_eq!(n, nonce);
                return;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// An SMS queue "OQ" of the testkit's team "Other" (no agent of team T
/// works it).
pub fn other_team_sms_queue() -> switchboard_hub::config::QueueConfig {
    switchboard_hub::config::QueueConfig {
        name: "OQ".into(),
        team: "Other".into(),
        channels: vec![Channel::Sms],
        allowed_presences: vec![Presence::Available],
        templates: Default::default(),
        team_owned: false,
        idle_timeout_secs: None,
    }
}

/// Matches a banner notice of `kind`.
pub fn is_notice(kind: NoticeKind) -> impl Fn(&AgentEvent) -> bool {
    move |e| matches!(e, AgentEvent::Notice { notice, .. } if *notice == kind)
}

/// Matches the presence changing to `want` for `why`.
pub fn presence_changed(want: Presence, why: PresenceReason) -> impl Fn(&AgentEvent) -> bool {
    move |e| {
        matches!(e, AgentEvent::PresenceChanged { presence, reason }
            if *presence == want && *reason == why)
    }
}

pub fn is_offer(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::OfferCreated { .. })
}

pub fn assigned_mode(e: &AgentEvent) -> Option<(AssignMode, bool, ConversationId)> {
    match e {
        AgentEvent::ConversationAssigned {
            mode,
            open_session,
            conversation,
            ..
        } => Some((*mode, *open_session, conversation.id)),
        _ => None,
    }
}
