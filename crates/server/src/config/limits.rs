//! Settings of the per-source rate limits on unauthenticated endpoints.

use attest_settings::{Setting, Sources};

use super::ConfigError;
use crate::limits::Cidr;

attest_settings::declare! {
    pub RATE_LIMIT_REGISTER_PER_MINUTE: u32 = Setting::new("rate_limit_register_per_minute", "ITL_RATE_LIMIT_REGISTER_PER_MINUTE",
        "Requests per minute one source may make to the endpoints that create machine records (`/register`, `/self-register`); more answer `429` with `Retry-After`. Counted per client address (an IPv6 client per /64) across all replicas. `0`: unlimited.")
        .default("60");
    pub RATE_LIMIT_ATTEST_PER_MINUTE: u32 = Setting::new("rate_limit_attest_per_minute", "ITL_RATE_LIMIT_ATTEST_PER_MINUTE",
        "Requests per minute one source may make to the other unauthenticated machine endpoints (challenge, attest, AK activation and credential, config fetch, request-cert, enroll). A site whose machines share one NAT address needs room for all of them (about two requests per machine per attestation), or an exemption. `0`: unlimited.")
        .default("600");
    pub RATE_LIMIT_HOST_ENROLL_PER_MINUTE: u32 = Setting::new("rate_limit_host_enroll_per_minute", "ITL_RATE_LIMIT_HOST_ENROLL_PER_MINUTE",
        "Host enrollment requests (`POST /api/v1/enroll`) per minute one source may make; more answer `429` with the seed's body `{\"error\": \"Rate limit exceeded. Try again in a minute.\"}` and `Retry-After`. The seed's limit is 1. Counted like the other limits; addresses in `rate_limit_exempt` are never limited. `0`: unlimited.")
        .default("1");
    pub RATE_LIMIT_EXEMPT: Vec<String> = Setting::new("rate_limit_exempt", "ITL_RATE_LIMIT_EXEMPT",
        "Addresses or CIDR blocks never rate-limited (comma-separated in the environment, a list in the file), e.g. a provisioning network.")
        .derived("none");
    pub TRUSTED_PROXIES: Vec<String> = Setting::new("trusted_proxies", "ITL_TRUSTED_PROXIES",
        "Addresses or CIDR blocks of reverse proxies whose `X-Forwarded-For` names the client for rate limiting. Without it every request behind a proxy counts as the proxy's.")
        .derived("none");
}

/// The resolved group.
#[derive(Debug, Clone, Default)]
pub struct LimitSettings {
    /// `register` requests per source and minute.
    pub register_per_minute: u32,
    /// `attest` requests per source and minute.
    pub attest_per_minute: u32,
    /// `host_enroll` requests per source and minute.
    pub host_enroll_per_minute: u32,
    /// How sources are found.
    pub sources: crate::limits::Sources,
}

impl LimitSettings {
    /// Environment over file over defaults.
    pub(super) fn resolve(src: &Sources<'_>) -> Result<Self, ConfigError> {
        let blocks = |setting: &attest_settings::Setting<Vec<String>>| {
            src.get(setting)?
                .unwrap_or_default()
                .iter()
                .map(|b| {
                    b.parse::<Cidr>()
                        .map_err(|m| ConfigError::invalid(setting.spec.key, m))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            register_per_minute: src.value(&RATE_LIMIT_REGISTER_PER_MINUTE)?,
            attest_per_minute: src.value(&RATE_LIMIT_ATTEST_PER_MINUTE)?,
            host_enroll_per_minute: src.value(&RATE_LIMIT_HOST_ENROLL_PER_MINUTE)?,
            sources: crate::limits::Sources {
                trusted_proxies: blocks(&TRUSTED_PROXIES)?,
                exempt: blocks(&RATE_LIMIT_EXEMPT)?,
            },
        })
    }
}
