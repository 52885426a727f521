//! Where values come from: flags, the environment, the TOML file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::Flags;
use crate::value::SettingValue;
use crate::{ConfigError, Setting, Spec};

/// Reads environment variables; injected so tests need not touch the
/// process environment.
pub trait Env {
    /// The value of `name`, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
    /// All variable names (for unknown-variable warnings).
    fn names(&self) -> Vec<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_string())
            .filter(|v| !v.is_empty())
    }
    fn names(&self) -> Vec<String> {
        self.iter().map(|(k, _)| (*k).to_string()).collect()
    }
}

/// The layers of one configuration: flags over environment over file.
pub struct Sources<'a> {
    flags: BTreeMap<&'static str, String>,
    env: &'a dyn Env,
    file: toml::Table,
    file_path: PathBuf,
}

impl<'a> Sources<'a> {
    /// Reads the file named by the `--config` flag or by `file_env`, and
    /// refuses keys that no spec in `known` declares.
    pub fn load(
        flags: &Flags,
        env: &'a dyn Env,
        file_env: &str,
        known: &[Spec],
    ) -> Result<Self, ConfigError> {
        let path = flags
            .config
            .clone()
            .or_else(|| env.var(file_env).map(PathBuf::from));
        let (file, file_path) = match path {
            Some(path) => (read_file(&path, known)?, path),
            None => (toml::Table::new(), PathBuf::new()),
        };
        Ok(Self {
            flags: flags.values.clone(),
            env,
            file,
            file_path,
        })
    }

    /// No flags and no file: the environment over the defaults.
    pub fn env_only(env: &'a dyn Env) -> Self {
        Self {
            flags: BTreeMap::new(),
            env,
            file: toml::Table::new(),
            file_path: PathBuf::new(),
        }
    }

    /// The value from the highest layer that sets it, `None` if none does.
    pub fn get<T: SettingValue>(&self, setting: &Setting<T>) -> Result<Option<T>, ConfigError> {
        let spec = &setting.spec;
        if let (Some(flag), Some(raw)) = (spec.flag, self.flags.get(spec.key)) {
            return T::from_text(raw)
                .map(Some)
                .map_err(|message| ConfigError::Flag { flag, message });
        }
        if let Some(raw) = self.env.var(spec.env) {
            return T::from_text(&raw)
                .map(Some)
                .map_err(|message| ConfigError::Env {
                    name: spec.env,
                    message: redact(spec, message),
                });
        }
        if let Some(value) = self.file.get(spec.key) {
            return T::from_toml(value)
                .map(Some)
                .map_err(|message| ConfigError::ParseFile {
                    path: self.file_path.clone(),
                    message: format!("{}: {}", spec.key, redact(spec, message)),
                });
        }
        Ok(None)
    }

    /// The value, or the declared default (`None` only for settings
    /// without one).
    pub fn get_or_default<T: SettingValue>(
        &self,
        setting: &Setting<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(setting)? {
            Some(value) => Ok(Some(value)),
            None => setting.default_value(),
        }
    }

    /// The value or the declared default, for settings that have one.
    pub fn value<T: SettingValue>(&self, setting: &Setting<T>) -> Result<T, ConfigError> {
        self.get_or_default(setting)?.ok_or_else(|| {
            ConfigError::invalid(setting.spec.key, "has no value and no built-in default")
        })
    }

    /// The raw environment, for settings read elsewhere (extensions).
    pub fn env(&self) -> &dyn Env {
        self.env
    }
}

/// A secret's parse error never quotes the value.
fn redact(spec: &Spec, message: String) -> String {
    if spec.secret {
        "not a valid value (not shown: secret)".into()
    } else {
        message
    }
}

fn read_file(path: &Path, known: &[Spec]) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })?;
    if let Some(unknown) = table.keys().find(|k| !known.iter().any(|s| s.key == *k)) {
        return Err(ConfigError::ParseFile {
            path: path.to_path_buf(),
            message: format!("unknown field `{unknown}`"),
        });
    }
    Ok(table)
}

/// Variables starting with `prefix` that no spec and no name in `also`
/// reads: likely typos, worth a warning.
pub fn unknown_env(env: &dyn Env, prefix: &str, known: &[Spec], also: &[&str]) -> Vec<String> {
    let mut unknown: Vec<String> = env
        .names()
        .into_iter()
        .filter(|name| name.starts_with(prefix))
        .filter(|name| !known.iter().any(|s| s.env == name) && !also.contains(&name.as_str()))
        .collect();
    unknown.sort();
    unknown.dedup();
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: Setting<u16> = Setting::new("port", "T_PORT", "Port.")
        .flag("--port")
        .default("1");
    const TOKEN: Setting<secrecy::SecretString> =
        Setting::new("token", "T_TOKEN", "Token.").secret();
    const KNOWN: &[Spec] = &[PORT.spec, TOKEN.spec];

    fn flags(port: Option<&str>, config: Option<PathBuf>) -> Flags {
        let mut f = Flags {
            config,
            ..Flags::default()
        };
        if let Some(p) = port {
            f.values.insert("port", p.to_owned());
        }
        f
    }

    #[test]
    fn flag_over_env_over_file_over_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "port = 3\n").unwrap();
        let none: [(&str, &str); 0] = [];
        let env = [("T_PORT", "2")];
        let s = Sources::load(&flags(None, None), &none, "T_FILE", KNOWN).unwrap();
        assert_eq!(s.value(&PORT).unwrap(), 1);
        let s = Sources::load(&flags(None, Some(file.clone())), &none, "T_FILE", KNOWN).unwrap();
        assert_eq!(s.value(&PORT).unwrap(), 3);
        let s = Sources::load(&flags(None, Some(file.clone())), &env, "T_FILE", KNOWN).unwrap();
        assert_eq!(s.value(&PORT).unwrap(), 2);
        let s = Sources::load(&flags(Some("4"), Some(file)), &env, "T_FILE", KNOWN).unwrap();
        assert_eq!(s.value(&PORT).unwrap(), 4);
    }

    #[test]
    fn errors_name_their_source_and_hide_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "prot = 3\n").unwrap();
        let none: [(&str, &str); 0] = [];
        let err = Sources::load(&flags(None, Some(file.clone())), &none, "T", KNOWN)
            .err()
            .unwrap();
        assert!(err.to_string().contains("prot"), "{err}");
        std::fs::write(&file, "token = 12345\n").unwrap();
        let s = Sources::load(&flags(None, Some(file)), &none, "T", KNOWN).unwrap();
        let err = s.get(&TOKEN).err().unwrap().to_string();
        assert!(err.contains("token") && !err.contains("12345"), "{err}");
        let s = Sources::env_only(&[("T_PORT", "x")]);
        assert!(s.get(&PORT).err().unwrap().to_string().contains("T_PORT"));
        let f = flags(Some("x"), None);
        let s = Sources::load(&f, &none, "T", KNOWN).unwrap();
        assert!(s.get(&PORT).err().unwrap().to_string().contains("--port"));
    }

    #[test]
    fn unknown_variables_are_listed() {
        let env = [
            ("T_PORT", "1"),
            ("T_PROT", "1"),
            ("T_OTHER", "1"),
            ("X", "1"),
        ];
        assert_eq!(unknown_env(&env, "T_", KNOWN, &["T_OTHER"]), vec!["T_PROT"]);
    }
}
