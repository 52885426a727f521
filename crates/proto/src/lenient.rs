//! Integer fields that accept whole-number floats (`30.0`), as JSON Schema's
//! `integer` type and the seed's pydantic models do. `30.5` is still refused.

use std::fmt;

use serde::de::{Error, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};

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

/// An `i64` read from an integer or a whole-number float in range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WholeI64(i64);

struct WholeI64Visitor;

impl Visitor<'_> for WholeI64Visitor {
    type Value = WholeI64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 64-bit integer")
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(WholeI64(v))
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(WholeI64)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
        // -2^63 and 2^63 are exact as f64; within them a whole float
        // converts without loss.
        const BOUND: f64 = 9_223_372_036_854_775_808.0;
        if v.fract() == 0.0 && (-BOUND..BOUND).contains(&v) {
            Ok(WholeI64(v as i64))
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
}

impl<'de> Deserialize<'de> for WholeI64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WholeI64Visitor)
    }
}

/// `i64` from an integer or a whole-number float.
pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    WholeI64::deserialize(d).map(|w| w.0)
}

/// `Option<i64>` from an integer, a whole-number float or `null`.
pub fn option_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<WholeI64>::deserialize(d).map(|o| o.map(|w| w.0))
}

/// `Option<Vec<i64>>`, each item as [`i64`] reads it.
pub fn option_vec_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<i64>>, D::Error> {
    Option::<Vec<WholeI64>>::deserialize(d).map(|o| o.map(|v| v.into_iter().map(|w| w.0).collect()))
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

    #[derive(serde::Deserialize)]
    struct Wide {
        #[serde(default, deserialize_with = "super::i64")]
        a: i64,
        #[serde(default, deserialize_with = "super::option_i64")]
        b: Option<i64>,
        #[serde(default, deserialize_with = "super::option_vec_i64")]
        c: Option<Vec<i64>>,
    }

    #[test]
    fn whole_floats_are_i64s() {
        let w: Wide =
            serde_json::from_str(r#"{"a": -5.0, "b": 82067242.0, "c": [1, 2.0]}"#).unwrap();
        assert_eq!((w.a, w.b, w.c), (-5, Some(82_067_242), Some(vec![1, 2])));
        let w: Wide = serde_json::from_str(r#"{"b": null, "c": null}"#).unwrap();
        assert_eq!((w.a, w.b, w.c), (0, None, None));
        for bad in [
            r#"{"a": 1.5}"#,
            r#"{"a": "1"}"#,
            r#"{"a": null}"#,
            r#"{"b": 9223372036854775808}"#,
            r#"{"b": 9.3e18}"#,
            r#"{"c": [1.5]}"#,
        ] {
            assert!(serde_json::from_str::<Wide>(bad).is_err(), "{bad}");
        }
    }
}
