//! Rendering answers as aligned tables, the server's JSON, or YAML.

use std::io::{IsTerminal, Write};

use attest_client::Response;
use clap::ValueEnum;
use serde::Serialize;
use serde_json::Value;

use crate::error::{CliError, CliResult};

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for humans.
    Table,
    /// The server's JSON, unchanged (stable for scripts).
    Json,
    /// The same data as YAML.
    Yaml,
}

/// One table column: header and the JSON field it shows.
pub type Column = (&'static str, &'static str);

/// An answer as the printer shows it: the server's bytes for `-o json`
/// (scripts see exactly what the server sent) and the typed body as JSON
/// for YAML and tables, whose rendering is generic over the fields.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The body exactly as received.
    pub raw: String,
    /// The typed body, serialised.
    pub json: Value,
    /// `X-Total-Count`, shown under a table.
    pub total: Option<u64>,
}

impl Shown {
    /// What `res` shows.
    pub fn of<T: Serialize>(res: &Response<T>) -> CliResult<Self> {
        Ok(Self {
            raw: res.raw.clone(),
            json: to_json(&res.body)?,
            total: res.total,
        })
    }
}

/// A typed value as JSON, for generic rendering.
pub fn to_json<T: Serialize>(value: &T) -> CliResult<Value> {
    serde_json::to_value(value).map_err(|e| CliError::Failure(format!("cannot render: {e}")))
}

/// Where and how to print.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// The chosen format.
    pub format: Format,
    /// ANSI colour: only tables, only on a terminal, never with NO_COLOR.
    pub color: bool,
}

impl Printer {
    /// A printer for `format`, colouring when stdout is a terminal.
    pub fn new(format: Format) -> Self {
        let color = format == Format::Table
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self { format, color }
    }

    /// Prints a list answer as a table with `columns`.
    pub fn list<T: Serialize>(&self, res: &Response<T>, columns: &[Column]) -> CliResult<()> {
        self.list_shown(&Shown::of(res)?, columns)
    }

    /// Prints an object answer as `field: value` lines.
    pub fn object<T: Serialize>(&self, res: &Response<T>) -> CliResult<()> {
        self.object_shown(&Shown::of(res)?)
    }

    /// [`Printer::list`] of an answer already turned into a [`Shown`].
    pub fn list_shown(&self, shown: &Shown, columns: &[Column]) -> CliResult<()> {
        self.structured(shown, |p| {
            let rows = shown.json.as_array().map(Vec::as_slice).unwrap_or_default();
            let mut out = p.table(columns, rows);
            if rows.is_empty() {
                out = "(none)\n".to_string();
            }
            if let Some(total) = shown.total {
                out.push_str(&format!("{} shown, {total} in total\n", rows.len()));
            }
            out
        })
    }

    /// [`Printer::object`] of an answer already turned into a [`Shown`].
    pub fn object_shown(&self, shown: &Shown) -> CliResult<()> {
        self.structured(shown, |p| p.fields(&shown.json))
    }

    /// JSON and YAML are handled here; tables by `table`.
    fn structured(&self, shown: &Shown, table: impl Fn(&Self) -> String) -> CliResult<()> {
        let text = match self.format {
            Format::Json => {
                let mut raw = shown.raw.clone();
                if !raw.ends_with('\n') {
                    raw.push('\n');
                }
                raw
            }
            Format::Yaml => to_yaml(&shown.json)?,
            Format::Table => table(self),
        };
        write_stdout(&text)
    }

    /// An aligned table of `rows`.
    pub fn table(&self, columns: &[Column], rows: &[Value]) -> String {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| columns.iter().map(|(_, key)| cell(row, key)).collect())
            .collect();
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, (header, _))| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([header.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let header: Vec<String> = columns
            .iter()
            .zip(&widths)
            .map(|((h, _), w)| format!("{:<w$}", h.to_uppercase(), w = *w))
            .collect();
        out.push_str(&self.paint(header.join("  ").trim_end(), "1"));
        out.push('\n');
        for row in &cells {
            let line: Vec<String> = row
                .iter()
                .zip(columns)
                .zip(&widths)
                .map(|((text, (_, key)), w)| {
                    let padded = format!("{text:<w$}", w = *w);
                    match (*key, status_color(text)) {
                        ("status", Some(code)) => self.paint(&padded, code),
                        _ => padded,
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// `field: value` lines, keys aligned.
    pub fn fields(&self, value: &Value) -> String {
        let Some(map) = value.as_object() else {
            return format!("{}\n", scalar(value));
        };
        let width = map.keys().map(String::len).max().unwrap_or(0) + 1;
        let mut out = String::new();
        for (key, v) in map {
            let label = format!("{:<width$}", format!("{key}:"));
            let text = scalar(v);
            let text = match (key.as_str(), status_color(&text)) {
                ("status", Some(code)) => self.paint(&text, code),
                _ => text,
            };
            out.push_str(&format!("{}  {text}\n", self.paint(&label, "1")));
        }
        out
    }

    /// Wraps `text` in an ANSI SGR code when colour is on.
    pub fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn status_color(status: &str) -> Option<&'static str> {
    match status {
        "attested" | "registered" | "approved" | "valid" => Some("32"),
        "pending_approval" | "pending_second_approval" => Some("33"),
        "locked" | "revoked" | "rejected" | "INVALID" => Some("31"),
        _ => None,
    }
}

/// A table cell: strings bare, null as `-`, the rest as JSON.
fn cell(row: &Value, key: &str) -> String {
    let text = scalar(row.get(key).unwrap_or(&Value::Null));
    // Keep tables on one line per row.
    text.replace(['\n', '\r', '\t'], " ")
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        other => other.to_string(),
    }
}

/// The JSON value as YAML.
pub fn to_yaml(value: &Value) -> CliResult<String> {
    serde_norway::to_string(value).map_err(|e| CliError::Failure(format!("YAML output: {e}")))
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> CliResult<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_are_aligned_and_plain_without_a_terminal() {
        let p = Printer {
            format: Format::Table,
            color: false,
        };
        let rows = [
            json!({"a": "x", "b": null}),
            json!({"a": "longer", "b": true, "extra": 1}),
        ];
        let out = p.table(&[("a", "a"), ("bee", "b")], &rows);
        assert_eq!(out, "A       BEE\nx       -\nlonger  yes\n");
        let colored = Printer {
            format: Format::Table,
            color: true,
        };
        assert!(colored
            .table(&[("status", "status")], &[json!({"status": "locked"})])
            .contains("\x1b[31m"));
    }
}
