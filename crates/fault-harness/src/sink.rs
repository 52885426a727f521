//! A webhook receiver on loopback: records every delivery (event type,
//! machine, delivery id) and answers 200.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use crate::HarnessError;

/// What arrived, by event.
#[derive(Debug, Default, Clone)]
pub struct Deliveries {
    /// (event type, machine id) → the distinct delivery ids that carried it.
    pub events: BTreeMap<(String, String), BTreeSet<String>>,
    /// Requests received (a redelivery of one id counts again).
    pub requests: u64,
}

/// The running receiver; stops when dropped.
pub struct Sink {
    url: String,
    seen: Arc<Mutex<Deliveries>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn start() -> Result<Self, HarnessError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::Process(format!("webhook sink: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::Process(format!("webhook sink: {e}")))?;
        let seen = Arc::new(Mutex::new(Deliveries::default()));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(seen.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}/hook"),
            seen,
            task,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn deliveries(&self) -> Deliveries {
        self.seen.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(seen): State<Arc<Mutex<Deliveries>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let id = headers
        .get("x-webhook-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let event = body["event_type"].as_str().unwrap_or_default().to_owned();
    let machine = body["machine_id"].as_str().unwrap_or_default().to_owned();
    if let Ok(mut d) = seen.lock() {
        d.requests += 1;
        d.events.entry((event, machine)).or_default().insert(id);
    }
    StatusCode::OK
}
