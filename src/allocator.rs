//! The allocators' settings we choose. An operator's own setting in the environment
//! (`_RJEM_MALLOC_CONF`, `MALLOC_ARENA_MAX`) is applied over them.
//!
//! - Rust's allocations go to jemalloc (the binaries' global allocator), with the options in
//!   [`JEMALLOC_OPTIONS`], which jemalloc reads from the exported symbol below when it first
//!   allocates, before `main`. Measured with the load benchmark (all scenarios on SQLite, five
//!   seconds each; docs/performance.md): the process's peak resident set 202-211 MiB with
//!   jemalloc's defaults, as with mimalloc before it (207-217 MiB), of which 83 MB were
//!   allocated: jemalloc's defaults give freed pages back ten seconds later, and keep eight
//!   arenas (four per core) each with pages of its own. With an arena per core and freed
//!   pages given back after 100 ms: 159-166 MiB, at the same rates.
//!   Exchanged tokens were issued 20% faster than with mimalloc, refresh and authorization
//!   codes 5%, the rest the same.
//! - SQLite allocates with the C library's `malloc`, and glibc gives each thread that
//!   allocates an arena of its own, up to eight per core: every SQLite connection runs on a
//!   thread of its own, so each connection's page cache and statements came from an arena of
//!   their own, each keeping what it had freed. At most two arenas (one per core of the
//!   machines this is measured on): the full benchmark run on SQLite peaked at 143 MiB
//!   instead of 155, client_credentials ending at 88 MiB instead of 103, at the same rate.

/// jemalloc's options (see the module documentation):
/// - `percpu_arena:percpu`: an arena per CPU, a thread allocating from the one of the CPU it
///   runs on, rather than four per CPU, each keeping its own partly used pages;
/// - `dirty_decay_ms:100`, `muzzy_decay_ms:0`: freed pages go back to the system a tenth of
///   a second after they were last used (ten seconds by default), without a second stage;
/// - `thp:never`: no transparent huge pages where the system would otherwise give them, for
///   the same reason the previous allocator was built without them: most of a huge page
///   under a small heap stays untouched and counts as resident all the same;
/// - `tcache_max:4096`: a thread keeps freed blocks of at most 4 KiB for its next
///   allocations (32 KiB by default). Under load the runtime runs blocking work (SQLite's)
///   on some forty threads, and each kept freed buffers of up to 32 KiB of its own: full
///   benchmark runs on SQLite, alternating, peaked at 139 and 140 MiB with this against 142
///   and 145 without (134-151 in eight more runs without), at the same rates.
pub const JEMALLOC_OPTIONS: &std::ffi::CStr =
    c"percpu_arena:percpu,dirty_decay_ms:100,muzzy_decay_ms:0,thp:never,tcache_max:4096";

/// A C string pointer jemalloc can read from another thread: the options never change.
#[repr(transparent)]
pub struct OptionsPointer(*const std::ffi::c_char);

// SAFETY: points to a `'static` string that is never written.
unsafe impl Sync for OptionsPointer {}

/// jemalloc's `malloc_conf` (its symbols carry the `_rjem_` prefix in tikv-jemalloc-sys):
/// the compiled-in options string it reads once, when it first allocates. A strong
/// definition, overriding the library's own empty weak one.
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: OptionsPointer = OptionsPointer(JEMALLOC_OPTIONS.as_ptr());

/// glibc's arenas at most.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: std::ffi::c_int = 2;

/// Applies the settings that are made at run time (see the module documentation), first
/// thing in `main`.
pub fn configure() {
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
    /// One of jemalloc's options as it read them (each one read here is a word wide).
    fn option(name: &std::ffi::CStr) -> isize {
        let mut value: isize = 0;
        let mut size = std::mem::size_of::<isize>();
        // SAFETY: `opt.*_decay_ms` are `ssize_t` and `opt.tcache_max` a `size_t`, a word
        // each; `value` and `size` describe a buffer of one.
        let status = unsafe {
            tikv_jemalloc_sys::mallctl(
                name.as_ptr(),
                (&mut value as *mut isize).cast(),
                &mut size,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(status, 0, "mallctl {name:?}");
        value
    }

    #[test]
    fn jemalloc_reads_our_options() {
        if std::env::var_os("_RJEM_MALLOC_CONF").is_some() {
            return; // the operator's options are applied over ours
        }
        // Ten seconds each by default: these prove the exported string was the one read.
        assert_eq!(option(c"opt.dirty_decay_ms"), 100);
        assert_eq!(option(c"opt.muzzy_decay_ms"), 0);
        assert_eq!(option(c"opt.tcache_max"), 4096);
    }
}
