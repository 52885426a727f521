//! Settings of operator client certificates.

use attest_settings::{Setting, Sources};

use super::ConfigError;

attest_settings::declare! {
    pub OPERATOR_CERT_HOURS: u32 = Setting::new("operator_cert_hours", "ITL_OPERATOR_CERT_HOURS",
        "Default lifetime of an operator client certificate from `POST /api/v1/operator-certs`, in hours. Certificates are issued only to the caller's own OIDC identity and carry its principal; see `docs/authentication.md`.")
        .default("12");
    pub OPERATOR_CERT_MAX_HOURS: u32 = Setting::new("operator_cert_max_hours", "ITL_OPERATOR_CERT_MAX_HOURS",
        "Longest lifetime an operator may ask for (`valid_hours` / `valid_days`), in hours (at most 2160, 90 days).")
        .default("168");
}

/// The resolved group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorSettings {
    /// Default certificate lifetime, hours.
    pub cert_hours: u32,
    /// Longest certificate lifetime, hours.
    pub cert_max_hours: u32,
}

impl OperatorSettings {
    /// Environment over file over defaults.
    pub(super) fn resolve(src: &Sources<'_>) -> Result<Self, ConfigError> {
        let cert_max_hours = src.value(&OPERATOR_CERT_MAX_HOURS)?;
        if !(1..=2160).contains(&cert_max_hours) {
            return Err(ConfigError::invalid(
                OPERATOR_CERT_MAX_HOURS.spec.key,
                "must be between 1 and 2160",
            ));
        }
        let cert_hours = src.value(&OPERATOR_CERT_HOURS)?;
        if cert_hours == 0 || cert_hours > cert_max_hours {
            return Err(ConfigError::invalid(
                OPERATOR_CERT_HOURS.spec.key,
                "must be at least 1 and at most operator_cert_max_hours",
            ));
        }
        Ok(Self {
            cert_hours,
            cert_max_hours,
        })
    }
}
