//! One setting's declaration.

use std::marker::PhantomData;

use crate::value::SettingValue;
use crate::ConfigError;

/// What is known about a setting regardless of its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Key in the TOML file.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Command-line flag (with its dashes), if the setting has one.
    pub flag: Option<&'static str>,
    /// Secrets are never flags and never printed.
    pub secret: bool,
    /// The default as written in documentation and parsed by
    /// [`Setting::default_value`]; `None` when unset by default.
    pub default: Option<&'static str>,
    /// For defaults computed from other settings (`<data_dir>/ca`): how the
    /// documentation describes them. Such settings have no parsed default.
    pub derived_default: Option<&'static str>,
    /// Placeholder in `--help` (`ADDR`, `SECONDS`).
    pub value_name: &'static str,
    /// One documentation paragraph (Markdown).
    pub doc: &'static str,
}

/// A typed setting: a [`Spec`] plus the type its value parses into.
#[derive(Debug)]
pub struct Setting<T> {
    /// The untyped part, listed in the module's `ALL`.
    pub spec: Spec,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for Setting<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Setting<T> {}

impl<T> Setting<T> {
    /// A setting with no flag, no default, not secret.
    pub const fn new(key: &'static str, env: &'static str, doc: &'static str) -> Self {
        Self {
            spec: Spec {
                key,
                env,
                flag: None,
                secret: false,
                default: None,
                derived_default: None,
                value_name: "VALUE",
                doc,
            },
            ty: PhantomData,
        }
    }

    /// Also settable as `flag` (for example `--listen`).
    pub const fn flag(mut self, flag: &'static str) -> Self {
        self.spec.flag = Some(flag);
        self
    }

    /// The placeholder shown in `--help`.
    pub const fn value_name(mut self, name: &'static str) -> Self {
        self.spec.value_name = name;
        self
    }

    /// The default, written as it would be in the environment.
    pub const fn default(mut self, text: &'static str) -> Self {
        self.spec.default = Some(text);
        self
    }

    /// A default computed from other settings, as documented.
    pub const fn derived(mut self, description: &'static str) -> Self {
        self.spec.derived_default = Some(description);
        self
    }

    /// A secret: environment or file only, never printed.
    pub const fn secret(mut self) -> Self {
        self.spec.secret = true;
        self
    }
}

impl<T: SettingValue> Setting<T> {
    /// The parsed default, `None` when the setting has none.
    pub fn default_value(&self) -> Result<Option<T>, ConfigError> {
        self.spec
            .default
            .map(|text| {
                T::from_text(text).map_err(|message| {
                    ConfigError::invalid(self.spec.key, format!("built-in default: {message}"))
                })
            })
            .transpose()
    }
}
