//! `attestation`: the server (`attestation serve`) and, in time, the operator
//! command-line client, in one binary.

use std::process::ExitCode;
use std::sync::Arc;

use attest_domain::clock::SystemClock;
use attest_server::config::{LogFormat, ProcessEnv, ServeArgs, Settings};
use clap::{Parser, Subcommand};

/// Fleet-trust control plane: TPM-attested machine registration, config
/// delivery, enrollment certificates and a hash-chained audit log.
#[derive(Debug, Parser)]
#[command(name = "attestation", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the attestation service.
    ///
    /// With no configuration it listens on 127.0.0.1:9000 with an embedded
    /// SQLite database under ./data. Secrets are read only from the
    /// environment or the config file: ITL_ADMIN_TOKEN, ITL_CA_KEY_PASSPHRASE.
    ///
    /// Example: DATABASE_URL=postgres://attest@db/attest attestation serve --listen 0.0.0.0:9000
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(&args),
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let settings = match Settings::resolve(args, &ProcessEnv) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("attestation: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_format);
    let extensions = attest_server::extensions::builtin();
    let extension_vars: Vec<&str> = extensions
        .iter()
        .flat_map(|e| e.env_vars().iter().copied())
        .collect();
    for name in Settings::unknown_env_vars(&ProcessEnv, &extension_vars) {
        tracing::warn!(variable = %name, "unknown ITL_* environment variable ignored (typo?)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("attestation: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(attest_server::serve::run(
        settings,
        Arc::new(SystemClock),
        extensions,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("attestation: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ITL_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
