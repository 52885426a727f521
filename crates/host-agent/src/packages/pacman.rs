//! pacman (Arch Linux).
//!
//! `pacman -Q` (`name version`), `pacman -Qu` (`name old -> new`),
//! `pacman -Qi` (`Key : value` blocks) and `pacman -Ql` (`name /path`).
//! pacman installs only the repository's current version, so a request for
//! a specific version is refused unless it is that version. Arch's security
//! tracker is not read yet, so no pacman update is a security update here.
//! The parsers are tested on the real pacman's output (`tests/backends.rs`);
//! installing and removing with pacman is not exercised.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::command::Cmd;
use super::{
    parse_relations, Advisory, BackendError, Change, ChangeOptions, Details, Installed,
    PackageBackend, Plan, Progress, Upgrade,
};

/// The pacman backend.
#[derive(Debug, Default)]
pub struct Pacman;

impl Pacman {
    pub fn new() -> Self {
        Self
    }
}

/// Parses `pacman -Q` lines.
pub fn parse_query(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (n, v) = (f.next()?, f.next()?);
            f.next().is_none().then(|| (n.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Parses `pacman -Qu` lines (`name old -> new`, maybe `[ignored]`).
pub fn parse_upgrades(text: &str) -> Vec<Upgrade> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[..] {
                [name, old, "->", new] => Some(Upgrade {
                    name: name.to_owned(),
                    installed: old.to_owned(),
                    candidate: new.to_owned(),
                    origins: Vec::new(),
                    security: false,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Parses `pacman -Qi` output into one map per package (continuation
/// lines are joined to the previous key).
pub fn parse_info(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut cur: BTreeMap<String, String> = BTreeMap::new();
    let mut last_key = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        match line.split_once(" : ") {
            Some((k, v)) if !line.starts_with(' ') => {
                last_key = k.trim().to_owned();
                cur.insert(last_key.clone(), v.trim().to_owned());
            }
            _ => {
                if let Some(v) = cur.get_mut(&last_key) {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A `pacman -Qi` size (`1.50 MiB`) in bytes.
pub fn parse_size(s: &str) -> u64 {
    let mut f = s.split_whitespace();
    let (Some(n), Some(unit)) = (f.next(), f.next()) else {
        return 0;
    };
    let n: f64 = n.replace(',', ".").parse().unwrap_or(0.0);
    let mult = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => 0.0,
    };
    let bytes = n * mult;
    if bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64 {
        bytes as u64
    } else {
        0
    }
}

/// One `-Qi` block as an installed package.
pub fn installed_from_info(info: &BTreeMap<String, String>) -> Option<Installed> {
    let get = |k: &str| info.get(k).cloned().unwrap_or_default();
    let name = info.get("Name")?.clone();
    let depends = get("Depends On");
    Some(Installed {
        name,
        version: get("Version"),
        status: "installed".into(),
        architecture: get("Architecture"),
        summary: get("Description"),
        size_bytes: parse_size(&get("Installed Size")),
        maintainer: get("Packager"),
        depends: if depends == "None" {
            Vec::new()
        } else {
            parse_relations(&depends.split_whitespace().collect::<Vec<_>>().join(","))
        },
        source: None,
        installed_at: install_date(&get("Install Date")),
    })
}

/// pacman prints dates with the C locale's `%c` (the agent runs it with
/// `LC_ALL=C`): `Mon Dec  7 02:52:00 2026`, local time without a zone.
fn install_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::TimeZone;
    let naive = chrono::NaiveDateTime::parse_from_str(s.trim(), "%a %b %e %H:%M:%S %Y").ok()?;
    chrono::Local
        .from_local_datetime(&naive)
        .single()
        .map(|d| d.with_timezone(&chrono::Utc))
}

impl Pacman {
    async fn run(cmd: Cmd) -> Result<String, BackendError> {
        let out = cmd.output().await?;
        if out.success {
            Ok(out.stdout)
        } else {
            let text = format!("{}\n{}", out.stdout, out.stderr);
            Err(
                if let Some(l) = text.lines().find(|l| l.contains("target not found:")) {
                    BackendError::NotFound {
                        name: l.rsplit(':').next().unwrap_or("").trim().to_owned(),
                    }
                } else if text.contains("unable to satisfy dependency")
                    || text.contains("breaks dependency")
                {
                    BackendError::Dependency(
                        text.lines()
                            .filter(|l| l.contains("dependency"))
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                } else {
                    BackendError::Manager(text.lines().last().unwrap_or("").to_owned())
                },
            )
        }
    }
}

impl PackageBackend for Pacman {
    fn name(&self) -> &'static str {
        "pacman"
    }

    fn installed(&self) -> BoxFuture<'_, Result<Vec<Installed>, BackendError>> {
        async {
            let out = Self::run(Cmd::new("pacman").arg("-Qi")).await?;
            Ok(parse_info(&out)
                .iter()
                .filter_map(installed_from_info)
                .collect())
        }
        .boxed()
    }

    fn upgrades(&self) -> BoxFuture<'_, Result<Vec<Upgrade>, BackendError>> {
        async {
            // Exit 1 means "nothing to upgrade".
            let out = Cmd::new("pacman").arg("-Qu").output().await?;
            Ok(parse_upgrades(&out.stdout))
        }
        .boxed()
    }

    fn details<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Details, BackendError>> {
        async move {
            let info = Self::run(Cmd::new("pacman").args(["-Qi", "--", name])).await?;
            let files = Self::run(Cmd::new("pacman").args(["-Qlq", "--", name])).await?;
            let info = parse_info(&info).into_iter().next().unwrap_or_default();
            let keep = |k: &str| {
                info.get(k)
                    .cloned()
                    .filter(|v| v != "None" && !v.is_empty())
            };
            Ok(Details {
                homepage: keep("URL"),
                license: keep("Licenses"),
                files: files
                    .lines()
                    .filter(|l| l.starts_with('/') && !l.ends_with('/'))
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
        async { Self::run(Cmd::new("pacman").arg("-Sy")).await.map(drop) }.boxed()
    }

    fn plan<'a>(
        &'a self,
        changes: &'a [Change],
        _options: &'a ChangeOptions,
    ) -> BoxFuture<'a, Result<Plan, BackendError>> {
        async move {
            let mut plan = Plan::default();
            for change in changes {
                match change {
                    Change::Install { name, version } => {
                        let out = Self::run(Cmd::new("pacman").args([
                            "-Sp",
                            "--print-format",
                            "%n %v",
                            "--",
                            name,
                        ]))
                        .await?;
                        let (_, v) = parse_query(&out)
                            .into_iter()
                            .find(|(n, _)| n == name)
                            .ok_or_else(|| BackendError::NotFound { name: name.clone() })?;
                        if version.as_ref().is_some_and(|want| *want != v) {
                            return Err(BackendError::VersionConflict {
                                name: name.clone(),
                                version: version.clone().unwrap_or_default(),
                            });
                        }
                        plan.install.insert(name.clone(), v);
                    }
                    Change::Remove { name } => {
                        Self::run(Cmd::new("pacman").args(["-Q", "--", name])).await?;
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
            let adds: Vec<&String> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Install { name, .. } => Some(name),
                    Change::Remove { .. } => None,
                })
                .collect();
            let dels: Vec<&String> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Remove { name } => Some(name),
                    Change::Install { .. } => None,
                })
                .collect();
            if !dels.is_empty() {
                let flag = if options.remove_dependents {
                    "-Rc"
                } else {
                    "-R"
                };
                progress.line("info", "running pacman -R");
                Self::run(
                    Cmd::new("pacman")
                        .args([flag, "--noconfirm", "--"])
                        .args(dels),
                )
                .await?;
            }
            if !adds.is_empty() {
                let mut cmd = Cmd::new("pacman").args(["-S", "--noconfirm"]);
                if !options.reinstall {
                    cmd = cmd.arg("--needed");
                }
                progress.line("info", "running pacman -S");
                Self::run(cmd.arg("--").args(adds)).await?;
            }
            Ok(())
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

    // The shape of pacman 6.0's `-Qi` in the C locale (tests/backends.rs
    // runs the real pacman as well).
    const QI: &str = r#"Name            : bash
Version         : 5.2.026-2
Description     : The GNU Bourne Again shell
Architecture    : x86_64
URL             : https://www.gnu.org/software/bash/bash.html
Licenses        : GPL-3.0-or-later
Depends On      : readline  libreadline.so=8-64  glibc  ncurses
Installed Size  : 8.21 MiB
Packager        : Tobias Powalowski <tpowa@archlinux.org>
Install Date    : Mon Feb  5 10:11:12 2024

Name            : zlib
Version         : 1:1.3.1-1
Description     : Compression library implementing the deflate compression method found in gzip and
                  PKZIP
Architecture    : x86_64
Depends On      : glibc
Installed Size  : 336.00 KiB
Packager        : Levente Polyak <anthraxx@archlinux.org>
"#;

    #[test]
    fn info_blocks() {
        let blocks = parse_info(QI);
        assert_eq!(blocks.len(), 2);
        let bash = installed_from_info(&blocks[0]).unwrap();
        assert_eq!(bash.version, "5.2.026-2");
        assert_eq!(bash.size_bytes, (8.21f64 * 1024.0 * 1024.0) as u64);
        assert_eq!(bash.depends.len(), 4);
        assert!(bash.installed_at.is_some());
        let zlib = installed_from_info(&blocks[1]).unwrap();
        assert!(zlib.summary.ends_with("gzip and PKZIP"));
    }

    #[test]
    fn query_and_upgrades() {
        assert_eq!(
            parse_query("bash 5.2.026-2\nzlib 1:1.3.1-1\nbad\n").len(),
            2
        );
        let ups = parse_upgrades("linux 6.7.4.arch1-1 -> 6.7.5.arch1-1\nfoo 1 -> 2 [ignored]\n");
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].candidate, "6.7.5.arch1-1");
        assert_eq!(parse_size("1,50 MiB"), 1572864);
        assert_eq!(parse_size("nonsense"), 0);
    }
}
