//! `attestation`: the server (`attestation serve`) and the operator
//! command-line client, in one binary.
//!
//! Executables named `attestation-<name>` on PATH are plugins, run as
//! `attestation <name> …` (see `docs/cli-plugins.md`).

mod backup;
mod builtin;
mod client;
mod commands;
mod error;
mod output;
mod plugins;
mod serve;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use attest_server::config::ServeArgs;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::client::{api_client, http_client};
use crate::commands::audit::AuditCmd;
use crate::commands::auth::AuthCmd;
use crate::commands::certs::CertsArgs;
use crate::commands::extensions::ExtensionsCmd;
use crate::commands::host::HostCmd;
use crate::commands::machine::MachineCmd;
use crate::commands::secret::SecretCmd;
use crate::commands::shared_secret::SharedSecretCmd;
use crate::commands::webhook::WebhookCmd;
use crate::commands::Ctx;
use crate::error::{CliError, CliResult};
use crate::output::{Format, Printer};

const EXAMPLES: &str = "Examples:
  attestation --url https://attest.example:9000 auth login --username alice
  attestation machine list --status pending_approval
  attestation machine approve 6f1c… --role worker-app --hostname node-1
  attestation host list --status pending
  attestation audit verify
  attestation secret create 6f1c… --name disk-key --value-stdin
  attestation webhook add --url https://hooks.example/a --events machine.approved
  attestation completions bash > /etc/bash_completion.d/attestation
  attestation backup /var/backups/attestation-2026-05-14
  CERTCTL_API_KEY=… attestation certs certificates list --status Active

Exit codes: 0 ok, 1 local failure (or a broken audit chain), 2 usage,
3 authentication/authorisation (HTTP 401/403), 4 other HTTP 4xx,
5 HTTP 5xx or no connection.";

/// Fleet-trust control plane: TPM-attested machine registration, config
/// delivery, enrollment certificates and a hash-chained audit log.
#[derive(Debug, Parser)]
#[command(name = "attestation", version, about, long_about = None, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options of every client command.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Base URL of the attestation API.
    #[arg(
        long,
        global = true,
        env = "ATTESTATION_API_URL",
        default_value = "http://localhost:9000",
        value_name = "URL"
    )]
    url: String,
    /// Bearer token (OIDC access token or the break-glass token); the
    /// cached `auth login` token when absent.
    #[arg(
        long,
        global = true,
        env = "ATTESTATION_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Extra root CA certificate(s) (PEM) to trust for TLS.
    #[arg(long = "ca-cert", global = true, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// Output format.
    #[arg(
        long,
        short = 'o',
        global = true,
        value_enum,
        default_value_t = Format::Table,
        value_name = "FORMAT"
    )]
    output: Format,
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
    /// Take a consistent backup of the database and the data directory's
    /// keys while the server may be running (same settings as `serve`).
    ///
    /// SQLite: an online snapshot; PostgreSQL: `pg_dump`. The backup is a
    /// directory (see `docs/reliability.md`, "Backups").
    #[command(after_help = "Example:\n  attestation backup /var/backups/attestation-2026-05-14")]
    Backup(backup::BackupArgs),
    /// Restore a backup into the database and data directory the settings
    /// name; refuses to overwrite data unless --force. Stop the server first.
    #[command(
        after_help = "Example:\n  attestation restore /var/backups/attestation-2026-05-14 --data-dir /srv/attestation"
    )]
    Restore(backup::RestoreArgs),
    /// Check a backup: file checksums, schema version, audit chain, CA key
    /// passphrase. Exits 1 if any check fails.
    #[command(
        name = "verify-backup",
        after_help = "Example:\n  ITL_CA_KEY_PASSPHRASE=… attestation verify-backup /var/backups/attestation-2026-05-14"
    )]
    VerifyBackup(backup::VerifyBackupArgs),
    /// Log in, log out, show the current identity.
    #[command(
        subcommand,
        after_help = "Example:\n  attestation auth login --username alice"
    )]
    Auth(AuthCmd),
    /// List, approve, revoke, lock and unlock machines.
    #[command(subcommand, after_help = "Example:\n  attestation machine list")]
    Machine(MachineCmd),
    /// List, approve, deny and remove host agents enrolling (patch API).
    #[command(
        subcommand,
        after_help = "Example:\n  attestation host list --status pending"
    )]
    Host(HostCmd),
    /// Read and verify the hash-chained audit log and its signed checkpoints.
    #[command(subcommand, after_help = "Example:\n  attestation audit verify")]
    Audit(AuditCmd),
    /// Machine secrets (secret_vault extension): create, list, get, delete.
    #[command(
        subcommand,
        after_help = "Example:\n  attestation secret create 6f1c… --name disk-key --value s3cr3t"
    )]
    Secret(SecretCmd),
    /// Shared secrets (secret_vault extension) and their access lists.
    #[command(
        subcommand,
        name = "shared-secret",
        after_help = "Example:\n  attestation shared-secret grant prod-k8s-join-token --machines 6f1c…,9bac…"
    )]
    SharedSecret(SharedSecretCmd),
    /// Webhooks (webhooks extension): register, change, test, history.
    #[command(
        subcommand,
        after_help = "Example:\n  attestation webhook add --url https://example.com/hooks/attestation --events machine.approved,machine.revoked --secret my-signing-secret"
    )]
    Webhook(WebhookCmd),
    /// The certificate-lifecycle API (certctl's, on its own listener):
    /// API keys, issuers and CAs, profiles, owners, teams, renewal
    /// policies, certificates, audit.
    ///
    /// Its own connection options: --certs-url (ITL_CERTS_URL), --api-key
    /// (CERTCTL_API_KEY; else the --token / `auth login` token), --ca-file
    /// (ITL_CERTS_CA_FILE, e.g. <data_dir>/certs-tls/ca.pem).
    #[command(after_help = "Examples:
  attestation certs bootstrap --token-file /run/secrets/certctl-bootstrap --actor admin-alice
  export CERTCTL_API_KEY=… ITL_CERTS_CA_FILE=/srv/attestation/certs-tls/ca.pem
  attestation certs certificates renew mc-api --key-out api.key")]
    Certs(CertsArgs),
    /// Show the server's loaded extensions.
    #[command(subcommand, after_help = "Example:\n  attestation extensions list")]
    Extensions(ExtensionsCmd),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  attestation completions zsh > ~/.zfunc/_attestation")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// A plugin: `attestation-<name>` on PATH.
    #[command(external_subcommand)]
    Plugin(Vec<OsString>),
}

fn main() -> ExitCode {
    let mut plugins = plugins::discover(std::env::var_os("PATH").as_deref());
    let mut command = Cli::command();
    // Built-in commands win over plugins of the same name.
    let builtins: BTreeSet<String> = command
        .get_subcommands()
        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_all_aliases()))
        .map(str::to_string)
        .chain(["help".to_string()])
        .collect();
    plugins.retain(|name, _| !builtins.contains(name));
    if let Some(section) = plugins::help_section(&plugins) {
        command = command.after_help(format!("{section}\n{EXAMPLES}"));
    }
    let matches = command.get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    match cli.command {
        Command::Serve(args) => serve::serve(&args),
        Command::Backup(args) => backup::run(&args.settings, |settings| {
            backup::backup(settings, args.dir)
        }),
        Command::Restore(args) => backup::run(&args.settings, |settings| {
            backup::restore(settings, args.dir, args.force)
        }),
        Command::VerifyBackup(args) => backup::run(&args.settings, |settings| {
            backup::verify_backup(settings, args.dir)
        }),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "attestation",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        command => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("attestation: cannot start the async runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(client_command(cli.global, command)) {
                Ok(code) => code,
                Err(err) => err.report(),
            }
        }
    }
}

/// Runs a command that talks to a server (or to the OIDC issuer).
async fn client_command(global: GlobalArgs, command: Command) -> CliResult<ExitCode> {
    if let Command::Certs(args) = command {
        let fallback = commands::certs::Fallback {
            token: global.token,
            ca_cert: global.ca_cert.as_deref(),
            format: global.output,
        };
        commands::certs::run(args, fallback).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let http = http_client(global.ca_cert.as_deref())?;
    let printer = Printer::new(global.output);
    let needs_token = match &command {
        Command::Auth(AuthCmd::Login(_) | AuthCmd::Logout) | Command::Extensions(_) => false,
        Command::Secret(cmd) => cmd.needs_token(),
        _ => true,
    };
    let token = match global.token.filter(|t| !t.is_empty()) {
        Some(token) => Some(token),
        None if needs_token => commands::auth::cached_token(&http).await?,
        None => None,
    };
    let ctx = Ctx {
        client: api_client(&global.url, token.clone(), http.clone()),
        printer,
    };
    match command {
        Command::Machine(cmd) => commands::machine::run(&ctx, cmd).await?,
        Command::Host(cmd) => commands::host::run(&ctx, cmd).await?,
        Command::Audit(cmd) => commands::audit::run(&ctx, cmd).await?,
        Command::Extensions(cmd) => commands::extensions::run(&ctx, cmd).await?,
        Command::Secret(cmd) => commands::secret::run(&ctx, cmd).await?,
        Command::SharedSecret(cmd) => commands::shared_secret::run(&ctx, cmd).await?,
        Command::Webhook(cmd) => commands::webhook::run(&ctx, cmd).await?,
        Command::Auth(cmd) => commands::auth::run(cmd, &http, token, printer).await?,
        Command::Plugin(args) => {
            let Some((name, rest)) = args.split_first() else {
                return Err(CliError::Usage("missing command".into()));
            };
            let name = name.to_string_lossy();
            return plugins::run(
                &name,
                rest,
                &global.url,
                token.as_deref(),
                global.ca_cert.as_deref(),
            );
        }
        Command::Serve(_)
        | Command::Certs(_)
        | Command::Backup(_)
        | Command::Restore(_)
        | Command::VerifyBackup(_)
        | Command::Completions { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}
