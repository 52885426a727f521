//! `attestation audit …`: the hash-chained audit log and its signed
//! checkpoints.

use std::path::{Path, PathBuf};

use attest_client::Response;
use attest_proto::audit::{
    AuditCheckpoint, AuditCheckpointVerifyRequest, AuditPageQuery, AuditVerifyResponse,
};
use clap::Subcommand;
use serde_json::Value;

use super::Ctx;
use crate::error::{CliError, CliResult};
use crate::output::{to_json, Column, Format};

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

const CHECKPOINT_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("timestamp", "timestamp"),
    ("entries", "entries"),
    ("root hash", "root_hash"),
    ("key id", "key_id"),
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
    /// Re-compute every entry hash, check the chain links, and check the
    /// chain against the server's signed checkpoints and any given with
    /// `--checkpoint` (a chain shorter than, or different from, one of them
    /// is broken).
    ///
    /// Exits 0 when the chain is intact and 1 when it is broken; a
    /// checkpoint that is not signed by the server's key is refused (4).
    #[command(after_help = "Examples:
  attestation audit verify && echo chain intact
  attestation audit verify --checkpoint /worm/audit-checkpoints-2026-05-14.json")]
    Verify {
        /// A file of signed checkpoints kept outside the database: one
        /// checkpoint, a list of them, the output of `attestation audit
        /// checkpoints -o json`, or an `audit.checkpoint` webhook body.
        /// May be given several times.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
    },
    /// List the signed checkpoints, newest first, with the public key that
    /// checks them. `-o json` is the form to keep (WORM storage) and pass
    /// back to `verify --checkpoint`.
    #[command(after_help = "Example:
  attestation audit checkpoints --per-page 1 -o json > /worm/checkpoint-$(date +%s).json")]
    Checkpoints {
        /// Page number, 1-based.
        #[arg(long)]
        page: Option<u32>,
        /// Checkpoints per page (max 200).
        #[arg(long = "per-page")]
        per_page: Option<u32>,
    },
    /// Sign a checkpoint of the chain now (audited; sent to webhooks
    /// subscribed to `audit.checkpoint`).
    #[command(after_help = "Example:\n  attestation audit checkpoint -o json")]
    Checkpoint,
}

fn paging(page: Option<u32>, per_page: Option<u32>) -> AuditPageQuery {
    AuditPageQuery {
        page: page.map(i64::from),
        per_page: per_page.map(i64::from),
    }
}

/// Runs an audit command.
pub async fn run(ctx: &Ctx, cmd: AuditCmd) -> CliResult<()> {
    let c = &ctx.client;
    match cmd {
        AuditCmd::List { page, per_page } => ctx
            .printer
            .list(&c.audit_entries(&paging(page, per_page)).await?, COLUMNS),
        AuditCmd::Verify { checkpoints } => {
            let res = if checkpoints.is_empty() {
                c.audit_verify().await?
            } else {
                let mut all = Vec::new();
                for path in &checkpoints {
                    all.extend(read_checkpoints(path)?);
                }
                c.audit_verify_checkpoints(&AuditCheckpointVerifyRequest { checkpoints: all })
                    .await?
            };
            report(ctx, &res)
        }
        AuditCmd::Checkpoints { page, per_page } => {
            let res = c.audit_checkpoints(&paging(page, per_page)).await?;
            if ctx.printer.format != Format::Table {
                return ctx.printer.object(&res);
            }
            let rows = match to_json(&res.body.checkpoints)? {
                Value::Array(rows) => rows,
                _ => Vec::new(),
            };
            let mut out = ctx.printer.table(CHECKPOINT_COLUMNS, &rows);
            if rows.is_empty() {
                out = "(none)\n".to_owned();
            }
            let key = &res.body.public_key;
            out.push_str(&format!(
                "signed with {} key {}\n{}",
                key.algorithm, key.key_id, key.public_key_pem
            ));
            crate::output::write_stdout(&out)
        }
        AuditCmd::Checkpoint => ctx.printer.object(&c.audit_checkpoint().await?),
    }
}

/// Prints a verification report; a broken chain is exit code 1.
fn report(ctx: &Ctx, res: &Response<AuditVerifyResponse>) -> CliResult<()> {
    ctx.printer.object(res)?;
    if res.body.valid {
        return Ok(());
    }
    if ctx.printer.format == Format::Table {
        let first = res
            .body
            .first_invalid_id
            .map_or_else(|| "null".to_owned(), |id| id.to_string());
        Err(CliError::Failure(format!(
            "the audit chain is INVALID (first invalid entry: {first})"
        )))
    } else {
        Err(CliError::Failure("the audit chain is INVALID".into()))
    }
}

/// The checkpoints in `path`, in any of the shapes they are kept in. The
/// file is free-form JSON until a checkpoint is found in it; each found is
/// then read as the wire type, and one that is not is a usage error naming
/// the file.
fn read_checkpoints(path: &Path) -> CliResult<Vec<AuditCheckpoint>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", path.display())))?;
    let found = checkpoints_in(json);
    if found.is_empty() {
        return Err(CliError::Usage(format!(
            "{} holds no checkpoint (expected a checkpoint object, a list of them, \
             `attestation audit checkpoints -o json` output or an audit.checkpoint webhook body)",
            path.display()
        )));
    }
    found
        .into_iter()
        .map(|checkpoint| {
            serde_json::from_value(checkpoint).map_err(|e| {
                CliError::Usage(format!(
                    "{} holds a checkpoint that is not one: {e}",
                    path.display()
                ))
            })
        })
        .collect()
}

/// A checkpoint object, a list of them, a `{"checkpoints": […]}` answer,
/// or a webhook body carrying one in `data`.
fn checkpoints_in(json: Value) -> Vec<Value> {
    match json {
        Value::Array(items) => items.into_iter().flat_map(checkpoints_in).collect(),
        Value::Object(mut map) => {
            if map.contains_key("signature") {
                vec![Value::Object(map)]
            } else if let Some(list) = map.remove("checkpoints") {
                checkpoints_in(list)
            } else if map.get("event_type").and_then(Value::as_str) == Some("audit.checkpoint") {
                map.remove("data").map(checkpoints_in).unwrap_or_default()
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::checkpoints_in;
    use serde_json::json;

    #[test]
    fn checkpoints_are_found_in_every_kept_shape() {
        let cp = json!({"entries": 3, "root_hash": "ab", "signature": "c2ln"});
        assert_eq!(checkpoints_in(cp.clone()), vec![cp.clone()]);
        assert_eq!(
            checkpoints_in(json!([cp, cp])),
            vec![cp.clone(), cp.clone()]
        );
        assert_eq!(
            checkpoints_in(json!({"public_key": {}, "checkpoints": [cp]})),
            vec![cp.clone()]
        );
        assert_eq!(
            checkpoints_in(json!({"event_type": "audit.checkpoint", "data": cp})),
            vec![cp.clone()]
        );
        assert!(checkpoints_in(json!({"event_type": "webhook.test", "data": cp})).is_empty());
        assert!(checkpoints_in(json!({"valid": true})).is_empty());
        assert!(checkpoints_in(json!("x")).is_empty());
    }
}
