//! `/etc/os-release`: which distribution, which package manager.

use std::collections::HashMap;

/// The fields the agent uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: String,
    pub id_like: String,
    pub name: String,
    pub version: String,
    pub version_id: String,
    pub version_codename: String,
    pub pretty_name: String,
}

impl OsRelease {
    /// Parses the `KEY=value` format (values optionally quoted, shell
    /// escapes in double quotes). Unknown and malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let mut map = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            map.insert(key.trim().to_owned(), unquote(value.trim()));
        }
        let get = |k: &str| map.get(k).cloned().unwrap_or_default();
        Self {
            id: get("ID"),
            id_like: get("ID_LIKE"),
            name: get("NAME"),
            version: get("VERSION"),
            version_id: get("VERSION_ID"),
            version_codename: get("VERSION_CODENAME"),
            pretty_name: get("PRETTY_NAME"),
        }
    }

    /// The package-manager family: `apt`, `dnf`, `apk` or `pacman`.
    pub fn family(&self) -> Option<&'static str> {
        let ids = std::iter::once(self.id.as_str()).chain(self.id_like.split_whitespace());
        for id in ids {
            match id {
                "debian" | "ubuntu" => return Some("apt"),
                "fedora" | "rhel" | "centos" | "rocky" | "almalinux" => return Some("dnf"),
                "alpine" => return Some("apk"),
                "arch" | "archlinux" => return Some("pacman"),
                _ => {}
            }
        }
        None
    }
}

fn unquote(value: &str) -> String {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
    {
        let inner = &value[1..value.len() - 1];
        if bytes[0] == b'"' {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            return out;
        }
        return inner.to_owned();
    }
    value.to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        let debian = OsRelease::parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n");
        assert_eq!(debian.family(), Some("apt"));
        assert_eq!(debian.version_codename, "bookworm");
        assert_eq!(debian.name, "Debian GNU/Linux");
        let ubuntu = OsRelease::parse("ID=ubuntu\nID_LIKE=debian\n");
        assert_eq!(ubuntu.family(), Some("apt"));
        let rocky = OsRelease::parse("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n");
        assert_eq!(rocky.family(), Some("dnf"));
        assert_eq!(OsRelease::parse("ID=alpine").family(), Some("apk"));
        assert_eq!(OsRelease::parse("ID=arch").family(), Some("pacman"));
        assert_eq!(OsRelease::parse("ID=gentoo").family(), None);
        assert_eq!(OsRelease::parse("garbage\n=\nID=\"a\\\"b\"").id, "a\"b");
    }
}
