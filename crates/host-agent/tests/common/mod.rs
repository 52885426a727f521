//! Test harness: certificates made with `openssl`, an agent started in
//! process on port 0 with its own state, apt pointed at a throwaway root,
//! and `curl` as the client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod apt;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_domain::clock::{ManualClock, SharedClock};
use attest_host_agent::config::AgentConfig;
use attest_host_agent::RunningPatchApi;
use chrono::Utc;
use futures::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;

/// Tools the tests drive.
pub const TOOLS: [&str; 7] = [
    "dpkg-deb",
    "apt-ftparchive",
    "apt-get",
    "dpkg-query",
    "curl",
    "openssl",
    "gzip",
];

/// Fails under `CI=true` when a tool is missing; elsewhere the build script
/// already marked the tests ignored, so reaching here means a tool went
/// missing after the build: fail loudly rather than pass.
pub fn require_tools() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| !std::env::split_paths(&path).any(|d| d.join(t).is_file()))
        .collect();
    assert!(
        missing.is_empty(),
        "missing tools {missing:?}: run scripts/setup-debian.sh (apt-utils, dpkg-dev, curl, openssl)"
    );
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A CA and certificates, made by `openssl`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let pki = Self {
            dir: dir.to_owned(),
        };
        pki.ca("ca");
        pki.ca("rogue-ca");
        pki.issue("ca", "server", "127.0.0.1", 365, true);
        pki.issue("ca", "client", "operator", 365, false);
        pki.issue("ca", "client-long", "operator-long", 800, false);
        pki.issue("rogue-ca", "rogue", "intruder", 365, false);
        pki
    }

    /// A directory of certificates made elsewhere (nothing generated):
    /// `ca.pem` and `client.pem`/`client.key` are what the client uses.
    pub fn at(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Self {
            dir: dir.to_owned(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn ca(&self, name: &str) {
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "3650",
                "-subj",
            ])
            .arg(format!("/CN=test {name}"))
            .args([
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ])
            .arg("-keyout")
            .arg(self.path(&format!("{name}.key")))
            .arg("-out")
            .arg(self.path(&format!("{name}.pem"))));
    }

    /// Issues `<name>.pem`/`<name>.key` from CA `ca`.
    pub fn issue(&self, ca: &str, name: &str, cn: &str, days: u32, server: bool) {
        let key = self.path(&format!("{name}.key"));
        let csr = self.path(&format!("{name}.csr"));
        run(Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
            ])
            .arg(format!("/CN={cn}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        let ext = self.path(&format!("{name}.ext"));
        let text = if server {
            format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:{cn},DNS:localhost\n")
        } else {
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"
                .to_owned()
        };
        std::fs::write(&ext, text).unwrap();
        self.sign(ca, &csr, &self.path(&format!("{name}.pem")), days, &ext);
    }

    /// Signs a CSR with CA `ca`.
    pub fn sign(&self, ca: &str, csr: &Path, out: &Path, days: u32, ext: &Path) {
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", &days.to_string(), "-set_serial"])
            .arg(format!("{}", rand_serial()))
            .arg("-in")
            .arg(csr)
            .arg("-CA")
            .arg(self.path(&format!("{ca}.pem")))
            .arg("-CAkey")
            .arg(self.path(&format!("{ca}.key")))
            .arg("-extfile")
            .arg(ext)
            .arg("-out")
            .arg(out));
    }

    /// `sha256:…` of a certificate, as openssl prints it.
    pub fn fingerprint(&self, name: &str) -> String {
        let out = run(Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(self.path(&format!("{name}.pem"))));
        out.trim().to_owned()
    }
}

fn rand_serial() -> u64 {
    let n = Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64;
    (n ^ u64::from(std::process::id())) % 1_000_000_000_000
}

/// Options of a test agent.
pub struct AgentOptions {
    pub allow: Vec<String>,
    pub clock: ManualClock,
    pub apt_root: PathBuf,
    /// The Debian tracker JSON: a URL or a file path.
    pub tracker: Option<String>,
    pub timeout_seconds: u64,
    pub max_concurrent: usize,
}

/// An agent running in this process.
pub struct TestAgent {
    pub api: RunningPatchApi,
    pub addr: SocketAddr,
    pub pki: Arc<Pki>,
    pub config: AgentConfig,
    pub clock: ManualClock,
    pub dir: PathBuf,
}

/// The config a test agent runs with.
pub fn config_for(dir: &Path, pki: &Pki, opts: &AgentOptions) -> AgentConfig {
    let allowlist = dir.join("whitelist.yaml");
    write_allowlist(&allowlist, &opts.allow);
    let mut config = AgentConfig::default();
    let p = &mut config.roles.patch_api;
    p.enabled = true;
    p.listen = "127.0.0.1:0".parse().unwrap();
    p.tls.ca_file = pki.path("ca.pem");
    p.tls.cert_file = pki.path("server.pem");
    p.tls.key_file = pki.path("server.key");
    p.allowlist_file = allowlist;
    p.allowlist_poll_millis = 25;
    p.state_dir = dir.join("state");
    p.jobs.timeout_seconds = opts.timeout_seconds;
    p.jobs.max_concurrent = opts.max_concurrent;
    p.packages.backend = "apt".into();
    p.packages.root = Some(opts.apt_root.clone());
    p.packages.refresh_interval_seconds = 0;
    p.security_data.debian_tracker = opts.tracker.clone();
    p.security_data.release = Some("bookworm".into());
    let marker = dir.join("rebooted");
    p.reboot_command = vec![
        "sh".into(),
        "-c".into(),
        format!("date > {}", marker.display()),
    ];
    config
}

pub fn write_allowlist(path: &Path, allow: &[String]) {
    let mut text = String::from("allowed:\n");
    for a in allow {
        text.push_str(&format!("  - \"{a}\"\n"));
    }
    if allow.is_empty() {
        text = "allowed: []\n".into();
    }
    std::fs::write(path, text).unwrap();
}

impl AgentOptions {
    pub fn new(apt_root: &Path) -> Self {
        Self {
            allow: vec!["127.0.0.1".into()],
            clock: ManualClock::new(Utc::now()),
            apt_root: apt_root.to_owned(),
            tracker: None,
            timeout_seconds: 1800,
            max_concurrent: 5,
        }
    }
}

impl TestAgent {
    pub async fn start(dir: &Path, pki: Arc<Pki>, opts: AgentOptions) -> Self {
        let config = config_for(dir, &pki, &opts);
        Self::with_config(dir, pki, config, opts.clock).await
    }

    /// An agent running `config` as given; `pki` is only the client side.
    pub async fn with_config(
        dir: &Path,
        pki: Arc<Pki>,
        config: AgentConfig,
        clock: ManualClock,
    ) -> Self {
        let shared: SharedClock = Arc::new(clock.clone());
        let api = attest_host_agent::start_patch_api(&config, shared)
            .await
            .unwrap();
        Self {
            addr: api.addr,
            api,
            pki,
            config,
            clock,
            dir: dir.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{}", self.addr.port(), path)
    }

    /// curl with the good client certificate.
    pub fn curl(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.curl_as("client", None, method, path, body)
    }

    /// curl as `cert` (None: no certificate) from `source` (None: 127.0.0.1).
    pub fn curl_as(
        &self,
        cert: &str,
        source: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let out = self.curl_raw(Some(cert), source, method, path, body);
        assert!(
            out.status.success(),
            "curl {method} {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
        };
        (code.parse().unwrap(), json)
    }

    pub fn curl_raw(
        &self,
        cert: Option<&str>,
        source: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::process::Output {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "20",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(self.pki.path("ca.pem"));
        if let Some(cert) = cert {
            cmd.arg("--cert").arg(self.pki.path(&format!("{cert}.pem")));
            cmd.arg("--key").arg(self.pki.path(&format!("{cert}.key")));
        }
        if let Some(src) = source {
            cmd.args(["--interface", src]);
        }
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        cmd.arg(self.url(path));
        cmd.output().unwrap()
    }

    /// Polls a job until it is finished (or the deadline passes).
    pub async fn wait_job(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let detail = self.api.jobs.detail(id).unwrap();
            if detail.status.is_terminal() {
                let (code, body) = self.curl("GET", &format!("/api/v1/jobs/{id}"), None);
                assert_eq!(code, 200);
                return body["data"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "job {id} still {:?}",
                detail.status
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An empty apt root (no sources): never the machine's own dpkg database.
pub fn empty_apt_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    apt::prepare_root(&root, &[]);
    root
}

/// `attestation-agent serve` as a separate process (killed when dropped).
pub struct AgentProcess {
    child: tokio::process::Child,
    addr: Option<tokio::sync::oneshot::Receiver<SocketAddr>>,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl AgentProcess {
    /// Starts the binary; its log is read for the listening address.
    pub fn spawn(config_file: &Path) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_attestation-agent"))
            .arg("--config")
            .arg(config_file)
            .arg("serve")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("patch API listening") {
                    if let (Some(tx), Some(at)) = (tx.take(), line.find("addr=")) {
                        let addr = line[at + 5..].split_whitespace().next().unwrap_or("");
                        let addr = addr
                            .trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':');
                        let _ = tx.send(addr.parse().unwrap());
                    }
                }
            }
        });
        Self {
            child,
            addr: Some(rx),
        }
    }

    /// Waits until the agent listens (at most `within`).
    pub async fn addr(&mut self, within: Duration) -> SocketAddr {
        let rx = self.addr.take().expect("addr() called twice");
        tokio::time::timeout(within, rx)
            .await
            .expect("the agent did not start listening")
            .expect("the agent exited before listening")
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

/// curl against a process on `addr` with the CA's `client` certificate.
pub fn curl_at(
    pki: &Pki,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "20",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
        "--cacert",
    ])
    .arg(pki.path("ca.pem"))
    .arg("--cert")
    .arg(pki.path("client.pem"))
    .arg("--key")
    .arg(pki.path("client.key"));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(b.to_string());
    }
    cmd.arg(format!("https://127.0.0.1:{}{path}", addr.port()));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// A rustls client trusting the PKI's `ca.pem`, presenting `cert` (TLS 1.3).
pub fn client_config(pki: &Pki, cert: Option<&str>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    match cert {
        Some(c) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(pki.path(&format!("{c}.pem"))).unwrap()],
                PrivateKeyDer::from_pem_file(pki.path(&format!("{c}.key"))).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

/// The job WebSocket, over mutual TLS as the PKI's `client`.
pub async fn ws_connect(
    agent: &TestAgent,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(client_config(&agent.pki, Some("client"))));
    let tcp = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (ws, resp) = tokio_tungstenite::client_async(
        format!("wss://127.0.0.1:{}/api/v1/ws/jobs", agent.addr.port()),
        tls,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

/// The next text message, as JSON (10 s at most).
pub async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}
