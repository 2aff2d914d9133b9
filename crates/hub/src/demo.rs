//! Demo mode: a seeded team, agents, a queue with templates, and a simulator
//! that plays customers writing and calling on every channel.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use switchboard_protocol::rest::{IngressMessage, NewContact};
use switchboard_protocol::{Author, Channel, NotificationKind, Scenario};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{AgentConfig, HubConfig, QueueConfig, TeamConfig, TemplateOverride};
use crate::hub::Hub;

/// The agent a demo user signs in as.
pub const DEMO_USER: &str = "demo";
/// Its password.
pub const DEMO_PASSWORD: &str = "demo";

/// A configuration with one team, agents, a supervisor, an admin, and one
/// queue serving every channel.
pub fn demo_config(database: PathBuf, listen: SocketAddr) -> HubConfig {
    let mut config = HubConfig::default();
    config.server.database = database;
    config.server.listen = listen;
    config.server.ingress_token = Some("demo-ingress".into());
    config.teams.push(TeamConfig {
        name: "Demo Team".into(),
    });
    let person = |username: &str, name: &str, role| AgentConfig {
        username: username.into(),
        display_name: Some(name.into()),
        password: Some(DEMO_PASSWORD.into()),
        password_hash: None,
        role,
        team: Some("Demo Team".into()),
        capacity: 10,
    };
    use switchboard_protocol::Role;
    config.agents = vec![
        person(DEMO_USER, "Demo Agent", Role::Agent),
        person("alex", "Alex Agent", Role::Agent),
        person("sam", "Sam Supervisor", Role::Supervisor),
        person("admin", "Demo Admin", Role::Admin),
    ];
    let mut templates = std::collections::BTreeMap::new();
    templates.insert(
        Scenario::IncomingChat,
        TemplateOverride {
            timeout_secs: Some(45),
            ..Default::default()
        },
    );
    templates.insert(
        Scenario::IncomingSms,
        TemplateOverride {
            reject_reason_required: Some(true),
            ..Default::default()
        },
    );
    templates.insert(
        Scenario::IncomingFacebook,
        TemplateOverride {
            show_timeout: Some(false),
            ..Default::default()
        },
    );
    templates.insert(
        Scenario::WorkItemAssignment,
        TemplateOverride {
            kind: Some(NotificationKind::Toast),
            ..Default::default()
        },
    );
    config.queues.push(QueueConfig {
        name: "General".into(),
        team: "Demo Team".into(),
        channels: Channel::ALL.to_vec(),
        allowed_presences: crate::config::default_allowed_presences(),
        templates,
        team_owned: false,
        idle_timeout_secs: None,
    });
    config
}

const CUSTOMERS: &[(&str, &str, &str)] = &[
    ("Maria García", "+34600111222", "maria.garcia@example.com"),
    ("Wei Chen", "+8613800138000", "wei.chen@example.com"),
    ("Aisha Bello", "+2348031234567", "aisha.bello@example.com"),
    ("Liam O'Brien", "+353871234567", "liam.obrien@example.com"),
    ("Sofia Rossi", "+393331234567", "sofia.rossi@example.com"),
    ("Noah Müller", "+4915112345678", "noah.mueller@example.com"),
    ("Priya Nair", "+919812345678", "priya.nair@example.com"),
    ("Tom <b>Bold</b> Tester", "+15550100", "tom@example.com"),
];

const OPENERS: &[&str] = &[
    "Hi, my order hasn't arrived yet.",
    "I was charged twice this month.",
    "How do I reset my password?",
    "Can I change my delivery address?",
    "The app keeps logging me out.",
    "I'd like to cancel my subscription.",
    "Is the store open on Sunday?",
];

const FOLLOW_UPS: &[&str] = &[
    "Order number is 48213.",
    "Hello? Anyone there?",
    "Thanks, that helps!",
    "It still doesn't work.",
    "Can you check again please?",
    "Great, thank you so much.",
];

/// Starts the customer simulator: about `rate_per_minute` customer messages
/// a minute, a third of them opening new conversations.
pub fn spawn_simulator(
    hub: Arc<Hub>,
    rate_per_minute: f64,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let period = Duration::from_secs_f64(60.0 / rate_per_minute.clamp(0.1, 60_000.0));
    tokio::spawn(async move {
        let records = demo_records();
        let seed: Vec<_> = records
            .iter()
            .map(|(c, a, k)| (c.clone(), *a, *k))
            .collect();
        if let Err(e) = hub.seed_records(&seed).await {
            tracing::warn!(error = %e, "seeding demo records failed");
        }
        let mut thread_counter = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.wait_for(|v| *v) => return,
            }
            let message = match pick_follow_up(&hub).await {
                Some(m) if rand::thread_rng().gen_bool(0.65) => m,
                _ => {
                    thread_counter += 1;
                    new_customer(thread_counter)
                }
            };
            if let Err(e) = hub.ingress(message).await {
                tracing::warn!(error = %e, "simulator message refused");
            }
        }
    })
}

fn new_customer(n: u64) -> IngressMessage {
    let mut rng = rand::thread_rng();
    let (name, phone, email) = *CUSTOMERS.choose(&mut rng).unwrap_or(&CUSTOMERS[0]);
    let channel = *[
        Channel::Chat,
        Channel::Chat,
        Channel::Sms,
        Channel::Whatsapp,
        Channel::Whatsapp,
        Channel::Facebook,
        Channel::Voice,
        Channel::Case,
    ]
    .choose(&mut rng)
    .unwrap_or(&Channel::Chat);
    let opener = OPENERS.choose(&mut rng).copied().unwrap_or("Hello");
    // Now and then a chat reaches a person only after the bot gave up.
    let bot = channel == Channel::Chat && rng.gen_bool(0.25);
    let text = match channel {
        Channel::Voice => String::new(),
        Channel::Case => format!("Case: {opener}"),
        _ => opener.to_string(),
    };
    IngressMessage {
        channel,
        thread: format!("demo-{}-{n}", std::process::id()),
        customer_name: name.into(),
        phone: Some(phone.into()),
        email: Some(email.into()),
        comment: Some(opener.into()),
        queue: None,
        scenario: bot.then_some(Scenario::BotEscalation),
        text,
        transcript: if bot {
            vec![
                "Bot: Hi! How can I help you today?".into(),
                format!("Customer: {opener}"),
                "Bot: Let me get you a person who can help.".into(),
            ]
        } else {
            Vec::new()
        },
        case_id: None,
        message_id: None,
    }
}

/// The demo's customer records, chosen so the screen pop shows all three
/// cases: Maria García matches one contact (with an account and open
/// cases), Wei Chen's phone and email match two contacts, everyone else
/// matches none.
pub fn demo_records() -> Vec<(NewContact, Option<&'static str>, &'static [&'static str])> {
    let contact = |first: &str, last: &str, phone: &str, email: &str, city: &str| NewContact {
        first_name: first.into(),
        last_name: last.into(),
        email: Some(email.into()),
        phone: Some(phone.into()),
        address: Some("1 Main Street".into()),
        city: Some(city.into()),
        state: Some("CA".into()),
        account_id: None,
    };
    vec![
        (
            contact(
                "Maria",
                "García",
                "+34 600 111 222",
                "maria.garcia@example.com",
                "Madrid",
            ),
            Some("Contoso Retail"),
            &["Late delivery of order 48213", "Refund for damaged item"][..],
        ),
        (
            contact(
                "Wei",
                "Chen",
                "+86 138 0013 8000",
                "wei.chen@example.com",
                "Shanghai",
            ),
            Some("Fabrikam"),
            &["Billing question"][..],
        ),
        (
            contact(
                "Wei",
                "Chen (household)",
                "+86 138 0013 8000",
                "wei.chen@example.com",
                "Beijing",
            ),
            None,
            &[][..],
        ),
    ]
}

/// A follow-up in an open conversation, preferring ones where an agent
/// spoke last (the customer answers).
async fn pick_follow_up(hub: &Hub) -> Option<IngressMessage> {
    let open = hub.open_conversations(50).await.ok()?;
    let open: Vec<_> = open
        .into_iter()
        .filter(|c| !matches!(c.channel, Channel::Voice | Channel::Case))
        .collect();
    let mut answered = Vec::new();
    for c in &open {
        if let Ok(msgs) = hub.conversation_messages(None, c.id, None).await {
            if matches!(msgs.last().map(|m| &m.author), Some(Author::Agent { .. })) {
                answered.push(c.clone());
            }
        }
    }
    let pool = if answered.is_empty() { open } else { answered };
    let c = pool.choose(&mut rand::thread_rng())?.clone();
    let thread = hub.conversation_thread(c.id).await.ok()?;
    Some(IngressMessage {
        channel: c.channel,
        thread,
        customer_name: c.customer.name.clone(),
        phone: c.customer.phone.clone(),
        email: c.customer.email.clone(),
        comment: None,
        queue: Some(c.queue.clone()),
        scenario: None,
        transcript: Vec::new(),
        case_id: None,
        text: FOLLOW_UPS
            .choose(&mut rand::thread_rng())
            .copied()
            .unwrap_or("?")
            .into(),
        message_id: None,
    })
}
