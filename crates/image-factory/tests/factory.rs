#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The client against the loopback fake (and a few hand-made servers), over
//! real HTTP on 127.0.0.1.

use std::time::{Duration, Instant};

use attest_image_factory::testing::FakeFactory;
use attest_image_factory::{Customization, FactoryClient, FactoryError};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

const CONFIG_ARG: &str = "talos.config=https://attest.example/api/v1/config?mac=${mac}";

fn client(url: &str) -> FactoryClient {
    FactoryClient::new(url, Duration::from_secs(5)).unwrap()
}

fn customization(arg: &str) -> Customization {
    Customization {
        extra_kernel_args: vec![arg.to_owned()],
        system_extensions: vec!["siderolabs/iscsi-tools".into()],
    }
}

fn is_hex64(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Serves `router` on an ephemeral loopback port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn create_gives_stable_content_derived_ids() {
    let fake = FakeFactory::start().await;
    let c = client(&fake.url());

    let id1 = c
        .create_schematic(&customization(CONFIG_ARG))
        .await
        .unwrap();
    let id2 = c
        .create_schematic(&customization(CONFIG_ARG))
        .await
        .unwrap();
    let other = c
        .create_schematic(&customization("talos.config=https://elsewhere/"))
        .await
        .unwrap();

    assert!(is_hex64(&id1), "{id1}");
    assert_eq!(id1, id2);
    assert_ne!(id1, other);

    let requests = fake.requests();
    assert_eq!(fake.request_count(), 3);
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].extra_kernel_args, vec![CONFIG_ARG.to_owned()]);
    assert_eq!(
        requests[0].system_extensions,
        vec!["siderolabs/iscsi-tools".to_owned()]
    );
    fake.stop().await;
}

#[tokio::test]
async fn stored_schematic_round_trips_through_get() {
    let fake = FakeFactory::start().await;
    let c = client(&format!("{}/", fake.url()));
    let wanted = customization(CONFIG_ARG);
    let id = c.create_schematic(&wanted).await.unwrap();

    let http = reqwest::Client::new();
    let got = http
        .get(format!("{}/schematics/{id}", fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let yaml = got.text().await.unwrap();
    assert_eq!(yaml, wanted.to_yaml().unwrap());
    assert_eq!(Customization::from_yaml(&yaml).unwrap(), wanted);

    let missing = http
        .get(format!("{}/schematics/{}", fake.url(), "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn fake_rejects_bad_yaml_and_unknown_fields_with_400() {
    let fake = FakeFactory::start().await;
    let http = reqwest::Client::new();
    for body in [
        "customization: [unclosed\n",
        "customization:\n  extraKernelArgs: [a]\n  secureboot: {}\n",
    ] {
        let answer = http
            .post(format!("{}/schematics", fake.url()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{body}");
        assert!(!answer.text().await.unwrap().is_empty());
    }
    assert_eq!(fake.request_count(), 2);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn server_error_is_status_and_not_retried() {
    let fake = FakeFactory::start().await;
    fake.set_failure(Some(500));
    let err = client(&fake.url())
        .create_schematic(&customization(CONFIG_ARG))
        .await
        .unwrap_err();
    match &err {
        FactoryError::Status { status, body } => {
            assert_eq!(*status, 500);
            assert!(body.contains("injected failure"), "{body}");
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("Talos Image Factory answered 500: "),
        "{err}"
    );
    assert_eq!(fake.request_count(), 1, "the client must not retry");

    fake.set_failure(None);
    client(&fake.url())
        .create_schematic(&customization(CONFIG_ARG))
        .await
        .unwrap();
}

#[tokio::test]
async fn status_body_is_cut_to_200_chars() {
    let url = serve(Router::new().route(
        "/schematics",
        post(|| async { (StatusCode::BAD_GATEWAY, "é".repeat(1000)) }),
    ))
    .await;
    match client(&url)
        .create_schematic(&Customization::default())
        .await
    {
        Err(FactoryError::Status { status: 502, body }) => {
            assert_eq!(body.chars().count(), 200);
        }
        other => panic!("expected Status 502, got {other:?}"),
    }
}

#[tokio::test]
async fn slow_factory_times_out_quickly() {
    let fake = FakeFactory::start().await;
    fake.set_delay(Duration::from_secs(2));
    let c = FactoryClient::new(&fake.url(), Duration::from_millis(200)).unwrap();
    let started = Instant::now();
    let err = c
        .create_schematic(&customization(CONFIG_ARG))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, FactoryError::Timeout), "{err:?}");
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = client(&format!("http://127.0.0.1:{port}"))
        .create_schematic(&customization(CONFIG_ARG))
        .await
        .unwrap_err();
    assert!(matches!(err, FactoryError::Unreachable(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("Talos Image Factory unreachable: "),
        "{err}"
    );
}

#[tokio::test]
async fn non_json_or_bad_id_is_invalid_response() {
    let url = serve(
        Router::new()
            .route(
                "/not-json/schematics",
                post(|| async { (StatusCode::CREATED, "<html>hello</html>") }),
            )
            .route(
                "/bad-id/schematics",
                post(|| async { (StatusCode::CREATED, r#"{"id":"../../etc"}"#) }),
            )
            .route(
                "/empty-id/schematics",
                post(|| async { (StatusCode::CREATED, r#"{"id":""}"#) }),
            )
            .route(
                "/long-id/schematics",
                post(|| async {
                    (
                        StatusCode::CREATED,
                        format!(r#"{{"id":"{}"}}"#, "a".repeat(129)),
                    )
                }),
            )
            .route(
                "/ok-200/schematics",
                post(|| async { (StatusCode::OK, r#"{"id":"abc123","extra":1}"#) }),
            ),
    )
    .await;

    for prefix in ["not-json", "bad-id", "empty-id", "long-id"] {
        let err = client(&format!("{url}/{prefix}"))
            .create_schematic(&Customization::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, FactoryError::InvalidResponse(_)),
            "{prefix}: {err:?}"
        );
    }

    let id = client(&format!("{url}/ok-200"))
        .create_schematic(&Customization::default())
        .await
        .unwrap();
    assert_eq!(id, "abc123");
}

#[test]
fn invalid_base_url_is_rejected() {
    for bad in [
        "not a url",
        "ftp://factory.talos.dev",
        "unix:/run/factory.sock",
    ] {
        let err = FactoryClient::new(bad, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, FactoryError::InvalidUrl(_)), "{bad}: {err:?}");
    }
}

#[test]
fn iso_url_format() {
    let c = client("https://factory.talos.dev/");
    assert_eq!(c.base_url(), "https://factory.talos.dev");
    let id = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
    assert_eq!(
        c.iso_url(id, "v1.9.5"),
        format!("https://factory.talos.dev/image/{id}/v1.9.5/metal-amd64.iso")
    );
}

#[test]
fn yaml_round_trip() {
    let c = Customization {
        extra_kernel_args: vec![CONFIG_ARG.into(), "console=ttyS0,115200".into()],
        system_extensions: vec![
            "siderolabs/intel-ucode".into(),
            "siderolabs/amd-ucode".into(),
        ],
    };
    let yaml = c.to_yaml().unwrap();
    assert!(yaml.contains("extraKernelArgs"), "{yaml}");
    assert!(yaml.contains("officialExtensions"), "{yaml}");
    assert_eq!(Customization::from_yaml(&yaml).unwrap(), c);
}
