//! The accept loop of the mTLS listener: allow-list, handshake, then HTTP/1.1
//! (with WebSocket upgrades) into the axum router.
//!
//! Every refusal is silent. A denied address is closed before the TLS
//! handshake, a refused certificate after it without an alert; an address
//! removed from the allow-list while its connection is open loses the
//! connection at its next request, again without an answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::allowlist::SharedAllowlist;
use crate::tls::{fingerprint, ClientIdentity, SilentOnReject, TlsContext};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Who is on the other end of a request; put into every request's
/// extensions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub client: ClientIdentity,
}

/// Refusal inside an established connection: hyper closes it unanswered.
#[derive(Debug, thiserror::Error)]
#[error("address no longer allowed")]
struct Denied;

/// Accepts connections until the task is dropped.
pub async fn accept_loop(
    listener: TcpListener,
    allowlist: SharedAllowlist,
    tls: TlsContext,
    app: Router,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !allowlist.allows(peer.ip()) {
            tracing::info!(%peer, "address not on the allow-list; dropped");
            drop(tcp);
            continue;
        }
        let (allowlist, tls, app) = (allowlist.clone(), tls.clone(), app.clone());
        tokio::spawn(async move { serve_connection(tcp, peer, allowlist, tls, app).await });
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    allowlist: SharedAllowlist,
    tls: TlsContext,
    app: Router,
) {
    let rejected = Arc::new(AtomicBool::new(false));
    let config = match tls.config_for_connection(rejected.clone()) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "TLS set-up failed");
            return;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let stream = SilentOnReject::new(tcp, rejected.clone());
    let tls_stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    if rejected.load(Ordering::SeqCst) {
        return;
    }
    let Some(cert) = tls_stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    else {
        tracing::info!(%peer, "no client certificate; dropped");
        return;
    };
    let info = ConnInfo {
        peer,
        client: ClientIdentity {
            fingerprint: fingerprint(cert),
        },
    };
    let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        let app = app.clone();
        let allowed = allowlist.allows(peer.ip());
        req.extensions_mut().insert(info.clone());
        async move {
            if !allowed {
                tracing::info!(%peer, "address removed from the allow-list; connection dropped");
                return Err(Denied);
            }
            app.oneshot(req.map(axum::body::Body::new))
                .await
                .map_err(|never| match never {})
        }
    });
    let result = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(tls_stream), service)
        .with_upgrades()
        .await;
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}
