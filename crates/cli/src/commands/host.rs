//! `attestation host …`: host agents enrolling into the control plane
//! (`attestation-agent enroll` asks; an operator decides here).

use attest_client::HostListQuery;
use attest_proto::host_enroll::HostDecisionRequest;
use clap::Subcommand;

use super::Ctx;
use crate::error::CliResult;
use crate::output::Column;

const LIST_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("status", "status"),
    ("fqdn", "fqdn"),
    ("ip address", "ip_address"),
    ("machine id", "machine_id"),
    ("key on host", "key_on_host"),
    ("requested at", "requested_at"),
    ("expires at", "expires_at"),
];

/// Host enrollment commands.
#[derive(Debug, Subcommand)]
pub enum HostCmd {
    /// List host enrollment requests, oldest first.
    #[command(after_help = "Example:\n  attestation host list --status pending")]
    List {
        /// Only requests in this status: pending, approved, denied,
        /// enrolled or removed.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one request.
    #[command(after_help = "Example:\n  attestation host show 3f2a…")]
    Show {
        /// Request id (UUID, from `host list`).
        id: String,
    },
    /// Approve a pending request: the host's next poll receives its
    /// certificate (and key, unless it sent a CSR).
    #[command(after_help = "Example:\n  attestation host approve 3f2a…")]
    Approve {
        /// Request id (UUID).
        id: String,
    },
    /// Deny a pending request: the host stops enrolling.
    #[command(after_help = "Example:\n  attestation host deny 3f2a… --reason \"unknown host\"")]
    Deny {
        /// Request id (UUID).
        id: String,
        /// Note recorded with the decision and in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Remove an enrolled host: its certificate is revoked and listed in
    /// the enrollment CRL.
    #[command(after_help = "Example:\n  attestation host remove 3f2a… --reason decommissioned")]
    Remove {
        /// Request id (UUID).
        id: String,
        /// Note recorded in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Runs a host command.
pub async fn run(ctx: &Ctx, cmd: HostCmd) -> CliResult<()> {
    let c = &ctx.client;
    let p = &ctx.printer;
    match cmd {
        HostCmd::List { status } => p.list(
            &c.list_hosts(&HostListQuery { status }).await?,
            LIST_COLUMNS,
        ),
        HostCmd::Show { id } => p.object(&c.host(&id).await?),
        HostCmd::Approve { id } => p.object(&c.approve_host(&id).await?),
        HostCmd::Deny { id, reason } => {
            p.object(&c.deny_host(&id, &HostDecisionRequest { reason }).await?)
        }
        HostCmd::Remove { id, reason } => {
            p.object(&c.remove_host(&id, &HostDecisionRequest { reason }).await?)
        }
    }
}
