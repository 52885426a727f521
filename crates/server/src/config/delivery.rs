//! Settings of config delivery, machine certificates and AK binding.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use attest_settings::{Setting, Sources};

use super::ConfigError;

attest_settings::declare! {
    pub CONFIG_CACHE_DIR: PathBuf = Setting::new("config_cache_dir", "ITL_CONFIG_CACHE_DIR",
        "Directory of base Talos MachineConfigs, one `<role>.yaml` per role (`controlplane`, `worker-infra`, `worker-app`, `generic`). Read on every delivery, so edits take effect without a restart; approving a machine into a Talos role whose file is missing or invalid is refused (422). See `docs/config-delivery.md`.")
        .derived("`<data_dir>/configs`");
    pub REQUIRE_ENCRYPTED_DELIVERY: bool = Setting::new("require_encrypted_delivery", "ITL_REQUIRE_ENCRYPTED_DELIVERY",
        "When true, config requests without an envelope `Accept` type get 406.")
        .default("false");
    pub ENROLLMENT_CERT_DAYS: u32 = Setting::new("enrollment_cert_days", "ITL_ENROLLMENT_CERT_DAYS",
        "Validity of machine enrollment certificates (request-cert, offline bundle), 1-825 days.")
        .default("30");
    pub REQUIRE_AK_CREDENTIAL: bool = Setting::new("require_ak_credential", "ITL_REQUIRE_AK_CREDENTIAL",
        "When true, ak-activate needs a completed credential activation (`activation_id` + `activation_secret`), proving the AK lives in the EK's TPM. Turn on once every machine's agent supports it; see `docs/attestation.md`.")
        .default("false");
    pub AK_POLICY: AkPolicySetting = Setting::new("ak_policy", "ITL_AK_POLICY",
        "Which attestation keys ak-credential and ak-activate accept: `strong` (ECDSA P-384 or RSA >= 3072, as the seed's ak-activate demands) or `standard` (also ECDSA P-256 and RSA-2048, what `tpm2_createak` makes by default and most fleets have).")
        .default("strong");
    pub MACHINE_CERTS_PER_DAY: u32 = Setting::new("machine_certs_per_day", "ITL_MACHINE_CERTS_PER_DAY",
        "Most enrollment certificates `request-cert` issues to one machine in any 24 hours; more answer `429` with `Retry-After`. Every issuance is audited (`request_cert`).")
        .default("10");
    pub CRL_VALIDITY_HOURS: u32 = Setting::new("crl_validity_hours", "ITL_CRL_VALIDITY_HOURS",
        "nextUpdate of the enrollment CA's CRL (`/.well-known/pki/crl/enrollment`), 1-744 hours.")
        .default("24");
}

/// Lifetime of an AK credential-activation challenge: long enough for a
/// slow TPM to run ActivateCredential, short enough not to pile up.
pub const AK_CREDENTIAL_TTL: Duration = Duration::from_secs(300);

/// Which AKs are accepted (`ITL_AK_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AkPolicySetting {
    /// ECDSA P-384 or RSA >= 3072 (the seed).
    #[default]
    Strong,
    /// Also ECDSA P-256 and RSA-2048.
    Standard,
}

attest_settings::text_value!(AkPolicySetting);

impl FromStr for AkPolicySetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "strong" => Ok(Self::Strong),
            "standard" => Ok(Self::Standard),
            other => Err(format!("expected strong or standard, got `{other}`")),
        }
    }
}

impl AkPolicySetting {
    /// The TPM library's policy.
    pub fn policy(self) -> attest_tpm::ak::AkPolicy {
        match self {
            Self::Strong => attest_tpm::ak::AkPolicy::Strong,
            Self::Standard => attest_tpm::ak::AkPolicy::Standard,
        }
    }
}

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
    /// Which AKs ak-credential and ak-activate accept.
    pub ak_policy: AkPolicySetting,
    /// nextUpdate - thisUpdate of the enrollment CA's CRL.
    pub crl_validity: Duration,
    /// request-cert issuances per machine per 24 hours.
    pub machine_certs_per_day: u32,
}

impl DeliverySettings {
    /// Environment over file over defaults.
    pub(super) fn resolve(src: &Sources<'_>, data_dir: &Path) -> Result<Self, ConfigError> {
        let enrollment_cert_days = src.value(&ENROLLMENT_CERT_DAYS)?;
        if !(1..=825).contains(&enrollment_cert_days) {
            return Err(ConfigError::invalid(
                ENROLLMENT_CERT_DAYS.spec.key,
                "must be between 1 and 825",
            ));
        }
        let crl_hours = src.value(&CRL_VALIDITY_HOURS)?;
        if !(1..=24 * 31).contains(&crl_hours) {
            return Err(ConfigError::invalid(
                CRL_VALIDITY_HOURS.spec.key,
                "must be between 1 and 744",
            ));
        }
        let machine_certs_per_day = src.value(&MACHINE_CERTS_PER_DAY)?;
        if machine_certs_per_day == 0 {
            return Err(ConfigError::invalid(
                MACHINE_CERTS_PER_DAY.spec.key,
                "must be at least 1",
            ));
        }
        Ok(Self {
            machine_certs_per_day,
            config_cache_dir: src
                .get(&CONFIG_CACHE_DIR)?
                .unwrap_or_else(|| data_dir.join("configs")),
            require_encrypted_delivery: src.value(&REQUIRE_ENCRYPTED_DELIVERY)?,
            enrollment_cert_days,
            require_ak_credential: src.value(&REQUIRE_AK_CREDENTIAL)?,
            ak_policy: src.value(&AK_POLICY)?,
            crl_validity: Duration::from_secs(u64::from(crl_hours) * 3600),
        })
    }

    /// Validity of enrollment certificates.
    pub fn enrollment_cert_validity(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.enrollment_cert_days))
    }
}
