//! What `serve` leaves on disk is for the service's user alone (security
//! review, issue 15, item 9): the data directory and every key directory
//! 0700, the SQLite database with its `-wal` and `-shm` files and every
//! private key or passphrase 0600.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

use attest_test_support as common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use attest_domain::clock::SystemClock;
use attest_server::config::Settings;
use attest_server::serve::start_with;
use secrecy::SecretString;

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_data_directory_and_its_secrets_are_owner_only() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let url = format!("sqlite://{}/attestation.db?mode=rwc", data.display());
    let mut settings = Settings::for_tests(&data, url).unwrap();
    settings.admin_token = Some(SecretString::from("files-at-rest-token-0123456789"));
    let server = start_with(
        settings,
        Arc::new(SystemClock),
        common::builtin_extensions(),
    )
    .await
    .unwrap();
    // A write, so SQLite has its WAL files.
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/audit/checkpoints", server.url()))
        .bearer_auth("files-at-rest-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    for dir in ["", "enrollment-ca", "audit-checkpoint"] {
        assert_eq!(mode_of(&data.join(dir)), 0o700, "directory {dir:?}");
    }
    for file in [
        "attestation.db",
        "attestation.db-wal",
        "attestation.db-shm",
        "shared-secret-master.key",
        "enrollment-ca/ca-key.pem",
        "enrollment-ca/ca-key.passphrase",
        "audit-checkpoint/checkpoint-key.pem",
        "audit-checkpoint/checkpoint-key.passphrase",
    ] {
        assert_eq!(mode_of(&data.join(file)), 0o600, "{file}");
    }
    // The CA certificate is public.
    assert_eq!(mode_of(&data.join("enrollment-ca/ca.pem")), 0o644);
    server.shutdown().await.unwrap();
}
