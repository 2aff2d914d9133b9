//! Benchmark 6, soak: the hub in demo mode (customer simulator) and an
//! agent accepting offers run for N minutes; the memory of each process is
//! sampled over time. Prints the series and the least-squares slope (KiB
//! per minute) over the whole run and over its second half (after
//! warm-up). Target: flat.
//!
//! The agent is the headless `switchboard-agent` (engine, runtime, store),
//! not the desktop app: the app cannot sign itself in without its UI, and
//! soaking it through WebDriver is not done yet.
//!
//! Usage: `soak [--quick] [--minutes 60] [--interval-secs 60] [--rate 120]`

use std::time::{Duration, Instant};

use switchboard_bench::{init, quick, sibling_binary, tree_memory, Memory};

fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let num: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

fn report(label: &str, series: &[(f64, Memory)]) {
    let rss: Vec<(f64, f64)> = series.iter().map(|(t, m)| (*t, m.rss_kib as f64)).collect();
    let pss: Vec<(f64, f64)> = series.iter().map(|(t, m)| (*t, m.pss_kib as f64)).collect();
    let half = series.len() / 2;
    println!(
        "  {label}: RSS slope {:+.1} KiB/min (second half {:+.1}), PSS slope {:+.1} KiB/min (second half {:+.1}); first {:.1} MiB, last {:.1} MiB RSS",
        slope(&rss),
        slope(&rss[half..]),
        slope(&pss),
        slope(&pss[half..]),
        series.first().map(|s| s.1.rss_kib as f64 / 1024.0).unwrap_or(0.0),
        series.last().map(|s| s.1.rss_kib as f64 / 1024.0).unwrap_or(0.0),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use tokio::io::AsyncBufReadExt;
    init();
    let quick = quick();
    let minutes: f64 =
        switchboard_bench::arg("--minutes").unwrap_or(if quick { 1.0 } else { 60.0 });
    let interval: f64 =
        switchboard_bench::arg("--interval-secs").unwrap_or(if quick { 5.0 } else { 60.0 });
    let rate: f64 = switchboard_bench::arg("--rate").unwrap_or(120.0);
    let dir = tempfile::tempdir()?;

    let mut hub = tokio::process::Command::new(sibling_binary("switchboard-hub")?)
        .args([
            "--demo",
            "--demo-rate",
            &rate.to_string(),
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--database")
        .arg(dir.path().join("hub.db"))
        .env("RUST_LOG", "warn,sqlx=warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(
        hub.stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    )
    .lines();
    let mut url = None;
    while let Some(l) = lines.next_line().await? {
        if let Some(u) = l.strip_prefix("switchboard-hub listening on ") {
            url = Some(u.trim().to_owned());
            break;
        }
    }
    let url = url.ok_or_else(|| anyhow::anyhow!("hub did not start"))?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut agent = tokio::process::Command::new(sibling_binary("switchboard-agent")?)
        .args(["--hub", &url, "--user", "demo", "--accept", "--data-dir"])
        .arg(dir.path().join("agent"))
        .env("SWITCHBOARD_PASSWORD", "demo")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let hub_pid = hub.id().unwrap_or(0);
    let agent_pid = agent.id().unwrap_or(0);
    println!(
        "== soak: {minutes} min of demo traffic ({rate} customer messages/min), sampled every {interval} s; agent = switchboard-agent --accept"
    );
    println!(
        "  {:>8}  {:>12} {:>12}  {:>12} {:>12}",
        "t (min)", "hub RSS KiB", "hub PSS KiB", "agent RSS", "agent PSS"
    );
    let t0 = Instant::now();
    let mut hub_series = Vec::new();
    let mut agent_series = Vec::new();
    let end = Duration::from_secs_f64(minutes * 60.0);
    loop {
        let t = t0.elapsed().as_secs_f64() / 60.0;
        let h = tree_memory(hub_pid);
        let a = tree_memory(agent_pid);
        println!(
            "  {t:>8.2}  {:>12} {:>12}  {:>12} {:>12}",
            h.rss_kib, h.pss_kib, a.rss_kib, a.pss_kib
        );
        hub_series.push((t, h));
        agent_series.push((t, a));
        if t0.elapsed() >= end {
            break;
        }
        if let Ok(Some(status)) = agent.try_wait() {
            anyhow::bail!("the agent exited: {status}");
        }
        tokio::time::sleep(Duration::from_secs_f64(interval).min(end.saturating_sub(t0.elapsed())))
            .await;
    }
    report("hub", &hub_series);
    report("agent", &agent_series);
    let _ = agent.kill().await;
    let _ = hub.kill().await;
    Ok(())
}
