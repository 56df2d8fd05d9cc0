//! Names and text shown to people or stored: every identifier value replaced by its kind, and no
//! control character left. The one place that decides what "redacted" means, for every output of
//! tattle (reports, snapshots, run files, error messages).
//!
//! Must not touch: I/O. Never logs what it redacts.

use crate::identifier::{Identifier, redact_literal};
use std::sync::Arc;

use crate::Needles;
use crate::matcher::Matcher;

/// Text longer than this is cut (with `…`) before it is shown: device output and network names
/// are untrusted, and a report is no place for a megabyte of either.
pub const MAX_SHOWN: usize = 512;

/// Replaces identifiers in text: every form and encoding the analysis knows (an IMEI without its
/// check digit, the hex or base32 of a phone number in a DNS label, a URL-encoded name…), then the
/// literal values (including ones too short for the matcher), then control characters.
pub struct Redactor {
    matcher: Arc<Matcher>,
    identifiers: Vec<Identifier>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} identifiers)", self.identifiers.len())
    }
}

impl Redactor {
    /// A redactor for `identifiers` (compiles their needles; see [`Redactor::with_needles`]).
    pub fn new(identifiers: &[Identifier]) -> Self {
        Self::with_needles(&Needles::new(identifiers), identifiers)
    }

    /// A redactor sharing needles compiled for an analysis of the same `identifiers`.
    pub fn with_needles(needles: &Needles, identifiers: &[Identifier]) -> Self {
        Redactor {
            matcher: needles.0.clone(),
            identifiers: identifiers.to_vec(),
        }
    }

    /// `text` redacted and made safe to print on one line (see [`sanitize`]).
    pub fn clean(&self, text: &str) -> String {
        sanitize(&self.redact(text))
    }

    /// `text` redacted, control characters kept (for text a serializer escapes itself, or whose
    /// lines matter).
    pub fn redact(&self, text: &str) -> String {
        redact_literal(&self.matcher.redact(text), &self.identifiers)
    }
}

/// Untrusted text (from a device, the network, a file) made safe to show on one line: control
/// characters (terminal escapes, newlines) become `?`, and it is cut at `MAX_SHOWN` characters.
pub fn sanitize(text: &str) -> String {
    sanitize_with(text, false)
}

/// Like [`sanitize`], keeping line breaks (multi-line device output in an error message).
pub fn sanitize_lines(text: &str) -> String {
    sanitize_with(text, true)
}

fn sanitize_with(text: &str, keep_newlines: bool) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_SHOWN)
        .map(|c| match c {
            '\n' if keep_newlines => c,
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    if text.chars().nth(MAX_SHOWN).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_and_the_literal_value_go() {
        let r = Redactor::new(&[
            Identifier::new("imei", "356938035643809"),
            Identifier::new("pin", "42"),
        ]);
        // Without its check digit, in a DNS label, as hex, and a value too short for the matcher.
        assert_eq!(
            r.clean("35693803564380.t.example 333536393338303335363433383039 pin 42"),
            "<imei>.t.example <imei> pin <pin>"
        );
        assert!(!format!("{r:?}").contains("3569"));
    }

    #[test]
    fn control_characters_and_length() {
        assert_eq!(sanitize("bad\x1b[31mred\r\n"), "bad?[31mred??");
        assert_eq!(sanitize_lines("a\nb\x07"), "a\nb?");
        let long = "a".repeat(2000);
        assert_eq!(sanitize(&long).chars().count(), MAX_SHOWN + 1);
    }
}
