//! `switchboard-hub`: runs the routing hub from a config file, or in demo
//! mode with seeded agents and a customer simulator.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use switchboard_hub::{demo, HubConfig};

/// The Switchboard routing hub.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (see docs/hub.example.toml).
    #[arg(long, env = "SWITCHBOARD_HUB_CONFIG")]
    config: Option<PathBuf>,
    /// Seed a demo team and run the customer simulator.
    #[arg(long)]
    demo: bool,
    /// Customer messages per minute in demo mode.
    #[arg(long, default_value_t = 6.0)]
    demo_rate: f64,
    /// Listen address (overrides the config file).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// SQLite database file (overrides the config file).
    #[arg(long)]
    database: Option<PathBuf>,
}

/// What the hub's own code allocates with on Linux (allocator.rs).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: switchboard_hub::allocator::HubAllocator =
    switchboard_hub::allocator::HUB_ALLOCATOR;

/// Sets the allocator up before anything allocates, the runtime's own
/// start-up included (so `main` is too late): run by the loader as a
/// constructor.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array"]
static CONFIGURE_ALLOCATOR: extern "C" fn() = {
    extern "C" fn configure() {
        switchboard_hub::allocator::configure_hub_allocator();
        let refused = switchboard_hub::allocator::configure_sqlite_allocator().err();
        // Logged from `main`: nothing can log this early.
        let _ = SQLITE_ALLOCATOR_REFUSED.set(refused);
    }
    configure
};

/// What the constructor's SQLite set-up returned, written once before
/// `main` and read once by it.
#[cfg(target_os = "linux")]
static SQLITE_ALLOCATOR_REFUSED: std::sync::OnceLock<
    Option<switchboard_hub::allocator::SqliteAllocatorRefused>,
> = std::sync::OnceLock::new();

fn main() -> anyhow::Result<()> {
    // First, so the allocator set-up can warn; it starts no thread.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    #[cfg(target_os = "linux")]
    if let Some(Some(refused)) = SQLITE_ALLOCATOR_REFUSED.get() {
        tracing::warn!(error = %refused, "SQLite keeps the C allocator");
    }
    // Before the runtime's threads start.
    switchboard_hub::allocator::configure(switchboard_hub::allocator::ArenaLimit::PerCore);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = match (&args.config, args.demo) {
        (Some(path), _) => HubConfig::load(path)?,
        (None, true) => demo::demo_config(
            PathBuf::from("switchboard-demo-hub.db"),
            SocketAddr::from(([127, 0, 0, 1], 8787)),
        ),
        (None, false) => anyhow::bail!("give --config FILE or --demo"),
    };
    if args.demo && args.config.is_some() {
        // Demo on top of a file: add the demo people and queue to it.
        let d = demo::demo_config(config.server.database.clone(), config.server.listen);
        config.teams.extend(d.teams);
        config.agents.extend(d.agents);
        config.queues.extend(d.queues);
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(db) = args.database {
        config.server.database = db;
    }
    let mut running = switchboard_hub::start(config)
        .await
        .context("starting the hub")?;
    println!("switchboard-hub listening on {}", running.http_url());
    println!("agents connect to {}", running.ws_url());
    if args.demo {
        println!(
            "demo mode: sign in as {} / {} (supervisor sam / {}, admin admin / {})",
            demo::DEMO_USER,
            demo::DEMO_PASSWORD,
            demo::DEMO_PASSWORD,
            demo::DEMO_PASSWORD
        );
        let sim = demo::spawn_simulator(
            running.hub.clone(),
            args.demo_rate,
            running.shutdown_signal(),
        );
        running.adopt(sim);
    }
    let stop = running.shutdown_signal();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted; shutting down");
            running.shutdown().await;
        }
        _ = wait_stopped(stop) => {
            running.wait().await;
        }
    }
    Ok(())
}

async fn wait_stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}
