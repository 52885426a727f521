//! `attestation shared-secret …`: shared secrets of the `secret_vault`
//! extension (`/api/v1/shared-secrets`). The server accepts the name
//! wherever it takes an id.

use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::{done, insert, Ctx, ValueArgs};
use crate::client::segment;
use crate::error::CliResult;
use crate::output::Column;

const LIST_COLUMNS: &[Column] = &[
    ("name", "name"),
    ("id", "shared_secret_id"),
    ("description", "description"),
    ("machines", "authorized_machines"),
    ("created at", "created_at"),
    ("created by", "created_by"),
    ("last rotated at", "last_rotated_at"),
];

const ACCESS_COLUMNS: &[Column] = &[
    ("machine id", "machine_id"),
    ("granted at", "granted_at"),
    ("granted by", "granted_by"),
    ("last accessed at", "last_accessed_at"),
    ("access count", "access_count"),
];

/// Shared secret commands.
#[derive(Debug, Subcommand)]
pub enum SharedSecretCmd {
    /// Create a shared secret, encrypted under the vault's master key.
    ///
    /// The value comes from --value, --value-stdin or --value-file. It is
    /// never printed.
    #[command(after_help = "Examples:\n  \
        attestation shared-secret create prod-k8s-join-token --value \"K07::server:abc…\" --description \"Production K8s join token\"\n  \
        attestation shared-secret create prod-k8s-join-token --value-file token.txt")]
    Create {
        /// Unique name (1–128 characters).
        name: String,
        #[command(flatten)]
        value: ValueArgs,
        /// Free text, at most 512 characters.
        #[arg(long)]
        description: Option<String>,
    },
    /// List shared secrets (never their values).
    #[command(after_help = "Example:\n  attestation shared-secret list")]
    List,
    /// Allow machines to read the secret (idempotent); prints the access
    /// list.
    #[command(
        after_help = "Example:\n  attestation shared-secret grant prod-k8s-join-token --machines 6f1c…,9bac…"
    )]
    Grant {
        /// Name (or id) of the shared secret.
        name: String,
        /// Comma-separated machine UUIDs.
        #[arg(long, value_delimiter = ',', required = true, value_name = "IDS")]
        machines: Vec<String>,
    },
    /// Withdraw machines' access (idempotent); prints the access list.
    #[command(
        after_help = "Example:\n  attestation shared-secret revoke prod-k8s-join-token --machines 6f1c…"
    )]
    Revoke {
        /// Name (or id) of the shared secret.
        name: String,
        /// Comma-separated machine UUIDs.
        #[arg(long, value_delimiter = ',', required = true, value_name = "IDS")]
        machines: Vec<String>,
    },
    /// List the machines allowed to read the secret.
    #[command(after_help = "Example:\n  attestation shared-secret access prod-k8s-join-token")]
    Access {
        /// Name (or id) of the shared secret.
        name: String,
    },
    /// Replace the value (rotation).
    #[command(
        after_help = "Example:\n  attestation shared-secret rotate prod-k8s-join-token --value \"K07::server:xyz…\""
    )]
    Rotate {
        /// Name (or id) of the shared secret.
        name: String,
        #[command(flatten)]
        value: ValueArgs,
    },
    /// Delete a shared secret and its access list.
    #[command(after_help = "Example:\n  attestation shared-secret delete prod-k8s-join-token")]
    Delete {
        /// Name (or id) of the shared secret.
        name: String,
    },
}

/// Runs a shared-secret command.
pub async fn run(ctx: &Ctx, cmd: SharedSecretCmd) -> CliResult<()> {
    let c = &ctx.client;
    let p = &ctx.printer;
    match cmd {
        SharedSecretCmd::Create {
            name,
            value,
            description,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), Value::String(name));
            body.insert("value".into(), Value::String(value.read()?));
            insert(&mut body, "description", description);
            let res = c
                .post("/api/v1/shared-secrets", Some(&Value::Object(body)))
                .await?;
            p.object(&res)
        }
        SharedSecretCmd::List => {
            let res = c.get("/api/v1/shared-secrets", &[]).await?;
            p.list(&res, LIST_COLUMNS)
        }
        SharedSecretCmd::Grant { name, machines } => {
            let body = json!({"machine_ids": machines});
            let res = c.post(&path(&name, "/access"), Some(&body)).await?;
            p.list(&res, ACCESS_COLUMNS)
        }
        SharedSecretCmd::Revoke { name, machines } => {
            let body = json!({"machine_ids": machines});
            let res = c.delete(&path(&name, "/access"), Some(&body)).await?;
            p.list(&res, ACCESS_COLUMNS)
        }
        SharedSecretCmd::Access { name } => {
            let res = c.get(&path(&name, "/access"), &[]).await?;
            p.list(&res, ACCESS_COLUMNS)
        }
        SharedSecretCmd::Rotate { name, value } => {
            let body = json!({"value": value.read()?});
            let res = c.put(&path(&name, ""), &body).await?;
            p.object(&res)
        }
        SharedSecretCmd::Delete { name } => {
            c.delete(&path(&name, ""), None).await?;
            done(ctx, &format!("shared secret {name} deleted"))
        }
    }
}

fn path(id_or_name: &str, suffix: &str) -> String {
    format!("/api/v1/shared-secrets/{}{suffix}", segment(id_or_name))
}
