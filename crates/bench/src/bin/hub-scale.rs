//! Benchmark 5, hub scale: N concurrent agent WebSocket connections to a hub
//! process, with offers flowing. Prints the hub's memory per connection and
//! the offer delivery latency (customer message posted to the ingress →
//! `offer_created` frame read by the agent's socket).
//!
//! Floor (same run): the same measurement with a single agent connected.
//!
//! Usage: `hub-scale [--quick] [--agents 1000,5000] [--offers 1000] [--rate 100]`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use switchboard_bench::{cheap_password_hash, init, memory, quick, HubProcess, Stats};
use switchboard_hub::config::AgentConfig;
use switchboard_hub::testkit::{base_config, INGRESS, PASSWORD};
use switchboard_protocol::{
    decode_server_frame, encode, AgentEvent, ClientFrame, ClientInfo, ConversationId, Hello, Role,
    Scenario, ServerFrame, PROTOCOL_VERSION,
};
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Arrivals = Arc<Mutex<HashMap<ConversationId, Instant>>>;

struct Outcome {
    agents: usize,
    mem_per_conn_kib: f64,
    hub_rss_kib: u64,
    stats: Option<Stats>,
    delivered: usize,
    offers: usize,
    connect_secs: f64,
}

async fn run(agents: usize, offers: usize, rate: f64) -> anyhow::Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let mut config = base_config(dir.path());
    // Pings are not what is measured; one silent minute is fine.
    config.protocol.heartbeat_interval_ms = 120_000;
    config.protocol.hello_timeout_ms = 60_000;
    // SMS offers wait long enough that none expires during the run.
    if let Some(t) = config.queues[0].templates.get_mut(&Scenario::IncomingSms) {
        t.timeout_secs = Some(3600);
    }
    config.agents.retain(|a| a.role != Role::Agent);
    let hash = cheap_password_hash(PASSWORD)?;
    for i in 0..agents {
        config.agents.push(AgentConfig {
            username: format!("b{i}"),
            display_name: None,
            password: None,
            password_hash: Some(hash.clone()),
            role: Role::Agent,
            team: Some("T".into()),
            capacity: 1000,
        });
    }
    let hub = HubProcess::start(&config, dir.path()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = memory(hub.pid()).context("hub memory")?;
    let endpoint = switchboard_client::HubEndpoint::new(hub.http_url.clone());
    let ws_url = endpoint.ws_url();

    // Log in and connect every agent (bounded concurrency).
    let started = Instant::now();
    let arrivals: Arrivals = Arc::default();
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    let mut joins = Vec::new();
    for i in 0..agents {
        let (endpoint, ws_url, arrivals, sem) = (
            endpoint.clone(),
            ws_url.clone(),
            arrivals.clone(),
            sem.clone(),
        );
        joins.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await?;
            let token = endpoint.login(&format!("b{i}"), PASSWORD).await?.token;
            let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str()).await?;
            ws.send(WsMessage::text(encode(&ClientFrame::Hello(Hello {
                versions: vec![PROTOCOL_VERSION],
                token,
                resume: None,
                client: ClientInfo {
                    name: "hub-scale".into(),
                    version: "0".into(),
                },
            }))))
            .await?;
            // Welcome then snapshot: connected.
            let mut seen = 0;
            while seen < 2 {
                match ws.next().await {
                    Some(Ok(WsMessage::Text(t))) => {
                        if let Ok(ServerFrame::Welcome(_) | ServerFrame::Snapshot { .. }) =
                            decode_server_frame(&t)
                        {
                            seen += 1;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => anyhow::bail!("agent b{i}: connection ended: {other:?}"),
                }
            }
            drop(permit);
            let reader = tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if let WsMessage::Text(t) = m {
                        if let Ok(ServerFrame::Event(e)) = decode_server_frame(&t) {
                            if let AgentEvent::OfferCreated { offer } = e.event {
                                let at = Instant::now();
                                if let Ok(mut a) = arrivals.lock() {
                                    a.entry(offer.conversation.id).or_insert(at);
                                }
                            }
                        }
                    }
                }
            });
            Ok::<_, anyhow::Error>(reader)
        }));
    }
    let mut readers = Vec::new();
    for j in joins {
        readers.push(j.await??);
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = memory(hub.pid()).context("hub memory")?;
    let mem_per_conn_kib = (after.rss_kib as f64 - before.rss_kib as f64) / agents.max(1) as f64;

    // Offers flow at a fixed rate; each customer thread is a new
    // conversation, routed to one agent.
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/ingress/messages", hub.http_url);
    let sent: Arc<Mutex<HashMap<ConversationId, Instant>>> = Arc::default();
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut tick = tokio::time::interval(period);
    let mut posts = Vec::new();
    for i in 0..offers {
        tick.tick().await;
        let (http, url, sent) = (http.clone(), url.clone(), sent.clone());
        posts.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let r = http
                .post(&url)
                .bearer_auth(INGRESS)
                .json(&serde_json::json!({
                    "channel": "sms", "thread": format!("s{i}"),
                    "customer_name": "Scale", "text": "hello"
                }))
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "ingress: {}", r.status());
            let body: switchboard_protocol::rest::IngressResponse = r.json().await?;
            if let Ok(mut s) = sent.lock() {
                s.insert(body.conversation_id, t0);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for p in posts {
        p.await??;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = arrivals.lock().map(|a| a.len()).unwrap_or(0);
        if got >= offers || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hub_rss_kib = memory(hub.pid()).map(|m| m.rss_kib).unwrap_or(0);
    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
    let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let samples: Vec<Duration> = sent
        .iter()
        .filter_map(|(c, t0)| arrivals.get(c).map(|t1| t1.saturating_duration_since(*t0)))
        .collect();
    for r in readers {
        r.abort();
    }
    Ok(Outcome {
        agents,
        mem_per_conn_kib,
        hub_rss_kib,
        stats: Stats::of(&samples),
        delivered: samples.len(),
        offers,
        connect_secs,
    })
}

fn report(o: &Outcome, label: &str) {
    println!(
        "  agents={:<5} connected in {:.1} s; hub RSS now {:.1} MiB; memory per connection {:.1} KiB; offers delivered {}/{}",
        o.agents,
        o.connect_secs,
        o.hub_rss_kib as f64 / 1024.0,
        o.mem_per_conn_kib,
        o.delivered,
        o.offers
    );
    match &o.stats {
        Some(s) => println!("  {}", s.line(label)),
        None => println!("  {label}: no offers delivered"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init();
    let quick = quick();
    let sizes: Vec<usize> = switchboard_bench::arg::<String>("--agents")
        .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_else(|| if quick { vec![200] } else { vec![1000, 5000] });
    let offers = switchboard_bench::arg("--offers").unwrap_or(if quick { 200 } else { 1000 });
    let rate: f64 = switchboard_bench::arg("--rate").unwrap_or(100.0);
    println!("== hub scale: offers at {rate}/s, {offers} per size; latency = ingress POST → offer frame at the agent's socket");
    let floor = run(1, offers.min(300), rate).await?;
    report(&floor, "floor (1 agent connected)");
    for n in sizes {
        let o = run(n, offers, rate).await?;
        report(&o, &format!("offer delivery, {n} agents"));
        if let (Some(s), Some(f)) = (&o.stats, &floor.stats) {
            println!(
                "  target p99 <= 50 ms at 5000: p99 {:.2} ms ({:.1}x floor p99) -> {}",
                switchboard_bench::ms(s.p99),
                s.p99.as_secs_f64() / f.p99.as_secs_f64().max(1e-9),
                if s.p99 <= Duration::from_millis(50) {
                    "met"
                } else {
                    "MISSED"
                }
            );
        }
    }
    Ok(())
}
