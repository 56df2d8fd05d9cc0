//! Fuzz target for the scenario parser and validator (`src/scenario`): the input is the text of a
//! scenario file, checked exactly as `tattle run my.yaml` checks it before touching any device
//! (`Scenario::parse`: positioned YAML tree, whole-file validation, diagnostics).
//!
//! Properties beyond "never panics":
//! - an accepted scenario has at least one step, every step (and every step of an `any`'s
//!   alternatives) has a known name and a line inside the file, a usable scenario name, durations
//!   within the 24 h cap, non-zero timeouts, non-empty selectors, keys, toggles and `via` lists
//!   (each method once), `.apk` install paths, no `any` or `reboot` inside an `any` and 2–16
//!   alternatives; expanding its templates and summing its durations do not panic;
//! - a rejected scenario carries at least one diagnostic, each with a 1-based line and column inside
//!   the input (line ≤ number of lines + 1, column ≤ that line's length + 1; lines end at LF, CRLF
//!   or a lone CR, as YAML has it), showing that line when it exists, and its `Display` (and the
//!   whole error's) has no control character besides the `\n` of its layout;
//! - parsing is deterministic: the same text gives the same scenario or the same diagnostics.
//!
//! Input: the bytes, as UTF-8 (invalid sequences replaced, as `Scenario::load` would refuse them
//! earlier with its own positioned diagnostic).
#![no_main]

use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tattle::scenario::{Launch, STEP_NAMES, Scenario, ScenarioError, Step, StepAction};

const PATH: &str = "fuzz.yaml";
const DAY: Duration = Duration::from_secs(24 * 3600);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = Path::new(PATH);
    let first = Scenario::parse(&text, path);
    match &first {
        Ok(s) => accepted(&text, s),
        Err(e) => rejected(&text, e),
    }
    // Determinism: a second parse of the same text gives the same answer.
    let second = Scenario::parse(&text, path);
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "two parses differ"),
        (Err(a), Err(b)) => {
            assert_eq!(a.diagnostics(), b.diagnostics(), "two parses differ");
            assert_eq!(a.to_string(), b.to_string(), "two parses differ");
        }
        _ => panic!("one parse accepted and the other rejected"),
    }
});

/// The input's lines as YAML counts them: a break is LF, CRLF or a lone CR.
fn yaml_lines(text: &str) -> Vec<String> {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    normalized.lines().map(str::to_string).collect()
}

fn accepted(text: &str, s: &Scenario) {
    assert!(!s.steps.is_empty(), "accepted with no steps");
    assert!(
        !s.name.is_empty() && s.name.len() <= 64,
        "unusable name {:?}",
        s.name
    );
    let lines = yaml_lines(text).len();
    for step in &s.steps {
        accepted_step(step, lines, false);
    }
    let (expanded, canaries) = s.expand("fuzzrun0");
    assert_eq!(expanded.steps.len(), s.steps.len());
    assert!(canaries.len() <= s.identifiers.len());
    let _ = s.minimum_duration();
    let _ = format!("{s:?}");
}

/// One accepted step's properties; `nested` inside an `any`.
fn accepted_step(step: &Step, lines: usize, nested: bool) {
    let name = step.action.name();
    assert!(STEP_NAMES.contains(&name), "unknown step name {name}");
    assert!(
        step.line >= 1 && step.line <= lines + 1,
        "step line {} outside the {lines} lines",
        step.line
    );
    assert!(step.settle <= DAY, "settle {:?}", step.settle);
    let timeout_ok = |t: &Duration| !t.is_zero() && *t <= DAY;
    match &step.action {
        StepAction::Idle(d) => {
            assert!(*d <= DAY, "idle {d:?}");
            assert_eq!(step.settle, Duration::ZERO, "idle with a settle");
        }
        StepAction::Shell {
            command,
            expect_exit,
        } => {
            assert!(!command.trim().is_empty(), "empty shell command accepted");
            assert!(expect_exit.is_none_or(|c| (0..=255).contains(&c)));
        }
        StepAction::AddContact { name, phone, via } => {
            assert!(!name.trim().is_empty() && !phone.trim().is_empty());
            assert!(!via.is_empty(), "add-contact with no method");
            assert!(via.iter().enumerate().all(|(i, v)| !via[..i].contains(v)), "a method twice");
        }
        StepAction::SendSms { to, body, via } => {
            assert!(!to.trim().is_empty() && !body.trim().is_empty());
            assert!(!via.is_empty(), "send-sms with no method");
            assert!(via.iter().enumerate().all(|(i, v)| !via[..i].contains(v)), "a method twice");
        }
        StepAction::ReceiveSms { from, body } => {
            assert!(!from.trim().is_empty() && !body.trim().is_empty());
        }
        StepAction::FreshSetup => {}
        StepAction::Launch(Launch::Package(p)) => assert!(!p.trim().is_empty()),
        StepAction::Launch(Launch::Intent(i)) => {
            assert!(i.action.is_some() || i.component.is_some() || i.data.is_some());
        }
        StepAction::Tap { target, timeout } | StepAction::WaitFor { target, timeout } => {
            assert!(!target.value.trim().is_empty(), "empty selector accepted");
            assert!(timeout_ok(timeout), "timeout {timeout:?}");
        }
        StepAction::Type {
            text,
            into,
            timeout,
        } => {
            assert!(!text.trim().is_empty(), "nothing to type");
            assert!(into.as_ref().is_none_or(|s| !s.value.trim().is_empty()));
            assert!(timeout_ok(timeout), "timeout {timeout:?}");
        }
        StepAction::Key(keys) => {
            assert!(!keys.is_empty(), "no key");
            assert!(keys.iter().all(|k| k.code > 0 && !k.name.is_empty()));
        }
        StepAction::Toggle(t) => assert!(!t.is_empty(), "nothing to toggle"),
        StepAction::Install { apk } => {
            assert!(apk.to_ascii_lowercase().ends_with(".apk"), "install of {apk:?}");
        }
        StepAction::Reboot { timeout } => {
            assert!(!nested, "a reboot inside an any");
            assert!(timeout_ok(timeout), "timeout {timeout:?}");
        }
        StepAction::Any(alternatives) => {
            assert!(!nested, "an any inside an any");
            assert!((2..=16).contains(&alternatives.len()), "{} alternatives", alternatives.len());
            for steps in alternatives {
                assert!(!steps.is_empty(), "an empty alternative");
                for inner in steps {
                    accepted_step(inner, lines, true);
                }
            }
        }
    }
}

fn rejected(text: &str, e: &ScenarioError) {
    let diags = e.diagnostics();
    assert!(!diags.is_empty(), "rejected without a diagnostic: {e}");
    let lines = yaml_lines(text);
    for d in diags {
        assert!(d.line >= 1 && d.column >= 1 && d.width >= 1, "{d:?}");
        assert!(
            d.line <= lines.len() + 1,
            "line {} of a {}-line input: {d:?}",
            d.line,
            lines.len()
        );
        // The column is in characters; one past the end of the line is where "missing" things are.
        let line_chars = lines.get(d.line - 1).map_or(0, |l| l.chars().count());
        // A line of the file is shown under its diagnostic.
        assert!(
            d.line > lines.len() || d.source_line.is_some(),
            "line {} of the input not shown: {d:?}",
            d.line
        );
        assert!(
            d.column <= line_chars + 1,
            "column {} on a line of {line_chars} characters: {d:?}",
            d.column
        );
        let shown = d.to_string();
        assert_no_control(&shown);
    }
    assert_no_control(&e.to_string());
}

fn assert_no_control(shown: &str) {
    if let Some(c) = shown.chars().find(|&c| c.is_control() && c != '\n') {
        panic!("control character {c:?} in a diagnostic: {shown:?}");
    }
}
