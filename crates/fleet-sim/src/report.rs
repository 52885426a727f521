//! Per-step and whole-flow statistics, as a table and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// The steps of one machine's flow, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// `POST /self-register`.
    SelfRegister,
    /// `POST /machines/{id}/ak-credential` (+ ActivateCredential in software).
    AkCredential,
    /// Challenge + `POST /machines/{id}/ak-activate` with quote and secret.
    AkActivate,
    /// `POST /machines/{id}/approve` (two operators for dual control).
    Approve,
    /// Challenge + `POST /attest` with a quote.
    Attest,
    /// `GET /config/{token}` as a credential envelope, opened and checked.
    Config,
    /// Challenge + `POST /machines/{id}/request-cert` with the AK's
    /// signature over the nonce.
    RequestCert,
}

impl Step {
    /// Every step, in flow order.
    pub const ALL: [Step; 7] = [
        Step::SelfRegister,
        Step::AkCredential,
        Step::AkActivate,
        Step::Approve,
        Step::Attest,
        Step::Config,
        Step::RequestCert,
    ];

    /// HTTP requests the step sends.
    pub const fn requests(self, dual_control: bool) -> u64 {
        match self {
            Step::AkActivate | Step::Attest | Step::RequestCert => 2,
            Step::Approve if dual_control => 2,
            _ => 1,
        }
    }

    /// Display name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::SelfRegister => "self-register",
            Step::AkCredential => "ak-credential",
            Step::AkActivate => "ak-activate",
            Step::Approve => "approve",
            Step::Attest => "attest",
            Step::Config => "config",
            Step::RequestCert => "request-cert",
        }
    }
}

/// Latency summary of one step (or of whole flows), milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Completed steps per second of wall time.
    pub per_second: f64,
}

impl Latency {
    /// Summarises `samples` over `wall` seconds of run time.
    pub fn of(samples: &mut [Duration], errors: u64, wall: Duration) -> Self {
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pick = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            // Nearest-rank percentile.
            let rank = (q * samples.len() as f64).ceil() as usize;
            ms(samples[rank.clamp(1, samples.len()) - 1])
        };
        let total: Duration = samples.iter().sum();
        let count = samples.len() as u64;
        Self {
            count,
            errors,
            p50_ms: pick(0.50),
            p95_ms: pick(0.95),
            p99_ms: pick(0.99),
            max_ms: samples.last().map_or(0.0, |d| ms(*d)),
            mean_ms: if count == 0 {
                0.0
            } else {
                ms(total) / count as f64
            },
            per_second: if wall.is_zero() {
                0.0
            } else {
                count as f64 / wall.as_secs_f64()
            },
        }
    }
}

/// The cost of one flow's cryptography measured in-process (single core).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CryptoFloor {
    /// Server-side CPU per flow, by operation, milliseconds.
    pub per_flow_ms: BTreeMap<String, f64>,
    /// Sum of the above.
    pub total_ms: f64,
    /// Flows per second the cryptography alone allows on one core.
    pub flows_per_second_one_core: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub machines: u64,
    pub concurrency: usize,
    pub wall_seconds: f64,
    pub completed_flows: u64,
    pub failed_flows: u64,
    /// HTTP requests sent by completed steps.
    pub requests: u64,
    pub requests_per_second: f64,
    pub machines_per_second: f64,
    pub steps: BTreeMap<Step, Latency>,
    pub flow: Latency,
    /// `"step: error"` → count.
    pub errors: BTreeMap<String, u64>,
    pub crypto_floor: Option<CryptoFloor>,
    /// Completed flows/s ÷ crypto-only flows/s on one core.
    pub floor_ratio: Option<f64>,
    /// The re-attest phase (`--attest-rounds`), when run.
    pub attest_phase: Option<AttestPhase>,
    /// The server's CPU time per flow and per quote (`--server-pid`).
    pub server_cpu: Option<crate::ServerCpu>,
}

/// Attested machines attesting again: one challenge and one verified quote
/// each time. Latency is challenge + attest.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttestPhase {
    /// Attests per machine.
    pub rounds: usize,
    pub wall_seconds: f64,
    /// Verified quotes (successful attests) per second of the phase.
    pub quotes_per_second: f64,
    pub latency: Latency,
    /// `"attest: error"` → count.
    pub errors: BTreeMap<String, u64>,
}

impl Report {
    /// Failed flows plus failed re-attests: non-zero fails the run.
    pub fn failures(&self) -> u64 {
        self.failed_flows + self.attest_phase.as_ref().map_or(0, |p| p.latency.errors)
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} machines, concurrency {}, {:.1} s: {} flows completed, {} failed",
            self.machines,
            self.concurrency,
            self.wall_seconds,
            self.completed_flows,
            self.failed_flows
        );
        let _ = writeln!(
            out,
            "{:.1} machines/s, {:.1} requests/s\n",
            self.machines_per_second, self.requests_per_second
        );
        let _ = writeln!(
            out,
            "{:<14} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "step", "count", "errors", "per s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        let rows = self
            .steps
            .iter()
            .map(|(s, l)| (s.as_str(), l))
            .chain(std::iter::once(("whole flow", &self.flow)));
        for (name, l) in rows {
            let _ = writeln!(
                out,
                "{:<14} {:>7} {:>6} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name, l.count, l.errors, l.per_second, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
            );
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nerrors:");
            for (kind, n) in &self.errors {
                let _ = writeln!(out, "  {n:>6}  {kind}");
            }
        }
        if let Some(f) = &self.crypto_floor {
            let _ = writeln!(
                out,
                "\ncrypto floor (in-process, one core): {:.2} ms per flow = {:.0} flows/s",
                f.total_ms, f.flows_per_second_one_core
            );
            for (op, ms) in &f.per_flow_ms {
                let _ = writeln!(out, "  {ms:>8.3} ms  {op}");
            }
            if let Some(r) = self.floor_ratio {
                let _ = writeln!(
                    out,
                    "service throughput / crypto-only throughput (one core): {:.2}",
                    r
                );
            }
        }
        if let Some(p) = &self.attest_phase {
            let l = &p.latency;
            let _ = writeln!(
                out,
                "\nre-attest phase: {} attests in {:.1} s ({} per machine) = {:.1} verified quotes/s",
                l.count, p.wall_seconds, p.rounds, p.quotes_per_second
            );
            let _ = writeln!(
                out,
                "  challenge + attest p50 / p95 / p99 / max: {:.2} / {:.2} / {:.2} / {:.2} ms, {} errors",
                l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.errors
            );
            for (kind, n) in &p.errors {
                let _ = writeln!(out, "  {n:>6}  {kind}");
            }
        }
        if let Some(c) = &self.server_cpu {
            let _ = writeln!(
                out,
                "\nserver CPU: {:.2} ms per flow ({:.2} cores busy)",
                c.ms_per_flow, c.cores_during_flows
            );
            if let (Some(q), Some(cores)) = (c.ms_per_quote, c.cores_during_attests) {
                let _ = writeln!(
                    out,
                    "server CPU: {q:.3} ms per verified quote ({cores:.2} cores busy)"
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&mut samples, 2, Duration::from_secs(10));
        assert_eq!(l.count, 100);
        assert_eq!(l.errors, 2);
        assert_eq!(l.p50_ms, 50.0);
        assert_eq!(l.p95_ms, 95.0);
        assert_eq!(l.p99_ms, 99.0);
        assert_eq!(l.max_ms, 100.0);
        assert!((l.mean_ms - 50.5).abs() < 1e-9);
        assert!((l.per_second - 10.0).abs() < 1e-9);
        let empty = Latency::of(&mut [], 0, Duration::ZERO);
        assert_eq!(empty.p99_ms, 0.0);
        assert_eq!(empty.per_second, 0.0);
    }
}
