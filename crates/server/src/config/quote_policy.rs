//! Per-role quote expectations (`ITL_QUOTE_POLICY_FILE`): which PCRs a
//! quote must cover and, optionally, the golden values they must hold.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use attest_domain::machine::Role;
use attest_tpm::quote::PcrValues;
use attest_tpm::wire::PcrSelection;
use attest_tpm::HashAlg;
use serde::Deserialize;

/// PCRs quoted when nothing is configured: the firmware and boot-loader
/// measurements (0-7) of the SHA-256 bank.
pub const DEFAULT_PCRS: &[&str] = &[
    "sha256:0", "sha256:1", "sha256:2", "sha256:3", "sha256:4", "sha256:5", "sha256:6", "sha256:7",
];

/// What one role's quotes must show.
#[derive(Debug, Clone)]
pub struct RoleQuotePolicy {
    /// The exact selection a quote must cover.
    pub selection: PcrSelection,
    /// Expected values; PCRs without one are accepted as the machine
    /// reports them (their digest is still checked against the quote).
    pub golden: PcrValues,
}

/// Quote policies for every role.
#[derive(Debug, Clone)]
pub struct QuotePolicies {
    default: RoleQuotePolicy,
    roles: HashMap<Role, RoleQuotePolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    default: Option<RoleEntry>,
    #[serde(default)]
    roles: BTreeMap<String, RoleEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    pcrs: Vec<String>,
    #[serde(default)]
    golden: BTreeMap<String, String>,
}

impl QuotePolicies {
    /// SHA-256 PCRs 0-7 for every role, no golden values.
    pub fn builtin() -> Self {
        let default = RoleQuotePolicy {
            selection: parse_selection(DEFAULT_PCRS.iter().copied())
                .unwrap_or_else(|_| PcrSelection { banks: Vec::new() }),
            golden: PcrValues::new(),
        };
        Self {
            default,
            roles: HashMap::new(),
        }
    }

    /// The policy for `role`.
    pub fn for_role(&self, role: Role) -> &RoleQuotePolicy {
        self.roles.get(&role).unwrap_or(&self.default)
    }

    /// Reads a TOML policy file:
    ///
    /// ```toml
    /// [default]
    /// pcrs = ["sha256:0", "sha256:7"]
    /// [roles.controlplane]
    /// pcrs = ["sha256:0", "sha256:7", "sha256:11"]
    /// golden = { "sha256:7" = "<hex>" }
    /// ```
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_toml(&text)
    }

    /// Parses the TOML form of [`from_file`](Self::from_file).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut policies = Self::builtin();
        if let Some(entry) = file.default {
            policies.default = entry.into_policy("default")?;
        }
        for (name, entry) in file.roles {
            let role: Role = name.parse().map_err(|e| format!("roles.{name}: {e}"))?;
            let policy = entry.into_policy(&format!("roles.{name}"))?;
            policies.roles.insert(role, policy);
        }
        Ok(policies)
    }
}

impl RoleEntry {
    fn into_policy(self, at: &str) -> Result<RoleQuotePolicy, String> {
        let selection = parse_selection(self.pcrs.iter().map(String::as_str))
            .map_err(|e| format!("{at}: {e}"))?;
        if selection.banks.is_empty() {
            return Err(format!("{at}: pcrs must name at least one PCR"));
        }
        let golden = PcrValues::from_map(&self.golden).map_err(|e| format!("{at}.golden: {e}"))?;
        let covered = selection.as_set();
        for (bank, idx, _) in golden.iter() {
            if !covered.contains(&(bank.tpm_id(), idx)) {
                return Err(format!("{at}.golden: {bank}:{idx} is not in pcrs"));
            }
        }
        Ok(RoleQuotePolicy { selection, golden })
    }
}

/// Parses `["sha256:0", "sha256:7", "sha384:0"]` into a selection (banks in
/// order of first appearance).
fn parse_selection<'a>(items: impl Iterator<Item = &'a str>) -> Result<PcrSelection, String> {
    let mut banks: Vec<(HashAlg, Vec<u8>)> = Vec::new();
    for item in items {
        let (bank, idx) = item
            .split_once(':')
            .ok_or_else(|| format!("{item:?} must look like \"sha256:7\""))?;
        let alg =
            HashAlg::from_name(bank.trim()).ok_or_else(|| format!("{item:?}: unknown PCR bank"))?;
        let idx: u8 = idx
            .trim()
            .parse()
            .ok()
            .filter(|i| *i < 24)
            .ok_or_else(|| format!("{item:?}: PCR index must be 0-23"))?;
        match banks.iter_mut().find(|(a, _)| *a == alg) {
            Some((_, list)) => list.push(idx),
            None => banks.push((alg, vec![idx])),
        }
    }
    let refs: Vec<(HashAlg, &[u8])> = banks.iter().map(|(a, l)| (*a, l.as_slice())).collect();
    attest_tpm::quote::selection(&refs).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn builtin_is_sha256_zero_to_seven_for_every_role() {
        let p = QuotePolicies::builtin();
        for role in Role::ALL {
            let set = p.for_role(role).selection.as_set();
            assert_eq!(set.len(), 8);
            assert!(set.contains(&(HashAlg::Sha256.tpm_id(), 7)));
        }
    }

    #[test]
    fn file_overrides_default_and_roles() {
        let golden = "ab".repeat(32);
        let p = QuotePolicies::from_toml(&format!(
            "[default]\npcrs = [\"sha256:0\"]\n[roles.controlplane]\npcrs = [\"sha256:0\", \"sha256:7\"]\ngolden = {{ \"sha256:7\" = \"{golden}\" }}\n"
        ))
        .unwrap();
        assert_eq!(p.for_role(Role::WorkerApp).selection.as_set().len(), 1);
        let cp = p.for_role(Role::Controlplane);
        assert_eq!(cp.selection.as_set().len(), 2);
        assert_eq!(
            cp.golden.get(HashAlg::Sha256, 7).unwrap(),
            hex::decode(&golden).unwrap()
        );
    }

    #[test]
    fn bad_files_are_named_errors() {
        for (text, needle) in [
            ("[roles.boss]\npcrs = [\"sha256:0\"]\n", "roles.boss"),
            ("[default]\npcrs = [\"md5:0\"]\n", "unknown PCR bank"),
            ("[default]\npcrs = [\"sha256:24\"]\n", "0-23"),
            ("[default]\npcrs = []\n", "at least one"),
            (
                "[default]\npcrs = [\"sha256:0\"]\ngolden = { \"sha256:7\" = \"00\" }\n",
                "sha256:7",
            ),
            (
                "[default]\npcrs = [\"sha256:0\"]\nextra = 1\n",
                "unknown field",
            ),
        ] {
            let err = QuotePolicies::from_toml(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
