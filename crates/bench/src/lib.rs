//! Shared helpers for the Switchboard benchmark programs (`src/bin/*`):
//! latency statistics, process memory and wakeup sampling from `/proc`, and
//! hub set-up. The programs print figures; nothing here asserts targets.
//!
//! Every program accepts `--quick` (or `SWITCHBOARD_BENCH_QUICK=1`) for a
//! short smoke run with smaller counts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};

/// True for a short smoke run (`--quick` or `SWITCHBOARD_BENCH_QUICK=1`).
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
        || std::env::var("SWITCHBOARD_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// The value after `--name` on the command line, parsed.
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// Order statistics of a set of latency samples.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Number of samples.
    pub n: usize,
    /// Smallest.
    pub min: Duration,
    /// 50th percentile.
    pub median: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

impl Stats {
    /// Computes the statistics; `None` for no samples.
    pub fn of(samples: &[Duration]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort();
        let rank = |p: f64| {
            let r = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
            s[r - 1]
        };
        Some(Stats {
            n: s.len(),
            min: s[0],
            median: rank(0.50),
            p99: rank(0.99),
            max: s[s.len() - 1],
        })
    }

    /// One line: `label  n=.. min=.. median=.. p99=.. max=..` in ms.
    pub fn line(&self, label: &str) -> String {
        format!(
            "{label:<44} n={:<6} min={:>8.3} ms  median={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
            self.n,
            ms(self.min),
            ms(self.median),
            ms(self.p99),
            ms(self.max)
        )
    }
}

/// Milliseconds as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Resident and proportional set size of one process, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size.
    pub rss_kib: u64,
    /// Proportional set size (shared pages divided among their users).
    pub pss_kib: u64,
    /// Resident anonymous memory (heap, stacks, JavaScript heap, written
    /// library data): what the process holds of its own, where a leak
    /// shows. RSS also counts file pages (code of the binary and its
    /// libraries) faulted in the first time a code path runs: bounded by
    /// the files' size, shared, and dropped by the kernel when it needs
    /// the memory.
    pub anon_kib: u64,
}

impl std::ops::Add for Memory {
    type Output = Memory;
    fn add(self, o: Memory) -> Memory {
        Memory {
            rss_kib: self.rss_kib + o.rss_kib,
            pss_kib: self.pss_kib + o.pss_kib,
            anon_kib: self.anon_kib + o.anon_kib,
        }
    }
}

fn field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Memory of one process from `/proc/<pid>/smaps_rollup` (None if gone).
pub fn memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some(Memory {
        rss_kib: field_kib(&text, "Rss:")?,
        pss_kib: field_kib(&text, "Pss:")?,
        anon_kib: field_kib(&text, "Anonymous:")?,
    })
}

/// The process and all its descendants (children found through
/// `/proc/*/stat`).
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may contain spaces.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = after
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u32>().ok())
            {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

/// The process's name (`/proc/<pid>/comm`).
pub fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// PSS (KiB) of one process by what is mapped (file name, or `[heap]`,
/// `[anon]`, ...), largest first: where a footprint goes.
pub fn pss_by_mapping(pid: u32) -> Vec<(String, u64)> {
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return Vec::new();
    };
    let mut current = String::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let path = line.split_whitespace().nth(5).unwrap_or("[anon]");
            current = path.rsplit('/').next().unwrap_or(path).to_owned();
        } else if first == "Pss:" {
            let kib: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            *by.entry(current.clone()).or_default() += kib;
        }
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by_key(|b| std::cmp::Reverse(b.1));
    v
}

/// Summed memory of a process tree.
pub fn tree_memory(root: u32) -> Memory {
    process_tree(root)
        .into_iter()
        .filter_map(memory)
        .fold(Memory::default(), |a, b| a + b)
}

/// Context switches (voluntary and not) of every live thread in the tree,
/// by thread id.
pub fn thread_context_switches(root: u32) -> std::collections::HashMap<(u32, u32), u64> {
    let mut out = std::collections::HashMap::new();
    for pid in process_tree(root) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(t.path().join("status")) else {
                continue;
            };
            let n = field_kib(&status, "voluntary_ctxt_switches:").unwrap_or(0)
                + field_kib(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
            out.insert((pid, tid), n);
        }
    }
    out
}

/// A process tree's wakeups (context switches) over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wakeups {
    /// All threads together.
    pub total: u64,
    /// Per `process/thread` name (pool threads share a name), most first:
    /// which threads wake.
    pub by_thread: Vec<(String, u64)>,
}

impl Wakeups {
    /// The `n` threads that woke most, as `name count` pairs.
    pub fn top(&self, n: usize) -> String {
        self.by_thread
            .iter()
            .filter(|(_, w)| *w > 0)
            .take(n)
            .map(|(name, w)| format!("{name} {w}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Counts the tree's wakeups (context switches) over `window`, sampling
/// every `every`: a thread that starts during the window counts all its
/// switches, one that ends counts those seen up to its last sample. (Two
/// readings at the ends alone miss every thread started and ended between
/// them: a pool thread woken for a moment, say.)
pub fn count_wakeups(root: u32, window: Duration, every: Duration) -> Wakeups {
    let start = std::time::Instant::now();
    let first = thread_context_switches(root);
    let mut last = first.clone();
    let mut names = std::collections::HashMap::new();
    let mut name_new = |last: &std::collections::HashMap<(u32, u32), u64>| {
        for &(pid, tid) in last.keys() {
            names.entry((pid, tid)).or_insert_with(|| {
                let thread = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_default();
                format!("{}/{thread}", process_name(pid))
            });
        }
    };
    name_new(&last);
    while start.elapsed() < window {
        std::thread::sleep(every.min(window.saturating_sub(start.elapsed())));
        for (tid, n) in thread_context_switches(root) {
            last.insert(tid, n);
        }
        name_new(&last);
    }
    let mut by_name = std::collections::HashMap::<String, u64>::new();
    for (tid, n) in &last {
        let woke = n.saturating_sub(first.get(tid).copied().unwrap_or(0));
        *by_name
            .entry(names.get(tid).cloned().unwrap_or_default())
            .or_default() += woke;
    }
    let mut by_thread: Vec<(String, u64)> = by_name.into_iter().collect();
    by_thread.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Wakeups {
        total: by_thread.iter().map(|(_, w)| w).sum(),
        by_thread,
    }
}

/// CPU time (user + system) the process tree has used so far, in clock
/// ticks (`/proc/PID/stat` fields 14 and 15; 100 a second on Linux).
pub fn tree_cpu_ticks(root: u32) -> u64 {
    process_tree(root)
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name (field 2) may hold spaces: count after it.
            let rest = &stat[stat.rfind(')')? + 1..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // `rest` starts at field 3, so utime (14) and stime (15) are
            // at 11 and 12.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// A sibling binary of the running benchmark (same target directory), e.g.
/// `switchboard-hub`.
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no parent of {}", exe.display()))?;
    let p = dir.join(name);
    anyhow::ensure!(
        p.exists(),
        "{} not built (cargo build --release -p switchboard-hub -p switchboard-client -p switchboard-bench)",
        p.display()
    );
    Ok(p)
}

/// An argon2id hash with the smallest parameters: logging thousands of
/// benchmark agents in must not spend minutes in password hashing (login
/// cost is not what the benchmarks measure).
pub fn cheap_password_hash(password: &str) -> anyhow::Result<String> {
    let params = argon2::Params::new(8, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"switchboard-bench").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(a.hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string())
}

/// Installs the rustls provider and a quiet log subscriber.
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// The hub process's log filter: `SWITCHBOARD_BENCH_HUB_LOG` if set
/// (`switchboard_hub=debug` logs each command and request, to count what
/// a run asked of the hub), else warnings only.
fn hub_log_filter() -> String {
    std::env::var(HUB_LOG).unwrap_or_else(|_| "warn,sqlx=warn".into())
}

/// The variable naming the hub process's log filter (see
/// [`hub_log_filter`]).
const HUB_LOG: &str = "SWITCHBOARD_BENCH_HUB_LOG";

/// A hub running as its own process (so its memory is its own).
pub struct HubProcess {
    /// The child.
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:port`.
    pub http_url: String,
}

impl HubProcess {
    /// Writes `config` as TOML into `dir` and starts `switchboard-hub`.
    pub async fn start(config: &switchboard_hub::HubConfig, dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("hub.toml");
        std::fs::write(&path, toml::to_string(config)?)?;
        let mut child = tokio::process::Command::new(sibling_binary("switchboard-hub")?)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", hub_log_filter())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let http_url = listening_url(&mut child).await?;
        Ok(HubProcess { child, http_url })
    }

    /// The hub's pid.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Starts `hub` (the `switchboard-hub` binary) in demo mode: the demo
    /// team, and the customer simulator writing `rate` messages a minute.
    pub async fn demo(hub: &Path, dir: &Path, rate: f64) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(hub)
            .args([
                "--demo",
                "--demo-rate",
                &rate.to_string(),
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--database")
            .arg(dir.join("hub.db"))
            .env("RUST_LOG", hub_log_filter())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let http_url = listening_url(&mut child).await?;
        Ok(HubProcess { child, http_url })
    }
}

/// Reads the hub's stdout up to its "listening on" line, then keeps
/// draining it so the hub never blocks on a full pipe (forwarding it to
/// stderr when `SWITCHBOARD_BENCH_HUB_LOG` is set).
async fn listening_url(child: &mut tokio::process::Child) -> anyhow::Result<String> {
    use tokio::io::AsyncBufReadExt;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = lines.next_line().await? {
            if let Some(u) = l.strip_prefix("switchboard-hub listening on ") {
                return Ok::<_, anyhow::Error>(u.trim().to_owned());
            }
        }
        anyhow::bail!("hub exited before listening")
    })
    .await??;
    // With a log filter asked for, the hub's log (on its stdout) is the
    // point: it goes on to this process's stderr.
    let forward = std::env::var_os(HUB_LOG).is_some();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if forward {
                eprintln!("hub: {line}");
            }
        }
    });
    Ok(url)
}

/// An agent's shift, minutes: what a soak's slope is projected over.
pub const WORKING_DAY_MINUTES: f64 = 8.0 * 60.0;

/// A least-squares line through `(x, y)` points: its slope and the
/// slope's standard error, for calling a soak flat ([`Trend::is_flat`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Units of y per unit of x.
    pub slope: f64,
    /// Standard error of `slope` (NaN for fewer than three points).
    pub stderr: f64,
}

impl Trend {
    /// Fits the line (slope 0 for fewer than two points or one x).
    pub fn fit(points: &[(f64, f64)]) -> Trend {
        let n = points.len() as f64;
        if points.len() < 2 {
            return Trend {
                slope: 0.0,
                stderr: f64::NAN,
            };
        }
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        if sxx == 0.0 {
            return Trend {
                slope: 0.0,
                stderr: f64::NAN,
            };
        }
        let slope = sxy / sxx;
        let stderr = if points.len() > 2 {
            let residuals: f64 = points
                .iter()
                .map(|p| (p.1 - my - slope * (p.0 - mx)).powi(2))
                .sum();
            (residuals / (n - 2.0) / sxx).sqrt()
        } else {
            f64::NAN
        };
        Trend { slope, stderr }
    }

    /// Whether memory at `level` with this trend (both in KiB, x in
    /// minutes) is flat: the slope is within two standard errors of zero
    /// (memory that only wobbles around a level gives a slope of either
    /// sign), or too small to matter in a working day (under 1 % of
    /// `level` over 8 hours; a very smooth series has a tiny error, and
    /// a database's page cache filling up shows as a steady trickle).
    pub fn is_flat(&self, level: f64) -> bool {
        self.slope.abs() <= 2.0 * self.stderr
            || self.slope.abs() * WORKING_DAY_MINUTES < 0.01 * level
    }

    /// Whether memory with this trend falls beyond its noise: not flat,
    /// but not growth either (a soak's target is that memory does not
    /// grow).
    pub fn is_falling(&self, level: f64) -> bool {
        !self.is_flat(level) && self.slope < 0.0
    }

    /// "flat", "falling" or "not flat" (growing), for a benchmark's
    /// printout ([`Self::is_flat`], [`Self::is_falling`]).
    pub fn verdict(&self, level: f64) -> &'static str {
        if self.is_flat(level) {
            "flat"
        } else if self.is_falling(level) {
            "falling"
        } else {
            "not flat"
        }
    }
}

impl std::fmt::Display for Trend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:+.1} ± {:.1}", self.slope, self.stderr)
    }
}

/// Least-squares slope of `(x, y)` points (0 for fewer than two).
pub fn slope(points: &[(f64, f64)]) -> f64 {
    Trend::fit(points).slope
}

/// Memory samples of one process tree over a soak, `(minutes, memory)`.
#[derive(Debug, Default, Clone)]
pub struct MemorySeries(pub Vec<(f64, Memory)>);

impl MemorySeries {
    /// One line: the anonymous memory's slope (KiB/min) over the whole run
    /// and over its second half (after warm-up), with its standard error
    /// and whether that is flat ([`Trend::is_flat`]): the verdict, since a
    /// leak shows there ([`Memory::anon_kib`]); then the same for RSS, the
    /// PSS slopes, first and last RSS and anonymous memory, and
    /// [`Self::quarters`] of the anonymous memory.
    pub fn summary(&self, label: &str) -> String {
        let s = &self.0;
        let series = |f: fn(&Memory) -> u64| -> Vec<(f64, f64)> {
            s.iter().map(|(t, m)| (*t, f(m) as f64)).collect()
        };
        let (anon, rss, pss) = (
            series(|m| m.anon_kib),
            series(|m| m.rss_kib),
            series(|m| m.pss_kib),
        );
        let half = s.len() / 2;
        let mib = |m: Option<&(f64, Memory)>, f: fn(&Memory) -> u64| {
            m.map(|s| f(&s.1) as f64 / 1024.0).unwrap_or(0.0)
        };
        let late = |v: &[(f64, f64)]| {
            let trend = Trend::fit(&v[half..]);
            let level = v.last().map_or(0.0, |p| p.1);
            format!("{trend}, {}", trend.verdict(level))
        };
        format!(
            "{label}: anonymous slope {:+.1} KiB/min (second half {}); RSS slope {:+.1} KiB/min (second half {}); PSS slope {:+.1} KiB/min (second half {}); anonymous {:.1} → {:.1} MiB, RSS {:.1} → {:.1} MiB; anonymous by quarter {}",
            slope(&anon),
            late(&anon),
            slope(&rss),
            late(&rss),
            slope(&pss),
            Trend::fit(&pss[half..]),
            mib(s.first(), |m| m.anon_kib),
            mib(s.last(), |m| m.anon_kib),
            mib(s.first(), |m| m.rss_kib),
            mib(s.last(), |m| m.rss_kib),
            self.quarters(),
        )
    }

    /// The anonymous memory's median and range in each quarter of the run,
    /// in MiB: `median (min–max)`, quarters separated by `/`. Why: memory
    /// that moves in steps (the web process, docs/soak.md) can
    /// tip a one-hour slope either way; medians by quarter show whether
    /// the level itself moved.
    pub fn quarters(&self) -> String {
        let n = self.0.len();
        (0..4)
            .filter_map(|q| {
                let part = &self.0[q * n / 4..(q + 1) * n / 4];
                let mut v: Vec<u64> = part.iter().map(|(_, m)| m.anon_kib).collect();
                v.sort_unstable();
                let mib = |k: u64| k as f64 / 1024.0;
                Some(format!(
                    "{:.1} ({:.1}–{:.1})",
                    mib(*v.get(v.len() / 2)?),
                    mib(*v.first()?),
                    mib(*v.last()?)
                ))
            })
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

#[cfg(test)]
mod tests {
    use super::Trend;

    #[test]
    fn a_steady_rise_is_not_flat_and_a_wobble_is() {
        let rise: Vec<(f64, f64)> = (0..30)
            .map(|t| {
                (
                    f64::from(t),
                    100.0 + 2.0 * f64::from(t) + if t % 2 == 0 { 1.0 } else { -1.0 },
                )
            })
            .collect();
        let trend = Trend::fit(&rise);
        assert!((trend.slope - 2.0).abs() < 0.1, "{trend}");
        assert!(!trend.is_flat(100.0), "{trend}");
        assert_eq!(trend.verdict(100.0), "not flat");
        let fall: Vec<(f64, f64)> = rise.iter().map(|&(t, y)| (t, 200.0 - y)).collect();
        assert_eq!(Trend::fit(&fall).verdict(100.0), "falling");

        let wobble: Vec<(f64, f64)> = (0..30)
            .map(|t| (f64::from(t), 100.0 + [3.0, -2.0, 0.5, -1.5][t as usize % 4]))
            .collect();
        assert!(
            Trend::fit(&wobble).is_flat(100.0),
            "{}",
            Trend::fit(&wobble)
        );
    }

    #[test]
    fn a_trickle_too_small_for_a_working_day_is_flat() {
        // 1 KiB a minute, no noise, on 100 MiB: 0.47 % in 8 hours.
        let trickle: Vec<(f64, f64)> = (0..60)
            .map(|t| (f64::from(t), 102_400.0 + f64::from(t)))
            .collect();
        let trend = Trend::fit(&trickle);
        assert!(trend.stderr < 1e-6, "{trend}");
        assert!(trend.is_flat(102_400.0));
        // The same trickle on 10 MiB is 4.7 %: not flat.
        assert!(!trend.is_flat(10_240.0));
    }

    #[test]
    fn cpu_ticks_count_this_process_working() {
        let me = std::process::id();
        let before = super::tree_cpu_ticks(me);
        let t0 = std::time::Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = super::tree_cpu_ticks(me) - before;
        // 300 ms of spinning is about 30 ticks on an idle core; a busy
        // machine gives this thread less of it.
        assert!((3..=200).contains(&used), "{used} ticks");
    }

    #[test]
    fn wakeups_count_threads_that_come_and_go_within_the_window() {
        let me = std::process::id();
        let counting = std::thread::spawn(move || {
            super::count_wakeups(
                me,
                std::time::Duration::from_millis(600),
                std::time::Duration::from_millis(20),
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        // A short-lived thread that sleeps (switches) 100 times, then
        // ends after a few samples have seen it.
        std::thread::Builder::new()
            .name("wakeup-counter".into())
            .spawn(|| {
                for _ in 0..100 {
                    std::thread::sleep(std::time::Duration::from_micros(500));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            })
            .unwrap()
            .join()
            .unwrap();
        let woke = counting.join().unwrap();
        assert!(woke.total >= 100, "{woke:?} wakeups counted");
        let counter = format!("{}/wakeup-counter", super::process_name(me));
        assert!(
            woke.by_thread
                .iter()
                .any(|(name, n)| name == &counter && *n >= 100),
            "the short-lived thread is named in {woke:?}"
        );
    }

    #[test]
    fn a_soak_summary_judges_anonymous_memory() {
        use super::{Memory, MemorySeries};
        // Code pages faulted in (RSS up, anonymous flat), then the reverse.
        let series = |rss: u64, anon: u64| {
            MemorySeries(
                (0..40)
                    .map(|t| {
                        let m = Memory {
                            rss_kib: 100_000 + rss * t,
                            pss_kib: 50_000,
                            anon_kib: 20_000 + anon * t + (t % 2) * 8,
                        };
                        (t as f64, m)
                    })
                    .collect(),
            )
        };
        let code = series(50, 0).summary("code");
        assert!(
            code.starts_with("code: anonymous slope +0.0 KiB/min") && code.contains(", flat); RSS"),
            "{code}"
        );
        let leak = series(0, 50).summary("leak");
        assert!(leak.contains("not flat); RSS"), "{leak}");
    }

    #[test]
    fn quarters_give_the_median_and_range_of_each_quarter() {
        // 40 samples: a level of 30 MiB, one step up by 2 MiB at sample 26
        // and a one-sample spike in the first quarter.
        let s = super::MemorySeries(
            (0..40u64)
                .map(|t| {
                    let anon =
                        30 * 1024 + if t >= 26 { 2048 } else { 0 } + if t == 3 { 4096 } else { 0 };
                    (
                        t as f64,
                        super::Memory {
                            rss_kib: 0,
                            pss_kib: 0,
                            anon_kib: anon,
                        },
                    )
                })
                .collect(),
        );
        assert_eq!(
            s.quarters(),
            "30.0 (30.0–34.0) / 30.0 (30.0–30.0) / 30.0 (30.0–32.0) / 32.0 (32.0–32.0)"
        );
        assert_eq!(super::MemorySeries::default().quarters(), "");
        assert!(s.summary("web").ends_with("anonymous by quarter 30.0 (30.0–34.0) / 30.0 (30.0–30.0) / 30.0 (30.0–32.0) / 32.0 (32.0–32.0)"));
    }

    #[test]
    fn too_few_points_give_no_error_estimate() {
        assert_eq!(Trend::fit(&[]).slope, 0.0);
        assert!(Trend::fit(&[(0.0, 1.0), (1.0, 3.0)]).stderr.is_nan());
        assert!(!Trend::fit(&[(0.0, 1.0), (1.0, 3.0)]).is_flat(1.0));
    }
}
