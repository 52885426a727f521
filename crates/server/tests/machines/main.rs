#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Machine registration, extension self-registration, import, attestation
//! (nonces, AK activation, quotes), the operator lifecycle (approve with
//! dual control, revoke, lock, unlock), its audit trail and node events,
//! against the real server on every available backend.
//!
//! The expected behaviour is `attestation-api.txt` (sections Registration,
//! Extension Self-Registration, Attestation, Machine Lifecycle, Audit Log)
//! and the decisions of `docs/machine-lifecycle.md`.

use attest_test_support as common;
use common::each_operator_backend;

use std::time::Duration as StdDuration;

use attest_domain::audit::format_timestamp;
use attest_proto::events::NodeEvent;
use attest_server::config::quote_policy::QuotePolicies;
use attest_tpm::soft::{AkKind, SoftAk};
use attest_tpm::HashAlg;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Duration;
use common::{epoch, SendJson, TestApp, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

use common::machine_api::*;

mod admin_list;
mod ak_activation;
mod approve;
mod attest;
mod authentication;
mod concurrency;
mod events;
mod evidence;
mod import;
mod lock_revoke;
mod register;

/// Shared by the approval, concurrency and event tests.
use approve::{controlplane_candidate, cp};
