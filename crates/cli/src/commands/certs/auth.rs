//! `certs bootstrap`, `certs whoami`, `certs keys …`, `certs roles …`.

use std::path::PathBuf;

use attest_client::Response;
use attest_proto::certs::auth::{BootstrapRequest, CreateKey, MintedKey};
use clap::{Args, Subcommand};

use super::{list_of, object, read_secret, CertsCtx};
use crate::commands::done_with;
use crate::error::CliResult;
use crate::output::{Column, Format};

const KEY_COLUMNS: &[Column] = &[
    ("actor id", "actor_id"),
    ("actor type", "actor_type"),
    ("roles", "role_ids"),
];

const ROLE_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("description", "description"),
];

/// `certs bootstrap` options.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// File holding the bootstrap token (`-`: stdin, prompted without echo
    /// on a terminal). Never on the command line, where other local users
    /// could read it.
    #[arg(long = "token-file", value_name = "FILE")]
    token_file: PathBuf,
    /// The administrator's actor name (3–64 characters: a-z, 0-9, `-`, `_`).
    #[arg(long, value_name = "NAME")]
    actor: String,
}

/// API key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// List the actors holding roles.
    #[command(after_help = "Example:\n  attestation certs keys list")]
    List,
    /// Mint an API key for a new actor; the key is printed once.
    #[command(
        after_help = "Example:\n  attestation certs keys create deploy-bot --role r-operator"
    )]
    Create {
        /// The new actor's name.
        name: String,
        /// A role to grant (repeatable).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Revoke an API key by its id (`ak-…`); it stops working at once.
    #[command(after_help = "Example:\n  attestation certs keys revoke ak-…")]
    Revoke {
        /// API key id.
        id: String,
    },
}

/// Role commands.
#[derive(Debug, Subcommand)]
pub enum RolesCmd {
    /// List the roles.
    #[command(after_help = "Example:\n  attestation certs roles list")]
    List,
}

/// `certs bootstrap`.
pub async fn bootstrap(ctx: &CertsCtx, args: BootstrapArgs) -> CliResult<()> {
    let body = BootstrapRequest {
        token: read_secret(&args.token_file, "--token-file", "Bootstrap token")?
            .trim()
            .to_owned(),
        actor_name: args.actor,
    };
    minted(ctx, &ctx.client.bootstrap(&body).await?)
}

/// `certs whoami`; in a table each effective permission is one
/// `permission[@scope:id]` word rather than a JSON object.
pub async fn whoami(ctx: &CertsCtx) -> CliResult<()> {
    let res = ctx.client.auth_me().await?;
    if ctx.printer.format != Format::Table {
        return object(ctx, &res);
    }
    let mut me = res.body.clone();
    let words: Vec<String> = me
        .effective_permissions
        .iter()
        .map(|p| match (p.scope_type.as_str(), &p.scope_id) {
            ("global", _) => p.permission.clone(),
            (scope, Some(id)) => format!("{}@{scope}:{id}", p.permission),
            (scope, None) => format!("{}@{scope}", p.permission),
        })
        .collect();
    me.effective_permissions.clear();
    let mut shown = crate::output::Shown::of(&res.with_body(me))?;
    if let serde_json::Value::Object(map) = &mut shown.json {
        map.insert("effective_permissions".into(), words.join(" ").into());
    }
    ctx.printer.object_shown(&shown)
}

/// `certs keys …`.
pub async fn keys(ctx: &CertsCtx, cmd: KeysCmd) -> CliResult<()> {
    let c = &ctx.client;
    match cmd {
        KeysCmd::List => {
            let res = c.keys().await?;
            list_of(ctx, &res, &res.body.keys, None, KEY_COLUMNS)
        }
        KeysCmd::Create { name, roles } => {
            let body = CreateKey {
                actor_name: name,
                role_ids: roles,
            };
            minted(ctx, &c.create_key(&body).await?)
        }
        KeysCmd::Revoke { id } => {
            c.revoke_key(&id).await?;
            done_with(ctx.printer, &format!("API key {id} revoked"))
        }
    }
}

/// `certs roles …`.
pub async fn roles(ctx: &CertsCtx, cmd: RolesCmd) -> CliResult<()> {
    match cmd {
        RolesCmd::List => {
            let res = ctx.client.roles().await?;
            list_of(ctx, &res, &res.body.roles, None, ROLE_COLUMNS)
        }
    }
}

/// Prints a freshly minted key (its value is in the answer this once) and
/// says so where it does not disturb scripts.
fn minted(ctx: &CertsCtx, res: &Response<MintedKey>) -> CliResult<()> {
    object(ctx, res)?;
    if ctx.printer.format == Format::Table {
        eprintln!(
            "attestation: store key_value now: it is shown this once (only its SHA-256 is kept)"
        );
    }
    Ok(())
}
