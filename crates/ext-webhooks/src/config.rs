//! Settings, read once at start-up from the extension's `ITL_*` environment.

use std::time::Duration;

use attest_ext::{ExtensionEnv, ExtensionError};

/// Deliver to private, loopback and other non-public addresses (tests, labs).
pub const ALLOW_PRIVATE_TARGETS: &str = "ITL_WEBHOOK_ALLOW_PRIVATE_TARGETS";
/// Per-request timeout in seconds.
pub const TIMEOUT_SECONDS: &str = "ITL_WEBHOOK_TIMEOUT_SECONDS";
/// Attempts per delivery, the first included, before giving up.
pub const MAX_ATTEMPTS: &str = "ITL_WEBHOOK_MAX_ATTEMPTS";
/// Delay before the first retry; doubles per failed attempt.
pub const BACKOFF_SECONDS: &str = "ITL_WEBHOOK_BACKOFF_SECONDS";
/// Upper bound of the retry delay.
pub const BACKOFF_CAP_SECONDS: &str = "ITL_WEBHOOK_BACKOFF_CAP_SECONDS";
/// How often the worker looks for due deliveries when nothing woke it.
pub const POLL_INTERVAL_MS: &str = "ITL_WEBHOOK_POLL_INTERVAL_MS";

/// Every variable above, for `Extension::env_vars`.
pub const ENV_VARS: &[&str] = &[
    ALLOW_PRIVATE_TARGETS,
    TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    BACKOFF_SECONDS,
    BACKOFF_CAP_SECONDS,
    POLL_INTERVAL_MS,
];

/// The resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub allow_private_targets: bool,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff: Duration,
    pub backoff_cap: Duration,
    pub poll_interval: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            backoff: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(600),
            poll_interval: Duration::from_millis(1000),
        }
    }
}

impl WebhookSettings {
    /// Defaults overridden by whatever `env` sets; a malformed or
    /// out-of-range value is an error naming the variable.
    pub fn from_env(env: &ExtensionEnv) -> Result<Self, ExtensionError> {
        let d = Self::default();
        // Bounded so no arithmetic on them can overflow: a day is longer
        // than any sensible timeout, backoff or poll interval.
        const MAX: u64 = 86_400;
        let positive = |name: &str, value: Option<u64>, default: u64| match value {
            Some(0) => Err(ExtensionError::new(format!("{name} must be at least 1"))),
            Some(v) if v > MAX && name != POLL_INTERVAL_MS => {
                Err(ExtensionError::new(format!("{name} must be at most {MAX}")))
            }
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let bounded = |name: &str, value: Option<u64>, default: u64| match value {
            Some(v) if v > MAX => Err(ExtensionError::new(format!("{name} must be at most {MAX}"))),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let max_attempts = positive(
            MAX_ATTEMPTS,
            env.parse(MAX_ATTEMPTS)?,
            u64::from(d.max_attempts),
        )?;
        Ok(Self {
            allow_private_targets: env.bool(ALLOW_PRIVATE_TARGETS)?.unwrap_or(false),
            timeout: Duration::from_secs(positive(
                TIMEOUT_SECONDS,
                env.parse(TIMEOUT_SECONDS)?,
                d.timeout.as_secs(),
            )?),
            max_attempts: u32::try_from(max_attempts.min(1000)).unwrap_or(1000),
            backoff: Duration::from_secs(bounded(
                BACKOFF_SECONDS,
                env.parse(BACKOFF_SECONDS)?,
                d.backoff.as_secs(),
            )?),
            backoff_cap: Duration::from_secs(bounded(
                BACKOFF_CAP_SECONDS,
                env.parse(BACKOFF_CAP_SECONDS)?,
                d.backoff_cap.as_secs(),
            )?),
            poll_interval: Duration::from_millis(
                positive(
                    POLL_INTERVAL_MS,
                    env.parse(POLL_INTERVAL_MS)?,
                    u64::try_from(d.poll_interval.as_millis()).unwrap_or(1000),
                )?
                .min(MAX * 1000),
            ),
        })
    }

    /// Delay after the `failed`-th failed attempt (1-based): `backoff`
    /// doubled per earlier failure, never above `backoff_cap`.
    pub fn retry_delay(&self, failed: u32) -> Duration {
        let exp = failed.saturating_sub(1).min(31);
        self.backoff
            .checked_mul(1u32 << exp)
            .unwrap_or(self.backoff_cap)
            .min(self.backoff_cap)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let s = WebhookSettings::from_env(&ExtensionEnv::default()).unwrap();
        assert_eq!(s, WebhookSettings::default());
        let env = ExtensionEnv::default()
            .with(ALLOW_PRIVATE_TARGETS, "true")
            .with(MAX_ATTEMPTS, "3")
            .with(BACKOFF_SECONDS, "2");
        let s = WebhookSettings::from_env(&env).unwrap();
        assert!(s.allow_private_targets);
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.backoff, Duration::from_secs(2));
        let bad = ExtensionEnv::default().with(TIMEOUT_SECONDS, "0");
        assert!(WebhookSettings::from_env(&bad).is_err());
        let bad = ExtensionEnv::default().with(MAX_ATTEMPTS, "many");
        assert!(WebhookSettings::from_env(&bad).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = WebhookSettings::default();
        let secs: Vec<u64> = (1..=9).map(|n| s.retry_delay(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(s.retry_delay(u32::MAX).as_secs(), 600);
    }
}
