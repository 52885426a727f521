//! Validation and normalisation of machine fields from clients.
//!
//! Each function returns the normalised form to store, so equal intent is
//! stored (and compared, e.g. by dual control) as equal text. Error `Display`
//! texts are meant for a 422 `detail`; they never echo more than one
//! offending character or label position, so hostile input is not reflected.

use std::fmt;
use std::net::IpAddr;

/// Longest hostname (RFC 1123 / DNS, without trailing dot).
pub const HOSTNAME_MAX_LEN: usize = 253;
/// Longest hostname label.
pub const LABEL_MAX_LEN: usize = 63;

/// Why a hostname is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    #[error("hostname is empty")]
    Empty,
    #[error("hostname is {len} characters long; at most 253 are allowed")]
    TooLong { len: usize },
    #[error("hostname label {label} is empty (hostname must not start or end with '.', or contain '..')")]
    EmptyLabel { label: usize },
    #[error("hostname label {label} is {len} characters long; at most 63 are allowed")]
    LabelTooLong { label: usize, len: usize },
    #[error(
        "hostname label {label} contains {ch:?}; only letters a-z, digits 0-9 and '-' are allowed"
    )]
    InvalidChar { label: usize, ch: char },
    #[error("hostname label {label} must not start or end with '-'")]
    HyphenAtEdge { label: usize },
}

/// Validates an RFC 1123 hostname and returns it lower-cased.
///
/// Lower-casing: DNS and Kubernetes node names are case-insensitive /
/// lower-case only, and one spelling keeps dual-control votes comparable.
/// A trailing dot is refused (not valid in a Kubernetes node name).
/// Label numbers in errors are 1-based.
pub fn normalize_hostname(input: &str) -> Result<String, HostnameError> {
    if input.is_empty() {
        return Err(HostnameError::Empty);
    }
    // Count chars, not bytes, for the message; non-ASCII fails below anyway.
    if input.len() > HOSTNAME_MAX_LEN {
        return Err(HostnameError::TooLong {
            len: input.chars().count(),
        });
    }
    let lower = input.to_ascii_lowercase();
    for (i, label) in lower.split('.').enumerate() {
        let label_no = i + 1;
        if label.is_empty() {
            return Err(HostnameError::EmptyLabel { label: label_no });
        }
        if let Some(ch) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(HostnameError::InvalidChar {
                label: label_no,
                ch,
            });
        }
        if label.len() > LABEL_MAX_LEN {
            return Err(HostnameError::LabelTooLong {
                label: label_no,
                len: label.len(),
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(HostnameError::HyphenAtEdge { label: label_no });
        }
    }
    Ok(lower)
}

/// An interface address with its prefix length, e.g. `10.0.1.11/24`.
/// The host part is kept: this is the machine's address, not a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssignedIp {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl fmt::Display for AssignedIp {
    /// Normalised text: std's canonical address form (IPv6 compressed,
    /// lower-case) and a decimal prefix without leading zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why an `assigned_ip` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignedIpError {
    #[error("assigned_ip must be in CIDR form address/prefix, e.g. 10.0.1.11/24")]
    MissingPrefix,
    #[error("assigned_ip address is not a valid IPv4 or IPv6 address")]
    InvalidAddress,
    #[error("assigned_ip prefix length must be a decimal number")]
    InvalidPrefix,
    #[error("assigned_ip prefix length {prefix} is out of range (at most {max} for this address family)")]
    PrefixOutOfRange { prefix: u32, max: u8 },
}

/// Parses `address/prefix` (IPv4 or IPv6), keeping the host address.
pub fn parse_assigned_ip(input: &str) -> Result<AssignedIp, AssignedIpError> {
    let (addr, prefix) = input
        .split_once('/')
        .ok_or(AssignedIpError::MissingPrefix)?;
    // std refuses zone ids, leading-zero IPv4 octets and surrounding spaces.
    let addr: IpAddr = addr.parse().map_err(|_| AssignedIpError::InvalidAddress)?;
    if prefix.is_empty()
        || prefix.len() > 3
        || !prefix.bytes().all(|b| b.is_ascii_digit())
        || (prefix.len() > 1 && prefix.starts_with('0'))
    {
        return Err(AssignedIpError::InvalidPrefix);
    }
    let value: u32 = prefix.parse().map_err(|_| AssignedIpError::InvalidPrefix)?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = u8::try_from(value)
        .ok()
        .filter(|p| *p <= max)
        .ok_or(AssignedIpError::PrefixOutOfRange { prefix: value, max })?;
    Ok(AssignedIp { addr, prefix })
}

/// Validates `assigned_ip` and returns its normalised text.
pub fn normalize_assigned_ip(input: &str) -> Result<String, AssignedIpError> {
    parse_assigned_ip(input).map(|ip| ip.to_string())
}

/// Why a MAC address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("MAC address must be 12 hex digits, as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff")]
pub struct MacError;

/// Normalises a MAC address to lower-case colon-separated form.
///
/// Accepted: `AA:BB:CC:DD:EE:FF`, `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff`,
/// `aabbccddeeff` (any case). Separators must be consistent and in the
/// places these forms put them; anything else is refused rather than
/// guessed, because the MAC selects which config `GET /config?mac=` serves.
pub fn normalize_mac(input: &str) -> Result<String, MacError> {
    let groups: Vec<&str> = match input.len() {
        12 => vec![input],
        14 => input.split('.').collect(),
        17 if input.contains(':') => input.split(':').collect(),
        17 => input.split('-').collect(),
        _ => return Err(MacError),
    };
    let group_len = 12 / groups.len();
    let well_formed = matches!(groups.len(), 1 | 3 | 6)
        && groups
            .iter()
            .all(|g| g.len() == group_len && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        return Err(MacError);
    }
    let hex: String = groups.concat().to_ascii_lowercase();
    let mut out = String::with_capacity(17);
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&String::from_utf8_lossy(pair));
    }
    Ok(out)
}

/// Hash algorithm of an EK fingerprint, told apart by length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FingerprintAlg {
    Sha256,
    Sha384,
}

impl FingerprintAlg {
    /// Hex digits of a fingerprint of this algorithm.
    pub const fn hex_len(self) -> usize {
        match self {
            FingerprintAlg::Sha256 => 64,
            FingerprintAlg::Sha384 => 96,
        }
    }

    /// The prefix spelling (`sha256` / `sha384`).
    pub const fn as_str(self) -> &'static str {
        match self {
            FingerprintAlg::Sha256 => "sha256",
            FingerprintAlg::Sha384 => "sha384",
        }
    }
}

/// A validated EK fingerprint: lower-case hex of the given algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EkFingerprint {
    alg: FingerprintAlg,
    hex: String,
}

impl EkFingerprint {
    pub fn alg(&self) -> FingerprintAlg {
        self.alg
    }

    /// Lower-case hex, no prefix: the stored form.
    pub fn as_str(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for EkFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex)
    }
}

/// Why an EK fingerprint is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EkFingerprintError {
    #[error("ek_fingerprint must be 64 (SHA-256) or 96 (SHA-384) hex characters, got {len}")]
    BadLength { len: usize },
    #[error("ek_fingerprint must contain only hex characters 0-9, a-f")]
    NotHex,
    #[error("ek_fingerprint with prefix {alg}: must have {expected} hex characters, got {len}", alg = .alg.as_str())]
    PrefixLengthMismatch {
        alg: FingerprintAlg,
        expected: usize,
        len: usize,
    },
    #[error("ek_fingerprint prefix must be sha256: or sha384:")]
    UnknownPrefix,
}

/// Validates a bare 64/96-hex EK fingerprint (as in request bodies) and
/// lower-cases it.
pub fn normalize_ek_fingerprint(input: &str) -> Result<EkFingerprint, EkFingerprintError> {
    let alg = match input.len() {
        64 => FingerprintAlg::Sha256,
        96 => FingerprintAlg::Sha384,
        len => return Err(EkFingerprintError::BadLength { len }),
    };
    if !input.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EkFingerprintError::NotHex);
    }
    Ok(EkFingerprint {
        alg,
        hex: input.to_ascii_lowercase(),
    })
}

/// Like [`normalize_ek_fingerprint`], but also accepts an optional
/// `sha256:` / `sha384:` prefix (case-insensitive, as `X-EK-Fingerprint` is
/// sent in the seed's examples) whose algorithm must match the length.
pub fn parse_prefixed_ek_fingerprint(input: &str) -> Result<EkFingerprint, EkFingerprintError> {
    let Some((prefix, rest)) = input.split_once(':') else {
        return normalize_ek_fingerprint(input);
    };
    let alg = if prefix.eq_ignore_ascii_case("sha256") {
        FingerprintAlg::Sha256
    } else if prefix.eq_ignore_ascii_case("sha384") {
        FingerprintAlg::Sha384
    } else {
        return Err(EkFingerprintError::UnknownPrefix);
    };
    if rest.len() != alg.hex_len() {
        return Err(EkFingerprintError::PrefixLengthMismatch {
            alg,
            expected: alg.hex_len(),
            len: rest.len(),
        });
    }
    normalize_ek_fingerprint(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_accepts_and_lowercases() {
        assert_eq!(
            normalize_hostname("k8s-worker-01").unwrap(),
            "k8s-worker-01"
        );
        assert_eq!(
            normalize_hostname("CP-01.Example.COM").unwrap(),
            "cp-01.example.com"
        );
        assert_eq!(normalize_hostname("1").unwrap(), "1");
        assert_eq!(normalize_hostname("0a-b9").unwrap(), "0a-b9");
        let label63 = "a".repeat(63);
        assert_eq!(normalize_hostname(&label63).unwrap(), label63);
        // 4 × 63 + 3 dots = 255 > 253; 3 × 63 + 61 + 3 = 253 is fine.
        let max = format!("{l}.{l}.{l}.{}", "b".repeat(61), l = label63);
        assert_eq!(max.len(), 253);
        assert!(normalize_hostname(&max).is_ok());
    }

    #[test]
    fn hostname_edge_cases_refused() {
        use HostnameError::*;
        let label63 = "a".repeat(63);
        let cases: Vec<(String, HostnameError)> = vec![
            (String::new(), Empty),
            (
                format!("{l}.{l}.{l}.{}", "b".repeat(62), l = label63),
                TooLong { len: 254 },
            ),
            ("a".repeat(64), LabelTooLong { label: 1, len: 64 }),
            ("-a".into(), HyphenAtEdge { label: 1 }),
            ("a.b-".into(), HyphenAtEdge { label: 2 }),
            ("a..b".into(), EmptyLabel { label: 2 }),
            (".a".into(), EmptyLabel { label: 1 }),
            ("a.".into(), EmptyLabel { label: 2 }),
            ("a_b".into(), InvalidChar { label: 1, ch: '_' }),
            ("a b".into(), InvalidChar { label: 1, ch: ' ' }),
            (" a".into(), InvalidChar { label: 1, ch: ' ' }),
            ("héllo".into(), InvalidChar { label: 1, ch: 'é' }),
            ("a/b".into(), InvalidChar { label: 1, ch: '/' }),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_hostname(&input), Err(expected), "{input:?}");
        }
        assert_eq!(
            HyphenAtEdge { label: 2 }.to_string(),
            "hostname label 2 must not start or end with '-'"
        );
    }

    #[test]
    fn assigned_ip_keeps_host_and_normalises() {
        assert_eq!(
            normalize_assigned_ip("10.0.1.11/24").unwrap(),
            "10.0.1.11/24"
        );
        assert_eq!(normalize_assigned_ip("10.0.0.0/8").unwrap(), "10.0.0.0/8");
        assert_eq!(
            normalize_assigned_ip("192.0.2.1/32").unwrap(),
            "192.0.2.1/32"
        );
        assert_eq!(normalize_assigned_ip("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        assert_eq!(
            normalize_assigned_ip("2001:0DB8:0000:0000:0000:0000:0000:0011/64").unwrap(),
            "2001:db8::11/64"
        );
        assert_eq!(normalize_assigned_ip("fd00::1/128").unwrap(), "fd00::1/128");
        let ip = parse_assigned_ip("10.0.1.11/24").unwrap();
        assert_eq!(ip.prefix, 24);
        assert_eq!(ip.addr.to_string(), "10.0.1.11");
    }

    #[test]
    fn assigned_ip_edge_cases_refused() {
        use AssignedIpError::*;
        let cases = [
            ("10.0.1.11", MissingPrefix),
            ("", MissingPrefix),
            ("10.0.1.11/", InvalidPrefix),
            ("10.0.1.11/+24", InvalidPrefix),
            ("10.0.1.11/024", InvalidPrefix),
            ("10.0.1.11/24 ", InvalidPrefix),
            ("10.0.1.11/2a", InvalidPrefix),
            ("10.0.1.11/24/1", InvalidPrefix),
            ("10.0.1.11/1000", InvalidPrefix),
            (
                "10.0.1.11/33",
                PrefixOutOfRange {
                    prefix: 33,
                    max: 32,
                },
            ),
            (
                "::1/129",
                PrefixOutOfRange {
                    prefix: 129,
                    max: 128,
                },
            ),
            ("10.0.1.256/24", InvalidAddress),
            ("010.0.1.1/24", InvalidAddress),
            (" 10.0.1.1/24", InvalidAddress),
            ("10.0.1/24", InvalidAddress),
            ("fe80::1%eth0/64", InvalidAddress),
            ("[::1]/64", InvalidAddress),
            ("host/24", InvalidAddress),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_assigned_ip(input), Err(expected), "{input:?}");
        }
        assert!(PrefixOutOfRange {
            prefix: 33,
            max: 32
        }
        .to_string()
        .contains("33"));
    }

    #[test]
    fn mac_forms_normalise() {
        for input in [
            "AA:BB:CC:DD:EE:0F",
            "aa-bb-cc-dd-ee-0f",
            "aabb.ccdd.ee0f",
            "AABB.CCDD.EE0F",
            "aabbccddee0f",
            "aA:Bb:cC:dD:eE:0f",
        ] {
            assert_eq!(
                normalize_mac(input).unwrap(),
                "aa:bb:cc:dd:ee:0f",
                "{input}"
            );
        }
    }

    #[test]
    fn mac_edge_cases_refused() {
        for input in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb-cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:fg",
            "aabbccddeefg",
            "a:bb:cc:dd:ee:fff",
            "aabb.ccdd.eef",
            "aabb:ccdd:eeff",
            "aab.bccd.deeff",
            "aa.bb.cc.dd.ee.ff",
            "aa bb cc dd ee ff",
            "aabbccddeeff ",
            "+abbccddeeff",
            "ａabbccddeef",
        ] {
            assert_eq!(normalize_mac(input), Err(MacError), "{input:?}");
        }
        assert!(MacError.to_string().contains("aa:bb:cc:dd:ee:ff"));
    }

    #[test]
    fn ek_fingerprint_lengths_and_case() {
        let h64 = "AB".repeat(32);
        let fp = normalize_ek_fingerprint(&h64).unwrap();
        assert_eq!(
            (fp.alg(), fp.as_str()),
            (FingerprintAlg::Sha256, "ab".repeat(32).as_str())
        );
        let h96 = "0f".repeat(48);
        let fp = normalize_ek_fingerprint(&h96).unwrap();
        assert_eq!(fp.alg(), FingerprintAlg::Sha384);
        assert_eq!(fp.to_string(), h96);
        assert_eq!(
            normalize_ek_fingerprint(&"a".repeat(63)),
            Err(EkFingerprintError::BadLength { len: 63 })
        );
        assert_eq!(
            normalize_ek_fingerprint(&"a".repeat(128)),
            Err(EkFingerprintError::BadLength { len: 128 })
        );
        assert_eq!(
            normalize_ek_fingerprint(&format!("{}g", "a".repeat(63))),
            Err(EkFingerprintError::NotHex)
        );
        // A prefix is not accepted where the seed specifies bare hex.
        assert!(normalize_ek_fingerprint(&format!("sha256:{}", "a".repeat(57))).is_err());
    }

    #[test]
    fn ek_fingerprint_prefix_helper() {
        let h64 = "a".repeat(64);
        let h96 = "b".repeat(96);
        assert_eq!(parse_prefixed_ek_fingerprint(&h64).unwrap().as_str(), h64);
        assert_eq!(
            parse_prefixed_ek_fingerprint(&format!("sha256:{h64}"))
                .unwrap()
                .as_str(),
            h64
        );
        assert_eq!(
            parse_prefixed_ek_fingerprint(&format!("SHA384:{}", h96.to_uppercase()))
                .unwrap()
                .as_str(),
            h96
        );
        assert_eq!(
            parse_prefixed_ek_fingerprint(&format!("sha256:{h96}")),
            Err(EkFingerprintError::PrefixLengthMismatch {
                alg: FingerprintAlg::Sha256,
                expected: 64,
                len: 96
            })
        );
        assert_eq!(
            parse_prefixed_ek_fingerprint(&format!("sha384:{h64}"))
                .unwrap_err()
                .to_string(),
            "ek_fingerprint with prefix sha384: must have 96 hex characters, got 64"
        );
        assert_eq!(
            parse_prefixed_ek_fingerprint(&format!("sha1:{h64}")),
            Err(EkFingerprintError::UnknownPrefix)
        );
        assert_eq!(
            parse_prefixed_ek_fingerprint(&format!("sha256:sha256:{}", "a".repeat(57))),
            Err(EkFingerprintError::NotHex)
        );
    }
}
