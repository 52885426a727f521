//! `attestation-agent`: the host agent binary.
//!
//! `serve` runs the roles enabled in the configuration (`patch_api`);
//! `enroll` registers the host with the control plane and provisions the
//! certificates the patch API serves with.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use attest_domain::clock::{SharedClock, SystemClock};
use attest_host_agent::config::{AgentConfig, DEFAULT_CONFIG_PATH};
use attest_host_agent::enroll::{self, identity::Overrides, EnrollOptions};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "attestation-agent",
    version,
    about = "Host agent: the Linux patch API over mutual TLS, and enrollment into the control plane"
)]
struct Cli {
    /// Configuration file (YAML).
    #[arg(long, short, env = "ATTESTATION_AGENT_CONFIG", default_value = DEFAULT_CONFIG_PATH, global = true)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the roles enabled in the configuration.
    Serve,
    /// Enrolls this host with the manager and provisions its certificates.
    Enroll(EnrollArgs),
}

#[derive(Debug, clap::Args)]
struct EnrollArgs {
    /// Manager origin, e.g. https://manager.example.com:8443 (default: enroll.manager).
    #[arg(long)]
    manager: Option<String>,
    /// SHA-256 fingerprint of the manager's CA certificate (default:
    /// enroll.manager_ca_fingerprint). `openssl x509 -noout -fingerprint
    /// -sha256 -in ca.pem` prints it.
    #[arg(long)]
    ca_fingerprint: Option<String>,
    /// The manager's CA certificate (PEM), when the manager does not send it
    /// in its chain; must match the fingerprint.
    #[arg(long)]
    manager_ca: Option<PathBuf>,
    /// Accept the manager's CA without a pinned fingerprint on first
    /// contact, and pin it from then on. Only on a network you trust.
    #[arg(long)]
    trust_on_first_use: bool,
    /// Generate the key here and send a certificate request, so the key
    /// never leaves the host.
    #[arg(long)]
    csr: bool,
    /// Seconds between status polls (seed default: 60).
    #[arg(long, default_value_t = 60)]
    poll_interval: u64,
    /// Host name to report instead of the detected one.
    #[arg(long)]
    fqdn: Option<String>,
    /// Address to report instead of the one used to reach the manager.
    #[arg(long)]
    ip_address: Option<std::net::IpAddr>,
    /// File holding the machine id (default /etc/machine-id).
    #[arg(long)]
    machine_id_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("attestation-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("attestation-agent: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let config = AgentConfig::load(&cli.config).map_err(|e| e.to_string())?;
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command {
        Command::Serve => serve(&config, clock).await,
        Command::Enroll(args) => run_enroll(args, &config, clock).await,
    }
}

async fn serve(config: &AgentConfig, clock: SharedClock) -> Result<(), String> {
    if !config.roles.patch_api.enabled {
        return Err("no role is enabled (set roles.patch_api.enabled: true)".into());
    }
    let api = attest_host_agent::start_patch_api(config, clock)
        .await
        .map_err(|e| e.to_string())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = term.recv() => tracing::info!("terminated; stopping"),
        () = api.wait() => return Err("the patch API stopped".into()),
    }
    Ok(())
}

async fn run_enroll(
    args: EnrollArgs,
    config: &AgentConfig,
    clock: SharedClock,
) -> Result<(), String> {
    let manager = args
        .manager
        .or_else(|| config.enroll.manager.clone())
        .ok_or("--manager is required (or enroll.manager in the configuration)")?;
    let manager =
        reqwest::Url::parse(&manager).map_err(|e| format!("--manager {manager:?}: {e}"))?;
    let fingerprint = args
        .ca_fingerprint
        .or_else(|| config.enroll.manager_ca_fingerprint.clone());
    let ca_file = args
        .manager_ca
        .or_else(|| config.enroll.manager_ca_file.clone());
    let trust = enroll::trust_from(
        fingerprint.as_deref(),
        ca_file.as_deref(),
        args.trust_on_first_use,
    )
    .map_err(|e| e.to_string())?;
    let options = EnrollOptions {
        manager,
        trust,
        csr: args.csr,
        poll_interval: Duration::from_secs(args.poll_interval.max(1)),
        identity: Overrides {
            fqdn: args.fqdn,
            ip_address: args.ip_address,
            machine_id_file: args.machine_id_file,
        },
    };
    let done = enroll::enroll(&options, config, clock)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "enrolled with {} (manager CA {}); certificates written to {}; allow-list: added {:?}",
        done.manager,
        done.manager_ca_fingerprint,
        config
            .roles
            .patch_api
            .tls
            .cert_file
            .parent()
            .map_or_else(String::new, |p| p.display().to_string()),
        done.allowlisted
    );
    Ok(())
}
