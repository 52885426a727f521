//! apk (Alpine).
//!
//! `apk list --installed` / `--upgradable` lines
//! (`name-version arch {origin} (license) [status]`) and the
//! `apk add --simulate` transaction lines. Alpine's security database is
//! not read yet, so no apk update is marked as a security update and the
//! patch list is empty there. apk is not packaged for Debian 12, so its
//! parsers are tested on its documented format only.

use futures::future::BoxFuture;
use futures::FutureExt;

use super::command::Cmd;
use super::{
    Advisory, BackendError, Change, ChangeOptions, Details, Installed, PackageBackend, Plan,
    Progress, Upgrade,
};

/// The apk backend.
#[derive(Debug, Default)]
pub struct Apk;

impl Apk {
    pub fn new() -> Self {
        Self
    }
}

/// `musl-1.2.4-r2` → (`musl`, `1.2.4-r2`): the version is the last two
/// dash-separated parts (`pkgver-rN`).
pub fn split_name_version(s: &str) -> Option<(&str, &str)> {
    let r = s.rfind('-')?;
    let v = s[..r].rfind('-')?;
    let (name, version) = (&s[..v], &s[v + 1..]);
    (!name.is_empty() && version.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .then_some((name, version))
}

/// One `apk list` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListLine {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub origin: String,
    pub license: String,
    /// `installed`, or the old version for `upgradable from: x`.
    pub upgradable_from: Option<String>,
}

/// Parses `apk list` output.
pub fn parse_list(text: &str) -> Vec<ListLine> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(3, ' ');
            let (nv, arch, rest) = (f.next()?, f.next()?, f.next().unwrap_or(""));
            let (name, version) = split_name_version(nv)?;
            let origin = rest
                .split_once('{')
                .and_then(|(_, r)| r.split_once('}'))
                .map_or("", |(o, _)| o);
            let license = rest
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .map_or("", |(l, _)| l);
            let upgradable_from = rest
                .split_once("[upgradable from: ")
                .and_then(|(_, r)| r.split_once(']'))
                .and_then(|(old, _)| split_name_version(old.trim()))
                .map(|(_, v)| v.to_owned());
            Some(ListLine {
                name: name.to_owned(),
                version: version.to_owned(),
                arch: arch.to_owned(),
                origin: origin.to_owned(),
                license: license.to_owned(),
                upgradable_from,
            })
        })
        .collect()
}

/// Parses `apk add --simulate` / `apk del --simulate` transaction lines:
/// `(1/2) Upgrading musl (1.2.4-r1 -> 1.2.4-r2)`, `Installing x (1.0-r0)`,
/// `Purging x (1.0-r0)`.
pub fn parse_simulation(text: &str) -> Plan {
    let mut plan = Plan::default();
    for line in text.lines() {
        let Some((_, rest)) = line.trim().split_once(") ") else {
            continue;
        };
        let mut f = rest.splitn(3, ' ');
        let (verb, name, versions) = match (f.next(), f.next(), f.next()) {
            (Some(v), Some(n), Some(vs)) => (v, n, vs),
            _ => continue,
        };
        let versions = versions.trim_start_matches('(').trim_end_matches(')');
        let new = versions.rsplit(" -> ").next().unwrap_or(versions);
        match verb {
            "Installing" | "Upgrading" | "Downgrading" | "Replacing" | "Reinstalling" => {
                plan.install.insert(name.to_owned(), new.to_owned());
            }
            "Purging" | "Deleting" => plan.remove.push(name.to_owned()),
            _ => {}
        }
    }
    plan
}

/// Maps apk's error output to the seed's error kinds.
pub fn classify_apk_error(output: &str) -> BackendError {
    for line in output.lines() {
        if let Some(rest) = line
            .trim()
            .strip_prefix("ERROR: unable to select packages:")
        {
            let _ = rest;
        }
        if line.contains("(no such package)") {
            let name = line
                .trim()
                .split(' ')
                .next()
                .unwrap_or("")
                .split(['=', ':'])
                .next()
                .unwrap_or("");
            return BackendError::NotFound {
                name: name.to_owned(),
            };
        }
    }
    if output.contains("unable to select packages")
        || output.contains("breaks:")
        || output.contains("conflicts:")
    {
        return BackendError::Dependency(
            output
                .lines()
                .filter(|l| l.starts_with("  "))
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    BackendError::Manager(output.lines().last().unwrap_or("").to_owned())
}

impl Apk {
    fn spec(change: &Change) -> Option<String> {
        match change {
            Change::Install {
                name,
                version: Some(v),
            } => Some(format!("{name}={v}")),
            Change::Install {
                name,
                version: None,
            } => Some(name.clone()),
            Change::Remove { .. } => None,
        }
    }

    async fn run(cmd: Cmd) -> Result<String, BackendError> {
        let out = cmd.output().await?;
        if out.success {
            Ok(out.stdout)
        } else {
            Err(classify_apk_error(&format!(
                "{}\n{}",
                out.stdout, out.stderr
            )))
        }
    }

    async fn transaction(
        changes: &[Change],
        options: &ChangeOptions,
        simulate: bool,
    ) -> Result<Plan, BackendError> {
        let adds: Vec<String> = changes.iter().filter_map(Self::spec).collect();
        let dels: Vec<String> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Remove { name } => Some(name.clone()),
                Change::Install { .. } => None,
            })
            .collect();
        let mut plan = Plan::default();
        if !dels.is_empty() {
            let mut cmd = Cmd::new("apk").arg("del");
            if simulate {
                cmd = cmd.arg("--simulate");
            }
            if options.remove_dependents {
                cmd = cmd.arg("--rdepends");
            }
            let p = parse_simulation(&Self::run(cmd.arg("--").args(&dels)).await?);
            plan.remove.extend(p.remove);
        }
        if !adds.is_empty() {
            let mut cmd = Cmd::new("apk").arg("add");
            if simulate {
                cmd = cmd.arg("--simulate");
            }
            if options.only_upgrade {
                cmd = cmd.arg("--upgrade");
            }
            let p = parse_simulation(&Self::run(cmd.arg("--").args(&adds)).await?);
            plan.install.extend(p.install);
        }
        Ok(plan)
    }
}

impl PackageBackend for Apk {
    fn name(&self) -> &'static str {
        "apk"
    }

    fn installed(&self) -> BoxFuture<'_, Result<Vec<Installed>, BackendError>> {
        async {
            let out = Self::run(Cmd::new("apk").args(["list", "--installed"])).await?;
            Ok(parse_list(&out)
                .into_iter()
                .map(|l| Installed {
                    source: Some(l.origin.clone()).filter(|o| !o.is_empty()),
                    name: l.name,
                    version: l.version,
                    status: "installed".into(),
                    architecture: l.arch,
                    summary: String::new(),
                    size_bytes: 0,
                    maintainer: String::new(),
                    depends: Vec::new(),
                    installed_at: None,
                })
                .collect())
        }
        .boxed()
    }

    fn upgrades(&self) -> BoxFuture<'_, Result<Vec<Upgrade>, BackendError>> {
        async {
            let out = Self::run(Cmd::new("apk").args(["list", "--upgradable"])).await?;
            Ok(parse_list(&out)
                .into_iter()
                .filter_map(|l| {
                    Some(Upgrade {
                        installed: l.upgradable_from?,
                        name: l.name,
                        candidate: l.version,
                        origins: vec![l.origin],
                        security: false,
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn details<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Details, BackendError>> {
        async move {
            let files = Self::run(Cmd::new("apk").args(["info", "-L", "--", name])).await?;
            let meta = Self::run(Cmd::new("apk").args(["info", "-w", "--", name])).await?;
            Ok(Details {
                homepage: meta
                    .lines()
                    .nth(1)
                    .map(|l| l.trim().to_owned())
                    .filter(|l| !l.is_empty()),
                license: None,
                files: files
                    .lines()
                    .skip(1)
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| format!("/{}", l.trim()))
                    .collect(),
            })
        }
        .boxed()
    }

    fn refresh<'a>(
        &'a self,
        _progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async { Self::run(Cmd::new("apk").arg("update")).await.map(drop) }.boxed()
    }

    fn plan<'a>(
        &'a self,
        changes: &'a [Change],
        options: &'a ChangeOptions,
    ) -> BoxFuture<'a, Result<Plan, BackendError>> {
        Self::transaction(changes, options, true).boxed()
    }

    fn apply<'a>(
        &'a self,
        changes: &'a [Change],
        options: &'a ChangeOptions,
        progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            progress.line("info", "running apk");
            Self::transaction(changes, options, false).await.map(drop)
        }
        .boxed()
    }

    fn advisories<'a>(
        &'a self,
        _upgrades: &'a [Upgrade],
    ) -> BoxFuture<'a, Result<Vec<Advisory>, BackendError>> {
        async { Ok(Vec::new()) }.boxed()
    }

    fn reboot_required(&self) -> bool {
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    // In the format apk-tools 2.14 documents for `apk list` and prints for
    // `apk add --simulate`; written for this test, not captured from a live
    // Alpine system (apk is not packaged for Debian 12).
    const INSTALLED: &str = "busybox-1.36.1-r15 x86_64 {busybox} (GPL-2.0-only) [installed]\n\
ca-certificates-bundle-20230506-r0 x86_64 {ca-certificates} (MPL-2.0 AND MIT) [installed]\n\
libcrypto3-3.1.4-r2 x86_64 {openssl} (Apache-2.0) [installed]\n";
    const UPGRADABLE: &str = "libcrypto3-3.1.4-r5 x86_64 {openssl} (Apache-2.0) [upgradable from: libcrypto3-3.1.4-r2]\n";
    const SIMULATE: &str = "(1/2) Upgrading libcrypto3 (3.1.4-r2 -> 3.1.4-r5)\n(2/2) Installing curl (8.5.0-r0)\nOK: 8 MiB in 17 packages\n";

    #[test]
    fn lists() {
        let pkgs = parse_list(INSTALLED);
        assert_eq!(pkgs.len(), 3);
        assert_eq!(
            (pkgs[1].name.as_str(), pkgs[1].version.as_str()),
            ("ca-certificates-bundle", "20230506-r0")
        );
        assert_eq!(pkgs[2].origin, "openssl");
        assert_eq!(pkgs[1].license, "MPL-2.0 AND MIT");
        let up = parse_list(UPGRADABLE);
        assert_eq!(up[0].upgradable_from.as_deref(), Some("3.1.4-r2"));
        assert_eq!(up[0].version, "3.1.4-r5");
        assert!(parse_list("garbage\n-\n").is_empty());
    }

    #[test]
    fn simulation() {
        let plan = parse_simulation(SIMULATE);
        assert_eq!(
            plan.install.get("libcrypto3").map(String::as_str),
            Some("3.1.4-r5")
        );
        assert_eq!(
            plan.install.get("curl").map(String::as_str),
            Some("8.5.0-r0")
        );
        let del = parse_simulation("(1/1) Purging curl (8.5.0-r0)\n");
        assert_eq!(del.remove, ["curl"]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            classify_apk_error("ERROR: unable to select packages:\n  nope (no such package):\n    required by: world[nope]\n"),
            BackendError::NotFound { name: "nope".into() }
        );
    }
}
