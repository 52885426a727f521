//! TPM 2.0 wire structures (TPM 2.0 Library Part 2): parsers and encoders.
//!
//! Parsers take untrusted bytes from the network, so each one is
//! bounds-checked, size-limited and total: it returns a [`WireError`] for any
//! malformed input and never panics (fuzzed, see `fuzz/`). Encoders exist so
//! tests, benchmarks and the software signer in [`crate::soft`] can produce
//! genuine structures without a TPM.

pub mod alg;
pub mod attest;
pub mod pcr;
pub mod public;
pub mod reader;
pub mod signature;

pub use attest::{Attest, AttestBody, ClockInfo, QuoteInfo};
pub use pcr::{PcrSelection, PcrSelectionBank};
pub use public::{EccScheme, PublicArea, PublicParams, PublicUnique, RsaScheme, SymDef};
pub use reader::{Reader, Writer};
pub use signature::Signature;

/// Why a TPM structure could not be parsed or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ended inside a field.
    #[error("truncated TPM structure: input ends inside {what}")]
    Truncated {
        /// Field being read.
        what: &'static str,
    },
    /// A size field exceeds what the structure allows.
    #[error("{what} is {size} bytes, more than the allowed {max}")]
    TooLarge {
        /// Field being read.
        what: &'static str,
        /// Claimed size.
        size: usize,
        /// Maximum allowed.
        max: usize,
    },
    /// Bytes left after a complete structure.
    #[error("{extra} unexpected trailing bytes after {what}")]
    TrailingBytes {
        /// Structure that was complete.
        what: &'static str,
        /// Number of extra bytes.
        extra: usize,
    },
    /// An algorithm or selector value this library does not handle.
    #[error("unsupported {what} 0x{value:04x}")]
    Unsupported {
        /// Field being read.
        what: &'static str,
        /// Value found.
        value: u32,
    },
    /// A value that the specification forbids.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Field being read.
        what: &'static str,
        /// Explanation.
        reason: &'static str,
    },
}
