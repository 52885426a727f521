//! Field rules of teams, owners and renewal policies.

use attest_proto::certs::catalog::RenewalPolicy;

/// The seed's defaults for a new renewal policy's alert thresholds.
pub const DEFAULT_ALERT_THRESHOLDS: [i64; 4] = [30, 14, 7, 0];

/// Checks a display name (1–255 characters, not blank). Characters, not
/// bytes: the schema's `maxLength` counts characters too.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 255 {
        Err("name must be 1-255 characters".into())
    } else {
        Ok(())
    }
}

/// Checks an e-mail address closely enough to catch mistakes (one `@`,
/// something on both sides, no spaces).
pub fn validate_email(email: &str) -> Result<(), String> {
    let ok = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && matches!(email.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(format!("email {email:?} is not an e-mail address"))
    }
}

/// Checks a renewal policy's ranges (the seed's minimum/maximum).
pub fn validate_renewal_policy(p: &RenewalPolicy) -> Result<(), String> {
    validate_name(&p.name)?;
    if !(1..=365).contains(&p.renewal_window_days) {
        return Err("renewal_window_days must be between 1 and 365".into());
    }
    if !(0..=10).contains(&p.max_retries) {
        return Err("max_retries must be between 0 and 10".into());
    }
    if !(60..=86400).contains(&p.retry_interval_seconds) {
        return Err("retry_interval_seconds must be between 60 and 86400".into());
    }
    if p.alert_thresholds_days
        .iter()
        .any(|d| !(0..=365).contains(d))
    {
        return Err("alert_thresholds_days must each be between 0 and 365".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_policy_ranges() {
        assert!(validate_name(&"é".repeat(255)).is_ok());
        assert!(validate_name(&"é".repeat(256)).is_err());
        assert!(validate_name(" \t").is_err());
        assert!(validate_email("ops@example.com").is_ok());
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@",
            "ops@localhost",
            "a b@example.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        let mut p = RenewalPolicy {
            id: "rp-default".into(),
            name: "default".into(),
            renewal_window_days: 30,
            auto_renew: true,
            max_retries: 3,
            retry_interval_seconds: 3600,
            alert_thresholds_days: DEFAULT_ALERT_THRESHOLDS.to_vec(),
            certificate_profile_id: None,
            created_at: String::new(),
            updated_at: String::new(),
        };
        assert!(validate_renewal_policy(&p).is_ok());
        p.renewal_window_days = 0;
        assert!(validate_renewal_policy(&p).is_err());
        p.renewal_window_days = 30;
        p.retry_interval_seconds = 59;
        assert!(validate_renewal_policy(&p).is_err());
        p.retry_interval_seconds = 60;
        p.alert_thresholds_days = vec![400];
        assert!(validate_renewal_policy(&p).is_err());
    }
}
