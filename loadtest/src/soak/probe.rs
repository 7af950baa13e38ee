//! What the soak measures of the server from outside: its memory from
//! `/proc/<pid>/status` and the size of its data dir, walked file by file.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// The server's memory, in bytes, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident set size.
    pub rss: Option<u64>,
    /// `RssAnon`: its anonymous part (heap, stacks), without mapped files.
    pub rss_anon: Option<u64>,
    /// `VmHWM`: the peak resident set size so far (since the last
    /// [`reset_peak`]).
    pub rss_peak: Option<u64>,
}

/// Starts `VmHWM` of process `pid` again from its current RSS (writes `5`
/// to `/proc/<pid>/clear_refs`, Linux 4.0 on; the process's owner or
/// root): read before each reset, it is the peak between two samples,
/// whatever instant the samples fall on. Whether it could.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Reads the memory of process `pid`; every field is `None` once the
/// process is gone (a zombie has no `VmRSS` line either).
pub fn memory(pid: u32) -> Memory {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => parse_status(&status),
        Err(_) => Memory::default(),
    }
}

/// Parses the `VmRSS`, `RssAnon` and `VmHWM` lines of a
/// `/proc/<pid>/status` text.
pub fn parse_status(status: &str) -> Memory {
    Memory {
        rss: status_bytes(status, "VmRSS"),
        rss_anon: status_bytes(status, "RssAnon"),
        rss_peak: status_bytes(status, "VmHWM"),
    }
}

/// The value of a `Key:   1234 kB` line of `/proc/<pid>/status`, in bytes
/// (the kernel's "kB" is KiB).
pub fn status_bytes(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let mut words = rest.split_whitespace();
        let n: u64 = words.next()?.parse().ok()?;
        let mult = match words.next() {
            Some("kB") => 1024,
            None => 1,
            Some(_) => return None,
        };
        n.checked_mul(mult)
    })
}

/// The size of a directory tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirSize {
    /// Sum of the files' lengths (`ls -l`, `du --apparent-size`).
    pub bytes: u64,
    /// Sum of the blocks allocated to them (`du`): `st_blocks × 512`.
    pub allocated: u64,
    /// Regular files counted.
    pub files: u64,
}

/// Walks `root` (without following symlinks) and adds up its regular
/// files. Entries that vanish during the walk (a WAL segment deleted, a
/// table compacted away) are skipped: the walk is a snapshot of a live
/// directory, not an atomic one.
pub fn dir_size(root: &Path) -> DirSize {
    let mut size = DirSize::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                size.bytes += meta.len();
                size.allocated += meta.blocks() * 512;
                size.files += 1;
            }
        }
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tmcmp\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t4242\n\
        VmPeak:\t 2345678 kB\nVmHWM:\t  150000 kB\nVmRSS:\t  123456 kB\n\
        RssAnon:\t  100000 kB\nRssFile:\t   23456 kB\nRssShmem:\t       0 kB\nThreads:\t9\n";

    #[test]
    fn proc_status_lines_parse_to_bytes() {
        let m = parse_status(STATUS);
        assert_eq!(m.rss, Some(123_456 * 1024));
        assert_eq!(m.rss_anon, Some(100_000 * 1024));
        assert_eq!(m.rss_peak, Some(150_000 * 1024));
        // A key must match whole: `VmRSS` is not `VmRSSx`, `RssFile` not `Rss`.
        assert_eq!(status_bytes("VmRSSx:\t1 kB\n", "VmRSS"), None);
        assert_eq!(status_bytes(STATUS, "Rss"), None);
        assert_eq!(status_bytes(STATUS, "Threads"), Some(9));
        assert_eq!(status_bytes("VmRSS:\tlots kB\n", "VmRSS"), None);
        assert_eq!(status_bytes("VmRSS:\t1 MB\n", "VmRSS"), None);
        // A zombie's status has no VmRSS line.
        assert_eq!(
            parse_status("Name:\tmcmp\nState:\tZ (zombie)\n"),
            Memory::default()
        );
    }

    #[test]
    fn our_own_process_has_a_resident_set() {
        let m = memory(std::process::id());
        assert!(m.rss.is_some_and(|r| r > 0), "{m:?}");
        assert_eq!(memory(u32::MAX), Memory::default());
    }

    #[test]
    fn a_directory_tree_adds_up_lengths_and_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), vec![1u8; 10_000]).expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/b"), vec![2u8; 5_000]).expect("write");
        // A sparse file: long, but (nearly) nothing allocated.
        let sparse = std::fs::File::create(dir.path().join("sub/sparse")).expect("create");
        sparse.set_len(64 << 20).expect("set_len");
        let size = dir_size(dir.path());
        assert_eq!(size.files, 3);
        assert_eq!(size.bytes, 15_000 + (64 << 20));
        assert!(size.allocated >= 15_000, "{size:?}");
        assert!(size.allocated < 64 << 20, "{size:?}");
        assert_eq!(dir_size(&dir.path().join("missing")), DirSize::default());
    }

    #[test]
    fn the_peak_starts_again_from_the_current_rss() {
        // A process that stays as it is while it is looked at: `sleep`,
        // once it sleeps (after exec and its loader).
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        let pid = child.id();
        let asleep = || {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            comm.trim() == "sleep" && stat.rsplit(')').next().is_some_and(|r| r.starts_with(" S"))
        };
        let t0 = std::time::Instant::now();
        while !asleep() && t0.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let before = memory(pid);
        assert!(before.rss_peak >= before.rss, "VmHWM is at least VmRSS");
        assert!(reset_peak(pid), "clear_refs is writable by the owner");
        let after = memory(pid);
        child.kill().expect("kill");
        let _ = child.wait();
        assert!(after.rss.is_some());
        assert_eq!(
            after.rss_peak, after.rss,
            "the peak is the RSS at the reset"
        );
    }
}
