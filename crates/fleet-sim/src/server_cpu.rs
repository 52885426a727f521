//! The server's own CPU time (user + system, from `/proc/<pid>/stat`),
//! read around each phase of a run: what the server spends per flow and
//! per verified quote, apart from the simulator's own work on the same
//! machine.

use std::time::Duration;

use serde::Serialize;

/// CPU milliseconds the process has used so far, or `None` when it cannot
/// be read (another host, no `/proc`, the process is gone).
pub fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    ticks_of(&stat).map(|ticks| ticks as f64 * 1000.0 / clock_ticks_per_second())
}

/// utime + stime of a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last
/// `)`: state is the first, utime the 12th, stime the 13th.
fn ticks_of(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `getconf CLK_TCK` (100 on every Linux this runs on; asked anyway).
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|t: &f64| *t > 0.0)
        .unwrap_or(100.0)
}

/// The server's CPU per unit of work in a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ServerCpu {
    /// Server CPU ms per completed flow (the flow phase's total ÷ flows).
    pub ms_per_flow: f64,
    /// Cores the server kept busy on average during the flow phase.
    pub cores_during_flows: f64,
    /// Server CPU ms per verified quote in the re-attest phase
    /// (challenge + attest).
    pub ms_per_quote: Option<f64>,
    /// Cores the server kept busy on average during the re-attest phase.
    pub cores_during_attests: Option<f64>,
}

impl ServerCpu {
    /// From the CPU readings (ms) at the start, after the flows and after
    /// the re-attest phase, the flows completed in their wall time, and
    /// the quotes verified in the re-attest phase's wall time (if it ran).
    /// `None` when the flows' readings are missing.
    pub fn of_phases(
        [start, after_flows, after_attests]: [Option<f64>; 3],
        (flows, flows_wall): (u64, Duration),
        attests: Option<(u64, Duration)>,
    ) -> Option<Self> {
        let (start, after_flows) = (start?, after_flows?);
        let per = |ms: f64, n: u64| ms / (n.max(1) as f64);
        let cores = |ms: f64, wall: Duration| ms / 1000.0 / wall.as_secs_f64().max(f64::EPSILON);
        let attest = attests
            .zip(after_attests)
            .map(|((n, wall), end)| (per(end - after_flows, n), cores(end - after_flows, wall)));
        Some(Self {
            ms_per_flow: per(after_flows - start, flows),
            cores_during_flows: cores(after_flows - start, flows_wall),
            ms_per_quote: attest.map(|(ms, _)| ms),
            cores_during_attests: attest.map(|(_, c)| c),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_command_name() {
        let line = "4242 (attest (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    1500 250 0 0 20 0 9 0 1000 0 0";
        assert_eq!(ticks_of(line), Some(1750));
        assert_eq!(ticks_of("garbage"), None);
    }

    #[test]
    fn per_flow_and_per_quote_figures() {
        let secs = Duration::from_secs;
        let cpu = ServerCpu::of_phases(
            [Some(1000.0), Some(3000.0), Some(4000.0)],
            (200, secs(4)),
            Some((500, secs(2))),
        )
        .unwrap();
        assert_eq!(cpu.ms_per_flow, 10.0);
        assert_eq!(cpu.cores_during_flows, 0.5);
        assert_eq!(cpu.ms_per_quote, Some(2.0));
        assert_eq!(cpu.cores_during_attests, Some(0.5));
        let unread = ServerCpu::of_phases([None, Some(1.0), None], (1, secs(1)), None);
        assert_eq!(unread, None);
    }

    #[test]
    fn the_own_process_has_used_some_cpu() {
        let spent = cpu_ms(std::process::id()).unwrap();
        assert!(spent >= 0.0);
    }
}
