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
use switchboard_bench::{
    count_wakeups, memory, process_name, process_tree, pss_by_mapping, tree_cpu_ticks, tree_memory,
    HubProcess, Memory, MemorySeries, Stats, Wakeups,
};
use switchboard_protocol::Channel;

/// How long idle wakeups and CPU are counted: `SWITCHBOARD_BENCH_IDLE_SECS`,
/// by default 65 s, so the web process's memory checks (every 30 s,
/// `src-tauri/webview_engine.rs`) fall inside it twice.
fn idle_window() -> Duration {
    let secs = std::env::var("SWITCHBOARD_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick() { 10.0 } else { 65.0 });
    Duration::from_secs_f64(secs)
}

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

/// What an idle process tree costs.
struct Idle {
    /// Whole tree (WebKit web and network processes included).
    memory: Memory,
    /// Context switches over [`idle_window`], per thread too.
    wakeups: Wakeups,
    /// CPU clock ticks (10 ms) over [`idle_window`].
    cpu_ticks: u64,
    processes: usize,
    /// Where the memory goes, per process and (largest mappings) per file.
    breakdown: Vec<String>,
}

/// The tree's idle figures, after settling.
async fn idle_figures(pid: u32) -> Idle {
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu_before = tree_cpu_ticks(pid);
    let wakeups = tokio::task::spawn_blocking(move || {
        count_wakeups(pid, idle_window(), Duration::from_millis(50))
    })
    .await
    .unwrap();
    let cpu_ticks = tree_cpu_ticks(pid).saturating_sub(cpu_before);
    let breakdown = process_tree(pid)
        .into_iter()
        .filter_map(|p| {
            let m = memory(p)?;
            let top: Vec<String> = pss_by_mapping(p)
                .into_iter()
                .take(6)
                .map(|(name, kib)| format!("{name} {:.1}", mib(kib)))
                .collect();
            Some(format!(
                "{}: PSS {:.1} MiB ({})",
                process_name(p),
                mib(m.pss_kib),
                top.join(", ")
            ))
        })
        .collect();
    Idle {
        memory: tree_memory(pid),
        wakeups,
        cpu_ticks,
        processes: process_tree(pid).len(),
        breakdown,
    }
}

/// The unread messages the conversation list shows (the sum of its rows'
/// counts; the header's bubble counts chats).
async fn unread_messages_shown(app: &App) -> u64 {
    app.js(
        "return [...document.querySelectorAll('[data-testid^=unread-]')]\
         .filter(e => e.dataset.testid !== 'unread-chats')\
         .reduce((n, e) => n + Number(e.textContent), 0)",
    )
    .await
    .as_u64()
    .unwrap_or(0)
}

/// The unread messages shown once they have stopped changing (the hub may
/// hold some conversations back, e.g. at the session limit).
async fn settled_unread(app: &App) -> u64 {
    let mut last = u64::MAX;
    let mut same = 0;
    loop {
        let now = unread_messages_shown(app).await;
        same = if now == last { same + 1 } else { 0 };
        if same >= 4 {
            return now;
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while unread_messages_shown(&app).await != cached {
        assert!(Instant::now() < deadline, "the cached unread never showed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let restored = t1.elapsed();
    let rows = app
        .js("return document.querySelectorAll('[data-testid^=conversation-]').length")
        .await;
    let pid = app_pid(&app, &app_bin);
    let app_idle = idle_figures(pid).await;
    app.quit().await;

    let desk = Desk::new();
    let b = App::launch_binary(&desk, bare.to_str().unwrap()).await;
    b.el("body p").await;
    let bpid = app_pid(&b, &bare);
    let bare_idle = idle_figures(bpid).await;
    let (app_mem, bare_mem) = (app_idle.memory, bare_idle.memory);
    let (app_procs, bare_procs) = (app_idle.processes, bare_idle.processes);
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
    for part in &app_idle.breakdown {
        println!("    app  {part}");
    }
    for part in &bare_idle.breakdown {
        println!("    bare {part}");
    }
    let pss_ratio = app_mem.pss_kib as f64 / bare_mem.pss_kib.max(1) as f64;
    println!(
        "  footprint ratio: PSS {:.2}x, RSS {:.2}x bare; target <= 1.15x: {}",
        pss_ratio,
        app_mem.rss_kib as f64 / bare_mem.rss_kib.max(1) as f64,
        if pss_ratio <= 1.15 { "met" } else { "MISSED" }
    );
    let idle = idle_window().as_secs_f64();
    println!(
        "  idle over {idle:.0} s (all threads of the tree, sampled every 50 ms): wakeups (context switches) app {} ({:.1}/s), bare {} ({:.1}/s); CPU app {} ms ({:.2} %), bare {} ms ({:.2} %)",
        app_idle.wakeups.total,
        app_idle.wakeups.total as f64 / idle,
        bare_idle.wakeups.total,
        bare_idle.wakeups.total as f64 / idle,
        app_idle.cpu_ticks * 10,
        app_idle.cpu_ticks as f64 / idle,
        bare_idle.cpu_ticks * 10,
        bare_idle.cpu_ticks as f64 / idle,
    );
    println!(
        "    app threads that woke most: {}",
        app_idle.wakeups.top(8)
    );
    println!(
        "    bare threads that woke most: {}",
        bare_idle.wakeups.top(8)
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

/// An agent's work, done in the page by the page itself as a person
/// would do it (clicks and typing into the real UI): an offer that shows
/// is accepted within `ACCEPT_MS` (as an agent answers the ring; at most
/// 2 s), and every `ROUND_MS` the agent opens a conversation; a moment
/// later replies, and now and then ends one so new offers keep coming.
/// Counts go to `window.__soak`. Driving each round over WebDriver instead would
/// measure WebDriver: its script evaluations grew the webview by itself.
const AGENT_ROBOT: &str = r#"
const does = 'DOES';
const soak = (window.__soak = { rows: 0, accepted: 0, replied: 0, ended: 0 });
if (does.includes('count')) {
  // Every IPC call the page makes, by command: count and response bytes
  // (Tauri's invoke is a fetch of ipc://localhost/<command>). The clone
  // read costs memory of its own: for finding what the page does only.
  soak.ipc = {};
  const fetch0 = window.fetch;
  window.fetch = (input, init) => {
    const k = String(input).split('/').pop().split('?')[0];
    const c = (soak.ipc[k] ??= { n: 0, bytes: 0 });
    c.n++;
    return fetch0(input, init).then((r) => {
      r.clone().arrayBuffer().then((b) => (c.bytes += b.byteLength));
      return r;
    });
  };
}
setInterval(() => {
  const accept = document.querySelector('[data-testid=accept]');
  if (accept && does.includes('accept')) { accept.click(); soak.accepted++; }
}, ACCEPT_MS);
setInterval(() => {
  if (window.__soakQuiet) return;
  const rows = [...document.querySelectorAll('[data-testid^=conversation-]')];
  soak.rows = rows.length;
  if (rows.length > 0 && does.includes('open')) rows[Math.floor(Math.random() * rows.length)].click();
  if (does.includes('flood')) {
    // 20 extra reads of the view a round: what one IPC call costs the page.
    for (let i = 0; i < 20; i++) window.__TAURI_INTERNALS__.invoke('view_update', { read: { shown: null, all: false, changed: [] } });
  }
  if (rows.length > 0 && does.includes('ipc')) {
    // The reads a switch makes (the view with the conversation in front,
    // and its customer record), without rendering them (for bisecting).
    const I = window.__TAURI_INTERNALS__;
    I.invoke('view_update', { read: { shown: null, all: false, changed: [] } }).then((u) => u.detail.detail?.summary.link && I.invoke('customer_360', { id: u.detail.detail.summary.link.contact_id }));
  }
  setTimeout(() => {
    const composer = document.querySelector('[data-testid=composer]');
    if (composer && does.includes('reply')) {
      composer.value = 'Thanks, looking into it (' + Date.now() + ')';
      composer.dispatchEvent(new Event('input', { bubbles: true }));
      document.querySelector('[data-testid=send]').click();
      soak.replied++;
    }
    const end = document.querySelector('[data-testid=end-session]');
    if (end && does.includes('end') && rows.length >= 4 && Math.random() < 0.5) { end.click(); soak.ended++; }
  }, 300);
}, ROUND_MS);
return null;
"#;

/// Benchmark 6 for the desktop app: an hour (`SWITCHBOARD_SOAK_MINUTES`)
/// of demo traffic from a `switchboard-hub --demo` process, the app
/// signed in as the demo agent and worked in the page (accepting,
/// replying, ending conversations: [`AGENT_ROBOT`]), OS notifications on.
/// The memory of the app's whole tree (WebKit included), of each of its
/// processes, and of the hub is sampled each
/// `SWITCHBOARD_SOAK_INTERVAL_SECS`; prints the series and, for each, the
/// slopes and whether the second half is flat. Anonymous memory decides
/// (see [`Memory::anon_kib`]: RSS also counts code pages first run late).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by `scripts/dev bench`"]
async fn soak_the_desktop_app() {
    let env_f64 = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let minutes = env_f64("SWITCHBOARD_SOAK_MINUTES", if quick() { 2.0 } else { 60.0 });
    let interval = env_f64(
        "SWITCHBOARD_SOAK_INTERVAL_SECS",
        if quick() { 10.0 } else { 60.0 },
    );
    let rate = env_f64("SWITCHBOARD_SOAK_RATE", 60.0);
    // Pause between two rounds of the agent's work.
    let round_ms = env_f64("SWITCHBOARD_SOAK_ROUND_SECS", 2.0) * 1000.0;
    // For telling retained memory from work in flight: the in-page agent
    // stops opening, answering and ending conversations this long before
    // each sample (customers still write). Over 30 s, one of WebKit's
    // memory checks (a full collection, caches dropped) falls inside.
    // Offers are still accepted: the demo's lapse after 45 s, and a lapse
    // sets the agent Inactive (no more offers for the rest of the run).
    let quiet = Duration::from_secs_f64(env_f64("SWITCHBOARD_SOAK_QUIET_SECS", 0.0).min(45.0));
    let app_bin = PathBuf::from(env!("CARGO_BIN_EXE_switchboard"));
    let hub_bin = app_bin.with_file_name("switchboard-hub");
    assert!(
        hub_bin.exists(),
        "{} missing: cargo build --release -p switchboard-hub",
        hub_bin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::demo(&hub_bin, dir.path(), rate).await.unwrap();
    let notifications = NotifyServer::start().await;
    let desk = Desk::new();
    // Extra environment for the app's tree only (not the hub): for trying
    // an allocator or engine setting, e.g. `LD_PRELOAD=… MALLOC_CONF=…`,
    // space-separated NAME=VALUE pairs.
    let app_env_text = std::env::var("SWITCHBOARD_SOAK_APP_ENV").unwrap_or_default();
    let added: Vec<(&str, &str)> = app_env_text
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .collect();
    if !added.is_empty() {
        println!("app environment added: {added:?}");
    }
    // After the launch environment the desktop entry gives it (App::launch).
    let app_env: Vec<(&str, &str)> = switchboard_hub::allocator::LAUNCH_ENVIRONMENT
        .iter()
        .copied()
        .chain(added)
        .collect();
    let app = App::launch_binary_with(&desk, &app_bin.to_string_lossy(), &app_env).await;
    app.sign_in_with(&hub.http_url, "demo", "demo").await;
    app.notify_always().await;
    let pid = app_pid(&app, &app_bin);
    // What the agent does (for finding what grows): all by default.
    let does = std::env::var("SWITCHBOARD_SOAK_DOES")
        .unwrap_or_else(|_| "accept,open,reply,end".into())
        .replace('\'', "");
    app.js(&AGENT_ROBOT
        .replace("ROUND_MS", &format!("{round_ms:.0}"))
        .replace("ACCEPT_MS", &format!("{:.0}", round_ms.min(2000.0)))
        .replace("DOES", &does))
        .await;

    println!(
        "== soak, desktop app: {minutes} min of demo traffic ({rate} customer messages/min), the app worked by an in-page agent, sampled every {interval} s"
    );
    println!(
        "  {:>7}  {:>5} {:>9} {:>9} {:>9} {:>9} {:>9}  {:>9} {:>9}  {:>5} {:>8} {:>7} {:>5} {:>8}",
        "t (min)",
        "procs",
        "app RSS",
        "app anon",
        "main anon",
        "web anon",
        "net anon",
        "hub RSS",
        "hub anon",
        "rows",
        "accepted",
        "replied",
        "ended",
        "notified"
    );
    // The whole tree, each of its processes (main, WebKit's web and
    // network processes: where growth would be), and the hub.
    let (mut tree_series, mut hub_series) = (MemorySeries::default(), MemorySeries::default());
    let mut process_series: [(&str, &str, MemorySeries); 3] = [
        ("app main process", "switchboard", MemorySeries::default()),
        ("web process", "WebKitWebProces", MemorySeries::default()),
        (
            "network process",
            "WebKitNetworkPr",
            MemorySeries::default(),
        ),
    ];
    let (mut rows, mut accepted, mut replied, mut ended) = (0u64, 0u64, 0u64, 0u64);
    let t0 = Instant::now();
    let end = Duration::from_secs_f64(minutes * 60.0);
    let mut next_sample = Duration::ZERO;
    loop {
        let mut elapsed = t0.elapsed();
        if elapsed >= next_sample {
            if !quiet.is_zero() && !next_sample.is_zero() {
                app.js("window.__soakQuiet = true; return null").await;
                tokio::time::sleep(quiet).await;
                elapsed = t0.elapsed();
            }
            let t = elapsed.as_secs_f64() / 60.0;
            let (a, h) = (tree_memory(pid), tree_memory(hub.pid()));
            let tree = process_tree(pid);
            for (_, name, series) in &mut process_series {
                let m = tree
                    .iter()
                    .find(|p| process_name(**p) == *name)
                    .and_then(|p| memory(*p))
                    .unwrap_or_default();
                series.0.push((t, m));
            }
            let anon = |i: usize| process_series[i].2 .0.last().map_or(0, |s| s.1.anon_kib);
            println!(
                "  {t:>7.2}  {:>5} {:>9} {:>9} {:>9} {:>9} {:>9}  {:>9} {:>9}  {rows:>5} {accepted:>8} {replied:>7} {ended:>5} {:>8}",
                tree.len(),
                a.rss_kib,
                a.anon_kib,
                anon(0),
                anon(1),
                anon(2),
                h.rss_kib,
                h.anon_kib,
                notifications.notified().len()
            );
            tree_series.0.push((t, a));
            hub_series.0.push((t, h));
            if !quiet.is_zero() {
                app.js("window.__soakQuiet = false; return null").await;
            }
            if elapsed >= end {
                break;
            }
            next_sample += Duration::from_secs_f64(interval);
        }
        tokio::time::sleep(next_sample.saturating_sub(t0.elapsed())).await;
        let soak = app
            .js("return Object.assign({ dom: document.getElementsByTagName('*').length, callbacks: window.__TAURI_INTERNALS__.callbacks?.size ?? -1, visibility: document.visibilityState }, window.__soak)")
            .await;
        // Whether WebKit counts the page as shown: an X screen saver (Xvfb
        // blanks after 10 minutes) or a covered window may hide it.
        println!(
            "          dom {} callbacks {} {}{}",
            soak["dom"],
            soak["callbacks"],
            soak["visibility"].as_str().unwrap_or("?"),
            soak.get("ipc")
                .map(|ipc| format!(" ipc {ipc}"))
                .unwrap_or_default()
        );
        let n = |k: &str| soak[k].as_u64().unwrap_or(0);
        (rows, accepted, replied, ended) = (n("rows"), n("accepted"), n("replied"), n("ended"));
    }
    // Still alive and connected after the hour.
    let connection = app.text("[data-testid=connection]").await;
    println!("  {}", tree_series.summary("app (whole tree)"));
    for (label, _, series) in &process_series {
        println!("    {}", series.summary(label));
    }
    println!("  {}", hub_series.summary("hub"));
    println!("  after the soak the app shows: {connection}");
    app.quit().await;
    drop(hub);
}
