//! Test harness: the real server with the extension on a fresh database,
//! and a client that speaks to it exactly as the Pulumi CLI's HTTP state
//! client does (`pkg/backend/httpstate/client/api.go`): JSON bodies,
//! `Accept: application/vnd.pulumi+8`, the CLI's `User-Agent`,
//! `Authorization: token …` or `update-token …`, and gzip-compressed
//! bodies with `Content-Encoding: gzip` for the calls the CLI compresses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use attest_domain::clock::ManualClock;
use attest_ext_pulumi_state::PulumiStateBackend;
use attest_image_factory::testing::FakeFactory;
use attest_server::config::Settings;
use attest_server::serve::RunningServer;
use attest_store::testing::TestDb;
use attest_test_support::{launch, Launch};
use serde_json::Value;

pub use attest_test_support::ADMIN_TOKEN;
pub const PULUMI_TOKEN: &str = "pul-0123456789abcdef0123456789abcdef";
pub const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// The CLI's `User-Agent` (`pulumi-cli/1 (<version>; <GOOS>)`).
pub const USER_AGENT: &str = "pulumi-cli/1 (3.150.0; linux)";

/// The running server (the shared test start-up, with this extension
/// only) and its data directory.
pub struct Harness {
    pub server: RunningServer,
    pub clock: ManualClock,
    _factory: FakeFactory,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(db: &TestDb, env: &[(&str, &str)]) -> Harness {
        Self::start_tweaked(db, env, &|_| {}).await
    }

    /// [`Harness::start`] with the server settings adjusted by `more`.
    pub async fn start_tweaked(
        db: &TestDb,
        env: &[(&str, &str)],
        more: &dyn Fn(&mut Settings),
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let tweak = |settings: &mut Settings| {
            more(settings);
            let mut ext_env = settings
                .extensions
                .env
                .with("ITL_PULUMI_TOKEN", PULUMI_TOKEN)
                .with("ITL_PULUMI_ORG", "acme")
                .with("ITL_SHARED_SECRET_MASTER_KEY", MASTER_KEY);
            for (k, v) in env {
                ext_env = ext_env.with(k, v);
            }
            settings.extensions.env = ext_env;
        };
        let launched = launch(
            db.url(),
            dir.path(),
            Launch {
                tweak: Some(&tweak),
                extensions: vec![Arc::new(PulumiStateBackend::default())],
                now: chrono::Utc::now(),
                clock: None,
                env: &[],
            },
        )
        .await;
        Harness {
            server: launched.server,
            clock: launched.clock,
            _factory: launched.factory,
            _dir: dir,
        }
    }

    pub fn cli(&self) -> Cli {
        Cli::new(&self.server.url(), PULUMI_TOKEN)
    }

    pub async fn stop(self) {
        self.server.shutdown().await.unwrap();
    }
}

/// How a call authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    Access,
    Update(String),
    None,
    Raw(String),
}

/// One exchange, for the transcript.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub response: String,
}

/// A client that sends what the Pulumi CLI sends.
#[derive(Clone)]
pub struct Cli {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    pub transcript: Arc<Mutex<Vec<Exchange>>>,
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(bytes).unwrap();
    w.finish().unwrap()
}

impl Cli {
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            base: base.to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
            transcript: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Sends `body` (raw JSON text) like the CLI's `pulumiAPICall`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        compress: bool,
        auth: &Auth,
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .header("User-Agent", USER_AGENT)
            .header("Accept", "application/vnd.pulumi+8")
            .header("Accept-Encoding", "gzip");
        match auth {
            Auth::Access => req = req.header("Authorization", format!("token {}", self.token)),
            Auth::Update(t) => req = req.header("Authorization", format!("update-token {t}")),
            Auth::Raw(v) => req = req.header("Authorization", v.as_str()),
            Auth::None => {}
        }
        let bytes = body.unwrap_or("").as_bytes().to_vec();
        if compress {
            req = req.header("Content-Encoding", "gzip").body(gzip(&bytes));
        } else {
            req = req.body(bytes);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        self.transcript.lock().unwrap().push(Exchange {
            method: method.to_string(),
            path: path.to_owned(),
            status,
            response: text.clone(),
        });
        (status, text)
    }

    /// `send` with a JSON value, answering JSON (Null when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        compress: bool,
        auth: &Auth,
    ) -> (u16, Value) {
        let text = body.map(|b| b.to_string());
        let (status, resp) = self
            .send(method, path, text.as_deref(), compress, auth)
            .await;
        let value = if resp.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&resp).unwrap_or(Value::String(resp))
        };
        (status, value)
    }

    /// Expects `want`, returning the JSON body.
    pub async fn ok(
        &self,
        want: u16,
        method: &str,
        path: &str,
        body: Option<&Value>,
        compress: bool,
        auth: &Auth,
    ) -> Value {
        let (status, value) = self.call(method, path, body, compress, auth).await;
        assert_eq!(status, want, "{method} {path}: {value}");
        value
    }

    /// The transcript, one line per exchange, responses abridged.
    pub fn transcript(&self) -> String {
        self.transcript
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                let mut r = e.response.replace('\n', " ");
                if r.len() > 110 {
                    let mut cut = 110;
                    while !r.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    r.truncate(cut);
                    r.push('…');
                }
                format!("{:<6} {:<70} {} {}", e.method, e.path, e.status, r)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Every backend: SQLite, plus PostgreSQL with `TEST_DATABASE_URL`.
pub async fn databases() -> Vec<TestDb> {
    TestDb::all_with(&[]).await
}

/// PostgreSQL must run in CI; elsewhere its absence is reported.
pub fn note_backends(dbs: &[TestDb]) {
    if dbs.len() < 2 {
        assert!(
            std::env::var("CI").is_err(),
            "TEST_DATABASE_URL must be set in CI so PostgreSQL is tested"
        );
        eprintln!("SKIPPED on PostgreSQL: TEST_DATABASE_URL is not set");
    }
}
