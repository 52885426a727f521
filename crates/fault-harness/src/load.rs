//! Load from the fleet simulator, with a ledger of what the server
//! acknowledged: simulated machines walk the whole flow (self-register,
//! AK credential, approval with dual control for every tenth, attest
//! with quotes, encrypted config, request-cert), each on a fresh identity,
//! until stopped. A flow that fails (the server was killed under it) is
//! abandoned; only answered steps enter the ledger.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use attest_fleet_sim::machine::SimMachine;
use attest_fleet_sim::{Api, SimError, Step};
use serde::Serialize;

/// Every tenth machine is a controlplane that two operators approve.
const DUAL_CONTROL_EVERY: usize = 10;

/// What the server acknowledged for one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// The last step answered with the 2xx the flow expects.
    pub last: Step,
    pub dual_control: bool,
}

/// The acknowledged steps of every machine, and a tally of every answer.
#[derive(Debug, Default)]
pub struct Ledger {
    inner: Mutex<LedgerInner>,
}

#[derive(Debug, Default)]
struct LedgerInner {
    machines: HashMap<String, Acked>,
    tally: Tally,
}

/// Answers by kind.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Tally {
    /// Requests answered with the expected 2xx.
    pub acknowledged_requests: u64,
    /// Flows that ran to the end.
    pub completed_flows: u64,
    /// Steps with no answer (the server was down or killed mid-request).
    pub transport_errors: u64,
    /// `503` answers (a database outage, announced as such).
    pub unavailable: u64,
    /// Anything else: statuses other than 503, wrong answers. Must stay
    /// empty: each is a request the server got wrong under a fault.
    pub unexpected: BTreeMap<String, u64>,
}

impl Ledger {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, LedgerInner> {
        // A panicked load task cannot leave the maps half-updated: every
        // update is one insert or one increment.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one flow's steps for `machine`.
    pub fn record(&self, machine: &SimMachine, steps: &[attest_fleet_sim::machine::StepResult]) {
        let mut inner = self.lock();
        let dual = machine.dual_control();
        for (step, result) in steps {
            match result {
                Ok(_) => {
                    inner.tally.acknowledged_requests += step.requests(dual);
                    inner.machines.insert(
                        machine.machine_id().to_owned(),
                        Acked {
                            last: *step,
                            dual_control: dual,
                        },
                    );
                }
                Err(e) => inner.tally.count_error(*step, e),
            }
        }
        if steps.len() == Step::ALL.len() && steps.iter().all(|(_, r)| r.is_ok()) {
            inner.tally.completed_flows += 1;
        }
    }

    /// Every machine's acknowledged steps so far.
    pub fn snapshot(&self) -> HashMap<String, Acked> {
        self.lock().machines.clone()
    }

    pub fn tally(&self) -> Tally {
        self.lock().tally.clone()
    }
}

impl Tally {
    fn count_error(&mut self, step: Step, err: &SimError) {
        match err {
            SimError::Transport(_) => self.transport_errors += 1,
            SimError::Status { status: 503, .. } => self.unavailable += 1,
            SimError::Status { status, detail } => {
                let detail: String = detail.chars().take(80).collect();
                *self
                    .unexpected
                    .entry(format!("{}: HTTP {status}: {detail}", step.as_str()))
                    .or_default() += 1;
            }
            other => {
                let what: String = other.to_string().chars().take(100).collect();
                *self
                    .unexpected
                    .entry(format!("{}: {what}", step.as_str()))
                    .or_default() += 1;
            }
        }
    }
}

/// Numbers machines across loads, so every simulated machine is new.
#[derive(Debug, Default)]
pub struct Fleet {
    next: AtomicUsize,
    operators: (String, String),
}

impl Fleet {
    /// Machines whose dual-control approvals come from `operators`.
    pub fn new(operators: (String, String)) -> Arc<Self> {
        Arc::new(Self {
            next: AtomicUsize::new(0),
            operators,
        })
    }

    /// A fresh machine with new keys.
    pub fn machine(&self) -> Result<SimMachine, SimError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Ok(SimMachine::new(i, i % DUAL_CONTROL_EVERY == 0)?
            .with_operators(&self.operators.0, &self.operators.1))
    }
}

/// Flows running against one server until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `concurrency` workers, each running one flow after another.
    pub fn start(
        api: Arc<Api>,
        fleet: Arc<Fleet>,
        ledger: Arc<Ledger>,
        concurrency: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..concurrency.max(1))
            .map(|_| {
                let (api, fleet, ledger, stop) =
                    (api.clone(), fleet.clone(), ledger.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut machine) = fleet.machine() else {
                            continue;
                        };
                        let mut steps = Vec::with_capacity(Step::ALL.len());
                        machine.run(&api, &mut steps).await;
                        ledger.record(&machine, &steps);
                        let failed = steps.iter().any(|(_, r)| r.is_err());
                        if failed {
                            // The server is down or refusing: do not spin.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops starting flows and waits for the running ones to end.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
