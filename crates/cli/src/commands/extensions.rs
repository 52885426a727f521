//! `attestation extensions …`: what the server has loaded.

use clap::Subcommand;

use super::Ctx;
use crate::error::CliResult;
use crate::output::{to_json, Column, Format, Shown};

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
            let res = ctx.client.extensions().await?;
            if ctx.printer.format != Format::Table {
                return ctx.printer.object(&res);
            }
            let rows = Shown {
                raw: String::new(),
                json: to_json(&res.body.extensions)?,
                total: None,
            };
            ctx.printer.list_shown(&rows, COLUMNS)
        }
    }
}
