//! Marks the swtpm tests ignored (`cfg(swtpm_missing)`) on a machine
//! without swtpm and tpm2-tools, so `cargo test` reports them as ignored,
//! never as passed. With `CI=true` they always run: a missing tool is then
//! a failure, never a skip.

#[path = "src/tools.rs"]
mod tools;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(swtpm_missing)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    // Installing the tools changes these directories: checked again then.
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.is_dir() {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let missing = tools::missing_tools();
    if !ci && !missing.is_empty() {
        println!(
            "cargo::warning=swtpm tests ignored: {} not installed",
            missing.join(", ")
        );
        println!("cargo::rustc-cfg=swtpm_missing");
    }
}
