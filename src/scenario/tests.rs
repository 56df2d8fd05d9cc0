//! Unit tests for scenario parsing and validation: one per error class, each pinning line:col.

use std::path::Path;
use std::time::Duration;

use super::*;

const SEND_SMS: &str = include_str!("../../scenarios/send-sms.yaml");

pub(super) fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text, Path::new("t.yaml"))
}

/// `LINE:COL: MESSAGE | HELP` for each problem, in file order.
pub(super) fn problems(text: &str) -> Vec<String> {
    let err = parse(text).expect_err("expected the scenario to be rejected");
    err.diagnostics()
        .iter()
        .map(|d| {
            format!(
                "{}:{}: {} | {}",
                d.line,
                d.column,
                d.message,
                d.help.as_deref().unwrap_or("")
            )
        })
        .collect()
}

fn only(text: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.into_iter().next().unwrap_or_default()
}

fn with_steps(steps: &str) -> String {
    format!(
        "name: t\nidentifiers:\n  contact_name: Wei Ling Tan\n  contact_phone: \"+6598765432\"\nsteps:\n{steps}"
    )
}

#[test]
fn send_sms_parses_to_the_documented_steps() {
    let s = parse(SEND_SMS).unwrap();
    assert_eq!(s.name, "send-sms");
    assert_eq!(
        s.description,
        "Set the phone up, add one contact, send one SMS."
    );
    assert_eq!(
        s.identifiers,
        vec![
            ("contact_name".to_string(), "Wei Ling Tan".to_string()),
            ("contact_phone".to_string(), "+6598765432".to_string()),
            ("sms_body".to_string(), "tattle canary {run_id}".to_string()),
        ]
    );
    let names: Vec<&str> = s.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(
        names,
        ["fresh-setup", "idle", "add-contact", "send-sms", "idle"]
    );
    assert_eq!(s.steps[0].action, StepAction::FreshSetup);
    assert_eq!(s.steps[0].settle, DEFAULT_SETTLE);
    assert_eq!(s.steps[1].action, StepAction::Idle(Duration::from_secs(3)));
    assert_eq!(s.steps[1].settle, Duration::ZERO);
    assert_eq!(
        s.steps[3].action,
        StepAction::SendSms {
            to: "{contact_phone}".into(),
            body: "{sms_body}".into(),
            via: DEFAULT_SMS_VIA.to_vec()
        }
    );
    let first_step_line = SEND_SMS
        .lines()
        .position(|l| l.contains("- fresh-setup"))
        .unwrap()
        + 1;
    let lines: Vec<usize> = s.steps.iter().map(|s| s.line).collect();
    assert_eq!(
        lines,
        (first_step_line..first_step_line + 5).collect::<Vec<_>>()
    );
}

#[test]
fn expand_fills_templates_and_returns_canaries() {
    let s = parse(SEND_SMS).unwrap();
    let (x, canaries) = s.expand("r42");
    assert_eq!(
        x.steps[2].action,
        StepAction::AddContact {
            name: "Wei Ling Tan".into(),
            phone: "+6598765432".into(),
            via: DEFAULT_CONTACT_VIA.to_vec()
        }
    );
    assert_eq!(
        x.steps[3].action,
        StepAction::SendSms {
            to: "+6598765432".into(),
            body: "tattle canary r42".into(),
            via: DEFAULT_SMS_VIA.to_vec()
        }
    );
    assert_eq!(
        x.identifiers[2],
        ("sms_body".to_string(), "tattle canary r42".to_string())
    );
    assert_eq!(
        canaries,
        vec![
            tattle_analysis::identifier::Identifier::new("contact_name", "Wei Ling Tan"),
            tattle_analysis::identifier::Identifier::new("contact_phone", "+6598765432"),
            tattle_analysis::identifier::Identifier::new("sms_body", "tattle canary r42"),
        ]
    );
    // The original keeps its templates, so it can be expanded again for the next run.
    assert!(matches!(&s.steps[3].action, StepAction::SendSms { body, .. } if body == "{sms_body}"));
}

#[test]
fn debug_never_shows_canary_values() {
    let (x, _) = parse(SEND_SMS).unwrap().expand("r42");
    let shown = format!("{x:?}");
    assert!(!shown.contains("Wei Ling"), "{shown}");
    assert!(!shown.contains("6598765432"), "{shown}");
    assert!(!shown.contains("canary"), "{shown}");
    assert!(
        shown.contains("send-sms") && shown.contains("contact_name"),
        "{shown}"
    );
}

#[test]
fn all_step_forms_and_settle() {
    let s = parse(&with_steps(
        "  - fresh-setup\n\
         \x20 - fresh-setup: { settle: 10s }\n\
         \x20 - idle: 1m30s\n\
         \x20 - add-contact: { name: \"{contact_name}\", phone: +6598765432 }\n\
         \x20   settle: 500ms\n\
         \x20 - shell: getprop ro.build.fingerprint\n\
         \x20 - shell: { command: \"echo {run_id} | grep -q x\", expect_exit: 1, settle: 0s }\n\
         \x20 - send-sms:\n\
         \x20     to: \"{contact_phone}\"\n\
         \x20     body: |\n\
         \x20       two {{literal}} lines\n\
         \x20       {run_id}\n",
    ))
    .unwrap();
    assert_eq!(s.steps.len(), 7);
    assert_eq!(s.steps[0].settle, DEFAULT_SETTLE);
    assert_eq!(s.steps[1].settle, Duration::from_secs(10));
    assert_eq!(s.steps[2].action, StepAction::Idle(Duration::from_secs(90)));
    // A plain +number keeps its `+`: values are taken as written, not as YAML integers.
    assert_eq!(
        s.steps[3].action,
        StepAction::AddContact {
            name: "{contact_name}".into(),
            phone: "+6598765432".into(),
            via: DEFAULT_CONTACT_VIA.to_vec()
        }
    );
    assert_eq!(s.steps[3].settle, Duration::from_millis(500));
    assert_eq!(
        s.steps[4].action,
        StepAction::Shell {
            command: "getprop ro.build.fingerprint".into(),
            expect_exit: None
        }
    );
    assert_eq!(s.steps[5].settle, Duration::ZERO);
    assert!(matches!(
        s.steps[5].action,
        StepAction::Shell {
            expect_exit: Some(1),
            ..
        }
    ));
    let (x, _) = s.expand("R");
    assert_eq!(
        x.steps[6].action,
        StepAction::SendSms {
            to: "+6598765432".into(),
            body: "two {literal} lines\nR\n".into(),
            via: DEFAULT_SMS_VIA.to_vec()
        }
    );
    assert_eq!(
        s.minimum_duration(),
        Duration::from_millis(2000 + 10_000 + 90_000 + 500 + 2000 + 2000)
    );
}

#[test]
fn name_defaults_to_the_file_stem() {
    let s = Scenario::parse("steps:\n  - idle: 1s\n", Path::new("dir/My Check.yaml")).unwrap();
    assert_eq!(s.name, "my-check");
    assert_eq!(s.description, "");
}

#[test]
fn unknown_step_suggests_the_close_one() {
    let text = SEND_SMS.replace("- send-sms:", "- send-smss:");
    let line = text.lines().position(|l| l.contains("send-smss")).unwrap() + 1;
    assert_eq!(
        only(&text),
        format!("{line}:5: unknown step `send-smss` | did you mean `send-sms`?")
    );
}

#[test]
fn unknown_step_lists_the_valid_ones_when_nothing_is_close() {
    assert_eq!(
        only(&with_steps("  - reboot-into-orbit: {}\n")),
        "6:5: unknown step `reboot-into-orbit` | valid steps and keys: `fresh-setup`, `idle`, \
         `add-contact`, `send-sms`, `receive-sms`, `shell`, `launch`, `tap`, `wait-for`, `type`, `key`, `toggle`, \
         `install`, `reboot`, `any`, `settle`"
    );
    assert_eq!(
        only(&with_steps("  - warp\n")),
        "6:5: unknown step `warp` | valid steps: `fresh-setup`, `idle`, `add-contact`, `send-sms`, `receive-sms`, `shell`, `launch`, `tap`, `wait-for`, `type`, `key`, `toggle`, `install`, `reboot`, `any`"
    );
}

#[test]
fn unknown_keys_at_top_level_and_in_steps() {
    assert_eq!(
        only("name: t\ndescriptoin: x\nsteps:\n  - idle: 1s\n"),
        "2:1: unknown key `descriptoin` | did you mean `description`?"
    );
    assert_eq!(
        only("name: t\nsteps:\n  - idle: 1s\nsend-sms: {}\n"),
        "4:1: unknown key `send-sms` | steps go in the `steps:` list: `steps:\\n  - send-sms: …`"
    );
    assert_eq!(
        only(&with_steps("  - add-contact: { name: a, phnoe: b }\n")),
        "6:29: unknown key `phnoe` in `add-contact` | did you mean `phone`?"
    );
    assert_eq!(
        only(&with_steps("  - idle: 1s\n    setle: 1s\n")),
        "7:5: unknown key `setle` | did you mean `settle`?"
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        only(&with_steps("  - idle: { seconds: 5 }\n")),
        "6:11: `idle` takes a duration like `5s`, got a mapping | use a number with a unit: 500ms, 5s or 2m \
         (sums like 1m30s work too)"
    );
    assert_eq!(
        only(&with_steps("  - add-contact: Wei\n")),
        "6:18: `add-contact` takes a mapping like `{ name: …, phone: … }`, got a string | \
         write `- add-contact: { name: …, phone: … }`"
    );
    assert_eq!(
        only(&with_steps("  - send-sms: { to: [a], body: b }\n")),
        "6:21: `send-sms` `to` takes a string, got a list | write e.g. `to: \"{contact_phone}\"`"
    );
    assert_eq!(
        only(&with_steps(
            "  - add-contact: { name: {contact_name}, phone: b }\n"
        )),
        "6:26: `add-contact` `name` takes a string, got a mapping (a value starting with `{` is read as a \
         mapping: put it in \"double quotes\") | write e.g. `name: \"{contact_name}\"`"
    );
    assert_eq!(
        only(&with_steps("  - fresh-setup: now\n")),
        "6:18: `fresh-setup` takes no value | write `- fresh-setup: {}` (or `{ settle: 5s }`)"
    );
    assert_eq!(
        only(&with_steps(
            "  - shell: { command: ls, expect_exit: 300 }\n"
        )),
        "6:40: `expect_exit` takes an exit code from 0 to 255, got `300` | write e.g. `expect_exit: 0`"
    );
    assert_eq!(
        only("name: t\nsteps: idle\n"),
        "2:8: `steps` takes a list of steps, got a string | write each step on its own line starting with \
         `- `, e.g. `steps:\\n  - idle: 5s`"
    );
    assert_eq!(
        only("- idle: 5s\n"),
        "1:1: a scenario is a mapping with `name`, `description`, `identifiers` and `steps`; got a list | \
         start the file with `name: my-scenario` and a `steps:` list"
    );
}

#[test]
fn bad_durations() {
    assert_eq!(
        only(&with_steps("  - idle: 5 sec\n")),
        "6:11: `idle`: bad duration `5 sec` | use a number with a unit: 500ms, 5s or 2m (sums like 1m30s \
         work too)"
    );
    assert_eq!(
        only(&with_steps("  - idle: 5\n")),
        "6:11: `idle`: `5` has no unit | did you mean `5s`? use a number with a unit: 500ms, 5s or 2m \
         (sums like 1m30s work too)"
    );
    assert_eq!(
        only(&with_steps("  - fresh-setup: {}\n    settle: forever\n")),
        "7:13: `settle`: bad duration `forever` | use a number with a unit: 500ms, 5s or 2m (sums like \
         1m30s work too)"
    );
    assert_eq!(
        only(&with_steps("  - idle: 48h\n")),
        "6:11: `idle`: `48h` is longer than 24h | use a shorter duration; idle on a real phone is minutes, \
         not days"
    );
    assert_eq!(
        only(&with_steps("  - idle: 5s\n    settle: 1s\n")),
        "7:13: `idle` has no `settle`: its whole duration is its window | remove `settle`, or lengthen the idle"
    );
}

#[test]
fn undefined_placeholders_point_at_the_brace() {
    assert_eq!(
        only(&with_steps(
            "  - add-contact: { name: \"{contact_nme}\", phone: \"{contact_phone}\" }\n"
        )),
        "6:27: `{contact_nme}` is not defined | defined: run_id, contact_name, contact_phone; did you mean \
         `{contact_name}`?"
    );
    assert_eq!(
        only(&with_steps("  - shell: echo {zzz}\n")),
        "6:17: `{zzz}` is not defined | defined: run_id, contact_name, contact_phone; define it under \
         `identifiers:`, or write `{{` for a literal brace"
    );
    assert_eq!(
        only("name: t\nidentifiers:\n  a: \"x {b}\"\n  b: yyyy\nsteps:\n  - idle: 1s\n"),
        "3:9: `{b}` cannot be used inside an identifier | an identifier may use only `{run_id}`; for a \
         literal brace write `{{`"
    );
    // Literal braces that are not placeholders need no escaping.
    parse(&with_steps(
        "  - shell: \"awk '{print $1}' /proc/net/tcp\"\n",
    ))
    .unwrap();
}

#[test]
fn missing_fields() {
    assert_eq!(
        only(&with_steps(
            "  - add-contact: { name: \"{contact_name}\" }\n"
        )),
        "6:18: `add-contact` is missing `phone` | add `phone: \"{contact_phone}\"`"
    );
    assert_eq!(
        problems(&with_steps("  - send-sms:\n")),
        [
            "6:5: `send-sms` is missing `to` | add `to: \"{contact_phone}\"`",
            "6:5: `send-sms` is missing `body` | add `body: \"{sms_body}\"`",
        ]
    );
    assert_eq!(
        only(&with_steps("  - idle:\n")),
        "6:5: `idle` needs a duration | write e.g. `- idle: 5s`"
    );
    assert_eq!(
        only("name: t\n"),
        "1:1: missing `steps` | add a `steps:` list, e.g. `steps:\\n  - fresh-setup: {}\\n  - idle: 5s`"
    );
}

#[test]
fn empty_steps_and_empty_file() {
    assert_eq!(
        only("name: t\nsteps: []\n"),
        "2:8: `steps` is empty | add at least one step, e.g. `- fresh-setup: {}`"
    );
    assert_eq!(
        only(""),
        "1:1: the file is empty | a scenario needs at least `name: my-scenario` and `steps:` with one step, \
         e.g. `- idle: 5s`"
    );
}

#[test]
fn yaml_syntax_errors_keep_the_parser_position() {
    let p = only("name: t\nsteps:\n  - idle: 5s\n - idle: 1s\n");
    assert!(p.starts_with("4:2: YAML syntax: "), "{p}");
    let p = only("name: t\nsteps:\n  - add-contact: { name: a, phone: b\n");
    assert!(p.starts_with("4:1: YAML syntax: "), "{p}");
}

#[test]
fn identifier_kinds_must_be_snake_case_and_run_id_is_reserved() {
    assert_eq!(
        only("name: t\nidentifiers:\n  Contact-Name: x\nsteps:\n  - idle: 1s\n"),
        "3:3: identifier kind `Contact-Name` is not snake_case | use lower-case letters, digits and `_`, \
         e.g. `contact_name`"
    );
    assert_eq!(
        only("name: t\nidentifiers:\n  run_id: x\nsteps:\n  - idle: 1s\n"),
        "3:3: `run_id` is reserved: tattle sets it to a value unique to each run | pick another kind name \
         and use `{run_id}` inside its value"
    );
    assert_eq!(
        only("name: t\nidentifiers:\n  sms_body: \"\"\nsteps:\n  - idle: 1s\n"),
        "3:13: identifier `sms_body` is empty | write e.g. `sms_body: \"tattle {run_id}\"`"
    );
}

#[test]
fn canaries_must_be_distinctive() {
    assert_eq!(
        only("name: t\nidentifiers:\n  sms_body: hi\nsteps:\n  - idle: 1s\n"),
        "3:13: identifier `sms_body` is too short to be found reliably in traffic | use at least 4 \
         characters, or add `{run_id}` to it"
    );
    parse("name: t\nidentifiers:\n  sms_body: \"{run_id}\"\nsteps:\n  - idle: 1s\n").unwrap();
}

#[test]
fn structure_errors() {
    assert_eq!(
        only("name: t\nname: u\nsteps:\n  - idle: 1s\n"),
        "2:1: duplicate key `name` (scenario) | it is already set on line 1; keep one of them"
    );
    assert_eq!(
        only(&with_steps("  - idle: 1s\n    shell: ls\n")),
        "7:5: one step per list item: `idle` and `shell` share one | start a new item for it: `- shell: …` \
         on its own line"
    );
    assert_eq!(
        only(&with_steps("  - settle: 1s\n")),
        "6:5: this list item has no step | valid steps: fresh-setup, idle, add-contact, send-sms, receive-sms, shell, launch, tap, wait-for, type, key, toggle, install, reboot, any"
    );
    assert_eq!(
        only(&with_steps(
            "  - add-contact: { name: a, phone: b, settle: 1s }\n    settle: 2s\n"
        )),
        "6:47: `settle` is given twice for this step | keep one of them"
    );
    assert_eq!(
        only("name: Send SMS!\nsteps:\n  - idle: 1s\n"),
        "1:7: scenario name `Send SMS!` is not usable in snapshot file names | use lower-case letters, \
         digits, `-`, `_` or `.` (at most 64), e.g. `name: send-sms`"
    );
}

#[test]
fn several_errors_are_all_reported_in_file_order() {
    let text = with_steps(
        "  - idel: 5s\n  - idle: 5 sec\n  - add-contact: { name: \"{contact_nme}\" }\n  - send-sms: {}\n",
    );
    let p = problems(&text);
    let positions: Vec<&str> = p
        .iter()
        .map(|s| s.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        positions,
        ["6:5", "7:11", "8:18", "8:27", "9:15", "9:15"],
        "{p:#?}"
    );
    let shown = parse(&text).unwrap_err().to_string();
    assert!(
        shown.starts_with("t.yaml:6:5: error: unknown step `idel`\n  help: did you mean `idle`?\n"),
        "{shown}"
    );
    assert!(
        shown.ends_with("error: 6 problems in this scenario"),
        "{shown}"
    );
}

#[test]
fn error_display_shows_the_source_line_and_caret() {
    let text = SEND_SMS.replace("- send-sms:", "- send-smss:");
    let shown = parse(&text).unwrap_err().to_string();
    let line = text.lines().position(|l| l.contains("send-smss")).unwrap() + 1;
    let expected = format!(
        "t.yaml:{line}:5: error: unknown step `send-smss`\n  help: did you mean `send-sms`?\n    |\n \
         {line} |   - send-smss: {{ to: \"{{contact_phone}}\", body: \"{{sms_body}}\" }}\n    |     ^^^^^^^^^"
    );
    assert_eq!(shown, expected);
}

#[test]
fn problems_beyond_the_limit_are_counted() {
    let steps: String = (0..30).map(|_| "  - nope: {}\n").collect();
    let err = parse(&with_steps(&steps)).unwrap_err();
    assert_eq!(err.diagnostics().len(), error::MAX_DIAGNOSTICS);
    let shown = err.to_string();
    assert!(shown.contains("... and 10 more problems"), "{shown}");
    assert!(shown.ends_with("error: 30 problems in this scenario"));
}

#[test]
fn hostile_input_is_rejected_without_panicking() {
    let huge = format!(
        "name: t\ndescription: \"{}\"\nsteps:\n  - idle: 1s\n",
        "x".repeat(MAX_FILE_BYTES)
    );
    assert!(only(&huge).starts_with("1:1: the file is"));
    let deep = format!("name: t\nsteps:\n  - shell: {}\n", "[".repeat(10_000));
    assert!(parse(&deep).is_err());
    for garbage in [
        "\u{0}",
        "{{{{",
        ":",
        "- - -",
        "steps: !!binary AAAA",
        "steps:\n  - !!str idle: 5s",
    ] {
        let _ = parse(garbage);
    }
    let many: String = "name: t\nsteps:\n".to_string() + &"  - idle: 1ms\n".repeat(MAX_STEPS + 1);
    assert!(only(&many).contains(&format!("more than {MAX_STEPS} steps")));
}

#[test]
fn builtins_are_the_shipped_files_and_all_valid() {
    assert_eq!(builtin_names(), ["fresh-setup", "add-contact", "send-sms"]);
    for name in builtin_names() {
        let (file, yaml) = builtin(name).unwrap();
        assert_eq!(file, format!("{name}.yaml"));
        let s = Scenario::parse(yaml, Path::new(file)).unwrap();
        assert_eq!(&s.name, name);
        // Shipped idles stay short; users lengthen them for real phones.
        for step in &s.steps {
            if let StepAction::Idle(d) = step.action {
                assert!(d <= Duration::from_secs(5), "{name}: {d:?}");
            }
        }
    }
    assert!(builtin("nope").is_none());
    let s = Scenario::resolve("send-sms").unwrap();
    assert_eq!(s.path, Path::new("<builtin>/send-sms.yaml"));
    let e = Scenario::resolve("send-smss").unwrap_err().to_string();
    assert!(e.contains("did you mean the built-in `send-sms`?"), "{e}");
}

#[test]
fn mutated_scenarios_never_panic_and_always_point_inside_the_file() {
    // Deterministic fuzzing: random single-character edits of a valid scenario, in YAML-significant
    // characters, must give either a scenario or positioned errors.
    let base: Vec<char> = SEND_SMS.chars().collect();
    let alphabet: Vec<char> = "-:{}[],'\"\n #&*!|>?%@`{}_sm5\té".chars().collect();
    let mut x: u64 = 0x5eed;
    let mut next = |n: usize| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) as usize) % n.max(1)
    };
    for _ in 0..3000 {
        let mut text = base.clone();
        for _ in 0..1 + next(3) {
            let at = next(text.len());
            match next(3) {
                0 => {
                    text.remove(at);
                }
                1 => text.insert(at, alphabet[next(alphabet.len())]),
                _ => text[at] = alphabet[next(alphabet.len())],
            }
        }
        let text: String = text.into_iter().collect();
        let lines = text.lines().count() + 1;
        if let Err(e) = parse(&text) {
            assert!(!e.diagnostics().is_empty(), "{text}");
            for d in e.diagnostics() {
                assert!(
                    d.line >= 1 && d.line <= lines && d.column >= 1,
                    "{d:?}\n{text}"
                );
            }
            let _ = e.to_string();
        }
    }
}

// Found by fuzzing (fuzz/regressions/scenario/).

#[test]
fn control_characters_from_escapes_never_reach_a_message() {
    let err = parse("steps: [\"\\e[31m\"]\n").unwrap_err();
    let shown = err.to_string();
    assert!(
        !shown.chars().any(|c| c.is_control() && c != '\n'),
        "{shown:?}"
    );
    assert!(shown.contains("unknown step `?[31m`"), "{shown}");
}

#[test]
fn a_lone_carriage_return_ends_a_line_in_diagnostics_too() {
    let err = parse("name: t\rsteps:\r  - idle: 5\r").unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!((d.line, d.column), (3, 11), "{d:?}");
    assert_eq!(d.source_line.as_deref(), Some("  - idle: 5"));
    // The same file with LF or CRLF says the same.
    for text in [
        "name: t\nsteps:\n  - idle: 5\n",
        "name: t\r\nsteps:\r\n  - idle: 5\r\n",
    ] {
        assert_eq!(parse(text).unwrap_err().diagnostics(), err.diagnostics());
    }
}

#[test]
fn columns_stay_within_their_line() {
    // saphyr-parser 0.3.4 counts a directive name's bytes, not its characters, into the column.
    for text in ["%\u{fffd}\0", "%ééé\0"] {
        let err = parse(text).unwrap_err();
        for d in err.diagnostics() {
            let len = text
                .lines()
                .nth(d.line - 1)
                .map_or(0, |l| l.chars().count());
            assert!(d.column <= len + 1, "{text:?}: {d:?}");
        }
    }
}

#[test]
fn capture_key_names_a_source_resolved_from_the_scenario_folder() {
    let s = Scenario::parse(
        "name: ap\ncapture: file:captures/ap.pcapng\nsteps:\n  - idle: 1s\n",
        Path::new("lab/ap.yaml"),
    )
    .unwrap();
    assert_eq!(
        s.capture,
        Some(CaptureSource::File("captures/ap.pcapng".into()))
    );
    assert_eq!(
        s.capture_source(),
        Some(CaptureSource::File("lab/captures/ap.pcapng".into()))
    );
    let (expanded, _) = s.expand("r");
    assert_eq!(expanded.capture, s.capture);
    let s = parse("capture: file:-\nsteps:\n  - idle: 1s\n").unwrap();
    assert_eq!(s.capture_source(), Some(CaptureSource::Stdin));
    let s = parse("capture: device\nsteps:\n  - idle: 1s\n").unwrap();
    assert_eq!(s.capture_source(), Some(CaptureSource::Device));
    assert_eq!(parse(SEND_SMS).unwrap().capture_source(), None);
}

#[test]
fn bad_capture_values_point_at_the_value_with_the_valid_forms() {
    let p = only("name: t\ncapture: \"iface:a b\"\nsteps:\n  - idle: 1s\n");
    assert!(
        p.starts_with(
            "2:10: `capture`: `iface:` needs the name of one of the host's network interfaces"
        ),
        "{p}"
    );
    assert!(p.contains("| valid sources: `device`"), "{p}");
    let p = only("name: t\nsteps:\n  - idle: 1s\ncapture:   \"devise\"\n");
    assert!(
        p.starts_with("4:12: `capture`: unknown capture source `devise` | did you mean `device`?"),
        "{p}"
    );
    // Quoted: YAML reads a plain value ending with `:` as a key.
    let p = only("capture: \"file:\"\nsteps:\n  - idle: 1s\n");
    assert!(
        p.starts_with("1:10: `capture`: `file:` needs a path"),
        "{p}"
    );
    let p = only("capture: [device]\nsteps:\n  - idle: 1s\n");
    assert!(p.starts_with("1:10: `capture` takes a string"), "{p}");
    // Reported with every other problem, before any device is touched.
    assert_eq!(
        problems("capture: wireshark\nsteps:\n  - idel: 1s\n").len(),
        2
    );
    // A misspelt key is suggested.
    let p = only("captur: device\nsteps:\n  - idle: 1s\n");
    assert!(p.contains("`capture`"), "{p}");
}

#[test]
fn keylog_key_takes_one_source_or_a_list_resolved_from_the_scenario_folder() {
    use crate::capture::keylog::KeylogSource;
    let s = Scenario::parse(
        "name: tls\nkeylog: keys/ssl.log\nsteps:\n  - idle: 1s\n",
        Path::new("lab/tls.yaml"),
    )
    .unwrap();
    assert_eq!(
        s.keylog_sources(),
        vec![KeylogSource::Host("lab/keys/ssl.log".into())]
    );
    let s = parse(
        "keylog:\n  - device:/data/local/tmp/sslkeys.log\n  - /tmp/proxy.keys\nsteps:\n  - idle: 1s\n",
    )
    .unwrap();
    assert_eq!(
        s.keylog_sources(),
        vec![
            KeylogSource::Device("/data/local/tmp/sslkeys.log".into()),
            KeylogSource::Host("/tmp/proxy.keys".into())
        ]
    );
    let (expanded, _) = s.expand("r");
    assert_eq!(expanded.keylogs, s.keylogs);
    assert!(parse(SEND_SMS).unwrap().keylog_sources().is_empty());
    let p = only("keylog: device:sslkeys.log\nsteps:\n  - idle: 1s\n");
    assert!(
        p.starts_with("1:9: `keylog`: `device:sslkeys.log`: a key log on the phone is named by its absolute path"),
        "{p}"
    );
    assert!(p.contains("device:/data/local/tmp/sslkeys.log"), "{p}");
    let p = only("keylog:\n  - {a: b}\nsteps:\n  - idle: 1s\n");
    assert!(p.starts_with("2:5: `keylog` takes a string"), "{p}");
    let p = only("keylogs: x\nsteps:\n  - idle: 1s\n");
    assert!(p.contains("`keylog`"), "{p}");
}

#[test]
fn policy_key_names_a_file_from_the_scenario_folder() {
    let s = Scenario::parse(
        "name: ci\npolicy: ci-policy.yaml\nsteps:\n  - idle: 1s\n",
        Path::new("lab/ci.yaml"),
    )
    .unwrap();
    assert_eq!(s.policy_path(), Some(PathBuf::from("lab/ci-policy.yaml")));
    let (expanded, _) = s.expand("r");
    assert_eq!(expanded.policy, s.policy);
    assert_eq!(parse(SEND_SMS).unwrap().policy_path(), None);
    let p = only("policy: [a, b]\nsteps:\n  - idle: 1s\n");
    assert!(p.starts_with("1:9: `policy` takes a string"), "{p}");
    let p = only("polcy: p.yaml\nsteps:\n  - idle: 1s\n");
    assert!(p.contains("`policy`"), "{p}");
}
