//! Command-line flags derived from the declarations.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Arg, ArgMatches};

use crate::Spec;

/// Id of the `--config FILE` flag.
const CONFIG_ID: &str = "config";

/// What was given on the command line: the configuration file and the raw
/// text of each flag, keyed by the setting's TOML key. Values are parsed
/// with the other layers, so a bad flag names itself in the same way a bad
/// environment variable does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// Setting key to raw flag value.
    pub values: BTreeMap<&'static str, String>,
}

impl Flags {
    /// Sets `key` as if its flag had been given (tests, embedding).
    pub fn set(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.values.insert(key, value.into());
        self
    }
}

/// `--config` plus one flag per spec that declares one.
pub fn args(specs: &[Spec], config_env: &str) -> Vec<Arg> {
    let config = Arg::new(CONFIG_ID)
        .long(CONFIG_ID)
        .value_name("FILE")
        .value_parser(clap::value_parser!(PathBuf))
        .help(format!("TOML configuration file [env: {config_env}]"));
    let flags = specs.iter().filter_map(|spec| {
        let long = spec.flag?.trim_start_matches('-');
        Some(
            Arg::new(spec.key)
                .long(long)
                .value_name(spec.value_name)
                .help(help_line(spec)),
        )
    });
    std::iter::once(config).chain(flags).collect()
}

/// The flags in `matches` for `specs`.
pub fn flags_from(specs: &[Spec], matches: &ArgMatches) -> Flags {
    let config = matches
        .try_get_one::<PathBuf>(CONFIG_ID)
        .ok()
        .flatten()
        .cloned();
    let values = specs
        .iter()
        .filter(|spec| spec.flag.is_some())
        .filter_map(|spec| {
            let value = matches.try_get_one::<String>(spec.key).ok().flatten()?;
            Some((spec.key, value.clone()))
        })
        .collect();
    Flags { config, values }
}

/// First sentence of the doc, then where else it can be set.
fn help_line(spec: &Spec) -> String {
    let first = spec
        .doc
        .split_once(". ")
        .map_or(spec.doc, |(sentence, _)| sentence)
        .trim_end_matches('.');
    let mut line = format!("{first} [env: {}]", spec.env);
    if let Some(default) = spec.default.or(spec.derived_default) {
        line.push_str(&format!(" [default: {default}]"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Setting;

    const PORT: Setting<u16> = Setting::new("port", "T_PORT", "The port. More text.")
        .flag("--port")
        .default("1");
    const TOKEN: Setting<String> = Setting::new("token", "T_TOKEN", "Token.").secret();

    #[test]
    fn flags_round_trip_through_clap() {
        let specs = [PORT.spec, TOKEN.spec];
        let cmd = clap::Command::new("t").args(args(&specs, "T_FILE"));
        let help = cmd.clone().render_help().to_string();
        assert!(
            help.contains("--port") && help.contains("[env: T_PORT]"),
            "{help}"
        );
        assert!(!help.contains("--token"), "secrets have no flag: {help}");
        let m = cmd
            .try_get_matches_from(["t", "--port", "7", "--config", "/x.toml"])
            .unwrap();
        let flags = flags_from(&specs, &m);
        assert_eq!(flags.values.get("port").map(String::as_str), Some("7"));
        assert_eq!(flags.config, Some(PathBuf::from("/x.toml")));
    }
}
