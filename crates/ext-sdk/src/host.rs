//! What the server lends an extension: the database, the clock, the event
//! channels, counters, its settings, the master key, and authentication of
//! operators and machines. Cheap to clone; extensions keep it in their router state.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use attest_auth::{Operator, OperatorAuthenticator};
use attest_domain::clock::SharedClock;
use attest_store::Store;
use axum::http::HeaderMap;
use futures::future::BoxFuture;

use crate::activity::Activity;
use crate::bus::EventBus;
use crate::extension::ExtensionError;
use crate::http::error::ApiError;
use crate::sealing::MasterKey;
use crate::telemetry::Telemetry;

/// How a machine proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineCredential {
    /// The seed's `X-EK-Fingerprint` header. A fingerprint is not a
    /// secret, so this only identifies.
    EkFingerprint,
    /// A certificate issued by the enrollment CA, unexpired and not
    /// revoked: verified by the server's TLS listener, or forwarded by a
    /// TLS proxy (`X-Client-Cert`).
    EnrollmentCertificate,
}

/// A machine that authenticated for this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineIdentity {
    /// Its id.
    pub machine_id: String,
    /// Its stored EK fingerprint (64 or 96 hex digits).
    pub ek_fingerprint: String,
    /// Lifecycle status (`attested`, `registered`, …).
    pub status: String,
    /// Hostname, once assigned.
    pub hostname: Option<String>,
    /// Role.
    pub role: String,
    /// How it authenticated.
    pub credential: MachineCredential,
}

/// The server's machine authentication, selected by `ITL_MACHINE_AUTH`.
///
/// Answers 401 without a usable credential, 403 for a revoked or rejected
/// machine.
pub trait MachineAuthenticator: Send + Sync {
    /// The machine the request proves: by its headers, or by
    /// `tls_peer_cert`, the client certificate (leaf, DER) the server's TLS
    /// listener verified for the request's connection.
    fn authenticate<'a>(
        &'a self,
        headers: &'a HeaderMap,
        tls_peer_cert: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<MachineIdentity, ApiError>>;
}

/// The `ITL_*` environment an extension reads its settings from.
///
/// Values may be secrets, so `Debug` prints the names only.
#[derive(Clone, Default)]
pub struct ExtensionEnv(Arc<BTreeMap<String, String>>);

impl fmt::Debug for ExtensionEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ExtensionEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(Arc::new(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .filter(|(_, v): &(String, String)| !v.is_empty())
                .collect(),
        ))
    }
}

impl ExtensionEnv {
    /// The raw value of `name`, if set and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Only the variables named in `names`.
    pub fn subset(&self, names: &[&str]) -> Self {
        Self(Arc::new(
            self.0
                .iter()
                .filter(|(k, _)| names.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))
    }

    /// A copy with `name` set to `value` (tests, embedding).
    pub fn with(&self, name: &str, value: &str) -> Self {
        let mut map = (*self.0).clone();
        map.insert(name.to_owned(), value.to_owned());
        Self(Arc::new(map))
    }

    /// `name` parsed as `T`; an unparsable value is an error naming it.
    pub fn parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, ExtensionError>
    where
        T::Err: fmt::Display,
    {
        self.get(name)
            .map(|raw| {
                raw.trim()
                    .parse::<T>()
                    .map_err(|e| ExtensionError(format!("invalid value for {name}: {e}")))
            })
            .transpose()
    }

    /// `name` as a boolean (`true/false`, `1/0`, `yes/no`, `on/off`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ExtensionError> {
        self.get(name)
            .map(|raw| match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                other => Err(ExtensionError(format!(
                    "invalid value for {name}: expected true or false, got `{other}`"
                ))),
            })
            .transpose()
    }
}

/// Everything an extension may use from the host.
#[derive(Clone)]
pub struct ExtensionContext {
    /// The database (both backends through one query layer).
    pub store: Store,
    /// The time source for every expiry decision.
    pub clock: SharedClock,
    /// Node lifecycle events (`node.*`), for typed hooks.
    pub node_events: EventBus,
    /// Operator-visible activity (`machine.approved`, `secret.created`, …).
    pub activity: Activity,
    /// Counters exported by the metrics extension.
    pub telemetry: Telemetry,
    /// Settings from the environment.
    pub env: ExtensionEnv,
    /// The server's master key: seal secrets kept in the database with it
    /// ([`crate::sealing`]), never store them in plaintext.
    pub master_key: MasterKey,
    operators: Arc<OperatorAuthenticator>,
    machines: Arc<dyn MachineAuthenticator>,
}

/// What the server hands over to build an [`ExtensionContext`].
pub struct HostParts {
    pub store: Store,
    pub clock: SharedClock,
    pub node_events: EventBus,
    pub activity: Activity,
    pub telemetry: Telemetry,
    pub env: ExtensionEnv,
    pub master_key: MasterKey,
    pub operators: Arc<OperatorAuthenticator>,
    pub machines: Arc<dyn MachineAuthenticator>,
}

impl ExtensionContext {
    /// Assembles the context (called by the server).
    pub fn new(parts: HostParts) -> Self {
        Self {
            store: parts.store,
            clock: parts.clock,
            node_events: parts.node_events,
            activity: parts.activity,
            telemetry: parts.telemetry,
            env: parts.env,
            master_key: parts.master_key,
            operators: parts.operators,
            machines: parts.machines,
        }
    }

    /// This context with `env` narrowed to `names`: each extension sees
    /// only the settings it declares, never the core's secrets
    /// (`ITL_ADMIN_TOKEN`, `ITL_CA_KEY_PASSPHRASE`) or another extension's.
    pub fn for_extension(&self, names: &[&str]) -> Self {
        let mut ctx = self.clone();
        ctx.env = self.env.subset(names);
        ctx
    }

    /// The operator the headers prove (401 / 403 otherwise).
    pub async fn authenticate_operator(&self, headers: &HeaderMap) -> Result<Operator, ApiError> {
        Ok(self.operators.authenticate(headers).await?)
    }

    /// The machine the headers prove (401 / 403 otherwise). Handlers
    /// should prefer the `AuthenticatedMachine` extractor, which also
    /// passes the TLS-verified client certificate.
    pub async fn authenticate_machine(
        &self,
        headers: &HeaderMap,
    ) -> Result<MachineIdentity, ApiError> {
        self.machines.authenticate(headers, None).await
    }

    /// The machine the headers or the TLS-verified client certificate
    /// (`tls_peer_cert`, leaf DER) prove (401 / 403 otherwise).
    pub async fn authenticate_machine_with_peer_cert(
        &self,
        headers: &HeaderMap,
        tls_peer_cert: Option<&[u8]>,
    ) -> Result<MachineIdentity, ApiError> {
        self.machines.authenticate(headers, tls_peer_cert).await
    }
}

impl fmt::Debug for ExtensionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtensionContext")
            .field("backend", &self.store.backend())
            .field("env", &self.env)
            .field("master_key", &self.master_key.key_id)
            .finish_non_exhaustive()
    }
}

/// Router states that carry the [`ExtensionContext`], so the SDK's
/// authentication extractors work in any extension's handlers.
pub trait HasContext {
    /// The host context.
    fn context(&self) -> &ExtensionContext;
}

impl HasContext for ExtensionContext {
    fn context(&self) -> &ExtensionContext {
        self
    }
}

impl<T: HasContext> HasContext for Arc<T> {
    fn context(&self) -> &ExtensionContext {
        (**self).context()
    }
}
