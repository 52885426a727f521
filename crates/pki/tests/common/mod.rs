//! Helpers shared by the integration tests that check our output with the
//! real `openssl` binary. A missing `openssl` fails the tests, never skips.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use attest_domain::clock::{ManualClock, SharedClock};
use attest_pki::{CaOptions, EnrollmentCa};
use chrono::Utc;
use secrecy::SecretString;

/// Runs openssl; returns (success, stdout + stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed for these tests");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs openssl and insists that it succeeds.
pub fn openssl_ok(args: &[&str]) -> String {
    let (ok, text) = openssl(args);
    assert!(ok, "openssl {args:?} failed: {text}");
    text
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A fresh default (P-384) CA in `dir`, on a clock that starts now.
pub fn p384_ca(dir: &Path) -> EnrollmentCa {
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    let opts = CaOptions {
        key_passphrase: Some(SecretString::from("p".to_owned())),
        ..CaOptions::default()
    };
    EnrollmentCa::load_or_create(dir, opts, clock).unwrap()
}

/// An operator-style CA made by openssl (`newkey` as for `req -newkey`,
/// e.g. `rsa:2048`, or `ec` with `curve`), loaded with `from_files`.
pub fn openssl_ca(dir: &Path, newkey: &str, curve: Option<&str>) -> EnrollmentCa {
    let key = dir.join("op-ca-key.pem");
    let cert = dir.join("op-ca.pem");
    let mut args = vec!["req", "-x509", "-newkey", newkey];
    if let Some(curve) = curve {
        args.extend(["-pkeyopt", curve]);
    }
    args.extend([
        "-nodes",
        "-keyout",
        p(&key),
        "-out",
        p(&cert),
        "-days",
        "30",
        "-subj",
        "/CN=Operator CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl_ok(&args);
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    EnrollmentCa::from_files(&cert, &key, None, clock).unwrap()
}
