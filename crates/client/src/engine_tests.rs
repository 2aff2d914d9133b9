//! Engine unit tests: no sockets, no clock, no display.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::settings::SoundWhen;
use switchboard_protocol::{
    AgentId, ConversationStatus, Customer, NotificationKind, Role, Scenario,
};

const T0: Millis = Millis(1_800_000_000_000);

fn at(ms: i64) -> Millis {
    Millis(T0.0 + ms)
}

fn summary(id: i64) -> ConversationSummary {
    ConversationSummary {
        id: ConversationId(id),
        channel: Channel::Whatsapp,
        queue: "Support".into(),
        scenario: Scenario::IncomingWhatsapp,
        customer: Customer {
            name: format!("Customer {id}"),
            phone: None,
            email: None,
        },
        comment: Some("<b>help</b>".into()),
        created_at: at(-30_000),
        status: ConversationStatus::Offered,
        owner: None,
        identification: None,
        link: None,
        participants: vec![],
    }
}

fn template(kind: NotificationKind) -> NotificationTemplate {
    NotificationTemplate {
        kind,
        timeout_secs: 60,
        show_timeout: true,
        allow_reject: true,
        reject_reason_required: false,
        auto_accept: false,
        auto_assign: false,
        details: vec![
            DetailField::CustomerName,
            DetailField::Comment,
            DetailField::WaitTime,
        ],
        desktop: DesktopNotifications::WhenUnfocused,
    }
}

fn offer(id: i64, t: NotificationTemplate) -> Offer {
    Offer {
        id: OfferId(id),
        conversation: summary(100 + id),
        template: t,
        created_at: T0,
        expires_at: at(60_000),
        origin: OfferOrigin::NewConversation,
    }
}

struct Harness {
    e: Engine,
    seq: u64,
}

impl Harness {
    fn new() -> Self {
        let mut e = Engine::new(AgentState::default(), "t");
        e.handle(Input::Welcome { server_time: T0 }, T0);
        let mut h = Harness { e, seq: 0 };
        h.ev(
            AgentEvent::PresenceChanged {
                presence: Presence::Available,
                reason: switchboard_protocol::PresenceReason::Agent,
            },
            T0,
        );
        h
    }

    fn ev(&mut self, event: AgentEvent, now: Millis) -> Vec<Effect> {
        self.seq += 1;
        self.e.handle(
            Input::Event(EventFrame {
                seq: Seq(self.seq),
                at: now,
                event,
            }),
            now,
        )
    }

    fn offer(&mut self, o: Offer) -> Vec<Effect> {
        self.ev(AgentEvent::OfferCreated { offer: o }, T0)
    }

    fn assign(&mut self, id: i64, mode: AssignMode, open: bool) -> Vec<Effect> {
        let mut s = summary(id);
        s.status = ConversationStatus::Assigned;
        s.owner = Some(AgentId(1));
        self.ev(
            AgentEvent::ConversationAssigned {
                last_read: None,
                unread: None,
                conversation: s,
                mode,
                open_session: open,
                template: template(NotificationKind::Toast),
                messages: vec![],
                origin: OfferOrigin::NewConversation,
                has_earlier: None,
            },
            T0,
        )
    }

    fn customer(&mut self, conv: i64, msg: i64, now: Millis) -> Vec<Effect> {
        self.ev(
            AgentEvent::MessageAdded {
                message: Message {
                    id: MessageId(msg),
                    conversation_id: ConversationId(conv),
                    author: Author::Customer,
                    text: format!("message {msg}"),
                    sent_at: now,
                    command_id: None,
                },
            },
            now,
        )
    }

    fn act(&mut self, action: AgentAction, now: Millis) -> Vec<Effect> {
        self.e.handle(Input::Agent(action), now)
    }

    fn settings(&mut self, f: impl FnOnce(&mut AgentSettings)) {
        let mut s = self.e.state().settings.clone();
        f(&mut s);
        self.act(AgentAction::UpdateSettings { settings: s }, T0);
    }
}

fn notifies(fx: &[Effect]) -> Vec<&OsNotification> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn sends(fx: &[Effect]) -> Vec<&Command> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send(f) => Some(&f.command),
            _ => None,
        })
        .collect()
}

fn has(fx: &[Effect], want: &Effect) -> bool {
    fx.contains(want)
}

#[test]
fn an_alert_offer_raises_a_critical_notification_with_accept_reject_countdown_and_ring() {
    let mut h = Harness::new();
    let fx = h.offer(offer(1, template(NotificationKind::Alert)));
    let n = notifies(&fx);
    assert_eq!(n.len(), 1);
    let n = n[0];
    assert_eq!(n.key, NotificationKey::Offer(OfferId(1)));
    assert_eq!(n.style, NotificationStyle::Alert);
    assert_eq!(
        n.actions,
        vec![NotificationAction::Accept, NotificationAction::Reject]
    );
    assert!(n.countdown);
    assert_eq!(n.expires_at, Some(at(60_000)));
    assert_eq!(n.title, "Incoming WhatsApp from Customer 101");
    assert!(n.body.contains(&"Customer: Customer 101".to_string()));
    assert!(
        n.body.contains(&"Comment: <b>help</b>".to_string()),
        "text stays raw; sinks escape"
    );
    assert!(n.body.contains(&"Wait time: 30 s".to_string()));
    assert!(n.body.contains(&"Respond within 60 s".to_string()));
    assert!(has(&fx, &Effect::StartRing));
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Ui(UiEvent::OfferShown { .. }))));
    let tray = fx.iter().find_map(|e| match e {
        Effect::Tray(t) => Some(t.clone()),
        _ => None,
    });
    let tray = tray.unwrap();
    assert_eq!(tray.offers.len(), 1);
    assert_eq!(tray.offers[0].label, "Accept WhatsApp from Customer 101");
    assert!(tray.offers[0].can_reject);
}

/// An offer's OS notification counts down: every 10 s it is replaced in
/// place (quietly) with the time left, until the last step before the
/// deadline; an answered offer's updates stop.
#[test]
fn an_offer_notification_counts_down_in_place_until_answered() {
    let mut h = Harness::new();
    let fx = h.offer(offer(1, template(NotificationKind::Alert)));
    assert!(!notifies(&fx)[0].refresh);
    assert_eq!(h.e.next_wake(), Some(at(10_000)));
    let mut left = Vec::new();
    let mut t = 0;
    while let Some(w) = h.e.next_wake().filter(|w| *w < at(60_000)) {
        assert!(w.0 - T0.0 > t, "time moves on");
        t = w.0 - T0.0;
        let fx = h.e.handle(Input::Tick, w);
        let n = notifies(&fx);
        assert_eq!(n.len(), 1);
        assert!(n[0].refresh);
        assert_eq!(n[0].key, NotificationKey::Offer(OfferId(1)));
        assert_eq!(
            n[0].actions,
            vec![NotificationAction::Accept, NotificationAction::Reject]
        );
        assert!(!fx
            .iter()
            .any(|e| matches!(e, Effect::Ui(UiEvent::OfferShown { .. }))));
        left.push(
            n[0].body
                .iter()
                .find(|l| l.starts_with("Respond within"))
                .cloned()
                .unwrap(),
        );
    }
    assert_eq!(
        left,
        ["50 s", "40 s", "30 s", "20 s", "10 s"].map(|s| format!("Respond within {s}"))
    );

    // Answered: no more updates.
    h.offer(offer(2, template(NotificationKind::Alert)));
    h.act(
        AgentAction::Accept {
            offer_id: OfferId(2),
        },
        at(1000),
    );
    let fx = h.e.handle(Input::Tick, at(70_000));
    assert!(notifies(&fx)
        .iter()
        .all(|n| n.key != NotificationKey::Offer(OfferId(2))));
    // No countdown shown: nothing to update.
    let mut t = template(NotificationKind::Alert);
    t.show_timeout = false;
    let mut o = offer(3, t);
    o.expires_at = at(200_000);
    h.offer(o);
    let fx = h.e.handle(Input::Tick, at(100_000));
    assert!(notifies(&fx).is_empty());
}

#[test]
fn template_decides_countdown_and_reject() {
    let mut h = Harness::new();
    let mut t = template(NotificationKind::Alert);
    t.show_timeout = false;
    t.allow_reject = false;
    let fx = h.offer(offer(1, t));
    let n = notifies(&fx)[0];
    assert_eq!(n.actions, vec![NotificationAction::Accept]);
    assert!(!n.countdown);
    assert!(!n.body.iter().any(|l| l.starts_with("Respond within")));
    // The deadline applies even without a countdown.
    assert_eq!(n.expires_at, Some(at(60_000)));
    // Reject is refused locally, nothing is sent.
    let fx = h.act(
        AgentAction::Reject {
            offer_id: OfferId(1),
            reason: None,
        },
        at(1000),
    );
    assert!(sends(&fx).is_empty());
    assert!(fx.iter().any(|e| matches!(e, Effect::Ui(UiEvent::CommandFailed { error, .. }) if error.code == ErrorCode::RejectNotAllowed)));
}

#[test]
fn desktop_setting_always_when_unfocused_never() {
    // Default (template: when unfocused), unfocused: shown.
    let mut h = Harness::new();
    assert_eq!(
        notifies(&h.offer(offer(1, template(NotificationKind::Alert)))).len(),
        1
    );
    // Focused: in-app only.
    let mut h = Harness::new();
    h.e.handle(Input::Focus(true), T0);
    let fx = h.offer(offer(1, template(NotificationKind::Alert)));
    assert!(notifies(&fx).is_empty());
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Ui(UiEvent::OfferShown { .. }))));
    // Always, focused: shown.
    let mut h = Harness::new();
    h.settings(|s| s.desktop_notifications = Some(DesktopNotifications::Always));
    h.e.handle(Input::Focus(true), T0);
    assert_eq!(
        notifies(&h.offer(offer(1, template(NotificationKind::Alert)))).len(),
        1
    );
    // Never, unfocused: not shown, but the in-app alert is.
    let mut h = Harness::new();
    h.settings(|s| s.desktop_notifications = Some(DesktopNotifications::Never));
    let fx = h.offer(offer(1, template(NotificationKind::Alert)));
    assert!(notifies(&fx).is_empty());
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Ui(UiEvent::OfferShown { .. }))));
    // The template's default applies when the agent has not chosen.
    let mut h = Harness::new();
    h.e.handle(Input::Focus(true), T0);
    let mut t = template(NotificationKind::Alert);
    t.desktop = DesktopNotifications::Always;
    assert_eq!(notifies(&h.offer(offer(1, t))).len(), 1);
}

/// An offer that came while the app had focus is shown in the app only
/// (the default policy). When the agent clicks or minimises away from it
/// unanswered, its OS notification comes up then, with the time left and
/// its countdown; one already up is not raised twice, and Never keeps it
/// off the desktop.
#[test]
fn losing_focus_raises_the_os_notification_of_an_offer_shown_in_the_app_only() {
    let mut h = Harness::new();
    h.e.handle(Input::Focus(true), T0);
    assert!(notifies(&h.offer(offer(1, template(NotificationKind::Alert)))).is_empty());
    let fx = h.e.handle(Input::Focus(false), at(20_000));
    let n = notifies(&fx);
    assert_eq!(n.len(), 1, "{fx:?}");
    assert_eq!(n[0].key, NotificationKey::Offer(OfferId(1)));
    assert_eq!(n[0].style, NotificationStyle::Alert);
    assert!(!n[0].refresh, "a new notification, with its sound");
    assert!(
        n[0].body.iter().any(|l| l == "Respond within 40 s"),
        "{:?}",
        n[0].body
    );
    // Its countdown now runs.
    let next = h.e.next_wake().expect("a countdown update is due");
    assert!(next <= at(30_000), "{next:?}");
    let fx = h.e.handle(Input::Tick, at(30_000));
    assert!(notifies(&fx).iter().any(|n| n.refresh), "{fx:?}");

    // Back and away again: already up, not raised again.
    h.e.handle(Input::Focus(true), at(31_000));
    assert!(notifies(&h.e.handle(Input::Focus(false), at(32_000))).is_empty());

    // Answered (here: expired) and gone: nothing to raise.
    let mut h = Harness::new();
    h.e.handle(Input::Focus(true), T0);
    h.offer(offer(2, template(NotificationKind::Alert)));
    h.e.handle(Input::Tick, at(60_000));
    assert!(notifies(&h.e.handle(Input::Focus(false), at(61_000))).is_empty());

    // The agent chose Never: it stays in the app.
    let mut h = Harness::new();
    h.settings(|s| s.desktop_notifications = Some(DesktopNotifications::Never));
    h.e.handle(Input::Focus(true), T0);
    h.offer(offer(3, template(NotificationKind::Alert)));
    assert!(notifies(&h.e.handle(Input::Focus(false), at(1_000))).is_empty());
}

/// Working in one conversation (window focused), a customer writing in
/// another gets an in-app toast that opens it ("View chat"), not nothing;
/// unfocused, the OS notification is that notice instead.
#[test]
fn a_message_in_a_conversation_not_in_front_is_an_in_app_toast_when_focused() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, true);
    h.assign(8, AssignMode::Accepted, false);
    h.act(
        AgentAction::Open {
            conversation_id: ConversationId(7),
        },
        T0,
    );
    h.e.handle(Input::Focus(true), T0);
    let fx = h.customer(8, 1, at(10));
    assert!(notifies(&fx).is_empty(), "focused: no desktop notification");
    let toast = fx.iter().find_map(|e| match e {
        Effect::Ui(UiEvent::Toast {
            conversation_id,
            body,
            ..
        }) => Some((*conversation_id, body.clone())),
        _ => None,
    });
    let (cid, body) = toast.expect("an in-app toast");
    assert_eq!(cid, ConversationId(8));
    assert!(body.starts_with("1 new message"), "{body}");
    // The conversation in front: read at once, no toast.
    let fx = h.customer(7, 2, at(20));
    assert!(toasts(&fx).is_empty());
    // Unfocused: the OS notification, no in-app toast.
    h.e.handle(Input::Focus(false), at(3000));
    let fx = h.customer(8, 3, at(4000));
    assert_eq!(notifies(&fx).len(), 1);
    assert!(toasts(&fx).is_empty());
}

/// The global shortcut accepts the offer that lapses first (the one the
/// window's card shows), not the newest.
#[test]
fn the_shortcut_accepts_the_offer_that_lapses_first() {
    let mut h = Harness::new();
    h.offer(offer(1, template(NotificationKind::Alert)));
    let mut newer = offer(2, template(NotificationKind::Alert));
    newer.created_at = at(1000);
    newer.expires_at = at(90_000);
    h.offer(newer);
    let fx = h.act(AgentAction::AcceptSoonest, at(2000));
    assert_eq!(
        sends(&fx),
        vec![&Command::AcceptOffer {
            offer_id: OfferId(1)
        }]
    );
}

/// An offer brought into the window's card (its notification's body
/// clicked, or the agent picking it from the list) is the one the global
/// shortcut accepts while it is pending, not a sooner one the card does
/// not show; once it is gone, the soonest again.
#[test]
fn the_shortcut_accepts_the_offer_brought_forward() {
    let accepted = |fx: &[Effect]| -> Vec<OfferId> {
        sends(fx)
            .into_iter()
            .filter_map(|c| match c {
                Command::AcceptOffer { offer_id } => Some(*offer_id),
                _ => None,
            })
            .collect()
    };
    let later = |id: i64| {
        let mut o = offer(id, template(NotificationKind::Alert));
        o.created_at = at(1000);
        o.expires_at = at(90_000);
        o
    };
    // A notification's body.
    let mut h = Harness::new();
    h.offer(offer(1, template(NotificationKind::Alert)));
    h.offer(later(2));
    let fx = h.e.handle(
        Input::Notification {
            key: NotificationKey::Offer(OfferId(2)),
            action: NotificationAction::Open,
        },
        at(1500),
    );
    assert!(
        fx.contains(&Effect::FocusWindow(Some(NotificationKey::Offer(OfferId(
            2
        )))))
    );
    let fx = h.act(AgentAction::AcceptSoonest, at(2000));
    assert_eq!(accepted(&fx), vec![OfferId(2)]);
    // Picked in the window; a later one that is gone leaves the soonest.
    let mut h = Harness::new();
    h.offer(offer(1, template(NotificationKind::Alert)));
    h.offer(later(2));
    h.offer(later(3));
    h.act(
        AgentAction::ShowOffer {
            offer_id: OfferId(3),
        },
        at(1500),
    );
    h.act(
        AgentAction::Reject {
            offer_id: OfferId(3),
            reason: None,
        },
        at(1600),
    );
    let fx = h.act(AgentAction::AcceptSoonest, at(2000));
    assert_eq!(accepted(&fx), vec![OfferId(1)]);
    h.act(
        AgentAction::ShowOffer {
            offer_id: OfferId(2),
        },
        at(2100),
    );
    let fx = h.act(AgentAction::AcceptSoonest, at(2200));
    assert_eq!(accepted(&fx), vec![OfferId(2)]);
}

#[test]
fn ring_follows_focus_and_sound_settings() {
    let mut h = Harness::new();
    let fx = h.offer(offer(1, template(NotificationKind::Alert)));
    assert!(has(&fx, &Effect::StartRing));
    let fx = h.e.handle(Input::Focus(true), at(100));
    assert!(
        has(&fx, &Effect::StopRing),
        "focused + when-unfocused: silence"
    );
    let fx = h.e.handle(Input::Focus(false), at(200));
    assert!(has(&fx, &Effect::StartRing));
    h.settings(|s| s.sound_when = SoundWhen::Never);
    assert!(!h.e.ringing());
    h.settings(|s| {
        s.sound_when = SoundWhen::Always;
        s.volume = 0;
    });
    assert!(!h.e.ringing(), "volume 0 means no ring");
    h.settings(|s| s.volume = 50);
    h.e.handle(Input::Focus(true), at(300));
    assert!(h.e.ringing(), "always: rings even focused");
}

/// An accept the hub refuses for the session limit (or fails on) leaves
/// the offer pending there: it comes back here, alert and all, to accept
/// once a session is closed. Any other refusal (taken, timed out) does not.
#[test]
fn an_accept_refused_for_the_session_limit_brings_the_offer_back() {
    let mut h = Harness::new();
    h.offer(offer(1, template(NotificationKind::Alert)));
    h.offer(offer(2, template(NotificationKind::Alert)));
    let accept = |h: &mut Harness, id: i64, code: ErrorCode, now: Millis| {
        let fx = h.act(
            AgentAction::Accept {
                offer_id: OfferId(id),
            },
            now,
        );
        let cmd = fx
            .iter()
            .find_map(|e| match e {
                Effect::Send(f) => Some(f.id.clone()),
                _ => None,
            })
            .expect("sent");
        assert!(!h.e.state().offers.contains_key(&OfferId(id)));
        h.e.handle(
            Input::CommandResult {
                id: cmd,
                outcome: CommandOutcome::Error(ErrorBody::new(code, "no")),
            },
            now,
        )
    };
    let fx = accept(&mut h, 1, ErrorCode::SessionLimit, at(5000));
    assert!(h.e.state().offers.contains_key(&OfferId(1)));
    assert!(!h.e.state().handled_offers.contains(&OfferId(1)));
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Store(StoreOp::PutOffer(p)) if p.offer.id == OfferId(1))));
    assert!(fx.iter().any(
        |e| matches!(e, Effect::Ui(UiEvent::OfferShown { offer, .. }) if offer.offer.id == OfferId(1))
    ));
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Ui(UiEvent::CommandFailed { .. }))));
    // Accepted again later: sent again.
    let fx = h.act(
        AgentAction::Accept {
            offer_id: OfferId(1),
        },
        at(6000),
    );
    assert_eq!(sends(&fx).len(), 1);

    accept(&mut h, 2, ErrorCode::Conflict, at(7000));
    assert!(!h.e.state().offers.contains_key(&OfferId(2)));
    // A hub failure did nothing: the offer is still there to accept.
    h.offer(offer(4, template(NotificationKind::Alert)));
    accept(&mut h, 4, ErrorCode::Internal, at(8000));
    assert!(h.e.state().offers.contains_key(&OfferId(4)));
    // So may a code only a newer hub knows: the offer stays.
    h.offer(offer(5, template(NotificationKind::Alert)));
    accept(&mut h, 5, ErrorCode::Other, at(8500));
    assert!(h.e.state().offers.contains_key(&OfferId(5)));
    // Past its deadline, a refused accept does not bring it back.
    h.offer(offer(3, template(NotificationKind::Alert)));
    accept(&mut h, 3, ErrorCode::SessionLimit, at(61_000));
    assert!(!h.e.state().offers.contains_key(&OfferId(3)));
}

#[test]
fn accept_sends_once_closes_the_notification_stops_the_ring_and_never_shows_again() {
    let mut h = Harness::new();
    h.offer(offer(1, template(NotificationKind::Alert)));
    let fx = h.act(
        AgentAction::Accept {
            offer_id: OfferId(1),
        },
        at(5000),
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::AcceptOffer {
            offer_id: OfferId(1)
        }]
    );
    assert!(has(
        &fx,
        &Effect::CloseNotification(NotificationKey::Offer(OfferId(1)))
    ));
    assert!(has(&fx, &Effect::StopRing));
    // A second accept (double click, tray after window) sends nothing.
    let fx = h.act(
        AgentAction::Accept {
            offer_id: OfferId(1),
        },
        at(5100),
    );
    assert!(sends(&fx).is_empty());
    // The same offer replayed (new seq) is not shown again.
    let fx = h.offer(offer(1, template(NotificationKind::Alert)));
    assert!(notifies(&fx).is_empty());
    assert!(!h.e.ringing());
}

#[test]
fn os_notification_buttons_reach_the_engine() {
    let mut h = Harness::new();
    h.offer(offer(1, template(NotificationKind::Alert)));
    let fx = h.e.handle(
        Input::Notification {
            key: NotificationKey::Offer(OfferId(1)),
            action: NotificationAction::Accept,
        },
        at(1000),
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::AcceptOffer {
            offer_id: OfferId(1)
        }]
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::FocusWindow(_))));
    // From the tray, the alert window or the shortcut (a plain accept) too.
    h.offer(offer(3, template(NotificationKind::Alert)));
    let fx = h.act(
        AgentAction::Accept {
            offer_id: OfferId(3),
        },
        at(1000),
    );
    assert!(has(&fx, &Effect::FocusWindow(None)));
    // Body click: bring the window forward with the in-app alert.
    let mut t = template(NotificationKind::Alert);
    t.reject_reason_required = true;
    h.offer(offer(2, t));
    let fx = h.e.handle(
        Input::Notification {
            key: NotificationKey::Offer(OfferId(2)),
            action: NotificationAction::Open,
        },
        at(1000),
    );
    assert_eq!(
        fx.iter()
            .filter(|e| matches!(e, Effect::FocusWindow(Some(_))))
            .count(),
        1
    );
    // Reject needing a reason cannot be done from the OS notification.
    let fx = h.e.handle(
        Input::Notification {
            key: NotificationKey::Offer(OfferId(2)),
            action: NotificationAction::Reject,
        },
        at(1000),
    );
    assert!(sends(&fx).is_empty());
    assert!(has(
        &fx,
        &Effect::FocusWindow(Some(NotificationKey::Offer(OfferId(2))))
    ));
    let fx = h.act(
        AgentAction::Reject {
            offer_id: OfferId(2),
            reason: Some("  ".into()),
        },
        at(1000),
    );
    assert!(sends(&fx).is_empty());
    let fx = h.act(
        AgentAction::Reject {
            offer_id: OfferId(2),
            reason: Some("at lunch".into()),
        },
        at(1000),
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::RejectOffer {
            offer_id: OfferId(2),
            reason: Some("at lunch".into())
        }]
    );
}

#[test]
fn an_offer_expires_locally_at_its_deadline() {
    let mut h = Harness::new();
    h.offer(offer(1, template(NotificationKind::Alert)));
    assert_eq!(h.e.next_wake(), Some(at(10_000)), "the countdown's step");
    h.e.handle(Input::Tick, at(50_000));
    assert_eq!(h.e.next_wake(), Some(at(60_000)));
    let fx = h.e.handle(Input::Tick, at(59_999));
    assert!(!has(
        &fx,
        &Effect::CloseNotification(NotificationKey::Offer(OfferId(1)))
    ));
    let fx = h.e.handle(Input::Tick, at(60_000));
    assert!(has(
        &fx,
        &Effect::CloseNotification(NotificationKey::Offer(OfferId(1)))
    ));
    assert!(has(&fx, &Effect::StopRing));
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Ui(UiEvent::OfferClosed {
            why: OfferClosed::Expired,
            ..
        })
    )));
}

#[test]
fn deadlines_are_corrected_for_clock_skew() {
    let mut e = Engine::new(AgentState::default(), "t");
    // Hub clock is 5 s ahead of ours.
    e.handle(
        Input::Welcome {
            server_time: at(5000),
        },
        T0,
    );
    let o = Offer {
        expires_at: at(65_000),
        ..offer(1, template(NotificationKind::Alert))
    };
    let fx = e.handle(
        Input::Event(EventFrame {
            seq: Seq(1),
            at: T0,
            event: AgentEvent::OfferCreated { offer: o },
        }),
        T0,
    );
    assert_eq!(notifies(&fx)[0].expires_at, Some(at(60_000)));
}

#[test]
fn a_restart_within_the_timeout_shows_the_offer_again_with_the_remaining_time() {
    let mut h = Harness::new();
    h.offer(offer(1, template(NotificationKind::Alert)));
    h.offer(offer(2, template(NotificationKind::Alert)));
    h.act(
        AgentAction::Accept {
            offer_id: OfferId(2),
        },
        at(1000),
    );
    // "Restart": a new engine over the same state, 20 s later.
    let mut e = Engine::new(h.e.state().clone(), "t2");
    let fx = e.start(at(20_000));
    let n = notifies(&fx);
    assert_eq!(n.len(), 1, "only the unhandled offer");
    assert_eq!(n[0].key, NotificationKey::Offer(OfferId(1)));
    assert!(n[0].body.contains(&"Respond within 40 s".to_string()));
    assert!(has(&fx, &Effect::StartRing));
    // After its deadline, a restart does not show it.
    let mut e = Engine::new(h.e.state().clone(), "t3");
    let fx = e.start(at(61_000));
    assert!(notifies(&fx).is_empty());
    assert!(!e.ringing());
    assert!(e.state().offers.is_empty());
}

#[test]
fn events_are_deduplicated_by_seq() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, true);
    let ev = EventFrame {
        seq: Seq(h.seq + 1),
        at: T0,
        event: AgentEvent::MessageAdded {
            message: Message {
                id: MessageId(1),
                conversation_id: ConversationId(7),
                author: Author::Customer,
                text: "hi".into(),
                sent_at: T0,
                command_id: None,
            },
        },
    };
    h.e.handle(Input::Event(ev.clone()), T0);
    h.e.handle(Input::Event(ev.clone()), T0);
    assert_eq!(h.e.state().unread_messages(), 1);
    assert_eq!(h.e.state().last_seq, ev.seq);
}

#[test]
fn a_burst_of_messages_updates_one_notification_at_most_once_a_second() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, false);
    let mut shown = 0;
    let mut chimes = 0;
    for i in 0..10 {
        let fx = h.customer(7, i + 1, at(i * 50));
        shown += notifies(&fx).len();
        chimes += fx.iter().filter(|e| **e == Effect::Chime).count();
    }
    assert_eq!(shown, 1, "the first raises, the rest wait");
    assert_eq!(chimes, 1);
    assert_eq!(
        h.e.state().unread_messages(),
        10,
        "the count is exact regardless"
    );
    // Due only once more than 1,000 ms have passed on the millisecond
    // clock: at 1,000 the real gap could still be 999.x ms.
    assert_eq!(h.e.next_wake(), Some(at(1001)));
    assert!(notifies(&h.e.handle(Input::Tick, at(1000))).is_empty());
    let fx = h.e.handle(Input::Tick, at(1001));
    let n = notifies(&fx);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].key, NotificationKey::Conversation(ConversationId(7)));
    assert_eq!(n[0].body[0], "10 new messages");
    assert_eq!(n[0].body[1], "message 10");
    assert!(has(&fx, &Effect::Badge(1)) || h.e.state().unread_chats() == 1);
}

/// Messages arriving every 7 ms for 5 s, with ticks whenever the engine
/// asks: consecutive updates of one conversation are always more than
/// 1,000 ms apart, and the last message is shown within one window.
#[test]
fn notification_updates_of_a_conversation_are_always_more_than_a_second_apart() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, false);
    let mut shown: Vec<i64> = Vec::new();
    let mut record = |fx: &[Effect], t: i64| {
        if notifies(fx)
            .iter()
            .any(|n| n.key == NotificationKey::Conversation(ConversationId(7)))
        {
            shown.push(t);
        }
    };
    let mut t = 0;
    let mut id = 0;
    while t < 5000 {
        if let Some(w) = h.e.next_wake() {
            if w.0 - T0.0 <= t {
                let fx = h.e.handle(Input::Tick, w);
                record(&fx, w.0 - T0.0);
            }
        }
        id += 1;
        let fx = h.customer(7, id, at(t));
        record(&fx, t);
        t += 7;
    }
    if let Some(w) = h.e.next_wake() {
        let fx = h.e.handle(Input::Tick, w);
        record(&fx, w.0 - T0.0);
    }
    assert!(shown.len() >= 4, "updates keep coming: {shown:?}");
    for pair in shown.windows(2) {
        assert!(
            pair[1] - pair[0] > COALESCE_MS,
            "two updates {} ms apart: {shown:?}",
            pair[1] - pair[0]
        );
    }
    let last = *shown.last().unwrap_or(&0);
    assert!(
        last - (t - 7) <= COALESCE_MS + 1,
        "the last message is shown"
    );
    assert_eq!(h.e.state().unread_messages(), id as u32);
}

#[test]
fn a_message_in_the_visible_conversation_is_read_not_notified() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, true);
    h.e.handle(Input::Focus(true), T0);
    let fx = h.customer(7, 1, at(10));
    assert!(notifies(&fx).is_empty());
    assert!(!fx.contains(&Effect::Chime));
    assert_eq!(
        sends(&fx),
        vec![&Command::MarkRead {
            conversation_id: ConversationId(7),
            message_id: MessageId(1)
        }]
    );
    assert_eq!(h.e.state().unread_messages(), 0);
    // Another conversation still notifies... only if unfocused or Always.
    h.assign(8, AssignMode::Accepted, false);
    let fx = h.customer(8, 2, at(20));
    assert!(notifies(&fx).is_empty(), "focused: in-app only");
    assert_eq!(h.e.state().unread_messages(), 1);
}

/// An offer accepted at the window brings its conversation to the front:
/// the customer's first words are on screen, so they are read (no unread
/// chat on the badge or the tray for the one the agent is looking at), and
/// the hub hears it. Accepted from a notification with the window in the
/// background, they stay unread until the window has focus.
#[test]
fn a_conversation_accepted_at_the_window_is_read() {
    let first = |focused: bool| {
        let mut h = Harness::new();
        h.e.handle(Input::Focus(focused), T0);
        let mut s = summary(7);
        s.status = ConversationStatus::Assigned;
        s.owner = Some(AgentId(1));
        let fx = h.ev(
            AgentEvent::ConversationAssigned {
                last_read: None,
                unread: Some(1),
                conversation: s,
                mode: AssignMode::Accepted,
                open_session: true,
                template: template(NotificationKind::Alert),
                messages: vec![Message {
                    id: MessageId(3),
                    conversation_id: ConversationId(7),
                    author: Author::Customer,
                    text: "hello".into(),
                    sent_at: T0,
                    command_id: None,
                }],
                origin: OfferOrigin::NewConversation,
                has_earlier: None,
            },
            T0,
        );
        (h, fx)
    };
    let (h, fx) = first(true);
    assert_eq!(h.e.state().active, Some(ConversationId(7)));
    assert_eq!(h.e.state().unread_messages(), 0);
    assert_eq!(
        sends(&fx),
        vec![&Command::MarkRead {
            conversation_id: ConversationId(7),
            message_id: MessageId(3)
        }]
    );
    let (mut h, fx) = first(false);
    assert_eq!(h.e.state().unread_messages(), 1);
    assert!(sends(&fx).is_empty());
    h.e.handle(Input::Focus(true), T0);
    assert_eq!(h.e.state().unread_messages(), 0);
}

fn mark(c: i64, m: i64) -> Command {
    Command::MarkRead {
        conversation_id: ConversationId(c),
        message_id: MessageId(m),
    }
}

fn sent_id(fx: &[Effect]) -> CommandId {
    fx.iter()
        .find_map(|e| match e {
            Effect::Send(f) => Some(f.id.clone()),
            _ => None,
        })
        .expect("a command was sent")
}

fn done(h: &mut Harness, id: CommandId) -> Vec<Effect> {
    h.e.handle(
        Input::CommandResult {
            id,
            outcome: CommandOutcome::Ok {
                reply: switchboard_protocol::CommandReply::Done,
            },
        },
        at(41),
    )
}

/// Twenty customer messages into conversation 7, in front of an agent at
/// the window. The first is read and its marker sent; the rest are read on
/// screen while that one is unanswered, and held back. Returns the first
/// marker's command.
fn burst_read_on_screen(h: &mut Harness) -> CommandId {
    h.assign(7, AssignMode::Accepted, true);
    h.e.handle(Input::Focus(true), T0);
    let fx = h.customer(7, 1, at(10));
    assert_eq!(sends(&fx), vec![&mark(7, 1)]);
    let first = sent_id(&fx);
    for m in 2..=20 {
        let fx = h.customer(7, m, at(10 + m));
        assert!(sends(&fx).is_empty(), "message {m}: {fx:?}");
        assert_eq!(h.e.state().unread_messages(), 0);
        assert_eq!(
            h.e.state().conversations[&ConversationId(7)].last_read,
            Some(MessageId(m))
        );
    }
    first
}

/// A burst of customer messages into the conversation the agent reads:
/// each is read at once on screen, but the hub hears one read marker while
/// another is unanswered, then one more with the newest, not one per
/// message. The agent's unread count stays at zero throughout.
#[test]
fn a_burst_in_the_conversation_being_read_moves_the_hubs_marker_twice_not_per_message() {
    let mut h = Harness::new();
    let first = burst_read_on_screen(&mut h);
    // The hub's confirmation of the first read is older than what the
    // agent has read: the count stays at zero.
    h.ev(
        AgentEvent::ReadMarkerMoved {
            conversation_id: ConversationId(7),
            message_id: MessageId(1),
            unread: 19,
        },
        at(40),
    );
    assert_eq!(h.e.state().unread_messages(), 0);
    let fx = done(&mut h, first);
    assert_eq!(sends(&fx), vec![&mark(7, 20)]);
    // Nothing more behind it: its answer sends nothing.
    let fx = done(&mut h, sent_id(&fx));
    assert!(sends(&fx).is_empty(), "{fx:?}");
    // A message after that is marked at once again.
    let fx = h.customer(7, 21, at(50));
    assert_eq!(sends(&fx), vec![&mark(7, 21)]);
}

/// A resync while reads are held back: the snapshot carries the hub's
/// older marker, so the held-back read goes to the hub at once and what
/// is on screen stays read; the first marker's answer then adds nothing.
#[test]
fn a_resync_sends_the_reads_held_back_and_keeps_what_is_on_screen_read() {
    let mut h = Harness::new();
    let first = burst_read_on_screen(&mut h);
    let mut s7 = summary(7);
    s7.status = ConversationStatus::Assigned;
    s7.owner = Some(AgentId(1));
    let snapshot = AgentSnapshot {
        agent: agent_a(),
        presence: Presence::Available,
        conversations: vec![switchboard_protocol::ConversationState {
            conversation: s7,
            unread: 19,
            last_read: Some(MessageId(1)),
            messages: (1..=20)
                .map(|m| Message {
                    id: MessageId(m),
                    conversation_id: ConversationId(7),
                    author: Author::Customer,
                    text: format!("message {m}"),
                    sent_at: at(10 + m),
                    command_id: None,
                })
                .collect(),
            has_earlier: None,
        }],
        offers: vec![],
    };
    let fx = h.e.handle(
        Input::Snapshot {
            seq: Seq(h.seq),
            snapshot,
        },
        at(40),
    );
    assert_eq!(sends(&fx), vec![&mark(7, 20)]);
    assert_eq!(h.e.state().unread_messages(), 0, "{fx:?}");
    let fx = done(&mut h, first);
    assert!(sends(&fx).is_empty(), "{fx:?}");
}

/// The app stops while reads are held back: the cache has the agent's
/// marker, the outbox only the first read. When the hub answers that one
/// after the restart, the marker the cache kept goes too.
#[test]
fn reads_held_back_when_the_app_stopped_reach_the_hub_after_a_restart() {
    let mut h = Harness::new();
    let first = burst_read_on_screen(&mut h);
    let mut restarted = Engine::new(h.e.state().clone(), "u");
    restarted.adopt_outbox(
        &[CommandFrame {
            id: first.clone(),
            command: mark(7, 1),
        }],
        vec![],
    );
    h.e = restarted;
    let fx = done(&mut h, first);
    assert_eq!(sends(&fx), vec![&mark(7, 20)]);
}

/// Closing (or handing on) a conversation with reads held back sends the
/// read first: after the close, the hub would refuse it.
#[test]
fn reads_held_back_go_before_a_close() {
    let mut h = Harness::new();
    burst_read_on_screen(&mut h);
    let fx = h.act(
        AgentAction::Close {
            conversation_id: ConversationId(7),
        },
        at(40),
    );
    assert_eq!(
        sends(&fx),
        vec![
            &mark(7, 20),
            &Command::CloseConversation {
                conversation_id: ConversationId(7)
            }
        ]
    );
}

/// A read marker refused because the conversation has gone meanwhile (the
/// customer ended it, a supervisor moved it) is nothing the agent can act
/// on: no error is shown. One refused for a conversation still held is.
#[test]
fn a_refused_read_marker_for_a_conversation_gone_shows_no_error() {
    let mut h = Harness::new();
    let first = burst_read_on_screen(&mut h);
    let refused = |h: &mut Harness, id| {
        h.e.handle(
            Input::CommandResult {
                id,
                outcome: CommandOutcome::Error(ErrorBody::new(ErrorCode::NotFound, "gone")),
            },
            at(45),
        )
    };
    let failed = |fx: &[Effect]| {
        fx.iter()
            .any(|e| matches!(e, Effect::Ui(UiEvent::CommandFailed { .. })))
    };
    let fx = refused(&mut h, first);
    assert!(failed(&fx), "still held: {fx:?}");
    let second = sent_id(&fx);
    h.ev(
        AgentEvent::ConversationClosed {
            conversation_id: ConversationId(7),
        },
        at(46),
    );
    assert!(!h.e.state().conversations.contains_key(&ConversationId(7)));
    let fx = refused(&mut h, second);
    assert!(!failed(&fx), "{fx:?}");
}

/// The bubble, badge, tray line and title count chats with unread
/// messages: a customer's seven lines are one chat waiting.
#[test]
fn the_badge_counts_unread_chats_not_messages() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, false);
    h.assign(8, AssignMode::Accepted, false);
    let mut badges = Vec::new();
    for i in 1..=3 {
        let fx = h.customer(7, i, at(i * 10));
        badges.extend(fx.iter().filter_map(|e| match e {
            Effect::Badge(n) => Some(*n),
            _ => None,
        }));
    }
    assert_eq!(badges, vec![1], "one badge change for one chat");
    let fx = h.customer(8, 4, at(100));
    assert!(has(&fx, &Effect::Badge(2)));
    assert_eq!(h.e.state().unread_messages(), 4);
    assert_eq!(h.e.state().unread_chats(), 2);
    assert_eq!(crate::view::app_view(&h.e).unread_chats, 2);
}

/// A toast is one notification change of the conversation like any
/// other: an accepted assign request brings the owner a revoke and the
/// request's answer in the same instant, and the second waits a second
/// instead of replacing the first at once (two chimes, one unread flash).
/// A message right after a toast waits too.
#[test]
fn toasts_of_one_conversation_are_a_second_apart_like_its_messages() {
    let mut h = Harness::new();
    h.assign(5, AssignMode::Accepted, true);
    h.e.handle(Input::Focus(false), at(10));
    let mut fx = h.ev(
        AgentEvent::ConversationRevoked {
            conversation_id: ConversationId(5),
            reason: RevokeReason::TakenOver,
        },
        at(2000),
    );
    fx.extend(h.ev(
        AgentEvent::RequestAnswered {
            conversation_id: ConversationId(5),
            request: RequestKind::Assign,
            by: ana(),
            accepted: true,
            rejected: false,
            reason: None,
        },
        at(2000),
    ));
    let key = NotificationKey::Conversation(ConversationId(5));
    let shown = |fx: &[Effect]| notifies(fx).iter().filter(|n| n.key == key).count();
    assert_eq!(shown(&fx), 1, "{fx:?}");
    assert_eq!(fx.iter().filter(|e| **e == Effect::Chime).count(), 1);
    assert_eq!(toasts(&fx).len(), 2, "both in the window");
    assert_eq!(h.e.next_wake(), Some(at(3001)));
    assert_eq!(shown(&h.e.handle(Input::Tick, at(2500))), 0);
    let fx = h.e.handle(Input::Tick, at(3001));
    assert_eq!(shown(&fx), 1, "the answer, a second later");

    // A message right after a toast.
    let mut h = Harness::new();
    h.assign(6, AssignMode::Accepted, false);
    h.e.handle(Input::Focus(false), at(10));
    let fx = h.ev(
        AgentEvent::RequestAnswered {
            conversation_id: ConversationId(6),
            request: RequestKind::Consult,
            by: ana(),
            accepted: false,
            rejected: true,
            reason: None,
        },
        at(2000),
    );
    assert_eq!(notifies(&fx).len(), 1);
    let fx = h.customer(6, 1, at(2300));
    assert!(notifies(&fx).is_empty(), "{fx:?}");
    assert_eq!(notifies(&h.e.handle(Input::Tick, at(3001))).len(), 1);

    // A toast held back for a conversation closed within the window goes
    // with it: nothing left to wake for, nothing at a later tick.
    let mut h = Harness::new();
    h.assign(9, AssignMode::Accepted, false);
    h.e.handle(Input::Focus(false), at(10));
    h.customer(9, 1, at(2000));
    h.ev(
        AgentEvent::RequestAnswered {
            conversation_id: ConversationId(9),
            request: RequestKind::Consult,
            by: ana(),
            accepted: false,
            rejected: true,
            reason: None,
        },
        at(2400),
    );
    h.ev(
        AgentEvent::ConversationClosed {
            conversation_id: ConversationId(9),
        },
        at(2600),
    );
    assert_eq!(h.e.next_wake(), None);
    assert!(notifies(&h.e.handle(Input::Tick, at(60_000))).is_empty());
}

/// A chat auto-accepted into a focused window with nothing else in front
/// is on screen: it is read (the badge, the tray and reminders do not
/// count it), as one the agent accepted is.
#[test]
fn an_auto_accepted_chat_in_front_of_a_focused_window_is_read() {
    // Conversation 7 auto-accepted with one unread customer message.
    let auto_accept = |h: &mut Harness| {
        let mut s = summary(7);
        s.status = ConversationStatus::Assigned;
        s.owner = Some(AgentId(1));
        h.ev(
            AgentEvent::ConversationAssigned {
                last_read: None,
                unread: Some(1),
                conversation: s,
                mode: AssignMode::AutoAccept,
                open_session: true,
                template: template(NotificationKind::Toast),
                messages: vec![Message {
                    id: MessageId(3),
                    conversation_id: ConversationId(7),
                    author: Author::Customer,
                    text: "hello".into(),
                    sent_at: T0,
                    command_id: None,
                }],
                origin: OfferOrigin::NewConversation,
                has_earlier: None,
            },
            T0,
        )
    };
    let mut h = Harness::new();
    h.e.handle(Input::Focus(true), T0);
    let fx = auto_accept(&mut h);
    assert_eq!(h.e.state().active, Some(ConversationId(7)));
    assert_eq!(h.e.state().unread_chats(), 0);
    assert!(sends(&fx).contains(&&mark(7, 3)), "{fx:?}");

    // With an offer card over the window, the chat behind it is not seen.
    let mut h = Harness::new();
    h.e.handle(Input::Focus(true), T0);
    h.offer(offer(8, template(NotificationKind::Alert)));
    let fx = auto_accept(&mut h);
    assert_eq!(h.e.state().unread_chats(), 1);
    assert!(!sends(&fx).contains(&&mark(7, 3)), "{fx:?}");
}

/// A resync that no longer has a conversation forgets its notification
/// bookkeeping, and one read meanwhile elsewhere (unread now 0) has its
/// "new messages" notification closed.
#[test]
fn a_resync_closes_what_was_read_elsewhere_and_forgets_what_is_gone() {
    let mut h = Harness::new();
    h.assign(5, AssignMode::Accepted, false);
    h.assign(6, AssignMode::Accepted, false);
    h.customer(5, 1, at(0));
    h.customer(6, 2, at(0));
    let mut s6 = summary(6);
    s6.status = ConversationStatus::Assigned;
    s6.owner = Some(AgentId(1));
    let fx = h.e.handle(
        Input::Snapshot {
            seq: Seq(h.seq + 1),
            snapshot: AgentSnapshot {
                agent: agent_a(),
                presence: Presence::Available,
                conversations: vec![switchboard_protocol::ConversationState {
                    conversation: s6,
                    unread: 0,
                    last_read: Some(MessageId(2)),
                    messages: vec![],
                    has_earlier: None,
                }],
                offers: vec![],
            },
        },
        at(500),
    );
    for c in [5, 6] {
        assert!(
            fx.contains(&Effect::CloseNotification(NotificationKey::Conversation(
                ConversationId(c)
            ))),
            "{c}: {fx:?}"
        );
    }
    // Nothing is left to wake for: no coalescing window kept for 5.
    assert_eq!(h.e.next_wake(), None);
}

/// Settings from the page are kept in range: a volume is a percentage,
/// and a reminder under five seconds would chime on and on (0 is off).
#[test]
fn settings_out_of_range_are_brought_into_it() {
    let mut h = Harness::new();
    h.settings(|s| {
        s.volume = 200;
        s.reminder_secs = Some(1);
    });
    assert_eq!(h.e.state().settings.volume, 100);
    assert_eq!(h.e.state().settings.reminder_secs, Some(5));
    h.settings(|s| s.reminder_secs = Some(0));
    assert_eq!(h.e.state().settings.reminder_secs, None);
}

#[test]
fn toasts_for_assignments_not_decided_by_the_agent() {
    let mut h = Harness::new();
    let fx = h.assign(7, AssignMode::Toast, false);
    let n = notifies(&fx);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].style, NotificationStyle::Toast);
    assert_eq!(n[0].actions, vec![NotificationAction::Open]);
    assert_eq!(n[0].expires_at, Some(at(60_000)));
    assert!(fx.contains(&Effect::Chime));
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Ui(UiEvent::Toast { .. }))));
    assert!(!fx.contains(&Effect::StartRing), "toasts do not ring");
    // Clicking it opens the session.
    let fx = h.e.handle(
        Input::Notification {
            key: NotificationKey::Conversation(ConversationId(7)),
            action: NotificationAction::Open,
        },
        at(100),
    );
    assert!(
        fx.contains(&Effect::FocusWindow(Some(NotificationKey::Conversation(
            ConversationId(7)
        ))))
    );
    assert_eq!(h.e.state().active, Some(ConversationId(7)));
    // An accepted one makes no toast, and auto-accept opens the session.
    let fx = h.assign(8, AssignMode::Accepted, true);
    assert!(notifies(&fx).is_empty());
    let fx = h.assign(9, AssignMode::AutoAccept, true);
    assert_eq!(notifies(&fx).len(), 1);
    assert_eq!(h.e.state().active, Some(ConversationId(9)));
}

/// Start at login the shell could not register goes back to off (that
/// setting alone), so the settings never say on while nothing starts the
/// app.
#[test]
fn start_at_login_the_shell_could_not_register_goes_back_to_off() {
    let mut h = Harness::new();
    h.settings(|s| {
        s.start_at_login = true;
        s.reminder_secs = Some(45);
    });
    let fx = h.e.handle(Input::StartAtLoginFailed, at(1));
    assert!(!h.e.state().settings.start_at_login);
    assert_eq!(h.e.state().settings.reminder_secs, Some(45));
    assert!(has(&fx, &Effect::Ui(UiEvent::SettingsChanged)));
    assert!(!fx.iter().any(|e| matches!(e, Effect::StartAtLogin(_))));
    // Already off: nothing.
    assert!(h.e.handle(Input::StartAtLoginFailed, at(2)).is_empty());
}

/// An auto-accepted conversation does not take the front from the one
/// the agent is working in at the window (typing there would go on in the
/// other customer's composer): its session opens and the toast says so.
/// With the window unfocused, or nothing in front, it comes to the front.
#[test]
fn auto_accept_leaves_the_conversation_the_agent_works_in_at_the_front() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, true);
    assert_eq!(h.e.state().active, Some(ConversationId(7)));
    h.e.handle(Input::Focus(true), at(1));
    let fx = h.assign(9, AssignMode::AutoAccept, true);
    assert_eq!(h.e.state().active, Some(ConversationId(7)));
    assert!(h.e.state().conversations[&ConversationId(9)].session_open);
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Ui(UiEvent::Toast { conversation_id, .. }) if *conversation_id == ConversationId(9))));
    // What the agent accepted comes to the front.
    h.assign(8, AssignMode::Accepted, true);
    assert_eq!(h.e.state().active, Some(ConversationId(8)));
    // Away from the window: the auto-accepted one is in front on return.
    h.e.handle(Input::Focus(false), at(2));
    h.assign(10, AssignMode::AutoAccept, true);
    assert_eq!(h.e.state().active, Some(ConversationId(10)));
}

#[test]
fn notices_become_banners_and_presence_follows_the_hub() {
    let mut h = Harness::new();
    let fx = h.ev(
        AgentEvent::PresenceChanged {
            presence: Presence::Inactive,
            reason: switchboard_protocol::PresenceReason::MissedOffer,
        },
        T0,
    );
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Ui(UiEvent::PresenceChanged {
            presence: Presence::Inactive
        })
    )));
    let fx = h.ev(
        AgentEvent::Notice {
            notice: NoticeKind::MissedOffer,
            message: "missed".into(),
        },
        T0,
    );
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Ui(UiEvent::Banner { .. }))));
    assert_eq!(h.e.state().banners.len(), 1);
    assert_eq!(h.e.state().presence, Some(Presence::Inactive));
    // The banner's Reset presence sends the reset (the hub knows what to
    // go back to) and clears the banner.
    let fx = h.act(AgentAction::ResetPresence, at(1));
    assert_eq!(sends(&fx), vec![&Command::ResetPresence]);
    assert!(h.e.state().banners.is_empty());
    // A hub older than the command (`invalid_frame`: it does not know it) is
    // sent what it knows, Available, and the agent sees no failure.
    let Effect::Send(reset) = fx.iter().find(|e| matches!(e, Effect::Send(_))).unwrap() else {
        unreachable!()
    };
    let fx = h.e.handle(
        Input::CommandResult {
            id: reset.id.clone(),
            outcome: CommandOutcome::Error(ErrorBody::new(
                ErrorCode::InvalidFrame,
                "unknown command kind",
            )),
        },
        at(1),
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::SetPresence {
            presence: Presence::Available
        }]
    );
    assert!(!fx
        .iter()
        .any(|e| matches!(e, Effect::Ui(UiEvent::CommandFailed { .. }))));
    // Choosing a presence answers a banner too.
    h.ev(
        AgentEvent::Notice {
            notice: NoticeKind::MissedOffer,
            message: "missed".into(),
        },
        at(1),
    );
    assert_eq!(h.e.state().banners.len(), 1);
    let fx = h.act(
        AgentAction::SetPresence {
            presence: Presence::Available,
        },
        at(1),
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::SetPresence {
            presence: Presence::Available
        }]
    );
    assert!(h.e.state().banners.is_empty());
    // Inactive cannot be chosen.
    let fx = h.act(
        AgentAction::SetPresence {
            presence: Presence::Inactive,
        },
        at(2),
    );
    assert!(sends(&fx).is_empty());
    // A supervisor's reset answers the banner too (and its notification).
    h.ev(
        AgentEvent::Notice {
            notice: NoticeKind::RejectedOffer,
            message: "rejected".into(),
        },
        at(3),
    );
    assert_eq!(h.e.state().banners.len(), 1);
    let fx = h.ev(
        AgentEvent::PresenceChanged {
            presence: Presence::Available,
            reason: switchboard_protocol::PresenceReason::Supervisor,
        },
        at(4),
    );
    assert!(h.e.state().banners.is_empty());
    assert!(has(
        &fx,
        &Effect::CloseNotification(NotificationKey::Notice(NoticeKind::RejectedOffer))
    ));
    assert!(has(&fx, &Effect::Ui(UiEvent::BannersChanged)));
}

/// A snapshot carries presence but no notices: an Inactive agent (a
/// fresh cache, another desk) still gets the banner with its Reset
/// presence; Do not disturb keeps the banners it has; a presence that
/// takes work answers them.
#[test]
fn a_snapshots_presence_raises_or_answers_the_reset_banner() {
    let mut h = Harness::new();
    let snapshot = |presence| Input::Snapshot {
        seq: Seq(10),
        snapshot: AgentSnapshot {
            agent: agent_a(),
            presence,
            conversations: vec![],
            offers: vec![],
        },
    };
    let fx = h.e.handle(snapshot(Presence::Inactive), at(1));
    let banners = &h.e.state().banners;
    assert_eq!(banners.len(), 1);
    assert_eq!(banners[0].notice, NoticeKind::MissedOffer);
    assert!(banners[0].message.contains("Inactive"));
    assert!(has(&fx, &Effect::Ui(UiEvent::BannersChanged)));
    assert!(has(
        &fx,
        &Effect::Store(StoreOp::PutBanners(banners.clone()))
    ));
    // Again: still one.
    h.e.handle(snapshot(Presence::Inactive), at(2));
    assert_eq!(h.e.state().banners.len(), 1);
    // The agent's own Do not disturb, or the system's: left as it is.
    h.e.handle(snapshot(Presence::DoNotDisturb), at(3));
    assert_eq!(h.e.state().banners.len(), 1);
    // Reset meanwhile (by a supervisor, on another desk): answered.
    let fx = h.e.handle(snapshot(Presence::Available), at(4));
    assert!(h.e.state().banners.is_empty());
    assert!(has(&fx, &Effect::Store(StoreOp::PutBanners(vec![]))));
}

#[test]
fn reminder_chimes_while_unread_remains() {
    let mut h = Harness::new();
    h.settings(|s| s.reminder_secs = Some(30));
    h.assign(7, AssignMode::Accepted, false);
    h.customer(7, 1, at(0));
    // Notified at once (nothing to coalesce): the next wake is the reminder.
    assert_eq!(h.e.next_wake(), Some(at(30_000)));
    let fx = h.e.handle(Input::Tick, at(30_000));
    assert!(fx.contains(&Effect::Chime));
    h.act(
        AgentAction::MarkRead {
            conversation_id: ConversationId(7),
        },
        at(30_001),
    );
    assert_eq!(h.e.next_wake(), None, "nothing unread, nothing to remind");
}

#[test]
fn drafts_and_active_session_are_persisted() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, true);
    let fx = h.act(
        AgentAction::SetDraft {
            conversation_id: ConversationId(7),
            text: "half a thought".into(),
        },
        T0,
    );
    assert!(fx.contains(&Effect::Store(StoreOp::PutDraft(
        ConversationId(7),
        "half a thought".into()
    ))));
    let fx = h.act(
        AgentAction::SendMessage {
            conversation_id: ConversationId(7),
            text: "done".into(),
        },
        T0,
    );
    assert_eq!(sends(&fx).len(), 1);
    assert!(fx.contains(&Effect::Store(StoreOp::PutDraft(
        ConversationId(7),
        String::new()
    ))));
    assert!(h.e.state().drafts.is_empty());
    // Closing removes everything about it.
    let fx = h.ev(
        AgentEvent::ConversationClosed {
            conversation_id: ConversationId(7),
        },
        T0,
    );
    assert!(
        fx.contains(&Effect::Store(StoreOp::DeleteConversation(ConversationId(
            7
        ))))
    );
    assert_eq!(h.e.state().active, None);
}

#[test]
fn a_snapshot_replaces_hub_state_but_keeps_local_drafts_and_never_reshows_handled_offers() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, true);
    h.assign(8, AssignMode::Accepted, false);
    h.act(
        AgentAction::SetDraft {
            conversation_id: ConversationId(7),
            text: "keep me".into(),
        },
        T0,
    );
    h.act(
        AgentAction::SetDraft {
            conversation_id: ConversationId(8),
            text: "gone".into(),
        },
        T0,
    );
    h.offer(offer(1, template(NotificationKind::Alert)));
    h.act(
        AgentAction::Accept {
            offer_id: OfferId(1),
        },
        T0,
    );
    let mut s7 = summary(7);
    s7.status = ConversationStatus::Assigned;
    let snapshot = AgentSnapshot {
        agent: agent_a(),
        presence: Presence::Busy,
        conversations: vec![switchboard_protocol::ConversationState {
            conversation: s7,
            unread: 3,
            last_read: None,
            messages: vec![],
            has_earlier: None,
        }],
        offers: vec![
            offer(1, template(NotificationKind::Alert)),
            offer(2, template(NotificationKind::Alert)),
        ],
    };
    let fx = h.e.handle(
        Input::Snapshot {
            seq: Seq(500),
            snapshot,
        },
        at(1000),
    );
    let st = h.e.state();
    assert_eq!(st.last_seq, Seq(500));
    assert_eq!(st.presence, Some(Presence::Busy));
    assert_eq!(
        st.conversations.keys().copied().collect::<Vec<_>>(),
        vec![ConversationId(7)]
    );
    assert_eq!(st.unread_messages(), 3);
    assert_eq!(
        st.drafts.get(&ConversationId(7)).map(String::as_str),
        Some("keep me")
    );
    assert!(!st.drafts.contains_key(&ConversationId(8)));
    assert_eq!(st.active, Some(ConversationId(7)));
    let shown: Vec<_> = notifies(&fx).iter().map(|n| n.key).collect();
    assert_eq!(shown, vec![NotificationKey::Offer(OfferId(2))]);
}

/// A draft save that lands after its conversation left is dropped, not
/// kept in the cache for good; one such draft a cache already holds goes
/// at the next snapshot.
#[test]
fn a_draft_for_a_conversation_no_longer_held_is_not_kept() {
    let mut h = Harness::new();
    let fx = h.act(
        AgentAction::SetDraft {
            conversation_id: ConversationId(9),
            text: "late save".into(),
        },
        T0,
    );
    assert!(!fx
        .iter()
        .any(|e| matches!(e, Effect::Store(StoreOp::PutDraft(..)))));
    assert!(h.e.state().drafts.is_empty());

    let mut cached = AgentState::default();
    cached
        .drafts
        .insert(ConversationId(9), "left by an older version".into());
    let mut e = Engine::new(cached, "t");
    let snapshot = AgentSnapshot {
        agent: agent_a(),
        presence: Presence::Available,
        conversations: vec![],
        offers: vec![],
    };
    let fx = e.handle(
        Input::Snapshot {
            seq: Seq(5),
            snapshot,
        },
        T0,
    );
    assert!(e.state().drafts.is_empty());
    assert!(!fx
        .iter()
        .any(|e| matches!(e, Effect::Store(StoreOp::PutDraft(..)))));
}

/// A hub restored from a backup (its seq behind ours) gives out offer ids
/// again: an offer with the id of one the agent handled is a new offer and
/// is shown. (With the hub's seq ahead, as usual, it is the old one: the
/// test above.)
#[test]
fn a_snapshot_from_a_hub_that_went_back_shows_offers_whose_ids_were_handled() {
    let mut h = Harness::new();
    h.offer(offer(1, template(NotificationKind::Alert)));
    h.act(
        AgentAction::Accept {
            offer_id: OfferId(1),
        },
        T0,
    );
    // Pending when the hub went back, and not in its snapshot.
    h.offer(offer(57, template(NotificationKind::Alert)));
    h.seq = 899;
    h.ev(
        AgentEvent::PresenceChanged {
            presence: Presence::Available,
            reason: switchboard_protocol::PresenceReason::Agent,
        },
        T0,
    );
    assert_eq!(h.e.state().last_seq, Seq(900));
    let snapshot = AgentSnapshot {
        agent: agent_a(),
        presence: Presence::Available,
        conversations: vec![],
        offers: vec![offer(1, template(NotificationKind::Alert))],
    };
    let fx = h.e.handle(
        Input::Snapshot {
            seq: Seq(3),
            snapshot,
        },
        at(1000),
    );
    let shown: Vec<_> = notifies(&fx).iter().map(|n| n.key).collect();
    assert_eq!(shown, vec![NotificationKey::Offer(OfferId(1))]);
    assert!(has(&fx, &Effect::Store(StoreOp::ForgetHandledOffers)));
    assert_eq!(h.e.state().last_seq, Seq(3));
    // The one dropped (pending here, unknown to the restored hub) is not
    // remembered as handled either: its id may be a new offer's too.
    assert!(!h.e.state().offers.contains_key(&OfferId(57)));
    assert!(h.e.state().handled_offers.is_empty());
    let last_forget = fx
        .iter()
        .rposition(|e| *e == Effect::Store(StoreOp::ForgetHandledOffers));
    let last_handled = fx
        .iter()
        .rposition(|e| matches!(e, Effect::Store(StoreOp::OfferHandled(_))));
    assert!(last_handled < last_forget, "the cache forgets last");
    h.seq = 3;
    let fx = h.offer(offer(57, template(NotificationKind::Alert)));
    assert_eq!(
        notifies(&fx)[0].key,
        NotificationKey::Offer(OfferId(57)),
        "the restored hub's new offer 57 is shown"
    );
}

/// A reply the hub refuses (the conversation closed meanwhile, say) or the
/// engine refuses (too long) is the draft again, ahead of anything typed
/// since: what the agent wrote is never lost to a failed send.
#[test]
fn a_reply_that_fails_to_send_is_the_draft_again() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, true);
    let c = ConversationId(7);
    let fx = h.act(
        AgentAction::SendMessage {
            conversation_id: c,
            text: "first answer".into(),
        },
        T0,
    );
    let id = fx
        .iter()
        .find_map(|e| match e {
            Effect::Send(f) => Some(f.id.clone()),
            _ => None,
        })
        .expect("sent");
    assert!(!h.e.state().drafts.contains_key(&c));
    // Typed on meanwhile.
    h.act(
        AgentAction::SetDraft {
            conversation_id: c,
            text: "and more".into(),
        },
        T0,
    );
    let fx = h.e.handle(
        Input::CommandResult {
            id,
            outcome: CommandOutcome::Error(ErrorBody::new(ErrorCode::Conflict, "closed")),
        },
        T0,
    );
    let want = "first answer\n\nand more".to_owned();
    assert_eq!(h.e.state().drafts.get(&c), Some(&want));
    // Out of the outbox in the same batch as the draft it went back into.
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Store(StoreOp::CommandAnswered(_)))));
    assert!(has(&fx, &Effect::Store(StoreOp::PutDraft(c, want.clone()))));
    assert!(has(
        &fx,
        &Effect::Ui(UiEvent::DraftRestored {
            conversation_id: c,
            draft: want,
        })
    ));

    // Too long for the hub: refused here, and given back as it was.
    let long = "x".repeat(switchboard_protocol::MAX_MESSAGE_TEXT_BYTES + 1);
    h.act(
        AgentAction::SetDraft {
            conversation_id: c,
            text: long.clone(),
        },
        T0,
    );
    let fx = h.act(
        AgentAction::SendMessage {
            conversation_id: c,
            text: long.clone(),
        },
        T0,
    );
    assert!(sends(&fx).is_empty());
    assert_eq!(h.e.state().drafts.get(&c), Some(&long));
    assert!(has(
        &fx,
        &Effect::Ui(UiEvent::DraftRestored {
            conversation_id: c,
            draft: long,
        })
    ));
}

/// A reply a previous run sent and saw no answer to (it is in the outbox
/// the runtime sends again) is handled like one of this run's: refused,
/// it is the draft again and the failure says "send".
#[test]
fn a_reply_from_before_a_restart_that_fails_is_the_draft_again() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, true);
    let c = ConversationId(7);
    let id = CommandId("previous-run-3".into());
    h.e.adopt_outbox(
        &[CommandFrame {
            id: id.clone(),
            command: Command::SendMessage {
                conversation_id: c,
                text: "typed before the crash".into(),
            },
        }],
        Vec::new(),
    );
    let fx = h.e.handle(
        Input::CommandResult {
            id,
            outcome: CommandOutcome::Error(ErrorBody::new(ErrorCode::Conflict, "closed")),
        },
        T0,
    );
    let want = "typed before the crash".to_owned();
    assert_eq!(h.e.state().drafts.get(&c), Some(&want));
    assert!(has(&fx, &Effect::Store(StoreOp::PutDraft(c, want))));
    assert!(fx.iter().any(|e| matches!(e,
        Effect::Ui(UiEvent::CommandFailed { what, .. }) if what == "send")));
}

/// An assignment that says the agent's read marker and unread count (a
/// conversation back with someone who read it) is counted as the hub says,
/// not by the customer messages in its history; without them, by the
/// history (older hubs).
#[test]
fn an_assignment_with_the_hubs_read_state_counts_unread_as_the_hub_does() {
    let history = |conv: i64| -> Vec<Message> {
        (1..=3)
            .map(|i| Message {
                id: MessageId(conv * 10 + i),
                conversation_id: ConversationId(conv),
                author: Author::Customer,
                text: format!("m{i}"),
                sent_at: T0,
                command_id: None,
            })
            .collect()
    };
    let mut h = Harness::new();
    for (conv, read) in [(7, Some((Some(MessageId(72)), 1))), (8, None)] {
        let mut s = summary(conv);
        s.status = ConversationStatus::Assigned;
        h.ev(
            AgentEvent::ConversationAssigned {
                conversation: s,
                mode: AssignMode::Supervisor,
                open_session: false,
                template: template(NotificationKind::Toast),
                messages: history(conv),
                origin: OfferOrigin::NewConversation,
                last_read: read.and_then(|r| r.0),
                unread: read.map(|r| r.1),
                has_earlier: None,
            },
            T0,
        );
    }
    let st = h.e.state();
    assert_eq!(st.conversations[&ConversationId(7)].unread, 1);
    assert_eq!(
        st.conversations[&ConversationId(7)].last_read,
        Some(MessageId(72))
    );
    assert_eq!(st.conversations[&ConversationId(8)].unread, 3);
}

mod unread_property {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// A new customer message.
        Customer,
        /// A new agent message.
        AgentMsg,
        /// The hub replays an earlier event (same seq).
        Replay(usize),
        /// The agent reads up to the k-th newest message.
        Read(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Customer),
            1 => Just(Op::AgentMsg),
            2 => (0usize..50).prop_map(Op::Replay),
            1 => (0usize..10).prop_map(Op::Read),
        ]
    }

    proptest! {
        #[test]
        fn unread_count_is_exact_under_replays_and_reads(ops in proptest::collection::vec(op(), 1..120)) {
            let mut e = Engine::new(AgentState::default(), "p");
            let mut s = summary(1);
            s.status = ConversationStatus::Assigned;
            let mut log: Vec<EventFrame> = vec![EventFrame {
                seq: Seq(1),
                at: T0,
                event: AgentEvent::ConversationAssigned {
     last_read: None,
     unread: None,
                    conversation: s,
                    mode: AssignMode::Accepted,
                    open_session: false,
                    template: template(NotificationKind::Alert),
                    messages: vec![],
                    origin: OfferOrigin::NewConversation,
     has_earlier: None,
                },
            }];
            e.handle(Input::Event(log[0].clone()), T0);
            // The hub's truth.
            let mut messages: Vec<(i64, bool)> = Vec::new();
            let mut marker = 0i64;
            let mut next_msg = 0i64;
            for op in ops {
                match op {
                    Op::Customer | Op::AgentMsg => {
                        next_msg += 1;
                        let customer = matches!(op, Op::Customer);
                        messages.push((next_msg, customer));
                        let ev = EventFrame {
                            seq: Seq(log.len() as u64 + 1),
                            at: T0,
                            event: AgentEvent::MessageAdded { message: Message {
                                id: MessageId(next_msg),
                                conversation_id: ConversationId(1),
                                author: if customer { Author::Customer } else { Author::Agent { agent_id: AgentId(1) } },
                                text: "x".into(),
                                sent_at: T0,
                                command_id: None,
                            }},
                        };
                        log.push(ev.clone());
                        e.handle(Input::Event(ev), T0);
                    }
                    Op::Replay(k) => {
                        let ev = log[k % log.len()].clone();
                        e.handle(Input::Event(ev), T0);
                    }
                    Op::Read(k) => {
                        if messages.is_empty() { continue; }
                        let idx = messages.len().saturating_sub(1 + k % messages.len());
                        let m = messages[idx].0;
                        if m <= marker { continue; }
                        marker = m;
                        let unread = messages.iter().filter(|(id, c)| *c && *id > marker).count() as u32;
                        let ev = EventFrame {
                            seq: Seq(log.len() as u64 + 1),
                            at: T0,
                            event: AgentEvent::ReadMarkerMoved { conversation_id: ConversationId(1), message_id: MessageId(m), unread },
                        };
                        log.push(ev.clone());
                        e.handle(Input::Event(ev), T0);
                    }
                }
                let truth = messages.iter().filter(|(id, c)| *c && *id > marker).count() as u32;
                prop_assert_eq!(e.state().unread_messages(), truth);
            }
        }
    }
}

#[test]
fn opening_a_conversation_reads_it_even_without_focus_events() {
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, false);
    h.customer(7, 1, at(0));
    h.customer(7, 2, at(10));
    assert_eq!(h.e.state().unread_messages(), 2);
    assert!(!h.e.focused());
    let fx = h.act(
        AgentAction::Open {
            conversation_id: ConversationId(7),
        },
        at(20),
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::MarkRead {
            conversation_id: ConversationId(7),
            message_id: MessageId(2)
        }]
    );
    assert_eq!(h.e.state().unread_messages(), 0);
    assert_eq!(h.e.state().active, Some(ConversationId(7)));
}

#[test]
fn start_at_login_changes_become_an_effect_once() {
    let mut h = Harness::new();
    let mut s = h.e.state().settings.clone();
    s.start_at_login = true;
    let fx = h.act(
        AgentAction::UpdateSettings {
            settings: s.clone(),
        },
        T0,
    );
    assert!(fx.contains(&Effect::StartAtLogin(true)));
    let fx = h.act(
        AgentAction::UpdateSettings {
            settings: s.clone(),
        },
        T0,
    );
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::StartAtLogin(_))),
        "no change, no effect"
    );
    s.start_at_login = false;
    let fx = h.act(AgentAction::UpdateSettings { settings: s }, T0);
    assert!(fx.contains(&Effect::StartAtLogin(false)));
}

// ------------------------------------------------- agent workflows (issue 6)

fn ana() -> switchboard_protocol::AgentRef {
    switchboard_protocol::AgentRef {
        id: AgentId(7),
        name: "Ana".into(),
    }
}

fn offer_from(id: i64, origin: OfferOrigin, t: NotificationTemplate) -> Offer {
    Offer {
        origin,
        ..offer(id, t)
    }
}

fn signed_in_as_owner(h: &mut Harness) {
    signed_in_with(h, Role::Agent);
}

fn signed_in_with(h: &mut Harness, role: Role) {
    h.e.handle(
        Input::Snapshot {
            seq: Seq(h.seq),
            snapshot: AgentSnapshot {
                agent: AgentProfile {
                    id: AgentId(1),
                    username: "me".into(),
                    display_name: "Me".into(),
                    role,
                    team: None,
                },
                presence: Presence::Available,
                conversations: vec![],
                offers: vec![],
            },
        },
        T0,
    );
}

/// The agent the snapshots in these tests are of.
fn agent_a() -> AgentProfile {
    AgentProfile {
        id: AgentId(1),
        username: "a".into(),
        display_name: "A".into(),
        role: Role::Agent,
        team: None,
    }
}

fn toasts(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Ui(UiEvent::Toast { title, .. }) => Some(title.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_transfer_alert_names_the_sender_in_the_os_notification_tray_and_note() {
    let mut h = Harness::new();
    let fx = h.offer(offer_from(
        1,
        OfferOrigin::Transfer {
            from: ana(),
            note: Some("VIP".into()),
        },
        template(NotificationKind::Alert),
    ));
    let n = notifies(&fx)[0];
    assert_eq!(n.title, "Transfer from Ana: Customer 101");
    assert!(n.body.contains(&"Note: VIP".to_string()), "{:?}", n.body);
    assert_eq!(n.style, NotificationStyle::Alert);
    assert!(has(&fx, &Effect::StartRing));
    let tray = fx
        .iter()
        .find_map(|e| match e {
            Effect::Tray(t) => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        tray.offers[0].label,
        "Accept: Transfer from Ana: Customer 101"
    );
    // The in-app alert carries the origin.
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Ui(UiEvent::OfferShown { offer, .. }) if matches!(offer.offer.origin, OfferOrigin::Transfer { .. })
    )));
}

#[test]
fn the_alert_headline_comes_from_the_engine_with_the_os_notification_wording() {
    let mut h = Harness::new();
    let mut toast = offer(2, template(NotificationKind::Toast));
    toast.expires_at = at(61_000);
    let cases = [
        (
            offer_from(
                1,
                OfferOrigin::AssignRequest {
                    from: ana(),
                    reason: None,
                },
                template(NotificationKind::Alert),
            ),
            "Ana asks you to take over: Customer 101",
        ),
        (toast, "WhatsApp: Customer 102"),
    ];
    for (o, want) in cases {
        let id = o.id;
        let fx = h.offer(o);
        assert!(notifies(&fx).iter().any(|n| n.title == want), "{fx:?}");
        assert!(
            fx.iter().any(|e| matches!(
                e,
                Effect::Ui(UiEvent::OfferShown { offer, headline }) if offer.offer.id == id && headline == want
            )),
            "{fx:?}"
        );
        let view = crate::view::app_view(&h.e);
        let card = view.offers.iter().find(|c| c.offer.id == id).unwrap();
        assert_eq!(card.headline, want);
    }
}

#[test]
fn the_alert_notes_are_the_os_notification_lines_of_the_origin() {
    let mut h = Harness::new();
    let origin = OfferOrigin::AssignToMe {
        owner: ana(),
        idle_secs: 150,
    };
    let fx = h.offer(offer_from(1, origin, template(NotificationKind::Alert)));
    let want = "Ana has not answered the customer for 2 min 30 s".to_string();
    assert!(notifies(&fx)[0].body.contains(&want), "{fx:?}");
    let n = notifies(&fx)[0];
    assert_eq!(n.answer_words, AnswerWords::YesNo);
    assert_eq!(n.title, "Assign to me? Customer 101");
    let view = crate::view::app_view(&h.e);
    assert_eq!(view.offers[0].notes, vec![want]);
    assert_eq!(
        (
            view.offers[0].accept_label.as_str(),
            view.offers[0].reject_label.as_str()
        ),
        ("Yes", "No")
    );
    let tray = fx.iter().find_map(|e| match e {
        Effect::Tray(t) => Some(t.clone()),
        _ => None,
    });
    assert_eq!(
        tray.unwrap().offers[0].label,
        "Yes: Assign to me? Customer 101"
    );
    // A bot transcript is listed whole by the alert, not as notes.
    let fx = h.offer(offer_from(
        2,
        OfferOrigin::BotEscalation {
            transcript: vec!["Bot: hi".into()],
        },
        template(NotificationKind::Alert),
    ));
    assert!(notifies(&fx)[0].body.contains(&"Bot: hi".to_string()));
    let view = crate::view::app_view(&h.e);
    let card = view
        .offers
        .iter()
        .find(|c| c.offer.id == OfferId(2))
        .unwrap();
    assert!(card.notes.is_empty());
}

#[test]
fn a_bot_escalation_shows_the_end_of_the_transcript() {
    let mut h = Harness::new();
    let transcript: Vec<String> = (1..=5).map(|i| format!("Bot line {i}")).collect();
    let fx = h.offer(offer_from(
        1,
        OfferOrigin::BotEscalation { transcript },
        template(NotificationKind::Alert),
    ));
    let n = notifies(&fx)[0];
    assert_eq!(n.title, "Escalated from a bot: Customer 101");
    let tail = [
        "Bot line 3".to_string(),
        "Bot line 4".to_string(),
        "Bot line 5".to_string(),
    ];
    assert!(n.body.windows(3).any(|w| w == tail), "{:?}", n.body);
    assert!(!n.body.contains(&"Bot line 2".to_string()));
}

#[test]
fn an_escalation_and_requests_get_their_own_titles() {
    let cases = [
        (
            OfferOrigin::Escalation {
                from: ana(),
                note: None,
            },
            "Escalation from Ana: Customer 101",
        ),
        (
            OfferOrigin::Consult { from: ana() },
            "Ana asks you to consult: Customer 101",
        ),
        (
            OfferOrigin::DiscussRequest { from: ana() },
            "Ana asks to discuss: Customer 101",
        ),
        (
            OfferOrigin::AssignToMe {
                owner: ana(),
                idle_secs: 120,
            },
            "Assign to me? Customer 101",
        ),
        (
            OfferOrigin::TeamMessage {
                preview: "hi".into(),
                messages: 1,
            },
            "Team WhatsApp: Customer 101",
        ),
    ];
    for (origin, title) in cases {
        let mut h = Harness::new();
        let fx = h.offer(offer_from(1, origin, template(NotificationKind::Alert)));
        assert_eq!(notifies(&fx)[0].title, title);
    }
}

#[test]
fn assign_to_me_says_how_long_the_owner_has_been_idle() {
    let mut h = Harness::new();
    let fx = h.offer(offer_from(
        1,
        OfferOrigin::AssignToMe {
            owner: ana(),
            idle_secs: 120,
        },
        template(NotificationKind::Alert),
    ));
    assert!(notifies(&fx)[0]
        .body
        .contains(&"Ana has not answered the customer for 2 min 0 s".to_string()));
}

#[test]
fn an_assign_or_discuss_request_cannot_be_rejected_without_a_reason() {
    let mut h = Harness::new();
    // Even if a template said otherwise, the origin requires a reason.
    h.offer(offer_from(
        1,
        OfferOrigin::AssignRequest {
            from: ana(),
            reason: None,
        },
        template(NotificationKind::Alert),
    ));
    let fx = h.act(
        AgentAction::Reject {
            offer_id: OfferId(1),
            reason: Some("  ".into()),
        },
        T0,
    );
    assert!(sends(&fx).is_empty());
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Ui(UiEvent::CommandFailed { error, .. }) if error.code == ErrorCode::ReasonRequired
    )));
    // The OS notification's Reject brings the window forward for the reason.
    let fx = h.e.handle(
        Input::Notification {
            key: NotificationKey::Offer(OfferId(1)),
            action: NotificationAction::Reject,
        },
        T0,
    );
    assert!(has(
        &fx,
        &Effect::FocusWindow(Some(NotificationKey::Offer(OfferId(1))))
    ));
    let fx = h.act(
        AgentAction::Reject {
            offer_id: OfferId(1),
            reason: Some("busy".into()),
        },
        T0,
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::RejectOffer {
            offer_id: OfferId(1),
            reason: Some("busy".into())
        }]
    );
    // The tray knows a reason is needed.
    let mut h = Harness::new();
    let fx = h.offer(offer_from(
        2,
        OfferOrigin::DiscussRequest { from: ana() },
        template(NotificationKind::Alert),
    ));
    let tray = fx
        .iter()
        .find_map(|e| match e {
            Effect::Tray(t) => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    assert!(tray.offers[0].reject_needs_reason);
}

#[test]
fn the_requester_is_told_the_outcome_with_the_reason() {
    let mut h = Harness::new();
    h.assign(5, AssignMode::Accepted, true);
    let fx = h.ev(
        AgentEvent::RequestAnswered {
            conversation_id: ConversationId(5),
            request: RequestKind::Assign,
            by: ana(),
            accepted: false,
            rejected: true,
            reason: Some("too busy".into()),
        },
        T0,
    );
    assert_eq!(toasts(&fx), ["Ana rejected your assign request"]);
    let n = notifies(&fx)[0];
    assert_eq!(n.style, NotificationStyle::Toast);
    assert_eq!(n.body, ["Reason: too busy"]);
    let fx = h.ev(
        AgentEvent::RequestAnswered {
            conversation_id: ConversationId(5),
            request: RequestKind::Discuss,
            by: ana(),
            accepted: true,
            rejected: false,
            reason: None,
        },
        T0,
    );
    assert_eq!(toasts(&fx), ["Ana accepted your discuss request"]);
    // A consult is declined with no reason: still a "no", not silence.
    let fx = h.ev(
        AgentEvent::RequestAnswered {
            conversation_id: ConversationId(5),
            request: RequestKind::Consult,
            by: ana(),
            accepted: false,
            rejected: true,
            reason: None,
        },
        T0,
    );
    assert_eq!(toasts(&fx), ["Ana rejected your consult request"]);
    let fx = h.ev(
        AgentEvent::RequestAnswered {
            conversation_id: ConversationId(5),
            request: RequestKind::Consult,
            by: ana(),
            accepted: false,
            rejected: false,
            reason: None,
        },
        T0,
    );
    assert_eq!(toasts(&fx), ["Ana did not answer your consult request"]);
}

#[test]
fn a_transferred_or_supervisor_assignment_is_a_toast_naming_why() {
    let mut h = Harness::new();
    let mut s = summary(9);
    s.status = ConversationStatus::Assigned;
    let fx = h.ev(
        AgentEvent::ConversationAssigned {
            last_read: None,
            unread: None,
            conversation: s.clone(),
            mode: AssignMode::Toast,
            open_session: false,
            template: template(NotificationKind::Toast),
            messages: vec![],
            origin: OfferOrigin::Transfer {
                from: ana(),
                note: None,
            },
            has_earlier: None,
        },
        T0,
    );
    assert_eq!(toasts(&fx), ["Transfer from Ana: Customer 9"]);
    let mut s2 = summary(10);
    s2.status = ConversationStatus::Assigned;
    let fx = h.ev(
        AgentEvent::ConversationAssigned {
            last_read: None,
            unread: None,
            conversation: s2,
            mode: AssignMode::Supervisor,
            open_session: false,
            template: template(NotificationKind::Toast),
            messages: vec![],
            origin: OfferOrigin::NewConversation,
            has_earlier: None,
        },
        T0,
    );
    assert_eq!(
        toasts(&fx),
        ["Assigned to you by a supervisor: Customer 10"]
    );
    // Joining as a consultant was the agent's own decision: no toast.
    let mut s3 = summary(11);
    s3.status = ConversationStatus::Assigned;
    let fx = h.ev(
        AgentEvent::ConversationAssigned {
            last_read: None,
            unread: None,
            conversation: s3,
            mode: AssignMode::Joined,
            open_session: true,
            template: template(NotificationKind::Toast),
            messages: vec![],
            origin: OfferOrigin::Consult { from: ana() },
            has_earlier: None,
        },
        T0,
    );
    assert!(toasts(&fx).is_empty());
    assert_eq!(h.e.state().active, Some(ConversationId(11)));
}

#[test]
fn the_old_owner_is_told_when_a_teammate_takes_over() {
    let mut h = Harness::new();
    h.assign(5, AssignMode::Accepted, true);
    let fx = h.ev(
        AgentEvent::ConversationRevoked {
            conversation_id: ConversationId(5),
            reason: RevokeReason::TakenOver,
        },
        T0,
    );
    assert_eq!(
        toasts(&fx),
        ["Conversation with Customer 5 was taken over by a teammate"]
    );
    assert!(!h.e.state().conversations.contains_key(&ConversationId(5)));
    // The agent's own transfer needs no toast.
    h.assign(6, AssignMode::Accepted, true);
    let fx = h.ev(
        AgentEvent::ConversationRevoked {
            conversation_id: ConversationId(6),
            reason: RevokeReason::Transferred,
        },
        T0,
    );
    assert!(toasts(&fx).is_empty());
}

#[test]
fn an_incoming_whatsapp_call_rings_and_opens_the_session_on_accept() {
    let mut h = Harness::new();
    let mut o = offer(1, template(NotificationKind::Alert));
    o.conversation.scenario = Scenario::IncomingCall;
    let fx = h.offer(o);
    assert_eq!(
        notifies(&fx)[0].title,
        "Incoming WhatsApp call from Customer 101"
    );
    assert!(has(&fx, &Effect::StartRing));
    let fx = h.act(
        AgentAction::Accept {
            offer_id: OfferId(1),
        },
        T0,
    );
    assert!(has(&fx, &Effect::StopRing));
    h.ev(
        AgentEvent::OfferResolved {
            offer_id: OfferId(1),
            conversation_id: ConversationId(101),
            outcome: OfferOutcome::Accepted,
        },
        T0,
    );
    h.assign(101, AssignMode::Accepted, true);
    assert_eq!(h.e.state().active, Some(ConversationId(101)));
}

#[test]
fn identification_and_links_update_the_conversation_and_its_record() {
    let mut h = Harness::new();
    h.assign(5, AssignMode::Accepted, true);
    let mut s = h.e.state().conversations[&ConversationId(5)]
        .summary
        .clone();
    s.link = Some(switchboard_protocol::RecordLink {
        contact_id: switchboard_protocol::ContactId(3),
        case_id: None,
    });
    let fx = h.ev(
        AgentEvent::ConversationUpdated {
            conversation: s.clone(),
        },
        T0,
    );
    assert_eq!(h.e.state().conversations[&ConversationId(5)].summary, s);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Store(StoreOp::PutConversation(v)) if v.summary.link == s.link
    )));
}

/// A pasted megabyte in a note or reason is cut to what the hub keeps,
/// at a character boundary, before it goes out: sent whole, the frame
/// would be over the hub's limit, the hub would close the link, and the
/// outbox would send it again at every connect.
#[test]
fn a_pasted_megabyte_note_or_reason_is_cut_to_what_the_hub_keeps() {
    use switchboard_protocol::{encode, ClientFrame, MAX_FRAME_BYTES, MAX_NOTE_BYTES};
    let mut h = Harness::new();
    signed_in_as_owner(&mut h);
    h.assign(5, AssignMode::Accepted, true);
    // "é" is two bytes; one ASCII byte first puts every boundary on an odd
    // byte, so the limit (even) falls inside a character.
    let pasted = format!("x{}", "é".repeat(1024 * 1024));
    let fx = h.act(
        AgentAction::Transfer {
            conversation_id: ConversationId(5),
            target: TransferTarget::Queue { queue: "Q".into() },
            note: Some(pasted.clone()),
        },
        T0,
    );
    let frames: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Send(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(frames.len(), 1);
    let Command::TransferConversation {
        note: Some(note), ..
    } = &frames[0].command
    else {
        panic!("a transfer with its note: {:?}", frames[0].command);
    };
    assert!(
        note.len() <= MAX_NOTE_BYTES && note.len() > MAX_NOTE_BYTES - 2,
        "{}",
        note.len()
    );
    assert!(pasted.starts_with(note.as_str()));
    assert!(encode(&ClientFrame::Command(frames[0].clone())).len() < MAX_FRAME_BYTES);
    let fx = h.act(
        AgentAction::RequestAssign {
            conversation_id: ConversationId(5),
            agent_id: AgentId(2),
            reason: Some(pasted.clone()),
        },
        T0,
    );
    assert!(matches!(
        sends(&fx)[..],
        [Command::RequestAssign { reason: Some(r), .. }] if r.len() <= MAX_NOTE_BYTES
    ));
    h.offer(offer(7, template(NotificationKind::Alert)));
    let fx = h.act(
        AgentAction::Reject {
            offer_id: OfferId(7),
            reason: Some(pasted),
        },
        T0,
    );
    assert!(matches!(
        sends(&fx)[..],
        [Command::RejectOffer { reason: Some(r), .. }] if r.len() <= MAX_NOTE_BYTES
    ));
}

#[test]
fn only_the_owner_transfers_escalates_or_asks() {
    let mut h = Harness::new();
    signed_in_as_owner(&mut h);
    h.assign(5, AssignMode::Accepted, true);
    let fx = h.act(
        AgentAction::Transfer {
            conversation_id: ConversationId(5),
            target: TransferTarget::Queue { queue: "Q".into() },
            note: Some("  ".into()),
        },
        T0,
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::TransferConversation {
            conversation_id: ConversationId(5),
            target: TransferTarget::Queue { queue: "Q".into() },
            note: None
        }]
    );
    let fx = h.act(
        AgentAction::RequestAssign {
            conversation_id: ConversationId(5),
            agent_id: AgentId(2),
            reason: Some("shift ends".into()),
        },
        T0,
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::RequestAssign {
            conversation_id: ConversationId(5),
            agent_id: AgentId(2),
            reason: Some("shift ends".into())
        }]
    );
    // A conversation joined as a consultant (owner someone else).
    let mut s = summary(6);
    s.status = ConversationStatus::Assigned;
    s.owner = Some(AgentId(9));
    h.ev(
        AgentEvent::ConversationAssigned {
            last_read: None,
            unread: None,
            conversation: s,
            mode: AssignMode::Joined,
            open_session: true,
            template: template(NotificationKind::Toast),
            messages: vec![],
            origin: OfferOrigin::Consult { from: ana() },
            has_earlier: None,
        },
        T0,
    );
    for action in [
        AgentAction::Escalate {
            conversation_id: ConversationId(6),
            supervisor_id: None,
            note: None,
        },
        AgentAction::Consult {
            conversation_id: ConversationId(6),
            agent_id: AgentId(2),
        },
        AgentAction::RequestDiscuss {
            conversation_id: ConversationId(6),
            agent_id: AgentId(2),
        },
    ] {
        let fx = h.act(action, T0);
        assert!(sends(&fx).is_empty());
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::Ui(UiEvent::CommandFailed { error, .. }) if error.code == ErrorCode::Forbidden
        )));
    }
}

#[test]
fn request_offers_come_back_after_a_restart_with_their_origin() {
    let mut h = Harness::new();
    h.offer(offer_from(
        1,
        OfferOrigin::AssignRequest {
            from: ana(),
            reason: Some("why".into()),
        },
        template(NotificationKind::Alert),
    ));
    let state = h.e.state().clone();
    let mut e = Engine::new(state, "t2");
    let fx = e.start(at(1_000));
    let n = notifies(&fx)[0];
    assert_eq!(n.title, "Ana asks you to take over: Customer 101");
    assert!(n.body.contains(&"Reason: why".to_string()));
}

#[test]
fn an_offer_ended_elsewhere_closes_its_notification_stops_the_ring_and_leaves_the_tray() {
    for outcome in [
        OfferOutcome::Accepted,
        OfferOutcome::Rejected,
        OfferOutcome::TimedOut,
        OfferOutcome::AssignedOnTimeout,
        OfferOutcome::Withdrawn,
    ] {
        let mut h = Harness::new();
        let fx = h.offer(offer(1, template(NotificationKind::Alert)));
        assert!(has(&fx, &Effect::StartRing));
        // Resolved by the hub, not by this client: another device, another
        // agent taking it, the hub's timer, or the customer leaving.
        let fx = h.ev(
            AgentEvent::OfferResolved {
                offer_id: OfferId(1),
                conversation_id: ConversationId(101),
                outcome,
            },
            T0,
        );
        assert!(
            has(
                &fx,
                &Effect::CloseNotification(NotificationKey::Offer(OfferId(1)))
            ),
            "{outcome:?}: {fx:?}"
        );
        assert!(has(&fx, &Effect::StopRing), "{outcome:?}");
        let tray = fx.iter().find_map(|e| match e {
            Effect::Tray(t) => Some(t.clone()),
            _ => None,
        });
        assert_eq!(tray.map(|t| t.offers.len()), Some(0), "{outcome:?}");
        assert!(h.e.state().offers.is_empty());
    }
}

#[test]
fn only_a_supervisor_assigns_outright() {
    let assign = AgentAction::AssignTo {
        conversation_id: ConversationId(5),
        agent_id: AgentId(2),
    };
    let mut h = Harness::new();
    signed_in_as_owner(&mut h);
    h.assign(5, AssignMode::Accepted, true);
    let fx = h.act(assign.clone(), T0);
    assert!(sends(&fx).is_empty());
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Ui(UiEvent::CommandFailed { error, .. }) if error.code == ErrorCode::Forbidden
    )));
    let mut h = Harness::new();
    signed_in_with(&mut h, Role::Supervisor);
    h.assign(5, AssignMode::Accepted, true);
    let fx = h.act(assign, T0);
    assert_eq!(
        sends(&fx),
        vec![&Command::AssignConversation {
            conversation_id: ConversationId(5),
            agent_id: AgentId(2),
        }]
    );
    // Not a conversation this supervisor has (a waiting customer, a
    // teammate's chat, from the Team panel): sent too; the hub checks the
    // team.
    let fx = h.act(
        AgentAction::AssignTo {
            conversation_id: ConversationId(6),
            agent_id: AgentId(2),
        },
        T0,
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::AssignConversation {
            conversation_id: ConversationId(6),
            agent_id: AgentId(2),
        }]
    );
}

/// The conversation list's last line says who wrote it: nothing for the
/// customer or the system (a bot transcript, a note), "You: " only for the
/// agent's own messages, "Teammate: " for another agent's.
#[test]
fn the_last_line_of_a_conversation_names_its_writer() {
    let mut h = Harness::new();
    signed_in_as_owner(&mut h);
    h.assign(5, AssignMode::Accepted, true);
    let mut last = |author: Author, id: i64| {
        h.ev(
            AgentEvent::MessageAdded {
                message: Message {
                    id: MessageId(id),
                    conversation_id: ConversationId(5),
                    author,
                    text: "hi".into(),
                    sent_at: T0,
                    command_id: None,
                },
            },
            T0,
        );
        crate::view::app_view(&h.e).conversations[0]
            .last_text
            .clone()
            .unwrap()
    };
    assert_eq!(last(Author::Customer, 1), "hi");
    assert_eq!(
        last(
            Author::Agent {
                agent_id: AgentId(1)
            },
            2
        ),
        "You: hi"
    );
    assert_eq!(
        last(
            Author::Agent {
                agent_id: AgentId(7)
            },
            3
        ),
        "Teammate: hi"
    );
    assert_eq!(last(Author::System, 4), "hi");
    assert_eq!(last(Author::Other, 5), "hi");
}

/// Before the profile is known (a cache from an older version), an agent's
/// message reads as the agent's own, as the chat shows it.
#[test]
fn with_no_profile_an_agents_last_line_is_the_agents_own() {
    let mut h = Harness::new();
    assert!(h.e.state().profile.is_none());
    h.assign(5, AssignMode::Accepted, true);
    h.ev(
        AgentEvent::MessageAdded {
            message: Message {
                id: MessageId(1),
                conversation_id: ConversationId(5),
                author: Author::Agent {
                    agent_id: AgentId(7),
                },
                text: "hi".into(),
                sent_at: T0,
                command_id: None,
            },
        },
        T0,
    );
    assert_eq!(
        crate::view::app_view(&h.e).conversations[0]
            .last_text
            .as_deref(),
        Some("You: hi")
    );
}

/// Taking a team chat from the Waiting list is the hub's to check (the
/// team, that nobody took it): the engine sends it for a conversation it
/// does not have, and the hub's assignment opens the session at the front.
#[test]
fn taking_a_waiting_team_chat_is_sent_and_its_assignment_opens_the_session() {
    let mut h = Harness::new();
    signed_in_as_owner(&mut h);
    let fx = h.act(
        AgentAction::TakeTeamChat {
            conversation_id: ConversationId(9),
        },
        T0,
    );
    assert_eq!(
        sends(&fx),
        vec![&Command::TakeTeamChat {
            conversation_id: ConversationId(9)
        }]
    );
    h.assign(9, AssignMode::Accepted, true);
    assert_eq!(h.e.state().active, Some(ConversationId(9)));
}

/// One take at a time: a second chat taken while the first take waits for
/// the hub's answer (the panel closed and opened again meanwhile) is
/// refused, naming the second chat, and nothing is sent; once the hub has
/// answered, the next take goes out.
#[test]
fn a_second_take_waits_for_the_first_takes_answer() {
    let mut h = Harness::new();
    signed_in_as_owner(&mut h);
    let take = |id: i64| AgentAction::TakeTeamChat {
        conversation_id: ConversationId(id),
    };
    let fx = h.act(take(9), T0);
    let first = fx
        .iter()
        .find_map(|e| match e {
            Effect::Send(f) => Some(f.id.clone()),
            _ => None,
        })
        .expect("the first take is sent");
    // The same chat again (the panel reopened): that take is on its way,
    // and its answer will be this one's.
    let fx = h.act(take(9), T0);
    assert!(fx.is_empty(), "{fx:?}");
    let fx = h.act(take(10), T0);
    assert!(sends(&fx).is_empty(), "{fx:?}");
    assert!(
        fx.iter().any(|e| matches!(e,
        Effect::Ui(UiEvent::CommandFailed { what, error, conversation_id })
            if what == "take" && error.code == ErrorCode::Conflict
                && *conversation_id == Some(ConversationId(10)))),
        "{fx:?}"
    );
    // The hub refuses the first (a teammate was quicker): the agent may
    // take another.
    h.e.handle(
        Input::CommandResult {
            id: first,
            outcome: CommandOutcome::Error(ErrorBody::new(ErrorCode::Conflict, "taken")),
        },
        T0,
    );
    let fx = h.act(take(10), T0);
    assert_eq!(
        sends(&fx),
        vec![&Command::TakeTeamChat {
            conversation_id: ConversationId(10)
        }]
    );
}

#[test]
fn the_history_shows_each_message_on_the_agents_clock() {
    use crate::view::conversation_detail;
    use crate::wall_clock::{ClockChoice, HourCycle, WallClock};
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, true);
    // 2026-07-15 13:05 and 23:59 UTC.
    h.customer(7, 1, Millis(1_784_120_700_000));
    h.customer(7, 2, Millis(1_784_159_940_000));
    let berlin = WallClock::new(
        jiff::tz::TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap(),
        HourCycle::TwentyFour,
    );
    let times = |h: &Harness| -> Vec<String> {
        conversation_detail(&h.e, ConversationId(7), &berlin)
            .unwrap()
            .messages
            .into_iter()
            .map(|m| m.time)
            .collect()
    };
    assert_eq!(times(&h), ["15:05", "01:59"]);
    h.settings(|s| s.clock = ClockChoice::TwelveHour);
    assert_eq!(times(&h), ["3:05\u{a0}PM", "1:59\u{a0}AM"]);
    // The message itself is unchanged beside its label.
    let d = conversation_detail(&h.e, ConversationId(7), &berlin).unwrap();
    assert_eq!(d.messages[1].message.text, "message 2");
}

#[test]
fn customer_360_lists_each_earlier_conversation_with_its_start_on_the_agents_clock() {
    use crate::view::customer_360_view;
    use crate::wall_clock::{HourCycle, WallClock};
    use switchboard_protocol::rest::{Contact, Customer360};
    use switchboard_protocol::ContactId;
    let contact = Contact {
        id: ContactId(3),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email: None,
        phone: None,
        address: None,
        city: None,
        state: None,
        account_id: None,
        account_name: None,
    };
    // 2026-07-15 13:05 UTC and 2026-07-14 23:59 UTC, newest first.
    let mut newer = summary(8);
    newer.created_at = Millis(1_784_120_700_000);
    let mut older = summary(9);
    older.created_at = Millis(1_784_073_540_000);
    let record = Customer360 {
        contact: contact.clone(),
        account: None,
        open_cases: vec![],
        earlier_conversations: vec![newer.clone(), older.clone()],
    };
    let berlin = WallClock::new(
        jiff::tz::TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap(),
        HourCycle::TwentyFour,
    );
    let view = customer_360_view(record, &berlin, &AgentSettings::default());
    assert_eq!(view.contact, contact);
    let listed: Vec<(ConversationId, &str)> = view
        .earlier_conversations
        .iter()
        .map(|e| (e.summary.id, e.started.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            (ConversationId(8), "2026-07-15 15:05"),
            (ConversationId(9), "2026-07-15 01:59"),
        ]
    );
    // On the wire to the UI, each one is the summary with its label beside.
    let json = serde_json::to_value(&view.earlier_conversations[1]).unwrap();
    assert_eq!(json["id"], 9);
    assert_eq!(json["started"], "2026-07-15 01:59");
}

/// Whether the effects tell a scoped reader to re-read conversation `id`.
fn rereads(fx: &[Effect], id: ConversationId) -> bool {
    fx.iter().any(|e| match e {
        Effect::Ui(ev) => {
            matches!(ev.scope(), ViewScope::Everything)
                || matches!(ev.scope(), ViewScope::Conversation(c) if c == id)
        }
        _ => false,
    })
}

#[test]
fn every_change_to_the_open_conversation_is_scoped_to_it_and_others_are_not() {
    use crate::view::conversation_detail;
    use crate::wall_clock::{ClockChoice, HourCycle, WallClock};
    let clock = WallClock::new(jiff::tz::TimeZone::UTC, HourCycle::TwentyFour);
    let (seven, eight) = (ConversationId(7), ConversationId(8));
    let mut h = Harness::new();
    h.assign(7, AssignMode::Accepted, true);
    h.assign(8, AssignMode::Accepted, true);
    h.act(
        AgentAction::Open {
            conversation_id: seven,
        },
        at(1),
    );
    // What the page shows of the open conversation (its draft is the
    // page's own typing, so it is left out).
    let shown = |h: &Harness| {
        conversation_detail(&h.e, seven, &clock).map(|d| (d.summary, d.messages, d.unread))
    };
    // Each step: what it did, and whether it must change the open one.
    let step =
        |h: &mut Harness, what: &str, changes: bool, f: &dyn Fn(&mut Harness) -> Vec<Effect>| {
            let before = shown(h);
            let fx = f(h);
            let changed = shown(h) != before;
            assert_eq!(changed, changes, "{what}: changed the open conversation?");
            if changed {
                assert!(
                    rereads(&fx, seven),
                    "{what} changed the open conversation unannounced"
                );
            } else if what.starts_with("other") {
                assert!(!rereads(&fx, seven), "{what} asks for a needless read");
            }
        };
    step(
        &mut h,
        "other: a customer writes in 8",
        false,
        &|h: &mut Harness| h.customer(8, 1, at(10)),
    );
    step(&mut h, "other: 8 is read", false, &|h: &mut Harness| {
        h.act(
            AgentAction::MarkRead {
                conversation_id: eight,
            },
            at(11),
        )
    });
    step(&mut h, "other: 8 is closed", false, &|h: &mut Harness| {
        h.ev(
            AgentEvent::ConversationClosed {
                conversation_id: eight,
            },
            at(12),
        )
    });
    step(
        &mut h,
        "a customer writes in 7",
        true,
        &|h: &mut Harness| h.customer(7, 2, at(20)),
    );
    step(&mut h, "7 is read", true, &|h: &mut Harness| {
        h.act(
            AgentAction::MarkRead {
                conversation_id: seven,
            },
            at(21),
        )
    });
    step(
        &mut h,
        "the agent's reply comes back",
        true,
        &|h: &mut Harness| {
            h.ev(
                AgentEvent::MessageAdded {
                    message: Message {
                        id: MessageId(3),
                        conversation_id: seven,
                        author: Author::Agent {
                            agent_id: AgentId(1),
                        },
                        text: "hello".into(),
                        sent_at: at(30),
                        command_id: None,
                    },
                },
                at(30),
            )
        },
    );
    step(
        &mut h,
        "the clock setting changes every label",
        true,
        &|h: &mut Harness| {
            let mut s = h.e.state().settings.clone();
            s.clock = ClockChoice::TwelveHour;
            h.act(AgentAction::UpdateSettings { settings: s }, at(40))
        },
    );
    step(&mut h, "7 is closed", true, &|h: &mut Harness| {
        h.ev(
            AgentEvent::ConversationClosed {
                conversation_id: seven,
            },
            at(50),
        )
    });
}

#[test]
fn a_view_update_reads_the_open_conversation_only_when_it_may_have_changed() {
    use crate::view::{view_update, DetailUpdate, ViewRead, ViewUpdate};
    use crate::wall_clock::{HourCycle, WallClock};
    let clock = WallClock::new(jiff::tz::TimeZone::UTC, HourCycle::TwentyFour);
    let (seven, eight) = (ConversationId(7), ConversationId(8));
    let update =
        |h: &Harness, shown: Option<ConversationId>, all: bool, changed: &[ConversationId]| {
            let read = ViewRead {
                shown,
                all,
                changed: changed.to_vec(),
            };
            view_update(&h.e, &read, &clock)
        };
    // The conversation read, and how many messages it had.
    let shown = |u: ViewUpdate| match u.detail {
        DetailUpdate::Shown { detail } => Some((detail.summary.id, detail.messages.len())),
        _ => None,
    };
    let mut h = Harness::new();
    let u = update(&h, None, true, &[]);
    assert_eq!(u.detail, DetailUpdate::Nothing, "nothing in front yet");
    assert!(u.view.conversations.is_empty());

    h.assign(7, AssignMode::Accepted, false);
    h.assign(8, AssignMode::Accepted, false);
    h.act(
        AgentAction::Open {
            conversation_id: seven,
        },
        at(1),
    );
    h.customer(7, 1, at(2));
    // The UI shows nothing, or another conversation: the one in front is read.
    assert_eq!(shown(update(&h, None, false, &[])), Some((seven, 1)));
    assert_eq!(
        shown(update(&h, Some(eight), false, &[eight])),
        Some((seven, 1))
    );
    // It shows the one in front: read again only if the change may touch it.
    let u = update(&h, Some(seven), false, &[eight]);
    assert_eq!(u.detail, DetailUpdate::Unchanged);
    assert_eq!(u.view.active, Some(seven));
    assert_eq!(u.view.conversations.len(), 2, "the list is always read");
    assert_eq!(
        shown(update(&h, Some(seven), false, &[seven])),
        Some((seven, 1))
    );
    assert_eq!(shown(update(&h, Some(seven), true, &[])), Some((seven, 1)));
    // What it reads is the engine's state now, not a copy from before.
    h.customer(7, 2, at(3));
    assert_eq!(
        shown(update(&h, Some(seven), false, &[seven])),
        Some((seven, 2))
    );
}

#[test]
fn a_page_of_earlier_messages_says_whether_more_are_before_it() {
    use crate::view::earlier_messages;
    use crate::wall_clock::{HourCycle, WallClock};
    let clock = WallClock::new(jiff::tz::TimeZone::UTC, HourCycle::TwentyFour);
    let msg = |id: i64| Message {
        id: MessageId(id),
        conversation_id: ConversationId(7),
        author: Author::Customer,
        text: format!("m{id}"),
        sent_at: Millis(id * 60_000),
        command_id: None,
    };
    let settings = AgentSettings::default();
    // The hub was asked for one more than a page: it had them.
    let page = earlier_messages((1..=4).map(msg).collect(), 3, &clock, &settings);
    assert!(page.more);
    let ids: Vec<i64> = page.messages.iter().map(|m| m.message.id.0).collect();
    assert_eq!(ids, [2, 3, 4], "the newest three, oldest first");
    assert_eq!(page.messages[0].time, "00:02");
    // Fewer: the start of the conversation.
    let page = earlier_messages((1..=2).map(msg).collect(), 3, &clock, &settings);
    assert!(!page.more);
    assert_eq!(page.messages.len(), 2);
}

/// "Show earlier messages" is offered when the hub holds older messages
/// than the oldest cached, as the hub says, not guessed from how many came:
/// a whole thread of 50 has none; three left after the hub trimmed huge
/// messages to fit a frame have some; the cache letting one go makes some;
/// a record from before the hub said falls back to the guess.
#[test]
fn show_earlier_is_offered_when_the_hub_holds_older_messages() {
    use crate::view::conversation_detail;
    use crate::wall_clock::{HourCycle, WallClock};
    let clock = WallClock::new(jiff::tz::TimeZone::UTC, HourCycle::TwentyFour);
    let msg = |conv: i64, id: i64| Message {
        id: MessageId(id),
        conversation_id: ConversationId(conv),
        author: Author::Customer,
        text: format!("m{id}"),
        sent_at: Millis(id),
        command_id: None,
    };
    let mut h = Harness::new();
    let assign =
        |h: &mut Harness, conv: i64, ids: std::ops::RangeInclusive<i64>, earlier: Option<bool>| {
            let mut s = summary(conv);
            s.status = ConversationStatus::Assigned;
            s.owner = Some(AgentId(1));
            h.ev(
                AgentEvent::ConversationAssigned {
                    last_read: None,
                    unread: None,
                    conversation: s,
                    mode: AssignMode::Accepted,
                    open_session: true,
                    template: template(NotificationKind::Toast),
                    messages: ids.map(|id| msg(conv, id)).collect(),
                    origin: OfferOrigin::NewConversation,
                    has_earlier: earlier,
                },
                T0,
            );
        };
    let offered = |h: &Harness, conv: i64| {
        conversation_detail(&h.e, ConversationId(conv), &clock)
            .unwrap()
            .may_have_earlier
    };
    assign(&mut h, 1, 1..=50, Some(false));
    assert!(!offered(&h, 1), "a whole thread of 50");
    assign(&mut h, 2, 100..=102, Some(true));
    assert!(offered(&h, 2), "three kept of a trimmed history");
    // The flag goes with the record into the cache.
    let record = h.e.state().conversations[&ConversationId(2)].record();
    assert_eq!(record.has_earlier, Some(true));
    // An older hub says nothing: a full first page may have more.
    assign(&mut h, 3, 1..=50, None);
    assert!(offered(&h, 3));
    assign(&mut h, 4, 1..=3, None);
    assert!(!offered(&h, 4));
    // A chat that grew past what the cache keeps: the first ones are
    // gone from it, and can be read back.
    for id in 51..=(50 + RECENT_MESSAGES as i64 - 49) {
        h.customer(1, id, T0);
    }
    assert_eq!(
        h.e.state().conversations[&ConversationId(1)].messages.len(),
        RECENT_MESSAGES
    );
    assert!(offered(&h, 1), "the cache let message 1 go");
    // A second assignment of a conversation already cached (it came back)
    // does not take the hub's word about its own first page.
    assign(&mut h, 2, 100..=103, Some(false));
    assert!(offered(&h, 2));
}
