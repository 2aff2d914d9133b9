//! Desktop end-to-end support: a real hub in-process, tauri-driver +
//! WebKitWebDriver driving the real app window, with HOME, XDG dirs and the
//! data dir isolated per test. Run under `xvfb-run -a dbus-run-session`
//! (see `scripts/dev test`).

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use switchboard_hub::testkit::{base_config, INGRESS, PASSWORD};
use switchboard_hub::RunningHub;
use switchboard_protocol::rest::{IngressMessage, IngressResponse};
use switchboard_protocol::Channel;

pub const PATIENCE: Duration = Duration::from_secs(20);
pub const HOSTILE: &str = r#"<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"#;

pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info,sqlx=warn")
        .try_init();
}

pub struct Hub {
    pub running: RunningHub,
    pub dir: tempfile::TempDir,
}

impl Hub {
    pub async fn start() -> Hub {
        Self::start_with(|_| {}).await
    }

    /// A hub whose test configuration `customize` adjusts first.
    pub async fn start_with(customize: impl FnOnce(&mut switchboard_hub::HubConfig)) -> Hub {
        init();
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config(dir.path());
        customize(&mut config);
        // Plenty of time for a person (or a driver) to answer.
        for t in config.queues[0].templates.values_mut() {
            t.timeout_secs = Some(120);
        }
        let running = switchboard_hub::start(config).await.unwrap();
        Hub { running, dir }
    }

    pub fn url(&self) -> String {
        self.running.http_url()
    }

    pub async fn ingress(
        &self,
        channel: Channel,
        thread: &str,
        name: &str,
        comment: &str,
        text: &str,
    ) -> IngressResponse {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/ingress/messages", self.url()))
            .bearer_auth(INGRESS)
            .json(&IngressMessage {
                channel,
                thread: thread.into(),
                customer_name: name.into(),
                phone: None,
                email: None,
                comment: Some(comment.into()),
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tauri_driver() -> PathBuf {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(p);
    }
    PathBuf::from("tauri-driver")
}

/// An isolated desktop: its own HOME, XDG dirs and app data dir.
pub struct Desk {
    pub root: tempfile::TempDir,
}

impl Desk {
    pub fn new() -> Desk {
        let root = tempfile::tempdir().unwrap();
        for d in [
            "home", "config", "data", "cache", "state", "runtime", "app-data",
        ] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(
                root.path().join("runtime"),
                std::fs::Permissions::from_mode(0o700),
            );
        }
        Desk { root }
    }

    pub fn app_data(&self) -> PathBuf {
        self.root.path().join("app-data")
    }

    /// A command in this desktop's environment.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.env(&mut cmd);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    fn env(&self, cmd: &mut Command) {
        let r = self.root.path();
        cmd.env("HOME", r.join("home"))
            .env("XDG_CONFIG_HOME", r.join("config"))
            .env("XDG_DATA_HOME", r.join("data"))
            .env("XDG_CACHE_HOME", r.join("cache"))
            .env("XDG_STATE_HOME", r.join("state"))
            .env("SWITCHBOARD_DATA_DIR", self.app_data())
            .env("RUST_LOG", "info,sqlx=warn")
            // No accessibility bus on the private test bus.
            .env("NO_AT_BRIDGE", "1")
            // WebKit in a container: no GPU, no sandbox namespaces.
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
}

/// tauri-driver with the app under it.
pub struct App {
    driver: Child,
    native_port: u16,
    pub client: Client,
}

impl Drop for App {
    /// A failed test must not leave the app running: the next launch would
    /// only focus it (single instance).
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = Command::new("pkill")
            .args(["-f", &format!("WebKitWebDriver.*{}", self.native_port)])
            .status();
        let _ = Command::new("pkill")
            .args(["-f", env!("CARGO_BIN_EXE_switchboard")])
            .status();
    }
}

impl App {
    pub async fn launch(desk: &Desk) -> App {
        let port = free_port();
        let native = free_port();
        let mut cmd = Command::new(tauri_driver());
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        desk.env(&mut cmd);
        let driver = cmd
            .spawn()
            .expect("tauri-driver (cargo install tauri-driver) must be on PATH or in TAURI_DRIVER");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": env!("CARGO_BIN_EXE_switchboard") }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + PATIENCE;
        let client = loop {
            let mut b =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            b.capabilities(caps.clone());
            match b.connect(&url).await {
                Ok(c) => break c,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("webdriver session: {e}"),
            }
        };
        App {
            driver,
            native_port: native,
            client,
        }
    }

    pub async fn el(&self, css: &str) -> Element {
        bounded(
            &format!("find {css}"),
            self.client
                .wait()
                .at_most(PATIENCE)
                .for_element(Locator::Css(css)),
        )
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn el_within(&self, css: &str, patience: Duration) -> Element {
        bounded(
            &format!("find {css}"),
            self.client
                .wait()
                .at_most(patience)
                .for_element(Locator::Css(css)),
        )
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn gone(&self, css: &str) {
        let deadline = std::time::Instant::now() + PATIENCE;
        while bounded("find", self.client.find(Locator::Css(css)))
            .await
            .is_ok()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{css} did not go away"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self.el(css).await;
        bounded("text", e.text()).await.unwrap()
    }

    /// Waits until the element's text satisfies `pred`.
    pub async fn text_until(&self, css: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(e) = bounded("find", self.client.find(Locator::Css(css))).await {
                if let Ok(t) = bounded("text", e.text()).await {
                    if pred(&t) {
                        return t;
                    }
                }
            }
            if std::time::Instant::now() > deadline {
                let last = match self.client.find(Locator::Css(css)).await {
                    Ok(e) => e.text().await.unwrap_or_default(),
                    Err(_) => "<missing>".into(),
                };
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), self.screenshot("failure")).await;
                panic!(
                    "{css} never matched; last text {last:?}; see {}/failure.png",
                    screenshot_dir().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.el(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.el(css).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    /// Types into whatever has keyboard focus (modifier keys stay down for
    /// the rest of the string, per WebDriver).
    pub async fn keys(&self, keys: &str) {
        step(&format!("keys {keys:?}"));
        let active = bounded("active element", self.client.active_element())
            .await
            .unwrap();
        bounded("send_keys", active.send_keys(keys)).await.unwrap();
    }

    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Nothing a customer wrote ever ran or became markup.
    pub async fn assert_inert(&self) {
        let v = self
            .js("return { imgs: document.querySelectorAll('img').length, scripts: document.querySelectorAll('body script').length, xss: window.__xss === undefined ? null : window.__xss }")
            .await;
        assert_eq!(v["imgs"], 0, "{v}");
        assert_eq!(v["scripts"], 0, "{v}");
        assert!(v["xss"].is_null(), "customer text executed: {v}");
    }

    /// Captures the virtual screen (the real window as X11 draws it) with
    /// ImageMagick's `import`; WebDriver screenshots hang now and then under
    /// Xvfb.
    pub async fn screenshot(&self, name: &str) {
        step(&format!("screenshot {name}"));
        // Let a just-finished transition settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let status = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::process::Command::new("import")
                .args(["-window", "root", "-crop", "1180x760+0+0", "+repage"])
                .arg(&path)
                .status(),
        )
        .await;
        match status {
            Ok(Ok(s)) if s.success() => {}
            other => panic!("screenshot {name} failed: {other:?}"),
        }
    }

    pub async fn quit(self) {
        step("quit");
        let _ = tokio::time::timeout(PATIENCE, self.client.clone().close()).await;
        drop(self);
        // Let WebKitWebDriver and the app go.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    pub async fn sign_in(&self, hub_url: &str, user: &str) {
        self.fill("input[name=hub]", hub_url).await;
        self.fill("input[name=username]", user).await;
        self.fill("input[name=password]", PASSWORD).await;
        self.click("[data-testid=sign-in]").await;
        self.text_until("[data-testid=connection]", |t| {
            t.eq_ignore_ascii_case("online")
        })
        .await;
    }
}

/// Polls `condition` until it holds, failing with `what` after the
/// patience.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs a test step (shown with --nocapture and on failure).
pub fn step(what: &str) {
    eprintln!("[e2e] {what}");
}

/// A WebDriver call that must answer within the patience; a hang is a
/// failure with a name, not a stuck CI run.
pub async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(90), f).await {
        Ok(v) => v,
        Err(_) => panic!("webdriver call hung: {what}"),
    }
}

/// Where screenshots go: `docs/screenshots` with UPDATE_SCREENSHOTS=1,
/// else the build directory.
pub fn screenshot_dir() -> PathBuf {
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
    } else {
        std::env::temp_dir().join("switchboard-screenshots")
    }
}

/// One `Notify` call the test notification server received.
#[derive(Debug, Clone)]
pub struct Notified {
    pub id: u32,
    pub replaces: u32,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
    pub urgency: Option<u8>,
    pub timeout: i32,
}

#[derive(Default)]
struct Recorded {
    notified: Vec<Notified>,
    closed: Vec<u32>,
}

struct NotifyIface {
    rec: std::sync::Arc<std::sync::Mutex<Recorded>>,
    next: u32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl NotifyIface {
    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into(), "body-markup".into()]
    }

    #[allow(clippy::too_many_arguments)]
    fn notify(
        &mut self,
        _app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
        expire_timeout: i32,
    ) -> u32 {
        let id = if replaces_id != 0 {
            replaces_id
        } else {
            self.next += 1;
            self.next
        };
        let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
        self.rec.lock().unwrap().notified.push(Notified {
            id,
            replaces: replaces_id,
            summary,
            body,
            actions,
            urgency,
            timeout: expire_timeout,
        });
        id
    }

    fn close_notification(&mut self, id: u32) {
        self.rec.lock().unwrap().closed.push(id);
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "switchboard-test".into(),
            "switchboard".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;
}

/// A test implementation of `org.freedesktop.Notifications` on the
/// session bus: records every call and clicks buttons on demand.
pub struct NotifyServer {
    conn: zbus::Connection,
    rec: std::sync::Arc<std::sync::Mutex<Recorded>>,
}

const NOTIFY_PATH: &str = "/org/freedesktop/Notifications";

impl NotifyServer {
    pub async fn start() -> NotifyServer {
        let rec = std::sync::Arc::new(std::sync::Mutex::new(Recorded::default()));
        let iface = NotifyIface {
            rec: rec.clone(),
            next: 0,
        };
        let conn = zbus::connection::Builder::session()
            .unwrap()
            .name("org.freedesktop.Notifications")
            .unwrap()
            .serve_at(NOTIFY_PATH, iface)
            .unwrap()
            .build()
            .await
            .expect("own org.freedesktop.Notifications on the session bus");
        NotifyServer { conn, rec }
    }

    pub async fn wait(&self, what: &str, pred: impl Fn(&Notified) -> bool) -> Notified {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(n) = self.rec.lock().unwrap().notified.iter().find(|n| pred(n)) {
                return n.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no notification: {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_closed(&self, id: u32) {
        let deadline = std::time::Instant::now() + PATIENCE;
        while !self.rec.lock().unwrap().closed.contains(&id) {
            assert!(
                std::time::Instant::now() < deadline,
                "notification {id} never closed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks a button (or the body: "default").
    pub async fn invoke(&self, id: u32, action: &str) {
        let iface = self
            .conn
            .object_server()
            .interface::<_, NotifyIface>(NOTIFY_PATH)
            .await
            .unwrap();
        NotifyIface::action_invoked(iface.signal_emitter(), id, action)
            .await
            .unwrap();
    }
}

struct PortalIface {
    scheme: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

#[zbus::interface(name = "org.freedesktop.portal.Settings")]
impl PortalIface {
    fn read_one(
        &self,
        namespace: String,
        key: String,
    ) -> zbus::fdo::Result<zbus::zvariant::OwnedValue> {
        if namespace == "org.freedesktop.appearance" && key == "color-scheme" {
            Ok(zbus::zvariant::OwnedValue::from(
                self.scheme.load(std::sync::atomic::Ordering::SeqCst),
            ))
        } else {
            Err(zbus::fdo::Error::Failed("not found".into()))
        }
    }

    #[zbus(signal)]
    async fn setting_changed(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        namespace: &str,
        key: &str,
        value: zbus::zvariant::Value<'_>,
    ) -> zbus::Result<()>;
}

/// A test XDG desktop portal serving `org.freedesktop.appearance
/// color-scheme` (1 dark, 2 light) and announcing changes.
pub struct Portal {
    conn: zbus::Connection,
    scheme: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

const PORTAL_PATH: &str = "/org/freedesktop/portal/desktop";

impl Portal {
    pub async fn start(scheme: u32) -> Portal {
        let scheme = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(scheme));
        let conn = zbus::connection::Builder::session()
            .unwrap()
            .name("org.freedesktop.portal.Desktop")
            .unwrap()
            .serve_at(
                PORTAL_PATH,
                PortalIface {
                    scheme: scheme.clone(),
                },
            )
            .unwrap()
            .build()
            .await
            .expect("own org.freedesktop.portal.Desktop on the session bus");
        Portal { conn, scheme }
    }

    pub async fn set(&self, value: u32) {
        self.scheme
            .store(value, std::sync::atomic::Ordering::SeqCst);
        let iface = self
            .conn
            .object_server()
            .interface::<_, PortalIface>(PORTAL_PATH)
            .await
            .unwrap();
        PortalIface::setting_changed(
            iface.signal_emitter(),
            "org.freedesktop.appearance",
            "color-scheme",
            zbus::zvariant::Value::U32(value),
        )
        .await
        .unwrap();
    }
}
