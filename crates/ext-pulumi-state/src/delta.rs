//! The checkpoint delta protocol (`PATCH …/checkpointdelta`).
//!
//! The CLI keeps the exact text of the last checkpoint it saved in this
//! update and sends the next one as a JSON list of text edits against it
//! (gotextdiff's `TextEdit`: `{"Span":{"uri","start":{"line","column",
//! "offset"},"end":{…}},"NewText":…}`; only the byte offsets matter) plus
//! the hex SHA-256 of the text the edits must produce. The server applies
//! the edits to its copy and refuses the result unless the hash matches, so
//! a lost or reordered request can never silently corrupt state.

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Why a delta was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The delta is not a list of edits.
    #[error("deploymentDelta is not a list of text edits: {0}")]
    Malformed(String),
    /// An edit's span lies outside the base text, is reversed, overlaps
    /// another edit or splits a UTF-8 character.
    #[error("deploymentDelta has an edit outside the saved checkpoint or overlapping another")]
    BadSpan,
    /// The patched text's hash is not the one the CLI computed.
    #[error("checkpointHash does not match the patched checkpoint")]
    HashMismatch,
}

#[derive(Debug, Deserialize)]
struct Point {
    offset: usize,
}

#[derive(Debug, Deserialize)]
struct Span {
    start: Point,
    end: Point,
}

#[derive(Debug, Deserialize)]
struct TextEdit {
    #[serde(rename = "Span")]
    span: Span,
    #[serde(rename = "NewText")]
    new_text: String,
}

/// Applies `delta` (the JSON text of the edit list) to `base` and checks
/// the result against `expected_hash` (lowercase or uppercase hex).
pub fn apply(base: &str, delta: &str, expected_hash: &str) -> Result<String, DeltaError> {
    let mut edits: Vec<TextEdit> =
        serde_json::from_str(delta).map_err(|e| DeltaError::Malformed(e.to_string()))?;
    // gotextdiff sorts by span before applying; a stable sort keeps
    // insertions at one point in their given order.
    edits.sort_by_key(|e| (e.span.start.offset, e.span.end.offset));
    let mut out = String::with_capacity(base.len());
    let mut cursor = 0usize;
    for edit in &edits {
        let (start, end) = (edit.span.start.offset, edit.span.end.offset);
        if start < cursor
            || end < start
            || end > base.len()
            || !base.is_char_boundary(start)
            || !base.is_char_boundary(end)
        {
            return Err(DeltaError::BadSpan);
        }
        out.push_str(base.get(cursor..start).ok_or(DeltaError::BadSpan)?);
        out.push_str(&edit.new_text);
        cursor = end;
    }
    out.push_str(base.get(cursor..).ok_or(DeltaError::BadSpan)?);
    if !hash_matches(&out, expected_hash) {
        return Err(DeltaError::HashMismatch);
    }
    Ok(out)
}

/// Hex SHA-256 of `text`, as the CLI's `checkpointHash`.
pub fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn hash_matches(text: &str, expected: &str) -> bool {
    hash(text).eq_ignore_ascii_case(expected.trim())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The CLI's own expectations (pulumi/pulumi
    /// `pkg/backend/httpstate/testdata/snapshot_test.json`): the verbatim
    /// checkpoint of request 1, the delta and hash of request 2, and the
    /// delta and hash of request 3 against request 2's result.
    const REQ1: &str = r#"{"version":3,"deployment":{"manifest":{"time":"0001-01-01T00:00:00Z","magic":"","version":""},"metadata":{},"resources":[{"urn":"urn-1","custom":false,"type":"","created":"0001-01-01T00:00:00Z","modified":"0001-01-01T00:00:00Z"}]}}"#;
    const REQ2: &str = r#"[{"Span":{"uri":"","start":{"line":1,"column":1,"offset":121},"end":{"line":1,"column":1,"offset":228}},"NewText":"{\"urn\":\"urn-1\",\"custom\":false,\"type\":\"\",\"created\":\"0001-01-01T00:00:00Z\",\"modified\":\"0001-01-01T00:00:00Z\"},{\"urn\":\"urn-2\",\"custom\":false,\"type\":\"\",\"created\":\"0001-01-01T00:00:00Z\",\"modified\":\"0001-01-01T00:00:00Z\"}"}]"#;
    const REQ2_HASH: &str = "17b0f8743176b4ab13c5a97605f908b7b0a93a134beccee8510ecb9ccdc892db";
    const REQ3: &str = r#"[{"Span":{"uri":"","start":{"line":1,"column":1,"offset":121},"end":{"line":1,"column":1,"offset":336}},"NewText":"{\"urn\":\"urn-1\",\"custom\":false,\"type\":\"\",\"created\":\"0001-01-01T00:00:00Z\",\"modified\":\"0001-01-01T00:00:00Z\"}"}]"#;
    const REQ3_HASH: &str = "7ab2d163b4dbab198818ca732ab1515137b1d98c30637ca0a060929dd263963a";

    #[test]
    fn applies_the_clis_own_vectors() {
        let two = apply(REQ1, REQ2, REQ2_HASH).unwrap();
        assert!(two.contains("urn-2"));
        let three = apply(&two, REQ3, REQ3_HASH).unwrap();
        assert_eq!(three, REQ1, "removing urn-2 gives request 1's text back");
    }

    #[test]
    fn refuses_wrong_hash_bad_spans_and_garbage() {
        assert_eq!(
            apply(REQ1, REQ2, REQ3_HASH).unwrap_err(),
            DeltaError::HashMismatch
        );
        let beyond = REQ2.replace("228", "9999");
        assert_eq!(
            apply(REQ1, &beyond, REQ2_HASH).unwrap_err(),
            DeltaError::BadSpan
        );
        let reversed = REQ2.replace("\"offset\":121", "\"offset\":300");
        assert_eq!(
            apply(REQ1, &reversed, REQ2_HASH).unwrap_err(),
            DeltaError::BadSpan
        );
        let overlapping = r#"[{"Span":{"start":{"offset":0},"end":{"offset":5}},"NewText":"a"},
                              {"Span":{"start":{"offset":3},"end":{"offset":6}},"NewText":"b"}]"#;
        assert_eq!(
            apply("0123456789", overlapping, "00").unwrap_err(),
            DeltaError::BadSpan
        );
        let split = r#"[{"Span":{"start":{"offset":1},"end":{"offset":1}},"NewText":"x"}]"#;
        assert_eq!(apply("é", split, "00").unwrap_err(), DeltaError::BadSpan);
        assert!(matches!(
            apply(REQ1, "{}", REQ2_HASH).unwrap_err(),
            DeltaError::Malformed(_)
        ));
    }

    #[test]
    fn insertions_at_one_point_keep_their_order() {
        let edits = r#"[{"Span":{"start":{"offset":1},"end":{"offset":1}},"NewText":"x"},
                        {"Span":{"start":{"offset":1},"end":{"offset":1}},"NewText":"y"}]"#;
        let want = hash("axyb");
        assert_eq!(apply("ab", edits, &want).unwrap(), "axyb");
    }
}
