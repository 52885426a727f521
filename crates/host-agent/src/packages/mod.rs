//! Package managers behind one trait.
//!
//! apt/dpkg (Debian, Ubuntu) is driven for real in the tests; dnf/rpm, apk
//! and pacman are driven through their documented machine-readable output,
//! whose parsers are tested on the real rpm, dnf and pacman output (apk: on
//! its documented format). The backend is chosen from `/etc/os-release`
//! ([`os_release`]).

pub mod apk;
pub mod apt;
pub mod command;
pub mod deb_version;
pub mod dnf;
pub mod dpkg_parse;
pub mod os_release;
pub mod pacman;

use std::collections::BTreeMap;
use std::sync::Arc;

use attest_proto::patch::{Dependency, ErrorCode, Severity};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::PackagesConfig;

/// Why a package operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error("package {name} not found")]
    NotFound { name: String },
    #[error("version {version} of {name} is not available")]
    VersionConflict { name: String, version: String },
    #[error("dependency problem: {0}")]
    Dependency(String),
    #[error("package manager failed: {0}")]
    Manager(String),
    #[error("invalid package request: {0}")]
    Invalid(String),
    #[error("not supported by the {backend} backend: {what}")]
    Unsupported { backend: &'static str, what: String },
}

impl BackendError {
    /// The seed's code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            BackendError::NotFound { .. } => ErrorCode::PkgNotFound,
            BackendError::VersionConflict { .. } => ErrorCode::PkgVersionConflict,
            BackendError::Dependency(_) => ErrorCode::PkgDependencyError,
            BackendError::Manager(_) | BackendError::Unsupported { .. } => {
                ErrorCode::PkgManagerError
            }
            BackendError::Invalid(_) => ErrorCode::InvalidRequest,
        }
    }

    /// The message sent to clients (the package manager's own output goes to
    /// the log and the job log, not into API errors).
    pub fn client_message(&self) -> String {
        match self {
            BackendError::Manager(_) => "package manager operation failed".to_owned(),
            other => other.to_string(),
        }
    }
}

/// An installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub name: String,
    pub version: String,
    /// `installed`, or dpkg's word for a package a failed or interrupted
    /// run left behind (`half-configured`, `unpacked`, …). Such packages
    /// are listed, so rollback sees them.
    pub status: String,
    pub architecture: String,
    /// One-line description.
    pub summary: String,
    pub size_bytes: u64,
    pub maintainer: String,
    /// Dependencies as the package manager states them.
    pub depends: Vec<Dependency>,
    /// Source package (Debian) or source RPM name, when known.
    pub source: Option<String>,
    pub installed_at: Option<DateTime<Utc>>,
}

/// An available upgrade of an installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upgrade {
    pub name: String,
    pub installed: String,
    pub candidate: String,
    /// Where the candidate comes from (release label or repository).
    pub origins: Vec<String>,
    /// Recognised as a security update by its origin.
    pub security: bool,
}

/// Details beyond [`Installed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    pub homepage: Option<String>,
    pub license: Option<String>,
    pub files: Vec<String>,
}

/// Security data of one update, from the distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// Advisory id when the distribution names one (dnf), else ours.
    pub id: String,
    /// Source package grouping the binaries.
    pub source: String,
    pub candidate: String,
    pub cve_ids: Vec<String>,
    pub severity: Severity,
    pub published: Option<DateTime<Utc>>,
    pub description: String,
    pub packages: Vec<String>,
}

/// One change a job asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Install or upgrade/downgrade to `version` (the candidate when `None`).
    Install {
        name: String,
        version: Option<String>,
    },
    Remove {
        name: String,
    },
}

/// Options of a change set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeOptions {
    /// Reinstall even when the version is already installed.
    pub reinstall: bool,
    pub no_recommends: bool,
    pub allow_downgrade: bool,
    /// Only upgrade packages that are installed (updates, patches).
    pub only_upgrade: bool,
    pub purge: bool,
    /// Allow removing packages that depend on the removed ones.
    pub remove_dependents: bool,
}

/// What a change set would do, from the package manager's dry run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// name → version after the change, for installed/upgraded packages.
    pub install: BTreeMap<String, String>,
    pub remove: Vec<String>,
}

/// Progress and log lines of a running change.
pub trait Progress: Send + Sync {
    /// A percentage (0–100) of the package manager's work.
    fn percent(&self, percent: u8);
    /// A log line.
    fn line(&self, level: &str, message: &str);
}

/// A package manager.
pub trait PackageBackend: Send + Sync + 'static {
    /// `apt`, `dnf`, `apk` or `pacman` (system info's `package_manager`).
    fn name(&self) -> &'static str;

    /// Every installed package.
    fn installed(&self) -> BoxFuture<'_, Result<Vec<Installed>, BackendError>>;

    /// Available upgrades of installed packages (from the local indexes).
    fn upgrades(&self) -> BoxFuture<'_, Result<Vec<Upgrade>, BackendError>>;

    /// Files, homepage and licence of an installed package.
    fn details<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Details, BackendError>>;

    /// Refreshes the indexes when older than the configured interval
    /// (before listing patches). Backends whose tools keep their own
    /// metadata expiry do nothing.
    fn refresh_if_stale(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }

    /// Refreshes the package indexes (`apt-get update`, …).
    fn refresh<'a>(&'a self, progress: &'a dyn Progress)
        -> BoxFuture<'a, Result<(), BackendError>>;

    /// Dry run: what the changes would do, or why they cannot be done.
    fn plan<'a>(
        &'a self,
        changes: &'a [Change],
        options: &'a ChangeOptions,
    ) -> BoxFuture<'a, Result<Plan, BackendError>>;

    /// Carries the changes out.
    fn apply<'a>(
        &'a self,
        changes: &'a [Change],
        options: &'a ChangeOptions,
        progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Security data for security upgrades (CVE ids, severity), grouped as
    /// the distribution groups them.
    fn advisories<'a>(
        &'a self,
        upgrades: &'a [Upgrade],
    ) -> BoxFuture<'a, Result<Vec<Advisory>, BackendError>>;

    /// The package manager asks for a reboot (e.g. `/run/reboot-required`).
    fn reboot_required(&self) -> bool;
}

/// Shared handle to the backend in use.
pub type SharedBackend = Arc<dyn PackageBackend>;

/// Parses a Debian-style relationship list; also used for pacman's
/// `Depends On` (names with `>=`/`=` constraints).
pub fn parse_relations(field: &str) -> Vec<Dependency> {
    dpkg_parse::parse_depends(field)
        .into_iter()
        .map(|mut d| {
            if d.version.is_none() {
                if let Some(i) = d.name.find(['<', '>', '=']) {
                    d.version = Some(d.name[i..].to_owned());
                    d.name.truncate(i);
                }
            }
            d
        })
        .collect()
}

/// Package names as all four package managers accept them, and never an
/// option: starts with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._@".contains(&b))
}

/// Versions as the package managers write them (epoch, `~`, `+`, …).
pub fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 200
        && version.as_bytes()[0].is_ascii_alphanumeric()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+-~:_".contains(&b))
}

/// Chooses the backend for this host.
pub fn select_backend(
    config: &PackagesConfig,
    os: &os_release::OsRelease,
    security: Arc<crate::security::SecurityData>,
) -> Result<SharedBackend, BackendError> {
    let family = if config.backend == "auto" {
        os.family().ok_or_else(|| BackendError::Unsupported {
            backend: "auto",
            what: format!(
                "no supported package manager for ID={} ID_LIKE={}",
                os.id, os.id_like
            ),
        })?
    } else {
        config.backend.as_str()
    };
    if config.root.is_some() && family != "apt" {
        return Err(BackendError::Unsupported {
            backend: "root",
            what: "packages.root works with apt only".into(),
        });
    }
    Ok(match family {
        "apt" => Arc::new(apt::Apt::new(config.clone(), security)),
        "dnf" => Arc::new(dnf::Dnf::new()),
        "apk" => Arc::new(apk::Apk::new()),
        "pacman" => Arc::new(pacman::Pacman::new()),
        other => {
            return Err(BackendError::Unsupported {
                backend: "auto",
                what: other.to_owned(),
            })
        }
    })
}

/// Extracts `CVE-YYYY-NNNN…` ids from text, in order of first appearance.
pub fn cve_ids(text: &str, out: &mut Vec<String>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("CVE-") {
        let start = i + pos;
        let mut j = start + 4;
        let year_end = j + 4;
        if year_end <= bytes.len()
            && bytes[j..year_end].iter().all(u8::is_ascii_digit)
            && bytes.get(year_end) == Some(&b'-')
        {
            j = year_end + 1;
            let digits_start = j;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            let boundary_ok = (start == 0 || !bytes[start - 1].is_ascii_alphanumeric())
                && bytes.get(j).is_none_or(|b| !b.is_ascii_alphanumeric());
            if (4..=12).contains(&(j - digits_start)) && boundary_ok {
                let id = &text[start..j];
                if !out.iter().any(|x| x == id) {
                    out.push(id.to_owned());
                }
            }
        }
        i = start + 4;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert!(valid_name("libssl3"));
        assert!(valid_name("g++-12"));
        assert!(valid_name("python3.11"));
        assert!(!valid_name("-o"));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
        assert!(valid_version("1:2.3~rc1+deb12u1-4"));
        assert!(!valid_version("1.0 --force"));
        assert!(!valid_version("-1"));
    }

    #[test]
    fn cve_extraction() {
        let mut ids = Vec::new();
        cve_ids(
            "Fix CVE-2026-11111, CVE-2026-22222 and (CVE-2024-1234). XCVE-2020-1111 CVE-20-1 CVE-2026-11111",
            &mut ids,
        );
        assert_eq!(ids, ["CVE-2026-11111", "CVE-2026-22222", "CVE-2024-1234"]);
        let mut ids = Vec::new();
        cve_ids("CVE-2026-", &mut ids);
        cve_ids("CVE-", &mut ids);
        cve_ids("é CVE-2021-0001234567890123 CVE-2021-1234x", &mut ids);
        assert!(ids.is_empty());
        cve_ids("é CVE-2021-0001234", &mut ids);
        assert_eq!(ids, ["CVE-2021-0001234"]);
    }
}
