//! `attestation webhook …`: the `webhooks` extension
//! (`/api/v1/webhooks`). Signing secrets are write-only: the server
//! answers only `has_secret`.

use clap::{ArgAction, Args, Subcommand};
use serde_json::{json, Map, Value};

use super::{done, insert, list_joined, object_joined, Ctx};
use crate::client::segment;
use crate::error::{CliError, CliResult};
use crate::output::Column;

const LIST_COLUMNS: &[Column] = &[
    ("webhook id", "webhook_id"),
    ("url", "url"),
    ("events", "events"),
    ("enabled", "enabled"),
    ("signed", "has_secret"),
    ("triggers", "trigger_count"),
    ("failures", "failure_count"),
    ("last triggered at", "last_triggered_at"),
];

const DELIVERY_COLUMNS: &[Column] = &[
    ("delivery id", "delivery_id"),
    ("event", "event_type"),
    ("http status", "response_status"),
    ("error", "error"),
    ("delivered at", "delivered_at"),
    ("ms", "duration_ms"),
];

/// Webhook commands.
#[derive(Debug, Subcommand)]
pub enum WebhookCmd {
    /// Register a webhook.
    #[command(after_help = "Example:\n  attestation webhook add \\\n    \
        --url https://example.com/hooks/attestation \\\n    \
        --events machine.approved,machine.revoked \\\n    \
        --secret my-signing-secret")]
    Add(AddArgs),
    /// List webhooks, oldest first.
    #[command(after_help = "Example:\n  attestation webhook list")]
    List,
    /// Show one webhook.
    #[command(after_help = "Example:\n  attestation webhook get 3c9e…")]
    Get {
        /// Webhook UUID.
        id: String,
    },
    /// Change a webhook's URL, events, secret or enabled flag (only the
    /// options given change).
    #[command(after_help = "Examples:\n  \
        attestation webhook update 3c9e… --enabled false\n  \
        attestation webhook update 3c9e… --events machine.approved --secret \"\"   # empty: unsigned")]
    Update(UpdateArgs),
    /// Delete a webhook with its delivery history.
    #[command(after_help = "Example:\n  attestation webhook delete 3c9e…")]
    Delete {
        /// Webhook UUID.
        id: String,
    },
    /// Show delivery attempts, newest first.
    #[command(after_help = "Example:\n  attestation webhook deliveries 3c9e… --limit 50")]
    Deliveries {
        /// Webhook UUID.
        id: String,
        /// How many (1–500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Queue a `webhook.test` delivery to this webhook.
    #[command(after_help = "Example:\n  attestation webhook test 3c9e…")]
    Test {
        /// Webhook UUID.
        id: String,
    },
}

/// Base URL of the API for `webhook add` / `update`, whose `--url` is the
/// webhook's target (as in the seed).
///
/// The id is the global option's (`url`): clap then does not propagate the
/// global `--url` into these commands, so `--url` here is only the target.
/// The API URL comes from `--url` before the command, `--api-url` or
/// `ATTESTATION_API_URL`.
const API_URL_HELP: &str = "Base URL of the attestation API (here --url is the webhook's target; \
    or give --url before `webhook`, or ATTESTATION_API_URL)";

/// `webhook add` options. No `Debug` output of the secret.
#[derive(Args)]
pub struct AddArgs {
    /// Target URL (http or https).
    #[arg(long = "url", id = "target_url", value_name = "URL")]
    target_url: String,
    /// Comma-separated event types (e.g. machine.approved,machine.revoked).
    #[arg(long, value_delimiter = ',', required = true, value_name = "EVENTS")]
    events: Vec<String>,
    /// HMAC signing secret (never shown again); without it deliveries are
    /// unsigned.
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
    /// Register it disabled.
    #[arg(long)]
    disabled: bool,
    #[arg(id = "url", long = "api-url", value_name = "URL", help = API_URL_HELP)]
    api_url: Option<String>,
}

/// `webhook update` options.
#[derive(Args)]
pub struct UpdateArgs {
    /// Webhook UUID.
    id: String,
    /// New target URL.
    #[arg(long = "url", id = "target_url", value_name = "URL")]
    target_url: Option<String>,
    /// New comma-separated event types.
    #[arg(long, value_delimiter = ',', value_name = "EVENTS")]
    events: Option<Vec<String>>,
    /// New signing secret; an empty one removes it.
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
    /// Enable or disable deliveries.
    #[arg(long, action = ArgAction::Set, value_name = "true|false")]
    enabled: Option<bool>,
    #[arg(id = "url", long = "api-url", value_name = "URL", help = API_URL_HELP)]
    api_url: Option<String>,
}

impl std::fmt::Debug for AddArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddArgs")
            .field("target_url", &self.target_url)
            .field("api_url", &self.api_url)
            .field("events", &self.events)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("disabled", &self.disabled)
            .finish()
    }
}

impl std::fmt::Debug for UpdateArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateArgs")
            .field("id", &self.id)
            .field("target_url", &self.target_url)
            .field("api_url", &self.api_url)
            .field("events", &self.events)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// Runs a webhook command.
pub async fn run(ctx: &Ctx, cmd: WebhookCmd) -> CliResult<()> {
    let c = &ctx.client;
    let p = &ctx.printer;
    match cmd {
        WebhookCmd::Add(args) => {
            let mut body = Map::new();
            body.insert("url".into(), Value::String(args.target_url));
            body.insert("events".into(), json!(args.events));
            insert(&mut body, "secret", args.secret);
            body.insert("enabled".into(), Value::Bool(!args.disabled));
            let res = c
                .post("/api/v1/webhooks", Some(&Value::Object(body)))
                .await?;
            object_joined(ctx, &res)
        }
        WebhookCmd::List => {
            let res = c.get("/api/v1/webhooks", &[]).await?;
            list_joined(ctx, &res, LIST_COLUMNS)
        }
        WebhookCmd::Get { id } => {
            let res = c.get(&path(&id, ""), &[]).await?;
            object_joined(ctx, &res)
        }
        WebhookCmd::Update(args) => {
            let mut body = Map::new();
            insert(&mut body, "url", args.target_url);
            if let Some(events) = args.events {
                body.insert("events".into(), json!(events));
            }
            insert(&mut body, "secret", args.secret);
            if let Some(enabled) = args.enabled {
                body.insert("enabled".into(), Value::Bool(enabled));
            }
            if body.is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give --url, --events, --secret or --enabled".into(),
                ));
            }
            let res = c.put(&path(&args.id, ""), &Value::Object(body)).await?;
            object_joined(ctx, &res)
        }
        WebhookCmd::Delete { id } => {
            c.delete(&path(&id, ""), None).await?;
            done(ctx, &format!("webhook {id} deleted"))
        }
        WebhookCmd::Deliveries { id, limit } => {
            let res = c
                .get(&path(&id, "/deliveries"), &[("limit", limit.to_string())])
                .await?;
            p.list(&res, DELIVERY_COLUMNS)
        }
        WebhookCmd::Test { id } => {
            let res = c.post(&path(&id, "/test"), None).await?;
            p.object(&res)
        }
    }
}

fn path(id: &str, suffix: &str) -> String {
    format!("/api/v1/webhooks/{}{suffix}", segment(id))
}
