//! Debian changelogs (`debian/changelog`, shipped as
//! `/usr/share/doc/<pkg>/changelog.Debian.gz`): the entries between two
//! versions, their CVE ids and dates.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use crate::packages::{cve_ids, deb_version};

/// One changelog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Source package name of the header line.
    pub source: String,
    pub version: String,
    pub distributions: String,
    pub urgency: Option<String>,
    /// The change lines.
    pub text: String,
    /// Date of the trailer line.
    pub date: Option<DateTime<Utc>>,
}

/// Parses a changelog. Lines outside entries and malformed headers are
/// skipped; an entry without a trailer still counts.
pub fn parse(text: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut current: Option<Entry> = None;
    for line in text.lines() {
        if let Some(entry) = header(line) {
            if let Some(done) = current.take() {
                entries.push(done);
            }
            current = Some(entry);
        } else if let Some(rest) = line.strip_prefix(" -- ") {
            if let Some(mut done) = current.take() {
                done.date = rest
                    .split_once(">  ")
                    .and_then(|(_, date)| DateTime::parse_from_rfc2822(date.trim()).ok())
                    .map(|d| d.with_timezone(&Utc));
                entries.push(done);
            }
        } else if let Some(entry) = current.as_mut() {
            entry.text.push_str(line);
            entry.text.push('\n');
        }
    }
    if let Some(done) = current {
        entries.push(done);
    }
    entries
}

/// `source (version) dists; urgency=x`
fn header(line: &str) -> Option<Entry> {
    let first = line.chars().next()?;
    if !first.is_ascii_alphanumeric() {
        return None;
    }
    let (source, rest) = line.split_once(" (")?;
    let (version, rest) = rest.split_once(')')?;
    if source.contains(char::is_whitespace)
        || version.is_empty()
        || version.contains(char::is_whitespace)
    {
        return None;
    }
    let (dists, meta) = rest.split_once(';').unwrap_or((rest, ""));
    let urgency = meta
        .split(',')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("urgency"))
        .map(|(_, v)| v.trim().to_owned());
    Some(Entry {
        source: source.to_owned(),
        version: version.to_owned(),
        distributions: dists.trim().to_owned(),
        urgency,
        text: String::new(),
        date: None,
    })
}

/// What the entries newer than `installed`, up to `candidate`, say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Between {
    pub cve_ids: Vec<String>,
    /// Date of the newest such entry.
    pub newest: Option<DateTime<Utc>>,
    /// Source package name from the changelog.
    pub source: Option<String>,
    /// First change line of the newest entry.
    pub summary: Option<String>,
}

/// Collects the entries with `installed < version <= candidate`.
pub fn between(entries: &[Entry], installed: &str, candidate: &str) -> Between {
    let mut out = Between {
        source: entries.first().map(|e| e.source.clone()),
        ..Between::default()
    };
    for e in entries {
        let newer = deb_version::compare(&e.version, installed) == Ordering::Greater;
        let not_beyond = deb_version::compare(&e.version, candidate) != Ordering::Greater;
        if newer && not_beyond {
            cve_ids(&e.text, &mut out.cve_ids);
            if out.newest.is_none() || e.date > out.newest {
                out.newest = e.date;
            }
            if out.summary.is_none() {
                out.summary = e
                    .text
                    .lines()
                    .map(|l| l.trim().trim_start_matches(['*', '-', '+']).trim())
                    .find(|l| !l.is_empty())
                    .map(|l| l.chars().take(200).collect());
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const LOG: &str = r#"openssl (3.0.13-1~deb12u1) bookworm-security; urgency=medium

  * Fix CVE-2024-0727 and CVE-2023-6237.

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Sat, 03 Feb 2024 19:06:34 +0100

openssl (3.0.11-1~deb12u2) bookworm-security; urgency=medium

  * CVE-2023-5678 (Excessive time spent in DH check).

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Sun, 29 Oct 2023 20:47:33 +0100

openssl (3.0.11-1~deb12u1) bookworm; urgency=medium

  * CVE-2023-4807 old.

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Mon, 25 Sep 2023 20:00:00 +0200
"#;

    #[test]
    fn entries_between_versions() {
        let entries = parse(LOG);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].urgency.as_deref(), Some("medium"));
        let b = between(&entries, "3.0.11-1~deb12u1", "3.0.13-1~deb12u1");
        assert_eq!(
            b.cve_ids,
            ["CVE-2024-0727", "CVE-2023-6237", "CVE-2023-5678"]
        );
        assert_eq!(b.source.as_deref(), Some("openssl"));
        assert_eq!(b.newest.unwrap().to_rfc3339(), "2024-02-03T18:06:34+00:00");
        assert_eq!(
            b.summary.as_deref(),
            Some("Fix CVE-2024-0727 and CVE-2023-6237.")
        );
        let none = between(&entries, "3.0.13-1~deb12u1", "3.0.13-1~deb12u1");
        assert!(none.cve_ids.is_empty() && none.newest.is_none());
        // A candidate older than the newest entry excludes it.
        let mid = between(&entries, "3.0.11-1~deb12u1", "3.0.11-1~deb12u2");
        assert_eq!(mid.cve_ids, ["CVE-2023-5678"]);
    }

    #[test]
    fn garbage_is_skipped() {
        assert!(parse("").is_empty());
        assert!(parse("  * no header\n -- x  y\n").is_empty());
        let e = parse("pkg (1.0) unstable; urgency=low\n  * CVE-2020-1234\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].date.is_none());
        assert!(parse("bad header (\n").is_empty());
    }
}
