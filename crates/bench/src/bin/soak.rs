//! Benchmark 6, soak: the hub in demo mode (customer simulator) and an
//! agent accepting offers run for N minutes; the memory of each process is
//! sampled over time. Prints the series and the least-squares slope (KiB
//! per minute) over the whole run and over its second half (after
//! warm-up), judged on anonymous memory. Target: flat.
//!
//! The agent is the headless `switchboard-agent` (engine, runtime, store).
//! The desktop app, webview included, is soaked the same way through
//! WebDriver by `tests/bench_desktop.rs` (`soak_the_desktop_app`).
//!
//! With `--work-every MS` the agent also works its conversations as the
//! desktop soak's agent does (open, reply, end now and then), so offers
//! keep coming and the hub sees a conversation's whole life; without it,
//! the agent only accepts, and its conversations fill up and stay.
//!
//! Usage: `soak [--quick] [--minutes 60] [--interval-secs 60] [--rate 120] [--work-every 2000]`

use std::time::{Duration, Instant};

use switchboard_bench::{init, quick, sibling_binary, tree_memory, HubProcess, MemorySeries};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init();
    let quick = quick();
    let minutes: f64 =
        switchboard_bench::arg("--minutes").unwrap_or(if quick { 1.0 } else { 60.0 });
    let interval: f64 =
        switchboard_bench::arg("--interval-secs").unwrap_or(if quick { 5.0 } else { 60.0 });
    let rate: f64 = switchboard_bench::arg("--rate").unwrap_or(120.0);
    let work_every: Option<u64> = switchboard_bench::arg("--work-every");
    let dir = tempfile::tempdir()?;

    let mut hub = HubProcess::demo(&sibling_binary("switchboard-hub")?, dir.path(), rate).await?;
    let url = hub.http_url.clone();

    let mut agent = tokio::process::Command::new(sibling_binary("switchboard-agent")?);
    agent
        .args(["--hub", &url, "--user", "demo", "--accept", "--data-dir"])
        .arg(dir.path().join("agent"));
    if let Some(ms) = work_every {
        agent.args(["--work-every", &ms.to_string()]);
    }
    let mut agent = agent
        .env("SWITCHBOARD_PASSWORD", "demo")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let hub_pid = hub.pid();
    let agent_pid = agent.id().unwrap_or(0);
    println!(
        "== soak: {minutes} min of demo traffic ({rate} customer messages/min), sampled every {interval} s; agent = switchboard-agent --accept{}",
        work_every.map_or(String::new(), |ms| format!(" --work-every {ms}"))
    );
    println!(
        "  {:>8}  {:>12} {:>12}  {:>12} {:>12}",
        "t (min)", "hub RSS KiB", "hub anon KiB", "agent RSS", "agent anon"
    );
    let t0 = Instant::now();
    let mut hub_series = MemorySeries::default();
    let mut agent_series = MemorySeries::default();
    let end = Duration::from_secs_f64(minutes * 60.0);
    loop {
        let t = t0.elapsed().as_secs_f64() / 60.0;
        let h = tree_memory(hub_pid);
        let a = tree_memory(agent_pid);
        println!(
            "  {t:>8.2}  {:>12} {:>12}  {:>12} {:>12}",
            h.rss_kib, h.anon_kib, a.rss_kib, a.anon_kib
        );
        hub_series.0.push((t, h));
        agent_series.0.push((t, a));
        if t0.elapsed() >= end {
            break;
        }
        if let Ok(Some(status)) = agent.try_wait() {
            anyhow::bail!("the agent exited: {status}");
        }
        tokio::time::sleep(Duration::from_secs_f64(interval).min(end.saturating_sub(t0.elapsed())))
            .await;
    }
    println!("  {}", hub_series.summary("hub"));
    println!("  {}", agent_series.summary("agent"));
    let _ = agent.kill().await;
    let _ = hub.child.kill().await;
    Ok(())
}
