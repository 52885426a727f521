//! The real server on port 0 with a fresh database, once per available
//! backend (SQLite always, PostgreSQL when TEST_DATABASE_URL is set).

use std::sync::Arc;

use attest_domain::clock::ManualClock;
use attest_ext::Extension;
use attest_image_factory::testing::FakeFactory;
use attest_server::config::Settings;
use attest_server::serve::{start_with, RunningServer};
use attest_store::testing::TestDb;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use tempfile::TempDir;

use crate::builtin_extensions;

/// Sends a request and decodes its JSON body, for tests that only care
/// about the body.
pub trait SendJson {
    /// `send().await.unwrap().json().await.unwrap()`.
    async fn send_json<T: serde::de::DeserializeOwned>(self) -> T;
}

impl SendJson for reqwest::RequestBuilder {
    async fn send_json<T: serde::de::DeserializeOwned>(self) -> T {
        self.send().await.unwrap().json().await.unwrap()
    }
}

/// The break-glass token every test server is started with.
pub const ADMIN_TOKEN: &str = "test-break-glass-token-0123456789";

/// The certificate-lifecycle API's bootstrap token of every test server.
pub const CERTS_BOOTSTRAP_TOKEN: &str = "test-certs-bootstrap-token-0123";

/// A running server and what it needs to stay alive.
pub struct TestApp {
    pub server: RunningServer,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub db: TestDb,
    pub dir: TempDir,
    /// The loopback Talos Image Factory this server talks to.
    pub factory: FakeFactory,
    /// Certificate and key PEMs of the operator roster, by name.
    pub operator_certs: std::collections::HashMap<String, (String, String)>,
}

/// Operators with a recorded client certificate in every test server
/// (principal `oidc:sub-<name>`, as if each had obtained it through OIDC).
pub const OPERATOR_ROSTER: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// Base MachineConfig of worker roles in tests (cluster secrets included).
pub const WORKER_CONFIG: &str = include_str!("../../../examples/role-configs/worker-app.yaml");
/// Base MachineConfig of the controlplane role in tests.
pub const CONTROLPLANE_CONFIG: &str =
    include_str!("../../../examples/role-configs/controlplane.yaml");

/// Writes a base config for every Talos role into `dir`, as an operator
/// would populate `ITL_CONFIG_CACHE_DIR`.
pub fn install_role_configs(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (role, yaml) in [
        ("controlplane", CONTROLPLANE_CONFIG),
        ("worker-infra", WORKER_CONFIG),
        ("worker-app", WORKER_CONFIG),
        ("generic", WORKER_CONFIG),
    ] {
        std::fs::write(dir.join(format!("{role}.yaml")), yaml).unwrap();
    }
}

/// A fixed start time, so tests are reproducible.
pub fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-14T17:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// How a test server starts, beyond what every test server shares (the
/// break-glass [`ADMIN_TOKEN`], a CA passphrase, a loopback Image Factory,
/// the example role configs).
pub struct Launch<'a> {
    /// Adjusts the settings last.
    pub tweak: Option<&'a dyn Fn(&mut Settings)>,
    /// The extensions (default: the binary's built-ins).
    pub extensions: Vec<Arc<dyn Extension>>,
    /// Where the manual clock starts (default: [`epoch`]).
    pub now: DateTime<Utc>,
    /// A clock the test already holds, instead of a new one at `now`.
    pub clock: Option<ManualClock>,
    /// The environment the settings are read from (default: none).
    pub env: &'a [(&'a str, &'a str)],
}

impl Default for Launch<'_> {
    fn default() -> Self {
        Self {
            tweak: None,
            extensions: builtin_extensions(),
            now: epoch(),
            clock: None,
            env: &[],
        }
    }
}

/// A started server and what it needs to stay alive.
pub struct Launched {
    pub server: RunningServer,
    pub clock: ManualClock,
    pub factory: FakeFactory,
}

/// Name/value pairs as the server's process environment.
pub struct EnvPairs<'a>(pub &'a [(&'a str, &'a str)]);

impl attest_server::config::Env for EnvPairs<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .filter(|v| !v.is_empty())
    }
    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(k, _)| (*k).to_owned()).collect()
    }
}

/// Starts the real server on port 0 on the database at `db_url` with its
/// data directory in `dir`: the one start-up path of every test suite.
pub async fn launch(db_url: &str, dir: &std::path::Path, launch: Launch<'_>) -> Launched {
    let mut settings =
        Settings::for_tests_with_env(dir, db_url.to_string(), &EnvPairs(launch.env)).unwrap();
    settings.admin_token = Some(SecretString::from(ADMIN_TOKEN));
    settings.ca_key_passphrase = Some(SecretString::from("test-ca-passphrase"));
    settings.certs.bootstrap_token = Some(SecretString::from(CERTS_BOOTSTRAP_TOKEN));
    let factory = FakeFactory::start().await;
    settings.machines.image_factory_url = factory.url();
    settings.machines.public_url = "https://attest.test".into();
    settings.machines.image_factory_timeout = std::time::Duration::from_secs(2);
    install_role_configs(&settings.delivery.config_cache_dir);
    if let Some(tweak) = launch.tweak {
        tweak(&mut settings);
    }
    let clock = launch.clock.unwrap_or_else(|| ManualClock::new(launch.now));
    let server = start_with(settings, Arc::new(clock.clone()), launch.extensions)
        .await
        .unwrap();
    Launched {
        server,
        clock,
        factory,
    }
}

impl TestApp {
    /// One server per available backend, default settings.
    pub async fn spawn_all() -> Vec<TestApp> {
        Self::spawn_all_with(|_| {}).await
    }

    /// One server per available backend, settings adjusted by `tweak`.
    pub async fn spawn_all_with(tweak: impl Fn(&mut Settings)) -> Vec<TestApp> {
        let mut apps = Vec::new();
        for db in TestDb::all_with(&[]).await {
            apps.push(Self::spawn_on(db, &tweak).await);
        }
        apps
    }

    /// One server per backend that trusts operator client certificates
    /// (`operator_post("alice", …)`), with `tweak` applied.
    pub async fn spawn_all_operators(tweak: impl Fn(&mut Settings)) -> Vec<TestApp> {
        Self::spawn_all_with(move |s| {
            s.client_cert_header = true;
            tweak(s);
        })
        .await
    }

    /// A server on a fresh SQLite database.
    pub async fn spawn_sqlite() -> TestApp {
        Self::spawn_on(TestDb::sqlite_with(&[]).await, &|_| {}).await
    }

    /// A server on a fresh SQLite database, settings adjusted by `tweak`
    /// (for tests whose subject is not the database).
    pub async fn spawn_sqlite_with(tweak: &dyn Fn(&mut Settings)) -> TestApp {
        Self::spawn_on(TestDb::sqlite_with(&[]).await, tweak).await
    }

    /// A server on a fresh SQLite database whose clock starts at `now`
    /// (for tests that meet real time, such as tokens of a provider).
    pub async fn spawn_sqlite_at(now: DateTime<Utc>) -> TestApp {
        Self::spawn_at(TestDb::sqlite_with(&[]).await, &|_| {}, now).await
    }

    /// A server on `db` (which the server migrates itself).
    pub async fn spawn_on(db: TestDb, tweak: &dyn Fn(&mut Settings)) -> TestApp {
        Self::spawn_at(db, tweak, epoch()).await
    }

    /// A server on `db` whose manual clock starts at `now`.
    pub async fn spawn_at(
        db: TestDb,
        tweak: &dyn Fn(&mut Settings),
        now: DateTime<Utc>,
    ) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let launched = launch(
            db.url(),
            dir.path(),
            Launch {
                tweak: Some(tweak),
                now,
                ..Launch::default()
            },
        )
        .await;
        let operator_certs = record_roster(&launched.server).await;
        TestApp {
            operator_certs,
            server: launched.server,
            http: reqwest::Client::new(),
            clock: launched.clock,
            db,
            dir,
            factory: launched.factory,
        }
    }

    /// Which backend this server runs on, for assertion messages.
    pub fn backend(&self) -> String {
        self.db.backend().to_string()
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.url(), path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    /// Absolute URL of `path` on the certificate-lifecycle listener.
    pub fn certs_url(&self, path: &str) -> String {
        match &self.server.certs {
            Some(certs) => format!("{}{}", certs.url(), path),
            None => panic!("the certificate-lifecycle listener is disabled in this test server"),
        }
    }

    /// Mints the certificate-lifecycle API's first administrator key
    /// through the day-0 bootstrap (once per server).
    pub async fn certs_bootstrap(&self, actor_name: &str) -> String {
        let res = self
            .http
            .post(self.certs_url("/api/v1/auth/bootstrap"))
            .json(&serde_json::json!({"token": CERTS_BOOTSTRAP_TOKEN, "actor_name": actor_name}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "bootstrap");
        let body: serde_json::Value = res.json().await.unwrap();
        body["key_value"].as_str().unwrap().to_owned()
    }

    /// `GET path` as the break-glass operator.
    pub fn admin_get(&self, path: &str) -> reqwest::RequestBuilder {
        self.get(path).bearer_auth(ADMIN_TOKEN)
    }

    /// `POST path` as the break-glass operator.
    pub fn admin_post(&self, path: &str) -> reqwest::RequestBuilder {
        self.post(path).bearer_auth(ADMIN_TOKEN)
    }

    /// The `X-Client-Cert` header value of operator `cn` of the roster
    /// (needs `client_cert_header = true`, see
    /// [`TestApp::spawn_all_operators`]).
    pub fn operator_cert(&self, cn: &str) -> String {
        urlencoding::encode(&self.operator_identity(cn).0).into_owned()
    }

    /// Certificate and private key PEM of operator `cn` of the roster.
    pub fn operator_identity(&self, cn: &str) -> (String, String) {
        match self.operator_certs.get(cn) {
            Some(identity) => identity.clone(),
            None => panic!("{cn} is not in OPERATOR_ROSTER"),
        }
    }

    /// Writes the certificate and key of operator `cn` of the roster to
    /// `<cn>.pem` and `<cn>.key` (owner-only) in the server's temporary
    /// directory, for clients that read files (`curl --cert --key`).
    pub fn operator_identity_files(&self, cn: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let (cert_pem, key_pem) = self.operator_identity(cn);
        let cert = self.dir.path().join(format!("{cn}.pem"));
        let key = self.dir.path().join(format!("{cn}.key"));
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&key)
            .unwrap()
            .write_all(key_pem.as_bytes())
            .unwrap();
        (cert, key)
    }

    /// `POST path` as operator `cn` (client certificate).
    pub fn operator_post(&self, cn: &str, path: &str) -> reqwest::RequestBuilder {
        self.post(path)
            .header("x-client-cert", self.operator_cert(cn))
    }

    /// `GET path` as operator `cn` (client certificate).
    pub fn operator_get(&self, cn: &str, path: &str) -> reqwest::RequestBuilder {
        self.get(path)
            .header("x-client-cert", self.operator_cert(cn))
    }

    /// Every event emitted from now on.
    pub fn events(
        &self,
    ) -> tokio::sync::broadcast::Receiver<attest_proto::events::NodeEventPayload> {
        self.server.state.events.subscribe()
    }

    /// Stops the server and drops the database.
    pub async fn stop(self) {
        self.server.shutdown().await.unwrap();
        self.db.close().await;
    }
}

/// Issues and records a 30-day certificate for each operator of the
/// roster, as `POST /api/v1/operator-certs` would after an OIDC login.
async fn record_roster(
    server: &RunningServer,
) -> std::collections::HashMap<String, (String, String)> {
    let state = &server.state;
    let mut certs = std::collections::HashMap::new();
    for cn in OPERATOR_ROSTER {
        let (issued, key) = state
            .ca
            .issue_with_new_key(
                cn,
                attest_auth::OPERATOR_OU,
                chrono::Duration::days(30),
                attest_pki::KeyAlgorithm::EcP384,
            )
            .unwrap();
        let mut tx = state.store.begin_write().await.unwrap();
        attest_store::EnrollmentCertRepo::insert(
            &mut tx,
            &attest_store::IssuedCertRecord {
                serial_hex: issued.serial_hex.clone(),
                issued_at: attest_domain::audit::format_timestamp(issued.not_before),
                not_after: attest_domain::audit::format_timestamp(issued.not_after),
                principal: Some(format!("oidc:sub-{cn}")),
                ..attest_store::IssuedCertRecord::new(cn, "operator")
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        certs.insert(cn.to_owned(), (issued.cert_pem, key.to_string()));
    }
    certs
}
