//! The `switchboard` desktop app.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> anyhow::Result<()> {
    // First, so the set-up below can warn; it starts no thread.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tao=warn".into()),
        )
        .init();
    // Before any thread starts: it sets the web process's environment.
    switchboard_desktop::webview_engine::configure();
    // The demo hub runs in this process: its sign-ins hash passwords.
    switchboard_hub::allocator::configure();
    switchboard_desktop::run()
}
