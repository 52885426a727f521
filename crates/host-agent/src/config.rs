//! The agent's configuration file (YAML): defaults, then the file; unknown
//! keys are refused so a typo never silently falls back to a default.
//!
//! The binary has roles, each enabled here. `patch_api` is the only role so
//! far; the certificate-deployment role will sit beside it under `roles`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the agent looks for its configuration by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/attestation-agent/config.yaml";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Roles of this agent; each is off unless enabled.
    pub roles: Roles,
    /// Where enrollment state lives and which manager to trust.
    pub enroll: EnrollConfig,
}

/// The roles of the binary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Roles {
    /// The Linux patch API (mTLS on port 12443).
    pub patch_api: PatchApiConfig,
}

/// The `patch_api` role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PatchApiConfig {
    pub enabled: bool,
    /// Listen address; the seed's port is 12443.
    pub listen: SocketAddr,
    pub tls: TlsConfig,
    /// The IP allow-list (YAML); missing or empty means nobody is allowed.
    pub allowlist_file: PathBuf,
    /// How often the allow-list file is checked for changes.
    pub allowlist_poll_millis: u64,
    /// Job store and other state (`jobs.db`).
    pub state_dir: PathBuf,
    pub jobs: JobsConfig,
    pub packages: PackagesConfig,
    pub security_data: SecurityDataConfig,
    /// Command run when a reboot job's delay has passed.
    pub reboot_command: Vec<String>,
    /// Read for the OS name, version and package-manager family.
    pub os_release_file: PathBuf,
}

impl Default for PatchApiConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 12443)),
            tls: TlsConfig::default(),
            allowlist_file: PathBuf::from("/etc/attestation-agent/whitelist.yaml"),
            allowlist_poll_millis: 1000,
            state_dir: PathBuf::from("/var/lib/attestation-agent"),
            jobs: JobsConfig::default(),
            packages: PackagesConfig::default(),
            security_data: SecurityDataConfig::default(),
            reboot_command: vec!["systemctl".into(), "reboot".into()],
            os_release_file: PathBuf::from("/etc/os-release"),
        }
    }
}

/// Certificates of the mTLS listener. Enrollment writes these files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA whose client certificates are accepted.
    pub ca_file: PathBuf,
    /// Certificate the agent serves (PEM, leaf first).
    pub cert_file: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key_file: PathBuf,
    /// Longest accepted client-certificate validity (seed: one year).
    pub max_client_cert_validity_days: u32,
}

impl Default for TlsConfig {
    fn default() -> Self {
        let dir = Path::new("/etc/attestation-agent/certs");
        Self {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server.key.pem"),
            max_client_cert_validity_days: 366,
        }
    }
}

/// Job runner limits (seed: 5 concurrent jobs, 30 minutes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    pub max_concurrent: usize,
    pub timeout_seconds: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 5,
            timeout_seconds: 30 * 60,
        }
    }
}

/// Which package manager to drive, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PackagesConfig {
    /// `auto` (from `/etc/os-release`), `apt`, `dnf`, `apk` or `pacman`.
    pub backend: String,
    /// Operate on another root instead of `/` (apt only): apt and dpkg are
    /// pointed at it, maintainer scripts run without chroot. For tests and
    /// image builds.
    pub root: Option<PathBuf>,
    /// Refresh package indexes before listing patches when older than this.
    pub refresh_interval_seconds: u64,
    /// Release labels whose packages are security updates (apt).
    pub security_labels: Vec<String>,
    /// Archive (suite) suffix marking security updates (apt; Ubuntu's
    /// `jammy-security`).
    pub security_archive_suffix: String,
}

impl Default for PackagesConfig {
    fn default() -> Self {
        Self {
            backend: "auto".into(),
            root: None,
            refresh_interval_seconds: 3600,
            security_labels: vec!["Debian-Security".into()],
            security_archive_suffix: "-security".into(),
        }
    }
}

/// Distribution security data used for patch severity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityDataConfig {
    /// The Debian security tracker's JSON (`https://…/tracker/data/json`, or
    /// a local file path). Without it, Debian severities are `unknown`.
    pub debian_tracker: Option<String>,
    /// Release codename to read in the tracker; default: `VERSION_CODENAME`
    /// of os-release.
    pub release: Option<String>,
    /// How long a downloaded tracker file is reused.
    pub cache_seconds: Option<u64>,
}

/// Enrollment settings and where its state is kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollConfig {
    /// Manager origin, e.g. `https://manager.example.com:8443`.
    pub manager: Option<String>,
    /// SHA-256 fingerprint of the manager's CA certificate (hex, colons
    /// allowed, optional `sha256:` prefix).
    pub manager_ca_fingerprint: Option<String>,
    /// The manager's CA certificate, when the manager does not send it.
    pub manager_ca_file: Option<PathBuf>,
    /// Read for the `machine_id` field.
    pub machine_id_file: Option<PathBuf>,
}

impl AgentConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates YAML text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: AgentConfig = if text.trim().is_empty() {
            AgentConfig::default()
        } else {
            serde_norway::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.roles.patch_api;
        if p.jobs.max_concurrent == 0 {
            return Err(ConfigError::Invalid(
                "roles.patch_api.jobs.max_concurrent must be at least 1".into(),
            ));
        }
        if p.jobs.timeout_seconds == 0 {
            return Err(ConfigError::Invalid(
                "roles.patch_api.jobs.timeout_seconds must be at least 1".into(),
            ));
        }
        if p.reboot_command.is_empty() {
            return Err(ConfigError::Invalid(
                "roles.patch_api.reboot_command must name a program".into(),
            ));
        }
        if p.tls.max_client_cert_validity_days == 0 {
            return Err(ConfigError::Invalid(
                "roles.patch_api.tls.max_client_cert_validity_days must be at least 1".into(),
            ));
        }
        if !["auto", "apt", "dnf", "apk", "pacman"].contains(&p.packages.backend.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "roles.patch_api.packages.backend: unknown backend {:?} (auto, apt, dnf, apk, pacman)",
                p.packages.backend
            )));
        }
        Ok(())
    }

    /// Where the job database lives.
    pub fn jobs_db_path(&self) -> PathBuf {
        self.roles.patch_api.state_dir.join("jobs.db")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        let c = AgentConfig::parse(Path::new("x"), "").unwrap();
        let p = &c.roles.patch_api;
        assert_eq!(p.listen.port(), 12443);
        assert_eq!(p.jobs.max_concurrent, 5);
        assert_eq!(p.jobs.timeout_seconds, 1800);
        assert!(!p.enabled);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = AgentConfig::parse(
            Path::new("c.yaml"),
            "roles:\n  patch_api:\n    enabeld: true\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("enabeld"), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        for text in [
            "roles: {patch_api: {jobs: {max_concurrent: 0}}}",
            "roles: {patch_api: {packages: {backend: zypper}}}",
            "roles: {patch_api: {reboot_command: []}}",
        ] {
            assert!(AgentConfig::parse(Path::new("c"), text).is_err(), "{text}");
        }
    }
}
