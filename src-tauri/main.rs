//! The `switchboard` desktop app.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// Removes `GLIBC_TUNABLES` when the app's launchers set it for this
/// process only ([`switchboard_hub::allocator::LAUNCH_ENVIRONMENT`]: glibc's
/// per-thread malloc cache off, and a marker), so the WebKit processes keep
/// glibc's defaults. Says whether the cache is off in this process.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn remove_launch_tunables() -> bool {
    use switchboard_hub::allocator::{GLIBC_TUNABLES, TCACHE_OFF, TUNED_MARKER};
    let tcache_off =
        std::env::var(GLIBC_TUNABLES).is_ok_and(|t| t.split(':').any(|t| t == TCACHE_OFF));
    if std::env::var_os(TUNED_MARKER).is_some() {
        // SAFETY (remove_var): still one thread, first thing in main.
        std::env::remove_var(GLIBC_TUNABLES);
        std::env::remove_var(TUNED_MARKER);
    }
    tcache_off
}

fn main() -> anyhow::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let tcache_off = remove_launch_tunables();
    // First, so the set-up below can warn; it starts no thread.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tao=warn".into()),
        )
        .init();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tracing::debug!(
        tcache_off,
        "glibc malloc's per-thread cache (off when started by a launcher)"
    );
    // The demo hub runs in this process: its sign-ins hash passwords.
    // One arena: see `ArenaLimit::One`. Before any thread starts: a thread
    // that allocates before the limit is set gets an arena of its own
    // (seen with this after WebKit's class set-up below).
    switchboard_hub::allocator::configure(switchboard_hub::allocator::ArenaLimit::One);
    // Before any thread starts: it sets the web process's environment.
    switchboard_desktop::webview_engine::configure();
    switchboard_desktop::run()
}
