//! `attestation auth …`: OIDC login (password grant or device code), the
//! token cache, logout and whoami.
//!
//! The cache lives at `$XDG_CONFIG_HOME/attestation/token.json` (or
//! `~/.config/attestation/token.json`), mode 0600. Tokens are never
//! printed.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::machine::write_private;
use crate::client::connection_error;
use crate::error::{CliError, CliResult};
use crate::output::{to_yaml, write_stdout, Format, Printer};

/// Seconds before expiry at which a cached token counts as expired.
const EXPIRY_SLACK: u64 = 30;

/// Authentication commands.
#[derive(Debug, Subcommand)]
pub enum AuthCmd {
    /// Log in against the OIDC issuer and cache the token.
    ///
    /// Password grant with --username (the password is prompted without
    /// echo, or read from stdin with --password-stdin), or the device-code
    /// flow with --device.
    #[command(after_help = "Examples:\n  \
        attestation auth login --issuer https://sso.example/realms/itl --username alice\n  \
        printf '%s\\n' \"$PW\" | attestation auth login --username alice --password-stdin\n  \
        attestation auth login --device")]
    Login(LoginArgs),
    /// Delete the cached token.
    #[command(after_help = "Example:\n  attestation auth logout")]
    Logout,
    /// Show who the current token belongs to (decoded locally, not
    /// verified).
    #[command(after_help = "Example:\n  attestation auth whoami --output json")]
    Whoami,
}

/// `auth login` options.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// OIDC issuer URL (discovery at /.well-known/openid-configuration).
    #[arg(long, env = "ITL_OIDC_ISSUER")]
    issuer: String,
    /// OIDC client id.
    #[arg(
        long = "client-id",
        env = "ITL_OIDC_CLIENT_ID",
        default_value = "attestation-cli"
    )]
    client_id: String,
    /// User name for the password grant.
    #[arg(long, conflicts_with = "device", required_unless_present = "device")]
    username: Option<String>,
    /// Read the password from the first line of stdin.
    #[arg(long = "password-stdin", requires = "username")]
    password_stdin: bool,
    /// Use the device-code flow (open a URL in any browser).
    #[arg(long)]
    device: bool,
    /// Scopes to request.
    #[arg(long, default_value = "openid profile email")]
    scope: String,
}

/// The cached token (`token.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedToken {
    /// The bearer token.
    pub access_token: String,
    /// For silent renewal.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Unix seconds; absent when the issuer did not say.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Where it came from.
    pub issuer: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Where to refresh it.
    pub token_endpoint: String,
}

/// Path of the token cache.
pub fn cache_path() -> CliResult<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(CliError::Failure(
                    "neither XDG_CONFIG_HOME nor HOME is set: cannot locate the token cache".into(),
                ))
            }
        },
    };
    Ok(base.join("attestation").join("token.json"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn load_cache() -> CliResult<Option<CachedToken>> {
    let path = cache_path()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            CliError::Failure(format!(
                "the token cache {} is unreadable ({e}); run `attestation auth logout`",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::Failure(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn store_cache(token: &CachedToken) -> CliResult<PathBuf> {
    let path = cache_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Failure(format!("cannot create {}: {e}", dir.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let bytes = serde_json::to_vec_pretty(token)
        .map_err(|e| CliError::Failure(format!("cannot encode the token cache: {e}")))?;
    // Write a private temporary file, then rename it over the cache.
    let tmp = path.with_extension("json.tmp");
    write_private(&tmp, &bytes)?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| CliError::Failure(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// The token to use when `--token` was not given: the cached one,
/// refreshed first when it expired and a refresh token is at hand.
/// `None` when not logged in.
pub async fn cached_token(http: &reqwest::Client) -> CliResult<Option<String>> {
    let Some(cached) = load_cache()? else {
        return Ok(None);
    };
    let expired = cached
        .expires_at
        .is_some_and(|at| at <= now() + EXPIRY_SLACK);
    if !expired {
        return Ok(Some(cached.access_token));
    }
    let Some(refresh) = cached.refresh_token.clone() else {
        eprintln!("attestation: the cached token expired; run `attestation auth login`");
        return Ok(None);
    };
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", cached.client_id.as_str()),
    ];
    match token_request(http, &cached.token_endpoint, &form).await {
        Ok(TokenOutcome::Token(answer)) => {
            let fresh = to_cache(
                answer,
                &cached.issuer,
                &cached.client_id,
                &cached.token_endpoint,
                Some(refresh),
            )?;
            store_cache(&fresh)?;
            Ok(Some(fresh.access_token))
        }
        Ok(TokenOutcome::Error { error, .. }) => {
            eprintln!("attestation: refreshing the cached token failed ({error}); run `attestation auth login`");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Runs an auth command. `http` trusts `--ca-cert`; `token` is the
/// resolved token (for whoami).
pub async fn run(
    cmd: AuthCmd,
    http: &reqwest::Client,
    token: Option<String>,
    printer: Printer,
) -> CliResult<()> {
    match cmd {
        AuthCmd::Login(args) => login(args, http).await,
        AuthCmd::Logout => {
            let path = cache_path()?;
            match std::fs::remove_file(&path) {
                Ok(()) => eprintln!("logged out (removed {})", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    eprintln!("not logged in (no {})", path.display());
                }
                Err(e) => {
                    return Err(CliError::Failure(format!(
                        "cannot remove {}: {e}",
                        path.display()
                    )))
                }
            }
            Ok(())
        }
        AuthCmd::Whoami => whoami(token.as_deref(), printer),
    }
}

#[derive(Debug, Deserialize)]
struct Discovery {
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

enum TokenOutcome {
    Token(TokenAnswer),
    Error {
        error: String,
        description: Option<String>,
    },
}

async fn token_request(
    http: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> CliResult<TokenOutcome> {
    let res = http
        .post(endpoint)
        .form(form)
        .send()
        .await
        .map_err(connection_error)?;
    let status = res.status();
    let body = res.text().await.map_err(connection_error)?;
    if status.is_success() {
        return serde_json::from_str(&body)
            .map(TokenOutcome::Token)
            .map_err(|e| {
                CliError::Failure(format!(
                    "the token endpoint answered without a usable token: {e}"
                ))
            });
    }
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    match parsed.get("error").and_then(Value::as_str) {
        Some(error) => Ok(TokenOutcome::Error {
            error: error.to_string(),
            description: parsed
                .get("error_description")
                .and_then(Value::as_str)
                .map(str::to_string),
        }),
        None => Err(CliError::from_response(status.as_u16(), &body)),
    }
}

fn to_cache(
    answer: TokenAnswer,
    issuer: &str,
    client_id: &str,
    token_endpoint: &str,
    old_refresh: Option<String>,
) -> CliResult<CachedToken> {
    Ok(CachedToken {
        access_token: answer.access_token,
        refresh_token: answer.refresh_token.or(old_refresh),
        expires_at: answer.expires_in.map(|s| now() + s),
        issuer: issuer.to_string(),
        client_id: client_id.to_string(),
        token_endpoint: token_endpoint.to_string(),
    })
}

async fn login(args: LoginArgs, http: &reqwest::Client) -> CliResult<()> {
    let issuer = args.issuer.trim_end_matches('/').to_string();
    let discovery_url = format!("{issuer}/.well-known/openid-configuration");
    let res = http
        .get(&discovery_url)
        .send()
        .await
        .map_err(connection_error)?;
    let status = res.status();
    let body = res.text().await.map_err(connection_error)?;
    if !status.is_success() {
        return Err(CliError::from_response(status.as_u16(), &body));
    }
    let discovery: Discovery = serde_json::from_str(&body).map_err(|e| {
        CliError::Failure(format!(
            "{discovery_url} is not an OpenID configuration: {e}"
        ))
    })?;
    let answer = if args.device {
        device_flow(http, &discovery, &args).await?
    } else {
        let username = args.username.clone().unwrap_or_default();
        let password = read_password(&username, args.password_stdin)?;
        let form = [
            ("grant_type", "password"),
            ("username", username.as_str()),
            ("password", password.as_str()),
            ("client_id", args.client_id.as_str()),
            ("scope", args.scope.as_str()),
        ];
        match token_request(http, &discovery.token_endpoint, &form).await? {
            TokenOutcome::Token(answer) => answer,
            TokenOutcome::Error { error, description } => {
                return Err(login_refused(&error, description));
            }
        }
    };
    let cached = to_cache(
        answer,
        &issuer,
        &args.client_id,
        &discovery.token_endpoint,
        None,
    )?;
    let identity = claims(&cached.access_token)
        .map(|c| identity_name(&c))
        .unwrap_or_else(|| "(opaque token)".into());
    let path = store_cache(&cached)?;
    eprintln!(
        "logged in as {identity}; token cached in {}",
        path.display()
    );
    Ok(())
}

fn login_refused(error: &str, description: Option<String>) -> CliError {
    let text = match description {
        Some(d) => format!("login refused: {error}: {d}"),
        None => format!("login refused: {error}"),
    };
    CliError::Http {
        status: 401,
        detail: text,
    }
}

fn read_password(username: &str, from_stdin: bool) -> CliResult<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        rpassword::prompt_password(format!("Password for {username}: ")).map_err(|e| {
            CliError::Failure(format!(
                "cannot read the password from the terminal ({e}); use --password-stdin"
            ))
        })?
    };
    if password.is_empty() {
        return Err(CliError::Usage("empty password".into()));
    }
    Ok(password)
}

#[derive(Debug, Deserialize)]
struct DeviceAnswer {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    interval: Option<u64>,
}

async fn device_flow(
    http: &reqwest::Client,
    discovery: &Discovery,
    args: &LoginArgs,
) -> CliResult<TokenAnswer> {
    let Some(endpoint) = &discovery.device_authorization_endpoint else {
        return Err(CliError::Failure(
            "the issuer does not offer the device-code flow (no device_authorization_endpoint)"
                .into(),
        ));
    };
    let res = http
        .post(endpoint)
        .form(&[
            ("client_id", args.client_id.as_str()),
            ("scope", args.scope.as_str()),
        ])
        .send()
        .await
        .map_err(connection_error)?;
    let status = res.status();
    let body = res.text().await.map_err(connection_error)?;
    if !status.is_success() {
        return Err(CliError::from_response(status.as_u16(), &body));
    }
    let device: DeviceAnswer = serde_json::from_str(&body)
        .map_err(|e| CliError::Failure(format!("unexpected device authorization answer: {e}")))?;
    eprintln!(
        "To log in, open {} and enter the code {}",
        device.verification_uri, device.user_code
    );
    if let Some(complete) = &device.verification_uri_complete {
        eprintln!("(or open {complete})");
    }
    let mut interval = Duration::from_secs(device.interval.unwrap_or(5).max(1));
    let deadline =
        std::time::Instant::now() + Duration::from_secs(device.expires_in.unwrap_or(600));
    let mut spinner = Spinner::new("waiting for the browser login");
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device.device_code.as_str()),
        ("client_id", args.client_id.as_str()),
    ];
    loop {
        let wait_until = std::time::Instant::now() + interval;
        while std::time::Instant::now() < wait_until {
            spinner.tick();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if std::time::Instant::now() > deadline {
            spinner.done();
            return Err(CliError::Failure(
                "the device code expired; run login again".into(),
            ));
        }
        match token_request(http, &discovery.token_endpoint, &form).await? {
            TokenOutcome::Token(answer) => {
                spinner.done();
                return Ok(answer);
            }
            TokenOutcome::Error { error, description } => match error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += Duration::from_secs(5),
                _ => {
                    spinner.done();
                    return Err(login_refused(&error, description));
                }
            },
        }
    }
}

/// A one-line spinner on stderr, shown only on a terminal.
struct Spinner {
    message: &'static str,
    frame: usize,
    enabled: bool,
}

impl Spinner {
    fn new(message: &'static str) -> Self {
        Self {
            message,
            frame: 0,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self) {
        if !self.enabled {
            return;
        }
        const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
        self.frame = (self.frame + 1) % FRAMES.len();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{} {}", FRAMES[self.frame], self.message);
        let _ = err.flush();
    }

    fn done(&mut self) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.enabled = false;
        }
    }
}

/// The JWT payload of `token`, decoded without verification.
fn claims(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn identity_name(claims: &Map<String, Value>) -> String {
    ["preferred_username", "email", "sub"]
        .iter()
        .find_map(|k| claims.get(*k).and_then(Value::as_str))
        .unwrap_or("(unknown)")
        .to_string()
}

fn whoami(token: Option<&str>, printer: Printer) -> CliResult<()> {
    let Some(token) = token else {
        return Err(CliError::Http {
            status: 401,
            detail: "not logged in: run `attestation auth login` or pass --token".into(),
        });
    };
    let info = match claims(token) {
        Some(c) => {
            let pick = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
            let roles = c
                .get("realm_access")
                .and_then(|r| r.get("roles"))
                .cloned()
                .unwrap_or(Value::Null);
            let expires = c.get("exp").and_then(Value::as_u64).map(|exp| {
                if exp <= now() {
                    format!("{exp} (expired)")
                } else {
                    format!("{exp} (in {} s)", exp - now())
                }
            });
            json!({
                "identity": identity_name(&c),
                "subject": pick("sub"),
                "email": pick("email"),
                "issuer": pick("iss"),
                "audience": pick("aud"),
                "roles": roles,
                "expires": expires,
                "token_type": "jwt",
            })
        }
        None => json!({
            "identity": "(opaque bearer token, e.g. the break-glass token)",
            "token_type": "opaque",
        }),
    };
    let text = match printer.format {
        Format::Json => format!("{info}\n"),
        Format::Yaml => to_yaml(&info)?,
        Format::Table => printer.fields(&info),
    };
    write_stdout(&text)
}
