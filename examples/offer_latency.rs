//! Benchmark 1, offer → OS notification latency (a program, not a test).
//!
//! A real hub in-process, the real client runtime and engine, the app's
//! real notification adapter (`notify::spawn`, freedesktop over zbus), and a
//! test `org.freedesktop.Notifications` server on the session bus that
//! timestamps each `Notify` call. Run it on a private bus:
//!
//! ```text
//! dbus-run-session -- cargo run --release --example offer_latency [-- --quick]
//! ```
//!
//! Per offer it records
//! - **end to end**: customer message handed to the hub's ingress → `Notify`
//!   received (hub transaction, routing, WebSocket, client, adapter, D-Bus);
//! - **hub emits → Notify**: the offer frame read by a bare observer socket
//!   of the same agent → `Notify` received (what the client path adds).
//!
//! Floor (same run): a bare WebSocket echo of an offer-sized frame on
//! loopback plus one D-Bus `Notify` call to the same server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use switchboard_client::engine::{Effect, Engine, NotificationKey};
use switchboard_client::{AgentAction, ClientOptions, EffectSink, HubEndpoint, Input};
use switchboard_desktop::notify::{self, NotifyCommand};
use switchboard_hub::testkit::{base_config, PASSWORD};
use switchboard_protocol::rest::IngressMessage;
use switchboard_protocol::{
    decode_server_frame, encode, AgentEvent, ClientFrame, ClientInfo, Hello, OfferId, Scenario,
    ServerFrame, PROTOCOL_VERSION,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Records when each `Notify` call arrives.
struct Server {
    arrived: mpsc::UnboundedSender<(Instant, String)>,
    next: u32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
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
        _body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let _ = self.arrived.send((Instant::now(), summary));
        if replaces_id != 0 {
            return replaces_id;
        }
        self.next += 1;
        self.next
    }

    fn close_notification(&mut self, _id: u32) {}

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "bench".into(),
            "switchboard".into(),
            "1".into(),
            "1.2".into(),
        )
    }
}

/// Hands notifications to the real adapter and remembers offer ids.
struct Sink {
    notifier: mpsc::UnboundedSender<NotifyCommand>,
    offers: Arc<Mutex<Vec<OfferId>>>,
}

impl EffectSink for Sink {
    fn perform(&mut self, effect: Effect, _engine: &Engine) {
        match effect {
            Effect::Notify(n) => {
                if let NotificationKey::Offer(id) = n.key {
                    if let Ok(mut o) = self.offers.lock() {
                        o.push(id);
                    }
                }
                let _ = self.notifier.send(NotifyCommand::Show(n));
            }
            Effect::CloseNotification(k) => {
                let _ = self.notifier.send(NotifyCommand::Close(k));
            }
            _ => {}
        }
    }
}

fn stats(label: &str, v: &[Duration]) -> Option<Duration> {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        println!("  {label}: no samples");
        return None;
    }
    let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  {label:<46} n={:<5} min={:>7.3} ms  median={:>7.3} ms  p99={:>7.3} ms  max={:>7.3} ms",
        s.len(),
        ms(s[0]),
        ms(rank(0.5)),
        ms(rank(0.99)),
        ms(s[s.len() - 1])
    );
    Some(rank(0.99))
}

/// Bare WebSocket echo on loopback + one D-Bus Notify call, `n` times.
async fn floor(n: usize, frame: String) -> anyhow::Result<Vec<Duration>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Ok((s, _)) = listener.accept().await {
            if let Ok(mut ws) = tokio_tungstenite::accept_async(s).await {
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() && ws.send(m).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}")).await?;
    let conn = zbus::Connection::session().await?;
    let proxy = zbus::Proxy::new(
        &conn,
        "org.freedesktop.Notifications",
        "/org/freedesktop/Notifications",
        "org.freedesktop.Notifications",
    )
    .await?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        ws.send(WsMessage::text(frame.clone())).await?;
        let _echo = ws.next().await;
        let hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
        let _id: u32 = proxy
            .call(
                "Notify",
                &(
                    "floor",
                    0u32,
                    "",
                    "Incoming SMS from Floor",
                    "body",
                    vec!["accept", "Accept"],
                    hints,
                    0i32,
                ),
            )
            .await?;
        out.push(t0.elapsed());
    }
    Ok(out)
}

/// A customer message for the ingress (built from JSON so that optional
/// fields added to the wire type later need no change here).
fn message(
    channel: &str,
    thread: impl Into<String>,
    name: impl Into<String>,
    text: impl Into<String>,
) -> IngressMessage {
    serde_json::from_value(serde_json::json!({
        "channel": channel,
        "thread": thread.into(),
        "customer_name": name.into(),
        "text": text.into(),
    }))
    .expect("a valid ingress message")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var("SWITCHBOARD_BENCH_QUICK").is_ok_and(|v| v == "1");
    let n = if quick { 100 } else { 1000 };
    anyhow::ensure!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "run under dbus-run-session (a private session bus)"
    );

    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let _server = zbus::connection::Builder::session()?
        .name("org.freedesktop.Notifications")?
        .serve_at(
            "/org/freedesktop/Notifications",
            Server {
                arrived: arrived_tx,
                next: 0,
            },
        )?
        .build()
        .await?;

    let dir = tempfile::tempdir()?;
    let mut config = base_config(dir.path());
    if let Some(t) = config.queues[0].templates.get_mut(&Scenario::IncomingSms) {
        t.timeout_secs = Some(600);
    }
    let running = switchboard_hub::start(config).await?;
    let hub = running.hub.clone();
    let endpoint = HubEndpoint::new(running.http_url());
    let token = endpoint.login("a1", PASSWORD).await?.token;

    // The observer: a bare socket of the same agent, timestamping offers.
    let observed: Arc<Mutex<HashMap<OfferId, Instant>>> = Arc::default();
    let (mut ws, _) = tokio_tungstenite::connect_async(endpoint.ws_url()).await?;
    ws.send(WsMessage::text(encode(&ClientFrame::Hello(Hello {
        versions: vec![PROTOCOL_VERSION],
        token: token.clone(),
        resume: None,
        client: ClientInfo {
            name: "observer".into(),
            version: "0".into(),
        },
    }))))
    .await?;
    let mut offer_frame = String::new();
    let (frame_tx, mut frame_rx) = mpsc::unbounded_channel::<String>();
    {
        let observed = observed.clone();
        tokio::spawn(async move {
            let mut first = true;
            while let Some(Ok(m)) = ws.next().await {
                if let WsMessage::Text(t) = m {
                    if let Ok(ServerFrame::Event(e)) = decode_server_frame(&t) {
                        if let AgentEvent::OfferCreated { offer } = e.event {
                            let at = Instant::now();
                            if let Ok(mut o) = observed.lock() {
                                o.insert(offer.id, at);
                            }
                            if first {
                                let _ = frame_tx.send(t.to_string());
                                first = false;
                            }
                        }
                    }
                }
            }
        });
    }

    let (clicked_tx, _clicked_rx) = mpsc::unbounded_channel();
    // The test server has `actions`: nothing goes to the fallback window.
    let (fallback_tx, _fallback_rx) = mpsc::unbounded_channel();
    let notifier = notify::spawn(
        clicked_tx,
        fallback_tx,
        Box::new(|| false),
        dir.path().join("notifications.json"),
    );
    let offers: Arc<Mutex<Vec<OfferId>>> = Arc::default();
    let (client, _task, _) = switchboard_client::spawn(
        ClientOptions::new(endpoint.clone(), token, dir.path().join("client.db")),
        Sink {
            notifier,
            offers: offers.clone(),
        },
    )
    .await?;
    client.input(Input::Focus(false)).await?;

    let mut end_to_end = Vec::with_capacity(n);
    let mut after_hub = Vec::with_capacity(n);
    // A few unmeasured rounds warm caches and connections.
    let warmup = 20;
    for i in 0..(n + warmup) {
        // Start from a quiet client.
        tokio::time::sleep(Duration::from_millis(3)).await;
        while arrived.try_recv().is_ok() {}
        let t0 = Instant::now();
        let r = hub
            .ingress(message(
                "sms",
                format!("lat{i}"),
                format!("Customer {i}"),
                "hello",
            ))
            .await?;
        let want = format!("Customer {i}");
        let t1 = loop {
            let (at, summary) = tokio::time::timeout(Duration::from_secs(10), arrived.recv())
                .await?
                .ok_or_else(|| anyhow::anyhow!("notification server gone"))?;
            if summary.contains(&want) {
                break at;
            }
        };
        let offer_id = loop {
            if let Some(id) = offers.lock().ok().and_then(|o| o.last().copied()) {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        if i >= warmup {
            end_to_end.push(t1.saturating_duration_since(t0));
            if let Some(h) = observed.lock().ok().and_then(|o| o.get(&offer_id).copied()) {
                after_hub.push(t1.saturating_duration_since(h));
            }
        }
        if offer_frame.is_empty() {
            if let Ok(f) = frame_rx.try_recv() {
                offer_frame = f;
            }
        }
        // Accept and close so the agent has room for the next offer.
        client
            .input(Input::Agent(AgentAction::Accept { offer_id }))
            .await?;
        let conv = r.conversation_id;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !client
            .query(move |e| e.state().conversations.contains_key(&conv))
            .await?
        {
            anyhow::ensure!(Instant::now() < deadline, "accept did not land");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        client
            .input(Input::Agent(AgentAction::Close {
                conversation_id: conv,
            }))
            .await?;
        while client
            .query(move |e| e.state().conversations.contains_key(&conv))
            .await?
        {
            anyhow::ensure!(Instant::now() < deadline, "close did not land");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    if offer_frame.is_empty() {
        offer_frame = "x".repeat(900);
    }
    let floor = floor(n, offer_frame.clone()).await?;

    println!(
        "== offer → OS notification latency, {n} offers (offer frame {} bytes)",
        offer_frame.len()
    );
    let f99 = stats("floor: WS echo + one D-Bus Notify call", &floor);
    let e99 = stats("end to end: ingress → Notify received", &end_to_end);
    let h99 = stats("hub emits (observer frame) → Notify received", &after_hub);
    for (label, p) in [("end to end", e99), ("hub emits → Notify", h99)] {
        if let (Some(p), Some(f)) = (p, f99) {
            let ratio = p.as_secs_f64() / f.as_secs_f64().max(1e-9);
            println!(
                "  {label}: p99 {:.3} ms, {ratio:.2}x floor p99; target p99 <= 2 ms: {}; <= 3x floor: {}",
                p.as_secs_f64() * 1000.0,
                if p <= Duration::from_millis(2) { "met" } else { "MISSED" },
                if ratio <= 3.0 { "met" } else { "MISSED" }
            );
        }
    }
    client.shutdown().await;
    running.shutdown().await;
    Ok(())
}
