//! How the hub's processes keep memory: which allocator the hub binary
//! uses, two glibc settings made once at start ([`configure`]), and one
//! habit after work ([`FreeMemoryRelease`]), each found by a soak
//! (README, Performance 6).
//!
//! **The hub binary allocates with mimalloc on Linux** ([`HubAllocator`],
//! its `#[global_allocator]`), set up to return freed memory at once
//! ([`configure_hub_allocator`]). Under an agent's whole working day
//! (offers, replies, ends: the headless soak with `--work-every`) the hub
//! on glibc's malloc crept by 4–16 KiB a minute although its live heap
//! was level: fragmentation, the tops of glibc's heaps rising over partly
//! used pages that no trim can return. mimalloc keeps blocks of one size
//! class together, in pages of their own, and returns a page once it is
//! empty. It costs about 1 MiB more at the start. It does not stop
//! everything: under the desktop app the hub still rose by 0.3 MiB over
//! an hour's first 45 minutes (README, run AA). C code in the hub
//! (SQLite) still allocates with glibc's malloc: replacing malloc
//! process-wide (mimalloc's `override`) would replace it in every binary
//! that links this library, the desktop app with its WebKit included. The
//! desktop app, whose demo hub runs in process, stays on glibc.
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
//!   lock, so fewer arenas cost no measurable throughput here.
//!
//! And one habit, driven by work ([`FreeMemoryRelease`]):
//!
//! - **Freed pages handed back now and then.** glibc gives memory back
//!   on its own only from the top of a heap; a page freed in the middle,
//!   between blocks still in use, stays resident until `malloc_trim`. A
//!   hub under an agent's work (replies, ends, new offers) crept by 6–8
//!   KiB a minute although its live heap was flat (heaptrack: −55 KiB
//!   net between its 8th and 16th minute), and one `malloc_trim` through
//!   gdb took 164 KiB back at once. So after a unit of work, at most once a
//!   minute, the free pages go back: work-driven, so an idle process
//!   never wakes for it. It does not stop that creep (run Z: +4.1 KiB a
//!   minute with it): most of it is partly used pages under the heaps'
//!   rising tops, which no trim reaches. What it does is return memory
//!   freed between live blocks, as after a burst of work.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use switchboard_protocol::Millis;

/// glibc's default threshold, fixed: blocks this large and larger are
/// mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// How many malloc arenas the process may use: one per core, at least two.
pub fn arena_limit() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Sets the allocator up so freed memory does not stay with the process.
/// Call first thing in a process that runs a hub (the hub binary, and the
/// desktop app, whose demo hub runs in process), before other threads
/// start. Elsewhere than glibc, nothing: other allocators return large
/// blocks on their own.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = i32::try_from(arena_limit()).unwrap_or(i32::MAX);
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

/// How often, at most, [`FreeMemoryRelease`] hands freed pages back.
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

/// Hands the allocator's free pages back to the OS after work, at most
/// once per period. Shared by the threads that do the work: one of them
/// wins each due release.
#[derive(Debug)]
pub struct FreeMemoryRelease {
    period: Duration,
    /// When the last release ran (ms since the epoch); [`NEVER`]: never.
    last: AtomicI64,
    releases: AtomicU64,
}

/// [`FreeMemoryRelease::last`] before the first release.
const NEVER: i64 = i64::MIN;

impl FreeMemoryRelease {
    /// Releases at most once per `period`.
    pub fn new(period: Duration) -> Self {
        FreeMemoryRelease {
            period,
            last: AtomicI64::new(NEVER),
            releases: AtomicU64::new(0),
        }
    }

    /// Call after a unit of work done at `now`: releases free pages if a
    /// release is due. Returns whether this call released.
    pub fn after_work(&self, now: Millis) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        let last_at = (last != NEVER).then_some(Millis(last));
        if !release_due(last_at, now, self.period) {
            return false;
        }
        // Another thread may have seen the same due release: one wins.
        if self
            .last
            .compare_exchange(last, now.0, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let started = std::time::Instant::now();
        let released = release_free_memory();
        self.releases.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            released,
            took_us = started.elapsed().as_micros() as u64,
            "handed freed heap pages back"
        );
        true
    }

    /// How many releases have run.
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
    fn work_releases_at_most_once_a_period() {
        let release = FreeMemoryRelease::new(MINUTE);
        assert!(release.after_work(Millis(10_000)));
        assert!(!release.after_work(Millis(10_001)));
        assert!(!release.after_work(Millis(69_999)));
        assert!(release.after_work(Millis(70_000)));
        assert_eq!(release.releases(), 2);
    }

    /// Set in the child process that runs the check on its own.
    const ALONE: &str = "SWITCHBOARD_ALLOCATOR_TEST_ALONE";

    /// 20 MiB freed between live blocks stays resident until released,
    /// then goes back. Run in a process of its own (this test binary,
    /// started again for this one test), so that no other test's
    /// allocations or releases land between the measurements.
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
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        }
        const MIB: i64 = 1024;
        // 4 KiB blocks: on the heap (under any mmap threshold), too big
        // for glibc's per-thread caches.
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
        assert!(release_free_memory(), "nothing went back");
        let took = started.elapsed();
        let released = anon_kib();
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
