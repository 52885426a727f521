//! Issuers and the CA hierarchy behind them.
//!
//! A `GenericCA` issuer is a local CA: creating one generates (or
//! imports) its root, whose key is sealed with the server's master key;
//! intermediates of any depth are added under it ([`hierarchy`]), and the
//! issuer's `issuing_ca_id` names the CA that signs certificates
//! ([`signing`]). Other issuer types of the seed are stored and answer
//! "connector not available" when used, until their connectors exist.

pub mod hierarchy;
pub mod service;
pub mod signing;

use attest_pki::authority::{KeyAlgorithm, NameConstraints};
use serde_json::Value;

use crate::error::{CertsError, CertsResult};

/// The one issuer type with a connector here.
pub const GENERIC_CA: &str = "GenericCA";

/// Parses the seed's algorithm names (`ECDSA-P256`, `RSA-2048`, …).
pub fn parse_algorithm(name: &str) -> CertsResult<KeyAlgorithm> {
    match name {
        "ECDSA-P256" | "EC-P256" | "P-256" => Ok(KeyAlgorithm::EcP256),
        "ECDSA-P384" | "EC-P384" | "P-384" => Ok(KeyAlgorithm::EcP384),
        "RSA-2048" => Ok(KeyAlgorithm::Rsa2048),
        "RSA-3072" => Ok(KeyAlgorithm::Rsa3072),
        "RSA-4096" => Ok(KeyAlgorithm::Rsa4096),
        other => Err(CertsError::Invalid(format!(
            "unknown key algorithm {other:?} (ECDSA-P256, ECDSA-P384, RSA-2048, RSA-3072, RSA-4096)"
        ))),
    }
}

/// The seed's name of `alg`.
pub fn algorithm_name(alg: KeyAlgorithm) -> &'static str {
    match alg {
        KeyAlgorithm::EcP256 => "ECDSA-P256",
        KeyAlgorithm::EcP384 => "ECDSA-P384",
        KeyAlgorithm::Rsa2048 => "RSA-2048",
        KeyAlgorithm::Rsa3072 => "RSA-3072",
        KeyAlgorithm::Rsa4096 => "RSA-4096",
    }
}

/// Name constraints from their wire form: a list of
/// `{"permitted": [...], "excluded": [...]}` objects (merged), or one
/// such object.
pub fn parse_name_constraints(value: Option<&Value>) -> CertsResult<Option<NameConstraints>> {
    let items: Vec<&Value> = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        Some(_) => {
            return Err(CertsError::Invalid(
                "name_constraints must be a list of {\"permitted\", \"excluded\"} objects".into(),
            ))
        }
    };
    let mut nc = NameConstraints::default();
    for item in items {
        for (key, into) in [
            ("permitted", &mut nc.permitted_dns),
            ("excluded", &mut nc.excluded_dns),
        ] {
            match item.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Array(names)) => {
                    for n in names {
                        let n = n.as_str().ok_or_else(|| {
                            CertsError::Invalid(format!("name_constraints.{key} holds DNS names"))
                        })?;
                        into.push(n.to_owned());
                    }
                }
                Some(_) => {
                    return Err(CertsError::Invalid(format!(
                        "name_constraints.{key} must be a list of DNS names"
                    )))
                }
            }
        }
    }
    Ok((!nc.is_empty()).then_some(nc))
}

/// The wire form of name constraints.
pub fn name_constraints_value(nc: Option<&NameConstraints>) -> Value {
    match nc {
        Some(nc) if !nc.is_empty() => serde_json::json!([{
            "permitted": nc.permitted_dns,
            "excluded": nc.excluded_dns,
        }]),
        _ => serde_json::json!([]),
    }
}

/// A PKI refusal as a 400 naming it; an internal crypto failure as 500.
pub fn pki_error(e: attest_pki::PkiError) -> CertsError {
    match e {
        attest_pki::PkiError::Crypto(m) => CertsError::Internal(format!("crypto: {m}")),
        other => CertsError::Invalid(other.to_string()),
    }
}
