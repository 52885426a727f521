//! `attestation serve`: runs the service in the foreground.

use std::process::ExitCode;
use std::sync::Arc;

use attest_domain::clock::SystemClock;
use attest_server::config::{LogFormat, ProcessEnv, ServeArgs, Settings};

/// Runs the service until SIGTERM / Ctrl-C.
pub fn serve(args: &ServeArgs) -> ExitCode {
    let settings = match Settings::resolve(args, &ProcessEnv) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("attestation: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_format);
    let extensions = crate::builtin::extensions();
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
