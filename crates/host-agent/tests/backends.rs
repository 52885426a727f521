//! The rpm and pacman parsers on real output: Debian packages both tools,
//! so the tests build a package for each, install it into a throwaway
//! root and parse what the real tool prints for the agent's query formats.
//! (dnf's updateinfo and apk are covered by unit tests on their documented
//! formats only.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use attest_host_agent::packages::dnf::{parse_rpm_query, RPM_QUERY_FORMAT};
use attest_host_agent::packages::pacman::{parse_info, parse_query};

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

#[cfg_attr(
    agent_backend_tools_missing,
    ignore = "needs rpm and rpmbuild (scripts/setup-debian.sh)"
)]
#[test]
fn rpm_query_format_is_parsed_from_real_rpm() {
    require(&["rpm", "rpmbuild"]);
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("demo.spec");
    std::fs::write(
        &spec,
        "Name: agent-rpm-demo\nVersion: 1.2\nRelease: 3.fc39\nEpoch: 1\nSummary: A test package for the agent\nLicense: MIT\nURL: https://example.org/agent-rpm-demo\nPackager: Agent Tests <tests@example.org>\nBuildArch: noarch\n%description\nTest.\n%install\nmkdir -p %{buildroot}/usr/share/agent-rpm-demo\necho demo > %{buildroot}/usr/share/agent-rpm-demo/version\n%files\n/usr/share/agent-rpm-demo/version\n",
    )
    .unwrap();
    let top = dir.path().join("top");
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg(&spec));
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    run(Command::new("rpm").arg("--root").arg(&root).arg("--initdb"));
    let rpm = top.join("RPMS/noarch/agent-rpm-demo-1.2-3.fc39.noarch.rpm");
    run(Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["-i", "--nodeps"])
        .arg(&rpm));
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
