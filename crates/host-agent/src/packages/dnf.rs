//! dnf and rpm (Fedora, RHEL and relatives).
//!
//! Installed packages from `rpm -qa --queryformat` (tab separated),
//! upgrades from `dnf repoquery --upgrades --queryformat`, security data
//! from `dnf updateinfo list --security` (advisory id, severity and
//! package NEVRA per line) and its `--with-cve` form (CVE id per line).
//! The parsers are tested on the real tools' output (Debian packages rpm,
//! dnf and createrepo_c: `tests/backends.rs`); installing and removing with
//! dnf is not exercised (no RPM system in CI).

use std::collections::BTreeMap;

use attest_proto::patch::Severity;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::command::Cmd;
use super::{
    Advisory, BackendError, Change, ChangeOptions, Details, Installed, PackageBackend, Plan,
    Progress, Upgrade,
};

/// `rpm -qa --queryformat` read by [`parse_rpm_query`].
pub const RPM_QUERY_FORMAT: &str = "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SIZE}\\t%{INSTALLTIME}\\t%{SOURCERPM}\\t%{PACKAGER}\\t%{SUMMARY}\\n";

/// `dnf repoquery --upgrades --queryformat` read by [`parse_repoquery`].
pub const REPOQUERY_FORMAT: &str =
    "%{name}\\t%{epoch}:%{version}-%{release}\\t%{arch}\\t%{reponame}\\n";

/// The dnf backend.
#[derive(Debug, Default)]
pub struct Dnf;

impl Dnf {
    pub fn new() -> Self {
        Self
    }
}

/// `0:1.2-3` → `1.2-3` (rpm omits a zero epoch when printing versions).
fn evr(epoch_version: &str) -> String {
    epoch_version
        .strip_prefix("0:")
        .or_else(|| epoch_version.strip_prefix("(none):"))
        .unwrap_or(epoch_version)
        .to_owned()
}

/// Parses `rpm -qa --queryformat RPM_QUERY_FORMAT`.
pub fn parse_rpm_query(text: &str) -> Vec<Installed> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.splitn(8, '\t').collect();
            let [name, version, arch, size, time, srpm, packager, summary] = f[..] else {
                return None;
            };
            if name.is_empty() || name == "gpg-pubkey" {
                return None;
            }
            Some(Installed {
                name: name.to_owned(),
                version: evr(version),
                status: "installed".into(),
                architecture: arch.to_owned(),
                summary: summary.trim().to_owned(),
                size_bytes: size.parse().unwrap_or(0),
                maintainer: packager.replace("(none)", "").trim().to_owned(),
                depends: Vec::new(),
                source: source_name(srpm),
                installed_at: time
                    .parse::<i64>()
                    .ok()
                    .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0)),
            })
        })
        .collect()
}

/// `openssl-3.0.7-25.el9.src.rpm` → `openssl`.
fn source_name(srpm: &str) -> Option<String> {
    let base = srpm.strip_suffix(".src.rpm")?;
    let mut parts = base.rsplitn(3, '-');
    let (_release, _version, name) = (parts.next()?, parts.next()?, parts.next()?);
    Some(name.to_owned())
}

/// Parses `dnf repoquery --upgrades --queryformat REPOQUERY_FORMAT`, given
/// the installed versions.
pub fn parse_repoquery(text: &str, installed: &[Installed]) -> Vec<Upgrade> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let [name, version, _arch, repo] = f[..] else {
                return None;
            };
            let current = installed.iter().find(|p| p.name == name)?;
            Some(Upgrade {
                name: name.to_owned(),
                installed: current.version.clone(),
                candidate: evr(version),
                origins: vec![repo.trim().to_owned()],
                security: false,
            })
        })
        .collect()
}

/// One line of `dnf updateinfo list`: (id, severity, NEVRA). The id is an
/// advisory id, or a CVE id in the `--with-cve` form.
pub fn parse_updateinfo(text: &str) -> Vec<(String, Severity, String)> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (id, kind, nevra) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || !kind.contains('/') && !kind.eq_ignore_ascii_case("security") {
                return None;
            }
            let severity = match kind.split('/').next().unwrap_or("") {
                "Critical" => Severity::Critical,
                "Important" => Severity::High,
                "Moderate" => Severity::Medium,
                "Low" => Severity::Low,
                _ => Severity::Unknown,
            };
            Some((id.to_owned(), severity, nevra.to_owned()))
        })
        .collect()
}

/// The name of a NEVRA (`openssl-1:3.0.7-25.el9.x86_64` → `openssl`).
pub fn nevra_name(nevra: &str) -> &str {
    let mut parts = nevra.rsplitn(3, '-');
    let _release_arch = parts.next();
    let _version = parts.next();
    parts.next().unwrap_or(nevra)
}

/// Maps dnf's error output to the seed's error kinds.
pub fn classify_dnf_error(output: &str) -> BackendError {
    if let Some(line) = output.lines().find(|l| l.contains("No match for argument")) {
        let name = line.rsplit(':').next().unwrap_or("").trim().to_owned();
        return BackendError::NotFound { name };
    }
    if output.contains("nothing provides")
        || output.contains("conflicts with")
        || output.contains("Problem:")
    {
        let detail = output
            .lines()
            .filter(|l| l.contains("nothing provides") || l.contains("conflicts"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; ");
        return BackendError::Dependency(detail);
    }
    BackendError::Manager(output.lines().last().unwrap_or("").to_owned())
}

impl Dnf {
    async fn run_ok(cmd: Cmd) -> Result<String, BackendError> {
        let out = cmd.output().await?;
        if out.success {
            Ok(out.stdout)
        } else {
            Err(classify_dnf_error(&format!(
                "{}\n{}",
                out.stdout, out.stderr
            )))
        }
    }

    fn spec(name: &str, version: Option<&String>) -> String {
        match version {
            Some(v) => format!("{name}-{v}"),
            None => name.to_owned(),
        }
    }
}

impl PackageBackend for Dnf {
    fn name(&self) -> &'static str {
        "dnf"
    }

    fn installed(&self) -> BoxFuture<'_, Result<Vec<Installed>, BackendError>> {
        async {
            let out =
                Self::run_ok(Cmd::new("rpm").args(["-qa", "--queryformat", RPM_QUERY_FORMAT]))
                    .await?;
            Ok(parse_rpm_query(&out))
        }
        .boxed()
    }

    fn upgrades(&self) -> BoxFuture<'_, Result<Vec<Upgrade>, BackendError>> {
        async {
            let installed = self.installed().await?;
            let out = Self::run_ok(Cmd::new("dnf").args([
                "-q",
                "repoquery",
                "--upgrades",
                "--latest-limit=1",
                "--queryformat",
                REPOQUERY_FORMAT,
            ]))
            .await?;
            let mut ups = parse_repoquery(&out, &installed);
            let sec = Self::run_ok(Cmd::new("dnf").args([
                "-q",
                "updateinfo",
                "list",
                "--security",
                "--available",
            ]))
            .await?;
            let names: Vec<String> = parse_updateinfo(&sec)
                .iter()
                .map(|(_, _, n)| nevra_name(n).to_owned())
                .collect();
            for u in &mut ups {
                u.security = names.contains(&u.name);
            }
            Ok(ups)
        }
        .boxed()
    }

    fn details<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Details, BackendError>> {
        async move {
            let files = Cmd::new("rpm").args(["-ql", "--", name]).output().await?;
            if !files.success {
                return Err(BackendError::NotFound {
                    name: name.to_owned(),
                });
            }
            let meta = Self::run_ok(Cmd::new("rpm").args([
                "-q",
                "--queryformat",
                "%{URL}\\t%{LICENSE}",
                "--",
                name,
            ]))
            .await?;
            let (url, license) = meta.split_once('\t').unwrap_or((meta.as_str(), ""));
            let keep =
                |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty() && s != "(none)");
            Ok(Details {
                homepage: keep(url),
                license: keep(license),
                files: files
                    .stdout
                    .lines()
                    .filter(|l| l.starts_with('/'))
                    .map(str::to_owned)
                    .collect(),
            })
        }
        .boxed()
    }

    fn refresh<'a>(
        &'a self,
        _progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async {
            Self::run_ok(Cmd::new("dnf").args(["-q", "makecache"]))
                .await
                .map(drop)
        }
        .boxed()
    }

    fn plan<'a>(
        &'a self,
        changes: &'a [Change],
        _options: &'a ChangeOptions,
    ) -> BoxFuture<'a, Result<Plan, BackendError>> {
        async move {
            // dnf has no stable dry-run format; check each request exists.
            let mut plan = Plan::default();
            for change in changes {
                match change {
                    Change::Install { name, version } => {
                        let spec = Self::spec(name, version.as_ref());
                        let out = Self::run_ok(Cmd::new("dnf").args([
                            "-q",
                            "repoquery",
                            "--queryformat",
                            "%{evr}\\n",
                            "--",
                            &spec,
                        ]))
                        .await?;
                        let Some(found) = out.lines().next() else {
                            return Err(match version {
                                Some(v) => BackendError::VersionConflict {
                                    name: name.clone(),
                                    version: v.clone(),
                                },
                                None => BackendError::NotFound { name: name.clone() },
                            });
                        };
                        plan.install.insert(name.clone(), found.to_owned());
                    }
                    Change::Remove { name } => {
                        let out = Cmd::new("rpm").args(["-q", "--", name]).output().await?;
                        if !out.success {
                            return Err(BackendError::NotFound { name: name.clone() });
                        }
                        plan.remove.push(name.clone());
                    }
                }
            }
            Ok(plan)
        }
        .boxed()
    }

    fn apply<'a>(
        &'a self,
        changes: &'a [Change],
        options: &'a ChangeOptions,
        progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            let installs: Vec<String> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Install { name, version } => Some(Self::spec(name, version.as_ref())),
                    Change::Remove { .. } => None,
                })
                .collect();
            let removes: Vec<String> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Remove { name } => Some(name.clone()),
                    Change::Install { .. } => None,
                })
                .collect();
            if !removes.is_empty() {
                let mut cmd = Cmd::new("dnf").args(["-y", "remove"]);
                if !options.remove_dependents {
                    cmd = cmd.arg("--noautoremove");
                }
                progress.line(
                    "info",
                    &format!("running {}", cmd.clone().arg("--").args(&removes).display()),
                );
                Self::run_ok(cmd.arg("--").args(&removes)).await?;
            }
            if !installs.is_empty() {
                let verb = match (options.allow_downgrade, options.reinstall) {
                    (_, true) => "reinstall",
                    (true, false) => "distro-sync",
                    _ => "install",
                };
                let mut cmd = Cmd::new("dnf").args(["-y", verb]);
                if options.no_recommends {
                    cmd = cmd.arg("--setopt=install_weak_deps=False");
                }
                let cmd = cmd.arg("--").args(&installs);
                progress.line("info", &format!("running {}", cmd.display()));
                Self::run_ok(cmd).await?;
            }
            progress.percent(99);
            Ok(())
        }
        .boxed()
    }

    fn advisories<'a>(
        &'a self,
        upgrades: &'a [Upgrade],
    ) -> BoxFuture<'a, Result<Vec<Advisory>, BackendError>> {
        async move {
            let list = Self::run_ok(Cmd::new("dnf").args([
                "-q",
                "updateinfo",
                "list",
                "--security",
                "--available",
            ]))
            .await?;
            let cves = Self::run_ok(Cmd::new("dnf").args([
                "-q",
                "updateinfo",
                "list",
                "--security",
                "--available",
                "--with-cve",
            ]))
            .await?;
            Ok(advisories_from(
                &parse_updateinfo(&list),
                &parse_updateinfo(&cves),
                upgrades,
            ))
        }
        .boxed()
    }

    fn reboot_required(&self) -> bool {
        false
    }
}

/// Joins the advisory list and the CVE list by package NEVRA.
pub fn advisories_from(
    list: &[(String, Severity, String)],
    cves: &[(String, Severity, String)],
    upgrades: &[Upgrade],
) -> Vec<Advisory> {
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    for (id, severity, nevra) in list {
        let name = nevra_name(nevra).to_owned();
        let candidate = upgrades
            .iter()
            .find(|u| u.name == name)
            .map_or_else(String::new, |u| u.candidate.clone());
        let entry = by_id.entry(id.clone()).or_insert_with(|| Advisory {
            id: id.clone(),
            source: name.clone(),
            candidate,
            cve_ids: Vec::new(),
            severity: *severity,
            published: None,
            description: format!("Security advisory {id}"),
            packages: Vec::new(),
        });
        entry.severity = entry.severity.max(*severity);
        if !entry.packages.contains(&name) {
            entry.packages.push(name);
        }
        for (cve, _, cve_nevra) in cves {
            if cve_nevra == nevra && !entry.cve_ids.contains(cve) {
                entry.cve_ids.push(cve.clone());
            }
        }
    }
    by_id.into_values().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    // In the shapes rpm 4.18 and dnf 4.14 print (tests/backends.rs checks
    // the parsers against the real tools as well).
    const RPM: &str = "openssl\t1:3.0.7-24.el9\tx86_64\t1853462\t1706012345\topenssl-3.0.7-24.el9.src.rpm\tRocky Linux Build System (Peridot) <releng@rockylinux.org>\tUtilities from the general purpose cryptography library with TLS implementation\n\
gpg-pubkey\t0:350d275d-6279464b\t(none)\t0\t1706000000\t(none)\t(none)\tgpg(Rocky)\n\
bash\t0:5.1.8-6.el9_1\tx86_64\t7738634\t1706012000\tbash-5.1.8-6.el9_1.src.rpm\t(none)\tThe GNU Bourne Again shell\n";

    const UPDATEINFO: &str = "RLSA-2024:1234 Important/Sec. openssl-1:3.0.7-25.el9_3.x86_64\n\
RLSA-2024:1234 Important/Sec. openssl-libs-1:3.0.7-25.el9_3.x86_64\n\
RLSA-2024:0999 Moderate/Sec.  bash-5.1.8-9.el9.x86_64\n";

    const WITH_CVE: &str = "CVE-2023-5678 Important/Sec. openssl-1:3.0.7-25.el9_3.x86_64\n\
CVE-2024-0727 Important/Sec. openssl-1:3.0.7-25.el9_3.x86_64\n\
CVE-2022-3715 Moderate/Sec.  bash-5.1.8-9.el9.x86_64\n";

    #[test]
    fn rpm_query() {
        let pkgs = parse_rpm_query(RPM);
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[0].version, "1:3.0.7-24.el9");
        assert_eq!(pkgs[0].source.as_deref(), Some("openssl"));
        assert_eq!(pkgs[1].version, "5.1.8-6.el9_1");
        assert_eq!(pkgs[1].maintainer, "");
        assert!(pkgs[0].installed_at.is_some());
    }

    #[test]
    fn repoquery_and_updateinfo() {
        let installed = parse_rpm_query(RPM);
        let ups = parse_repoquery(
            "openssl\t1:3.0.7-25.el9_3\tx86_64\tbaseos\nunknown\t0:1-1\tx86_64\tappstream\n",
            &installed,
        );
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].candidate, "1:3.0.7-25.el9_3");
        let list = parse_updateinfo(UPDATEINFO);
        assert_eq!(list.len(), 3);
        assert_eq!(nevra_name(&list[0].2), "openssl");
        assert_eq!(nevra_name(&list[1].2), "openssl-libs");
        let advisories = advisories_from(&list, &parse_updateinfo(WITH_CVE), &ups);
        assert_eq!(advisories.len(), 2);
        let ssl = advisories
            .iter()
            .find(|a| a.id == "RLSA-2024:1234")
            .unwrap();
        assert_eq!(ssl.severity, Severity::High);
        assert_eq!(ssl.cve_ids, ["CVE-2023-5678", "CVE-2024-0727"]);
        assert_eq!(ssl.packages, ["openssl", "openssl-libs"]);
        let bash = advisories
            .iter()
            .find(|a| a.id == "RLSA-2024:0999")
            .unwrap();
        assert_eq!(bash.severity, Severity::Medium);
        assert_eq!(bash.cve_ids, ["CVE-2022-3715"]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            classify_dnf_error("No match for argument: nope\nError: Unable to find a match: nope"),
            BackendError::NotFound {
                name: "nope".into()
            }
        );
        assert!(matches!(
            classify_dnf_error("Error: \n Problem: conflicting requests\n  - nothing provides libfoo.so.1 needed by bar-1-1.x86_64"),
            BackendError::Dependency(_)
        ));
    }
}
