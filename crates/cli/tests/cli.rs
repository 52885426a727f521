//! The real `attestation` binary as an operator client, against a real
//! server started in-process on port 0 with a fresh SQLite database, and
//! against a tiny loopback OIDC issuer for `auth login`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use attest_test_support::idp::Idp;
use common::*;
use serde_json::{json, Value};

/// `POST /api/v1/enroll` as a host agent would, returning the token.
fn host_asks(s: &TestServer, machine_id: &str, fqdn: &str) -> String {
    let body = json!({"machine_id": machine_id, "fqdn": fqdn, "ip_address": "192.0.2.9",
        "os_details": {"name": "Debian"}});
    let url = format!("{}/api/v1/enroll", s.url);
    let answer: Value = s.rt.block_on(async {
        let res = reqwest::Client::new()
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        res.json().await.unwrap()
    });
    answer["polling_token"].as_str().unwrap().to_owned()
}

#[test]
fn host_enrollments_from_the_cli() {
    let s = TestServer::start();
    host_asks(&s, "m1", "h1.example.test");
    let table = s
        .cli(&["host", "list", "--status", "pending"])
        .ok()
        .stdout();
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("h1.example.test"), "{table}");
    let list = s.cli(&["host", "list", "-o", "json"]).ok().json();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let shown = s.cli(&["host", "show", &id, "-o", "json"]).ok().json();
    assert_eq!(shown["status"], json!("pending"));
    let approved = s.cli(&["host", "approve", &id, "-o", "json"]).ok().json();
    assert_eq!(approved["status"], json!("approved"), "{approved}");
    assert_eq!(approved["decided_by"], json!("SYSTEM"), "{approved}");
    // Not pending any more: 409, exit code 4.
    s.cli(&["host", "deny", &id]).fails(4);
    let removed = s
        .cli(&["host", "remove", &id, "--reason", "retired", "-o", "json"])
        .ok()
        .json();
    assert_eq!(removed["status"], json!("removed"), "{removed}");
    assert_eq!(removed["reason"], json!("retired"));

    // A second host (a minute later: one request per minute per address).
    s.app().clock.advance(chrono::Duration::seconds(61));
    host_asks(&s, "m2", "h2.example.test");
    let list = s
        .cli(&["host", "list", "--status", "pending", "-o", "json"])
        .ok()
        .json();
    let id2 = list[0]["id"].as_str().unwrap().to_owned();
    let denied = s
        .cli(&["host", "deny", &id2, "--reason", "unknown", "-o", "json"])
        .ok()
        .json();
    assert_eq!(denied["status"], json!("denied"));
    s.cli(&["host", "list", "--status", "bogus"]).fails(4);
    s.cli(&["host", "show", "nope"]).fails(4);
    Run::new(&["host", "list"])
        .env("ATTESTATION_API_URL", &s.url)
        .env("ATTESTATION_TOKEN", "wrong-token-0123456789")
        .fails(3);
}

#[test]
fn machine_lifecycle_from_the_cli() {
    let s = TestServer::start();
    let id = s.import("worker-app").0;

    // list: table, json, yaml, filters and paging.
    let table = s.cli(&["machine", "list"]).ok().stdout();
    assert!(table.starts_with("MACHINE ID"), "{table}");
    assert!(
        table.contains(&id) && table.contains("1 shown, 1 in total"),
        "{table}"
    );
    let list = s.cli(&["machine", "list", "-o", "json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["machine_id"], json!(id));
    let yaml = s
        .cli(&["machine", "list", "--output", "yaml"])
        .ok()
        .stdout();
    assert!(yaml.contains(&format!("machine_id: {id}")), "{yaml}");
    let filtered = s
        .cli(&[
            "machine",
            "list",
            "--status",
            "locked",
            "--page",
            "1",
            "--per-page",
            "5",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(filtered, json!([]));
    let status = list[0]["status"].as_str().unwrap().to_string();

    // show
    let shown = s.cli(&["machine", "show", &id, "-o", "json"]).ok().json();
    assert_eq!(shown["machine_id"], json!(id));
    let shown_table = s.cli(&["machine", "show", &id]).ok().stdout();
    assert!(
        shown_table.contains("ek_fingerprint:") && shown_table.contains(&status),
        "{shown_table}"
    );

    // approve
    let approved = s
        .cli(&[
            "machine",
            "approve",
            &id,
            "--role",
            "worker-app",
            "--hostname",
            "node-1",
            "--assigned-ip",
            "10.0.1.11/24",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(approved["hostname"], json!("node-1"), "{approved}");
    assert_eq!(approved["assigned_ip"], json!("10.0.1.11/24"), "{approved}");

    // approvals (no dual control for worker-app: empty list)
    let votes = s
        .cli(&["machine", "approvals", &id, "-o", "json"])
        .ok()
        .json();
    assert!(votes.is_array(), "{votes}");
    assert!(s
        .cli(&["machine", "approvals", &id])
        .ok()
        .stdout()
        .contains("(none)"));

    // offline bundle to a private file
    let dir = tempfile::tempdir().unwrap();
    let bundle_path = dir.path().join("bundle.json");
    let done = s
        .cli(&[
            "machine",
            "offline-bundle",
            &id,
            "--out",
            bundle_path.to_str().unwrap(),
        ])
        .ok();
    assert!(
        done.stdout().is_empty(),
        "secrets never on stdout with --out: {done:?}"
    );
    let bundle: Value = serde_json::from_slice(&std::fs::read(&bundle_path).unwrap()).unwrap();
    assert_eq!(bundle["machine_id"], json!(id));
    assert!(bundle["enrollment_key_pem"]
        .as_str()
        .unwrap()
        .contains("PRIVATE KEY"));
    assert_eq!(mode(&bundle_path), 0o600);

    // lock / unlock
    let locked = s
        .cli(&[
            "machine",
            "lock",
            &id,
            "--reason",
            "maintenance",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(locked["status"], json!("locked"));
    let again = s.cli(&["machine", "lock", &id]).fails(4);
    assert!(again.stderr().contains("HTTP 409"), "{again:?}");
    let unlocked = s.cli(&["machine", "unlock", &id, "-o", "json"]).ok().json();
    assert_ne!(unlocked["status"], json!("locked"));

    // revoke
    let revoked = s
        .cli(&[
            "machine",
            "revoke",
            &id,
            "--reason",
            "disk stolen",
            "--wipe",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(revoked["status"], json!("revoked"));
    assert_eq!(revoked["wipe_pending"], json!(true));

    // audit list and verify
    let entries = s
        .cli(&["audit", "list", "--per-page", "50", "-o", "json"])
        .ok()
        .json();
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.len() >= 6, "{actions:?}");
    let page2 = s
        .cli(&[
            "audit",
            "list",
            "--page",
            "2",
            "--per-page",
            "2",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(page2.as_array().unwrap().len(), 2);
    let audit_table = s.cli(&["audit", "list"]).ok().stdout();
    assert!(
        audit_table.starts_with("ID") && audit_table.contains("disk stolen"),
        "{audit_table}"
    );
    let report = s.cli(&["audit", "verify", "-o", "json"]).ok().json();
    assert_eq!(report["valid"], json!(true), "{report}");
    assert!(s.cli(&["audit", "verify"]).ok().stdout().contains("valid:"));
}

#[test]
fn audit_verify_exits_non_zero_on_a_broken_chain() {
    let s = TestServer::start();
    s.import("worker-app");
    s.import("worker-app");
    let pool = s.app().db.store().pool().clone();
    s.rt.block_on(async {
        // An attacker with database access drops the guard first.
        attest_store::sqlx::query("DROP TRIGGER audit_log_no_update")
            .execute(&pool)
            .await
            .unwrap();
        attest_store::sqlx::query("UPDATE audit_log SET detail = 'tampered' WHERE id = 1")
            .execute(&pool)
            .await
            .unwrap();
    });
    let done = s.cli(&["audit", "verify"]).fails(1);
    assert!(done.stderr().contains("INVALID"), "{done:?}");
    let done = s.cli(&["audit", "verify", "-o", "json"]).fails(1);
    assert_eq!(done.json()["valid"], json!(false));
}

/// Security review (issue 15, item 11): checkpoints kept outside the
/// database (`audit checkpoints -o json` to WORM storage) let `audit verify
/// --checkpoint FILE` catch a cut-off tail that the database alone no
/// longer shows; a forged checkpoint file is refused.
#[test]
fn audit_verify_checks_checkpoints_kept_outside() {
    let s = TestServer::start();
    s.import("worker-app");
    s.import("worker-app");
    let taken = s.cli(&["audit", "checkpoint", "-o", "json"]).ok().json();
    assert_eq!(taken["entries"], json!(3), "{taken}");
    assert_eq!(taken["algorithm"], json!("ecdsa-p384-sha384"));
    let table = s.cli(&["audit", "checkpoints"]).ok().stdout();
    assert!(
        table.starts_with("ID") && table.contains("signed with ecdsa-p384-sha384 key"),
        "{table}"
    );
    assert!(table.contains("-----BEGIN PUBLIC KEY-----"), "{table}");

    // Kept outside: the JSON list, as `-o json` prints it.
    let worm = tempfile::tempdir().unwrap();
    let kept = worm.path().join("checkpoints.json");
    let listed = s.cli(&["audit", "checkpoints", "-o", "json"]).ok().stdout();
    std::fs::write(&kept, &listed).unwrap();
    let kept = kept.to_str().unwrap();
    let report = s
        .cli(&["audit", "verify", "--checkpoint", kept, "-o", "json"])
        .ok()
        .json();
    assert_eq!(report["valid"], json!(true), "{report}");

    // The attacker cuts the newest entry off, moves the tip back and
    // removes the stored checkpoints.
    let pool = s.app().db.store().pool().clone();
    s.rt.block_on(async {
        for sql in [
            "DROP TRIGGER audit_log_no_delete",
            "DROP TRIGGER audit_checkpoints_no_delete",
            "DELETE FROM audit_checkpoints",
            "DELETE FROM audit_log WHERE id = 3",
            "UPDATE audit_chain_tip SET last_id = 2, \
             last_hash = (SELECT entry_hash FROM audit_log WHERE id = 2)",
        ] {
            attest_store::sqlx::query(sql).execute(&pool).await.unwrap();
        }
    });
    let inside = s.cli(&["audit", "verify", "-o", "json"]).ok().json();
    assert_eq!(
        inside["valid"],
        json!(true),
        "undetectable inside: {inside}"
    );
    let done = s.cli(&["audit", "verify", "--checkpoint", kept]).fails(1);
    assert!(done.stderr().contains("INVALID"), "{done:?}");
    assert!(
        done.stdout().contains("entries missing after id=2"),
        "{done:?}"
    );
    let done = s
        .cli(&["audit", "verify", "--checkpoint", kept, "-o", "json"])
        .fails(1);
    assert_eq!(done.json()["first_invalid_id"], json!(3));

    // A forged checkpoint (more entries than were signed) is refused.
    let mut forged = taken.clone();
    forged["entries"] = json!(2);
    let forged_file = worm.path().join("forged.json");
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let done = s
        .cli(&[
            "audit",
            "verify",
            "--checkpoint",
            forged_file.to_str().unwrap(),
        ])
        .fails(4);
    assert!(
        done.stderr().contains("signature does not verify"),
        "{done:?}"
    );
    // Files that hold no checkpoint are usage errors.
    let empty = worm.path().join("empty.json");
    std::fs::write(&empty, "{}").unwrap();
    s.cli(&["audit", "verify", "--checkpoint", empty.to_str().unwrap()])
        .fails(2);
    s.cli(&["audit", "verify", "--checkpoint", "/nonexistent/cp.json"])
        .fails(2);
}

#[test]
fn import_and_extensions() {
    let s = TestServer::start();
    let fp = fingerprint();
    let uuid = "0b5cf3c4-8a6d-4a3a-9d62-9a3c0f3d1e11";
    let imported = s
        .cli(&[
            "machine",
            "import",
            "--ek-fingerprint",
            &fp,
            "--machine-id",
            uuid,
            "--hw-mac",
            "52:54:00:12:34:56",
            "--hw-serial",
            "SN1",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(imported["machine_id"], json!(uuid), "{imported}");
    let bad = s
        .cli(&["machine", "import", "--ek-fingerprint", "not-hex"])
        .fails(4);
    assert!(bad.stderr().contains("HTTP 422"), "{bad:?}");
    assert!(
        bad.stderr().contains("ek_fingerprint"),
        "detail printed: {bad:?}"
    );

    // No token needed for extensions.
    let ext = Run::new(&["extensions", "list", "-o", "json", "--url", &s.url])
        .ok()
        .json();
    assert!(ext["extensions"].is_array(), "{ext}");
    assert_eq!(
        ext["total"],
        json!(ext["extensions"].as_array().unwrap().len())
    );
    let table = Run::new(&["extensions", "list", "--url", &s.url])
        .ok()
        .stdout();
    assert!(
        table.starts_with("NAME") || table.starts_with("(none)"),
        "{table}"
    );
}

#[test]
fn errors_print_status_and_detail_with_distinct_exit_codes() {
    let s = TestServer::start();
    // Wrong token: 3, status and detail on stderr, token never echoed.
    let done = s
        .cli(&["machine", "list"])
        .env("ATTESTATION_TOKEN", "wrong-token-value-123")
        .fails(3);
    assert!(done.stderr().contains("HTTP 401"), "{done:?}");
    assert!(!done.stderr().contains("wrong-token-value-123"));
    assert!(done.stdout().is_empty());
    // --token wins over the environment.
    s.cli(&["machine", "list", "--token", "wrong-token-value-123"])
        .fails(3);
    // No token at all: 3.
    Run::new(&["machine", "list", "--url", &s.url]).fails(3);
    // Unknown machine: 4 with the server's detail.
    let done = s
        .cli(&["machine", "show", "00000000-0000-4000-8000-000000000000"])
        .fails(4);
    assert!(done.stderr().contains("HTTP 404"), "{done:?}");
    let detail = done.stderr();
    assert!(detail.to_lowercase().contains("not found"), "{detail}");
    // Validation issues are listed.
    let id = s.import("worker-app").0;
    let done = s
        .cli(&["machine", "approve", &id, "--role", "no-such-role"])
        .fails(4);
    assert!(done.stderr().contains("HTTP 422"), "{done:?}");
    // Bad paging is a 422 too.
    s.cli(&["machine", "list", "--per-page", "100000"]).fails(4);
    // Usage errors: 2.
    s.cli(&["machine", "approve", &id]).fails(2);
    s.cli(&["machine", "list", "--output", "xml"]).fails(2);
    // No server: 5.
    let done = Run::new(&["machine", "list", "--url", "http://127.0.0.1:9"]).fails(5);
    assert!(
        done.stderr().contains("cannot reach the server"),
        "{done:?}"
    );
    // Missing --ca-cert file: usage.
    s.cli(&["machine", "list", "--ca-cert", "/nonexistent/ca.pem"])
        .fails(2);
}

#[test]
fn every_command_has_help_with_an_example_and_completions_work() {
    for args in [
        &["machine", "list"][..],
        &["machine", "show"],
        &["machine", "approve"],
        &["machine", "revoke"],
        &["machine", "lock"],
        &["machine", "unlock"],
        &["machine", "approvals"],
        &["machine", "offline-bundle"],
        &["machine", "import"],
        &["host", "list"],
        &["host", "show"],
        &["host", "approve"],
        &["host", "deny"],
        &["host", "remove"],
        &["audit", "list"],
        &["audit", "verify"],
        &["audit", "checkpoints"],
        &["audit", "checkpoint"],
        &["extensions", "list"],
        &["auth", "login"],
        &["auth", "logout"],
        &["auth", "whoami"],
        &["completions"],
    ] {
        let mut with_help = args.to_vec();
        with_help.push("--help");
        let out = Run::new(&with_help).ok().stdout();
        assert!(out.contains("Example"), "{args:?}: {out}");
    }
    let help = Run::new(&["--help"])
        .env("ATTESTATION_TOKEN", "secret-token-in-env-42")
        .ok()
        .stdout();
    assert!(
        help.contains("ATTESTATION_API_URL") && help.contains("--ca-cert"),
        "{help}"
    );
    assert!(!help.contains("secret-token-in-env-42"));
    for shell in ["bash", "zsh", "fish"] {
        let script = Run::new(&["completions", shell]).ok().stdout();
        assert!(
            script.contains("attestation") && script.contains("machine"),
            "{shell}"
        );
    }
    Run::new(&["completions", "tcsh"]).fails(2);
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn write_script(dir: &Path, name: &str, body: &str, executable: bool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    let perms = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(perms)).unwrap();
    path
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

#[test]
fn plugins_are_listed_run_with_the_resolved_options_and_never_break_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    write_script(
        dir.path(),
        "attestation-hello",
        "#!/bin/sh\necho \"args=$*\"\necho \"url=$ATTESTATION_API_URL\"\n\
         [ \"$ATTESTATION_TOKEN\" = plugin-token ] && echo token-ok\nexit 0\n",
        true,
    );
    write_script(
        dir.path(),
        "attestation-crash",
        "#!/bin/sh\nkill -9 $$\n",
        true,
    );
    write_script(dir.path(), "attestation-seven", "#!/bin/sh\nexit 7\n", true);
    write_script(
        dir.path(),
        "attestation-noexec",
        "#!/bin/sh\necho hi\n",
        false,
    );
    write_script(
        dir.path(),
        "attestation-badinterp",
        "#!/nonexistent/sh\necho hi\n",
        true,
    );
    write_script(
        dir.path(),
        "attestation-machine",
        "#!/bin/sh\necho shadowed\n",
        true,
    );
    let path = path_with(dir.path());

    let help = Run::new(&["--help"]).env("PATH", &path).ok().stdout();
    let plugins = help.split("Plugins:").nth(1).expect("a Plugins heading");
    assert!(
        plugins.contains("hello") && plugins.contains("seven"),
        "{help}"
    );
    assert!(
        !plugins.contains("noexec"),
        "not executable: not a plugin: {help}"
    );
    assert!(
        !plugins.contains("attestation-machine"),
        "built-ins win: {help}"
    );
    // -h too, and a help without plugins has no heading.
    assert!(Run::new(&["-h"])
        .env("PATH", &path)
        .ok()
        .stdout()
        .contains("Plugins:"));
    assert!(!Run::new(&["--help"])
        .env("PATH", "/nonexistent")
        .ok()
        .stdout()
        .contains("Plugins:"));

    let done = Run::new(&[
        "--url",
        "http://example.test:9000",
        "--token",
        "plugin-token",
        "hello",
        "a",
        "--flag",
        "b",
    ])
    .env("PATH", &path)
    .ok();
    let out = done.stdout();
    assert!(out.contains("args=a --flag b"), "{done:?}");
    assert!(out.contains("url=http://example.test:9000"), "{done:?}");
    assert!(out.contains("token-ok"), "{done:?}");
    // From the environment as well.
    let done = Run::new(&["hello"])
        .env("PATH", &path)
        .env("ATTESTATION_TOKEN", "plugin-token")
        .ok();
    assert!(
        done.stdout().contains("url=http://localhost:9000") && done.stdout().contains("token-ok"),
        "{done:?}"
    );

    // Exit codes propagate; crashes and broken plugins only fail themselves.
    Run::new(&["seven"]).env("PATH", &path).fails(7);
    let done = Run::new(&["crash"]).env("PATH", &path).fails(128 + 9);
    assert!(done.stderr().contains("signal 9"), "{done:?}");
    let done = Run::new(&["badinterp"]).env("PATH", &path).fails(1);
    assert!(done.stderr().contains("plugin 'badinterp'"), "{done:?}");
    let done = Run::new(&["noexec"]).env("PATH", &path).fails(2);
    assert!(
        done.stderr().contains("unknown command 'noexec'"),
        "{done:?}"
    );
    Run::new(&["missing"]).env("PATH", &path).fails(2);
    // The built-in machine command, not the plugin.
    let done = Run::new(&["machine", "--help"]).env("PATH", &path).ok();
    assert!(!done.stdout().contains("shadowed"), "{done:?}");
}

#[test]
fn the_example_tag_plugin_is_listed() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cli-plugins");
    assert!(example.join("attestation-tag").exists());
    let help = Run::new(&["--help"])
        .env("PATH", path_with(&example))
        .ok()
        .stdout();
    assert!(
        help.split("Plugins:").nth(1).unwrap_or("").contains("tag"),
        "{help}"
    );
    let usage = Run::new(&["tag", "--help"])
        .env("PATH", path_with(&example))
        .ok()
        .stdout();
    assert!(usage.contains("tag list"), "{usage}");
}

// ---- auth ---------------------------------------------------------------

/// The operator claims of `user`'s tokens.
fn operator_claims(user: &str) -> Value {
    json!({"sub": format!("sub-{user}"), "preferred_username": user,
        "realm_access": {"roles": ["attestation-operator"]}})
}

/// The loopback OpenID Provider, for the CLI's client only.
fn start_idp(rt: &tokio::runtime::Runtime) -> std::sync::Arc<Idp> {
    rt.block_on(async {
        let idp = Idp::start().await;
        *idp.client_id.lock().unwrap() = Some("attestation-cli".into());
        idp
    })
}

#[test]
fn login_caches_the_token_privately_refreshes_it_and_logout_removes_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let idp = start_idp(&rt);
    idp.add_user("alice", "correct horse", operator_claims("alice"));
    let config = tempfile::tempdir().unwrap();
    let cache = config.path().join("attestation/token.json");
    let cli = |args: &[&str]| Run::new(args).env("XDG_CONFIG_HOME", config.path());

    // Wrong password: 3, nothing cached, password never echoed.
    let done = cli(&[
        "auth",
        "login",
        "--issuer",
        &idp.issuer,
        "--username",
        "alice",
        "--password-stdin",
    ])
    .stdin("wrong-password-value\n")
    .fails(3);
    assert!(done.stderr().contains("invalid_grant"), "{done:?}");
    assert!(!done.stderr().contains("wrong-password-value"));
    assert!(!cache.exists());

    // Password grant with the issuer from ITL_OIDC_ISSUER.
    let done = cli(&["auth", "login", "--username", "alice", "--password-stdin"])
        .env("ITL_OIDC_ISSUER", &idp.issuer)
        .stdin("correct horse\n")
        .ok();
    assert!(done.stderr().contains("logged in as alice"), "{done:?}");
    let token = idp.last_issued().unwrap();
    assert!(!done.stdout().contains(&token) && !done.stderr().contains(&token));
    assert_eq!(mode(&cache), 0o600);
    let cached: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert_eq!(cached["access_token"], json!(token));
    assert_eq!(cached["refresh_token"], json!("refresh-1"));

    // whoami uses the cache.
    let me = cli(&["auth", "whoami", "-o", "json"]).ok().json();
    assert_eq!(me["identity"], json!("alice"), "{me}");
    assert_eq!(me["roles"], json!(["attestation-operator"]));
    let table = cli(&["auth", "whoami"]).ok().stdout();
    assert!(
        table.contains("identity:") && !table.contains(&token),
        "{table}"
    );

    // An expired token is refreshed with the refresh token.
    let mut expired = cached.clone();
    expired["expires_at"] = json!(1);
    std::fs::write(&cache, expired.to_string()).unwrap();
    cli(&["auth", "whoami"]).ok();
    let refreshed: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert_eq!(refreshed["access_token"], json!(idp.last_issued().unwrap()));
    assert_ne!(refreshed["access_token"], json!(token));
    assert_eq!(idp.refreshes.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(mode(&cache), 0o600);

    // The cached token is what API commands send (the server rejects it: 3).
    let s = TestServer::start();
    let done = cli(&["machine", "list", "--url", &s.url]).fails(3);
    assert!(done.stderr().contains("HTTP 401"), "{done:?}");

    // logout
    let done = cli(&["auth", "logout"]).ok();
    assert!(done.stderr().contains("logged out"), "{done:?}");
    assert!(!cache.exists());
    cli(&["auth", "logout"]).ok();
    let done = cli(&["auth", "whoami"]).fails(3);
    assert!(done.stderr().contains("not logged in"), "{done:?}");
    // The break-glass token is not a JWT.
    let me = cli(&["auth", "whoami", "--token", "opaque", "-o", "json"])
        .ok()
        .json();
    assert_eq!(me["token_type"], json!("opaque"));
}

#[test]
fn device_code_login_polls_until_authorised() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let idp = start_idp(&rt);
    idp.authorise_device("bob", operator_claims("bob"), 1);
    let config = tempfile::tempdir().unwrap();
    let done = Run::new(&["auth", "login", "--device", "--issuer", &idp.issuer])
        .env("XDG_CONFIG_HOME", config.path())
        .ok();
    assert!(
        done.stderr().contains("https://sso.test/device") && done.stderr().contains("WDJB-MJHT"),
        "{done:?}"
    );
    assert!(done.stderr().contains("logged in as bob"), "{done:?}");
    assert_eq!(
        idp.device_polls.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    assert_eq!(mode(&config.path().join("attestation/token.json")), 0o600);
    // --device and --username exclude each other: usage error.
    Run::new(&[
        "auth",
        "login",
        "--device",
        "--username",
        "x",
        "--issuer",
        &idp.issuer,
    ])
    .fails(2);
}
