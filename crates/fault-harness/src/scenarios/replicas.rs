//! Two replicas on one PostgreSQL database, one killed mid-load: the other
//! keeps serving, and the state they share (nonces, dual-control votes)
//! stays consistent across them.

use std::time::Duration;

use attest_client::ClientError;
use attest_fleet_sim::client::As;
use attest_fleet_sim::machine::SimMachine;
use attest_fleet_sim::{Api, Step};
use attest_proto::machine::{AttestRequest, MachineStatus};
use serde::Serialize;

use super::{Deployment, Outcome, OPERATORS};
use crate::postgres::PrivateCluster;
use crate::server::{free_port, ServerProcess};
use crate::{HarnessError, Setup};

/// What the replica run did and found.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicasReport {
    /// Flows the surviving replica completed after the other was killed.
    pub flows_on_survivor_after_kill: u64,
    /// Cross-replica assertions on nonces and votes.
    pub consistency_checks: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The status of an answer (0: no answer).
fn status<T>(r: &Result<attest_client::Response<T>, ClientError>) -> u16 {
    match r {
        Ok(res) => res.status,
        Err(ClientError::Status { status, .. }) => *status,
        Err(_) => 0,
    }
}

async fn attest(api: &Api, body: &AttestRequest) -> Result<u16, HarnessError> {
    Ok(status(&api.r#as(As::Machine)?.attest(body).await))
}

/// Assertions across the replicas, counted.
#[derive(Default)]
struct Consistency {
    checks: u64,
    violations: Vec<String>,
}

impl Consistency {
    fn expect(&mut self, ok: bool, what: &str) {
        self.checks += 1;
        if !ok {
            self.violations.push(what.to_owned());
        }
    }
}

pub async fn run(setup: &Setup) -> Result<ReplicasReport, HarnessError> {
    let cluster = PrivateCluster::start()?;
    cluster.create_database("attest")?;
    let url = cluster.url("attest");
    let half = Setup {
        concurrency: (setup.concurrency / 2).max(1),
        ..setup.clone()
    };
    let deployment = Deployment::new(&half).await?;
    let data = deployment.data_dir();
    let mut a =
        ServerProcess::start(deployment.spec("replica-a", free_port()?, &data, Some(&url))).await?;
    let b =
        ServerProcess::start(deployment.spec("replica-b", free_port()?, &data, Some(&url))).await?;
    let (api_a, api_b) = (deployment.api(&a)?, deployment.api(&b)?);
    deployment.subscribe(&api_a).await?;

    let mut c = Consistency::default();
    let issued_by_a = nonces_before_the_kill(&mut c, &api_a, &api_b).await?;
    let controlplane = first_vote_on_a(&mut c, &api_a, &api_b).await?;

    // Load on both; kill A mid-load.
    let load_a = deployment.load(&api_a);
    let load_b = deployment.load(&api_b);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    a.kill()?;
    let completed_at_kill = deployment.ledger.tally().completed_flows;
    after_the_kill(&mut c, &api_b, &issued_by_a, &controlplane).await?;

    tokio::time::sleep(Duration::from_secs(3)).await;
    load_b.stop().await;
    load_a.stop().await;
    let flows_after = deployment.ledger.tally().completed_flows - completed_at_kill;
    c.expect(
        flows_after > 0,
        "replica B completed no flow after A was killed",
    );

    let mut outcome = Outcome::default();
    deployment.verify(&api_b, &mut outcome).await?;
    deployment.verify_deliveries(&api_b, &mut outcome).await?;
    outcome.finish(&deployment.ledger);
    outcome.checks += c.checks;
    outcome.violations.extend(c.violations);
    drop(b);
    drop(cluster);
    Ok(ReplicasReport {
        flows_on_survivor_after_kill: flows_after,
        consistency_checks: c.checks,
        outcome,
    })
}

/// A machine attested through B; a nonce A issued is redeemed by B once
/// and refused on a second try by either. Returns an attest request over
/// another nonce of A's, for after A's death.
async fn nonces_before_the_kill(
    c: &mut Consistency,
    api_a: &Api,
    api_b: &Api,
) -> Result<AttestRequest, HarnessError> {
    let mut m = SimMachine::new(1_000_000, false)?;
    let mut steps = Vec::new();
    m.run(api_b, &mut steps).await;
    c.expect(
        steps.iter().all(|(_, r)| r.is_ok()) && steps.len() == Step::ALL.len(),
        "a flow through replica B did not complete",
    );
    let (from_a, _) = m.attest_request(api_a).await?;
    c.expect(
        attest(api_b, &from_a).await? == 200,
        "B refused a nonce A issued",
    );
    c.expect(
        attest(api_b, &from_a).await? == 409,
        "B accepted a redeemed nonce again",
    );
    c.expect(
        attest(api_a, &from_a).await? == 409,
        "A accepted a nonce B redeemed",
    );
    let (later, _) = m.attest_request(api_a).await?;
    Ok(later)
}

/// A controlplane registered through B, its first vote cast on A.
async fn first_vote_on_a(
    c: &mut Consistency,
    api_a: &Api,
    api_b: &Api,
) -> Result<SimMachine, HarnessError> {
    let mut cp = SimMachine::new(1_000_001, true)?.with_operators(OPERATORS.0, OPERATORS.1);
    let mut steps = Vec::new();
    cp.run_until(api_b, Step::AkActivate, &mut steps).await;
    c.expect(
        steps.iter().all(|(_, r)| r.is_ok()),
        "the controlplane did not register through B",
    );
    c.expect(
        vote(api_a, &cp, OPERATORS.0).await == 202,
        "the first vote on A was not recorded as pending",
    );
    Ok(cp)
}

/// With A dead: its nonce is redeemed by B; the first operator's repeated
/// vote on B does not approve, the second operator's does.
async fn after_the_kill(
    c: &mut Consistency,
    api_b: &Api,
    issued_by_a: &AttestRequest,
    cp: &SimMachine,
) -> Result<(), HarnessError> {
    c.expect(
        attest(api_b, issued_by_a).await? == 200,
        "B refused a nonce A issued before it died",
    );
    let again = vote(api_b, cp, OPERATORS.0).await;
    let detail = api_b.r#as(As::Admin)?.machine(cp.machine_id()).await;
    c.expect(
        again != 200
            && detail
                .as_ref()
                .is_ok_and(|d| d.body.status == MachineStatus::PendingApproval),
        "the same operator's second vote (on B) approved a dual-controlled machine",
    );
    c.expect(
        vote(api_b, cp, OPERATORS.1).await == 200,
        "the second operator's vote on B did not approve",
    );
    Ok(())
}

/// `who` approves `cp` through `api`: the answer's status (0: none).
async fn vote(api: &Api, cp: &SimMachine, who: &str) -> u16 {
    match api.r#as(As::Operator(who)) {
        Ok(client) => status(&client.approve(cp.machine_id(), &cp.approve_body()).await),
        Err(_) => 0,
    }
}
