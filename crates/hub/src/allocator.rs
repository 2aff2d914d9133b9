//! How the process's C allocator keeps memory: two glibc settings, made
//! once at start ([`configure`]), each found by a soak (README,
//! Performance 6).
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
