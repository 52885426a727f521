//! Test PKI made in process (P-256 CAs and leaves), a router that reports
//! what a request carries, and a real client: rustls, then hyper's HTTP/1
//! or HTTP/2 client as ALPN decided.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use attest_tls::PeerCertificates;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use der::asn1::{Ia5String, OctetString};
use der::pem::LineEnding;
use der::EncodePem;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use p256::ecdsa::{DerSignature, SigningKey};
use pkcs8::EncodePrivateKey;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::Digest;
use spki::{EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

/// A CA that signs leaves.
pub struct Ca {
    key: SigningKey,
    name: Name,
    pub pem: String,
}

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Leaf {
    /// SHA-256 of the certificate's DER, hex.
    pub fn fingerprint(&self) -> String {
        let der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap();
        hex::encode(sha2::Sha256::digest(der.as_ref()))
    }

    /// Writes `<name>.pem` and `<name>.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

fn spki(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    let der = key.verifying_key().to_public_key_der().unwrap();
    SubjectPublicKeyInfoOwned::try_from(der.as_bytes()).unwrap()
}

fn serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::new(&bytes).unwrap()
}

fn day() -> Validity {
    Validity::from_now(Duration::from_secs(86_400)).unwrap()
}

impl Ca {
    pub fn new(cn: &str) -> Self {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let name = Name::from_str(&format!("CN={cn}")).unwrap();
        let cert = CertificateBuilder::new(
            Profile::Root,
            serial(),
            day(),
            name.clone(),
            spki(&key),
            &key,
        )
        .unwrap()
        .build::<DerSignature>()
        .unwrap();
        Self {
            pem: cert.to_pem(LineEnding::LF).unwrap(),
            key,
            name,
        }
    }

    fn leaf(
        &self,
        cn: &str,
        eku: const_oid::ObjectIdentifier,
        san: Option<SubjectAltName>,
    ) -> Leaf {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let mut builder = CertificateBuilder::new(
            Profile::Leaf {
                issuer: self.name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
                include_subject_key_identifier: true,
            },
            serial(),
            day(),
            Name::from_str(&format!("CN={cn}")).unwrap(),
            spki(&key),
            &self.key,
        )
        .unwrap();
        builder.add_extension(&ExtendedKeyUsage(vec![eku])).unwrap();
        if let Some(san) = san {
            builder.add_extension(&san).unwrap();
        }
        let cert = builder.build::<DerSignature>().unwrap();
        Leaf {
            cert_pem: cert.to_pem(LineEnding::LF).unwrap(),
            key_pem: key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server(&self, cn: &str) -> Leaf {
        let san = SubjectAltName(vec![
            GeneralName::IpAddress(OctetString::new([127u8, 0, 0, 1]).unwrap()),
            GeneralName::DnsName(Ia5String::new("localhost").unwrap()),
        ]);
        self.leaf(cn, const_oid::db::rfc5280::ID_KP_SERVER_AUTH, Some(san))
    }

    /// A client certificate.
    pub fn client(&self, cn: &str) -> Leaf {
        self.leaf(cn, const_oid::db::rfc5280::ID_KP_CLIENT_AUTH, None)
    }

    /// Writes the CA certificate to `dir/<name>.pem`.
    pub fn write(&self, dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

/// Answers `/whoami` with `peer=<ip> leaf=<sha256|none> chain=<n>`, and
/// `/slow`, which notifies `entered` on arrival, once `release` is
/// notified.
pub fn router(release: Arc<tokio::sync::Notify>, entered: Arc<tokio::sync::Notify>) -> Router {
    Router::new()
        .route(
            "/whoami",
            get(
                |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                 certs: Option<Extension<PeerCertificates>>| async move {
                    let (leaf, chain) = match certs {
                        Some(Extension(certs)) => (
                            hex::encode(sha2::Sha256::digest(certs.leaf().unwrap())),
                            certs.0.len(),
                        ),
                        None => ("none".to_owned(), 0),
                    };
                    format!("peer={} leaf={leaf} chain={chain}", peer.ip())
                },
            ),
        )
        .route(
            "/slow",
            get(move || async move {
                entered.notify_one();
                release.notified().await;
                "done"
            }),
        )
}

/// What a client saw.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// The ALPN protocol negotiated.
    pub alpn: Option<Vec<u8>>,
    /// SHA-256 of the certificate the server presented.
    pub server_leaf: String,
}

/// A TLS client trusting `ca_pem`, presenting `identity` if given,
/// offering `alpn`.
pub fn client_config(
    ca_pem: &str,
    identity: Option<&Leaf>,
    alpn: &[&[u8]],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => {
            let chain = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// `GET path` over TLS with `config`; any failure (handshake, a refused
/// certificate reported at the first read, HTTP) as a message.
pub async fn get_tls(
    addr: SocketAddr,
    config: rustls::ClientConfig,
    path: &str,
) -> Result<Answer, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (_, conn) = tls.get_ref();
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let server_leaf = hex::encode(sha2::Sha256::digest(
        conn.peer_certificates().unwrap()[0].as_ref(),
    ));
    let (status, body) = request(TokioIo::new(tls), alpn.as_deref() == Some(b"h2"), path).await?;
    Ok(Answer {
        status,
        body,
        alpn,
        server_leaf,
    })
}

/// `GET path` in plain HTTP/1.1.
pub async fn get_plain(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    request(TokioIo::new(tcp), false, path).await
}

async fn request<I>(io: I, h2: bool, path: &str) -> Result<(u16, String), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let req = axum::http::Request::get(path)
        .header("host", "127.0.0.1")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(conn);
        sender.send_request(req).await
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("http1 handshake: {e}"))?;
        tokio::spawn(conn);
        sender.send_request(req).await
    }
    .map_err(|e| format!("request: {}", chain(&e)))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// An error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Polls `probe` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
