//! A differential series in words: which encrypted flows grew with a planted value, how sure that
//! is, and what could not be judged (docs/differential.md).
//!
//! Must not touch: files, the terminal, exit codes; sizes and planted values (it gets neither).

use std::fmt::Write as _;

use crate::differential::{Follows, PlantedKind, Verdicts};
use tattle_analysis::identifier::placeholder;

/// The verdict section printed after the first run's outcome.
pub fn render_differential(
    planted: &[PlantedKind],
    run_dirs: &[String],
    verdicts: &Verdicts,
    interrupted: Option<&str>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== differential: {} runs", run_dirs.len());
    for k in planted {
        let lengths: Vec<String> = k.lengths.iter().map(usize::to_string).collect();
        let _ = writeln!(
            out,
            "  planted {} with lengths {}",
            placeholder(&k.kind),
            lengths.join(", ")
        );
    }
    for (i, dir) in run_dirs.iter().enumerate() {
        let _ = writeln!(out, "  run {}: {dir}", i + 1);
    }
    if let Some(why) = interrupted {
        let _ = writeln!(out, "  not judged: {why}");
        return out;
    }
    let mut step = None;
    for f in &verdicts.follows {
        if step != Some(&f.group.step) {
            let _ = writeln!(out, "  step {}", f.group.step);
            step = Some(&f.group.step);
        }
        let _ = writeln!(out, "    SIZE {}", sentence(f));
    }
    if !verdicts.not_judged.is_empty() {
        let _ = writeln!(out, "  could not be judged:");
        for n in &verdicts.not_judged {
            let _ = writeln!(
                out,
                "    step {}: {}:{} (flow {}) {}",
                n.group.step,
                n.group.host,
                n.group.port,
                n.group.ordinal,
                n.why.describe()
            );
        }
    }
    let _ = writeln!(
        out,
        "  {} group(s) of encrypted flows: {} follow a planted value, {} could not be judged, \
         the others kept their size",
        verdicts.groups,
        verdicts.follows.len(),
        verdicts.not_judged.len()
    );
    out
}

/// `the TLS flow 1 to sms.example:443 grew with <sms_body>'s length in 3/3 pairs of runs
/// (1.00 byte per character: plain; confidence medium): it very likely carries <sms_body>`.
pub fn sentence(f: &Follows) -> String {
    let kind = placeholder(&f.kind);
    format!(
        "the TLS flow {} to {}:{} grew with {kind}'s length in {}/{} pairs of runs ({:.2} bytes \
         per character: {}; R² {:.3}; confidence {}): it very likely carries {kind}",
        f.group.ordinal,
        f.group.host,
        f.group.port,
        f.agreeing_pairs,
        f.pairs,
        f.slope,
        f.class.as_str(),
        f.r2,
        match f.confidence {
            crate::differential::Confidence::High => "high",
            crate::differential::Confidence::Medium => "medium",
            crate::differential::Confidence::Low => "low",
        }
    )
}
