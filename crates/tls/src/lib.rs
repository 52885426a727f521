//! Native TLS for the HTTP listeners.
//!
//! [`serve`] serves an [`axum::Router`] on a [`tokio::net::TcpListener`],
//! over TLS when given a [`TlsSource`] and in plain HTTP otherwise, with
//! one shutdown behaviour for both: stop accepting, let in-flight requests
//! finish, drop what is left after the grace period.
//!
//! A [`TlsSource`] holds the certificate the listener serves (PEM files,
//! re-read on [`TlsSource::reload`], on SIGHUP and when the files change; or
//! PEM given in memory) and how clients are asked for certificates
//! ([`ClientAuth`]: off, optional, required, against CA bundle files).
//! Every connection takes the configuration current when it arrives, so a
//! reload never disturbs connections already open, and a reload that fails
//! keeps the certificate served before.
//!
//! A client certificate that verifies reaches every request of its
//! connection as [`PeerCertificates`] in the request's extensions (next to
//! axum's `ConnectInfo<SocketAddr>`); one that does not verify ends the
//! handshake. What the certificate is allowed to do is for the application
//! to decide: this crate only says the chain leads to a configured CA.
//!
//! Protocols: TLS 1.2 and 1.3 on rustls with the `ring` provider (the one
//! the workspace's other rustls users use), ALPN `h2` and `http/1.1`.

mod serve;
mod source;

use std::sync::Arc;

pub use rustls::pki_types::CertificateDer;
pub use serve::{serve, HANDSHAKE_TIMEOUT, HEADER_READ_TIMEOUT};
pub use source::{
    CertificateInfo, ClientAuth, ClientAuthMode, ReloadTask, TlsSource, DEFAULT_RELOAD_INTERVAL,
};

/// The client certificate chain the TLS handshake verified, leaf first,
/// put into each request's extensions. Absent when the client presented
/// none (client authentication `off` or `optional`) and on plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

impl PeerCertificates {
    /// The client's own certificate (DER).
    pub fn leaf(&self) -> Option<&[u8]> {
        self.0.first().map(|c| c.as_ref())
    }
}

/// Why TLS material could not be loaded or the listener set up. Messages
/// name the file and the problem, never key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The server certificate chain is missing, unreadable or malformed.
    #[error("TLS certificate {origin}: {message}")]
    Certificate {
        /// The file, or `in-memory PEM`.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The private key is missing, unreadable, malformed or does not match
    /// the certificate.
    #[error("TLS private key {origin}: {message}")]
    Key {
        /// The file, or `in-memory PEM`.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A client CA bundle is missing, unreadable or holds no usable CA.
    #[error("TLS client CA {origin}: {message}")]
    ClientCa {
        /// The file.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS set-up: {0}")]
    Setup(String),
    /// The SIGHUP handler could not be installed.
    #[error("cannot listen for SIGHUP: {0}")]
    Signal(String),
}
