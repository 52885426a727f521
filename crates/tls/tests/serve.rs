//! The listener with real clients on port 0: HTTPS over HTTP/1.1 and
//! HTTP/2, the three client-certificate modes, reloads, the handshake
//! timeout and the graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use attest_tls::{serve, ClientAuth, ClientAuthMode, TlsError, TlsSource};
use common::{client_config, eventually, get_plain, get_tls, router, Ca, Leaf};
use tokio::io::AsyncReadExt;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

/// A listener serving the test router.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    /// Lets `/slow` answer.
    release: Arc<Notify>,
    /// Notified when a `/slow` request reaches its handler.
    entered: Arc<Notify>,
}

impl Server {
    async fn start(tls: Option<TlsSource>, grace: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (release, entered) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            router(release.clone(), entered.clone()),
            tls,
            async move {
                let _ = rx.await;
            },
            grace,
        ));
        Self {
            addr,
            stop: Some(tx),
            task,
            release,
            entered,
        }
    }

    fn begin_shutdown(&mut self) {
        let _ = self.stop.take().unwrap().send(());
    }
}

/// A CA, a server certificate from it, and the files in a temporary
/// directory.
struct Pki {
    dir: tempfile::TempDir,
    server_ca: Ca,
    server: Leaf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server_ca = Ca::new("test server CA");
        let server = server_ca.server("first");
        let (cert, key) = server.write(dir.path(), "server");
        Self {
            dir,
            server_ca,
            server,
            cert,
            key,
        }
    }

    fn source(&self, client_auth: ClientAuth) -> TlsSource {
        TlsSource::from_files(&self.cert, &self.key, client_auth).unwrap()
    }
}

fn fields(body: &str) -> std::collections::HashMap<&str, &str> {
    body.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

#[tokio::test]
async fn https_over_http1_and_h2_with_the_peer_address() {
    let pki = Pki::new();
    let server = Server::start(Some(pki.source(ClientAuth::off())), Duration::from_secs(5)).await;
    for (offer, want) in [
        (vec![b"h2".as_slice(), b"http/1.1"], b"h2".as_slice()),
        (vec![b"http/1.1".as_slice()], b"http/1.1"),
    ] {
        let answer = get_tls(
            server.addr,
            client_config(&pki.server_ca.pem, None, &offer),
            "/whoami",
        )
        .await
        .unwrap();
        assert_eq!(answer.alpn.as_deref(), Some(want));
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, "peer=127.0.0.1 leaf=none chain=0");
        assert_eq!(answer.server_leaf, pki.server.fingerprint());
    }
    // Plain HTTP on a TLS port is refused.
    assert!(get_plain(server.addr, "/whoami").await.is_err());
}

#[tokio::test]
async fn plain_http_without_a_tls_source() {
    let server = Server::start(None, Duration::from_secs(5)).await;
    let (status, body) = get_plain(server.addr, "/whoami").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "peer=127.0.0.1 leaf=none chain=0");
}

#[tokio::test]
async fn required_client_certificates_must_verify() {
    let pki = Pki::new();
    let clients = Ca::new("test client CA");
    let rogue = Ca::new("rogue CA");
    let ca_file = clients.write(pki.dir.path(), "clients");
    let source = pki.source(ClientAuth::required(vec![ca_file]));
    assert_eq!(source.client_auth_mode(), ClientAuthMode::Required);
    let server = Server::start(Some(source), Duration::from_secs(5)).await;
    let h2 = [b"h2".as_slice()];

    let alice = clients.client("alice");
    let answer = get_tls(
        server.addr,
        client_config(&pki.server_ca.pem, Some(&alice), &h2),
        "/whoami",
    )
    .await
    .unwrap();
    let seen = fields(&answer.body);
    assert_eq!(seen["leaf"], alice.fingerprint(), "{}", answer.body);
    assert_eq!(seen["chain"], "1");

    let none = get_tls(
        server.addr,
        client_config(&pki.server_ca.pem, None, &h2),
        "/whoami",
    )
    .await;
    let err = none.unwrap_err();
    assert!(err.contains("CertificateRequired"), "{err}");

    let intruder = rogue.client("alice");
    let err = get_tls(
        server.addr,
        client_config(&pki.server_ca.pem, Some(&intruder), &h2),
        "/whoami",
    )
    .await
    .unwrap_err();
    assert!(err.contains("UnknownCA"), "{err}");
}

#[tokio::test]
async fn optional_client_certificates_are_checked_when_presented() {
    let pki = Pki::new();
    let clients = Ca::new("test client CA");
    let ca_file = clients.write(pki.dir.path(), "clients");
    let server = Server::start(
        Some(pki.source(ClientAuth::optional(vec![ca_file]))),
        Duration::from_secs(5),
    )
    .await;
    let h1 = [b"http/1.1".as_slice()];

    let anonymous = get_tls(
        server.addr,
        client_config(&pki.server_ca.pem, None, &h1),
        "/whoami",
    )
    .await
    .unwrap();
    assert_eq!(fields(&anonymous.body)["leaf"], "none");

    let bob = clients.client("bob");
    let answer = get_tls(
        server.addr,
        client_config(&pki.server_ca.pem, Some(&bob), &h1),
        "/whoami",
    )
    .await
    .unwrap();
    assert_eq!(fields(&answer.body)["leaf"], bob.fingerprint());

    // A certificate that does not verify ends the handshake even though
    // none at all would have been accepted.
    let forged = Ca::new("test client CA").client("bob");
    let err = get_tls(
        server.addr,
        client_config(&pki.server_ca.pem, Some(&forged), &h1),
        "/whoami",
    )
    .await
    .unwrap_err();
    assert!(err.contains("DecryptError"), "{err}");
}

#[tokio::test]
async fn reload_swaps_the_certificate_and_keeps_it_when_the_files_are_bad() {
    let pki = Pki::new();
    let source = pki.source(ClientAuth::off());
    let first = source.served_certificate();
    assert_eq!(first.sha256_fingerprint, pki.server.fingerprint());
    assert_eq!(first.subject, "CN=first");
    let server = Server::start(Some(source.clone()), Duration::from_secs(5)).await;
    let (addr, config) = (
        server.addr,
        client_config(&pki.server_ca.pem, None, &[b"http/1.1".as_slice()]),
    );
    let served = || {
        let config = config.clone();
        async move { get_tls(addr, config, "/whoami").await.unwrap().server_leaf }
    };

    let second = pki.server_ca.server("second");
    second.write(pki.dir.path(), "server");
    assert_eq!(served().await, pki.server.fingerprint(), "no reload yet");
    source.reload().unwrap();
    assert_eq!(source.served_certificate().subject, "CN=second");
    assert_eq!(served().await, second.fingerprint());

    // A key that does not match: refused, the second certificate stays.
    let third = pki.server_ca.server("third");
    std::fs::write(&pki.cert, &third.cert_pem).unwrap();
    let err = source.reload().unwrap_err();
    assert!(matches!(err, TlsError::Key { .. }), "{err}");
    assert!(!err.to_string().contains("PRIVATE KEY-----"), "{err}");
    std::fs::write(&pki.cert, "not a certificate").unwrap();
    assert!(matches!(
        source.reload().unwrap_err(),
        TlsError::Certificate { .. }
    ));
    assert_eq!(served().await, second.fingerprint());
    assert_eq!(source.served_certificate().subject, "CN=second");
}

#[tokio::test]
async fn changed_files_are_picked_up_by_the_watcher() {
    let pki = Pki::new();
    let clients = Ca::new("test client CA");
    let ca_file = clients.write(pki.dir.path(), "clients");
    let source = pki.source(ClientAuth::optional(vec![ca_file.clone()]));
    let _watch = source.spawn_reload_on_change(Duration::from_millis(100));
    let server = Server::start(Some(source.clone()), Duration::from_secs(5)).await;
    let addr = server.addr;
    let offer = [b"h2".as_slice()];

    let renewed = pki.server_ca.server("renewed");
    renewed.write(pki.dir.path(), "server");
    let want = renewed.fingerprint();
    let anonymous = client_config(&pki.server_ca.pem, None, &offer);
    eventually(Duration::from_secs(10), "the renewed certificate", || {
        let (config, want) = (anonymous.clone(), want.clone());
        async move {
            let answer = get_tls(addr, config, "/whoami").await.ok()?;
            (answer.server_leaf == want).then_some(())
        }
    })
    .await;

    // The client CA bundle is watched too: a new CA's clients get in.
    let next = Ca::new("next client CA");
    let carol = next.client("carol");
    let as_carol = client_config(&pki.server_ca.pem, Some(&carol), &offer);
    let want = carol.fingerprint();
    std::fs::write(&ca_file, format!("{}{}", clients.pem, next.pem)).unwrap();
    eventually(Duration::from_secs(10), "the new client CA", || {
        let (config, want) = (as_carol.clone(), want.clone());
        async move {
            let answer = get_tls(addr, config, "/whoami").await.ok()?;
            (fields(&answer.body)["leaf"] == want).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn a_certificate_given_in_memory_is_served() {
    let ca = Ca::new("in-memory CA");
    let leaf = ca.server("memory");
    let source = TlsSource::from_pem(
        leaf.cert_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        ClientAuth::off(),
    )
    .unwrap();
    source.reload().unwrap();
    let server = Server::start(Some(source), Duration::from_secs(5)).await;
    let answer = get_tls(
        server.addr,
        client_config(&ca.pem, None, &[b"http/1.1".as_slice()]),
        "/whoami",
    )
    .await
    .unwrap();
    assert_eq!(answer.server_leaf, leaf.fingerprint());

    let other = ca.server("other");
    let err = TlsSource::from_pem(
        leaf.cert_pem.as_bytes(),
        other.key_pem.as_bytes(),
        ClientAuth::off(),
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::Key { .. }), "{err}");
    let err = TlsSource::from_pem(
        leaf.cert_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        ClientAuth::required(vec![]),
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::ClientCa { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let pki = Pki::new();
    let server = Server::start(Some(pki.source(ClientAuth::off())), Duration::from_secs(5)).await;
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 16];
    // The paused clock jumps to the server's deadline while both sides wait.
    let read = tokio::time::timeout(Duration::from_secs(60), silent.read(&mut buf))
        .await
        .expect("the server kept a silent client past its handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= attest_tls::HANDSHAKE_TIMEOUT && waited < Duration::from_secs(60),
        "{waited:?}"
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_refuses_new_ones() {
    let pki = Pki::new();
    let mut server =
        Server::start(Some(pki.source(ClientAuth::off())), Duration::from_secs(30)).await;
    let config = client_config(&pki.server_ca.pem, None, &[b"h2".as_slice()]);
    let addr = server.addr;
    let slow = tokio::spawn(get_tls(addr, config, "/slow"));
    server.entered.notified().await;
    server.begin_shutdown();
    eventually(
        Duration::from_secs(10),
        "the listener to close",
        || async move {
            tokio::net::TcpStream::connect(addr)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    assert!(!server.task.is_finished(), "a request is still in flight");
    server.release.notify_one();
    let answer = slow.await.unwrap().unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "done"));
    tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn requests_still_running_after_the_grace_period_are_dropped() {
    let pki = Pki::new();
    let mut server = Server::start(
        Some(pki.source(ClientAuth::off())),
        Duration::from_millis(300),
    )
    .await;
    let config = client_config(&pki.server_ca.pem, None, &[b"http/1.1".as_slice()]);
    let slow = tokio::spawn(get_tls(server.addr, config, "/slow"));
    server.entered.notified().await;
    server.begin_shutdown();
    tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("serve outlived its grace period")
        .unwrap()
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .unwrap()
        .unwrap();
    assert!(outcome.is_err(), "{outcome:?}");
}
