//! The IP allow-list: who may open a connection at all.
//!
//! Default deny: a missing file, an empty list or an unreadable first load
//! allows nobody. The file is watched by polling its contents, so an edit
//! takes effect without a restart; an edit that does not parse keeps the
//! last good list (and is logged), so a typo never opens or closes the
//! door by accident.
//!
//! ```yaml
//! allowed:
//!   - 192.0.2.10        # one address
//!   - 10.20.0.0/16      # a network
//!   - "2001:db8::/32"
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The file's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowlistFile {
    /// Addresses and CIDR networks.
    #[serde(default)]
    pub allowed: Vec<String>,
}

/// Why a list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    #[error("allow-list is not valid YAML: {0}")]
    Yaml(String),
    #[error("allow-list entry {entry:?} is neither an IP address nor a CIDR network")]
    Entry { entry: String },
}

/// A parsed list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    nets: Vec<IpNet>,
}

impl Allowlist {
    /// Nobody allowed.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Parses the YAML text of the file. An empty document is an empty list.
    pub fn parse(text: &str) -> Result<Self, AllowlistError> {
        if text.trim().is_empty() {
            return Ok(Self::deny_all());
        }
        let file: AllowlistFile =
            serde_norway::from_str(text).map_err(|e| AllowlistError::Yaml(e.to_string()))?;
        let nets = file
            .allowed
            .iter()
            .map(|entry| parse_entry(entry))
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// True when `addr` is on the list. IPv4-mapped IPv6 peers (as seen on
    /// a dual-stack listener) are compared as IPv4.
    pub fn allows(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.nets.iter().any(|net| net.contains(&addr))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.nets.len()
    }

    /// True when nobody is allowed.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_entry(entry: &str) -> Result<IpNet, AllowlistError> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry
        .parse::<IpAddr>()
        .map(|ip| IpNet::from(canonical(ip)))
        .map_err(|_| AllowlistError::Entry {
            entry: entry.to_owned(),
        })
}

/// The current list, shared by the accept loop and the watcher.
#[derive(Debug, Clone, Default)]
pub struct SharedAllowlist {
    inner: Arc<RwLock<Arc<Allowlist>>>,
}

impl SharedAllowlist {
    /// A handle holding `list`.
    pub fn new(list: Allowlist) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Arc::new(list))),
        }
    }

    /// The list in force now.
    pub fn current(&self) -> Arc<Allowlist> {
        match self.inner.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn replace(&self, list: Allowlist) {
        let mut guard = self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = Arc::new(list);
    }

    /// True when `addr` may connect now.
    pub fn allows(&self, addr: IpAddr) -> bool {
        self.current().allows(addr)
    }
}

/// Loads `path` at start-up: a missing or invalid file denies everybody
/// (logged), it never fails the agent.
pub fn load_initial(path: &Path) -> (Allowlist, Option<Vec<u8>>) {
    match std::fs::read(path) {
        Ok(bytes) => match Allowlist::parse(&String::from_utf8_lossy(&bytes)) {
            Ok(list) => (list, Some(bytes)),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "allow-list refused; denying every address");
                (Allowlist::deny_all(), Some(bytes))
            }
        },
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no allow-list; denying every address");
            (Allowlist::deny_all(), None)
        }
    }
}

/// Polls `path` every `interval` and swaps in each new list that parses.
/// Contents are compared, not timestamps, so edits within one second are
/// seen too. A change is applied once two polls in a row read the same
/// bytes: an editor that truncates and then writes is never caught
/// half-way (an empty file would deny everybody). A removed file denies
/// everybody.
pub async fn watch(
    path: PathBuf,
    shared: SharedAllowlist,
    mut last: Option<Vec<u8>>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut candidate: Option<Option<Vec<u8>>> = None;
    loop {
        ticker.tick().await;
        let now = tokio::fs::read(&path).await.ok();
        if now == last {
            candidate = None;
            continue;
        }
        if candidate.as_ref() != Some(&now) {
            // First sight of new contents: wait one more poll.
            candidate = Some(now);
            continue;
        }
        candidate = None;
        match &now {
            None => {
                tracing::warn!(path = %path.display(), "allow-list removed; denying every address");
                shared.replace(Allowlist::deny_all());
            }
            Some(bytes) => match Allowlist::parse(&String::from_utf8_lossy(bytes)) {
                Ok(list) => {
                    tracing::info!(path = %path.display(), entries = list.len(), "allow-list reloaded");
                    shared.replace(list);
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "allow-list change refused; keeping the previous list");
                }
            },
        }
        last = now;
    }
}

/// Adds `addrs` to the file at `path` (created if missing), keeping the
/// existing entries; written atomically. Used by enrollment to let the
/// manager in. Comments in the file are not kept.
pub fn append_entries(path: &Path, addrs: &[IpAddr]) -> Result<(), crate::fsutil::WriteError> {
    let mut file = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => serde_norway::from_str::<AllowlistFile>(&text)
            .map_err(|e| crate::fsutil::WriteError::Invalid(format!("{}: {e}", path.display())))?,
        Ok(_) => AllowlistFile::default(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => AllowlistFile::default(),
        Err(e) => return Err(crate::fsutil::WriteError::Io(path.to_owned(), e)),
    };
    for addr in addrs {
        let present = file
            .allowed
            .iter()
            .any(|e| parse_entry(e).is_ok_and(|net| net == IpNet::from(canonical(*addr))));
        if !present {
            file.allowed.push(canonical(*addr).to_string());
        }
    }
    let text = serde_norway::to_string(&file)
        .map_err(|e| crate::fsutil::WriteError::Invalid(e.to_string()))?;
    crate::fsutil::write_atomic(path, text.as_bytes(), 0o644)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_and_networks() {
        let list =
            Allowlist::parse("allowed:\n  - 192.0.2.10\n  - 10.20.0.0/16\n  - '2001:db8::/32'\n")
                .unwrap();
        assert!(list.allows(ip("192.0.2.10")));
        assert!(!list.allows(ip("192.0.2.11")));
        assert!(list.allows(ip("10.20.255.1")));
        assert!(!list.allows(ip("10.21.0.1")));
        assert!(list.allows(ip("2001:db8::1")));
        assert!(list.allows(ip("::ffff:192.0.2.10")));
    }

    #[test]
    fn default_deny() {
        assert!(!Allowlist::parse("").unwrap().allows(ip("127.0.0.1")));
        assert!(!Allowlist::parse("allowed: []")
            .unwrap()
            .allows(ip("127.0.0.1")));
        assert!(!Allowlist::deny_all().allows(ip("::1")));
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(Allowlist::parse("allowed: [nonsense]").is_err());
        assert!(Allowlist::parse("allowed: [10.0.0.0/33]").is_err());
        assert!(Allowlist::parse("allow: [127.0.0.1]").is_err());
        assert!(Allowlist::parse("allowed: 127.0.0.1").is_err());
    }

    #[test]
    fn append_keeps_entries_and_skips_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.yaml");
        std::fs::write(&path, "allowed:\n  - 10.0.0.0/8\n").unwrap();
        append_entries(&path, &[ip("192.0.2.1"), ip("10.1.2.3"), ip("192.0.2.1")]).unwrap();
        let list = Allowlist::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(list.len(), 3);
        assert!(list.allows(ip("192.0.2.1")));
        let again = std::fs::read_to_string(&path).unwrap();
        append_entries(&path, &[ip("192.0.2.1")]).unwrap();
        assert_eq!(again, std::fs::read_to_string(&path).unwrap());
    }
}
