//! The allocators' settings we change, called first thing in the binaries' `main`.
//!
//! Rust's allocations go to mimalloc (the binaries' global allocator). mimalloc 3 keeps freed memory for a second (`purge_delay`, 1000 ms) before giving it back
//! to the system, so that a burst of allocations can reuse it. A server under load frees and
//! allocates all the time, and a second of it is tens of megabytes kept resident. Measured
//! with the load benchmark (client_credentials alone on SQLite, 6 to 8 s runs), the peak
//! resident set: 115 to 125 MiB in five runs at 1000 ms; 101 and 103 MiB at 5 and 10 ms
//! (mimalloc 2's default), at the same rate; 91 to 93 MiB at 0 ms (give back at once), but
//! with 10 to 15% fewer tokens a second.

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_t` (mimalloc.h, both
/// versions), between `eager_commit_delay` (14) and `use_numa_nodes` (16), which
/// libmimalloc-sys names and this one it does not.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the allocator before it goes back to the system.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// glibc's arenas at most: see [`return_freed_memory_sooner`].
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: std::ffi::c_int = 2;

/// Sets how soon freed memory goes back to the system (see the module documentation), and
/// how many heaps SQLite's allocations are spread over.
///
/// SQLite allocates with the C library's `malloc`, and glibc gives each thread that
/// allocates an arena of its own, up to eight per core: every SQLite connection runs on a
/// thread of its own, so each connection's page cache and statements came from an arena of
/// their own, each keeping what it had freed. At most two arenas (one per core of the
/// machines this is measured on; the same as `MALLOC_ARENA_MAX=2`): the full benchmark run
/// on SQLite peaked at 143 MiB instead of 155 with the purge delay alone, the
/// client_credentials load ending at 88 MiB instead of 103, at the same rate.
pub fn return_freed_memory_sooner() {
    // SAFETY: sets one of mimalloc's options, a plain integer it reads when it next purges;
    // valid at any time, from any thread.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
    // SAFETY: `mallopt` with a valid parameter; called before the process starts threads,
    // and an arena already made stays as it is anyway.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_set_is_the_purge_delay() {
        // SAFETY: reads one of mimalloc's options.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        // mimalloc 3's default purge delay; a wrong option number would read another default
        // (the neighbours are 1 and 0).
        assert_eq!(default, 1000);
    }
}
