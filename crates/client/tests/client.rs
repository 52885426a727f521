//! The client against a small loopback server that answers as the
//! attestation API does: credentials on the wire, typed bodies, the total
//! count, 202 versus 200 on approve, and the error body.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attest_client::{Approval, ApproveBody, Client, ClientError, Credentials, MachineListQuery};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// Who the request came as, from its headers.
fn caller(headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (header("authorization"), header("x-ek-fingerprint")) {
        (Some(auth), _) => auth.to_owned(),
        (None, Some(fp)) => format!("ek {fp}"),
        (None, None) => "nobody".to_owned(),
    }
}

fn machine(id: &str, status: &str) -> Value {
    json!({
        "machine_id": id, "ek_fingerprint": "ab", "hw_uuid": null, "hw_mac": null,
        "hw_serial": null, "hw_product": null, "role": "worker-app", "status": status,
        "hostname": null, "assigned_ip": null, "registered_at": "t", "attested_at": null,
        "locked_at": null, "revoked_at": null, "wipe_pending": false, "ek_source": "pub",
        "iso_url": null, "ak_activated_at": null, "ak_binding": null,
        "last_attest_at": null, "config_token_outstanding": false, "updated_at": "t"
    })
}

async fn list(headers: HeaderMap, Query(query): Query<Value>) -> Response {
    if caller(&headers) != "Bearer op-token" {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Not authenticated"})),
        )
            .into_response();
    }
    // The query arrives as sent: absent options are left out.
    assert_eq!(query, json!({"status": "bogus", "per_page": "5"}));
    (
        [("x-total-count", "7")],
        Json(json!([machine("m1", "attested")])),
    )
        .into_response()
}

async fn approve(Path(id): Path<String>, Json(body): Json<Value>) -> Response {
    match body["role"].as_str() {
        Some("controlplane") => (
            StatusCode::ACCEPTED,
            Json(json!({
                "machine_id": id, "status": "pending_second_approval", "message": "m",
                "approvals_received": 1, "approvals_required": 2, "expires_at": "t"
            })),
        )
            .into_response(),
        Some("worker-app") => Json(machine(&id, "registered")).into_response(),
        _ => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": [{"type": "enum", "loc": ["body", "role"], "msg": "bad role"}]})),
        )
            .into_response(),
    }
}

async fn serve() -> String {
    let app = Router::new()
        .route("/api/v1/machines", get(list))
        .route("/api/v1/machines/{id}/approve", post(approve))
        .route(
            "/api/v1/machines/{id}",
            get(|headers: HeaderMap| async move {
                (StatusCode::NOT_FOUND, caller(&headers)).into_response()
            }),
        )
        .route(
            "/api/v1/extensions",
            get(|| async { Json(json!({"extensions": [], "total": "zero"})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

#[tokio::test]
async fn answers_are_typed_and_errors_carry_status_and_detail() {
    let base = serve().await;
    let anonymous = Client::new(&base, reqwest::Client::new());
    let operator = anonymous.with_credentials(Credentials::Bearer("op-token".into()));
    let query = MachineListQuery {
        status: Some("bogus".into()),
        per_page: Some(5),
        ..MachineListQuery::default()
    };

    let listed = operator.list_machines(&query).await.unwrap();
    assert_eq!(listed.status, 200);
    assert_eq!(listed.total, Some(7));
    assert_eq!(listed.body[0].machine_id, "m1");
    assert!(listed.raw.starts_with("[{"), "{}", listed.raw);

    let err = anonymous.list_machines(&query).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(matches!(&err, ClientError::Status { detail, .. } if detail == "Not authenticated"));

    let body = |role: &str| ApproveBody {
        role: role.into(),
        hostname: None,
        assigned_ip: None,
    };
    let pending = operator
        .approve("m 1", &body("controlplane"))
        .await
        .unwrap();
    assert_eq!(pending.status, 202);
    assert!(matches!(pending.body, Approval::Pending(p) if p.machine_id == "m 1"));
    let done = operator.approve("m2", &body("worker-app")).await.unwrap();
    assert!(matches!(done.body, Approval::Approved(m) if m.machine_id == "m2"));
    let refused = operator.approve("m3", &body("boss")).await.unwrap_err();
    assert!(
        matches!(&refused, ClientError::Status { status: 422, detail, .. }
            if detail == "validation failed:\n  body.role: bad role"),
        "{refused:?}"
    );

    // A plain-text error body is the detail; the EK header is sent.
    let machine = anonymous.with_credentials(Credentials::EkFingerprint("sha256:ab".into()));
    let err = machine.machine("m1").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Status { status: 404, detail, .. } if detail == "ek sha256:ab")
    );

    // A 2xx body that is not the proto type is a decode error.
    let err = anonymous.extensions().await.unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err:?}");

    // Nothing listening: a transport error.
    let gone = Client::new("http://127.0.0.1:9", reqwest::Client::new());
    assert!(matches!(
        gone.challenge().await,
        Err(ClientError::Transport(_))
    ));
}
