//! The two calls into the C library that the standard library does not offer, each a
//! plain system or allocator call with integer arguments. This is the crate's only
//! `unsafe` code.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;

/// Asks the kernel to start writing `file`'s dirty pages back now, without waiting
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, as `dpkg` does before its fsyncs), so that
/// the writeback of many files overlaps. Only a hint: durability still comes from the
/// fsync that follows, so a kernel or file system without it changes nothing.
pub fn start_writeback(file: &File) {
    // SAFETY: `sync_file_range` takes a file descriptor and three integers and touches no
    // memory of this process; the descriptor stays open for the call because `file` is
    // borrowed for its duration. Its result is ignored on purpose (see above).
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Makes the C allocator give every allocation of 4 MiB or more its own mapping, returned
/// to the system when freed. glibc's default raises that threshold to the size of the
/// largest block freed so far (up to 32 MiB), after which the decoders' large windows and
/// the delta references, allocated and freed blob after blob, come from the heap and leave
/// it fragmented: installing a 1 GiB package peaked at 66 MiB instead of 58 MiB. Call it
/// before anything allocates large blocks; other C libraries keep their own policy.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets an allocator parameter from two integers; glibc allows it
    // at any time, from any thread, and it does not touch memory the caller owns.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}
