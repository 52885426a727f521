//! Settings of registration, attestation and approval (`ITL_*` variables
//! of the seed's attestation service, plus the ones it left implicit).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use attest_domain::machine::Role;

use super::quote_policy::QuotePolicies;
use super::{env_bool, env_parse, ConfigError, Env};

/// Defaults of this group.
pub mod defaults {
    /// The public Talos Image Factory.
    pub const IMAGE_FACTORY_URL: &str = "https://factory.talos.dev";
    /// Bound on one schematic request (connect + answer).
    pub const IMAGE_FACTORY_TIMEOUT_SECONDS: u64 = 10;
    /// Talos release the boot ISOs are built for.
    pub const TALOS_VERSION: &str = "v1.9.5";
    /// Outstanding (unredeemed, unexpired) challenges before 429.
    pub const NONCE_CAPACITY: u32 = 10_000;
    /// Roles whose approval needs two different operators.
    pub const DUAL_CONTROL_ROLES: &str = "controlplane";
    /// How long a first approval vote waits for the second.
    pub const DUAL_CONTROL_WINDOW_SECONDS: u64 = 600;
}

/// Lifetime of an attestation challenge (seed: 60 s).
pub const NONCE_TTL: Duration = Duration::from_secs(60);

/// The resolved group.
#[derive(Debug, Clone)]
pub struct MachineSettings {
    /// Base URL machines reach this service at (config URLs are built on it).
    pub public_url: String,
    /// Talos Image Factory base URL.
    pub image_factory_url: String,
    /// Bound on a schematic request.
    pub image_factory_timeout: Duration,
    /// Talos version of the ISO URLs.
    pub talos_version: String,
    /// System extensions per role (defaults filled in for every role).
    pub role_extensions: HashMap<Role, Vec<String>>,
    /// A new EK registered through `/register` skips the approval queue.
    pub register_auto_approve: bool,
    /// `/attest` requires a server nonce.
    pub require_nonce: bool,
    /// `/attest` requires a verified PCR quote (implies a nonce).
    pub require_quote: bool,
    /// Outstanding challenge limit.
    pub nonce_capacity: u32,
    /// Roles under dual control.
    pub dual_control_roles: HashSet<Role>,
    /// Vote window.
    pub dual_control_window: Duration,
    /// Quote expectations per role.
    pub quote_policies: QuotePolicies,
}

/// The TOML keys of this group, as read by the file parser.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct MachineFile {
    pub public_url: Option<String>,
    pub image_factory_url: Option<String>,
    pub image_factory_timeout_seconds: Option<u64>,
    pub talos_version: Option<String>,
    pub role_extensions: Option<BTreeMap<String, Vec<String>>>,
    pub register_auto_approve: Option<bool>,
    pub require_nonce: Option<bool>,
    pub require_quote: Option<bool>,
    pub nonce_capacity: Option<u32>,
    pub dual_control_roles: Option<Vec<String>>,
    pub dual_control_window_seconds: Option<u64>,
    pub quote_policy_file: Option<PathBuf>,
}

impl MachineSettings {
    /// Defaults, with `public_url` derived from the listen address.
    pub fn defaults(public_url: String) -> Self {
        Self {
            public_url,
            image_factory_url: defaults::IMAGE_FACTORY_URL.into(),
            image_factory_timeout: Duration::from_secs(defaults::IMAGE_FACTORY_TIMEOUT_SECONDS),
            talos_version: defaults::TALOS_VERSION.into(),
            role_extensions: default_role_extensions(),
            register_auto_approve: false,
            require_nonce: false,
            require_quote: false,
            nonce_capacity: defaults::NONCE_CAPACITY,
            dual_control_roles: HashSet::from([Role::Controlplane]),
            dual_control_window: Duration::from_secs(defaults::DUAL_CONTROL_WINDOW_SECONDS),
            quote_policies: QuotePolicies::builtin(),
        }
    }

    /// Environment over file over defaults.
    pub(super) fn resolve(
        env: &dyn Env,
        file: MachineFile,
        default_public_url: String,
    ) -> Result<Self, ConfigError> {
        let mut s = Self::defaults(default_public_url);
        if let Some(url) = env.var("ITL_PUBLIC_URL").or(file.public_url) {
            s.public_url = http_url("public_url", &url)?;
        }
        if let Some(url) = env.var("ITL_IMAGE_FACTORY_URL").or(file.image_factory_url) {
            s.image_factory_url = http_url("image_factory_url", &url)?;
        }
        if let Some(secs) = env_parse::<u64>(env, "ITL_IMAGE_FACTORY_TIMEOUT_SECONDS")?
            .or(file.image_factory_timeout_seconds)
        {
            if secs == 0 || secs > 300 {
                return Err(invalid("image_factory_timeout_seconds", "must be 1-300"));
            }
            s.image_factory_timeout = Duration::from_secs(secs);
        }
        if let Some(v) = env.var("ITL_TALOS_VERSION").or(file.talos_version) {
            let ok = v.starts_with('v')
                && v.len() <= 32
                && v[1..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
            if !ok {
                return Err(invalid("talos_version", "must look like v1.9.5"));
            }
            s.talos_version = v;
        }
        let extensions = match env.var("ITL_ROLE_EXTENSIONS") {
            Some(json) => Some(
                serde_json::from_str::<BTreeMap<String, Vec<String>>>(&json).map_err(|e| {
                    ConfigError::Env {
                        name: "ITL_ROLE_EXTENSIONS",
                        message: format!("expected a JSON object of role to list: {e}"),
                    }
                })?,
            ),
            None => file.role_extensions,
        };
        for (name, list) in extensions.unwrap_or_default() {
            let role = parse_role("role_extensions", &name)?;
            s.role_extensions.insert(role, list);
        }
        s.register_auto_approve = env_bool(env, "ITL_REGISTER_AUTO_APPROVE")?
            .or(file.register_auto_approve)
            .unwrap_or(false);
        s.require_nonce = env_bool(env, "ITL_REQUIRE_NONCE")?
            .or(file.require_nonce)
            .unwrap_or(false);
        s.require_quote = env_bool(env, "ITL_REQUIRE_QUOTE")?
            .or(file.require_quote)
            .unwrap_or(false);
        if let Some(cap) = env_parse::<u32>(env, "ITL_NONCE_CAPACITY")?.or(file.nonce_capacity) {
            if cap == 0 {
                return Err(invalid("nonce_capacity", "must be at least 1"));
            }
            s.nonce_capacity = cap;
        }
        let roles = match env.var("ITL_DUAL_CONTROL_ROLES") {
            Some(list) => Some(
                list.split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
            None => file.dual_control_roles,
        };
        if let Some(roles) = roles {
            s.dual_control_roles = roles
                .iter()
                .map(|r| parse_role("dual_control_roles", r))
                .collect::<Result<_, _>>()?;
        }
        if let Some(secs) = env_parse::<u64>(env, "ITL_DUAL_CONTROL_WINDOW_SECONDS")?
            .or(file.dual_control_window_seconds)
        {
            if !(10..=7 * 24 * 3600).contains(&secs) {
                return Err(invalid(
                    "dual_control_window_seconds",
                    "must be between 10 and 604800",
                ));
            }
            s.dual_control_window = Duration::from_secs(secs);
        }
        if let Some(path) = env
            .var("ITL_QUOTE_POLICY_FILE")
            .map(PathBuf::from)
            .or(file.quote_policy_file)
        {
            s.quote_policies = QuotePolicies::from_file(&path)
                .map_err(|message| invalid_owned("quote_policy_file", message))?;
        }
        Ok(s)
    }

    /// `{public_url}/api/v1/config/{token}`.
    pub fn config_url(&self, token: &str) -> String {
        format!("{}/api/v1/config/{token}", self.public_url)
    }

    /// The MAC-keyed config URL baked into boot ISOs; Talos expands
    /// `${mac}` at boot.
    pub fn boot_config_url(&self) -> String {
        format!("{}/api/v1/config?mac=${{mac}}", self.public_url)
    }
}

fn default_role_extensions() -> HashMap<Role, Vec<String>> {
    Role::ALL
        .into_iter()
        .map(|r| (r, attest_image_factory::default_extensions(r.as_str())))
        .collect()
}

fn parse_role(key: &'static str, name: &str) -> Result<Role, ConfigError> {
    name.parse()
        .map_err(|e: attest_domain::machine::UnknownRole| invalid_owned(key, e.to_string()))
}

/// An http(s) URL without a trailing slash.
fn http_url(key: &'static str, url: &str) -> Result<String, ConfigError> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => Ok(url.to_owned()),
        _ => Err(invalid(key, "must be an http:// or https:// URL")),
    }
}

fn invalid(key: &'static str, message: &str) -> ConfigError {
    invalid_owned(key, message.to_owned())
}

fn invalid_owned(key: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { key, message }
}
