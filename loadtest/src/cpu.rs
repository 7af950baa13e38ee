//! The server's CPU time, from `/proc/<pid>/stat`, so a run can be judged
//! by what each message cost the server and not only by its rate (this
//! machine's speed moves by a third from run to run; CPU per message moves
//! much less).

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`,
/// 100 on every Linux the kernel exports to user space).
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) process `pid` has used, its threads
/// included; `None` once it is gone.
pub fn seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in seconds. The command
/// name (field 2) may hold spaces and parentheses, so the fields are
/// counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state (3) … utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The server's CPU over one measured phase.
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    pid: u32,
    start: f64,
}

impl Meter {
    /// Starts measuring `pid` now; `None` if it cannot be read.
    pub fn start(pid: u32) -> Option<Meter> {
        Some(Meter {
            pid,
            start: seconds(pid)?,
        })
    }

    /// The summary's `server_cpu` object for `messages` messages: CPU
    /// seconds since the start and milliseconds per 1,000 messages.
    pub fn json(&self, messages: usize) -> serde_json::Value {
        let used = seconds(self.pid).map(|now| (now - self.start).max(0.0));
        let per_1000 = used
            .filter(|_| messages > 0)
            .map(|s| s * 1000.0 * 1000.0 / messages as f64);
        serde_json::json!({
            "pid": self.pid,
            "seconds": used.map(crate::load::summary::round2),
            "ms_per_1000_messages": per_1000.map(crate::load::summary::round2),
            "messages": messages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_after_a_name_with_spaces_and_parentheses() {
        let line = "4242 (mcmp (shard 1)) S 1 4242 4242 0 -1 4194560 2573 0 0 0 \
                    1234 567 0 0 20 0 3 0 123456 1000000 500 18446744073709551615";
        assert_eq!(parse_stat(line), Some((1234 + 567) as f64 / 100.0));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(seconds(std::process::id()).is_some());
    }
}
