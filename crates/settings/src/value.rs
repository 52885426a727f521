//! How a setting's value is read from text (flag, environment) and from the
//! TOML file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;

/// A type a setting can hold.
pub trait SettingValue: Sized {
    /// From a flag or environment variable.
    fn from_text(text: &str) -> Result<Self, String>;
    /// From the TOML file.
    fn from_toml(value: &toml::Value) -> Result<Self, String>;
}

/// Implements [`SettingValue`] for a type through its `FromStr` (whose error
/// must display): text is trimmed, the file holds the same text as a string.
#[macro_export]
macro_rules! text_value {
    ($($ty:ty),* $(,)?) => {$(
        impl $crate::SettingValue for $ty {
            fn from_text(text: &str) -> ::std::result::Result<Self, ::std::string::String> {
                text.trim().parse::<$ty>().map_err(|e| e.to_string())
            }
            fn from_toml(value: &$crate::__toml::Value) -> ::std::result::Result<Self, ::std::string::String> {
                match value.as_str() {
                    Some(text) => Self::from_text(text),
                    None => Err(format!("expected a string, got {}", value.type_str())),
                }
            }
        }
    )*};
}

text_value!(SocketAddr, PathBuf);

impl SettingValue for String {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("expected a string, got {}", value.type_str()))
    }
}

impl SettingValue for SecretString {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(SecretString::from(text))
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        // Never echo the value: it is a secret.
        value
            .as_str()
            .map(SecretString::from)
            .ok_or_else(|| format!("expected a string, got {}", value.type_str()))
    }
}

impl SettingValue for bool {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            other => Err(format!("expected true or false, got `{other}`")),
        }
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        value
            .as_bool()
            .ok_or_else(|| format!("expected a boolean, got {}", value.type_str()))
    }
}

macro_rules! integer_value {
    ($($ty:ty),*) => {$(
        impl SettingValue for $ty {
            fn from_text(text: &str) -> Result<Self, String> {
                text.trim().parse::<$ty>().map_err(|e| format!("{e} (`{}`)", text.trim()))
            }
            fn from_toml(value: &toml::Value) -> Result<Self, String> {
                let n = value
                    .as_integer()
                    .ok_or_else(|| format!("expected an integer, got {}", value.type_str()))?;
                <$ty>::try_from(n).map_err(|_| format!("{n} is out of range"))
            }
        }
    )*};
}

integer_value!(u16, u32, u64, usize);

/// Lists: comma-separated in text (empty items dropped), an array of
/// strings in the file.
impl SettingValue for Vec<String> {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let items = value
            .as_array()
            .ok_or_else(|| format!("expected an array of strings, got {}", value.type_str()))?;
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("expected strings, got {}", item.type_str()))
            })
            .collect()
    }
}

/// Maps of name to list: a JSON object in text, a table in the file.
impl SettingValue for BTreeMap<String, Vec<String>> {
    fn from_text(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("expected a JSON object of lists: {e}"))
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let table = value
            .as_table()
            .ok_or_else(|| format!("expected a table, got {}", value.type_str()))?;
        table
            .iter()
            .map(|(k, v)| Ok((k.clone(), Vec::<String>::from_toml(v)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_file_forms_agree() {
        assert!(bool::from_text(" Yes ").unwrap());
        assert!(bool::from_text("maybe").is_err());
        assert_eq!(u32::from_text(" 42 ").unwrap(), 42);
        assert!(u32::from_toml(&toml::Value::Integer(-1)).is_err());
        assert_eq!(
            Vec::<String>::from_text("a, b,,c ").unwrap(),
            vec!["a", "b", "c"]
        );
        let arr = toml::Value::Array(vec!["a".into(), "b".into()]);
        assert_eq!(Vec::<String>::from_toml(&arr).unwrap(), vec!["a", "b"]);
        let map = BTreeMap::<String, Vec<String>>::from_text(r#"{"x":["y"]}"#).unwrap();
        assert_eq!(map["x"], vec!["y"]);
        let addr = SocketAddr::from_toml(&toml::Value::String("127.0.0.1:1".into())).unwrap();
        assert_eq!(addr.port(), 1);
        assert!(SocketAddr::from_toml(&toml::Value::Integer(1)).is_err());
    }
}
