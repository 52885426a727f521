//! `WS /api/v1/ws/jobs`: job status and completion as they happen, for the
//! jobs a client subscribed to (or all).

use std::collections::HashSet;

use attest_proto::patch::{WsClientMessage, WsServerMessage};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::AppState;
use crate::jobs::JobEvent;

/// Largest client message accepted.
const MAX_MESSAGE: usize = 64 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|e| ApiError::invalid(format!("WebSocket upgrade required: {e}")))?;
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| stream(socket, state)))
}

#[derive(Default)]
struct Subscriptions {
    all: bool,
    jobs: HashSet<String>,
}

impl Subscriptions {
    fn wants(&self, job_id: &str) -> bool {
        self.all || self.jobs.contains(job_id)
    }
}

async fn send(socket: &mut WebSocket, msg: &WsServerMessage) -> bool {
    match serde_json::to_string(msg) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

fn error_message(message: &str) -> WsServerMessage {
    WsServerMessage::Error(ApiError::invalid(message).body())
}

async fn stream(mut socket: WebSocket, state: AppState) {
    let mut events = state.jobs.subscribe();
    let mut subs = Subscriptions::default();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { return };
                let text = match msg {
                    Message::Text(t) => t.to_string(),
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) => {
                        if !send(&mut socket, &error_message("messages are JSON text")).await { return }
                        continue;
                    }
                };
                let reply = match serde_json::from_str::<WsClientMessage>(&text) {
                    Ok(WsClientMessage::Subscribe { job_id }) => {
                        // Send the current state right away, so a client
                        // never waits for a job that already finished.
                        match state.jobs.detail(&job_id) {
                            Ok(detail) => {
                                subs.jobs.insert(job_id);
                                let status = WsServerMessage::JobStatus(attest_proto::patch::JobStatusPayload {
                                    job_id: detail.job_id.clone(),
                                    status: detail.status,
                                    progress_percent: detail.progress_percent,
                                    updated_at: detail.updated_at.clone(),
                                });
                                if !send(&mut socket, &status).await { return }
                                if detail.status.is_terminal() {
                                    Some(WsServerMessage::JobComplete(Box::new(detail)))
                                } else {
                                    None
                                }
                            }
                            Err(e) => Some(WsServerMessage::Error(ApiError::from(e).body())),
                        }
                    }
                    Ok(WsClientMessage::Unsubscribe { job_id }) => {
                        subs.jobs.remove(&job_id);
                        None
                    }
                    Ok(WsClientMessage::SubscribeAll {}) => {
                        subs.all = true;
                        None
                    }
                    Ok(WsClientMessage::Ping {}) => Some(WsServerMessage::Pong(serde_json::json!({}))),
                    Err(e) => Some(error_message(&format!("unknown or malformed message: {e}"))),
                };
                if let Some(reply) = reply {
                    if !send(&mut socket, &reply).await { return }
                }
            }
            event = events.recv() => {
                let msg = match event {
                    Ok(JobEvent::Status(s)) if subs.wants(&s.job_id) => WsServerMessage::JobStatus(s),
                    Ok(JobEvent::Complete(d)) if subs.wants(&d.job_id) => WsServerMessage::JobComplete(d),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => error_message(&format!("{n} job events were dropped; poll GET /api/v1/jobs")),
                    Err(RecvError::Closed) => return,
                };
                if !send(&mut socket, &msg).await { return }
            }
        }
    }
}
