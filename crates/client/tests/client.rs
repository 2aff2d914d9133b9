//! Client engine integration tests against the real hub over loopback, with
//! real SQLite caches.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::*;
use switchboard_client::engine::{ConnectionStatus, Effect, NotificationKey, OfferClosed, UiEvent};
use switchboard_client::store::Store;
use switchboard_client::{AgentAction, HubEndpoint, Input};
use switchboard_protocol::{
    Channel, Command, ConversationId, ConversationStatus, ErrorCode, NoticeKind, Presence, Seq,
};

fn offer_key(e: &Effect) -> Option<switchboard_protocol::OfferId> {
    match e {
        Effect::Notify(n) => match n.key {
            NotificationKey::Offer(id) => Some(id),
            _ => None,
        },
        _ => None,
    }
}

#[tokio::test]
async fn offer_notification_then_accept_opens_the_session() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub.client("a1", &dir.path().join("c.db")).await;
    a1.wait_effect("online", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Online
            })
        )
    })
    .await;
    let conv = hub
        .ingress(
            Channel::Sms,
            "t1",
            "Ann <img src=x onerror=alert(1)>",
            "hello",
        )
        .await;
    let n = a1
        .wait_effect("offer notification", |e| offer_key(e).is_some())
        .await;
    let offer_id = offer_key(&n).unwrap();
    let Effect::Notify(n) = n else { unreachable!() };
    assert_eq!(
        n.title, "Incoming SMS from Ann <img src=x onerror=alert(1)>",
        "raw text; sinks escape"
    );
    a1.wait_effect("ring", |e| *e == Effect::StartRing).await;
    a1.act(AgentAction::Accept { offer_id }).await;
    a1.wait_effect("ring stops", |e| *e == Effect::StopRing)
        .await;
    a1.wait_effect("notification closed", |e| {
        *e == Effect::CloseNotification(NotificationKey::Offer(offer_id))
    })
    .await;
    let cid = conv.conversation_id;
    a1.wait_state("session open and active", move |e| {
        e.state().active == Some(cid)
            && e.state()
                .conversations
                .get(&cid)
                .is_some_and(|c| c.session_open)
    })
    .await;
    let summary = hub.hub().conversation(cid).await.unwrap();
    assert_eq!(summary.status, ConversationStatus::Assigned);
    assert_eq!(summary.owner, Some(hub.agent_id("a1").await));
    // Messages both ways.
    hub.ingress(Channel::Sms, "t1", "Ann", "second").await;
    a1.wait_state("unread 2", move |e| {
        e.state()
            .conversations
            .get(&cid)
            .is_some_and(|c| c.unread == 2)
    })
    .await;
    a1.act(AgentAction::SendMessage {
        conversation_id: cid,
        text: "Hi Ann".into(),
    })
    .await;
    a1.wait_state("own message echoed", move |e| {
        e.state().conversations[&cid]
            .messages
            .iter()
            .any(|m| m.text == "Hi Ann")
    })
    .await;
    a1.handle.input(Input::Focus(true)).await.unwrap();
    a1.wait_state("read when focused on it", move |e| {
        e.state().conversations[&cid].unread == 0
    })
    .await;
    a1.stop().await;
}

#[tokio::test]
async fn a_missed_offer_is_rerouted_and_the_agent_sees_inactive_with_a_banner() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub.client("a1", &dir.path().join("a1.db")).await;
    let a2 = hub.client("a2", &dir.path().join("a2.db")).await;
    a1.wait_effect("online", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Online
            })
        )
    })
    .await;
    a2.wait_effect("online", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Online
            })
        )
    })
    .await;
    hub.ingress(Channel::Chat, "miss", "Dan", "hello").await;
    let first = a1.wait_effect("offer", |e| offer_key(e).is_some()).await;
    // Nobody answers within the 2 s template timeout.
    a1.wait_effect("offer gone", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::OfferClosed {
                why: OfferClosed::Expired | OfferClosed::Resolved,
                ..
            })
        )
    })
    .await;
    a1.wait_state("inactive + banner", |e| {
        e.state().presence == Some(Presence::Inactive)
            && e.state()
                .banners
                .iter()
                .any(|b| b.notice == NoticeKind::MissedOffer)
    })
    .await;
    assert!(!a1.handle.query(|e| e.ringing()).await.unwrap());
    let second = a2
        .wait_effect("rerouted offer", |e| offer_key(e).is_some())
        .await;
    assert_ne!(offer_key(&first), offer_key(&second));
    // Resetting presence clears the banner.
    a1.act(AgentAction::SetPresence {
        presence: Presence::Available,
    })
    .await;
    a1.wait_state("available", |e| {
        e.state().presence == Some(Presence::Available) && e.state().banners.is_empty()
    })
    .await;
}

#[tokio::test]
async fn reject_needs_its_reason_and_sets_do_not_disturb() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub.client("a1", &dir.path().join("a1.db")).await;
    hub.ingress(Channel::Sms, "rej", "Hal", "hi").await;
    let offer_id = offer_key(&a1.wait_effect("offer", |e| offer_key(e).is_some()).await).unwrap();
    a1.act(AgentAction::Reject {
        offer_id,
        reason: None,
    })
    .await;
    a1.wait_effect("refused locally", |e| {
        matches!(e, Effect::Ui(UiEvent::CommandFailed { error, .. }) if error.code == ErrorCode::ReasonRequired)
    })
    .await;
    assert!(
        a1.handle.query(|e| e.ringing()).await.unwrap(),
        "still pending"
    );
    a1.act(AgentAction::Reject {
        offer_id,
        reason: Some("on a call".into()),
    })
    .await;
    a1.wait_state("dnd + banner", |e| {
        e.state().presence == Some(Presence::DoNotDisturb)
            && e.state()
                .banners
                .iter()
                .any(|b| b.notice == NoticeKind::RejectedOffer)
    })
    .await;
    assert!(!a1.handle.query(|e| e.ringing()).await.unwrap());
}

#[tokio::test]
async fn max_sessions_shows_a_banner_and_do_not_disturb() {
    let hub = TestHub::start_with(|c| {
        c.agents
            .iter_mut()
            .find(|a| a.username == "a1")
            .unwrap()
            .capacity = 20;
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub.client("a1", &dir.path().join("a1.db")).await;
    a1.wait_effect("online", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Online
            })
        )
    })
    .await;
    for i in 0..11 {
        hub.ingress(Channel::Whatsapp, &format!("wa{i}"), "Ivy", "hi")
            .await;
    }
    a1.wait_state("ten sessions, banner, dnd", |e| {
        e.state().conversations.len() == 10
            && e.state().presence == Some(Presence::DoNotDisturb)
            && e.state()
                .banners
                .iter()
                .any(|b| b.notice == NoticeKind::MaxSessions)
    })
    .await;
}

#[tokio::test]
async fn reconnects_resume_with_zero_lost_and_zero_duplicated_events() {
    let hub = TestHub::start().await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub
        .client_through(&proxy, "a1", &dir.path().join("a1.db"))
        .await;
    let conv = hub
        .ingress(Channel::Whatsapp, "flood", "Rae", "m0")
        .await
        .conversation_id;
    a1.wait_state("assigned", move |e| {
        e.state().conversations.contains_key(&conv)
    })
    .await;
    let online = |e: &Effect| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Online
            })
        )
    };
    let offline = |e: &Effect| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Offline
            })
        )
    };
    for round in 0..3 {
        // Each cut hits a live link: wait until the client is back from the
        // previous one (a cut during its handshake is a failed connect, not
        // a second drop).
        let deadline = std::time::Instant::now() + PATIENCE;
        while a1.effects.count(online) < round + 1 {
            assert!(std::time::Instant::now() < deadline, "not back online");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let offline_before = a1.effects.count(offline);
        for i in 0..100 {
            hub.ingress(Channel::Whatsapp, "flood", "Rae", &format!("r{round}-{i}"))
                .await;
            if i == 50 {
                proxy.cut();
            }
        }
        while a1.effects.count(offline) == offline_before {
            assert!(
                std::time::Instant::now() < deadline + PATIENCE,
                "round {round}: the cut was never noticed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let a1_id = hub.agent_id("a1").await;
    let hub_last = hub.hub().last_seq(a1_id).await.unwrap();
    a1.wait_state("caught up", move |e| e.state().last_seq == hub_last)
        .await;
    let (unread, ids) = a1
        .handle
        .query(move |e| {
            let c = &e.state().conversations[&conv];
            (
                c.unread,
                c.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
            )
        })
        .await
        .unwrap();
    assert_eq!(unread, 301, "every customer message once");
    let truth: Vec<_> = hub
        .hub()
        .conversation_messages(None, conv, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        ids,
        truth[truth.len() - ids.len()..],
        "the same messages, in order, no duplicates"
    );
    assert!(
        a1.effects.count(|e| matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Offline
            })
        )) >= 3
    );
    // The cache on disk agrees.
    a1.stop().await;
    let (store, _) = Store::open(&dir.path().join("a1.db")).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.state.last_seq, hub_last);
    assert_eq!(loaded.state.conversations[&conv].unread, 301);
}

#[tokio::test]
async fn a_half_open_link_is_noticed_within_two_heartbeats() {
    let hub = TestHub::start_with(|c| c.protocol.heartbeat_interval_ms = 300).await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub
        .client_through(&proxy, "a1", &dir.path().join("a1.db"))
        .await;
    a1.wait_effect("online", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Online
            })
        )
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let offline_before = a1.effects.count(|e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Offline
            })
        )
    });
    assert_eq!(offline_before, 0, "pings keep a healthy link up");
    proxy.set(BLACKHOLE);
    let t = std::time::Instant::now();
    a1.wait_effect("offline", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Offline
            })
        )
    })
    .await;
    let took = t.elapsed();
    // Two intervals of silence, checked at the next ping tick: < 3 intervals
    // plus scheduling slack.
    assert!(took < Duration::from_millis(1300), "noticed after {took:?}");
    proxy.set(PASS);
    proxy.cut();
    let online = |e: &Effect| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Online
            })
        )
    };
    let deadline = std::time::Instant::now() + PATIENCE;
    while a1.effects.count(online) < 2 {
        assert!(std::time::Instant::now() < deadline, "did not reconnect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_message_typed_offline_is_delivered_exactly_once_even_across_a_restart() {
    let hub = TestHub::start().await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let token = hub.token("a1").await;
    let a1 = TestClient::start(proxy.endpoint(), token.clone(), &cache).await;
    let conv = hub
        .ingress(Channel::Whatsapp, "out", "Oli", "hi")
        .await
        .conversation_id;
    a1.wait_state("assigned", move |e| {
        e.state().conversations.contains_key(&conv)
    })
    .await;
    // Network goes down.
    proxy.set(DOWN);
    proxy.cut();
    a1.wait_effect("offline", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Offline
            })
        )
    })
    .await;
    a1.act(AgentAction::SendMessage {
        conversation_id: conv,
        text: "typed offline".into(),
    })
    .await;
    a1.act(AgentAction::SendMessage {
        conversation_id: conv,
        text: "and restarted".into(),
    })
    .await;
    // The app is closed while offline; the outbox is on disk.
    a1.stop().await;
    {
        let (store, _) = Store::open(&cache).await.unwrap();
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.outbox.len(), 2);
        assert!(
            matches!(&loaded.outbox[0].command, Command::SendMessage { text, .. } if text == "typed offline")
        );
        store.close().await;
    }
    let a1 = TestClient::start(proxy.endpoint(), token.clone(), &cache).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set(PASS);
    a1.wait_state("both echoed", move |e| {
        let m = &e.state().conversations[&conv].messages;
        m.iter().any(|m| m.text == "typed offline") && m.iter().any(|m| m.text == "and restarted")
    })
    .await;
    // A cut right after sending, before the result, makes the client resend
    // the same command id: still once.
    a1.act(AgentAction::SendMessage {
        conversation_id: conv,
        text: "racing the cut".into(),
    })
    .await;
    proxy.cut();
    a1.wait_state("echoed", move |e| {
        e.state().conversations[&conv]
            .messages
            .iter()
            .any(|m| m.text == "racing the cut")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let msgs = hub
        .hub()
        .conversation_messages(None, conv, None)
        .await
        .unwrap();
    for text in ["typed offline", "and restarted", "racing the cut"] {
        assert_eq!(
            msgs.iter().filter(|m| m.text == text).count(),
            1,
            "{text} exactly once"
        );
    }
    let order: Vec<_> = msgs.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        order,
        ["hi", "typed offline", "and restarted", "racing the cut"]
    );
    a1.stop().await;
    let (store, _) = Store::open(&cache).await.unwrap();
    assert!(
        store.load().await.unwrap().outbox.is_empty(),
        "answered commands leave the outbox"
    );
}

#[tokio::test]
async fn a_restart_within_the_timeout_shows_the_offer_again_and_never_a_handled_one() {
    let hub = TestHub::start_with(|c| {
        c.queues[0]
            .templates
            .get_mut(&switchboard_protocol::Scenario::IncomingSms)
            .unwrap()
            .timeout_secs = Some(20);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let token = hub.token("a1").await;
    let a1 = TestClient::start(hub.endpoint(), token.clone(), &cache).await;
    hub.ingress(Channel::Sms, "o1", "Pat", "one").await;
    let first = offer_key(&a1.wait_effect("offer", |e| offer_key(e).is_some()).await).unwrap();
    a1.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let a1 = TestClient::start(hub.endpoint(), token.clone(), &cache).await;
    let again = a1
        .wait_effect("offer again", |e| offer_key(e) == Some(first))
        .await;
    let Effect::Notify(n) = again else {
        unreachable!()
    };
    let line = n
        .body
        .iter()
        .find(|l| l.starts_with("Respond within"))
        .unwrap()
        .clone();
    let secs: i64 = line
        .trim_start_matches("Respond within ")
        .trim_end_matches(" s")
        .parse()
        .unwrap();
    assert!(
        (15..=19).contains(&secs),
        "remaining time, not a fresh timeout: {line}"
    );
    assert!(a1.effects.all().contains(&Effect::StartRing));
    a1.act(AgentAction::Accept { offer_id: first }).await;
    a1.wait_effect("closed", |e| {
        *e == Effect::CloseNotification(NotificationKey::Offer(first))
    })
    .await;
    a1.stop().await;
    let a1 = TestClient::start(hub.endpoint(), token, &cache).await;
    a1.wait_effect("online", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Online
            })
        )
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        a1.effects.count(|e| offer_key(e).is_some()),
        0,
        "a handled offer is never shown again"
    );
    assert!(!a1.effects.all().contains(&Effect::StartRing));
}

#[tokio::test]
async fn a_corrupted_cache_is_moved_aside_and_rebuilt_from_the_hub() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let token = hub.token("a1").await;
    let a1 = TestClient::start(hub.endpoint(), token.clone(), &cache).await;
    let conv = hub
        .ingress(Channel::Whatsapp, "cc", "Cat", "hello")
        .await
        .conversation_id;
    hub.ingress(Channel::Whatsapp, "cc", "Cat", "again").await;
    a1.wait_state("two unread", move |e| {
        e.state()
            .conversations
            .get(&conv)
            .is_some_and(|c| c.unread == 2)
    })
    .await;
    a1.stop().await;
    // Scribble over the file (and drop the WAL).
    let _ = std::fs::remove_file(cache.with_extension("db-wal"));
    let _ = std::fs::remove_file(cache.with_extension("db-shm"));
    std::fs::write(
        &cache,
        b"this is not a database \x00\x01\x02 garbage garbage garbage",
    )
    .unwrap();
    let a1 = TestClient::start(hub.endpoint(), token, &cache).await;
    let recovered = a1.recovered.clone().expect("recovery reported");
    assert!(
        recovered.moved_to.as_ref().is_some_and(|p| p.exists()),
        "the broken file is kept for inspection"
    );
    a1.wait_state("rebuilt from the hub", move |e| {
        e.state()
            .conversations
            .get(&conv)
            .is_some_and(|c| c.unread == 2 && c.messages.len() == 2)
    })
    .await;
}

/// A hub that does not answer while a link is being opened (packets
/// dropped by a firewall, Wi-Fi with no internet) does not hold up the
/// agent: a reply and a draft made meanwhile are handled at once, are on
/// disk at once (a quit or a crash keeps them), and the reply goes when
/// the link opens. Before, input waited behind the opening's 15 s
/// patience with nothing written.
#[tokio::test]
async fn input_while_a_link_is_opening_is_kept_at_once_and_sent_when_it_opens() {
    let hub = TestHub::start().await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let token = hub.token("a1").await;
    let a1 = TestClient::start(proxy.endpoint(), token, &cache).await;
    let conv = hub
        .ingress(Channel::Whatsapp, "opening", "Ola", "hi")
        .await
        .conversation_id;
    a1.wait_state("assigned", move |e| {
        e.state().conversations.contains_key(&conv)
    })
    .await;
    // Connections are accepted and then hear nothing back.
    proxy.set(BLACKHOLE);
    proxy.cut();
    a1.wait_state("opening a link", |e| {
        e.connection() == ConnectionStatus::Connecting
    })
    .await;
    a1.act(AgentAction::SendMessage {
        conversation_id: conv,
        text: "sent while the link opens".into(),
    })
    .await;
    a1.act(AgentAction::SetDraft {
        conversation_id: conv,
        text: "and a thought after it".into(),
    })
    .await;
    let handled = a1.wait_state("handled while the link opens", move |e| {
        e.connection() == ConnectionStatus::Connecting
            && e.state().drafts.get(&conv).map(String::as_str) == Some("and a thought after it")
    });
    tokio::time::timeout(Duration::from_secs(3), handled)
        .await
        .expect("input handled within 3 s, not after the opening's patience");
    let disk = sqlx::SqlitePool::connect(&format!("sqlite://{}", cache.display()))
        .await
        .unwrap();
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&disk)
        .await
        .unwrap();
    let draft: Option<String> =
        sqlx::query_scalar("SELECT text FROM drafts WHERE conversation_id = ?")
            .bind(conv.0)
            .fetch_optional(&disk)
            .await
            .unwrap();
    disk.close().await;
    assert_eq!(outbox, 1, "the reply is in the cache's outbox");
    assert_eq!(draft.as_deref(), Some("and a thought after it"));
    // The link comes back: the reply reaches the hub, once.
    proxy.set(PASS);
    proxy.cut();
    let a1_id = hub.agent_id("a1").await;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let replies = hub
            .hub()
            .conversation_messages(None, conv, None)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.author == switchboard_protocol::Author::Agent { agent_id: a1_id })
            .count();
        if replies == 1 {
            break;
        }
        assert!(
            replies == 0 && std::time::Instant::now() < deadline,
            "{replies} replies"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a1.wait_state("the reply answered", |e| {
        e.connection() == ConnectionStatus::Online
    })
    .await;
    a1.stop().await;
}

/// The hub's clock is compared with ours when its welcome arrives, not
/// after a resync's snapshot has downloaded: over a slow link the download
/// took seconds, and every offer's local deadline ran that much past the
/// hub's (a countdown still running when the hub had moved the offer on).
#[tokio::test]
async fn a_slow_snapshot_does_not_push_offer_deadlines_past_the_hubs() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = hub.client("a1", &dir.path().join("first.db")).await;
    // A chat with a long message (a big snapshot), and an offer pending.
    let big = "x".repeat(60 * 1024);
    let chat = hub
        .ingress(Channel::Whatsapp, "big", "Bea", &big)
        .await
        .conversation_id;
    let offered = hub
        .ingress(Channel::Sms, "slow", "Sol", "hello?")
        .await
        .conversation_id;
    first.offer_for(offered).await;
    first
        .wait_state("the chat", move |e| {
            e.state().conversations.contains_key(&chat)
        })
        .await;
    // The same agent on another machine, over a 20 KB/s link, from an
    // empty cache: a full snapshot of over 60 KB, three seconds or more.
    let proxy = Proxy::start(hub.addr()).await;
    proxy.set_bandwidth(20 * 1024);
    let second = hub
        .client_through(&proxy, "a1", &dir.path().join("second.db"))
        .await;
    let started = std::time::Instant::now();
    second.offer_for(offered).await;
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "the snapshot came in {:?}: too fast to show anything",
        started.elapsed()
    );
    let (deadline, expires) = second
        .handle
        .query(move |e| {
            let p = e
                .state()
                .offers
                .values()
                .find(|p| p.offer.conversation.id == offered)
                .cloned()
                .expect("offered");
            (p.deadline.0, p.offer.expires_at.0)
        })
        .await
        .unwrap();
    assert!(
        (deadline - expires).abs() < 1000,
        "the local deadline is {} ms past the hub's",
        deadline - expires
    );
    second.stop().await;
    first.stop().await;
}

/// A reply and the draft it clears are written together: when the outbox
/// cannot be written (here a trigger refuses it; a full disk would too),
/// the draft is not cleared on disk either, so a restart gives the agent
/// their text back instead of losing it.
#[tokio::test]
async fn a_reply_whose_outbox_write_fails_keeps_its_draft_on_disk() {
    let hub = TestHub::start().await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let token = hub.token("a1").await;
    let a1 = TestClient::start(proxy.endpoint(), token.clone(), &cache).await;
    let conv = hub
        .ingress(Channel::Whatsapp, "ob", "Obi", "hi")
        .await
        .conversation_id;
    a1.wait_state("assigned", move |e| {
        e.state().conversations.contains_key(&conv)
    })
    .await;
    let pool = fail_cache_writes(&cache, "no_outbox", "INSERT ON outbox").await;
    proxy.set(DOWN);
    proxy.cut();
    a1.act(AgentAction::SetDraft {
        conversation_id: conv,
        text: "the whole answer".into(),
    })
    .await;
    a1.act(AgentAction::SendMessage {
        conversation_id: conv,
        text: "the whole answer".into(),
    })
    .await;
    a1.wait_state("sent (in memory)", move |e| {
        !e.state().drafts.contains_key(&conv)
    })
    .await;
    a1.stop().await;
    let kept: Option<String> =
        sqlx::query_scalar("SELECT text FROM drafts WHERE conversation_id = ?")
            .bind(conv.0)
            .fetch_optional(&pool)
            .await
            .unwrap();
    assert_eq!(
        kept.as_deref(),
        Some("the whole answer"),
        "the reply is lost"
    );
    sqlx::query("DROP TRIGGER no_outbox")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    proxy.set(PASS);
    let a1 = TestClient::start(proxy.endpoint(), token, &cache).await;
    a1.wait_state("the draft is back", move |e| {
        e.state().drafts.get(&conv).map(String::as_str) == Some("the whole answer")
    })
    .await;
    a1.stop().await;
}

/// A cache write that fails (a full disk, here a trigger) loses nothing
/// for good: the next write stores the whole state, so an offer that
/// arrived in the failed batch is there after a restart, although the
/// cursor moved past it and the hub will not send it again.
#[tokio::test]
async fn after_a_failed_cache_write_the_next_one_stores_the_whole_state() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let token = hub.token("a1").await;
    let a1 = TestClient::start(hub.endpoint(), token.clone(), &cache).await;
    let pool = fail_cache_writes(&cache, "no_offers", "INSERT ON offers").await;
    let offered = hub
        .ingress(Channel::Sms, "fw-1", "Fay", "are you there?")
        .await
        .conversation_id;
    a1.wait_state("offered", move |e| {
        e.state()
            .offers
            .values()
            .any(|p| p.offer.conversation.id == offered)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    sqlx::query("DROP TRIGGER no_offers")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    // Another event: the next write.
    let chat = hub
        .ingress(Channel::Whatsapp, "fw-2", "Gus", "hello")
        .await
        .conversation_id;
    a1.wait_state("assigned", move |e| {
        e.state().conversations.contains_key(&chat)
    })
    .await;
    let seq = a1.handle.query(|e| e.state().last_seq).await.unwrap();
    a1.stop().await;
    let (store, _) = Store::open(&cache).await.unwrap();
    let loaded = store.load().await.unwrap();
    store.close().await;
    assert_eq!(loaded.state.last_seq, seq);
    assert!(
        loaded
            .state
            .offers
            .values()
            .any(|p| p.offer.conversation.id == offered),
        "the offer of the failed write is in the cache"
    );
    assert!(loaded.state.conversations.contains_key(&chat));
}

/// The same for an answered command: the failed write carried its removal
/// from the outbox, so the whole-state write leaves in the outbox only the
/// commands still unanswered (a stale row would be sent again after a
/// restart, and run again if its first answer was a refusal).
#[tokio::test]
async fn after_a_failed_cache_write_answered_commands_leave_the_outbox() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let a1 = TestClient::start(hub.endpoint(), hub.token("a1").await, &cache).await;
    let chat = hub
        .ingress(Channel::Whatsapp, "fo-1", "Ona", "hello")
        .await
        .conversation_id;
    a1.wait_state("assigned", move |e| {
        e.state().conversations.contains_key(&chat)
    })
    .await;
    let pool = fail_cache_writes(&cache, "keep_outbox", "DELETE ON outbox").await;
    a1.act(AgentAction::SendMessage {
        conversation_id: chat,
        text: "on its way".into(),
    })
    .await;
    a1.wait_state("echoed", move |e| {
        e.state().conversations[&chat]
            .messages
            .iter()
            .any(|m| m.text == "on its way")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(held, 1, "the failed write kept the answered reply");
    sqlx::query("DROP TRIGGER keep_outbox")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    // Another event: the next write, whole.
    hub.ingress(Channel::Whatsapp, "fo-1", "Ona", "thanks")
        .await;
    a1.wait_state("the next message", move |e| {
        e.state().conversations[&chat]
            .messages
            .iter()
            .any(|m| m.text == "thanks")
    })
    .await;
    a1.stop().await;
    let (store, _) = Store::open(&cache).await.unwrap();
    let loaded = store.load().await.unwrap();
    store.close().await;
    assert!(loaded.outbox.is_empty(), "{:?}", loaded.outbox);
}

/// A cache whose file is sound but some rows do not decode (a bit flipped
/// on disk, an edit by hand): those rows are skipped, not fatal, so the
/// draft and the unsent reply in the others survive, and the hub sends
/// again what was lost (a full snapshot: the cursor is reset).
#[tokio::test]
async fn unreadable_cache_rows_are_skipped_and_refetched_keeping_drafts_and_unsent_replies() {
    let hub = TestHub::start().await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let token = hub.token("a1").await;
    let a1 = TestClient::start(proxy.endpoint(), token.clone(), &cache).await;
    let conv = hub
        .ingress(Channel::Whatsapp, "rows", "Rae", "first")
        .await
        .conversation_id;
    hub.ingress(Channel::Whatsapp, "rows", "Rae", "second")
        .await;
    let other = hub
        .ingress(Channel::Whatsapp, "rows-2", "Ode", "hello")
        .await
        .conversation_id;
    a1.wait_state("both assigned, two messages", move |e| {
        let s = e.state();
        s.conversations
            .get(&conv)
            .is_some_and(|c| c.messages.len() == 2)
            && s.conversations.contains_key(&other)
    })
    .await;
    a1.act(AgentAction::SetDraft {
        conversation_id: other,
        text: "half a reply".into(),
    })
    .await;
    proxy.set(DOWN);
    proxy.cut();
    a1.wait_effect("offline", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Offline
            })
        )
    })
    .await;
    a1.act(AgentAction::SendMessage {
        conversation_id: conv,
        text: "sent while offline".into(),
    })
    .await;
    a1.stop().await;

    // Damage rows: one conversation's record, the other's message (not
    // JSON, not even text), and the agent's profile.
    {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", cache.display()))
            .await
            .unwrap();
        for q in [
            format!("UPDATE conversations SET record = '{{not json' WHERE id = {}", conv.0),
            format!(
                "UPDATE messages SET body = x'00ff' WHERE id = (SELECT min(id) FROM messages WHERE conversation_id = {})",
                other.0
            ),
            "UPDATE meta SET value = '[[[' WHERE key = 'profile'".to_owned(),
        ] {
            let done = sqlx::query(&q).execute(&pool).await.unwrap();
            assert_eq!(done.rows_affected(), 1, "{q}");
        }
        pool.close().await;
    }

    proxy.set(PASS);
    let a1 = TestClient::start(proxy.endpoint(), token, &cache).await;
    let recovered = a1.recovered.clone().expect("the skipped rows are reported");
    assert_eq!(recovered.moved_to, None, "the file is kept: {recovered:?}");
    assert!(recovered.reason.contains("3 unreadable"), "{recovered:?}");
    a1.wait_state(
        "the hub sent the conversation again, with the reply",
        move |e| {
            let s = e.state();
            s.conversations.get(&conv).is_some_and(|c| {
                let texts: Vec<&str> = c.messages.iter().map(|m| m.text.as_str()).collect();
                texts == ["first", "second", "sent while offline"]
            }) && s.drafts.get(&other).map(String::as_str) == Some("half a reply")
                && s.conversations.get(&other).is_some_and(|c| {
                    c.messages
                        .iter()
                        .map(|m| m.text.as_str())
                        .collect::<Vec<_>>()
                        == ["hello"]
                })
        },
    )
    .await;
    let on_hub = hub
        .hub()
        .conversation_messages(None, conv, None)
        .await
        .unwrap();
    assert_eq!(
        on_hub
            .iter()
            .filter(|m| m.text == "sent while offline")
            .count(),
        1
    );
    a1.stop().await;
}

/// Unreadable rows that nothing rewrites (the settings, an unsent
/// command's row) are dropped once reported, with the cursor: the start
/// after is a normal one, not another full resync with the same notice
/// every time, and a crash before the hub's snapshot still asks for
/// everything.
#[tokio::test]
async fn unreadable_rows_nothing_rewrites_are_reported_once() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let token = hub.token("a1").await;
    let a1 = TestClient::start(hub.endpoint(), token.clone(), &cache).await;
    let conv = hub
        .ingress(Channel::Whatsapp, "once", "Ona", "hi")
        .await
        .conversation_id;
    a1.wait_state("assigned", move |e| {
        e.state().conversations.contains_key(&conv)
    })
    .await;
    a1.stop().await;
    {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", cache.display()))
            .await
            .unwrap();
        for q in [
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('settings', '[[[')",
            "INSERT INTO outbox (command_id, body) VALUES ('bad-1', '{not json')",
        ] {
            sqlx::query(q).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let load = || async {
        let (store, _) = Store::open(&cache).await.unwrap();
        let loaded = store.load().await.unwrap();
        store.close().await;
        loaded
    };
    // A look into the cache changes nothing.
    assert_eq!(load().await.unreadable.len(), 2);
    // As the client starts: read, then forget what did not read.
    let (store, _) = Store::open(&cache).await.unwrap();
    let first = store.load().await.unwrap();
    store.forget_unreadable(&first).await.unwrap();
    store.close().await;
    assert_eq!(first.unreadable.len(), 2, "{:?}", first.unreadable);
    assert_eq!(first.state.last_seq.0, 0);
    // As after a crash before the snapshot: nothing to report, and the
    // cursor still asks for everything.
    let second = load().await;
    assert!(second.unreadable.is_empty(), "{:?}", second.unreadable);
    assert_eq!(second.state.last_seq.0, 0);
    assert!(second.state.conversations.contains_key(&conv));
    let a1 = TestClient::start(hub.endpoint(), token, &cache).await;
    assert!(a1.recovered.is_none(), "{:?}", a1.recovered);
    a1.wait_state("online, the snapshot applied", move |e| {
        e.connection() == ConnectionStatus::Online && e.state().last_seq.0 > 0
    })
    .await;
    a1.stop().await;
    let third = load().await;
    assert!(third.unreadable.is_empty());
    assert!(third.state.last_seq.0 > 0, "resumes with a cursor");
}

#[tokio::test]
async fn the_client_survives_a_hub_restart_and_is_signed_out_when_revoked() {
    let mut hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub.client("a1", &dir.path().join("a1.db")).await;
    let conv = hub
        .ingress(Channel::Whatsapp, "hr", "Hub", "before")
        .await
        .conversation_id;
    a1.wait_state("assigned", move |e| {
        e.state().conversations.contains_key(&conv)
    })
    .await;
    hub.restart().await;
    hub.ingress(Channel::Whatsapp, "hr", "Hub", "after").await;
    a1.wait_state("after restart", move |e| {
        e.state().conversations[&conv].unread == 2
    })
    .await;
    let id = hub.agent_id("a1").await;
    hub.hub().revoke_agent_tokens(id).await.unwrap();
    a1.wait_effect("signed out", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::SignedOut
            })
        )
    })
    .await;
    // And it stays so: the lost link does not turn it into "offline, will
    // retry" (nothing retries a refused token).
    tokio::time::sleep(Duration::from_millis(300)).await;
    a1.wait_state("still signed out", |e| {
        e.connection() == ConnectionStatus::SignedOut
    })
    .await;
}

fn spawn_agent(hub: &TestHub, dir: &std::path::Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchboard-agent"))
        .args([
            "--hub",
            &hub.running().http_url(),
            "--user",
            "a1",
            "--data-dir",
        ])
        .arg(dir)
        .env("SWITCHBOARD_PASSWORD", switchboard_hub::testkit::PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn switchboard-agent")
}

async fn stored_seq(cache: &std::path::Path) -> Option<Seq> {
    let (store, _) = Store::open(cache).await.ok()?;
    let seq = store.load().await.ok().map(|l| l.state.last_seq);
    store.close().await;
    seq
}

/// Every message of a conversation (the hub answers 1,000 per page).
async fn all_messages(hub: &TestHub, conv: ConversationId) -> Vec<switchboard_protocol::Message> {
    let mut all: Vec<switchboard_protocol::Message> = Vec::new();
    loop {
        let page = hub
            .hub()
            .conversation_messages(None, conv, all.last().map(|m| m.id))
            .await
            .unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// The cache as of its own cursor agrees with the hub: for each cached
/// conversation, the kept messages are exactly the hub's up to the newest
/// cached one (in order, once each) and the unread count is the number of
/// customer messages up to there.
async fn assert_cache_consistent_with_hub(hub: &TestHub, cache: &std::path::Path, kill: usize) {
    if !cache.exists() {
        return; // killed before the cache was created
    }
    let (store, recovered) = Store::open(cache).await.unwrap();
    assert!(
        recovered.is_none(),
        "after kill {kill}: the cache was damaged ({recovered:?})"
    );
    let state = store.load().await.unwrap().state;
    store.close().await;
    for (id, conv) in &state.conversations {
        let Some(last) = conv.messages.back().map(|m| m.id) else {
            continue;
        };
        let truth: Vec<_> = all_messages(hub, *id)
            .await
            .into_iter()
            .filter(|m| m.id <= last)
            .map(|m| m.id)
            .collect();
        let ids: Vec<_> = conv.messages.iter().map(|m| m.id).collect();
        let window: Vec<_> = truth.iter().copied().filter(|m| *m >= ids[0]).collect();
        if ids != window {
            let missing: Vec<_> = window.iter().filter(|m| !ids.contains(m)).collect();
            let extra: Vec<_> = ids.iter().filter(|m| !window.contains(m)).collect();
            panic!(
                "after kill {kill}: cached messages of {id:?} differ from the hub's ({} cached, {} in the hub's window); missing {missing:?}; extra or repeated {extra:?}; cached {ids:?}",
                ids.len(),
                window.len()
            );
        }
        assert_eq!(
            conv.unread as usize,
            truth.len(),
            "after kill {kill}: unread as of the cache's cursor"
        );
    }
}

#[tokio::test]
async fn kill_9_during_a_message_flood_then_restart_gives_exact_unread_counts() {
    use rand::Rng;
    // CI: 5 kills; SWITCHBOARD_FULL=1: 50. The flood runs until the last
    // kill, so that every kill lands inside it.
    let target_kills = if full() { 50 } else { 5 };
    // Restarts (a login each) can be slow on a loaded machine; the hub must
    // not hand the conversations on meanwhile, so its truth stays put.
    let hub = TestHub::start_with(|c| c.routing.disconnected_grace_secs = 600).await;
    let dir = tempfile::tempdir().unwrap();
    // The CLI's cache for a1 on this hub, as the desktop app keeps it.
    let cache = switchboard_client::session::account_cache(dir.path(), &hub.endpoint(), "a1");
    let mut child = spawn_agent(&hub, dir.path());
    let mut convs = Vec::new();
    for i in 0..3 {
        convs.push(
            hub.ingress(Channel::Whatsapp, &format!("k{i}"), "Kim", "open")
                .await
                .conversation_id,
        );
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let url = hub.running().http_url();
        let stop = stop.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut sent = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let thread = format!("k{}", sent % 3);
                let r = http
                    .post(format!("{url}/api/v1/ingress/messages"))
                    .bearer_auth(switchboard_hub::testkit::INGRESS)
                    .json(&serde_json::json!({"channel":"whatsapp","thread":thread,"customer_name":"Kim","text":format!("f{sent}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                sent += 1;
                if sent.is_multiple_of(10) {
                    // Paced: a steady stream for the kills to land in.
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
            sent
        })
    };
    let mut kills = 0;
    while kills < target_kills {
        let pause = rand::thread_rng().gen_range(30..300);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        assert!(!flood.is_finished(), "the flood is still running");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        assert_cache_consistent_with_hub(&hub, &cache, kills).await;
        child = spawn_agent(&hub, dir.path());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sent = flood.await.unwrap();
    let a1 = hub.agent_id("a1").await;
    let hub_last = hub.hub().last_seq(a1).await.unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while stored_seq(&cache).await != Some(hub_last) {
        assert!(
            std::time::Instant::now() < deadline,
            "client did not catch up after {kills} kills"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (store, _) = Store::open(&cache).await.unwrap();
    let state = store.load().await.unwrap().state;
    for (k, conv) in convs.into_iter().enumerate() {
        let truth = all_messages(&hub, conv).await.len() as u32;
        assert_eq!(truth as usize, 1 + (0..sent).filter(|i| i % 3 == k).count());
        assert_eq!(
            state.conversations[&conv].unread, truth,
            "exact unread after {kills} kill -9s"
        );
    }
    assert_eq!(state.last_seq, hub_last);
}

#[tokio::test]
async fn a_gap_beyond_the_hubs_retention_is_healed_by_a_full_resync() {
    let hub = TestHub::start_with(|c| c.protocol.event_retention = 10).await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub
        .client_through(&proxy, "a1", &dir.path().join("a1.db"))
        .await;
    let conv = hub
        .ingress(Channel::Whatsapp, "gap", "Gil", "m0")
        .await
        .conversation_id;
    a1.wait_state("assigned", move |e| {
        e.state().conversations.contains_key(&conv)
    })
    .await;
    a1.act(AgentAction::SetDraft {
        conversation_id: conv,
        text: "local draft".into(),
    })
    .await;
    proxy.set(DOWN);
    proxy.cut();
    a1.wait_effect("offline", |e| {
        matches!(
            e,
            Effect::Ui(UiEvent::Connection {
                status: ConnectionStatus::Offline
            })
        )
    })
    .await;
    for i in 1..=150 {
        hub.ingress(Channel::Whatsapp, "gap", "Gil", &format!("m{i}"))
            .await;
    }
    let before = a1.effects.count(|e| *e == Effect::Ui(UiEvent::Reset));
    proxy.set(PASS);
    a1.wait_state("resynced", move |e| {
        e.state().conversations[&conv].unread == 151
    })
    .await;
    assert!(
        a1.effects.count(|e| *e == Effect::Ui(UiEvent::Reset)) > before,
        "a snapshot replaced the state"
    );
    let draft = a1
        .handle
        .query(move |e| e.state().drafts.get(&conv).cloned())
        .await
        .unwrap();
    assert_eq!(
        draft.as_deref(),
        Some("local draft"),
        "local-only state survives a resync"
    );
}

#[tokio::test]
async fn damaged_cache_files_of_every_shape_are_recovered() {
    init();
    let dir = tempfile::tempdir().unwrap();
    // A real cache with a page scribbled over, a short garbage file, and a
    // file from some other program.
    let good = dir.path().join("good.db");
    {
        let (store, rec) = Store::open(&good).await.unwrap();
        assert!(rec.is_none());
        store.apply(vec![], Seq(9)).await.unwrap();
        store.close().await;
    }
    let mut bytes = std::fs::read(&good).unwrap();
    assert!(bytes.len() > 4096, "checkpointed into the file");
    for b in bytes.iter_mut().skip(100).take(3000) {
        *b = 0xA5;
    }
    std::fs::write(&good, &bytes).unwrap();
    let short = dir.path().join("short.db");
    std::fs::write(&short, b"garbage").unwrap();
    let other = dir.path().join("other.db");
    std::fs::write(&other, vec![0x42u8; 10_000]).unwrap();
    for path in [good, short, other] {
        let (store, rec) = Store::open(&path).await.unwrap();
        let rec = rec.unwrap_or_else(|| panic!("{} not detected", path.display()));
        assert!(rec.moved_to.as_ref().is_some_and(|p| p.exists()));
        // The fresh cache works.
        store.apply(vec![], Seq(3)).await.unwrap();
        assert_eq!(store.load().await.unwrap().state.last_seq, Seq(3));
    }
}

/// A cache that cannot be opened now but is not shown to be broken (here
/// SQLite cannot open the path at all: as with a full disk, a permission
/// or an I/O error) is an error and stays where it is, with whatever
/// unsent replies and drafts it holds; it is not moved aside as corrupt.
#[tokio::test]
async fn a_cache_that_cannot_be_opened_now_is_an_error_and_left_in_place() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("keep-me"), b"x").unwrap();
    let opened = Store::open(&path).await;
    assert!(opened.is_err(), "opened a directory as a cache");
    assert!(path.join("keep-me").exists(), "moved aside");
    let siblings: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings, vec![std::ffi::OsString::from("cache.db")]);
}

#[tokio::test]
async fn rest_look_up_of_history_for_the_owner_only() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub.client("a1", &dir.path().join("a1.db")).await;
    let conv = hub
        .ingress(Channel::Whatsapp, "h", "Hal", "one")
        .await
        .conversation_id;
    hub.ingress(Channel::Whatsapp, "h", "Hal", "two").await;
    a1.wait_state("assigned", move |e| {
        e.state().conversations.contains_key(&conv)
    })
    .await;
    let token = hub.token("a1").await;
    let all = hub.endpoint().history(&token, conv, None).await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    let after = hub
        .endpoint()
        .history(&token, conv, Some(all[0].id))
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    let other = hub.token("a2").await;
    match hub.endpoint().history(&other, conv, None).await {
        Err(switchboard_client::ClientError::Refused(e)) => {
            // Another agent's conversation does not exist to them.
            assert_eq!(e.code, ErrorCode::NotFound)
        }
        other => panic!("{other:?}"),
    }
    // The CLI prints it too.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-agent"))
        .args([
            "--hub",
            &hub.running().http_url(),
            "--user",
            "a1",
            "--history",
            &conv.0.to_string(),
        ])
        .env("SWITCHBOARD_PASSWORD", switchboard_hub::testkit::PASSWORD)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8_lossy(&out.stdout);
    assert_eq!(lines.lines().count(), 2);
    assert!(lines.contains("\"text\":\"two\""));
}

/// `switchboard-agent --accept --work-every`, the agent of the headless
/// soak: it takes its offers and works its conversations as the desktop
/// soak's agent does, replying to each and ending some (from four
/// conversations on), so the hub sees whole conversations, not only new
/// ones.
#[tokio::test]
async fn the_headless_agent_at_work_replies_to_and_ends_its_conversations() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-agent"))
        .args([
            "--hub",
            &hub.running().http_url(),
            "--user",
            "a1",
            "--accept",
            "--work-every",
            "50",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("SWITCHBOARD_PASSWORD", switchboard_hub::testkit::PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut conversations = Vec::new();
    for i in 0..5 {
        let r = hub
            .ingress(Channel::Chat, &format!("work-{i}"), "Customer", "hello")
            .await;
        conversations.push(r.conversation_id);
    }
    let a1 = hub.agent_id("a1").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (replied, closed) = loop {
        let (mut replied, mut closed) = (0, 0);
        for &c in &conversations {
            let messages = hub
                .hub()
                .conversation_messages(None, c, None)
                .await
                .unwrap();
            if messages
                .iter()
                .any(|m| m.author == switchboard_protocol::Author::Agent { agent_id: a1 })
            {
                replied += 1;
            }
            if hub.hub().conversation(c).await.unwrap().status == ConversationStatus::Closed {
                closed += 1;
            }
        }
        if (replied, closed.min(1)) == (5, 1) || std::time::Instant::now() > deadline {
            break (replied, closed);
        }
        assert!(agent.try_wait().unwrap().is_none(), "the agent exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(replied, 5, "conversations the agent replied to");
    // It ends conversations only while it has four or more open (as far as
    // its engine knows: an end the hub has not confirmed yet still counts),
    // so it keeps some.
    assert!((1..5).contains(&closed), "{closed} of 5 ended");
    agent.kill().await.unwrap();
}

/// A sign-in whose client cannot start (its cache cannot be opened) does
/// not leave its token valid with nothing using it; a kept token that the
/// hub says is another account's is refused, its cache not opened.
#[tokio::test]
async fn a_sign_in_that_cannot_start_signs_out_and_a_token_of_another_account_is_refused() {
    use switchboard_client::session;
    let hub = TestHub::start().await;
    let data = tempfile::tempdir().unwrap();
    // The cache's path is a directory: the store cannot open it.
    let cache = session::account_cache(data.path(), &hub.endpoint(), "a1");
    std::fs::create_dir_all(cache.join("in-the-way")).unwrap();
    let started = session::sign_in(
        hub.endpoint(),
        "a1",
        switchboard_hub::testkit::PASSWORD,
        data.path(),
        "test",
        Recorder::default(),
    )
    .await;
    assert!(started.is_err());
    let a1 = hub.agent_id("a1").await;
    let live: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE agent_id = ? AND revoked = 0")
            .bind(a1.0)
            .fetch_one(hub.hub().pool())
            .await
            .unwrap();
    assert_eq!(live, 0, "the failed sign-in's token is still valid");

    let a2_token = hub.token("a2").await;
    let resumed = session::resume(
        hub.endpoint(),
        "a3",
        &a2_token,
        data.path(),
        "test",
        Recorder::default(),
    )
    .await;
    match resumed {
        Err(switchboard_client::ClientError::Refused(e)) => {
            assert_eq!(e.code, ErrorCode::Unauthorized)
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("resumed a3 with a2's token"),
    }
    assert!(!session::account_cache(data.path(), &hub.endpoint(), "a3").exists());
}

/// Two users whose names an earlier version folded into one cache folder
/// ("müller" and "möller" were both `m_ller`): after an upgrade the old
/// folder's cache moves to the folder of the user whose it is, and only
/// that user's; a cache holding another account's data is set aside,
/// never read.
#[tokio::test]
async fn a_cache_holding_another_accounts_data_is_set_aside() {
    use switchboard_client::session;
    let hub = TestHub::start_with(|c| {
        for name in ["müller", "möller"] {
            let mut agent = c.agents[0].clone();
            agent.username = name.into();
            agent.display_name = Some(name.into());
            c.agents.push(agent);
        }
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let sign_in = |user: &'static str| {
        session::sign_in(
            hub.endpoint(),
            user,
            switchboard_hub::testkit::PASSWORD,
            data.path(),
            "test",
            Recorder::default(),
        )
    };
    let first = sign_in("müller").await.unwrap();
    let conv = hub
        .ingress(Channel::Whatsapp, "mu", "Uma", "hello")
        .await
        .conversation_id;
    let has_conv =
        move |e: &switchboard_client::Engine| e.state().conversations.contains_key(&conv);
    for _ in 0..100 {
        if first.handle.query(has_conv).await.unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(first.handle.query(has_conv).await.unwrap());
    first.handle.shutdown().await;
    first.task.await.unwrap();
    let mine = session::account_cache(data.path(), &hub.endpoint(), "müller");
    let theirs = session::account_cache(data.path(), &hub.endpoint(), "möller");
    assert_ne!(mine, theirs);
    // The folder both names had before this version, beside the new ones,
    // holding müller's cache (as before the upgrade: no new folder yet).
    let hub_dir = mine.parent().and_then(std::path::Path::parent).unwrap();
    let legacy = hub_dir.join("m_ller").join("cache.db");
    std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
    std::fs::rename(&mine, &legacy).unwrap();

    // möller: the old folder is not its own; it stays for müller.
    let second = sign_in("möller").await.unwrap();
    assert!(legacy.exists(), "another user's cache was moved");
    assert!(!second.handle.query(has_conv).await.unwrap());
    second.handle.shutdown().await;
    second.task.await.unwrap();

    // müller: its cache moves to its own folder.
    let third = sign_in("müller").await.unwrap();
    assert!(
        !legacy.exists() && mine.exists(),
        "müller's cache did not move"
    );
    assert!(third.recovered.is_none());
    third.handle.shutdown().await;
    third.task.await.unwrap();

    // A cache holding another account's profile however it got there (a
    // copied profile folder) is set aside, never read.
    std::fs::copy(&mine, &theirs).unwrap();
    let fourth = sign_in("möller").await.unwrap();
    let reason = fourth.recovered.as_ref().map(|r| r.reason.clone());
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("another account")),
        "{reason:?}"
    );
    assert!(!fourth.handle.query(has_conv).await.unwrap());
    let profile = fourth
        .handle
        .query(|e| e.state().profile.clone())
        .await
        .unwrap();
    assert!(profile.is_none_or(|p| p.username == "möller"));
    fourth.handle.shutdown().await;
    fourth.task.await.unwrap();
}

/// Resuming with a kept token (what the desktop does at start): the hub
/// names the agent and the cached state is there; with the hub down the
/// cached profile stands in; a token the hub revoked (sign-out) is refused
/// and starts nothing.
#[tokio::test]
async fn a_kept_token_resumes_the_session_and_a_revoked_one_is_refused() {
    use switchboard_client::session;
    let mut hub = TestHub::start().await;
    let data = tempfile::tempdir().unwrap();
    let first = session::sign_in(
        hub.endpoint(),
        "a1",
        switchboard_hub::testkit::PASSWORD,
        data.path(),
        "test",
        Recorder::default(),
    )
    .await
    .unwrap();
    let conv = hub
        .ingress(Channel::Whatsapp, "r1", "Rae", "hello")
        .await
        .conversation_id;
    let has_conv =
        move |e: &switchboard_client::Engine| e.state().conversations.contains_key(&conv);
    for _ in 0..100 {
        if first.handle.query(has_conv).await.unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(first.handle.query(has_conv).await.unwrap());
    let token = first.token.clone();
    first.handle.shutdown().await;
    first.task.await.unwrap();
    let resume = |endpoint, user| {
        session::resume(
            endpoint,
            user,
            &token,
            data.path(),
            "test",
            Recorder::default(),
        )
    };

    // The hub names the agent; the cache is the same one.
    let resumed = resume(hub.endpoint(), "a1").await.unwrap();
    assert_eq!(resumed.profile.username, "a1");
    assert!(resumed.handle.query(has_conv).await.unwrap());
    resumed.handle.shutdown().await;
    resumed.task.await.unwrap();

    // Hub down (a login start before the network): the cached profile.
    let endpoint = hub.endpoint();
    hub.stop().await;
    let offline = resume(endpoint.clone(), "a1").await.unwrap();
    assert_eq!(offline.profile.username, "a1");
    assert!(offline.handle.query(has_conv).await.unwrap());
    offline.handle.shutdown().await;
    offline.task.await.unwrap();
    // The hub answers but fails for now (restarting behind its load
    // balancer, overloaded): only "unauthorized" says the token is bad, so
    // these resume on the cached profile and the token is kept.
    for (status, code) in [
        ("503 Service Unavailable", "internal"),
        ("500 Internal Server Error", "internal"),
        ("429 Too Many Requests", "rate_limited"),
    ] {
        let failing = FailingHttp::start(hub.config.server.listen, status, code).await;
        let s = resume(endpoint.clone(), "a1").await.unwrap();
        assert_eq!(s.profile.username, "a1", "{status}");
        assert!(s.handle.query(has_conv).await.unwrap(), "{status}");
        assert!(failing.requests() >= 1, "{status}: the hub was asked");
        s.handle.shutdown().await;
        s.task.await.unwrap();
    }
    // ... but not for an account with nothing cached.
    let err = resume(endpoint, "a2").await.err().unwrap();
    assert!(
        matches!(err, switchboard_client::ClientError::Network(_)),
        "{err}"
    );

    // Signed out (the hub revokes the token): refused, nothing started.
    hub.restart().await;
    hub.endpoint().logout(&token).await.unwrap();
    let err = resume(hub.endpoint(), "a1").await.err().unwrap();
    match err {
        switchboard_client::ClientError::Refused(body) => {
            assert_eq!(body.code, ErrorCode::Unauthorized)
        }
        other => panic!("expected a refusal, got {other}"),
    }
}

/// A hub older than the Waiting list answers its endpoint `not_found`
/// ("no such endpoint"): the agent reads that the hub is older, not a
/// bare "no such endpoint".
#[tokio::test]
async fn an_older_hub_without_the_waiting_list_says_so() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let old = FailingHttp::start(free, "404 Not Found", "not_found").await;
    let err = HubEndpoint::new(format!("http://{free}"))
        .waiting_team_chats("token")
        .await
        .unwrap_err();
    match err {
        switchboard_client::ClientError::Refused(body) => {
            assert_eq!(body.code, ErrorCode::NotFound);
            assert!(
                body.message.contains("older than this app"),
                "{}",
                body.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(old.requests(), 1);
}
