//! The rpm, dnf and pacman parsers on real output: Debian packages these
//! tools, so the tests build packages, install them into a throwaway root
//! (and, for dnf, a repository with security advisories made with
//! createrepo_c and modifyrepo_c) and parse what the real tools print for
//! the agent's query formats. (apk is not packaged for Debian 12: its
//! parsers are covered by unit tests on its documented format only.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use attest_host_agent::packages::dnf::{
    advisories_from, parse_repoquery, parse_rpm_query, parse_updateinfo, REPOQUERY_FORMAT,
    RPM_QUERY_FORMAT,
};
use attest_host_agent::packages::pacman::{parse_info, parse_query};
use attest_proto::patch::Severity;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require(tools: &[&str]) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for t in tools {
        assert!(
            std::env::split_paths(&path).any(|d| d.join(t).is_file()),
            "{t} missing: run scripts/setup-debian.sh (rpm, pacman-package-manager)"
        );
    }
}

/// Builds agent-rpm-demo 1:1.2-`release` into `top`.
fn build_rpm(dir: &Path, top: &Path, release: &str) -> std::path::PathBuf {
    let spec = dir.join(format!("demo-{release}.spec"));
    std::fs::write(
        &spec,
        format!("Name: agent-rpm-demo\nVersion: 1.2\nRelease: {release}\nEpoch: 1\nSummary: A test package for the agent\nLicense: MIT\nURL: https://example.org/agent-rpm-demo\nPackager: Agent Tests <tests@example.org>\nBuildArch: noarch\n%description\nTest.\n%install\nmkdir -p %{{buildroot}}/usr/share/agent-rpm-demo\necho demo > %{{buildroot}}/usr/share/agent-rpm-demo/version\n%files\n/usr/share/agent-rpm-demo/version\n"),
    )
    .unwrap();
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg(&spec));
    top.join(format!(
        "RPMS/noarch/agent-rpm-demo-1.2-{release}.noarch.rpm"
    ))
}

/// An rpm root with agent-rpm-demo 1:1.2-3.fc39 installed.
fn rpm_root(dir: &Path) -> std::path::PathBuf {
    let rpm = build_rpm(dir, &dir.join("top"), "3.fc39");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    run(Command::new("rpm").arg("--root").arg(&root).arg("--initdb"));
    run(Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["-i", "--nodeps"])
        .arg(&rpm));
    root
}

#[cfg_attr(
    agent_backend_tools_missing,
    ignore = "needs rpm and rpmbuild (scripts/setup-debian.sh)"
)]
#[test]
fn rpm_query_format_is_parsed_from_real_rpm() {
    require(&["rpm", "rpmbuild"]);
    let dir = tempfile::tempdir().unwrap();
    let root = rpm_root(dir.path());
    let out = run(Command::new("rpm").arg("--root").arg(&root).args([
        "-qa",
        "--queryformat",
        RPM_QUERY_FORMAT,
    ]));
    let pkgs = parse_rpm_query(&out);
    assert_eq!(pkgs.len(), 1, "{out}");
    let p = &pkgs[0];
    assert_eq!(p.name, "agent-rpm-demo");
    assert_eq!(p.version, "1:1.2-3.fc39");
    assert_eq!(p.architecture, "noarch");
    assert_eq!(p.source.as_deref(), Some("agent-rpm-demo"));
    assert_eq!(p.maintainer, "Agent Tests <tests@example.org>");
    assert_eq!(p.summary, "A test package for the agent");
    assert!(p.installed_at.is_some());
}

#[cfg_attr(
    agent_backend_tools_missing,
    ignore = "needs pacman (scripts/setup-debian.sh)"
)]
#[test]
fn pacman_output_is_parsed_from_real_pacman() {
    require(&["pacman", "tar"]);
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(pkg.join("usr/share/agent-pac-demo")).unwrap();
    std::fs::write(pkg.join("usr/share/agent-pac-demo/version"), "demo\n").unwrap();
    std::fs::write(
        pkg.join(".PKGINFO"),
        "pkgname = agent-pac-demo\npkgbase = agent-pac-demo\npkgver = 1:2.0.1-3\npkgdesc = A test package for the agent\nurl = https://example.org/agent-pac-demo\nbuilddate = 1796600000\npackager = Agent Tests <tests@example.org>\nsize = 4096\narch = any\nlicense = MIT\ndepend = glibc\ndepend = zlib>=1.2\n",
    )
    .unwrap();
    let file = dir.path().join("agent-pac-demo-1:2.0.1-3-any.pkg.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&file)
        .args([".PKGINFO", "usr"])
        .current_dir(&pkg));
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("var/lib/pacman")).unwrap();
    let conf = dir.path().join("pacman.conf");
    std::fs::write(
        &conf,
        "[options]\nSigLevel = Never\nLocalFileSigLevel = Never\nArchitecture = auto\n",
    )
    .unwrap();
    let pacman = |args: &[&str]| {
        run(Command::new("pacman")
            .arg("--config")
            .arg(&conf)
            .arg("--root")
            .arg(&root)
            .arg("--dbpath")
            .arg(root.join("var/lib/pacman"))
            .args(args))
    };
    pacman(&["-U", "--noconfirm", "-dd", file.to_str().unwrap()]);
    assert_eq!(
        parse_query(&pacman(&["-Q"])),
        vec![("agent-pac-demo".to_owned(), "1:2.0.1-3".to_owned())]
    );
    let info = parse_info(&pacman(&["-Qi"]));
    assert_eq!(info.len(), 1);
    let block = &info[0];
    assert_eq!(block["Version"], "1:2.0.1-3");
    assert_eq!(block["Installed Size"], "4.00 KiB");
    assert_eq!(block["Depends On"], "glibc  zlib>=1.2");
    let installed = attest_host_agent::packages::pacman::installed_from_info(block).unwrap();
    assert_eq!(installed.size_bytes, 4096);
    assert_eq!(installed.summary, "A test package for the agent");
    assert_eq!(installed.depends.len(), 2);
    assert_eq!(installed.depends[1].name, "zlib");
    assert_eq!(installed.depends[1].version.as_deref(), Some(">=1.2"));
    let now = chrono::Utc::now();
    let at = installed.installed_at.expect("install date parsed");
    assert!((now - at).num_minutes().abs() < 5, "{at} vs {now}");
    let files = pacman(&["-Qlq", "agent-pac-demo"]);
    assert!(
        files
            .lines()
            .any(|l| Path::new(l).ends_with("usr/share/agent-pac-demo/version")),
        "{files}"
    );
}

const UPDATEINFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="tests@example.org" status="stable" type="security" version="2.0">
    <id>AGENT-2026-0001</id>
    <title>agent-rpm-demo security update</title>
    <issued date="2026-12-07 01:00:00"/>
    <severity>Important</severity>
    <description>Fixes two flaws.</description>
    <references>
      <reference href="https://www.cve.org/CVERecord?id=CVE-2026-11111" id="CVE-2026-11111" type="cve" title="CVE-2026-11111"/>
      <reference href="https://www.cve.org/CVERecord?id=CVE-2026-22222" id="CVE-2026-22222" type="cve" title="CVE-2026-22222"/>
    </references>
    <pkglist>
      <collection short="test">
        <name>test</name>
        <package name="agent-rpm-demo" version="1.2" release="4.fc39" epoch="1" arch="noarch" src="agent-rpm-demo-1.2-4.fc39.src.rpm">
          <filename>agent-rpm-demo-1.2-4.fc39.noarch.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
</updates>
"#;

#[cfg_attr(
    agent_backend_tools_missing,
    ignore = "needs rpm, dnf, createrepo_c (scripts/setup-debian.sh)"
)]
#[test]
fn dnf_upgrades_and_security_advisories_are_parsed_from_real_dnf() {
    require(&["rpm", "rpmbuild", "dnf", "createrepo_c", "modifyrepo_c"]);
    let dir = tempfile::tempdir().unwrap();
    let root = rpm_root(dir.path());
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let newer = build_rpm(dir.path(), &dir.path().join("top"), "4.fc39");
    std::fs::copy(&newer, repo.join(newer.file_name().unwrap())).unwrap();
    run(Command::new("createrepo_c").arg("-q").arg(&repo));
    let info = dir.path().join("updateinfo.xml");
    std::fs::write(&info, UPDATEINFO).unwrap();
    run(Command::new("modifyrepo_c")
        .arg("--mdtype=updateinfo")
        .arg(&info)
        .arg(repo.join("repodata")));
    let dnf = |args: &[&str]| {
        run(Command::new("dnf")
            .arg("-q")
            .arg(format!("--installroot={}", root.display()))
            .arg("--releasever=39")
            .arg(format!(
                "--setopt=reposdir={}",
                dir.path().join("no-repos").display()
            ))
            .arg(format!(
                "--setopt=cachedir={}",
                dir.path().join("cache").display()
            ))
            .arg(format!("--repofrompath=test,file://{}", repo.display()))
            .arg("--setopt=test.gpgcheck=0")
            .args(args))
    };
    let installed = parse_rpm_query(&run(Command::new("rpm").arg("--root").arg(&root).args([
        "-qa",
        "--queryformat",
        RPM_QUERY_FORMAT,
    ])));
    // The agent's own arguments (packages/dnf.rs).
    let ups = parse_repoquery(
        &dnf(&[
            "repoquery",
            "--upgrades",
            "--latest-limit=1",
            "--queryformat",
            REPOQUERY_FORMAT,
        ]),
        &installed,
    );
    assert_eq!(ups.len(), 1);
    assert_eq!(
        (ups[0].installed.as_str(), ups[0].candidate.as_str()),
        ("1:1.2-3.fc39", "1:1.2-4.fc39")
    );
    assert_eq!(ups[0].origins, ["test"]);
    let list = parse_updateinfo(&dnf(&["updateinfo", "list", "--security", "--available"]));
    let cves = parse_updateinfo(&dnf(&[
        "updateinfo",
        "list",
        "--security",
        "--available",
        "--with-cve",
    ]));
    let advisories = advisories_from(&list, &cves, &ups);
    assert_eq!(advisories.len(), 1, "{list:?}");
    let a = &advisories[0];
    assert_eq!(a.id, "AGENT-2026-0001");
    assert_eq!(a.severity, Severity::High);
    assert_eq!(a.cve_ids, ["CVE-2026-11111", "CVE-2026-22222"]);
    assert_eq!(a.packages, ["agent-rpm-demo"]);
    assert_eq!(a.candidate, "1:1.2-4.fc39");
}
