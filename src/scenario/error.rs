//! Scenario errors: positioned diagnostics in the `FILE:LINE:COL: error: MESSAGE` / `help: FIX` form,
//! with the offending source line and a caret under the column, and did-you-mean suggestions.
//!
//! Must not touch: YAML parsing or scenario semantics (callers decide what is wrong and where).

use std::fmt;
use std::path::{Path, PathBuf};

/// At most this many diagnostics are kept per file; the rest are counted.
pub(super) const MAX_DIAGNOSTICS: usize = 20;
/// Source lines longer than this are shown as a window around the column.
const SNIPPET_CHARS: usize = 100;

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The offending source line as shown: sanitised for a terminal (control characters replaced,
    /// tabs made spaces so the caret lines up) and, when long, a window around the column with `...`
    /// where it was cut.
    pub source_line: Option<String>,
    /// Characters of `source_line` before the caret.
    pub caret: usize,
    /// Characters to underline from the caret.
    pub width: usize,
}

impl Diagnostic {
    pub(crate) fn new(
        path: &Path,
        source: &str,
        line: usize,
        column: usize,
        width: usize,
        message: String,
        help: Option<String>,
    ) -> Self {
        let column = column.max(1);
        let shown = source
            .lines()
            .nth(line.saturating_sub(1))
            .map(|l| window(&l.trim_end_matches('\r').replace('\t', " "), column, width));
        let (source_line, caret, width) = match shown {
            Some((text, caret, width)) => (Some(text), caret, width),
            None => (None, 0, width.max(1)),
        };
        Diagnostic {
            path: path.to_path_buf(),
            line,
            column,
            message,
            help,
            source_line,
            caret,
            width,
        }
    }
}

/// The part of `line` shown under a diagnostic at 1-based `column`: all of it, or for a long line a
/// window that keeps the caret in view; sanitised. Returns it with the caret's offset in it and the
/// width to underline.
fn window(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    let col0 = (column - 1).min(chars.len());
    let start = col0.saturating_sub(SNIPPET_CHARS / 2);
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let mut shown = tattle_analysis::sanitize(&chars[start..end].iter().collect::<String>());
    let mut caret = col0 - start;
    if start > 0 {
        shown.insert_str(0, "...");
        caret += 3;
    }
    if end < chars.len() {
        shown.push_str("...");
    }
    let width = width
        .max(1)
        .min(end.saturating_sub(col0).max(1))
        .min(SNIPPET_CHARS);
    (shown, caret, width)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        if let Some(shown) = &self.source_line {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            write!(
                f,
                "\n {pad} |\n {num} | {shown}\n {pad} | {}{}",
                " ".repeat(self.caret),
                "^".repeat(self.width)
            )?;
        }
        Ok(())
    }
}

/// Everything that can go wrong loading a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read at all.
    #[error("{}: error: cannot read the scenario: {source}\n  help: {help}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
        help: String,
    },
    /// Neither a file nor a built-in scenario has this name.
    #[error("error: no scenario file or built-in scenario named `{name}`\n  help: {help}")]
    UnknownName { name: String, help: String },
    /// The file was read but is not a valid scenario; every problem found, in file order.
    #[error("{}", render(.diagnostics, *.omitted))]
    Invalid {
        diagnostics: Vec<Diagnostic>,
        /// Problems beyond [`MAX_DIAGNOSTICS`] that were counted but not kept.
        omitted: usize,
    },
}

impl ScenarioError {
    /// The positioned problems (empty for read errors and unknown names).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ScenarioError::Invalid { diagnostics, .. } => diagnostics,
            _ => &[],
        }
    }
}

fn render(diags: &[Diagnostic], omitted: usize) -> String {
    let mut out = diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n\n");
    let total = diags.len() + omitted;
    if omitted > 0 {
        out.push_str(&format!("\n\n... and {omitted} more problems"));
    }
    if total > 1 {
        out.push_str(&format!("\n\nerror: {total} problems in this scenario"));
    }
    out
}

/// The candidate closest to `word`, if any is close enough to be a plausible typo. Case, `_` and `-`
/// are ignored when comparing, so `send_SMS` suggests `send-sms`.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let norm = |s: &str| -> String {
        s.chars()
            .take(128)
            .map(|c| match c.to_ascii_lowercase() {
                '_' | ' ' => '-',
                c => c,
            })
            .collect()
    };
    let w = norm(word);
    let mut best: Option<(f64, &str)> = None;
    for cand in candidates {
        let c = norm(cand);
        let score = if c == w {
            2.0
        } else {
            let dist = strsim::damerau_levenshtein(&w, &c);
            let allowed = (c.chars().count() / 3).max(1);
            let jw = strsim::jaro_winkler(&w, &c);
            if dist <= allowed || jw >= 0.88 {
                jw
            } else {
                continue;
            }
        };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// "did you mean `x`?" or, when nothing is close, the list of valid choices.
pub(crate) fn suggestion(word: &str, candidates: &[&str], what: &str) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!(
            "valid {what}: {}",
            candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_position_help_and_caret() {
        let src = "steps:\n  - send-smss: {}\n";
        let d = Diagnostic::new(
            Path::new("s.yaml"),
            src,
            2,
            5,
            9,
            "unknown step `send-smss`".into(),
            Some("did you mean `send-sms`?".into()),
        );
        assert_eq!(
            d.to_string(),
            "s.yaml:2:5: error: unknown step `send-smss`\n  help: did you mean `send-sms`?\n   |\n \
             2 |   - send-smss: {}\n   |     ^^^^^^^^^"
        );
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let d = Diagnostic::new(
            Path::new("s.yaml"),
            "a: \u{1b}[31mred\u{7}",
            1,
            4,
            1,
            "m".into(),
            None,
        );
        let shown = d.to_string();
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown:?}"
        );
    }

    #[test]
    fn long_lines_are_windowed_and_positions_past_the_end_are_safe() {
        let line = "x".repeat(5000);
        let d = Diagnostic::new(Path::new("s"), &line, 1, 4000, 3, "m".into(), None);
        let shown = d.to_string();
        assert!(shown.len() < 400, "{}", shown.len());
        assert!(shown.contains("...x"));
        let d = Diagnostic::new(Path::new("s"), "ab", 7, 99, 3, "m".into(), None);
        assert_eq!(d.to_string(), "s:7:99: error: m");
        let d = Diagnostic::new(Path::new("s"), "ab", 1, 99, 3, "m".into(), None);
        assert!(d.to_string().ends_with("|   ^"), "{d}");
    }

    #[test]
    fn suggestions() {
        let steps = ["fresh-setup", "idle", "add-contact", "send-sms", "shell"];
        assert_eq!(did_you_mean("send-smss", steps), Some("send-sms"));
        assert_eq!(did_you_mean("send_sms", steps), Some("send-sms"));
        assert_eq!(did_you_mean("addcontact", steps), Some("add-contact"));
        assert_eq!(did_you_mean("idel", steps), Some("idle"));
        assert_eq!(did_you_mean("reboot-into-orbit", steps), None);
        assert_eq!(
            suggestion("zzz", &["a", "b"], "steps"),
            "valid steps: `a`, `b`"
        );
    }
}
