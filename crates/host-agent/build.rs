//! Marks the tool-dependent tests ignored (reported as such by libtest) when
//! a Debian tool they drive is missing and this is not CI. Under `CI=true`
//! they are never ignored, so a missing tool fails the run.
use std::path::Path;

/// apt, dpkg, curl and openssl: the listener, apt and enrollment tests.
const TOOLS: [&str; 7] = [
    "dpkg-deb",
    "apt-ftparchive",
    "apt-get",
    "dpkg-query",
    "curl",
    "openssl",
    "gzip",
];

/// rpm, dnf and pacman, packaged by Debian: the real-output parser tests.
const BACKEND_TOOLS: [&str; 7] = [
    "rpm",
    "rpmbuild",
    "dnf",
    "createrepo_c",
    "modifyrepo_c",
    "pacman",
    "tar",
];

fn missing(tools: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    tools
        .iter()
        .any(|t| !std::env::split_paths(&path).any(|d| Path::new(&d).join(t).is_file()))
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(agent_tools_missing)");
    println!("cargo::rustc-check-cfg=cfg(agent_backend_tools_missing)");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if ci {
        return;
    }
    if missing(&TOOLS) {
        println!("cargo::rustc-cfg=agent_tools_missing");
    }
    if missing(&BACKEND_TOOLS) {
        println!("cargo::rustc-cfg=agent_backend_tools_missing");
    }
}
