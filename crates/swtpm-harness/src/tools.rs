//! Which tools the harness needs and which are missing. Also compiled into
//! the build script (`build.rs`), so this file uses nothing but `std`.

/// Programs the harness needs.
pub const REQUIRED_TOOLS: &[&str] = &[
    "swtpm",
    "swtpm_localca",
    "swtpm_setup",
    "tpm2_activatecredential",
    "tpm2_create",
    "tpm2_createak",
    "tpm2_createprimary",
    "tpm2_flushcontext",
    "tpm2_load",
    "tpm2_nvread",
    "tpm2_pcrextend",
    "tpm2_pcrread",
    "tpm2_policysecret",
    "tpm2_quote",
    "tpm2_readpublic",
    "tpm2_rsadecrypt",
    "tpm2_sign",
    "tpm2_startauthsession",
];

/// Programs from [`REQUIRED_TOOLS`] not found on PATH.
pub fn missing_tools() -> Vec<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    REQUIRED_TOOLS
        .iter()
        .copied()
        .filter(|t| !std::env::split_paths(&path).any(|d| d.join(t).is_file()))
        .collect()
}
