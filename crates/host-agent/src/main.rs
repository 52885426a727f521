//! `attestation-agent`: the host agent binary.
fn main() {}
