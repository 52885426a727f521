//! The `certs` command group of the real `attestation` binary against the
//! real server's certificate-lifecycle listener (plain HTTP, port 0), on
//! every available backend: bootstrap, the catalogue, a certificate
//! issued, renewed into a 0600 key file, exported, revoked, the CA
//! hierarchy retired, API keys minted and revoked, and the audit log
//! showing it all; errors quote the server's message and request id with
//! the documented exit codes, and no secret is ever printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use attest_test_support::{each_backend, TestApp, CERTS_BOOTSTRAP_TOKEN};
use common::*;
use serde_json::{json, Value};

/// The CLI against `app`'s certs listener with `key` (if any) in
/// `CERTCTL_API_KEY`.
fn certs(app: &TestApp, key: Option<&str>, args: &[&str]) -> Run {
    let mut all = vec!["certs"];
    all.extend_from_slice(args);
    let run = Run::new(&all).env("ITL_CERTS_URL", app.certs_url(""));
    match key {
        Some(key) => run.env("CERTCTL_API_KEY", key),
        None => run,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn openssl_available() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is required under CI"
        );
        eprintln!("SKIPPED (openssl checks): openssl is not installed");
    }
    ok
}

/// Everything a run printed, for "never printed" checks.
fn printed(done: &Done) -> String {
    format!("{}{}", done.stdout(), done.stderr())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_lifecycle_through_the_cli() {
    let openssl = openssl_available();
    each_backend(async |app| lifecycle(app, openssl)).await;
}

/// The whole flow; synchronous (it runs the binary) while the server runs
/// on the runtime's workers.
fn lifecycle(app: &TestApp, openssl: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // --- bootstrap: the token from stdin or a file, never argv ----------
    let wrong = certs(
        app,
        None,
        &["bootstrap", "--token-file", "-", "--actor", "admin-alice"],
    )
    .stdin("not-the-bootstrap-token\n")
    .fails(3);
    assert!(wrong.stderr().contains("HTTP 401"), "{wrong:?}");
    assert!(wrong.stderr().contains("request_id"), "{wrong:?}");
    let token_file = write(d, "bootstrap.token", &format!("{CERTS_BOOTSTRAP_TOKEN}\n"));
    let boot = certs(
        app,
        None,
        &[
            "bootstrap",
            "--token-file",
            &token_file,
            "--actor",
            "admin-alice",
            "-o",
            "json",
        ],
    )
    .ok();
    assert!(!printed(&boot).contains(CERTS_BOOTSTRAP_TOKEN), "{boot:?}");
    let admin = boot.json()["key_value"].as_str().unwrap().to_owned();
    // One-shot: 410, exit 4, the server's message.
    let again = certs(
        app,
        None,
        &[
            "bootstrap",
            "--token-file",
            &token_file,
            "--actor",
            "admin-bob",
        ],
    )
    .fails(4);
    assert!(again.stderr().contains("HTTP 410"), "{again:?}");
    let a = Some(admin.as_str());

    let me = certs(app, a, &["whoami", "-o", "json"]).ok().json();
    assert!(me["roles"].to_string().contains("r-admin"), "{me}");

    // --- a wrong key: exit 3 with the server's error and request id ----
    let bad = certs(app, Some("ck-not-a-real-key"), &["issuers", "list"]).fails(3);
    let err = bad.stderr();
    assert!(err.contains("HTTP 401 Unauthorized: "), "{bad:?}");
    assert!(err.contains("(request_id "), "{bad:?}");
    assert!(!err.contains("ck-not-a-real-key"), "{bad:?}");
    // No key at all: 401 as well.
    certs(app, None, &["issuers", "list"]).fails(3);
    // --api-key on the command line is sent, never printed: success and
    // failure, table and json.
    for (key, code) in [(admin.as_str(), 0), ("ck-argv-secret-0123", 3)] {
        for format in ["table", "json", "yaml"] {
            let done = Run::new(&[
                "certs",
                "--certs-url",
                &app.certs_url(""),
                "--api-key",
                key,
                "issuers",
                "list",
                "-o",
                format,
            ])
            .run();
            assert_eq!(done.code(), code, "{done:?}");
            assert!(!printed(&done).contains(key), "{done:?}");
        }
    }

    // --- issuer and its CA hierarchy ------------------------------------
    let issuer = certs(
        app,
        a,
        &[
            "issuers",
            "create",
            "--id",
            "iss-local",
            "--name",
            "Local CA",
            "--common-name",
            "Example Root CA",
            "--key-algorithm",
            "ECDSA-P384",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(issuer["type"], "GenericCA", "{issuer}");
    let root = issuer["config"]["issuing_ca_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let root_pem = issuer["config"]["ca_cert_pem"].as_str().unwrap().to_owned();
    assert!(issuer["config"].get("ca_key_pem").is_none());
    let shown = certs(app, a, &["issuers", "show", "iss-local"])
        .ok()
        .stdout();
    assert!(shown.contains("config.issuing_ca_id:"), "{shown}");
    let listed = certs(app, a, &["issuers", "list"]).ok().stdout();
    assert!(
        listed.starts_with("ID") && listed.contains("iss-local"),
        "{listed}"
    );
    assert!(listed.contains("1 shown, 1 in total"), "{listed}");
    let ica = certs(
        app,
        a,
        &[
            "intermediates",
            "create",
            "iss-local",
            "--name",
            "issuing-1",
            "--parent",
            &root,
            "--common-name",
            "Example Issuing CA 1",
            "--ttl-days",
            "730",
            "--path-len",
            "0",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(ica["path_len_constraint"], 0, "{ica}");
    assert_eq!(ica["parent_ca_id"], json!(root));
    let ica_id = ica["id"].as_str().unwrap().to_owned();
    let cas = certs(app, a, &["intermediates", "list", "iss-local"])
        .ok()
        .stdout();
    assert!(cas.contains("issuing-1") && cas.contains(&root), "{cas}");
    // Unknown parent: 404, exit 4.
    certs(
        app,
        a,
        &[
            "intermediates",
            "create",
            "iss-local",
            "--name",
            "x",
            "--parent",
            "ica-nope",
        ],
    )
    .fails(4);

    // --- the catalogue: flags, -f JSON with flags on top, -f YAML --------
    let team_file = write(d, "team.json", r#"{"id": "t-web", "name": "placeholder"}"#);
    let team = certs(
        app,
        a,
        &[
            "teams", "create", "-f", &team_file, "--name", "Web", "-o", "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        (team["id"].as_str(), team["name"].as_str()),
        (Some("t-web"), Some("Web"))
    );
    certs(
        app,
        a,
        &[
            "owners",
            "create",
            "--id",
            "o-ana",
            "--name",
            "Ana",
            "--email",
            "ana@example.com",
            "--team",
            "t-web",
        ],
    )
    .ok();
    let policy = certs(
        app,
        a,
        &[
            "renewal-policies",
            "create",
            "--id",
            "rp-std",
            "--name",
            "standard",
            "--max-retries",
            "3",
            "--alert-threshold-days",
            "30",
            "--alert-threshold-days",
            "7",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(policy["alert_thresholds_days"], json!([30, 7]), "{policy}");
    let profile_file = write(
        d,
        "profile.yaml",
        "id: prof-web\nname: web\nmax_ttl_seconds: 2592000\n\
         allowed_key_algorithms: [{algorithm: ECDSA, min_size: 256}]\n\
         allowed_ekus: [serverAuth]\n\
         required_san_patterns: ['[a-z0-9.-]+\\.example\\.com']\n",
    );
    let profile = certs(
        app,
        a,
        &["profiles", "create", "-f", &profile_file, "-o", "yaml"],
    )
    .ok()
    .stdout();
    assert!(profile.contains("id: prof-web"), "{profile}");
    // A misspelt field is refused locally (exit 2), not silently dropped.
    let typo = write(d, "typo.yaml", "name: web-2\nmax_ttl_secs: 60\n");
    let refused = certs(app, a, &["profiles", "create", "-f", &typo]).fails(2);
    assert!(refused.stderr().contains("`max_ttl_secs`"), "{refused:?}");
    // A rule broken: the server's 400 and message.
    let dup = certs(
        app,
        a,
        &["teams", "create", "--id", "t-web", "--name", "Web"],
    )
    .fails(4);
    assert!(dup.stderr().contains("HTTP 409"), "{dup:?}");
    for (group, id) in [
        ("teams", "t-web"),
        ("owners", "o-ana"),
        ("renewal-policies", "rp-std"),
        ("profiles", "prof-web"),
    ] {
        let list = certs(app, a, &[group, "list", "-o", "json"]).ok().json();
        assert_eq!(list["total"], 1, "{group}: {list}");
        assert_eq!(list["data"][0]["id"], json!(id), "{group}: {list}");
        let one = certs(app, a, &[group, "show", id, "-o", "json"])
            .ok()
            .json();
        assert_eq!(one["id"], json!(id), "{group}: {one}");
    }
    certs(app, a, &["owners", "show", "o-nobody"]).fails(4);

    // --- certificates: from flags and from a file ------------------------
    let created = certs(
        app,
        a,
        &[
            "certificates",
            "create",
            "--id",
            "mc-api",
            "--name",
            "api",
            "--common-name",
            "api.example.com",
            "--san",
            "www.api.example.com",
            "--environment",
            "prod",
            "--owner",
            "o-ana",
            "--team",
            "t-web",
            "--issuer",
            "iss-local",
            "--renewal-policy",
            "rp-std",
            "--profile",
            "prof-web",
            "--tag",
            "app=web",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(created["status"], "Pending", "{created}");
    assert_eq!(created["tags"], json!({"app": "web"}));
    let cert_file = write(
        d,
        "web.yaml",
        "id: mc-web\nname: web\ncommon_name: web.example.com\nenvironment: staging\n\
         owner_id: o-ana\nteam_id: t-web\nissuer_id: iss-local\nrenewal_policy_id: rp-std\n\
         certificate_profile_id: prof-web\n",
    );
    certs(app, a, &["certificates", "create", "-f", &cert_file]).ok();
    let pending = certs(
        app,
        a,
        &[
            "certificates",
            "list",
            "--status",
            "Pending",
            "--team",
            "t-web",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(pending["total"], 2, "{pending}");
    let staging = certs(
        app,
        a,
        &["certificates", "list", "--environment", "staging"],
    )
    .ok()
    .stdout();
    assert!(
        staging.contains("mc-web") && !staging.contains("mc-api"),
        "{staging}"
    );
    // An unknown status is a usage error before anything is sent.
    certs(app, a, &["certificates", "list", "--status", "Bogus"]).fails(2);

    // --- renew into a 0600 key file, never over an existing one ---------
    certs(app, a, &["certificates", "renew", "mc-api"]).fails(2);
    let key_path = d.join("api.key");
    let key_out = key_path.to_str().unwrap();
    let renewed = certs(
        app,
        a,
        &[
            "certificates",
            "renew",
            "mc-api",
            "--key-out",
            key_out,
            "-o",
            "json",
        ],
    )
    .ok();
    let key_pem = std::fs::read_to_string(&key_path).unwrap();
    assert!(key_pem.contains("BEGIN PRIVATE KEY"), "{key_pem}");
    assert!(!printed(&renewed).contains(&key_pem), "{renewed:?}");
    assert!(!printed(&renewed).contains("PRIVATE KEY"), "{renewed:?}");
    let body = renewed.json();
    assert_eq!(body["status"], "renewed", "{body}");
    assert!(body.get("private_key_pem").is_none(), "{body}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let table = certs(app, a, &["certificates", "show", "mc-api"])
        .ok()
        .stdout();
    assert!(table.contains("Active"), "{table}");
    // Same file again: refused before the server is asked, key untouched.
    let refused = certs(
        app,
        a,
        &["certificates", "renew", "mc-api", "--key-out", key_out],
    )
    .fails(1);
    assert!(
        refused.stderr().contains("refusing to overwrite"),
        "{refused:?}"
    );
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key_pem);
    let versions = certs(
        app,
        a,
        &["certificates", "versions", "mc-api", "-o", "json"],
    )
    .ok()
    .json();
    assert_eq!(versions["total"], 1, "{versions}");
    // A failed renewal leaves no empty key file behind.
    let missing = d.join("missing.key");
    certs(
        app,
        a,
        &[
            "certificates",
            "renew",
            "mc-nope",
            "--key-out",
            missing.to_str().unwrap(),
        ],
    )
    .fails(4);
    assert!(!missing.exists());
    // --print-key: the key alone on stdout.
    let printed_key = certs(app, a, &["certificates", "renew", "mc-web", "--print-key"])
        .ok()
        .stdout();
    assert!(
        printed_key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{printed_key}"
    );

    // --- export: PEM and PKCS#12 ------------------------------------------
    let pem_path = d.join("api-chain.pem");
    certs(
        app,
        a,
        &[
            "certificates",
            "export",
            "mc-api",
            "--format",
            "pem",
            "--out",
            pem_path.to_str().unwrap(),
        ],
    )
    .ok();
    let chain = std::fs::read_to_string(&pem_path).unwrap();
    assert!(chain.starts_with("-----BEGIN CERTIFICATE-----"), "{chain}");
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
    assert!(
        chain.ends_with(&root_pem) || chain.contains(root_pem.trim()),
        "{chain}"
    );
    let stdout_pem = certs(
        app,
        a,
        &[
            "certificates",
            "export",
            "mc-api",
            "--format",
            "pem",
            "--out",
            "-",
        ],
    )
    .ok()
    .stdout();
    assert_eq!(stdout_pem, chain);
    let password_file = write(d, "p12.pass", "p12-secret\n");
    let p12_path = d.join("api.p12");
    certs(
        app,
        a,
        &[
            "certificates",
            "export",
            "mc-api",
            "--format",
            "pkcs12",
            "--password-file",
            &password_file,
            "--out",
            p12_path.to_str().unwrap(),
        ],
    )
    .ok();
    let p12 = std::fs::read(&p12_path).unwrap();
    assert_eq!(p12.first(), Some(&0x30), "PKCS#12 is a DER SEQUENCE");
    certs(
        app,
        a,
        &[
            "certificates",
            "export",
            "mc-api",
            "--format",
            "pem",
            "--password-file",
            &password_file,
            "--out",
            "x.pem",
        ],
    )
    .fails(2);
    if openssl {
        let out = Command::new("openssl")
            .args([
                "pkcs12",
                "-in",
                p12_path.to_str().unwrap(),
                "-nokeys",
                "-passin",
            ])
            .arg("pass:p12-secret")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2, "{text}");
        let leaf = d.join("leaf.pem");
        let root_file = write(d, "root.pem", &root_pem);
        std::fs::write(
            &leaf,
            chain
                .split_inclusive("-----END CERTIFICATE-----\n")
                .next()
                .unwrap(),
        )
        .unwrap();
        // The leaf chains to the root (at the server's clock's time).
        let at = body["not_after"].as_str().unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(at)
            .unwrap()
            .timestamp()
            - 3600;
        let verify = Command::new("openssl")
            .args(["verify", "-attime", &at.to_string(), "-CAfile", &root_file])
            .arg(&leaf)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    }

    // --- revoke -------------------------------------------------------------
    let revoked = certs(
        app,
        a,
        &[
            "certificates",
            "revoke",
            "mc-api",
            "--reason",
            "keyCompromise",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(revoked, json!({"status": "revoked"}));
    let shown = certs(app, a, &["certificates", "show", "mc-api", "-o", "json"])
        .ok()
        .json();
    assert_eq!(shown["status"], "Revoked", "{shown}");
    assert_eq!(shown["revocation_reason"], "keyCompromise", "{shown}");
    let twice = certs(app, a, &["certificates", "revoke", "mc-api"]).fails(4);
    assert!(twice.stderr().contains("HTTP 409"), "{twice:?}");
    certs(
        app,
        a,
        &["certificates", "revoke", "mc-web", "--reason", "nonsense"],
    )
    .fails(2);

    // --- retire the unused intermediate in two steps -----------------------
    let retiring = certs(
        app,
        a,
        &[
            "intermediates",
            "retire",
            &ica_id,
            "--note",
            "unused",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(retiring["state"], "retiring", "{retiring}");
    let retired = certs(
        app,
        a,
        &[
            "intermediates",
            "retire",
            &ica_id,
            "--confirm",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(retired["state"], "retired", "{retired}");

    // --- API keys and roles -------------------------------------------------
    let roles = certs(app, a, &["roles", "list"]).ok().stdout();
    assert!(
        roles.contains("r-admin") && roles.contains("r-operator"),
        "{roles}"
    );
    let minted = certs(
        app,
        a,
        &[
            "keys",
            "create",
            "deploy-bot",
            "--role",
            "r-operator",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    let bot_key = minted["key_value"].as_str().unwrap().to_owned();
    let bot_key_id = minted["api_key_id"].as_str().unwrap().to_owned();
    let keys = certs(app, a, &["keys", "list"]).ok().stdout();
    assert!(
        keys.contains(minted["actor_id"].as_str().unwrap()),
        "{keys}"
    );
    certs(app, Some(&bot_key), &["certificates", "list"]).ok();
    let revoked_key = certs(app, a, &["keys", "revoke", &bot_key_id])
        .ok()
        .stdout();
    assert!(revoked_key.contains("revoked"), "{revoked_key}");
    certs(app, Some(&bot_key), &["certificates", "list"]).fails(3);

    // --- the audit log shows every action -----------------------------------
    let audit = certs(
        app,
        a,
        &["audit", "list", "--per-page", "200", "-o", "json"],
    )
    .ok()
    .json();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "auth.bootstrap",
        "issuer.create",
        "intermediate.create",
        "team.create",
        "owner.create",
        "renewal_policy.create",
        "profile.create",
        "cert.create",
        "cert.renew",
        "cert.revoke",
        "intermediate.retire",
        "auth.key.create",
        "auth.key.revoke",
    ] {
        assert!(actions.contains(&action), "{action} missing: {actions:?}");
    }
    let lifecycle = certs(
        app,
        a,
        &[
            "audit",
            "list",
            "--category",
            "cert_lifecycle",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    let categories: Vec<Value> = lifecycle["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_category"].clone())
        .collect();
    assert!(!categories.is_empty());
    assert!(
        categories.iter().all(|c| c == "cert_lifecycle"),
        "{categories:?}"
    );
    let table = certs(app, a, &["audit", "list", "--category", "auth"])
        .ok()
        .stdout();
    assert!(
        table.starts_with("ID") && table.contains("auth.bootstrap"),
        "{table}"
    );
}

#[test]
fn connection_problems_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens: 5.
    let refused = Run::new(&[
        "certs",
        "--certs-url",
        "http://127.0.0.1:1",
        "issuers",
        "list",
    ])
    .env("CERTCTL_API_KEY", "k")
    .fails(5);
    assert!(
        refused.stderr().contains("cannot reach the server"),
        "{refused:?}"
    );
    // An unreadable or empty --ca-file: 2, before anything is sent.
    let missing = Run::new(&[
        "certs",
        "--ca-file",
        "/nonexistent/ca.pem",
        "issuers",
        "list",
    ])
    .fails(2);
    assert!(missing.stderr().contains("--ca-file"), "{missing:?}");
    let empty = write(dir.path(), "empty.pem", "not a certificate\n");
    Run::new(&["certs", "issuers", "list"])
        .env("ITL_CERTS_CA_FILE", &empty)
        .fails(2);
    // The bootstrap token file must exist and not be empty.
    let blank = write(dir.path(), "blank", "\n");
    Run::new(&[
        "certs",
        "bootstrap",
        "--token-file",
        &blank,
        "--actor",
        "admin-x",
    ])
    .fails(2);
}

/// The listener's default: HTTPS with a certificate from its own CA.
/// `--ca-file` (or `ITL_CERTS_CA_FILE`) pointed at `<data_dir>/certs-tls/
/// ca.pem` is what makes the client trust it; without it the error says
/// so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_listener_is_trusted_with_ca_file() {
    use attest_server::config::certs::{CertsCertificate, CertsTlsSettings};
    use attest_server::config::tls::TlsClientAuth;

    let app = TestApp::spawn_sqlite_with(&|s| {
        s.certs.tls = Some(CertsTlsSettings {
            certificate: CertsCertificate::SelfIssued {
                dir: s.data_dir.join("certs-tls"),
                names: vec!["localhost".into(), "127.0.0.1".into()],
            },
            client_ca_file: None,
            client_auth: TlsClientAuth::Off,
        });
    })
    .await;
    let url = app.certs_url("");
    assert!(url.starts_with("https://"), "{url}");
    let ca = app.server.state.settings.data_dir.join("certs-tls/ca.pem");
    assert!(ca.is_file(), "{}", ca.display());
    let ca = ca.to_str().unwrap();

    // Not trusted: exit 5, naming the option that fixes it; nothing sent,
    // so the one-shot bootstrap is still there.
    let untrusted = certs(
        &app,
        None,
        &["bootstrap", "--token-file", "-", "--actor", "admin-tls"],
    )
    .stdin(CERTS_BOOTSTRAP_TOKEN)
    .fails(5);
    assert!(untrusted.stderr().contains("--ca-file"), "{untrusted:?}");
    let boot = certs(
        &app,
        None,
        &[
            "bootstrap",
            "--ca-file",
            ca,
            "--token-file",
            "-",
            "--actor",
            "admin-tls",
            "-o",
            "json",
        ],
    )
    .stdin(CERTS_BOOTSTRAP_TOKEN)
    .ok();
    let key = boot.json()["key_value"].as_str().unwrap().to_owned();
    // The environment variable, and the certificate's other name.
    let port = url.rsplit(':').next().unwrap();
    for base in [url.clone(), format!("https://localhost:{port}")] {
        let me = Run::new(&["certs", "whoami", "-o", "json"])
            .env("ITL_CERTS_URL", &base)
            .env("ITL_CERTS_CA_FILE", ca)
            .env("CERTCTL_API_KEY", &key)
            .ok()
            .json();
        assert_eq!(me["actor_id"], "admin-tls", "{base}: {me}");
    }
    app.stop().await;
}
