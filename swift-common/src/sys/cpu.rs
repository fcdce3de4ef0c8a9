//! How many CPUs this process may really use: `workers = auto`.

/// CPUs in this process's affinity mask, further limited by a cgroup v2 CPU
/// quota (`cpu.max`), at least 1. Swift uses the machine's CPU count and
/// ignores both (wart 30).
pub fn usable_cpus() -> usize {
    let affinity = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|i| set.is_set(*i).unwrap_or(false))
                .count()
        })
        .unwrap_or(0);
    let affinity = if affinity == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        affinity
    };
    match cgroup_quota() {
        Some(q) => affinity.min(q).max(1),
        None => affinity.max(1),
    }
}

/// The cgroup v2 quota of this process as whole CPUs (rounded up).
fn cgroup_quota() -> Option<usize> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let max = std::fs::read_to_string(format!(
        "/sys/fs/cgroup{}/cpu.max",
        path.trim_end_matches('/')
    ))
    .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/cpu.max"))
    .ok()?;
    parse_cpu_max(&max)
}

fn parse_cpu_max(text: &str) -> Option<usize> {
    let mut it = text.split_whitespace();
    let quota: u64 = it.next()?.parse().ok()?; // "max" fails to parse: no quota
    let period: u64 = it.next()?.parse().ok()?;
    if period == 0 {
        return None;
    }
    Some(quota.div_ceil(period) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_quota_rounds_up_and_max_means_none() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("100000 100000"), Some(1));
        assert!(usable_cpus() >= 1);
    }
}
