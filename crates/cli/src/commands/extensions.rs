//! `attestation extensions …`: what the server has loaded.

use clap::Subcommand;

use super::Ctx;
use crate::client::ApiResponse;
use crate::error::CliResult;
use crate::output::{Column, Format};

const COLUMNS: &[Column] = &[
    ("name", "name"),
    ("version", "version"),
    ("description", "description"),
];

/// Extension commands.
#[derive(Debug, Subcommand)]
pub enum ExtensionsCmd {
    /// List the server's loaded extensions (no authentication needed).
    #[command(after_help = "Example:\n  attestation extensions list --output json")]
    List,
}

/// Runs an extensions command.
pub async fn run(ctx: &Ctx, cmd: ExtensionsCmd) -> CliResult<()> {
    match cmd {
        ExtensionsCmd::List => {
            let res = ctx.client.get("/api/v1/extensions", &[]).await?;
            if ctx.printer.format != Format::Table {
                return ctx.printer.object(&res);
            }
            let rows = res
                .json
                .get("extensions")
                .cloned()
                .unwrap_or(serde_json::Value::Array(Vec::new()));
            let inner = ApiResponse {
                status: res.status,
                total: None,
                raw: String::new(),
                json: rows,
            };
            ctx.printer.list(&inner, COLUMNS)
        }
    }
}
