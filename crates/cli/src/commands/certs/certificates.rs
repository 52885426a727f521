//! `certs certificates …` and `certs audit …`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use attest_proto::certs::audit::AuditQuery;
use attest_proto::certs::certificates::{
    CertificateQuery, Pkcs12Request, RevokeRequest, CERTIFICATE_STATUSES, REVOCATION_REASONS,
};
use clap::builder::PossibleValuesParser;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde_json::Value;

use super::issuers::PageArgs;
use super::{body_from, field, list_field, object, page, read_text, CertsCtx};
use crate::commands::strip_one_newline;
use crate::error::{CliError, CliResult};
use crate::output::{write_stdout, Column, Format, Shown};

const CERT_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("common name", "common_name"),
    ("status", "status"),
    ("environment", "environment"),
    ("issuer", "issuer_id"),
    ("expires at", "expires_at"),
];

const VERSION_COLUMNS: &[Column] = &[
    ("version id", "id"),
    ("serial", "serial_number"),
    ("not before", "not_before"),
    ("not after", "not_after"),
    ("key", "key_algorithm"),
    ("size", "key_size"),
];

const AUDIT_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("timestamp", "timestamp"),
    ("actor", "actor"),
    ("action", "action"),
    ("resource type", "resource_type"),
    ("resource id", "resource_id"),
    ("category", "event_category"),
];

/// The one field of a renewal answer that is a secret.
const PRIVATE_KEY_FIELD: &str = "private_key_pem";

/// Managed certificate commands.
#[derive(Debug, Subcommand)]
pub enum CertificatesCmd {
    /// List certificates, with filters.
    #[command(
        after_help = "Example:\n  attestation certs certificates list --status Active --team t-web"
    )]
    List(ListArgs),
    /// Show a certificate.
    #[command(after_help = "Example:\n  attestation certs certificates show mc-api")]
    Show {
        /// Certificate id.
        id: String,
    },
    /// Create a managed certificate (status Pending: `renew` issues it),
    /// from options or `-f FILE` (JSON or YAML) with the options on top.
    #[command(after_help = "Example:\n  \
        attestation certs certificates create --id mc-api --name api --common-name api.example.com \\\n    \
        --san www.api.example.com --environment prod --owner o-ana --team t-web \\\n    \
        --issuer iss-local --renewal-policy rp-std --profile prof-web --tag app=web")]
    Create(CreateArgs),
    /// A certificate's issued versions, newest first.
    #[command(after_help = "Example:\n  attestation certs certificates versions mc-api")]
    Versions {
        /// Certificate id.
        id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Issue a new version now with a key the server generates. The
    /// private key is in the answer this once (the server keeps no copy):
    /// say where it goes, --key-out FILE or --print-key.
    #[command(after_help = "Examples:
  attestation certs certificates renew mc-api --key-out /etc/ssl/private/api.key
  attestation certs certificates renew mc-api --print-key > api.key   # umask applies")]
    Renew {
        /// Certificate id.
        id: String,
        #[command(flatten)]
        key: KeyDestination,
    },
    /// Revoke a certificate and all its versions.
    #[command(
        after_help = "Example:\n  attestation certs certificates revoke mc-api --reason keyCompromise"
    )]
    Revoke {
        /// Certificate id.
        id: String,
        /// RFC 5280 reason (server default: unspecified).
        #[arg(long, value_parser = PossibleValuesParser::new(REVOCATION_REASONS.iter().copied()))]
        reason: Option<String>,
    },
    /// Export the newest version's certificate and chain: PEM, or PKCS#12
    /// (certificates only: private keys are never exported).
    #[command(after_help = "Examples:
  attestation certs certificates export mc-api --format pem --out api-chain.pem
  attestation certs certificates export mc-api --format pkcs12 --password-file p12.pass --out api.p12")]
    Export {
        /// Certificate id.
        id: String,
        /// pem or pkcs12.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// PKCS#12 only: file holding the password (`-`: stdin; none: an
        /// empty password).
        #[arg(long = "password-file", value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Where to write (`-`: stdout).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Where a renewal's private key goes: exactly one, so that a key is
/// never lost by omission.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("key_destination").required(true).multiple(false)))]
pub struct KeyDestination {
    /// Write the private key (PEM) to FILE with mode 0600; an existing
    /// file is never overwritten.
    #[arg(long = "key-out", value_name = "FILE", group = "key_destination")]
    key_out: Option<PathBuf>,
    /// Print the private key to stdout (with -o json/yaml: the whole
    /// answer, key included).
    #[arg(long = "print-key", group = "key_destination")]
    print_key: bool,
}

/// `export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Leaf then chain, PEM.
    Pem,
    /// PKCS#12 (DER) with the certificates.
    Pkcs12,
}

/// `certs certificates list` options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this status.
    #[arg(long, value_parser = PossibleValuesParser::new(CERTIFICATE_STATUSES.iter().copied()))]
    status: Option<String>,
    /// Only this owner's.
    #[arg(long, value_name = "OWNER")]
    owner: Option<String>,
    /// Only this team's.
    #[arg(long, value_name = "TEAM")]
    team: Option<String>,
    /// Only this issuer's.
    #[arg(long, value_name = "ISSUER")]
    issuer: Option<String>,
    /// Only this environment's.
    #[arg(long)]
    environment: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

/// `certs certificates create` options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The certificate as a JSON or YAML file (`-`: stdin); options given
    /// as well override its fields.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Client-chosen id (generated when absent).
    #[arg(long)]
    id: Option<String>,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Subject common name.
    #[arg(long = "common-name", value_name = "CN")]
    common_name: Option<String>,
    /// Subject alternative name (repeatable).
    #[arg(long = "san", value_name = "NAME")]
    sans: Vec<String>,
    /// Environment label (prod, staging, …).
    #[arg(long)]
    environment: Option<String>,
    /// Owner id.
    #[arg(long, value_name = "OWNER")]
    owner: Option<String>,
    /// Team id.
    #[arg(long, value_name = "TEAM")]
    team: Option<String>,
    /// Issuer id.
    #[arg(long, value_name = "ISSUER")]
    issuer: Option<String>,
    /// Renewal policy id.
    #[arg(long = "renewal-policy", value_name = "POLICY")]
    renewal_policy: Option<String>,
    /// Certificate profile id (enforced at issuance).
    #[arg(long, value_name = "PROFILE")]
    profile: Option<String>,
    /// Deployment target id (repeatable).
    #[arg(long = "target", value_name = "TARGET")]
    targets: Vec<String>,
    /// A tag as KEY=VALUE (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE".to_owned()),
    }
}

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// List audit events, newest first.
    #[command(
        after_help = "Example:\n  attestation certs audit list --category cert_lifecycle --per-page 20"
    )]
    List {
        /// Only this category.
        #[arg(long, value_parser = ["cert_lifecycle", "auth", "config"])]
        category: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// `certs certificates …`.
pub async fn certificates(ctx: &CertsCtx, cmd: CertificatesCmd) -> CliResult<()> {
    let c = &ctx.client;
    match cmd {
        CertificatesCmd::List(args) => {
            let query = CertificateQuery {
                page: args.page.query().page,
                per_page: args.page.query().per_page,
                status: args.status,
                environment: args.environment,
                owner_id: args.owner,
                team_id: args.team,
                issuer_id: args.issuer,
            };
            page(ctx, &c.certificates(&query).await?, CERT_COLUMNS)
        }
        CertificatesCmd::Show { id } => object(ctx, &c.certificate(&id).await?),
        CertificatesCmd::Create(args) => {
            let tags: BTreeMap<String, String> = args.tags.into_iter().collect();
            let body = body_from(
                args.file.as_deref(),
                vec![
                    ("id", field(args.id)),
                    ("name", field(args.name)),
                    ("common_name", field(args.common_name)),
                    ("sans", list_field(args.sans)),
                    ("environment", field(args.environment)),
                    ("owner_id", field(args.owner)),
                    ("team_id", field(args.team)),
                    ("issuer_id", field(args.issuer)),
                    ("renewal_policy_id", field(args.renewal_policy)),
                    ("certificate_profile_id", field(args.profile)),
                    ("target_ids", list_field(args.targets)),
                    ("tags", field((!tags.is_empty()).then_some(tags))),
                ],
            )?;
            object(ctx, &c.create_certificate(&body).await?)
        }
        CertificatesCmd::Versions { id, page: p } => page(
            ctx,
            &c.certificate_versions(&id, &p.query()).await?,
            VERSION_COLUMNS,
        ),
        CertificatesCmd::Renew { id, key } => renew(ctx, &id, key).await,
        CertificatesCmd::Revoke { id, reason } => object(
            ctx,
            &c.revoke_certificate(&id, &RevokeRequest { reason }).await?,
        ),
        CertificatesCmd::Export {
            id,
            format,
            password_file,
            out,
        } => {
            let bytes = match format {
                ExportFormat::Pem => {
                    if password_file.is_some() {
                        return Err(CliError::Usage(
                            "--password-file applies to --format pkcs12 only".into(),
                        ));
                    }
                    c.export_pem(&id).await?.body.full_pem.into_bytes()
                }
                ExportFormat::Pkcs12 => {
                    if out == Path::new("-") && std::io::stdout().is_terminal() {
                        return Err(CliError::Usage(
                            "PKCS#12 is binary: give --out FILE, or redirect stdout".into(),
                        ));
                    }
                    let password = match &password_file {
                        Some(path) => Some(strip_one_newline(read_text(path, "--password-file")?)),
                        None => None,
                    };
                    c.export_pkcs12(&id, &Pkcs12Request { password }).await?
                }
            };
            if out == Path::new("-") {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(&bytes)?;
                stdout.flush()?;
            } else {
                std::fs::write(&out, &bytes).map_err(|e| {
                    CliError::Failure(format!("cannot write {}: {e}", out.display()))
                })?;
                eprintln!(
                    "attestation: certificate {id} exported to {} ({} bytes)",
                    out.display(),
                    bytes.len()
                );
            }
            Ok(())
        }
    }
}

/// `certs certificates renew`: the key file is created (0600, never over
/// an existing file) before the server is asked, so that a key is not
/// issued only to find nowhere to put it.
async fn renew(ctx: &CertsCtx, id: &str, dest: KeyDestination) -> CliResult<()> {
    let file = match &dest.key_out {
        Some(path) => Some((create_private(path)?, path.as_path())),
        None => None,
    };
    let res = match ctx.client.renew_certificate(id).await {
        Ok(res) => res,
        Err(err) => {
            if let Some((file, path)) = file {
                drop(file);
                // Ours, and empty: nothing was written to it.
                let _ = std::fs::remove_file(path);
            }
            return Err(err.into());
        }
    };
    let key = res.body.private_key_pem.as_str();
    let p = &ctx.printer;
    match file {
        None => {
            if p.format == Format::Table {
                eprintln!(
                    "attestation: certificate {id} renewed: version {}, serial {}, not after {}",
                    res.body.version_id, res.body.serial_number, res.body.not_after
                );
                write_stdout(key)
            } else {
                // Asked for explicitly: the answer as the server sent it.
                p.object_shown(&Shown::of(&res)?)
            }
        }
        Some((mut file, path)) => {
            file.write_all(key.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    CliError::Failure(format!(
                        "certificate {id} was renewed but its private key could not be written to {}: {e}; \
                         renew again",
                        path.display()
                    ))
                })?;
            let mut shown = Shown::of(&res)?;
            if let Value::Object(map) = &mut shown.json {
                map.remove(PRIVATE_KEY_FIELD);
            }
            // `-o json` prints `raw`: the server's answer less the key.
            shown.raw = shown.json.to_string();
            if p.format == Format::Table {
                if let Value::Object(map) = &mut shown.json {
                    map.insert(
                        "private_key".into(),
                        Value::from(format!("written to {} (mode 0600)", path.display())),
                    );
                }
            }
            p.object_shown(&shown)
        }
    }
}

/// Creates `path` for a private key: mode 0600 from the start, refusing
/// an existing file (an old key, or a link planted to redirect it).
fn create_private(path: &Path) -> CliResult<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::Failure(format!(
                "{} exists: refusing to overwrite a key file (nothing was renewed)",
                path.display()
            ))
        } else {
            CliError::Failure(format!("cannot create {}: {e}", path.display()))
        }
    })
}

/// `certs audit …`.
pub async fn audit(ctx: &CertsCtx, cmd: AuditCmd) -> CliResult<()> {
    match cmd {
        AuditCmd::List { category, page: p } => {
            let query = AuditQuery {
                page: p.query().page,
                per_page: p.query().per_page,
                category,
            };
            page(ctx, &ctx.client.audit_events(&query).await?, AUDIT_COLUMNS)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tags_are_key_value() {
        assert_eq!(parse_tag("app=web").unwrap(), ("app".into(), "web".into()));
        assert_eq!(parse_tag("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_tag("novalue").is_err());
        assert!(parse_tag("=x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        drop(create_private(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(create_private(&path).is_err());
    }
}
