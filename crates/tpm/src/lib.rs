//! TPM 2.0 evidence for the fleet-trust server: EK material and certificate
//! chains, TPMS_ATTEST quotes and their verification, MakeCredential, and the
//! EK-bound config envelopes.
//!
//! Pure Rust: no TPM and no libtss2 at run time. Every parser of untrusted
//! bytes is bounds-checked and fuzzed; every check has its own error variant
//! whose Display text is safe to show to a client. See `docs/tpm.md`.

pub mod ak;
pub mod credential;
pub mod ek;
pub mod ek_chain;
pub mod envelope;
pub mod keys;
pub mod quote;
pub mod soft;
pub mod wire;

pub use ak::{AkError, AkPolicy, AkPublicKey};
pub use keys::{KeyError, PublicKey, SignatureError};
pub use quote::{
    verify_quote, CounterState, PcrValues, QuoteError, QuoteEvidence, QuotePolicy, VerifiedQuote,
};
pub use wire::alg::HashAlg;
