#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A small fleet against the real server, on every available backend
//! (SQLite, and PostgreSQL when TEST_DATABASE_URL is set), with nonces,
//! quotes and AK credential activation required: the simulator must finish
//! every flow, and its report must add up. Keeps the simulator from rotting;
//! the figures come from `docs/benchmarks.md`'s release runs, not from here.

use std::sync::Arc;
use std::time::Duration;

use attest_domain::clock::SystemClock;
use attest_fleet_sim::{run, Api, Options, SimIdp, Step};
use attest_server::config::Settings;
use attest_store::testing::TestDb;
use secrecy::SecretString;

const TOKEN: &str = "fleet-sim-smoke-token-0123456789abcdef";

/// Test settings on `db` with the break-glass token and the example role
/// configs; each test adds what its flow requires.
/// The extensions the simulator touches: the metrics endpoint it probes.
fn extensions() -> Vec<Arc<dyn attest_ext::Extension>> {
    vec![Arc::new(attest_ext_metrics::Metrics)]
}

fn settings(db: &TestDb, dir: &std::path::Path) -> Settings {
    let mut settings = Settings::for_tests(dir, db.url().to_string()).unwrap();
    settings.admin_token = Some(SecretString::from(TOKEN));
    settings.ca_key_passphrase = Some(SecretString::from("smoke"));
    settings.delivery.config_cache_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/role-configs");
    // One simulator drives the whole fleet from one address.
    settings.limits.attest_per_minute = 0;
    settings.limits.register_per_minute = 0;
    settings.machines.max_pending_machines = 1_000_000;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_machines_complete_every_step() {
    for db in TestDb::all().await {
        let backend = db.backend().to_string();
        let dir = tempfile::tempdir().unwrap();
        let idp = SimIdp::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut settings = settings(&db, dir.path());
        settings.oidc = Some(attest_server::config::OidcSettings {
            issuer: idp.issuer().to_owned(),
            audience: Some(attest_fleet_sim::idp::AUDIENCE.into()),
            operator_role: "attestation-operator".into(),
            client_id: None,
            jwks_refresh_min_interval: Duration::from_secs(30),
        });
        settings.machines.require_nonce = true;
        settings.machines.require_quote = true;
        settings.delivery.require_ak_credential = true;
        settings.delivery.require_encrypted_delivery = true;
        let server =
            attest_server::serve::start_with(settings, Arc::new(SystemClock), extensions())
                .await
                .unwrap();
        let mut api = Api::new(&server.url(), TOKEN, 16).unwrap();
        let opts = Options {
            machines: 200,
            concurrency: 16,
            dual_control_every: 10,
            floor_rounds: 2,
            attest_rounds: 2,
            // The server runs in this process: its CPU figure includes the
            // simulator's, but it must be measured.
            server_pid: Some(std::process::id()),
            ak: attest_tpm::soft::AkKind::EcdsaP384,
        };
        let report =
            tokio::time::timeout(Duration::from_secs(600), run(&mut api, &idp, &opts, |_| {}))
                .await
                .unwrap()
                .unwrap();
        println!("{backend}:\n{}", report.table());
        assert_eq!(report.failed_flows, 0, "{backend}: {:?}", report.errors);
        assert_eq!(report.completed_flows, 200, "{backend}");
        for step in Step::ALL {
            assert_eq!(report.steps[&step].count, 200, "{backend}: {step:?}");
        }
        // 20 controlplanes need two approval requests each.
        assert_eq!(report.requests, 200 * 10 + 20, "{backend}");
        assert!(report.flow.p50_ms <= report.flow.p99_ms);
        assert!(report.crypto_floor.as_ref().unwrap().total_ms > 0.0);
        // Every machine attested twice more, each a fresh verified quote.
        let phase = report.attest_phase.as_ref().unwrap();
        assert_eq!(phase.errors, Default::default(), "{backend}");
        assert_eq!(phase.latency.count, 400, "{backend}");
        assert!(phase.quotes_per_second > 0.0);
        assert_eq!(report.failures(), 0);
        let cpu = report.server_cpu.as_ref().unwrap();
        assert!(
            cpu.ms_per_flow > 0.0 && cpu.ms_per_quote.unwrap() > 0.0,
            "{cpu:?}"
        );
        server.shutdown().await.unwrap();
        db.close().await;
    }
}

/// Scale mode on a small fleet: every machine attested, every probe
/// answered, the audit log verified, the server's memory read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_mode_attests_every_machine_and_probes_the_reads() {
    use attest_fleet_sim::{run_scale, ScaleOptions};
    for db in TestDb::all().await {
        let backend = db.backend().to_string();
        let dir = tempfile::tempdir().unwrap();
        let server = attest_server::serve::start_with(
            settings(&db, dir.path()),
            Arc::new(SystemClock),
            extensions(),
        )
        .await
        .unwrap();
        let api = Api::new(&server.url(), TOKEN, 16).unwrap();
        let opts = ScaleOptions {
            machines: 150,
            concurrency: 16,
            // The server runs in this process.
            server_pid: Some(std::process::id()),
            probe_repeats: 2,
        };
        let report = tokio::time::timeout(Duration::from_secs(600), run_scale(&api, &opts, |_| {}))
            .await
            .unwrap()
            .unwrap();
        println!("{backend}:\n{}", report.table());
        assert_eq!(report.failed, 0, "{backend}: {:?}", report.errors);
        assert_eq!(report.attested, 150, "{backend}");
        assert_eq!(report.attest.count, 150);
        // One approval entry per machine, at least.
        assert!(
            report.audit_entries >= 150,
            "{backend}: {}",
            report.audit_entries
        );
        assert_eq!(report.probes.len(), 5);
        assert!(report.server_peak_rss_kb.unwrap() > 0);
        server.shutdown().await.unwrap();
        db.close().await;
    }
}
