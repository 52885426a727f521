//! Signed checkpoints of the audit chain: the bytes a checkpoint signs, and
//! the expectations a [`ChainVerifier`](super::ChainVerifier) checks the
//! chain against.
//!
//! The chain alone cannot notice its newest entries being cut off by
//! someone who also moves `audit_chain_tip` back: what is left is a valid,
//! shorter chain. A checkpoint signed while the chain was longer (and kept
//! outside the database) says how long it was and what its newest hash
//! was, so a shorter or different chain shows. Signing and checking
//! signatures is the PKI's job; this module only defines what is signed and
//! how a chain compares.

use std::fmt;

use super::{encode_text, parse_timestamp};

/// A signed checkpoint: the wire type of `GET /api/v1/audit/checkpoints`,
/// so the store hands the API exactly what it serves.
pub use attest_proto::audit::AuditCheckpoint;

/// Domain-separation prefix of the signed bytes (version 1).
pub const CHECKPOINT_TAG: &[u8; 27] = b"attest-audit-checkpoint-v1\0";

/// The statement a checkpoint signs: the chain had `entries` entries, the
/// last of which hashed to `root_hash`, at `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointStatement<'a> {
    pub entries: i64,
    pub root_hash: &'a str,
    pub timestamp: &'a str,
}

/// Why a checkpoint statement is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// `entries` is below 1: an empty chain has nothing to vouch for.
    #[error("entries must be at least 1")]
    NoEntries,
    /// `root_hash` is not 64 lowercase hex digits.
    #[error("root_hash must be 64 lowercase hexadecimal digits")]
    RootHash,
    /// `timestamp` is not RFC 3339.
    #[error("timestamp must be an RFC 3339 time")]
    Timestamp,
}

impl CheckpointStatement<'_> {
    /// The signed bytes: [`CHECKPOINT_TAG`], `entries` as a signed 64-bit
    /// big-endian integer, then `root_hash` and `timestamp` as text fields
    /// of the entry encoding (`0x01`, u64 big-endian length, UTF-8 bytes).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        let mut sink = |b: &[u8]| out.extend_from_slice(b);
        sink(CHECKPOINT_TAG);
        sink(&self.entries.to_be_bytes());
        encode_text(&mut sink, Some(self.root_hash));
        encode_text(&mut sink, Some(self.timestamp));
        out
    }

    /// Checks the fields' shapes (not the signature).
    pub fn validate(&self) -> Result<(), CheckpointError> {
        if self.entries < 1 {
            return Err(CheckpointError::NoEntries);
        }
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if self.root_hash.len() != 64 || !self.root_hash.bytes().all(hex) {
            return Err(CheckpointError::RootHash);
        }
        if parse_timestamp(self.timestamp).is_none() {
            return Err(CheckpointError::Timestamp);
        }
        Ok(())
    }
}

/// Names a checkpoint in verification errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRef {
    /// The server's number for it; `None` for one supplied from outside
    /// without a number.
    pub id: Option<i64>,
    /// When it was signed.
    pub timestamp: String,
}

impl fmt::Display for CheckpointRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "checkpoint id={id} (signed {})", self.timestamp),
            None => write!(f, "checkpoint (signed {})", self.timestamp),
        }
    }
}

/// A checkpoint whose signature the caller has checked: the chain must hold
/// at least `entries` entries and entry number `entries` must hash to
/// `root_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedCheckpoint {
    pub checkpoint: CheckpointRef,
    pub entries: i64,
    pub root_hash: String,
}

impl From<&AuditCheckpoint> for ExpectedCheckpoint {
    fn from(c: &AuditCheckpoint) -> Self {
        Self {
            checkpoint: CheckpointRef {
                id: c.id,
                timestamp: c.timestamp.clone(),
            },
            entries: c.entries,
            root_hash: c.root_hash.clone(),
        }
    }
}

/// The statement of a served checkpoint.
pub fn statement(c: &AuditCheckpoint) -> CheckpointStatement<'_> {
    CheckpointStatement {
        entries: c.entries,
        root_hash: &c.root_hash,
        timestamp: &c.timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signed bytes of docs/audit.md's checkpoint example.
    #[test]
    fn signed_bytes_from_docs() {
        let s = CheckpointStatement {
            entries: 3,
            root_hash: "2999d5df78c5de081dc9a5b75a92ba3d9e96819a9d18acb17d37d8d0eee5c88b",
            timestamp: "2026-05-14T18:00:00.000000+00:00",
        };
        let expected = concat!(
            "6174746573742d61756469742d636865636b706f696e742d763100",
            "0000000000000003",
            "01",
            "0000000000000040",
            "32393939643564663738633564653038316463396135623735613932626133643965393638313961396431386163623137643337643864306565653563383862",
            "01",
            "0000000000000020",
            "323032362d30352d31345431383a30303a30302e3030303030302b30303a3030",
        );
        assert_eq!(hex::encode(s.signed_bytes()), expected);
        assert_eq!(s.signed_bytes().len(), 149);
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn every_field_is_bound() {
        let base = CheckpointStatement {
            entries: 3,
            root_hash: "ab",
            timestamp: "t",
        };
        let a = base.signed_bytes();
        assert_ne!(a, CheckpointStatement { entries: 4, ..base }.signed_bytes());
        assert_ne!(
            a,
            CheckpointStatement {
                root_hash: "ac",
                ..base
            }
            .signed_bytes()
        );
        assert_ne!(
            a,
            CheckpointStatement {
                timestamp: "u",
                ..base
            }
            .signed_bytes()
        );
        // Bytes cannot move between the two text fields.
        assert_ne!(
            CheckpointStatement {
                root_hash: "abc",
                timestamp: "d",
                ..base
            }
            .signed_bytes(),
            CheckpointStatement {
                root_hash: "ab",
                timestamp: "cd",
                ..base
            }
            .signed_bytes()
        );
    }

    #[test]
    fn malformed_statements_are_refused() {
        let good = CheckpointStatement {
            entries: 1,
            root_hash: &"a".repeat(64),
            timestamp: "2026-05-14T18:00:00Z",
        };
        assert_eq!(good.validate(), Ok(()));
        let upper = "A".repeat(64);
        let short = "a".repeat(63);
        for (bad, err) in [
            (
                CheckpointStatement { entries: 0, ..good },
                CheckpointError::NoEntries,
            ),
            (
                CheckpointStatement {
                    root_hash: &upper,
                    ..good
                },
                CheckpointError::RootHash,
            ),
            (
                CheckpointStatement {
                    root_hash: &short,
                    ..good
                },
                CheckpointError::RootHash,
            ),
            (
                CheckpointStatement {
                    timestamp: "yesterday",
                    ..good
                },
                CheckpointError::Timestamp,
            ),
        ] {
            assert_eq!(bad.validate(), Err(err));
        }
    }
}
