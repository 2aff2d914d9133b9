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
use switchboard_protocol::{AgentId, Channel};
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

    pub fn running(&self) -> &RunningHub {
        self.running.as_ref().unwrap()
    }

    pub fn hub(&self) -> &switchboard_hub::Hub {
        &self.running().hub
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.running().addr
    }

    pub fn endpoint(&self) -> HubEndpoint {
        HubEndpoint::new(self.running().http_url())
    }

    pub async fn restart(&mut self) {
        let old = self.running.take().unwrap();
        let addr = old.addr;
        old.shutdown().await;
        self.config.server.listen = addr;
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

    pub async fn act(&self, action: AgentAction) {
        self.handle.input(Input::Agent(action)).await.unwrap();
    }

    pub async fn stop(self) {
        self.handle.shutdown().await;
        let _ = self.task.await;
    }
}

/// A TCP proxy between client and hub that can cut, blackhole or refuse.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    mode: Arc<AtomicU8>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

pub const PASS: u8 = 0;
/// Bytes are swallowed in both directions; sockets stay open (half-open
/// link, as after a network drop without FIN/RST).
pub const BLACKHOLE: u8 = 1;
/// New connections are closed at once.
pub const DOWN: u8 = 2;

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (m, c) = (mode.clone(), conns.clone());
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
                let h = tokio::spawn(pipe(down, up, m2));
                c.lock().unwrap().push(h.abort_handle());
            }
        });
        Proxy {
            addr,
            mode,
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

async fn pipe(a: TcpStream, b: TcpStream, mode: Arc<AtomicU8>) {
    let (mut ar, mut aw) = a.into_split();
    let (mut br, mut bw) = b.into_split();
    let m1 = mode.clone();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match ar.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if m1.load(Ordering::SeqCst) == PASS && bw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match br.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if mode.load(Ordering::SeqCst) == PASS && aw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
