//! Request bodies as the CLI sends them: JSON, gzip-compressed for the
//! large ones (checkpoints, event batches, imports, batch-decrypt) with
//! `Content-Encoding: gzip`.
//!
//! Decompression is bounded ([`MAX_DECOMPRESSED_BYTES`]) so a small
//! compressed body cannot expand into memory exhaustion; every failure is
//! a 400 or 413 in Pulumi's error shape, never a panic.

use std::io::Read;

use attest_ext::axum::body::Bytes;
use attest_ext::axum::extract::{FromRequest, Request};
use attest_ext::axum::http::header::CONTENT_ENCODING;
use serde::de::DeserializeOwned;

use crate::error::PulumiError;

/// Largest request body on the wire (compressed or not).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Largest body after decompression: a big stack's checkpoint.
pub const MAX_DECOMPRESSED_BYTES: usize = 128 * 1024 * 1024;

/// The body's bytes, gunzipped when `gzip` is true, at most `limit` bytes.
pub fn decode(raw: &[u8], gzip: bool, limit: usize) -> Result<Vec<u8>, PulumiError> {
    if !gzip {
        if raw.len() > limit {
            return Err(too_large());
        }
        return Ok(raw.to_vec());
    }
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(raw)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|_| PulumiError::BadRequest("request body is not valid gzip".into()))?;
    if out.len() > limit {
        return Err(too_large());
    }
    Ok(out)
}

fn too_large() -> PulumiError {
    PulumiError::TooLarge("request body too large".into())
}

/// `bytes` as `T`, or a 400 saying where the JSON is wrong.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PulumiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| PulumiError::BadRequest(format!("invalid request body: {e}")))
}

/// A JSON body, gzip-aware.
#[derive(Debug)]
pub struct PulumiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for PulumiJson<T> {
    type Rejection = PulumiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PulumiError> {
        let gzip = match req.headers().get(CONTENT_ENCODING) {
            None => false,
            Some(v) => match v.to_str().map(|s| s.trim().to_ascii_lowercase()) {
                Ok(enc) if enc == "gzip" || enc == "x-gzip" => true,
                Ok(enc) if enc == "identity" => false,
                _ => {
                    return Err(PulumiError::BadRequest(
                        "unsupported Content-Encoding (only gzip)".into(),
                    ))
                }
            },
        };
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == attest_ext::axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                PulumiError::BadRequest("could not read request body".into())
            }
        })?;
        let bytes = decode(&raw, gzip, MAX_DECOMPRESSED_BYTES)?;
        parse(&bytes).map(PulumiJson)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn gzip_round_trip_and_limits() {
        assert_eq!(decode(&gz(b"{\"a\":1}"), true, 100).unwrap(), b"{\"a\":1}");
        assert_eq!(decode(b"plain", false, 100).unwrap(), b"plain");
        // A bomb: 10 MB of zeros is ~10 KB compressed; the limit stops it.
        let bomb = gz(&vec![0u8; 10_000_000]);
        assert!(matches!(
            decode(&bomb, true, 1_000_000),
            Err(PulumiError::TooLarge(_))
        ));
        assert!(matches!(
            decode(b"not gzip", true, 100),
            Err(PulumiError::BadRequest(_))
        ));
        assert!(matches!(
            decode(&[0u8; 10], false, 5),
            Err(PulumiError::TooLarge(_))
        ));
    }
}
