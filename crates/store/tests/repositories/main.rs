#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The machine lifecycle tables on every backend: machines (insert, get,
//! lookups, list/count, lock/save and concurrent changes), attestation
//! nonces (capacity, redeem, expiry, purge, concurrent redeem) and
//! dual-control approval votes.

use std::time::{Duration, Instant};

use attest_domain::audit::format_timestamp;
use attest_domain::machine::{MachineStatus, Role};
use attest_store::sqlx::{self, Row};
use attest_store::testing::for_each_backend;
use attest_store::{
    AkCredentialRecord, AkCredentialRedeemed, AkCredentialRepo, ApprovalRepo, Backend,
    EnrollmentCertRepo, IssuedCertRecord, MachineFilter, MachineRecord, MachineRepo,
    NewAkCredential, NewNonce, NonceRepo, Redeemed, Store, StoreError, VoteRecord,
    NONCE_RETENTION_MS,
};
use chrono::{DateTime, Utc};

mod approvals;
mod lookups;
mod machines;
mod nonces;

// ---------------------------------------------------------------- helpers

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-14T17:05:00.123456Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// `t0 + secs`, in the stored format.
fn ts(secs: i64) -> String {
    format_timestamp(t0() + chrono::Duration::seconds(secs))
}

fn hex64(seed: &str) -> String {
    format!("{seed:0>64}")
}

fn hex96(seed: &str) -> String {
    format!("{seed:0>96}")
}

/// A freshly registered machine: every optional field empty.
fn machine(id: &str, registered_secs: i64) -> MachineRecord {
    MachineRecord {
        machine_id: id.to_owned(),
        ek_fingerprint: hex64(&format!("f{id}")),
        ek_sha256: Some(hex64(&format!("a{id}"))),
        ek_sha384: Some(hex96(&format!("b{id}"))),
        ek_material: None,
        ek_source: "register".into(),
        hw_uuid: None,
        hw_mac: None,
        hw_serial: None,
        hw_product: None,
        role: Role::WorkerApp,
        status: MachineStatus::PendingApproval,
        hostname: None,
        assigned_ip: None,
        wipe_pending: false,
        config_token_hash: None,
        config_token_issued_at: None,
        config_token_consumed_at: None,
        schematic_id: None,
        iso_url: None,
        ak_public_pem: None,
        ak_activated_at: None,
        ak_name: None,
        quote_reset_count: None,
        quote_restart_count: None,
        last_quote: None,
        last_quote_signature: None,
        last_attest_at: None,
        registered_at: ts(registered_secs),
        attested_at: None,
        locked_at: None,
        revoked_at: None,
        updated_at: ts(registered_secs),
        version: 0,
        failed_attestations: 0,
    }
}

/// A machine with every field set, each to a distinct value.
fn full_machine() -> MachineRecord {
    MachineRecord {
        machine_id: "550e8400-e29b-41d4-a716-446655440000".into(),
        ek_fingerprint: hex64("fe"),
        ek_sha256: Some(hex64("a256")),
        ek_sha384: Some(hex96("b384")),
        ek_material: Some("TUlJQmlqQU5CZ2txaGtpRzl3MEJBUUVGQUFPQw==".into()),
        ek_source: "attest".into(),
        hw_uuid: Some("4c4c4544-0042-3510-8052-b4c04f4e3232".into()),
        hw_mac: Some("52:54:00:12:34:56".into()),
        hw_serial: Some("SN-0001".into()),
        hw_product: Some("PowerEdge R650".into()),
        role: Role::Controlplane,
        status: MachineStatus::Attested,
        hostname: Some("cp-1".into()),
        assigned_ip: Some("10.0.0.11".into()),
        wipe_pending: true,
        config_token_hash: Some(hex64("c0ffee")),
        config_token_issued_at: Some(ts(10)),
        config_token_consumed_at: Some(ts(11)),
        schematic_id: Some("376567988ad370138ad8b2698212367b".into()),
        iso_url: Some("https://factory.example/image/376567988ad3/metal-amd64.iso".into()),
        ak_public_pem: Some(
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQY=\n-----END PUBLIC KEY-----\n".into(),
        ),
        ak_activated_at: Some(ts(12)),
        ak_name: Some("000b".to_owned() + &"ab".repeat(32)),
        quote_reset_count: Some(42),
        quote_restart_count: Some(i64::from(u32::MAX) + 7),
        last_quote: Some("/1RDR4AYACIAC".into()),
        last_quote_signature: Some("ABgACwAgQk9PVA==".into()),
        last_attest_at: Some(ts(13)),
        registered_at: ts(1),
        attested_at: Some(ts(14)),
        locked_at: Some(ts(15)),
        revoked_at: Some(ts(16)),
        updated_at: ts(17),
        version: 7,
        failed_attestations: 3,
    }
}

async fn try_insert(store: &Store, m: &MachineRecord) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await.unwrap();
    MachineRepo::insert(&mut tx, m).await?;
    tx.commit().await.unwrap();
    Ok(())
}

async fn insert(store: &Store, m: &MachineRecord) {
    try_insert(store, m).await.unwrap();
}

async fn find_by_ek(
    store: &Store,
    sha256: Option<&str>,
    sha384: Option<&str>,
) -> Option<MachineRecord> {
    let mut conn = store.pool().acquire().await.unwrap();
    MachineRepo::find_by_ek(&mut conn, sha256, sha384)
        .await
        .unwrap()
}

fn ids(machines: &[MachineRecord]) -> Vec<&str> {
    machines.iter().map(|m| m.machine_id.as_str()).collect()
}

/// Shared by the nonce and lookup tests.
use nonces::{issue, nonce_at};
