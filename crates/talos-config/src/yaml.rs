//! Multi-document YAML in and out.

use serde::Deserialize;
use serde_norway::Value;

use crate::error::ConfigProblem;

/// Parses every document, keeping its 1-based position in the stream so
/// errors can point at it. Empty documents (a stray `---`) are dropped.
/// Stops at the first error: after a syntax error the document iterator
/// yields that error again forever.
pub(crate) fn parse_documents(text: &str) -> Result<Vec<(usize, Value)>, ConfigProblem> {
    let mut docs = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(de).map_err(|e| {
            let location = e.location();
            ConfigProblem::NotYaml {
                line: location.as_ref().map(|l| l.line()),
                column: location.as_ref().map(|l| l.column()),
            }
        })?;
        if !value.is_null() {
            docs.push((i + 1, value));
        }
    }
    Ok(docs)
}

/// Serializes documents, separated by `---` when there are several.
pub(crate) fn to_documents<'a>(
    docs: impl IntoIterator<Item = &'a Value>,
) -> Result<String, ConfigProblem> {
    let mut out = String::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let text = serde_norway::to_string(doc).map_err(|_| ConfigProblem::Serialize)?;
        out.push_str(&text);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
