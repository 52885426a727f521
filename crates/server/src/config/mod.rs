//! Server configuration: command-line flags over `ITL_*` environment
//! variables over an optional TOML file over built-in defaults.
//!
//! Each setting is declared once, in the module of its group ([`general`],
//! [`tls`], [`keys`], [`audit`], [`machines`], [`delivery`], [`extensions`]), with
//! `attest_settings`: its
//! key, variable, flag, default, secrecy and documentation line. The flags of
//! `attestation serve`, the accepted file keys, the unknown-variable
//! warnings and the table in `docs/configuration.md` (pinned by a test) all
//! derive from those declarations. Secrets are accepted only from the
//! environment or the file and are held as [`SecretString`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub mod audit;
pub mod certs;
pub mod delivery;
pub mod extensions;
pub mod general;
pub mod keys;
pub mod limits;
pub mod machines;
pub mod operators;
pub mod quote_policy;
pub mod tls;

use attest_settings::cli::Flags;
pub use attest_settings::{ConfigError, Env, ProcessEnv};
use attest_settings::{Sources, Spec};
use secrecy::SecretString;
use serde::Deserialize;

/// The variable naming the TOML file (or `--config`).
pub const CONFIG_FILE_ENV: &str = "ITL_CONFIG_FILE";

/// Environment variables that are read elsewhere (not by [`Settings`]) and
/// must not be reported as unknown.
const OTHER_KNOWN_ENV: &[&str] = &[CONFIG_FILE_ENV, "ITL_LOG"];

/// Every setting the server reads, group by group.
pub fn specs() -> Vec<Spec> {
    [
        general::ALL,
        tls::ALL,
        operators::ALL,
        limits::ALL,
        keys::ALL,
        audit::ALL,
        machines::ALL,
        delivery::ALL,
        extensions::ALL,
        certs::ALL,
    ]
    .concat()
}

/// Flags of `attestation serve`, derived from [`specs`]. Each flag
/// overrides its environment variable, which overrides the file.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs(pub Flags);

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self(attest_settings::cli::flags_from(&specs(), matches)))
    }
    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for ServeArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(attest_settings::cli::args(&specs(), CONFIG_FILE_ENV))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

attest_settings::text_value!(LogFormat, CaAlgorithm);

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

impl OidcSettings {
    /// `None` without an issuer. With one, tokens must name this service:
    /// an audience or a client id is required, or any token of the realm
    /// would do.
    fn resolve(src: &Sources<'_>) -> Result<Option<Self>, ConfigError> {
        use general as g;
        let Some(issuer) = src.get(&g::OIDC_ISSUER)? else {
            return Ok(None);
        };
        let audience = src.get(&g::OIDC_AUDIENCE)?.filter(|a| !a.trim().is_empty());
        let client_id = src
            .get(&g::OIDC_CLIENT_ID)?
            .filter(|c| !c.trim().is_empty());
        if audience.is_none() && client_id.is_none() {
            return Err(ConfigError::invalid(
                g::OIDC_AUDIENCE.spec.key,
                "OIDC is enabled (ITL_OIDC_ISSUER) but neither ITL_OIDC_AUDIENCE nor \
                 ITL_OIDC_CLIENT_ID is set: set the audience operator tokens carry in `aud` \
                 (or the client id, used as the audience)",
            ));
        }
        Ok(Some(Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience,
            operator_role: src.value(&g::OIDC_OPERATOR_ROLE)?,
            client_id,
            jwks_refresh_min_interval: Duration::from_secs(
                src.value(&g::OIDC_JWKS_REFRESH_SECONDS)?,
            ),
        }))
    }
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// HTTPS on the listener, when configured (plain HTTP otherwise).
    pub tls: Option<tls::TlsSettings>,
    /// Database URL (may contain a password: log [`Settings::database_url_redacted`]).
    pub database_url: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Pool size.
    pub db_max_connections: u32,
    /// How long a request waits for a pooled connection.
    pub db_acquire_timeout: Duration,
    /// Longest time to a response head.
    pub request_timeout: Duration,
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
    /// Where the master key sealing secrets at rest comes from.
    pub master_key: keys::MasterKeySource,
    /// Audit chain checkpoints.
    pub audit: audit::AuditSettings,
    /// Registration, attestation and approval.
    pub machines: machines::MachineSettings,
    /// Operator client certificates.
    pub operators: operators::OperatorSettings,
    /// Rate limits of the unauthenticated endpoints.
    pub limits: limits::LimitSettings,
    /// Config delivery, machine certificates, AK binding.
    pub delivery: delivery::DeliverySettings,
    /// The extension registry and machine authentication.
    pub extensions: extensions::ExtensionSettings,
    /// The certificate-lifecycle application's listener and authentication.
    pub certs: certs::CertsSettings,
}

impl Settings {
    /// Resolves flags, environment and file into settings.
    pub fn resolve(args: &ServeArgs, env: &dyn Env) -> Result<Self, ConfigError> {
        let sources = Sources::load(&args.0, env, CONFIG_FILE_ENV, &specs())?;
        Self::from_sources(&sources)
    }

    fn from_sources(src: &Sources<'_>) -> Result<Self, ConfigError> {
        use general as g;
        let listen = src.value(&g::LISTEN)?;
        let data_dir = src.value(&g::DATA_DIR)?;
        let database_url = src
            .get(&g::DATABASE_URL)?
            .unwrap_or_else(|| default_sqlite_url(&data_dir));
        let is_sqlite = database_url.starts_with("sqlite:");
        if !is_sqlite && !database_url.starts_with("postgres") {
            return Err(ConfigError::invalid(
                g::DATABASE_URL.spec.key,
                "must start with sqlite:// or postgres://",
            ));
        }
        let db_max_connections =
            src.get(&g::DB_MAX_CONNECTIONS)?
                .unwrap_or(if is_sqlite { 8 } else { 16 });
        if db_max_connections == 0 {
            return Err(ConfigError::invalid(
                g::DB_MAX_CONNECTIONS.spec.key,
                "must be at least 1",
            ));
        }
        let max_body_bytes = src.value(&g::MAX_BODY_BYTES)?;
        if max_body_bytes < 1024 {
            return Err(ConfigError::invalid(
                g::MAX_BODY_BYTES.spec.key,
                "must be at least 1024",
            ));
        }
        let shutdown_timeout = Duration::from_secs(src.value(&g::SHUTDOWN_TIMEOUT_SECONDS)?);
        let at_least_one_second =
            |setting: &attest_settings::Setting<u64>| match src.value(setting)? {
                0 => Err(ConfigError::invalid(setting.spec.key, "must be at least 1")),
                secs => Ok(Duration::from_secs(secs)),
            };
        let db_acquire_timeout = at_least_one_second(&g::DB_ACQUIRE_TIMEOUT_SECONDS)?;
        let request_timeout = at_least_one_second(&g::REQUEST_TIMEOUT_SECONDS)?;
        let admin_token = src.get(&g::ADMIN_TOKEN)?;
        if let Some(token) = &admin_token {
            use secrecy::ExposeSecret;
            if token.expose_secret().len() < 16 {
                return Err(ConfigError::invalid(
                    g::ADMIN_TOKEN.spec.key,
                    "the break-glass token must be at least 16 characters",
                ));
            }
        }
        let oidc = OidcSettings::resolve(src)?;
        let client_cert_header = src.value(&g::CLIENT_CERT_HEADER)?;
        let ca_dir = src
            .get(&g::CA_DIR)?
            .unwrap_or_else(|| data_dir.join("enrollment-ca"));
        let operators = operators::OperatorSettings::resolve(src)?;
        let limits = limits::LimitSettings::resolve(src)?;
        let master_key = keys::MasterKeySource::resolve(src, &data_dir)?;
        let audit = audit::AuditSettings::resolve(src, &data_dir)?;
        let tls = tls::TlsSettings::resolve(src)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let machines = machines::MachineSettings::resolve(src, format!("{scheme}://{listen}"))?;
        let delivery = delivery::DeliverySettings::resolve(src, &data_dir)?;
        let extensions = extensions::ExtensionSettings::resolve(src)?;
        let certs = certs::CertsSettings::resolve(src, &data_dir)?;
        let tls_verifies_clients = tls.as_ref().is_some_and(tls::TlsSettings::verifies_clients);
        if extensions.machine_auth == extensions::MachineAuthMode::EnrollmentCert
            && !client_cert_header
            && !tls_verifies_clients
        {
            return Err(ConfigError::invalid(
                extensions::MACHINE_AUTH.spec.key,
                "enrollment-cert needs the machine's certificate: TLS client authentication \
                 (tls_client_ca_file with tls_client_auth optional or required), or \
                 client_cert_header = true behind a TLS proxy that forwards it in X-Client-Cert",
            ));
        }
        Ok(Self {
            listen,
            tls,
            database_url,
            data_dir,
            db_max_connections,
            db_acquire_timeout,
            request_timeout,
            max_body_bytes,
            shutdown_timeout,
            log_format: src.value(&g::LOG_FORMAT)?,
            admin_token,
            oidc,
            client_cert_header,
            ca_dir,
            ca_algorithm: src.value(&g::CA_ALGORITHM)?,
            ca_key_passphrase: src.get(&g::CA_KEY_PASSPHRASE)?,
            operators,
            limits,
            master_key,
            audit,
            machines,
            delivery,
            extensions,
            certs,
        })
    }

    /// `ITL_*` variables that no setting reads: likely typos.
    pub fn unknown_env_vars(env: &dyn Env, extension_vars: &[&str]) -> Vec<String> {
        let also: Vec<&str> = OTHER_KNOWN_ENV
            .iter()
            .chain(extension_vars)
            .copied()
            .collect();
        attest_settings::unknown_env(env, "ITL_", &specs(), &also)
    }

    /// The database URL with any password redacted, for logs.
    pub fn database_url_redacted(&self) -> String {
        attest_store::redacted_url(&self.database_url)
    }

    /// Settings for tests: the declared defaults, listening on port 0, with
    /// the data directory and database given, and a 5 s shutdown.
    pub fn for_tests(data_dir: &Path, database_url: String) -> Result<Self, ConfigError> {
        let none: [(&str, &str); 0] = [];
        Self::for_tests_with_env(data_dir, database_url, &none)
    }

    /// [`Settings::for_tests`] with `env` as the environment (`ITL_*`
    /// settings, extensions' variables).
    pub fn for_tests_with_env(
        data_dir: &Path,
        database_url: String,
        env: &dyn Env,
    ) -> Result<Self, ConfigError> {
        let mut flags = Flags::default();
        flags
            .set(general::LISTEN.spec.key, "127.0.0.1:0")
            .set(general::DATA_DIR.spec.key, data_dir.display().to_string())
            .set(general::DATABASE_URL.spec.key, database_url.clone())
            .set(general::SHUTDOWN_TIMEOUT_SECONDS.spec.key, "5")
            .set(certs::CERTS_LISTEN.spec.key, "127.0.0.1:0")
            .set(certs::CERTS_TLS.spec.key, "off");
        let sources = Sources::load(&flags, env, CONFIG_FILE_ENV, &specs())?;
        let mut settings = Self::from_sources(&sources)?;
        settings.machines.public_url = "http://127.0.0.1:9".into();
        Ok(settings)
    }
}

fn default_sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("attestation.db").display()
    )
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
            "listen = \"127.0.0.1:1111\"\nmax_body_bytes = 4096\noidc_issuer = \"https://file\"\noidc_audience = \"attest\"\n",
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
        args.0.set("listen", "127.0.0.1:3333");
        let s = Settings::resolve(&args, &env).unwrap();
        assert_eq!(s.listen.port(), 3333, "flag beats env");
    }

    #[test]
    fn unknown_file_keys_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let mut args = ServeArgs::default();
        args.0.config = Some(file);
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
        assert!(err.to_string().contains("tls_client_ca_file"), "{err}");
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
    fn tls_needs_a_certificate_and_its_key_together() {
        struct Pairs<'a>(&'a [(&'a str, &'a str)]);
        impl Env for Pairs<'_> {
            fn var(&self, name: &str) -> Option<String> {
                let found = self.0.iter().find(|(k, _)| *k == name);
                found.map(|(_, v)| (*v).to_owned())
            }
            fn names(&self) -> Vec<String> {
                self.0.iter().map(|(k, _)| (*k).to_owned()).collect()
            }
        }
        let resolve = |env: &[(&str, &str)]| Settings::resolve(&ServeArgs::default(), &Pairs(env));
        let s = resolve(&[("X", "y")]).unwrap();
        assert_eq!(s.tls, None, "plain HTTP by default");
        assert_eq!(s.machines.public_url, "http://127.0.0.1:9000");

        let err = resolve(&[("ITL_TLS_CERT_FILE", "/tls/cert.pem")]).unwrap_err();
        assert!(err.to_string().contains("tls_key_file"), "{err}");
        let err = resolve(&[("ITL_TLS_KEY_FILE", "/tls/key.pem")]).unwrap_err();
        assert!(err.to_string().contains("tls_cert_file"), "{err}");
        let err = resolve(&[("ITL_TLS_CLIENT_CA_FILE", "/tls/ca.pem")]).unwrap_err();
        assert!(err.to_string().contains("tls_cert_file"), "{err}");

        let pair = [
            ("ITL_TLS_CERT_FILE", "/tls/cert.pem"),
            ("ITL_TLS_KEY_FILE", "/tls/key.pem"),
        ];
        let s = resolve(&pair).unwrap();
        let t = s.tls.unwrap();
        assert_eq!(t.client_auth, tls::TlsClientAuth::Off);
        assert_eq!(t.client_ca_file, None);
        assert_eq!(s.machines.public_url, "https://127.0.0.1:9000");

        let with_ca = [pair[0], pair[1], ("ITL_TLS_CLIENT_CA_FILE", "/tls/ca.pem")];
        let t = resolve(&with_ca).unwrap().tls.unwrap();
        assert_eq!(
            t.client_auth,
            tls::TlsClientAuth::Optional,
            "the default with a CA"
        );
        assert_eq!(t.client_ca_file, Some(PathBuf::from("/tls/ca.pem")));
        let required = [
            with_ca[0],
            with_ca[1],
            with_ca[2],
            ("ITL_TLS_CLIENT_AUTH", "required"),
        ];
        assert_eq!(
            resolve(&required).unwrap().tls.unwrap().client_auth,
            tls::TlsClientAuth::Required
        );
        let off = [
            with_ca[0],
            with_ca[1],
            with_ca[2],
            ("ITL_TLS_CLIENT_AUTH", "off"),
        ];
        assert!(!resolve(&off).unwrap().tls.unwrap().verifies_clients());

        let err = resolve(&[pair[0], pair[1], ("ITL_TLS_CLIENT_AUTH", "required")]).unwrap_err();
        assert!(err.to_string().contains("tls_client_ca_file"), "{err}");
        let err = resolve(&[pair[0], pair[1], ("ITL_TLS_CLIENT_AUTH", "sometimes")]).unwrap_err();
        assert!(err.to_string().contains("ITL_TLS_CLIENT_AUTH"), "{err}");

        // Machines may authenticate by the certificate the handshake verified.
        let machines = [
            with_ca[0],
            with_ca[1],
            with_ca[2],
            ("ITL_MACHINE_AUTH", "enrollment-cert"),
        ];
        assert!(resolve(&machines).is_ok());
        let no_clients = [pair[0], pair[1], ("ITL_MACHINE_AUTH", "enrollment-cert")];
        assert!(resolve(&no_clients).is_err());
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
    fn the_master_key_comes_from_the_key_the_passphrase_or_a_generated_file() {
        use keys::MasterKeySource as M;
        let hex = "0123456789abcdef".repeat(4);
        let s = Settings::resolve(
            &ServeArgs::default(),
            &[
                ("ITL_SHARED_SECRET_MASTER_KEY", hex.as_str()),
                ("ITL_SHARED_SECRET_PASSPHRASE", "p"),
            ],
        )
        .unwrap();
        assert!(matches!(&s.master_key, M::Hex(k) if k.expose_secret() == hex));
        assert!(!format!("{s:?}").contains(&hex));
        let s = Settings::resolve(
            &ServeArgs::default(),
            &[("ITL_SHARED_SECRET_PASSPHRASE", "correct horse")],
        )
        .unwrap();
        assert!(matches!(&s.master_key, M::Passphrase(_)));
        assert!(!format!("{s:?}").contains("correct horse"));
        let s = Settings::resolve(&ServeArgs::default(), &[("ITL_DATA_DIR", "/srv/itl")]).unwrap();
        assert!(matches!(
            &s.master_key,
            M::Generated(p) if p == Path::new("/srv/itl/shared-secret-master.key")
        ));
        for bad in ["zz", "abcd", &"ab".repeat(33)] {
            let err = Settings::resolve(
                &ServeArgs::default(),
                &[
                    ("ITL_SHARED_SECRET_MASTER_KEY", bad),
                    ("ITL_SHARED_SECRET_PASSPHRASE", "p"),
                ],
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("shared_secret_master_key"), "{err}");
            assert!(!err.contains(bad), "{err}");
        }
        assert!(Settings::unknown_env_vars(
            &[
                ("ITL_SHARED_SECRET_MASTER_KEY", "x"),
                ("ITL_SHARED_SECRET_PASSPHRASE", "y"),
                ("ITL_AUDIT_CHECKPOINT_KEY_PASSPHRASE", "z"),
            ],
            &[]
        )
        .is_empty());
    }

    #[test]
    fn audit_checkpoints_every_hour_unless_configured() {
        let s = Settings::resolve(&ServeArgs::default(), &[("ITL_DATA_DIR", "/srv/itl")]).unwrap();
        assert_eq!(s.audit.checkpoint_interval, Some(Duration::from_secs(3600)));
        assert_eq!(
            s.audit.checkpoint_key_dir,
            Path::new("/srv/itl/audit-checkpoint")
        );
        assert!(s.audit.checkpoint_key_passphrase.is_none());
        let s = Settings::resolve(
            &ServeArgs::default(),
            &[
                ("ITL_AUDIT_CHECKPOINT_INTERVAL_SECONDS", "0"),
                ("ITL_AUDIT_CHECKPOINT_KEY_DIR", "/keys/audit"),
                ("ITL_AUDIT_CHECKPOINT_KEY_PASSPHRASE", "pass"),
            ],
        )
        .unwrap();
        assert_eq!(s.audit.checkpoint_interval, None);
        assert_eq!(s.audit.checkpoint_key_dir, Path::new("/keys/audit"));
        assert!(!format!("{s:?}").contains("pass\""));
        let err = Settings::resolve(
            &ServeArgs::default(),
            &[("ITL_AUDIT_CHECKPOINT_INTERVAL_SECONDS", "99999999999")],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("audit_checkpoint_interval_seconds"),
            "{err}"
        );
    }

    #[test]
    fn database_passwords_are_redacted() {
        let mut s = Settings::resolve(&ServeArgs::default(), &[("X", "y")]).unwrap();
        s.database_url = "postgres://app:hunter2@db:5432/att".into();
        assert!(!s.database_url_redacted().contains("hunter2"));
    }

    #[test]
    fn every_default_parses() {
        for check in [
            general::check_defaults,
            tls::check_defaults,
            operators::check_defaults,
            limits::check_defaults,
            keys::check_defaults,
            audit::check_defaults,
            machines::check_defaults,
            delivery::check_defaults,
            extensions::check_defaults,
        ] {
            check().unwrap();
        }
        assert!(Settings::for_tests(Path::new("/tmp/x"), "sqlite::memory:".into()).is_ok());
    }

    #[test]
    fn secrets_have_no_flags_and_names_are_unique() {
        let all = specs();
        for spec in &all {
            assert!(!(spec.secret && spec.flag.is_some()), "{}", spec.key);
            assert_eq!(all.iter().filter(|s| s.key == spec.key).count(), 1);
            assert_eq!(all.iter().filter(|s| s.env == spec.env).count(), 1);
        }
    }

    #[test]
    fn the_documented_table_is_generated_from_the_declarations() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let table = attest_settings::doc::table(&specs());
        if let Err(e) = attest_settings::doc::check_file(&path, &table) {
            panic!("docs/configuration.md: {e}");
        }
    }

    #[test]
    fn the_help_shows_what_the_parser_accepts() {
        // `--ca-algorithm rsa-4096`, the spelling `--help` shows, is accepted.
        let mut args = ServeArgs::default();
        args.0.set("ca_algorithm", "rsa-4096");
        let s = Settings::resolve(&args, &[("X", "y")]).unwrap();
        assert_eq!(s.ca_algorithm, CaAlgorithm::Rsa4096);
        let cmd = <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"));
        let m = cmd
            .try_get_matches_from([
                "serve",
                "--ca-algorithm",
                "rsa-4096",
                "--listen",
                "127.0.0.1:5",
            ])
            .unwrap();
        let args = <ServeArgs as clap::FromArgMatches>::from_arg_matches(&m).unwrap();
        let s = Settings::resolve(&args, &[("X", "y")]).unwrap();
        assert_eq!(s.ca_algorithm, CaAlgorithm::Rsa4096);
        assert_eq!(s.listen.port(), 5);
    }
}
