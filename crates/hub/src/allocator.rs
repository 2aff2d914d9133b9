//! How the process's C allocator treats large blocks.
//!
//! Each password hash or check (argon2id, [`crate::auth`]) works in 19 MiB
//! of scratch memory. glibc serves the first block that size with `mmap`,
//! but on freeing it raises its mmap threshold to match (its "dynamic
//! threshold"), so every later hash is carved from the heap, and what is
//! freed there mostly stays with the process. A demo hub went from 48 to
//! 186 MiB RSS over 20 concurrent sign-ins (measured), and a soak's hub
//! carried 78 MiB of freed heap for good. A fixed threshold keeps large
//! blocks on `mmap`, returned to the OS when freed: 9.5 and 10.6 MiB for
//! the same start and sign-ins.

/// glibc's default threshold, fixed: blocks this large and larger are
/// mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Keeps large freed blocks from staying with the process. Call once at
/// the start of a process that runs a hub (the hub binary, and the desktop
/// app, whose demo hub runs in process). Elsewhere than glibc, nothing.
pub fn return_large_blocks_when_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only sets an allocator parameter, and any
        // threshold value is valid for it.
        #[allow(unsafe_code)]
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if ok != 1 {
            tracing::warn!("glibc refused a fixed mmap threshold; freed hashes may stay resident");
        }
    }
}
