//! `attestation audit …`: the hash-chained audit log and its signed
//! checkpoints.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::Value;

use super::Ctx;
use crate::client::ApiResponse;
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

fn paging(page: Option<u32>, per_page: Option<u32>) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(n) = page {
        query.push(("page", n.to_string()));
    }
    if let Some(n) = per_page {
        query.push(("per_page", n.to_string()));
    }
    query
}

/// Runs an audit command.
pub async fn run(ctx: &Ctx, cmd: AuditCmd) -> CliResult<()> {
    match cmd {
        AuditCmd::List { page, per_page } => {
            let res = ctx
                .client
                .get("/api/v1/audit", &paging(page, per_page))
                .await?;
            ctx.printer.list(&res, COLUMNS)
        }
        AuditCmd::Verify { checkpoints } => {
            let res = if checkpoints.is_empty() {
                ctx.client.get("/api/v1/audit/verify", &[]).await?
            } else {
                let mut all = Vec::new();
                for path in &checkpoints {
                    all.extend(read_checkpoints(path)?);
                }
                let body = serde_json::json!({ "checkpoints": all });
                ctx.client
                    .post("/api/v1/audit/checkpoints/verify", Some(&body))
                    .await?
            };
            report(ctx, &res)
        }
        AuditCmd::Checkpoints { page, per_page } => {
            let res = ctx
                .client
                .get("/api/v1/audit/checkpoints", &paging(page, per_page))
                .await?;
            if ctx.printer.format != Format::Table {
                return ctx.printer.object(&res);
            }
            let rows = res
                .json
                .get("checkpoints")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut out = ctx.printer.table(CHECKPOINT_COLUMNS, rows);
            if rows.is_empty() {
                out = "(none)\n".to_owned();
            }
            if let Some(key) = res.json.get("public_key") {
                let field = |k: &str| key.get(k).and_then(Value::as_str).unwrap_or("?");
                out.push_str(&format!(
                    "signed with {} key {}\n{}",
                    field("algorithm"),
                    field("key_id"),
                    field("public_key_pem")
                ));
            }
            crate::output::write_stdout(&out)
        }
        AuditCmd::Checkpoint => {
            let res = ctx.client.post("/api/v1/audit/checkpoints", None).await?;
            ctx.printer.object(&res)
        }
    }
}

/// Prints a verification report; a broken chain is exit code 1.
fn report(ctx: &Ctx, res: &ApiResponse) -> CliResult<()> {
    let valid = res.json.get("valid").and_then(Value::as_bool);
    ctx.printer.object(res)?;
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

/// The checkpoints in `path`, in any of the shapes they are kept in.
fn read_checkpoints(path: &Path) -> CliResult<Vec<Value>> {
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
    Ok(found)
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
