//! `certs profiles|owners|teams|renewal-policies …`: list, show, create
//! (from options, or `-f FILE` with the options on top).

use std::path::PathBuf;

use attest_client::CatalogResource;
use attest_proto::certs::catalog::{CertificateProfile, Owner, RenewalPolicy, Team};
use clap::{ArgAction, Args, Subcommand};
use serde::Serialize;

use super::issuers::PageArgs;
use super::{body_from, field, object, page, CertsCtx};
use crate::error::CliResult;
use crate::output::Column;

const PROFILE_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("max ttl s", "max_ttl_seconds"),
    ("ekus", "allowed_ekus"),
    ("enabled", "enabled"),
];

const OWNER_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("email", "email"),
    ("team", "team_id"),
];

const TEAM_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("description", "description"),
];

const POLICY_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("window days", "renewal_window_days"),
    ("auto renew", "auto_renew"),
    ("max retries", "max_retries"),
    ("retry interval s", "retry_interval_seconds"),
];

/// A resource's list and show.
#[derive(Debug, Subcommand)]
pub enum Read {
    /// List them.
    List(PageArgs),
    /// Show one.
    Show {
        /// Its id.
        id: String,
    },
}

/// `-f FILE`.
#[derive(Debug, Args)]
pub struct FileArg {
    /// The body as a JSON or YAML file (`-`: stdin); options given as
    /// well override its fields.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
}

/// Certificate profile commands.
#[derive(Debug, Subcommand)]
pub enum ProfilesCmd {
    #[command(flatten)]
    Read(Read),
    /// Create a profile from a JSON or YAML file: id, name, description,
    /// allowed_key_algorithms ([{algorithm, min_size}]), max_ttl_seconds,
    /// allowed_ekus, required_san_patterns, spiffe_uri_pattern,
    /// allow_short_lived, enabled.
    #[command(after_help = "Example (web.yaml):
  id: prof-web
  name: web
  max_ttl_seconds: 2592000
  allowed_key_algorithms: [{algorithm: ECDSA, min_size: 256}]
  allowed_ekus: [serverAuth]
  required_san_patterns: ['[a-z0-9.-]+\\.example\\.com']

  attestation certs profiles create -f web.yaml")]
    Create {
        /// The profile as a JSON or YAML file (`-`: stdin).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
}

/// Owner commands.
#[derive(Debug, Subcommand)]
pub enum OwnersCmd {
    #[command(flatten)]
    Read(Read),
    /// Create an owner (name and email required).
    #[command(
        after_help = "Example:\n  attestation certs owners create --id o-ana --name Ana --email ana@example.com --team t-web"
    )]
    Create {
        #[command(flatten)]
        file: FileArg,
        /// Client-chosen id (generated from the name when absent).
        #[arg(long)]
        id: Option<String>,
        /// The owner's name.
        #[arg(long)]
        name: Option<String>,
        /// Where expiry alerts go.
        #[arg(long)]
        email: Option<String>,
        /// The owner's team id.
        #[arg(long = "team", value_name = "TEAM")]
        team: Option<String>,
    },
}

/// Team commands.
#[derive(Debug, Subcommand)]
pub enum TeamsCmd {
    #[command(flatten)]
    Read(Read),
    /// Create a team.
    #[command(after_help = "Example:\n  attestation certs teams create --id t-web --name Web")]
    Create {
        #[command(flatten)]
        file: FileArg,
        /// Client-chosen id (generated from the name when absent).
        #[arg(long)]
        id: Option<String>,
        /// The team's name.
        #[arg(long)]
        name: Option<String>,
        /// What the team does.
        #[arg(long)]
        description: Option<String>,
    },
}

/// Renewal policy commands.
#[derive(Debug, Subcommand)]
pub enum PoliciesCmd {
    #[command(flatten)]
    Read(Read),
    /// Create a renewal policy (name and max retries required).
    #[command(
        after_help = "Example:\n  attestation certs renewal-policies create --id rp-std --name standard --max-retries 3 --alert-threshold-days 30 --alert-threshold-days 7"
    )]
    Create {
        #[command(flatten)]
        file: FileArg,
        /// Client-chosen id (`rp-…`; generated when absent).
        #[arg(long)]
        id: Option<String>,
        /// The policy's name.
        #[arg(long)]
        name: Option<String>,
        /// Days before expiry to renew (1–365).
        #[arg(long = "renewal-window-days", value_name = "DAYS")]
        renewal_window_days: Option<i64>,
        /// Whether the scheduler renews automatically.
        #[arg(long = "auto-renew", action = ArgAction::Set, value_name = "true|false")]
        auto_renew: Option<bool>,
        /// Retries on failure (0–10).
        #[arg(long = "max-retries", value_name = "N")]
        max_retries: Option<i64>,
        /// Seconds between retries (60–86400).
        #[arg(long = "retry-interval-seconds", value_name = "SECONDS")]
        retry_interval_seconds: Option<i64>,
        /// Days before expiry at which to alert (repeatable).
        #[arg(long = "alert-threshold-days", value_name = "DAYS")]
        alert_thresholds_days: Vec<i64>,
    },
}

/// Runs list or show of resource `R`.
async fn read<R: CatalogResource + Serialize>(
    ctx: &CertsCtx,
    cmd: Read,
    columns: &[Column],
) -> CliResult<()> {
    match cmd {
        Read::List(p) => page(
            ctx,
            &ctx.client.catalog_list::<R>(&p.query()).await?,
            columns,
        ),
        Read::Show { id } => object(ctx, &ctx.client.catalog_get::<R>(&id).await?),
    }
}

/// `certs profiles …`.
pub async fn profiles(ctx: &CertsCtx, cmd: ProfilesCmd) -> CliResult<()> {
    match cmd {
        ProfilesCmd::Read(cmd) => read::<CertificateProfile>(ctx, cmd, PROFILE_COLUMNS).await,
        ProfilesCmd::Create { file } => {
            let body = body_from(Some(&file), vec![])?;
            object(
                ctx,
                &ctx.client
                    .catalog_create::<CertificateProfile>(&body)
                    .await?,
            )
        }
    }
}

/// `certs owners …`.
pub async fn owners(ctx: &CertsCtx, cmd: OwnersCmd) -> CliResult<()> {
    match cmd {
        OwnersCmd::Read(cmd) => read::<Owner>(ctx, cmd, OWNER_COLUMNS).await,
        OwnersCmd::Create {
            file,
            id,
            name,
            email,
            team,
        } => {
            let body = body_from(
                file.file.as_deref(),
                vec![
                    ("id", field(id)),
                    ("name", field(name)),
                    ("email", field(email)),
                    ("team_id", field(team)),
                ],
            )?;
            object(ctx, &ctx.client.catalog_create::<Owner>(&body).await?)
        }
    }
}

/// `certs teams …`.
pub async fn teams(ctx: &CertsCtx, cmd: TeamsCmd) -> CliResult<()> {
    match cmd {
        TeamsCmd::Read(cmd) => read::<Team>(ctx, cmd, TEAM_COLUMNS).await,
        TeamsCmd::Create {
            file,
            id,
            name,
            description,
        } => {
            let body = body_from(
                file.file.as_deref(),
                vec![
                    ("id", field(id)),
                    ("name", field(name)),
                    ("description", field(description)),
                ],
            )?;
            object(ctx, &ctx.client.catalog_create::<Team>(&body).await?)
        }
    }
}

/// `certs renewal-policies …`.
pub async fn policies(ctx: &CertsCtx, cmd: PoliciesCmd) -> CliResult<()> {
    match cmd {
        PoliciesCmd::Read(cmd) => read::<RenewalPolicy>(ctx, cmd, POLICY_COLUMNS).await,
        PoliciesCmd::Create {
            file,
            id,
            name,
            renewal_window_days,
            auto_renew,
            max_retries,
            retry_interval_seconds,
            alert_thresholds_days,
        } => {
            let thresholds = (!alert_thresholds_days.is_empty()).then_some(alert_thresholds_days);
            let body = body_from(
                file.file.as_deref(),
                vec![
                    ("id", field(id)),
                    ("name", field(name)),
                    ("renewal_window_days", field(renewal_window_days)),
                    ("auto_renew", field(auto_renew)),
                    ("max_retries", field(max_retries)),
                    ("retry_interval_seconds", field(retry_interval_seconds)),
                    ("alert_thresholds_days", field(thresholds)),
                ],
            )?;
            object(
                ctx,
                &ctx.client.catalog_create::<RenewalPolicy>(&body).await?,
            )
        }
    }
}
