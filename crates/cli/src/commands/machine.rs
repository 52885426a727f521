//! `attestation machine …`: the machine lifecycle.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::Ctx;
use crate::client::segment;
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
            let mut query = Vec::new();
            push(&mut query, "status", args.status);
            push(&mut query, "role", args.role);
            push(&mut query, "page", args.page.map(|n| n.to_string()));
            push(&mut query, "per_page", args.per_page.map(|n| n.to_string()));
            let res = c.get("/api/v1/machines", &query).await?;
            p.list(&res, LIST_COLUMNS)
        }
        MachineCmd::Show { id } => {
            let res = c.get(&machine_path(&id, ""), &[]).await?;
            p.object(&res)
        }
        MachineCmd::Approve {
            id,
            role,
            hostname,
            assigned_ip,
        } => {
            let mut body = Map::new();
            body.insert("role".into(), Value::String(role));
            insert(&mut body, "hostname", hostname);
            insert(&mut body, "assigned_ip", assigned_ip);
            let res = c
                .post(&machine_path(&id, "/approve"), Some(&Value::Object(body)))
                .await?;
            if res.status == 202 && p.format == Format::Table {
                eprintln!("first vote recorded: a second operator must approve the same role, hostname and IP");
            }
            p.object(&res)
        }
        MachineCmd::Revoke { id, reason, wipe } => {
            let body = json!({"wipe": wipe, "reason": reason});
            let res = c.post(&machine_path(&id, "/revoke"), Some(&body)).await?;
            p.object(&res)
        }
        MachineCmd::Lock { id, reason } => {
            let body = json!({"reason": reason});
            let res = c.post(&machine_path(&id, "/lock"), Some(&body)).await?;
            p.object(&res)
        }
        MachineCmd::Unlock { id } => {
            let res = c.post(&machine_path(&id, "/unlock"), None).await?;
            p.object(&res)
        }
        MachineCmd::Approvals { id } => {
            let res = c.get(&machine_path(&id, "/approvals"), &[]).await?;
            p.list(&res, APPROVAL_COLUMNS)
        }
        MachineCmd::OfflineBundle { id, out } => {
            let res = c.get(&machine_path(&id, "/offline-bundle"), &[]).await?;
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
            let mut body = Map::new();
            body.insert("ek_fingerprint".into(), Value::String(args.ek_fingerprint));
            insert(&mut body, "role", args.role);
            insert(&mut body, "machine_id", args.machine_id);
            insert(&mut body, "hw_uuid", args.hw_uuid);
            insert(&mut body, "hw_mac", args.hw_mac);
            insert(&mut body, "hw_serial", args.hw_serial);
            insert(&mut body, "hw_product", args.hw_product);
            insert(&mut body, "ek_source", args.ek_source);
            if let Some(path) = args.ek_cert {
                use base64::Engine;
                let bytes = std::fs::read(&path).map_err(|e| {
                    CliError::Usage(format!("cannot read --ek-cert {}: {e}", path.display()))
                })?;
                let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                body.insert("ek_cert_pem".into(), Value::String(b64));
            }
            let res = c
                .post("/api/v1/machines/import", Some(&Value::Object(body)))
                .await?;
            p.object(&res)
        }
    }
}

fn machine_path(id: &str, suffix: &str) -> String {
    format!("/api/v1/machines/{}{suffix}", segment(id))
}

fn push(query: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<String>) {
    if let Some(v) = value {
        query.push((key, v));
    }
}

fn insert(body: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(v) = value {
        body.insert(key.to_string(), Value::String(v));
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
