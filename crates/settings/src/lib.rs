//! Settings declared once.
//!
//! Each setting is one [`Setting`] constant: its TOML key, environment
//! variable, optional command-line flag, whether it is a secret, its default
//! and its documentation line. Everything else is derived from that one
//! declaration: the `--flags` of a command ([`cli`]), the accepted keys of the
//! TOML file (unknown keys are an error), the warnings about unknown
//! environment variables, and the settings table of the operator
//! documentation ([`doc`]), which a test in each application pins.
//!
//! Precedence is flag over environment over file over default
//! ([`Sources::get`]). Secrets are refused as flags (flags show up in `ps`)
//! and typed [`secrecy::SecretString`] so they never print.

pub mod cli;
pub mod doc;
mod error;
mod sources;
mod spec;
mod value;

pub use error::ConfigError;
pub use sources::{unknown_env, Env, ProcessEnv, Sources};
pub use spec::{Setting, Spec};
pub use value::SettingValue;

/// Declares settings as constants plus `ALL`, the list of their [`Spec`]s,
/// and `check_defaults()`, which parses every default with its type (call it
/// from a test: a default that does not parse is a bug).
///
/// ```
/// use std::net::SocketAddr;
/// use attest_settings::Setting;
///
/// attest_settings::declare! {
///     pub LISTEN: SocketAddr = Setting::new("listen", "ITL_LISTEN", "Address to listen on.")
///         .flag("--listen").default("127.0.0.1:9000");
/// }
///
/// assert_eq!(ALL[0].env, "ITL_LISTEN");
/// assert!(check_defaults().is_ok());
/// ```
#[macro_export]
macro_rules! declare {
    ($( $(#[$meta:meta])* $vis:vis $name:ident : $ty:ty = $value:expr ; )*) => {
        $( $(#[$meta])* $vis const $name: $crate::Setting<$ty> = $value; )*

        /// Every setting declared in this module, in declaration order.
        pub const ALL: &[$crate::Spec] = &[ $( $name.spec ),* ];

        /// Parses every declared default with its setting's type.
        pub fn check_defaults() -> ::std::result::Result<(), ::std::string::String> {
            $( $name.default_value().map_err(|e| e.to_string())?; )*
            Ok(())
        }
    };
}

#[doc(hidden)]
pub use toml as __toml;
