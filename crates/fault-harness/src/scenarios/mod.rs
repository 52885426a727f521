//! The fault scenarios. Each starts its own deployment (server processes,
//! data directory, database), injects its fault under load and returns a
//! report whose `violations` must be empty.

pub mod full_disk;
pub mod kills;
pub mod postgres_restart;
pub mod replicas;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attest_fleet_sim::client::As;
use attest_fleet_sim::{Api, SimIdp};
use attest_proto::webhooks::{EventList, WebhookCreate};
use serde::Serialize;

use crate::checks::{self, CheckReport};
use crate::load::{Fleet, Ledger, Load, Tally};
use crate::server::{ServerProcess, ServerSpec};
use crate::sink::Sink;
use crate::{HarnessError, Setup};

const TOKEN: &str = "fault-harness-break-glass-token-0123456789";
const OPERATORS: (&str, &str) = ("fault-alice", "fault-bob");

/// The parts of a deployment every scenario shares: the simulated
/// operators' OIDC provider, the webhook receiver, the load's ledger.
pub(crate) struct Deployment {
    pub work: tempfile::TempDir,
    pub idp: SimIdp,
    pub sink: Sink,
    pub fleet: Arc<Fleet>,
    pub ledger: Arc<Ledger>,
    setup: Setup,
    master_key: String,
}

impl Deployment {
    pub async fn new(setup: &Setup) -> Result<Self, HarnessError> {
        Self::in_dir(setup, std::env::temp_dir().as_path()).await
    }

    /// With its work directory under `parent` (a small filesystem, say).
    pub async fn in_dir(setup: &Setup, parent: &Path) -> Result<Self, HarnessError> {
        let work = tempfile::Builder::new()
            .prefix("fault-")
            .tempdir_in(parent)
            .map_err(|e| HarnessError::Process(format!("work dir: {e}")))?;
        Ok(Self {
            work,
            idp: SimIdp::start(
                "127.0.0.1:0"
                    .parse()
                    .map_err(|_| HarnessError::Process("loopback address".into()))?,
            )
            .await?,
            sink: Sink::start().await?,
            fleet: Fleet::new((OPERATORS.0.into(), OPERATORS.1.into())),
            ledger: Ledger::new(),
            setup: setup.clone(),
            master_key: hex::encode(rand::random::<[u8; 32]>()),
        })
    }

    /// A server on `port` with its data in `data_dir` and, if given, its
    /// database at `database_url` (else SQLite in the data directory).
    pub fn spec(
        &self,
        name: &str,
        port: u16,
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> ServerSpec {
        let mut env: Vec<(String, String)> = [
            ("ITL_DATA_DIR", data_dir.to_string_lossy().as_ref()),
            ("ITL_ADMIN_TOKEN", TOKEN),
            ("ITL_CA_KEY_PASSPHRASE", "fault-harness-ca-passphrase"),
            ("ITL_SHARED_SECRET_MASTER_KEY", &self.master_key),
            (
                "ITL_CONFIG_CACHE_DIR",
                self.setup.role_configs.to_string_lossy().as_ref(),
            ),
            ("ITL_REQUIRE_NONCE", "true"),
            ("ITL_REQUIRE_QUOTE", "true"),
            ("ITL_REQUIRE_AK_CREDENTIAL", "true"),
            ("ITL_REQUIRE_ENCRYPTED_DELIVERY", "true"),
            // One simulator drives the fleet from one address.
            ("ITL_RATE_LIMIT_ATTEST_PER_MINUTE", "0"),
            ("ITL_RATE_LIMIT_REGISTER_PER_MINUTE", "0"),
            ("ITL_MAX_PENDING_MACHINES", "10000000"),
            ("ITL_OIDC_ISSUER", self.idp.issuer()),
            ("ITL_OIDC_AUDIENCE", attest_fleet_sim::idp::AUDIENCE),
            ("ITL_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
            // A delivery leased by a killed process is retried after
            // 2 × timeout + 30 s.
            ("ITL_WEBHOOK_TIMEOUT_SECONDS", "1"),
            ("ITL_WEBHOOK_BACKOFF_SECONDS", "1"),
            ("ITL_WEBHOOK_POLL_INTERVAL_MS", "200"),
            ("ITL_LOG", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(url) = database_url {
            env.push(("DATABASE_URL".into(), url.into()));
        }
        ServerSpec {
            binary: self.setup.binary.clone(),
            env,
            log: self.work.path().join(format!("{name}.log")),
            port,
        }
    }

    /// A client of `server` acting as machines, the break-glass operator
    /// and the two OIDC operators.
    pub fn api(&self, server: &ServerProcess) -> Result<Arc<Api>, HarnessError> {
        let mut api = Api::new(&server.url(), TOKEN, self.setup.concurrency)?;
        api.use_operators(&self.idp, &[OPERATORS.0, OPERATORS.1])?;
        Ok(Arc::new(api))
    }

    /// Subscribes the webhook receiver to the machine events.
    pub async fn subscribe(&self, api: &Api) -> Result<(), HarnessError> {
        api.r#as(As::Admin)?
            .create_webhook(&WebhookCreate {
                url: self.sink.url().to_owned(),
                events: EventList::List(vec![
                    "machine.registered".into(),
                    "machine.approved".into(),
                ]),
                secret: None,
                enabled: None,
            })
            .await
            .map_err(|e| HarnessError::Check(format!("create webhook: {e}")))?;
        Ok(())
    }

    pub fn load(&self, api: &Arc<Api>) -> Load {
        Load::start(
            api.clone(),
            self.fleet.clone(),
            self.ledger.clone(),
            self.setup.concurrency,
        )
    }

    pub fn seed(&self) -> u64 {
        self.setup.seed
    }

    /// Checks the ledger against the server and adds the violations.
    pub async fn verify(&self, api: &Api, into: &mut Outcome) -> Result<(), HarnessError> {
        let acked = self.ledger.snapshot();
        let report = checks::verify(api, &acked).await?;
        into.absorb(report);
        Ok(())
    }

    /// Waits for every committed event's delivery and adds the result.
    pub async fn verify_deliveries(
        &self,
        api: &Api,
        into: &mut Outcome,
    ) -> Result<(), HarnessError> {
        let found = checks::deliveries(api, &self.sink, Duration::from_secs(90)).await?;
        into.events_delivered = found.delivered;
        into.checks += found.committed;
        into.violations.extend(found.violations);
        into.webhook_requests = self.sink.deliveries().requests;
        Ok(())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.work.path().join("data")
    }
}

/// Counts every scenario reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// What the load saw.
    pub load: Tally,
    /// Rounds of checks run (after each fault and at the end).
    pub check_rounds: u64,
    /// Assertions made in all rounds.
    pub checks: u64,
    /// Acknowledged machines at the last round.
    pub acknowledged_machines: u64,
    /// Machines in the database at the last round.
    pub machines: u64,
    /// Audit entries verified at the last round.
    pub audit_entries: i64,
    /// Committed events found delivered.
    pub events_delivered: u64,
    /// Webhook requests received (redeliveries included).
    pub webhook_requests: u64,
    /// Anything lost or wrong; must be empty.
    pub violations: Vec<String>,
}

impl Outcome {
    fn absorb(&mut self, report: CheckReport) {
        self.check_rounds += 1;
        self.checks += report.checks;
        self.acknowledged_machines = report.acknowledged_machines;
        self.machines = report.machines;
        self.audit_entries = report.audit_entries;
        self.violations.extend(report.violations);
    }

    /// Takes the load's tally and turns its unexpected answers into
    /// violations.
    pub(crate) fn finish(&mut self, ledger: &Ledger) {
        self.load = ledger.tally();
        self.violations.extend(
            self.load
                .unexpected
                .iter()
                .map(|(what, n)| format!("{n} × unexpected answer: {what}")),
        );
    }
}
