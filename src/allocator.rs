//! The allocators' settings we change, applied first thing in the binaries' `main`. An
//! operator's own setting in the environment (`MIMALLOC_PURGE_DELAY`, `MALLOC_ARENA_MAX`) is
//! left as it is.
//!
//! - Rust's allocations go to mimalloc (the binaries' global allocator). mimalloc 3 keeps
//!   freed memory for a second (`purge_delay`, 1000 ms) before giving it back to the system,
//!   so that a burst of allocations can reuse it; a server under load frees and allocates all
//!   the time, and a second of it is tens of megabytes kept resident. Measured with the load
//!   benchmark (client_credentials alone on SQLite, 6 to 8 s runs), the peak resident set:
//!   115 to 125 MiB in five runs at 1000 ms; 101 and 103 MiB at 5 and 10 ms (mimalloc 2's
//!   default), at the same rate; 91 to 93 MiB at 0 ms (give back at once), but with 10 to 15%
//!   fewer tokens a second. So 10 ms.
//! - SQLite allocates with the C library's `malloc`, and glibc gives each thread that
//!   allocates an arena of its own, up to eight per core: every SQLite connection runs on a
//!   thread of its own, so each connection's page cache and statements came from an arena of
//!   their own, each keeping what it had freed. At most two arenas (one per core of the
//!   machines this is measured on): the full benchmark run on SQLite peaked at 143 MiB
//!   instead of 155 with the purge delay alone, client_credentials ending at 88 MiB instead
//!   of 103, at the same rate.

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_t` (mimalloc.h, both
/// versions), between `eager_commit_delay` (14) and `use_numa_nodes` (16), which
/// libmimalloc-sys names and this one it does not.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with mimalloc before it goes back to the system.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// glibc's arenas at most.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: std::ffi::c_int = 2;

/// Applies the settings above (see the module documentation).
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, a plain integer it reads when it next
        // purges; valid at any time, from any thread.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` with a valid parameter, called before the process starts its
        // threads (an arena already made would stay as it is anyway).
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_set_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the default below is not what mimalloc reads then
        }
        // SAFETY: reads one of mimalloc's options.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        // mimalloc 3's default purge delay; a wrong option number would read another
        // option's default (the neighbours' are 1 and 0).
        assert_eq!(default, 1000);
    }
}
