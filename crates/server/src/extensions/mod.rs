//! The extension registry: assembles the server from the core plus
//! compiled-in extensions. Which extensions are compiled in is the
//! binary's choice (the `attestation` binary lists its built-ins in
//! `crates/cli/src/builtin.rs`); the server knows only the SDK's
//! [`Extension`] trait.
//!
//! At start-up each extension is validated (snake_case unique name, semver
//! version), then, unless disabled by `ITL_EXTENSIONS_DISABLED`, its
//! migrations run, its `on_startup` runs, its routes are mounted and its
//! subscriptions made. A bad declaration or a route prefix that collides
//! with the core's or another extension's stops start-up: those are bugs
//! in the binary. An extension whose migrations or start-up fail at run
//! time is reported and left out; the others load (the seed's "Failed to
//! load …" behaviour).

pub mod machine_auth;

use std::sync::Arc;

use attest_ext::extension::{is_semver, is_snake_case, is_valid_prefix};
use attest_ext::{Extension, ExtensionContext, Mount};
use attest_proto::extensions::ExtensionInfo;
use attest_store::MigrationSet;

/// Why the set of extensions is unusable.
#[derive(Debug, thiserror::Error)]
#[error("extension registry: {0}")]
pub struct RegistryError(pub String);

/// The extensions that loaded, with their routes.
pub struct Loaded {
    /// For `GET /api/v1/extensions`.
    pub infos: Vec<ExtensionInfo>,
    /// Routes to mount, each under its prefix.
    pub mounts: Vec<Mount>,
    active: Vec<(Arc<dyn Extension>, ExtensionContext)>,
}

impl Loaded {
    /// Nothing loaded.
    pub fn empty() -> Self {
        Self {
            infos: Vec::new(),
            mounts: Vec::new(),
            active: Vec::new(),
        }
    }

    /// Runs every loaded extension's `on_shutdown`, last loaded first.
    pub async fn shutdown(&self) {
        for (ext, ctx) in self.active.iter().rev() {
            ext.on_shutdown(ctx).await;
            tracing::info!("Stopped extension: {}", ext.name());
        }
    }
}

/// Checks names, versions and uniqueness.
pub fn validate(extensions: &[Arc<dyn Extension>]) -> Result<(), RegistryError> {
    let mut seen = std::collections::HashSet::new();
    for ext in extensions {
        let name = ext.name();
        if !is_snake_case(name) {
            return Err(RegistryError(format!(
                "extension name `{name}` is not snake_case"
            )));
        }
        if !is_semver(ext.version()) {
            return Err(RegistryError(format!(
                "extension {name}: version `{}` is not MAJOR.MINOR.PATCH",
                ext.version()
            )));
        }
        if !seen.insert(name) {
            return Err(RegistryError(format!("two extensions are named `{name}`")));
        }
    }
    Ok(())
}

/// Loads the enabled extensions against `ctx`. `core_paths` are the core's
/// route paths, which no extension prefix may cover.
pub async fn load(
    extensions: &[Arc<dyn Extension>],
    disabled: &[String],
    ctx: &ExtensionContext,
    core_paths: &[String],
) -> Result<Loaded, RegistryError> {
    validate(extensions)?;
    for name in disabled {
        if !extensions.iter().any(|e| e.name() == name) {
            tracing::warn!(extension = %name, "ITL_EXTENSIONS_DISABLED names an unknown extension");
        }
    }
    let mut loaded = Loaded::empty();
    let mut prefixes: Vec<(&'static str, &'static str)> = Vec::new();
    for ext in extensions {
        let name = ext.name();
        if disabled.iter().any(|d| d == name) {
            tracing::info!("Extension disabled by configuration: {name}");
            continue;
        }
        let ctx = &ctx.for_extension(ext.env_vars());
        if let Err(err) = start(ext.as_ref(), ctx).await {
            tracing::error!("Failed to load extension {name}: {err}");
            continue;
        }
        let mounts = ext.routes(ctx);
        for mount in &mounts {
            check_prefix(name, mount.prefix, core_paths, &prefixes)?;
            prefixes.push((name, mount.prefix));
        }
        ext.subscribe(ctx);
        tracing::info!("Loaded extension: {name} v{}", ext.version());
        loaded.infos.push(ExtensionInfo {
            name: name.to_owned(),
            version: ext.version().to_owned(),
            description: ext.description().to_owned(),
        });
        loaded.mounts.extend(mounts);
        loaded.active.push((ext.clone(), ctx.clone()));
    }
    Ok(loaded)
}

/// Migrations, then `on_startup`.
async fn start(ext: &dyn Extension, ctx: &ExtensionContext) -> Result<(), String> {
    let migrations = ext.migrations();
    if !migrations.is_empty() {
        let set = MigrationSet {
            component: format!("extension_{}", ext.name()).into(),
            migrations,
        };
        let report = ctx
            .store
            .migrate(&[set])
            .await
            .map_err(|e| format!("migrations: {e}"))?;
        if report.applied > 0 {
            tracing::info!(
                extension = ext.name(),
                "applied {} migrations ({} total)",
                report.applied,
                report.total
            );
        }
    }
    ext.on_startup(ctx)
        .await
        .map_err(|e| format!("on_startup: {e}"))
}

fn check_prefix(
    name: &str,
    prefix: &str,
    core_paths: &[String],
    taken: &[(&str, &str)],
) -> Result<(), RegistryError> {
    if !is_valid_prefix(prefix) {
        return Err(RegistryError(format!(
            "extension {name}: route prefix `{prefix}` must be an absolute path of plain segments"
        )));
    }
    if let Some(path) = core_paths.iter().find(|p| path_covers(prefix, p)) {
        return Err(RegistryError(format!(
            "extension {name}: route prefix `{prefix}` collides with the core route `{path}`"
        )));
    }
    if let Some((other, p)) = taken
        .iter()
        .find(|(_, p)| path_covers(prefix, p) || path_covers(p, prefix))
    {
        return Err(RegistryError(format!(
            "extension {name}: route prefix `{prefix}` collides with extension {other}'s `{p}`"
        )));
    }
    Ok(())
}

/// Whether some request path could match both `prefix/…` and `path`:
/// segment by segment, a `{param}` matches anything and a `{*rest}` matches
/// the remainder.
fn path_covers(prefix: &str, path: &str) -> bool {
    let mut pre = prefix.trim_matches('/').split('/');
    let mut rest = path.trim_matches('/').split('/');
    loop {
        match (pre.next(), rest.next()) {
            (None, _) => return true,
            (Some(_), None) => return false,
            (Some(a), Some(b)) => {
                if b.starts_with("{*") || a.starts_with("{*") {
                    return true;
                }
                let param = |s: &str| s.starts_with('{');
                if a != b && !param(a) && !param(b) {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::path_covers;

    #[test]
    fn covering() {
        assert!(path_covers(
            "/api/v1/machines",
            "/api/v1/machines/{machine_id}"
        ));
        assert!(path_covers("/api/v1/machines", "/api/v1/machines"));
        assert!(path_covers("/api", "/api/v1/attest"));
        assert!(path_covers("/api/v1/secrets", "/api/v1/{anything}/x"));
        assert!(!path_covers(
            "/api/v1/myext",
            "/api/v1/machines/{machine_id}"
        ));
        assert!(!path_covers("/api/v1/myext/x", "/api/v1/myext"));
        assert!(!path_covers("/api/v1/secrets", "/api/v1/shared-secrets"));
        assert!(path_covers("/files/a/b", "/files/{*rest}"));
    }
}
