//! Operator identities as the audit log records them, and the principal
//! behind each one.
//!
//! The audit log names operators by a display identity (OIDC
//! `preferred_username`, a certificate CN). Two strings that look alike
//! must not be two identities, and nothing may look like the break-glass
//! identity `SYSTEM`: identities are normalised (Unicode NFKC), may not hold
//! control or format characters (zero-width spaces, bidi overrides) or
//! surrounding whitespace, and anything that case-folds to `system` is
//! refused.
//!
//! Who an operator *is* for dual control is the principal: the identity as
//! proven by its original authentication source (`oidc:<sub>` for a token,
//! the recorded principal of the OIDC login that minted an operator
//! certificate). A display name can be chosen; a principal cannot.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::AuthError;

/// Identity recorded for break-glass logins (the seed's `operator_cn = SYSTEM`).
pub const BREAK_GLASS_IDENTITY: &str = "SYSTEM";

/// Longest operator identity accepted for the audit log.
const MAX_IDENTITY_CHARS: usize = 256;

/// The normalised form of `identity`, or why it cannot name an operator.
pub fn normalize_identity(identity: &str) -> Result<String, AuthError> {
    let normalized: String = identity.nfkc().collect();
    let refused = |why: &str| AuthError::Unauthenticated(format!("operator identity {why}"));
    if normalized.is_empty() {
        return Err(refused("is empty"));
    }
    if normalized.chars().count() > MAX_IDENTITY_CHARS {
        return Err(refused("is too long"));
    }
    if normalized.chars().any(|c| {
        c.is_control()
            || matches!(
                c.general_category(),
                GeneralCategory::Format
                    | GeneralCategory::Control
                    | GeneralCategory::LineSeparator
                    | GeneralCategory::ParagraphSeparator
                    | GeneralCategory::PrivateUse
                    | GeneralCategory::Surrogate
                    | GeneralCategory::Unassigned
            )
    }) {
        return Err(refused("contains control, format or unassigned characters"));
    }
    if normalized.trim() != normalized {
        return Err(refused("has leading or trailing whitespace"));
    }
    if is_reserved(&normalized) {
        return Err(AuthError::Forbidden(format!(
            "operator identity '{normalized}' is reserved: '{BREAK_GLASS_IDENTITY}' names the \
             break-glass token and 'machine:' machines acting themselves"
        )));
    }
    Ok(normalized)
}

/// Prefix of the audit identity of actions a machine takes itself
/// (`machine:<machine_id>`), which no operator may carry.
const MACHINE_PREFIX: &str = "machine:";

/// The audit identity of an action machine `machine_id` took itself, such
/// as requesting its certificate.
pub fn machine_actor(machine_id: &str) -> String {
    format!("{MACHINE_PREFIX}{machine_id}")
}

/// True if `name` would read as the break-glass identity (it case-folds,
/// after NFKC, to `system`) or as a machine acting itself.
pub fn is_reserved(name: &str) -> bool {
    let folded: String = name.nfkc().flat_map(char::to_lowercase).collect();
    folded.trim() == "system" || folded.starts_with(MACHINE_PREFIX)
}

/// The principal of an OIDC login: the token's subject, which the
/// identity provider never reassigns (a `preferred_username` can change).
pub fn oidc_principal(subject: &str) -> String {
    format!("oidc:{subject}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_of_system_are_refused() {
        for name in [
            "SYSTEM",
            "system",
            "System",
            "SYSTEM\u{200b}",
            "\u{200b}SYSTEM",
            "ＳＹＳＴＥＭ",
            "SYS\u{00ad}TEM",
            "SYSTEM ",
            "ſystem",
            "machine:1234",
            "Machine:x",
        ] {
            assert!(normalize_identity(name).is_err(), "{name:?} accepted");
        }
    }

    #[test]
    fn names_are_normalised_and_checked() {
        assert_eq!(normalize_identity("alice").unwrap(), "alice");
        assert_eq!(normalize_identity("ｂｏｂ").unwrap(), "bob");
        assert_eq!(normalize_identity("Åsa Öberg").unwrap(), "Åsa Öberg");
        for bad in [
            "",
            "al\nice",
            "al\u{202e}ice",
            "al\u{200d}ice",
            " alice",
            &"a".repeat(257),
        ] {
            assert!(normalize_identity(bad).is_err(), "{bad:?} accepted");
        }
    }
}
