//! CSV as RFC 4180 has it (comma separated, CRLF line ends, fields quoted when they hold a comma,
//! a quote or a line break, quotes doubled), safe to open in a spreadsheet: a cell that would
//! start a formula (`=`, `+`, `-`, `@`, tab, carriage return) is prefixed with `'`, so the
//! spreadsheet shows it as text, and the rest of the value is kept as it was.

/// One field. Numbers keep their sign: `-12.5` is a number, not a formula.
pub fn field(value: Option<&str>) -> String {
    let Some(v) = value else { return String::new() };
    let formula = v.starts_with(['=', '+', '-', '@', '\t', '\r']) && v.parse::<f64>().is_err();
    let v = if formula { format!("'{v}") } else { v.to_owned() };
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v }
}

/// One record, with its line end.
pub fn record<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut line = values.into_iter().map(field).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_separators_quoted() {
        assert_eq!(field(Some("=HYPERLINK(\"http://x\",\"y\")")), "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
        assert_eq!(field(Some("+cmd")), "'+cmd");
        assert_eq!(field(Some("\tstart")), "'\tstart");
        assert_eq!(field(Some("-12.5")), "-12.5", "a negative number stays a number");
        assert_eq!(field(Some("a\nb")), "\"a\nb\"");
        assert_eq!(field(Some("é, ü")), "\"é, ü\"");
        assert_eq!(field(None), "");
        assert_eq!(record([Some("a"), None, Some("c")]), "a,,c\r\n");
    }
}
