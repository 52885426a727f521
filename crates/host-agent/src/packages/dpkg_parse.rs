//! Parsers of dpkg and apt output (untrusted bytes: package metadata comes
//! from repositories). Each has a fuzz target.

use std::collections::BTreeMap;

use attest_proto::patch::Dependency;

use super::{BackendError, Installed, Plan, Upgrade};

/// The `dpkg-query --showformat` the installed-package parser reads: tab
/// separated, the summary last (it is the only free text).
pub const DPKG_QUERY_FORMAT: &str = "${Package}\\t${Version}\\t${Architecture}\\t${db:Status-Abbrev}\\t${Installed-Size}\\t${source:Package}\\t${Maintainer}\\t${Depends}\\t${binary:Summary}\\n";

/// Parses `dpkg-query -W -f DPKG_QUERY_FORMAT` output, keeping installed
/// packages only (status `?i`; `rc` leftovers are not installed).
pub fn parse_dpkg_query(text: &str) -> Vec<Installed> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.splitn(9, '\t').collect();
        let [name, version, arch, status, size_kib, source, maintainer, depends, summary] =
            fields[..]
        else {
            continue;
        };
        let state = match status.as_bytes().get(1) {
            Some(b'i') => "installed",
            Some(b'U') => "unpacked",
            Some(b'F') => "half-configured",
            Some(b'H') => "half-installed",
            Some(b'W') => "triggers-awaited",
            Some(b't') => "triggers-pending",
            // not-installed, config-files: not on the system.
            _ => continue,
        };
        if name.is_empty() || version.is_empty() {
            continue;
        }
        out.push(Installed {
            name: name.to_owned(),
            version: version.to_owned(),
            status: state.to_owned(),
            architecture: arch.to_owned(),
            summary: summary.trim().to_owned(),
            size_bytes: size_kib
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
                .saturating_mul(1024),
            maintainer: maintainer.to_owned(),
            depends: parse_depends(depends),
            source: Some(source.split_whitespace().next().unwrap_or(name))
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            installed_at: None,
        });
    }
    out
}

/// Parses a Debian relationship field (`a (>= 1), b | c, d:any`). The first
/// alternative of each group is required; the others are not.
pub fn parse_depends(field: &str) -> Vec<Dependency> {
    let mut out = Vec::new();
    for group in field.split(',') {
        for (i, alt) in group.split('|').enumerate() {
            let alt = alt.trim();
            if alt.is_empty() {
                continue;
            }
            let (name_part, version) = match alt.split_once('(') {
                Some((n, rest)) => {
                    let constraint = rest.split(')').next().unwrap_or("").trim();
                    let constraint: String = constraint.split_whitespace().collect();
                    (n.trim(), Some(constraint).filter(|c| !c.is_empty()))
                }
                None => (alt, None),
            };
            // Drop the architecture qualifier and any restriction list.
            let name = name_part
                .split(['[', '<'])
                .next()
                .unwrap_or("")
                .trim()
                .split(':')
                .next()
                .unwrap_or("")
                .to_owned();
            if name.is_empty() {
                continue;
            }
            out.push(Dependency {
                name,
                version,
                required: i == 0,
            });
        }
    }
    out
}

/// One line of `apt-get -s` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimLine {
    /// `Inst name [old] (new origins [arch])`.
    Inst {
        name: String,
        old: Option<String>,
        new: String,
        origins: Vec<String>,
    },
    /// `Remv name [old]`.
    Remv { name: String },
}

/// Parses the `Inst`/`Remv` lines of `apt-get -s` (simulation) output.
pub fn parse_simulation(text: &str) -> Vec<SimLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Inst ") {
            if let Some(l) = parse_inst(rest) {
                out.push(l);
            }
        } else if let Some(rest) = line.strip_prefix("Remv ") {
            if let Some(name) = rest.split_whitespace().next() {
                out.push(SimLine::Remv {
                    name: name.to_owned(),
                });
            }
        }
    }
    out
}

fn parse_inst(rest: &str) -> Option<SimLine> {
    let (name, mut rest) = rest.split_once(' ')?;
    let mut old = None;
    if let Some(r) = rest.strip_prefix('[') {
        let (o, r) = r.split_once(']')?;
        old = Some(o.to_owned());
        rest = r.trim_start();
    }
    let inner = rest.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    let (new, origins) = inner.split_once(' ').unwrap_or((inner, ""));
    // Drop the trailing " [arch]".
    let origins = match origins.rfind(" [") {
        Some(i) => &origins[..i],
        None if origins.starts_with('[') => "",
        None => origins,
    };
    let origins = origins
        .split(", ")
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    if name.is_empty() || new.is_empty() {
        return None;
    }
    Some(SimLine::Inst {
        name: name.to_owned(),
        old,
        new: new.to_owned(),
        origins,
    })
}

/// An origin as apt prints it: `Label:Version/Archive` or `Label:Archive`.
/// Returns (label, archive).
pub fn split_origin(origin: &str) -> (&str, &str) {
    let (label, rest) = origin.split_once(':').unwrap_or(("", origin));
    let archive = rest.rsplit('/').next().unwrap_or(rest);
    (label, archive)
}

/// The plan of a simulation.
pub fn plan_of(lines: &[SimLine]) -> Plan {
    let mut install = BTreeMap::new();
    let mut remove = Vec::new();
    for l in lines {
        match l {
            SimLine::Inst { name, new, .. } => {
                install.insert(name.clone(), new.clone());
            }
            SimLine::Remv { name } => remove.push(name.clone()),
        }
    }
    Plan { install, remove }
}

/// Upgrades of installed packages in a simulated dist-upgrade; `security`
/// decides from the origins.
pub fn upgrades_of(lines: &[SimLine], security: impl Fn(&[String]) -> bool) -> Vec<Upgrade> {
    lines
        .iter()
        .filter_map(|l| match l {
            SimLine::Inst {
                name,
                old: Some(old),
                new,
                origins,
            } => Some(Upgrade {
                name: name.clone(),
                installed: old.clone(),
                candidate: new.clone(),
                origins: origins.clone(),
                security: security(origins),
            }),
            _ => None,
        })
        .collect()
}

/// Maps apt's error output to the seed's error kinds.
pub fn classify_apt_error(output: &str) -> BackendError {
    for line in output.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("E: Unable to locate package ") {
            return BackendError::NotFound {
                name: rest.trim().to_owned(),
            };
        }
        if let Some(rest) = line.strip_prefix("E: Version '") {
            // E: Version '9.9' for 'agent-demo' was not found
            let mut parts = rest.split('\'');
            let version = parts.next().unwrap_or("").to_owned();
            let name = parts.nth(1).unwrap_or("").to_owned();
            return BackendError::VersionConflict { name, version };
        }
        if line.starts_with("E: Packages were downgraded") {
            return BackendError::VersionConflict {
                name: String::new(),
                version: "downgrade not allowed (allow_downgrade)".into(),
            };
        }
    }
    if output.contains("unmet dependencies")
        || output.contains("E: Unable to correct problems")
        || output.contains("dependency problems")
        || output.contains("E: Broken packages")
    {
        let detail = output
            .lines()
            .filter(|l| {
                l.contains("Depends:")
                    || l.contains("PreDepends:")
                    || l.contains("Conflicts:")
                    || l.contains("Breaks:")
            })
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; ");
        return BackendError::Dependency(if detail.is_empty() {
            "unmet dependencies".into()
        } else {
            detail
        });
    }
    let last_error = output
        .lines()
        .rfind(|l| l.starts_with("E: ") || l.starts_with("dpkg: error"))
        .unwrap_or("")
        .to_owned();
    BackendError::Manager(last_error)
}

/// A `pmstatus:` or `dlstatus:` line of `-o APT::Status-Fd`: the percent.
pub fn status_percent(line: &str) -> Option<(bool, f32)> {
    let (kind, rest) = line.split_once(':')?;
    let install = match kind {
        "pmstatus" => true,
        "dlstatus" => false,
        _ => return None,
    };
    let mut parts = rest.splitn(3, ':');
    let _pkg = parts.next()?;
    let pct: f32 = parts.next()?.parse().ok()?;
    (pct.is_finite() && (0.0..=100.0).contains(&pct)).then_some((install, pct))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SIM: &str = "NOTE: This is only a simulation!\n\
Inst agent-demo [1.0-1] (1.0-2 Debian-Security:stable-security [all])\n\
Inst agent-lib [1.0-1] (2.0-1 AgentTest:bookworm [all])\n\
Inst libssl3 [3.0.11-1~deb12u2] (3.0.13-1~deb12u1 Debian:12.5/stable, Debian-Security:12/stable-security [amd64])\n\
Inst newdep (1.0 Debian:12.5/stable [amd64])\n\
Remv oldpkg [0.9]\n\
Conf agent-demo (1.0-2 Debian-Security:stable-security [all])\n";

    #[test]
    fn simulation_lines() {
        let lines = parse_simulation(SIM);
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[2],
            SimLine::Inst {
                name: "libssl3".into(),
                old: Some("3.0.11-1~deb12u2".into()),
                new: "3.0.13-1~deb12u1".into(),
                origins: vec![
                    "Debian:12.5/stable".into(),
                    "Debian-Security:12/stable-security".into()
                ],
            }
        );
        let ups = upgrades_of(&lines, |o| {
            o.iter().any(|o| split_origin(o).0 == "Debian-Security")
        });
        assert_eq!(ups.len(), 3);
        assert!(ups[0].security && !ups[1].security && ups[2].security);
        let plan = plan_of(&lines);
        assert_eq!(plan.install.get("newdep").map(String::as_str), Some("1.0"));
        assert_eq!(plan.remove, ["oldpkg"]);
        assert_eq!(
            split_origin("Ubuntu:22.04/jammy-security"),
            ("Ubuntu", "jammy-security")
        );
        assert_eq!(
            split_origin("AgentTest:bookworm"),
            ("AgentTest", "bookworm")
        );
    }

    #[test]
    fn dpkg_query_lines() {
        let text = "agent-demo\t1.0-1\tall\tii \t4\tagent-demo\tTest <t@example.org>\tlibc6 (>= 2.34), libssl3 | libssl1.1\ttest package\n\
old\t1\tamd64\trc \t1\told\tX\t\tgone\n\
half\t1\tall\tiF \t1\thalf\tX\t\tinterrupted\n\
libfoo\t2:1.0-1\tamd64\tii \t\tfoo-src (1.0-1)\tM\tbar:any\tsummary\twith tab\n\
short line\n";
        let pkgs = parse_dpkg_query(text);
        assert_eq!(pkgs.len(), 3);
        assert_eq!(pkgs[1].status, "half-configured");
        let pkgs: Vec<_> = pkgs
            .into_iter()
            .filter(|p| p.status == "installed")
            .collect();
        assert_eq!(pkgs[0].size_bytes, 4096);
        assert_eq!(pkgs[0].depends.len(), 3);
        assert!(!pkgs[0].depends[2].required);
        assert_eq!(pkgs[0].depends[0].version.as_deref(), Some(">=2.34"));
        assert_eq!(pkgs[1].source.as_deref(), Some("foo-src"));
        assert_eq!(pkgs[1].summary, "summary\twith tab");
        assert_eq!(pkgs[1].depends[0].name, "bar");
    }

    #[test]
    fn apt_errors() {
        assert_eq!(
            classify_apt_error("Reading...\nE: Unable to locate package nope\n"),
            BackendError::NotFound {
                name: "nope".into()
            }
        );
        assert_eq!(
            classify_apt_error("E: Version '9.9' for 'agent-demo' was not found\n"),
            BackendError::VersionConflict {
                name: "agent-demo".into(),
                version: "9.9".into()
            }
        );
        let dep = classify_apt_error("The following packages have unmet dependencies:\n agent-broken : Depends: agent-missing (>= 1) but it is not installable\nE: Unable to correct problems, you have held broken packages.\n");
        assert!(
            matches!(dep, BackendError::Dependency(ref d) if d.contains("agent-missing")),
            "{dep:?}"
        );
        assert!(matches!(
            classify_apt_error("E: something else"),
            BackendError::Manager(_)
        ));
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            status_percent("pmstatus:agent-demo:50.0000:Installing agent-demo"),
            Some((true, 50.0))
        );
        assert_eq!(
            status_percent("dlstatus:1:10.5:Retrieving"),
            Some((false, 10.5))
        );
        assert_eq!(status_percent("pmstatus:x:NaN:y"), None);
        assert_eq!(status_percent("Setting up x"), None);
    }
}
