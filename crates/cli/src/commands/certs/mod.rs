//! `attestation certs …`: the certificate-lifecycle API (certctl's, on the
//! listener next to the attestation API) through [`CertsClient`].
//!
//! Its own connection options, because it is another listener with its
//! own CA and its own credentials: `--certs-url`, `--api-key` (an API key,
//! or else the attestation `--token` / cached `auth login` token, which the
//! listener also accepts) and `--ca-file`.

mod auth;
mod catalog;
mod certificates;
mod issuers;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use attest_client::{CertsClient, Response};
use attest_proto::certs::common::Page;
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{join_arrays, strip_one_newline};
use crate::client::http_client_trusting;
use crate::error::{CliError, CliResult};
use crate::output::{to_json, Column, Format, Printer, Shown};

/// `attestation certs` options and command.
#[derive(Debug, Args)]
pub struct CertsArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    cmd: CertsCmd,
}

/// Where the certificate-lifecycle listener is and who calls it.
#[derive(Args)]
struct Connection {
    /// Base URL of the certificate-lifecycle API.
    #[arg(
        long = "certs-url",
        global = true,
        env = "ITL_CERTS_URL",
        default_value = "https://127.0.0.1:8443",
        value_name = "URL"
    )]
    url: String,
    /// API key (`Authorization: Bearer`). Prefer the environment variable:
    /// other local users can read a command line. Without one, the
    /// attestation --token or the cached `auth login` token is sent.
    #[arg(
        long = "api-key",
        global = true,
        env = "CERTCTL_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    api_key: Option<String>,
    /// PEM CA certificate(s) to trust for the listener's TLS, e.g.
    /// `<data_dir>/certs-tls/ca.pem` (system roots are trusted too).
    #[arg(
        long = "ca-file",
        global = true,
        env = "ITL_CERTS_CA_FILE",
        value_name = "PEM"
    )]
    ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The certificate-lifecycle commands.
#[derive(Debug, Subcommand)]
enum CertsCmd {
    /// Mint the first administrator's API key with the one-shot bootstrap
    /// token (CERTCTL_BOOTSTRAP_TOKEN), read from a file or stdin, never
    /// from the command line. The key is printed once.
    #[command(after_help = "Example:\n  \
        attestation certs bootstrap --token-file /run/secrets/certctl-bootstrap --actor admin-alice")]
    Bootstrap(auth::BootstrapArgs),
    /// Show who the credentials are: roles and effective permissions.
    #[command(after_help = "Example:\n  attestation certs whoami")]
    Whoami,
    /// API keys: list the actors holding roles, mint a key, revoke one.
    #[command(
        subcommand,
        after_help = "Example:\n  attestation certs keys create deploy-bot --role r-operator"
    )]
    Keys(auth::KeysCmd),
    /// Roles.
    #[command(subcommand, after_help = "Example:\n  attestation certs roles list")]
    Roles(auth::RolesCmd),
    /// Issuers (a GenericCA generates or imports its root CA).
    #[command(
        subcommand,
        after_help = "Example:\n  attestation certs issuers create --name 'Local CA' --common-name 'Example Root CA'"
    )]
    Issuers(issuers::IssuersCmd),
    /// An issuer's CA hierarchy: list, sign an intermediate, retire.
    #[command(
        subcommand,
        after_help = "Example:\n  attestation certs intermediates create iss-local --name issuing-1 --parent ica-…"
    )]
    Intermediates(issuers::IntermediatesCmd),
    /// Certificate profiles (key algorithms, validity, EKUs, SAN patterns).
    #[command(
        subcommand,
        after_help = "Example:\n  attestation certs profiles create -f web-profile.yaml"
    )]
    Profiles(catalog::ProfilesCmd),
    /// Certificate owners.
    #[command(
        subcommand,
        after_help = "Example:\n  attestation certs owners create --name Ana --email ana@example.com --team t-web"
    )]
    Owners(catalog::OwnersCmd),
    /// Teams.
    #[command(
        subcommand,
        after_help = "Example:\n  attestation certs teams create --id t-web --name Web"
    )]
    Teams(catalog::TeamsCmd),
    /// Renewal policies.
    #[command(
        subcommand,
        name = "renewal-policies",
        after_help = "Example:\n  attestation certs renewal-policies create --name standard --max-retries 3"
    )]
    RenewalPolicies(catalog::PoliciesCmd),
    /// Managed certificates: list, create, renew (issue), revoke, export.
    #[command(
        subcommand,
        after_help = "Example:\n  attestation certs certificates renew mc-api --key-out api.key"
    )]
    Certificates(certificates::CertificatesCmd),
    /// The audit log in certctl's shape (the one hash-chained log).
    #[command(
        subcommand,
        after_help = "Example:\n  attestation certs audit list --category cert_lifecycle"
    )]
    Audit(certificates::AuditCmd),
}

/// What every certs command needs.
pub struct CertsCtx {
    /// The client with the resolved credentials.
    pub client: CertsClient,
    /// The output format.
    pub printer: Printer,
}

/// The attestation client's options the certs group falls back on.
pub struct Fallback<'a> {
    /// `--token` / `ATTESTATION_TOKEN`.
    pub token: Option<String>,
    /// `--ca-cert`, for refreshing the cached `auth login` token.
    pub ca_cert: Option<&'a Path>,
    /// `-o`.
    pub format: Format,
}

/// Runs a certs command.
pub async fn run(args: CertsArgs, fallback: Fallback<'_>) -> CliResult<()> {
    let CertsArgs { conn, cmd } = args;
    let http = http_client_trusting(conn.ca_file.as_deref(), "--ca-file")?;
    let anonymous = CertsClient::new(&conn.url, http);
    let client = if matches!(cmd, CertsCmd::Bootstrap(_)) {
        anonymous
    } else {
        match credentials(conn.api_key, &fallback).await? {
            Some(token) => anonymous.with_bearer(token),
            None => anonymous,
        }
    };
    let ctx = CertsCtx {
        client,
        printer: Printer::new(fallback.format),
    };
    let result = match cmd {
        CertsCmd::Bootstrap(args) => auth::bootstrap(&ctx, args).await,
        CertsCmd::Whoami => auth::whoami(&ctx).await,
        CertsCmd::Keys(cmd) => auth::keys(&ctx, cmd).await,
        CertsCmd::Roles(cmd) => auth::roles(&ctx, cmd).await,
        CertsCmd::Issuers(cmd) => issuers::issuers(&ctx, cmd).await,
        CertsCmd::Intermediates(cmd) => issuers::intermediates(&ctx, cmd).await,
        CertsCmd::Profiles(cmd) => catalog::profiles(&ctx, cmd).await,
        CertsCmd::Owners(cmd) => catalog::owners(&ctx, cmd).await,
        CertsCmd::Teams(cmd) => catalog::teams(&ctx, cmd).await,
        CertsCmd::RenewalPolicies(cmd) => catalog::policies(&ctx, cmd).await,
        CertsCmd::Certificates(cmd) => certificates::certificates(&ctx, cmd).await,
        CertsCmd::Audit(cmd) => certificates::audit(&ctx, cmd).await,
    };
    result.map_err(|err| tls_hint(err, &conn.url, conn.ca_file.is_some()))
}

/// The bearer token: `--api-key`, else the attestation token the listener
/// also accepts (operators' OIDC tokens, the break-glass token).
async fn credentials(
    api_key: Option<String>,
    fallback: &Fallback<'_>,
) -> CliResult<Option<String>> {
    if let Some(key) = api_key.filter(|k| !k.is_empty()) {
        return Ok(Some(key));
    }
    if let Some(token) = fallback.token.clone().filter(|t| !t.is_empty()) {
        return Ok(Some(token));
    }
    let http = crate::client::http_client(fallback.ca_cert)?;
    super::auth::cached_token(&http).await
}

/// A certificate the client does not trust is the first thing an operator
/// meets with the listener's own CA: say which option fixes it.
fn tls_hint(err: CliError, url: &str, ca_file_given: bool) -> CliError {
    match err {
        CliError::Connection(msg)
            if !ca_file_given
                && url.starts_with("https://")
                && (msg.contains("certificate") || msg.contains("UnknownIssuer")) =>
        {
            CliError::Connection(format!(
                "{msg}\n  (trust the listener's CA with --ca-file or ITL_CERTS_CA_FILE, \
                 e.g. <data_dir>/certs-tls/ca.pem)"
            ))
        }
        other => other,
    }
}

// --- output ---------------------------------------------------------------

/// Prints a list answer: its `rows` (with `total`) in a table, the whole
/// answer as JSON (the server's bytes) or YAML.
fn list_of<T: Serialize, R: Serialize>(
    ctx: &CertsCtx,
    res: &Response<T>,
    rows: &[R],
    total: Option<i64>,
    columns: &[Column],
) -> CliResult<()> {
    let json = if ctx.printer.format == Format::Table {
        match to_json(&rows)? {
            Value::Array(rows) => Value::Array(rows.iter().map(join_arrays).collect()),
            other => other,
        }
    } else {
        to_json(&res.body)?
    };
    let shown = Shown {
        raw: res.raw.clone(),
        json,
        total: total.and_then(|t| u64::try_from(t).ok()),
    };
    ctx.printer.list_shown(&shown, columns)
}

/// [`list_of`] a `{data, total, page, per_page}` page.
fn page<T: Serialize>(
    ctx: &CertsCtx,
    res: &Response<Page<T>>,
    columns: &[Column],
) -> CliResult<()> {
    list_of(ctx, res, &res.body.data, Some(res.body.total), columns)
}

/// Prints an object answer; in a table nested objects become `a.b` lines
/// and string lists are comma-separated.
fn object<T: Serialize>(ctx: &CertsCtx, res: &Response<T>) -> CliResult<()> {
    let mut shown = Shown::of(res)?;
    if ctx.printer.format == Format::Table {
        let mut flat = Map::new();
        flatten("", &shown.json, &mut flat);
        shown.json = join_arrays(&Value::Object(flat));
    }
    ctx.printer.object_shown(&shown)
}

fn flatten(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(map) if prefix.is_empty() || !map.is_empty() => {
            for (key, v) in map {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

// --- input ----------------------------------------------------------------

/// Reads a secret (token, password) from `path`, or stdin for `-` (on a
/// terminal: a prompt without echo); one trailing newline is dropped.
/// `what` names the option in errors, `prompt` the secret on a terminal.
fn read_secret(path: &Path, what: &str, prompt: &str) -> CliResult<String> {
    let text = if path == Path::new("-") && std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{prompt} (not echoed): "))
            .map_err(|e| CliError::Failure(format!("cannot read {what} from the terminal: {e}")))?
    } else {
        read_text(path, what)?
    };
    let text = strip_one_newline(text);
    if text.is_empty() {
        return Err(CliError::Usage(format!("{what} is empty")));
    }
    Ok(text)
}

/// The text of `path`, or of stdin for `-`.
fn read_text(path: &Path, what: &str) -> CliResult<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Usage(format!("cannot read {what} from stdin: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {what} {}: {e}", path.display())))
}

/// A request body from `-f FILE` (JSON or YAML; `-` is stdin) with the
/// options given on the command line on top (`flags`: field and value,
/// `None` when not given).
///
/// Fields the body type does not know are refused rather than ignored: a
/// misspelt `max_ttl_seconds` would otherwise silently take the server's
/// default.
fn body_from<T: DeserializeOwned + Serialize>(
    file: Option<&Path>,
    flags: Vec<(&str, Option<Value>)>,
) -> CliResult<T> {
    let (mut fields, source) = match file {
        Some(path) => {
            let text = read_text(path, "-f")?;
            let source = format!("-f {}", path.display());
            let value =
                parse_document(&text).map_err(|e| CliError::Usage(format!("{source}: {e}")))?;
            match value {
                Value::Object(map) => (map, source),
                _ => {
                    return Err(CliError::Usage(format!(
                        "{source}: expected an object (a mapping of fields)"
                    )))
                }
            }
        }
        None => (Map::new(), "the options".to_owned()),
    };
    let given: Vec<String> = fields.keys().cloned().collect();
    for (key, value) in flags {
        if let Some(value) = value {
            fields.insert(key.to_owned(), value);
        }
    }
    let body: T = serde_json::from_value(Value::Object(fields))
        .map_err(|e| CliError::Usage(format!("{source}: {e}")))?;
    if let Value::Object(known) = to_json(&body)? {
        let unknown: Vec<&String> = given.iter().filter(|k| !known.contains_key(*k)).collect();
        if !unknown.is_empty() {
            let mut names: Vec<&String> = known.keys().collect();
            names.sort();
            return Err(CliError::Usage(format!(
                "{source}: unknown field(s) {} (known: {})",
                join(&unknown),
                join(&names)
            )));
        }
    }
    Ok(body)
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// JSON when it looks like JSON (clearer errors), YAML otherwise.
fn parse_document(text: &str) -> Result<Value, String> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
    } else {
        serde_norway::from_str(text).map_err(|e| format!("not YAML: {e}"))
    }
}

/// An option's value as a body field.
fn field<T: Serialize>(value: Option<T>) -> Option<Value> {
    value.and_then(|v| serde_json::to_value(v).ok())
}

/// A repeated option as a list field (`None` when not given).
fn list_field(values: Vec<String>) -> Option<Value> {
    (!values.is_empty()).then(|| Value::from(values))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use attest_proto::certs::catalog::ProfileInput;
    use serde_json::json;

    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn bodies_come_from_yaml_or_json_with_options_on_top() {
        let yaml = file("name: web\nmax_ttl_seconds: 3600\nallowed_ekus: [serverAuth]\n");
        let body: ProfileInput = body_from(
            Some(yaml.path()),
            vec![("name", field(Some("web-2"))), ("id", None)],
        )
        .unwrap();
        assert_eq!(body.name.as_deref(), Some("web-2"));
        assert_eq!(body.max_ttl_seconds, Some(3600));
        assert_eq!(body.allowed_ekus, Some(vec!["serverAuth".to_owned()]));
        let json_file = file(r#"{"name": "web", "enabled": false}"#);
        let body: ProfileInput = body_from(Some(json_file.path()), vec![]).unwrap();
        assert_eq!(body.enabled, Some(false));
    }

    #[test]
    fn unknown_fields_and_bad_documents_are_refused() {
        let typo = file("name: web\nmax_ttl_secs: 3600\n");
        let err = body_from::<ProfileInput>(Some(typo.path()), vec![]).unwrap_err();
        assert!(err.to_string().contains("`max_ttl_secs`"), "{err}");
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
        let list = file("- a\n- b\n");
        assert!(body_from::<ProfileInput>(Some(list.path()), vec![]).is_err());
        let broken = file("{\"name\": ");
        assert!(body_from::<ProfileInput>(Some(broken.path()), vec![]).is_err());
    }

    #[test]
    fn nested_objects_are_flattened_for_tables() {
        let mut out = Map::new();
        flatten(
            "",
            &json!({"id": "i", "config": {"subject": "CN=x", "empty": {}}, "tags": {}}),
            &mut out,
        );
        assert_eq!(
            Value::Object(out),
            json!({"id": "i", "config.subject": "CN=x", "config.empty": {}, "tags": {}})
        );
    }
}
