//! Fault injection between client and hub (issue 7): added latency, a
//! bandwidth limit, a reset in the middle of a frame, a blackhole
//! (half-open link), and a hub killed with SIGKILL and restarted on the same
//! SQLite file. In each, a message flood runs through the fault; the client
//! must notice a broken link within its heartbeat budget, resume, and end
//! with a cache equal to the hub's truth (read over REST): nothing lost,
//! nothing duplicated.
//!
//! CI runs one round per fault; `SWITCHBOARD_FULL=1` runs five, with more
//! messages.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::*;
use switchboard_client::engine::{ConnectionStatus, Effect, UiEvent, RECENT_MESSAGES};
use switchboard_client::store::Store;
use switchboard_client::HubEndpoint;
use switchboard_protocol::{Channel, ConversationId, Seq};

/// Heartbeat interval for these hubs; a dead link must be noticed within
/// three intervals (two silent ones, seen at the next ping tick) plus
/// scheduling slack.
const HEARTBEAT_MS: u64 = 400;

fn budget() -> Duration {
    Duration::from_millis(3 * HEARTBEAT_MS + 600)
}

fn offline(e: &Effect) -> bool {
    matches!(
        e,
        Effect::Ui(UiEvent::Connection {
            status: ConnectionStatus::Offline
        })
    )
}

fn online(e: &Effect) -> bool {
    matches!(
        e,
        Effect::Ui(UiEvent::Connection {
            status: ConnectionStatus::Online
        })
    )
}

fn rounds() -> usize {
    if full() {
        5
    } else {
        1
    }
}

fn per_round() -> usize {
    if full() {
        300
    } else {
        120
    }
}

/// Waits until the client's unread counts reach the hub's message counts,
/// stops it, then compares the cache on disk with the hub's history: the
/// kept messages are exactly the newest of the hub's, in order, without
/// duplicates; unread counts are exact; and (when known) the cursor is the
/// hub's last seq.
async fn assert_cache_equals_hub(
    client: TestClient,
    endpoint: &HubEndpoint,
    token: &str,
    convs: &[ConversationId],
    hub_last: Option<Seq>,
) {
    let mut truth = Vec::new();
    for c in convs {
        // The hub answers a page at a time.
        let mut all: Vec<switchboard_protocol::Message> = Vec::new();
        loop {
            let page = endpoint
                .history(token, *c, all.last().map(|m| m.id))
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            all.extend(page);
        }
        truth.push(all);
    }
    let want: Vec<(ConversationId, u32)> = convs
        .iter()
        .zip(&truth)
        .map(|(c, t)| (*c, t.len() as u32))
        .collect();
    let w = want.clone();
    client
        .wait_state("caught up with the hub", move |e| {
            w.iter().all(|(c, n)| {
                e.state()
                    .conversations
                    .get(c)
                    .is_some_and(|v| v.unread == *n)
            }) && hub_last.is_none_or(|s| e.state().last_seq == s)
        })
        .await;
    let cache = client.cache.clone();
    client.stop().await;
    let (store, _) = Store::open(&cache).await.unwrap();
    let loaded = store.load().await.unwrap();
    store.close().await;
    for (c, t) in convs.iter().zip(&truth) {
        let v = &loaded.state.conversations[c];
        assert_eq!(v.unread as usize, t.len(), "exact unread in the cache");
        let ids: Vec<_> = v.messages.iter().map(|m| m.id).collect();
        let kept = t.len().min(RECENT_MESSAGES);
        let expect: Vec<_> = t[t.len() - kept..].iter().map(|m| m.id).collect();
        assert_eq!(ids, expect, "the newest messages, in order, once each");
    }
    if let Some(s) = hub_last {
        assert_eq!(loaded.state.last_seq, s, "cursor at the hub's last seq");
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Latency,
    Bandwidth,
    ResetMidFrame,
    Blackhole,
}

async fn through_a_faulty_link(fault: Fault) {
    let hub = TestHub::start_with(|c| {
        c.protocol.heartbeat_interval_ms = HEARTBEAT_MS;
        // A slow reconnect on a loaded machine must not hand the
        // conversations to someone else: the hub's truth stays put.
        c.routing.disconnected_grace_secs = 120;
    })
    .await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = hub.token("a1").await;
    let client =
        TestClient::start(proxy.endpoint(), token.clone(), &dir.path().join("a1.db")).await;
    let mut convs = Vec::new();
    for i in 0..3 {
        convs.push(
            hub.ingress(Channel::Whatsapp, &format!("f{i}"), "Fay", "open")
                .await
                .conversation_id,
        );
    }
    let cs = convs.clone();
    client
        .wait_state("assigned", move |e| {
            cs.iter().all(|c| e.state().conversations.contains_key(c))
        })
        .await;
    for round in 0..rounds() {
        let offline_before = client.effects.count(offline);
        let online_before = client.effects.count(online);
        match fault {
            Fault::Latency => proxy.set_delay(120),
            Fault::Bandwidth => proxy.set_bandwidth(24 * 1024),
            _ => {}
        }
        let mut broke_at = None;
        for i in 0..per_round() {
            hub.ingress(
                Channel::Whatsapp,
                &format!("f{}", i % 3),
                "Fay",
                &format!("r{round}-m{i}"),
            )
            .await;
            if i == per_round() / 3 {
                match fault {
                    Fault::ResetMidFrame => proxy.set(RESET_MID_FRAME),
                    Fault::Blackhole => proxy.set(BLACKHOLE),
                    _ => {}
                }
                broke_at = Some(Instant::now());
            }
        }
        match fault {
            Fault::Latency | Fault::Bandwidth => {
                // A slow link is not a dead one: no reconnect expected, but
                // everything must still arrive (checked at the end).
                let hub_last = hub.hub().last_seq(hub.agent_id("a1").await).await.unwrap();
                client
                    .wait_state("caught up through the slow link", move |e| {
                        e.state().last_seq == hub_last
                    })
                    .await;
                if fault == Fault::Latency {
                    assert_eq!(
                        client.effects.count(offline),
                        offline_before,
                        "added latency below the heartbeat budget never drops the link"
                    );
                }
                proxy.set_delay(0);
                proxy.set_bandwidth(0);
            }
            Fault::ResetMidFrame | Fault::Blackhole => {
                let t0 = broke_at.unwrap();
                let deadline = t0 + budget() + PATIENCE;
                while client.effects.count(offline) == offline_before {
                    assert!(
                        Instant::now() < deadline,
                        "{fault:?} never noticed (proxy mode now {})",
                        proxy.mode()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let took = t0.elapsed();
                assert!(
                    took < budget(),
                    "{fault:?} noticed after {took:?}, budget {:?}",
                    budget()
                );
                // The link heals; a half-open socket is dropped by the
                // client itself. A reconnect attempt made while the path
                // was still black would wait out the client's 15 s
                // handshake timeout (this proxy, unlike a dead route,
                // accepts TCP at once): drop it, as the route coming back
                // would. The next round starts once the client is back.
                proxy.set(PASS);
                proxy.cut();
                let back = Instant::now() + PATIENCE;
                while client.effects.count(online) == online_before {
                    assert!(Instant::now() < back, "{fault:?}: never back online");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    let hub_last = hub.hub().last_seq(hub.agent_id("a1").await).await.unwrap();
    assert_cache_equals_hub(client, &hub.endpoint(), &token, &convs, Some(hub_last)).await;
}

#[tokio::test]
async fn added_latency_loses_and_duplicates_nothing() {
    through_a_faulty_link(Fault::Latency).await;
}

#[tokio::test]
async fn a_bandwidth_limit_loses_and_duplicates_nothing() {
    through_a_faulty_link(Fault::Bandwidth).await;
}

#[tokio::test]
async fn a_reset_in_the_middle_of_a_frame_is_noticed_and_resumed_exactly() {
    through_a_faulty_link(Fault::ResetMidFrame).await;
}

#[tokio::test]
async fn a_blackhole_is_noticed_within_the_heartbeat_budget_and_resumed_exactly() {
    through_a_faulty_link(Fault::Blackhole).await;
}

#[tokio::test]
async fn a_hub_killed_with_sigkill_and_restarted_on_its_database_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = switchboard_hub::testkit::base_config(dir.path());
    config.protocol.heartbeat_interval_ms = HEARTBEAT_MS;
    config.routing.disconnected_grace_secs = 120;
    let mut hub = HubProcess::start(&config, dir.path()).await;
    let token = hub
        .endpoint()
        .login("a1", switchboard_hub::testkit::PASSWORD)
        .await
        .unwrap()
        .token;
    let client = TestClient::start(hub.endpoint(), token.clone(), &dir.path().join("a1.db")).await;
    let mut convs = Vec::new();
    for i in 0..3 {
        convs.push(hub.ingress(&format!("k{i}"), "open").await.conversation_id);
    }
    let cs = convs.clone();
    client
        .wait_state("assigned", move |e| {
            cs.iter().all(|c| e.state().conversations.contains_key(c))
        })
        .await;
    for round in 0..rounds() {
        let offline_before = client.effects.count(offline);
        for i in 0..per_round() {
            hub.ingress(&format!("k{}", i % 3), &format!("r{round}-m{i}"))
                .await;
            if i == per_round() / 2 {
                let t0 = Instant::now();
                hub.kill9().await;
                while client.effects.count(offline) == offline_before {
                    assert!(t0.elapsed() < PATIENCE, "hub death never noticed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let took = t0.elapsed();
                assert!(took < budget(), "hub death noticed after {took:?}");
                hub.restart().await;
            }
        }
    }
    // The token survived the restart (it is in the hub's database).
    assert_cache_equals_hub(client, &hub.endpoint(), &token, &convs, None).await;
}

/// Hostile customer strings, as a connector would post them (raw JSON, so
/// that escapes like a lone surrogate reach the hub as written).
const HOSTILE_BODIES: &[(&str, &str)] = &[
    ("markup", r#"<img src=x onerror=alert(1)><b>bold</b>"#),
    ("script", r#"<script>window.__xss=1</script>"#),
    ("rtl override", "pay \u{202E}gnp.exe\u{202C} now"),
    ("nul", "a\u{0}b"),
    ("quotes and ampersands", r#"'"&amp;&lt;"#),
];

/// An event this client cannot decode (a field of the wrong type) is not
/// stepped over: the next event shows the gap, the client resynchronises
/// from a snapshot, and the state it missed is there.
#[tokio::test]
async fn an_event_that_does_not_decode_is_not_skipped_silently() {
    let hub = TestHub::start().await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub
        .client_through(&proxy, "a1", &dir.path().join("a1.db"))
        .await;
    a1.wait_effect("online", online).await;
    proxy.set(GARBLE_PRESENCE);
    a1.act(switchboard_client::AgentAction::SetPresence {
        presence: switchboard_protocol::Presence::Busy,
    })
    .await;
    // The garbled presence event went by; the next event shows the gap.
    for _ in 0..100 {
        if proxy.mode() == PASS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(proxy.mode(), PASS, "the presence event never came");
    let conv = hub
        .ingress(Channel::Sms, "gap", "Gia", "hello")
        .await
        .conversation_id;
    a1.wait_state("resynchronised", move |e| {
        e.state().presence == Some(switchboard_protocol::Presence::Busy)
            && e.state()
                .offers
                .values()
                .any(|p| p.offer.conversation.id == conv)
    })
    .await;
    a1.stop().await;
}

/// A newer hub speaks values this client does not know (a channel, a
/// presence, a template kind and detail, a role). The client keeps every
/// frame instead of dropping it: it stays online on one connection (a
/// snapshot it dropped would send it round the resync loop for good), the
/// offer on the new channel notifies and rings as an alert, and accepting
/// it opens the session.
#[tokio::test]
async fn a_newer_hubs_values_are_shown_not_dropped() {
    use switchboard_client::engine::NotificationKey;
    use switchboard_client::AgentAction;
    use switchboard_protocol::{Presence, Role};
    let hub = TestHub::start().await;
    let proxy = Proxy::start(hub.addr()).await;
    proxy.set(NEWER_HUB);
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub
        .client_through(&proxy, "a1", &dir.path().join("a1.db"))
        .await;
    a1.wait_state("a newer hub's snapshot applied", |e| {
        e.state().presence == Some(Presence::Other)
            && e.state().profile.as_ref().map(|p| p.role) == Some(Role::Other)
    })
    .await;
    let conv = hub
        .ingress(Channel::Sms, "newer", "Gia", "hello")
        .await
        .conversation_id;
    let n = a1
        .wait_effect(
            "the offer's notification",
            |e| matches!(e, Effect::Notify(n) if matches!(n.key, NotificationKey::Offer(_))),
        )
        .await;
    let Effect::Notify(n) = n else { unreachable!() };
    let NotificationKey::Offer(offer_id) = n.key else {
        unreachable!()
    };
    assert_eq!(n.title, "Incoming Message from Gia");
    assert!(
        n.body.iter().all(|l| !l.starts_with("Wait time")),
        "a detail this client does not know is left out: {:?}",
        n.body
    );
    a1.wait_effect("the offer rings as an alert", |e| *e == Effect::StartRing)
        .await;
    a1.act(AgentAction::Accept { offer_id }).await;
    a1.wait_state("the session open", move |e| {
        e.state().active == Some(conv)
            && e.state()
                .conversations
                .get(&conv)
                .is_some_and(|c| c.summary.channel == Channel::Other)
    })
    .await;
    assert_eq!(
        a1.effects.count(online),
        1,
        "one connection all along: no frame was dropped, no resync needed"
    );
    a1.stop().await;
}

#[tokio::test]
async fn hostile_customer_strings_are_stored_as_text_or_refused_with_a_clear_error() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = hub.token("a1").await;
    let client = TestClient::start(hub.endpoint(), token.clone(), &dir.path().join("a1.db")).await;
    let url = format!("{}/api/v1/ingress/messages", hub.running().http_url());
    let post = |body: String| {
        let (http, url) = (hub.http.clone(), url.clone());
        async move {
            let r = http
                .post(url)
                .bearer_auth(switchboard_hub::testkit::INGRESS)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.text().await.unwrap())
        }
    };
    let conv = hub
        .ingress(Channel::Whatsapp, "hostile", "Mallory \u{202E}evil", "open")
        .await
        .conversation_id;
    let mut accepted = vec!["open".to_owned()];
    for (what, text) in HOSTILE_BODIES {
        let body = serde_json::json!({
            "channel": "whatsapp", "thread": "hostile", "customer_name": "Mallory", "text": text
        })
        .to_string();
        let (status, answer) = post(body).await;
        assert_eq!(status, 200, "{what}: {answer}");
        accepted.push((*text).to_owned());
    }
    // 60 KB fits the 64 KB message limit: stored whole.
    let big = "x<".repeat(30 * 1024);
    let (status, answer) = post(
        serde_json::json!({"channel":"whatsapp","thread":"hostile","customer_name":"M","text":big})
            .to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    accepted.push(big);
    // 100 KB is over the limit: refused with the closed error shape.
    let (status, answer) = post(
        serde_json::json!({"channel":"whatsapp","thread":"hostile","customer_name":"M","text":"y".repeat(100 * 1024)})
            .to_string(),
    )
    .await;
    assert!(status.is_client_error(), "100 KB: {status} {answer}");
    let e: switchboard_protocol::ErrorBody = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        e.code,
        switchboard_protocol::ErrorCode::TooLarge,
        "{answer}"
    );
    // A lone surrogate escaped in JSON is not a Unicode string: refused
    // with a clear error, not stored mangled, and the hub keeps serving.
    let (status, answer) = post(
        r#"{"channel":"whatsapp","thread":"hostile","customer_name":"M","text":"bad \ud800 here"}"#
            .to_owned(),
    )
    .await;
    assert!(
        status.is_client_error(),
        "lone surrogate: {status} {answer}"
    );
    let e: switchboard_protocol::ErrorBody = serde_json::from_str(&answer).unwrap();
    assert!(!e.message.is_empty(), "{answer}");
    // The hub's history holds exactly the accepted texts; so does the
    // client's cache.
    let history = hub.endpoint().history(&token, conv, None).await.unwrap();
    let texts: Vec<_> = history.iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, accepted);
    let n = accepted.len() as u32;
    client
        .wait_state("all hostile messages applied", move |e| {
            e.state()
                .conversations
                .get(&conv)
                .is_some_and(|c| c.unread == n)
        })
        .await;
    let cache = client.cache.clone();
    client.stop().await;
    let (store, _) = Store::open(&cache).await.unwrap();
    let cached: Vec<_> = store.load().await.unwrap().state.conversations[&conv]
        .messages
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert_eq!(cached, accepted, "stored byte for byte");
}

/// A burst of customer messages into the conversation the agent has in
/// front, over a slow link: each is read on screen at once, the hub hears
/// a read marker while none is unanswered (not one per message), and ends
/// with the agent's marker on the newest message and nothing unread.
#[tokio::test]
async fn a_burst_read_on_screen_ends_with_the_hubs_marker_on_the_newest_message() {
    use switchboard_client::{AgentAction, Input};
    use switchboard_protocol::AgentEvent;
    let hub = TestHub::start().await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub
        .client_through(&proxy, "a1", &dir.path().join("a1.db"))
        .await;
    a1.wait_effect("online", online).await;
    let conv = hub
        .ingress(Channel::Sms, "burst", "Bo", "hello")
        .await
        .conversation_id;
    let offer_id = a1.offer_for(conv).await;
    a1.handle.input(Input::Focus(true)).await.unwrap();
    a1.act(AgentAction::Accept { offer_id }).await;
    a1.wait_state("in front, read", move |e| {
        e.state().active == Some(conv) && e.state().conversations[&conv].unread == 0
    })
    .await;
    let agent = hub.agent_id("a1").await;
    let before = hub.hub().last_seq(agent).await.unwrap();
    // Each read waits at least 600 ms for its answer, far longer than the
    // burst takes to arrive, so reads are held back even on a busy machine.
    proxy.set_delay(300);
    const BURST: usize = 20;
    for i in 0..BURST {
        hub.ingress(Channel::Sms, "burst", "Bo", &format!("line {i}"))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let newest = loop {
        let (_, _, snapshot) = hub.hub().resume(agent, None).await.unwrap();
        let state = snapshot
            .unwrap()
            .conversations
            .into_iter()
            .find(|c| c.conversation.id == conv)
            .unwrap();
        let newest = state.messages.iter().map(|m| m.id).max();
        if state.messages.len() == BURST + 1 && state.unread == 0 && state.last_read == newest {
            break newest;
        }
        assert!(
            Instant::now() < deadline,
            "the hub's marker never reached the newest message: unread {}, marker {:?}, newest {newest:?}",
            state.unread,
            state.last_read
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    a1.wait_state("the client agrees", move |e| {
        let c = &e.state().conversations[&conv];
        c.unread == 0 && c.last_read == newest
    })
    .await;
    // Each read marker the hub took is an event in the agent's log.
    let sent = hub
        .hub()
        .events_after(agent, before, 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| matches!(f.event, AgentEvent::ReadMarkerMoved { .. }))
        .count();
    assert!(
        (1..BURST / 2).contains(&sent),
        "{sent} read markers for a burst of {BURST}"
    );
    a1.stop().await;
}
