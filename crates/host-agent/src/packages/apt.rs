//! apt and dpkg (Debian, Ubuntu).
//!
//! Reads come from `dpkg-query` and apt's simulation (`apt-get -s`), whose
//! `Inst` lines name each candidate's release label and archive: that is
//! how security updates are recognised (`Debian-Security`, or an archive
//! ending in `-security`). CVE ids come from the candidate's own changelog,
//! downloaded with `apt-get download` and read with `dpkg-deb`.
//!
//! With `packages.root` set, apt and dpkg work on that directory instead
//! of `/` (`Dir`, `Dir::State::status`, `dpkg --root`, maintainer scripts
//! run without chroot): the machine's own dpkg database is never touched.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::Mutex;

use super::command::Cmd;
use super::dpkg_parse::{
    classify_apt_error, parse_dpkg_query, parse_simulation, plan_of, split_origin, status_percent,
    upgrades_of, DPKG_QUERY_FORMAT,
};
use super::{
    deb_version, Advisory, BackendError, Change, ChangeOptions, Details, Installed, PackageBackend,
    Plan, Progress, Upgrade,
};
use crate::config::PackagesConfig;
use crate::security::changelog;
use crate::security::SecurityData;

/// The apt backend.
#[derive(Debug)]
pub struct Apt {
    config: PackagesConfig,
    security: Arc<SecurityData>,
    /// (package, candidate) → what its changelog says.
    changelogs: Mutex<HashMap<(String, String), changelog::Between>>,
    last_refresh: Mutex<Option<Instant>>,
}

impl Apt {
    pub fn new(config: PackagesConfig, security: Arc<SecurityData>) -> Self {
        Self {
            config,
            security,
            changelogs: Mutex::new(HashMap::new()),
            last_refresh: Mutex::new(None),
        }
    }

    fn root(&self) -> &Path {
        self.config.root.as_deref().unwrap_or(Path::new("/"))
    }

    /// apt options pointing at the configured root.
    fn apt_options(&self) -> Vec<String> {
        let Some(root) = &self.config.root else {
            return Vec::new();
        };
        let r = root.display();
        [
            format!("Dir={r}"),
            format!("Dir::State::status={r}/var/lib/dpkg/status"),
            format!("DPkg::Options::=--root={r}"),
            "DPkg::Options::=--force-script-chrootless".to_owned(),
            // Downloads into a temporary directory the _apt user cannot
            // enter; apt would warn and fall back to root anyway.
            "APT::Sandbox::User=root".to_owned(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_owned(), o])
        .collect()
    }

    fn apt_get(&self) -> Cmd {
        Cmd::new("apt-get")
            .args(self.apt_options())
            // No pty: apt would start dpkg in a new session, out of the
            // process group a cancel or timeout kills.
            .args(["-o", "Dpkg::Use-Pty=0"])
            .env("DEBIAN_FRONTEND", "noninteractive")
    }

    fn dpkg_query(&self) -> Cmd {
        let cmd = Cmd::new("dpkg-query");
        match &self.config.root {
            Some(root) => cmd.arg(format!("--admindir={}/var/lib/dpkg", root.display())),
            None => cmd,
        }
    }

    fn dpkg(&self) -> Cmd {
        let cmd = Cmd::new("dpkg");
        match &self.config.root {
            Some(root) => cmd
                .arg(format!("--root={}", root.display()))
                .arg("--force-script-chrootless"),
            None => cmd,
        }
    }

    fn is_security(&self, origins: &[String]) -> bool {
        origins.iter().any(|o| {
            let (label, archive) = split_origin(o);
            self.config.security_labels.iter().any(|l| l == label)
                || (!self.config.security_archive_suffix.is_empty()
                    && archive.ends_with(&self.config.security_archive_suffix))
        })
    }

    /// Last install/upgrade time: dpkg keeps none, so the mtime of the
    /// package's file list (rewritten on every unpack) stands for it.
    fn installed_at(&self, name: &str, arch: &str) -> Option<DateTime<Utc>> {
        let info = self.root().join("var/lib/dpkg/info");
        [format!("{name}.list"), format!("{name}:{arch}.list")]
            .iter()
            .find_map(|f| std::fs::metadata(info.join(f)).ok())
            .and_then(|m| m.modified().ok())
            .map(DateTime::<Utc>::from)
    }

    async fn simulate(&self, args: &[String]) -> Result<String, BackendError> {
        let out = self
            .apt_get()
            .args(["-s", "-q", "-o", "Debug::NoLocking=1"])
            .args(args)
            .output()
            .await?;
        if out.success {
            Ok(out.stdout)
        } else {
            Err(classify_apt_error(&format!(
                "{}\n{}",
                out.stdout, out.stderr
            )))
        }
    }

    fn installed_map(installed: &[Installed]) -> HashMap<&str, &Installed> {
        installed.iter().map(|p| (p.name.as_str(), p)).collect()
    }

    async fn list_installed(&self) -> Result<Vec<Installed>, BackendError> {
        let out = self
            .dpkg_query()
            .args(["-W", "-f", DPKG_QUERY_FORMAT])
            .output()
            .await?;
        if !out.success {
            return Err(BackendError::Manager(out.stderr));
        }
        let mut pkgs = parse_dpkg_query(&out.stdout);
        for p in &mut pkgs {
            p.installed_at = self.installed_at(&p.name, &p.architecture);
        }
        Ok(pkgs)
    }

    async fn list_upgrades(&self) -> Result<Vec<Upgrade>, BackendError> {
        let sim = self.simulate(&["dist-upgrade".to_owned()]).await?;
        Ok(upgrades_of(&parse_simulation(&sim), |o| {
            self.is_security(o)
        }))
    }

    /// The changelog of `name` at `candidate`, between `installed` and it.
    async fn changelog_between(
        &self,
        name: &str,
        installed: &str,
        candidate: &str,
    ) -> Result<changelog::Between, BackendError> {
        let key = (name.to_owned(), candidate.to_owned());
        if let Some(hit) = self.changelogs.lock().await.get(&key) {
            return Ok(hit.clone());
        }
        let tmp = tempdir()?;
        let out = self
            .apt_get()
            .args(["-q", "download", &format!("{name}={candidate}")])
            .cwd(tmp.path())
            .output()
            .await?;
        if !out.success {
            return Err(classify_apt_error(&format!(
                "{}\n{}",
                out.stdout, out.stderr
            )));
        }
        let deb = std::fs::read_dir(tmp.path())
            .map_err(|e| BackendError::Manager(e.to_string()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| {
                BackendError::Manager(format!("apt-get download {name} wrote no .deb"))
            })?;
        let extracted = tmp.path().join("x");
        let out = Cmd::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&extracted)
            .output()
            .await?;
        if !out.success {
            return Err(BackendError::Manager(format!(
                "dpkg-deb -x: {}",
                out.stderr
            )));
        }
        let doc = extracted.join("usr/share/doc").join(name);
        let text = ["changelog.Debian.gz", "changelog.gz"]
            .iter()
            .find_map(|f| read_gz(&doc.join(f)))
            .unwrap_or_default();
        let between = changelog::between(&changelog::parse(&text), installed, candidate);
        self.changelogs.lock().await.insert(key, between.clone());
        Ok(between)
    }

    fn spec(change: &Change) -> String {
        match change {
            Change::Install {
                name,
                version: Some(v),
            } => format!("{name}={v}"),
            Change::Install {
                name,
                version: None,
            } => name.clone(),
            Change::Remove { name } => format!("{name}-"),
        }
    }

    fn install_args(changes: &[Change], options: &ChangeOptions) -> Vec<String> {
        let mut args = vec!["install".to_owned()];
        if options.no_recommends {
            args.push("--no-install-recommends".into());
        }
        if options.allow_downgrade {
            args.push("--allow-downgrades".into());
        }
        if options.reinstall {
            args.push("--reinstall".into());
        }
        if options.purge {
            args.push("--purge".into());
        }
        if options.only_upgrade {
            args.push("--only-upgrade".into());
        }
        args.push("--".into());
        args.extend(changes.iter().map(Self::spec));
        args
    }

    async fn do_plan(
        &self,
        changes: &[Change],
        options: &ChangeOptions,
    ) -> Result<Plan, BackendError> {
        let installed = self.list_installed().await?;
        let by_name = Self::installed_map(&installed);
        for change in changes {
            match change {
                Change::Install { name, version } => {
                    if options.only_upgrade && !by_name.contains_key(name.as_str()) {
                        return Err(BackendError::NotFound { name: name.clone() });
                    }
                    if let (Some(v), Some(cur)) = (version, by_name.get(name.as_str())) {
                        if !options.allow_downgrade
                            && deb_version::compare(v, &cur.version) == std::cmp::Ordering::Less
                        {
                            return Err(BackendError::VersionConflict {
                                name: name.clone(),
                                version: format!(
                                    "{v} is older than the installed {} (allow_downgrade)",
                                    cur.version
                                ),
                            });
                        }
                    }
                }
                Change::Remove { name } => {
                    if !by_name.contains_key(name.as_str()) {
                        return Err(BackendError::NotFound { name: name.clone() });
                    }
                }
            }
        }
        let sim = self.simulate(&Self::install_args(changes, options)).await?;
        let plan = plan_of(&parse_simulation(&sim));
        if !options.remove_dependents {
            let asked: Vec<&str> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Remove { name } => Some(name.as_str()),
                    Change::Install { .. } => None,
                })
                .collect();
            let extra: Vec<&String> = plan
                .remove
                .iter()
                .filter(|r| !asked.contains(&r.as_str()))
                .collect();
            if !extra.is_empty() {
                return Err(BackendError::Dependency(format!(
                    "would also remove {} (use force)",
                    extra
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(plan)
    }

    async fn do_apply(
        &self,
        changes: &[Change],
        options: &ChangeOptions,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        // Finish whatever an interrupted run (a cancelled job) left half
        // configured; a no-op otherwise.
        let out = self.dpkg().args(["--configure", "-a"]).output().await?;
        if !out.success {
            progress.line(
                "warning",
                &format!("dpkg --configure -a: {}", out.stderr.trim()),
            );
        }
        let cmd = self
            .apt_get()
            .args([
                "-y",
                "-q",
                "-o",
                "APT::Status-Fd=1",
                "-o",
                "Dpkg::Options::=--force-confdef",
                "-o",
                "Dpkg::Options::=--force-confold",
            ])
            .args(Self::install_args(changes, options));
        progress.line("info", &format!("running {}", cmd.display()));
        let on_line = |line: &str| match status_percent(line) {
            // Downloads are the first fifth, dpkg the rest.
            Some((false, pct)) => progress.percent((pct / 5.0) as u8),
            Some((true, pct)) => progress.percent(20 + (pct * 0.79) as u8),
            None if line.trim().is_empty() => {}
            None => progress.line("info", line.trim_end()),
        };
        let out = cmd.streamed(&on_line).await?;
        if out.success {
            Ok(())
        } else {
            for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
                progress.line("error", line);
            }
            Err(classify_apt_error(&format!(
                "{}\n{}",
                out.stdout, out.stderr
            )))
        }
    }

    async fn do_advisories(&self, upgrades: &[Upgrade]) -> Result<Vec<Advisory>, BackendError> {
        let installed = self.list_installed().await?;
        let by_name = Self::installed_map(&installed);
        // Group security upgrades by source package and candidate version,
        // as Debian publishes them.
        let mut groups: BTreeMap<(String, String), Vec<&Upgrade>> = BTreeMap::new();
        for u in upgrades.iter().filter(|u| u.security) {
            let source = by_name
                .get(u.name.as_str())
                .and_then(|p| p.source.clone())
                .unwrap_or_else(|| u.name.clone());
            groups
                .entry((source, u.candidate.clone()))
                .or_default()
                .push(u);
        }
        let mut out = Vec::new();
        for ((source, candidate), members) in groups {
            let first = members[0];
            let log = match self
                .changelog_between(&first.name, &first.installed, &first.candidate)
                .await
            {
                Ok(log) => log,
                Err(e) => {
                    tracing::warn!(package = %first.name, error = %e, "changelog unavailable; no CVE ids for this update");
                    changelog::Between::default()
                }
            };
            let severity = self.security.debian_severity(&source, &log.cve_ids).await;
            let mut packages: Vec<String> = members.iter().map(|u| u.name.clone()).collect();
            packages.sort();
            out.push(Advisory {
                id: format!("{source}_{candidate}"),
                description: match &log.summary {
                    Some(s) => format!("Security update of {source} to {candidate}: {s}"),
                    None => format!("Security update of {source} to {candidate}"),
                },
                source,
                candidate,
                cve_ids: log.cve_ids,
                severity,
                published: log.newest,
                packages,
            });
        }
        Ok(out)
    }

    /// `apt-get update`, at most once per `refresh_interval_seconds`
    /// unless forced.
    async fn do_refresh(&self, progress: &dyn Progress, force: bool) -> Result<(), BackendError> {
        let mut last = self.last_refresh.lock().await;
        let fresh = last.is_some_and(|t| {
            t.elapsed() < Duration::from_secs(self.config.refresh_interval_seconds)
        });
        if fresh && !force {
            return Ok(());
        }
        progress.line("info", "refreshing package indexes");
        let out = self.apt_get().args(["-q", "update"]).output().await?;
        // apt-get update exits 0 even when a source failed; its "E:" and
        // "W: Failed" lines say so.
        let failed = !out.success
            || out
                .stderr
                .lines()
                .any(|l| l.starts_with("E:") || l.starts_with("W: Failed"));
        if failed {
            for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
                progress.line("warning", line);
            }
            if !out.success {
                return Err(classify_apt_error(&out.stderr));
            }
        }
        *last = Some(Instant::now());
        Ok(())
    }
}

fn tempdir() -> Result<TempDir, BackendError> {
    let path = std::env::temp_dir().join(format!(
        "attestation-agent-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir(&path)
        .map_err(|e| BackendError::Manager(format!("temporary directory: {e}")))?;
    Ok(TempDir(path))
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads a gzip file as text, at most 8 MiB of it (a changelog is far
/// smaller; this bounds a hostile package).
fn read_gz(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .take(8 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// `License:` of a machine-readable (DEP-5) copyright file: the first
/// one, which covers the package as a whole.
pub fn dep5_license(text: &str) -> Option<String> {
    if !text.starts_with("Format:") {
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("License:"))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
}

impl PackageBackend for Apt {
    fn name(&self) -> &'static str {
        "apt"
    }

    fn installed(&self) -> BoxFuture<'_, Result<Vec<Installed>, BackendError>> {
        self.list_installed().boxed()
    }

    fn upgrades(&self) -> BoxFuture<'_, Result<Vec<Upgrade>, BackendError>> {
        self.list_upgrades().boxed()
    }

    fn details<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Details, BackendError>> {
        async move {
            let files = self.dpkg_query().args(["-L", "--", name]).output().await?;
            if !files.success {
                return Err(BackendError::NotFound {
                    name: name.to_owned(),
                });
            }
            let homepage = self
                .dpkg_query()
                .args(["-W", "-f", "${Homepage}", "--", name])
                .output()
                .await?;
            let copyright = self
                .root()
                .join("usr/share/doc")
                .join(name)
                .join("copyright");
            Ok(Details {
                homepage: Some(homepage.stdout.trim().to_owned()).filter(|h| !h.is_empty()),
                license: std::fs::read_to_string(copyright)
                    .ok()
                    .and_then(|t| dep5_license(&t)),
                files: files
                    .stdout
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with('/') && *l != "/.")
                    .map(str::to_owned)
                    .collect(),
            })
        }
        .boxed()
    }

    fn refresh_if_stale(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        async move { self.do_refresh(&super::command::Quiet, false).await }.boxed()
    }

    fn refresh<'a>(
        &'a self,
        progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.do_refresh(progress, true).boxed()
    }

    fn plan<'a>(
        &'a self,
        changes: &'a [Change],
        options: &'a ChangeOptions,
    ) -> BoxFuture<'a, Result<Plan, BackendError>> {
        self.do_plan(changes, options).boxed()
    }

    fn apply<'a>(
        &'a self,
        changes: &'a [Change],
        options: &'a ChangeOptions,
        progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.do_apply(changes, options, progress).boxed()
    }

    fn advisories<'a>(
        &'a self,
        upgrades: &'a [Upgrade],
    ) -> BoxFuture<'a, Result<Vec<Advisory>, BackendError>> {
        self.do_advisories(upgrades).boxed()
    }

    fn reboot_required(&self) -> bool {
        ["run/reboot-required", "var/run/reboot-required"]
            .iter()
            .any(|p| self.root().join(p).exists())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn dep5() {
        assert_eq!(
            dep5_license("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\nFiles: *\nCopyright: 2020 A\nLicense: BSD-2-Clause\n"),
            Some("BSD-2-Clause".into())
        );
        assert_eq!(
            dep5_license("This package was debianized by …\nLicense: GPL"),
            None
        );
    }
}
