//! `attestation audit …`: the hash-chained audit log.

use clap::Subcommand;

use super::Ctx;
use crate::error::{CliError, CliResult};
use crate::output::{Column, Format};

const COLUMNS: &[Column] = &[
    ("id", "id"),
    ("timestamp", "timestamp"),
    ("operator", "operator_cn"),
    ("action", "action"),
    ("machine id", "machine_id"),
    ("prev state", "prev_state"),
    ("new state", "new_state"),
    ("detail", "detail"),
];

/// Audit log commands.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// List audit entries, newest first.
    #[command(after_help = "Example:\n  attestation audit list --per-page 20 --page 2")]
    List {
        /// Page number, 1-based.
        #[arg(long)]
        page: Option<u32>,
        /// Entries per page (max 200).
        #[arg(long = "per-page")]
        per_page: Option<u32>,
    },
    /// Re-compute every entry hash and check the chain links.
    ///
    /// Exits 0 when the chain is intact and 1 when it is broken.
    #[command(after_help = "Example:\n  attestation audit verify && echo chain intact")]
    Verify,
}

/// Runs an audit command.
pub async fn run(ctx: &Ctx, cmd: AuditCmd) -> CliResult<()> {
    match cmd {
        AuditCmd::List { page, per_page } => {
            let mut query = Vec::new();
            if let Some(n) = page {
                query.push(("page", n.to_string()));
            }
            if let Some(n) = per_page {
                query.push(("per_page", n.to_string()));
            }
            let res = ctx.client.get("/api/v1/audit", &query).await?;
            ctx.printer.list(&res, COLUMNS)
        }
        AuditCmd::Verify => {
            let res = ctx.client.get("/api/v1/audit/verify", &[]).await?;
            let valid = res.json.get("valid").and_then(serde_json::Value::as_bool);
            ctx.printer.object(&res)?;
            match valid {
                Some(true) => Ok(()),
                _ => {
                    if ctx.printer.format == Format::Table {
                        let first = res
                            .json
                            .get("first_invalid_id")
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "?".into());
                        Err(CliError::Failure(format!(
                            "the audit chain is INVALID (first invalid entry: {first})"
                        )))
                    } else {
                        Err(CliError::Failure("the audit chain is INVALID".into()))
                    }
                }
            }
        }
    }
}
