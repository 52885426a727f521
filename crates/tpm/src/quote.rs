//! TPM2_Quote verification: every check real verifiers need (skipping any
//! one of them has been a CVE elsewhere), each failing with its own error.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use crate::ak::AkPublicKey;
use crate::keys::SignatureError;
use crate::wire::alg::{HashAlg, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE};
use crate::wire::{Attest, ClockInfo, PcrSelection, PcrSelectionBank, Signature, WireError};

/// Highest PCR index accepted in `"sha256:N"` keys.
pub const MAX_PCR_INDEX: u8 = 63;

/// Why a quote was rejected. The Display text is safe to return to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// Attestation bytes are not a TPMS_ATTEST / TPM2B_ATTEST.
    #[error("quote is not a valid TPM2B_ATTEST: {0}")]
    MalformedAttest(WireError),
    /// Signature bytes are not a supported TPMT_SIGNATURE.
    #[error("quote signature is not a valid TPMT_SIGNATURE: {0}")]
    MalformedSignature(WireError),
    /// magic is not TPM_GENERATED_VALUE: not made by a TPM.
    #[error("quote magic is 0x{0:08x}, expected TPM_GENERATED_VALUE 0xff544347")]
    BadMagic(u32),
    /// Another attestation type (certify, time, ...).
    #[error("attestation type is 0x{0:04x}, expected TPM_ST_ATTEST_QUOTE 0x8018")]
    NotAQuote(u16),
    /// AK signature over the attestation bytes failed.
    #[error("quote signature check failed: {0}")]
    BadSignature(SignatureError),
    /// The caller passed an empty expected nonce (a server bug; never accept).
    #[error("no expected nonce was configured for this quote")]
    NoExpectedNonce,
    /// extraData differs from the nonce the server issued.
    #[error("quote extraData does not equal the expected nonce")]
    NonceMismatch,
    /// Quoted PCR selection differs from the one requested.
    #[error("quoted PCR selection {quoted} differs from the expected selection {expected}")]
    SelectionMismatch {
        /// What the TPM quoted.
        quoted: String,
        /// What the server asked for.
        expected: String,
    },
    /// A bank is listed twice in the quoted selection.
    #[error("quoted PCR selection lists a bank twice")]
    DuplicateBank,
    /// Quoted bank uses a hash this library cannot compute.
    #[error("quoted PCR bank 0x{0:04x} is not supported")]
    UnsupportedBank(u16),
    /// A PCR value was supplied that the quote does not cover.
    #[error("PCR value {0} was supplied but is not covered by the quote")]
    UnquotedPcrValue(String),
    /// A quoted PCR has no supplied value.
    #[error("quoted PCR {0} has no supplied value")]
    MissingPcrValue(String),
    /// Recomputed digest differs from pcrDigest.
    #[error("PCR digest mismatch: the supplied PCR values do not hash to the quoted pcrDigest")]
    PcrDigestMismatch,
    /// resetCount lower than in the last accepted quote.
    #[error("TPM resetCount went backwards ({got} < previously accepted {previous})")]
    ResetCountWentBack {
        /// Last accepted.
        previous: u32,
        /// In this quote.
        got: u32,
    },
    /// restartCount lower than in the last accepted quote with the same resetCount.
    #[error("TPM restartCount went backwards ({got} < previously accepted {previous}) without a TPM reset")]
    RestartCountWentBack {
        /// Last accepted.
        previous: u32,
        /// In this quote.
        got: u32,
    },
    /// A `pcr_values` entry is malformed.
    #[error("invalid PCR value entry {key:?}: {reason}")]
    BadPcrValue {
        /// Offending key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// PCR values supplied by the machine, keyed by (bank, index).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcrValues {
    values: BTreeMap<(HashAlg, u8), Vec<u8>>,
}

impl PcrValues {
    /// Empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the API's `{"sha256:0": "<hex>", ...}` map.
    pub fn from_map<'a, I>(entries: I) -> Result<Self, QuoteError>
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        let mut out = Self::new();
        for (k, v) in entries {
            let bad = |reason: &str| QuoteError::BadPcrValue {
                key: k.clone(),
                reason: reason.into(),
            };
            let (bank, idx) = k
                .split_once(':')
                .ok_or_else(|| bad("key must look like \"sha256:7\""))?;
            let alg = HashAlg::from_name(bank).ok_or_else(|| bad("unknown PCR bank"))?;
            let idx: u8 = idx
                .trim()
                .parse()
                .map_err(|_| bad("PCR index is not a number"))?;
            let value = hex::decode(v.trim()).map_err(|_| bad("value is not hex"))?;
            out.insert(alg, idx, value).map_err(|e| match e {
                QuoteError::BadPcrValue { reason, .. } => QuoteError::BadPcrValue {
                    key: k.clone(),
                    reason,
                },
                other => other,
            })?;
        }
        Ok(out)
    }

    /// Adds one value; its length must match the bank's digest size.
    pub fn insert(&mut self, bank: HashAlg, index: u8, value: Vec<u8>) -> Result<(), QuoteError> {
        let key = format!("{bank}:{index}");
        if index > MAX_PCR_INDEX {
            return Err(QuoteError::BadPcrValue {
                key,
                reason: "PCR index above 63".into(),
            });
        }
        if value.len() != bank.size() {
            return Err(QuoteError::BadPcrValue {
                key,
                reason: format!("{} bytes, a {bank} PCR has {}", value.len(), bank.size()),
            });
        }
        if self.values.insert((bank, index), value).is_some() {
            return Err(QuoteError::BadPcrValue {
                key,
                reason: "given twice".into(),
            });
        }
        Ok(())
    }

    /// Value of one PCR.
    pub fn get(&self, bank: HashAlg, index: u8) -> Option<&[u8]> {
        self.values.get(&(bank, index)).map(Vec::as_slice)
    }

    /// Iterates (bank, index, value) in bank then index order.
    pub fn iter(&self) -> impl Iterator<Item = (HashAlg, u8, &[u8])> {
        self.values.iter().map(|((b, i), v)| (*b, *i, v.as_slice()))
    }

    /// The `{"sha256:0": "<hex>"}` form.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(b, i, v)| (format!("{b}:{i}"), hex::encode(v)))
            .collect()
    }

    /// A selection covering exactly these values (banks in TPM_ALG_ID order).
    pub fn selection(&self) -> Result<PcrSelection, WireError> {
        let mut banks: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
        for (b, i, _) in self.iter() {
            banks.entry(b.tpm_id()).or_default().push(i);
        }
        let banks = banks
            .into_iter()
            .map(|(h, idx)| PcrSelectionBank::from_indices(h, &idx))
            .collect::<Result<_, _>>()?;
        Ok(PcrSelection { banks })
    }
}

/// Builds a selection from `(bank, [pcr indices])` pairs, e.g. `sha256: 0,1,7`.
pub fn selection(banks: &[(HashAlg, &[u8])]) -> Result<PcrSelection, WireError> {
    let banks = banks
        .iter()
        .map(|(h, idx)| PcrSelectionBank::from_indices(h.tpm_id(), idx))
        .collect::<Result<_, _>>()?;
    Ok(PcrSelection { banks })
}

/// Human-readable selection, `sha256:0,1,7`.
pub fn describe_selection(sel: &PcrSelection) -> String {
    let parts: Vec<String> = sel
        .banks
        .iter()
        .filter(|b| !b.indices().is_empty())
        .map(|b| {
            let name = HashAlg::from_tpm(b.hash)
                .map_or_else(|| format!("0x{:04x}", b.hash), |h| h.name().into());
            let idx: Vec<String> = b.indices().iter().map(u8::to_string).collect();
            format!("{name}:{}", idx.join(","))
        })
        .collect();
    if parts.is_empty() {
        "(none)".into()
    } else {
        parts.join("+")
    }
}

/// Boot counters of the last accepted quote, kept by the caller per machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterState {
    /// TPMS_CLOCK_INFO.resetCount.
    pub reset_count: u32,
    /// TPMS_CLOCK_INFO.restartCount.
    pub restart_count: u32,
}

/// What the server expects of a quote.
#[derive(Debug, Clone, Copy)]
pub struct QuotePolicy<'a> {
    /// The nonce the server issued (compared with extraData in constant time).
    pub expected_nonce: &'a [u8],
    /// The PCR selection the server asked for.
    pub expected_selection: &'a PcrSelection,
    /// Counters of the last accepted quote from this TPM, if any.
    pub previous: Option<CounterState>,
}

/// What the machine sent.
#[derive(Debug, Clone, Copy)]
pub struct QuoteEvidence<'a> {
    /// TPM2B_ATTEST (or bare TPMS_ATTEST).
    pub attest: &'a [u8],
    /// TPMT_SIGNATURE.
    pub signature: &'a [u8],
    /// Claimed PCR values.
    pub pcr_values: &'a PcrValues,
}

/// A quote that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedQuote {
    /// The parsed attestation.
    pub attest: Attest,
    /// Clock and counters (store `counters()` as the next `previous`).
    pub clock_info: ClockInfo,
    /// Vendor firmware version.
    pub firmware_version: u64,
    /// Hash of the signature and of pcrDigest.
    pub signature_hash: HashAlg,
}

impl VerifiedQuote {
    /// Counters to keep for the next quote's `previous`.
    pub fn counters(&self) -> CounterState {
        CounterState {
            reset_count: self.clock_info.reset_count,
            restart_count: self.clock_info.restart_count,
        }
    }
}

/// Verifies a quote. Checks, in order: structure, magic, type, AK signature
/// over the TPMS_ATTEST bytes, nonce, selection, supplied values vs.
/// selection, PCR digest (hashed with the signature's hash, which may differ
/// from the bank's), and counters.
pub fn verify_quote(
    evidence: &QuoteEvidence<'_>,
    ak: &AkPublicKey,
    policy: &QuotePolicy<'_>,
) -> Result<VerifiedQuote, QuoteError> {
    let (attest, signed) =
        Attest::parse_either(evidence.attest).map_err(QuoteError::MalformedAttest)?;
    let sig = Signature::parse(evidence.signature).map_err(QuoteError::MalformedSignature)?;
    if attest.magic != TPM_GENERATED_VALUE {
        return Err(QuoteError::BadMagic(attest.magic));
    }
    let info = match attest.quote_info() {
        Some(q) if attest.attest_type == TPM_ST_ATTEST_QUOTE => q,
        _ => return Err(QuoteError::NotAQuote(attest.attest_type)),
    };
    ak.key()
        .verify_tpm_signature(signed, &sig)
        .map_err(QuoteError::BadSignature)?;

    if policy.expected_nonce.is_empty() {
        return Err(QuoteError::NoExpectedNonce);
    }
    if !bool::from(attest.extra_data.as_slice().ct_eq(policy.expected_nonce)) {
        return Err(QuoteError::NonceMismatch);
    }

    let quoted = &info.pcr_select;
    if quoted.has_duplicates() {
        return Err(QuoteError::DuplicateBank);
    }
    if quoted.as_set() != policy.expected_selection.as_set() {
        return Err(QuoteError::SelectionMismatch {
            quoted: describe_selection(quoted),
            expected: describe_selection(policy.expected_selection),
        });
    }

    // Every supplied value must be quoted, every quoted PCR supplied.
    let quoted_set = quoted.as_set();
    for (bank, idx, _) in evidence.pcr_values.iter() {
        if !quoted_set.contains(&(bank.tpm_id(), idx)) {
            return Err(QuoteError::UnquotedPcrValue(format!("{bank}:{idx}")));
        }
    }
    let hash = sig.hash();
    let mut parts: Vec<&[u8]> = Vec::new();
    for (bank_id, idx) in quoted.ordered_pcrs() {
        let bank = HashAlg::from_tpm(bank_id).ok_or(QuoteError::UnsupportedBank(bank_id))?;
        let v = evidence
            .pcr_values
            .get(bank, idx)
            .ok_or_else(|| QuoteError::MissingPcrValue(format!("{bank}:{idx}")))?;
        parts.push(v);
    }
    let digest = hash.digest(&parts);
    if !bool::from(digest.as_slice().ct_eq(&info.pcr_digest)) {
        return Err(QuoteError::PcrDigestMismatch);
    }

    let c = attest.clock_info;
    if let Some(prev) = policy.previous {
        if c.reset_count < prev.reset_count {
            return Err(QuoteError::ResetCountWentBack {
                previous: prev.reset_count,
                got: c.reset_count,
            });
        }
        if c.reset_count == prev.reset_count && c.restart_count < prev.restart_count {
            return Err(QuoteError::RestartCountWentBack {
                previous: prev.restart_count,
                got: c.restart_count,
            });
        }
    }
    Ok(VerifiedQuote {
        clock_info: c,
        firmware_version: attest.firmware_version,
        signature_hash: hash,
        attest,
    })
}
