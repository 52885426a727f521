//! Server configuration: command-line flags over `ITL_*` environment
//! variables over an optional TOML file over built-in defaults.
//!
//! Secrets (`ITL_ADMIN_TOKEN`, `ITL_CA_KEY_PASSPHRASE`) are accepted only from
//! the environment or the file, never as flags (flags show up in `ps`), and
//! are held as [`SecretString`] so they never print. Unknown keys in the file
//! are an error; unknown `ITL_*` variables are reported as warnings so a typo
//! does not silently fall back to a default.
//!
//! Every setting is documented in `docs/configuration.md`; a test checks that
//! the document and [`SETTINGS`] agree.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub mod delivery;
pub mod extensions;
pub mod machines;
pub mod quote_policy;

use clap::Args;
use secrecy::SecretString;
use serde::Deserialize;

/// Defaults, in one place.
pub mod defaults {
    /// Where the server listens when nothing says otherwise.
    pub const LISTEN: &str = "127.0.0.1:9000";
    /// The embedded database lives under the data directory.
    pub const DATA_DIR: &str = "./data";
    /// Largest request body accepted (1 MiB).
    pub const MAX_BODY_BYTES: usize = 1024 * 1024;
    /// Default operator role looked for in OIDC tokens.
    pub const OIDC_OPERATOR_ROLE: &str = "attestation-operator";
    /// Minimum seconds between two JWKS refreshes caused by unknown `kid`s.
    pub const OIDC_JWKS_REFRESH_SECONDS: u64 = 30;
    /// Seconds in-flight requests get to finish after SIGTERM / Ctrl-C.
    pub const SHUTDOWN_TIMEOUT_SECONDS: u64 = 30;
}

/// One documented setting: its TOML key, environment variable and whether it
/// is a secret (environment or file only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSpec {
    /// Key in the TOML file.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Command-line flag, if the setting has one.
    pub flag: Option<&'static str>,
    /// Secrets are never flags and never printed.
    pub secret: bool,
}

const fn s(key: &'static str, env: &'static str, flag: Option<&'static str>) -> SettingSpec {
    SettingSpec {
        key,
        env,
        flag,
        secret: false,
    }
}

const fn secret(key: &'static str, env: &'static str) -> SettingSpec {
    SettingSpec {
        key,
        env,
        flag: None,
        secret: true,
    }
}

/// Every setting the server reads.
pub const SETTINGS: &[SettingSpec] = &[
    s("listen", "ITL_LISTEN", Some("--listen")),
    s("database_url", "DATABASE_URL", Some("--database-url")),
    s("data_dir", "ITL_DATA_DIR", Some("--data-dir")),
    s(
        "db_max_connections",
        "ITL_DB_MAX_CONNECTIONS",
        Some("--db-max-connections"),
    ),
    s(
        "max_body_bytes",
        "ITL_MAX_BODY_BYTES",
        Some("--max-body-bytes"),
    ),
    s(
        "shutdown_timeout_seconds",
        "ITL_SHUTDOWN_TIMEOUT_SECONDS",
        Some("--shutdown-timeout-seconds"),
    ),
    s("log_format", "ITL_LOG_FORMAT", Some("--log-format")),
    secret("admin_token", "ITL_ADMIN_TOKEN"),
    s("oidc_issuer", "ITL_OIDC_ISSUER", Some("--oidc-issuer")),
    s(
        "oidc_audience",
        "ITL_OIDC_AUDIENCE",
        Some("--oidc-audience"),
    ),
    s(
        "oidc_operator_role",
        "ITL_OIDC_OPERATOR_ROLE",
        Some("--oidc-operator-role"),
    ),
    s(
        "oidc_client_id",
        "ITL_OIDC_CLIENT_ID",
        Some("--oidc-client-id"),
    ),
    s(
        "oidc_jwks_refresh_seconds",
        "ITL_OIDC_JWKS_REFRESH_SECONDS",
        Some("--oidc-jwks-refresh-seconds"),
    ),
    s(
        "client_cert_header",
        "ITL_CLIENT_CERT_HEADER",
        Some("--client-cert-header"),
    ),
    s("ca_dir", "ITL_CA_DIR", Some("--ca-dir")),
    s("ca_algorithm", "ITL_CA_ALGORITHM", Some("--ca-algorithm")),
    secret("ca_key_passphrase", "ITL_CA_KEY_PASSPHRASE"),
    s("public_url", "ITL_PUBLIC_URL", None),
    s("image_factory_url", "ITL_IMAGE_FACTORY_URL", None),
    s(
        "image_factory_timeout_seconds",
        "ITL_IMAGE_FACTORY_TIMEOUT_SECONDS",
        None,
    ),
    s("talos_version", "ITL_TALOS_VERSION", None),
    s("role_extensions", "ITL_ROLE_EXTENSIONS", None),
    s("register_auto_approve", "ITL_REGISTER_AUTO_APPROVE", None),
    s("require_nonce", "ITL_REQUIRE_NONCE", None),
    s("require_quote", "ITL_REQUIRE_QUOTE", None),
    s("nonce_capacity", "ITL_NONCE_CAPACITY", None),
    s("dual_control_roles", "ITL_DUAL_CONTROL_ROLES", None),
    s(
        "dual_control_window_seconds",
        "ITL_DUAL_CONTROL_WINDOW_SECONDS",
        None,
    ),
    s("quote_policy_file", "ITL_QUOTE_POLICY_FILE", None),
    s("config_cache_dir", "ITL_CONFIG_CACHE_DIR", None),
    s(
        "require_encrypted_delivery",
        "ITL_REQUIRE_ENCRYPTED_DELIVERY",
        None,
    ),
    s("enrollment_cert_days", "ITL_ENROLLMENT_CERT_DAYS", None),
    s("require_ak_credential", "ITL_REQUIRE_AK_CREDENTIAL", None),
    s("crl_validity_hours", "ITL_CRL_VALIDITY_HOURS", None),
    s("extensions_disabled", "ITL_EXTENSIONS_DISABLED", None),
    s("machine_auth", "ITL_MACHINE_AUTH", None),
];

/// Environment variables that are read elsewhere (not by [`Settings`]) and
/// must not be reported as unknown.
const OTHER_KNOWN_ENV: &[&str] = &["ITL_CONFIG_FILE", "ITL_LOG"];

/// Flags of `attestation serve`. Each flag overrides its environment
/// variable, which overrides the file.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file [env: ITL_CONFIG_FILE]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [env: ITL_LISTEN] [default: 127.0.0.1:9000]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// sqlite://… or postgres://… [env: DATABASE_URL] [default: SQLite under the data dir]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Directory for the embedded database and the CA [env: ITL_DATA_DIR] [default: ./data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database pool size [env: ITL_DB_MAX_CONNECTIONS] [default: 16, SQLite 8]
    #[arg(long, value_name = "N")]
    pub db_max_connections: Option<u32>,
    /// Largest accepted request body [env: ITL_MAX_BODY_BYTES] [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Grace period for in-flight requests at shutdown [env: ITL_SHUTDOWN_TIMEOUT_SECONDS] [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub shutdown_timeout_seconds: Option<u64>,
    /// Log format: text or json [env: ITL_LOG_FORMAT] [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// OIDC issuer URL; enables bearer JWT authentication [env: ITL_OIDC_ISSUER]
    #[arg(long, value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// Required `aud` of operator tokens [env: ITL_OIDC_AUDIENCE]
    #[arg(long, value_name = "AUD")]
    pub oidc_audience: Option<String>,
    /// Role operators must hold [env: ITL_OIDC_OPERATOR_ROLE] [default: attestation-operator]
    #[arg(long, value_name = "ROLE")]
    pub oidc_operator_role: Option<String>,
    /// Client whose resource_access roles count; all clients when unset [env: ITL_OIDC_CLIENT_ID]
    #[arg(long, value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// Minimum seconds between JWKS refreshes [env: ITL_OIDC_JWKS_REFRESH_SECONDS] [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub oidc_jwks_refresh_seconds: Option<u64>,
    /// Trust the X-Client-Cert header set by a TLS proxy [env: ITL_CLIENT_CERT_HEADER] [default: false]
    #[arg(long, value_name = "BOOL")]
    pub client_cert_header: Option<bool>,
    /// Directory of the enrollment CA [env: ITL_CA_DIR] [default: <data dir>/enrollment-ca]
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Key algorithm of a newly created CA: ec-p384 or rsa-4096 [env: ITL_CA_ALGORITHM] [default: ec-p384]
    #[arg(long, value_name = "ALG")]
    pub ca_algorithm: Option<CaAlgorithm>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("expected `text` or `json`, got `{other}`")),
        }
    }
}

/// Key algorithm for a newly created enrollment CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CaAlgorithm {
    /// ECDSA on P-384 with SHA-384.
    #[default]
    EcP384,
    /// RSA 4096 with PKCS#1 v1.5 SHA-256.
    Rsa4096,
}

impl FromStr for CaAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ec-p384" => Ok(Self::EcP384),
            "rsa-4096" => Ok(Self::Rsa4096),
            other => Err(format!("expected `ec-p384` or `rsa-4096`, got `{other}`")),
        }
    }
}

/// The TOML file. Every field is optional; unknown keys are rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    db_max_connections: Option<u32>,
    max_body_bytes: Option<usize>,
    shutdown_timeout_seconds: Option<u64>,
    log_format: Option<LogFormat>,
    admin_token: Option<String>,
    oidc_issuer: Option<String>,
    oidc_audience: Option<String>,
    oidc_operator_role: Option<String>,
    oidc_client_id: Option<String>,
    oidc_jwks_refresh_seconds: Option<u64>,
    client_cert_header: Option<bool>,
    ca_dir: Option<PathBuf>,
    ca_algorithm: Option<CaAlgorithm>,
    ca_key_passphrase: Option<String>,
    public_url: Option<String>,
    image_factory_url: Option<String>,
    image_factory_timeout_seconds: Option<u64>,
    talos_version: Option<String>,
    role_extensions: Option<std::collections::BTreeMap<String, Vec<String>>>,
    register_auto_approve: Option<bool>,
    require_nonce: Option<bool>,
    require_quote: Option<bool>,
    nonce_capacity: Option<u32>,
    dual_control_roles: Option<Vec<String>>,
    dual_control_window_seconds: Option<u64>,
    quote_policy_file: Option<PathBuf>,
    config_cache_dir: Option<PathBuf>,
    require_encrypted_delivery: Option<bool>,
    enrollment_cert_days: Option<u32>,
    require_ak_credential: Option<bool>,
    crl_validity_hours: Option<u32>,
    extensions_disabled: Option<Vec<String>>,
    machine_auth: Option<String>,
}

/// Why the configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("invalid configuration file {path}: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// An environment variable holds a value of the wrong form.
    #[error("invalid value for {name}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A value is syntactically fine but not usable.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// The setting's TOML key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// OIDC settings, present when an issuer is configured.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// Issuer URL (`iss` must equal it).
    pub issuer: String,
    /// Required audience, if any.
    pub audience: Option<String>,
    /// Role an operator must hold.
    pub operator_role: String,
    /// Client whose `resource_access` roles count (all when `None`).
    pub client_id: Option<String>,
    /// Minimum time between JWKS refreshes.
    pub jwks_refresh_min_interval: Duration,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Database URL (may contain a password: log [`Settings::database_url_redacted`]).
    pub database_url: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Pool size.
    pub db_max_connections: u32,
    /// Request body limit in bytes.
    pub max_body_bytes: usize,
    /// Shutdown grace period.
    pub shutdown_timeout: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Break-glass token, if configured.
    pub admin_token: Option<SecretString>,
    /// OIDC, if configured.
    pub oidc: Option<OidcSettings>,
    /// Whether `X-Client-Cert` is trusted.
    pub client_cert_header: bool,
    /// Enrollment CA directory.
    pub ca_dir: PathBuf,
    /// Algorithm of a newly created CA.
    pub ca_algorithm: CaAlgorithm,
    /// Passphrase protecting the CA key at rest, if configured.
    pub ca_key_passphrase: Option<SecretString>,
    /// Registration, attestation and approval.
    pub machines: machines::MachineSettings,
    /// Config delivery, machine certificates, AK binding.
    pub delivery: delivery::DeliverySettings,
    /// The extension registry and machine authentication.
    pub extensions: extensions::ExtensionSettings,
}

/// Reads environment variables; injected so tests need not touch the
/// process environment.
pub trait Env {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
    /// All variable names (for unknown-variable warnings).
    fn names(&self) -> Vec<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_string())
    }
    fn names(&self) -> Vec<String> {
        self.iter().map(|(k, _)| (*k).to_string()).collect()
    }
}

pub(crate) fn env_parse<T: FromStr>(
    env: &dyn Env,
    name: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env.var(name) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|e| ConfigError::Env {
                name,
                message: e.to_string(),
            }),
    }
}

pub(crate) fn env_bool(env: &dyn Env, name: &'static str) -> Result<Option<bool>, ConfigError> {
    match env.var(name) {
        None => Ok(None),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            other => Err(ConfigError::Env {
                name,
                message: format!("expected true or false, got `{other}`"),
            }),
        },
    }
}

impl Settings {
    /// Resolves flags, environment and file into settings.
    pub fn resolve(args: &ServeArgs, env: &dyn Env) -> Result<Self, ConfigError> {
        let file_path = args
            .config
            .clone()
            .or_else(|| env.var("ITL_CONFIG_FILE").map(PathBuf::from));
        let file = match &file_path {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        Self::merge(args, env, file)
    }

    fn merge(args: &ServeArgs, env: &dyn Env, file: FileConfig) -> Result<Self, ConfigError> {
        let default_listen: SocketAddr =
            defaults::LISTEN.parse().map_err(|_| ConfigError::Invalid {
                key: "listen",
                message: "built-in default does not parse".into(),
            })?;
        let listen = args
            .listen
            .or(env_parse(env, "ITL_LISTEN")?)
            .or(file.listen)
            .unwrap_or(default_listen);
        let data_dir = args
            .data_dir
            .clone()
            .or(env.var("ITL_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(defaults::DATA_DIR));
        let database_url = args
            .database_url
            .clone()
            .or(env.var("DATABASE_URL"))
            .or(file.database_url)
            .unwrap_or_else(|| default_sqlite_url(&data_dir));
        let is_sqlite = database_url.starts_with("sqlite:");
        if !is_sqlite && !database_url.starts_with("postgres") {
            return Err(ConfigError::Invalid {
                key: "database_url",
                message: "must start with sqlite:// or postgres://".into(),
            });
        }
        let db_max_connections = args
            .db_max_connections
            .or(env_parse(env, "ITL_DB_MAX_CONNECTIONS")?)
            .or(file.db_max_connections)
            .unwrap_or(if is_sqlite { 8 } else { 16 });
        if db_max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "db_max_connections",
                message: "must be at least 1".into(),
            });
        }
        let max_body_bytes = args
            .max_body_bytes
            .or(env_parse(env, "ITL_MAX_BODY_BYTES")?)
            .or(file.max_body_bytes)
            .unwrap_or(defaults::MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "max_body_bytes",
                message: "must be at least 1024".into(),
            });
        }
        let shutdown_timeout = Duration::from_secs(
            args.shutdown_timeout_seconds
                .or(env_parse(env, "ITL_SHUTDOWN_TIMEOUT_SECONDS")?)
                .or(file.shutdown_timeout_seconds)
                .unwrap_or(defaults::SHUTDOWN_TIMEOUT_SECONDS),
        );
        let log_format = args
            .log_format
            .or(env_parse(env, "ITL_LOG_FORMAT")?)
            .or(file.log_format)
            .unwrap_or_default();
        let admin_token = env
            .var("ITL_ADMIN_TOKEN")
            .or(file.admin_token)
            .map(SecretString::from);
        if let Some(token) = &admin_token {
            use secrecy::ExposeSecret;
            if token.expose_secret().len() < 16 {
                return Err(ConfigError::Invalid {
                    key: "admin_token",
                    message: "the break-glass token must be at least 16 characters".into(),
                });
            }
        }
        let oidc_issuer = args
            .oidc_issuer
            .clone()
            .or(env.var("ITL_OIDC_ISSUER"))
            .or(file.oidc_issuer);
        let oidc = match oidc_issuer {
            None => None,
            Some(issuer) => Some(OidcSettings {
                issuer: issuer.trim_end_matches('/').to_string(),
                audience: args
                    .oidc_audience
                    .clone()
                    .or(env.var("ITL_OIDC_AUDIENCE"))
                    .or(file.oidc_audience),
                operator_role: args
                    .oidc_operator_role
                    .clone()
                    .or(env.var("ITL_OIDC_OPERATOR_ROLE"))
                    .or(file.oidc_operator_role)
                    .unwrap_or_else(|| defaults::OIDC_OPERATOR_ROLE.to_string()),
                client_id: args
                    .oidc_client_id
                    .clone()
                    .or(env.var("ITL_OIDC_CLIENT_ID"))
                    .or(file.oidc_client_id),
                jwks_refresh_min_interval: Duration::from_secs(
                    args.oidc_jwks_refresh_seconds
                        .or(env_parse(env, "ITL_OIDC_JWKS_REFRESH_SECONDS")?)
                        .or(file.oidc_jwks_refresh_seconds)
                        .unwrap_or(defaults::OIDC_JWKS_REFRESH_SECONDS),
                ),
            }),
        };
        let client_cert_header = args
            .client_cert_header
            .or(env_bool(env, "ITL_CLIENT_CERT_HEADER")?)
            .or(file.client_cert_header)
            .unwrap_or(false);
        let ca_dir = args
            .ca_dir
            .clone()
            .or(env.var("ITL_CA_DIR").map(PathBuf::from))
            .or(file.ca_dir)
            .unwrap_or_else(|| data_dir.join("enrollment-ca"));
        let ca_algorithm = args
            .ca_algorithm
            .or(env_parse(env, "ITL_CA_ALGORITHM")?)
            .or(file.ca_algorithm)
            .unwrap_or_default();
        let ca_key_passphrase = env
            .var("ITL_CA_KEY_PASSPHRASE")
            .or(file.ca_key_passphrase)
            .map(SecretString::from);
        let machine_file = machines::MachineFile {
            public_url: file.public_url,
            image_factory_url: file.image_factory_url,
            image_factory_timeout_seconds: file.image_factory_timeout_seconds,
            talos_version: file.talos_version,
            role_extensions: file.role_extensions,
            register_auto_approve: file.register_auto_approve,
            require_nonce: file.require_nonce,
            require_quote: file.require_quote,
            nonce_capacity: file.nonce_capacity,
            dual_control_roles: file.dual_control_roles,
            dual_control_window_seconds: file.dual_control_window_seconds,
            quote_policy_file: file.quote_policy_file,
        };
        let machines =
            machines::MachineSettings::resolve(env, machine_file, format!("http://{listen}"))?;
        let delivery_file = delivery::DeliveryFile {
            config_cache_dir: file.config_cache_dir,
            require_encrypted_delivery: file.require_encrypted_delivery,
            enrollment_cert_days: file.enrollment_cert_days,
            require_ak_credential: file.require_ak_credential,
            crl_validity_hours: file.crl_validity_hours,
        };
        let delivery = delivery::DeliverySettings::resolve(env, delivery_file, &data_dir)?;
        let extensions = extensions::ExtensionSettings::resolve(
            env,
            extensions::ExtensionFile {
                extensions_disabled: file.extensions_disabled,
                machine_auth: file.machine_auth,
            },
        )?;
        if extensions.machine_auth == extensions::MachineAuthMode::EnrollmentCert
            && !client_cert_header
        {
            return Err(ConfigError::Invalid {
                key: "machine_auth",
                message: "enrollment-cert needs client_cert_header = true: the TLS proxy \
                          forwards the machine's certificate in X-Client-Cert"
                    .into(),
            });
        }
        Ok(Self {
            listen,
            database_url,
            data_dir,
            db_max_connections,
            max_body_bytes,
            shutdown_timeout,
            log_format,
            admin_token,
            oidc,
            client_cert_header,
            ca_dir,
            ca_algorithm,
            ca_key_passphrase,
            machines,
            delivery,
            extensions,
        })
    }

    /// `ITL_*` variables that no setting reads: likely typos.
    pub fn unknown_env_vars(env: &dyn Env, extension_vars: &[&str]) -> Vec<String> {
        let mut unknown: Vec<String> = env
            .names()
            .into_iter()
            .filter(|name| name.starts_with("ITL_"))
            .filter(|name| {
                !SETTINGS.iter().any(|s| s.env == name)
                    && !OTHER_KNOWN_ENV.contains(&name.as_str())
                    && !extension_vars.contains(&name.as_str())
            })
            .collect();
        unknown.sort();
        unknown
    }

    /// The database URL with any password redacted, for logs.
    pub fn database_url_redacted(&self) -> String {
        attest_store::redacted_url(&self.database_url)
    }

    /// Settings for tests: an in-tempdir SQLite database, everything else
    /// default.
    pub fn for_tests(data_dir: &Path, database_url: String) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url,
            data_dir: data_dir.to_path_buf(),
            db_max_connections: 8,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            shutdown_timeout: Duration::from_secs(5),
            log_format: LogFormat::Text,
            admin_token: None,
            oidc: None,
            client_cert_header: false,
            ca_dir: data_dir.join("enrollment-ca"),
            ca_algorithm: CaAlgorithm::EcP384,
            ca_key_passphrase: None,
            machines: machines::MachineSettings::defaults("http://127.0.0.1:9".into()),
            delivery: delivery::DeliverySettings::defaults(data_dir),
            extensions: extensions::ExtensionSettings::default(),
        }
    }
}

fn default_sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("attestation.db").display()
    )
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults_need_no_configuration() {
        let s = Settings::resolve(&ServeArgs::default(), &[("HOME", "/root")]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(s.database_url, "sqlite://./data/attestation.db?mode=rwc");
        assert_eq!(s.max_body_bytes, 1024 * 1024);
        assert!(s.oidc.is_none());
        assert!(s.admin_token.is_none());
        assert!(!s.client_cert_header);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1111\"\nmax_body_bytes = 4096\noidc_issuer = \"https://file\"\n",
        )
        .unwrap();
        let env = [
            ("ITL_LISTEN", "127.0.0.1:2222"),
            ("ITL_MAX_BODY_BYTES", "8192"),
            ("ITL_CONFIG_FILE", file.to_str().unwrap()),
        ];
        let mut args = ServeArgs::default();
        let s = Settings::resolve(&args, &env).unwrap();
        assert_eq!(s.listen.port(), 2222, "env beats file");
        assert_eq!(s.max_body_bytes, 8192);
        assert_eq!(s.oidc.unwrap().issuer, "https://file", "file beats default");
        args.listen = Some("127.0.0.1:3333".parse().unwrap());
        let s = Settings::resolve(&args, &env).unwrap();
        assert_eq!(s.listen.port(), 3333, "flag beats env");
    }

    #[test]
    fn unknown_file_keys_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        let err = Settings::resolve(&args, &[("X", "y")]).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let err = Settings::resolve(&ServeArgs::default(), &[("ITL_LISTEN", "nope")]).unwrap_err();
        assert!(err.to_string().contains("ITL_LISTEN"), "{err}");
        let err = Settings::resolve(
            &ServeArgs::default(),
            &[("ITL_CLIENT_CERT_HEADER", "maybe")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("ITL_CLIENT_CERT_HEADER"), "{err}");
    }

    #[test]
    fn secrets_come_from_env_and_never_print() {
        let env = [("ITL_ADMIN_TOKEN", "break-glass-token-0123456789")];
        let s = Settings::resolve(&ServeArgs::default(), &env).unwrap();
        let token = s.admin_token.as_ref().unwrap();
        assert_eq!(token.expose_secret(), "break-glass-token-0123456789");
        assert!(!format!("{s:?}").contains("break-glass-token"));
    }

    #[test]
    fn short_admin_tokens_are_refused() {
        let err =
            Settings::resolve(&ServeArgs::default(), &[("ITL_ADMIN_TOKEN", "short")]).unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
    }

    #[test]
    fn unknown_itl_variables_are_reported() {
        let env = [("ITL_ADMIN_TOKN", "x"), ("ITL_LISTEN", "127.0.0.1:1")];
        assert_eq!(
            Settings::unknown_env_vars(&env, &[]),
            vec!["ITL_ADMIN_TOKN"]
        );
    }

    #[test]
    fn machine_auth_by_certificate_needs_the_client_cert_header() {
        let err = Settings::resolve(
            &ServeArgs::default(),
            &[("ITL_MACHINE_AUTH", "enrollment-cert")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("client_cert_header"), "{err}");
        let s = Settings::resolve(
            &ServeArgs::default(),
            &[
                ("ITL_MACHINE_AUTH", "enrollment-cert"),
                ("ITL_CLIENT_CERT_HEADER", "true"),
            ],
        )
        .unwrap();
        assert_eq!(
            s.extensions.machine_auth,
            extensions::MachineAuthMode::EnrollmentCert
        );
        assert!(Settings::resolve(&ServeArgs::default(), &[("ITL_MACHINE_AUTH", "nope")]).is_err());
    }

    #[test]
    fn extensions_see_only_their_own_settings() {
        let s = Settings::resolve(
            &ServeArgs::default(),
            &[
                ("ITL_ADMIN_TOKEN", "break-glass-0123456789abcdef"),
                ("ITL_WEBHOOK_TIMEOUT_SECONDS", "3"),
                ("ITL_EXTENSIONS_DISABLED", "metrics, webhooks"),
            ],
        )
        .unwrap();
        assert_eq!(s.extensions.disabled, vec!["metrics", "webhooks"]);
        let mine = s.extensions.env.subset(&["ITL_WEBHOOK_TIMEOUT_SECONDS"]);
        assert_eq!(mine.get("ITL_WEBHOOK_TIMEOUT_SECONDS"), Some("3"));
        assert_eq!(mine.get("ITL_ADMIN_TOKEN"), None);
        assert!(!format!("{:?}", s.extensions.env).contains("break-glass"));
    }

    #[test]
    fn database_passwords_are_redacted() {
        let mut s = Settings::resolve(&ServeArgs::default(), &[("X", "y")]).unwrap();
        s.database_url = "postgres://app:hunter2@db:5432/att".into();
        assert!(!s.database_url_redacted().contains("hunter2"));
    }

    #[test]
    fn every_setting_is_documented() {
        let doc = include_str!("../../../../docs/configuration.md");
        for spec in SETTINGS {
            assert!(doc.contains(spec.env), "{} missing from docs", spec.env);
            assert!(
                doc.contains(&format!("`{}`", spec.key)),
                "{} missing from docs",
                spec.key
            );
            if let Some(flag) = spec.flag {
                assert!(doc.contains(flag), "{flag} missing from docs");
            }
        }
    }
}
