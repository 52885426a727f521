//! Names clients choose: actor names (the bootstrap's `actor_name`, API
//! key names) and resource ids.

/// Whether `name` is a valid actor name: 3–64 characters, lowercase
/// alphanumerics, `-` and `_`, starting with a letter or digit (the
/// seed's `^[a-z0-9][a-z0-9_-]{2,63}$`).
pub fn is_actor_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=64).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// Whether `id` is a usable client-chosen resource id (`mc-api-prod`,
/// `t-platform`): 1–128 ASCII letters, digits, `-`, `_` and `.`, so that it
/// is safe in a URL path segment and a log line.
pub fn is_resource_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_names_follow_the_seed_pattern() {
        for ok in ["ops", "admin-alice", "a_1", &"a".repeat(64)] {
            assert!(is_actor_name(ok), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "-ops",
            "_ops",
            "Ops",
            "ops!",
            "op s",
            &"a".repeat(65),
        ] {
            assert!(!is_actor_name(bad), "{bad}");
        }
    }

    #[test]
    fn resource_ids_are_path_safe() {
        assert!(is_resource_id("mc-api-prod"));
        assert!(is_resource_id("iss.local_1"));
        assert!(!is_resource_id(""));
        assert!(!is_resource_id("a/b"));
        assert!(!is_resource_id("a b"));
        assert!(!is_resource_id(&"a".repeat(129)));
    }
}
