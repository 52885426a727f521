#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The CA hierarchy of `attest_pki::authority` as the real `openssl`
//! binary sees it: chains verify, extensions read as intended, PKCS#12
//! files open, operator CAs made by openssl import.
//!
//! Without `openssl` on the PATH these tests print a skip notice and pass,
//! except under CI (`CI` set), where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use attest_pki::authority::{
    generate_key_pair, pkcs12_certs_only, Authority, CaRequest, Eku, KeyAlgorithm, LeafRequest,
    NameConstraints,
};
use attest_pki::PkiError;
use chrono::{Duration, Utc};

/// Returns from the test (passing) when openssl is missing, unless under CI.
macro_rules! require_openssl {
    () => {
        if !openssl_available() {
            return;
        }
    };
}

fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is required for these tests under CI"
        );
        eprintln!("SKIPPED: openssl not found on PATH");
    }
    found
}

/// Runs openssl; returns (success, stdout + stderr).
fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn openssl_ok(args: &[&str]) -> String {
    let (ok, text) = openssl(args);
    assert!(ok, "openssl {args:?} failed: {text}");
    text
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn ca_req(cn: &str, alg: KeyAlgorithm, path_len: Option<u8>) -> CaRequest {
    CaRequest {
        common_name: cn.into(),
        organization: Some("Example Org".into()),
        key_algorithm: alg,
        validity: Duration::days(365),
        path_len,
        name_constraints: None,
    }
}

/// A server leaf request for a fresh key of `alg`; the private key PEM too.
fn leaf_req(dns: &str, alg: KeyAlgorithm) -> (LeafRequest, String) {
    let (spki, key_pem) = generate_key_pair(alg).unwrap();
    let req = LeafRequest {
        common_name: dns.into(),
        dns_names: vec![dns.into()],
        public_key_der: spki,
        validity: Duration::days(30),
        extended_key_usages: vec![Eku::ServerAuth],
        ..LeafRequest::default()
    };
    (req, key_pem.to_string())
}

/// `openssl verify -x509_strict` of `leaf` against `root` with the
/// `intermediates` as untrusted chain material.
fn verify(
    dir: &Path,
    root: &Authority,
    intermediates: &[&Authority],
    leaf_pem: &str,
) -> (bool, String) {
    let root_file = write(dir, "root.pem", root.cert_pem());
    let leaf_file = write(dir, "leaf.pem", leaf_pem);
    let chain: String = intermediates.iter().map(|a| a.cert_pem()).collect();
    let mut args = vec!["verify", "-x509_strict", "-CAfile", p(&root_file)];
    let chain_file = write(dir, "intermediates.pem", chain);
    if !intermediates.is_empty() {
        args.extend(["-untrusted", p(&chain_file)]);
    }
    args.push(p(&leaf_file));
    openssl(&args)
}

#[test]
fn root_intermediate_intermediate_leaf_verifies_for_every_key_type() {
    require_openssl!();
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    for (root_alg, mid_alg, issuing_alg, leaf_alg) in [
        (
            KeyAlgorithm::EcP384,
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP256,
        ),
        (
            KeyAlgorithm::Rsa4096,
            KeyAlgorithm::Rsa3072,
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::Rsa2048,
        ),
        (
            KeyAlgorithm::EcP256,
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::EcP384,
        ),
    ] {
        let root = Authority::generate_root(&ca_req("Root", root_alg, Some(2)), now).unwrap();
        let mid = root
            .issue_intermediate(&ca_req("Policy CA", mid_alg, None), now)
            .unwrap();
        let issuing = mid
            .issue_intermediate(&ca_req("Issuing CA", issuing_alg, None), now)
            .unwrap();
        assert_eq!((mid.path_len(), issuing.path_len()), (Some(1), Some(0)));
        let (req, key_pem) = leaf_req("web.example.com", leaf_alg);
        let leaf = issuing.issue_leaf(&req, now).unwrap();

        let (ok, text) = verify(dir.path(), &root, &[&issuing, &mid], &leaf.cert_pem);
        assert!(
            ok && text.contains(": OK"),
            "{root_alg:?}/{mid_alg:?}/{issuing_alg:?}: {text}"
        );
        // As a TLS server certificate for its name, too.
        let root_file = write(dir.path(), "root.pem", root.cert_pem());
        let chain_file = write(
            dir.path(),
            "chain.pem",
            issuing.cert_pem() + &mid.cert_pem(),
        );
        let leaf_file = write(dir.path(), "leaf.pem", &leaf.cert_pem);
        openssl_ok(&[
            "verify",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "web.example.com",
            "-CAfile",
            p(&root_file),
            "-untrusted",
            p(&chain_file),
            p(&leaf_file),
        ]);
        // Without the intermediates the chain does not build.
        let (ok, _) = verify(dir.path(), &root, &[], &leaf.cert_pem);
        assert!(!ok);

        // The generated private key is the certified key's other half.
        let key_file = write(dir.path(), "leaf-key.pem", &key_pem);
        let from_key = openssl_ok(&["pkey", "-in", p(&key_file), "-pubout"]);
        let from_cert = openssl_ok(&["x509", "-in", p(&leaf_file), "-noout", "-pubkey"]);
        assert_eq!(from_key, from_cert);
        // The serial and fingerprint we report are openssl's.
        let serial = openssl_ok(&["x509", "-in", p(&leaf_file), "-noout", "-serial"]);
        assert_eq!(
            serial.trim().to_lowercase(),
            format!("serial={}", leaf.serial_hex)
        );
        let fp = openssl_ok(&[
            "x509",
            "-in",
            p(&leaf_file),
            "-noout",
            "-fingerprint",
            "-sha256",
        ]);
        let fp = fp
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase();
        assert_eq!(fp, leaf.fingerprint_sha256);
    }
}

#[test]
fn openssl_shows_the_requested_extensions() {
    require_openssl!();
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let root = Authority::generate_root(&ca_req("Root", KeyAlgorithm::EcP256, None), now).unwrap();
    let (mut req, _) = leaf_req("svc.example.com", KeyAlgorithm::EcP256);
    req.ip_addresses = vec!["192.0.2.7".parse().unwrap()];
    req.emails = vec!["ops@example.com".into()];
    req.uris = vec!["spiffe://example.com/svc".into()];
    req.extended_key_usages = [
        "serverAuth",
        "clientAuth",
        "codeSigning",
        "emailProtection",
        "timeStamping",
        "OCSPSigning",
    ]
    .iter()
    .map(|s| Eku::parse(s).unwrap())
    .collect();
    req.crl_distribution_points = vec!["http://crl.example.com/root.crl".into()];
    req.ocsp_urls = vec!["http://ocsp.example.com/".into()];
    req.ca_issuers_urls = vec!["http://pki.example.com/root.cer".into()];
    let leaf = root.issue_leaf(&req, now).unwrap();
    let leaf_file = write(dir.path(), "leaf.pem", &leaf.cert_pem);
    let text = openssl_ok(&["x509", "-in", p(&leaf_file), "-noout", "-text"]);
    for expected in [
        "Signature Algorithm: ecdsa-with-SHA256",
        "Subject: CN = svc.example.com",
        "X509v3 Basic Constraints: critical\n                CA:FALSE",
        "X509v3 Key Usage: critical\n                Digital Signature\n",
        "TLS Web Server Authentication, TLS Web Client Authentication, Code Signing, E-mail Protection, Time Stamping, OCSP Signing",
        "DNS:svc.example.com, IP Address:192.0.2.7, email:ops@example.com, URI:spiffe://example.com/svc",
        "X509v3 CRL Distribution Points:",
        "URI:http://crl.example.com/root.crl",
        "OCSP - URI:http://ocsp.example.com/",
        "CA Issuers - URI:http://pki.example.com/root.cer",
        "X509v3 Subject Key Identifier:",
        "X509v3 Authority Key Identifier:",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("Subject Alternative Name: critical"),
        "{text}"
    );

    // The CA side: critical basicConstraints with pathLen, keyUsage, name constraints.
    let mut ca = ca_req("Constrained", KeyAlgorithm::EcP384, Some(1));
    ca.name_constraints = Some(NameConstraints {
        permitted_dns: vec!["example.com".into(), ".example.net".into()],
        excluded_dns: vec!["secret.example.com".into()],
    });
    let constrained = root.issue_intermediate(&ca, now).unwrap();
    let ca_file = write(dir.path(), "ca.pem", constrained.cert_pem());
    let text = openssl_ok(&["x509", "-in", p(&ca_file), "-noout", "-text"]);
    for expected in [
        "X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:1",
        "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign",
        "X509v3 Name Constraints: critical",
        "Permitted:\n                  DNS:example.com\n                  DNS:.example.net",
        "Excluded:\n                  DNS:secret.example.com",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn name_constraints_hold_in_our_code_and_in_openssl() {
    require_openssl!();
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let mut req = ca_req("Root", KeyAlgorithm::EcP256, None);
    req.name_constraints = Some(NameConstraints {
        permitted_dns: vec!["example.com".into()],
        excluded_dns: vec!["secret.example.com".into()],
    });
    let root = Authority::generate_root(&req, now).unwrap();
    let issuing = root
        .issue_intermediate(&ca_req("Issuing", KeyAlgorithm::EcP256, None), now)
        .unwrap();

    // Inside: issued, and openssl (which checks name constraints) agrees.
    let (inside, _) = leaf_req("api.example.com", KeyAlgorithm::EcP256);
    let leaf = issuing.issue_leaf(&inside, now).unwrap();
    let (ok, text) = verify(dir.path(), &root, &[&issuing], &leaf.cert_pem);
    assert!(ok, "{text}");

    // Outside the permitted subtree, or in the excluded one: refused by us.
    for name in [
        "api.example.org",
        "secret.example.com",
        "x.secret.example.com",
        "*.example.com",
    ] {
        let (mut req, _) = leaf_req("svc", KeyAlgorithm::EcP256);
        req.dns_names = vec![name.into()];
        match issuing.issue_leaf(&req, now) {
            Err(PkiError::NameConstraintViolation(m)) => assert!(m.contains(name), "{m}"),
            other => panic!("{name}: expected a name-constraint refusal, got {other:?}"),
        }
    }
    // A sub-CA reaching outside the parent's permitted subtrees is refused.
    let mut wide = ca_req("Wide", KeyAlgorithm::EcP256, None);
    wide.name_constraints = Some(NameConstraints {
        permitted_dns: vec!["example.org".into()],
        excluded_dns: vec![],
    });
    assert!(matches!(
        root.issue_intermediate(&wide, now),
        Err(PkiError::NameConstraintViolation(_))
    ));
}

#[test]
fn path_len_zero_issues_leaves_but_no_sub_ca() {
    require_openssl!();
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let root = Authority::generate_root(&ca_req("Root", KeyAlgorithm::EcP256, None), now).unwrap();
    let issuing = root
        .issue_intermediate(&ca_req("Issuing", KeyAlgorithm::EcP256, Some(0)), now)
        .unwrap();
    match issuing.issue_intermediate(&ca_req("Sub", KeyAlgorithm::EcP256, None), now) {
        Err(PkiError::PathLength(m)) => assert!(m.contains("pathLen 0"), "{m}"),
        other => panic!("expected a path length refusal, got {other:?}"),
    }
    let (req, _) = leaf_req("a.example.com", KeyAlgorithm::EcP256);
    let leaf = issuing.issue_leaf(&req, now).unwrap();
    let (ok, text) = verify(dir.path(), &root, &[&issuing], &leaf.cert_pem);
    assert!(ok, "{text}");
}

#[test]
fn pkcs12_certs_only_opens_in_openssl_with_and_without_a_password() {
    require_openssl!();
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let root =
        Authority::generate_root(&ca_req("P12 Root", KeyAlgorithm::EcP384, None), now).unwrap();
    let issuing = root
        .issue_intermediate(&ca_req("P12 Issuing", KeyAlgorithm::Rsa2048, None), now)
        .unwrap();
    let (req, _) = leaf_req("p12.example.com", KeyAlgorithm::EcP256);
    let leaf = issuing.issue_leaf(&req, now).unwrap();
    let chain = vec![
        leaf.cert_der.clone(),
        issuing.cert_der().to_vec(),
        root.cert_der().to_vec(),
    ];

    for password in ["", "correct horse battery staple", "pässwörd€"] {
        let file = write(
            dir.path(),
            "out.p12",
            pkcs12_certs_only(&chain, password).unwrap(),
        );
        let pass = format!("pass:{password}");
        let text = openssl_ok(&["pkcs12", "-in", p(&file), "-nokeys", "-passin", &pass]);
        assert_eq!(
            text.matches("-----BEGIN CERTIFICATE-----").count(),
            3,
            "{text}"
        );
        for cn in ["CN = p12.example.com", "CN = P12 Issuing", "CN = P12 Root"] {
            assert!(text.contains(cn), "{cn} missing: {text}");
        }
        // The certificates come back byte for byte, in order.
        let pems: Vec<&str> = text
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|s| s.split("-----END CERTIFICATE-----").next().unwrap())
            .collect();
        let expected = [leaf.cert_pem.clone(), issuing.cert_pem(), root.cert_pem()];
        for (got, want) in pems.iter().zip(&expected) {
            assert!(want.contains(got.trim()), "certificate changed");
        }
        let info = openssl_ok(&[
            "pkcs12",
            "-in",
            p(&file),
            "-info",
            "-noout",
            "-passin",
            &pass,
        ]);
        assert!(info.contains("MAC: sha256"), "{info}");
        // The MAC is checked: a wrong password is refused.
        let (ok, text) = openssl(&[
            "pkcs12",
            "-in",
            p(&file),
            "-nokeys",
            "-passin",
            "pass:wrong",
        ]);
        assert!(!ok, "wrong password accepted: {text}");
    }
}

#[test]
fn openssl_made_cas_import_and_bad_pairs_do_not() {
    require_openssl!();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let now = Utc::now();
    let make_ca = |name: &str, newkey: &[&str], ca: bool| -> (PathBuf, PathBuf) {
        let key = d.join(format!("{name}-key.pem"));
        let cert = d.join(format!("{name}.pem"));
        let bc = if ca {
            "basicConstraints=critical,CA:TRUE"
        } else {
            "basicConstraints=critical,CA:FALSE"
        };
        let subj = format!("/O=Operator/CN={name}");
        let mut args = vec!["req", "-x509"];
        args.extend(newkey);
        args.extend([
            "-nodes",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
            "-days",
            "30",
            "-subj",
            &subj,
            "-addext",
            bc,
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl_ok(&args);
        (cert, key)
    };
    let read = |path: &Path| std::fs::read_to_string(path).unwrap();

    let cases: [(&str, &[&str], KeyAlgorithm); 3] = [
        (
            "op-p256",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyAlgorithm::EcP256,
        ),
        (
            "op-p384",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            KeyAlgorithm::EcP384,
        ),
        ("op-rsa", &["-newkey", "rsa:3072"], KeyAlgorithm::Rsa3072),
    ];
    for (name, newkey, alg) in cases {
        let (cert, key) = make_ca(name, newkey, true);
        let ca = Authority::import(&read(&cert), &read(&key)).unwrap();
        assert_eq!(ca.key_algorithm(), alg);
        assert!(ca.is_self_signed());
        assert_eq!(ca.subject(), format!("CN={name},O=Operator"));
        assert_eq!(ca.path_len(), None);
        let (req, _) = leaf_req("imported.example.com", KeyAlgorithm::EcP256);
        let leaf = ca.issue_leaf(&req, now).unwrap();
        let (ok, text) = verify(d, &ca, &[], &leaf.cert_pem);
        assert!(ok, "{name}: {text}");

        // SEC1 / PKCS#1 encodings of the same key import too.
        let traditional = d.join(format!("{name}-trad.pem"));
        if alg == KeyAlgorithm::Rsa3072 {
            openssl_ok(&[
                "rsa",
                "-in",
                p(&key),
                "-out",
                p(&traditional),
                "-traditional",
            ]);
        } else {
            // `openssl ec` writes SEC1 by default.
            openssl_ok(&["ec", "-in", p(&key), "-out", p(&traditional)]);
        }
        let text = read(&traditional);
        assert!(
            text.contains("BEGIN EC PRIVATE KEY") || text.contains("BEGIN RSA PRIVATE KEY"),
            "{text}"
        );
        let again = Authority::import(&read(&cert), &text).unwrap();
        assert_eq!(again.key_id(), ca.key_id());

        // from_parts(key_pkcs8_der) round-trips, and openssl reads the key.
        let pkcs8 = ca.key_pkcs8_der().unwrap();
        let reloaded = Authority::from_parts(ca.cert_der(), &pkcs8).unwrap();
        assert_eq!(reloaded.cert_der(), ca.cert_der());
        assert_eq!(reloaded.key_pkcs8_der().unwrap(), pkcs8);
        let der_file = write(d, "key.der", pkcs8.as_slice());
        let from_der = openssl_ok(&["pkey", "-inform", "DER", "-in", p(&der_file), "-pubout"]);
        let from_cert = openssl_ok(&["x509", "-in", p(&cert), "-noout", "-pubkey"]);
        assert_eq!(from_der, from_cert);
    }

    // A key file with EC PARAMETERS before the key (openssl ecparam -genkey).
    let key = d.join("ecparam-key.pem");
    let cert = d.join("ecparam.pem");
    openssl_ok(&["ecparam", "-name", "prime256v1", "-genkey", "-out", p(&key)]);
    openssl_ok(&[
        "req",
        "-x509",
        "-new",
        "-key",
        p(&key),
        "-out",
        p(&cert),
        "-days",
        "30",
        "-subj",
        "/CN=ecparam",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
    ]);
    let ca = Authority::import(&read(&cert), &read(&key)).unwrap();
    assert_eq!(ca.path_len(), Some(0));

    // Name constraints openssl wrote are read and enforced; kinds this
    // module cannot enforce are refused at import.
    let constrained = |name: &str, nc: &str| -> Result<Authority, PkiError> {
        let key = d.join(format!("{name}-key.pem"));
        let cert = d.join(format!("{name}.pem"));
        let subj = format!("/CN={name}");
        openssl_ok(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
            "-days",
            "30",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            nc,
        ]);
        Authority::import(&read(&cert), &read(&key))
    };
    let ca = constrained(
        "nc-dns",
        "nameConstraints=critical,permitted;DNS:example.com,excluded;DNS:secret.example.com",
    )
    .unwrap();
    let nc = ca.name_constraints().unwrap();
    assert_eq!(nc.permitted_dns, vec!["example.com"]);
    assert_eq!(nc.excluded_dns, vec!["secret.example.com"]);
    let (mut req, _) = leaf_req("ok.example.com", KeyAlgorithm::EcP256);
    let leaf = ca.issue_leaf(&req, now).unwrap();
    let (ok, text) = verify(d, &ca, &[], &leaf.cert_pem);
    assert!(ok, "{text}");
    req.dns_names = vec!["secret.example.com".into()];
    assert!(matches!(
        ca.issue_leaf(&req, now),
        Err(PkiError::NameConstraintViolation(_))
    ));
    assert!(matches!(
        constrained("nc-ip", "nameConstraints=critical,permitted;IP:10.0.0.0/255.0.0.0"),
        Err(PkiError::NameConstraintViolation(m)) if m.contains("iPAddress")
    ));

    // Not a CA.
    let (leaf_cert, leaf_key) = make_ca(
        "not-a-ca",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        false,
    );
    assert!(matches!(
        Authority::import(&read(&leaf_cert), &read(&leaf_key)),
        Err(PkiError::NotACa(_))
    ));
    // A key that is not the certificate's.
    let (p256_cert, _) = (d.join("op-p256.pem"), ());
    assert!(matches!(
        Authority::import(&read(&p256_cert), &read(&d.join("op-p384-key.pem"))),
        Err(PkiError::KeyMismatch)
    ));
    assert!(matches!(
        Authority::import(&read(&p256_cert), &read(&leaf_key)),
        Err(PkiError::KeyMismatch)
    ));
    // An encrypted key needs a passphrase this API does not take.
    let encrypted = d.join("enc-key.pem");
    openssl_ok(&[
        "pkey",
        "-in",
        p(&d.join("op-p256-key.pem")),
        "-out",
        p(&encrypted),
        "-aes256",
        "-passout",
        "pass:x",
    ]);
    assert!(Authority::import(&read(&p256_cert), &read(&encrypted)).is_err());
}

/// The in-process signing floor: single-thread P-256 leaf issuances per
/// second from a P-256 issuing CA (fresh serial, full extension set, PEM
/// and fingerprint). Run optimised:
/// `cargo test --release -p attest-pki --test authority -- --ignored --nocapture leaf_issuance_rate`
#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn leaf_issuance_rate() {
    let now = Utc::now();
    for ca_alg in [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::Rsa2048,
    ] {
        let root = Authority::generate_root(&ca_req("Bench Root", ca_alg, None), now).unwrap();
        let issuing = root
            .issue_intermediate(&ca_req("Bench Issuing", ca_alg, Some(0)), now)
            .unwrap();
        let (mut req, _) = leaf_req("bench.example.com", KeyAlgorithm::EcP256);
        req.dns_names.push("www.bench.example.com".into());
        req.extended_key_usages = vec![Eku::ServerAuth, Eku::ClientAuth];
        req.crl_distribution_points = vec!["http://crl.example.com/issuing.crl".into()];
        req.ocsp_urls = vec!["http://ocsp.example.com".into()];
        for _ in 0..100 {
            issuing.issue_leaf(&req, now).unwrap();
        }
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed().as_secs_f64() < 3.0 {
            for _ in 0..100 {
                issuing.issue_leaf(&req, now).unwrap();
            }
            n += 100;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{ca_alg:?} issuing CA, P-256 leaf key: {n} leaves in {secs:.2} s = {:.0} leaves/s (single thread, {:.1} us each)",
            f64::from(n) / secs,
            secs * 1e6 / f64::from(n)
        );
    }
}
