//! Marks the tool-dependent tests ignored (reported as such by libtest) when
//! a Debian tool they drive is missing and this is not CI. Under `CI=true`
//! they are never ignored, so a missing tool fails the run.
use std::path::Path;

const TOOLS: [&str; 7] = [
    "dpkg-deb",
    "apt-ftparchive",
    "apt-get",
    "dpkg-query",
    "curl",
    "openssl",
    "gzip",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(agent_tools_missing)");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing = TOOLS
        .iter()
        .any(|t| !std::env::split_paths(&path).any(|d| Path::new(&d).join(t).is_file()));
    if missing && !ci {
        println!("cargo::rustc-cfg=agent_tools_missing");
    }
}
