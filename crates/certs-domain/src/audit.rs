//! How the one audit chain reads in certctl's shape.
//!
//! The certificate-lifecycle application names its actions after the
//! permission namespace of the change (`auth.key.create`,
//! `issuer.create`, `cert.revoke`), so an entry's category (`auth`,
//! `config`, `cert_lifecycle`, the seed's `event_category`) follows from
//! its action alone and a category filter is a prefix match in SQL.
//! Entries of the attestation service (machine lifecycle, certificates it
//! issues) are `cert_lifecycle`.

/// The seed's event categories (declared with the wire types, whose
/// schema lists them).
pub const CATEGORIES: &[&str] = attest_proto::certs::audit::AUDIT_CATEGORIES;

/// Action prefixes of the `auth` category.
pub const AUTH_PREFIXES: &[&str] = &["auth."];

/// Action prefixes of the `config` category.
pub const CONFIG_PREFIXES: &[&str] = &[
    "issuer.",
    "intermediate.",
    "profile.",
    "owner.",
    "team.",
    "renewal_policy.",
];

/// Every prefix with a category of its own (`auth` and `config`); actions
/// with none of them are `cert_lifecycle`.
pub const CLASSIFIED_PREFIXES: &[&str] = &[
    "auth.",
    "issuer.",
    "intermediate.",
    "profile.",
    "owner.",
    "team.",
    "renewal_policy.",
];

/// The category of `action`.
pub fn category_of(action: &str) -> &'static str {
    if AUTH_PREFIXES.iter().any(|p| action.starts_with(p)) {
        "auth"
    } else if CONFIG_PREFIXES.iter().any(|p| action.starts_with(p)) {
        "config"
    } else {
        "cert_lifecycle"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_action() {
        assert_eq!(category_of("auth.key.create"), "auth");
        assert_eq!(category_of("issuer.create"), "config");
        assert_eq!(category_of("renewal_policy.update"), "config");
        assert_eq!(category_of("cert.revoke"), "cert_lifecycle");
        assert_eq!(category_of("approve"), "cert_lifecycle");
        assert!(CATEGORIES.contains(&category_of("anything")));
        let both: Vec<&str> = AUTH_PREFIXES
            .iter()
            .chain(CONFIG_PREFIXES)
            .copied()
            .collect();
        assert_eq!(both, CLASSIFIED_PREFIXES);
    }
}
