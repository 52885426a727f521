//! Decoder for PostgreSQL's binary `COPY … TO STDOUT` stream of audit rows.
//!
//! Audit verification reads the log with `COPY` so that each row's bytes
//! are hashed where they arrive, without the driver's per-row decoding into
//! owned values, which was the limit. The stream's layout (PostgreSQL
//! docs, "COPY", binary format): an 11-byte signature, a 4-byte flags
//! word, a 4-byte header-extension length and that many bytes; then per
//! row a 2-byte field count, and per field a 4-byte length (-1 for NULL)
//! and the bytes; then a field count of -1. Every integer is big-endian.
//! Bytes arrive in arbitrary chunks, so a row may span several.

use attest_domain::audit::HashedFields;

/// The binary COPY signature.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Columns per row, in [`super::COLUMNS`] order.
const FIELDS: usize = 10;

/// Why the stream cannot be decoded. The bytes come from our own
/// database, so any of these means a driver or server fault, not a
/// tampered chain (tampering shows up as hash mismatches).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    #[error("COPY stream does not start with the binary signature")]
    Signature,
    #[error("COPY stream sets unsupported header flags {0:#x}")]
    Flags(u32),
    #[error("COPY row has {0} fields, expected {FIELDS}")]
    FieldCount(i16),
    #[error("COPY field {0} has invalid length {1}")]
    Length(usize, i32),
    #[error("COPY field {0} is NULL but the column is NOT NULL")]
    Null(usize),
    #[error("COPY field {0} is not UTF-8")]
    Utf8(usize),
    #[error("COPY data continues after the trailer")]
    AfterTrailer,
    #[error("COPY stream ended inside the header or a row, or without its trailer")]
    Truncated,
}

/// Incremental decoder: [`feed`](Self::feed) chunks as they arrive, then
/// [`finish`](Self::finish).
#[derive(Debug, Default)]
pub struct CopyRows {
    /// Bytes not yet consumed (a partial header or row).
    pending: Vec<u8>,
    header_done: bool,
    trailer_seen: bool,
}

impl CopyRows {
    /// A decoder expecting the header next.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes every complete row in `chunk` (plus what was pending),
    /// passing each row's hashed fields and stored `entry_hash` to `row`.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut row: impl FnMut(&HashedFields<'_>, &str),
    ) -> Result<(), CopyError> {
        if self.trailer_seen && !chunk.is_empty() {
            return Err(CopyError::AfterTrailer);
        }
        self.pending.extend_from_slice(chunk);
        let mut at = 0;
        if !self.header_done {
            match header_len(&self.pending)? {
                Some(n) => {
                    at = n;
                    self.header_done = true;
                }
                None => return Ok(()),
            }
        }
        loop {
            match decode_row(&self.pending[at..])? {
                Row::Incomplete => break,
                Row::Trailer => {
                    at += 2;
                    self.trailer_seen = true;
                    if at != self.pending.len() {
                        return Err(CopyError::AfterTrailer);
                    }
                    break;
                }
                Row::Entry(len, fields, stored) => {
                    row(&fields, stored);
                    at += len;
                }
            }
        }
        self.pending.drain(..at);
        Ok(())
    }

    /// Checks that the stream ended exactly after its trailer.
    pub fn finish(self) -> Result<(), CopyError> {
        if self.trailer_seen && self.pending.is_empty() {
            Ok(())
        } else {
            Err(CopyError::Truncated)
        }
    }
}

/// The header's length once all of it is present.
fn header_len(buf: &[u8]) -> Result<Option<usize>, CopyError> {
    let Some(signature) = buf.get(..SIGNATURE.len()) else {
        return if SIGNATURE.starts_with(buf) {
            Ok(None)
        } else {
            Err(CopyError::Signature)
        };
    };
    if signature != SIGNATURE {
        return Err(CopyError::Signature);
    }
    let (Some(flags), Some(extension)) = (be_u32(buf, 11), be_u32(buf, 15)) else {
        return Ok(None);
    };
    // Bits 0-15 are reserved for changes a reader must understand, and bit
    // 16 means each row carries an OID, which this query never asks for:
    // refuse those. Bits 17-31 are optional extensions a reader ignores.
    if flags & 0x0001_ffff != 0 {
        return Err(CopyError::Flags(flags));
    }
    let len = usize::try_from(extension)
        .ok()
        .and_then(|e| e.checked_add(19))
        .ok_or(CopyError::Truncated)?;
    Ok((buf.len() >= len).then_some(len))
}

enum Row<'a> {
    Incomplete,
    Trailer,
    /// Bytes used, the hashed fields, the stored entry hash.
    Entry(usize, HashedFields<'a>, &'a str),
}

fn decode_row(buf: &[u8]) -> Result<Row<'_>, CopyError> {
    let Some(count) = buf.get(..2) else {
        return Ok(Row::Incomplete);
    };
    let count = i16::from_be_bytes([count[0], count[1]]);
    if count == -1 {
        return Ok(Row::Trailer);
    }
    if usize::try_from(count).ok() != Some(FIELDS) {
        return Err(CopyError::FieldCount(count));
    }
    let mut at = 2;
    let mut values: [Option<&[u8]>; FIELDS] = [None; FIELDS];
    for (i, value) in values.iter_mut().enumerate() {
        let Some(len) = be_u32(buf, at) else {
            return Ok(Row::Incomplete);
        };
        at += 4;
        let len = len as i32;
        if len == -1 {
            continue;
        }
        let n = usize::try_from(len).map_err(|_| CopyError::Length(i, len))?;
        let end = at.checked_add(n).ok_or(CopyError::Length(i, len))?;
        let Some(bytes) = buf.get(at..end) else {
            return Ok(Row::Incomplete);
        };
        *value = Some(bytes);
        at = end;
    }
    let text = |i: usize| -> Result<Option<&str>, CopyError> {
        values[i]
            .map(|b| std::str::from_utf8(b).map_err(|_| CopyError::Utf8(i)))
            .transpose()
    };
    let required = |i: usize| text(i)?.ok_or(CopyError::Null(i));
    let id = match values[0] {
        Some(b) => <[u8; 8]>::try_from(b)
            .map(i64::from_be_bytes)
            .map_err(|_| CopyError::Length(0, b.len() as i32))?,
        None => return Err(CopyError::Null(0)),
    };
    let fields = HashedFields {
        id,
        timestamp: required(1)?,
        operator_cn: required(2)?,
        action: required(3)?,
        machine_id: text(4)?,
        prev_state: text(5)?,
        new_state: text(6)?,
        detail: text(7)?,
        prev_hash: required(8)?,
    };
    Ok(Row::Entry(at, fields, required(9)?))
}

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Owned copy of what the decoder hands out, for comparisons.
    type Decoded = (i64, Vec<Option<String>>, String);

    fn encode(rows: &[(i64, [Option<&str>; 9])]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        for (id, texts) in rows {
            out.extend_from_slice(&10i16.to_be_bytes());
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&id.to_be_bytes());
            for t in texts {
                match t {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(s) => {
                        out.extend_from_slice(&(s.len() as i32).to_be_bytes());
                        out.extend_from_slice(s.as_bytes());
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn sample() -> Vec<(i64, [Option<&'static str>; 9])> {
        vec![
            (
                1,
                [
                    Some("2026-05-14T17:05:00.000000+00:00"),
                    Some("alice"),
                    Some("approve"),
                    Some("m-1"),
                    None,
                    Some("registered"),
                    Some(""),
                    Some("0000"),
                    Some("aaaa"),
                ],
            ),
            (
                2,
                [
                    Some("t"),
                    Some("bob"),
                    Some("lock"),
                    None,
                    None,
                    None,
                    None,
                    Some("aaaa"),
                    Some("bbbb"),
                ],
            ),
        ]
    }

    fn decode_in_chunks(bytes: &[u8], cut: usize) -> Result<Vec<Decoded>, CopyError> {
        let mut out = Vec::new();
        let mut rows = CopyRows::new();
        let (a, b) = bytes.split_at(cut);
        for chunk in [a, b] {
            rows.feed(chunk, |f, stored| {
                out.push((
                    f.id,
                    [
                        Some(f.timestamp),
                        Some(f.operator_cn),
                        Some(f.action),
                        f.machine_id,
                        f.prev_state,
                        f.new_state,
                        f.detail,
                        Some(f.prev_hash),
                    ]
                    .iter()
                    .map(|v| v.map(str::to_owned))
                    .collect(),
                    stored.to_owned(),
                ))
            })?;
        }
        rows.finish()?;
        Ok(out)
    }

    #[test]
    fn rows_decode_whatever_the_chunking() {
        let rows = sample();
        let bytes = encode(&rows);
        let expected: Vec<Decoded> = rows
            .iter()
            .map(|(id, t)| {
                (
                    *id,
                    t[..8].iter().map(|v| v.map(str::to_owned)).collect(),
                    t[8].unwrap().to_owned(),
                )
            })
            .collect();
        for cut in 0..=bytes.len() {
            assert_eq!(
                decode_in_chunks(&bytes, cut).unwrap(),
                expected,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn optional_header_flags_are_ignored() {
        let mut bytes = encode(&sample());
        bytes[11..15].copy_from_slice(&0x8002_0000u32.to_be_bytes());
        assert_eq!(decode_in_chunks(&bytes, 3).unwrap().len(), 2);
    }

    #[test]
    fn an_empty_table_is_header_and_trailer() {
        let bytes = encode(&[]);
        assert_eq!(decode_in_chunks(&bytes, 5).unwrap(), vec![]);
    }

    #[test]
    fn damaged_streams_are_refused() {
        let good = encode(&sample());
        let cases: Vec<(Vec<u8>, CopyError)> = vec![
            (b"PGCOPX\n\xff\r\n\0".to_vec(), CopyError::Signature),
            (b"NOPE".to_vec(), CopyError::Signature),
            (
                {
                    let mut b = good.clone();
                    b[11..15].copy_from_slice(&0x0001_0000u32.to_be_bytes());
                    b
                },
                CopyError::Flags(0x0001_0000),
            ),
            (good[..good.len() - 1].to_vec(), CopyError::Truncated),
            (good[..40].to_vec(), CopyError::Truncated),
            (
                {
                    let mut b = good.clone();
                    b.push(0);
                    b
                },
                CopyError::AfterTrailer,
            ),
            (
                {
                    let mut b = good.clone();
                    b[19..21].copy_from_slice(&9i16.to_be_bytes());
                    b
                },
                CopyError::FieldCount(9),
            ),
            (
                {
                    // A NULL id: length -1 and no value bytes.
                    let mut b = good.clone();
                    b[21..25].copy_from_slice(&(-1i32).to_be_bytes());
                    b.drain(25..33);
                    b
                },
                CopyError::Null(0),
            ),
            (
                {
                    let mut b = good.clone();
                    b[21..25].copy_from_slice(&(-7i32).to_be_bytes());
                    b
                },
                CopyError::Length(0, -7),
            ),
            (
                {
                    // The operator field ("alice") holds invalid UTF-8.
                    let at = good.windows(5).position(|w| w == b"alice").unwrap();
                    let mut b = good.clone();
                    b[at] = 0xff;
                    b
                },
                CopyError::Utf8(2),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode_in_chunks(&bytes, bytes.len() / 2), Err(want));
        }
    }
}
