//! Built-in client commands. Each takes the resolved [`Ctx`].

pub mod audit;
pub mod auth;
pub mod certs;
pub mod extensions;
pub mod host;
pub mod machine;
pub mod secret;
pub mod shared_secret;
pub mod webhook;

use attest_client::{Client, Response};
use serde::Serialize;

use crate::output::{Printer, Shown};

/// What every API command needs: a client and a printer.
pub struct Ctx {
    /// The API client with the resolved URL and token.
    pub client: Client,
    /// The output format.
    pub printer: Printer,
}

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::error::{CliError, CliResult};
use crate::output::{write_stdout, Column, Format};

/// Where a secret value comes from: exactly one of `--value`,
/// `--value-stdin`, `--value-file`.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct ValueArgs {
    /// The secret value.
    #[arg(long, value_name = "VALUE")]
    value: Option<String>,
    /// Read the value from stdin (one trailing newline is removed).
    #[arg(long = "value-stdin")]
    value_stdin: bool,
    /// Read the value from a file (one trailing newline is removed).
    #[arg(long = "value-file", value_name = "FILE")]
    value_file: Option<PathBuf>,
}

impl std::fmt::Debug for ValueArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueArgs")
            .field("value", &self.value.as_ref().map(|_| "[redacted]"))
            .field("value_stdin", &self.value_stdin)
            .field("value_file", &self.value_file)
            .finish()
    }
}

impl ValueArgs {
    /// The value, read from wherever it was given.
    pub fn read(self) -> CliResult<String> {
        if let Some(value) = self.value {
            return Ok(value);
        }
        let mut text = String::new();
        if let Some(path) = &self.value_file {
            text = std::fs::read_to_string(path).map_err(|e| {
                CliError::Usage(format!("cannot read --value-file {}: {e}", path.display()))
            })?;
        } else if self.value_stdin {
            std::io::stdin()
                .lock()
                .read_to_string(&mut text)
                .map_err(|e| CliError::Usage(format!("cannot read the value from stdin: {e}")))?;
        }
        Ok(strip_one_newline(text))
    }
}

/// Removes one trailing `\n` or `\r\n` (as `echo` and editors add).
pub fn strip_one_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Prints a list whose array-valued cells (`events`) are shown
/// comma-separated in a table; JSON and YAML stay the server's.
pub fn list_joined<T: Serialize>(
    ctx: &Ctx,
    res: &Response<T>,
    columns: &[Column],
) -> CliResult<()> {
    let mut shown = Shown::of(res)?;
    if ctx.printer.format == Format::Table {
        if let Value::Array(rows) = &shown.json {
            shown.json = rows.iter().map(join_arrays).collect();
        }
    }
    ctx.printer.list_shown(&shown, columns)
}

/// An object answer with array fields comma-separated in table mode.
pub fn object_joined<T: Serialize>(ctx: &Ctx, res: &Response<T>) -> CliResult<()> {
    let mut shown = Shown::of(res)?;
    if ctx.printer.format == Format::Table {
        shown.json = join_arrays(&shown.json);
    }
    ctx.printer.object_shown(&shown)
}

/// `row` with its arrays of strings comma-separated (one table cell).
pub fn join_arrays(row: &Value) -> Value {
    let Value::Object(map) = row else {
        return row.clone();
    };
    let joined = map
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Array(items) if items.iter().all(Value::is_string) => Value::String(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    Value::Object(joined)
}

/// After a `204 No Content`: a line for humans, nothing for scripts (the
/// server's body is empty).
pub fn done(ctx: &Ctx, message: &str) -> CliResult<()> {
    done_with(ctx.printer, message)
}

/// [`done`] for commands without a [`Ctx`].
pub fn done_with(printer: Printer, message: &str) -> CliResult<()> {
    if printer.format == Format::Table {
        write_stdout(&format!("{message}\n"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_removed() {
        assert_eq!(strip_one_newline("abc\n".into()), "abc");
        assert_eq!(strip_one_newline("abc\r\n".into()), "abc");
        assert_eq!(strip_one_newline("abc\n\n".into()), "abc\n");
        assert_eq!(strip_one_newline("abc".into()), "abc");
    }

    #[test]
    fn string_arrays_are_joined_for_tables() {
        let row = serde_json::json!({"events": ["a", "b"], "n": 1, "mixed": [1]});
        assert_eq!(
            join_arrays(&row),
            serde_json::json!({"events": "a,b", "n": 1, "mixed": [1]})
        );
    }
}
