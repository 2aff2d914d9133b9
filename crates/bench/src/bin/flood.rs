//! Benchmark 2, message flood: 20,000 customer messages across 10
//! conversations owned by one agent.
//!
//! - live: the client is connected while the hub takes the messages as fast
//!   as its ingress commits them; OS notification updates per conversation
//!   are counted (target: at most one per conversation per second).
//! - catch-up: the client is stopped, another 20,000 messages arrive, the
//!   client restarts from its cache and the hub replays them as fast as it
//!   sends; messages persisted per second through engine + store (target ≥
//!   20,000/s). Floor (same run): a bare WebSocket reader replaying the same
//!   events from the same cursor, decoding each frame and nothing else.
//!
//! In both, unread counts must equal the hub's truth exactly.
//!
//! Usage: `flood [--quick] [--messages 20000]`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use switchboard_bench::{init, quick};
use switchboard_client::engine::{Effect, Engine, NotificationKey};
use switchboard_client::{ClientOptions, EffectSink, HubEndpoint};
use switchboard_hub::testkit::{base_config, PASSWORD};
use switchboard_protocol::rest::IngressMessage;
use switchboard_protocol::{
    decode_server_frame, encode, AgentId, ClientFrame, ClientInfo, ConversationId, Hello,
    ResumeCursor, Seq, ServerFrame, PROTOCOL_VERSION,
};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Counts conversation notification updates with their times.
#[derive(Clone, Default)]
struct NotifyLog(Arc<Mutex<Vec<(ConversationId, Instant)>>>);

impl EffectSink for NotifyLog {
    fn perform(&mut self, effect: Effect, _engine: &Engine) {
        if let Effect::Notify(n) = effect {
            if let NotificationKey::Conversation(c) = n.key {
                if let Ok(mut v) = self.0.lock() {
                    v.push((c, Instant::now()));
                }
            }
        }
    }
}

impl NotifyLog {
    fn take(&self) -> Vec<(ConversationId, Instant)> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// Shortest gap between two updates of the same conversation.
fn min_gap(log: &[(ConversationId, Instant)]) -> Option<Duration> {
    let mut last: BTreeMap<ConversationId, Instant> = BTreeMap::new();
    let mut gap: Option<Duration> = None;
    for (c, t) in log {
        if let Some(prev) = last.insert(*c, *t) {
            let g = t.saturating_duration_since(prev);
            gap = Some(gap.map_or(g, |x| x.min(g)));
        }
    }
    gap
}

/// Most updates of one conversation within any one-second window.
fn max_per_second(log: &[(ConversationId, Instant)]) -> (usize, BTreeMap<ConversationId, usize>) {
    let mut by: BTreeMap<ConversationId, Vec<Instant>> = BTreeMap::new();
    for (c, t) in log {
        by.entry(*c).or_default().push(*t);
    }
    let mut worst = 0;
    let mut counts = BTreeMap::new();
    for (c, mut ts) in by {
        ts.sort();
        counts.insert(c, ts.len());
        let mut j = 0;
        for i in 0..ts.len() {
            while ts[i].duration_since(ts[j]) >= Duration::from_secs(1) {
                j += 1;
            }
            worst = worst.max(i - j + 1);
        }
    }
    (worst, counts)
}

async fn flood(hub: &Arc<switchboard_hub::Hub>, convs: &[String], n: usize) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let workers = 4;
    let mut joins = Vec::new();
    for w in 0..workers {
        let hub = hub.clone();
        let threads: Vec<String> = convs.to_vec();
        joins.push(tokio::spawn(async move {
            let mut i = w;
            while i < n {
                hub.ingress(message(
                    "whatsapp",
                    threads[i % threads.len()].clone(),
                    "Flood",
                    format!("message {i}"),
                ))
                .await?;
                i += workers;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for j in joins {
        j.await??;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

async fn check_unread(
    hub: &switchboard_hub::Hub,
    client: &switchboard_client::ClientHandle,
    convs: &[ConversationId],
) -> anyhow::Result<bool> {
    let mut ok = true;
    for c in convs {
        // The hub answers 1,000 messages per page.
        let mut truth = 0u32;
        let mut after = None;
        loop {
            let page = hub.conversation_messages(None, *c, after).await?;
            match page.last() {
                None => break,
                Some(m) => after = Some(m.id),
            }
            truth += page.len() as u32;
        }
        let c2 = *c;
        let seen = client
            .query(move |e| e.state().conversations.get(&c2).map(|v| v.unread))
            .await?;
        if seen != Some(truth) {
            println!("  UNREAD MISMATCH conversation {c:?}: client {seen:?}, hub {truth}");
            ok = false;
        }
    }
    Ok(ok)
}

async fn wait_caught_up(
    client: &switchboard_client::ClientHandle,
    target: Seq,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        if client.query(|e| e.state().last_seq).await? >= target {
            return Ok(t0.elapsed());
        }
        anyhow::ensure!(t0.elapsed() < limit, "client did not catch up in {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The floor: read and decode the replay from `cursor` up to `target`.
async fn bare_replay(
    ws_url: &str,
    token: &str,
    cursor: Seq,
    target: Seq,
) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
    ws.send(WsMessage::text(encode(&ClientFrame::Hello(Hello {
        versions: vec![PROTOCOL_VERSION],
        token: token.into(),
        resume: Some(ResumeCursor { last_seq: cursor }),
        client: ClientInfo {
            name: "bare-replay".into(),
            version: "0".into(),
        },
    }))))
    .await?;
    while let Some(m) = ws.next().await {
        if let WsMessage::Text(t) = m? {
            if let ServerFrame::Event(e) = decode_server_frame(&t)? {
                if e.seq >= target {
                    return Ok(t0.elapsed());
                }
            }
        }
    }
    anyhow::bail!("replay ended early")
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    init();
    let n: usize =
        switchboard_bench::arg("--messages").unwrap_or(if quick() { 2000 } else { 20_000 });
    let dir = tempfile::tempdir()?;
    let mut config = base_config(dir.path());
    config.protocol.event_retention = (4 * n as u64).max(10_000);
    // The client is away while the catch-up flood is ingested; its
    // conversations must stay its own meanwhile.
    config.routing.disconnected_grace_secs = 3600;
    let running = switchboard_hub::start(config).await?;
    let hub = running.hub.clone();
    let endpoint = HubEndpoint::new(running.http_url());
    let token = endpoint.login("a1", PASSWORD).await?.token;
    let a1: AgentId = hub.agent_id("a1").await?;
    let cache = dir.path().join("client.db");
    let log = NotifyLog::default();
    let start_client = |log: NotifyLog| {
        let options = ClientOptions::new(endpoint.clone(), token.clone(), cache.clone());
        switchboard_client::spawn(options, log)
    };
    let (client, task, _) = start_client(log.clone()).await?;
    // Ten WhatsApp conversations (auto-accepted in the test configuration).
    let threads: Vec<String> = (0..10).map(|i| format!("flood{i}")).collect();
    let mut convs = Vec::new();
    for t in &threads {
        let r = hub
            .ingress(message("whatsapp", t.clone(), "Flood", "open"))
            .await?;
        convs.push(r.conversation_id);
    }
    wait_caught_up(&client, hub.last_seq(a1).await?, Duration::from_secs(30)).await?;
    let owned = client.query(|e| e.state().conversations.len()).await?;
    anyhow::ensure!(
        owned == 10,
        "client owns {owned} conversations, expected 10"
    );
    log.take();

    println!("== message flood: {n} customer messages across 10 conversations, one agent");
    // Live.
    let t0 = Instant::now();
    let ingress_rate = flood(&hub, &threads, n).await?;
    let live_wait =
        wait_caught_up(&client, hub.last_seq(a1).await?, Duration::from_secs(300)).await?;
    let live_total = t0.elapsed();
    let live = log.take();
    let (worst, counts) = max_per_second(&live);
    let unread_ok = check_unread(&hub, &client, &convs).await?;
    println!(
        "  live: hub ingress committed {:.0} msg/s (the floor for a live flood); client caught up {:.0} ms after the last commit; {:.0} msg/s end to end",
        ingress_rate,
        switchboard_bench::ms(live_wait),
        n as f64 / live_total.as_secs_f64()
    );
    println!(
        "  live: OS notification updates {} in total over {:.1} s, per conversation {:?}; most for one conversation within 1 s: {} (target <= 1: {})",
        live.len(),
        live_total.as_secs_f64(),
        counts.values().collect::<Vec<_>>(),
        worst,
        if worst <= 1 { "met" } else { "MISSED" }
    );
    println!(
        "  live: shortest gap between two updates of one conversation: {:.1} ms (measured where the shell receives them)",
        min_gap(&live).map(switchboard_bench::ms).unwrap_or(f64::NAN)
    );
    println!(
        "  live: unread counts equal the hub's: {}",
        if unread_ok { "yes" } else { "NO" }
    );

    // Catch-up.
    let cursor = client.query(|e| e.state().last_seq).await?;
    client.shutdown().await;
    let _ = task.await;
    flood(&hub, &threads, n).await?;
    let target = hub.last_seq(a1).await?;
    let replayed = (target.0 - cursor.0) as f64;
    let floor = bare_replay(&endpoint.ws_url(), &token, cursor, target).await?;
    let t0 = Instant::now();
    let (client, task, _) = start_client(log.clone()).await?;
    wait_caught_up(&client, target, Duration::from_secs(300)).await?;
    let took = t0.elapsed();
    let unread_ok = check_unread(&hub, &client, &convs).await?;
    let catchup = log.take();
    let (worst2, _) = max_per_second(&catchup);
    println!(
        "  catch-up: {replayed:.0} events replayed; floor (bare WS read + decode) {:.0} ms = {:.0} events/s",
        switchboard_bench::ms(floor),
        replayed / floor.as_secs_f64()
    );
    println!(
        "  catch-up: client (open cache, connect, engine, store, ack) {:.0} ms = {:.0} messages persisted/s ({:.2}x floor time); target >= 20000/s: {}",
        switchboard_bench::ms(took),
        replayed / took.as_secs_f64(),
        took.as_secs_f64() / floor.as_secs_f64(),
        if replayed / took.as_secs_f64() >= 20_000.0 { "met" } else { "MISSED" }
    );
    println!(
        "  catch-up: OS notification updates {} (most for one conversation within 1 s: {}); unread counts equal the hub's: {}",
        catchup.len(),
        worst2,
        if unread_ok { "yes" } else { "NO" }
    );
    client.shutdown().await;
    let _ = task.await;
    running.shutdown().await;
    Ok(())
}
