//! TPM2B_ATTEST / TPMS_ATTEST (Part 2 §10.12): what a TPM signs in a quote.

use super::alg::TPM_ST_ATTEST_QUOTE;
use super::pcr::PcrSelection;
use super::reader::{Reader, Writer};
use super::WireError;

/// sizeof(TPMU_NAME): a TPM2B_NAME holds at most an alg id + SHA-512 digest.
pub const MAX_NAME: usize = 2 + 64;
/// sizeof(TPMU_HA): largest digest.
pub const MAX_DIGEST: usize = 64;
/// TPM2B_DATA max: the largest digest plus an alg id, as in TPMT_HA.
pub const MAX_DATA: usize = 2 + 64;
/// sizeof(TPMS_ATTEST) bound used for TPM2B_ATTEST.
pub const MAX_ATTEST: usize = 2048;

/// TPMS_CLOCK_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was made.
    pub clock: u64,
    /// TPM Reset count (reboots without orderly state save).
    pub reset_count: u32,
    /// TPM Restart/Resume count since the last reset.
    pub restart_count: u32,
    /// Whether `clock` could have been reported lower before.
    pub safe: bool,
}

/// TPMS_QUOTE_INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInfo {
    /// PCRs the TPM hashed.
    pub pcr_select: PcrSelection,
    /// Hash (with the signing scheme's hash) of the selected PCR values.
    pub pcr_digest: Vec<u8>,
}

/// The type-specific part of TPMS_ATTEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestBody {
    /// TPM_ST_ATTEST_QUOTE.
    Quote(QuoteInfo),
    /// Any other TPM_ST_ATTEST_* type, kept as raw bytes.
    Other {
        /// TPMI_ST_ATTEST value.
        tag: u16,
        /// Unparsed TPMU_ATTEST bytes.
        raw: Vec<u8>,
    },
}

/// TPMS_ATTEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest {
    /// Must be TPM_GENERATED_VALUE for TPM-made structures; checked by the verifier, not the parser.
    pub magic: u32,
    /// TPMI_ST_ATTEST.
    pub attest_type: u16,
    /// Name of the signing key (qualified).
    pub qualified_signer: Vec<u8>,
    /// Caller-supplied data, the nonce in a quote.
    pub extra_data: Vec<u8>,
    /// Clock and boot counters.
    pub clock_info: ClockInfo,
    /// Vendor firmware version.
    pub firmware_version: u64,
    /// Type-specific payload.
    pub body: AttestBody,
}

impl Attest {
    /// Parses bare TPMS_ATTEST bytes (what `tpm2_quote -m` writes).
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_ATTEST {
            return Err(WireError::TooLarge {
                what: "TPMS_ATTEST",
                size: bytes.len(),
                max: MAX_ATTEST,
            });
        }
        let mut r = Reader::new(bytes);
        let magic = r.u32("TPMS_ATTEST.magic")?;
        let attest_type = r.u16("TPMS_ATTEST.type")?;
        let qualified_signer = r.tpm2b(MAX_NAME, "TPMS_ATTEST.qualifiedSigner")?.to_vec();
        let extra_data = r.tpm2b(MAX_DATA, "TPMS_ATTEST.extraData")?.to_vec();
        let clock = r.u64("TPMS_CLOCK_INFO.clock")?;
        let reset_count = r.u32("TPMS_CLOCK_INFO.resetCount")?;
        let restart_count = r.u32("TPMS_CLOCK_INFO.restartCount")?;
        let safe = match r.u8("TPMS_CLOCK_INFO.safe")? {
            0 => false,
            1 => true,
            _ => {
                return Err(WireError::Invalid {
                    what: "TPMS_CLOCK_INFO.safe",
                    reason: "not 0 or 1",
                })
            }
        };
        let firmware_version = r.u64("TPMS_ATTEST.firmwareVersion")?;
        let body = if attest_type == TPM_ST_ATTEST_QUOTE {
            let pcr_select = PcrSelection::read(&mut r)?;
            let pcr_digest = r.tpm2b(MAX_DIGEST, "TPMS_QUOTE_INFO.pcrDigest")?.to_vec();
            r.finish("TPMS_ATTEST")?;
            AttestBody::Quote(QuoteInfo {
                pcr_select,
                pcr_digest,
            })
        } else {
            let raw = r.bytes(r.remaining(), "TPMU_ATTEST")?.to_vec();
            AttestBody::Other {
                tag: attest_type,
                raw,
            }
        };
        Ok(Self {
            magic,
            attest_type,
            qualified_signer,
            extra_data,
            clock_info: ClockInfo {
                clock,
                reset_count,
                restart_count,
                safe,
            },
            firmware_version,
            body,
        })
    }

    /// Parses a TPM2B_ATTEST (u16 size + TPMS_ATTEST) and returns the inner
    /// bytes too, because signatures cover the TPMS_ATTEST without the size.
    pub fn parse_tpm2b(bytes: &[u8]) -> Result<(Self, &[u8]), WireError> {
        let mut r = Reader::new(bytes);
        let inner = r.tpm2b(MAX_ATTEST, "TPM2B_ATTEST")?;
        r.finish("TPM2B_ATTEST")?;
        Ok((Self::parse(inner)?, inner))
    }

    /// Accepts either a TPM2B_ATTEST or a bare TPMS_ATTEST: clients send both
    /// (the API says TPM2B_ATTEST; `tpm2_quote -m` writes TPMS_ATTEST). A size
    /// prefix is recognised when it equals the remaining length.
    pub fn parse_either(bytes: &[u8]) -> Result<(Self, &[u8]), WireError> {
        match bytes {
            [hi, lo, rest @ ..] if usize::from(u16::from_be_bytes([*hi, *lo])) == rest.len() => {
                Self::parse_tpm2b(bytes)
            }
            _ => Ok((Self::parse(bytes)?, bytes)),
        }
    }

    /// Encodes TPMS_ATTEST.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut w = Writer::new();
        w.u32(self.magic).u16(self.attest_type);
        w.tpm2b(&self.qualified_signer, "qualifiedSigner")?;
        w.tpm2b(&self.extra_data, "extraData")?;
        let c = &self.clock_info;
        w.u64(c.clock)
            .u32(c.reset_count)
            .u32(c.restart_count)
            .u8(u8::from(c.safe));
        w.u64(self.firmware_version);
        match &self.body {
            AttestBody::Quote(q) => {
                q.pcr_select.write(&mut w)?;
                w.tpm2b(&q.pcr_digest, "pcrDigest")?;
            }
            AttestBody::Other { raw, .. } => {
                w.bytes(raw);
            }
        }
        Ok(w.into_vec())
    }

    /// Encodes TPM2B_ATTEST.
    pub fn encode_tpm2b(&self) -> Result<Vec<u8>, WireError> {
        super::reader::wrap_tpm2b(&self.encode()?, "TPM2B_ATTEST")
    }

    /// The quote payload, if this is a quote.
    pub fn quote_info(&self) -> Option<&QuoteInfo> {
        match &self.body {
            AttestBody::Quote(q) => Some(q),
            AttestBody::Other { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::alg::{TPM_ALG_SHA256, TPM_GENERATED_VALUE};
    use crate::wire::pcr::PcrSelectionBank;

    fn sample() -> Attest {
        Attest {
            magic: TPM_GENERATED_VALUE,
            attest_type: TPM_ST_ATTEST_QUOTE,
            qualified_signer: vec![0, 0x0b, 1, 2, 3],
            extra_data: b"nonce".to_vec(),
            clock_info: ClockInfo {
                clock: 42,
                reset_count: 3,
                restart_count: 1,
                safe: true,
            },
            firmware_version: 0x2019_1023,
            body: AttestBody::Quote(QuoteInfo {
                pcr_select: PcrSelection {
                    banks: vec![PcrSelectionBank::from_indices(TPM_ALG_SHA256, &[0, 7]).unwrap()],
                },
                pcr_digest: vec![9; 32],
            }),
        }
    }

    #[test]
    fn round_trips() {
        let a = sample();
        let bare = a.encode().unwrap();
        assert_eq!(Attest::parse(&bare).unwrap(), a);
        let wrapped = a.encode_tpm2b().unwrap();
        let (b, inner) = Attest::parse_either(&wrapped).unwrap();
        assert_eq!(b, a);
        assert_eq!(inner, &bare[..]);
        assert_eq!(Attest::parse_either(&bare).unwrap().0, a);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bare = sample().encode().unwrap();
        for n in 0..bare.len() {
            assert!(Attest::parse(&bare[..n]).is_err(), "prefix {n}");
        }
        let mut long = bare.clone();
        long.push(0);
        assert!(Attest::parse(&long).is_err());
    }
}
