//! Agent workflows (issue 6), one test per rule: customer identification and
//! Customer 360 over REST, transfer, escalation, bot escalation, consult,
//! team-owned conversations, the idle owner's "Assign to me?", assign and
//! discuss requests, supervisor assignment, incoming calls, and request
//! offers surviving a hub restart. Real sockets, real SQLite files.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod support;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use support::*;
use switchboard_hub::config::QueueConfig;
use switchboard_protocol::rest::{Account, Contact, Customer360, IngressMessage};
use switchboard_protocol::*;

// ------------------------------------------------------------- helpers

/// A REST call with an agent token: the body, or the status and error.
async fn call<T: DeserializeOwned>(
    hub: &TestHub,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<T, (u16, ErrorBody)> {
    let mut req = hub.http.request(method, hub.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    if status == 200 {
        Ok(resp.json().await.unwrap())
    } else {
        Err((status, resp.json().await.unwrap()))
    }
}

async fn post<T: DeserializeOwned>(hub: &TestHub, token: &str, path: &str, body: Value) -> T {
    call(hub, token, reqwest::Method::POST, path, Some(body))
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e:?}"))
}

async fn get<T: DeserializeOwned>(hub: &TestHub, token: &str, path: &str) -> T {
    call(hub, token, reqwest::Method::GET, path, None)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e:?}"))
}

fn msg(channel: Channel, thread: &str, phone: Option<&str>, email: Option<&str>) -> IngressMessage {
    IngressMessage {
        channel,
        thread: thread.into(),
        customer_name: "Customer".into(),
        phone: phone.map(Into::into),
        email: email.map(Into::into),
        comment: None,
        queue: None,
        scenario: None,
        text: "hello".into(),
        transcript: Vec::new(),
        case_id: None,
        message_id: None,
    }
}

/// `agent` receives an SMS conversation and accepts it.
async fn own(hub: &TestHub, agent: &mut Agent, thread: &str) -> ConversationId {
    let c = hub.ingress(Channel::Sms, thread, "Cleo", "first").await;
    let offer = agent.wait_offer().await;
    assert_eq!(offer.conversation.id, c.conversation_id);
    agent.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    c.conversation_id
}

/// A second supervisor of team T, "sup2", configured like "sup".
fn add_second_supervisor(c: &mut switchboard_hub::HubConfig) {
    let mut sup2 = c
        .agents
        .iter()
        .find(|a| a.username == "sup")
        .unwrap()
        .clone();
    sup2.username = "sup2".into();
    c.agents.push(sup2);
}

fn revoked(reason: RevokeReason) -> impl Fn(&AgentEvent) -> bool {
    move |e| matches!(e, AgentEvent::ConversationRevoked { reason: r, .. } if *r == reason)
}

fn answered(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::RequestAnswered { .. })
}

fn message_added(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::MessageAdded { .. })
}

fn template_alert(o: &mut switchboard_hub::config::TemplateOverride) {
    o.kind = Some(NotificationKind::Alert);
    o.timeout_secs = Some(30);
}

fn queue_mut(c: &mut switchboard_hub::HubConfig) -> &mut QueueConfig {
    &mut c.queues[0]
}

/// A second queue "Q2" of team T, like Q but taking no channel of its own:
/// reached only by transfer.
fn transfer_queue(c: &mut switchboard_hub::HubConfig) -> &mut QueueConfig {
    let mut q2 = c.queues[0].clone();
    q2.name = "Q2".into();
    q2.channels = vec![];
    c.queues.push(q2);
    c.queues.last_mut().expect("just pushed")
}

/// Three contacts: Ada (own phone, with account Contoso and a case), and two
/// sharing one phone and email.
async fn seed(hub: &TestHub, token: &str) -> (Contact, Contact, Contact, CaseRecordIds) {
    let account: Account = post(
        hub,
        token,
        "/api/v1/records/accounts",
        json!({"name": "Contoso Retail", "city": "Seattle"}),
    )
    .await;
    let ada: Contact = post(
        hub,
        token,
        "/api/v1/records/contacts",
        json!({"first_name": "Ada", "last_name": "Lovelace", "phone": "+1 (555) 010-2000",
               "email": "Ada@Example.com", "address": "12 Analytical Way", "city": "London",
               "state": "Greater London", "account_id": account.id}),
    )
    .await;
    let twin1: Contact = post(
        hub,
        token,
        "/api/v1/records/contacts",
        json!({"first_name": "Sam", "last_name": "Twin", "phone": "+44 7700 900123", "email": "twins@example.com"}),
    )
    .await;
    let twin2: Contact = post(
        hub,
        token,
        "/api/v1/records/contacts",
        json!({"first_name": "Kim", "last_name": "Twin", "phone": "0044 7700 900 123", "email": "TWINS@example.com"}),
    )
    .await;
    let hubref = &hub.running().hub;
    let case1 = hubref.create_case(ada.id, "Broken engine").await.unwrap();
    let case2 = hubref.create_case(ada.id, "Invoice").await.unwrap();
    let other = hubref.create_case(twin1.id, "Twin case").await.unwrap();
    (
        ada,
        twin1,
        twin2,
        CaseRecordIds {
            ada: [case1.id, case2.id],
            twin: other.id,
        },
    )
}

struct CaseRecordIds {
    ada: [CaseId; 2],
    twin: CaseId,
}

// ------------------------------------------------- identification, 360

#[tokio::test]
async fn sms_whatsapp_and_voice_are_identified_by_normalised_phone_and_chat_by_email() {
    let hub = TestHub::start().await;
    let token = hub.login("a1").await.token;
    let (ada, t1, t2, _) = seed(&hub, &token).await;
    let one = hub
        .ingress_msg(msg(Channel::Sms, "id1", Some("+15550102000"), None))
        .await;
    let several = hub
        .ingress_msg(msg(Channel::Whatsapp, "id2", Some("+447700900123"), None))
        .await;
    let none = hub
        .ingress_msg(msg(Channel::Voice, "id3", Some("+19999999"), None))
        .await;
    let chat = hub
        .ingress_msg(msg(Channel::Chat, "id4", None, Some(" ada@EXAMPLE.com ")))
        .await;
    let chat_phone_only = hub
        .ingress_msg(msg(Channel::Chat, "id5", Some("+15550102000"), None))
        .await;
    let facebook = hub
        .ingress_msg(msg(Channel::Facebook, "id6", Some("+15550102000"), None))
        .await;
    let id = |c: ConversationSummary| c.identification;
    assert_eq!(
        id(hub.conversation(one.conversation_id).await),
        Some(Identification::One { contact_id: ada.id })
    );
    assert_eq!(
        id(hub.conversation(several.conversation_id).await),
        Some(Identification::Several {
            contact_ids: vec![t1.id, t2.id]
        })
    );
    assert_eq!(
        id(hub.conversation(none.conversation_id).await),
        Some(Identification::NoMatch)
    );
    assert_eq!(
        id(hub.conversation(chat.conversation_id).await),
        Some(Identification::One { contact_id: ada.id })
    );
    // Chat matches by email only; Facebook carries neither.
    assert_eq!(
        id(hub.conversation(chat_phone_only.conversation_id).await),
        Some(Identification::NoMatch)
    );
    assert_eq!(id(hub.conversation(facebook.conversation_id).await), None);
    // A single match links the conversation to the record at once.
    assert_eq!(
        hub.conversation(one.conversation_id).await.link,
        Some(RecordLink {
            contact_id: ada.id,
            case_id: None
        })
    );
}

#[tokio::test]
async fn the_owner_sees_the_identification_in_the_offer() {
    let hub = TestHub::start().await;
    let token = hub.login("a1").await.token;
    let (ada, ..) = seed(&hub, &token).await;
    let mut a1 = hub.connect("a1").await;
    hub.ingress_msg(msg(Channel::Sms, "pop", Some("+1 555 010 2000"), None))
        .await;
    let offer = a1.wait_offer().await;
    assert_eq!(
        offer.conversation.identification,
        Some(Identification::One { contact_id: ada.id })
    );
}

#[tokio::test]
async fn search_matches_every_field_by_prefix_and_needs_one_field() {
    let hub = TestHub::start().await;
    let token = hub.login("a1").await.token;
    let (ada, t1, t2, cases) = seed(&hub, &token).await;
    let search = |q: String| {
        let hub = &hub;
        let token = token.clone();
        async move {
            let found: Vec<Contact> =
                get(hub, &token, &format!("/api/v1/records/search?{q}")).await;
            found.into_iter().map(|c| c.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("first_name=ad".into()).await, vec![ada.id]);
    assert_eq!(search("last_name=TWIN".into()).await, vec![t2.id, t1.id]);
    assert_eq!(search("account_name=contoso".into()).await, vec![ada.id]);
    assert_eq!(search("address=12%20anal".into()).await, vec![ada.id]);
    assert_eq!(search("city=lond".into()).await, vec![ada.id]);
    assert_eq!(search("state=greater".into()).await, vec![ada.id]);
    assert_eq!(
        search("phone=%2B15550102000".into()).await,
        vec![ada.id],
        "phone compared normalised"
    );
    assert_eq!(search("email=ada@".into()).await, vec![ada.id]);
    assert_eq!(
        search(format!("case_id={}", cases.twin.0)).await,
        vec![t1.id]
    );
    // Every given field must match.
    assert!(search("first_name=ada&city=paris".into()).await.is_empty());
    // A LIKE wildcard is just a character.
    assert!(search("first_name=%25".into()).await.is_empty());
    for path in [
        "/api/v1/records/search",
        // A phone with no digits would match every contact.
        "/api/v1/records/search?phone=abc",
    ] {
        let err = call::<Vec<Contact>>(&hub, &token, reqwest::Method::GET, path, None)
            .await
            .unwrap_err();
        assert_eq!(err.0, 400, "{path}");
        assert_eq!(err.1.code, ErrorCode::InvalidFrame, "{path}");
    }
}

#[tokio::test]
async fn customer_360_has_contact_account_open_cases_and_earlier_conversations() {
    let hub = TestHub::start_with(|c| c.queues.push(other_team_sms_queue())).await;
    let token = hub.login("a1").await.token;
    let (ada, _, _, cases) = seed(&hub, &token).await;
    let earlier = hub
        .ingress_msg(msg(Channel::Sms, "c360", Some("+15550102000"), None))
        .await;
    let view: Customer360 = get(
        &hub,
        &token,
        &format!("/api/v1/records/contacts/{}", ada.id),
    )
    .await;
    assert_eq!(view.contact.last_name, "Lovelace");
    assert_eq!(view.contact.account_name.as_deref(), Some("Contoso Retail"));
    assert_eq!(view.account.unwrap().city.as_deref(), Some("Seattle"));
    let case_ids: Vec<_> = view.open_cases.iter().map(|c| c.id).collect();
    assert_eq!(case_ids.len(), 2);
    assert!(case_ids.contains(&cases.ada[0]) && case_ids.contains(&cases.ada[1]));
    assert_eq!(
        view.earlier_conversations
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![earlier.conversation_id]
    );
    // Ada also wrote to another team's queue: that team sees it, this team
    // does not (the contact itself is everyone's), an admin sees both.
    let mut elsewhere = msg(Channel::Sms, "c360-other", Some("+15550102000"), None);
    elsewhere.queue = Some("OQ".into());
    let elsewhere = hub.ingress_msg(elsewhere).await;
    let history = |user: &'static str| {
        let path = format!("/api/v1/records/contacts/{}", ada.id);
        let hub = &hub;
        async move {
            let token = hub.login(user).await.token;
            let view: Customer360 = get(hub, &token, &path).await;
            assert_eq!(view.contact.id, ada.id);
            view.earlier_conversations
                .iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(history("a1").await, vec![earlier.conversation_id]);
    assert_eq!(history("outsider").await, vec![elsewhere.conversation_id]);
    assert_eq!(
        history("admin").await,
        vec![elsewhere.conversation_id, earlier.conversation_id]
    );
    // However busy the other team is with her, a1's team's history stays.
    for i in 0..20 {
        let mut busy = msg(
            Channel::Sms,
            &format!("c360-busy-{i}"),
            Some("+15550102000"),
            None,
        );
        busy.queue = Some("OQ".into());
        hub.ingress_msg(busy).await;
    }
    assert_eq!(history("a1").await, vec![earlier.conversation_id]);
    assert_eq!(history("outsider").await.len(), 20);
    let missing = call::<Customer360>(
        &hub,
        &token,
        reqwest::Method::GET,
        "/api/v1/records/contacts/999999",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(missing.1.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn quick_create_needs_a_last_name_or_an_account_name() {
    let hub = TestHub::start().await;
    let token = hub.login("a1").await.token;
    for (path, body) in [
        (
            "/api/v1/records/contacts",
            json!({"first_name": "A", "last_name": "  "}),
        ),
        ("/api/v1/records/accounts", json!({"name": ""})),
        (
            "/api/v1/records/contacts",
            json!({"first_name": "A", "last_name": "B", "account_id": 4242}),
        ),
    ] {
        let err = call::<Value>(&hub, &token, reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_err();
        assert!(
            matches!(err.1.code, ErrorCode::InvalidFrame | ErrorCode::NotFound),
            "{err:?}"
        );
    }
    let created: Contact = post(
        &hub,
        &token,
        "/api/v1/records/contacts",
        json!({"first_name": "New", "last_name": "Person", "phone": "555-0199"}),
    )
    .await;
    let found: Vec<Contact> = get(&hub, &token, "/api/v1/records/search?phone=5550199").await;
    assert_eq!(found[0].id, created.id);
}

#[tokio::test]
async fn linking_to_another_case_than_the_assigned_one_needs_confirmation() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let token = a1.token.clone();
    let (ada, t1, _, cases) = seed(&hub, &token).await;
    let conv = own(&hub, &mut a1, "link").await;
    let path = format!("/api/v1/conversations/{conv}/link");
    // Link to the record and its first case.
    let linked: ConversationSummary = post(
        &hub,
        &token,
        &path,
        json!({"contact_id": ada.id, "case_id": cases.ada[0]}),
    )
    .await;
    assert_eq!(
        linked.link,
        Some(RecordLink {
            contact_id: ada.id,
            case_id: Some(cases.ada[0])
        })
    );
    let ev = a1
        .wait_event("conversation updated", |e| {
            matches!(e, AgentEvent::ConversationUpdated { .. })
        })
        .await;
    let AgentEvent::ConversationUpdated { conversation } = ev else {
        unreachable!()
    };
    assert_eq!(conversation.link, linked.link);
    // Another case: refused without confirmation, nothing changes.
    let other = json!({"contact_id": ada.id, "case_id": cases.ada[1]});
    let err = call::<Value>(&hub, &token, reqwest::Method::POST, &path, Some(other))
        .await
        .unwrap_err();
    assert_eq!((err.0, err.1.code), (409, ErrorCode::Conflict));
    assert_eq!(hub.conversation(conv).await.link, linked.link);
    let confirmed: ConversationSummary = post(
        &hub,
        &token,
        &path,
        json!({"contact_id": ada.id, "case_id": cases.ada[1], "confirm_other_case": true}),
    )
    .await;
    assert_eq!(confirmed.link.unwrap().case_id, Some(cases.ada[1]));
    // A case of another contact is refused outright.
    let err = call::<Value>(
        &hub,
        &token,
        reqwest::Method::POST,
        &path,
        Some(json!({"contact_id": ada.id, "case_id": cases.twin, "confirm_other_case": true})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.1.code, ErrorCode::InvalidFrame);
    // Another agent cannot link it.
    let a2 = hub.login("a2").await.token;
    let err = call::<Value>(
        &hub,
        &a2,
        reqwest::Method::POST,
        &path,
        Some(json!({"contact_id": t1.id})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.1.code, ErrorCode::NotFound);
}

// ------------------------------------------------------ transfers

#[tokio::test]
async fn transfer_to_an_agent_with_an_alert_template_is_an_offer_from_the_sender() {
    let hub = TestHub::start_with(|c| {
        template_alert(
            queue_mut(c)
                .templates
                .entry(Scenario::Transfer)
                .or_default(),
        )
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "tr").await;
    let mut a2 = hub.connect("a2").await;
    let a2_id = hub.agent_id("a2").await;
    a1.ok(Command::TransferConversation {
        conversation_id: conv,
        target: TransferTarget::Agent { agent_id: a2_id },
        note: Some("billing question".into()),
    })
    .await;
    a1.wait_event("revoked", revoked(RevokeReason::Transferred))
        .await;
    let offer = a2.wait_offer().await;
    assert_eq!(offer.conversation.id, conv);
    assert_eq!(offer.template.kind, NotificationKind::Alert);
    match &offer.origin {
        OfferOrigin::Transfer { from, note } => {
            assert_eq!(from.name, "Agent a1");
            assert_eq!(note.as_deref(), Some("billing question"));
        }
        other => panic!("{other:?}"),
    }
    a2.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    assert_eq!(hub.conversation(conv).await.owner, Some(a2_id));
    // The sender can no longer write.
    assert_eq!(
        a1.refused(Command::SendMessage {
            conversation_id: conv,
            text: "still here?".into()
        })
        .await,
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn transfer_with_the_default_toast_template_assigns_with_the_origin() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "tr-toast").await;
    let mut a2 = hub.connect("a2").await;
    let a2_id = hub.agent_id("a2").await;
    a1.ok(Command::TransferConversation {
        conversation_id: conv,
        target: TransferTarget::Agent { agent_id: a2_id },
        note: None,
    })
    .await;
    let ev = a2
        .wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    let AgentEvent::ConversationAssigned { mode, origin, .. } = ev else {
        unreachable!()
    };
    assert_eq!(mode, AssignMode::Toast);
    assert!(matches!(origin, OfferOrigin::Transfer { .. }), "{origin:?}");
}

/// A teammate who stepped away (Do not disturb here; Inactive after a
/// missed offer alike) takes no work by name either: a transfer or an
/// assign request to them is refused, saying why. A consult, which asks
/// only for a word, still reaches them; once their presence is reset the
/// transfer goes through.
#[tokio::test]
async fn a_teammate_who_takes_no_work_is_refused_as_a_transfer_or_assign_target() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "tr-dnd").await;
    let mut a2 = hub.connect("a2").await;
    a2.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    let a2_id = hub.agent_id("a2").await;
    let transfer = Command::TransferConversation {
        conversation_id: conv,
        target: TransferTarget::Agent { agent_id: a2_id },
        note: None,
    };
    assert_eq!(a1.refused(transfer.clone()).await, ErrorCode::Conflict);
    assert_eq!(
        a1.refused(Command::RequestAssign {
            conversation_id: conv,
            agent_id: a2_id,
            reason: None,
        })
        .await,
        ErrorCode::Conflict
    );
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("a1").await)
    );
    a2.no_event(Duration::from_millis(300), "an offer or assignment", |e| {
        is_offer(e) || assigned_mode(e).is_some()
    })
    .await;
    a1.ok(Command::Consult {
        conversation_id: conv,
        agent_id: a2_id,
    })
    .await;
    let consult = a2.wait_offer().await;
    assert!(matches!(consult.origin, OfferOrigin::Consult { .. }));

    a2.ok(Command::SetPresence {
        presence: Presence::Available,
    })
    .await;
    a1.ok(transfer).await;
    a2.wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    assert_eq!(hub.conversation(conv).await.owner, Some(a2_id));
}

/// A chat transferred to a team-owned queue is a team message for every
/// teammate but its sender: a transfer never comes back.
#[tokio::test]
async fn transfer_to_a_team_owned_queue_is_not_offered_back_to_the_sender() {
    let hub = TestHub::start_with(|c| {
        transfer_queue(c).team_owned = true;
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "tq-team").await;
    let mut a2 = hub.connect("a2").await;
    a1.ok(Command::TransferConversation {
        conversation_id: conv,
        target: TransferTarget::Queue { queue: "Q2".into() },
        note: None,
    })
    .await;
    let offer = a2.wait_offer().await;
    assert_eq!(offer.conversation.id, conv);
    assert!(matches!(offer.origin, OfferOrigin::TeamMessage { .. }));
    a1.no_event(
        Duration::from_millis(300),
        "its own transfer back",
        is_offer,
    )
    .await;
    // Nor when the customer writes again.
    hub.ingress(Channel::Sms, "tq-team", "Cleo", "still there?")
        .await;
    a2.wait_offer().await;
    a1.no_event(
        Duration::from_millis(300),
        "its own transfer back",
        is_offer,
    )
    .await;
}

/// Accepting an assign request frees one of the old owner's sessions: a
/// chat that waited for room goes to them at once, not at some later
/// change.
#[tokio::test]
async fn accepting_an_assign_request_gives_the_old_owner_waiting_work() {
    let hub = TestHub::start_with(|c| {
        for a in &mut c.agents {
            a.capacity = 1;
        }
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let t1 = own(&hub, &mut a1, "room-1").await;
    let mut a2 = hub.connect("a2").await;
    own(&hub, &mut a2, "room-0").await;
    let waiting = hub.ingress(Channel::Sms, "room-3", "Wai", "waiting").await;
    assert_eq!(
        hub.conversation(waiting.conversation_id).await.status,
        ConversationStatus::Queued
    );
    a1.ok(Command::RequestAssign {
        conversation_id: t1,
        agent_id: hub.agent_id("a2").await,
        reason: None,
    })
    .await;
    let request = a2.wait_offer().await;
    a2.ok(Command::AcceptOffer {
        offer_id: request.id,
    })
    .await;
    let o = a1.wait_offer().await;
    assert_eq!(o.conversation.id, waiting.conversation_id);
}

#[tokio::test]
async fn transfer_to_a_queue_is_routed_there_and_not_back_to_the_sender() {
    let hub = TestHub::start_with(|c| {
        template_alert(
            transfer_queue(c)
                .templates
                .entry(Scenario::Transfer)
                .or_default(),
        );
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "tq").await;
    let mut a2 = hub.connect("a2").await;
    a1.ok(Command::TransferConversation {
        conversation_id: conv,
        target: TransferTarget::Queue { queue: "Q2".into() },
        note: None,
    })
    .await;
    let offer = a2.wait_offer().await;
    assert_eq!(offer.conversation.queue, "Q2");
    assert_eq!(offer.conversation.scenario, Scenario::Transfer);
    assert!(matches!(offer.origin, OfferOrigin::Transfer { .. }));
    a1.no_event(Duration::from_millis(300), "offer back", is_offer)
        .await;
    assert_eq!(
        a2.refused(Command::TransferConversation {
            conversation_id: conv,
            target: TransferTarget::Queue {
                queue: "nope".into()
            },
            note: None,
        })
        .await,
        ErrorCode::NotFound,
        "only the owner transfers"
    );
}

/// With nobody else free, a conversation transferred to a queue waits
/// there: a routing pass that gives declined chats another chance does not
/// hand it back to the agent who sent it away.
#[tokio::test]
async fn a_transfer_to_a_queue_with_nobody_free_waits_and_never_comes_back() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "tq-none").await;
    a1.ok(Command::TransferConversation {
        conversation_id: conv,
        target: TransferTarget::Queue { queue: "Q".into() },
        note: None,
    })
    .await;
    let back = |e: &AgentEvent| {
        is_offer(e)
            || matches!(e, AgentEvent::ConversationAssigned { origin, .. }
                if matches!(origin, OfferOrigin::Transfer { .. }))
    };
    a1.no_event(Duration::from_millis(400), "the chat back", back)
        .await;
    assert_eq!(
        hub.conversation(conv).await.status,
        ConversationStatus::Queued
    );
    // Another routing pass (a presence change starts one) still skips a1.
    a1.ok(Command::SetPresence {
        presence: Presence::Busy,
    })
    .await;
    a1.no_event(Duration::from_millis(300), "the chat back", back)
        .await;
    // A teammate who comes online gets it.
    let mut a2 = hub.connect("a2").await;
    a2.wait_event("the transferred chat", back).await;
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("a2").await)
    );
    // a2 sends it to the queue in turn: a1's transfer is history now, so
    // a1 is asked (it would wait for nobody if both senders were kept out).
    a2.ok(Command::TransferConversation {
        conversation_id: conv,
        target: TransferTarget::Queue { queue: "Q".into() },
        note: None,
    })
    .await;
    a1.wait_event("the chat, a2's transfer", back).await;
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("a1").await)
    );
}

#[tokio::test]
async fn escalation_goes_to_a_supervisor_of_the_team() {
    let hub = TestHub::start_with(|c| {
        template_alert(
            queue_mut(c)
                .templates
                .entry(Scenario::Escalation)
                .or_default(),
        )
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "esc").await;
    let mut sup = hub.connect("sup").await;
    a1.ok(Command::EscalateConversation {
        conversation_id: conv,
        supervisor_id: None,
        note: Some("angry customer".into()),
    })
    .await;
    let offer = sup.wait_offer().await;
    assert_eq!(offer.conversation.scenario, Scenario::Escalation);
    assert!(
        matches!(&offer.origin, OfferOrigin::Escalation { from, .. } if from.name == "Agent a1"),
        "{:?}",
        offer.origin
    );
    // Escalating to a plain agent is refused.
    let mut a2 = hub.connect("a2").await;
    let conv2 = hub.ingress(Channel::Sms, "esc2", "Dee", "x").await;
    let o = a2.wait_offer().await;
    assert_eq!(o.conversation.id, conv2.conversation_id);
    a2.ok(Command::AcceptOffer { offer_id: o.id }).await;
    assert_eq!(
        a2.refused(Command::EscalateConversation {
            conversation_id: conv2.conversation_id,
            supervisor_id: Some(hub.agent_id("a3").await),
            note: None,
        })
        .await,
        ErrorCode::InvalidFrame
    );
}

#[tokio::test]
async fn escalation_needs_a_signed_in_supervisor() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "esc-away").await;
    for supervisor_id in [None, Some(hub.agent_id("sup").await)] {
        assert_eq!(
            a1.refused(Command::EscalateConversation {
                conversation_id: conv,
                supervisor_id,
                note: None,
            })
            .await,
            ErrorCode::Conflict
        );
    }
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("a1").await)
    );
    let mut sup = hub.connect("sup").await;
    a1.ok(Command::EscalateConversation {
        conversation_id: conv,
        supervisor_id: None,
        note: None,
    })
    .await;
    sup.wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
}

/// Of the team's signed-in supervisors, one whose presence takes work gets
/// an escalation before one on Do not disturb; with every one of them on
/// Do not disturb it still goes to one (a call for help is not refused
/// while a supervisor is there).
#[tokio::test]
async fn escalation_prefers_a_supervisor_who_takes_work() {
    let hub = TestHub::start_with(|c| {
        add_second_supervisor(c);
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    // Owned before the supervisors come, so routing offers them to a1.
    let conv = own(&hub, &mut a1, "esc-dnd").await;
    let conv2 = own(&hub, &mut a1, "esc-dnd-2").await;
    let mut sup = hub.connect("sup").await;
    let mut sup2 = hub.connect("sup2").await;
    // The first in the team's order is the one on Do not disturb.
    assert!(hub.agent_id("sup").await.0 < hub.agent_id("sup2").await.0);
    sup.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    let escalate = |conversation_id| Command::EscalateConversation {
        conversation_id,
        supervisor_id: None,
        note: None,
    };
    a1.ok(escalate(conv)).await;
    sup2.wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("sup2").await)
    );
    sup.no_event(Duration::from_millis(300), "an escalation", |e| {
        is_offer(e) || assigned_mode(e).is_some()
    })
    .await;

    sup2.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    a1.ok(escalate(conv2)).await;
    sup.wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    assert_eq!(
        hub.conversation(conv2).await.owner,
        Some(hub.agent_id("sup").await)
    );
}

/// An admin moves an agent to another team while one of the old team's
/// chats is offered to them: the offer is withdrawn and the chat goes to
/// someone still in that team, instead of waiting for the moved agent to
/// accept a chat of a team they no longer belong to.
#[tokio::test]
async fn moving_an_agent_to_another_team_hands_on_the_old_teams_offer() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let c = hub.ingress(Channel::Sms, "moved", "Mo", "hi").await;
    let o = a1.wait_offer().await;
    assert_eq!(o.conversation.id, c.conversation_id);
    let mut a2 = hub.connect("a2").await;
    let admin = hub.login("admin").await;
    let r = hub.post_agent(&admin.token, &json!({"username":"a1","display_name":"Agent a1","role":"agent","team":"Elsewhere","capacity":3})).await;
    assert_eq!(r.status(), 200);
    a1.wait_event("the offer withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o.id)
    })
    .await;
    let o2 = a2.wait_offer().await;
    assert_eq!(o2.conversation.id, c.conversation_id);
    assert_eq!(
        a1.refused(Command::AcceptOffer { offer_id: o.id }).await,
        ErrorCode::Conflict
    );
    a2.ok(Command::AcceptOffer { offer_id: o2.id }).await;
    assert_eq!(
        hub.conversation(c.conversation_id).await.owner,
        Some(hub.agent_id("a2").await)
    );
    // Saving the same team again hands nothing on.
    let c2 = hub.ingress(Channel::Sms, "stays", "St", "hi").await;
    let o3 = a2.wait_offer().await;
    assert_eq!(o3.conversation.id, c2.conversation_id);
    let r = hub.post_agent(&admin.token, &json!({"username":"a2","display_name":"Agent a2","role":"agent","team":"T","capacity":3})).await;
    assert_eq!(r.status(), 200);
    a2.ok(Command::AcceptOffer { offer_id: o3.id }).await;
}

/// An escalation from another team's chat to an admin is still the
/// admin's to answer when the admin moves between teams: only the old
/// team's offers are handed on.
#[tokio::test]
async fn moving_an_admin_keeps_an_escalation_from_another_team() {
    let hub = TestHub::start_with(|c| {
        let mut oq = other_team_sms_queue();
        template_alert(oq.templates.entry(Scenario::Escalation).or_default());
        c.queues.push(oq);
    })
    .await;
    let mut outsider = hub.connect("outsider").await;
    let mut admin = hub.connect("admin").await;
    let c = hub.ingress_other_team("esc-move", "Ed").await;
    let o = outsider.wait_offer().await;
    outsider.ok(Command::AcceptOffer { offer_id: o.id }).await;
    outsider
        .ok(Command::EscalateConversation {
            conversation_id: c.conversation_id,
            supervisor_id: Some(hub.agent_id("admin").await),
            note: None,
        })
        .await;
    let escalation = admin.wait_offer().await;
    assert_eq!(escalation.conversation.id, c.conversation_id);
    let token = hub.login("admin").await.token;
    let r = hub.post_agent(&token, &json!({"username":"admin","display_name":"Admin","role":"admin","team":"Elsewhere","capacity":3})).await;
    assert_eq!(r.status(), 200);
    admin
        .ok(Command::AcceptOffer {
            offer_id: escalation.id,
        })
        .await;
    assert_eq!(
        hub.conversation(c.conversation_id).await.owner,
        Some(hub.agent_id("admin").await)
    );
}

/// An admin moves a queue to another team while one of its chats is
/// offered to someone of the old team: the offer is withdrawn and the chat
/// goes to the new team, instead of waiting for an agent whose team it is
/// no longer.
#[tokio::test]
async fn moving_a_queue_to_another_team_hands_its_offer_to_the_new_team() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let c = hub.ingress(Channel::Sms, "q-moved", "Quinn", "hi").await;
    let o = a1.wait_offer().await;
    assert_eq!(o.conversation.id, c.conversation_id);
    let mut outsider = hub.connect("outsider").await;
    let admin = hub.login("admin").await;
    let r = hub
        .put_queue(
            &admin.token,
            &json!({"name":"Q","team":"Other","channels":["sms"],"allowed_presences":["available"],"templates":{}}),
        )
        .await;
    assert_eq!(r.status(), 204);
    a1.wait_event("the offer withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o.id)
    })
    .await;
    let o2 = outsider.wait_offer().await;
    assert_eq!(o2.conversation.id, c.conversation_id);
    assert_eq!(
        a1.refused(Command::AcceptOffer { offer_id: o.id }).await,
        ErrorCode::Conflict
    );
    outsider.ok(Command::AcceptOffer { offer_id: o2.id }).await;
    assert_eq!(
        hub.conversation(c.conversation_id).await.owner,
        Some(hub.agent_id("outsider").await)
    );
}

/// A team-owned queue moved to another team: the old team's team messages
/// are withdrawn and the new team's members online hear of the waiting
/// chat at once, instead of at the customer's next message.
#[tokio::test]
async fn moving_a_team_owned_queue_tells_the_new_team_of_its_waiting_chat() {
    let hub = TestHub::start_with(|c| queue_mut(c).team_owned = true).await;
    let mut a1 = hub.connect("a1").await;
    let mut outsider = hub.connect("outsider").await;
    let c = hub.ingress(Channel::Sms, "q-team", "Tam", "anyone?").await;
    let o = a1.wait_offer().await;
    assert!(matches!(o.origin, OfferOrigin::TeamMessage { .. }));
    let admin = hub.login("admin").await;
    let r = hub
        .put_queue(
            &admin.token,
            &json!({"name":"Q","team":"Other","channels":["sms"],"allowed_presences":["available"],"templates":{},"team_owned":true}),
        )
        .await;
    assert_eq!(r.status(), 204);
    a1.wait_event("the team message withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o.id)
    })
    .await;
    let o2 = outsider.wait_offer().await;
    assert_eq!(o2.conversation.id, c.conversation_id);
    assert!(matches!(o2.origin, OfferOrigin::TeamMessage { .. }));
    outsider.ok(Command::AcceptOffer { offer_id: o2.id }).await;
    assert_eq!(
        hub.conversation(c.conversation_id).await.owner,
        Some(hub.agent_id("outsider").await)
    );
}

/// A queue's team no longer owns its chats: a chat waiting on team
/// messages is routed as any other. Before, nothing asked anyone again
/// (team reminders and the Waiting list are for team-owned queues, a new
/// customer message notified nobody), and the customer waited for good.
#[tokio::test]
async fn a_queue_no_longer_team_owned_routes_its_waiting_team_chat() {
    let hub = TestHub::start_with(|c| queue_mut(c).team_owned = true).await;
    let mut a1 = hub.connect("a1").await;
    let c = hub
        .ingress(Channel::Sms, "not-owned", "Nia", "hello?")
        .await;
    let o = a1.wait_offer().await;
    assert!(matches!(o.origin, OfferOrigin::TeamMessage { .. }));
    let admin = hub.login("admin").await;
    let r = hub
        .put_queue(
            &admin.token,
            &json!({"name":"Q","team":"T","channels":["sms"],"allowed_presences":["available"],"templates":{}}),
        )
        .await;
    assert_eq!(r.status(), 204);
    a1.wait_event("the team message withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o.id)
    })
    .await;
    let routed = a1.wait_offer().await;
    assert_eq!(routed.conversation.id, c.conversation_id);
    assert_eq!(routed.origin, OfferOrigin::NewConversation);
    a1.ok(Command::AcceptOffer {
        offer_id: routed.id,
    })
    .await;
    assert_eq!(
        hub.conversation(c.conversation_id).await.owner,
        Some(hub.agent_id("a1").await)
    );
}

/// A team-owned queue now gives work to a presence it did not: members
/// in that presence hear of its waiting chat at once, not at the
/// customer's next message or their own next change of presence.
#[tokio::test]
async fn widening_a_team_queues_presences_tells_members_now_allowed() {
    let hub = TestHub::start_with(|c| {
        queue_mut(c).team_owned = true;
        queue_mut(c).allowed_presences = vec![Presence::Available];
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    a1.ok(Command::SetPresence {
        presence: Presence::Busy,
    })
    .await;
    let c = hub.ingress(Channel::Sms, "widened", "Wen", "hi").await;
    a1.no_event(Duration::from_millis(300), "an offer while Busy", is_offer)
        .await;
    let admin = hub.login("admin").await;
    let r = hub
        .put_queue(
            &admin.token,
            &json!({"name":"Q","team":"T","channels":["sms"],"allowed_presences":["available","busy"],"templates":{},"team_owned":true}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let o = a1.wait_offer().await;
    assert_eq!(o.conversation.id, c.conversation_id);
    assert!(matches!(o.origin, OfferOrigin::TeamMessage { .. }));
}

/// A supervisor made a plain agent cannot take an escalation offered to
/// them before: it is withdrawn and handed on, as a declined one is.
#[tokio::test]
async fn a_supervisor_made_an_agent_loses_an_escalation_offered_to_them() {
    let hub = TestHub::start_with(|c| {
        template_alert(
            queue_mut(c)
                .templates
                .entry(Scenario::Escalation)
                .or_default(),
        );
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "demoted").await;
    let mut sup = hub.connect("sup").await;
    a1.ok(Command::EscalateConversation {
        conversation_id: conv,
        supervisor_id: Some(hub.agent_id("sup").await),
        note: None,
    })
    .await;
    let escalation = sup.wait_offer().await;
    assert_eq!(escalation.conversation.id, conv);
    let admin = hub.login("admin").await;
    let r = hub.post_agent(&admin.token, &json!({"username":"sup","display_name":"Agent sup","role":"agent","team":"T","capacity":10})).await;
    assert_eq!(r.status(), 200);
    sup.wait_event("the escalation withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == escalation.id)
    })
    .await;
    assert_eq!(
        sup.refused(Command::AcceptOffer {
            offer_id: escalation.id
        })
        .await,
        ErrorCode::Conflict
    );
    assert_ne!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("sup").await)
    );
}

/// A chat routed to an agent as a queue transfer, and the queue moves to
/// another team: routing chose that agent, not a person, so the offer goes
/// to the new team as a new chat's would.
#[tokio::test]
async fn moving_a_queue_hands_on_a_transfer_routing_offered_to_the_old_team() {
    let hub = TestHub::start_with(|c| {
        template_alert(
            transfer_queue(c)
                .templates
                .entry(Scenario::Transfer)
                .or_default(),
        );
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "q2-moved").await;
    let mut a2 = hub.connect("a2").await;
    a1.ok(Command::TransferConversation {
        conversation_id: conv,
        target: TransferTarget::Queue { queue: "Q2".into() },
        note: None,
    })
    .await;
    let o = a2.wait_offer().await;
    assert!(matches!(o.origin, OfferOrigin::Transfer { .. }));
    let mut outsider = hub.connect("outsider").await;
    let admin = hub.login("admin").await;
    let r = hub
        .put_queue(
            &admin.token,
            &json!({"name":"Q2","team":"Other","channels":[],"allowed_presences":["available"],
                    "templates":{"transfer":{"kind":"alert","timeout_secs":30,"show_timeout":true,"allow_reject":true,"details":[]}}}),
        )
        .await;
    assert_eq!(r.status(), 204);
    a2.wait_event("the offer withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o.id)
    })
    .await;
    let o2 = outsider.wait_offer().await;
    assert_eq!(o2.conversation.id, conv);
}

/// An admin with no team, offered an escalation from a team's chat, made a
/// supervisor of another team: a supervisor takes its own team's
/// escalations only, so the offer is handed on.
#[tokio::test]
async fn an_admin_made_another_teams_supervisor_loses_an_escalation_from_elsewhere() {
    let hub = TestHub::start_with(|c| {
        template_alert(
            queue_mut(c)
                .templates
                .entry(Scenario::Escalation)
                .or_default(),
        );
        for a in c.agents.iter_mut().filter(|a| a.username == "admin") {
            a.team = None;
        }
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "admin-demoted").await;
    let mut admin = hub.connect("admin").await;
    a1.ok(Command::EscalateConversation {
        conversation_id: conv,
        supervisor_id: Some(hub.agent_id("admin").await),
        note: None,
    })
    .await;
    let escalation = admin.wait_offer().await;
    let token = hub.login("admin").await.token;
    let r = hub.post_agent(&token, &json!({"username":"admin","display_name":"Admin","role":"supervisor","team":"Other","capacity":10})).await;
    assert_eq!(r.status(), 200);
    admin
        .wait_event("the escalation withdrawn", |e| {
            matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == escalation.id)
        })
        .await;
    assert_eq!(
        admin
            .refused(Command::AcceptOffer {
                offer_id: escalation.id
            })
            .await,
        ErrorCode::Conflict
    );
}

/// A configuration edit that moves an agent and a queue to another team
/// together: the agent keeps the queue's offer (it is the new team's work,
/// and the agent is in that team). Before, agents were applied first and
/// the offer was handed on as the old team's.
#[tokio::test]
async fn a_configuration_moving_an_agent_and_its_queue_together_keeps_the_offer() {
    let mut hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let c = hub.ingress(Channel::Sms, "both-moved", "Bo", "hi").await;
    let o = a1.wait_offer().await;
    assert_eq!(o.conversation.id, c.conversation_id);
    let seq = a1.last_seq;
    a1.close().await;
    for a in hub.config.agents.iter_mut().filter(|a| a.username == "a1") {
        a.team = Some("Other".into());
    }
    queue_mut(&mut hub.config).team = "Other".into();
    hub.restart().await;
    let login = hub.login("a1").await;
    let (mut a1, _, _) = Agent::connect(&hub.ws_url(), &login.token, Some(seq)).await;
    a1.ok(Command::AcceptOffer { offer_id: o.id }).await;
    assert_eq!(
        hub.conversation(c.conversation_id).await.owner,
        Some(hub.agent_id("a1").await)
    );
}

/// An agent who signs out with an offer up cannot answer it: it goes on to
/// a teammate at once, whether the app's link closes before the logout
/// (as the app signs out) or the logout closes the link, instead of
/// lapsing into an assignment to the agent who left and waiting out the
/// grace for the app that closed (seed 001's eight minutes).
#[tokio::test]
async fn an_offer_up_for_an_agent_who_signs_out_goes_to_a_teammate_at_once() {
    let hub = TestHub::start().await;
    // The link closes first, then the logout.
    let mut a1 = hub.connect("a1").await;
    let c1 = hub.ingress(Channel::Sms, "so-1", "Sol", "hi").await;
    let o1 = a1.wait_offer().await;
    assert_eq!(o1.conversation.id, c1.conversation_id);
    let mut a2 = hub.connect("a2").await;
    let (token, seq) = (a1.token.clone(), a1.last_seq);
    a1.close().await;
    hub.logout(&token).await;
    let o2 = a2.wait_offer().await;
    assert_eq!(o2.conversation.id, c1.conversation_id);
    a2.ok(Command::AcceptOffer { offer_id: o2.id }).await;
    assert_eq!(
        hub.conversation(c1.conversation_id).await.owner,
        Some(hub.agent_id("a2").await)
    );

    // The logout first, closing the link.
    let c2 = hub.ingress(Channel::Sms, "so-2", "Tam", "hello").await;
    let o3 = a2.wait_offer().await;
    assert_eq!(o3.conversation.id, c2.conversation_id);
    let mut a3 = hub.connect("a3").await;
    hub.logout(&a2.token).await;
    assert_eq!(a2.closed_with().await, close_code::TOKEN_REVOKED);
    let o4 = a3.wait_offer().await;
    assert_eq!(o4.conversation.id, c2.conversation_id);

    // Signed in again, a1 reads that the offer was withdrawn, not that it
    // was assigned on timeout, and is still Available (no missed offer).
    let login = hub.login("a1").await;
    let (mut a1, _, _) = Agent::connect(&hub.ws_url(), &login.token, Some(seq)).await;
    a1.wait_event("the offer withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o1.id)
    })
    .await;
    a1.no_event(
        Duration::from_millis(300),
        "a penalty or an assignment",
        |e| {
            assigned_mode(e).is_some()
                || matches!(
                    e,
                    AgentEvent::PresenceChanged { .. } | AgentEvent::Notice { .. }
                )
        },
    )
    .await;
}

/// A supervisor at the session limit would have to refuse an escalation:
/// one with room gets it first, even on Do not disturb.
#[tokio::test]
async fn escalation_goes_to_a_supervisor_with_room_before_one_at_the_limit() {
    let hub = TestHub::start_with(|c| {
        c.routing.max_sessions = 1;
        add_second_supervisor(c);
    })
    .await;
    // sup owns a chat: at the limit.
    let mut sup = hub.connect("sup").await;
    own(&hub, &mut sup, "esc-full-sup").await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "esc-full").await;
    sup.ok(Command::SetPresence {
        presence: Presence::Available,
    })
    .await;
    let mut sup2 = hub.connect("sup2").await;
    sup2.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    a1.ok(Command::EscalateConversation {
        conversation_id: conv,
        supervisor_id: None,
        note: None,
    })
    .await;
    sup2.wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("sup2").await)
    );
}

/// A supervisor consulting on the conversation already has its tab: the
/// escalation makes it the owner of that tab, one session still, so at the
/// limit with only that consult it has room and is chosen (it knows the
/// conversation) before another supervisor.
#[tokio::test]
async fn escalation_counts_a_consulting_supervisors_tab_for_it_once() {
    let hub = TestHub::start_with(|c| {
        c.routing.max_sessions = 1;
        add_second_supervisor(c);
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "esc-consult").await;
    let mut sup = hub.connect("sup").await;
    a1.ok(Command::Consult {
        conversation_id: conv,
        agent_id: hub.agent_id("sup").await,
    })
    .await;
    let consult = sup.wait_offer().await;
    sup.ok(Command::AcceptOffer {
        offer_id: consult.id,
    })
    .await;
    let mut sup2 = hub.connect("sup2").await;
    sup2.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    a1.ok(Command::EscalateConversation {
        conversation_id: conv,
        supervisor_id: None,
        note: None,
    })
    .await;
    eventually_owner(&hub, conv, hub.agent_id("sup").await).await;
}

/// Waits for `conv` to be owned by `owner` (an escalation's auto-assign or
/// accept lands a moment after the command's answer).
async fn eventually_owner(hub: &TestHub, conv: ConversationId, owner: AgentId) {
    for _ in 0..100 {
        if hub.conversation(conv).await.owner == Some(owner) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{conv} never went to {owner}: {:?}",
        hub.conversation(conv).await.owner
    );
}

/// A named supervisor must be one of the conversation's team: another
/// team's supervisor, signed in or not, and another team's agent are all
/// "not found", like an id nobody has, so errors reveal no roles.
#[tokio::test]
async fn escalation_to_another_teams_supervisor_is_not_found() {
    let hub = TestHub::start_with(|c| {
        for (name, role) in [("osup", Role::Supervisor), ("osup-away", Role::Supervisor)] {
            let mut other = c
                .agents
                .iter()
                .find(|a| a.username == "outsider")
                .unwrap()
                .clone();
            other.username = name.into();
            other.role = role;
            c.agents.push(other);
        }
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "esc-other").await;
    let _osup = hub.connect("osup").await;
    let _outsider = hub.connect("outsider").await;
    for supervisor_id in [
        hub.agent_id("osup").await,
        hub.agent_id("osup-away").await,
        hub.agent_id("outsider").await,
        AgentId(9_999),
    ] {
        assert_eq!(
            a1.refused(Command::EscalateConversation {
                conversation_id: conv,
                supervisor_id: Some(supervisor_id),
                note: None,
            })
            .await,
            ErrorCode::NotFound,
            "{supervisor_id:?}"
        );
    }
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("a1").await)
    );
}

#[tokio::test]
async fn bot_escalation_brings_the_transcript_to_the_alert_and_the_session() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let mut m = msg(Channel::Chat, "bot", None, Some("x@example.com"));
    m.scenario = Some(Scenario::BotEscalation);
    m.transcript = vec![
        "Bot: How can I help?".into(),
        "Customer: <b>my order</b>".into(),
    ];
    m.text = "I want a person".into();
    let c = hub.ingress_msg(m).await;
    let offer = a1.wait_offer().await;
    assert_eq!(offer.conversation.id, c.conversation_id);
    assert_eq!(
        offer.origin,
        OfferOrigin::BotEscalation {
            transcript: vec![
                "Bot: How can I help?".into(),
                "Customer: <b>my order</b>".into()
            ]
        }
    );
    a1.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    let ev = a1
        .wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    let AgentEvent::ConversationAssigned { messages, .. } = ev else {
        unreachable!()
    };
    let system: Vec<_> = messages
        .iter()
        .filter(|m| m.author == Author::System)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(
        system,
        ["Bot: How can I help?", "Customer: <b>my order</b>"]
    );
    assert_eq!(messages.last().unwrap().text, "I want a person");
}

/// A consult is declined with no reason: the requester hears a "no"
/// (`rejected`), not the silence of one left unanswered.
#[tokio::test]
async fn a_consult_declined_without_a_reason_is_answered_as_rejected() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "consult-no").await;
    let mut a2 = hub.connect("a2").await;
    a1.ok(Command::Consult {
        conversation_id: conv,
        agent_id: hub.agent_id("a2").await,
    })
    .await;
    let offer = a2.wait_offer().await;
    a2.ok(Command::RejectOffer {
        offer_id: offer.id,
        reason: None,
    })
    .await;
    let ev = a1.wait_event("answer", answered).await;
    assert!(
        matches!(
            ev,
            AgentEvent::RequestAnswered {
                request: RequestKind::Consult,
                accepted: false,
                rejected: true,
                reason: None,
                ..
            }
        ),
        "{ev:?}"
    );
}

#[tokio::test]
async fn consult_joins_a_second_agent_without_taking_ownership() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "consult").await;
    let mut a2 = hub.connect("a2").await;
    let (a1_id, a2_id) = (hub.agent_id("a1").await, hub.agent_id("a2").await);
    a1.ok(Command::Consult {
        conversation_id: conv,
        agent_id: a2_id,
    })
    .await;
    let offer = a2.wait_offer().await;
    assert!(matches!(offer.origin, OfferOrigin::Consult { .. }));
    a2.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    let ev = a2
        .wait_event("joined", |e| assigned_mode(e).is_some())
        .await;
    assert_eq!(assigned_mode(&ev).unwrap().0, AssignMode::Joined);
    let summary = hub.conversation(conv).await;
    assert_eq!(summary.owner, Some(a1_id));
    assert_eq!(summary.participants, vec![a2_id]);
    a1.wait_event("answer", answered).await;
    // Both hear the customer; the consultant can write.
    hub.ingress(Channel::Sms, "consult", "Cleo", "are you there")
        .await;
    a1.wait_event("message", message_added).await;
    a2.wait_event("message", message_added).await;
    a2.ok(Command::SendMessage {
        conversation_id: conv,
        text: "colleague here".into(),
    })
    .await;
    a1.wait_event(
        "colleague's message",
        |e| matches!(e, AgentEvent::MessageAdded { message } if message.text == "colleague here"),
    )
    .await;
    // The owner closes: the consultant leaves too.
    a1.ok(Command::CloseConversation {
        conversation_id: conv,
    })
    .await;
    a2.wait_event("left", revoked(RevokeReason::LeftConsult))
        .await;
}

// -------------------------------------------------- team-owned chats

/// The queue team-owned, its SMS offers alerts that lapse after a second.
fn team_sms_lapsing_in_a_second(c: &mut switchboard_hub::config::HubConfig) {
    let q = queue_mut(c);
    q.team_owned = true;
    q.templates.insert(
        Scenario::IncomingSms,
        switchboard_hub::config::TemplateOverride {
            kind: Some(NotificationKind::Alert),
            timeout_secs: Some(1),
            ..Default::default()
        },
    );
}

#[tokio::test]
async fn team_owned_conversation_notifies_every_member_until_one_accepts() {
    let hub = TestHub::start_with(|c| queue_mut(c).team_owned = true).await;
    let mut a1 = hub.connect("a1").await;
    let mut a2 = hub.connect("a2").await;
    let c = hub.ingress(Channel::Sms, "team", "Tia", "first").await;
    let o1 = a1.wait_offer().await;
    let o2 = a2.wait_offer().await;
    assert!(matches!(
        o1.origin,
        OfferOrigin::TeamMessage { messages: 1, .. }
    ));
    assert_eq!(o2.conversation.id, c.conversation_id);
    // Each new message reaches every member again (the old alert is
    // replaced).
    hub.ingress(Channel::Sms, "team", "Tia", "second").await;
    a1.wait_event("withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o1.id)
    })
    .await;
    let o1b = a1.wait_offer().await;
    let o2b = a2.wait_offer().await;
    assert_eq!(
        o1b.origin,
        OfferOrigin::TeamMessage {
            preview: "second".into(),
            messages: 2
        }
    );
    // The first to accept owns it; the others' alerts go away.
    a2.ok(Command::AcceptOffer { offer_id: o2b.id }).await;
    a1.wait_event("withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o1b.id)
    })
    .await;
    assert_eq!(
        a1.refused(Command::AcceptOffer { offer_id: o1b.id }).await,
        ErrorCode::Conflict
    );
    // Later messages notify only the owner.
    hub.ingress(Channel::Sms, "team", "Tia", "third").await;
    a2.wait_event("message", message_added).await;
    a1.no_event(Duration::from_millis(400), "anything about it", |e| {
        is_offer(e) || message_added(e)
    })
    .await;
}

/// A teammate who was away (Do not disturb) when the customer wrote hears
/// of the unclaimed chat on becoming available, once; one who was told already is not
/// told again until the customer writes again.
#[tokio::test]
async fn a_teammate_coming_online_hears_of_an_unclaimed_team_chat() {
    let hub = TestHub::start_with(|c| queue_mut(c).team_owned = true).await;
    let mut a1 = hub.connect("a1").await;
    let mut a2 = hub.connect("a2").await;
    a1.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    let c = hub.ingress(Channel::Sms, "late", "Lou", "anyone?").await;
    let o2 = a2.wait_offer().await;
    assert_eq!(o2.conversation.id, c.conversation_id);
    a1.no_event(
        Duration::from_millis(300),
        "an offer in Do not disturb",
        is_offer,
    )
    .await;
    a2.ok(Command::RejectOffer {
        offer_id: o2.id,
        reason: None,
    })
    .await;

    a1.ok(Command::SetPresence {
        presence: Presence::Available,
    })
    .await;
    let o1 = a1.wait_offer().await;
    assert_eq!(o1.conversation.id, c.conversation_id);
    assert_eq!(
        o1.origin,
        OfferOrigin::TeamMessage {
            preview: "anyone?".into(),
            messages: 1
        }
    );
    // Told already: another presence change or reconnect tells nobody again.
    a1.ok(Command::SetPresence {
        presence: Presence::Busy,
    })
    .await;
    a2.ok(Command::SetPresence {
        presence: Presence::Available,
    })
    .await;
    drop(a2);
    let mut a2 = hub.connect("a2").await;
    a1.no_event(Duration::from_millis(300), "a second offer", is_offer)
        .await;
    a2.no_event(
        Duration::from_millis(300),
        "the declined chat again",
        |e| matches!(e, AgentEvent::OfferCreated { offer } if offer.id != o2.id),
    )
    .await;
    // The customer writes again: both hear of it.
    hub.ingress(Channel::Sms, "late", "Lou", "hello??").await;
    assert!(matches!(
        a2.wait_offer().await.origin,
        OfferOrigin::TeamMessage { messages: 2, .. }
    ));
    let o1 = a1.wait_offer().await;
    a1.ok(Command::AcceptOffer { offer_id: o1.id }).await;
    assert_eq!(
        hub.conversation(c.conversation_id).await.owner,
        Some(hub.agent_id("a1").await)
    );
}

/// A team chat nobody answered is not left waiting for the customer's
/// next message: once every teammate's offer has ended unanswered (here one
/// lapses while the other is still up, then that one is declined), the
/// team is asked again after `team_reminder_secs`; a reminder that falls
/// due after the chat was taken asks nobody.
#[tokio::test]
async fn a_team_chat_whose_offers_all_ended_unanswered_is_offered_to_the_team_again() {
    let hub = TestHub::start_with(|c| {
        c.routing.team_reminder_secs = 1;
        team_sms_lapsing_in_a_second(c);
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let mut a2 = hub.connect("a2").await;
    a1.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    let c = hub.ingress(Channel::Sms, "quiet", "Quinn", "hello?").await;
    let o2 = a2.wait_offer().await;
    // a1 comes back later, so its offer is still up when a2's lapses.
    tokio::time::sleep(Duration::from_millis(500)).await;
    a1.ok(Command::SetPresence {
        presence: Presence::Available,
    })
    .await;
    let o1 = a1.wait_offer().await;
    a2.wait_event(
        "lapsed",
        |e| matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::TimedOut, .. } if *offer_id == o2.id),
    )
    .await;
    a1.ok(Command::RejectOffer {
        offer_id: o1.id,
        reason: None,
    })
    .await;
    // Asked again, both, with the same message: the customer still waits.
    let again = a2.wait_offer().await;
    assert_eq!(again.conversation.id, c.conversation_id);
    assert_eq!(
        again.origin,
        OfferOrigin::TeamMessage {
            preview: "hello?".into(),
            messages: 1
        }
    );
    let o1b = a1.wait_offer().await;
    assert_eq!(o1b.conversation.id, c.conversation_id);
    // Both decline: a reminder is due in a second. The customer writes
    // first, and a1 takes the chat before the reminder falls due.
    a1.ok(Command::RejectOffer {
        offer_id: o1b.id,
        reason: None,
    })
    .await;
    a2.ok(Command::RejectOffer {
        offer_id: again.id,
        reason: None,
    })
    .await;
    hub.ingress(Channel::Sms, "quiet", "Quinn", "still there?")
        .await;
    let o1c = a1.wait_offer().await;
    a2.wait_offer().await;
    a1.ok(Command::AcceptOffer { offer_id: o1c.id }).await;
    assert_eq!(
        hub.conversation(c.conversation_id).await.owner,
        Some(hub.agent_id("a1").await)
    );
    a2.no_event(
        Duration::from_millis(2_500),
        "a reminder after the chat was taken",
        |e| matches!(e, AgentEvent::OfferCreated { .. }),
    )
    .await;
}

/// A team reminder that falls due after the chat was taken and then
/// transferred to a teammate by name asks nobody: the team would take the
/// chat from the one it was transferred to.
#[tokio::test]
async fn a_team_reminder_due_after_a_transfer_to_a_teammate_asks_nobody() {
    let hub = TestHub::start_with(|c| {
        c.routing.team_reminder_secs = 1;
        team_sms_lapsing_in_a_second(c);
        template_alert(
            queue_mut(c)
                .templates
                .entry(Scenario::Transfer)
                .or_default(),
        );
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let mut a2 = hub.connect("a2").await;
    let mut a3 = hub.connect("a3").await;
    let c = hub
        .ingress(Channel::Sms, "remind-transfer", "Rita", "hello?")
        .await;
    // Every teammate declines: a reminder is due in a second.
    for agent in [&mut a1, &mut a2, &mut a3] {
        let o = agent.wait_offer().await;
        agent
            .ok(Command::RejectOffer {
                offer_id: o.id,
                reason: None,
            })
            .await;
    }
    // a1 takes it from the Waiting list and hands it to a2 by name.
    a1.ok(Command::TakeTeamChat {
        conversation_id: c.conversation_id,
    })
    .await;
    a1.ok(Command::TransferConversation {
        conversation_id: c.conversation_id,
        target: TransferTarget::Agent {
            agent_id: hub.agent_id("a2").await,
        },
        note: None,
    })
    .await;
    let transfer = a2.wait_offer().await;
    assert!(matches!(transfer.origin, OfferOrigin::Transfer { .. }));
    a3.no_event(
        Duration::from_millis(2_000),
        "a team message for a chat transferred to a2",
        is_offer,
    )
    .await;
    a2.ok(Command::AcceptOffer {
        offer_id: transfer.id,
    })
    .await;
}

/// A reminder that finds nobody to ask (all away) is kept: a teammate who
/// comes back later is asked when it next falls due (coming back alone does
/// not, as they were told of the message already).
#[tokio::test]
async fn a_team_reminder_with_nobody_to_ask_asks_again_later() {
    let hub = TestHub::start_with(|c| {
        c.routing.team_reminder_secs = 1;
        team_sms_lapsing_in_a_second(c);
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let c = hub.ingress(Channel::Sms, "away", "Ari", "hi").await;
    let o1 = a1.wait_offer().await;
    a1.wait_event(
        "lapsed",
        |e| matches!(e, AgentEvent::OfferResolved { offer_id, .. } if *offer_id == o1.id),
    )
    .await;
    a1.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    // The reminder falls due with a1 away: nobody is asked.
    a1.no_event(
        Duration::from_millis(1_500),
        "an offer in Do not disturb",
        is_offer,
    )
    .await;
    a1.ok(Command::SetPresence {
        presence: Presence::Available,
    })
    .await;
    let again = a1.wait_offer().await;
    assert_eq!(again.conversation.id, c.conversation_id);
}

/// A teammate signed out when the customer wrote is not sent an offer it
/// cannot see (it would lapse unseen and count as told): it hears of the
/// still unclaimed chat when it connects.
#[tokio::test]
async fn a_teammate_signed_out_when_the_customer_wrote_hears_of_it_on_connecting() {
    let hub = TestHub::start_with(team_sms_lapsing_in_a_second).await;
    let mut a1 = hub.connect("a1").await;
    let c = hub.ingress(Channel::Sms, "away", "Wes", "hi").await;
    let o1 = a1.wait_offer().await;
    assert_eq!(o1.conversation.id, c.conversation_id);
    // Both lapse: a1's in front of it, a2's (if there were one) unseen.
    a1.wait_event(
        "lapsed",
        |e| matches!(e, AgentEvent::OfferResolved { offer_id, .. } if *offer_id == o1.id),
    )
    .await;
    let mut a2 = hub.connect("a2").await;
    let o2 = a2.wait_offer().await;
    assert_eq!(o2.conversation.id, c.conversation_id);
    assert!(matches!(
        o2.origin,
        OfferOrigin::TeamMessage { messages: 1, .. }
    ));
}

/// A hub with a session limit of one and a team-owned queue "TQ": a1 owns
/// a chat (at the limit), a2 is free, and a team chat comes to TQ. a2 is
/// asked, a1 is not (Accept would be refused, and the alert would ring
/// again at every message).
struct AtTheLimit {
    hub: TestHub,
    a1: Agent,
    _a2: Agent,
    mine: ConversationId,
    team_chat: ConversationId,
}

async fn a1_at_the_limit_with_a_team_chat() -> AtTheLimit {
    let hub = TestHub::start_with(|c| {
        c.routing.max_sessions = 1;
        let mut team_queue = c.queues[0].clone();
        team_queue.name = "TQ".into();
        team_queue.team_owned = true;
        c.queues.push(team_queue);
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let mine = own(&hub, &mut a1, "limit-own").await;
    let mut a2 = hub.connect("a2").await;
    let mut m = msg(Channel::Sms, "limit-team", Some("+15550121"), None);
    m.queue = Some("TQ".into());
    let team_chat = hub.ingress_msg(m).await.conversation_id;
    let o2 = a2.wait_offer().await;
    assert_eq!(o2.conversation.id, team_chat);
    a1.no_event(Duration::from_millis(300), "a team message", is_offer)
        .await;
    AtTheLimit {
        hub,
        a1,
        _a2: a2,
        mine,
        team_chat,
    }
}

/// A teammate passed over at the session limit hears of the team chat on
/// closing a session.
#[tokio::test]
async fn a_teammate_at_the_session_limit_hears_of_a_team_chat_when_a_session_closes() {
    let AtTheLimit {
        hub,
        mut a1,
        mine,
        team_chat,
        ..
    } = a1_at_the_limit_with_a_team_chat().await;
    a1.ok(Command::CloseConversation {
        conversation_id: mine,
    })
    .await;
    let o1 = a1.wait_offer().await;
    assert_eq!(o1.conversation.id, team_chat);
    assert!(matches!(o1.origin, OfferOrigin::TeamMessage { .. }));
    a1.ok(Command::AcceptOffer { offer_id: o1.id }).await;
    assert_eq!(
        hub.conversation(team_chat).await.owner,
        Some(hub.agent_id("a1").await)
    );
}

/// A session taken away by a supervisor's assignment is a session fewer
/// too: the old owner, passed over at the limit, hears of the team chat.
#[tokio::test]
async fn a_teammate_relieved_of_a_session_by_a_supervisor_hears_of_a_team_chat() {
    let AtTheLimit {
        hub,
        mut a1,
        mine,
        team_chat,
        ..
    } = a1_at_the_limit_with_a_team_chat().await;
    let mut sup = hub.connect("sup").await;
    sup.ok(Command::AssignConversation {
        conversation_id: mine,
        agent_id: hub.agent_id("a2").await,
    })
    .await;
    let o = a1.wait_offer().await;
    assert_eq!(o.conversation.id, team_chat);
}

/// A team message withdrawn at a sign-out is not counted as asked: signed
/// in again, the agent hears of the unclaimed chat at once.
#[tokio::test]
async fn a_team_chat_is_asked_again_after_signing_out_and_in() {
    let hub = TestHub::start_with(|c| queue_mut(c).team_owned = true).await;
    let mut a1 = hub.connect("a1").await;
    let c = hub.ingress(Channel::Sms, "team-so", "Vi", "first").await;
    let o = a1.wait_offer().await;
    assert_eq!(o.conversation.id, c.conversation_id);
    let (token, seq) = (a1.token.clone(), a1.last_seq);
    a1.close().await;
    hub.logout(&token).await;
    let login = hub.login("a1").await;
    let (mut a1, _, _) = Agent::connect(&hub.ws_url(), &login.token, Some(seq)).await;
    a1.wait_event("the first question withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o.id)
    })
    .await;
    let again = a1.wait_offer().await;
    assert_eq!(again.conversation.id, c.conversation_id);
    assert_ne!(again.id, o.id);
}

/// Team messages (requests) use no routing capacity: an agent of
/// capacity 2 with two unclaimed team chats' notifications pending still
/// receives an ordinary queue's chat.
#[tokio::test]
async fn pending_team_messages_do_not_use_routing_capacity() {
    let hub = TestHub::start_with(|c| {
        let mut team_queue = c.queues[0].clone();
        team_queue.name = "TQ".into();
        team_queue.team_owned = true;
        c.queues.push(team_queue);
        for a in &mut c.agents {
            if a.username == "a1" {
                a.capacity = 2;
            }
        }
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    for thread in ["team-1", "team-2"] {
        let mut m = msg(Channel::Sms, thread, Some("+15550111"), None);
        m.queue = Some("TQ".into());
        hub.ingress_msg(m.clone()).await;
        let o = a1.wait_offer().await;
        assert!(matches!(o.origin, OfferOrigin::TeamMessage { .. }));
        // A second message replaces the notification: still one each.
        m.text = "anyone?".into();
        hub.ingress_msg(m).await;
        let o = a1.wait_offer().await;
        assert!(matches!(
            o.origin,
            OfferOrigin::TeamMessage { messages: 2, .. }
        ));
    }
    let mut m = msg(Channel::Sms, "ordinary", Some("+15550112"), None);
    m.queue = Some("Q".into());
    let c = hub.ingress_msg(m).await;
    let o = a1.wait_offer().await;
    assert_eq!(o.conversation.id, c.conversation_id);
    assert_eq!(o.origin, OfferOrigin::NewConversation);
}

/// U transfers a team-owned conversation to T; the customer writes, and V
/// takes it from the team message. T's transfer offer is withdrawn with
/// it, and accepting or rejecting it later is refused: V stays the one
/// owner, and the conversation is never left with none.
#[tokio::test]
async fn taking_a_team_message_withdraws_a_pending_transfer_to_a_teammate() {
    let hub = TestHub::start_with(|c| {
        let q = queue_mut(c);
        q.team_owned = true;
        template_alert(q.templates.entry(Scenario::Transfer).or_default());
    })
    .await;
    let mut u = hub.connect("a1").await;
    let mut t = hub.connect("a2").await;
    let mut v = hub.connect("a3").await;
    let c = hub
        .ingress(Channel::Sms, "two-owners", "Tia", "first")
        .await;
    let conv = c.conversation_id;
    let offer = u.wait_offer().await;
    u.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    let t_id = hub.agent_id("a2").await;
    let v_id = hub.agent_id("a3").await;
    u.ok(Command::TransferConversation {
        conversation_id: conv,
        target: TransferTarget::Agent { agent_id: t_id },
        note: None,
    })
    .await;
    let transfer = loop {
        let o = t.wait_offer().await;
        if matches!(o.origin, OfferOrigin::Transfer { .. }) {
            break o;
        }
    };
    hub.ingress(Channel::Sms, "two-owners", "Tia", "anyone?")
        .await;
    let team_offer = loop {
        let o = v.wait_offer().await;
        if matches!(o.origin, OfferOrigin::TeamMessage { messages: 2, .. }) {
            break o;
        }
    };
    v.ok(Command::AcceptOffer {
        offer_id: team_offer.id,
    })
    .await;
    assert_eq!(hub.conversation(conv).await.owner, Some(v_id));
    // T's transfer alert goes away ...
    t.wait_event("transfer withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == transfer.id)
    })
    .await;
    // ... and cannot be accepted or rejected any more.
    assert_eq!(
        t.refused(Command::AcceptOffer {
            offer_id: transfer.id
        })
        .await,
        ErrorCode::Conflict
    );
    assert_eq!(
        t.refused(Command::RejectOffer {
            offer_id: transfer.id,
            reason: Some("busy".into()),
        })
        .await,
        ErrorCode::Conflict
    );
    let summary = hub.conversation(conv).await;
    assert_eq!(summary.owner, Some(v_id));
    assert_eq!(summary.status, ConversationStatus::Assigned);
    v.no_event(Duration::from_millis(300), "losing it", |e| {
        matches!(e, AgentEvent::ConversationRevoked { .. })
    })
    .await;
}

// ------------------------------------------------------ idle owner

#[tokio::test]
async fn idle_owner_teammates_are_asked_assign_to_me_and_no_changes_nothing() {
    let hub = TestHub::start_with(|c| queue_mut(c).idle_timeout_secs = Some(1)).await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "idle-no").await;
    let mut a2 = hub.connect("a2").await;
    // A teammate in Do not disturb is not asked.
    let mut a3 = hub.connect("a3").await;
    a3.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    hub.ingress(Channel::Sms, "idle-no", "Cleo", "hello??")
        .await;
    let offer = a2.wait_offer().await;
    a3.no_event(Duration::from_millis(300), "an Assign to me", is_offer)
        .await;
    assert!(
        matches!(&offer.origin, OfferOrigin::AssignToMe { owner, idle_secs: 1 } if owner.name == "Agent a1"),
        "{:?}",
        offer.origin
    );
    a2.ok(Command::RejectOffer {
        offer_id: offer.id,
        reason: None,
    })
    .await;
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("a1").await)
    );
    // Saying No costs nothing.
    assert_eq!(hub.presence("a2").await, Presence::Available);
    a1.no_event(Duration::from_millis(300), "revoke", |e| {
        matches!(e, AgentEvent::ConversationRevoked { .. })
    })
    .await;
}

/// The owner idle twice before a teammate answers: the first "Assign to
/// me?" is replaced, not joined by a second.
#[tokio::test]
async fn an_owner_idle_again_replaces_the_pending_assign_to_me() {
    let hub = TestHub::start_with(|c| queue_mut(c).idle_timeout_secs = Some(1)).await;
    let mut a1 = hub.connect("a1").await;
    own(&hub, &mut a1, "idle-twice").await;
    let mut a2 = hub.connect("a2").await;
    hub.ingress(Channel::Sms, "idle-twice", "Cleo", "hello?")
        .await;
    let first = a2.wait_offer().await;
    hub.ingress(Channel::Sms, "idle-twice", "Cleo", "HELLO??")
        .await;
    a2.wait_event("the first withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == first.id)
    })
    .await;
    let second = a2.wait_offer().await;
    assert_ne!(second.id, first.id);
    assert!(matches!(second.origin, OfferOrigin::AssignToMe { .. }));
}

#[tokio::test]
async fn idle_owner_yes_moves_ownership_and_tells_the_old_owner() {
    let hub = TestHub::start_with(|c| queue_mut(c).idle_timeout_secs = Some(1)).await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "idle-yes").await;
    let mut a2 = hub.connect("a2").await;
    let mut a3 = hub.connect("a3").await;
    hub.ingress(Channel::Sms, "idle-yes", "Cleo", "hello??")
        .await;
    let o2 = a2.wait_offer().await;
    let o3 = a3.wait_offer().await;
    a3.ok(Command::AcceptOffer { offer_id: o3.id }).await;
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("a3").await)
    );
    a1.wait_event("taken over", revoked(RevokeReason::TakenOver))
        .await;
    a2.wait_event("withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o2.id)
    })
    .await;
}

/// The commonest wait: the owner accepts a new chat and never answers its
/// first message. That message came while the chat was queued, so only
/// the accept can start the owner's clock.
#[tokio::test]
async fn an_owner_who_never_answers_a_new_chats_first_message_is_reported_idle() {
    let hub = TestHub::start_with(|c| queue_mut(c).idle_timeout_secs = Some(2)).await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "idle-first").await;
    let mut a2 = hub.connect("a2").await;
    let offer = a2.wait_offer().await;
    assert_eq!(offer.conversation.id, conv);
    assert!(
        matches!(&offer.origin, OfferOrigin::AssignToMe { owner, idle_secs: 2 } if owner.name == "Agent a1"),
        "{:?}",
        offer.origin
    );
    // Taken over with the customer still unanswered: the new owner's own
    // clock starts, and the old owner (now a teammate) is asked in turn.
    a2.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    a1.wait_event("taken over", revoked(RevokeReason::TakenOver))
        .await;
    let again = a1.wait_offer().await;
    assert!(
        matches!(&again.origin, OfferOrigin::AssignToMe { owner, .. } if owner.name == "Agent a2"),
        "{:?}",
        again.origin
    );
}

/// A case is worked off-line and a call answered by voice: neither has a
/// written reply to wait for, so neither asks teammates "Assign to me?".
#[tokio::test]
async fn cases_and_calls_have_no_answer_clock() {
    let hub = TestHub::start_with(|c| queue_mut(c).idle_timeout_secs = Some(1)).await;
    let mut a1 = hub.connect("a1").await;
    // A case is assigned outright; a call is offered.
    hub.ingress(Channel::Case, "idle-case", "Cleo", "my order")
        .await;
    a1.wait_event("the case assigned", |e| assigned_mode(e).is_some())
        .await;
    hub.ingress(Channel::Voice, "idle-call", "Cleo", "").await;
    let offer = a1.wait_offer().await;
    a1.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    let mut a2 = hub.connect("a2").await;
    hub.ingress(Channel::Case, "idle-case", "Cleo", "any news?")
        .await;
    a2.no_event(Duration::from_millis(1600), "assign to me", is_offer)
        .await;
}

/// An owner who answered before the accept's clock ran out is not
/// reported: the clock counts from the accept, and the answer stops it.
#[tokio::test]
async fn an_owner_who_answers_a_new_chat_in_time_is_not_reported_idle() {
    let hub = TestHub::start_with(|c| queue_mut(c).idle_timeout_secs = Some(1)).await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "idle-first-ok").await;
    a1.ok(Command::SendMessage {
        conversation_id: conv,
        text: "hello, how can I help?".into(),
    })
    .await;
    let mut a2 = hub.connect("a2").await;
    a2.no_event(Duration::from_millis(1600), "assign to me", is_offer)
        .await;
}

#[tokio::test]
async fn an_owner_who_answers_in_time_is_not_reported_idle() {
    let hub = TestHub::start_with(|c| queue_mut(c).idle_timeout_secs = Some(1)).await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "idle-ok").await;
    let mut a2 = hub.connect("a2").await;
    hub.ingress(Channel::Sms, "idle-ok", "Cleo", "hello??")
        .await;
    a1.wait_event("message", message_added).await;
    a1.ok(Command::SendMessage {
        conversation_id: conv,
        text: "here".into(),
    })
    .await;
    a2.no_event(Duration::from_millis(1600), "assign to me", is_offer)
        .await;
}

// -------------------------------------------- assign / discuss requests

#[tokio::test]
async fn assign_request_reject_needs_a_reason_and_the_requester_hears_it() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "ask").await;
    let mut a2 = hub.connect("a2").await;
    a1.ok(Command::RequestAssign {
        conversation_id: conv,
        agent_id: hub.agent_id("a2").await,
        reason: Some("my shift ends".into()),
    })
    .await;
    let offer = a2.wait_offer().await;
    assert!(offer.template.reject_reason_required);
    assert!(
        matches!(&offer.origin, OfferOrigin::AssignRequest { reason: Some(r), .. } if r == "my shift ends")
    );
    for reason in [None, Some("   ".to_string())] {
        assert_eq!(
            a2.refused(Command::RejectOffer {
                offer_id: offer.id,
                reason
            })
            .await,
            ErrorCode::ReasonRequired
        );
    }
    a2.ok(Command::RejectOffer {
        offer_id: offer.id,
        reason: Some("too busy".into()),
    })
    .await;
    let ev = a1.wait_event("answer", answered).await;
    assert_eq!(
        ev,
        AgentEvent::RequestAnswered {
            conversation_id: conv,
            request: RequestKind::Assign,
            by: AgentRef {
                id: hub.agent_id("a2").await,
                name: "Agent a2".into()
            },
            accepted: false,
            rejected: true,
            reason: Some("too busy".into()),
        }
    );
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("a1").await)
    );
    assert_eq!(hub.presence("a2").await, Presence::Available);
}

#[tokio::test]
async fn assign_request_accepted_moves_ownership_and_tells_the_requester() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "ask-yes").await;
    let mut a2 = hub.connect("a2").await;
    a1.ok(Command::RequestAssign {
        conversation_id: conv,
        agent_id: hub.agent_id("a2").await,
        reason: None,
    })
    .await;
    let offer = a2.wait_offer().await;
    a2.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("a2").await)
    );
    a1.wait_event("revoked", revoked(RevokeReason::TakenOver))
        .await;
    let ev = a1.wait_event("answer", answered).await;
    assert!(matches!(
        ev,
        AgentEvent::RequestAnswered { accepted: true, .. }
    ));
}

/// a2 has a consult request for the conversation and then becomes its
/// owner through an assign request: the consult request is withdrawn and
/// cannot be accepted, so a2 is not owner and participant at once and hears
/// each customer message once.
#[tokio::test]
async fn a_new_owner_s_own_consult_request_is_withdrawn() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "owner-consult").await;
    let mut a2 = hub.connect("a2").await;
    let a2_id = hub.agent_id("a2").await;
    a1.ok(Command::Consult {
        conversation_id: conv,
        agent_id: a2_id,
    })
    .await;
    let consult = a2.wait_offer().await;
    assert!(matches!(consult.origin, OfferOrigin::Consult { .. }));
    a1.ok(Command::RequestAssign {
        conversation_id: conv,
        agent_id: a2_id,
        reason: None,
    })
    .await;
    let assign = a2.wait_offer().await;
    a2.ok(Command::AcceptOffer {
        offer_id: assign.id,
    })
    .await;
    a2.wait_event("consult withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == consult.id)
    })
    .await;
    assert_eq!(
        a2.refused(Command::AcceptOffer {
            offer_id: consult.id
        })
        .await,
        ErrorCode::Conflict
    );
    let summary = hub.conversation(conv).await;
    assert_eq!(summary.owner, Some(a2_id));
    assert!(summary.participants.is_empty(), "{summary:?}");
    hub.ingress(Channel::Sms, "owner-consult", "Cleo", "still there?")
        .await;
    a2.wait_event("message", message_added).await;
    a2.no_event(
        Duration::from_millis(400),
        "the message twice",
        message_added,
    )
    .await;
}

#[tokio::test]
async fn discuss_request_keeps_ownership_with_the_requester() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "discuss").await;
    let mut a2 = hub.connect("a2").await;
    let a2_id = hub.agent_id("a2").await;
    a1.ok(Command::RequestDiscuss {
        conversation_id: conv,
        agent_id: a2_id,
    })
    .await;
    let offer = a2.wait_offer().await;
    assert!(offer.template.reject_reason_required);
    a2.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    let summary = hub.conversation(conv).await;
    assert_eq!(summary.owner, Some(hub.agent_id("a1").await));
    assert_eq!(summary.participants, vec![a2_id]);
    let ev = a1.wait_event("answer", answered).await;
    assert!(matches!(
        ev,
        AgentEvent::RequestAnswered {
            request: RequestKind::Discuss,
            accepted: true,
            ..
        }
    ));
    // Only the owner asks.
    assert_eq!(
        a2.refused(Command::RequestAssign {
            conversation_id: conv,
            agent_id: hub.agent_id("a3").await,
            reason: None
        })
        .await,
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn work_is_handed_on_only_within_the_team_and_requests_need_a_signed_in_agent() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "in-team").await;
    let outsider = hub.agent_id("outsider").await;
    let mut sup = hub.connect("sup").await;
    let _outsider_link = hub.connect("outsider").await;
    for cmd in [
        Command::RequestAssign {
            conversation_id: conv,
            agent_id: outsider,
            reason: None,
        },
        Command::RequestDiscuss {
            conversation_id: conv,
            agent_id: outsider,
        },
        Command::Consult {
            conversation_id: conv,
            agent_id: outsider,
        },
        Command::TransferConversation {
            conversation_id: conv,
            target: TransferTarget::Agent { agent_id: outsider },
            note: None,
        },
    ] {
        assert_eq!(a1.refused(cmd).await, ErrorCode::NotFound);
    }
    assert_eq!(
        sup.refused(Command::AssignConversation {
            conversation_id: conv,
            agent_id: outsider,
        })
        .await,
        ErrorCode::NotFound
    );
    // Not to yourself.
    let me = hub.agent_id("a1").await;
    for cmd in [
        Command::RequestAssign {
            conversation_id: conv,
            agent_id: me,
            reason: None,
        },
        Command::TransferConversation {
            conversation_id: conv,
            target: TransferTarget::Agent { agent_id: me },
            note: None,
        },
    ] {
        assert_eq!(a1.refused(cmd).await, ErrorCode::InvalidFrame);
    }
    // a2 is a teammate but not signed in: a request would only time out,
    // a transfer could sit with nobody.
    let a2 = hub.agent_id("a2").await;
    for cmd in [
        Command::TransferConversation {
            conversation_id: conv,
            target: TransferTarget::Agent { agent_id: a2 },
            note: None,
        },
        Command::RequestAssign {
            conversation_id: conv,
            agent_id: a2,
            reason: None,
        },
        Command::RequestDiscuss {
            conversation_id: conv,
            agent_id: a2,
        },
    ] {
        assert_eq!(a1.refused(cmd).await, ErrorCode::Conflict);
    }
    // Nothing moved.
    assert_eq!(
        hub.conversation(conv).await.owner,
        Some(hub.agent_id("a1").await)
    );
}

/// A supervisor sees its team's open conversations, waiting customers
/// first, and assigns one nobody has taken (before, only conversations in
/// the supervisor's own view could be assigned). Agents may not list them;
/// another team's are not listed; an admin sees every team's.
#[tokio::test]
async fn a_supervisor_lists_the_teams_conversations_and_assigns_a_waiting_one() {
    let hub = TestHub::start_with(|c| {
        c.queues.push(other_team_sms_queue());
        let mut lone = c.agents[0].clone();
        lone.username = "lone-admin".into();
        lone.role = Role::Admin;
        lone.team = None;
        c.agents.push(lone);
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let owned = own(&hub, &mut a1, "worked").await;
    a1.ok(Command::SetPresence {
        presence: Presence::Away,
    })
    .await;
    // Nobody free: these wait.
    let first = hub.ingress(Channel::Sms, "wait-1", "Wanda", "hello").await;
    let second = hub.ingress(Channel::Sms, "wait-2", "Walt", "hello").await;
    let other = hub.ingress_other_team("other-team", "Olga").await;
    let list = |user: &'static str| hub.get_as(user, "/api/v1/team/conversations");
    let ids = |resp: Vec<ConversationSummary>| resp.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let got: Vec<ConversationSummary> = list("sup").await.json().await.unwrap();
    assert_eq!(
        ids(got.clone()),
        [first.conversation_id, second.conversation_id, owned],
        "waiting first, oldest first; another team's not listed"
    );
    assert_eq!(got[0].status, ConversationStatus::Queued);
    assert_eq!(got[2].owner, Some(hub.agent_id("a1").await));
    // An admin sees its own team's, as its Team panel's members are; one
    // with no team, every team's.
    let admin: Vec<ConversationSummary> = list("admin").await.json().await.unwrap();
    assert!(!ids(admin).contains(&other.conversation_id));
    let all: Vec<ConversationSummary> = list("lone-admin").await.json().await.unwrap();
    assert!(ids(all).contains(&other.conversation_id));
    assert_eq!(list("a2").await.status(), 403);

    // Another team's conversation cannot be assigned.
    let mut sup = hub.connect("sup").await;
    assert_eq!(
        sup.refused(Command::AssignConversation {
            conversation_id: other.conversation_id,
            agent_id: hub.agent_id("a1").await,
        })
        .await,
        ErrorCode::NotFound
    );
    // The supervisor assigns the first waiting customer to a2.
    let mut a2 = hub.connect("a2").await;
    a2.ok(Command::SetPresence {
        presence: Presence::Away,
    })
    .await;
    sup.ok(Command::AssignConversation {
        conversation_id: first.conversation_id,
        agent_id: hub.agent_id("a2").await,
    })
    .await;
    let ev = a2
        .wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    assert_eq!(
        assigned_mode(&ev),
        Some((AssignMode::Supervisor, false, first.conversation_id))
    );
    let got: Vec<ConversationSummary> = list("sup").await.json().await.unwrap();
    assert_eq!(
        ids(got),
        [second.conversation_id, owned, first.conversation_id]
    );
}

#[tokio::test]
async fn a_supervisor_assignment_notifies_the_new_owner() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "sup-assign").await;
    let mut a2 = hub.connect("a2").await;
    let mut sup = hub.connect("sup").await;
    let a2_id = hub.agent_id("a2").await;
    assert_eq!(
        a1.refused(Command::AssignConversation {
            conversation_id: conv,
            agent_id: a2_id
        })
        .await,
        ErrorCode::Forbidden
    );
    sup.ok(Command::AssignConversation {
        conversation_id: conv,
        agent_id: a2_id,
    })
    .await;
    let ev = a2
        .wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    let AgentEvent::ConversationAssigned { mode, template, .. } = ev else {
        unreachable!()
    };
    assert_eq!(mode, AssignMode::Supervisor);
    assert_eq!(template.kind, NotificationKind::Toast);
    a1.wait_event("revoked", revoked(RevokeReason::Reassigned))
        .await;
    assert_eq!(hub.conversation(conv).await.owner, Some(a2_id));
}

/// The session limit holds for hand-offs that name an agent, not only for
/// routing: a transfer, a supervisor assignment or an accepted assign
/// request cannot give an agent more open sessions than allowed.
#[tokio::test]
async fn hand_offs_do_not_take_an_agent_past_the_session_limit() {
    let hub = TestHub::start_with(|c| c.routing.max_sessions = 1).await;
    let mut a1 = hub.connect("a1").await;
    let c1 = own(&hub, &mut a1, "limit-1").await;
    let mut a2 = hub.connect("a2").await;
    let c2 = own(&hub, &mut a2, "limit-2").await;
    let mut sup = hub.connect("sup").await;
    let (a1_id, a2_id) = (hub.agent_id("a1").await, hub.agent_id("a2").await);

    let transfer = Command::TransferConversation {
        conversation_id: c2,
        target: TransferTarget::Agent { agent_id: a1_id },
        note: None,
    };
    assert_eq!(a2.refused(transfer.clone()).await, ErrorCode::SessionLimit);
    assert_eq!(
        sup.refused(Command::AssignConversation {
            conversation_id: c2,
            agent_id: a1_id,
        })
        .await,
        ErrorCode::SessionLimit
    );
    a2.ok(Command::RequestAssign {
        conversation_id: c2,
        agent_id: a1_id,
        reason: None,
    })
    .await;
    let request = a1.wait_offer().await;
    assert_eq!(
        a1.refused(Command::AcceptOffer {
            offer_id: request.id
        })
        .await,
        ErrorCode::SessionLimit
    );
    assert_eq!(hub.conversation(c2).await.owner, Some(a2_id));
    assert_eq!(hub.conversation(c1).await.owner, Some(a1_id));

    // With a session closed, the same request goes through.
    a1.ok(Command::CloseConversation {
        conversation_id: c1,
    })
    .await;
    a1.ok(Command::AcceptOffer {
        offer_id: request.id,
    })
    .await;
    assert_eq!(hub.conversation(c2).await.owner, Some(a1_id));
    // And a transfer back to a2, now with none open, is fine.
    a1.ok(Command::TransferConversation {
        conversation_id: c2,
        target: TransferTarget::Agent { agent_id: a2_id },
        note: None,
    })
    .await;
}

/// Routing offers by open sessions, so an agent can hold two offers at one
/// below the limit: accepting the second is refused for the limit, and the
/// offer stays pending to accept once a session is closed.
#[tokio::test]
async fn accepting_a_routed_offer_at_the_session_limit_is_refused_and_it_stays() {
    let hub = TestHub::start_with(|c| c.routing.max_sessions = 1).await;
    let mut a1 = hub.connect("a1").await;
    let c1 = hub.ingress(Channel::Sms, "two-1", "Una", "hi").await;
    let o1 = a1.wait_offer().await;
    let c2 = hub.ingress(Channel::Sms, "two-2", "Vic", "hi").await;
    let o2 = a1.wait_offer().await;
    assert_eq!(o1.conversation.id, c1.conversation_id);
    assert_eq!(o2.conversation.id, c2.conversation_id);
    a1.ok(Command::AcceptOffer { offer_id: o1.id }).await;
    assert_eq!(
        a1.refused(Command::AcceptOffer { offer_id: o2.id }).await,
        ErrorCode::SessionLimit
    );
    a1.ok(Command::CloseConversation {
        conversation_id: c1.conversation_id,
    })
    .await;
    a1.ok(Command::AcceptOffer { offer_id: o2.id }).await;
    assert_eq!(
        hub.conversation(c2.conversation_id).await.owner,
        Some(hub.agent_id("a1").await)
    );
}

/// A conversation that comes back to an agent who read it carries their
/// read marker and the unread count over the whole thread, as a snapshot
/// would: the client does not count the old messages as unread again.
#[tokio::test]
async fn an_assignment_carries_the_new_owners_read_marker_and_unread_count() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "read-back").await;
    hub.ingress(Channel::Sms, "read-back", "Cleo", "second")
        .await;
    let last = match a1.wait_event("second", message_added).await {
        AgentEvent::MessageAdded { message } => message.id,
        _ => unreachable!(),
    };
    a1.ok(Command::MarkRead {
        conversation_id: conv,
        message_id: last,
    })
    .await;
    let mut a2 = hub.connect("a2").await;
    let mut sup = hub.connect("sup").await;
    let (a1_id, a2_id) = (hub.agent_id("a1").await, hub.agent_id("a2").await);
    sup.ok(Command::AssignConversation {
        conversation_id: conv,
        agent_id: a2_id,
    })
    .await;
    let to_a2 = a2
        .wait_event("assigned to a2", |e| assigned_mode(e).is_some())
        .await;
    assert!(
        matches!(
            to_a2,
            AgentEvent::ConversationAssigned {
                last_read: None,
                unread: Some(2),
                ..
            }
        ),
        "a2 never read it: {to_a2:?}"
    );
    hub.ingress(Channel::Sms, "read-back", "Cleo", "third")
        .await;
    sup.ok(Command::AssignConversation {
        conversation_id: conv,
        agent_id: a1_id,
    })
    .await;
    let back = a1
        .wait_event("assigned back to a1", |e| assigned_mode(e).is_some())
        .await;
    assert!(
        matches!(back, AgentEvent::ConversationAssigned { last_read: Some(m), unread: Some(1), .. } if m == last),
        "a1 read up to {last:?}, one message since: {back:?}"
    );
}

/// A supervisor may assign to an agent who is not signed in, but the
/// customer is not stranded: the new owner gets the disconnected owner's
/// grace, after which the conversation is rerouted; signing in within the
/// grace keeps it.
#[tokio::test]
async fn a_supervisor_assignment_to_an_absent_agent_is_rerouted_after_the_grace() {
    let clock = ManualClock::at(1_800_000_000_000);
    let hub =
        TestHub::start_with_clock(|c| c.routing.disconnected_grace_secs = 60, clock.clone()).await;
    let core = hub.running().hub.clone();
    let mut a1 = hub.connect("a1").await;
    let (a2_id, a3_id) = (hub.agent_id("a2").await, hub.agent_id("a3").await);
    let stranded = own(&hub, &mut a1, "sup-away").await;
    let kept = own(&hub, &mut a1, "sup-back").await;
    let mut sup = hub.connect("sup").await;
    for (conv, target) in [(stranded, a2_id), (kept, a3_id)] {
        sup.ok(Command::AssignConversation {
            conversation_id: conv,
            agent_id: target,
        })
        .await;
        assert_eq!(hub.conversation(conv).await.owner, Some(target));
    }
    // a3 signs in within the grace; a2 never does.
    clock.advance(Duration::from_secs(30));
    let _a3 = hub.connect("a3").await;
    clock.advance(Duration::from_secs(31));
    core.fire_due_timers().await.unwrap();
    let summary = hub.conversation(stranded).await;
    assert_ne!(summary.owner, Some(a2_id), "{summary:?}");
    assert_ne!(summary.status, ConversationStatus::Assigned, "{summary:?}");
    assert_eq!(hub.conversation(kept).await.owner, Some(a3_id));
}

/// A timer whose handling fails (here: a grace timer for a conversation
/// that is not there) is retried later, not first in line forever: the
/// timers due after it still fire.
#[tokio::test]
async fn a_timer_that_fails_does_not_hold_up_the_others() {
    let clock = ManualClock::at(1_800_000_000_000);
    let hub =
        TestHub::start_with_clock(|c| c.routing.disconnected_grace_secs = 60, clock.clone()).await;
    let core = hub.running().hub.clone();
    let mut a1 = hub.connect("a1").await;
    let mut sup = hub.connect("sup").await;
    let a2_id = hub.agent_id("a2").await;
    let conv = own(&hub, &mut a1, "poisoned").await;
    sqlx::query(
        "INSERT INTO timers (kind, ref_id, agent_id, due_at) VALUES ('disconnected_grace', 999999, ?, 0)",
    )
    .bind(a2_id.0)
    .execute(core.pool())
    .await
    .unwrap();
    // a2 is away: its grace timer is due after the broken one.
    sup.ok(Command::AssignConversation {
        conversation_id: conv,
        agent_id: a2_id,
    })
    .await;
    clock.advance(Duration::from_secs(61));
    let _ = core.fire_due_timers().await;
    let _ = core.fire_due_timers().await;
    let summary = hub.conversation(conv).await;
    assert_ne!(
        summary.owner,
        Some(a2_id),
        "the grace never fired: {summary:?}"
    );
    let due: i64 = sqlx::query_scalar("SELECT due_at FROM timers WHERE ref_id = 999999")
        .fetch_one(core.pool())
        .await
        .unwrap();
    assert!(due > 1_800_000_000_000, "retried later: {due}");
}

// ---------------------------------------------------------- calls

#[tokio::test]
async fn voice_and_whatsapp_calls_ring_as_alerts_that_open_the_session() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let mut call = msg(Channel::Whatsapp, "wa-call", Some("+15550100"), None);
    call.scenario = Some(Scenario::IncomingCall);
    call.text = String::new();
    hub.ingress_msg(call).await;
    let offer = a1.wait_offer().await;
    assert_eq!(offer.conversation.scenario, Scenario::IncomingCall);
    assert_eq!(offer.conversation.channel, Channel::Whatsapp);
    assert_eq!(offer.template.kind, NotificationKind::Alert);
    a1.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    let ev = a1
        .wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    assert!(assigned_mode(&ev).unwrap().1, "the session opens");
    let mut voice = msg(Channel::Voice, "voice-call", Some("+15550100"), None);
    voice.text = String::new();
    hub.ingress_msg(voice).await;
    let offer = a1.wait_offer().await;
    assert_eq!(offer.conversation.scenario, Scenario::IncomingCall);
    assert_eq!(offer.template.kind, NotificationKind::Alert);
}

/// A customer whose WhatsApp chat is open calls on WhatsApp: the call
/// rings as an incoming call of its own (it used to join the chat with no
/// text, so nothing at all was said), and the chat's next message still
/// goes to the chat.
#[tokio::test]
async fn a_call_on_the_thread_of_an_open_chat_rings_as_a_call_of_its_own() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let mut chat = msg(Channel::Whatsapp, "wa-both", Some("+15550100"), None);
    chat.scenario = Some(Scenario::IncomingWhatsapp);
    let chat_conv = hub.ingress_msg(chat.clone()).await.conversation_id;
    a1.wait_event("the chat", |e| assigned_mode(e).is_some())
        .await;
    let mut call = chat.clone();
    call.scenario = Some(Scenario::IncomingCall);
    call.text = String::new();
    let rang = hub.ingress_msg(call.clone()).await;
    assert!(rang.created);
    assert_ne!(rang.conversation_id, chat_conv);
    let offer = a1.wait_offer().await;
    assert_eq!(offer.conversation.id, rang.conversation_id);
    assert_eq!(offer.conversation.scenario, Scenario::IncomingCall);
    assert_eq!(offer.template.kind, NotificationKind::Alert);
    // The call's own events join the call; the chat's messages the chat.
    assert_eq!(
        hub.ingress_msg(call.clone()).await.conversation_id,
        rang.conversation_id
    );
    chat.text = "are you there?".into();
    assert_eq!(
        hub.ingress_msg(chat.clone()).await.conversation_id,
        chat_conv
    );
    // Still so once the call is transferred (its scenario becomes
    // "transfer"; it stays a call).
    a1.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    a1.ok(Command::TransferConversation {
        conversation_id: rang.conversation_id,
        target: TransferTarget::Queue { queue: "Q".into() },
        note: None,
    })
    .await;
    assert_eq!(
        hub.ingress_msg(call).await.conversation_id,
        rang.conversation_id
    );
    chat.text = "hello?".into();
    assert_eq!(hub.ingress_msg(chat).await.conversation_id, chat_conv);
}

/// A call from a customer whose chat is open rings for the chat's owner
/// (seed 003: the call is taken in the chat's Chat UI), not for a teammate
/// idle longer; an owner who cannot take it is passed over.
#[tokio::test]
async fn a_call_rings_first_for_the_owner_of_the_customers_open_chat() {
    let hub = TestHub::start().await;
    // a2 waits longest; a1 takes the chat.
    let mut a2 = hub.connect("a2").await;
    a2.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let mut chat = msg(Channel::Whatsapp, "wa-owner", Some("+15550131"), None);
    chat.scenario = Some(Scenario::IncomingWhatsapp);
    let chat_conv = hub.ingress_msg(chat.clone()).await.conversation_id;
    a1.wait_event("the chat", |e| assigned_mode(e).is_some())
        .await;
    assert_eq!(
        hub.conversation(chat_conv).await.owner,
        Some(hub.agent_id("a1").await)
    );
    a2.ok(Command::SetPresence {
        presence: Presence::Available,
    })
    .await;

    let mut call = chat.clone();
    call.scenario = Some(Scenario::IncomingCall);
    call.text = String::new();
    let rang = hub.ingress_msg(call.clone()).await;
    let offer = a1.wait_offer().await;
    assert_eq!(offer.conversation.id, rang.conversation_id);
    a2.no_event(Duration::from_millis(300), "the call", is_offer)
        .await;

    // Rejected by the owner, it goes on to the teammate.
    a1.ok(Command::RejectOffer {
        offer_id: offer.id,
        reason: None,
    })
    .await;
    let offer = a2.wait_offer().await;
    assert_eq!(offer.conversation.id, rang.conversation_id);
}

// ------------------------------------------------------- durability

#[tokio::test]
async fn request_offers_survive_a_hub_restart_with_their_origin() {
    let mut hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "durable").await;
    let a2_login = hub.login("a2").await;
    // Requests go to a signed-in agent, who then goes away.
    let (a2, _, _) = Agent::connect(&hub.ws_url(), &a2_login.token, None).await;
    a1.ok(Command::RequestAssign {
        conversation_id: conv,
        agent_id: hub.agent_id("a2").await,
        reason: Some("please".into()),
    })
    .await;
    drop(a2);
    drop(a1);
    hub.restart().await;
    // A snapshot (no cursor) and a replay (cursor 0 → the log) both carry
    // the origin.
    let (_, _, snapshot) = Agent::connect(&hub.ws_url(), &a2_login.token, None).await;
    let offers = snapshot.unwrap().1.offers;
    assert_eq!(offers.len(), 1);
    assert!(matches!(
        offers[0].origin,
        OfferOrigin::AssignRequest { .. }
    ));
    let (mut replay, _, snap) = Agent::connect(&hub.ws_url(), &a2_login.token, Some(Seq(0))).await;
    assert!(snap.is_none(), "a cursor inside the log replays");
    let offer = replay.wait_offer().await;
    assert!(matches!(offer.origin, OfferOrigin::AssignRequest { .. }));
}

#[tokio::test]
async fn the_team_directory_lists_teammates_and_queues() {
    let hub = TestHub::start().await;
    let _a2 = hub.connect("a2").await;
    let token = hub.login("a1").await.token;
    let dir: switchboard_protocol::rest::TeamDirectory = get(&hub, &token, "/api/v1/team").await;
    let names: Vec<_> = dir.agents.iter().map(|a| a.name.as_str()).collect();
    assert!(names.contains(&"Agent a2") && names.contains(&"Agent sup"));
    assert!(!names.contains(&"Agent a1"), "not yourself");
    assert!(!names.contains(&"Agent outsider"), "only your team");
    let a2 = dir.agents.iter().find(|a| a.name == "Agent a2").unwrap();
    assert!(a2.connected);
    assert_eq!(dir.queues, vec!["Q".to_string()]);
}

/// People with no team are nobody's teammates: one does not see the
/// others' presence (no team is not a team of its own).
#[tokio::test]
async fn people_with_no_team_are_not_each_others_team() {
    let hub = TestHub::start_with(|c| {
        for (name, role) in [("lone-sup", Role::Supervisor), ("lone-admin", Role::Admin)] {
            let mut a = c.agents[0].clone();
            a.username = name.into();
            a.display_name = Some(name.into());
            a.role = role;
            a.team = None;
            c.agents.push(a);
        }
    })
    .await;
    let token = hub.login("lone-sup").await.token;
    let dir: switchboard_protocol::rest::TeamDirectory = get(&hub, &token, "/api/v1/team").await;
    assert!(dir.agents.is_empty(), "{:?}", dir.agents);
}

#[tokio::test]
async fn the_demo_records_show_one_several_and_no_match() {
    let hub = TestHub::start().await;
    let records = switchboard_hub::demo::demo_records();
    let seed: Vec<_> = records
        .iter()
        .map(|(c, a, k)| (c.clone(), *a, *k))
        .collect();
    let h = &hub.running().hub;
    h.seed_records(&seed).await.unwrap();
    // Seeding twice adds nothing.
    h.seed_records(&seed).await.unwrap();
    let maria = hub
        .ingress_msg(msg(Channel::Whatsapp, "d1", Some("+34600111222"), None))
        .await;
    let wei = hub
        .ingress_msg(msg(Channel::Chat, "d2", None, Some("wei.chen@example.com")))
        .await;
    let other = hub
        .ingress_msg(msg(Channel::Sms, "d3", Some("+2348031234567"), None))
        .await;
    let id = |c: ConversationSummary| c.identification.unwrap();
    let one = id(hub.conversation(maria.conversation_id).await);
    let Identification::One { contact_id } = one else {
        panic!("{one:?}")
    };
    let admin = h.profile(h.agent_id("admin").await.unwrap()).await.unwrap();
    let view = h.customer_360(&admin, contact_id).await.unwrap();
    assert_eq!(view.open_cases.len(), 2);
    assert!(view.account.is_some());
    assert!(matches!(
        id(hub.conversation(wei.conversation_id).await),
        Identification::Several { contact_ids } if contact_ids.len() == 2
    ));
    assert_eq!(
        id(hub.conversation(other.conversation_id).await),
        Identification::NoMatch
    );
}

#[tokio::test]
async fn an_owner_away_past_grace_takes_consultants_along() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let conv = own(&hub, &mut a1, "grace-consult").await;
    let mut a2 = hub.connect("a2").await;
    a1.ok(Command::Consult {
        conversation_id: conv,
        agent_id: hub.agent_id("a2").await,
    })
    .await;
    let offer = a2.wait_offer().await;
    a2.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    a1.close().await;
    // Grace is 2 s in the test kit.
    a2.wait_event("left with the owner", revoked(RevokeReason::LeftConsult))
        .await;
    assert!(hub.conversation(conv).await.participants.is_empty());
}

#[tokio::test]
async fn a_case_named_by_the_connector_is_the_assigned_case() {
    let hub = TestHub::start().await;
    let mut a1 = hub.connect("a1").await;
    let token = a1.token.clone();
    let (ada, _, _, cases) = seed(&hub, &token).await;
    let mut m = msg(Channel::Case, "case-1", None, None);
    m.case_id = Some(cases.ada[1]);
    let c = hub.ingress_msg(m).await;
    assert_eq!(
        hub.conversation(c.conversation_id).await.link,
        Some(RecordLink {
            contact_id: ada.id,
            case_id: Some(cases.ada[1])
        })
    );
    // Case assignments are assigned at once; another case needs a confirmation.
    a1.wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    let path = format!("/api/v1/conversations/{}/link", c.conversation_id);
    let err = call::<Value>(
        &hub,
        &token,
        reqwest::Method::POST,
        &path,
        Some(json!({"contact_id": ada.id, "case_id": cases.ada[0]})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.1.code, ErrorCode::Conflict);
    // Re-linking the record without a case keeps the assigned case.
    let same: ConversationSummary = post(&hub, &token, &path, json!({"contact_id": ada.id})).await;
    assert_eq!(same.link.unwrap().case_id, Some(cases.ada[1]));
}

/// Any teammate sees the team chats nobody owns (`GET /team/waiting`),
/// with what the customer last wrote, and takes one (`take_team_chat`),
/// whatever its presence: before, an agent who let the team message lapse
/// or was in Do not disturb when it came could not take the customer
/// until the next reminder or message. Taking it ends the teammates'
/// team messages; a second taker is refused; another team's conversation
/// is not found.
#[tokio::test]
async fn a_teammate_takes_a_waiting_team_chat_from_the_list() {
    let hub = TestHub::start_with(|c| {
        queue_mut(c).team_owned = true;
        c.queues.push(other_team_sms_queue());
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let mut a2 = hub.connect("a2").await;
    a1.ok(Command::SetPresence {
        presence: Presence::DoNotDisturb,
    })
    .await;
    let c = hub.ingress(Channel::Sms, "wait", "Wes", "first").await;
    hub.ingress(Channel::Sms, "wait", "Wes", "<b>still</b> there?")
        .await;
    let mut o2 = a2.wait_offer().await;
    while !matches!(o2.origin, OfferOrigin::TeamMessage { messages: 2, .. }) {
        o2 = a2.wait_offer().await;
    }
    let other = hub.ingress_other_team("other-team", "Olga").await;
    let waiting = |user: &'static str| {
        let hub = &hub;
        async move {
            let resp = hub.get_as(user, "/api/v1/team/waiting").await;
            assert_eq!(resp.status(), 200);
            resp.json::<Vec<rest::WaitingTeamChat>>().await.unwrap()
        }
    };
    let list = waiting("a1").await;
    assert_eq!(list.len(), 1, "another team's conversation is not listed");
    assert_eq!(list[0].conversation.id, c.conversation_id);
    assert_eq!(list[0].preview, "<b>still</b> there?");
    assert_eq!(list[0].messages, 2);

    assert_eq!(
        a1.refused(Command::TakeTeamChat {
            conversation_id: other.conversation_id
        })
        .await,
        ErrorCode::NotFound
    );
    let reply = a1
        .ok(Command::TakeTeamChat {
            conversation_id: c.conversation_id,
        })
        .await;
    assert!(
        matches!(reply, CommandReply::OfferAccepted { conversation } if conversation.id == c.conversation_id)
    );
    let ev = a1
        .wait_event("assigned", |e| assigned_mode(e).is_some())
        .await;
    assert_eq!(
        assigned_mode(&ev),
        Some((AssignMode::Accepted, true, c.conversation_id))
    );
    a2.wait_event("the team message withdrawn", |e| {
        matches!(e, AgentEvent::OfferResolved { offer_id, outcome: OfferOutcome::Withdrawn, .. } if *offer_id == o2.id)
    })
    .await;
    assert_eq!(
        a2.refused(Command::TakeTeamChat {
            conversation_id: c.conversation_id
        })
        .await,
        ErrorCode::Conflict
    );
    assert!(waiting("a2").await.is_empty());
    assert_eq!(
        hub.conversation(c.conversation_id).await.owner,
        Some(hub.agent_id("a1").await)
    );
}

/// A team chat transferred to one teammate with an alert template waits
/// for that teammate's answer: it is not on the team's Waiting list, and
/// nobody else can take it from under the offer.
#[tokio::test]
async fn a_team_chat_offered_to_one_teammate_is_not_the_teams_to_take() {
    let hub = TestHub::start_with(|c| {
        let q = queue_mut(c);
        q.team_owned = true;
        template_alert(q.templates.entry(Scenario::Transfer).or_default());
    })
    .await;
    let mut a1 = hub.connect("a1").await;
    let mut a2 = hub.connect("a2").await;
    let mut sup = hub.connect("sup").await;
    let c = hub.ingress(Channel::Sms, "named", "Nia", "hello").await;
    a1.wait_offer().await;
    a1.ok(Command::TakeTeamChat {
        conversation_id: c.conversation_id,
    })
    .await;
    a1.ok(Command::TransferConversation {
        conversation_id: c.conversation_id,
        target: TransferTarget::Agent {
            agent_id: hub.agent_id("a2").await,
        },
        note: None,
    })
    .await;
    let offer = a2
        .wait_event("the transfer", |e| {
            matches!(e, AgentEvent::OfferCreated { offer } if matches!(offer.origin, OfferOrigin::Transfer { .. }))
        })
        .await;
    assert!(matches!(offer, AgentEvent::OfferCreated { .. }));
    let waiting: Vec<rest::WaitingTeamChat> = hub
        .get_as("sup", "/api/v1/team/waiting")
        .await
        .json()
        .await
        .unwrap();
    assert!(waiting.is_empty(), "{waiting:?}");
    assert_eq!(
        sup.refused(Command::TakeTeamChat {
            conversation_id: c.conversation_id
        })
        .await,
        ErrorCode::Conflict
    );
    // An id that does not exist reads as another team's would.
    assert_eq!(
        sup.refused(Command::TakeTeamChat {
            conversation_id: ConversationId(999_999)
        })
        .await,
        ErrorCode::NotFound
    );
    // Nor is it offered to a teammate coming online, or back to the agent
    // who sent it (a customer who writes is heard by the whole team: see
    // `taking_a_team_message_withdraws_a_pending_transfer_to_a_teammate`).
    let AgentEvent::OfferCreated { offer } = offer else {
        unreachable!()
    };
    // Offer ids grow: the team messages from before the transfer are older.
    let transfer = offer.id;
    let team_message = |e: &AgentEvent| {
        matches!(e, AgentEvent::OfferCreated { offer } if offer.id > transfer
            && matches!(offer.origin, OfferOrigin::TeamMessage { .. }))
    };
    sup.ok(Command::SetPresence {
        presence: Presence::Busy,
    })
    .await;
    sup.ok(Command::SetPresence {
        presence: Presence::Available,
    })
    .await;
    a1.ok(Command::SetPresence {
        presence: Presence::Available,
    })
    .await;
    let quiet = Duration::from_millis(300);
    sup.no_event(quiet, "a team message", team_message).await;
    a1.no_event(quiet, "a team message", team_message).await;
    // The one it is offered to takes it.
    a2.ok(Command::AcceptOffer { offer_id: offer.id }).await;
    assert_eq!(
        hub.conversation(c.conversation_id).await.owner,
        Some(hub.agent_id("a2").await)
    );
}
