//! `certs issuers …` and `certs intermediates …`.

use std::path::PathBuf;

use attest_proto::certs::common::PageQuery;
use attest_proto::certs::issuers::{CreateIntermediate, IssuerInput, RetireRequest, ISSUER_TYPES};
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::{list_of, object, page, read_text, CertsCtx};
use crate::error::{CliError, CliResult};
use crate::output::Column;

const ISSUER_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("type", "type"),
    ("enabled", "enabled"),
    ("created at", "created_at"),
];

const CA_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("parent", "parent_ca_id"),
    ("name", "name"),
    ("state", "state"),
    ("subject", "subject"),
    ("key", "key_algorithm"),
    ("path len", "path_len_constraint"),
    ("not after", "not_after"),
];

/// Page options of lists.
#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// Page number, from 1.
    #[arg(long)]
    page: Option<i64>,
    /// Items per page (at most 500).
    #[arg(long = "per-page")]
    per_page: Option<i64>,
}

impl PageArgs {
    /// As the query.
    pub fn query(&self) -> PageQuery {
        PageQuery {
            page: self.page,
            per_page: self.per_page,
        }
    }
}

/// Issuer commands.
#[derive(Debug, Subcommand)]
pub enum IssuersCmd {
    /// List issuers.
    #[command(after_help = "Example:\n  attestation certs issuers list")]
    List(PageArgs),
    /// Show an issuer (for a GenericCA, the CA it signs with).
    #[command(after_help = "Example:\n  attestation certs issuers show iss-local")]
    Show {
        /// Issuer id.
        id: String,
    },
    /// Create an issuer. A GenericCA generates its root CA, or imports one
    /// with --import-cert and --import-key (the key is encrypted at rest
    /// and never returned).
    #[command(after_help = "Examples:
  attestation certs issuers create --id iss-local --name 'Local CA' --common-name 'Example Root CA' --key-algorithm ECDSA-P384
  attestation certs issuers create --name 'Imported CA' --import-cert root.pem --import-key root.key")]
    Create(CreateIssuerArgs),
}

/// `certs issuers create` options.
#[derive(Debug, Args)]
pub struct CreateIssuerArgs {
    /// Client-chosen id (generated when absent).
    #[arg(long)]
    id: Option<String>,
    /// Display name, unique.
    #[arg(long)]
    name: String,
    /// Issuer type; only GenericCA has a connector here.
    #[arg(long = "type", default_value = "GenericCA",
          value_parser = PossibleValuesParser::new(ISSUER_TYPES.iter().copied()))]
    issuer_type: String,
    /// The generated root's common name.
    #[arg(long = "common-name", value_name = "CN")]
    common_name: Option<String>,
    /// The generated root's organisation.
    #[arg(long)]
    organization: Option<String>,
    /// ECDSA-P256 (server default), ECDSA-P384, RSA-2048, RSA-3072 or RSA-4096.
    #[arg(long = "key-algorithm", value_name = "ALG")]
    key_algorithm: Option<String>,
    /// The generated root's validity (server default 3650).
    #[arg(long = "validity-days", value_name = "DAYS")]
    validity_days: Option<i64>,
    /// Import this CA certificate (PEM) instead of generating one.
    #[arg(long = "import-cert", value_name = "FILE", requires = "import_key")]
    import_cert: Option<PathBuf>,
    /// The imported CA's private key (PEM).
    #[arg(long = "import-key", value_name = "FILE", requires = "import_cert")]
    import_key: Option<PathBuf>,
}

/// CA hierarchy commands.
#[derive(Debug, Subcommand)]
pub enum IntermediatesCmd {
    /// List an issuer's CAs, roots first (the tree is in `parent`).
    #[command(after_help = "Example:\n  attestation certs intermediates list iss-local")]
    List {
        /// Issuer id.
        issuer: String,
    },
    /// Sign an intermediate CA under an active CA of the issuer.
    #[command(after_help = "Example:\n  \
        attestation certs intermediates create iss-local --name issuing-1 --parent ica-… \\\n    \
        --common-name 'Example Issuing CA 1' --ttl-days 730 --path-len 0")]
    Create(CreateIntermediateArgs),
    /// Retire a CA in two steps: without --confirm it stops issuing
    /// (retiring); with --confirm it is retired, once nothing valid
    /// depends on it.
    #[command(after_help = "Examples:
  attestation certs intermediates retire ica-… --note 'rotated'
  attestation certs intermediates retire ica-… --confirm")]
    Retire {
        /// CA id.
        ca: String,
        /// Second step: retiring → retired.
        #[arg(long)]
        confirm: bool,
        /// Why (kept in the audit log).
        #[arg(long)]
        note: Option<String>,
    },
}

/// `certs intermediates create` options.
#[derive(Debug, Args)]
pub struct CreateIntermediateArgs {
    /// Issuer id.
    issuer: String,
    /// Name of the new CA.
    #[arg(long)]
    name: String,
    /// The signing CA's id.
    #[arg(long = "parent", value_name = "CA")]
    parent: String,
    /// Subject common name.
    #[arg(long = "common-name", value_name = "CN")]
    common_name: Option<String>,
    /// Subject organisation.
    #[arg(long)]
    organization: Option<String>,
    /// ECDSA-P256 (server default), ECDSA-P384, RSA-2048, RSA-3072 or RSA-4096.
    #[arg(long, value_name = "ALG")]
    algorithm: Option<String>,
    /// Validity in days.
    #[arg(long = "ttl-days", value_name = "DAYS")]
    ttl_days: Option<i64>,
    /// Path length constraint (below the parent's).
    #[arg(long = "path-len", value_name = "N")]
    path_len: Option<i64>,
}

/// `certs issuers …`.
pub async fn issuers(ctx: &CertsCtx, cmd: IssuersCmd) -> CliResult<()> {
    let c = &ctx.client;
    match cmd {
        IssuersCmd::List(p) => page(ctx, &c.issuers(&p.query()).await?, ISSUER_COLUMNS),
        IssuersCmd::Show { id } => object(ctx, &c.issuer(&id).await?),
        IssuersCmd::Create(args) => {
            let body = issuer_body(args)?;
            object(ctx, &c.create_issuer(&body).await?)
        }
    }
}

fn issuer_body(args: CreateIssuerArgs) -> CliResult<IssuerInput> {
    let mut config = Map::new();
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            config.insert(key.to_owned(), value);
        }
    };
    set("common_name", args.common_name.map(Value::from));
    set("organization", args.organization.map(Value::from));
    set("key_algorithm", args.key_algorithm.map(Value::from));
    set("validity_days", args.validity_days.map(Value::from));
    if let (Some(cert), Some(key)) = (&args.import_cert, &args.import_key) {
        set(
            "ca_cert_pem",
            Some(Value::from(read_text(cert, "--import-cert")?)),
        );
        set(
            "ca_key_pem",
            Some(Value::from(read_text(key, "--import-key")?)),
        );
    }
    Ok(IssuerInput {
        id: args.id,
        name: Some(args.name),
        issuer_type: Some(args.issuer_type),
        config: (!config.is_empty()).then_some(Value::Object(config)),
        enabled: None,
    })
}

/// `certs intermediates …`.
pub async fn intermediates(ctx: &CertsCtx, cmd: IntermediatesCmd) -> CliResult<()> {
    let c = &ctx.client;
    match cmd {
        IntermediatesCmd::List { issuer } => {
            let res = c.intermediates(&issuer).await?;
            list_of(ctx, &res, &res.body.data, None, CA_COLUMNS)
        }
        IntermediatesCmd::Create(args) => {
            if args.parent.is_empty() {
                return Err(CliError::Usage("--parent must name the signing CA".into()));
            }
            let mut subject = Map::new();
            if let Some(cn) = args.common_name {
                subject.insert("common_name".into(), json!(cn));
            }
            if let Some(o) = args.organization {
                subject.insert("organization".into(), json!(o));
            }
            let body = CreateIntermediate {
                name: args.name,
                parent_ca_id: Some(args.parent),
                subject: (!subject.is_empty()).then_some(Value::Object(subject)),
                algorithm: args.algorithm,
                ttl_days: args.ttl_days,
                path_len_constraint: args.path_len,
                ..CreateIntermediate::default()
            };
            object(ctx, &c.create_intermediate(&args.issuer, &body).await?)
        }
        IntermediatesCmd::Retire { ca, confirm, note } => {
            let body = RetireRequest {
                note,
                confirm: Some(confirm),
            };
            object(ctx, &c.retire_intermediate(&ca, &body).await?)
        }
    }
}
