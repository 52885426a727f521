//! Default system extensions per machine role, used when configuration says
//! nothing. Kept small on purpose: every extension is code running on the
//! node, so a role only gets what its workloads are known to need.

/// CPU microcode for both vendors. Every Talos node gets it: microcode fixes
/// (including security ones) are loaded at boot, and a fleet mixes vendors,
/// so a role's image must not depend on which CPU a machine happens to have.
const MICROCODE: [&str; 2] = ["siderolabs/intel-ucode", "siderolabs/amd-ucode"];

/// Default official extensions per role name; unknown → empty.
///
/// - `controlplane`: microcode only. Control-plane nodes run etcd and the
///   API server and nothing else, so nothing else is worth its attack surface.
/// - `worker-infra`: microcode, `siderolabs/iscsi-tools` and
///   `siderolabs/util-linux-tools`. Infrastructure workers host replicated
///   block storage (Longhorn, OpenEBS…), whose CSI drivers need `iscsiadm`
///   and util-linux tools (`lsblk`, `fstrim`, `nsenter`) on the host.
/// - `worker-app`: microcode only. Application workers consume storage over
///   the network from infra workers and need no host tools.
/// - `generic`: microcode only, the safe baseline for an unassigned Talos node.
/// - `windows`, `linux`: none. They do not boot Talos, so no schematic applies.
///
/// Unknown roles get nothing rather than a guess: an empty list is visible
/// and harmless, a wrong extension is neither. Matching is exact because
/// role names are canonical lowercase identifiers.
pub fn default_extensions(role: &str) -> Vec<String> {
    let extra: &[&str] = match role {
        "controlplane" | "worker-app" | "generic" => &[],
        "worker-infra" => &["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"],
        // "windows", "linux" and anything unknown.
        _ => return Vec::new(),
    };
    MICROCODE
        .iter()
        .chain(extra)
        .map(|s| (*s).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ucode = ["siderolabs/intel-ucode", "siderolabs/amd-ucode"];
        for role in ["controlplane", "worker-app", "generic"] {
            assert_eq!(default_extensions(role), ucode, "{role}");
        }
        assert_eq!(
            default_extensions("worker-infra"),
            [
                "siderolabs/intel-ucode",
                "siderolabs/amd-ucode",
                "siderolabs/iscsi-tools",
                "siderolabs/util-linux-tools",
            ]
        );
        for role in ["windows", "linux", "", "Controlplane", "nope"] {
            assert!(default_extensions(role).is_empty(), "{role}");
        }
    }
}
