//! TPML_PCR_SELECTION (Part 2 §10.9.7): which PCRs of which banks.

use std::collections::BTreeSet;

use super::reader::{Reader, Writer};
use super::WireError;

/// HASH_COUNT upper bound: a TPM has at most a handful of banks; 16 is generous.
pub const MAX_BANKS: u32 = 16;
/// Largest `sizeofSelect` accepted (64 PCRs). Real TPMs use 3 (24 PCRs).
pub const MAX_SIZE_OF_SELECT: u8 = 8;

/// One TPMS_PCR_SELECTION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelectionBank {
    /// TPMI_ALG_HASH of the bank, kept raw so unknown banks still parse.
    pub hash: u16,
    /// Bitmap: bit `i` of byte `j` selects PCR `8*j + i`.
    pub select: Vec<u8>,
}

impl PcrSelectionBank {
    /// Builds a bank selection from PCR indices with the usual 3-byte bitmap.
    pub fn from_indices(hash: u16, pcrs: &[u8]) -> Result<Self, WireError> {
        let max = pcrs.iter().copied().max().unwrap_or(0);
        let size = usize::max(3, usize::from(max / 8) + 1);
        if size > usize::from(MAX_SIZE_OF_SELECT) {
            return Err(WireError::Invalid {
                what: "PCR index",
                reason: "above 63",
            });
        }
        let mut select = vec![0u8; size];
        for &p in pcrs {
            if let Some(b) = select.get_mut(usize::from(p / 8)) {
                *b |= 1 << (p % 8);
            }
        }
        Ok(Self { hash, select })
    }

    /// Selected PCR indices, ascending — the order the TPM hashes them in.
    pub fn indices(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (j, byte) in self.select.iter().enumerate() {
            for i in 0..8u8 {
                if byte & (1 << i) != 0 {
                    // j < MAX_SIZE_OF_SELECT, so this fits in u8.
                    out.push((j as u8).saturating_mul(8).saturating_add(i));
                }
            }
        }
        out
    }
}

/// TPML_PCR_SELECTION: banks in the order the TPM lists (and hashes) them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcrSelection {
    /// Banks, in wire order.
    pub banks: Vec<PcrSelectionBank>,
}

impl PcrSelection {
    /// Parses a complete TPML_PCR_SELECTION (no trailing bytes).
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let sel = Self::read(&mut r)?;
        r.finish("TPML_PCR_SELECTION")?;
        Ok(sel)
    }

    /// Reads a TPML_PCR_SELECTION from a larger structure.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let count = r.u32("TPML_PCR_SELECTION.count")?;
        if count > MAX_BANKS {
            return Err(WireError::TooLarge {
                what: "TPML_PCR_SELECTION.count",
                size: count as usize,
                max: MAX_BANKS as usize,
            });
        }
        let mut banks = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let hash = r.u16("TPMS_PCR_SELECTION.hash")?;
            let size = r.u8("TPMS_PCR_SELECTION.sizeofSelect")?;
            if size > MAX_SIZE_OF_SELECT {
                return Err(WireError::TooLarge {
                    what: "TPMS_PCR_SELECTION.sizeofSelect",
                    size: usize::from(size),
                    max: usize::from(MAX_SIZE_OF_SELECT),
                });
            }
            let select = r
                .bytes(usize::from(size), "TPMS_PCR_SELECTION.pcrSelect")?
                .to_vec();
            banks.push(PcrSelectionBank { hash, select });
        }
        Ok(Self { banks })
    }

    /// Appends the wire encoding.
    pub fn write(&self, w: &mut Writer) -> Result<(), WireError> {
        let count = u32::try_from(self.banks.len()).unwrap_or(u32::MAX);
        if count > MAX_BANKS {
            return Err(WireError::TooLarge {
                what: "TPML_PCR_SELECTION.count",
                size: self.banks.len(),
                max: MAX_BANKS as usize,
            });
        }
        w.u32(count);
        for b in &self.banks {
            let size = u8::try_from(b.select.len())
                .ok()
                .filter(|s| *s <= MAX_SIZE_OF_SELECT)
                .ok_or(WireError::TooLarge {
                    what: "TPMS_PCR_SELECTION.sizeofSelect",
                    size: b.select.len(),
                    max: usize::from(MAX_SIZE_OF_SELECT),
                })?;
            w.u16(b.hash).u8(size).bytes(&b.select);
        }
        Ok(())
    }

    /// Encodes to bytes.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut w = Writer::new();
        self.write(&mut w)?;
        Ok(w.into_vec())
    }

    /// (bank, PCR) pairs in hashing order: banks in list order, PCRs ascending.
    pub fn ordered_pcrs(&self) -> Vec<(u16, u8)> {
        self.banks
            .iter()
            .flat_map(|b| b.indices().into_iter().map(move |p| (b.hash, p)))
            .collect()
    }

    /// The selection as a set, ignoring bitmap width and bank order, for
    /// comparing what was quoted with what was asked for.
    pub fn as_set(&self) -> BTreeSet<(u16, u8)> {
        self.ordered_pcrs().into_iter().collect()
    }

    /// True when some bank appears twice (its PCRs would be hashed twice).
    pub fn has_duplicates(&self) -> bool {
        let mut seen = BTreeSet::new();
        self.banks.iter().any(|b| !seen.insert(b.hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::alg::TPM_ALG_SHA256;

    #[test]
    fn round_trip_and_order() {
        let bank = PcrSelectionBank::from_indices(TPM_ALG_SHA256, &[7, 0, 23, 1]).unwrap();
        assert_eq!(bank.select, vec![0b1000_0011, 0, 0b1000_0000]);
        let sel = PcrSelection { banks: vec![bank] };
        let enc = sel.encode().unwrap();
        assert_eq!(enc, [0, 0, 0, 1, 0, 0x0b, 3, 0x83, 0, 0x80]);
        let back = PcrSelection::parse(&enc).unwrap();
        assert_eq!(back, sel);
        assert_eq!(
            back.ordered_pcrs(),
            vec![(0x0b, 0), (0x0b, 1), (0x0b, 7), (0x0b, 23)]
        );
    }

    #[test]
    fn rejects_hostile_counts() {
        assert!(PcrSelection::parse(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(PcrSelection::parse(&[0, 0, 0, 1, 0, 0x0b, 200]).is_err());
        assert!(PcrSelection::parse(&[0, 0, 0, 1, 0, 0x0b, 3, 1]).is_err());
    }
}
