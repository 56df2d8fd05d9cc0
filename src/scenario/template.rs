//! `{placeholder}` templates and durations: the two small value languages inside a scenario.
//!
//! Templates: `{name}` is a placeholder when `name` looks like an identifier (`[A-Za-z_][A-Za-z0-9_-]*`,
//! so a typo such as `{contact-name}` is reported instead of silently kept); `{{` and `}}` are a
//! literal brace; any other brace is literal (`awk '{print $1}'` needs no escaping).
//! Durations: `500ms`, `5s`, `2m`, `1h`, or a sum such as `1m30s`.
//!
//! Must not touch: YAML, positions, I/O.

use std::time::Duration;

/// Longest placeholder name considered; longer brace runs are literal text.
const MAX_NAME: usize = 64;
/// No step needs to wait longer than a day, and the cap keeps arithmetic far from overflow.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

enum Piece<'a> {
    Lit(&'a str),
    /// A placeholder name and the char offset of its `{` within the template.
    Var(&'a str, usize),
}

fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let bytes = template.as_bytes();
    let mut lit_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                out.push(Piece::Lit(&template[lit_start..=i]));
                i += 2;
                lit_start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                out.push(Piece::Lit(&template[lit_start..=i]));
                i += 2;
                lit_start = i;
            }
            b'{' => {
                let name_len = bytes[i + 1..]
                    .iter()
                    .take(MAX_NAME + 1)
                    .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
                    .unwrap_or(bytes.len() - i - 1);
                let name = &template[i + 1..i + 1 + name_len];
                let starts_ok = name
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
                if starts_ok && name_len <= MAX_NAME && bytes.get(i + 1 + name_len) == Some(&b'}') {
                    out.push(Piece::Lit(&template[lit_start..i]));
                    out.push(Piece::Var(name, template[..i].chars().count()));
                    i += name_len + 2;
                    lit_start = i;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.push(Piece::Lit(&template[lit_start..]));
    out
}

/// Every placeholder in `template`: its name and the char offset of its `{`.
pub(super) fn placeholders(template: &str) -> Vec<(&str, usize)> {
    pieces(template)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var(name, at) => Some((name, at)),
            Piece::Lit(_) => None,
        })
        .collect()
}

/// Fills placeholders from `lookup`; unknown ones stay as written so nothing is silently dropped.
pub(super) fn fill<'v>(template: &str, lookup: impl Fn(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(template.len());
    for piece in pieces(template) {
        match piece {
            Piece::Lit(s) => out.push_str(s),
            Piece::Var(name, _) => match lookup(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            },
        }
    }
    out
}

/// Why a duration was refused, phrased for the `help:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DurationError {
    /// A bare number: the suggested fix with a unit.
    NoUnit(String),
    Malformed,
    TooLong,
}

/// Parses `500ms`, `5s`, `2m`, `1h` and sums like `1m30s`.
pub(super) fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if !text.is_empty() && text.len() <= 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::NoUnit(format!("{text}s")));
    }
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(DurationError::Malformed);
    }
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err(DurationError::Malformed);
        }
        let n: u64 = text[i..i + digits]
            .parse()
            .map_err(|_| DurationError::Malformed)?;
        i += digits;
        let unit_len = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let unit = match &text[i..i + unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(DurationError::Malformed),
        };
        i += unit_len;
        total = total.saturating_add(unit);
        if total > MAX_DURATION {
            return Err(DurationError::TooLong);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_escapes() {
        assert_eq!(
            placeholders("a {run_id} b {contact-name} {{lit}} {x y} {}"),
            vec![("run_id", 2), ("contact-name", 13)]
        );
        assert_eq!(placeholders("awk '{print $1}'"), vec![]);
        assert_eq!(placeholders("é{run_id}"), vec![("run_id", 1)]);
        assert_eq!(placeholders("{"), vec![]);
        assert_eq!(placeholders("{abc"), vec![]);
    }

    #[test]
    fn fill_replaces_known_and_keeps_unknown() {
        let look = |n: &str| (n == "run_id").then_some("R1");
        assert_eq!(
            fill("canary {run_id} {nope} {{x}}", look),
            "canary R1 {nope} {x}"
        );
        assert_eq!(fill("", look), "");
        assert_eq!(fill("}}{{", look), "}{");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5"), Err(DurationError::NoUnit("5s".into())));
        assert_eq!(parse_duration("5 sec"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("5sec"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("1.5s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration(""), Err(DurationError::Malformed));
        assert_eq!(parse_duration("25h"), Err(DurationError::TooLong));
        assert_eq!(parse_duration("999999999h"), Err(DurationError::TooLong));
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Malformed)
        );
    }
}
