//! Exporting a certificate's newest version: PEM (leaf, chain, both) and
//! PKCS#12 holding the chain only (private keys are never exported).

use attest_certs_domain::permissions as p;
use attest_certs_store::certificates as repo;
use attest_pki::authority::pkcs12_certs_only;
use attest_proto::certs::certificates::PemExport;

use super::load;
use crate::auth::Caller;
use crate::error::{CertsError, CertsResult};
use crate::issuers::pki_error;
use crate::issuers::signing::pem_to_der;
use crate::state::CertsState;

/// The PEM blocks of `pem`, in order.
fn blocks(pem: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in pem.lines() {
        if line.starts_with("-----BEGIN ") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

async fn chain(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<Vec<String>> {
    load(state, caller, &p::CERT_EXPORT, id).await?;
    let version = repo::latest_version(&state.store, id)
        .await?
        .ok_or_else(|| {
            CertsError::NotFound(format!("certificate {id} has no issued version yet"))
        })?;
    Ok(blocks(&version.version.pem_chain))
}

/// The leaf, the chain above it, and both.
pub async fn pem(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<PemExport> {
    let blocks = chain(state, caller, id).await?;
    let cert_pem = blocks.first().cloned().unwrap_or_default();
    let chain_pem: String = blocks.iter().skip(1).map(String::as_str).collect();
    Ok(PemExport {
        full_pem: format!("{cert_pem}{chain_pem}"),
        cert_pem,
        chain_pem,
    })
}

/// A PKCS#12 file with the leaf and its chain, MAC'd with `password`.
pub async fn pkcs12(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    password: &str,
) -> CertsResult<Vec<u8>> {
    let blocks = chain(state, caller, id).await?;
    let ders = blocks
        .iter()
        .map(|b| pem_to_der(b))
        .collect::<CertsResult<Vec<_>>>()?;
    pkcs12_certs_only(&ders, password).map_err(pki_error)
}
