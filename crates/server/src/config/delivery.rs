//! Settings of config delivery, machine certificates and AK binding.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{env_bool, env_parse, ConfigError, Env};

/// Defaults of this group.
pub mod defaults {
    /// Validity of machine enrollment certificates (seed: 30 days).
    pub const ENROLLMENT_CERT_DAYS: u32 = 30;
    /// How long a published CRL is valid (its nextUpdate).
    pub const CRL_VALIDITY_HOURS: u32 = 24;
}

/// Lifetime of an AK credential-activation challenge: long enough for a
/// slow TPM to run ActivateCredential, short enough not to pile up.
pub const AK_CREDENTIAL_TTL: Duration = Duration::from_secs(300);

/// The resolved group.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Where `<role>.yaml` base MachineConfigs live.
    pub config_cache_dir: PathBuf,
    /// Plaintext config requests answer 406.
    pub require_encrypted_delivery: bool,
    /// Validity of enrollment certificates, in days.
    pub enrollment_cert_days: u32,
    /// ak-activate needs a completed credential activation.
    pub require_ak_credential: bool,
    /// nextUpdate - thisUpdate of the enrollment CA's CRL.
    pub crl_validity: Duration,
}

/// The TOML keys of this group, as read by the file parser.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct DeliveryFile {
    pub config_cache_dir: Option<PathBuf>,
    pub require_encrypted_delivery: Option<bool>,
    pub enrollment_cert_days: Option<u32>,
    pub require_ak_credential: Option<bool>,
    pub crl_validity_hours: Option<u32>,
}

impl DeliverySettings {
    /// Defaults, with the role configs under `data_dir/configs`.
    pub fn defaults(data_dir: &Path) -> Self {
        Self {
            config_cache_dir: data_dir.join("configs"),
            require_encrypted_delivery: false,
            enrollment_cert_days: defaults::ENROLLMENT_CERT_DAYS,
            require_ak_credential: false,
            crl_validity: Duration::from_secs(u64::from(defaults::CRL_VALIDITY_HOURS) * 3600),
        }
    }

    /// Environment over file over defaults.
    pub(super) fn resolve(
        env: &dyn Env,
        file: DeliveryFile,
        data_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let mut s = Self::defaults(data_dir);
        if let Some(dir) = env
            .var("ITL_CONFIG_CACHE_DIR")
            .map(PathBuf::from)
            .or(file.config_cache_dir)
        {
            s.config_cache_dir = dir;
        }
        s.require_encrypted_delivery = env_bool(env, "ITL_REQUIRE_ENCRYPTED_DELIVERY")?
            .or(file.require_encrypted_delivery)
            .unwrap_or(false);
        if let Some(days) =
            env_parse::<u32>(env, "ITL_ENROLLMENT_CERT_DAYS")?.or(file.enrollment_cert_days)
        {
            if !(1..=825).contains(&days) {
                return Err(ConfigError::Invalid {
                    key: "enrollment_cert_days",
                    message: "must be between 1 and 825".into(),
                });
            }
            s.enrollment_cert_days = days;
        }
        s.require_ak_credential = env_bool(env, "ITL_REQUIRE_AK_CREDENTIAL")?
            .or(file.require_ak_credential)
            .unwrap_or(false);
        if let Some(hours) =
            env_parse::<u32>(env, "ITL_CRL_VALIDITY_HOURS")?.or(file.crl_validity_hours)
        {
            if !(1..=24 * 31).contains(&hours) {
                return Err(ConfigError::Invalid {
                    key: "crl_validity_hours",
                    message: "must be between 1 and 744".into(),
                });
            }
            s.crl_validity = Duration::from_secs(u64::from(hours) * 3600);
        }
        Ok(s)
    }

    /// Validity of enrollment certificates.
    pub fn enrollment_cert_validity(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.enrollment_cert_days))
    }
}
