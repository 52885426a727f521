//! `attestation backup`, `restore` and `verify-backup` against real
//! servers: a backup taken while machines are being imported, restored
//! into a fresh directory, served again by the real binary; and
//! verify-backup failing on a tampered audit entry, a wrong CA passphrase,
//! an unknown schema version and a damaged file. PostgreSQL: the same
//! through `pg_dump` / `pg_restore` when TEST_DATABASE_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use attest_test_support::{TestApp, ADMIN_TOKEN};
use common::{fingerprint, Run};
use serde_json::{json, Value};
use sha2::Digest;

/// The CA passphrase every test server is started with.
const CA_PASSPHRASE: &str = "test-ca-passphrase";

/// The flags that point a command at `app`'s database and data directory.
fn settings_of(app: &TestApp) -> Vec<String> {
    let s = &app.server.state.settings;
    vec![
        "--database-url".into(),
        s.database_url.clone(),
        "--data-dir".into(),
        s.data_dir.display().to_string(),
    ]
}

/// `attestation <args>` with the CA passphrase of the test servers.
fn attestation(args: &[&str]) -> Run {
    Run::new(args).env("ITL_CA_KEY_PASSPHRASE", CA_PASSPHRASE)
}

fn verify(backup: &Path) -> Run {
    attestation(&["verify-backup", backup.to_str().unwrap()])
}

/// Imports a machine; its id.
async fn import(app: &TestApp) -> String {
    let body: Value = app
        .admin_post("/api/v1/machines/import")
        .json(&json!({"ek_fingerprint": fingerprint(), "role": "worker-app"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["machine_id"]
        .as_str()
        .unwrap_or_else(|| panic!("import: {body}"))
        .to_string()
}

/// Machine id → (status, role) as `GET /api/v1/machines` at `base` lists them.
async fn machines(http: &reqwest::Client, base: &str) -> BTreeMap<String, (String, String)> {
    let list: Value = http
        .get(format!("{base}/api/v1/machines"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list.as_array()
        .unwrap_or_else(|| panic!("machine list: {list}"))
        .iter()
        .map(|m| {
            (
                m["machine_id"].as_str().unwrap().to_string(),
                (m["status"].to_string(), m["role"].to_string()),
            )
        })
        .collect()
}

async fn audit_verify(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/api/v1/audit/verify"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `attestation serve` on `data_dir` (default SQLite database inside).
struct Served {
    child: Child,
    url: String,
}

impl Served {
    #[allow(clippy::zombie_processes)]
    fn start(data_dir: &Path) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_attestation"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--certs-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ITL_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("ITL_CA_KEY_PASSPHRASE", CA_PASSPHRASE)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut seen = Vec::new();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("restored server did not start: {seen:#?}"));
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap().to_string();
                return Served { child, url };
            }
            seen.push(line);
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of `backup` at `to` whose SQLite database had `sql` run on it,
/// with the manifest's checksum updated: a backup whose files are intact
/// but whose content is not what the server wrote.
fn tampered(backup: &Path, to: &Path, sql: &str) {
    copy_dir(backup, to);
    let db = to.join("database.sqlite");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // One plain connection, closed before the file is hashed: the store's
    // pool would switch the copy to WAL and checkpoint it at its leisure.
    rt.block_on(async {
        use attest_store::sqlx::{Connection, Executor};
        let mut conn =
            attest_store::sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
        conn.execute(sql).await.unwrap();
        conn.close().await.unwrap();
    });
    assert!(!to.join("database.sqlite-wal").exists());
    let bytes = std::fs::read(&db).unwrap();
    let manifest_path = to.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for file in manifest["files"].as_array_mut().unwrap() {
        if file["path"] == "database.sqlite" {
            file["size"] = json!(bytes.len());
            file["sha256"] = json!(hex::encode(sha2::Sha256::digest(&bytes)));
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn sqlite_backup_under_writes_restores_into_a_server_with_the_same_machines() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(TestApp::spawn_sqlite_at(chrono::Utc::now()));
    let http = app.http.clone();
    let base = app.server.url();
    let before: Vec<String> = rt.block_on(async {
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(import(&app).await);
        }
        ids
    });
    let app = Arc::new(app);

    // Writers keep importing machines for the whole backup.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let app = app.clone();
        let stop = stop.clone();
        rt.spawn(async move {
            let mut written = 0usize;
            while !stop.load(Ordering::SeqCst) {
                import(&app).await;
                written += 1;
            }
            written
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("backup");
    let mut args = vec!["backup", backup.to_str().unwrap()];
    let settings = settings_of(&app);
    args.extend(settings.iter().map(String::as_str));
    let out = attestation(&args).ok();
    assert!(out.stdout().contains("backup written"), "{}", out.stdout());
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let during = rt.block_on(writer).unwrap();
    assert!(during > 0, "no writes ran during the backup");
    let original = rt.block_on(machines(&http, &base));

    // The backup: keys 0600 as on the server, the manifest lists them.
    #[cfg(unix)]
    {
        assert_eq!(mode(&backup.join("files/enrollment-ca/ca-key.pem")), 0o600);
        assert_eq!(mode(&backup.join("database.sqlite")), 0o600);
        assert_eq!(mode(&backup), 0o700);
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    let paths: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for want in [
        "database.sqlite",
        "files/enrollment-ca/ca.pem",
        "files/enrollment-ca/ca-key.pem",
        "files/audit-checkpoint/checkpoint-key.pem",
        "files/master-key/shared-secret-master.key",
        "files/configs/worker-app.yaml",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }

    let good = verify(&backup).ok();
    for line in [
        "ok   files",
        "ok   schema",
        "ok   audit chain",
        "ok   ca key",
        "backup OK",
    ] {
        assert!(good.stdout().contains(line), "{line}: {}", good.stdout());
    }

    // Restore into a fresh directory and serve it with the real binary.
    let restored_dir = work.path().join("restored");
    attestation(&[
        "restore",
        backup.to_str().unwrap(),
        "--data-dir",
        restored_dir.to_str().unwrap(),
    ])
    .ok();
    #[cfg(unix)]
    {
        assert_eq!(mode(&restored_dir.join("enrollment-ca/ca-key.pem")), 0o600);
        assert_eq!(mode(&restored_dir.join("attestation.db")), 0o600);
    }
    let again = attestation(&[
        "restore",
        backup.to_str().unwrap(),
        "--data-dir",
        restored_dir.to_str().unwrap(),
    ])
    .fails(1);
    assert!(
        again.stderr().contains("already holds data") && again.stderr().contains("--force"),
        "{}",
        again.stderr()
    );
    assert_eq!(
        std::fs::read(restored_dir.join("enrollment-ca/ca.pem")).unwrap(),
        std::fs::read(app.server.state.settings.ca_dir.join("ca.pem")).unwrap()
    );

    let served = Served::start(&restored_dir);
    let restored = rt.block_on(machines(&http, &served.url));
    // Every machine imported before the backup is there, nothing the
    // original never had, and each as the original lists it.
    for id in &before {
        assert!(
            restored.contains_key(id),
            "machine {id} imported before the backup is missing"
        );
    }
    for (id, state) in &restored {
        assert_eq!(original.get(id), Some(state), "machine {id} differs");
    }
    assert!(
        restored.len() > before.len(),
        "no machine written during the backup made it in"
    );
    let chain = rt.block_on(audit_verify(&http, &served.url));
    assert_eq!(chain["valid"], true, "{chain}");
    assert!(
        chain["entries"].as_i64().unwrap() >= restored.len() as i64,
        "{chain}"
    );
    drop(served);

    // verify-backup fails, saying why, on each kind of bad backup.
    let wrong = attestation(&["verify-backup", backup.to_str().unwrap()])
        .env("ITL_CA_KEY_PASSPHRASE", "not-the-passphrase")
        .fails(1);
    assert!(wrong.stdout().contains("FAIL ca key"), "{}", wrong.stdout());
    assert!(
        wrong.stdout().contains("backup NOT OK"),
        "{}",
        wrong.stdout()
    );

    let bad_audit = work.path().join("bad-audit");
    tampered(
        &backup,
        &bad_audit,
        "DROP TRIGGER audit_log_no_update; \
         UPDATE audit_log SET detail = 'rewritten' WHERE id = 3",
    );
    let out = verify(&bad_audit).fails(1);
    assert!(
        out.stdout().contains("FAIL audit chain") && out.stdout().contains("entry 3"),
        "{}",
        out.stdout()
    );
    assert!(out.stdout().contains("ok   ca key"), "{}", out.stdout());

    let future = work.path().join("future-schema");
    tampered(
        &backup,
        &future,
        "INSERT INTO schema_migrations (component, version, name, checksum, applied_at) \
         VALUES ('core', 999, 'from_the_future', 'x', '2030-01-01T00:00:00Z')",
    );
    let out = verify(&future).fails(1);
    assert!(
        out.stdout().contains("FAIL schema") && out.stdout().contains("999"),
        "{}",
        out.stdout()
    );

    let damaged = work.path().join("damaged");
    copy_dir(&backup, &damaged);
    std::fs::write(
        damaged.join("files/enrollment-ca/ca.pem"),
        "not a certificate",
    )
    .unwrap();
    let out = verify(&damaged).fails(1);
    assert!(
        out.stdout().contains("FAIL files") && out.stdout().contains("ca.pem"),
        "{}",
        out.stdout()
    );
    let out = attestation(&[
        "restore",
        damaged.to_str().unwrap(),
        "--data-dir",
        work.path().join("r2").to_str().unwrap(),
    ])
    .fails(1);
    assert!(
        out.stderr().contains("does not match the manifest"),
        "{}",
        out.stderr()
    );
    assert!(!work.path().join("r2/attestation.db").exists());

    let app = Arc::try_unwrap(app).ok().unwrap();
    rt.block_on(app.stop());
}

#[test]
fn backup_refuses_an_existing_target() {
    let dir = tempfile::tempdir().unwrap();
    let out = attestation(&["backup", dir.path().to_str().unwrap()]).fails(1);
    assert!(out.stderr().contains("already exists"), "{}", out.stderr());
}

/// The documented PostgreSQL recipe (`pg_dump` by `attestation backup`,
/// `pg_restore` by `attestation restore`) into a fresh database, then
/// verify-backup's checks on the restored database.
#[test]
fn postgres_backup_restores_into_a_fresh_database() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        let msg = "postgres_backup_restores_into_a_fresh_database: TEST_DATABASE_URL is not set";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{msg} (required under CI=true)"
        );
        eprintln!("\n!!!!!!!!!! SKIPPED {msg} !!!!!!!!!!\n");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = rt
        .block_on(attest_store::testing::TestDb::postgres_with(&[]))
        .unwrap();
    let app = rt.block_on(TestApp::spawn_on(db, &|_| {}));
    let ids: Vec<String> = rt.block_on(async {
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(import(&app).await);
        }
        ids
    });
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("pg-backup");
    let mut args = vec!["backup", backup.to_str().unwrap()];
    let settings = settings_of(&app);
    args.extend(settings.iter().map(String::as_str));
    attestation(&args).ok();
    assert!(backup.join("database.pgdump").is_file());

    let fresh = rt
        .block_on(attest_store::testing::TestDb::postgres_with(&[]))
        .unwrap();
    let restored_dir = work.path().join("restored");
    let target = [
        "--database-url",
        fresh.url(),
        "--data-dir",
        restored_dir.to_str().unwrap(),
    ];
    let mut restore = vec!["restore", backup.to_str().unwrap()];
    restore.extend(target);
    attestation(&restore).ok();
    let refused = attestation(&restore).fails(1);
    assert!(
        refused.stderr().contains("already holds"),
        "{}",
        refused.stderr()
    );

    let mut check = vec!["verify-backup", backup.to_str().unwrap()];
    check.extend(target);
    let out = attestation(&check).ok();
    for line in [
        "ok   schema",
        "ok   audit chain",
        "ok   ca key",
        "backup OK",
    ] {
        assert!(out.stdout().contains(line), "{line}: {}", out.stdout());
    }
    let count: i64 = rt.block_on(async {
        attest_store::sqlx::query_scalar("SELECT COUNT(*) FROM machines")
            .fetch_one(fresh.store().pool())
            .await
            .unwrap()
    });
    assert_eq!(count, ids.len() as i64);

    rt.block_on(async {
        attest_store::sqlx::Executor::execute(
            fresh.store().pool(),
            "ALTER TABLE audit_log DISABLE TRIGGER USER; \
             UPDATE audit_log SET detail = 'rewritten' WHERE id = 2",
        )
        .await
        .unwrap();
    });
    let out = attestation(&check).fails(1);
    assert!(
        out.stdout().contains("FAIL audit chain"),
        "{}",
        out.stdout()
    );

    rt.block_on(fresh.close());
    rt.block_on(app.stop());
}
