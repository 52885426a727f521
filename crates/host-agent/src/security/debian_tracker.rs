//! The Debian security tracker's JSON
//! (`https://security-tracker.debian.org/tracker/data/json`):
//! `{source: {CVE: {"releases": {codename: {"urgency": …, "status": …,
//! "fixed_version": …}}, …}}}`. Only the fields used are read.

use std::collections::HashMap;

use attest_proto::patch::Severity;
use serde::Deserialize;

/// The parsed tracker data.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Tracker {
    sources: HashMap<String, HashMap<String, CveEntry>>,
}

#[derive(Debug, Default, Deserialize)]
struct CveEntry {
    #[serde(default)]
    releases: HashMap<String, ReleaseEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct ReleaseEntry {
    #[serde(default)]
    urgency: Option<String>,
}

impl Tracker {
    /// Parses the JSON.
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The highest severity among `cves` of `source` in `release`;
    /// `unknown` when the tracker names none.
    pub fn severity(&self, source: &str, cves: &[String], release: &str) -> Severity {
        let Some(entries) = self.sources.get(source) else {
            return Severity::Unknown;
        };
        cves.iter()
            .filter_map(|cve| entries.get(cve))
            .filter_map(|e| e.releases.get(release))
            .filter_map(|r| r.urgency.as_deref())
            .map(urgency_severity)
            .max()
            .unwrap_or(Severity::Unknown)
    }
}

/// The tracker's urgency as a severity. Debian has no "critical"; its
/// `unimportant` is the lowest class. `not yet assigned` and `end-of-life`
/// say nothing about severity.
pub fn urgency_severity(urgency: &str) -> Severity {
    match urgency.trim().trim_end_matches('*') {
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" | "unimportant" => Severity::Low,
        _ => Severity::Unknown,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn highest_urgency_of_the_release() {
        let json = br#"{"openssl": {
            "CVE-2024-0727": {"description": "x", "scope": "local",
                "releases": {"bookworm": {"status": "resolved", "urgency": "low", "fixed_version": "3.0.13-1~deb12u1", "repositories": {"bookworm": "3.0.11-1~deb12u2"}},
                             "trixie": {"status": "resolved", "urgency": "high"}}},
            "CVE-2023-6237": {"releases": {"bookworm": {"urgency": "medium*"}}},
            "CVE-2023-0001": {"releases": {"bookworm": {"urgency": "not yet assigned"}}}
        }}"#;
        let t = Tracker::parse(json).unwrap();
        let cves = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            t.severity(
                "openssl",
                &cves(&["CVE-2024-0727", "CVE-2023-6237"]),
                "bookworm"
            ),
            Severity::Medium
        );
        assert_eq!(
            t.severity("openssl", &cves(&["CVE-2024-0727"]), "trixie"),
            Severity::High
        );
        assert_eq!(
            t.severity("openssl", &cves(&["CVE-2023-0001"]), "bookworm"),
            Severity::Unknown
        );
        assert_eq!(
            t.severity("openssl", &cves(&["CVE-1999-0001"]), "bookworm"),
            Severity::Unknown
        );
        assert_eq!(
            t.severity("nginx", &cves(&["CVE-2024-0727"]), "bookworm"),
            Severity::Unknown
        );
        assert!(Tracker::parse(b"[1]").is_err());
    }
}
