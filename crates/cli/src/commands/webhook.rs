//! `attestation webhook …`: the `webhooks` extension
//! (`/api/v1/webhooks`). Signing secrets are write-only: the server
//! answers only `has_secret`.

use attest_client::{DeliveryQuery, EventList, WebhookCreate, WebhookUpdate};
use clap::{ArgAction, Args, Subcommand};

use super::{done, list_joined, object_joined, Ctx};
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
            let body = WebhookCreate {
                url: args.target_url,
                events: EventList::List(args.events),
                secret: args.secret,
                enabled: Some(!args.disabled),
            };
            object_joined(ctx, &c.create_webhook(&body).await?)
        }
        WebhookCmd::List => list_joined(ctx, &c.webhooks().await?, LIST_COLUMNS),
        WebhookCmd::Get { id } => object_joined(ctx, &c.webhook(&id).await?),
        WebhookCmd::Update(args) => {
            let body = WebhookUpdate {
                url: args.target_url,
                events: args.events.map(EventList::List),
                secret: args.secret,
                enabled: args.enabled,
            };
            if body.url.is_none()
                && body.events.is_none()
                && body.secret.is_none()
                && body.enabled.is_none()
            {
                return Err(CliError::Usage(
                    "nothing to change: give --url, --events, --secret or --enabled".into(),
                ));
            }
            object_joined(ctx, &c.update_webhook(&args.id, &body).await?)
        }
        WebhookCmd::Delete { id } => {
            c.delete_webhook(&id).await?;
            done(ctx, &format!("webhook {id} deleted"))
        }
        WebhookCmd::Deliveries { id, limit } => {
            let query = DeliveryQuery {
                limit: Some(i64::from(limit)),
            };
            p.list(&c.webhook_deliveries(&id, &query).await?, DELIVERY_COLUMNS)
        }
        WebhookCmd::Test { id } => p.object(&c.test_webhook(&id).await?),
    }
}
