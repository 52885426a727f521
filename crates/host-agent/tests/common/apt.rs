//! A private apt repository built with `dpkg-deb` and `apt-ftparchive`,
//! served over loopback HTTP, and throwaway roots for apt and dpkg.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::run;

/// Makes an apt/dpkg root with `sources` (one `deb` line each).
pub fn prepare_root(root: &Path, sources: &[String]) {
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/log/apt",
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "etc/apt/trusted.gpg.d",
        "usr/share/doc",
        "tmp",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        std::fs::write(root.join(f), "").unwrap();
    }
    std::fs::write(root.join("etc/apt/sources.list"), sources.join("\n") + "\n").unwrap();
}

/// One test package.
pub struct Pkg<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub depends: Option<&'a str>,
    /// Text of the newest changelog entry.
    pub change: &'a str,
    pub urgency: &'a str,
    /// A postinst script, if any.
    pub postinst: Option<&'a str>,
}

/// Builds `pkg` into `out_dir` with dpkg-deb.
pub fn build_deb(work: &Path, out_dir: &Path, pkg: &Pkg<'_>) {
    let d = work.join(format!("{}-{}", pkg.name, pkg.version));
    std::fs::create_dir_all(d.join("DEBIAN")).unwrap();
    let doc = d.join("usr/share/doc").join(pkg.name);
    std::fs::create_dir_all(&doc).unwrap();
    let share = d.join("usr/share").join(pkg.name);
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(
        share.join("version"),
        format!("{} {}\n", pkg.name, pkg.version),
    )
    .unwrap();
    let mut control = format!(
        "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: Agent Tests <tests@example.org>\nInstalled-Size: 4\nSection: misc\nPriority: optional\nHomepage: https://example.org/{}\n",
        pkg.name, pkg.version, pkg.name
    );
    if let Some(dep) = pkg.depends {
        control.push_str(&format!("Depends: {dep}\n"));
    }
    control.push_str(&format!(
        "Description: test package {}\n A package for the agent tests.\n",
        pkg.name
    ));
    std::fs::write(d.join("DEBIAN/control"), control).unwrap();
    if let Some(script) = pkg.postinst {
        let path = d.join("DEBIAN/postinst");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        doc.join("copyright"),
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: test\n\nFiles: *\nCopyright: 2026 Tests\nLicense: MIT\n",
    )
    .unwrap();
    // Newest entry first, then the 1.0-1 entry every package starts from.
    let log = format!(
        "{name} ({version}) bookworm-security; urgency={urgency}\n\n  * {change}\n\n -- Agent Tests <tests@example.org>  Mon, 07 Dec 2026 01:00:00 +0000\n\n{name} (1.0-1) bookworm; urgency=medium\n\n  * Initial release (CVE-2020-0001 was fixed long ago).\n\n -- Agent Tests <tests@example.org>  Sun, 06 Dec 2026 01:00:00 +0000\n",
        name = pkg.name,
        version = pkg.version,
        urgency = pkg.urgency,
        change = pkg.change
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(log.as_bytes()).unwrap();
    std::fs::write(doc.join("changelog.Debian.gz"), gz.finish().unwrap()).unwrap();
    std::fs::create_dir_all(out_dir).unwrap();
    run(Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&d)
        .arg(out_dir));
}

/// Writes `Packages` and `Release` of a flat repository with apt-ftparchive.
pub fn index_repo(dir: &Path, origin: &str, label: &str, suite: &str) {
    let packages = run(Command::new("apt-ftparchive")
        .arg("packages")
        .arg(".")
        .current_dir(dir));
    std::fs::write(dir.join("Packages"), packages).unwrap();
    let release = run(Command::new("apt-ftparchive")
        .args(["-o", &format!("APT::FTPArchive::Release::Origin={origin}")])
        .args(["-o", &format!("APT::FTPArchive::Release::Label={label}")])
        .args(["-o", &format!("APT::FTPArchive::Release::Suite={suite}")])
        .args(["release", "."])
        .current_dir(dir));
    std::fs::write(dir.join("Release"), release).unwrap();
}

/// The test repository: `main` (label AgentTest) and `security` (label
/// Debian-Security), served on loopback.
pub struct Repo {
    pub dir: PathBuf,
    pub addr: SocketAddr,
    _server: tokio::task::JoinHandle<()>,
}

impl Repo {
    /// Packages: agent-demo 1.0-1 (main) and 1.0-2 (security, two CVEs);
    /// agent-lib 1.0-1 and 2.0-1 (main, no CVE); agent-dep 1.0-1 (depends
    /// on agent-lib); agent-broken 1.0-1 (depends on a package nobody has);
    /// agent-slow 1.0-1 (postinst sleeps while `<root>/tmp/slow` exists).
    pub async fn build(dir: &Path) -> Self {
        let work = dir.join("build");
        let main = dir.join("repo/main");
        let sec = dir.join("repo/security");
        let plain = |name, version, change| Pkg {
            name,
            version,
            depends: None,
            change,
            urgency: "medium",
            postinst: None,
        };
        build_deb(&work, &main, &plain("agent-demo", "1.0-1", "Initial."));
        build_deb(
            &work,
            &sec,
            &Pkg {
                urgency: "high",
                ..plain(
                    "agent-demo",
                    "1.0-2",
                    "Fix CVE-2026-11111 (buffer overflow) and CVE-2026-22222.",
                )
            },
        );
        build_deb(&work, &main, &plain("agent-lib", "1.0-1", "Initial."));
        build_deb(
            &work,
            &main,
            &plain(
                "agent-lib",
                "2.0-1",
                "New upstream release, no security content.",
            ),
        );
        build_deb(
            &work,
            &main,
            &Pkg {
                depends: Some("agent-lib"),
                ..plain("agent-dep", "1.0-1", "Initial.")
            },
        );
        build_deb(
            &work,
            &main,
            &Pkg {
                depends: Some("agent-missing (>= 1)"),
                ..plain("agent-broken", "1.0-1", "Initial.")
            },
        );
        build_deb(
            &work,
            &main,
            &Pkg {
                postinst: Some(
                    "#!/bin/sh\nwhile [ -e \"$DPKG_ROOT/tmp/slow\" ]; do sleep 0.2; done\nexit 0\n",
                ),
                ..plain("agent-slow", "1.0-1", "Initial.")
            },
        );
        index_repo(&main, "AgentTest", "AgentTest", "bookworm");
        index_repo(&sec, "Debian", "Debian-Security", "stable-security");
        let root = dir.join("repo");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::get(serve_file))
            .with_state(root.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            dir: root,
            addr,
            _server: server,
        }
    }

    /// `deb` lines for both repositories (unsigned, trusted: a test repo).
    pub fn sources(&self) -> Vec<String> {
        ["main", "security"]
            .iter()
            .map(|r| format!("deb [trusted=yes] http://{}/{r} ./", self.addr))
            .collect()
    }
}

async fn serve_file(
    State(root): State<PathBuf>,
    UrlPath(path): UrlPath<String>,
) -> axum::response::Response {
    if path.split('/').any(|p| p == ".." || p.is_empty()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match tokio::fs::read(root.join(&path)).await {
        Ok(bytes) => bytes.into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `dpkg-query` against a root: name → version of installed packages.
pub fn installed(root: &Path) -> std::collections::BTreeMap<String, String> {
    let out = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}/var/lib/dpkg", root.display()))
        .args(["-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\\n"]));
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[2] == "ii").then(|| (f[0].to_owned(), f[1].to_owned()))
        })
        .collect()
}

/// SHA-256 of the machine's own dpkg status file.
pub fn host_dpkg_status_digest() -> String {
    use sha2::Digest;
    let bytes = std::fs::read("/var/lib/dpkg/status").unwrap_or_default();
    hex::encode(sha2::Sha256::digest(bytes))
}
