//! Settings, read once at start-up from the extension's `ITL_*` environment.

use attest_ext::{ExtensionEnv, ExtensionError};
use secrecy_free::Token;

/// Set `false` to disable the extension (the seed's switch).
pub const ENABLED: &str = "ITL_PULUMI_ENABLED";
/// The shared access token the CLI sends as `Authorization: token …`.
pub const TOKEN: &str = "ITL_PULUMI_TOKEN";
/// The organization name answered in `/api/user`.
pub const ORG: &str = "ITL_PULUMI_ORG";
/// The program server-side deployments run (default `pulumi`).
pub const DEPLOY_COMMAND: &str = "ITL_PULUMI_DEPLOY_COMMAND";

/// Every variable the extension reads (the per-stack secrets keys are
/// sealed with the server's master key, a host setting).
pub const ENV_VARS: &[&str] = &[ENABLED, TOKEN, ORG, DEPLOY_COMMAND];

/// Default of [`ORG`], as the seed.
pub const DEFAULT_ORG: &str = "itlusions";
/// Default of [`DEPLOY_COMMAND`].
pub const DEFAULT_DEPLOY_COMMAND: &str = "pulumi";
/// Shortest accepted shared token: a guessable token would open every
/// stack's state and secrets.
pub const MIN_TOKEN_LEN: usize = 16;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct PulumiSettings {
    pub enabled: bool,
    /// `None`: only operator OIDC tokens are accepted.
    pub token: Option<Token>,
    pub org: String,
    pub deploy_command: String,
}

impl PulumiSettings {
    /// Defaults overridden by `env`; a malformed value is an error naming
    /// the variable (never echoing a secret).
    pub fn from_env(env: &ExtensionEnv) -> Result<Self, ExtensionError> {
        let token = match env.get(TOKEN) {
            Some(t) if t.trim().len() < MIN_TOKEN_LEN => {
                return Err(ExtensionError::new(format!(
                    "{TOKEN} must be at least {MIN_TOKEN_LEN} characters"
                )))
            }
            Some(t) => Some(Token::new(t.trim())),
            None => None,
        };
        let org = env.get(ORG).unwrap_or(DEFAULT_ORG).trim().to_owned();
        if !crate::names::is_valid(&org) {
            return Err(ExtensionError::new(format!(
                "{ORG} must be 1 to 100 letters, digits, '_', '.' or '-'"
            )));
        }
        Ok(Self {
            enabled: env.bool(ENABLED)?.unwrap_or(true),
            token,
            org,
            deploy_command: env
                .get(DEPLOY_COMMAND)
                .unwrap_or(DEFAULT_DEPLOY_COMMAND)
                .trim()
                .to_owned(),
        })
    }
}

/// A secret string that never prints and is wiped on drop.
pub mod secrecy_free {
    use zeroize::Zeroizing;

    /// The shared access token.
    #[derive(Clone)]
    pub struct Token(Zeroizing<String>);

    impl Token {
        /// Wraps `value`.
        pub fn new(value: &str) -> Self {
            Self(Zeroizing::new(value.to_owned()))
        }

        /// Constant-time comparison with a presented token.
        pub fn matches(&self, presented: &str) -> bool {
            use sha2::{Digest, Sha256};
            use subtle::ConstantTimeEq;
            // Hash both so the comparison does not leak the length either.
            let a = Sha256::digest(self.0.as_bytes());
            let b = Sha256::digest(presented.as_bytes());
            a.ct_eq(&b).into()
        }
    }

    impl std::fmt::Debug for Token {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Token([redacted])")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let s = PulumiSettings::from_env(&ExtensionEnv::default()).unwrap();
        assert!(s.enabled && s.token.is_none());
        assert_eq!(s.org, "itlusions");
        assert_eq!(s.deploy_command, "pulumi");
        let env = ExtensionEnv::default()
            .with(TOKEN, "0123456789abcdef-token")
            .with(ORG, "acme")
            .with(ENABLED, "false");
        let s = PulumiSettings::from_env(&env).unwrap();
        assert!(!s.enabled);
        assert!(s.token.as_ref().unwrap().matches("0123456789abcdef-token"));
        assert!(!s.token.as_ref().unwrap().matches("0123456789abcdef-tokem"));
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
        let short = ExtensionEnv::default().with(TOKEN, "short");
        let err = PulumiSettings::from_env(&short).unwrap_err().to_string();
        assert!(err.contains(TOKEN) && !err.contains("short"), "{err}");
        assert!(PulumiSettings::from_env(&ExtensionEnv::default().with(ORG, "a/b")).is_err());
        assert!(PulumiSettings::from_env(&ExtensionEnv::default().with(ENABLED, "maybe")).is_err());
    }
}
