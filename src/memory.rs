//! Process memory: the peak resident set a benchmark row reports.

/// Peak resident memory from a starting point on. On Linux the kernel's high-water mark is
/// reset at the start (`/proc/self/clear_refs`), so each row reports its own peak; elsewhere
/// it is the process's peak so far.
pub struct PeakRss;

impl PeakRss {
    pub fn start() -> PeakRss {
        // Writing 5 resets VmHWM to the current RSS; if it fails the peak is the process's.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        PeakRss
    }

    pub fn peak_bytes(&self) -> u64 {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                return kb * 1024;
            }
        }
        max_rss()
    }
}

#[cfg(unix)]
fn max_rss() -> u64 {
    // SAFETY: getrusage writes only into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    let units = if cfg!(target_os = "macos") { 1 } else { 1024 };
    usage.ru_maxrss as u64 * units
}

#[cfg(not(unix))]
fn max_rss() -> u64 {
    0
}
