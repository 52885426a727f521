//! The issuer's signing keys, cached.
//!
//! Keys are fetched on first use, again when a token names a `kid` we do
//! not know (key rotation), and again once the cached set is older than
//! `jwks_max_age` (so a key the IdP withdrew stops working). Every fetch attempt, successful or not, is
//! rate-limited by `jwks_refresh_min_interval` measured on the injected
//! clock: a flood of tokens with random `kid`s costs the IdP at most one
//! request per interval, and never delays tokens signed by known keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard};

use attest_domain::clock::SharedClock;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::discovery::{self, FetchError};

/// Which algorithms a key may verify, fixed by its type and curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

/// One usable verification key.
pub(crate) struct VerificationKey {
    pub(crate) key: DecodingKey,
    pub(crate) kind: KeyKind,
    /// The JWK's own `alg`, if it pins one.
    pub(crate) alg: Option<Algorithm>,
}

/// Why no key was found for a token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("unknown signing key")]
    UnknownKid,
    #[error("token has no kid and the issuer has several keys")]
    AmbiguousKey,
    #[error("{0}")]
    Fetch(#[from] FetchError),
}

#[derive(Default)]
struct State {
    jwks_uri: Option<String>,
    keys: HashMap<String, Arc<VerificationKey>>,
    /// Keys without a `kid`, usable only when they are the only key.
    anonymous: Vec<Arc<VerificationKey>>,
    last_attempt: Option<DateTime<Utc>>,
    /// When the cached key set was last fetched successfully.
    fetched_at: Option<DateTime<Utc>>,
}

/// Upper bound on the keys taken from one JWKS document.
const MAX_KEYS: usize = 64;

/// Cache of the issuer's JWKS.
///
/// The key set lives behind a short-lived synchronous lock that is never
/// held across I/O; fetches are serialised by a separate async lock. A
/// token signed by a known key in a fresh cache therefore never waits for
/// an identity-provider request (a slow or blackholed IdP, or a flood of
/// random `kid`s, cannot stall valid logins).
pub(crate) struct JwksCache {
    http: reqwest::Client,
    issuer: String,
    min_interval: Duration,
    max_age: Duration,
    clock: SharedClock,
    state: StdMutex<State>,
    refresh: Mutex<()>,
}

#[derive(Deserialize)]
struct RawJwkSet {
    keys: Vec<serde_json::Value>,
}

/// A freshly fetched key set.
struct Fetched {
    jwks_uri: String,
    keys: HashMap<String, Arc<VerificationKey>>,
    anonymous: Vec<Arc<VerificationKey>>,
}

impl JwksCache {
    pub(crate) fn new(
        http: reqwest::Client,
        issuer: String,
        min_interval: Duration,
        max_age: Duration,
        clock: SharedClock,
    ) -> Self {
        Self {
            http,
            issuer,
            min_interval,
            max_age,
            clock,
            state: StdMutex::new(State::default()),
            refresh: Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True if the cached set must be re-fetched before trusting it again.
    /// A clock that went backwards counts as stale rather than "fresh for
    /// however long the jump was".
    fn is_stale(&self, state: &State, now: DateTime<Utc>) -> bool {
        state
            .fetched_at
            .is_some_and(|fetched| now < fetched || now - fetched >= self.max_age)
    }

    /// True if the rate limit allows a fetch now. A clock that went
    /// backwards does not suppress refreshes until it catches up.
    fn fetch_allowed(&self, state: &State, now: DateTime<Utc>) -> bool {
        state
            .last_attempt
            .is_none_or(|last| now < last || now - last >= self.min_interval)
    }

    /// The key for `kid`, refreshing the JWKS once if it is unknown and the
    /// rate limit allows.
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
    ) -> Result<Arc<VerificationKey>, KeyError> {
        // Fast path: no waiting on any fetch.
        let cached = {
            let state = self.state();
            let cached = lookup(&state, kid)?;
            if let Some(found) = &cached {
                if !self.is_stale(&state, self.clock.now()) {
                    return Ok(found.clone());
                }
            }
            cached
        };

        // One fetch at a time. A known key whose set is merely stale keeps
        // working while another request refreshes (as it would if the
        // refresh failed); unknown keys wait for that refresh.
        let _refresh = match self.refresh.try_lock() {
            Ok(guard) => guard,
            Err(_) => match cached {
                Some(found) => return Ok(found),
                None => self.refresh.lock().await,
            },
        };

        let now = self.clock.now();
        let (cached, jwks_uri) = {
            let mut state = self.state();
            // Another request may have refreshed while we waited.
            let cached = lookup(&state, kid)?;
            if let Some(found) = &cached {
                if !self.is_stale(&state, now) {
                    return Ok(found.clone());
                }
            }
            if !self.fetch_allowed(&state, now) {
                tracing::debug!("JWKS refresh suppressed by rate limit");
                return cached.ok_or(KeyError::UnknownKid);
            }
            state.last_attempt = Some(now);
            (cached, state.jwks_uri.clone())
        };

        match self.fetch(jwks_uri).await {
            Ok(fetched) => {
                let mut state = self.state();
                tracing::info!(
                    keys = fetched.keys.len() + fetched.anonymous.len(),
                    "JWKS refreshed"
                );
                state.jwks_uri = Some(fetched.jwks_uri);
                state.keys = fetched.keys;
                state.anonymous = fetched.anonymous;
                state.fetched_at = Some(now);
                lookup(&state, kid)?.ok_or(KeyError::UnknownKid)
            }
            Err(e) => {
                tracing::warn!(error = %e, issuer = %self.issuer, "JWKS refresh failed");
                // A failed fetch may mean a stale jwks_uri: rediscover next time.
                self.state().jwks_uri = None;
                // An IdP outage must not lock operators out: keep using a key we
                // already trusted until the IdP answers again.
                cached.ok_or(KeyError::Fetch(e))
            }
        }
    }

    async fn fetch(&self, jwks_uri: Option<String>) -> Result<Fetched, FetchError> {
        let uri = match jwks_uri {
            Some(uri) => uri,
            None => discovery::jwks_uri(&self.http, &self.issuer).await?,
        };
        let body = discovery::get_limited(&self.http, &uri).await?;
        let set: RawJwkSet = serde_json::from_slice(&body).map_err(FetchError::Invalid)?;
        let mut keys = HashMap::new();
        let mut anonymous = Vec::new();
        for raw in set.keys.into_iter().take(MAX_KEYS) {
            // One odd key (unknown kty, encryption key) must not hide the rest.
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
                continue;
            };
            let Some(key) = usable_key(&jwk) else {
                continue;
            };
            match jwk.common.key_id {
                Some(kid) => {
                    keys.insert(kid, Arc::new(key));
                }
                None => anonymous.push(Arc::new(key)),
            }
        }
        Ok(Fetched {
            jwks_uri: uri,
            keys,
            anonymous,
        })
    }
}

fn lookup(state: &State, kid: Option<&str>) -> Result<Option<Arc<VerificationKey>>, KeyError> {
    match kid {
        Some(kid) => Ok(state.keys.get(kid).cloned()),
        None => {
            let total = state.keys.len() + state.anonymous.len();
            if total > 1 {
                return Err(KeyError::AmbiguousKey);
            }
            Ok(state
                .anonymous
                .first()
                .or_else(|| state.keys.values().next())
                .cloned())
        }
    }
}

/// Signature keys we can use: RSA, EC P-256/P-384. Symmetric (`oct`) keys
/// are never accepted from a JWKS, encryption keys are skipped.
fn usable_key(jwk: &Jwk) -> Option<VerificationKey> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => KeyKind::EcP256,
            EllipticCurve::P384 => KeyKind::EcP384,
            _ => return None,
        },
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
        Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::ES384) => Some(Algorithm::ES384),
        // Pinned to something we do not accept (RSA-OAEP, RS512, …).
        Some(_) => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerificationKey { key, kind, alg })
}
