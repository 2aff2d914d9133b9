//! `switchboard-agent`: signs in to a hub and prints, one JSON line each,
//! what the engine decides (notifications, ring, badge, tray, UI events).
//! For debugging and tests.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rand::Rng;
use serde_json::json;
use switchboard_client::engine::{Effect, Engine, NotificationKey, UiEvent};
use switchboard_client::{
    paths, spawn, AgentAction, ClientOptions, EffectSink, HubEndpoint, Input,
};
use switchboard_protocol::OfferId;
use tokio::sync::mpsc;

/// Switchboard headless agent.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Hub base URL.
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    hub: String,
    /// User name.
    #[arg(long)]
    user: String,
    /// Cache directory (default: the OS data dir, or SWITCHBOARD_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Extra trusted root certificate (PEM) for a wss:// hub.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Accept every offer as it arrives.
    #[arg(long)]
    accept: bool,
    /// Behave as if the window were focused.
    #[arg(long)]
    focused: bool,
    /// Work like an agent at the desk, one round every this many
    /// milliseconds: open a conversation (and its customer record), reply,
    /// and now and then end one so new offers keep coming. With
    /// `--accept`, the whole life of a conversation, as the soak needs.
    #[arg(long, value_name = "MS")]
    work_every: Option<u64>,
    /// Print the history of this conversation (REST look-up) and exit.
    #[arg(long, value_name = "CONVERSATION_ID")]
    history: Option<i64>,
}

struct Printer {
    accept: Option<mpsc::UnboundedSender<OfferId>>,
}

impl EffectSink for Printer {
    fn perform(&mut self, effect: Effect, engine: &Engine) {
        let line = match &effect {
            Effect::Notify(n) => {
                if let (Some(tx), NotificationKey::Offer(id)) = (&self.accept, n.key) {
                    let _ = tx.send(id);
                }
                json!({"effect": "notify", "notification": n})
            }
            Effect::CloseNotification(k) => json!({"effect": "close_notification", "key": k}),
            Effect::StartRing => json!({"effect": "start_ring"}),
            Effect::StopRing => json!({"effect": "stop_ring"}),
            Effect::Chime => json!({"effect": "chime"}),
            Effect::Badge(n) => json!({"effect": "badge", "unread_chats": n}),
            Effect::Tray(t) => json!({"effect": "tray", "menu": t}),
            Effect::FocusWindow(k) => json!({"effect": "focus_window", "key": k}),
            Effect::Ui(UiEvent::Connection { status }) => {
                json!({"effect": "ui", "event": {"type": "connection", "status": status}, "last_seq": engine.state().last_seq})
            }
            Effect::Ui(e) => json!({"effect": "ui", "event": e}),
            Effect::StartAtLogin(on) => json!({"effect": "start_at_login", "enabled": on}),
            Effect::Send(_) | Effect::Store(_) => return,
        };
        println!("{line}");
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let args = Args::parse();
    let mut endpoint = HubEndpoint::new(&args.hub);
    if let Some(ca) = &args.ca_cert {
        endpoint.extra_root_pem =
            Some(std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?);
    }
    // From the environment only: a command-line argument is readable by
    // every local user (`ps`, /proc) for as long as the agent runs.
    let password = std::env::var("SWITCHBOARD_PASSWORD")
        .context("set SWITCHBOARD_PASSWORD to the user's password")?;
    let login = endpoint
        .login(&args.user, &password)
        .await
        .context("signing in")?;
    if let Some(id) = args.history {
        let messages = endpoint
            .history(&login.token, switchboard_protocol::ConversationId(id), None)
            .await
            .context("looking up the history")?;
        for m in messages {
            println!("{}", serde_json::to_string(&m)?);
        }
        return Ok(());
    }
    let dir = args.data_dir.clone().unwrap_or_else(paths::data_dir);
    let (accept_tx, mut accept_rx) = mpsc::unbounded_channel();
    let printer = Printer {
        accept: args.accept.then_some(accept_tx),
    };
    // The account's own cache on this hub, as the desktop app keeps it:
    // one shared file gave the next user the last one's conversations and
    // unsent replies.
    let mut options = ClientOptions::new(
        endpoint.clone(),
        login.token.clone(),
        switchboard_client::session::account_cache(&dir, &endpoint, &args.user),
    );
    options.account = Some(args.user.clone());
    options.client_name = "switchboard-agent".into();
    let (client, task, recovered) = spawn(options, printer)
        .await
        .context("starting the client")?;
    if let Some(r) = recovered {
        println!(
            "{}",
            json!({"effect": "cache_recovered", "moved_to": r.moved_to, "reason": r.reason})
        );
    }
    client.input(Input::Focus(args.focused)).await?;
    let c2 = client.clone();
    tokio::spawn(async move {
        while let Some(offer_id) = accept_rx.recv().await {
            let _ = c2
                .input(Input::Agent(AgentAction::Accept { offer_id }))
                .await;
        }
    });
    if let Some(every) = args.work_every {
        let (client, endpoint, token) = (client.clone(), endpoint.clone(), login.token.clone());
        tokio::spawn(work(
            client,
            endpoint,
            token,
            Duration::from_millis(every.max(1)),
        ));
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => client.shutdown().await,
        _ = task => {}
    }
    Ok(())
}

/// The desk work of `--work-every`, as the desktop soak's in-page agent
/// does it through the window: each round, open one of the agent's
/// conversations at random and read its customer record as the window
/// does on a switch; a moment later reply, and with four or more
/// conversations end the open one half the time.
async fn work(
    client: switchboard_client::ClientHandle,
    endpoint: HubEndpoint,
    token: String,
    every: Duration,
) {
    let mut rounds = tokio::time::interval(every);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        rounds.tick().await;
        let Ok(owned) = client
            .query(|e| {
                e.state()
                    .conversations
                    .values()
                    .filter(|c| c.session_open)
                    .map(|c| (c.summary.id, c.summary.link.as_ref().map(|l| l.contact_id)))
                    .collect::<Vec<_>>()
            })
            .await
        else {
            return;
        };
        if owned.is_empty() {
            continue;
        }
        let (id, contact) = owned[rand::thread_rng().gen_range(0..owned.len())];
        let act = |action| client.input(Input::Agent(action));
        if act(AgentAction::Open {
            conversation_id: id,
        })
        .await
        .is_err()
        {
            return;
        }
        if let Some(contact) = contact {
            if let Err(e) = endpoint.customer_360(&token, contact).await {
                tracing::warn!(error = %e, "reading a customer record");
            }
        }
        tokio::time::sleep(every.min(Duration::from_millis(300))).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let _ = act(AgentAction::SendMessage {
            conversation_id: id,
            text: format!("Thanks, looking into it ({now})"),
        })
        .await;
        if owned.len() >= 4 && rand::thread_rng().gen_bool(0.5) {
            let _ = act(AgentAction::Close {
                conversation_id: id,
            })
            .await;
        }
    }
}
