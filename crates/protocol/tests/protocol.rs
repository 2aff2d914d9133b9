//! Round-trips, unknown kinds, malformed input and schema drift.

use switchboard_protocol::*;

fn summary() -> ConversationSummary {
    ConversationSummary {
        id: ConversationId(7),
        channel: Channel::Whatsapp,
        queue: "Support".into(),
        scenario: Scenario::IncomingWhatsapp,
        customer: Customer {
            name: "<img src=x onerror=alert(1)> Ada".into(),
            phone: Some("+441234".into()),
            email: None,
        },
        comment: Some("\u{202E}evil & <b>bold</b>".into()),
        created_at: Millis(1_700_000_000_000),
        status: ConversationStatus::Offered,
        owner: None,
        identification: Some(Identification::Several {
            contact_ids: vec![ContactId(1), ContactId(2)],
        }),
        link: None,
        participants: vec![],
    }
}

fn template() -> NotificationTemplate {
    NotificationTemplate {
        kind: NotificationKind::Alert,
        timeout_secs: 60,
        show_timeout: true,
        allow_reject: true,
        reject_reason_required: false,
        auto_accept: false,
        auto_assign: false,
        details: rest::default_details(),
        desktop: DesktopNotifications::WhenUnfocused,
    }
}

fn every_client_frame() -> Vec<ClientFrame> {
    let cmd = |command| {
        ClientFrame::Command(CommandFrame {
            id: CommandId("c-1".into()),
            command,
        })
    };
    vec![
        ClientFrame::Hello(Hello {
            versions: vec![1],
            token: "t".into(),
            resume: Some(ResumeCursor { last_seq: Seq(41) }),
            client: ClientInfo {
                name: "test".into(),
                version: "0".into(),
            },
        }),
        ClientFrame::Ack { seq: Seq(9) },
        ClientFrame::Ping { nonce: 3 },
        cmd(Command::AcceptOffer {
            offer_id: OfferId(1),
        }),
        cmd(Command::RejectOffer {
            offer_id: OfferId(1),
            reason: Some("busy".into()),
        }),
        cmd(Command::SetPresence {
            presence: Presence::DoNotDisturb,
        }),
        cmd(Command::SendMessage {
            conversation_id: ConversationId(7),
            text: "hi \0 there".into(),
        }),
        cmd(Command::MarkRead {
            conversation_id: ConversationId(7),
            message_id: MessageId(3),
        }),
        cmd(Command::CloseConversation {
            conversation_id: ConversationId(7),
        }),
        cmd(Command::TransferConversation {
            conversation_id: ConversationId(7),
            target: TransferTarget::Agent {
                agent_id: AgentId(2),
            },
            note: Some("billing".into()),
        }),
        cmd(Command::EscalateConversation {
            conversation_id: ConversationId(7),
            supervisor_id: None,
            note: None,
        }),
        cmd(Command::Consult {
            conversation_id: ConversationId(7),
            agent_id: AgentId(2),
        }),
        cmd(Command::RequestAssign {
            conversation_id: ConversationId(7),
            agent_id: AgentId(2),
            reason: Some("leaving".into()),
        }),
        cmd(Command::RequestDiscuss {
            conversation_id: ConversationId(7),
            agent_id: AgentId(2),
        }),
        cmd(Command::AssignConversation {
            conversation_id: ConversationId(7),
            agent_id: AgentId(2),
        }),
        cmd(Command::TakeTeamChat {
            conversation_id: ConversationId(7),
        }),
        cmd(Command::ResetPresence),
    ]
}

fn every_server_frame() -> Vec<ServerFrame> {
    let offer = Offer {
        id: OfferId(5),
        conversation: summary(),
        template: template(),
        created_at: Millis(1),
        expires_at: Millis(60_001),
        origin: OfferOrigin::Transfer {
            from: AgentRef {
                id: AgentId(3),
                name: "Ana".into(),
            },
            note: Some("VIP".into()),
        },
    };
    let message = Message {
        id: MessageId(3),
        conversation_id: ConversationId(7),
        author: Author::Agent {
            agent_id: AgentId(2),
        },
        text: "hello".into(),
        sent_at: Millis(5),
        command_id: Some(CommandId("c-9".into())),
    };
    let profile = AgentProfile {
        id: AgentId(2),
        username: "ada".into(),
        display_name: "Ada".into(),
        role: Role::Agent,
        team: Some("Support".into()),
    };
    let ev = |seq, event| {
        ServerFrame::Event(EventFrame {
            seq: Seq(seq),
            at: Millis(10),
            event,
        })
    };
    vec![
        ServerFrame::Welcome(Welcome {
            version: 1,
            agent: profile.clone(),
            heartbeat_interval_ms: 10_000,
            max_frame_bytes: MAX_FRAME_BYTES as u64,
            resume: ResumeMode::FullResync {
                reason: ResyncReason::BeyondRetention,
            },
            last_seq: Seq(40),
            server_time: Millis(99),
        }),
        ev(
            1,
            AgentEvent::PresenceChanged {
                presence: Presence::Inactive,
                reason: PresenceReason::MissedOffer,
            },
        ),
        ev(
            2,
            AgentEvent::OfferCreated {
                offer: offer.clone(),
            },
        ),
        ev(
            3,
            AgentEvent::OfferResolved {
                offer_id: OfferId(5),
                conversation_id: ConversationId(7),
                outcome: OfferOutcome::AssignedOnTimeout,
            },
        ),
        ev(
            4,
            AgentEvent::ConversationAssigned {
                last_read: None,
                unread: Some(2),
                conversation: summary(),
                mode: AssignMode::AutoAccept,
                open_session: true,
                template: template(),
                messages: vec![message.clone()],
                origin: OfferOrigin::BotEscalation {
                    transcript: vec!["Bot: hello".into()],
                },
                has_earlier: None,
            },
        ),
        ev(
            5,
            AgentEvent::ConversationRevoked {
                conversation_id: ConversationId(7),
                reason: RevokeReason::DisconnectedGrace,
            },
        ),
        ev(
            6,
            AgentEvent::MessageAdded {
                message: message.clone(),
            },
        ),
        ev(
            7,
            AgentEvent::ReadMarkerMoved {
                conversation_id: ConversationId(7),
                message_id: MessageId(3),
                unread: 0,
            },
        ),
        ev(
            8,
            AgentEvent::ConversationClosed {
                conversation_id: ConversationId(7),
            },
        ),
        ev(
            10,
            AgentEvent::ConversationUpdated {
                conversation: summary(),
            },
        ),
        ev(
            11,
            AgentEvent::RequestAnswered {
                conversation_id: ConversationId(7),
                request: RequestKind::Assign,
                by: AgentRef {
                    id: AgentId(2),
                    name: "Ben".into(),
                },
                accepted: false,
                rejected: true,
                reason: Some("busy".into()),
            },
        ),
        ev(
            9,
            AgentEvent::Notice {
                notice: NoticeKind::MaxSessions,
                message: "10 sessions open".into(),
            },
        ),
        ServerFrame::Snapshot {
            seq: Seq(40),
            snapshot: AgentSnapshot {
                agent: profile,
                presence: Presence::Available,
                conversations: vec![ConversationState {
                    conversation: summary(),
                    unread: 2,
                    last_read: Some(MessageId(1)),
                    messages: vec![message.clone()],
                    has_earlier: None,
                }],
                offers: vec![offer],
            },
        },
        ServerFrame::CommandResult {
            id: CommandId("c-1".into()),
            outcome: CommandOutcome::Ok {
                reply: CommandReply::MessageSent { message },
            },
        },
        ServerFrame::CommandResult {
            id: CommandId("c-2".into()),
            outcome: CommandOutcome::Error(ErrorBody::new(ErrorCode::Conflict, "gone")),
        },
        ServerFrame::Pong { nonce: 3 },
        ServerFrame::Error(ErrorBody::new(ErrorCode::InvalidFrame, "bad")),
    ]
}

#[test]
fn every_client_frame_round_trips() {
    for frame in every_client_frame() {
        let text = encode(&frame);
        let back = decode_client_frame(&text).expect(&text);
        assert_eq!(back, frame, "{text}");
    }
}

#[test]
fn every_server_frame_round_trips() {
    for frame in every_server_frame() {
        let text = encode(&frame);
        let back = decode_server_frame(&text).expect(&text);
        assert_eq!(back, frame, "{text}");
    }
}

#[test]
fn frames_are_tagged_on_the_wire() {
    let text = encode(&ClientFrame::Ack { seq: Seq(4) });
    assert_eq!(text, r#"{"type":"ack","seq":4}"#);
    let text = encode(&ClientFrame::Command(CommandFrame {
        id: CommandId("x".into()),
        command: Command::AcceptOffer {
            offer_id: OfferId(2),
        },
    }));
    assert_eq!(
        text,
        r#"{"type":"command","id":"x","command":{"kind":"accept_offer","offer_id":2}}"#
    );
}

#[test]
fn a_command_names_its_kind_as_on_the_wire() {
    let mut seen = 0;
    for frame in every_client_frame() {
        if let ClientFrame::Command(CommandFrame { command, .. }) = frame {
            let wire = serde_json::to_value(&command).expect("encodes");
            assert_eq!(wire["kind"], command.kind(), "{command:?}");
            seen += 1;
        }
    }
    assert_eq!(seen, 14, "every command kind is covered");
    assert_eq!(Command::Unknown.kind(), "unknown");
}

#[test]
fn unknown_kinds_decode_to_unknown_not_errors() {
    assert_eq!(
        decode_client_frame(r#"{"type":"teleport","to":"mars"}"#).unwrap(),
        ClientFrame::Unknown
    );
    assert_eq!(
        decode_server_frame(r#"{"type":"hologram","x":1}"#).unwrap(),
        ServerFrame::Unknown
    );
    let ev = decode_server_frame(
        r#"{"type":"event","seq":3,"at":1,"event":{"kind":"weather","sun":true}}"#,
    )
    .unwrap();
    assert_eq!(
        ev,
        ServerFrame::Event(EventFrame {
            seq: Seq(3),
            at: Millis(1),
            event: AgentEvent::Unknown
        })
    );
    let cmd =
        decode_client_frame(r#"{"type":"command","id":"a","command":{"kind":"fly"}}"#).unwrap();
    assert_eq!(
        cmd,
        ClientFrame::Command(CommandFrame {
            id: CommandId("a".into()),
            command: Command::Unknown
        })
    );
}

/// A newer hub may add a channel, a presence, a detail… An older client
/// decodes the value as `Other` and keeps the frame: dropping it would lose
/// an offer, and a snapshot holding it would be dropped on every reconnect.
#[test]
fn values_a_newer_hub_adds_decode_as_other() {
    fn other<T: serde::de::DeserializeOwned + std::fmt::Debug + PartialEq>(json: &str, want: T) {
        assert_eq!(serde_json::from_str::<T>(json).unwrap(), want, "{json}");
    }
    other(r#""instagram""#, Channel::Other);
    other(r#""incoming_instagram""#, Scenario::Other);
    other(r#""on_break""#, Presence::Other);
    other(r#""schedule""#, PresenceReason::Other);
    other(r#""banner""#, NotificationKind::Other);
    other(r#""sentiment""#, DetailField::Other);
    other(r#""in_focus""#, DesktopNotifications::Other);
    other(r#""wrap_up""#, ConversationStatus::Other);
    other(r#"{"kind":"bot","name":"Helper"}"#, Author::Other);
    other(r#""overtime""#, NoticeKind::Other);
    other(r#""auditor""#, Role::Other);
    other(r#""quota""#, ErrorCode::Other);
    other(r#""expired""#, OfferOutcome::Other);
    other(r#""migrated""#, ResyncReason::Other);
    other(r#"{"kind":"queued","position":3}"#, CommandReply::Other);
    // Values this version knows still decode as themselves, and `Other` is
    // no presence or channel anyone can name.
    other(r#""sms""#, Channel::Sms);
    other(r#"{"kind":"customer"}"#, Author::Customer);
    assert_eq!(Presence::parse("other"), None);
    assert_eq!(Channel::parse("other"), None);
    assert_eq!(Role::parse("other"), None);
    assert!(!Role::Other.is_supervisor());

    // A whole snapshot from a newer hub, with new values throughout.
    let snapshot = every_server_frame()
        .into_iter()
        .find(|f| matches!(f, ServerFrame::Snapshot { .. }))
        .unwrap();
    let text = encode(&snapshot)
        .replace(r#""channel":"whatsapp""#, r#""channel":"instagram""#)
        .replace(r#""presence":"available""#, r#""presence":"on_break""#)
        .replace(r#""role":"agent""#, r#""role":"auditor""#)
        .replace(r#""status":"offered""#, r#""status":"wrap_up""#)
        .replace(r#""kind":"alert""#, r#""kind":"banner""#)
        .replace(r#""customer_name""#, r#""sentiment""#);
    assert_ne!(text, encode(&snapshot), "the replacements must apply");
    let ServerFrame::Snapshot { snapshot: s, .. } = decode_server_frame(&text).unwrap() else {
        panic!("not a snapshot");
    };
    assert_eq!(s.presence, Presence::Other);
    assert_eq!(s.agent.role, Role::Other);
    let c = &s.conversations[0].conversation;
    assert_eq!(
        (c.channel, c.status),
        (Channel::Other, ConversationStatus::Other)
    );
    assert_eq!(s.offers[0].conversation.channel, Channel::Other);
    assert_eq!(s.offers[0].template.kind, NotificationKind::Other);
    assert!(s.offers[0].template.details.contains(&DetailField::Other));
}

#[test]
fn malformed_frames_are_errors() {
    for bad in [
        "",
        "not json",
        "[1,2,3]",
        "42",
        r#"{"seq":1}"#,
        r#"{"type":"ack"}"#,
        r#"{"type":"ack","seq":-1}"#,
        r#"{"type":"hello","versions":"1","token":"x"}"#,
        r#"{"type":"command","id":"a","command":{"kind":"accept_offer"}}"#,
        "{\"type\":\"ping\",\"nonce\":1",
    ] {
        assert!(
            matches!(decode_client_frame(bad), Err(DecodeError::Invalid(_))),
            "{bad:?} should be invalid"
        );
    }
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    let big = format!(
        r#"{{"type":"ping","nonce":1,"pad":"{}"}}"#,
        "x".repeat(MAX_FRAME_BYTES)
    );
    assert!(matches!(
        decode_client_frame(&big),
        Err(DecodeError::TooLarge(n)) if n == big.len()
    ));
}

#[test]
fn hostile_text_survives_json_escaping() {
    // Lone surrogates arrive escaped in JSON; serde replaces nothing and
    // rejects them rather than producing invalid UTF-8.
    let lone = r#"{"type":"command","id":"a","command":{"kind":"send_message","conversation_id":1,"text":"\ud800"}}"#;
    assert!(decode_client_frame(lone).is_err());
    let nul = r#"{"type":"command","id":"a","command":{"kind":"send_message","conversation_id":1,"text":"a\u0000b"}}"#;
    match decode_client_frame(nul).unwrap() {
        ClientFrame::Command(CommandFrame {
            command: Command::SendMessage { text, .. },
            ..
        }) => assert_eq!(text, "a\0b"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn committed_schemas_match_the_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let mut drift = Vec::new();
    for doc in schema_documents() {
        let want = doc.to_pretty_json();
        let path = dir.join(doc.file_name);
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            drift.push(doc.file_name);
        }
    }
    assert!(
        drift.is_empty(),
        "schema drift in {drift:?}: run `cargo run -p switchboard-protocol --example export-schema` and commit"
    );
}

#[test]
fn schemas_describe_every_frame_kind() {
    let docs = schema_documents();
    let client = docs[0].to_pretty_json();
    for kind in [
        "hello",
        "ack",
        "command",
        "ping",
        "accept_offer",
        "reject_offer",
        "set_presence",
        "send_message",
        "mark_read",
        "close_conversation",
    ] {
        assert!(
            client.contains(&format!("\"{kind}\"")),
            "client schema lacks {kind}"
        );
    }
    let server = docs[1].to_pretty_json();
    for kind in [
        "welcome",
        "event",
        "snapshot",
        "command_result",
        "pong",
        "error",
        "offer_created",
        "offer_resolved",
        "conversation_assigned",
        "presence_changed",
        "notice",
        "message_added",
    ] {
        assert!(
            server.contains(&format!("\"{kind}\"")),
            "server schema lacks {kind}"
        );
    }
}

#[test]
fn every_frame_validates_against_its_schema_shape() {
    // Light structural check: every encoded frame's `type` is named in the
    // schema, so producers and the schema agree on tags.
    let docs = schema_documents();
    let client = docs[0].to_pretty_json();
    for f in every_client_frame() {
        let v: serde_json::Value = serde_json::from_str(&encode(&f)).unwrap();
        let t = v["type"].as_str().unwrap();
        assert!(client.contains(&format!("\"{t}\"")));
    }
    let server = docs[1].to_pretty_json();
    for f in every_server_frame() {
        let v: serde_json::Value = serde_json::from_str(&encode(&f)).unwrap();
        let t = v["type"].as_str().unwrap();
        assert!(server.contains(&format!("\"{t}\"")));
    }
}

#[test]
fn offers_from_older_hubs_are_new_conversations_and_unknown_origins_are_tolerated() {
    let offer = Offer {
        id: OfferId(5),
        conversation: summary(),
        template: template(),
        created_at: Millis(1),
        expires_at: Millis(2),
        origin: OfferOrigin::NewConversation,
    };
    let mut v = serde_json::to_value(&offer).unwrap();
    v.as_object_mut().unwrap().remove("origin");
    let old: Offer = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(old.origin, OfferOrigin::NewConversation);
    v["origin"] = serde_json::json!({"kind": "telepathy", "x": 1});
    let future: Offer = serde_json::from_value(v).unwrap();
    assert_eq!(future.origin, OfferOrigin::Unknown);
    assert!(!future.origin.is_request());
}

#[test]
fn routing_between_agents_round_trips() {
    let from = AgentRef {
        id: AgentId(1),
        name: "Ana".into(),
    };
    for origin in [
        OfferOrigin::BotEscalation {
            transcript: vec!["Bot: hi".into(), "Customer: <b>help</b>".into()],
        },
        OfferOrigin::AssignRequest {
            from: from.clone(),
            reason: Some("vacation".into()),
        },
        OfferOrigin::AssignToMe {
            owner: from.clone(),
            idle_secs: 30,
        },
        OfferOrigin::TeamMessage {
            preview: "hello".into(),
            messages: 2,
        },
    ] {
        let text = serde_json::to_string(&origin).unwrap();
        assert_eq!(serde_json::from_str::<OfferOrigin>(&text).unwrap(), origin);
    }
    assert!(OfferOrigin::DiscussRequest { from: from.clone() }.reason_required());
    assert!(!OfferOrigin::Consult { from }.reason_required());
    let cmd = Command::TransferConversation {
        conversation_id: ConversationId(1),
        target: TransferTarget::Queue { queue: "Q".into() },
        note: None,
    };
    let text = serde_json::to_string(&cmd).unwrap();
    assert!(text.contains(r#""to":"queue""#), "{text}");
    assert_eq!(serde_json::from_str::<Command>(&text).unwrap(), cmd);
    // Unknown revoke reasons and assign modes from a newer hub decode.
    let ev: AgentEvent = serde_json::from_str(
        r#"{"kind":"conversation_revoked","conversation_id":1,"reason":"beamed_up"}"#,
    )
    .unwrap();
    assert!(matches!(
        ev,
        AgentEvent::ConversationRevoked {
            reason: RevokeReason::Other,
            ..
        }
    ));
}

#[test]
fn phone_numbers_normalise_to_digits() {
    use switchboard_protocol::rest::normalize_phone;
    assert_eq!(normalize_phone("+1 (555) 010-2000"), "+15550102000");
    assert_eq!(normalize_phone("0044 20 7946 0000"), "+442079460000");
    assert_eq!(normalize_phone("555.010.2000"), "5550102000");
    assert_eq!(normalize_phone("call me"), "");
}
