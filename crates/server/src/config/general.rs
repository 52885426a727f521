//! Settings of the listener, the database, logging, operator
//! authentication and the enrollment CA.

use std::net::SocketAddr;
use std::path::PathBuf;

use attest_settings::Setting;
use secrecy::SecretString;

use super::{CaAlgorithm, LogFormat};

attest_settings::declare! {
    pub LISTEN: SocketAddr = Setting::new("listen", "ITL_LISTEN",
        "Address and port of the attestation API.")
        .flag("--listen").value_name("ADDR")
        .default("127.0.0.1:9000");
    pub ATTESTATION_ENABLED: bool = Setting::new("attestation_enabled", "ITL_ATTESTATION_ENABLED",
        "Serve the attestation API. `false` runs only the certificate-lifecycle listener (`certs_enabled`); the shared database, audit chain and background tasks are the same.")
        .flag("--attestation-enabled").value_name("BOOL")
        .default("true");
    pub DATABASE_URL: String = Setting::new("database_url", "DATABASE_URL",
        "`sqlite://PATH?mode=rwc` (embedded) or `postgres://user:pass@host:port/db`. The password is redacted in logs.")
        .flag("--database-url").value_name("URL")
        .derived("`sqlite://<data_dir>/attestation.db?mode=rwc`");
    pub DATA_DIR: PathBuf = Setting::new("data_dir", "ITL_DATA_DIR",
        "Directory for the embedded database (file 0600), the enrollment CA, the audit checkpoint key and a generated master key. Created owner-only (0700) if missing.")
        .flag("--data-dir").value_name("DIR")
        .default("./data");
    pub DB_MAX_CONNECTIONS: u32 = Setting::new("db_max_connections", "ITL_DB_MAX_CONNECTIONS",
        "Connection pool size.")
        .flag("--db-max-connections").value_name("N")
        .derived("8 (SQLite), 16 (PostgreSQL)");
    pub DB_ACQUIRE_TIMEOUT_SECONDS: u64 = Setting::new("db_acquire_timeout_seconds", "ITL_DB_ACQUIRE_TIMEOUT_SECONDS",
        "How long a request waits for a free database connection when the pool is exhausted; then it answers `503` with `Retry-After` instead of queueing without bound. At least 1.")
        .flag("--db-acquire-timeout-seconds").value_name("SECONDS")
        .default("5");
    pub REQUEST_TIMEOUT_SECONDS: u64 = Setting::new("request_timeout_seconds", "ITL_REQUEST_TIMEOUT_SECONDS",
        "Longest time from a request's arrival to its response head (a client sending its body slowly, or work waiting too long); then it answers `408` with `Retry-After` and closes the connection. Streamed response bodies are not limited. At least 1.")
        .flag("--request-timeout-seconds").value_name("SECONDS")
        .default("60");
    pub MAX_BODY_BYTES: usize = Setting::new("max_body_bytes", "ITL_MAX_BODY_BYTES",
        "Largest request body; larger bodies get `413`. At least 1024.")
        .flag("--max-body-bytes").value_name("BYTES")
        .default("1048576");
    pub SHUTDOWN_TIMEOUT_SECONDS: u64 = Setting::new("shutdown_timeout_seconds", "ITL_SHUTDOWN_TIMEOUT_SECONDS",
        "After SIGTERM/Ctrl-C, how long in-flight requests may take to finish.")
        .flag("--shutdown-timeout-seconds").value_name("SECONDS")
        .default("30");
    pub LOG_FORMAT: LogFormat = Setting::new("log_format", "ITL_LOG_FORMAT",
        "`text` or `json`. Verbosity: `ITL_LOG` (or `RUST_LOG`), e.g. `ITL_LOG=debug`.")
        .flag("--log-format").value_name("FORMAT")
        .default("text");
    pub ADMIN_TOKEN: SecretString = Setting::new("admin_token", "ITL_ADMIN_TOKEN",
        "Break-glass operator token (at least 16 characters). Actions taken with it are audited as `SYSTEM`. Leave unset unless needed.")
        .secret();
    pub OIDC_ISSUER: String = Setting::new("oidc_issuer", "ITL_OIDC_ISSUER",
        "OIDC issuer URL (e.g. `https://sts.example.com/realms/itl`). Enables bearer-JWT operator authentication; keys come from the issuer's discovery document and JWKS.")
        .flag("--oidc-issuer").value_name("URL");
    pub OIDC_AUDIENCE: String = Setting::new("oidc_audience", "ITL_OIDC_AUDIENCE",
        "The audience operator tokens must list in `aud`. With OIDC on, this or `oidc_client_id` is required (the server refuses to start otherwise); without it the client id is the audience.")
        .flag("--oidc-audience").value_name("AUD");
    pub OIDC_OPERATOR_ROLE: String = Setting::new("oidc_operator_role", "ITL_OIDC_OPERATOR_ROLE",
        "Role required in `realm_access.roles` or `resource_access.<client>.roles`.")
        .flag("--oidc-operator-role").value_name("ROLE")
        .default("attestation-operator");
    pub OIDC_CLIENT_ID: String = Setting::new("oidc_client_id", "ITL_OIDC_CLIENT_ID",
        "The client whose `resource_access.<client>.roles` may grant the operator role (realm roles always count; other clients' roles never do). Also the required audience when `oidc_audience` is unset.")
        .flag("--oidc-client-id").value_name("ID");
    pub OIDC_JWKS_REFRESH_SECONDS: u64 = Setting::new("oidc_jwks_refresh_seconds", "ITL_OIDC_JWKS_REFRESH_SECONDS",
        "Minimum interval between JWKS refreshes triggered by an unknown `kid`, so forged tokens cannot make the server hammer the identity provider.")
        .flag("--oidc-jwks-refresh-seconds").value_name("SECONDS")
        .default("30");
    pub CLIENT_CERT_HEADER: bool = Setting::new("client_cert_header", "ITL_CLIENT_CERT_HEADER",
        "Trust `X-Client-Cert` (URL-encoded PEM) forwarded by a TLS-terminating proxy. **Only enable when the proxy strips this header from client requests**; otherwise anyone can claim any certificate. Not needed when the server verifies client certificates itself (`tls_client_ca_file`), whose certificate then takes precedence.")
        .flag("--client-cert-header").value_name("BOOL")
        .default("false");
    pub CA_DIR: PathBuf = Setting::new("ca_dir", "ITL_CA_DIR",
        "Enrollment CA directory (`ca.pem`, `ca-key.pem`). Created on first start.")
        .flag("--ca-dir").value_name("DIR")
        .derived("`<data_dir>/enrollment-ca`");
    pub CA_ALGORITHM: CaAlgorithm = Setting::new("ca_algorithm", "ITL_CA_ALGORITHM",
        "Key algorithm of a newly created CA: `ec-p384` or `rsa-4096`. Ignored once the CA exists.")
        .flag("--ca-algorithm").value_name("ALG")
        .default("ec-p384");
    pub CA_KEY_PASSPHRASE: SecretString = Setting::new("ca_key_passphrase", "ITL_CA_KEY_PASSPHRASE",
        "Passphrase encrypting the CA private key at rest (PKCS#8, scrypt + AES-256-CBC). When unset, a random passphrase is generated into `<ca_dir>/ca-key.passphrase` (mode 0600) and a warning is logged: supply it from a secret store in production.")
        .secret()
        .derived("generated");
}
