//! The CSV cell writer: whatever the text, the cell is one well-formed field that reads back to
//! the original (with the formula guard's apostrophe), and the file name is safe.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pump_analyzer::http::csv;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut cell = String::new();
    csv::text(&mut cell, &text);
    let decoded = if let Some(inner) = cell.strip_prefix('"') {
        let inner = inner.strip_suffix('"').expect("a quoted cell ends with a quote");
        assert!(!inner.replace("\"\"", "").contains('"'), "stray quote in {cell:?}");
        inner.replace("\"\"", "\"")
    } else {
        assert!(!cell.contains([',', '"', '\n', '\r']), "unquoted special character in {cell:?}");
        cell.clone()
    };
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let expected = if formula { format!("'{text}") } else { text.to_string() };
    assert_eq!(decoded, expected);
    let name = csv::file_name(&text, "stream");
    assert!(name.ends_with(".csv") && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
});
