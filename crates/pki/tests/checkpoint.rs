#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The audit checkpoint key: created once, encrypted at rest like the CA
//! key, reloaded, and its signatures checked by us and by `openssl dgst`.

mod common;

use attest_pki::{
    CheckpointSigner, PassphraseSource, PkiError, CHECKPOINT_KEY_FILE, CHECKPOINT_PASSPHRASE_FILE,
};
use common::{openssl, openssl_ok, p};
use secrecy::SecretString;

const MESSAGE: &[u8] = b"attest-audit-checkpoint-v1\0 example";

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn generated_once_encrypted_at_rest_and_reloaded() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("audit-checkpoint");
    let signer = CheckpointSigner::load_or_create(&dir, None).unwrap();
    assert!(signer.created());
    let key_file = dir.join(CHECKPOINT_KEY_FILE);
    let pass_file = dir.join(CHECKPOINT_PASSPHRASE_FILE);
    assert_eq!(
        signer.passphrase_source(),
        &PassphraseSource::File(pass_file.clone())
    );
    let pem = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
    #[cfg(unix)]
    {
        assert_eq!(mode_of(&dir), 0o700);
        assert_eq!(mode_of(&key_file), 0o600);
        assert_eq!(mode_of(&pass_file), 0o600);
    }
    assert_eq!(signer.key_id().len(), 64);
    assert!(signer
        .public_key_pem()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(!format!("{signer:?}").contains("PRIVATE"));

    // openssl opens the key with the passphrase, and its public half is ours.
    let public = openssl_ok(&[
        "pkey",
        "-in",
        p(&key_file),
        "-passin",
        &format!("file:{}", p(&pass_file)),
        "-pubout",
    ]);
    assert_eq!(public, signer.public_key_pem());
    let (ok, _) = openssl(&[
        "pkey",
        "-in",
        p(&key_file),
        "-passin",
        "pass:wrong",
        "-noout",
    ]);
    assert!(!ok, "the key file is encrypted");

    let again = CheckpointSigner::load_or_create(&dir, None).unwrap();
    assert!(!again.created());
    assert_eq!(again.key_id(), signer.key_id());
    let sig = again.sign(MESSAGE).unwrap();
    signer.verify(MESSAGE, &sig).unwrap();
}

#[test]
fn a_configured_passphrase_is_used_and_required() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("k");
    let pass = || Some(SecretString::from("checkpoint passphrase".to_owned()));
    let signer = CheckpointSigner::load_or_create(&dir, pass()).unwrap();
    assert_eq!(signer.passphrase_source(), &PassphraseSource::Configured);
    assert!(!dir.join(CHECKPOINT_PASSPHRASE_FILE).exists());
    let again = CheckpointSigner::load_or_create(&dir, pass()).unwrap();
    assert_eq!(again.key_id(), signer.key_id());
    let wrong = CheckpointSigner::load_or_create(&dir, Some(SecretString::from("no".to_owned())));
    assert!(matches!(wrong, Err(PkiError::WrongPassphrase)), "{wrong:?}");
    let missing = CheckpointSigner::load_or_create(&dir, None).unwrap_err();
    assert!(missing.to_string().contains("no passphrase"), "{missing}");
}

#[test]
fn signatures_verify_here_and_with_openssl_and_forgeries_do_not() {
    let root = tempfile::tempdir().unwrap();
    let signer = CheckpointSigner::load_or_create(&root.path().join("k"), None).unwrap();
    let sig = signer.sign(MESSAGE).unwrap();
    signer.verify(MESSAGE, &sig).unwrap();

    let msg = root.path().join("msg");
    let sig_file = root.path().join("sig.der");
    let pub_file = root.path().join("pub.pem");
    std::fs::write(&msg, MESSAGE).unwrap();
    std::fs::write(&sig_file, &sig).unwrap();
    std::fs::write(&pub_file, signer.public_key_pem()).unwrap();
    let out = openssl_ok(&[
        "dgst",
        "-sha384",
        "-verify",
        p(&pub_file),
        "-signature",
        p(&sig_file),
        p(&msg),
    ]);
    assert!(out.contains("Verified OK"), "{out}");

    let mismatch = |r: Result<(), PkiError>| {
        assert!(matches!(r, Err(PkiError::SignatureMismatch)), "{r:?}");
    };
    mismatch(signer.verify(b"another message", &sig));
    let mut flipped = sig.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    mismatch(signer.verify(MESSAGE, &flipped));
    mismatch(signer.verify(MESSAGE, b"not DER"));
    mismatch(signer.verify(MESSAGE, &[]));
    let other = CheckpointSigner::load_or_create(&root.path().join("other"), None).unwrap();
    assert_ne!(other.key_id(), signer.key_id());
    mismatch(signer.verify(MESSAGE, &other.sign(MESSAGE).unwrap()));
}

#[test]
fn secret_files_are_created_once_owner_only() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("fresh/master.key");
    let (first, created) = attest_pki::read_or_create_secret_file(&path, || {
        SecretString::from("generated-secret".to_owned())
    })
    .unwrap();
    assert!(created);
    let (again, created) =
        attest_pki::read_or_create_secret_file(&path, || SecretString::from("another".to_owned()))
            .unwrap();
    assert!(!created);
    use secrecy::ExposeSecret;
    assert_eq!(first.expose_secret(), "generated-secret");
    assert_eq!(again.expose_secret(), "generated-secret");
    #[cfg(unix)]
    {
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&root.path().join("fresh")), 0o700);
    }
}
