//! Whether an actor's grants allow an operation.
//!
//! A grant is a permission at a scope: `global`, or one profile, or one
//! issuer. An operation on a resource bound to a profile or an issuer
//! (a certificate issued under profile P by issuer I) is allowed by a
//! global grant or by a grant scoped to P or to I.

use serde::{Deserialize, Serialize};

/// Where a grant applies (the seed's `scope_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ScopeType {
    /// Everywhere.
    Global,
    /// Resources under one profile.
    Profile,
    /// Resources of one issuer.
    Issuer,
}

impl ScopeType {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Profile => "profile",
            Self::Issuer => "issuer",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "global" => Some(Self::Global),
            "profile" => Some(Self::Profile),
            "issuer" => Some(Self::Issuer),
            _ => None,
        }
    }
}

/// One permission held at one scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grant {
    /// Catalogue id.
    pub permission: String,
    /// Where it applies.
    pub scope_type: ScopeType,
    /// The profile or issuer id; `None` for global.
    pub scope_id: Option<String>,
}

/// What an operation touches, for scoped grants: unbound operations
/// (creating a profile, listing) have neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Target<'a> {
    /// The profile the resource is bound to.
    pub profile_id: Option<&'a str>,
    /// The issuer the resource is bound to.
    pub issuer_id: Option<&'a str>,
}

/// Whether `grants` allow `permission` on `target`.
pub fn allows(grants: &[Grant], permission: &str, target: Target<'_>) -> bool {
    grants.iter().any(|g| {
        g.permission == permission
            && match g.scope_type {
                ScopeType::Global => true,
                ScopeType::Profile => {
                    g.scope_id.is_some() && g.scope_id.as_deref() == target.profile_id
                }
                ScopeType::Issuer => {
                    g.scope_id.is_some() && g.scope_id.as_deref() == target.issuer_id
                }
            }
    })
}

/// Whether `grants` hold `permission` at any scope (lists filter scoped
/// holders' results instead of refusing them).
pub fn holds_anywhere(grants: &[Grant], permission: &str) -> bool {
    grants.iter().any(|g| g.permission == permission)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(p: &str, scope: ScopeType, id: Option<&str>) -> Grant {
        Grant {
            permission: p.into(),
            scope_type: scope,
            scope_id: id.map(Into::into),
        }
    }

    #[test]
    fn scopes_narrow_grants() {
        let global = [grant("cert.renew", ScopeType::Global, None)];
        assert!(allows(&global, "cert.renew", Target::default()));
        assert!(!allows(&global, "cert.revoke", Target::default()));

        let by_profile = [grant("cert.renew", ScopeType::Profile, Some("prof-web"))];
        let web = Target {
            profile_id: Some("prof-web"),
            issuer_id: Some("iss-a"),
        };
        let db = Target {
            profile_id: Some("prof-db"),
            issuer_id: Some("iss-a"),
        };
        assert!(allows(&by_profile, "cert.renew", web));
        assert!(!allows(&by_profile, "cert.renew", db));
        assert!(!allows(&by_profile, "cert.renew", Target::default()));
        assert!(holds_anywhere(&by_profile, "cert.renew"));

        let by_issuer = [grant("cert.renew", ScopeType::Issuer, Some("iss-a"))];
        assert!(allows(&by_issuer, "cert.renew", db));
        // A scoped grant without an id matches nothing.
        let broken = [grant("cert.renew", ScopeType::Issuer, None)];
        assert!(!allows(&broken, "cert.renew", Target::default()));
    }

    #[test]
    fn scope_types_round_trip() {
        for s in [ScopeType::Global, ScopeType::Profile, ScopeType::Issuer] {
            assert_eq!(ScopeType::parse(s.as_str()), Some(s));
        }
        assert_eq!(ScopeType::parse("tenant"), None);
    }
}
