//! The shipped scenario files: each one loads from disk, equals its embedded built-in copy, and a
//! typo in a copy on disk is reported with the file's name, line, column and the fix.

use std::path::{Path, PathBuf};

use tattle::scenario::{self, Scenario, ScenarioError, StepAction};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

#[test]
fn every_shipped_file_parses_and_matches_its_builtin_copy() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let loaded = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            loaded.name, stem,
            "a shipped scenario is named after its file"
        );
        assert!(!loaded.steps.is_empty());
        let (file, yaml) = scenario::builtin(&stem)
            .unwrap_or_else(|| panic!("{} is not embedded as a built-in", path.display()));
        assert_eq!(file, path.file_name().unwrap().to_str().unwrap());
        assert_eq!(
            yaml,
            std::fs::read_to_string(&path).unwrap(),
            "built-in copy of {stem} differs"
        );
        seen.push(stem);
    }
    seen.sort();
    let mut names: Vec<String> = scenario::builtin_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.sort();
    assert_eq!(
        seen, names,
        "every built-in has a file and every file is built in"
    );
}

#[test]
fn the_story_scenario_plants_unique_canaries() {
    let s = Scenario::resolve("send-sms").unwrap();
    let (a, canaries_a) = s.expand("run-a");
    let (_, canaries_b) = s.expand("run-b");
    let kinds: Vec<&str> = canaries_a.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["contact_name", "contact_phone", "sms_body"]);
    assert_ne!(canaries_a[2], canaries_b[2], "the SMS body differs per run");
    let StepAction::SendSms { to, body, .. } = &a.steps[3].action else {
        panic!("step 4 is send-sms: {:?}", a.steps[3]);
    };
    assert_eq!(to, &canaries_a[1].value);
    assert_eq!(body, &canaries_a[2].value);
}

#[test]
fn a_typo_in_a_copy_on_disk_names_file_line_column_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("send-sms.yaml");
    let original = std::fs::read_to_string(scenarios_dir().join("send-sms.yaml")).unwrap();
    let typo = original.replace("- send-sms:", "- send-smss:");
    std::fs::write(&path, &typo).unwrap();
    let line = typo.lines().position(|l| l.contains("send-smss")).unwrap() + 1;
    let col = typo
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("send-smss")
        .unwrap()
        + 1;

    let err = Scenario::load(&path).unwrap_err();
    let shown = err.to_string();
    let head = format!(
        "send-sms.yaml:{line}:{col}: error: unknown step `send-smss`\n  help: did you mean `send-sms`?"
    );
    assert!(shown.contains(&head), "{shown}");
    assert!(shown.starts_with(&path.display().to_string()), "{shown}");
    assert_eq!(err.diagnostics().len(), 1);
    assert!(
        shown.ends_with(&format!("{}^^^^^^^^^", " ".repeat(col))),
        "{shown}"
    );
}

#[test]
fn unreadable_and_non_text_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = Scenario::load(&missing).unwrap_err();
    assert!(matches!(err, ScenarioError::Read { .. }));
    assert!(
        err.to_string()
            .contains("nope.yaml: error: cannot read the scenario"),
        "{err}"
    );
    assert!(
        err.to_string().contains("send-sms"),
        "help lists the built-ins: {err}"
    );

    let binary = dir.path().join("bin.yaml");
    std::fs::write(&binary, b"name: t\nsteps:\n  - idle: \xff\xfe\n").unwrap();
    let err = Scenario::load(&binary).unwrap_err().to_string();
    assert!(
        err.contains("bin.yaml:3:11: error: the file is not UTF-8 text"),
        "{err}"
    );

    let big = dir.path().join("big.yaml");
    std::fs::write(&big, vec![b'#'; scenario::MAX_FILE_BYTES + 10]).unwrap();
    let err = Scenario::load(&big).unwrap_err().to_string();
    assert!(err.contains("big.yaml:1:1: error: the file is"), "{err}");

    let err = Scenario::resolve("sendsms").unwrap_err().to_string();
    assert!(
        err.contains("did you mean the built-in `send-sms`?"),
        "{err}"
    );
}
