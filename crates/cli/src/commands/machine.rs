//! `attestation machine …`: the machine lifecycle.

use std::io::Write;
use std::path::PathBuf;

use attest_client::{Approval, ApproveBody, ImportBody, MachineListQuery};
use attest_proto::machine::{LockRequest, RevokeRequest};
use clap::{Args, Subcommand};

use super::Ctx;
use crate::error::{CliError, CliResult};
use crate::output::{write_stdout, Column, Format};

const LIST_COLUMNS: &[Column] = &[
    ("machine id", "machine_id"),
    ("status", "status"),
    ("role", "role"),
    ("hostname", "hostname"),
    ("assigned ip", "assigned_ip"),
    ("registered at", "registered_at"),
];

const APPROVAL_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("operator", "operator_cn"),
    ("role", "role"),
    ("hostname", "hostname"),
    ("assigned ip", "assigned_ip"),
    ("created at", "created_at"),
    ("expires at", "expires_at"),
    ("consumed", "consumed"),
];

/// Machine lifecycle commands.
#[derive(Debug, Subcommand)]
pub enum MachineCmd {
    /// List machines, oldest registration first.
    #[command(
        after_help = "Example:\n  attestation machine list --status pending_approval --per-page 20"
    )]
    List(ListArgs),
    /// Show every stored detail of one machine.
    #[command(after_help = "Example:\n  attestation machine show 6f1c…")]
    Show {
        /// Machine UUID.
        id: String,
    },
    /// Approve a machine: assign role, hostname and IP.
    ///
    /// For a dual-controlled role the first vote answers "pending second
    /// approval"; a second operator completes it.
    #[command(
        after_help = "Example:\n  attestation machine approve 6f1c… --role worker-app --hostname node-1 --assigned-ip 10.0.1.11/24"
    )]
    Approve {
        /// Machine UUID.
        id: String,
        /// Role: controlplane, worker-infra, worker-app or generic.
        #[arg(long)]
        role: String,
        /// Kubernetes node hostname (RFC 1123).
        #[arg(long)]
        hostname: Option<String>,
        /// Static address in CIDR notation.
        #[arg(long = "assigned-ip", value_name = "CIDR")]
        assigned_ip: Option<String>,
    },
    /// Revoke a machine, optionally wiping it at its next attestation.
    #[command(
        after_help = "Example:\n  attestation machine revoke 6f1c… --reason \"disk stolen\" --wipe"
    )]
    Revoke {
        /// Machine UUID.
        id: String,
        /// Note recorded in the audit log.
        #[arg(long)]
        reason: Option<String>,
        /// The next attestation answers `wipe`.
        #[arg(long)]
        wipe: bool,
    },
    /// Lock a machine temporarily (undo with unlock).
    #[command(after_help = "Example:\n  attestation machine lock 6f1c… --reason maintenance")]
    Lock {
        /// Machine UUID.
        id: String,
        /// Note recorded in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Unlock a locked machine.
    #[command(after_help = "Example:\n  attestation machine unlock 6f1c…")]
    Unlock {
        /// Machine UUID.
        id: String,
    },
    /// List the dual-control votes of a machine.
    #[command(after_help = "Example:\n  attestation machine approvals 6f1c…")]
    Approvals {
        /// Machine UUID.
        id: String,
    },
    /// Fetch an air-gap bundle (config token, MachineConfig, enrollment
    /// certificate and key). Any earlier config token stops working.
    ///
    /// The bundle holds secrets: with --out it is written with mode 0600;
    /// without, it goes to stdout as JSON (or YAML).
    #[command(
        after_help = "Example:\n  attestation machine offline-bundle 6f1c… --out node-1.bundle.json"
    )]
    OfflineBundle {
        /// Machine UUID.
        id: String,
        /// Write the bundle (JSON) to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Import a machine from an offline USB-agent receipt (idempotent).
    #[command(
        after_help = "Example:\n  attestation machine import --ek-fingerprint a3f1…7e8f --role worker-app --hw-mac 52:54:00:12:34:56"
    )]
    Import(ImportArgs),
}

/// `machine list` filters and paging.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only machines in this status (e.g. pending_approval, attested).
    #[arg(long)]
    status: Option<String>,
    /// Only machines with this role.
    #[arg(long)]
    role: Option<String>,
    /// Page number, 1-based.
    #[arg(long)]
    page: Option<u32>,
    /// Machines per page (max 200).
    #[arg(long = "per-page")]
    per_page: Option<u32>,
}

/// `machine import` fields, as on the receipt.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// SHA-256 (64 hex) or SHA-384 (96 hex) EK fingerprint.
    #[arg(long = "ek-fingerprint", value_name = "HEX")]
    ek_fingerprint: String,
    /// Role (default worker-app).
    #[arg(long)]
    role: Option<String>,
    /// Use this UUID for a new machine.
    #[arg(long = "machine-id")]
    machine_id: Option<String>,
    /// SMBIOS system UUID.
    #[arg(long = "hw-uuid")]
    hw_uuid: Option<String>,
    /// Primary NIC MAC address.
    #[arg(long = "hw-mac")]
    hw_mac: Option<String>,
    /// SMBIOS serial number.
    #[arg(long = "hw-serial")]
    hw_serial: Option<String>,
    /// SMBIOS product name.
    #[arg(long = "hw-product")]
    hw_product: Option<String>,
    /// cert, pub or offline-import.
    #[arg(long = "ek-source")]
    ek_source: Option<String>,
    /// File with the EK certificate or public key (PEM or DER); sent
    /// base64-encoded and checked against the fingerprint.
    #[arg(long = "ek-cert", value_name = "FILE")]
    ek_cert: Option<PathBuf>,
}

/// Runs a machine command.
pub async fn run(ctx: &Ctx, cmd: MachineCmd) -> CliResult<()> {
    let c = &ctx.client;
    let p = &ctx.printer;
    match cmd {
        MachineCmd::List(args) => {
            let query = MachineListQuery {
                status: args.status,
                role: args.role,
                page: args.page.map(i64::from),
                per_page: args.per_page.map(i64::from),
            };
            p.list(&c.list_machines(&query).await?, LIST_COLUMNS)
        }
        MachineCmd::Show { id } => p.object(&c.machine(&id).await?),
        MachineCmd::Approve {
            id,
            role,
            hostname,
            assigned_ip,
        } => {
            let body = ApproveBody {
                role,
                hostname,
                assigned_ip,
            };
            let res = c.approve(&id, &body).await?;
            if matches!(res.body, Approval::Pending(_)) && p.format == Format::Table {
                eprintln!("first vote recorded: a second operator must approve the same role, hostname and IP");
            }
            match &res.body {
                Approval::Approved(detail) => p.object(&res.with_body(detail)),
                Approval::Pending(pending) => p.object(&res.with_body(pending)),
            }
        }
        MachineCmd::Revoke { id, reason, wipe } => {
            p.object(&c.revoke(&id, &RevokeRequest { wipe, reason }).await?)
        }
        MachineCmd::Lock { id, reason } => p.object(&c.lock(&id, &LockRequest { reason }).await?),
        MachineCmd::Unlock { id } => p.object(&c.unlock(&id).await?),
        MachineCmd::Approvals { id } => p.list(&c.approvals(&id).await?, APPROVAL_COLUMNS),
        MachineCmd::OfflineBundle { id, out } => {
            let res = c.offline_bundle(&id).await?;
            match out {
                Some(path) => {
                    write_private(&path, res.raw.as_bytes())?;
                    eprintln!(
                        "offline bundle for {id} written to {} (mode 0600; it holds a config token and a private key)",
                        path.display()
                    );
                    Ok(())
                }
                None if p.format == Format::Yaml => p.object(&res),
                // A table would hide the PEM blocks: print the JSON as is.
                None => write_stdout(&format!("{}\n", res.raw.trim_end())),
            }
        }
        MachineCmd::Import(args) => {
            let ek_cert_pem = match args.ek_cert {
                Some(path) => {
                    use base64::Engine;
                    let bytes = std::fs::read(&path).map_err(|e| {
                        CliError::Usage(format!("cannot read --ek-cert {}: {e}", path.display()))
                    })?;
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
                None => None,
            };
            let body = ImportBody {
                ek_fingerprint: args.ek_fingerprint,
                role: args.role,
                machine_id: args.machine_id,
                hw_uuid: args.hw_uuid,
                hw_mac: args.hw_mac,
                hw_serial: args.hw_serial,
                hw_product: args.hw_product,
                ek_source: args.ek_source,
                ek_cert_pem,
            };
            p.object(&c.import(&body).await?)
        }
    }
}

/// Creates `path` with mode 0600 (truncating an existing file) and writes
/// `bytes`.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> CliResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| CliError::Failure(format!("cannot write {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
