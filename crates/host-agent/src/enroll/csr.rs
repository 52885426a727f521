//! The host's own key and certificate request (our extension to the seed:
//! the key never leaves the host).

use std::net::IpAddr;
use std::str::FromStr;

use der::asn1::{Ia5String, OctetString};
use der::{Encode, EncodePem};
use p256::ecdsa::{DerSignature, SigningKey};
use pkcs8::{EncodePrivateKey, LineEnding};
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;

use super::EnrollError;

/// A freshly generated P-256 key and its CSR.
pub struct HostKey {
    /// PKCS#8 PEM, written with mode 0600 only after approval.
    pub key_pem: zeroize::Zeroizing<String>,
    /// DER SubjectPublicKeyInfo, to match the issued certificate.
    pub spki_der: Vec<u8>,
    /// PEM PKCS#10 request: subject `CN=<fqdn>`, SANs the name and address.
    pub csr_pem: String,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey").finish_non_exhaustive()
    }
}

/// Generates the key and the request. `fqdn` must be a valid host name.
pub fn generate(fqdn: &str, ip: IpAddr) -> Result<HostKey, EnrollError> {
    let err = |e: &dyn std::fmt::Display| EnrollError::Usage(format!("certificate request: {e}"));
    let key = SigningKey::random(&mut rand_core::OsRng);
    let subject = Name::from_str(&format!("CN={fqdn}")).map_err(|e| err(&e))?;
    let mut builder = RequestBuilder::new(subject, &key).map_err(|e| err(&e))?;
    let ip_bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    builder
        .add_extension(&SubjectAltName(vec![
            GeneralName::DnsName(Ia5String::new(fqdn).map_err(|e| err(&e))?),
            GeneralName::IpAddress(OctetString::new(ip_bytes).map_err(|e| err(&e))?),
        ]))
        .map_err(|e| err(&e))?;
    let req = builder.build::<DerSignature>().map_err(|e| err(&e))?;
    let csr_pem = req.to_pem(LineEnding::LF).map_err(|e| err(&e))?;
    let spki_der = req.info.public_key.to_der().map_err(|e| err(&e))?;
    let key_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(&e))?;
    Ok(HostKey {
        key_pem: zeroize::Zeroizing::new(key_pem.to_string()),
        spki_der,
        csr_pem,
    })
}
