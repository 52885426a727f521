//! The `secret`, `shared-secret` and `webhook` commands of the real
//! `attestation` binary against a real server (with the built-in
//! `secret_vault` and `webhooks` extensions) started in-process on port 0
//! with a fresh SQLite database. Helpers are copied from `cli.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

#[test]
fn machine_secrets_round_trip_through_the_cli() {
    let s = TestServer::start();
    let (id, fp) = s.import_attested("worker-app");
    let (other_id, other_fp) = s.import_attested("worker-app");
    let value = "disk-key-plaintext-4711";

    // create: --value, --value-stdin, --value-file; the value never printed.
    let done = s
        .cli(&[
            "secret", "create", &id, "--name", "disk-key", "--value", value, "-o", "json",
        ])
        .ok();
    assert!(!done.stdout().contains(value), "{done:?}");
    let created = done.json();
    assert_eq!(created["name"], json!("disk-key"), "{created}");
    assert_eq!(created["machine_id"], json!(id));
    assert!(created.get("value").is_none(), "{created}");
    let secret_id = created["secret_id"].as_str().unwrap().to_string();

    let table = s
        .cli(&[
            "secret",
            "create",
            &id,
            "--name",
            "from-stdin",
            "--value-stdin",
        ])
        .stdin("stdin-value-1\n")
        .ok()
        .stdout();
    assert!(
        table.contains("secret_id:") && !table.contains("stdin-value-1"),
        "{table}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value.txt");
    std::fs::write(&file, "file-value-2\n").unwrap();
    s.cli(&[
        "secret",
        "create",
        &id,
        "--name",
        "from-file",
        "--value-file",
        file.to_str().unwrap(),
    ])
    .ok();
    // Same name twice: 409, exit 4.
    let dup = s
        .cli(&[
            "secret", "create", &id, "--name", "disk-key", "--value", "x",
        ])
        .fails(4);
    assert!(dup.stderr().contains("HTTP 409"), "{dup:?}");
    // Exactly one value source.
    s.cli(&["secret", "create", &id, "--name", "n"]).fails(2);
    s.cli(&[
        "secret",
        "create",
        &id,
        "--name",
        "n",
        "--value",
        "a",
        "--value-stdin",
    ])
    .fails(2);
    s.cli(&[
        "secret",
        "create",
        &id,
        "--name",
        "n",
        "--value-file",
        "/nonexistent/value",
    ])
    .fails(2);

    // list: table and json, no values.
    let table = s.cli(&["secret", "list", &id]).ok().stdout();
    assert!(table.starts_with("SECRET ID"), "{table}");
    for name in ["disk-key", "from-stdin", "from-file"] {
        assert!(table.contains(name), "{table}");
    }
    assert!(!table.contains(value), "{table}");
    let list = s.cli(&["secret", "list", &id, "-o", "json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    let yaml = s.cli(&["secret", "list", &id, "-o", "yaml"]).ok().stdout();
    assert!(yaml.contains("name: disk-key"), "{yaml}");

    // get: machine-initiated, no operator token needed; the sealed blob.
    let get = |extra: &[&str]| {
        let mut args = vec!["secret", "get", id.as_str()];
        args.extend_from_slice(extra);
        Run::new(&args).env("ATTESTATION_API_URL", &s.url)
    };
    let blob = get(&["disk-key", "--ek-fingerprint", &fp, "-o", "json"])
        .ok()
        .json();
    assert_eq!(blob["algorithm"], json!("AES-256-GCM"), "{blob}");
    assert!(blob["encrypted_value"].is_string());
    assert!(!blob.to_string().contains(value));
    let blob_table = get(&["disk-key", "--ek-fingerprint", &fp]).ok().stdout();
    assert!(
        blob_table.contains("encrypted_value:") && !blob_table.contains(value),
        "{blob_table}"
    );

    // --decrypt: the plaintext, also with a sha256: prefix and from files
    // and stdin (one trailing newline removed).
    let plain = get(&["disk-key", "--ek-fingerprint", &fp, "--decrypt"])
        .ok()
        .stdout();
    assert_eq!(plain, format!("{value}\n"));
    let prefixed = format!("sha256:{fp}");
    let plain = get(&["from-stdin", "--ek-fingerprint", &prefixed, "--decrypt"])
        .ok()
        .stdout();
    assert_eq!(plain, "stdin-value-1\n");
    let decrypted = get(&[
        "from-file",
        "--ek-fingerprint",
        &fp,
        "--decrypt",
        "-o",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(decrypted["value"], json!("file-value-2"), "{decrypted}");
    // The operator token may be present; it is not what authenticates.
    s.cli(&["secret", "get", &id, "disk-key", "--ek-fingerprint", &fp])
        .ok();
    let counted = s.cli(&["secret", "list", &id, "-o", "json"]).ok().json();
    let disk = counted
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == json!("disk-key"))
        .unwrap();
    assert_eq!(disk["access_count"], json!(4), "{disk}");

    // Another machine's fingerprint: 403; an unknown one: 401; both exit 3.
    let done = get(&["disk-key", "--ek-fingerprint", &other_fp]).fails(3);
    assert!(done.stderr().contains("HTTP 403"), "{done:?}");
    let done = get(&["disk-key", "--ek-fingerprint", &fingerprint()]).fails(3);
    assert!(done.stderr().contains("HTTP 401"), "{done:?}");
    // Unknown secret: 404.
    let done = get(&["nope", "--ek-fingerprint", &fp]).fails(4);
    assert!(done.stderr().contains("HTTP 404"), "{done:?}");
    // The other machine has no secrets.
    let empty = s.cli(&["secret", "list", &other_id]).ok().stdout();
    assert!(empty.contains("(none)"), "{empty}");

    // Errors: wrong token 3, unknown machine 4.
    let done = s
        .cli(&["secret", "list", &id])
        .env("ATTESTATION_TOKEN", "wrong-token-value-123")
        .fails(3);
    assert!(done.stderr().contains("HTTP 401"), "{done:?}");
    s.cli(&[
        "secret",
        "create",
        &id,
        "--name",
        "z",
        "--value",
        "z",
        "--token",
        "wrong-token-value-123",
    ])
    .fails(3);
    let done = s
        .cli(&["secret", "list", "00000000-0000-4000-8000-000000000000"])
        .fails(4);
    assert!(done.stderr().contains("HTTP 404"), "{done:?}");

    // delete: 204, then 404.
    let done = s.cli(&["secret", "delete", &secret_id]).ok();
    assert!(done.stdout().contains("deleted"), "{done:?}");
    let done = s.cli(&["secret", "delete", &secret_id]).fails(4);
    assert!(done.stderr().contains("HTTP 404"), "{done:?}");
    let after = s.cli(&["secret", "list", &id, "-o", "json"]).ok().json();
    assert_eq!(after.as_array().unwrap().len(), 2);
    let deleted_json = s
        .cli(&[
            "secret",
            "delete",
            after[0]["secret_id"].as_str().unwrap(),
            "-o",
            "json",
        ])
        .ok();
    assert!(deleted_json.stdout().is_empty(), "{deleted_json:?}");
}

#[test]
fn shared_secrets_from_the_cli() {
    let s = TestServer::start();
    let (m1, _) = s.import_attested("worker-app");
    let (m2, _) = s.import_attested("worker-app");
    let name = "prod-k8s-join-token";
    let value = "K07::server:abc-initial";

    let done = s
        .cli(&[
            "shared-secret",
            "create",
            name,
            "--value",
            value,
            "--description",
            "Production K8s join token",
            "-o",
            "json",
        ])
        .ok();
    assert!(!done.stdout().contains(value), "{done:?}");
    let created = done.json();
    assert_eq!(created["name"], json!(name), "{created}");
    assert_eq!(created["authorized_machines"], json!(0));
    let dup = s
        .cli(&["shared-secret", "create", name, "--value", "x"])
        .fails(4);
    assert!(dup.stderr().contains("HTTP 409"), "{dup:?}");
    let table = s
        .cli(&["shared-secret", "create", "from-stdin", "--value-stdin"])
        .stdin("piped-shared-value\n")
        .ok()
        .stdout();
    assert!(
        table.contains("shared_secret_id:") && !table.contains("piped-shared-value"),
        "{table}"
    );

    // list
    let table = s.cli(&["shared-secret", "list"]).ok().stdout();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains(name) && table.contains("Production K8s join token"),
        "{table}"
    );
    assert!(!table.contains(value));
    let list = s.cli(&["shared-secret", "list", "-o", "json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");

    // grant / access / revoke
    let machines = format!("{m1},{m2}");
    let granted = s
        .cli(&[
            "shared-secret",
            "grant",
            name,
            "--machines",
            &machines,
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(granted.as_array().unwrap().len(), 2, "{granted}");
    let access = s.cli(&["shared-secret", "access", name]).ok().stdout();
    assert!(
        access.starts_with("MACHINE ID") && access.contains(&m1) && access.contains(&m2),
        "{access}"
    );
    let revoked = s
        .cli(&[
            "shared-secret",
            "revoke",
            name,
            "--machines",
            &m1,
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(revoked.as_array().unwrap().len(), 1, "{revoked}");
    assert_eq!(revoked[0]["machine_id"], json!(m2));
    let table = s
        .cli(&["shared-secret", "revoke", name, "--machines", &m1])
        .ok()
        .stdout();
    assert!(table.contains(&m2) && !table.contains(&m1), "{table}");
    let access = s
        .cli(&["shared-secret", "access", name, "-o", "json"])
        .ok()
        .json();
    assert_eq!(access.as_array().unwrap().len(), 1);
    // Granting an unknown machine: 404.
    let done = s
        .cli(&[
            "shared-secret",
            "grant",
            name,
            "--machines",
            "00000000-0000-4000-8000-000000000000",
        ])
        .fails(4);
    assert!(done.stderr().contains("HTTP 404"), "{done:?}");

    // rotate
    let rotated = s
        .cli(&[
            "shared-secret",
            "rotate",
            name,
            "--value",
            "K07::server:xyz-rotated",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert!(rotated["last_rotated_at"].is_string(), "{rotated}");
    assert!(!rotated.to_string().contains("xyz-rotated"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v");
    std::fs::write(&file, "from-a-file").unwrap();
    let table = s
        .cli(&[
            "shared-secret",
            "rotate",
            name,
            "--value-file",
            file.to_str().unwrap(),
        ])
        .ok()
        .stdout();
    assert!(
        table.contains("last_rotated_at:") && !table.contains("from-a-file"),
        "{table}"
    );

    // errors
    let done = s
        .cli(&["shared-secret", "list"])
        .env("ATTESTATION_TOKEN", "wrong-token-value-123")
        .fails(3);
    assert!(done.stderr().contains("HTTP 401"), "{done:?}");
    let done = s
        .cli(&["shared-secret", "access", "no-such-secret"])
        .fails(4);
    assert!(done.stderr().contains("HTTP 404"), "{done:?}");
    s.cli(&["shared-secret", "rotate", "no-such-secret", "--value", "v"])
        .fails(4);

    // delete
    let done = s.cli(&["shared-secret", "delete", name]).ok();
    assert!(done.stdout().contains("deleted"), "{done:?}");
    s.cli(&["shared-secret", "delete", name]).fails(4);
    let list = s.cli(&["shared-secret", "list", "-o", "json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Nothing secret reached the audit log.
    let audit = s
        .cli(&["audit", "list", "--per-page", "100", "-o", "json"])
        .ok()
        .stdout();
    for secret in [value, "piped-shared-value", "xyz-rotated", "from-a-file"] {
        assert!(!audit.contains(secret), "{secret} in the audit log");
    }
}

#[test]
fn webhooks_from_the_cli() {
    let s = TestServer::start();
    let url = "https://example.invalid/hook";
    let signing = "my-signing-secret-0815";

    let done = s
        .cli(&[
            "webhook",
            "add",
            "--url",
            url,
            "--events",
            "machine.approved,machine.revoked",
            "--secret",
            signing,
            "-o",
            "json",
        ])
        .ok();
    assert!(!done.stdout().contains(signing), "{done:?}");
    let hook = done.json();
    assert_eq!(hook["url"], json!(url), "{hook}");
    assert_eq!(
        hook["events"],
        json!(["machine.approved", "machine.revoked"])
    );
    assert_eq!(hook["enabled"], json!(true));
    assert_eq!(hook["has_secret"], json!(true));
    let id = hook["webhook_id"].as_str().unwrap().to_string();

    let table = s
        .cli(&[
            "webhook",
            "add",
            "--url",
            "https://example.invalid/other",
            "--events",
            "machine.locked",
            "--disabled",
        ])
        .ok()
        .stdout();
    assert!(
        table.contains("enabled:") && table.contains("no") && table.contains("machine.locked"),
        "{table}"
    );
    // `--url` after `webhook add`/`update` is the target (as in the seed);
    // the API URL comes from `--url` before the command, `--api-url` or
    // ATTESTATION_API_URL, and is never taken for the target or vice versa.
    let before = Run::new(&[
        "--url",
        &s.url,
        "webhook",
        "add",
        "--url",
        "https://example.invalid/before",
        "--events",
        "machine.approved",
        "-o",
        "json",
    ])
    .env("ATTESTATION_TOKEN", ADMIN_TOKEN)
    .ok()
    .json();
    assert_eq!(before["url"], json!("https://example.invalid/before"));
    let via_flag = Run::new(&[
        "webhook",
        "update",
        before["webhook_id"].as_str().unwrap(),
        "--api-url",
        &s.url,
        "--url",
        "https://example.invalid/after",
        "-o",
        "json",
    ])
    .env("ATTESTATION_TOKEN", ADMIN_TOKEN)
    .ok()
    .json();
    assert_eq!(via_flag["url"], json!("https://example.invalid/after"));
    s.cli(&["webhook", "delete", before["webhook_id"].as_str().unwrap()])
        .ok();

    // Validation: unknown event, 422.
    let done = s
        .cli(&["webhook", "add", "--url", url, "--events", "no.such.event"])
        .fails(4);
    assert!(done.stderr().contains("HTTP 422"), "{done:?}");
    s.cli(&["webhook", "add", "--url", url]).fails(2);

    // list and get
    let table = s.cli(&["webhook", "list"]).ok().stdout();
    assert!(table.starts_with("WEBHOOK ID"), "{table}");
    assert!(
        table.contains(&id) && table.contains("machine.approved,machine.revoked"),
        "{table}"
    );
    assert!(!table.contains(signing));
    let list = s.cli(&["webhook", "list", "-o", "json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let got = s.cli(&["webhook", "get", &id, "-o", "json"]).ok().json();
    assert_eq!(got["webhook_id"], json!(id));
    let got_table = s.cli(&["webhook", "get", &id]).ok().stdout();
    assert!(got_table.contains("has_secret:"), "{got_table}");
    let yaml = s.cli(&["webhook", "get", &id, "-o", "yaml"]).ok().stdout();
    assert!(yaml.contains("- machine.approved"), "{yaml}");

    // update: disable, then test is refused (409); enable again.
    let updated = s
        .cli(&["webhook", "update", &id, "--enabled", "false", "-o", "json"])
        .ok()
        .json();
    assert_eq!(updated["enabled"], json!(false), "{updated}");
    let done = s.cli(&["webhook", "test", &id]).fails(4);
    assert!(done.stderr().contains("HTTP 409"), "{done:?}");
    let updated = s
        .cli(&[
            "webhook",
            "update",
            &id,
            "--enabled",
            "true",
            "--events",
            "machine.approved,webhook.test",
            "--url",
            "https://example.invalid/hook2",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(updated["enabled"], json!(true));
    assert_eq!(updated["url"], json!("https://example.invalid/hook2"));
    assert_eq!(
        updated["events"],
        json!(["machine.approved", "webhook.test"])
    );
    let unsigned = s
        .cli(&["webhook", "update", &id, "--secret", "", "-o", "json"])
        .ok()
        .json();
    assert_eq!(unsigned["has_secret"], json!(false), "{unsigned}");
    s.cli(&["webhook", "update", &id, "--enabled", "maybe"])
        .fails(2);
    s.cli(&["webhook", "update", &id]).fails(2);

    // test and deliveries (the target is unreachable: failures are fine).
    let queued = s.cli(&["webhook", "test", &id, "-o", "json"]).ok().json();
    assert_eq!(queued["status"], json!("queued"), "{queued}");
    let table = s.cli(&["webhook", "test", &id]).ok().stdout();
    assert!(table.contains("queued"), "{table}");
    let deliveries = s
        .cli(&["webhook", "deliveries", &id, "-o", "json"])
        .ok()
        .json();
    assert!(deliveries.is_array(), "{deliveries}");
    let table = s
        .cli(&["webhook", "deliveries", &id, "--limit", "10"])
        .ok()
        .stdout();
    assert!(
        table.starts_with("DELIVERY ID") || table.starts_with("(none)"),
        "{table}"
    );
    let done = s
        .cli(&["webhook", "deliveries", &id, "--limit", "0"])
        .fails(4);
    assert!(done.stderr().contains("HTTP 422"), "{done:?}");

    // errors
    let done = s
        .cli(&["webhook", "list"])
        .env("ATTESTATION_TOKEN", "wrong-token-value-123")
        .fails(3);
    assert!(done.stderr().contains("HTTP 401"), "{done:?}");
    let unknown = "00000000-0000-4000-8000-000000000000";
    let done = s.cli(&["webhook", "get", unknown]).fails(4);
    assert!(done.stderr().contains("HTTP 404"), "{done:?}");
    s.cli(&["webhook", "deliveries", unknown]).fails(4);
    s.cli(&["webhook", "test", unknown]).fails(4);

    // delete
    let done = s.cli(&["webhook", "delete", &id]).ok();
    assert!(done.stdout().contains("deleted"), "{done:?}");
    s.cli(&["webhook", "delete", &id]).fails(4);
    s.cli(&["webhook", "get", &id]).fails(4);
    let list = s.cli(&["webhook", "list", "-o", "json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // The signing secret is in no answer and not in the audit log.
    let audit = s
        .cli(&["audit", "list", "--per-page", "100", "-o", "json"])
        .ok()
        .stdout();
    assert!(audit.contains("webhook.create"), "{audit}");
    assert!(!audit.contains(signing));
}

#[test]
fn new_commands_have_help_with_an_example() {
    for args in [
        &["secret", "create"][..],
        &["secret", "list"],
        &["secret", "get"],
        &["secret", "delete"],
        &["shared-secret", "create"],
        &["shared-secret", "list"],
        &["shared-secret", "grant"],
        &["shared-secret", "revoke"],
        &["shared-secret", "access"],
        &["shared-secret", "rotate"],
        &["shared-secret", "delete"],
        &["webhook", "add"],
        &["webhook", "list"],
        &["webhook", "get"],
        &["webhook", "update"],
        &["webhook", "delete"],
        &["webhook", "deliveries"],
        &["webhook", "test"],
        &["secret"],
        &["shared-secret"],
        &["webhook"],
    ] {
        let mut with_help = args.to_vec();
        with_help.push("--help");
        let out = Run::new(&with_help).ok().stdout();
        assert!(out.contains("Example"), "{args:?}: {out}");
    }
    let script = Run::new(&["completions", "bash"]).ok().stdout();
    assert!(
        script.contains("shared-secret") && script.contains("webhook"),
        "completions know the new commands"
    );
}
