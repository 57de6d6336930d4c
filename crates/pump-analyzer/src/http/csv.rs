//! CSV output shared by the exports: RFC 4180 quoting plus a guard against formula injection
//! (a cell a spreadsheet would evaluate gets a leading apostrophe).

use std::fmt::Write;

/// Appends one text cell.
pub fn text(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || value.contains([',', '"', '\n', '\r']);
    if !quote {
        out.push_str(value);
        return;
    }
    out.push('"');
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// Appends a number cell (empty for `None`).
pub fn number(out: &mut String, value: Option<impl std::fmt::Display>) {
    if let Some(v) = value {
        let _ = write!(out, "{v}");
    }
}

/// A file name made only of safe characters, whatever the client seed contains.
pub fn file_name(stem: &str, suffix: &str) -> String {
    let clean: String = stem.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).take(40).collect();
    if clean.is_empty() { format!("{suffix}.csv") } else { format!("{clean}-{suffix}.csv") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_defused() {
        let cell = |v: &str| {
            let mut s = String::new();
            text(&mut s, v);
            s
        };
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_name("../\"evil\r\n;x=.csv", "stream"), "evilxcsv-stream.csv");
        assert_eq!(file_name("\"\"", "stream"), "stream.csv");
    }
}
