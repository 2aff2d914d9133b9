//! The `switchboard` desktop app.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// Puts `GLIBC_TUNABLES` back as the app's launchers ask
/// ([`switchboard_hub::allocator::LAUNCH_ENVIRONMENT`]: they start the app
/// with glibc's per-thread malloc cache off and a marker saying what the
/// variable was), so the WebKit processes keep glibc's defaults. Says
/// whether the cache is off in this process.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn restore_tunables_for_children() -> bool {
    use switchboard_hub::allocator::{GLIBC_TUNABLES, TCACHE_OFF, TUNED_MARKER};
    let tcache_off =
        std::env::var(GLIBC_TUNABLES).is_ok_and(|t| t.split(':').any(|t| t == TCACHE_OFF));
    if let Some(before) = std::env::var_os(TUNED_MARKER) {
        // SAFETY (set_var/remove_var): still one thread, first thing in main.
        if before.is_empty() {
            std::env::remove_var(GLIBC_TUNABLES);
        } else {
            std::env::set_var(GLIBC_TUNABLES, before);
        }
        std::env::remove_var(TUNED_MARKER);
    }
    tcache_off
}

fn main() -> anyhow::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let tcache_off = restore_tunables_for_children();
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
    // Before any thread starts: it sets the web process's environment.
    switchboard_desktop::webview_engine::configure();
    // The demo hub runs in this process: its sign-ins hash passwords.
    switchboard_hub::allocator::configure();
    switchboard_desktop::run()
}
