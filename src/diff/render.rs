//! A diff document as text (the terminal) and as Markdown (a report, an issue, a letter).
//!
//! Snapshot files can come from anyone (a pull request): every line goes through `sanitize`, so
//! a host name in one cannot carry a terminal escape.
//!
//! Must not touch: which changes there are, files, the terminal.

use std::fmt::Write as _;

use tattle_analysis::sanitize;

use super::model::{Build, ChangeKind, DiffDocument, OutcomeRef};
use super::sentence::{Style, sentences};

/// `-` for what B no longer has, `+` for what it has new, `~` for what it has otherwise.
fn mark(kind: ChangeKind) -> char {
    match kind {
        ChangeKind::LeakRemoved
        | ChangeKind::SizeCorrelationRemoved
        | ChangeKind::HostRemoved
        | ChangeKind::StepRemoved
        | ChangeKind::ScenarioOnlyInA => '-',
        ChangeKind::LeakAdded
        | ChangeKind::SizeCorrelationAdded
        | ChangeKind::HostAdded
        | ChangeKind::StepAdded
        | ChangeKind::ScenarioOnlyInB => '+',
        _ => '~',
    }
}

fn build_line(build: &Build) -> String {
    if build.firmwares.is_empty() {
        build.path.clone()
    } else {
        format!("{} (firmware {})", build.path, build.firmwares.join(", "))
    }
}

fn outcome_line(o: Option<&OutcomeRef>) -> String {
    o.map_or("no outcome".to_string(), |o| {
        format!("{} ({})", o.firmware, o.device)
    })
}

const SAME: &str =
    "no difference: the same hosts and identifiers, carried the same way, in every step";

/// The terminal's form: who A and B are, then per scenario each change with its mark.
pub fn text(doc: &DiffDocument) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A = {}", sanitize(&build_line(&doc.a)));
    let _ = writeln!(out, "B = {}", sanitize(&build_line(&doc.b)));
    if doc.same {
        let _ = writeln!(out, "{SAME}");
        return out;
    }
    let several = doc.scenarios.len() > 1;
    for scenario in &doc.scenarios {
        if scenario.changes.is_empty() {
            if several {
                let _ = writeln!(out, "== {}: no difference", sanitize(&scenario.scenario));
            }
            continue;
        }
        let _ = writeln!(
            out,
            "== {}",
            sanitize(&format!(
                "{}: A {}; B {}",
                scenario.scenario,
                outcome_line(scenario.a.as_ref()),
                outcome_line(scenario.b.as_ref())
            ))
        );
        for (change, sentence) in
            scenario
                .changes
                .iter()
                .zip(sentences(scenario, several, Style::Plain))
        {
            let _ = writeln!(out, "  {} {}", mark(change.kind), sanitize(&sentence));
        }
    }
    out
}

/// The Markdown form: a heading, who A and B are, then per scenario its changes as a list.
pub fn markdown(doc: &DiffDocument) -> String {
    let code = |s: &str| format!("`{}`", sanitize(s).replace('`', "'"));
    let mut out = String::new();
    let _ = writeln!(out, "# What changed from build A to build B\n");
    let _ = writeln!(out, "| | outcomes | firmware |\n|---|---|---|");
    for (side, build) in [("A", &doc.a), ("B", &doc.b)] {
        let _ = writeln!(
            out,
            "| {side} | {} | {} |",
            code(&build.path),
            build
                .firmwares
                .iter()
                .map(|f| code(f))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(out);
    if doc.same {
        let _ = writeln!(
            out,
            "No difference: the same hosts and identifiers, carried the same way, in every step."
        );
        return out;
    }
    let several = doc.scenarios.len() > 1;
    for scenario in &doc.scenarios {
        let _ = writeln!(out, "## {}\n", code(&scenario.scenario));
        for (side, o) in [("A", &scenario.a), ("B", &scenario.b)] {
            let _ = match o {
                Some(o) => writeln!(
                    out,
                    "- {side}: {} — {}, {}",
                    code(&o.file),
                    code(&o.firmware),
                    sanitize(&o.device).replace(['<', '>', '*', '_', '`'], " ")
                ),
                None => writeln!(out, "- {side}: no outcome"),
            };
        }
        let _ = writeln!(out);
        if scenario.changes.is_empty() {
            let _ = writeln!(out, "No difference.\n");
            continue;
        }
        for sentence in sentences(scenario, several, Style::Markdown) {
            let _ = writeln!(out, "- {}", sanitize(&sentence));
        }
        let _ = writeln!(out);
    }
    out
}
