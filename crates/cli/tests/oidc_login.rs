//! The whole operator path through a real OIDC issuer: `auth login`
//! against a loopback identity provider (discovery, password grant, JWKS,
//! ES256-signed tokens), then the cached token is accepted by a server that
//! validates it against the same provider, so approving a machine and
//! reading and verifying the audit log work from the CLI alone, and the
//! audit log names the logged-in user.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use attest_server::config::OidcSettings;
use attest_store::testing::TestDb;
use attest_test_support::idp::Idp;
use attest_test_support::TestApp;
use serde_json::{json, Value};

/// The loopback identity provider with one user, `alice`, whose password
/// grant yields an operator token for the CLI's client.
async fn start_idp() -> Arc<Idp> {
    let idp = Idp::start().await;
    idp.add_user(
        "alice",
        "correct horse battery",
        json!({
            "aud": "attestation-cli", "sub": "alice-uuid",
            "preferred_username": "alice",
            "realm_access": {"roles": ["attestation-operator"]},
        }),
    );
    idp
}

fn cli(config: &std::path::Path, url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_attestation"))
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env("ATTESTATION_API_URL", url)
        .env_remove("ATTESTATION_TOKEN")
        .env_remove("ITL_OIDC_ISSUER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn an_operator_logs_in_approves_and_verifies_the_audit_log_from_the_cli() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (issuer, app) = rt.block_on(async {
        let idp = start_idp().await;
        let issuer = idp.issuer.clone();
        let oidc = OidcSettings {
            audience: Some("attestation-cli".into()),
            ..idp.settings()
        };
        let db = TestDb::sqlite_with(&[]).await;
        let app = TestApp::spawn_at(db, &|s| s.oidc = Some(oidc.clone()), chrono::Utc::now()).await;
        (issuer, app)
    });
    let url = app.server.url();
    let config = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| cli(config.path(), &url, args, stdin);

    // Not logged in yet: the server refuses (exit 3).
    let refused = run(&["machine", "list"], None);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");

    let login = run(
        &[
            "auth",
            "login",
            "--issuer",
            &issuer,
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    );
    ok(&login);
    // The confirmation goes to stderr; the password never appears.
    let said = String::from_utf8_lossy(&login.stderr).into_owned()
        + &String::from_utf8_lossy(&login.stdout);
    assert!(said.contains("logged in as alice"), "{said}");
    assert!(!said.contains("correct horse"), "{said}");
    let whoami = ok(&run(&["auth", "whoami"], None));
    assert!(whoami.contains("alice"), "{whoami}");

    // With the cached token: import a machine, approve it, read the log.
    let fp = "ab".repeat(32);
    let imported: Value = serde_json::from_str(&ok(&run(
        &[
            "machine",
            "import",
            "--ek-fingerprint",
            &fp,
            "--role",
            "worker-app",
            "-o",
            "json",
        ],
        None,
    )))
    .unwrap();
    let id = imported["machine_id"].as_str().unwrap();
    let approved: Value = serde_json::from_str(&ok(&run(
        &[
            "machine",
            "approve",
            id,
            "--role",
            "worker-app",
            "--hostname",
            "w-01",
            "-o",
            "json",
        ],
        None,
    )))
    .unwrap();
    assert_eq!(approved["hostname"], "w-01", "{approved}");
    let audit: Value =
        serde_json::from_str(&ok(&run(&["audit", "list", "-o", "json"], None))).unwrap();
    let approve = audit
        .as_array()
        .or_else(|| audit["entries"].as_array())
        .unwrap()
        .iter()
        .find(|e| e["action"] == "approve")
        .cloned()
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(approve["operator_cn"], "alice", "{approve}");
    let verify = ok(&run(&["audit", "verify"], None));
    assert!(verify.to_lowercase().contains("valid"), "{verify}");

    // Logged out: refused again.
    ok(&run(&["auth", "logout"], None));
    assert_eq!(run(&["machine", "list"], None).status.code(), Some(3));

    rt.block_on(async {
        app.stop().await;
    });
}
