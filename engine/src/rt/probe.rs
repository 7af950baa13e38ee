//! The start-up probe: io_uring must be usable and the locked-memory limit
//! must cover every executor's I/O memory, or start-up fails with a message
//! that says what to change instead of a silent slowdown or a panic deep in
//! glommio.
#![allow(unsafe_code)]
// NOTE: this file and `hyper_glue.rs` are the only audited `unsafe` in the
// workspace: four libc calls here (getrlimit, the io_uring_setup syscall,
// setpriority, prctl), each with its safety argument beside it.

use std::fmt;

use super::IO_MEMORY;

/// Why the machine cannot run the engine.
#[derive(Debug)]
pub enum ProbeError {
    /// `io_uring_setup` failed (old kernel, seccomp, `io_uring_disabled`).
    IoUring(std::io::Error),
    /// `RLIMIT_MEMLOCK` is below what the shards need.
    Memlock {
        /// The current soft limit in bytes.
        limit: u64,
        /// What the shards need in bytes.
        needed: u64,
    },
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::IoUring(e) => write!(
                f,
                "io_uring is not available ({e}); MCMP needs Linux ≥ 5.8 with io_uring enabled \
                 (sysctl kernel.io_uring_disabled=0; in a container allow io_uring_setup, \
                 io_uring_enter and io_uring_register in the seccomp profile)"
            ),
            ProbeError::Memlock { limit, needed } => write!(
                f,
                "RLIMIT_MEMLOCK is {limit} bytes but the shards need {needed}; raise it \
                 (systemd: LimitMEMLOCK=infinity; shell: ulimit -l unlimited) or run fewer shards"
            ),
        }
    }
}

impl std::error::Error for ProbeError {}

/// Checks io_uring and `RLIMIT_MEMLOCK` for `shards` executors.
pub fn probe(shards: usize) -> Result<(), ProbeError> {
    let needed = (shards as u64) * (IO_MEMORY as u64 + (64 << 10));
    let limit = memlock_limit();
    if limit < needed {
        return Err(ProbeError::Memlock { limit, needed });
    }
    io_uring_available().map_err(ProbeError::IoUring)
}

fn memlock_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) };
    if rc != 0 || rl.rlim_cur == libc::RLIM_INFINITY {
        return u64::MAX;
    }
    rl.rlim_cur
}

fn io_uring_available() -> std::io::Result<()> {
    // struct io_uring_params is 120 bytes; zeroed means "no flags".
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup(entries, params) reads and writes at most
    // sizeof(struct io_uring_params) = 120 bytes of `params`, which is live.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 2u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor we own and close exactly once.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// The share (0.0–1.0) of the file system holding `path` that is free for
/// unprivileged writes, or `None` if it cannot be read.
pub fn free_space_fraction(path: &std::path::Path) -> Option<f64> {
    let st = statvfs(path)?;
    (st.f_blocks != 0).then(|| st.f_bavail as f64 / st.f_blocks as f64)
}

/// Bytes free for unprivileged writes on the file system holding `path`.
pub fn free_space_bytes(path: &std::path::Path) -> Option<u64> {
    let st = statvfs(path)?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// `statvfs(2)` of the file system holding `path`.
fn statvfs(path: &std::path::Path) -> Option<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data; all-zero is a valid value of it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statvfs,
    // both live for the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then_some(st)
}

/// Lowers the calling thread's scheduling priority (nice 10), for
/// background work that must yield the cores to the shards under load;
/// threads it starts afterwards inherit it. Best effort: a failure is
/// logged.
pub fn lower_this_threads_priority() {
    // SAFETY: setpriority takes plain integers and changes only the nice
    // value of the calling thread (PRIO_PROCESS with who = 0 is the
    // calling thread on Linux); no memory is passed.
    let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    if done != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(error = %e, "could not lower a background thread's priority");
    }
}

/// Turns transparent huge pages off for this process. The allocator asks
/// for them (`madvise`) on the arena it commits, so an idle server held 57
/// MiB of mostly empty huge pages, and a million queued messages 55 MiB
/// more than in small pages (`docs/PERFORMANCE.md`, "Live state"): memory
/// follows the work in flight, not 2 MiB rounding. Best effort.
pub fn no_huge_pages() {
    // SAFETY: prctl with integer arguments only; it sets this process's
    // THP mode and passes no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(error = %e, "transparent huge pages left on");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_space_of_the_current_dir_is_a_fraction() {
        let f = super::free_space_fraction(std::path::Path::new(".")).expect("statvfs works here");
        assert!((0.0..=1.0).contains(&f));
        assert!(super::free_space_fraction(std::path::Path::new("/no/such/dir")).is_none());
        assert!(super::free_space_bytes(std::path::Path::new(".")).is_some_and(|b| b > 0));
        assert!(super::free_space_bytes(std::path::Path::new("/no/such/dir")).is_none());
    }
}
