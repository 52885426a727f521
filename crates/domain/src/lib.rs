//! Domain rules with no I/O.
//!
//! Everything here is pure: given inputs (including the current time, passed
//! in through [`clock::Clock`]) it computes outputs. The server and the store
//! call into this crate; it depends only on the wire types in `attest-proto`.

pub mod audit;
pub mod clock;
pub mod machine;
pub mod patch_job;
pub mod rate_limit;
