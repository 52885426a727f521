//! Machine rules: the lifecycle transition table (over the wire types
//! `MachineStatus` and `Role`, re-exported here),
//! dual-control vote counting and validation of operator/agent input.
//!
//! Pure: the server loads the machine, asks these functions what may happen,
//! and persists the answer. The decisions (and why) are in
//! `docs/machine-lifecycle.md`, whose transition table is generated from
//! [`lifecycle::transition_table_markdown`] and pinned by a test.

pub mod dual_control;
pub mod lifecycle;
pub mod secret_key;
pub mod validate;

pub use attest_proto::machine::{
    MachineStatus, ReportedStatus, Role, UnknownRole, UnknownStatus, PENDING_SECOND_APPROVAL,
};
pub use dual_control::{
    decide_approval, ApprovalRequest, Decision, Vote, Voter, BREAK_GLASS_OPERATOR, QUORUM,
};
pub use lifecycle::{transition, AttestAction, Event, EventKind, Outcome, TransitionError};
