//! Keys sealed with the server's master key, kept as text: the CA keys
//! of the hierarchy (three database columns) and the listener's own keys
//! (a JSON file) use the same form.

use attest_ext::{MasterKey, Sealed};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// AES-256-GCM ciphertext, nonce and tag, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedText {
    pub ciphertext: String,
    pub nonce: String,
    pub tag: String,
}

impl SealedText {
    /// Seals `plaintext` under `master`.
    pub fn seal(master: &MasterKey, plaintext: &[u8]) -> Result<Self, String> {
        let s = master
            .key
            .encrypt(plaintext)
            .map_err(|e| format!("seal: {e}"))?;
        Ok(Self {
            ciphertext: B64.encode(s.ciphertext),
            nonce: B64.encode(s.nonce),
            tag: B64.encode(s.tag),
        })
    }

    /// Opens it with `master`; the error says why without any key
    /// material.
    pub fn open(&self, master: &MasterKey) -> Result<Zeroizing<Vec<u8>>, String> {
        let d = |s: &str| {
            B64.decode(s)
                .map_err(|_| "sealed key is not base64".to_owned())
        };
        let sealed = Sealed {
            ciphertext: d(&self.ciphertext)?,
            nonce: d(&self.nonce)?,
            tag: d(&self.tag)?,
        };
        master
            .key
            .decrypt(&sealed)
            .map_err(|_| "the key does not open with the configured master key".to_owned())
    }
}
