//! Integer fields that accept whole-number floats (`30.0`), as JSON Schema's
//! `integer` type and the seed's pydantic models do. `30.5` is still refused.

use std::fmt;

use serde::de::{Error, Unexpected, Visitor};
use serde::Deserializer;

/// Visits an optional integer, accepting whole floats; anything else is an
/// `invalid type` error naming what was found.
struct OptionU32;

impl<'de> Visitor<'de> for OptionU32 {
    type Value = Option<u32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer between 0 and 4294967295")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
        u32::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
        u32::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
            // Exact: a whole number within u32 range converts without loss.
            Ok(Some(v as u32))
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
}

/// `Option<u32>` from an integer or a whole-number float.
pub fn option_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    d.deserialize_option(OptionU32)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::option_u32")]
        n: Option<u32>,
    }

    fn parse(s: &str) -> Result<Option<u32>, serde_json::Error> {
        serde_json::from_str::<T>(s).map(|t| t.n)
    }

    #[test]
    fn whole_floats_are_integers() {
        assert_eq!(parse(r#"{"n": 30}"#).unwrap(), Some(30));
        assert_eq!(parse(r#"{"n": 30.0}"#).unwrap(), Some(30));
        assert_eq!(parse(r#"{}"#).unwrap(), None);
        assert_eq!(parse(r#"{"n": null}"#).unwrap(), None);
        assert!(parse(r#"{"n": 30.5}"#).is_err());
        assert!(parse(r#"{"n": -1}"#).is_err());
        assert!(parse(r#"{"n": "30"}"#).is_err());
        assert!(parse(r#"{"n": 1e300}"#).is_err());
    }
}
