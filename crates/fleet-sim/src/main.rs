//! `attestation-fleet-sim`: drives simulated TPM machines through the whole
//! flow against a running server and reports throughput and latency.
//!
//! ```sh
//! ITL_ADMIN_TOKEN=… attestation-fleet-sim --url http://127.0.0.1:9000 \
//!     --machines 1000 --concurrency 64 --json report.json
//! ```
//! The server must trust the simulator's OIDC provider for its operators:
//! `ITL_OIDC_ISSUER=http://127.0.0.1:9901/realms/fleet-sim`,
//! `ITL_OIDC_AUDIENCE=attestation-fleet-sim` (see `--idp-listen`).
//! Exit codes: 0 every flow completed, 1 some flow failed or an answer was
//! wrong, 2 usage or set-up error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use attest_fleet_sim::{run, run_scale, Api, Options, ScaleOptions, SimError, SimIdp};
use attest_tpm::soft::AkKind;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// `--ak`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AkArg {
    P384,
    P256,
}

/// Simulated TPM machines through self-register, AK credential activation,
/// approval, attestation with quotes, encrypted config and request-cert.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Server base URL.
    #[arg(
        long,
        env = "ATTESTATION_API_URL",
        default_value = "http://127.0.0.1:9000"
    )]
    url: String,
    /// Break-glass token of the server (approvals, operator certificates).
    #[arg(
        long,
        env = "ITL_ADMIN_TOKEN",
        hide_env_values = true,
        required_unless_present = "idp_only"
    )]
    admin_token: Option<String>,
    /// Number of machines.
    #[arg(long, short = 'n', default_value_t = 200)]
    machines: usize,
    /// Machines in flight at once.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// Every k-th machine is a controlplane approved by two operators.
    #[arg(long, default_value_t = 10)]
    dual_control_every: usize,
    /// Rounds per operation of the in-process crypto floor (0: skip).
    #[arg(long, default_value_t = 50)]
    floor_rounds: u32,
    /// After the flows, each machine attests this many more times
    /// (challenge + quote), timed as a phase of its own: verified quotes/s.
    #[arg(long, default_value_t = 0)]
    attest_rounds: usize,
    /// The machines' AK: `p384` (what the seed's ak-activate accepts) or
    /// `p256` (common in real fleets; run the server with
    /// `ITL_AK_POLICY=standard`).
    #[arg(long, value_enum, default_value = "p384")]
    ak: AkArg,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress bar (for logs).
    #[arg(long)]
    quiet: bool,
    /// Scale mode: the short path (self-register → approve → attest, no
    /// quotes) for every machine, then list pages, /metrics, audit
    /// verification and server memory. Run the server without
    /// ITL_REQUIRE_NONCE / ITL_REQUIRE_QUOTE for it.
    #[arg(long)]
    scale: bool,
    /// The server's process id (same host): its CPU time per flow and per
    /// quote, and in scale mode its peak RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Where the simulated operators' OIDC provider listens; the server's
    /// ITL_OIDC_ISSUER is `http://<this>/realms/fleet-sim`.
    #[arg(long, default_value = "127.0.0.1:9901")]
    idp_listen: std::net::SocketAddr,
    /// Only run the OIDC provider: print `NAME TOKEN` for each operator
    /// named (comma-separated), then serve until stopped. For demos and
    /// scripts that need operator logins (scripts/demo-machine-flow.sh).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    idp_only: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if !args.idp_only.is_empty() {
        return idp_only(&args).await;
    }
    let token = args.admin_token.as_deref().unwrap_or_default();
    let mut api = match Api::new(&args.url, token, args.concurrency) {
        Ok(api) => api,
        Err(e) => {
            eprintln!("attestation-fleet-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(u64::try_from(args.machines).unwrap_or(u64::MAX))
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} machines {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if args.scale {
        return scale(&api, &args, &bar).await;
    }
    let opts = Options {
        machines: args.machines,
        concurrency: args.concurrency,
        dual_control_every: args.dual_control_every,
        floor_rounds: args.floor_rounds,
        attest_rounds: args.attest_rounds,
        server_pid: args.server_pid,
        ak: match args.ak {
            AkArg::P384 => AkKind::EcdsaP384,
            AkArg::P256 => AkKind::EcdsaP256,
        },
    };
    let idp = match SimIdp::start(args.idp_listen).await {
        Ok(idp) => idp,
        Err(e) => {
            eprintln!("attestation-fleet-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let failures = std::sync::atomic::AtomicU64::new(0);
    let report = run(&mut api, &idp, &opts, |ok| {
        if !ok {
            let n = failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            bar.set_message(format!("{n} failed"));
        }
        bar.inc(1);
    })
    .await;
    bar.finish_and_clear();
    conclude(report, args.json.as_deref(), |r| (r.table(), r.failures()))
}

/// `--idp-only`: tokens for the named operators, then the provider until
/// the process is stopped.
async fn idp_only(args: &Args) -> ExitCode {
    let idp = match SimIdp::start(args.idp_listen).await {
        Ok(idp) => idp,
        Err(e) => {
            eprintln!("attestation-fleet-sim: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "issuer {} (audience {})",
        idp.issuer(),
        attest_fleet_sim::idp::AUDIENCE
    );
    for name in &args.idp_only {
        match idp.token(name) {
            Ok(token) => println!("{name} {token}"),
            Err(e) => {
                eprintln!("attestation-fleet-sim: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    ExitCode::SUCCESS
}

/// `--scale`: the short path for every machine, then the reads that grow
/// with the fleet.
async fn scale(api: &Api, args: &Args, bar: &ProgressBar) -> ExitCode {
    let opts = ScaleOptions {
        machines: args.machines,
        concurrency: args.concurrency,
        server_pid: args.server_pid,
        probe_repeats: 5,
    };
    let report = run_scale(api, &opts, |_| bar.inc(1)).await;
    bar.finish_and_clear();
    conclude(report, args.json.as_deref(), |r| (r.table(), r.failed))
}

/// Prints the report's table and writes it as JSON when asked; the exit
/// code is 2 when the run or the write failed, 1 when a machine failed.
fn conclude<R: Serialize>(
    report: Result<R, SimError>,
    json: Option<&Path>,
    summary: impl Fn(&R) -> (String, u64),
) -> ExitCode {
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("attestation-fleet-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let (table, failed) = summary(&report);
    print!("{table}");
    if let Some(path) = json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!(
                "attestation-fleet-sim: cannot write {}: {e}",
                path.display()
            );
            return ExitCode::from(2);
        }
    }
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
