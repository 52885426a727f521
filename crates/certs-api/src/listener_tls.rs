//! The listener's own server certificate: on first start a small CA is
//! created under `<data_dir>/certs-tls/` (its certificate `ca.pem` is
//! what clients trust, like certctl's demo CA), and a server certificate
//! for the configured names is issued from it; later starts reuse both,
//! re-issuing the server certificate when the names change or it has
//! under 30 days left. Private keys are sealed with the server's master
//! key; files are owner-only.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use attest_ext::MasterKey;
use attest_pki::authority::{
    generate_key_pair, Authority, CaRequest, Eku, KeyAlgorithm, LeafRequest,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::sealing::SealedText;

/// Why the listener's certificate could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ListenerTlsError {
    /// Reading or writing under the directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored file is not what this code wrote, or a key does not open
    /// with the master key.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Generating or signing failed.
    #[error("certificate: {0}")]
    Pki(#[from] attest_pki::PkiError),
}

/// What the listener serves.
pub struct ListenerCertificate {
    /// Server certificate and the CA, PEM.
    pub chain_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: Zeroizing<String>,
    /// The CA certificate clients trust.
    pub ca_file: PathBuf,
    /// Whether this start created the CA.
    pub created_ca: bool,
    /// Whether this start issued the server certificate.
    pub issued: bool,
}

/// A sealed key as stored, with the master key that sealed it.
#[derive(Serialize, Deserialize)]
struct SealedKey {
    key_id: String,
    #[serde(flatten)]
    sealed: SealedText,
}

/// The stored server certificate and what it was issued for.
#[derive(Serialize, Deserialize)]
struct ServerRecord {
    names: Vec<String>,
    not_after: DateTime<Utc>,
    chain_pem: String,
    key: SealedKey,
}

/// The CA certificate clients trust.
pub const CA_FILE: &str = "ca.pem";
/// The CA's sealed key.
pub const CA_KEY_FILE: &str = "ca-key.json";
/// The server certificate, its names and its sealed key.
pub const SERVER_FILE: &str = "server.json";
/// Every file of the directory (what a backup carries).
pub const FILES: &[&str] = &[CA_FILE, CA_KEY_FILE, SERVER_FILE];

/// How long the server certificate is valid.
const SERVER_VALIDITY_DAYS: i64 = 397;
/// Re-issued at start when less than this is left.
const RENEW_BEFORE_DAYS: i64 = 30;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ListenerTlsError + '_ {
    move |source| ListenerTlsError::Io {
        path: path.to_owned(),
        source,
    }
}

fn corrupt(path: &Path, message: impl Into<String>) -> ListenerTlsError {
    ListenerTlsError::Corrupt {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn seal(master: &MasterKey, plaintext: &[u8], path: &Path) -> Result<SealedKey, ListenerTlsError> {
    Ok(SealedKey {
        key_id: master.key_id.to_owned(),
        sealed: SealedText::seal(master, plaintext).map_err(|e| corrupt(path, e))?,
    })
}

fn unseal(
    master: &MasterKey,
    k: &SealedKey,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, ListenerTlsError> {
    k.sealed
        .open(master)
        .map_err(|e| corrupt(path, format!("{e} (sealed by {})", k.key_id)))
}

/// Writes `bytes` to `path` (owner-only), replacing it atomically.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ListenerTlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, ListenerTlsError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt(path, e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

fn to_json<T: Serialize>(value: &T, path: &Path) -> Result<Vec<u8>, ListenerTlsError> {
    serde_json::to_vec_pretty(value).map_err(|e| corrupt(path, e.to_string()))
}

/// The CA: loaded, or created on first start.
fn ca(
    dir: &Path,
    master: &MasterKey,
    now: DateTime<Utc>,
) -> Result<(Authority, bool), ListenerTlsError> {
    let cert_path = dir.join(CA_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    if let Some(key) = read_json::<SealedKey>(&key_path)? {
        let pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        let der =
            attest_pki::certificate_der(&pem).map_err(|e| corrupt(&cert_path, e.to_string()))?;
        let pkcs8 = unseal(master, &key, &key_path)?;
        return Ok((Authority::from_parts(&der, &pkcs8)?, false));
    }
    let ca = Authority::generate_root(
        &CaRequest {
            common_name: "Certificate Lifecycle Listener CA".into(),
            organization: Some("attestation".into()),
            key_algorithm: KeyAlgorithm::EcP256,
            validity: Duration::days(3650),
            path_len: Some(0),
            name_constraints: None,
        },
        now,
    )?;
    let key = seal(master, &ca.key_pkcs8_der()?, &key_path)?;
    write_private(&key_path, &to_json(&key, &key_path)?)?;
    write_private(&cert_path, ca.cert_pem().as_bytes())?;
    Ok((ca, true))
}

/// The listener's certificate for `names`, from `dir` (created 0700).
pub fn prepare(
    dir: &Path,
    names: &[String],
    master: &MasterKey,
    now: DateTime<Utc>,
) -> Result<ListenerCertificate, ListenerTlsError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let (ca, created_ca) = ca(dir, master, now)?;
    let server_path = dir.join(SERVER_FILE);
    let ca_file = dir.join(CA_FILE);
    if let Some(stored) = read_json::<ServerRecord>(&server_path)? {
        if !created_ca
            && stored.names == names
            && stored.not_after - now > Duration::days(RENEW_BEFORE_DAYS)
        {
            let key = unseal(master, &stored.key, &server_path)?;
            let key_pem = String::from_utf8(key.to_vec())
                .map_err(|_| corrupt(&server_path, "key is not PEM"))?;
            return Ok(ListenerCertificate {
                chain_pem: stored.chain_pem,
                key_pem: Zeroizing::new(key_pem),
                ca_file,
                created_ca,
                issued: false,
            });
        }
    }
    let (spki, key_pem) = generate_key_pair(KeyAlgorithm::EcP256)?;
    let (ips, dns): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| n.parse::<IpAddr>().is_ok());
    let leaf = ca.issue_leaf(
        &LeafRequest {
            common_name: names.first().cloned().unwrap_or_else(|| "localhost".into()),
            dns_names: dns.into_iter().cloned().collect(),
            ip_addresses: ips.iter().filter_map(|s| s.parse().ok()).collect(),
            public_key_der: spki,
            validity: Duration::days(SERVER_VALIDITY_DAYS),
            extended_key_usages: vec![Eku::ServerAuth],
            ..LeafRequest::default()
        },
        now,
    )?;
    let chain_pem = format!("{}{}", leaf.cert_pem, ca.cert_pem());
    let record = ServerRecord {
        names: names.to_vec(),
        not_after: leaf.not_after,
        chain_pem: chain_pem.clone(),
        key: seal(master, key_pem.as_bytes(), &server_path)?,
    };
    write_private(&server_path, &to_json(&record, &server_path)?)?;
    Ok(ListenerCertificate {
        chain_pem,
        key_pem,
        ca_file,
        created_ca,
        issued: true,
    })
}
