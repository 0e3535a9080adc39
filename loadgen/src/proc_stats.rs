//! CPU time and resident memory of a process, from Linux's /proc.

use std::time::Duration;

use anyhow::Context;

/// `USER_HZ`: the unit of /proc/<pid>/stat's CPU times (100 on every Linux we run on).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time used so far (user + system).
pub struct Usage {
    ticks: u64,
}

impl Usage {
    pub fn of(pid: u32) -> anyhow::Result<Usage> {
        Usage::read(&format!("/proc/{pid}/stat"))
    }

    pub fn of_self() -> anyhow::Result<Usage> {
        Usage::read("/proc/self/stat")
    }

    fn read(path: &str) -> anyhow::Result<Usage> {
        let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("unexpected /proc stat format")?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line; the first after the name is field 3.
        let field = |n: usize| -> anyhow::Result<u64> {
            fields.get(n).context("short /proc stat line")?.parse().context("unreadable CPU time")
        };
        Ok(Usage { ticks: field(11)? + field(12)? })
    }

    /// Cores kept busy on average since `earlier`, over `window` of wall time.
    pub fn cores_since(&self, earlier: &Usage, window: Duration) -> f64 {
        let seconds = self.ticks.saturating_sub(earlier.ticks) as f64 / TICKS_PER_SECOND;
        seconds / window.as_secs_f64().max(f64::EPSILON)
    }
}

/// Resident set size in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS in /proc status")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let before = Usage::of_self().unwrap();
        let mut spin = 0u64;
        for i in 0..20_000_000u64 {
            spin = spin.wrapping_add(i * i);
        }
        assert_ne!(std::hint::black_box(spin), 1);
        assert!(Usage::of_self().unwrap().ticks >= before.ticks);
        assert!(rss_kib(std::process::id()).unwrap() > 1000, "a running test binary is over 1 MiB");
    }
}
