//! Scale mode: register and attest many machines (self-register → approve
//! → attest, the short path without quotes), then measure what grows with
//! the fleet: machine-list pages, `/metrics`, audit verification over the
//! resulting log, and the server's memory.
//!
//! Machines are made as the run goes (an [`Identity`] each: one P-256 EK,
//! no AK), so 100,000 of them never sit in memory at once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use attest_client::{ApproveBody, ClientError, MachineListQuery};
use attest_proto::machine::MachineStatus;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::client::{check, expect, As};
use crate::identity::Identity;
use crate::machine::registered as registered_status;
use crate::report::Latency;
use crate::{Api, SimError};

/// What to run.
#[derive(Debug, Clone)]
pub struct ScaleOptions {
    pub machines: usize,
    pub concurrency: usize,
    /// The server's process id, to read its memory from `/proc` (same host).
    pub server_pid: Option<u32>,
    /// How often each probe is repeated (its median is reported).
    pub probe_repeats: usize,
}

/// One read measured after the fleet is in.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Probe {
    pub name: String,
    pub path: String,
    pub median_ms: f64,
    pub max_ms: f64,
}

/// The scale report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScaleReport {
    pub machines: u64,
    pub concurrency: usize,
    pub wall_seconds: f64,
    pub attested: u64,
    pub failed: u64,
    pub machines_per_second: f64,
    pub self_register: Latency,
    pub approve: Latency,
    pub attest: Latency,
    pub errors: BTreeMap<String, u64>,
    pub probes: Vec<Probe>,
    pub audit_entries: u64,
    pub audit_verify_ms: f64,
    pub audit_entries_per_second: f64,
    /// `VmHWM` of the server, kB (its peak resident set).
    pub server_peak_rss_kb: Option<u64>,
    /// `VmRSS` of the server at the end, kB.
    pub server_rss_kb: Option<u64>,
}

/// One machine's short path; the three step durations, or the step and error.
async fn one(api: &Api, index: usize) -> Result<[Duration; 3], (&'static str, SimError)> {
    let id = Identity::new(index, false).map_err(|e| ("setup", e))?;
    let machine = api.r#as(As::Machine).map_err(|e| ("setup", e))?;
    let admin = api.r#as(As::Admin).map_err(|e| ("setup", e))?;
    let registered = async {
        let res = machine.self_register(&id.register_request()).await?;
        expect(&res, 200)?;
        check(
            res.body.status == MachineStatus::PendingApproval,
            &res,
            "status",
        )?;
        Ok::<_, SimError>(res)
    }
    .await
    .map_err(|e| ("self-register", e))?;
    let approved = async {
        let body = ApproveBody::from(id.approve_request());
        let res = admin.approve(&registered.body.machine_id, &body).await?;
        expect(&res, 200)?;
        check(registered_status(&res.body), &res, "status")?;
        Ok::<_, SimError>(res)
    }
    .await
    .map_err(|e| ("approve", e))?;
    let attested = async {
        let res = machine.attest(&id.attest_request()).await?;
        expect(&res, 200)?;
        check(res.body.status == MachineStatus::Attested, &res, "status")?;
        Ok::<_, SimError>(res)
    }
    .await
    .map_err(|e| ("attest", e))?;
    Ok([registered.elapsed, approved.elapsed, attested.elapsed])
}

/// Registers and attests `opts.machines` machines, then probes.
pub async fn run_scale(
    api: &Api,
    opts: &ScaleOptions,
    progress: impl Fn(bool) + Sync,
) -> Result<ScaleReport, SimError> {
    let started = Instant::now();
    let results: Vec<Result<[Duration; 3], (&'static str, SimError)>> =
        stream::iter(0..opts.machines)
            .map(|i| {
                let progress = &progress;
                async move {
                    let r = one(api, i).await;
                    progress(r.is_ok());
                    r
                }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
    let wall = started.elapsed();

    let mut steps: [Vec<Duration>; 3] = Default::default();
    let mut errors = BTreeMap::new();
    for r in &results {
        match r {
            Ok(d) => {
                for (samples, d) in steps.iter_mut().zip(d) {
                    samples.push(*d);
                }
            }
            Err((step, e)) => {
                let kind: String = e.to_string().chars().take(80).collect();
                *errors.entry(format!("{step}: {kind}")).or_default() += 1;
            }
        }
    }
    let attested = steps[2].len() as u64;
    let failed = results.len() as u64 - attested;
    let [mut reg, mut appr, mut att] = steps;

    let total = u64::try_from(opts.machines).unwrap_or(u64::MAX).max(1);
    let per_page = 100;
    let last_page = total.div_ceil(per_page);
    let mut probes = Vec::new();
    let page = |page: u64, status: Option<&str>| {
        let query = MachineListQuery {
            status: status.map(str::to_owned),
            role: None,
            page: i64::try_from(page).ok(),
            per_page: i64::try_from(per_page).ok(),
        };
        let filter = status.map(|s| format!("status={s}&")).unwrap_or_default();
        let path = format!("/api/v1/machines?{filter}page={page}&per_page={per_page}");
        (path, ProbeOf::Machines(query))
    };
    for (name, (path, what)) in [
        ("machines page 1", page(1, None)),
        ("machines middle page", page(last_page.div_ceil(2), None)),
        ("machines last page", page(last_page, None)),
        ("machines filtered by status", page(1, Some("attested"))),
        (
            "metrics",
            ("/metrics".to_owned(), ProbeOf::Text("/metrics")),
        ),
    ] {
        probes.push(probe(api, name, &path, &what, opts.probe_repeats).await?);
    }

    let verify_started = Instant::now();
    let res = api.r#as(As::Admin)?.audit_verify().await?;
    let verify = verify_started.elapsed();
    if res.status != 200 || !res.body.valid {
        return Err(SimError::Wrong(format!("audit verify: {}", res.raw)));
    }
    let audit_entries = u64::try_from(res.body.entries).unwrap_or(0);

    let (server_peak_rss_kb, server_rss_kb) = match opts.server_pid {
        Some(pid) => proc_memory(pid),
        None => (None, None),
    };
    Ok(ScaleReport {
        machines: opts.machines as u64,
        concurrency: opts.concurrency,
        wall_seconds: wall.as_secs_f64(),
        attested,
        failed,
        machines_per_second: attested as f64 / wall.as_secs_f64().max(f64::EPSILON),
        self_register: Latency::of(&mut reg, 0, wall),
        approve: Latency::of(&mut appr, 0, wall),
        attest: Latency::of(&mut att, 0, wall),
        errors,
        probes,
        audit_entries,
        audit_verify_ms: verify.as_secs_f64() * 1000.0,
        audit_entries_per_second: audit_entries as f64 / verify.as_secs_f64().max(f64::EPSILON),
        server_peak_rss_kb,
        server_rss_kb,
    })
}

/// What a probe reads: a page of the typed machine list, or a text
/// endpoint (Prometheus `/metrics`).
enum ProbeOf {
    Machines(MachineListQuery),
    Text(&'static str),
}

/// Median and maximum of `repeats` reads of `what`, reported as `path`
/// (operator credentials).
async fn probe(
    api: &Api,
    name: &str,
    path: &str,
    what: &ProbeOf,
    repeats: usize,
) -> Result<Probe, SimError> {
    let mut times = Vec::new();
    let admin = api.r#as(As::Admin)?;
    for _ in 0..repeats.max(1) {
        let res = match what {
            ProbeOf::Machines(query) => admin.list_machines(query).await.map(|r| r.map(|_| ())),
            ProbeOf::Text(text_path) => admin.get_text(text_path).await.map(|r| r.map(|_| ())),
        }
        .map_err(|e| match e {
            ClientError::Status { status, body, .. } => SimError::Status {
                status,
                detail: format!("{path}: {}", body.chars().take(200).collect::<String>()),
            },
            other => other.into(),
        })?;
        if res.status != 200 {
            return Err(SimError::Status {
                status: res.status,
                detail: format!("{path}: {}", res.raw.chars().take(200).collect::<String>()),
            });
        }
        times.push(res.elapsed);
    }
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Probe {
        name: name.to_owned(),
        path: path.to_owned(),
        median_ms: ms(times[times.len() / 2]),
        max_ms: times.last().map_or(0.0, |d| ms(*d)),
    })
}

/// `(VmHWM, VmRSS)` in kB from `/proc/<pid>/status`.
fn proc_memory(pid: u32) -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    (field("VmHWM:"), field("VmRSS:"))
}

impl ScaleReport {
    /// The human-readable summary.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scale: {} machines, concurrency {}, {:.1} s: {} attested, {} failed ({:.1} machines/s)",
            self.machines,
            self.concurrency,
            self.wall_seconds,
            self.attested,
            self.failed,
            self.machines_per_second
        );
        let _ = writeln!(
            out,
            "\n{:<28} {:>9} {:>9} {:>9} {:>9}",
            "step", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for (name, l) in [
            ("self-register", &self.self_register),
            ("approve", &self.approve),
            ("attest", &self.attest),
        ] {
            let _ = writeln!(
                out,
                "{name:<28} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
            );
        }
        let _ = writeln!(out, "\n{:<28} {:>9} {:>9}", "read", "median ms", "max ms");
        for p in &self.probes {
            let _ = writeln!(out, "{:<28} {:>9.2} {:>9.2}", p.name, p.median_ms, p.max_ms);
        }
        let _ = writeln!(
            out,
            "\naudit verify: {} entries in {:.1} ms = {:.0} entries/s",
            self.audit_entries, self.audit_verify_ms, self.audit_entries_per_second
        );
        if let Some(peak) = self.server_peak_rss_kb {
            let _ = writeln!(
                out,
                "server memory: peak {:.1} MB, now {:.1} MB",
                peak as f64 / 1024.0,
                self.server_rss_kb.unwrap_or(0) as f64 / 1024.0
            );
        }
        for (kind, n) in &self.errors {
            let _ = writeln!(out, "error ×{n}: {kind}");
        }
        out
    }
}
