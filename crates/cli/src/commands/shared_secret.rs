//! `attestation shared-secret …`: shared secrets of the `secret_vault`
//! extension (`/api/v1/shared-secrets`). The server accepts the name
//! wherever it takes an id.

use attest_client::{AccessRequest, SharedSecretCreate, SharedSecretUpdate};
use attest_proto::secret_vault::SecretValue;
use clap::Subcommand;

use super::{done, Ctx, ValueArgs};
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
            let body = SharedSecretCreate {
                name,
                value: SecretValue::new(value.read()?),
                description,
            };
            p.object(&c.create_shared_secret(&body).await?)
        }
        SharedSecretCmd::List => p.list(&c.shared_secrets().await?, LIST_COLUMNS),
        SharedSecretCmd::Grant { name, machines } => {
            let body = AccessRequest {
                machine_ids: machines,
            };
            p.list(&c.grant_shared_secret(&name, &body).await?, ACCESS_COLUMNS)
        }
        SharedSecretCmd::Revoke { name, machines } => {
            let body = AccessRequest {
                machine_ids: machines,
            };
            p.list(&c.revoke_shared_secret(&name, &body).await?, ACCESS_COLUMNS)
        }
        SharedSecretCmd::Access { name } => {
            p.list(&c.shared_secret_access(&name).await?, ACCESS_COLUMNS)
        }
        SharedSecretCmd::Rotate { name, value } => {
            let body = SharedSecretUpdate {
                value: Some(SecretValue::new(value.read()?)),
                description: None,
            };
            p.object(&c.update_shared_secret(&name, &body).await?)
        }
        SharedSecretCmd::Delete { name } => {
            c.delete_shared_secret(&name).await?;
            done(ctx, &format!("shared secret {name} deleted"))
        }
    }
}
