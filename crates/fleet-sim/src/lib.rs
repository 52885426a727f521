//! Fleet simulator: N machines with software EKs and AKs that produce
//! genuine TPM structures (TPM2B_PUBLIC, TPMS_ATTEST quotes, TPMT_SIGNATURE,
//! ActivateCredential), driven with concurrency C against a running server
//! through self-register → ak-credential → ak-activate → approval (dual
//! control for every k-th machine) → challenge + attest with a quote →
//! credential-envelope config fetch → request-cert. Every answer is
//! checked; see `docs/benchmarks.md` for how to run it and what it found.

pub mod client;
mod floor;
pub mod identity;
pub mod idp;
pub mod machine;
pub mod report;
pub mod scale;
pub mod server_cpu;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};

pub use client::Api;
pub use floor::measure as crypto_floor;
pub use idp::SimIdp;
pub use report::{AttestPhase, Latency, Report, Step};
pub use scale::{run_scale, ScaleOptions, ScaleReport};
pub use server_cpu::ServerCpu;

use machine::SimMachine;

/// Why a step or the run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The simulator could not prepare (keys, HTTP client, operators).
    #[error("setup: {0}")]
    Setup(String),
    /// No HTTP answer (connection refused, timeout).
    #[error("transport: {0}")]
    Transport(String),
    /// An answer with an unexpected status.
    #[error("HTTP {status}: {detail}")]
    Status { status: u16, detail: String },
    /// An answer with the right status but wrong content.
    #[error("wrong answer: {0}")]
    Wrong(String),
}

impl SimError {
    /// The error without request-specific detail, for counting by kind.
    fn kind(&self) -> String {
        match self {
            SimError::Status { status, detail } => {
                format!(
                    "HTTP {status}: {}",
                    detail.chars().take(60).collect::<String>()
                )
            }
            other => other.to_string().chars().take(80).collect(),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub machines: usize,
    pub concurrency: usize,
    /// Every `dual_control_every`-th machine is a controlplane (two operators approve).
    pub dual_control_every: usize,
    /// Rounds per operation of the in-process crypto floor; 0 skips it.
    pub floor_rounds: u32,
    /// After the flows, every machine that completed one attests this many
    /// more times (challenge + quote), timed as its own phase; 0 skips it.
    pub attest_rounds: usize,
    /// The server's process id (same host): its CPU time per flow and per
    /// quote is reported.
    pub server_pid: Option<u32>,
    /// The machines' AK type (P-384 by default; P-256 needs the server's
    /// `ITL_AK_POLICY=standard`).
    pub ak: attest_tpm::soft::AkKind,
}

/// Runs the fleet; `progress` is called after each machine finishes.
/// The server must trust `idp` as its OIDC issuer (two simulated operators
/// approve dual-controlled machines) and have a base config for the
/// controlplane and worker-app roles.
pub async fn run(
    api: &mut Api,
    idp: &SimIdp,
    opts: &Options,
    progress: impl Fn(bool) + Sync,
) -> Result<Report, SimError> {
    let suffix = rand::random::<u32>();
    let alice = format!("sim-alice-{suffix:08x}");
    let bob = format!("sim-bob-{suffix:08x}");
    api.use_operators(idp, &[&alice, &bob])?;
    let api: &Api = api;
    let every = opts.dual_control_every.max(1);

    // Keys are made before the clock starts: the run measures the service.
    let fleet = (0..opts.machines)
        .map(|i| {
            SimMachine::with_ak(i, i % every == 0, opts.ak).map(|m| m.with_operators(&alice, &bob))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cpu = || opts.server_pid.and_then(server_cpu::cpu_ms);
    let cpu_start = cpu();
    let started = Instant::now();
    let results: Vec<(SimMachine, Vec<machine::StepResult>)> = stream::iter(fleet)
        .map(|mut m| {
            let progress = &progress;
            async move {
                let mut steps = Vec::with_capacity(Step::ALL.len());
                m.run(api, &mut steps).await;
                progress(completed(&steps));
                (m, steps)
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let wall = started.elapsed();
    let cpu_flows = cpu();
    let attest_phase = if opts.attest_rounds > 0 {
        let attested: Vec<&SimMachine> = results
            .iter()
            .filter(|(_, steps)| completed(steps))
            .map(|(m, _)| m)
            .collect();
        Some(attest_phase(api, &attested, opts).await)
    } else {
        None
    };
    let cpu_attests = cpu();

    let mut samples: BTreeMap<Step, Vec<Duration>> = BTreeMap::new();
    let mut step_errors: BTreeMap<Step, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut flows = Vec::new();
    let mut failed = 0u64;
    let mut requests = 0u64;
    for (m, steps) in &results {
        let dual = m.dual_control();
        let mut flow = Duration::ZERO;
        for (step, r) in steps {
            match r {
                Ok(d) => {
                    samples.entry(*step).or_default().push(*d);
                    requests += step.requests(dual);
                    flow += *d;
                }
                Err(e) => {
                    *step_errors.entry(*step).or_default() += 1;
                    *errors
                        .entry(format!("{}: {}", step.as_str(), e.kind()))
                        .or_default() += 1;
                }
            }
        }
        if completed(steps) {
            flows.push(flow);
        } else {
            failed += 1;
        }
    }
    let steps = Step::ALL
        .iter()
        .map(|s| {
            let mut v = samples.remove(s).unwrap_or_default();
            (
                *s,
                Latency::of(&mut v, step_errors.get(s).copied().unwrap_or(0), wall),
            )
        })
        .collect();
    let completed = flows.len() as u64;
    let flow = Latency::of(&mut flows, failed, wall);
    let floor = if opts.floor_rounds > 0 {
        Some(crypto_floor(opts.floor_rounds, opts.ak)?)
    } else {
        None
    };
    let secs = wall.as_secs_f64().max(f64::EPSILON);
    let machines_per_second = completed as f64 / secs;
    let server_cpu = ServerCpu::of_phases(
        [cpu_start, cpu_flows, cpu_attests],
        (completed, wall),
        attest_phase
            .as_ref()
            .map(|p| (p.latency.count, Duration::from_secs_f64(p.wall_seconds))),
    );
    Ok(Report {
        machines: opts.machines as u64,
        concurrency: opts.concurrency,
        wall_seconds: wall.as_secs_f64(),
        completed_flows: completed,
        failed_flows: failed,
        requests,
        requests_per_second: requests as f64 / secs,
        machines_per_second,
        steps,
        flow,
        errors,
        floor_ratio: floor
            .as_ref()
            .filter(|f| f.flows_per_second_one_core > 0.0)
            .map(|f| machines_per_second / f.flows_per_second_one_core),
        crypto_floor: floor,
        attest_phase,
        server_cpu,
    })
}

/// Every step of the flow ran and succeeded.
fn completed(steps: &[machine::StepResult]) -> bool {
    steps.len() == Step::ALL.len() && steps.iter().all(|(_, r)| r.is_ok())
}

/// `attest_rounds` more attests by each of `machines`, C at a time, as
/// one timed phase: the server's steady-state quote throughput.
async fn attest_phase(api: &Api, machines: &[&SimMachine], opts: &Options) -> AttestPhase {
    let rounds = opts.attest_rounds;
    let started = Instant::now();
    // Round by round across the fleet, so one machine's attests do not
    // run side by side and queue on its own row.
    let outcomes: Vec<Result<Duration, SimError>> = stream::iter(0..rounds)
        .flat_map(|_| stream::iter(machines.iter().copied()))
        .map(|m| m.reattest(api))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let wall = started.elapsed();
    let mut samples = Vec::with_capacity(outcomes.len());
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for outcome in outcomes {
        match outcome {
            Ok(d) => samples.push(d),
            Err(e) => *errors.entry(format!("attest: {}", e.kind())).or_default() += 1,
        }
    }
    let failed = errors.values().sum();
    let latency = Latency::of(&mut samples, failed, wall);
    AttestPhase {
        rounds,
        wall_seconds: wall.as_secs_f64(),
        quotes_per_second: latency.per_second,
        latency,
        errors,
    }
}
