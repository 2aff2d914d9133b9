//! Benchmarks 3 and 4 (programs in test form, `#[ignore]`d, never run by
//! CI): the desktop app's footprint at idle and its cold start, each
//! against a bare Tauri 2 window (`crates/bare-window`) built the same way
//! and measured in the same run, both launched the same way (tauri-driver +
//! WebKitWebDriver, Xvfb, private D-Bus). Nothing here asserts a target:
//! the figures are printed.
//!
//! ```text
//! cargo build --release -p switchboard-bare-window
//! xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session --config-file=tests/desktop/session.conf -- \
//!   cargo test --release --test bench_desktop -- --ignored --nocapture
//! ```
//! (`scripts/dev bench` does this.) `SWITCHBOARD_BENCH_QUICK=1`: fewer
//! rounds.

#![allow(clippy::unwrap_used)]

#[path = "desktop/support.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::*;
use switchboard_bench::{process_tree, tree_context_switches, tree_memory, Memory, Stats};
use switchboard_protocol::Channel;

const IDLE: Duration = Duration::from_secs(10);

fn quick() -> bool {
    std::env::var("SWITCHBOARD_BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn bare_window() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_switchboard")).with_file_name("bare-window");
    assert!(
        p.exists(),
        "{} missing: cargo build --release -p switchboard-bare-window (same profile as this test)",
        p.display()
    );
    p
}

/// The launched program's pid: the process below tauri-driver running
/// `binary`.
fn app_pid(app: &App, binary: &std::path::Path) -> u32 {
    let want = std::fs::canonicalize(binary).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        for pid in process_tree(app.driver_pid()) {
            if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == want) {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "{} not found", binary.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Memory of the program's whole tree (WebKit web and network processes
/// included) and its wakeups over [`IDLE`], after settling.
async fn idle_figures(pid: u32) -> (Memory, u64, usize) {
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = tree_context_switches(pid);
    tokio::time::sleep(IDLE).await;
    let wakeups = tree_context_switches(pid).saturating_sub(before);
    (tree_memory(pid), wakeups, process_tree(pid).len())
}

/// The unread total once it has stopped changing (the hub may hold some
/// conversations back, e.g. at the session limit).
async fn settled_unread(app: &App) -> u64 {
    let mut last = String::new();
    let mut same = 0;
    loop {
        let now = app.text("[data-testid=unread-total]").await;
        same = if now == last { same + 1 } else { 0 };
        if same >= 4 {
            return now.trim().parse().unwrap_or(0);
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by `scripts/dev bench`"]
async fn footprint_and_cold_start_against_a_bare_window() {
    let bare = bare_window();
    let app_bin = PathBuf::from(env!("CARGO_BIN_EXE_switchboard"));
    let rounds = if quick() { 2 } else { 7 };

    // Cold start: launch → first screen interactive (the app's sign-in
    // form; the bare page's text), alternating, fresh desktops.
    let mut app_start = Vec::new();
    let mut bare_start = Vec::new();
    for _ in 0..rounds {
        let desk = Desk::new();
        let t0 = Instant::now();
        let app = App::launch(&desk).await;
        app.el("input[name=hub]").await;
        app_start.push(t0.elapsed());
        app.quit().await;
        let desk = Desk::new();
        let t0 = Instant::now();
        let b = App::launch_binary(&desk, bare.to_str().unwrap()).await;
        b.el("body p").await;
        bare_start.push(t0.elapsed());
        b.quit().await;
    }

    // The app with 10 sessions and 1,000 cached messages.
    let hub = Hub::start().await;
    let desk = Desk::new();
    let app = App::launch(&desk).await;
    app.sign_in(&hub.url(), "a1").await;
    for i in 0..1000 {
        hub.ingress(
            Channel::Whatsapp,
            &format!("fp{}", i % 10),
            "Foot",
            "",
            &format!("message {i}"),
        )
        .await;
    }
    let cached = settled_unread(&app).await;
    app.quit().await;
    // Restart: state restored from the cache after sign-in.
    let t0 = Instant::now();
    let app = App::launch(&desk).await;
    app.el("input[name=hub]").await;
    let painted = t0.elapsed();
    let t1 = Instant::now();
    app.sign_in(&hub.url(), "a1").await;
    let want = cached.to_string();
    app.text_until("[data-testid=unread-total]", |t| t.trim() == want)
        .await;
    let restored = t1.elapsed();
    let rows = app
        .js("return document.querySelectorAll('[data-testid^=conversation-]').length")
        .await;
    let pid = app_pid(&app, &app_bin);
    let (app_mem, app_wakeups, app_procs) = idle_figures(pid).await;
    app.quit().await;

    let desk = Desk::new();
    let b = App::launch_binary(&desk, bare.to_str().unwrap()).await;
    b.el("body p").await;
    let bpid = app_pid(&b, &bare);
    let (bare_mem, bare_wakeups, bare_procs) = idle_figures(bpid).await;
    b.quit().await;

    let (a, s) = (
        Stats::of(&app_start).unwrap(),
        Stats::of(&bare_start).unwrap(),
    );
    println!(
        "== footprint and cold start (release builds, launched through tauri-driver under Xvfb)"
    );
    println!(
        "  footprint, app idle with {rows} conversation rows and {cached} unread cached messages (1,000 posted): {app_procs} processes, PSS {:.1} MiB, RSS {:.1} MiB",
        mib(app_mem.pss_kib),
        mib(app_mem.rss_kib)
    );
    println!(
        "  footprint, bare Tauri 2 window (floor): {bare_procs} processes, PSS {:.1} MiB, RSS {:.1} MiB",
        mib(bare_mem.pss_kib),
        mib(bare_mem.rss_kib)
    );
    let pss_ratio = app_mem.pss_kib as f64 / bare_mem.pss_kib.max(1) as f64;
    println!(
        "  footprint ratio: PSS {:.2}x, RSS {:.2}x bare; target <= 1.15x: {}",
        pss_ratio,
        app_mem.rss_kib as f64 / bare_mem.rss_kib.max(1) as f64,
        if pss_ratio <= 1.15 { "met" } else { "MISSED" }
    );
    println!(
        "  idle wakeups over {} s (context switches, all threads of the tree): app {} ({:.1}/s), bare {} ({:.1}/s)",
        IDLE.as_secs(),
        app_wakeups,
        app_wakeups as f64 / IDLE.as_secs_f64(),
        bare_wakeups,
        bare_wakeups as f64 / IDLE.as_secs_f64()
    );
    println!("  {}", a.line("cold start, app: launch → sign-in form"));
    println!(
        "  {}",
        s.line("cold start, bare window (floor): launch → page")
    );
    let ratio = a.median.as_secs_f64() / s.median.as_secs_f64();
    println!(
        "  cold start ratio (medians): {ratio:.2}x bare; target <= 1.25x: {}",
        if ratio <= 1.25 { "met" } else { "MISSED" }
    );
    println!(
        "  restart with a warm cache: launch → form {:.0} ms; sign-in → {rows} sessions and {cached} unread shown {:.0} ms (includes WebDriver typing)",
        painted.as_secs_f64() * 1000.0,
        restored.as_secs_f64() * 1000.0
    );
}
