//! The extension contract: what a compiled-in extension provides.
//!
//! The Rust form of the seed's `AttestationExtension`: a name, a version, a
//! description, and optionally routes (each under its own prefix), tables
//! (migrations applied with the core's, on both databases), node-event
//! subscriptions and start-up / shutdown hooks. Everything but the three
//! strings has a default, so a hooks-only or routes-only extension is short.

use attest_store::Migration;
use futures::future::BoxFuture;
use utoipa_axum::router::OpenApiRouter;

use crate::host::ExtensionContext;

/// Why an extension could not start. The server logs it and goes on
/// without that extension.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExtensionError(pub String);

impl ExtensionError {
    /// A failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<attest_store::StoreError> for ExtensionError {
    fn from(err: attest_store::StoreError) -> Self {
        Self(format!("database: {err}"))
    }
}

/// Routes mounted under one URL prefix (e.g. `/api/v1/myext`).
///
/// The router's paths are relative to the prefix; its state is already
/// applied, and its operations appear in the server's OpenAPI document.
pub struct Mount {
    /// Absolute path, starting with `/`, without a trailing `/`.
    pub prefix: &'static str,
    /// The routes.
    pub router: OpenApiRouter,
}

impl Mount {
    /// `router` mounted at `prefix`.
    pub fn new(prefix: &'static str, router: OpenApiRouter) -> Self {
        Self { prefix, router }
    }
}

/// A compiled-in extension.
///
/// Register it when building the server binary
/// (`attest_server::serve::start_with`). Lifecycle hooks must be
/// idempotent: a hook may run again after a restart that interrupted it.
pub trait Extension: Send + Sync + 'static {
    /// Registry key, snake_case and unique (e.g. `my_ext`).
    fn name(&self) -> &'static str;
    /// Semantic version (e.g. `1.0.0`).
    fn version(&self) -> &'static str;
    /// One line for `GET /api/v1/extensions`.
    fn description(&self) -> &'static str;

    /// Schema changes, applied in version order with the core's migrations
    /// under the component name `extension_<name>`. Name tables
    /// `extension_<name>_…` so they cannot collide with the core's.
    fn migrations(&self) -> &'static [Migration] {
        &[]
    }

    /// Runs after the migrations, before any route is served.
    fn on_startup<'a>(
        &'a self,
        _ctx: &'a ExtensionContext,
    ) -> BoxFuture<'a, Result<(), ExtensionError>> {
        Box::pin(async { Ok(()) })
    }

    /// The routes, each set under its own prefix. A prefix that collides
    /// with the core's or another extension's stops start-up.
    fn routes(&self, _ctx: &ExtensionContext) -> Vec<Mount> {
        Vec::new()
    }

    /// Subscribes node-event handlers (`ctx.node_events`) or activity
    /// consumers (`ctx.activity`), before the first request.
    fn subscribe(&self, _ctx: &ExtensionContext) {}

    /// Runs once when the server shuts down (flush, stop workers).
    fn on_shutdown<'a>(&'a self, _ctx: &'a ExtensionContext) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// `ITL_*` environment variables this extension reads, so the server
    /// does not warn about them as unknown.
    fn env_vars(&self) -> &'static [&'static str] {
        &[]
    }
}

/// `name` is snake_case: lowercase ASCII letters, digits and `_`, starting
/// with a letter.
pub fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__")
}

/// `version` is `MAJOR.MINOR.PATCH`, optionally with a `-pre` or `+build`
/// suffix.
pub fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let suffix = &version[core.len()..];
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
        && (suffix.is_empty() || suffix.len() > 1)
}

/// `prefix` is an absolute path of plain segments (no parameters, no
/// trailing slash).
pub fn is_valid_prefix(prefix: &str) -> bool {
    prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && prefix[1..].split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

/// Two prefixes collide when one is the other or a whole-segment prefix of
/// it (`/api/v1/secrets` and `/api/v1/secrets/x` collide;
/// `/api/v1/secrets` and `/api/v1/secrets-x` do not).
pub fn prefixes_collide(a: &str, b: &str) -> bool {
    let under = |long: &str, short: &str| {
        long == short || (long.starts_with(short) && long[short.len()..].starts_with('/'))
    };
    under(a, b) || under(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["my_ext", "secret_vault", "metrics", "pulumi_state", "a1"] {
            assert!(is_snake_case(ok), "{ok}");
        }
        for bad in ["", "MyExt", "my-ext", "_x", "x_", "1x", "a__b", "my ext"] {
            assert!(!is_snake_case(bad), "{bad}");
        }
    }

    #[test]
    fn versions() {
        for ok in ["1.0.0", "2.10.3", "0.1.0-rc.1", "1.0.0+build5"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "", "1", "1.0", "1.0.0.0", "01.0.0", "v1.0.0", "1.a.0", "1..0",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn prefixes() {
        assert!(is_valid_prefix("/api/v1/myext"));
        assert!(is_valid_prefix("/metrics"));
        for bad in [
            "",
            "/",
            "api/v1",
            "/api/",
            "/api//x",
            "/api/{id}",
            "/a b",
            "/a/../b",
            "/.",
        ] {
            assert!(!is_valid_prefix(bad), "{bad}");
        }
        assert!(prefixes_collide("/api/v1/secrets", "/api/v1/secrets"));
        assert!(prefixes_collide("/api/v1/secrets", "/api/v1/secrets/x"));
        assert!(prefixes_collide("/api", "/api/v1/secrets"));
        assert!(!prefixes_collide(
            "/api/v1/secrets",
            "/api/v1/shared-secrets"
        ));
        assert!(!prefixes_collide("/api/v1/secrets", "/api/v1/secrets-x"));
    }
}
