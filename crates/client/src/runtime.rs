//! The imperative shell around the [`Engine`]: the WebSocket connection to
//! the hub (hello, resume, heartbeats, reconnect with capped exponential
//! backoff and full jitter), the local [`Store`], the durable outbox, and
//! handing every other [`Effect`] to an [`EffectSink`] (the desktop app's
//! adapters, or the CLI's printer).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use switchboard_protocol::rest::LoginResponse;
use switchboard_protocol::{
    decode_server_frame, encode, ClientFrame, ClientInfo, CommandFrame, CommandId, ErrorCode,
    Hello, ResumeCursor, ResumeMode, Seq, ServerFrame, SUPPORTED_VERSIONS,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::clock::{Clock, SystemClock};
use crate::engine::{ConnectionStatus, Effect, Engine, Input, StoreOp};
use crate::error::ClientError;
use crate::store::{Recovered, Store};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long opening a link may take (TCP, TLS, the hello, the welcome and
/// a resync's snapshot) before it is given up and tried again later.
const OPEN_LINK_PATIENCE: Duration = Duration::from_secs(15);

/// A link the hub has welcomed, with the snapshot a full resync sends
/// before anything else.
struct OpenedLink {
    ws: Ws,
    welcome: switchboard_protocol::Welcome,
    /// Our clock when the welcome came: its server time is compared with
    /// this, not with the time after a resync's snapshot downloaded.
    welcome_at: switchboard_protocol::Millis,
    snapshot: Option<(Seq, switchboard_protocol::AgentSnapshot)>,
}

/// A link being opened: network work only, run beside the agent's input
/// (a hub that does not answer must not hold up a reply or an accept for
/// the whole patience, with nothing written to the cache meanwhile).
type OpeningLink =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<OpenedLink, ClientError>> + Send>>;

/// Frames applied per store transaction at most.
const MAX_BATCH: usize = 1024;

/// Receives the effects the runtime does not perform itself.
pub trait EffectSink: Send + 'static {
    /// Performs one effect. `engine` is the state after the input.
    fn perform(&mut self, effect: Effect, engine: &Engine);
}

/// Reconnect backoff: full jitter over a capped exponential.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First step.
    pub base: Duration,
    /// Largest step.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before attempt `n` (0-based): uniform in
    /// `[0, min(cap, base * 2^n)]`.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(20));
        let ceiling = exp.min(self.cap);
        Duration::from_millis(rng.gen_range(0..=ceiling.as_millis() as u64))
    }
}

/// How to reach the hub.
#[derive(Debug, Clone)]
pub struct HubEndpoint {
    /// `http(s)://host:port`, no trailing slash.
    pub http_url: String,
    /// Extra trusted root certificate (PEM), e.g. a self-signed hub.
    pub extra_root_pem: Option<Vec<u8>>,
}

impl HubEndpoint {
    /// An endpoint with the system trust roots only.
    pub fn new(http_url: impl Into<String>) -> Self {
        HubEndpoint {
            http_url: http_url.into().trim_end_matches('/').to_owned(),
            extra_root_pem: None,
        }
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        let base = if let Some(rest) = self.http_url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = self.http_url.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            self.http_url.clone()
        };
        format!("{base}/ws")
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, ClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &self.extra_root_pem {
            for cert in rustls_pemfile_certs(pem)? {
                roots
                    .add(cert)
                    .map_err(|e| ClientError::Tls(format!("bad root certificate: {e}")))?;
            }
        }
        Ok(Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ))
    }

    fn http_client(&self) -> Result<reqwest::Client, ClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(15));
        if let Some(pem) = &self.extra_root_pem {
            b = b.add_root_certificate(
                reqwest::Certificate::from_pem(pem).map_err(|e| ClientError::Tls(e.to_string()))?,
            );
        }
        b.build().map_err(|e| ClientError::Tls(e.to_string()))
    }

    /// `POST /api/v1/login`.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<LoginResponse, ClientError> {
        let resp = self
            .http_client()?
            .post(format!("{}/api/v1/login", self.http_url))
            .json(&switchboard_protocol::rest::LoginRequest {
                username: username.into(),
                password: password.into(),
            })
            .send()
            .await;
        answer(resp).await
    }
}

impl HubEndpoint {
    /// `GET /api/v1/conversations/{id}/messages`: history of a conversation
    /// the agent owns (a look-up beyond what the cache keeps).
    pub async fn history(
        &self,
        token: &str,
        conversation: switchboard_protocol::ConversationId,
        after: Option<switchboard_protocol::MessageId>,
    ) -> Result<Vec<switchboard_protocol::Message>, ClientError> {
        let mut url = format!(
            "{}/api/v1/conversations/{}/messages",
            self.http_url, conversation
        );
        if let Some(a) = after {
            url.push_str(&format!("?after={a}"));
        }
        let resp = self.http_client()?.get(url).bearer_auth(token).send().await;
        answer(resp).await
    }

    /// Up to `limit` of a conversation's messages before `before` (the
    /// newest of them, oldest first): scrolling back past the messages the
    /// cache keeps.
    pub async fn history_before(
        &self,
        token: &str,
        conversation: switchboard_protocol::ConversationId,
        before: switchboard_protocol::MessageId,
        limit: u32,
    ) -> Result<Vec<switchboard_protocol::Message>, ClientError> {
        let url = format!(
            "{}/api/v1/conversations/{}/messages?before={before}&limit={limit}",
            self.http_url, conversation
        );
        let resp = self.http_client()?.get(url).bearer_auth(token).send().await;
        answer(resp).await
    }
}

/// Customer 360 and the team directory over REST (the hub keeps the
/// customer store; nothing here is cached).
impl HubEndpoint {
    fn get_json(&self, token: &str, path: &str) -> Result<reqwest::RequestBuilder, ClientError> {
        Ok(self
            .http_client()?
            .get(format!("{}{path}", self.http_url))
            .bearer_auth(token))
    }

    fn post_json<B: serde::Serialize>(
        &self,
        token: &str,
        path: &str,
        body: &B,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        Ok(self
            .http_client()?
            .post(format!("{}{path}", self.http_url))
            .bearer_auth(token)
            .json(body))
    }

    /// `GET /api/v1/records/search`.
    pub async fn search_records(
        &self,
        token: &str,
        query: &switchboard_protocol::rest::RecordSearch,
    ) -> Result<Vec<switchboard_protocol::rest::Contact>, ClientError> {
        let resp = self
            .get_json(token, "/api/v1/records/search")?
            .query(query)
            .send()
            .await;
        answer(resp).await
    }

    /// `GET /api/v1/records/contacts/{id}`.
    pub async fn customer_360(
        &self,
        token: &str,
        contact: switchboard_protocol::ContactId,
    ) -> Result<switchboard_protocol::rest::Customer360, ClientError> {
        let resp = self
            .get_json(token, &format!("/api/v1/records/contacts/{contact}"))?
            .send()
            .await;
        answer(resp).await
    }

    /// `POST /api/v1/records/contacts`.
    pub async fn create_contact(
        &self,
        token: &str,
        contact: &switchboard_protocol::rest::NewContact,
    ) -> Result<switchboard_protocol::rest::Contact, ClientError> {
        let resp = self
            .post_json(token, "/api/v1/records/contacts", contact)?
            .send()
            .await;
        answer(resp).await
    }

    /// `POST /api/v1/records/accounts`.
    pub async fn create_account(
        &self,
        token: &str,
        account: &switchboard_protocol::rest::NewAccount,
    ) -> Result<switchboard_protocol::rest::Account, ClientError> {
        let resp = self
            .post_json(token, "/api/v1/records/accounts", account)?
            .send()
            .await;
        answer(resp).await
    }

    /// `POST /api/v1/conversations/{id}/link`.
    pub async fn link_conversation(
        &self,
        token: &str,
        conversation: switchboard_protocol::ConversationId,
        link: &switchboard_protocol::rest::LinkRequest,
    ) -> Result<switchboard_protocol::ConversationSummary, ClientError> {
        let resp = self
            .post_json(
                token,
                &format!("/api/v1/conversations/{conversation}/link"),
                link,
            )?
            .send()
            .await;
        answer(resp).await
    }

    /// `GET /api/v1/me`: who a token belongs to (resuming a session
    /// without the password).
    pub async fn me(&self, token: &str) -> Result<switchboard_protocol::AgentProfile, ClientError> {
        let resp = self.get_json(token, "/api/v1/me")?.send().await;
        answer(resp).await
    }

    /// `POST /api/v1/logout`: the hub revokes the token.
    pub async fn logout(&self, token: &str) -> Result<(), ClientError> {
        let resp = self
            .http_client()?
            .post(format!("{}/api/v1/logout", self.http_url))
            .bearer_auth(token)
            .send()
            .await;
        answer_empty(resp).await
    }

    /// `POST /api/v1/agents/{id}/presence/reset`: a supervisor resets an
    /// agent of its team after a missed or rejected offer or the session
    /// limit; the hub answers with the presence it went back to.
    pub async fn reset_agent_presence(
        &self,
        token: &str,
        agent: switchboard_protocol::AgentId,
    ) -> Result<switchboard_protocol::Presence, ClientError> {
        let resp = self
            .http_client()?
            .post(format!(
                "{}/api/v1/agents/{}/presence/reset",
                self.http_url, agent.0
            ))
            .bearer_auth(token)
            .send()
            .await;
        let reset: switchboard_protocol::rest::PresenceReset = answer(resp).await?;
        Ok(reset.presence)
    }

    /// `GET /api/v1/team/conversations`: a supervisor's team's open
    /// conversations, waiting ones first.
    pub async fn team_conversations(
        &self,
        token: &str,
    ) -> Result<Vec<switchboard_protocol::ConversationSummary>, ClientError> {
        let resp = self
            .get_json(token, "/api/v1/team/conversations")?
            .send()
            .await;
        answer(resp).await
    }

    /// `GET /api/v1/team/waiting`: the agent's team's team chats nobody
    /// owns yet, longest waiting first.
    pub async fn waiting_team_chats(
        &self,
        token: &str,
    ) -> Result<Vec<switchboard_protocol::rest::WaitingTeamChat>, ClientError> {
        let resp = self.get_json(token, "/api/v1/team/waiting")?.send().await;
        // The endpoint never answers not_found itself: a hub without it
        // (older than this app) does, and the agent should read why.
        answer(resp).await.map_err(|e| match e {
            ClientError::Refused(b) if b.code == switchboard_protocol::ErrorCode::NotFound => {
                ClientError::Refused(switchboard_protocol::ErrorBody::new(
                    switchboard_protocol::ErrorCode::NotFound,
                    "this hub does not list waiting team chats (it is older than this app)",
                ))
            }
            e => e,
        })
    }

    /// `GET /api/v1/team`.
    pub async fn team_directory(
        &self,
        token: &str,
    ) -> Result<switchboard_protocol::rest::TeamDirectory, ClientError> {
        let resp = self.get_json(token, "/api/v1/team")?.send().await;
        answer(resp).await
    }
}

/// A REST answer: the body on success, the hub's `{code, message}` else.
async fn answer<T: serde::de::DeserializeOwned>(
    resp: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, ClientError> {
    let resp = resp.map_err(|e| ClientError::Network(e.to_string()))?;
    if resp.status().is_success() {
        resp.json()
            .await
            .map_err(|e| ClientError::Network(e.to_string()))
    } else {
        Err(refusal(resp).await)
    }
}

/// A REST answer with no body on success (`204`).
async fn answer_empty(resp: Result<reqwest::Response, reqwest::Error>) -> Result<(), ClientError> {
    let resp = resp.map_err(|e| ClientError::Network(e.to_string()))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(refusal(resp).await)
    }
}

/// The hub's `{code, message}` from a failed REST call.
async fn refusal(resp: reqwest::Response) -> ClientError {
    match resp.json::<switchboard_protocol::ErrorBody>().await {
        Ok(body) => ClientError::Refused(body),
        Err(e) => ClientError::Network(e.to_string()),
    }
}

fn rustls_pemfile_certs(
    pem: &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ClientError> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Tls(format!("bad PEM: {e:?}")))
}

/// Options for [`spawn`].
pub struct ClientOptions {
    /// The hub.
    pub endpoint: HubEndpoint,
    /// Bearer token from a login.
    pub token: String,
    /// The cache file.
    pub cache_path: std::path::PathBuf,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Client name for the hub's logs.
    pub client_name: String,
    /// The user name the cache must belong to; a cache holding another
    /// account's profile is moved aside and rebuilt (`None`: not checked).
    pub account: Option<String>,
}

impl ClientOptions {
    /// Defaults for everything but the endpoint, token and cache.
    pub fn new(endpoint: HubEndpoint, token: String, cache_path: std::path::PathBuf) -> Self {
        ClientOptions {
            endpoint,
            token,
            cache_path,
            backoff: Backoff::default(),
            clock: Arc::new(SystemClock),
            client_name: "switchboard".into(),
            account: None,
        }
    }
}

type Query = Box<dyn FnOnce(&Engine) + Send>;

enum Request {
    Input(Box<Input>),
    Query(Query),
    Shutdown(oneshot::Sender<()>),
}

/// A running client.
#[derive(Clone)]
pub struct ClientHandle {
    tx: mpsc::Sender<Request>,
}

impl ClientHandle {
    /// Sends an input (agent action, focus change, notification click).
    pub async fn input(&self, input: Input) -> Result<(), ClientError> {
        self.tx
            .send(Request::Input(Box::new(input)))
            .await
            .map_err(|_| ClientError::Stopped)
    }

    /// Reads from the engine's state.
    pub async fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> R + Send + 'static,
    ) -> Result<R, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Query(Box::new(move |e| {
                let _ = tx.send(f(e));
            })))
            .await
            .map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)
    }

    /// Stops the client after the current batch.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Request::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Opens the cache and starts the client; returns the handle, the task, and
/// whether the cache had to be rebuilt.
pub async fn spawn(
    options: ClientOptions,
    sink: impl EffectSink,
) -> Result<(ClientHandle, tokio::task::JoinHandle<()>, Option<Recovered>), ClientError> {
    let (mut store, mut recovered) = Store::open(&options.cache_path).await?;
    let mut loaded = store.load().await?;
    let owner = loaded.state.profile.as_ref().map(|p| p.username.clone());
    if let (Some(want), Some(owner)) = (&options.account, owner) {
        if *want != owner {
            let (fresh, moved_to) = store.set_aside_as_other_account().await?;
            tracing::warn!(cache = %options.cache_path.display(), moved_to = %moved_to.display(),
                "the cache held another account's data; moved aside");
            store = fresh;
            loaded = store.load().await?;
            recovered = Some(Recovered {
                moved_to: Some(moved_to),
                reason: format!(
                    "the local cache held another account's data ({owner}); it was set aside"
                ),
            });
        }
    }
    store.forget_unreadable(&loaded).await?;
    if recovered.is_none() && !loaded.unreadable.is_empty() {
        recovered = Some(Recovered {
            moved_to: None,
            reason: format!(
                "{} unreadable cache rows skipped ({}); the hub sends the rest again",
                loaded.unreadable.len(),
                loaded.unreadable[0]
            ),
        });
    }
    let prefix = format!("{:016x}", rand::thread_rng().gen::<u64>());
    let mut engine = Engine::new(loaded.state, prefix);
    engine.adopt_outbox(&loaded.outbox, loaded.accepting);
    let (tx, rx) = mpsc::channel(256);
    let runtime = Runtime {
        engine,
        store,
        sink: Box::new(sink),
        options,
        outbox: loaded.outbox,
        rx,
        ws: None,
        opening: None,
        attempt: 0,
        reconnect_at: Instant::now(),
        signed_out: false,
        send_failed: false,
        cache_behind: false,
        resync: false,
        unsaved_sends: Vec::new(),
        heartbeat: Duration::from_secs(10),
        last_heard: Instant::now(),
        next_nonce: 0,
        ping: tokio::time::interval(Duration::from_secs(10)),
    };
    let task = tokio::spawn(runtime.run());
    Ok((ClientHandle { tx }, task, recovered))
}

struct Runtime {
    engine: Engine,
    store: Store,
    sink: Box<dyn EffectSink>,
    options: ClientOptions,
    /// Commands persisted and not yet answered, in order.
    outbox: Vec<CommandFrame>,
    rx: mpsc::Receiver<Request>,
    ws: Option<Ws>,
    /// The link being opened, if one is.
    opening: Option<OpeningLink>,
    attempt: u32,
    reconnect_at: Instant,
    signed_out: bool,
    /// A send failed: the link is gone, handled at the top of the loop
    /// like any other loss (status, backoff) rather than silently.
    send_failed: bool,
    /// A cache write failed: the next one writes the whole state
    /// ([`Engine::checkpoint`]) and the commands not yet in the outbox,
    /// instead of only its own batch (the hub replays nothing the engine
    /// has already applied).
    cache_behind: bool,
    /// An event came with a seq past the next one (an event in between
    /// did not decode here, or the hub lost it): the next hello asks for
    /// a snapshot instead of resuming after what was missed.
    resync: bool,
    /// Commands sent whose outbox write failed, for that next write.
    unsaved_sends: Vec<CommandFrame>,
    heartbeat: Duration,
    last_heard: Instant,
    next_nonce: u64,
    /// Fires every heartbeat interval while connected.
    ping: tokio::time::Interval,
}

enum Step {
    Frame(Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>),
    Request(Option<Request>),
    Reconnect,
    Opened(Box<Result<OpenedLink, ClientError>>),
    Heartbeat,
    Wake,
}

impl Runtime {
    fn now(&self) -> switchboard_protocol::Millis {
        self.options.clock.now()
    }

    async fn run(mut self) {
        let now = self.now();
        let fx = self.engine.start(now);
        self.perform(fx).await;
        loop {
            if std::mem::take(&mut self.send_failed) {
                tracing::info!("link lost while sending");
                self.lost_link().await;
            }
            let wake = self.engine.next_wake().map(|at| {
                let ms = (at.0 - self.now().0).max(0) as u64;
                Instant::now() + Duration::from_millis(ms)
            });
            let step = tokio::select! {
                frame = next_frame(&mut self.ws), if self.ws.is_some() => Step::Frame(frame),
                req = self.rx.recv() => Step::Request(req),
                _ = tokio::time::sleep_until(self.reconnect_at), if self.ws.is_none() && self.opening.is_none() && !self.signed_out => Step::Reconnect,
                opened = next_opened(&mut self.opening), if self.opening.is_some() => Step::Opened(Box::new(opened)),
                _ = self.ping.tick(), if self.ws.is_some() => Step::Heartbeat,
                _ = sleep_until_opt(wake) => Step::Wake,
            };
            match step {
                Step::Frame(Some(Ok(msg))) => {
                    self.last_heard = Instant::now();
                    let mut batch = vec![msg];
                    // Take whatever else is already here: one transaction
                    // and one ack for a burst.
                    while batch.len() < MAX_BATCH {
                        match self
                            .ws
                            .as_mut()
                            .and_then(|ws| ws.next().now_or_never_flat())
                        {
                            Some(Ok(m)) => batch.push(m),
                            Some(Err(e)) => {
                                tracing::info!(error = %e, "link error");
                                break;
                            }
                            None => break,
                        }
                    }
                    if let Err(e) = self.frames(batch).await {
                        tracing::warn!(error = %e, "dropping link");
                        self.lost_link().await;
                    }
                }
                Step::Frame(Some(Err(e))) => {
                    tracing::info!(error = %e, "link lost");
                    self.lost_link().await;
                }
                Step::Frame(None) => {
                    tracing::info!("link closed by hub");
                    self.lost_link().await;
                }
                Step::Request(None) => return,
                Step::Request(Some(Request::Shutdown(done))) => {
                    if let Some(mut ws) = self.ws.take() {
                        let _ = ws.close(None).await;
                    }
                    self.store.close().await;
                    let _ = done.send(());
                    return;
                }
                Step::Request(Some(Request::Query(q))) => q(&self.engine),
                Step::Request(Some(Request::Input(input))) => {
                    let now = self.now();
                    let fx = self.engine.handle(*input, now);
                    self.perform(fx).await;
                }
                Step::Reconnect => self.connect().await,
                Step::Opened(opened) => {
                    self.opening = None;
                    self.opened(*opened).await;
                }
                Step::Heartbeat => {
                    if self.last_heard.elapsed() > self.heartbeat * 2 {
                        tracing::warn!("no answer within two heartbeat intervals; link is dead");
                        self.lost_link().await;
                    } else {
                        self.next_nonce += 1;
                        let nonce = self.next_nonce;
                        self.send(&ClientFrame::Ping { nonce }).await;
                    }
                }
                Step::Wake => {
                    let now = self.now();
                    let fx = self.engine.handle(Input::Tick, now);
                    self.perform(fx).await;
                }
            }
        }
    }

    async fn lost_link(&mut self) {
        self.ws = None;
        if self.signed_out {
            // The hub ended the session (4001/4004): that is the status,
            // not "offline, will retry" (nothing retries).
            return;
        }
        let delay = self
            .options
            .backoff
            .delay(self.attempt, &mut rand::thread_rng());
        self.attempt = self.attempt.saturating_add(1);
        self.reconnect_at = Instant::now() + delay;
        let now = self.now();
        let fx = self
            .engine
            .handle(Input::Connection(ConnectionStatus::Offline), now);
        self.perform(fx).await;
    }

    async fn send(&mut self, frame: &ClientFrame) {
        if let Some(ws) = self.ws.as_mut() {
            if ws
                .send(WsMessage::Text(encode(frame).into()))
                .await
                .is_err()
            {
                self.ws = None;
                self.send_failed = true;
            }
        }
    }

    /// Starts opening a link; [`Runtime::opened`] takes it on when it is
    /// open. Meanwhile the agent's input is handled as when offline: its
    /// commands are written to the outbox and go when the link is open.
    async fn connect(&mut self) {
        let now = self.now();
        let fx = self
            .engine
            .handle(Input::Connection(ConnectionStatus::Connecting), now);
        self.perform(fx).await;
        let url = self.options.endpoint.ws_url();
        let connector = if url.starts_with("wss://") {
            match self.options.endpoint.tls_config() {
                Ok(tls) => Some(tokio_tungstenite::Connector::Rustls(tls)),
                Err(e) => {
                    self.opening = Some(Box::pin(std::future::ready(Err(e))));
                    return;
                }
            }
        } else {
            None
        };
        let last = self.engine.state().last_seq;
        let hello = ClientFrame::Hello(Hello {
            versions: SUPPORTED_VERSIONS.to_vec(),
            token: self.options.token.clone(),
            resume: (last.0 > 0 && !self.resync).then_some(ResumeCursor { last_seq: last }),
            client: ClientInfo {
                name: self.options.client_name.clone(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
        });
        let clock = self.options.clock.clone();
        self.opening = Some(Box::pin(async move {
            tokio::time::timeout(OPEN_LINK_PATIENCE, open_link(url, connector, hello, clock))
                .await
                .unwrap_or_else(|_| Err(ClientError::Network("opening the link timed out".into())))
        }));
    }

    /// Takes on a link opened (or failed to open): the welcome and a
    /// resync's snapshot through the engine and into the cache, then
    /// online, and every command not yet answered sent again.
    async fn opened(&mut self, opened: Result<OpenedLink, ClientError>) {
        let link = match opened {
            Ok(link) => link,
            Err(ClientError::Refused(e)) if e.code == ErrorCode::Unauthorized => {
                tracing::warn!(message = %e.message, "hub refused the token; signed out");
                self.ws = None;
                self.signed_out = true;
                let now = self.now();
                let fx = self
                    .engine
                    .handle(Input::Connection(ConnectionStatus::SignedOut), now);
                self.perform(fx).await;
                return;
            }
            Err(e) => {
                tracing::info!(error = %e, attempt = self.attempt, "connect failed");
                self.lost_link().await;
                return;
            }
        };
        self.ws = Some(link.ws);
        self.last_heard = Instant::now();
        self.resync = false;
        self.heartbeat = Duration::from_millis(link.welcome.heartbeat_interval_ms.max(100));
        // What waits for an answer, from before this link or made while it
        // opened. What taking on the link itself sends (a resync's reads
        // held back) goes out on it as it is made, and must not go twice.
        let unanswered: Vec<CommandId> = self.outbox.iter().map(|f| f.id.clone()).collect();
        let fx = self.engine.handle(
            Input::Welcome {
                server_time: link.welcome.server_time,
            },
            link.welcome_at,
        );
        self.perform(fx).await;
        if let Some((seq, snapshot)) = link.snapshot {
            let now = self.now();
            let fx = self.engine.handle(Input::Snapshot { seq, snapshot }, now);
            self.perform(fx).await;
            self.ack().await;
        }
        self.attempt = 0;
        // Ping at the hub's pace from now on (first tick at once).
        self.ping = tokio::time::interval(self.heartbeat);
        self.ping
            .set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let now = self.now();
        let fx = self
            .engine
            .handle(Input::Connection(ConnectionStatus::Online), now);
        self.perform(fx).await;
        // Everything not yet answered goes again, same ids: the hub
        // executes each at most once (and answers a repeat of one it
        // refused by running it again, so nothing goes twice).
        for frame in self.outbox.clone() {
            if unanswered.contains(&frame.id) {
                self.send(&ClientFrame::Command(frame)).await;
            }
        }
    }

    async fn ack(&mut self) {
        let seq = self.engine.state().last_seq;
        if seq.0 > 0 {
            self.send(&ClientFrame::Ack { seq }).await;
        }
    }

    /// Applies a burst of frames: events through the engine, one store
    /// transaction, then the ack, then the effects.
    ///
    /// Each frame is handled at its own clock reading and its shell effects
    /// are performed at once; only the store ops and sends wait for the
    /// batch's end. Stamping a whole batch once and showing its
    /// notifications after the last frame would let the shell see two
    /// updates of one conversation closer than the engine's coalescing
    /// window (the batch's processing time closer).
    async fn frames(&mut self, batch: Vec<WsMessage>) -> Result<(), ClientError> {
        let mut fx = Vec::new();
        let mut events = false;
        let mut any = false;
        for msg in batch {
            let now = self.now();
            let text = match msg {
                WsMessage::Text(t) => t,
                WsMessage::Close(c) => {
                    let code = c.as_ref().map(|c| u16::from(c.code));
                    if matches!(code, Some(4001) | Some(4004)) {
                        self.signed_out = true;
                        let new = self
                            .engine
                            .handle(Input::Connection(ConnectionStatus::SignedOut), now);
                        any |= self.shell_effects_now(new, &mut fx);
                    }
                    self.perform_batch(fx, any).await;
                    return Err(ClientError::Network(format!("closed by hub: {code:?}")));
                }
                _ => continue,
            };
            let frame = match decode_server_frame(&text) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "invalid frame from hub ignored");
                    continue;
                }
            };
            match frame {
                ServerFrame::Event(ev) => {
                    let last = self.engine.state().last_seq;
                    // After the welcome (a snapshot at some seq, or a
                    // replay after our cursor) events come one by one.
                    if ev.seq.0 > last.0 + 1 {
                        // Applying it would skip (and ack past) what came
                        // in between: start over from a snapshot.
                        tracing::warn!(
                            ours = last.0,
                            got = ev.seq.0,
                            "events missing; resynchronising"
                        );
                        self.resync = true;
                        self.perform_batch(fx, any).await;
                        if events {
                            self.ack().await;
                        }
                        return Err(ClientError::Network("events missing".into()));
                    }
                    events = true;
                    let new = self.engine.handle(Input::Event(ev), now);
                    any |= self.shell_effects_now(new, &mut fx);
                }
                ServerFrame::CommandResult { id, outcome } => {
                    self.outbox.retain(|f| f.id != id);
                    self.unsaved_sends.retain(|f| f.id != id);
                    // The engine's `CommandAnswered` takes it out of the
                    // cache's outbox with the batch. Should that write
                    // fail, it is sent again after a restart and the hub
                    // answers it once more (it executes an id at most once).
                    let new = self
                        .engine
                        .handle(Input::CommandResult { id, outcome }, now);
                    any |= self.shell_effects_now(new, &mut fx);
                }
                ServerFrame::Snapshot { seq, snapshot } => {
                    events = true;
                    let new = self.engine.handle(Input::Snapshot { seq, snapshot }, now);
                    any |= self.shell_effects_now(new, &mut fx);
                }
                ServerFrame::Pong { .. } => {}
                ServerFrame::Error(e) => {
                    tracing::warn!(code = ?e.code, message = %e.message, "hub error")
                }
                ServerFrame::Welcome(_) => tracing::warn!("unexpected welcome"),
                ServerFrame::Unknown => tracing::info!("ignoring unknown frame kind from hub"),
            }
        }
        self.perform_batch(fx, any).await;
        if events {
            self.ack().await;
        }
        Ok(())
    }

    /// Performs the shell effects among `new` at once and moves its store
    /// ops and sends to `pending`; true if `new` had any effects.
    fn shell_effects_now(&mut self, new: Vec<Effect>, pending: &mut Vec<Effect>) -> bool {
        let any = !new.is_empty();
        for e in new {
            match e {
                Effect::Store(_) | Effect::Send(_) => pending.push(e),
                other => self.sink.perform(other, &self.engine),
            }
        }
        any
    }

    /// Hands shell effects to the sink, persists store ops (one
    /// transaction, with the last seq), then puts sends in the outbox and
    /// sends them.
    ///
    /// The sink goes first: an OS notification or UI update must not wait
    /// for the cache's fsync (tens of milliseconds on a busy disk). That is
    /// safe because the hub is acked only after the write: if the client
    /// dies in between, the event is replayed and shown again under the
    /// same notification key.
    async fn perform(&mut self, fx: Vec<Effect>) {
        let any = !fx.is_empty();
        self.perform_batch(fx, any).await;
    }

    /// [`Runtime::perform`]; `any` says whether the batch had effects (some
    /// may have been performed already), in which case the store is
    /// written (with the last seq) even if no op is left.
    async fn perform_batch(&mut self, fx: Vec<Effect>, any: bool) {
        let mut ops: Vec<StoreOp> = Vec::new();
        let mut sends: Vec<CommandFrame> = Vec::new();
        for e in fx {
            match e {
                Effect::Store(op) => ops.push(op),
                Effect::Send(frame) => sends.push(frame),
                other => self.sink.perform(other, &self.engine),
            }
        }
        if any || self.cache_behind {
            let seq: Seq = self.engine.state().last_seq;
            let ops = if self.cache_behind {
                self.engine.checkpoint()
            } else {
                ops
            };
            let mut outbox = std::mem::take(&mut self.unsaved_sends);
            outbox.extend(sends.iter().cloned());
            // The commands go to the outbox in the same transaction as the
            // state they change (a cleared draft, a handled offer).
            match self.store.apply_with_outbox(ops, &outbox, seq).await {
                Ok(()) => {
                    if self.cache_behind {
                        tracing::info!("the cache is written again, whole");
                    }
                    self.cache_behind = false;
                }
                Err(e) => {
                    // Keep running on the in-memory state and send anyway
                    // (the draft a reply cleared is still on disk); the
                    // next write makes the cache whole again.
                    tracing::error!(error = %e, "writing the cache failed; the next write rewrites it");
                    self.cache_behind = true;
                    self.unsaved_sends = outbox;
                }
            }
        }
        for frame in sends {
            self.outbox.push(frame.clone());
            self.send(&ClientFrame::Command(frame)).await;
        }
    }
}

/// Opens a link: connects, says hello, and reads the welcome (and, for a
/// full resync, the snapshot that follows it).
async fn open_link(
    url: String,
    connector: Option<tokio_tungstenite::Connector>,
    hello: ClientFrame,
    clock: Arc<dyn Clock>,
) -> Result<OpenedLink, ClientError> {
    // disable_nagle: frames (acks, commands) go out at once.
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(&url, None, true, connector)
        .await
        .map_err(|e| ClientError::Network(e.to_string()))?;
    ws.send(WsMessage::Text(encode(&hello).into()))
        .await
        .map_err(|e| ClientError::Network(e.to_string()))?;
    let welcome = loop {
        match read_frame(&mut ws).await? {
            ServerFrame::Welcome(w) => break w,
            ServerFrame::Error(e) => return Err(ClientError::Refused(e)),
            other => tracing::debug!(?other, "ignored before welcome"),
        }
    };
    let welcome_at = clock.now();
    let snapshot = if let ResumeMode::FullResync { reason } = &welcome.resume {
        tracing::info!(?reason, "full resync");
        loop {
            match read_frame(&mut ws).await? {
                ServerFrame::Snapshot { seq, snapshot } => break Some((seq, snapshot)),
                ServerFrame::Error(e) => return Err(ClientError::Refused(e)),
                other => tracing::debug!(?other, "ignored before snapshot"),
            }
        }
    } else {
        None
    };
    Ok(OpenedLink {
        ws,
        welcome,
        welcome_at,
        snapshot,
    })
}

/// The next frame from the hub on a link being opened; frames that do not
/// decode are logged and skipped, a close is an error (unauthorised for the
/// hub's token closes).
async fn read_frame(ws: &mut Ws) -> Result<ServerFrame, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => match decode_server_frame(&t) {
                Ok(f) => return Ok(f),
                Err(e) => tracing::warn!(error = %e, "invalid frame from hub ignored"),
            },
            Some(Ok(WsMessage::Close(c))) => {
                return Err(match c {
                    Some(c)
                        if u16::from(c.code) == switchboard_protocol::close_code::UNAUTHORIZED
                            || u16::from(c.code)
                                == switchboard_protocol::close_code::TOKEN_REVOKED =>
                    {
                        ClientError::Refused(switchboard_protocol::ErrorBody::new(
                            ErrorCode::Unauthorized,
                            c.reason.to_string(),
                        ))
                    }
                    other => ClientError::Network(format!("closed: {other:?}")),
                })
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(ClientError::Network(e.to_string())),
            None => return Err(ClientError::Network("closed".into())),
        }
    }
}

/// The link being opened, when it is (or is given up); never without one.
async fn next_opened(opening: &mut Option<OpeningLink>) -> Result<OpenedLink, ClientError> {
    match opening.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn next_frame(
    ws: &mut Option<Ws>,
) -> Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>> {
    match ws.as_mut() {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `now_or_never` over a stream's next item, flattened.
trait NowOrNever {
    fn now_or_never_flat(self) -> Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>;
}

impl<F> NowOrNever for F
where
    F: std::future::Future<
        Output = Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
    >,
{
    fn now_or_never_flat(self) -> Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>> {
        futures_util::FutureExt::now_or_never(self).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_is_full_jitter_over_a_capped_exponential() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 0..12u32 {
            let ceiling = (100u64 << attempt).min(2000);
            let samples: Vec<u64> = (0..200)
                .map(|_| b.delay(attempt, &mut rng).as_millis() as u64)
                .collect();
            assert!(samples.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            // Jittered: spread over the range, not a fixed step.
            let max = *samples.iter().max().unwrap_or(&0);
            let min = *samples.iter().min().unwrap_or(&0);
            assert!(
                max > ceiling / 2 && min < ceiling / 2,
                "attempt {attempt}: {min}..{max}"
            );
        }
        // Huge attempt counts do not overflow.
        assert!(b.delay(u32::MAX, &mut rng) <= Duration::from_secs(2));
    }

    #[test]
    fn ws_url_follows_the_http_scheme() {
        assert_eq!(HubEndpoint::new("http://h:1/").ws_url(), "ws://h:1/ws");
        assert_eq!(HubEndpoint::new("https://h").ws_url(), "wss://h/ws");
    }
}
