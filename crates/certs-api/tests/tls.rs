//! The certificate-lifecycle listener over HTTPS, checked with `curl` and
//! `openssl s_client`: its own CA issues the server certificate at start
//! (reused on the next start, re-issued when the names change), clients
//! that trust `ca.pem` connect, and with client-certificate verification
//! a certificate from another CA is refused in the handshake.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use attest_certs_api::listener_tls;
use attest_ext::{MasterKey, SecretKey};
use attest_server::config::certs::{CertsCertificate, CertsTlsSettings};
use attest_server::config::tls::TlsClientAuth;
use attest_test_support::{TestApp, CERTS_BOOTSTRAP_TOKEN};

fn tools_or_skip() -> bool {
    let ok = ["curl", "openssl"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .or_else(|_| Command::new(t).arg("version").output())
            .is_ok()
    });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "curl and openssl are required under CI"
        );
        eprintln!("SKIPPED: curl or openssl is not installed");
    }
    ok
}

fn run(cmd: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(cmd).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A CA and a client certificate it signed, made with openssl in `dir`.
fn client_pki(dir: &Path, name: &str) {
    let p = |f: &str| dir.join(format!("{name}-{f}")).to_str().unwrap().to_owned();
    let (code, out) = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
            "-days",
            "30",
            "-subj",
            &format!("/CN={name} client CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(
        "openssl",
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &p("client.key"),
            "-out",
            &p("client.csr"),
            "-subj",
            &format!("/CN={name} client"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let ext = dir.join(format!("{name}-ext.cnf"));
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let (code, out) = run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &p("client.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-out",
            &p("client.pem"),
            "-days",
            "30",
            "-extfile",
            ext.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
}

async fn https_app(client_ca: Option<std::path::PathBuf>, auth: TlsClientAuth) -> TestApp {
    TestApp::spawn_sqlite_with(&move |s| {
        s.certs.tls = Some(CertsTlsSettings {
            certificate: CertsCertificate::SelfIssued {
                dir: s.data_dir.join("certs-tls"),
                names: vec!["localhost".into(), "127.0.0.1".into()],
            },
            client_ca_file: client_ca.clone(),
            client_auth: auth,
        });
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_serves_https_with_its_own_ca() {
    if !tools_or_skip() {
        return;
    }
    let app = https_app(None, TlsClientAuth::Off).await;
    let url = app.certs_url("");
    assert!(url.starts_with("https://"), "{url}");
    let ca = app.server.state.settings.data_dir.join("certs-tls/ca.pem");
    let ca = ca.to_str().unwrap();

    let (code, body) = run("curl", &["-sS", "--cacert", ca, &format!("{url}/health")]);
    assert_eq!((code, body.as_str()), (0, r#"{"status":"healthy"}"#));
    // The name in the certificate is checked too.
    let port = app.server.certs.as_ref().unwrap().addr.port();
    let (code, body) = run(
        "curl",
        &[
            "-sS",
            "--cacert",
            ca,
            &format!("https://localhost:{port}/health"),
        ],
    );
    assert_eq!(code, 0, "{body}");
    let (code, _) = run("curl", &["-sS", &format!("{url}/health")]);
    assert_eq!(code, 60, "without the CA, curl refuses the certificate");

    let (code, out) = run("sh", &["-c", &format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername localhost -CAfile {ca} -verify_return_error </dev/null"
    )]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");

    // The day-0 bootstrap over HTTPS.
    let body = format!(r#"{{"token":"{CERTS_BOOTSTRAP_TOKEN}","actor_name":"admin-alice"}}"#);
    let (code, out) = run(
        "curl",
        &[
            "-sS",
            "--cacert",
            ca,
            "-H",
            "content-type: application/json",
            "-d",
            &body,
            &format!("{url}/api/v1/auth/bootstrap"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"key_value\":\"cck_"), "{out}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_another_ca_is_refused() {
    if !tools_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    client_pki(dir.path(), "trusted");
    client_pki(dir.path(), "other");
    let f = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let app = https_app(
        Some(dir.path().join("trusted-ca.pem")),
        TlsClientAuth::Required,
    )
    .await;
    let url = format!("{}/health", app.certs_url(""));
    let ca = app.server.state.settings.data_dir.join("certs-tls/ca.pem");
    let ca = ca.to_str().unwrap();

    let (code, out) = run(
        "curl",
        &[
            "-sS",
            "--cacert",
            ca,
            "--cert",
            &f("trusted-client.pem"),
            "--key",
            &f("trusted-client.key"),
            &url,
        ],
    );
    assert_eq!((code, out.as_str()), (0, r#"{"status":"healthy"}"#));
    let (code, out) = run(
        "curl",
        &[
            "-sS",
            "--cacert",
            ca,
            "--cert",
            &f("other-client.pem"),
            "--key",
            &f("other-client.key"),
            &url,
        ],
    );
    assert_ne!(code, 0, "another CA's certificate is refused: {out}");
    let (code, out) = run("curl", &["-sS", "--cacert", ca, &url]);
    assert_ne!(code, 0, "no certificate is refused when required: {out}");
    let port = app.server.certs.as_ref().unwrap().addr.port();
    // openssl s_client sees the server's alert once it sends a request
    // (TLS 1.3 verifies the client after the server's Finished).
    let s_client = |name: &str| {
        let script = format!(
            "printf 'GET /health HTTP/1.0\\r\\n\\r\\n' | openssl s_client -quiet -connect 127.0.0.1:{port} -CAfile {ca} -cert {} -key {} 2>&1",
            f(&format!("{name}-client.pem")),
            f(&format!("{name}-client.key"))
        );
        run("sh", &["-c", &script]).1
    };
    let trusted = s_client("trusted");
    assert!(trusted.contains("healthy"), "{trusted}");
    let other = s_client("other");
    assert!(
        !other.contains("healthy") && other.contains("alert"),
        "{other}"
    );
    app.stop().await;
}

#[test]
fn the_certificate_is_reused_and_reissued_when_names_change() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey {
        key: SecretKey::random(),
        key_id: "test",
    };
    let now = chrono::Utc::now();
    let names = vec!["localhost".to_owned()];
    let first = listener_tls::prepare(dir.path(), &names, &master, now).unwrap();
    assert!(first.created_ca && first.issued);
    let again = listener_tls::prepare(dir.path(), &names, &master, now).unwrap();
    assert!(!again.created_ca && !again.issued);
    assert_eq!(again.chain_pem, first.chain_pem);
    let renamed =
        listener_tls::prepare(dir.path(), &["certs.example.com".to_owned()], &master, now).unwrap();
    assert!(renamed.issued && !renamed.created_ca);
    let later = listener_tls::prepare(
        dir.path(),
        &["certs.example.com".to_owned()],
        &master,
        now + chrono::Duration::days(380),
    )
    .unwrap();
    assert!(later.issued, "re-issued with under 30 days left");
    // Keys are sealed, files owner-only.
    use std::os::unix::fs::PermissionsExt;
    for f in ["ca-key.json", "server.json"] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(!text.contains("PRIVATE KEY"), "{f}");
        let mode = std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let other = MasterKey {
        key: SecretKey::random(),
        key_id: "other",
    };
    assert!(
        listener_tls::prepare(dir.path(), &names, &other, now).is_err(),
        "another master key cannot open it"
    );
}
