//! Test harness: the real server with the extension, and a real HTTP
//! receiver on loopback that records what it is sent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attest_domain::clock::ManualClock;
use attest_ext_webhooks::config;
use attest_ext_webhooks::Webhooks;
use attest_server::config::Settings;
use attest_server::serve::RunningServer;
use attest_test_support::{launch, Launch};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;

pub use attest_test_support::ADMIN_TOKEN as TOKEN;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    /// Scripted answers, consumed in order; then 200 "ok". Paths under
    /// `/fail` always get 500.
    script: VecDeque<(u16, String)>,
}

/// A loopback HTTP receiver.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

async fn record(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut inner = inner.lock().unwrap();
    let path = uri.path().to_owned();
    inner.received.push(Received {
        path: path.clone(),
        headers,
        body,
    });
    let (status, body) = if path.starts_with("/fail") {
        (500, "always failing".to_owned())
    } else {
        inner.script.pop_front().unwrap_or((200, "ok".to_owned()))
    };
    (StatusCode::from_u16(status).unwrap(), body)
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn script(&self, status: u16, body: &str) {
        self.inner
            .lock()
            .unwrap()
            .script
            .push_back((status, body.to_owned()));
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Waits (real time) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let recv = self.clone();
        eventually(move || {
            let recv = recv.clone();
            async move {
                let got = recv.received();
                (got.len() >= n).then_some(got)
            }
        })
        .await
    }
}

/// Polls `check` every 25 ms for up to 15 s.
pub async fn eventually<T, F, Fut>(check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(Duration::from_secs(15), check).await
}

/// Polls `check` every 25 ms for up to `limit`.
pub async fn eventually_within<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The server with the extension (returned too, for `drained`), a
/// fast-polling worker and `env`.
pub async fn start(
    dir: &Path,
    db_url: &str,
    clock: &ManualClock,
    env: &[(&str, &str)],
) -> (RunningServer, Arc<Webhooks>) {
    start_tweaked(dir, db_url, clock, env, |_| {}).await
}

/// [`start`] with the settings adjusted by `tweak` first.
pub async fn start_tweaked(
    dir: &Path,
    db_url: &str,
    clock: &ManualClock,
    env: &[(&str, &str)],
    tweak: impl Fn(&mut Settings),
) -> (RunningServer, Arc<Webhooks>) {
    let webhooks = Arc::new(Webhooks::default());
    let settings_tweak = |settings: &mut Settings| {
        settings.extensions.env = settings.extensions.env.with(config::POLL_INTERVAL_MS, "25");
        for (k, v) in env {
            settings.extensions.env = settings.extensions.env.with(k, v);
        }
    };
    let both = move |settings: &mut Settings| {
        tweak(settings);
        settings_tweak(settings);
    };
    let launched = launch(
        db_url,
        dir,
        Launch {
            tweak: Some(&both),
            extensions: vec![webhooks.clone()],
            clock: Some(clock.clone()),
            ..Launch::default()
        },
    )
    .await;
    let server = launched.server;
    (server, webhooks)
}

pub fn allow_private() -> (&'static str, &'static str) {
    (config::ALLOW_PRIVATE_TARGETS, "true")
}

/// A thin operator client.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(server: &RunningServer) -> Self {
        Self {
            base: format!("{}/api/v1/webhooks", server.url()),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn create(&self, body: Value) -> Value {
        let (status, value) = self.call(reqwest::Method::POST, "", Some(body)).await;
        assert_eq!(status, 201, "{value}");
        value
    }

    pub async fn get(&self, id: &str) -> Value {
        let (status, value) = self
            .call(reqwest::Method::GET, &format!("/{id}"), None)
            .await;
        assert_eq!(status, 200, "{value}");
        value
    }

    pub async fn test(&self, id: &str) {
        let (status, value) = self
            .call(reqwest::Method::POST, &format!("/{id}/test"), None)
            .await;
        assert_eq!(status, 202, "{value}");
    }

    pub async fn deliveries(&self, id: &str) -> Vec<Value> {
        let (status, value) = self
            .call(reqwest::Method::GET, &format!("/{id}/deliveries"), None)
            .await;
        assert_eq!(status, 200, "{value}");
        value.as_array().unwrap().clone()
    }

    /// Waits until the webhook has at least `n` recorded deliveries.
    pub async fn wait_deliveries(&self, id: &str, n: usize) -> Vec<Value> {
        eventually(|| async {
            let rows = self.deliveries(id).await;
            (rows.len() >= n).then_some(rows)
        })
        .await
    }
}
