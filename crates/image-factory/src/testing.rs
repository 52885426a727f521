//! A loopback Image Factory for tests (feature `testing`).
//!
//! It speaks the real schematic protocol so that callers exercise their
//! actual HTTP path: `POST /schematics` parses the YAML (400 on bad YAML or
//! unknown fields) and answers `201 {"id": <hex SHA-256 of the canonical
//! YAML>}`; `GET /schematics/{id}` returns the stored YAML or 404. Delays
//! and failures can be injected to test time-outs and error mapping.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::Customization;

#[derive(Default)]
struct Inner {
    requests: Vec<Customization>,
    request_count: usize,
    schematics: HashMap<String, String>,
    delay: Duration,
    failure: Option<u16>,
}

#[derive(Default)]
struct Shared(Mutex<Inner>);

impl Shared {
    /// A panicking handler cannot leave `Inner` half-updated in a way that
    /// matters to tests, so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fake Image Factory on `127.0.0.1:<ephemeral port>`, served by a tokio
/// task that stops with [`FakeFactory::stop`] or when this value is dropped.
pub struct FakeFactory {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeFactory")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeFactory {
    /// Binds `127.0.0.1:0` and serves in a spawned task. Must be called
    /// inside a tokio runtime.
    ///
    /// # Panics
    /// If loopback cannot be bound: a test fixture has no better answer.
    #[allow(clippy::expect_used)]
    pub async fn start() -> FakeFactory {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("fake factory: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake factory: local address");
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/schematics", post(create_schematic))
            .route("/schematics/{id}", get(get_schematic))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake factory stopped");
            }
        });
        FakeFactory {
            addr,
            shared,
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`, to pass to [`crate::FactoryClient::new`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every schematic POSTed that parsed, in order (also those answered
    /// with an injected failure, since the client did send them).
    pub fn requests(&self) -> Vec<Customization> {
        self.shared.lock().requests.clone()
    }

    /// Number of `POST /schematics` received, whatever was answered: the
    /// way to check that a caller did not retry.
    pub fn request_count(&self) -> usize {
        self.shared.lock().request_count
    }

    /// Delay before answering `POST /schematics` (counted and recorded
    /// before the wait, so a timed-out request is still visible).
    pub fn set_delay(&self, d: Duration) {
        self.shared.lock().delay = d;
    }

    /// Answer `POST /schematics` with this status and a text body instead
    /// (`None` restores normal behaviour). An invalid code becomes 500.
    pub fn set_failure(&self, status: Option<u16>) {
        self.shared.lock().failure = status;
    }

    /// Stops serving and waits for the task to end.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // The only expected error is the cancellation just asked for.
            let _ = task.await;
        }
    }
}

impl Drop for FakeFactory {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn create_schematic(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let parsed = Customization::from_yaml(&body);
    let (delay, failure) = {
        let mut inner = shared.lock();
        inner.request_count += 1;
        if let Ok(c) = &parsed {
            inner.requests.push(c.clone());
        }
        (inner.delay, inner.failure)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(code) = failure {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, format!("injected failure {}", status.as_u16())).into_response();
    }
    let customization = match parsed {
        Ok(c) => c,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let canonical = match customization.to_yaml() {
        Ok(y) => y,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let id = hex::encode(Sha256::digest(canonical.as_bytes()));
    shared.lock().schematics.insert(id.clone(), canonical);
    (StatusCode::CREATED, Json(serde_json::json!({ "id": id }))).into_response()
}

async fn get_schematic(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.lock().schematics.get(&id) {
        Some(yaml) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/yaml")],
            yaml.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "schematic not found").into_response(),
    }
}
