//! The process heap's settings, applied once at start by every binary and benchmark harness.
//!
//! A request's queue messages are written into a few buffers of tens of kilobytes each
//! ([`crate::ingress`]) and freed together once they are queued. glibc's allocator returns the
//! top of its heap to the kernel whenever more than 128 KiB lies free there, and serves anything
//! above a threshold that starts at 128 KiB by `mmap`: after every large request the next one
//! found its memory gone and spent a third of its time in the kernel zeroing fresh pages
//! (`clear_page_erms` in the profile of the 1000-item Meta batch). Freed memory is kept instead,
//! up to [`KEEP_FREED_BYTES`]; a function's memory is reserved for it whether the heap holds it
//! or not.

/// Free memory the heap keeps before returning any to the kernel.
pub const KEEP_FREED_BYTES: usize = 64 << 20;

/// Allocations from this size up are served by `mmap` and returned on free: far above any
/// request's buffers (a 4 MB WhatsApp body's included), where keeping them is not worth it.
pub const MAP_FROM_BYTES: usize = 8 << 20;

/// Applies the settings; call it first in `main`. Does nothing where the C library is not
/// glibc (the settings are glibc's own).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` changes the allocator's parameters; glibc takes the allocator's lock
        // for it, so it is sound at any time, and both values fit a C `int`.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_FREED_BYTES as libc::c_int);
            libc::mallopt(libc::M_MMAP_THRESHOLD, MAP_FROM_BYTES as libc::c_int);
        }
    }
}
