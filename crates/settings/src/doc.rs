//! The settings table of the operator documentation, rendered from the
//! declarations so the two cannot drift.

use crate::Spec;

/// Markdown table: TOML key, environment, flag, default, meaning.
pub fn table(specs: &[Spec]) -> String {
    let mut out = String::from(
        "| TOML key | Environment | Flag | Default | Meaning |\n|---|---|---|---|---|\n",
    );
    for spec in specs {
        let flag = match (spec.flag, spec.secret) {
            (Some(flag), _) => format!("`{flag}`"),
            (None, true) => "*(secret: env/file only)*".to_owned(),
            (None, false) => "—".to_owned(),
        };
        let default = match (spec.default, spec.derived_default) {
            (Some(""), _) => "empty".to_owned(),
            (Some(d), _) => format!("`{d}`"),
            (None, Some(derived)) => derived.to_owned(),
            (None, None) => "unset".to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {flag} | {default} | {} |\n",
            spec.key,
            spec.env,
            spec.doc.replace('\n', " ")
        ));
    }
    out
}

/// [`check_embedded`] on the file at `path`; with `BLESS=1` in the
/// environment a stale table is replaced in the file instead (the way to
/// regenerate the documentation after changing a declaration).
pub fn check_file(path: &std::path::Path, table: &str) -> Result<(), String> {
    let document = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    match check_embedded(&document, table) {
        Ok(()) => Ok(()),
        Err(_) if std::env::var("BLESS").is_ok_and(|v| v == "1") => {
            let (before, rest) = document
                .split_once(BEGIN)
                .ok_or("the document has no <!-- settings:begin --> marker")?;
            let (_, after) = rest
                .split_once(END)
                .ok_or("the document has no <!-- settings:end --> marker")?;
            std::fs::write(path, format!("{before}{BEGIN}{table}{END}{after}"))
                .map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) => Err(format!(
            "{e}\n(or run the test with BLESS=1 to rewrite the file)"
        )),
    }
}

const BEGIN: &str = "<!-- settings:begin -->\n";
const END: &str = "<!-- settings:end -->";

/// Checks that `document` holds `table` between the markers
/// `<!-- settings:begin -->` and `<!-- settings:end -->`; on a mismatch the
/// error carries the table to paste.
pub fn check_embedded(document: &str, table: &str) -> Result<(), String> {
    let start = document
        .find(BEGIN)
        .ok_or("the document has no <!-- settings:begin --> marker")?
        + BEGIN.len();
    let stop = document[start..]
        .find(END)
        .ok_or("the document has no <!-- settings:end --> marker")?
        + start;
    if &document[start..stop] == table {
        Ok(())
    } else {
        Err(format!(
            "the settings table is stale; replace it between the markers with:\n{table}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Setting;

    #[test]
    fn renders_and_checks() {
        const A: Setting<u16> = Setting::new("a", "T_A", "Alpha.").flag("--a").default("1");
        const B: Setting<String> = Setting::new("b", "T_B", "Beta.").secret();
        let t = table(&[A.spec, B.spec]);
        assert!(t.contains("| `a` | `T_A` | `--a` | `1` | Alpha. |"), "{t}");
        assert!(t.contains("*(secret: env/file only)* | unset |"), "{t}");
        let doc = format!("x\n<!-- settings:begin -->\n{t}<!-- settings:end -->\n");
        assert!(check_embedded(&doc, &t).is_ok());
        assert!(check_embedded(&doc, "other").is_err());
    }
}
