//! How the hub's processes keep memory: which allocator the hub binary
//! uses, two glibc settings made once at start ([`configure`]), and one
//! habit after work ([`FreeMemoryRelease`]), each found by a soak
//! (docs/soak.md).
//!
//! **The hub binary allocates with mimalloc on Linux** ([`HubAllocator`],
//! its `#[global_allocator]`), set up to return freed memory at once
//! ([`configure_hub_allocator`]). Under an agent's whole working day
//! (offers, replies, ends: the headless soak with `--work-every`) the hub
//! on glibc's malloc crept by 4–16 KiB a minute although its live heap
//! was level: fragmentation, the tops of glibc's heaps rising over partly
//! used pages that no trim can return. mimalloc keeps blocks of one size
//! class together, in pages of their own, and returns a page once it is
//! empty. It costs about 1 MiB more at the start. **SQLite in the hub
//! binary allocates from it too** ([`configure_sqlite_allocator`], through
//! SQLite's own memory methods): with only Rust's allocations moved, the
//! hub still rose by 0.3 MiB over an hour's first 45 minutes under the
//! desktop app (docs/soak.md, run AA), and glibc's heaps, which only SQLite
//! still used, were the part that grew in its last 17 minutes.
//! Replacing malloc process-wide (mimalloc's `override`) is not used: it
//! would replace it in every binary that links this library, the desktop
//! app with its WebKit included. The desktop app, whose demo hub runs in
//! process, stays on glibc.
//!
//! For glibc's malloc (the desktop app; SQLite in the hub):
//!
//! - **A fixed mmap threshold.** Each password hash or check (argon2id,
//!   [`crate::auth`]) works in 19 MiB of scratch memory. glibc serves the
//!   first block that size with `mmap`, but on freeing it raises its mmap
//!   threshold to match (its "dynamic threshold"), so every later hash is
//!   carved from the heap, and what is freed there mostly stays with the
//!   process. A demo hub went from 48 to 186 MiB RSS over 20 concurrent
//!   sign-ins (measured), and a soak's hub carried 78 MiB of freed heap
//!   for good. A fixed threshold keeps large blocks on `mmap`, returned to
//!   the OS when freed: 9.5 and 10.6 MiB for the same start and sign-ins.
//! - **A few arenas.** glibc gives a thread that meets a locked arena a
//!   new one, up to eight per core, and each arena keeps its own freed
//!   memory. The hub's runtime, database and hashing threads spread over
//!   seven arenas, and a hub under demo traffic kept growing by a few KiB
//!   a minute as each arena reached its own high-water mark (+1.8 KiB a
//!   minute over the second half of 30 minutes at 1,200 messages a
//!   minute). Capped at one per core (at least two), the same run stayed
//!   within 12 KiB of 3.36 MiB of anonymous memory from its fifth minute.
//!   Per-thread caches (tcache) take most allocations without the arena
//!   lock, so fewer arenas cost no measurable throughput here. The
//!   desktop app's main process goes further, to one arena
//!   ([`ArenaLimit::One`]): its second arena, used by the runtime's and
//!   SQLite's threads, still crept at its top.
//!
//! And one habit, driven by work ([`FreeMemoryRelease`]):
//!
//! - **Freed pages handed back after a burst.** glibc gives memory back
//!   on its own only from the top of a heap; a page freed in the middle,
//!   between blocks still in use, stays resident until `malloc_trim`.
//!   One `malloc_trim` through gdb took 164 KiB back from a working hub
//!   at once. So after a unit of work, at most once a minute, the process
//!   checks its memory, and if it has risen by megabytes since its low
//!   point ([`RELEASE_RISE_KIB`]), as after a flood of messages, the free
//!   pages go back. Work-driven, so an idle process never wakes for it.
//!   It used to release at every check: that only made a sawtooth of the
//!   pages work faults in again each minute, which an hour's soak read as
//!   a slope, and did not stop the creep (run Z: +4.1 KiB a minute with
//!   it; most of that was partly used pages no trim reaches).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use switchboard_protocol::Millis;

/// glibc's default threshold, fixed: blocks this large and larger are
/// mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// The glibc tunable that turns malloc's per-thread cache (tcache) off.
pub const TCACHE_OFF: &str = "glibc.malloc.tcache_count=0";

/// The tunables the desktop app's launchers set for its main process:
/// [`TCACHE_OFF`], and one arena ([`ArenaLimit::One`]).
pub const MAIN_PROCESS_TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1";

/// The environment variable glibc reads its tunables from, once, when a
/// program starts.
pub const GLIBC_TUNABLES: &str = "GLIBC_TUNABLES";

/// Set by the desktop app's launchers beside [`MAIN_PROCESS_TUNABLES`] (see
/// [`LAUNCH_ENVIRONMENT`]): says `GLIBC_TUNABLES` is for the app's main
/// process only, so the app removes both before WebKit's processes start
/// and they keep glibc's defaults.
pub const TUNED_MARKER: &str = "SWITCHBOARD_MALLOC_TUNED";

/// What the desktop app's launchers (its desktop entry in the package,
/// its start-at-login entry, `scripts/dev run`) put in its environment:
/// glibc's per-thread malloc cache (tcache) off and one malloc arena for
/// the app's main process, and [`TUNED_MARKER`] so the app removes the
/// setting again for its children.
///
/// Why without the tcache: each thread's cache holds up to seven freed
/// blocks of each small size, which its arena counts as in use, so they
/// never merge with their neighbours; with the async runtime freeing on
/// one thread what another allocated, the heaps' tops rose over such
/// blocks by a few KiB a minute while the live heap was level (heaptrack:
/// 644 KB for 13 minutes). The headless agent at twenty times the desktop
/// soak's pace grew +3.4 to +4.8 KiB a minute with it, and was level from
/// its fourth minute without it (docs/soak.md, "The main process").
///
/// Why in the launchers and not by the app itself: glibc reads its
/// tunables only as a program starts, so the app would have to execute
/// itself again, and loading its 169 libraries twice made the cold start
/// 1.25x the bare window's instead of 1.10x (docs/soak.md). Started some
/// other way (a terminal), the app runs with glibc's defaults but for
/// the arena limit, which [`configure`] sets as its first step. The
/// tunable also covers a thread that allocates before that step: when
/// the step ran after WebKit's set-up, a second arena was seen.
pub const LAUNCH_ENVIRONMENT: [(&str, &str); 2] =
    [(GLIBC_TUNABLES, MAIN_PROCESS_TUNABLES), (TUNED_MARKER, "")];

/// How many malloc arenas a process may use ([`configure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArenaLimit {
    /// One per core, at least two: the hub binary, whose runtime,
    /// database and hashing threads all allocate at a rate where one
    /// arena's lock would be contended.
    PerCore,
    /// One, shared by every thread: the desktop app's main process. Its
    /// runtime, SQLite and D-Bus threads allocate little, and a second
    /// arena of their own crept at its top while what they held in it was
    /// level (a fast soak, docs/soak.md "S7"). Sharing the main heap,
    /// their churn is served from its free space, which GTK's and
    /// WebKit's work keeps at about a megabyte.
    One,
}

impl ArenaLimit {
    /// The number of arenas, the main one included.
    pub fn arenas(self) -> usize {
        match self {
            ArenaLimit::PerCore => {
                std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
            }
            ArenaLimit::One => 1,
        }
    }
}

/// Sets the allocator up so freed memory does not stay with the process.
/// Call first thing in a process that runs a hub (the hub binary, and the
/// desktop app, whose demo hub runs in process), before other threads
/// start: a thread keeps the arena it was first given. Elsewhere than
/// glibc, nothing: other allocators return large blocks on their own.
pub fn configure(arenas: ArenaLimit) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = i32::try_from(arenas.arenas()).unwrap_or(i32::MAX);
        // SAFETY: `mallopt` only sets allocator parameters, and any
        // threshold or arena count is valid for it.
        #[allow(unsafe_code)]
        let ok = unsafe {
            (
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                libc::mallopt(libc::M_ARENA_MAX, arenas),
            )
        };
        if ok != (1, 1) {
            tracing::warn!(
                ?ok,
                "glibc refused an allocator setting; freed memory may stay resident"
            );
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// The hub binary's allocator on Linux, for everything Rust allocates
/// (its `#[global_allocator]`; C code, SQLite, stays on the C allocator
/// under [`configure`]). See the module docs for why.
#[cfg(target_os = "linux")]
pub type HubAllocator = mimalloc::MiMalloc;

/// The [`HubAllocator`] value for `#[global_allocator]`.
#[cfg(target_os = "linux")]
pub const HUB_ALLOCATOR: HubAllocator = mimalloc::MiMalloc;

/// mimalloc's option numbers (`mi_option_t` in the vendored
/// `mimalloc.h`, v2 series; `Cargo.lock` pins the version).
#[cfg(target_os = "linux")]
mod mi_option {
    pub const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    pub const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
}

/// Sets the [`HubAllocator`] up to hand freed memory back to the OS at
/// once: arenas committed on demand (not eagerly, mimalloc's default on
/// Linux) and freed pages purged with no delay. Either alone is not
/// enough: a delayed purge runs only when the thread that freed
/// allocates again, and a hashing thread goes idle; an eagerly committed
/// arena is only reset, which stays resident. Call before anything
/// allocates: the first allocation reserves the first arena, and Rust's
/// runtime allocates before `main` (the hub binary runs this as a
/// constructor).
#[cfg(target_os = "linux")]
pub fn configure_hub_allocator() {
    // SAFETY: setting an option has no precondition; these two are
    // read when memory is next reserved or freed.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(mi_option::ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(mi_option::PURGE_DELAY, 0);
    }
}

/// Why SQLite refused to allocate from the hub's allocator.
#[derive(Debug, thiserror::Error)]
#[error("SQLite refused the hub's allocator (code {0}); it keeps the C allocator")]
pub struct SqliteAllocatorRefused(pub i32);

/// Routes SQLite's own allocations (its page caches, statements, schema:
/// the hub's C allocations) to the [`HubAllocator`], so one allocator,
/// set up to return freed memory, holds all the hub's heap. On glibc
/// they were what was left of the hub's glibc heaps, which kept creeping
/// under the desktop app's work (docs/soak.md, run AA).
///
/// SQLite takes a memory-methods table only before it initialises, so
/// this must run before the first connection opens: the hub binary calls
/// it from the same constructor as [`configure_hub_allocator`]. Later, it
/// is refused and SQLite keeps the C allocator (an error, no harm).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn configure_sqlite_allocator() -> Result<(), SqliteAllocatorRefused> {
    use libsqlite3_sys as ffi;
    use std::os::raw::{c_int, c_void};

    // SQLite asks for sizes as `int`; a negative one never comes (it
    // checks first), and 0 still gets a unique pointer from mimalloc.
    unsafe extern "C" fn malloc(n: c_int) -> *mut c_void {
        // SAFETY: any size is valid for mi_malloc.
        unsafe { libmimalloc_sys::mi_malloc(usize::try_from(n).unwrap_or(0)) }
    }
    unsafe extern "C" fn free(p: *mut c_void) {
        // SAFETY: SQLite frees only what `malloc`/`realloc` gave it.
        unsafe { libmimalloc_sys::mi_free(p) }
    }
    unsafe extern "C" fn realloc(p: *mut c_void, n: c_int) -> *mut c_void {
        // SAFETY: as for `free`; `p` is ours.
        unsafe { libmimalloc_sys::mi_realloc(p, usize::try_from(n).unwrap_or(0)) }
    }
    unsafe extern "C" fn size(p: *mut c_void) -> c_int {
        // SAFETY: as for `free`; `p` is ours.
        let n = unsafe { libmimalloc_sys::mi_usable_size(p) };
        c_int::try_from(n).unwrap_or(c_int::MAX)
    }
    extern "C" fn roundup(n: c_int) -> c_int {
        // SQLite's own rule: a multiple of 8.
        n.saturating_add(7) & !7
    }
    extern "C" fn init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }
    extern "C" fn shutdown(_: *mut c_void) {}

    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(malloc),
        xFree: Some(free),
        xRealloc: Some(realloc),
        xSize: Some(size),
        xRoundup: Some(roundup),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLite copies the table before returning; every function
    // in it has the signature SQLite calls it with.
    let rc = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const ffi::sqlite3_mem_methods,
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(SqliteAllocatorRefused(rc))
    }
}

/// How often, at most, [`FreeMemoryRelease`] checks whether to hand freed
/// pages back.
pub const RELEASE_PERIOD: Duration = Duration::from_secs(60);

/// Whether a release is due at `now`, the last one having run at `last`
/// (`None`: never). A clock that went back counts as due, so a wall-clock
/// step cannot stop releases for good.
pub fn release_due(last: Option<Millis>, now: Millis, period: Duration) -> bool {
    let period = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
    match last {
        None => true,
        Some(last) => now.0 < last.0 || now.0.saturating_sub(last.0) >= period,
    }
}

/// How far the process's anonymous memory must have risen above its low
/// point since the last release before another is worth it, KiB: four
/// times what the desktop app at work holds free in its heaps (about
/// 1 MiB between its two arenas, read through `malloc_stats`).
///
/// Releasing at every due check, whatever there was, cost an hour's soak
/// its flat line: each release took back about 100 KiB of pages that the
/// next 30 s of work faulted in again, a sawtooth on a one-minute period
/// that, sampled once a minute, drifted in and out of phase and read as a
/// slope. What a release is for is a burst (a flood of messages, a big
/// history page) that leaves megabytes free between live blocks; a burst
/// raises the process's resident memory by that much first.
pub const RELEASE_RISE_KIB: u64 = 4 * 1024;

/// Whether a rise to `now_kib` from a low point of `low_kib` is worth a
/// release.
pub fn worth_releasing(low_kib: u64, now_kib: u64) -> bool {
    now_kib.saturating_sub(low_kib) >= RELEASE_RISE_KIB
}

/// The process's resident anonymous memory, KiB (`RssAnon`); `None`
/// where it cannot be read (then nothing is released).
pub fn anonymous_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Hands the allocator's free pages back to the OS after work, at most
/// once per period, and only after the process's memory has risen by
/// [`RELEASE_RISE_KIB`] above its low point since the last release.
/// Shared by the threads that do the work: one of them wins each due
/// check.
#[derive(Debug)]
pub struct FreeMemoryRelease {
    period: Duration,
    /// When the last check ran (ms since the epoch); [`NEVER`]: never.
    last: AtomicI64,
    /// The lowest anonymous memory seen at a check, or after the last
    /// release, KiB ([`UNKNOWN`]: not read yet).
    low_kib: AtomicU64,
    checks: AtomicU64,
    releases: AtomicU64,
}

/// [`FreeMemoryRelease::last`] before the first check.
const NEVER: i64 = i64::MIN;

/// [`FreeMemoryRelease::low_kib`] before a reading.
const UNKNOWN: u64 = u64::MAX;

impl FreeMemoryRelease {
    /// Checks at most once per `period`; the process's memory now is the
    /// first low point.
    pub fn new(period: Duration) -> Self {
        FreeMemoryRelease {
            period,
            last: AtomicI64::new(NEVER),
            low_kib: AtomicU64::new(anonymous_kib().unwrap_or(UNKNOWN)),
            checks: AtomicU64::new(0),
            releases: AtomicU64::new(0),
        }
    }

    /// Call after a unit of work done at `now`: if a check is due, reads
    /// the process's memory and, if it has risen far enough above its low
    /// point, hands the allocator's free pages back. Returns whether this
    /// call released.
    pub fn after_work(&self, now: Millis) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        let last_at = (last != NEVER).then_some(Millis(last));
        if !release_due(last_at, now, self.period) {
            return false;
        }
        // Another thread may have seen the same due check: one wins.
        if self
            .last
            .compare_exchange(last, now.0, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.checks.fetch_add(1, Ordering::Relaxed);
        let Some(before) = anonymous_kib() else {
            return false;
        };
        let low = self.low_kib.load(Ordering::Relaxed).min(before);
        if !worth_releasing(low, before) {
            self.low_kib.store(low, Ordering::Relaxed);
            return false;
        }
        let started = std::time::Instant::now();
        let released = release_free_memory();
        let after = anonymous_kib().unwrap_or(before);
        self.low_kib.store(after, Ordering::Relaxed);
        self.releases.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            before,
            after,
            released,
            took_us = started.elapsed().as_micros() as u64,
            "handed freed heap pages back"
        );
        true
    }

    /// How many due checks have run (at most one per period, after work).
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// How many of them released.
    pub fn releases(&self) -> u64 {
        self.releases.load(Ordering::Relaxed)
    }
}

impl Default for FreeMemoryRelease {
    fn default() -> Self {
        FreeMemoryRelease::new(RELEASE_PERIOD)
    }
}

/// Hands every whole free page inside the allocator's heaps back to the
/// OS now (glibc `malloc_trim(0)`, which walks every arena, not only the
/// top of the main heap). Returns whether any memory went back. Elsewhere
/// than glibc: nothing, `false` (other allocators return pages on their
/// own schedule).
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only returns free memory to the OS; it
        // takes each arena's lock and is safe to call from any thread.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        released == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_release_is_due_first_then_once_a_period() {
        assert!(release_due(None, Millis(0), MINUTE));
        assert!(!release_due(Some(Millis(1_000)), Millis(1_000), MINUTE));
        assert!(!release_due(Some(Millis(1_000)), Millis(60_999), MINUTE));
        assert!(release_due(Some(Millis(1_000)), Millis(61_000), MINUTE));
    }

    #[test]
    fn a_clock_that_went_back_makes_a_release_due() {
        assert!(release_due(Some(Millis(100_000)), Millis(5_000), MINUTE));
    }

    #[test]
    fn work_checks_at_most_once_a_period() {
        let release = FreeMemoryRelease::new(MINUTE);
        release.after_work(Millis(10_000));
        assert_eq!(release.checks(), 1);
        release.after_work(Millis(10_001));
        release.after_work(Millis(69_999));
        assert_eq!(release.checks(), 1);
        release.after_work(Millis(70_000));
        assert_eq!(release.checks(), 2);
        assert!(release.releases() <= release.checks());
    }

    #[test]
    fn only_a_rise_of_megabytes_is_worth_releasing() {
        assert!(!worth_releasing(30_000, 30_000));
        assert!(!worth_releasing(30_000, 29_000));
        assert!(!worth_releasing(30_000, 31_024));
        assert!(!worth_releasing(30_000, 30_000 + RELEASE_RISE_KIB - 1));
        assert!(worth_releasing(30_000, 30_000 + RELEASE_RISE_KIB));
        assert!(worth_releasing(30_000, 50_000));
    }

    /// Set in the child process that runs the check on its own.
    const ALONE: &str = "SWITCHBOARD_ALLOCATOR_TEST_ALONE";

    /// 20 MiB freed between live blocks stays resident until released,
    /// then goes back at the next due check after work; with little left
    /// free, the check after that does not release. Run in a process of its
    /// own (this test binary, started again for this one test), so that no
    /// other test's allocations or releases land between the measurements.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_pages_between_live_blocks_go_back_when_released() {
        if std::env::var_os(ALONE).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "allocator::tests::freed_pages_between_live_blocks_go_back_when_released",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ALONE, "1")
                .output()
                .unwrap();
            let log = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{log}");
            assert!(log.contains("1 passed"), "the check did not run: {log}");
            return;
        }
        fn anon_kib() -> i64 {
            anonymous_kib().expect("RssAnon readable") as i64
        }
        const MIB: i64 = 1024;
        // 4 KiB blocks: on the heap (under any mmap threshold), too big
        // for glibc's per-thread caches.
        let release = FreeMemoryRelease::new(MINUTE);
        let blocks: Vec<Vec<u8>> = (0..5 * 1024).map(|i| vec![i as u8 | 1; 4096]).collect();
        // A live block above them: the heap's top cannot shrink past it.
        let pin = vec![1u8; 4096];
        let in_use = anon_kib();
        drop(blocks);
        let freed = anon_kib();
        assert!(
            in_use - freed < 4 * MIB,
            "freed pages between live blocks stay resident: {in_use} KiB in use, {freed} KiB after free"
        );
        let started = std::time::Instant::now();
        assert!(
            release.after_work(Millis(0)),
            "a burst's freed memory was not released"
        );
        let took = started.elapsed();
        let released = anon_kib();
        // Back near the low point: the next due check leaves pages be.
        assert!(
            !release.after_work(Millis(60_000)),
            "released again at {} KiB",
            anon_kib()
        );
        assert_eq!((release.checks(), release.releases()), (2, 1));
        // A figure, not a gate: what one release costs.
        println!(
            "release with 20 MiB freed: {took:?}, {} KiB back",
            freed - released
        );
        assert!(
            freed - released >= 16 * MIB,
            "20 MiB freed, {} KiB went back ({freed} -> {released} KiB)",
            freed - released
        );
        drop(pin);
    }
}
