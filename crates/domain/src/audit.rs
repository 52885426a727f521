//! The audit hash chain: canonical encoding, entry hashes and verification.
//!
//! Pure functions only; the store calls them while appending and while
//! streaming rows for `GET /api/v1/audit/verify`. The byte encoding is
//! specified in `docs/audit.md`; changing it breaks every existing chain, so
//! the test `worked_example_from_docs` pins it.

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

mod action;
pub mod checkpoint;

pub use action::AuditAction;

use checkpoint::{CheckpointRef, ExpectedCheckpoint};

/// `prev_hash` of the first entry: 64 ASCII zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain-separation prefix of the canonical encoding (version 1).
pub const ENCODING_TAG: &[u8; 16] = b"attest-audit-v1\0";

const MARK_NULL: u8 = 0x00;
const MARK_PRESENT: u8 = 0x01;

/// Formats a timestamp the way the audit log (and every store table) keeps
/// it: RFC 3339, UTC, fixed width with microseconds, so that text order is
/// time order. Example: `2026-05-14T17:05:00.123456+00:00`.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// Reads back a [`format_timestamp`] string (any RFC 3339 form is accepted).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The fields covered by an entry's hash, borrowed from wherever they live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashedFields<'a> {
    pub id: i64,
    pub timestamp: &'a str,
    pub operator_cn: &'a str,
    pub action: &'a str,
    pub machine_id: Option<&'a str>,
    pub prev_state: Option<&'a str>,
    pub new_state: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub prev_hash: &'a str,
}

impl HashedFields<'_> {
    /// Feeds the canonical encoding to `sink` piece by piece (no allocation).
    fn encode(&self, sink: &mut impl FnMut(&[u8])) {
        sink(ENCODING_TAG);
        sink(&self.id.to_be_bytes());
        encode_text(sink, Some(self.timestamp));
        encode_text(sink, Some(self.operator_cn));
        encode_text(sink, Some(self.action));
        encode_text(sink, self.machine_id);
        encode_text(sink, self.prev_state);
        encode_text(sink, self.new_state);
        encode_text(sink, self.detail);
        encode_text(sink, Some(self.prev_hash));
    }

    /// The canonical byte encoding (see `docs/audit.md`).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.encode(&mut |b: &[u8]| out.extend_from_slice(b));
        out
    }

    /// SHA-256 of the canonical encoding.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        self.encode(&mut |b: &[u8]| hasher.update(b));
        hasher.finalize().into()
    }

    /// Lowercase hex SHA-256 of the canonical encoding: the `entry_hash`.
    pub fn entry_hash(&self) -> String {
        let hex = hex_lower(&self.digest());
        // hex_lower only emits ASCII.
        String::from_utf8_lossy(&hex).into_owned()
    }
}

/// A text field of the canonical encoding: `0x00` for NULL, else `0x01`,
/// the UTF-8 length as a u64 big-endian integer, and the bytes.
fn encode_text(sink: &mut impl FnMut(&[u8]), value: Option<&str>) {
    match value {
        None => sink(&[MARK_NULL]),
        Some(s) => {
            sink(&[MARK_PRESENT]);
            sink(&(s.len() as u64).to_be_bytes());
            sink(s.as_bytes());
        }
    }
}

/// Lowercase hex SHA-256 of the canonical encoding of `fields`.
pub fn entry_hash(fields: &HashedFields<'_>) -> String {
    fields.entry_hash()
}

fn hex_lower(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
    out
}

/// One stored audit entry: the wire type of `GET /api/v1/audit`, so the
/// store hands the API exactly what it serves.
pub use attest_proto::audit::AuditEntry;

/// Result of walking the chain: the wire type of `GET /api/v1/audit/verify`.
pub use attest_proto::audit::AuditVerifyResponse as VerifyReport;

/// The hashed view of a stored entry.
pub trait Hashed {
    /// Everything but `entry_hash`, borrowed.
    fn hashed(&self) -> HashedFields<'_>;
}

impl Hashed for AuditEntry {
    fn hashed(&self) -> HashedFields<'_> {
        HashedFields {
            id: self.id,
            timestamp: &self.timestamp,
            operator_cn: &self.operator_cn,
            action: &self.action,
            machine_id: self.machine_id.as_deref(),
            prev_state: self.prev_state.as_deref(),
            new_state: self.new_state.as_deref(),
            detail: self.detail.as_deref(),
            prev_hash: &self.prev_hash,
        }
    }
}

/// Why the chain is broken; its `Display` is the report's `error` string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    EntryHash {
        id: i64,
    },
    PrevHash {
        id: i64,
    },
    IdGap {
        id: i64,
        expected: i64,
    },
    IdOrder {
        id: i64,
        previous: i64,
    },
    TipMissingEntries {
        tip_id: i64,
        last_id: Option<i64>,
    },
    EntryBeyondTip {
        id: i64,
        tip_id: i64,
    },
    TipHash {
        id: i64,
    },
    /// The chain is shorter than a checkpoint says it was.
    CheckpointBeyondChain {
        checkpoint: CheckpointRef,
        entries: i64,
        last_id: Option<i64>,
    },
    /// Entry number `entries` of a checkpoint hashes differently now.
    CheckpointDiverges {
        id: i64,
        checkpoint: CheckpointRef,
    },
    /// A checkpoint's signature was refused by the caller.
    CheckpointRejected {
        checkpoint: CheckpointRef,
        reason: String,
    },
}

impl Failure {
    /// The report's `first_invalid_id`; `None` when no entry is at fault
    /// (a refused checkpoint).
    fn id(&self) -> Option<i64> {
        match self {
            Failure::EntryHash { id }
            | Failure::PrevHash { id }
            | Failure::IdGap { id, .. }
            | Failure::IdOrder { id, .. }
            | Failure::EntryBeyondTip { id, .. }
            | Failure::TipHash { id }
            | Failure::CheckpointDiverges { id, .. } => Some(*id),
            Failure::TipMissingEntries { last_id, .. }
            | Failure::CheckpointBeyondChain { last_id, .. } => Some(last_id.map_or(1, |l| l + 1)),
            Failure::CheckpointRejected { .. } => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::EntryHash { id } => write!(f, "entry_hash mismatch at entry id={id}"),
            Failure::PrevHash { id } => write!(f, "prev_hash mismatch at entry id={id}"),
            Failure::IdGap { id, expected } => {
                write!(f, "id gap at entry id={id} (expected id={expected})")
            }
            Failure::IdOrder { id, previous } => {
                write!(f, "id out of order at entry id={id} (after id={previous})")
            }
            Failure::TipMissingEntries { tip_id, last_id } => match last_id {
                Some(last) => write!(
                    f,
                    "entries missing after id={last}: chain tip records id={tip_id}"
                ),
                None => write!(f, "no entries but chain tip records id={tip_id}"),
            },
            Failure::EntryBeyondTip { id, tip_id } => {
                write!(f, "entry id={id} lies beyond the chain tip (id={tip_id})")
            }
            Failure::TipHash { id } => write!(f, "chain tip hash mismatch at entry id={id}"),
            Failure::CheckpointBeyondChain {
                checkpoint,
                entries,
                last_id,
            } => {
                match last_id {
                    Some(last) => write!(f, "entries missing after id={last}: "),
                    None => write!(f, "no entries: "),
                }?;
                write!(
                    f,
                    "{checkpoint} covers {entries} entries (the newest entries were removed)"
                )
            }
            Failure::CheckpointDiverges { id, checkpoint } => write!(
                f,
                "chain diverges from {checkpoint} at entry id={id} \
                 (entries up to id={id} were altered)"
            ),
            Failure::CheckpointRejected { checkpoint, reason } => {
                write!(f, "{checkpoint} refused: {reason}")
            }
        }
    }
}

/// Streaming chain verifier: feed entries in id order, then `finish`.
///
/// Each entry is checked in this order: id is the previous id + 1 (any id
/// for the first entry), recomputed hash equals the stored `entry_hash`,
/// stored `prev_hash` equals the previous stored `entry_hash` (or
/// [`GENESIS_HASH`] for the first). The first failure is kept; later entries
/// are only counted. Holds no per-entry allocation.
///
/// With [`with_checkpoints`](Self::with_checkpoints) it also checks that
/// entry number `entries` of each checkpoint hashes to its `root_hash`, and
/// that the chain is at least as long as every checkpoint.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    entries: i64,
    last_id: Option<i64>,
    last_hash: [u8; 64],
    failure: Option<Failure>,
    /// Ascending by `entries`; those before `next_checkpoint` are checked.
    checkpoints: Vec<ExpectedCheckpoint>,
    next_checkpoint: usize,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting the first entry to link to [`GENESIS_HASH`].
    pub fn new() -> Self {
        let mut last_hash = [0u8; 64];
        last_hash.copy_from_slice(GENESIS_HASH.as_bytes());
        Self {
            entries: 0,
            last_id: None,
            last_hash,
            failure: None,
            checkpoints: Vec::new(),
            next_checkpoint: 0,
        }
    }

    /// Also checks the chain against `checkpoints`, whose signatures the
    /// caller has verified. A checkpoint below one entry vouches for
    /// nothing and is ignored.
    pub fn with_checkpoints(
        mut self,
        checkpoints: impl IntoIterator<Item = ExpectedCheckpoint>,
    ) -> Self {
        self.checkpoints
            .extend(checkpoints.into_iter().filter(|c| c.entries >= 1));
        self.checkpoints.sort_by_key(|c| c.entries);
        self
    }

    /// Records that the caller refused `checkpoint` (its signature does not
    /// verify): the report is invalid, whatever the chain looks like.
    pub fn reject_checkpoint(&mut self, checkpoint: CheckpointRef, reason: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some(Failure::CheckpointRejected {
                checkpoint,
                reason: reason.into(),
            });
        }
    }

    /// Checks one entry; `stored_entry_hash` is the entry's `entry_hash` column.
    pub fn push(&mut self, fields: &HashedFields<'_>, stored_entry_hash: &str) {
        self.entries += 1;
        if self.failure.is_some() {
            return;
        }
        let id = fields.id;
        if let Some(previous) = self.last_id {
            if id <= previous {
                self.failure = Some(Failure::IdOrder { id, previous });
                return;
            }
            if id != previous + 1 {
                self.failure = Some(Failure::IdGap {
                    id,
                    expected: previous + 1,
                });
                return;
            }
        }
        let computed = hex_lower(&fields.digest());
        if computed.as_slice() != stored_entry_hash.as_bytes() {
            self.failure = Some(Failure::EntryHash { id });
            return;
        }
        if fields.prev_hash.as_bytes() != self.last_hash.as_slice() {
            self.failure = Some(Failure::PrevHash { id });
            return;
        }
        self.last_id = Some(id);
        self.last_hash = computed;
        while let Some(checkpoint) = self.checkpoints.get(self.next_checkpoint) {
            if checkpoint.entries > self.entries {
                break;
            }
            self.next_checkpoint += 1;
            if checkpoint.root_hash.as_bytes() != computed.as_slice() {
                self.failure = Some(Failure::CheckpointDiverges {
                    id,
                    checkpoint: checkpoint.checkpoint.clone(),
                });
                return;
            }
        }
    }

    /// Entries pushed so far.
    pub fn entries(&self) -> i64 {
        self.entries
    }

    /// False once any entry failed.
    pub fn is_valid(&self) -> bool {
        self.failure.is_none()
    }

    /// The report for the entries pushed so far (a chain shorter than a
    /// checkpoint is invalid).
    pub fn finish(mut self) -> VerifyReport {
        if self.failure.is_none() {
            if let Some(longest) = self.checkpoints[self.next_checkpoint..].last() {
                self.failure = Some(Failure::CheckpointBeyondChain {
                    checkpoint: longest.checkpoint.clone(),
                    entries: longest.entries,
                    last_id: self.last_id,
                });
            }
        }
        match self.failure {
            Some(failure) => VerifyReport {
                valid: false,
                entries: self.entries,
                root_hash: None,
                first_invalid_id: failure.id(),
                error: Some(failure.to_string()),
            },
            None => VerifyReport {
                valid: true,
                entries: self.entries,
                root_hash: self
                    .last_id
                    .map(|_| String::from_utf8_lossy(&self.last_hash).into_owned()),
                first_invalid_id: None,
                error: None,
            },
        }
    }

    /// Like [`finish`](Self::finish), and also checks the chain against the
    /// recorded tip (`last_id`, `last_hash`; `0` and [`GENESIS_HASH`] for an
    /// empty chain), which catches removal of the newest entries and rows
    /// appended behind the store's back.
    pub fn finish_with_tip(mut self, tip_id: i64, tip_hash: &str) -> VerifyReport {
        if self.failure.is_none() {
            let last_id = self.last_id;
            let last = last_id.unwrap_or(0);
            if last < tip_id {
                self.failure = Some(Failure::TipMissingEntries { tip_id, last_id });
            } else if last > tip_id {
                self.failure = Some(Failure::EntryBeyondTip {
                    id: tip_id + 1,
                    tip_id,
                });
            } else if tip_hash.as_bytes() != self.last_hash.as_slice() {
                self.failure = Some(Failure::TipHash { id: last });
            }
        }
        self.finish()
    }
}

/// Verifies a complete chain held in memory (tests, small exports).
pub fn verify_entries<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> VerifyReport {
    let mut verifier = ChainVerifier::new();
    for entry in entries {
        verifier.push(&entry.hashed(), &entry.entry_hash);
    }
    verifier.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        let mut prev = GENESIS_HASH.to_string();
        for id in 1..=n {
            let mut e = AuditEntry {
                id,
                timestamp: format!("2026-05-14T17:05:{:02}.000000+00:00", id % 60),
                operator_cn: "alice".into(),
                action: "approve".into(),
                machine_id: Some("550e8400-e29b-41d4-a716-446655440000".into()),
                prev_state: Some("pending_approval".into()),
                new_state: if id % 2 == 0 {
                    None
                } else {
                    Some("registered".into())
                },
                detail: Some(format!("n={id}")),
                prev_hash: prev.clone(),
                entry_hash: String::new(),
            };
            e.entry_hash = e.hashed().entry_hash();
            prev = e.entry_hash.clone();
            out.push(e);
        }
        out
    }

    #[test]
    fn genesis_is_64_zeros() {
        assert_eq!(GENESIS_HASH.len(), 64);
        assert!(GENESIS_HASH.bytes().all(|b| b == b'0'));
    }

    #[test]
    fn timestamp_is_fixed_width_utc_with_micros() {
        let t = DateTime::parse_from_rfc3339("2026-05-14T19:05:00.123456789+02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_timestamp(t), "2026-05-14T17:05:00.123456+00:00");
        let t = DateTime::parse_from_rfc3339("2026-05-14T17:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_timestamp(t), "2026-05-14T17:05:00.000000+00:00");
    }

    /// The worked example of docs/audit.md, byte for byte.
    #[test]
    fn worked_example_from_docs() {
        let fields = HashedFields {
            id: 1,
            timestamp: "2026-05-14T17:05:00.000000+00:00",
            operator_cn: "alice",
            action: "approve",
            machine_id: Some("m-1"),
            prev_state: Some("pending_approval"),
            new_state: None,
            detail: Some(""),
            prev_hash: GENESIS_HASH,
        };
        let bytes = fields.canonical_bytes();
        let expected_hex = concat!(
            "6174746573742d61756469742d763100",
            "0000000000000001",
            "01",
            "0000000000000020",
            "323032362d30352d31345431373a30353a30302e3030303030302b30303a3030",
            "01",
            "0000000000000005",
            "616c696365",
            "01",
            "0000000000000007",
            "617070726f7665",
            "01",
            "0000000000000003",
            "6d2d31",
            "01",
            "0000000000000010",
            "70656e64696e675f617070726f76616c",
            "00",
            "01",
            "0000000000000000",
            "01",
            "0000000000000040",
            "30303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030",
        );
        assert_eq!(hex::encode(&bytes), expected_hex);
        assert_eq!(bytes.len(), 215);
        assert_eq!(
            fields.entry_hash(),
            "2999d5df78c5de081dc9a5b75a92ba3d9e96819a9d18acb17d37d8d0eee5c88b"
        );
        assert_eq!(fields.entry_hash(), hex::encode(Sha256::digest(&bytes)));
    }

    #[test]
    fn null_and_empty_hash_differently() {
        let base = HashedFields {
            id: 7,
            timestamp: "t",
            operator_cn: "o",
            action: "a",
            machine_id: None,
            prev_state: None,
            new_state: None,
            detail: None,
            prev_hash: GENESIS_HASH,
        };
        let empty = HashedFields {
            detail: Some(""),
            ..base
        };
        assert_ne!(base.entry_hash(), empty.entry_hash());
        // Moving bytes between adjacent fields changes the hash.
        let a = HashedFields {
            operator_cn: "ab",
            action: "c",
            ..base
        };
        let b = HashedFields {
            operator_cn: "a",
            action: "bc",
            ..base
        };
        assert_ne!(a.entry_hash(), b.entry_hash());
    }

    #[test]
    fn valid_chain_reports_root() {
        let c = chain(5);
        let r = verify_entries(&c);
        assert_eq!(
            r,
            VerifyReport {
                valid: true,
                entries: 5,
                root_hash: Some(c[4].entry_hash.clone()),
                first_invalid_id: None,
                error: None,
            }
        );
    }

    #[test]
    fn empty_chain_is_valid_without_root() {
        let r = verify_entries(&[]);
        assert!(r.valid);
        assert_eq!(r.entries, 0);
        assert_eq!(r.root_hash, None);
        let r = ChainVerifier::new().finish_with_tip(0, GENESIS_HASH);
        assert!(r.valid);
    }

    #[test]
    fn edited_field_is_entry_hash_mismatch() {
        let mut c = chain(5);
        c[2].detail = Some("changed".into());
        let r = verify_entries(&c);
        assert!(!r.valid);
        assert_eq!(r.entries, 5);
        assert_eq!(r.root_hash, None);
        assert_eq!(r.first_invalid_id, Some(3));
        assert_eq!(
            r.error.as_deref(),
            Some("entry_hash mismatch at entry id=3")
        );
    }

    #[test]
    fn rehashed_edit_is_prev_hash_mismatch_at_next() {
        let mut c = chain(5);
        c[2].detail = Some("changed".into());
        c[2].entry_hash = c[2].hashed().entry_hash();
        let r = verify_entries(&c);
        assert_eq!(r.first_invalid_id, Some(4));
        assert_eq!(r.error.as_deref(), Some("prev_hash mismatch at entry id=4"));
    }

    #[test]
    fn first_entry_must_link_to_genesis() {
        let c = chain(3);
        let r = verify_entries(&c[1..]);
        assert_eq!(r.first_invalid_id, Some(2));
        assert_eq!(r.error.as_deref(), Some("prev_hash mismatch at entry id=2"));
    }

    #[test]
    fn gap_and_order_are_detected() {
        let c = chain(5);
        let gap: Vec<_> = c.iter().filter(|e| e.id != 3).cloned().collect();
        let r = verify_entries(&gap);
        assert_eq!(r.first_invalid_id, Some(4));
        assert_eq!(
            r.error.as_deref(),
            Some("id gap at entry id=4 (expected id=3)")
        );
        let mut swapped = c.clone();
        swapped.swap(1, 2);
        let r = verify_entries(&swapped);
        assert_eq!(r.first_invalid_id, Some(3));
        assert_eq!(
            r.error.as_deref(),
            Some("id gap at entry id=3 (expected id=2)")
        );
        let repeated = [c[0].clone(), c[1].clone(), c[1].clone()];
        let r = verify_entries(&repeated);
        assert_eq!(r.entries, 3);
        assert_eq!(r.first_invalid_id, Some(2));
        assert_eq!(
            r.error.as_deref(),
            Some("id out of order at entry id=2 (after id=2)")
        );
    }

    #[test]
    fn tip_catches_truncation_and_extra_rows() {
        let c = chain(5);
        let mut v = ChainVerifier::new();
        for e in &c[..4] {
            v.push(&e.hashed(), &e.entry_hash);
        }
        let r = v.clone().finish_with_tip(5, &c[4].entry_hash);
        assert_eq!(r.first_invalid_id, Some(5));
        assert_eq!(
            r.error.as_deref(),
            Some("entries missing after id=4: chain tip records id=5")
        );
        let r = v.clone().finish_with_tip(3, &c[2].entry_hash);
        assert_eq!(r.first_invalid_id, Some(4));
        let r = v.clone().finish_with_tip(4, GENESIS_HASH);
        assert_eq!(r.first_invalid_id, Some(4));
        let r = v.finish_with_tip(4, &c[3].entry_hash);
        assert!(r.valid);
        assert_eq!(r.root_hash.as_deref(), Some(c[3].entry_hash.as_str()));
        let r = ChainVerifier::new().finish_with_tip(2, &c[1].entry_hash);
        assert_eq!(r.first_invalid_id, Some(1));
    }

    fn expect(id: i64, entries: i64, root_hash: &str) -> ExpectedCheckpoint {
        ExpectedCheckpoint {
            checkpoint: CheckpointRef {
                id: Some(id),
                timestamp: "2026-05-14T18:00:00.000000+00:00".into(),
            },
            entries,
            root_hash: root_hash.into(),
        }
    }

    fn verify_with(entries: &[AuditEntry], checkpoints: Vec<ExpectedCheckpoint>) -> VerifyReport {
        let mut v = ChainVerifier::new().with_checkpoints(checkpoints);
        for e in entries {
            v.push(&e.hashed(), &e.entry_hash);
        }
        let (tip_id, tip_hash) = entries.last().map_or((0, GENESIS_HASH.to_string()), |e| {
            (e.id, e.entry_hash.clone())
        });
        v.finish_with_tip(tip_id, &tip_hash)
    }

    #[test]
    fn chain_matching_its_checkpoints_is_valid() {
        let c = chain(10);
        let r = verify_with(
            &c,
            vec![
                expect(2, 10, &c[9].entry_hash),
                expect(1, 4, &c[3].entry_hash),
                expect(3, 4, &c[3].entry_hash),
            ],
        );
        assert!(r.valid, "{r:?}");
        assert_eq!(r.root_hash.as_deref(), Some(c[9].entry_hash.as_str()));
    }

    /// The newest entries cut off and the tip moved back: a valid shorter
    /// chain, caught only by a checkpoint taken before.
    #[test]
    fn chain_shorter_than_a_checkpoint_is_invalid() {
        let c = chain(10);
        let cut = &c[..7];
        assert!(verify_with(cut, Vec::new()).valid, "undetectable without");
        let r = verify_with(
            cut,
            vec![
                expect(1, 5, &c[4].entry_hash),
                expect(2, 10, &c[9].entry_hash),
                expect(3, 9, &c[8].entry_hash),
            ],
        );
        assert!(!r.valid);
        assert_eq!(r.entries, 7);
        assert_eq!(r.root_hash, None);
        assert_eq!(r.first_invalid_id, Some(8));
        assert_eq!(
            r.error.as_deref(),
            Some(
                "entries missing after id=7: checkpoint id=2 (signed \
                 2026-05-14T18:00:00.000000+00:00) covers 10 entries (the newest entries \
                 were removed)"
            )
        );
        let r = verify_with(&[], vec![expect(1, 1, &c[0].entry_hash)]);
        assert_eq!(r.first_invalid_id, Some(1));
        assert!(r.error.unwrap().starts_with("no entries: checkpoint id=1"));
    }

    /// The chain rewritten from entry 3 on, every hash recomputed: valid on
    /// its own, diverging from a checkpoint at entry 6.
    #[test]
    fn chain_diverging_from_a_checkpoint_is_invalid() {
        let c = chain(10);
        let mut forged = c.clone();
        forged[2].detail = Some("forged".into());
        for i in 2..forged.len() {
            if i > 2 {
                forged[i].prev_hash = forged[i - 1].entry_hash.clone();
            }
            forged[i].entry_hash = forged[i].hashed().entry_hash();
        }
        assert!(
            verify_with(&forged, Vec::new()).valid,
            "undetectable without"
        );
        let r = verify_with(
            &forged,
            vec![
                expect(1, 2, &c[1].entry_hash),
                expect(4, 6, &c[5].entry_hash),
            ],
        );
        assert!(!r.valid);
        assert_eq!(r.first_invalid_id, Some(6));
        assert_eq!(
            r.error.as_deref(),
            Some(
                "chain diverges from checkpoint id=4 (signed \
                 2026-05-14T18:00:00.000000+00:00) at entry id=6 (entries up to id=6 were \
                 altered)"
            )
        );
        assert_eq!(r.entries, 10, "counting goes on");
    }

    #[test]
    fn refused_checkpoint_makes_the_report_invalid() {
        let c = chain(3);
        let mut v = ChainVerifier::new();
        v.reject_checkpoint(
            CheckpointRef {
                id: None,
                timestamp: "t".into(),
            },
            "bad signature",
        );
        for e in &c {
            v.push(&e.hashed(), &e.entry_hash);
        }
        let r = v.finish_with_tip(3, &c[2].entry_hash);
        assert!(!r.valid);
        assert_eq!(r.entries, 3);
        assert_eq!(r.first_invalid_id, None);
        assert_eq!(
            r.error.as_deref(),
            Some("checkpoint (signed t) refused: bad signature")
        );
    }

    #[test]
    fn chain_failures_come_before_checkpoint_failures() {
        let mut c = chain(5);
        c[1].detail = Some("edited".into());
        let r = verify_with(&c[..3], vec![expect(1, 5, "x")]);
        assert_eq!(
            r.error.as_deref(),
            Some("entry_hash mismatch at entry id=2")
        );
    }

    #[test]
    fn report_serializes_with_seed_field_names() {
        let json = serde_json::to_value(verify_entries(&[])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "valid": true,
                "entries": 0,
                "root_hash": null,
                "first_invalid_id": null,
                "error": null
            })
        );
    }

    /// Throughput report; the target (>= 1M entries/s) is for release
    /// builds: `cargo test --release -p attest-domain verifier_is_fast -- --nocapture`.
    /// Only a gross regression fails, and only in release (CPU is shared).
    #[test]
    fn verifier_is_fast() {
        let c = chain(20_000);
        let start = std::time::Instant::now();
        let r = verify_entries(&c);
        assert!(r.valid);
        let per_sec = 20_000.0 / start.elapsed().as_secs_f64();
        eprintln!("verified {per_sec:.0} entries/s");
        if !cfg!(debug_assertions) {
            assert!(per_sec > 100_000.0, "only {per_sec:.0} entries/s");
        }
    }
}
