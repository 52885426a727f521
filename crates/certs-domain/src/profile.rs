//! Certificate profiles: what a profile may say, and whether an issuance
//! obeys it. Every violation names the rule it broke, so the client's 400
//! says what to change.

use attest_proto::certs::catalog::{CertificateProfile, KeyAlgorithmRule};
use regex::Regex;

/// Extended key usages a profile may list (the seed's enum).
pub const EKUS: &[&str] = &[
    "serverAuth",
    "clientAuth",
    "codeSigning",
    "emailProtection",
    "timeStamping",
];

/// Key algorithms a profile may allow.
pub const ALGORITHMS: &[&str] = &["RSA", "ECDSA", "Ed25519"];

/// Validity below which a certificate is short-lived.
pub const SHORT_LIVED_SECONDS: i64 = 3600;

/// The key of a certificate to be issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// `RSA`, `ECDSA` or `Ed25519`.
    pub algorithm: &'static str,
    /// Modulus or curve size in bits.
    pub bits: u32,
}

/// What an issuance asks for.
#[derive(Debug, Clone, Copy)]
pub struct Issuance<'a> {
    pub key: KeyInfo,
    pub ttl_seconds: i64,
    pub ekus: &'a [String],
    pub dns_names: &'a [String],
    pub ip_addresses: &'a [String],
    pub emails: &'a [String],
    pub uris: &'a [String],
}

/// Why an issuance breaks its profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("profile {0} is disabled")]
    Disabled(String),
    #[error("profile {profile} does not allow {algorithm} keys (allowed: {allowed})")]
    Algorithm {
        profile: String,
        algorithm: String,
        allowed: String,
    },
    #[error("profile {profile} requires {algorithm} keys of at least {min} bits, got {got}")]
    KeySize {
        profile: String,
        algorithm: String,
        min: i64,
        got: u32,
    },
    #[error("profile {profile} allows at most {max} s of validity, asked for {asked} s")]
    Ttl {
        profile: String,
        max: i64,
        asked: i64,
    },
    #[error("profile {0} does not allow short-lived certificates (under 3600 s)")]
    ShortLived(String),
    #[error("profile {profile} does not allow extended key usage {eku}")]
    Eku { profile: String, eku: String },
    #[error("subject alternative name {name:?} matches none of profile {profile}'s required_san_patterns")]
    San { profile: String, name: String },
    #[error("URI {uri:?} does not match profile {profile}'s spiffe_uri_pattern")]
    Uri { profile: String, uri: String },
}

fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// Checks a profile's own fields (before it is stored).
pub fn validate(p: &CertificateProfile) -> Result<(), String> {
    if p.name.trim().is_empty() || p.name.chars().count() > 255 {
        return Err("name must be 1-255 characters".into());
    }
    if p.max_ttl_seconds <= 0 {
        return Err("max_ttl_seconds must be positive".into());
    }
    for rule in &p.allowed_key_algorithms {
        validate_rule(rule)?;
    }
    for eku in &p.allowed_ekus {
        if !EKUS.contains(&eku.as_str()) {
            return Err(format!(
                "allowed_ekus: unknown extended key usage {eku:?} (one of {})",
                EKUS.join(", ")
            ));
        }
    }
    for pattern in &p.required_san_patterns {
        anchored(pattern).map_err(|e| format!("required_san_patterns: {pattern:?}: {e}"))?;
    }
    if !p.spiffe_uri_pattern.is_empty() {
        anchored(&p.spiffe_uri_pattern).map_err(|e| format!("spiffe_uri_pattern: {e}"))?;
    }
    Ok(())
}

fn validate_rule(rule: &KeyAlgorithmRule) -> Result<(), String> {
    if !ALGORITHMS.contains(&rule.algorithm.as_str()) {
        return Err(format!(
            "allowed_key_algorithms: unknown algorithm {:?} (one of {})",
            rule.algorithm,
            ALGORITHMS.join(", ")
        ));
    }
    let floor = match rule.algorithm.as_str() {
        "RSA" => 2048,
        "ECDSA" => 256,
        _ => 0,
    };
    if rule.min_size != 0 && rule.min_size < floor {
        return Err(format!(
            "allowed_key_algorithms: {} min_size below {floor} bits is not accepted",
            rule.algorithm
        ));
    }
    Ok(())
}

/// Whether `issuance` obeys profile `p` (validated with [`validate`]).
pub fn check(p: &CertificateProfile, issuance: &Issuance<'_>) -> Result<(), Violation> {
    let profile = || p.id.clone();
    if !p.enabled {
        return Err(Violation::Disabled(profile()));
    }
    if !p.allowed_key_algorithms.is_empty() {
        let Some(rule) = p
            .allowed_key_algorithms
            .iter()
            .find(|r| r.algorithm == issuance.key.algorithm)
        else {
            return Err(Violation::Algorithm {
                profile: profile(),
                algorithm: issuance.key.algorithm.into(),
                allowed: p
                    .allowed_key_algorithms
                    .iter()
                    .map(|r| r.algorithm.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if i64::from(issuance.key.bits) < rule.min_size {
            return Err(Violation::KeySize {
                profile: profile(),
                algorithm: rule.algorithm.clone(),
                min: rule.min_size,
                got: issuance.key.bits,
            });
        }
    }
    if issuance.ttl_seconds > p.max_ttl_seconds {
        return Err(Violation::Ttl {
            profile: profile(),
            max: p.max_ttl_seconds,
            asked: issuance.ttl_seconds,
        });
    }
    if issuance.ttl_seconds < SHORT_LIVED_SECONDS && !p.allow_short_lived {
        return Err(Violation::ShortLived(profile()));
    }
    if let Some(eku) = issuance
        .ekus
        .iter()
        .find(|e| !p.allowed_ekus.iter().any(|a| a == *e))
    {
        return Err(Violation::Eku {
            profile: profile(),
            eku: eku.clone(),
        });
    }
    if !p.required_san_patterns.is_empty() {
        let patterns: Vec<Regex> = p
            .required_san_patterns
            .iter()
            .filter_map(|s| anchored(s).ok())
            .collect();
        let names = issuance
            .dns_names
            .iter()
            .chain(issuance.ip_addresses)
            .chain(issuance.emails);
        for name in names {
            if !patterns.iter().any(|r| r.is_match(name)) {
                return Err(Violation::San {
                    profile: profile(),
                    name: name.clone(),
                });
            }
        }
    }
    if !p.spiffe_uri_pattern.is_empty() {
        let pattern = anchored(&p.spiffe_uri_pattern).ok();
        for uri in issuance.uris {
            if !pattern.as_ref().is_some_and(|r| r.is_match(uri)) {
                return Err(Violation::Uri {
                    profile: profile(),
                    uri: uri.clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> CertificateProfile {
        CertificateProfile {
            id: "prof-web".into(),
            name: "web".into(),
            description: String::new(),
            allowed_key_algorithms: vec![KeyAlgorithmRule {
                algorithm: "ECDSA".into(),
                min_size: 256,
            }],
            max_ttl_seconds: 90 * 86400,
            allowed_ekus: vec!["serverAuth".into()],
            required_san_patterns: vec![r"[a-z0-9.-]+\.example\.com".into()],
            spiffe_uri_pattern: String::new(),
            allow_short_lived: false,
            enabled: true,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn issuance<'a>(dns: &'a [String], ekus: &'a [String]) -> Issuance<'a> {
        Issuance {
            key: KeyInfo {
                algorithm: "ECDSA",
                bits: 256,
            },
            ttl_seconds: 30 * 86400,
            ekus,
            dns_names: dns,
            ip_addresses: &[],
            emails: &[],
            uris: &[],
        }
    }

    #[test]
    fn a_conforming_issuance_passes_and_each_rule_is_named() {
        let p = web();
        assert_eq!(validate(&p), Ok(()));
        let dns = vec!["api.example.com".to_string()];
        let server = vec!["serverAuth".to_string()];
        assert_eq!(check(&p, &issuance(&dns, &server)), Ok(()));

        let mut rsa = issuance(&dns, &server);
        rsa.key = KeyInfo {
            algorithm: "RSA",
            bits: 4096,
        };
        assert!(matches!(check(&p, &rsa), Err(Violation::Algorithm { .. })));

        let mut long = issuance(&dns, &server);
        long.ttl_seconds = 91 * 86400;
        assert!(check(&p, &long)
            .unwrap_err()
            .to_string()
            .contains("at most 7776000 s"));

        let mut short = issuance(&dns, &server);
        short.ttl_seconds = 60;
        assert_eq!(
            check(&p, &short),
            Err(Violation::ShortLived("prof-web".into()))
        );

        let client = vec!["clientAuth".to_string()];
        assert!(matches!(
            check(&p, &issuance(&dns, &client)),
            Err(Violation::Eku { .. })
        ));

        let other = vec!["api.example.org".to_string()];
        assert!(matches!(
            check(&p, &issuance(&other, &server)),
            Err(Violation::San { .. })
        ));
        // Anchored: a suffix trick does not pass.
        let sneaky = vec!["api.example.com.evil.org".to_string()];
        assert!(check(&p, &issuance(&sneaky, &server)).is_err());

        let mut off = web();
        off.enabled = false;
        assert_eq!(
            check(&off, &issuance(&dns, &server)),
            Err(Violation::Disabled("prof-web".into()))
        );
    }

    #[test]
    fn key_sizes_and_profile_fields_are_checked() {
        let mut p = web();
        p.allowed_key_algorithms = vec![KeyAlgorithmRule {
            algorithm: "RSA".into(),
            min_size: 3072,
        }];
        let dns = vec!["a.example.com".to_string()];
        let mut small = issuance(&dns, &[]);
        small.key = KeyInfo {
            algorithm: "RSA",
            bits: 2048,
        };
        assert!(matches!(
            check(&p, &small),
            Err(Violation::KeySize { min: 3072, .. })
        ));

        let mut bad = web();
        bad.allowed_ekus = vec!["anyUsage".into()];
        assert!(validate(&bad).is_err());
        let mut bad = web();
        bad.required_san_patterns = vec!["(".into()];
        assert!(validate(&bad).is_err());
        let mut bad = web();
        bad.allowed_key_algorithms[0].min_size = 128;
        assert!(validate(&bad).is_err());
        let mut bad = web();
        bad.max_ttl_seconds = 0;
        assert!(validate(&bad).is_err());
    }
}
