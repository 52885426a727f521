//! The CA that signs for an issuer, unsealed once and cached.
//!
//! A CA's certificate and key never change under its id, so the unsealed
//! [`Authority`] and its chain are cached per id; what can change (the
//! issuer's choice of CA, the CA's state) is read from the database on
//! every issuance.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use attest_certs_store::authorities::{CaRecord, CA_ACTIVE};
use attest_certs_store::records;
use attest_ext::MasterKey;
use attest_pki::authority::Authority;

use crate::error::{CertsError, CertsResult};
use crate::sealing::SealedText;
use crate::state::CertsState;

/// A CA ready to sign: its authority and the chain above it.
pub struct SigningCa {
    /// The CA's id.
    pub ca_id: String,
    /// Certificate and key.
    pub authority: Authority,
    /// DER of the CA certificate and every CA above it, nearest first.
    pub chain_der: Vec<Vec<u8>>,
    /// The same chain as PEM, nearest first.
    pub chain_pem: String,
}

/// Unsealed CAs by id.
#[derive(Clone, Default)]
pub struct AuthorityCache(Arc<RwLock<HashMap<String, Arc<SigningCa>>>>);

impl AuthorityCache {
    fn get(&self, id: &str) -> Option<Arc<SigningCa>> {
        self.0.read().ok().and_then(|m| m.get(id).cloned())
    }

    fn put(&self, ca: Arc<SigningCa>) {
        if let Ok(mut m) = self.0.write() {
            m.insert(ca.ca_id.clone(), ca);
        }
    }
}

/// Seals a CA key for storage.
pub fn seal_key(master: &MasterKey, pkcs8_der: &[u8]) -> CertsResult<SealedText> {
    SealedText::seal(master, pkcs8_der).map_err(|e| CertsError::Internal(format!("CA key: {e}")))
}

fn unseal(master: &MasterKey, ca: &CaRecord) -> CertsResult<Authority> {
    let sealed = SealedText {
        ciphertext: ca.key_ciphertext.clone(),
        nonce: ca.key_nonce.clone(),
        tag: ca.key_tag.clone(),
    };
    let key = sealed.open(master).map_err(|e| {
        CertsError::Internal(format!(
            "CA {} (sealed by {}): {e}",
            ca.id, ca.key_sealed_by
        ))
    })?;
    let cert_der = pem_to_der(&ca.cert_pem)?;
    Authority::from_parts(&cert_der, &key)
        .map_err(|e| CertsError::Internal(format!("CA {}: {e}", ca.id)))
}

/// The DER of a stored certificate PEM (a corrupt one is the server's
/// problem, not the client's).
pub fn pem_to_der(pem: &str) -> CertsResult<Vec<u8>> {
    attest_pki::certificate_der(pem)
        .map_err(|e| CertsError::Internal(format!("stored certificate: {e}")))
}

/// The CA `ca_id`, unsealed (from the cache when possible), with its
/// chain. Refuses a CA that is not active.
pub async fn signing_ca(state: &CertsState, ca_id: &str) -> CertsResult<Arc<SigningCa>> {
    let refuse = |ca_state: &str| {
        CertsError::Conflict(format!("CA {ca_id} is {ca_state}: it issues nothing new"))
    };
    // The hot path: material cached, only the state read (it can change).
    if let Some(ca) = state.authorities.get(ca_id) {
        let ca_state = attest_certs_store::authorities::state_of(&state.store, ca_id)
            .await?
            .ok_or_else(|| CertsError::not_found("CA"))?;
        if ca_state != CA_ACTIVE {
            return Err(refuse(&ca_state));
        }
        return Ok(ca);
    }
    let record = records::get::<CaRecord>(&state.store, ca_id)
        .await?
        .ok_or_else(|| CertsError::not_found("CA"))?;
    if record.state != CA_ACTIVE {
        return Err(refuse(&record.state));
    }
    let authority = unseal(&state.master_key, &record)?;
    let mut chain_pem = record.cert_pem.trim_end().to_owned();
    chain_pem.push('\n');
    let mut chain_der = vec![authority.cert_der().to_vec()];
    let mut parent = record.parent_ca_id.clone();
    // Bounded walk: a cycle would be a corrupt database.
    for _ in 0..32 {
        let Some(id) = parent else { break };
        let up = records::get::<CaRecord>(&state.store, &id)
            .await?
            .ok_or_else(|| CertsError::Internal(format!("CA {id} is missing from the chain")))?;
        chain_pem.push_str(up.cert_pem.trim_end());
        chain_pem.push('\n');
        chain_der.push(pem_to_der(&up.cert_pem)?);
        parent = up.parent_ca_id;
    }
    let ca = Arc::new(SigningCa {
        ca_id: ca_id.to_owned(),
        authority,
        chain_der,
        chain_pem,
    });
    state.authorities.put(ca.clone());
    Ok(ca)
}
