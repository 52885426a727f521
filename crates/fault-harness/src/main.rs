//! `attestation-faults`: the fault harness at length.
//!
//! ```sh
//! cargo build --release --bin attestation --bin attestation-faults
//! target/release/attestation-faults --server-bin target/release/attestation \
//!     --json faults.json
//! ```
//! Runs as root (a tmpfs is mounted for the full disk; PostgreSQL runs as
//! `postgres`). Exit codes: 0 nothing lost or wrong, 1 a violation, 2 the
//! harness could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use attest_fault_harness::plan::{self, Plan};
use attest_fault_harness::Setup;
use clap::Parser;

/// The attestation server under faults: SIGKILL, PostgreSQL restarts, a
/// full disk and a killed replica, each under fleet-simulator load.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The `attestation` binary to run.
    #[arg(long, default_value = "target/release/attestation")]
    server_bin: PathBuf,
    /// The role base configs.
    #[arg(long, default_value = "examples/role-configs")]
    role_configs: PathBuf,
    /// SIGKILLs on SQLite.
    #[arg(long, default_value_t = Plan::at_length().sqlite_kills)]
    sqlite_kills: u32,
    /// SIGKILLs on PostgreSQL.
    #[arg(long, default_value_t = Plan::at_length().postgres_kills)]
    postgres_kills: u32,
    /// PostgreSQL restarts under load.
    #[arg(long, default_value_t = Plan::at_length().postgres_restarts)]
    postgres_restarts: u32,
    /// Skip the full-disk scenario.
    #[arg(long)]
    no_full_disk: bool,
    /// Skip the two-replica scenario.
    #[arg(long)]
    no_replicas: bool,
    /// Simulated machines in flight at once.
    #[arg(long, short = 'c', default_value_t = 8)]
    concurrency: usize,
    /// Seed of the random kill moments (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(rand::random);
    let setup = Setup {
        binary: args.server_bin.clone(),
        role_configs: args.role_configs.clone(),
        concurrency: args.concurrency,
        seed,
    };
    let at_length = Plan::at_length();
    let plan = Plan {
        sqlite_kills: args.sqlite_kills,
        postgres_kills: args.postgres_kills,
        postgres_restarts: args.postgres_restarts,
        postgres_down: at_length.postgres_down,
        full_disk: !args.no_full_disk,
        replicas: !args.no_replicas,
    };
    eprintln!("attestation-faults: seed {seed}");
    let report = match plan::run(&setup, &plan).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("attestation-faults: {e}");
            return ExitCode::from(2);
        }
    };
    let json = match serde_json::to_string_pretty(&report) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("attestation-faults: report: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{json}");
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, &json) {
            eprintln!("attestation-faults: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    let violations = report.violations();
    for v in &violations {
        eprintln!("VIOLATION {v}");
    }
    if violations.is_empty() {
        eprintln!("attestation-faults: nothing acknowledged was lost");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
