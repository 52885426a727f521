//! Settings of registration, attestation and approval (`ITL_*` variables
//! of the seed's attestation service, plus the ones it left implicit).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use attest_domain::machine::Role;

use attest_settings::{Setting, Sources};

use super::quote_policy::QuotePolicies;
use super::ConfigError;

attest_settings::declare! {
    pub PUBLIC_URL: String = Setting::new("public_url", "ITL_PUBLIC_URL",
        "Base URL machines reach this service at; `config_url` values and the boot ISO's `talos.config=` argument are built on it. Set it to the external HTTPS name behind your proxy.")
        .derived("`http://<listen>` (`https://` with `tls_cert_file`)");
    pub IMAGE_FACTORY_URL: String = Setting::new("image_factory_url", "ITL_IMAGE_FACTORY_URL",
        "Talos Image Factory used by `POST /api/v1/register` to build boot ISOs.")
        .default("https://factory.talos.dev");
    pub IMAGE_FACTORY_TIMEOUT_SECONDS: u64 = Setting::new("image_factory_timeout_seconds", "ITL_IMAGE_FACTORY_TIMEOUT_SECONDS",
        "Bound (1-300 s) on one schematic request; a slower or unreachable factory makes `/register` answer `503` and creates nothing.")
        .default("10");
    pub TALOS_VERSION: String = Setting::new("talos_version", "ITL_TALOS_VERSION",
        "Talos release in ISO URLs (`{factory}/image/<schematic>/<version>/metal-amd64.iso`).")
        .default("v1.9.5");
    pub ROLE_EXTENSIONS: BTreeMap<String, Vec<String>> = Setting::new("role_extensions", "ITL_ROLE_EXTENSIONS",
        "Official system extensions per role in the boot ISO. Environment: JSON object (`{\"worker-infra\":[\"siderolabs/iscsi-tools\"]}`); file: a table of role = list. Roles not named keep the default.")
        .derived("microcode for Talos roles; `worker-infra` adds `iscsi-tools`, `util-linux-tools`");
    pub REGISTER_AUTO_APPROVE: bool = Setting::new("register_auto_approve", "ITL_REGISTER_AUTO_APPROVE",
        "When `true`, a new EK registered through `/register` becomes `registered` at once (the seed's USB-agent flow) unless its role is dual-controlled. Off by default: `/register` is public and an EK certificate is not a secret.")
        .default("false");
    pub REQUIRE_NONCE: bool = Setting::new("require_nonce", "ITL_REQUIRE_NONCE",
        "`/attest` (and `ak-activate`) must carry a `nonce_id` from `GET /api/v1/attest/challenge`. Recommended `true`.")
        .default("false");
    pub REQUIRE_QUOTE: bool = Setting::new("require_quote", "ITL_REQUIRE_QUOTE",
        "`/attest` must carry a TPM2 quote over the challenge nonce, signed by the machine's activated AK and matching the role's quote policy (implies a nonce). Recommended `true` once machines activate AKs.")
        .default("false");
    pub NONCE_CAPACITY: u32 = Setting::new("nonce_capacity", "ITL_NONCE_CAPACITY",
        "Outstanding (unredeemed, unexpired) challenges across all replicas before `GET /attest/challenge` answers `429`.")
        .default("10000");
    pub MAX_PENDING_MACHINES: u32 = Setting::new("max_pending_machines", "ITL_MAX_PENDING_MACHINES",
        "Machines that may wait in `pending_approval` at once. Beyond it, requests that would create another (`/self-register`, `/register`, `/attest` of an unknown EK) answer `429` with `Retry-After` and a message naming this setting, until operators approve or reject some. Known machines are unaffected.")
        .default("1000");
    pub MAX_FAILED_ATTESTATIONS: u32 = Setting::new("max_failed_attestations", "ITL_MAX_FAILED_ATTESTATIONS",
        "Consecutive refused attestations (quote, PCR or AK signature that does not verify) after which a registered or attested machine is locked automatically: audited as `lock` by `SYSTEM` with the reason, `machine.locked` delivered. An accepted attestation resets the count; `0` turns automatic locking off.")
        .default("5");
    pub DUAL_CONTROL_ROLES: Vec<String> = Setting::new("dual_control_roles", "ITL_DUAL_CONTROL_ROLES",
        "Roles whose approval needs two different operators (comma-separated in the environment, a list in the file; empty = none).")
        .default("controlplane");
    pub DUAL_CONTROL_WINDOW_SECONDS: u64 = Setting::new("dual_control_window_seconds", "ITL_DUAL_CONTROL_WINDOW_SECONDS",
        "How long a first approval vote waits for the second (10 s - 7 days).")
        .default("600");
    pub QUOTE_POLICY_FILE: PathBuf = Setting::new("quote_policy_file", "ITL_QUOTE_POLICY_FILE",
        "TOML file of expected PCR selections and golden values per role; see `docs/attestation.md`.")
        .derived("SHA-256 PCRs 0-7, no golden values");
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
    /// Machines waiting for approval before new ones are refused.
    pub max_pending_machines: u32,
    /// Refused attestations in a row before an automatic lock (0: never).
    pub max_failed_attestations: u32,
    /// Roles under dual control.
    pub dual_control_roles: HashSet<Role>,
    /// Vote window.
    pub dual_control_window: Duration,
    /// Quote expectations per role.
    pub quote_policies: QuotePolicies,
}

impl MachineSettings {
    /// Flags (none here) over environment over file over defaults.
    pub(super) fn resolve(
        src: &Sources<'_>,
        default_public_url: String,
    ) -> Result<Self, ConfigError> {
        let public_url = match src.get(&PUBLIC_URL)? {
            Some(url) => http_url(PUBLIC_URL.spec.key, &url)?,
            None => default_public_url,
        };
        let image_factory_url =
            http_url(IMAGE_FACTORY_URL.spec.key, &src.value(&IMAGE_FACTORY_URL)?)?;
        let timeout = src.value(&IMAGE_FACTORY_TIMEOUT_SECONDS)?;
        if timeout == 0 || timeout > 300 {
            return Err(invalid(
                IMAGE_FACTORY_TIMEOUT_SECONDS.spec.key,
                "must be 1-300",
            ));
        }
        let talos_version = src.value(&TALOS_VERSION)?;
        let ok = talos_version.starts_with('v')
            && talos_version.len() <= 32
            && talos_version[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
        if !ok {
            return Err(invalid(TALOS_VERSION.spec.key, "must look like v1.9.5"));
        }
        let mut role_extensions = default_role_extensions();
        for (name, list) in src.get(&ROLE_EXTENSIONS)?.unwrap_or_default() {
            let role = parse_role(ROLE_EXTENSIONS.spec.key, &name)?;
            role_extensions.insert(role, list);
        }
        let nonce_capacity = src.value(&NONCE_CAPACITY)?;
        if nonce_capacity == 0 {
            return Err(invalid(NONCE_CAPACITY.spec.key, "must be at least 1"));
        }
        let dual_control_roles = src
            .value(&DUAL_CONTROL_ROLES)?
            .iter()
            .map(|r| parse_role(DUAL_CONTROL_ROLES.spec.key, r))
            .collect::<Result<_, _>>()?;
        let window = src.value(&DUAL_CONTROL_WINDOW_SECONDS)?;
        if !(10..=7 * 24 * 3600).contains(&window) {
            return Err(invalid(
                DUAL_CONTROL_WINDOW_SECONDS.spec.key,
                "must be between 10 and 604800",
            ));
        }
        let quote_policies = match src.get(&QUOTE_POLICY_FILE)? {
            Some(path) => QuotePolicies::from_file(&path)
                .map_err(|message| invalid_owned(QUOTE_POLICY_FILE.spec.key, message))?,
            None => QuotePolicies::builtin(),
        };
        Ok(Self {
            public_url,
            image_factory_url,
            image_factory_timeout: Duration::from_secs(timeout),
            talos_version,
            role_extensions,
            register_auto_approve: src.value(&REGISTER_AUTO_APPROVE)?,
            require_nonce: src.value(&REQUIRE_NONCE)?,
            require_quote: src.value(&REQUIRE_QUOTE)?,
            nonce_capacity,
            max_failed_attestations: src.value(&MAX_FAILED_ATTESTATIONS)?,
            max_pending_machines: src.value(&MAX_PENDING_MACHINES)?,
            dual_control_roles,
            dual_control_window: Duration::from_secs(window),
            quote_policies,
        })
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
