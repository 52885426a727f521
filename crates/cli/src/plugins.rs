//! CLI plugins, git/cargo style: an executable `attestation-<name>` on
//! PATH runs as `attestation <name> …`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::error::{CliError, EXIT_FAILURE};

/// Executable name prefix of plugins.
pub const PREFIX: &str = "attestation-";

/// Plugins on `path` (a PATH value): name → executable. The first
/// directory wins, as for the shell. Unreadable directories, non-UTF-8
/// names and non-executable files are skipped.
pub fn discover(path: Option<&OsStr>) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let Some(path) = path else {
        return found;
    };
    for dir in std::env::split_paths(path) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
                continue;
            };
            if !valid_name(name) || found.contains_key(name) {
                continue;
            }
            let full = entry.path();
            if is_executable(&full) {
                found.insert(name.to_string(), full);
            }
        }
    }
    found
}

/// Plugin names: lowercase letters, digits, `-` and `_`, not starting
/// with `-`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// The "Plugins" help section listing `plugins`, or `None` without any.
pub fn help_section(plugins: &BTreeMap<String, PathBuf>) -> Option<String> {
    if plugins.is_empty() {
        return None;
    }
    let width = plugins.keys().map(String::len).max().unwrap_or(0);
    let mut out = String::from("Plugins:\n");
    for (name, path) in plugins {
        out.push_str(&format!(
            "  {name:<width$}  {} (run `attestation {name} --help`)\n",
            path.display()
        ));
    }
    Some(out)
}

/// Runs plugin `name` with `args` and the resolved URL and token in its
/// environment; returns its exit code (128 + signal when killed).
pub fn run(
    name: &str,
    args: &[OsString],
    url: &str,
    token: Option<&str>,
    ca_cert: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let plugins = discover(std::env::var_os("PATH").as_deref());
    let Some(path) = plugins.get(name) else {
        return Err(CliError::Usage(format!(
            "unknown command '{name}': not a built-in command, and no executable \
             '{PREFIX}{name}' on PATH (see `attestation --help`)"
        )));
    };
    let mut cmd = Command::new(path);
    cmd.args(args).env("ATTESTATION_API_URL", url);
    match token {
        Some(token) => cmd.env("ATTESTATION_TOKEN", token),
        None => cmd.env_remove("ATTESTATION_TOKEN"),
    };
    if let Some(ca) = ca_cert {
        cmd.env("ATTESTATION_CA_CERT", ca);
    }
    let status = cmd.status().map_err(|e| {
        CliError::Failure(format!(
            "plugin '{name}' ({}) failed to start: {e}",
            path.display()
        ))
    })?;
    if let Some(code) = status.code() {
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(EXIT_FAILURE)));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            eprintln!("attestation: plugin '{name}' was killed by signal {signal}");
            let code = 128 + signal;
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(EXIT_FAILURE)));
        }
    }
    Ok(ExitCode::from(EXIT_FAILURE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names() {
        assert!(valid_name("tag"));
        assert!(valid_name("my-ext_2"));
        assert!(!valid_name(""));
        assert!(!valid_name("-x"));
        assert!(!valid_name("Tag"));
        assert!(!valid_name("a b"));
        assert!(discover(None).is_empty());
    }
}
