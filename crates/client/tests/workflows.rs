//! Issue 6 through the real client runtime and hub: Customer 360 look-ups
//! over REST (as the desktop shell makes them), and a transfer between two
//! running clients (alert shown with the sender, accepted, session opened).

#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use switchboard_client::engine::{Effect, NotificationKey, UiEvent};
use switchboard_client::AgentAction;
use switchboard_protocol::rest::{LinkRequest, NewAccount, NewContact, RecordSearch};
use switchboard_protocol::{Channel, ErrorCode, Identification, TransferTarget};

#[tokio::test]
async fn customer_360_search_quick_create_and_link_over_rest() {
    let hub = TestHub::start().await;
    let endpoint = hub.endpoint();
    let token = hub.token("a1").await;
    let account = endpoint
        .create_account(
            &token,
            &NewAccount {
                name: "Contoso".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let contact = endpoint
        .create_contact(
            &token,
            &NewContact {
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                phone: Some("+1 555 0100".into()),
                account_id: Some(account.id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let found = endpoint
        .search_records(
            &token,
            &RecordSearch {
                account_name: Some("cont".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(found, vec![contact.clone()]);
    let empty = endpoint
        .search_records(&token, &RecordSearch::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&empty, switchboard_client::ClientError::Refused(b) if b.code == ErrorCode::InvalidFrame),
        "{empty:?}"
    );
    let c = hub
        .hub()
        .ingress(switchboard_protocol::rest::IngressMessage {
            channel: Channel::Sms,
            thread: "c360".into(),
            customer_name: "Ada".into(),
            phone: Some("+15550100".into()),
            email: None,
            comment: None,
            queue: None,
            scenario: None,
            text: "hi".into(),
            transcript: Vec::new(),
            case_id: None,
            message_id: None,
        })
        .await
        .unwrap()
        .conversation_id;
    let view = endpoint.customer_360(&token, contact.id).await.unwrap();
    assert_eq!(view.account.unwrap().name, "Contoso");
    assert_eq!(view.earlier_conversations[0].id, c);
    assert_eq!(
        view.earlier_conversations[0].identification,
        Some(Identification::One {
            contact_id: contact.id
        })
    );
    // Linking needs the conversation to be yours.
    let err = endpoint
        .link_conversation(
            &token,
            c,
            &LinkRequest {
                contact_id: contact.id,
                case_id: None,
                confirm_other_case: false,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, switchboard_client::ClientError::Refused(b) if b.code == ErrorCode::NotFound)
    );
    let dir = endpoint.team_directory(&token).await.unwrap();
    assert!(dir.agents.iter().any(|a| a.name == "Agent a2"));
}

#[tokio::test]
async fn a_transfer_reaches_the_other_client_as_an_alert_naming_the_sender() {
    let hub = TestHub::start_with(|c| {
        c.queues[0].templates.insert(
            switchboard_protocol::Scenario::Transfer,
            switchboard_hub::config::TemplateOverride {
                kind: Some(switchboard_protocol::NotificationKind::Alert),
                timeout_secs: Some(30),
                ..Default::default()
            },
        );
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub.client("a1", &dir.path().join("a1.db")).await;
    let conv = hub
        .ingress(Channel::Sms, "xfer", "Cleo", "hi")
        .await
        .conversation_id;
    let offer = a1
        .wait_effect("offer", |e| {
            matches!(e, Effect::Ui(UiEvent::OfferShown { .. }))
        })
        .await;
    let Effect::Ui(UiEvent::OfferShown { offer, .. }) = offer else {
        unreachable!()
    };
    a1.act(AgentAction::Accept {
        offer_id: offer.offer.id,
    })
    .await;
    a1.wait_state("owned", move |e| {
        e.state().conversations.contains_key(&conv)
    })
    .await;
    let a2 = hub.client("a2", &dir.path().join("a2.db")).await;
    signed_in(&hub, &a2, "a2").await;
    a1.act(AgentAction::Transfer {
        conversation_id: conv,
        target: TransferTarget::Agent {
            agent_id: hub.agent_id("a2").await,
        },
        note: Some("billing".into()),
    })
    .await;
    let n = a2
        .wait_effect(
            "transfer alert",
            |e| matches!(e, Effect::Notify(n) if matches!(n.key, NotificationKey::Offer(_))),
        )
        .await;
    let Effect::Notify(n) = n else { unreachable!() };
    assert_eq!(n.title, "Transfer from Agent a1: Cleo");
    assert!(n.body.contains(&"Note: billing".to_string()));
    a1.wait_state("gone from the sender", move |e| {
        !e.state().conversations.contains_key(&conv)
    })
    .await;
    let NotificationKey::Offer(offer_id) = n.key else {
        unreachable!()
    };
    a2.act(AgentAction::Accept { offer_id }).await;
    a2.wait_state("session open", move |e| e.state().active == Some(conv))
        .await;
}

#[tokio::test]
async fn an_assign_request_is_shown_again_from_the_cache_after_a_restart() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub.client("a1", &dir.path().join("a1.db")).await;
    let conv = hub
        .ingress(Channel::Sms, "persist", "Pia", "hi")
        .await
        .conversation_id;
    let shown = a1
        .wait_effect("offer", |e| {
            matches!(e, Effect::Ui(UiEvent::OfferShown { .. }))
        })
        .await;
    let Effect::Ui(UiEvent::OfferShown { offer, .. }) = shown else {
        unreachable!()
    };
    a1.act(AgentAction::Accept {
        offer_id: offer.offer.id,
    })
    .await;
    a1.wait_state("owned", move |e| {
        e.state().conversations.contains_key(&conv)
    })
    .await;
    let cache = dir.path().join("a2.db");
    let token = hub.token("a2").await;
    let a2 = TestClient::start(hub.endpoint(), token.clone(), &cache).await;
    signed_in(&hub, &a2, "a2").await;
    a1.act(AgentAction::RequestAssign {
        conversation_id: conv,
        agent_id: hub.agent_id("a2").await,
        reason: Some("my shift ends".into()),
    })
    .await;
    let is_request = |e: &Effect| matches!(e, Effect::Notify(n) if n.title == "Agent a1 asks you to take over: Pia");
    a2.wait_effect("request alert", is_request).await;
    a2.stop().await;
    // Restart with the hub out of reach: only the cache can show it.
    let a2 = TestClient::start(
        switchboard_client::HubEndpoint::new("http://127.0.0.1:9"),
        token,
        &cache,
    )
    .await;
    let again = a2.wait_effect("request alert again", is_request).await;
    let Effect::Notify(n) = again else {
        unreachable!()
    };
    assert!(n.body.contains(&"Reason: my shift ends".to_string()));
    assert!(a2.effects.all().contains(&Effect::StartRing));
    a2.stop().await;
}

/// Waits until `client` is online: the hub hands work on (transfers,
/// requests) only to a signed-in agent.
async fn signed_in(hub: &TestHub, client: &TestClient, user: &str) {
    client
        .wait_state("online", |e| {
            e.connection() == switchboard_client::engine::ConnectionStatus::Online
        })
        .await;
    assert!(hub.hub().links.is_connected(hub.agent_id(user).await));
}

/// An accept refused for the session limit keeps the request: shown again
/// at once, and still there from the cache after a restart, to accept once
/// a session is closed.
#[tokio::test]
async fn a_request_refused_for_the_session_limit_stays_to_accept_later() {
    let hub = TestHub::start_with(|c| c.routing.max_sessions = 1).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let token = hub.token("a1").await;
    let a1 = TestClient::start(hub.endpoint(), token.clone(), &cache).await;
    let (_a2, offer_id) = asked_at_the_limit(&hub, &a1, dir.path()).await;
    a1.act(AgentAction::Accept { offer_id }).await;
    a1.wait_effect("refused", |e| {
        matches!(e, Effect::Ui(UiEvent::CommandFailed { error, .. }) if error.code == ErrorCode::SessionLimit)
    })
    .await;
    a1.wait_state("the request is back", move |e| {
        e.state().offers.contains_key(&offer_id)
    })
    .await;
    a1.stop().await;
    // Restart with the hub out of reach: the cache still has it pending.
    let a1 = TestClient::start(
        switchboard_client::HubEndpoint::new("http://127.0.0.1:9"),
        token,
        &cache,
    )
    .await;
    a1.wait_state("pending after the restart", move |e| {
        e.state().offers.contains_key(&offer_id)
    })
    .await;
    a1.stop().await;
}

/// The same refusal when the accept was made offline and the app restarted
/// before the hub saw it: the outbox sends it again after the restart, and
/// the refused offer still comes back, with the failure naming the accept.
#[tokio::test]
async fn an_accept_refused_after_a_restart_still_brings_the_request_back() {
    let hub = TestHub::start_with(|c| c.routing.max_sessions = 1).await;
    let proxy = Proxy::start(hub.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a1.db");
    let token = hub.token("a1").await;
    let a1 = TestClient::start(proxy.endpoint(), token.clone(), &cache).await;
    let (_a2, offer_id) = asked_at_the_limit(&hub, &a1, dir.path()).await;
    proxy.set(DOWN);
    proxy.cut();
    a1.wait_state("offline", |e| {
        e.connection() != switchboard_client::engine::ConnectionStatus::Online
    })
    .await;
    a1.act(AgentAction::Accept { offer_id }).await;
    a1.wait_state("accepted here", move |e| {
        !e.state().offers.contains_key(&offer_id)
    })
    .await;
    a1.stop().await;
    proxy.set(PASS);
    let a1 = TestClient::start(proxy.endpoint(), token, &cache).await;
    a1.wait_effect("refused, named", |e| {
        matches!(e, Effect::Ui(UiEvent::CommandFailed { what, error, .. })
            if what == "accept" && error.code == ErrorCode::SessionLimit)
    })
    .await;
    a1.wait_state("the request is back", move |e| {
        e.state().offers.contains_key(&offer_id)
    })
    .await;
    a1.stop().await;
    let (store, _) = switchboard_client::store::Store::open(&cache)
        .await
        .unwrap();
    let loaded = store.load().await.unwrap();
    assert!(
        loaded.state.offers.contains_key(&offer_id),
        "pending in the cache"
    );
    assert!(loaded.accepting.is_empty(), "answered: nothing kept for it");
    assert!(loaded.outbox.is_empty());
}

/// `a1` (with a session limit of 1) owns one conversation, and a2 asks it
/// to take over a second one: returns a2's client and the pending request.
async fn asked_at_the_limit(
    hub: &TestHub,
    a1: &TestClient,
    dir: &std::path::Path,
) -> (TestClient, switchboard_protocol::OfferId) {
    signed_in(hub, a1, "a1").await;
    own(hub, a1, "lim-1").await;
    let a2 = hub.client("a2", &dir.join("a2.db")).await;
    signed_in(hub, &a2, "a2").await;
    let c2 = own(hub, &a2, "lim-2").await;
    a2.act(AgentAction::RequestAssign {
        conversation_id: c2,
        agent_id: hub.agent_id("a1").await,
        reason: None,
    })
    .await;
    let is_request = |e: &Effect| matches!(e, Effect::Notify(n) if n.title == "Agent a2 asks you to take over: Lim");
    a1.wait_effect("request alert", is_request).await;
    let offer_id = a1
        .handle
        .query(|e| e.state().offers.keys().next().copied())
        .await
        .unwrap()
        .expect("the request is pending");
    (a2, offer_id)
}

/// A customer writes on `thread`; `client` is offered it and accepts.
async fn own(
    hub: &TestHub,
    client: &TestClient,
    thread: &str,
) -> switchboard_protocol::ConversationId {
    let conv = hub
        .ingress(Channel::Sms, thread, "Lim", "hi")
        .await
        .conversation_id;
    let id = client.offer_for(conv).await;
    client.act(AgentAction::Accept { offer_id: id }).await;
    client
        .wait_state("owned", move |e| {
            e.state().conversations.contains_key(&conv)
        })
        .await;
    conv
}

/// A refused take names its conversation, so the panel that sent it tells
/// its own refusal from an earlier take's (the hub's answer over a real
/// link: another team's, or no such, conversation).
#[tokio::test]
async fn a_refused_take_names_its_conversation() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a1 = hub.client("a1", &dir.path().join("a1.db")).await;
    let conv = switchboard_protocol::ConversationId(424_242);
    a1.act(AgentAction::TakeTeamChat {
        conversation_id: conv,
    })
    .await;
    a1.wait_effect("the take refused, naming its conversation", |e| {
        matches!(e, Effect::Ui(UiEvent::CommandFailed { what, error, conversation_id })
            if what == "take" && error.code == ErrorCode::NotFound && *conversation_id == Some(conv))
    })
    .await;
    a1.stop().await;
}
