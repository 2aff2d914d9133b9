//! The `switchboard` desktop app.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// Runs the app again, in place (same process id and arguments), with
/// glibc's per-thread malloc cache off for this process, and, once
/// re-executed, puts `GLIBC_TUNABLES` back as it was so the WebKit
/// processes keep their defaults. glibc reads its tunables only as a
/// program starts, so an exec is the one way to set them from within.
/// Why: `switchboard_hub::allocator::tunables_with_tcache_off`. If the
/// exec fails the app runs on with the cache, and says so.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn without_malloc_thread_cache() -> Option<std::io::Error> {
    use std::os::unix::process::CommandExt;
    use switchboard_hub::allocator::{tunables_with_tcache_off, GLIBC_TUNABLES, TUNED_MARKER};
    if let Some(before) = std::env::var_os(TUNED_MARKER) {
        // SAFETY (set_var/remove_var): still one thread, first thing in main.
        if before.is_empty() {
            std::env::remove_var(GLIBC_TUNABLES);
        } else {
            std::env::set_var(GLIBC_TUNABLES, before);
        }
        std::env::remove_var(TUNED_MARKER);
        return None;
    }
    let before = std::env::var(GLIBC_TUNABLES).ok();
    let tuned = tunables_with_tcache_off(before.as_deref())?;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Some(e),
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(GLIBC_TUNABLES, tuned)
        .env(TUNED_MARKER, before.unwrap_or_default())
        .exec();
    Some(error)
}

fn main() -> anyhow::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let exec_failed = without_malloc_thread_cache();
    // First, so the set-up below can warn; it starts no thread.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tao=warn".into()),
        )
        .init();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if let Some(e) = exec_failed {
        tracing::warn!(error = %e, "could not restart without malloc's thread cache; memory may creep");
    }
    // Before any thread starts: it sets the web process's environment.
    switchboard_desktop::webview_engine::configure();
    // The demo hub runs in this process: its sign-ins hash passwords.
    switchboard_hub::allocator::configure();
    switchboard_desktop::run()
}
