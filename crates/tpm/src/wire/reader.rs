//! Bounds-checked big-endian cursor used by every TPM structure parser.
//!
//! All TPM wire structures are big-endian with explicit lengths; every read
//! here checks the remaining length first so a hostile input can only ever
//! produce a [`WireError`], never a panic or an out-of-bounds slice.

use super::WireError;

/// A forward-only reader over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Current offset, for error messages.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Takes exactly `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(WireError::Truncated { what })?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(WireError::Truncated { what })?;
        self.pos = end;
        Ok(out)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        let b = self.bytes(1, what)?;
        Ok(b.first().copied().unwrap_or_default())
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.bytes(2, what)?);
        Ok(u16::from_be_bytes(a))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.bytes(4, what)?);
        Ok(u32::from_be_bytes(a))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8, what)?);
        Ok(u64::from_be_bytes(a))
    }

    /// Reads a TPM2B: a `u16` size followed by that many bytes, at most `max`.
    pub fn tpm2b(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let size = usize::from(self.u16(what)?);
        if size > max {
            return Err(WireError::TooLarge { what, size, max });
        }
        self.bytes(size, what)
    }

    /// Fails unless every byte was consumed: trailing data is never silently ignored.
    pub fn finish(&self, what: &'static str) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(WireError::TrailingBytes { what, extra }),
        }
    }
}

/// Big-endian writer used by the encoders.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a TPM2B (size-prefixed buffer). Fails if longer than `u16::MAX`.
    pub fn tpm2b(&mut self, b: &[u8], what: &'static str) -> Result<&mut Self, WireError> {
        let size = u16::try_from(b.len()).map_err(|_| WireError::TooLarge {
            what,
            size: b.len(),
            max: usize::from(u16::MAX),
        })?;
        self.u16(size);
        Ok(self.bytes(b))
    }

    /// The encoded bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Wraps already-encoded bytes into a TPM2B.
pub fn wrap_tpm2b(inner: &[u8], what: &'static str) -> Result<Vec<u8>, WireError> {
    let mut w = Writer::new();
    w.tpm2b(inner, what)?;
    Ok(w.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut r = Reader::new(&[0, 3, 1, 2]);
        assert!(matches!(r.tpm2b(16, "x"), Err(WireError::Truncated { .. })));
        let mut r = Reader::new(&[0, 1]);
        assert!(r.u32("x").is_err());
        let mut r = Reader::new(&[0, 2, 1, 2]);
        assert!(matches!(r.tpm2b(1, "x"), Err(WireError::TooLarge { .. })));
        let mut r = Reader::new(&[0, 2, 1, 2, 9]);
        assert_eq!(r.tpm2b(2, "x").unwrap(), &[1, 2]);
        assert!(r.finish("x").is_err());
    }
}
