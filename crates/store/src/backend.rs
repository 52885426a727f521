//! Which database a URL names, and the URL handling around it.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Result, StoreError};

/// The two supported databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Recognises `sqlite:` and `postgres://` / `postgresql://` URLs.
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::InvalidUrl(format!(
                "{}: expected sqlite://PATH?mode=rwc or postgres://…",
                redacted_url(url)
            )))
        }
    }

    /// Lowercase name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The URL with any password (in the userinfo or a `password=` query
/// parameter) replaced by `REDACTED`, fit for logs.
pub fn redacted_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return url.to_string();
    }
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparseable database URL>".to_string();
    };
    if parsed.password().is_some() && parsed.set_password(Some("REDACTED")).is_err() {
        return "<unparseable database URL>".to_string();
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case("password") {
                "REDACTED".to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    if !pairs.is_empty() {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Where a `sqlite:` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqliteTarget {
    Memory,
    File(PathBuf),
}

/// Parses the file part of a `sqlite:` URL the way sqlx does
/// (`sqlite://rel/path`, `sqlite:///abs/path`, `sqlite:path`, `?…` options).
pub(crate) fn sqlite_target(url: &str) -> Result<SqliteTarget> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::InvalidUrl(url.to_string()))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory =
        path.is_empty() || path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory");
    if memory {
        return Ok(SqliteTarget::Memory);
    }
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| StoreError::InvalidUrl(format!("{url}: path is not UTF-8")))?;
    Ok(SqliteTarget::File(PathBuf::from(decoded.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite://a.db?mode=rwc").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("sqlite::memory:").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::from_url("mysql://root:hunter2@h/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(
            redacted_url("postgres://attest:s3cret@db.example:5432/attest?sslmode=require"),
            "postgres://attest:REDACTED@db.example:5432/attest?sslmode=require"
        );
        assert_eq!(
            redacted_url("postgres://db/attest?user=a&password=s3cret"),
            "postgres://db/attest?user=a&password=REDACTED"
        );
        assert_eq!(
            redacted_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            redacted_url("sqlite://x.db?mode=rwc"),
            "sqlite://x.db?mode=rwc"
        );
        assert_eq!(
            redacted_url("postgres://a:pw@[bad"),
            "<unparseable database URL>"
        );
    }

    #[test]
    fn sqlite_targets() {
        assert_eq!(
            sqlite_target("sqlite://data/a.db?mode=rwc").unwrap(),
            SqliteTarget::File("data/a.db".into())
        );
        assert_eq!(
            sqlite_target("sqlite:///var/lib/a%20b.db").unwrap(),
            SqliteTarget::File("/var/lib/a b.db".into())
        );
        assert_eq!(
            sqlite_target("sqlite::memory:").unwrap(),
            SqliteTarget::Memory
        );
        assert_eq!(
            sqlite_target("sqlite://?mode=memory").unwrap(),
            SqliteTarget::Memory
        );
    }
}
