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

/// The OS time zone of the test desktop: UTC+05:30.
pub const E2E_TZ: &str = "<+0530>-5:30";
/// [`E2E_TZ`]'s offset, minutes.
pub const E2E_TZ_MINUTES: i64 = 330;

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
    config: switchboard_hub::HubConfig,
}

/// A hub [`Hub::stop`] stopped: its database stays, and
/// [`StoppedHub::start`] brings it back on the same address.
pub struct StoppedHub {
    dir: tempfile::TempDir,
    config: switchboard_hub::HubConfig,
}

impl StoppedHub {
    pub fn addr(&self) -> std::net::SocketAddr {
        self.config.server.listen
    }

    pub async fn start(self) -> Hub {
        for _ in 0..50 {
            if let Ok(running) = switchboard_hub::start(self.config.clone()).await {
                return Hub {
                    running,
                    dir: self.dir,
                    config: self.config,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the hub did not start again on {}",
            self.config.server.listen
        );
    }
}

impl Hub {
    pub async fn start() -> Hub {
        Self::start_with(|_| {}).await
    }

    /// A hub for tests that restart the app: its owner-away grace is long
    /// enough that a slow restart on a loaded machine (CI once took 2.4 s
    /// against the usual 2 s) does not reroute the conversations away.
    /// Rerouting itself is tested in the hub and client suites.
    pub async fn start_for_restarts() -> Hub {
        Self::start_with(|c| c.routing.disconnected_grace_secs = 120).await
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
        let running = switchboard_hub::start(config.clone()).await.unwrap();
        Hub {
            running,
            dir,
            config,
        }
    }

    /// Stops the hub; its database stays for [`StoppedHub::start`].
    pub async fn stop(self) -> StoppedHub {
        let mut config = self.config;
        config.server.listen = self.running.addr;
        self.running.shutdown().await;
        StoppedHub {
            dir: self.dir,
            config,
        }
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
                message_id: None,
            })
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

/// A listener on a stopped hub's address that accepts connections and
/// never answers, as a hub behind a balancer that holds them. Dropping it
/// frees the address (and closes what it held).
pub struct SilentListener {
    task: tokio::task::JoinHandle<()>,
}

impl SilentListener {
    pub async fn start(addr: std::net::SocketAddr) -> SilentListener {
        let mut bound = None;
        for _ in 0..50 {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    bound = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = bound.expect("the hub's address is free again");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        SilentListener { task }
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A free port for tauri-driver and WebKitWebDriver to listen on, below
/// the kernel's ephemeral range (32768–60999 by default). A port the
/// kernel hands out as free (`bind(0)`) comes from that range, and any
/// outgoing connection may take it before the driver binds it (seen in
/// CI: "Unable to listen for HTTP server", and no session).
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    // Runs one after another start apart (one test binary per test).
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 7) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
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
    /// More variables for what runs on this desktop (a test's own knobs).
    pub extra_env: Vec<(String, String)>,
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
        Desk {
            root,
            extra_env: Vec::new(),
        }
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
            // Not the machine's zone, and half an hour off: message times
            // show that the app reads the OS zone (POSIX form, no tzdata).
            .env("TZ", E2E_TZ)
            // A locale with a 24-hour clock, whatever the machine's.
            .env("LANG", "C.UTF-8")
            .env_remove("LC_ALL")
            .env_remove("LC_TIME")
            // No accessibility bus on the private test bus.
            .env("NO_AT_BRIDGE", "1")
            // WebKit in a container: no GPU, no sandbox namespaces.
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        // A test's own ALSA configuration (see [`SoundCard`]).
        if self.alsa_config().exists() {
            cmd.env("ALSA_CONFIG_PATH", self.alsa_config());
        }
    }

    /// Where a test puts this desktop's ALSA configuration.
    pub fn alsa_config(&self) -> PathBuf {
        self.root.path().join("asound.conf")
    }
}

/// Marks the app's command line so a test can stop its own app and no
/// other (the app ignores arguments it does not know).
fn instance_arg(native_port: u16) -> String {
    format!("--e2e-instance={native_port}")
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
        // Only this test's app: other test runs may share the machine.
        let _ = Command::new("pkill")
            .args([
                "-f",
                &format!(
                    "{} {}",
                    env!("CARGO_BIN_EXE_switchboard"),
                    instance_arg(self.native_port)
                ),
            ])
            .status();
    }
}

/// Set (to anything) to let the app's stdout through to the test's
/// output (as the app's stderr).
pub const APP_STDOUT: &str = "SWITCHBOARD_E2E_APP_STDOUT";

impl App {
    /// Launches the app as its desktop entry does: with its launchers'
    /// environment (`switchboard_hub::allocator::LAUNCH_ENVIRONMENT`).
    pub async fn launch(desk: &Desk) -> App {
        Self::launch_binary_with(
            desk,
            env!("CARGO_BIN_EXE_switchboard"),
            &switchboard_hub::allocator::LAUNCH_ENVIRONMENT,
        )
        .await
    }

    /// Launches a Tauri binary under tauri-driver as it is (the
    /// benchmarks' bare window).
    pub async fn launch_binary(desk: &Desk, application: &str) -> App {
        Self::launch_binary_with(desk, application, &[]).await
    }

    /// Launches a Tauri binary under tauri-driver with `env` added to its
    /// environment (tauri-driver's and WebKitWebDriver's too: they pass
    /// theirs on).
    pub async fn launch_binary_with(desk: &Desk, application: &str, env: &[(&str, &str)]) -> App {
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
        cmd.envs(env.iter().copied());
        let driver = cmd
            .spawn()
            .expect("tauri-driver (cargo install tauri-driver) must be on PATH or in TAURI_DRIVER");
        // The app's log and WebKit's allocator reports
        // (`WebKitPasStatusReporter=2`, for the soak) go to stdout, which
        // the WebDriver chain drops. When asked, a wrapper sends the app's
        // stdout to its stderr, which reaches the test's output; `exec`
        // keeps the app's own binary as the process.
        let application = if std::env::var_os(APP_STDOUT).is_some() {
            let wrapper = desk.root.path().join("app-stdout-to-stderr.sh");
            std::fs::write(
                &wrapper,
                format!("#!/bin/sh\nexec '{application}' \"$@\" 1>&2\n"),
            )
            .expect("write the stdout wrapper");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
                    .expect("make the stdout wrapper executable");
            }
            wrapper.to_string_lossy().into_owned()
        } else {
            application.to_owned()
        };
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({
                "application": application,
                "args": [instance_arg(native)],
            }),
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

    /// The pid of tauri-driver; the app runs below it (via WebKitWebDriver).
    pub fn driver_pid(&self) -> u32 {
        self.driver.id()
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

    /// Clicks a button whose action closes the window the session is in
    /// (the alert window goes when its last alert is answered). A
    /// WebDriver click waits on the window after the click and fails if
    /// it is gone by then (seen in CI under load, after the click had
    /// worked), so this clicks from a script that returns at once.
    pub async fn click_closing(&self, css: &str) {
        self.el(css).await;
        let css = serde_json::to_string(css).expect("a CSS selector is a string");
        // The click runs after the script has returned: a window that closes
        // inside the script can lose WebDriver's reply ("Could not parse
        // script result", seen under load even with the click deferred).
        // So the reply is not needed: callers assert the click's effect.
        if let Err(e) = self
            .client
            .execute(
                &format!(
                    "const e = document.querySelector({css}); setTimeout(() => e.click(), 50); return null;"
                ),
                vec![],
            )
            .await
        {
            step(&format!("click_closing: no reply ({e}); the caller checks the effect"));
        }
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

    /// Runs `script` until what it returns satisfies `ok` (within
    /// [`PATIENCE`]).
    pub async fn js_until(&self, script: &str, ok: impl Fn(&serde_json::Value) -> bool) {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let v = self.js(script).await;
            if ok(&v) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{script} never matched; last {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
        self.capture(name, &["-crop", "1180x760+0+0", "+repage"])
            .await;
    }

    /// The whole screen (e.g. with the alert window in its corner).
    pub async fn screenshot_screen(&self, name: &str) {
        self.capture(name, &[]).await;
    }

    async fn capture(&self, name: &str, crop: &[&str]) {
        step(&format!("screenshot {name}"));
        // Let a just-finished transition settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let status = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::process::Command::new("import")
                .args(["-window", "root"])
                .args(crop)
                .arg(&path)
                .status(),
        )
        .await;
        match status {
            Ok(Ok(s)) if s.success() => {}
            other => panic!("screenshot {name} failed: {other:?}"),
        }
    }

    /// SIGKILL to this test's app (no shutdown code runs), like a crash.
    pub async fn kill_9(&self) {
        let pattern = format!(
            "{} {}",
            env!("CARGO_BIN_EXE_switchboard"),
            instance_arg(self.native_port)
        );
        let st = tokio::process::Command::new("pkill")
            .args(["-9", "-f", &pattern])
            .status()
            .await
            .unwrap();
        assert!(st.success(), "no app to kill");
    }

    pub async fn quit(self) {
        step("quit");
        let _ = tokio::time::timeout(PATIENCE, self.client.clone().close()).await;
        drop(self);
        // Let WebKitWebDriver and the app go.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    /// Settings: desktop notifications "Always" (under Xvfb with no window
    /// manager the window may well report focus, which would hold back
    /// the default "when not in focus" notifications).
    pub async fn notify_always(&self) {
        self.change_settings(&[("setting-desktop", "always")]).await;
    }

    /// Opens the settings (also over an alert), sets the controls (select
    /// or range) as a person would, saves.
    pub async fn change_settings(&self, values: &[(&str, &str)]) {
        self.el("[data-testid=open-settings]").await;
        self.js("document.querySelector('[data-testid=open-settings]').click(); return null;")
            .await;
        for (testid, value) in values {
            self.el(&format!("[data-testid={testid}]")).await;
            self.js(&format!(
                "const s = document.querySelector('[data-testid={testid}]'); s.value = '{value}'; \
                 s.dispatchEvent(new Event('input', {{bubbles: true}})); \
                 s.dispatchEvent(new Event('change', {{bubbles: true}})); return null;"
            ))
            .await;
        }
        self.js("document.querySelector('[data-testid=save-settings]').click(); return null;")
            .await;
        self.gone("[data-testid=save-settings]").await;
    }

    pub async fn sign_in(&self, hub_url: &str, user: &str) {
        self.sign_in_with(hub_url, user, PASSWORD).await;
    }

    pub async fn sign_in_with(&self, hub_url: &str, user: &str, password: &str) {
        self.fill("input[name=hub]", hub_url).await;
        self.fill("input[name=username]", user).await;
        self.fill("input[name=password]", password).await;
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
    /// The `suppress-sound` hint.
    pub quiet: bool,
}

#[derive(Default)]
struct Recorded {
    notified: Vec<Notified>,
    closed: Vec<u32>,
}

struct NotifyIface {
    rec: std::sync::Arc<std::sync::Mutex<Recorded>>,
    next: u32,
    caps: Vec<String>,
    /// As some services do (Budgie, linux_notification_center): a replace
    /// gets a new id, and the old one's `NotificationClosed` (reason 3)
    /// follows the reply.
    new_id_on_replace: bool,
    /// Refuses every `Notify` with an error, while owning the name.
    refuse: bool,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl NotifyIface {
    fn get_capabilities(&self) -> Vec<String> {
        self.caps.clone()
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
        #[zbus(signal_emitter)] emitter: zbus::object_server::SignalEmitter<'_>,
    ) -> zbus::fdo::Result<u32> {
        if self.refuse {
            return Err(zbus::fdo::Error::Failed("too many notifications".into()));
        }
        let id = if replaces_id != 0 && !self.new_id_on_replace {
            replaces_id
        } else {
            self.next += 1;
            self.next
        };
        if replaces_id != 0 && self.new_id_on_replace {
            let emitter = emitter.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = NotifyIface::notification_closed(&emitter, replaces_id, 3).await;
            });
        }
        let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
        let quiet = hints
            .get("suppress-sound")
            .and_then(|v| bool::try_from(v).ok())
            .unwrap_or(false);
        self.rec.lock().unwrap().notified.push(Notified {
            id,
            replaces: replaces_id,
            summary,
            body,
            actions,
            urgency,
            timeout: expire_timeout,
            quiet,
        });
        Ok(id)
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

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

/// A real Secret Service (GNOME Keyring) on the test bus, with its login
/// collection created and unlocked (as a desktop session has it), kept in
/// the desk's data dir. Stopped on drop, so the next test has none: the
/// others run without a keychain, which is the fallback they show.
pub struct Keyring {
    child: Child,
    conn: zbus::Connection,
}

type SecretStruct = (zbus::zvariant::OwnedObjectPath, Vec<u8>, Vec<u8>, String);

impl Keyring {
    pub async fn start(desk: &Desk) -> Keyring {
        use std::io::Write;
        let mut cmd = desk.command("gnome-keyring-daemon");
        cmd.args(["--foreground", "--unlock", "--components=secrets"])
            .env("XDG_RUNTIME_DIR", desk.root.path().join("runtime"))
            .stdin(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("gnome-keyring-daemon (Debian: gnome-keyring)");
        // --unlock reads the login keyring's password up to end of input.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"e2e-keyring").unwrap();
        drop(stdin);
        let conn = zbus::Connection::session().await.unwrap();
        let keyring = Keyring { child, conn };
        eventually("the Secret Service never came on the bus", || async {
            keyring.service().await.is_some()
        })
        .await;
        keyring
    }

    async fn service(&self) -> Option<zbus::Proxy<'static>> {
        let dbus = zbus::fdo::DBusProxy::new(&self.conn).await.ok()?;
        let name = zbus::names::BusName::try_from("org.freedesktop.secrets").ok()?;
        if !dbus.name_has_owner(name).await.ok()? {
            return None;
        }
        zbus::Proxy::new(
            &self.conn,
            "org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service",
        )
        .await
        .ok()
    }

    /// The secret of the item with these `service` and `username`
    /// attributes (what the keyring crate sets), if there is one.
    pub async fn secret(&self, service: &str, username: &str) -> Option<String> {
        let proxy = self.service().await.expect("the Secret Service is gone");
        let (_, session): (zbus::zvariant::OwnedValue, zbus::zvariant::OwnedObjectPath) = proxy
            .call("OpenSession", &("plain", zbus::zvariant::Value::from("")))
            .await
            .unwrap();
        let attributes =
            std::collections::HashMap::from([("service", service), ("username", username)]);
        let (unlocked, locked): (
            Vec<zbus::zvariant::OwnedObjectPath>,
            Vec<zbus::zvariant::OwnedObjectPath>,
        ) = proxy.call("SearchItems", &(attributes,)).await.unwrap();
        assert!(locked.is_empty(), "the login collection is unlocked");
        if unlocked.is_empty() {
            return None;
        }
        let secrets: std::collections::HashMap<zbus::zvariant::OwnedObjectPath, SecretStruct> =
            proxy
                .call("GetSecrets", &(unlocked, session))
                .await
                .unwrap();
        let (_, (_, _, value, _)) = secrets.into_iter().next()?;
        Some(String::from_utf8(value).unwrap())
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        NotifyServer::with_capabilities(&["actions", "body", "body-markup"]).await
    }

    /// A server announcing only these capabilities (e.g. no `actions`).
    pub async fn with_capabilities(caps: &[&str]) -> NotifyServer {
        NotifyServer::serve(caps, false, false).await
    }

    /// A server that gives a replaced notification a new id and then
    /// signals the old one closed (reason 3), as some services do.
    pub async fn with_new_ids_on_replace() -> NotifyServer {
        NotifyServer::serve(&["actions", "body", "body-markup"], true, false).await
    }

    /// A server that owns the name and refuses every notification.
    pub async fn refusing() -> NotifyServer {
        NotifyServer::serve(&["actions", "body", "body-markup"], false, true).await
    }

    async fn serve(caps: &[&str], new_id_on_replace: bool, refuse: bool) -> NotifyServer {
        let rec = std::sync::Arc::new(std::sync::Mutex::new(Recorded::default()));
        let iface = NotifyIface {
            rec: rec.clone(),
            next: 0,
            caps: caps.iter().map(|c| c.to_string()).collect(),
            new_id_on_replace,
            refuse,
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

    /// Every `Notify` call so far.
    pub fn notified(&self) -> Vec<Notified> {
        self.rec.lock().unwrap().notified.clone()
    }

    /// Whether the app closed notification `id`.
    pub fn is_closed(&self, id: u32) -> bool {
        self.rec.lock().unwrap().closed.contains(&id)
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

/// A test dock on the session bus: records every Unity LauncherEntry
/// `Update` signal (what Ubuntu's dock and KDE's task manager read for an
/// icon's count) and, when told, owns the bus name a launcher owns while
/// it runs, as a dock that starts after the app does.
pub struct Dock {
    conn: zbus::Connection,
    updates: std::sync::Arc<std::sync::Mutex<Vec<LauncherUpdate>>>,
}

/// One `Update`: the app's URI, its count and whether the count shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LauncherUpdate {
    pub app_uri: String,
    pub count: Option<i64>,
    pub count_visible: Option<bool>,
}

impl Dock {
    pub async fn listen() -> Dock {
        use futures_util::StreamExt;
        let conn = zbus::Connection::session().await.unwrap();
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface("com.canonical.Unity.LauncherEntry")
            .unwrap()
            .member("Update")
            .unwrap()
            .build();
        let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, None)
            .await
            .unwrap();
        let updates = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = updates.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Ok((app_uri, properties)) = msg.body().deserialize::<(
                    String,
                    std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
                )>() else {
                    continue;
                };
                let count = properties.get("count").and_then(|v| match &**v {
                    zbus::zvariant::Value::I64(n) => Some(*n),
                    _ => None,
                });
                let count_visible = properties.get("count-visible").and_then(|v| match &**v {
                    zbus::zvariant::Value::Bool(b) => Some(*b),
                    _ => None,
                });
                seen.lock().unwrap().push(LauncherUpdate {
                    app_uri,
                    count,
                    count_visible,
                });
            }
        });
        Dock { conn, updates }
    }

    /// Every update so far.
    pub fn updates(&self) -> Vec<LauncherUpdate> {
        self.updates.lock().unwrap().clone()
    }

    /// Waits until the launcher has been told, by an update after the
    /// first `after`, that the app's icon now shows this count (`Some(n)`)
    /// or none (`None`); returns how many updates there are then.
    pub async fn wait_count(&self, after: usize, shown: Option<i64>) -> usize {
        // The entry Tauri's bundler installs: `<productName>.desktop`.
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../../tauri.conf.json")).unwrap();
        let app_uri = format!(
            "application://{}.desktop",
            conf["productName"].as_str().unwrap()
        );
        let want = |u: &LauncherUpdate| {
            u.app_uri == app_uri
                && match shown {
                    Some(n) => u.count == Some(n) && u.count_visible == Some(true),
                    None => u.count_visible == Some(false),
                }
        };
        eventually(
            &format!("the launcher was not told count {shown:?}"),
            || async {
                let updates = self.updates();
                updates.len() > after && updates.last().is_some_and(want)
            },
        )
        .await;
        self.updates().len()
    }

    /// Owns the launcher's bus name, as a dock does when it starts.
    pub async fn start_launcher(&self) {
        self.conn
            .request_name("com.canonical.Unity")
            .await
            .expect("own com.canonical.Unity on the session bus");
    }
}

/// A node of a `com.canonical.dbusmenu` layout.
#[derive(Debug, Clone)]
pub struct MenuNode {
    pub id: i32,
    pub label: String,
    pub enabled: bool,
    pub toggle_state: Option<i32>,
    pub kind: String,
    pub children: Vec<MenuNode>,
}

impl MenuNode {
    fn parse(v: &zbus::zvariant::Value<'_>) -> Option<MenuNode> {
        use zbus::zvariant::Value;
        let v = match v {
            Value::Value(inner) => inner.as_ref(),
            v => v,
        };
        let Value::Structure(s) = v else { return None };
        let fields = s.fields();
        let id = match fields.first()? {
            Value::I32(n) => *n,
            _ => return None,
        };
        let mut node = MenuNode {
            id,
            label: String::new(),
            enabled: true,
            toggle_state: None,
            kind: "standard".into(),
            children: Vec::new(),
        };
        if let Some(Value::Dict(props)) = fields.get(1) {
            for (k, val) in props.iter() {
                let (Value::Str(k), Value::Value(val)) = (k, val) else {
                    continue;
                };
                match (k.as_str(), val.as_ref()) {
                    ("label", Value::Str(s)) => node.label = s.to_string(),
                    ("enabled", Value::Bool(b)) => node.enabled = *b,
                    ("toggle-state", Value::I32(n)) => node.toggle_state = Some(*n),
                    ("type", Value::Str(s)) => node.kind = s.to_string(),
                    _ => {}
                }
            }
        }
        if let Some(Value::Array(children)) = fields.get(2) {
            node.children = children.iter().filter_map(MenuNode::parse).collect();
        }
        Some(node)
    }

    /// Every node below (and including) this one, depth first.
    pub fn flatten(&self) -> Vec<&MenuNode> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.flatten());
        }
        out
    }

    /// The visible label (GTK mnemonics removed: `__` is a literal `_`).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut chars = self.label.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '_' {
                if chars.peek() == Some(&'_') {
                    chars.next();
                    out.push('_');
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}

#[derive(Default)]
struct Registered {
    items: Vec<(String, String)>,
}

struct WatcherIface {
    reg: std::sync::Arc<std::sync::Mutex<Registered>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl WatcherIface {
    fn register_status_notifier_item(
        &self,
        service: String,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) {
        let sender = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
        // libappindicator passes its object path; others pass a bus name.
        let (bus, path) = if service.starts_with('/') {
            (sender, service)
        } else {
            (service, "/StatusNotifierItem".to_owned())
        };
        self.reg.lock().unwrap().items.push((bus, path));
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.reg
            .lock()
            .unwrap()
            .items
            .iter()
            .map(|(b, p)| format!("{b}{p}"))
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// A test tray host: owns `org.kde.StatusNotifierWatcher` so the app's
/// StatusNotifierItem registers with it, then reads and clicks the item's
/// menu over `com.canonical.dbusmenu` like a panel would.
pub struct TrayHost {
    conn: zbus::Connection,
    reg: std::sync::Arc<std::sync::Mutex<Registered>>,
}

impl TrayHost {
    pub async fn start() -> TrayHost {
        let reg = std::sync::Arc::new(std::sync::Mutex::new(Registered::default()));
        let conn = zbus::connection::Builder::session()
            .unwrap()
            .name("org.kde.StatusNotifierWatcher")
            .unwrap()
            .serve_at("/StatusNotifierWatcher", WatcherIface { reg: reg.clone() })
            .unwrap()
            .build()
            .await
            .expect("own org.kde.StatusNotifierWatcher on the session bus");
        TrayHost { conn, reg }
    }

    /// The registered item (bus name, object path).
    pub async fn item(&self) -> (String, String) {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(i) = self.reg.lock().unwrap().items.last() {
                return i.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no tray item registered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn item_property(&self, name: &str) -> zbus::zvariant::OwnedValue {
        let (bus, path) = self.item().await;
        let proxy = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination(bus)
            .unwrap()
            .path(path)
            .unwrap()
            .build()
            .await
            .unwrap();
        let iface = zbus::names::InterfaceName::try_from("org.kde.StatusNotifierItem").unwrap();
        proxy.get(iface, name).await.unwrap()
    }

    /// The icon file the item shows (libappindicator points `IconName` at
    /// a PNG it wrote).
    pub async fn icon_path(&self) -> PathBuf {
        let name: String = self.item_property("IconName").await.try_into().unwrap();
        let p = PathBuf::from(&name);
        if p.is_absolute() {
            return p;
        }
        let dir: String = self
            .item_property("IconThemePath")
            .await
            .try_into()
            .unwrap();
        Path::new(&dir).join(format!("{name}.png"))
    }

    async fn menu_proxy(&self) -> zbus::Proxy<'static> {
        let (bus, _) = self.item().await;
        let menu: zbus::zvariant::OwnedObjectPath =
            self.item_property("Menu").await.try_into().unwrap();
        zbus::Proxy::new(&self.conn, bus, menu, "com.canonical.dbusmenu")
            .await
            .unwrap()
    }

    /// The whole menu as the panel would read it.
    pub async fn layout(&self) -> MenuNode {
        let proxy = self.menu_proxy().await;
        // (u (ia{sv}av)): the layout is recursive, so it is read as a
        // dynamic structure.
        let msg = proxy
            .call_method("GetLayout", &(0i32, -1i32, Vec::<String>::new()))
            .await
            .unwrap();
        let body = msg.body();
        let reply: zbus::zvariant::Structure = body.deserialize().unwrap();
        MenuNode::parse(&reply.fields()[1]).expect("a dbusmenu layout")
    }

    /// Waits for a menu item whose visible label satisfies `pred`.
    pub async fn wait_item(&self, what: &str, pred: impl Fn(&MenuNode) -> bool) -> MenuNode {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let layout = self.layout().await;
            if let Some(n) = layout.flatten().into_iter().find(|n| pred(n)) {
                return n.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no tray item: {what}; menu: {:#?}",
                layout
                    .flatten()
                    .iter()
                    .map(|n| n.text())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks an item like a panel does; `false` when the menu was rebuilt
    /// in between and the id is gone.
    pub async fn click(&self, id: i32) -> bool {
        let proxy = self.menu_proxy().await;
        proxy
            .call::<_, _, ()>(
                "Event",
                &(id, "clicked", zbus::zvariant::Value::I32(0), 0u32),
            )
            .await
            .is_ok()
    }

    /// Finds the item and clicks it, reading the menu again when it
    /// changed under the click (a live menu is rebuilt on every update).
    pub async fn click_item(&self, what: &str, pred: impl Fn(&MenuNode) -> bool) {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let item = self.wait_item(what, &pred).await;
            if self.click(item.id).await {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "could not click {what}"
            );
        }
    }
}

/// Reads an RGBA pixel of a PNG file.
pub fn png_pixel(path: &Path, x: u32, y: u32) -> [u8; 4] {
    try_png_pixel(path, x, y).unwrap_or_else(|| panic!("{} is gone", path.display()))
}

/// [`png_pixel`], or `None` when the file is gone: the tray writes each new
/// icon to a new file and deletes the old one, so a path read from the
/// host a moment ago may already be stale.
pub fn try_png_pixel(path: &Path, x: u32, y: u32) -> Option<[u8; 4]> {
    let file = std::fs::File::open(path).ok()?;
    Some(decode_png_pixel(file, x, y))
}

fn decode_png_pixel(file: std::fs::File, x: u32, y: u32) -> [u8; 4] {
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba, "tray icon is RGBA");
    let i = ((y * info.width + x) * 4) as usize;
    [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]
}

/// A real window manager (openbox) on the test's X display, for what only
/// a window manager does: keep-above stacking, focus, close requests.
/// Most tests run without one, like a kiosk; these opt in.
pub struct WindowManager {
    child: tokio::process::Child,
}

impl WindowManager {
    pub async fn start() -> WindowManager {
        let spawn = || {
            tokio::process::Command::new("openbox")
                .arg("--sm-disable")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("openbox (Debian package openbox)")
        };
        let mut child = spawn();
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let out = tokio::process::Command::new("xprop")
                .args(["-root", "_NET_SUPPORTING_WM_CHECK"])
                .output()
                .await
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("window id")
                && matches!(child.try_wait(), Ok(None))
            {
                return WindowManager { child };
            }
            assert!(
                std::time::Instant::now() < deadline,
                "openbox did not take the display"
            );
            // Openbox leaves at once while the previous test's window
            // manager still holds the display (its exit reaches the X
            // server a moment after the process is gone): start it again.
            if matches!(child.try_wait(), Ok(Some(_))) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                child = spawn();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks the window manager to close the window (as its close button
    /// would): the app gets a close request, not a kill.
    pub async fn close(&self, title: &str) {
        let st = tokio::process::Command::new("wmctrl")
            .args(["-c", title])
            .status()
            .await
            .expect("wmctrl");
        assert!(st.success(), "wmctrl -c {title}");
    }
}

impl Drop for WindowManager {
    fn drop(&mut self) {
        // Wait for it to be gone: the next test's window manager cannot
        // take a display this one still holds. (`--replace` instead races:
        // the old one, leaving, can delete the new one's root property.)
        let _ = self.child.start_kill();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// X11 facts about the top-level window with this exact title.
pub async fn xwininfo(title: &str) -> String {
    let out = tokio::process::Command::new("xwininfo")
        .args(["-name", title])
        .output()
        .await
        .expect("xwininfo (x11-utils)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Bytes per second of the captured audio: S16_LE, 48 kHz, stereo.
const CAPTURE_RATE: usize = 48_000 * 2 * 2;

/// A sound card for the app that records what it plays. The desktop's ALSA
/// default PCM converts to S16_LE/48 kHz/stereo (`plug`) and writes the
/// frames to a FIFO (`file`, with a `null` slave). ALSA's null device does
/// not keep time, so this side reads the FIFO at the real rate: the pipe
/// then paces the app's audio thread like a sound card would, and byte
/// offsets in the capture are playback time (silence while the app has
/// its output closed).
pub struct SoundCard {
    captured: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    in_use: std::sync::Arc<std::sync::atomic::AtomicBool>,
    dir: PathBuf,
}

impl SoundCard {
    /// Installs the card in `desk` (before the app is launched).
    pub fn install(desk: &Desk) -> SoundCard {
        let dir = desk.root.path().join("sound");
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("pcm.fifo");
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success(), "mkfifo");
        std::fs::write(
            desk.alsa_config(),
            format!(
                r#"pcm.!default {{
  type plug
  slave {{ pcm "capture" format S16_LE rate 48000 channels 2 }}
}}
pcm.capture {{
  type file
  slave.pcm "discard"
  file "{}"
  format "raw"
}}
pcm.discard {{ type null }}
"#,
                fifo.display()
            ),
        )
        .unwrap();
        let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = captured.clone();
        let in_use = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = in_use.clone();
        // Non-blocking, so the card keeps time while the app has its output
        // closed (it opens it only to play): no writer reads as end of
        // file, and the card then "plays" silence.
        let mut pipe = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .unwrap()
        };
        std::thread::spawn(move || {
            use std::io::Read;
            let start = std::time::Instant::now();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let due = (start.elapsed().as_secs_f64() * CAPTURE_RATE as f64) as usize;
                let have = sink.lock().unwrap().len();
                let want = due.saturating_sub(have).min(buf.len()) & !3;
                if want == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                match pipe.read(&mut buf[..want]) {
                    Ok(0) => {
                        writer.store(false, std::sync::atomic::Ordering::SeqCst);
                        // No writer: silence, in whole frames.
                        let mut s = sink.lock().unwrap();
                        let len = s.len();
                        s.resize((len + want) & !3, 0);
                    }
                    Ok(n) => {
                        writer.store(true, std::sync::atomic::Ordering::SeqCst);
                        sink.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        writer.store(true, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => return,
                }
            }
        });
        SoundCard {
            captured,
            in_use,
            dir,
        }
    }

    /// Whether the app has the card open now.
    pub fn in_use(&self) -> bool {
        self.in_use.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The capture position now (bytes).
    pub fn mark(&self) -> usize {
        self.captured.lock().unwrap().len() & !3
    }

    /// `sox stats` of the capture between two marks.
    pub async fn stats(&self, from: usize, to: usize) -> SoundStats {
        let raw = self.dir.join(format!("capture-{from}-{to}.raw"));
        let bytes = self.captured.lock().unwrap()[from..to].to_vec();
        assert!(
            !bytes.is_empty(),
            "nothing captured between {from} and {to}"
        );
        tokio::fs::write(&raw, bytes).await.unwrap();
        let out = tokio::process::Command::new("sox")
            .args([
                "-t", "raw", "-r", "48000", "-e", "signed", "-b", "16", "-c", "2",
            ])
            .arg(&raw)
            .args(["-n", "stats"])
            .output()
            .await
            .expect("sox");
        assert!(
            out.status.success(),
            "sox: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SoundStats::parse(
            &String::from_utf8_lossy(&out.stderr),
            (to - from) as f64 / CAPTURE_RATE as f64,
        )
    }

    /// Lets `secs` of playback be captured and returns its stats.
    pub async fn listen(&self, secs: f64) -> SoundStats {
        let from = self.mark();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let stats = self.stats(from, self.mark()).await;
        step(&format!("heard {stats:?}"));
        stats
    }
}

/// The parts of `sox stats` the tests use (overall, all channels).
#[derive(Debug)]
pub struct SoundStats {
    /// RMS level in dBFS (`-inf` for digital silence).
    pub rms_db: f64,
    /// Peak level in dBFS.
    pub peak_db: f64,
    /// Seconds of audio analysed.
    pub secs: f64,
}

impl SoundStats {
    fn parse(text: &str, secs: f64) -> SoundStats {
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l[name.len()..].split_whitespace().next())
                .map(|v| v.parse::<f64>().unwrap_or(f64::NEG_INFINITY))
                .unwrap_or_else(|| panic!("no {name} in sox stats:\n{text}"))
        };
        SoundStats {
            rms_db: field("RMS lev dB"),
            peak_db: field("Pk lev dB"),
            secs,
        }
    }

    /// Nothing audible (below -60 dBFS peak).
    pub fn silent(&self) -> bool {
        self.peak_db < -60.0
    }
}

/// Gives the X input focus to the app's main window (its title carries the
/// unread count). Works without a window manager (XSetInputFocus).
pub async fn focus_app_window() {
    let id = visible_x_window(r"^Switchboard( \([0-9]+\))?$").await;
    x_focus(&id).await;
}

/// The X ids `xdotool search <args>` finds. Asked again when the search
/// died: Debian's xdotool (3.20160805) ends on an X error, printing
/// nothing, when a window it walks is destroyed under it (fixed upstream
/// in 2021, jordansissel/xdotool#335), as the alert window is just after
/// an accept. Such a run is no answer, not "no window".
pub async fn x_windows(args: &[&str]) -> Vec<String> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let out = tokio::process::Command::new("xdotool")
            .arg("search")
            .args(args)
            .output()
            .await
            .expect("xdotool");
        let died =
            out.status.code().is_none() || String::from_utf8_lossy(&out.stderr).contains("X Error");
        if !died {
            return String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "xdotool search {args:?} kept failing: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The X id of the newest visible window whose title matches `title_regex`,
/// waiting for one.
pub async fn visible_x_window(title_regex: &str) -> String {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let found = x_windows(&["--onlyvisible", "--name", title_regex]).await;
        if let Some(id) = found.last() {
            return id.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no visible window titled {title_regex}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An `xev` window named `name` (x11-utils), shown and given the keyboard
/// focus, with its event log to `stdout`; and its X id.
async fn focused_xev(
    name: &str,
    geometry: &str,
    extra: &[&str],
    stdout: Stdio,
) -> (tokio::process::Child, String) {
    let child = tokio::process::Command::new("xev")
        .args(["-name", name, "-geometry", geometry])
        .args(extra)
        .stdout(stdout)
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("xev (Debian package x11-utils)");
    let id = visible_x_window(&format!("^{name}$")).await;
    x_focus(&id).await;
    (child, id)
}

/// Another X client's window (`xev`, from x11-utils) that takes the input
/// focus from the app while it lives. Focusing the root window is not
/// enough: GTK still counts a window under the pointer as focused.
pub struct FocusThief(tokio::process::Child, String);

impl FocusThief {
    pub async fn start() -> FocusThief {
        let name = format!("focus-thief-{}", std::process::id());
        let (child, id) = focused_xev(&name, "40x40+0+0", &[], Stdio::null()).await;
        FocusThief(child, id)
    }

    /// Takes the focus back (after the app took it).
    pub async fn steal_again(&self) {
        x_focus(&self.1).await;
    }
}

/// Another program's window (`xev`) that has the keyboard focus and
/// records the keys it gets: a key the app has grabbed never reaches it.
pub struct KeyWitness {
    _xev: tokio::process::Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl KeyWitness {
    pub async fn start() -> KeyWitness {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("xev.log");
        let name = format!("key-witness-{}", std::process::id());
        let log_file = std::fs::File::create(&log).unwrap();
        let (xev, _) = focused_xev(
            &name,
            "40x40+50+0",
            &["-event", "keyboard"],
            log_file.into(),
        )
        .await;
        KeyWitness {
            _xev: xev,
            log,
            _dir: dir,
        }
    }

    /// How many presses of the A key it got.
    pub fn a_presses(&self) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut n = 0;
        let mut in_press = false;
        for line in log.lines() {
            if line.starts_with("KeyPress event") {
                in_press = true;
            } else if line.starts_with("KeyRelease event") {
                in_press = false;
            } else if in_press
                && (line.contains("(keysym 0x41, A)") || line.contains("(keysym 0x61, a)"))
            {
                n += 1;
                in_press = false;
            }
        }
        n
    }
}

async fn x_focus(window: &str) {
    let st = tokio::process::Command::new("xdotool")
        .args(["windowfocus", window])
        .status()
        .await
        .expect("xdotool");
    assert!(st.success(), "xdotool windowfocus {window}");
}

/// The map state ("IsViewable", "IsUnMapped") of the main window, whose
/// title carries the unread count ("Switchboard (3)").
pub async fn main_window_state() -> String {
    for id in x_windows(&["--name", r"^Switchboard( \([0-9]+\))?$"]).await {
        let info = tokio::process::Command::new("xwininfo")
            .args(["-id", &id])
            .output()
            .await
            .expect("xwininfo");
        let info = String::from_utf8_lossy(&info.stdout).into_owned();
        // GTK also makes unmapped helper windows with the title; report
        // the real one if any is viewable.
        if info.contains("Map State: IsViewable") {
            return "IsViewable".into();
        }
    }
    "IsUnMapped".into()
}
