//! Test support: a real hub on loopback, clients recording their effects,
//! and a TCP proxy that injects faults between them.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_client::engine::{Effect, Engine};
use switchboard_client::store::Recovered;
use switchboard_client::{
    AgentAction, ClientHandle, ClientOptions, EffectSink, HubEndpoint, Input,
};
use switchboard_hub::testkit::{base_config, INGRESS, PASSWORD};
use switchboard_hub::{HubConfig, RunningHub};
use switchboard_protocol::rest::{IngressMessage, IngressResponse};
use switchboard_protocol::{AgentId, Channel, ConversationId, OfferId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const PATIENCE: Duration = Duration::from_secs(15);

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

/// A real hub with its own database.
pub struct TestHub {
    pub running: Option<RunningHub>,
    pub config: HubConfig,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl TestHub {
    pub async fn start_with(customize: impl FnOnce(&mut HubConfig)) -> TestHub {
        init();
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config(dir.path());
        customize(&mut config);
        let running = switchboard_hub::start(config.clone()).await.unwrap();
        TestHub {
            running: Some(running),
            config,
            dir,
            http: reqwest::Client::new(),
        }
    }

    pub async fn start() -> TestHub {
        Self::start_with(|_| {}).await
    }

    /// A client signed in as `user`, caching in `cache`.
    pub async fn client(&self, user: &str, cache: &Path) -> TestClient {
        TestClient::start(self.endpoint(), self.token(user).await, cache).await
    }

    /// A client of `user` connected through `proxy` (the fault injector).
    pub async fn client_through(&self, proxy: &Proxy, user: &str, cache: &Path) -> TestClient {
        TestClient::start(proxy.endpoint(), self.token(user).await, cache).await
    }

    pub fn running(&self) -> &RunningHub {
        self.running.as_ref().unwrap()
    }

    pub fn hub(&self) -> &std::sync::Arc<switchboard_hub::Hub> {
        &self.running().hub
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.running().addr
    }

    pub fn endpoint(&self) -> HubEndpoint {
        HubEndpoint::new(self.running().http_url())
    }

    /// Stops the hub (its database stays); [`TestHub::restart`] brings it
    /// back on the same address.
    pub async fn stop(&mut self) {
        if let Some(old) = self.running.take() {
            self.config.server.listen = old.addr;
            old.shutdown().await;
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        for _ in 0..50 {
            if let Ok(r) = switchboard_hub::start(self.config.clone()).await {
                self.running = Some(r);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("hub did not restart");
    }

    pub async fn token(&self, user: &str) -> String {
        self.endpoint().login(user, PASSWORD).await.unwrap().token
    }

    pub async fn agent_id(&self, user: &str) -> AgentId {
        self.hub().agent_id(user).await.unwrap()
    }

    pub async fn ingress(
        &self,
        channel: Channel,
        thread: &str,
        name: &str,
        text: &str,
    ) -> IngressResponse {
        let r = self
            .http
            .post(format!(
                "{}/api/v1/ingress/messages",
                self.running().http_url()
            ))
            .bearer_auth(INGRESS)
            .json(&IngressMessage {
                channel,
                thread: thread.into(),
                customer_name: name.into(),
                phone: None,
                email: None,
                comment: Some("<script>alert(1)</script>".into()),
                queue: None,
                scenario: None,
                text: text.into(),
                transcript: Vec::new(),
                case_id: None,
                message_id: None,
            })
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

/// Records every effect a client hands to its shell.
#[derive(Clone, Default)]
pub struct Recorder {
    effects: Arc<Mutex<Vec<Effect>>>,
}

impl EffectSink for Recorder {
    fn perform(&mut self, effect: Effect, _engine: &Engine) {
        self.effects.lock().unwrap().push(effect);
    }
}

impl Recorder {
    pub fn all(&self) -> Vec<Effect> {
        self.effects.lock().unwrap().clone()
    }

    pub fn count(&self, pred: impl Fn(&Effect) -> bool) -> usize {
        self.effects
            .lock()
            .unwrap()
            .iter()
            .filter(|e| pred(e))
            .count()
    }
}

/// A client under test.
pub struct TestClient {
    pub handle: ClientHandle,
    pub task: tokio::task::JoinHandle<()>,
    pub effects: Recorder,
    pub cache: PathBuf,
    pub recovered: Option<Recovered>,
}

impl TestClient {
    pub async fn start(endpoint: HubEndpoint, token: String, cache: &Path) -> TestClient {
        let effects = Recorder::default();
        let mut options = ClientOptions::new(endpoint, token, cache.to_owned());
        options.backoff.base = Duration::from_millis(50);
        options.backoff.cap = Duration::from_millis(400);
        let (handle, task, recovered) = switchboard_client::spawn(options, effects.clone())
            .await
            .unwrap();
        TestClient {
            handle,
            task,
            effects,
            cache: cache.to_owned(),
            recovered,
        }
    }

    /// Waits until an effect matching `pred` has been recorded (at any time).
    pub async fn wait_effect(&self, what: &str, pred: impl Fn(&Effect) -> bool) -> Effect {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(e) = self.effects.all().into_iter().find(|e| pred(e)) {
                return e;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; effects: {:#?}",
                    self.effects.all()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the engine's state satisfies `pred`.
    pub async fn wait_state(
        &self,
        what: &str,
        pred: impl Fn(&Engine) -> bool + Send + Sync + Clone + 'static,
    ) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let p = pred.clone();
            if self.handle.query(move |e| p(e)).await.unwrap() {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let st = self
                    .handle
                    .query(|e| format!("{:#?}", e.state()))
                    .await
                    .unwrap();
                panic!("timed out waiting for {what}; state: {st}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the conversation is offered to this client; its offer.
    pub async fn offer_for(&self, conv: ConversationId) -> OfferId {
        self.wait_state("offered", move |e| {
            e.state()
                .offers
                .values()
                .any(|p| p.offer.conversation.id == conv)
        })
        .await;
        self.handle
            .query(move |e| {
                e.state()
                    .offers
                    .values()
                    .find(|p| p.offer.conversation.id == conv)
                    .map(|p| p.offer.id)
            })
            .await
            .unwrap()
            .expect("still offered")
    }

    pub async fn act(&self, action: AgentAction) {
        self.handle.input(Input::Agent(action)).await.unwrap();
    }

    pub async fn stop(self) {
        self.handle.shutdown().await;
        let _ = self.task.await;
    }
}

/// An HTTP server on a hub's address that answers every request, the
/// WebSocket upgrade included, with one failing status and an error body
/// (a hub restarting behind its load balancer, or rate limiting). Counts
/// the requests it answered.
pub struct FailingHttp {
    pub requests: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FailingHttp {
    /// `status` as on the status line, e.g. `"503 Service Unavailable"`;
    /// `code` the error body's code.
    pub async fn start(
        addr: std::net::SocketAddr,
        status: &'static str,
        code: &'static str,
    ) -> FailingHttp {
        let mut bound = None;
        for _ in 0..50 {
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    bound = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = bound.expect("the hub's address is free again");
        let requests: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = format!(r#"{{"code":"{code}","message":"try again later"}}"#);
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        FailingHttp { requests, task }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FailingHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP proxy between client and hub that can cut, blackhole or refuse.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    mode: Arc<AtomicU8>,
    shape: Arc<Shape>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

pub const PASS: u8 = 0;
/// Bytes are swallowed in both directions; sockets stay open (half-open
/// link, as after a network drop without FIN/RST).
pub const BLACKHOLE: u8 = 1;
/// New connections are closed at once.
pub const DOWN: u8 = 2;
/// The next hub → client chunk is forwarded only in part (the cut falls
/// inside a WebSocket frame), then both sockets are reset (RST); the mode
/// returns to [`PASS`].
pub const RESET_MID_FRAME: u8 = 3;
/// In the next hub → client chunk holding `"presence":"busy"`, the value
/// becomes the number `123456` (same length, so the WebSocket frame stays
/// whole): an event this client cannot decode. (An unknown presence name
/// would decode, as `Other`: see [`NEWER_HUB`].) Then [`PASS`].
pub const GARBLE_PRESENCE: u8 = 4;
/// Every hub → client chunk is rewritten as a newer hub would speak: an SMS
/// is on `rcs`, Available is `in_a_call`, an alert is a `popup`, the wait
/// time detail is `sentiment`, an agent is a `guest` (values this client
/// does not know; same lengths, so WebSocket frames stay whole). Stays on.
pub const NEWER_HUB: u8 = 5;

/// What [`NEWER_HUB`] replaces, and with what.
const NEWER_VALUES: [(&[u8], &[u8]); 6] = [
    (br#""channel":"sms""#, br#""channel":"rcs""#),
    (
        br#""scenario":"incoming_sms""#,
        br#""scenario":"incoming_rcs""#,
    ),
    (br#""presence":"available""#, br#""presence":"in_a_call""#),
    (br#""kind":"alert""#, br#""kind":"popup""#),
    (br#""wait_time""#, br#""sentiment""#),
    (br#""role":"agent""#, br#""role":"guest""#),
];

/// Replaces every `from` in `chunk` by `to` (of the same length).
fn rewrite(chunk: &mut [u8], from: &[u8], to: &[u8]) {
    let mut at = 0;
    while let Some(i) = chunk[at..].windows(from.len()).position(|w| w == from) {
        chunk[at + i..at + i + to.len()].copy_from_slice(to);
        at += i + to.len();
    }
}

/// Link shaping applied to every forwarded chunk, both directions.
#[derive(Default)]
pub struct Shape {
    /// Added one-way latency, in milliseconds: each chunk is forwarded
    /// this long after it was read (a delay line; throughput unchanged).
    pub delay_ms: std::sync::atomic::AtomicU64,
    /// Bandwidth limit in bytes per second (0: unlimited).
    pub bytes_per_sec: std::sync::atomic::AtomicU64,
}

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let shape: Arc<Shape> = Arc::default();
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (m, c, sh) = (mode.clone(), conns.clone(), shape.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((down, _)) = listener.accept().await else {
                    return;
                };
                if m.load(Ordering::SeqCst) == DOWN {
                    drop(down);
                    continue;
                }
                let Ok(up) = TcpStream::connect(target).await else {
                    continue;
                };
                let m2 = m.clone();
                let h = tokio::spawn(pipe(down, up, m2, sh.clone()));
                c.lock().unwrap().push(h.abort_handle());
            }
        });
        Proxy {
            addr,
            mode,
            shape,
            conns,
            task,
        }
    }

    pub fn endpoint(&self) -> HubEndpoint {
        HubEndpoint::new(format!("http://{}", self.addr))
    }

    pub fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    /// The current mode.
    pub fn mode(&self) -> u8 {
        self.mode.load(Ordering::SeqCst)
    }

    /// Adds one-way latency to every chunk (0 removes it).
    pub fn set_delay(&self, ms: u64) {
        self.shape.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Limits each direction to `bytes_per_sec` (0 removes the limit).
    pub fn set_bandwidth(&self, bytes_per_sec: u64) {
        self.shape
            .bytes_per_sec
            .store(bytes_per_sec, Ordering::SeqCst);
    }

    /// Drops every live connection (the peers see a reset / EOF).
    pub fn cut(&self) {
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

async fn pipe(a: TcpStream, b: TcpStream, mode: Arc<AtomicU8>, shape: Arc<Shape>) {
    // Linger 0: dropping a socket sends RST, as a crashed peer or a
    // middlebox reset would.
    #[allow(deprecated)]
    let _ = a.set_linger(Some(Duration::ZERO));
    #[allow(deprecated)]
    let _ = b.set_linger(Some(Duration::ZERO));
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    tokio::select! {
        _ = one_way(ar, bw, mode.clone(), shape.clone(), false) => {}
        _ = one_way(br, aw, mode, shape, true) => {}
    }
}

/// Forwards one direction through a delay line: a reader stamps each chunk
/// with its due time, a writer forwards it then, paced by the bandwidth
/// limit. `downstream` (hub → client) is where a mid-frame reset happens.
async fn one_way(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: Arc<AtomicU8>,
    shape: Arc<Shape>,
    downstream: bool,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let delay = shape.clone();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let due = tokio::time::Instant::now()
                + Duration::from_millis(delay.delay_ms.load(Ordering::SeqCst));
            if tx.send((due, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            let bps = shape.bytes_per_sec.load(Ordering::SeqCst);
            if bps > 0 {
                tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / bps as f64)).await;
            }
            let m = mode.load(Ordering::SeqCst);
            let reset_here = m == RESET_MID_FRAME
                && downstream
                && mode
                    .compare_exchange(RESET_MID_FRAME, PASS, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
            if reset_here {
                // Part of a frame, then a reset.
                let _ = to.write_all(&chunk[..chunk.len().div_ceil(2)]).await;
                return;
            }
            let mut chunk = chunk;
            if downstream && mode.load(Ordering::SeqCst) == GARBLE_PRESENCE {
                let pattern = br#""presence":"busy""#;
                if let Some(at) = chunk.windows(pattern.len()).position(|w| w == pattern) {
                    chunk[at + pattern.len() - 6..at + pattern.len()].copy_from_slice(b"123456");
                    mode.store(PASS, Ordering::SeqCst);
                }
            }
            if downstream && mode.load(Ordering::SeqCst) == NEWER_HUB {
                for (from, to) in NEWER_VALUES {
                    rewrite(&mut chunk, from, to);
                }
            }
            let m = mode.load(Ordering::SeqCst);
            if (m == PASS || m == RESET_MID_FRAME || m == GARBLE_PRESENCE || m == NEWER_HUB)
                && to.write_all(&chunk).await.is_err()
            {
                return;
            }
            // BLACKHOLE and DOWN swallow the bytes.
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
}

/// True for the full reliability suites (`SWITCHBOARD_FULL=1`); CI runs the
/// short forms.
/// Opens the cache the client under test uses and makes `event` on it
/// (e.g. `INSERT ON outbox`) fail as a full disk would, through a trigger
/// named `name`. The pool is for lifting it (`DROP TRIGGER name`).
pub async fn fail_cache_writes(cache: &Path, name: &str, event: &str) -> sqlx::SqlitePool {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", cache.display()))
        .await
        .unwrap();
    sqlx::query(&format!(
        "CREATE TRIGGER {name} BEFORE {event} BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    ))
    .execute(&pool)
    .await
    .unwrap();
    pool
}

pub fn full() -> bool {
    std::env::var("SWITCHBOARD_FULL").is_ok_and(|v| v == "1")
}

/// The `switchboard-hub` binary next to this package's binaries; built on
/// demand when only this package was built.
pub async fn hub_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_switchboard-agent")).with_file_name("switchboard-hub");
    if !path.exists() {
        let status = tokio::process::Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .args([
                "build",
                "-q",
                "-p",
                "switchboard-hub",
                "--bin",
                "switchboard-hub",
            ])
            .status()
            .await
            .unwrap();
        assert!(status.success(), "building switchboard-hub failed");
    }
    path
}

/// A hub in its own process, so that it can be killed with SIGKILL and
/// restarted on the same port and SQLite file.
pub struct HubProcess {
    pub child: tokio::process::Child,
    pub url: String,
    pub config_path: PathBuf,
}

impl HubProcess {
    pub async fn start(config: &HubConfig, dir: &Path) -> HubProcess {
        init();
        let config_path = dir.join("hub.toml");
        std::fs::write(&config_path, toml::to_string(config).unwrap()).unwrap();
        let (child, url) = Self::spawn(&config_path, None).await;
        HubProcess {
            child,
            url,
            config_path,
        }
    }

    async fn spawn(config: &Path, listen: Option<&str>) -> (tokio::process::Child, String) {
        use tokio::io::AsyncBufReadExt;
        let bin = hub_binary().await;
        for _ in 0..50 {
            let mut cmd = tokio::process::Command::new(&bin);
            cmd.arg("--config").arg(config);
            if let Some(l) = listen {
                cmd.args(["--listen", l]);
            }
            let mut child = cmd
                .env("RUST_LOG", "warn,sqlx=warn")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
            let url = tokio::time::timeout(PATIENCE, async {
                while let Ok(Some(l)) = lines.next_line().await {
                    if let Some(u) = l.strip_prefix("switchboard-hub listening on ") {
                        return Some(u.trim().to_owned());
                    }
                }
                None
            })
            .await
            .ok()
            .flatten();
            if let Some(url) = url {
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return (child, url);
            }
            // The port may still be held for a moment after a kill.
            let _ = child.kill().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("switchboard-hub did not start");
    }

    pub fn endpoint(&self) -> HubEndpoint {
        HubEndpoint::new(self.url.clone())
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.url.trim_start_matches("http://").parse().unwrap()
    }

    /// SIGKILL: no shutdown, no close frames, no flush.
    pub async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }

    /// Starts again on the same port and database.
    pub async fn restart(&mut self) {
        let listen = self.addr().to_string();
        let (child, url) = Self::spawn(&self.config_path, Some(&listen)).await;
        self.child = child;
        self.url = url;
    }

    pub async fn ingress(&self, thread: &str, text: &str) -> IngressResponse {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/ingress/messages", self.url))
            .bearer_auth(INGRESS)
            .json(&serde_json::json!({
                "channel": "whatsapp", "thread": thread, "customer_name": "Proc", "text": text
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}
