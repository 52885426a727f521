//! Why a configuration could not be assembled.

use std::path::PathBuf;

/// A configuration error; every variant names the setting or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has unknown keys, or a value of the wrong type.
    #[error("invalid configuration file {path}: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An environment variable holds a value of the wrong form.
    #[error("invalid value for {name}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A command-line flag holds a value of the wrong form.
    #[error("invalid value for {flag}: {message}")]
    Flag {
        /// The flag, with its dashes.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A value is syntactically fine but not usable.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// The setting's TOML key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] for `key`.
    pub fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key,
            message: message.into(),
        }
    }
}
