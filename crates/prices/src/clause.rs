//! Which names a model (or provider) answers to: exact, prefix, suffix, substring, pattern, or
//! any/all of these — compared in lower case, as the catalogue's own matcher does.

use serde::Deserialize;

/// A clause as the catalogue writes it: `{"equals": …}`, `{"or": [...]}`, ….
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum RawClause {
    Equals(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Regex(String),
    Or(Vec<RawClause>),
    And(Vec<RawClause>),
}

#[derive(Debug)]
pub(crate) enum Clause {
    Equals(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    /// Searched anywhere in the name as given (the pattern says itself where it anchors).
    /// Python's dialect, look-ahead included, hence a backtracking engine.
    Regex(fancy_regex::Regex),
    Or(Vec<Clause>),
    And(Vec<Clause>),
}

impl Clause {
    pub(crate) fn build(raw: RawClause) -> Result<Self, String> {
        Ok(match raw {
            RawClause::Equals(s) => Clause::Equals(s.to_lowercase()),
            RawClause::StartsWith(s) => Clause::StartsWith(s.to_lowercase()),
            RawClause::EndsWith(s) => Clause::EndsWith(s.to_lowercase()),
            RawClause::Contains(s) => Clause::Contains(s.to_lowercase()),
            RawClause::Regex(p) => {
                Clause::Regex(fancy_regex::Regex::new(&p).map_err(|e| format!("pattern {p:?} does not compile: {e}"))?)
            }
            RawClause::Or(cs) => Clause::Or(cs.into_iter().map(Clause::build).collect::<Result<_, _>>()?),
            RawClause::And(cs) => Clause::And(cs.into_iter().map(Clause::build).collect::<Result<_, _>>()?),
        })
    }

    /// Whether `name` (already lower case) answers to this clause.
    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            Clause::Equals(s) => name == s,
            Clause::StartsWith(s) => name.starts_with(s.as_str()),
            Clause::EndsWith(s) => name.ends_with(s.as_str()),
            Clause::Contains(s) => name.contains(s.as_str()),
            // A pattern that gives up (its backtracking limit) matches nothing.
            Clause::Regex(r) => r.is_match(name).unwrap_or(false),
            Clause::Or(cs) => cs.iter().any(|c| c.matches(name)),
            Clause::And(cs) => cs.iter().all(|c| c.matches(name)),
        }
    }
}

/// A compact date in a model name (`gpt-5.2-20251211`) written with dashes (`gpt-5.2-2025-12-11`),
/// as some gateways report names the catalogue lists dashed. Only a valid date of this century
/// followed by `-`, `:` or the end is rewritten.
pub(crate) fn dashed_dates(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len() + 4);
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 9);
        let after = bytes.get(i + 9).copied();
        if bytes[i] == b'-'
            && let Some(d) = digits
            && d.iter().all(u8::is_ascii_digit)
            && d.starts_with(b"20")
            && matches!(after, None | Some(b'-' | b':'))
        {
            let text = std::str::from_utf8(d).expect("ASCII digits");
            let (y, m, day) = (&text[..4], &text[4..6], &text[6..8]);
            let valid = chrono::NaiveDate::from_ymd_opt(
                y.parse().expect("digits"),
                m.parse().expect("digits"),
                day.parse().expect("digits"),
            )
            .is_some();
            if valid {
                out.push_str(&format!("-{y}-{m}-{day}"));
                i += 9;
                continue;
            }
        }
        let c = name[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_dates_are_dashed_only_where_they_are_dates() {
        assert_eq!(dashed_dates("gpt-5.2-20251211"), "gpt-5.2-2025-12-11");
        assert_eq!(dashed_dates("claude-opus-4-20250514:thinking"), "claude-opus-4-2025-05-14:thinking");
        assert_eq!(dashed_dates("m-20251311"), "m-20251311", "no 13th month");
        assert_eq!(dashed_dates("m-202512110"), "m-202512110", "nine digits");
        assert_eq!(dashed_dates("m-19991211"), "m-19991211");
        assert_eq!(dashed_dates("é-20250101"), "é-2025-01-01");
    }
}
