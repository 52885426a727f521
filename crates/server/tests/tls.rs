//! The attestation listener over native TLS, driven by `curl` and
//! `openssl s_client`: HTTPS and HTTP/2, the client-certificate modes,
//! operators and machines authenticated by the certificate the handshake
//! verified (no `X-Client-Cert`), and certificate reloads. Certificates for
//! the listener are made with `openssl`; operator and machine certificates
//! come from the server's own enrollment CA. SQLite only: the subject is
//! the listener, not the database.
//!
//! Without `curl` or `openssl` the tests print a skip and pass, except
//! under `CI`, where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use attest_server::config::extensions::MachineAuthMode;
use attest_server::config::tls::{TlsClientAuth, TlsSettings};
use attest_server::config::Settings;
use attest_store::testing::TestDb;
use attest_test_support::{TestApp, ADMIN_TOKEN};
use serde_json::{json, Value};

/// Whether `curl` and `openssl` are on the PATH; under `CI` a missing one
/// fails the test instead.
fn tools_present(test: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in ["curl", "openssl"] {
        if !std::env::split_paths(&path).any(|d| d.join(tool).is_file()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "{tool} is missing (apt-get install curl openssl)"
            );
            eprintln!("skipping {test}: {tool} not found");
            return false;
        }
    }
    true
}

/// Runs a command to completion; its stdout, or its failure as text.
async fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String, String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).await.unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} hung"))
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} exited with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

async fn openssl(args: &[&str]) -> String {
    run("openssl", args, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The listener's certificates, made with `openssl`: a server CA and
/// certificates for 127.0.0.1 from it, and a CA unknown to the server with
/// a client certificate.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    async fn new() -> Self {
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.ca("server-ca").await;
        pki.ca("rogue-ca").await;
        pki.issue("server-ca", "server", "127.0.0.1", true).await;
        pki.issue("rogue-ca", "rogue", "alice", false).await;
        pki
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    async fn ca(&self, name: &str) {
        let (key, pem) = (
            self.path(&format!("{name}.key")),
            self.path(&format!("{name}.pem")),
        );
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            s(&key),
            "-out",
            s(&pem),
        ])
        .await;
    }

    /// `<name>.pem` / `<name>.key` issued by `ca`: a server certificate for
    /// IP `cn`, or a client certificate.
    async fn issue(&self, ca: &str, name: &str, cn: &str, server: bool) {
        let key = self.path(&format!("{name}.key"));
        let csr = self.path(&format!("{name}.csr"));
        let ext = self.path(&format!("{name}.ext"));
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            s(&key),
            "-out",
            s(&csr),
        ])
        .await;
        let usage = if server {
            format!("extendedKeyUsage=serverAuth\nsubjectAltName=IP:{cn}\n")
        } else {
            "extendedKeyUsage=clientAuth\n".to_owned()
        };
        std::fs::write(
            &ext,
            format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n{usage}"),
        )
        .unwrap();
        let serial = format!("{}", rand::random::<u32>());
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-set_serial",
            &serial,
            "-in",
            s(&csr),
            "-CA",
            s(&self.path(&format!("{ca}.pem"))),
            "-CAkey",
            s(&self.path(&format!("{ca}.key"))),
            "-extfile",
            s(&ext),
            "-out",
            s(&self.path(&format!("{name}.pem"))),
        ])
        .await;
    }

    /// `SHA256 Fingerprint=…` of a PEM certificate.
    async fn fingerprint_of(pem: &[u8]) -> String {
        run(
            "openssl",
            &["x509", "-noout", "-fingerprint", "-sha256"],
            Some(pem),
        )
        .await
        .unwrap()
        .trim()
        .to_owned()
    }
}

/// The listener's TLS settings: `server.pem`, client certificates checked
/// against the server's enrollment CA.
fn tls_settings(pki: &Pki, mode: TlsClientAuth) -> impl Fn(&mut Settings) + '_ {
    move |settings: &mut Settings| {
        settings.tls = Some(TlsSettings {
            cert_file: pki.path("server.pem"),
            key_file: pki.path("server.key"),
            client_ca_file: Some(settings.ca_dir.join("ca.pem")),
            client_auth: mode,
        });
    }
}

/// A server on a fresh SQLite database, its clock at the real time (the
/// TLS handshake checks certificates against it).
async fn start(tweak: &dyn Fn(&mut Settings)) -> TestApp {
    TestApp::spawn_at(TestDb::sqlite_with(&[]).await, tweak, chrono::Utc::now()).await
}

/// What `curl` got: the status and the JSON body (or `Null`).
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
    http_version: String,
}

/// `curl` against the server trusting the server CA, with `extra`
/// arguments; `Err` when curl itself fails (a refused handshake).
async fn curl(app: &TestApp, pki: &Pki, path: &str, extra: &[&str]) -> Result<Reply, String> {
    let url = app.url(path);
    let ca = pki.path("server-ca.pem");
    let mut args = vec![
        "-sS",
        "--max-time",
        "20",
        "--cacert",
        s(&ca),
        "-w",
        "\n%{http_code} %{http_version}",
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    let out = run("curl", &args, None).await?;
    let (body, tail) = out.rsplit_once('\n').unwrap();
    let (status, version) = tail.split_once(' ').unwrap();
    Ok(Reply {
        status: status.parse().unwrap(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
        http_version: version.to_owned(),
    })
}

/// The fingerprint of the certificate the listener serves now, as
/// `openssl s_client` sees it.
async fn served_fingerprint(app: &TestApp, pki: &Pki) -> String {
    let connect = app.server.addr.to_string();
    let ca = pki.path("server-ca.pem");
    let out = run(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            s(&ca),
            "-verify_return_error",
        ],
        None,
    )
    .await
    .unwrap();
    let start = out.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = out.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    Pki::fingerprint_of(&out.as_bytes()[start..end]).await
}

#[tokio::test]
async fn optional_client_certificates_authenticate_operators_without_a_header() {
    if !tools_present("optional_client_certificates_authenticate_operators_without_a_header") {
        return;
    }
    let pki = Pki::new().await;
    let app = start(&tls_settings(&pki, TlsClientAuth::Optional)).await;
    assert!(
        app.server.url().starts_with("https://"),
        "{}",
        app.server.url()
    );
    let (alice_cert, alice_key) = app.operator_identity_files("alice");
    let alice = ["--cert", s(&alice_cert), "--key", s(&alice_key)];

    // HTTPS, over HTTP/2 when asked and HTTP/1.1 otherwise.
    let health = curl(&app, &pki, "/healthz", &["--http2"]).await.unwrap();
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (200, Some("ok"))
    );
    assert_eq!(health.http_version, "2");
    let health = curl(&app, &pki, "/healthz", &["--http1.1"]).await.unwrap();
    assert_eq!((health.status, health.http_version.as_str()), (200, "1.1"));
    let out = run(
        "openssl",
        &[
            "s_client",
            "-connect",
            &app.server.addr.to_string(),
            "-CAfile",
            s(&pki.path("server-ca.pem")),
            "-alpn",
            "h2,http/1.1",
            "-verify_return_error",
        ],
        None,
    )
    .await
    .unwrap();
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    // Plain HTTP is not served on the TLS port.
    let plain = run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            &format!("http://{}/healthz", app.server.addr),
        ],
        None,
    )
    .await;
    assert!(plain.is_err(), "{plain:?}");

    // No certificate: connected, but the operator route says who is missing.
    let anonymous = curl(&app, &pki, "/api/v1/audit", &[]).await.unwrap();
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
    // The header is not trusted (ITL_CLIENT_CERT_HEADER is off).
    let header = format!("x-client-cert: {}", app.operator_cert("alice"));
    let forwarded = curl(&app, &pki, "/api/v1/audit", &["-H", &header])
        .await
        .unwrap();
    assert_eq!(forwarded.status, 401, "{:?}", forwarded.body);

    // Alice's certificate, verified in the handshake, is the credential.
    let audit = curl(&app, &pki, "/api/v1/audit", &alice).await.unwrap();
    assert_eq!(audit.status, 200, "{:?}", audit.body);
    // ...and what she does is hers in the audit log.
    let import = json!({"ek_fingerprint": "a".repeat(64), "role": "worker-app"}).to_string();
    let imported = curl(
        &app,
        &pki,
        "/api/v1/machines/import",
        &[
            &alice[..],
            &["-H", "content-type: application/json", "-d", &import],
        ]
        .concat(),
    )
    .await
    .unwrap();
    assert_eq!(imported.status, 200, "{imported:?}");
    let log = curl(&app, &pki, "/api/v1/audit", &alice).await.unwrap();
    let entries = log.body.as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["operator_cn"] == "alice"),
        "{entries:?}"
    );

    // A certificate from a CA the listener does not trust ends the handshake.
    let (rogue_cert, rogue_key) = (pki.path("rogue.pem"), pki.path("rogue.key"));
    let rogue = ["--cert", s(&rogue_cert), "--key", s(&rogue_key)];
    let refused = curl(&app, &pki, "/healthz", &rogue).await.unwrap_err();
    assert!(refused.contains("\n000 "), "{refused}");

    // The break-glass token still works next to TLS.
    let bearer = format!("authorization: Bearer {ADMIN_TOKEN}");
    let glass = curl(&app, &pki, "/api/v1/audit", &["-H", &bearer])
        .await
        .unwrap();
    assert_eq!(glass.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn required_client_certificates_refuse_anyone_without_one() {
    if !tools_present("required_client_certificates_refuse_anyone_without_one") {
        return;
    }
    let pki = Pki::new().await;
    let app = start(&tls_settings(&pki, TlsClientAuth::Required)).await;
    let (alice_cert, alice_key) = app.operator_identity_files("alice");

    // curl fails with no HTTP answer at all (`%{http_code}` 000).
    let err = curl(&app, &pki, "/healthz", &[]).await.unwrap_err();
    assert!(err.contains("\n000 "), "{err}");
    let (rogue_cert, rogue_key) = (pki.path("rogue.pem"), pki.path("rogue.key"));
    let rogue = ["--cert", s(&rogue_cert), "--key", s(&rogue_key)];
    let err = curl(&app, &pki, "/healthz", &rogue).await.unwrap_err();
    assert!(err.contains("\n000 "), "{err}");

    let alice = ["--cert", s(&alice_cert), "--key", s(&alice_key)];
    let audit = curl(&app, &pki, "/api/v1/audit", &alice).await.unwrap();
    assert_eq!(audit.status, 200, "{:?}", audit.body);

    let connect = app.server.addr.to_string();
    let ca = pki.path("server-ca.pem");
    let mut with_cert = vec!["s_client", "-connect", &connect, "-CAfile", s(&ca)];
    with_cert.extend_from_slice(&["-cert", s(&alice_cert), "-key", s(&alice_key)]);
    let out = run("openssl", &with_cert, None).await.unwrap();
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    // Without one, the server's alert ends the session: s_client sees it
    // after the handshake (TLS 1.3), with no certificate accepted.
    let without = run(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            s(&ca),
            "-tls1_2",
        ],
        None,
    )
    .await;
    let text = match without {
        Ok(out) | Err(out) => out,
    };
    assert!(
        text.contains("handshake failure") || text.contains("alert"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn machines_authenticate_by_their_enrollment_certificate_over_tls() {
    if !tools_present("machines_authenticate_by_their_enrollment_certificate_over_tls") {
        return;
    }
    let pki = Pki::new().await;
    let tls = tls_settings(&pki, TlsClientAuth::Optional);
    let app = start(&move |s: &mut Settings| {
        tls(s);
        s.extensions.machine_auth = MachineAuthMode::EnrollmentCert;
    })
    .await;
    let bearer = format!("authorization: Bearer {ADMIN_TOKEN}");
    let json_body = |v: Value| v.to_string();
    let import = json_body(json!({"ek_fingerprint": "e".repeat(64), "role": "worker-app"}));
    let imported = curl(
        &app,
        &pki,
        "/api/v1/machines/import",
        &[
            "-H",
            &bearer,
            "-H",
            "content-type: application/json",
            "-d",
            &import,
        ],
    )
    .await
    .unwrap();
    assert_eq!(imported.status, 200, "{imported:?}");
    let id = imported.body["machine_id"].as_str().unwrap().to_owned();
    // Secrets go to attested machines; the attestation flow has its own
    // tests, so the machine is marked attested directly.
    attest_store::sqlx::query(
        "UPDATE machines SET status = 'attested', attested_at = registered_at WHERE machine_id = $1",
    )
    .bind(&id)
    .execute(app.server.state.store.pool())
    .await
    .unwrap();
    let bundle = curl(
        &app,
        &pki,
        &format!("/api/v1/machines/{id}/offline-bundle"),
        &["-H", &bearer],
    )
    .await
    .unwrap();
    assert_eq!(bundle.status, 200, "{bundle:?}");
    let (cert, key) = (app.dir.path().join("m.pem"), app.dir.path().join("m.key"));
    std::fs::write(&cert, bundle.body["enrollment_cert_pem"].as_str().unwrap()).unwrap();
    std::fs::write(&key, bundle.body["enrollment_key_pem"].as_str().unwrap()).unwrap();

    let secret = format!("/api/v1/secrets/machines/{id}/secrets");
    let put = json_body(json!({"name": "disk", "value": "disk-key"}));
    let stored = curl(
        &app,
        &pki,
        &secret,
        &[
            "-H",
            &bearer,
            "-H",
            "content-type: application/json",
            "-d",
            &put,
        ],
    )
    .await
    .unwrap();
    assert_eq!(stored.status, 201, "{stored:?}");

    let get = format!("{secret}/disk");
    let machine = ["--cert", s(&cert), "--key", s(&key)];
    let got = curl(&app, &pki, &get, &machine).await.unwrap();
    assert_eq!(got.status, 200, "{got:?}");
    let anonymous = curl(&app, &pki, &get, &[]).await.unwrap();
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    // An operator's certificate is no machine's.
    let (alice_cert, alice_key) = app.operator_identity_files("alice");
    let alice = ["--cert", s(&alice_cert), "--key", s(&alice_key)];
    let wrong = curl(&app, &pki, &get, &alice).await.unwrap();
    assert!(matches!(wrong.status, 401 | 403), "{wrong:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_reload_and_on_file_change() {
    if !tools_present("a_renewed_certificate_is_served_after_reload_and_on_file_change") {
        return;
    }
    let pki = Pki::new().await;
    let app = start(&tls_settings(&pki, TlsClientAuth::Optional)).await;
    let read = |name: &str| std::fs::read(pki.path(name)).unwrap();
    let first = Pki::fingerprint_of(&read("server.pem")).await;
    assert_eq!(served_fingerprint(&app, &pki).await, first);

    // Renewal by rewriting the files in place: the watcher notices.
    pki.issue("server-ca", "server", "127.0.0.1", true).await;
    let second = Pki::fingerprint_of(&read("server.pem")).await;
    assert_ne!(first, second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let served = served_fingerprint(&app, &pki).await;
        if served == second {
            break;
        }
        assert_eq!(served, first, "neither the old nor the new certificate");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was not served within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // What SIGHUP runs: the handle's reload.
    pki.issue("server-ca", "renewed", "127.0.0.1", true).await;
    std::fs::copy(pki.path("renewed.key"), pki.path("server.key")).unwrap();
    std::fs::copy(pki.path("renewed.pem"), pki.path("server.pem")).unwrap();
    let third = Pki::fingerprint_of(&read("renewed.pem")).await;
    app.server.reload_tls().unwrap();
    assert_eq!(served_fingerprint(&app, &pki).await, third);

    // A broken file is refused and the certificate served before stays.
    std::fs::write(pki.path("server.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    assert!(app.server.reload_tls().is_err());
    assert_eq!(served_fingerprint(&app, &pki).await, third);
    app.stop().await;
}
