//! Fault injection for the attestation server (issue 24): the real
//! `attestation` binary under load from the fleet simulator, while the
//! harness
//!
//! - kills it with SIGKILL at random moments and restarts it
//!   ([`scenarios::kills`]),
//! - restarts its PostgreSQL ([`scenarios::postgres_restart`]),
//! - fills the disk under its SQLite database ([`scenarios::full_disk`]),
//! - runs two replicas on one PostgreSQL database and kills one
//!   ([`scenarios::replicas`]),
//!
//! and after each fault checks that every acknowledged write is in the
//! database, that no machine is in a state the lifecycle forbids, that the
//! audit chain verifies and that every committed event was delivered
//! ([`checks`]). `attestation-faults` runs it at length; the CI test
//! (`crates/cli/tests/fault_injection.rs`) runs a shortened version.

pub mod checks;
pub mod load;
pub mod plan;
pub mod postgres;
pub mod scenarios;
pub mod server;
pub mod sink;

use std::path::PathBuf;

/// Why the harness could not run or a check could not be made (a check
/// that ran and failed is a violation in a report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A process or file the harness drives failed.
    #[error("{0}")]
    Process(String),
    /// A tool the scenario needs is not installed.
    #[error("missing: {0}")]
    Missing(String),
    /// The server did not answer a check's request.
    #[error("check: {0}")]
    Check(String),
    /// The simulator failed to set up.
    #[error(transparent)]
    Sim(#[from] attest_fleet_sim::SimError),
}

/// What every scenario needs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The `attestation` binary.
    pub binary: PathBuf,
    /// The role base configs (`examples/role-configs`).
    pub role_configs: PathBuf,
    /// Simulated machines in flight at once.
    pub concurrency: usize,
    /// A seed for the random kill moments (printed, so a run repeats).
    pub seed: u64,
}
