//! Each kind of change, and the sentence it reads as.

use std::path::PathBuf;

use super::model::ChangeKind;
use super::*;
use crate::outcome::{HostContact, Leak, Outcome, OutcomeDevice, StepOutcome};

fn leak(id: &str, protocol: &str, tls: Option<&str>, location: &str, encoding: &str) -> Leak {
    Leak {
        identifier: id.into(),
        host: "api.account.example".into(),
        protocol: protocol.into(),
        location: location.into(),
        encoding: encoding.into(),
        tls: tls.map(str::to_string),
    }
}

fn host(name: &str, protocols: &[&str]) -> HostContact {
    HostContact {
        host: name.into(),
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
    }
}

fn step(label: &str, hosts: Vec<HostContact>, leaks: Vec<Leak>) -> StepOutcome {
    StepOutcome {
        step: label.into(),
        hosts,
        leaks,
        size_correlations: vec![],
    }
}

fn outcome(scenario: &str, firmware: &str, steps: Vec<StepOutcome>) -> Outcome {
    Outcome {
        scenario: scenario.into(),
        firmware: firmware.into(),
        device: OutcomeDevice {
            manufacturer: "Acme".into(),
            model: "One".into(),
            android: "13".into(),
        },
        steps,
    }
}

fn single(o: Outcome) -> OutcomeSet {
    let path = PathBuf::from(format!("{}@{}.snap", o.scenario, o.firmware));
    OutcomeSet {
        path: path.clone(),
        outcomes: vec![(path, o)],
        single: true,
    }
}

/// The sentences of A → B, and the kinds of the changes.
fn changes(a: Outcome, b: Outcome) -> (Vec<ChangeKind>, Vec<String>) {
    let doc = compare(&single(a), &single(b));
    let kinds = doc.scenarios[0].changes.iter().map(|c| c.kind).collect();
    (kinds, doc.sentences)
}

fn sms(steps_leaks: Vec<Leak>) -> Outcome {
    outcome(
        "send-sms",
        "fw-a",
        vec![
            step(
                "1 fresh-setup",
                vec![host("setup.example", &["dns", "tls"])],
                vec![],
            ),
            step(
                "2 send-sms",
                vec![host("api.account.example", &["dns", "http"])],
                steps_leaks,
            ),
        ],
    )
}

#[test]
fn removed_and_added_leaks() {
    let plain = leak("<imei>", "http", None, "http.body", "plain");
    let (kinds, sentences) = changes(sms(vec![plain.clone()]), sms(vec![]));
    assert_eq!(kinds, vec![ChangeKind::LeakRemoved]);
    assert_eq!(
        sentences,
        vec![
            "Build B no longer sends <imei> (plain, in the clear over HTTP) to api.account.example when an SMS is sent."
        ]
    );
    let md5 = leak("<phone_number>", "http", None, "http.url", "md5");
    let (kinds, sentences) = changes(sms(vec![plain.clone()]), sms(vec![plain, md5]));
    assert_eq!(kinds, vec![ChangeKind::LeakAdded]);
    assert_eq!(
        sentences,
        vec![
            "Build B sends <phone_number> (md5, in the clear over HTTP) to api.account.example when an SMS is sent; build A did not."
        ]
    );
}

#[test]
fn encoding_change() {
    let a = sms(vec![leak("<imei>", "http", None, "http.body", "plain")]);
    let b = sms(vec![leak("<imei>", "http", None, "http.body", "md5")]);
    let (kinds, sentences) = changes(a, b);
    assert_eq!(kinds, vec![ChangeKind::EncodingChanged]);
    assert_eq!(
        sentences,
        vec![
            "Build B sends <imei> to api.account.example as md5 instead of plain when an SMS is sent."
        ]
    );
}

#[test]
fn transport_change_plain_to_inside_tls() {
    let a = sms(vec![leak("<imei>", "http", None, "http.body", "plain")]);
    let b = sms(vec![leak(
        "<imei>",
        "http",
        Some("TLS 1.3"),
        "http.body",
        "plain",
    )]);
    let (kinds, sentences) = changes(a.clone(), b);
    assert_eq!(kinds, vec![ChangeKind::TransportChanged]);
    assert_eq!(
        sentences,
        vec![
            "Build B sends <imei> to api.account.example inside TLS 1.3 instead of in the clear over HTTP when an SMS is sent."
        ]
    );
    // A change of protocol is a change of transport too; with the encoding changed as well, both
    // are said.
    let b = sms(vec![leak("<imei>", "tls", None, "tls.sni", "md5")]);
    let (kinds, sentences) = changes(a, b);
    assert_eq!(
        kinds,
        vec![
            ChangeKind::EncodingChanged,
            ChangeKind::TransportChanged,
            ChangeKind::LocationChanged
        ]
    );
    assert_eq!(
        sentences[1],
        "Build B sends <imei> to api.account.example in the TLS handshake instead of in the clear over HTTP when an SMS is sent."
    );
    assert_eq!(
        sentences[2],
        "Build B sends <imei> to api.account.example in tls.sni instead of http.body when an SMS is sent."
    );
}

#[test]
fn same_parts_combined_differently() {
    let a = sms(vec![
        leak("<imei>", "http", None, "http.body", "plain"),
        leak("<imei>", "http", None, "http.url", "md5"),
    ]);
    let b = sms(vec![
        leak("<imei>", "http", None, "http.body", "md5"),
        leak("<imei>", "http", None, "http.url", "plain"),
    ]);
    let (kinds, sentences) = changes(a, b);
    assert_eq!(kinds, vec![ChangeKind::LocationChanged]);
    assert_eq!(
        sentences,
        vec![
            "Build B sends <imei> to api.account.example as md5 in http.body and plain in http.url, in the clear over HTTP instead of plain in http.body and md5 in http.url, in the clear over HTTP when an SMS is sent."
        ]
    );
}

#[test]
fn hosts_added_removed_and_over_other_protocols() {
    let a = outcome(
        "fresh-setup",
        "fw-a",
        vec![step(
            "1 fresh-setup",
            vec![
                host("old.example", &["dns", "tls"]),
                host("check.example", &["dns", "http"]),
            ],
            vec![],
        )],
    );
    let b = outcome(
        "fresh-setup",
        "fw-b",
        vec![step(
            "1 fresh-setup",
            vec![
                host("new.example", &["dns", "tls"]),
                host("check.example", &["dns", "tls"]),
            ],
            vec![],
        )],
    );
    let (kinds, sentences) = changes(a, b);
    assert_eq!(
        kinds,
        vec![
            ChangeKind::HostTransportChanged,
            ChangeKind::HostAdded,
            ChangeKind::HostRemoved
        ]
    );
    assert_eq!(
        sentences,
        vec![
            "Build B reaches check.example over dns and tls instead of dns and http during setup.",
            "Build B contacts new.example (dns and tls) during setup; build A did not.",
            "Build B no longer contacts old.example (dns and tls) during setup.",
        ]
    );
}

#[test]
fn steps_added_and_removed_are_matched_by_name_not_number() {
    let leaks = vec![leak("<imei>", "http", None, "http.body", "plain")];
    let a = outcome(
        "s",
        "fw-a",
        vec![
            step("1 idle", vec![], vec![]),
            step("2 send-sms", vec![], leaks.clone()),
            step("3 idle", vec![], vec![]),
        ],
    );
    // B adds a reboot before sending (renumbering every later step) and drops the last idle.
    let b = outcome(
        "s",
        "fw-b",
        vec![
            step("1 idle", vec![], vec![]),
            step("2 reboot", vec![host("r.example", &["dns"])], vec![]),
            step("3 send-sms", vec![], leaks),
        ],
    );
    let (kinds, sentences) = changes(a, b);
    assert_eq!(
        kinds,
        vec![
            ChangeKind::StepAdded,
            ChangeKind::HostAdded,
            ChangeKind::StepRemoved
        ]
    );
    assert_eq!(
        sentences,
        vec![
            "Build B's run has a step build A's has not: `2 reboot` (around a reboot).",
            "Build B contacts r.example (dns) around a reboot; build A did not.",
            "Build B's run no longer has the step `3 idle` (while the phone sits idle (step `3 idle`)) that build A's had.",
        ]
    );
}

#[test]
fn steps_without_plainer_words_are_named_by_label() {
    let a = outcome("s", "fw-a", vec![]);
    let b = outcome(
        "s",
        "fw-b",
        vec![step(
            "1 tap",
            vec![],
            vec![leak("<android_id>", "dns", None, "dns.qname", "plain")],
        )],
    );
    let (_, sentences) = changes(a, b);
    assert_eq!(
        sentences,
        vec![
            "Build B's run has a step build A's has not: `1 tap`.",
            "Build B sends <android_id> (plain, in the clear over DNS) to api.account.example in step `1 tap`; build A did not.",
        ]
    );
}

#[test]
fn sets_pair_scenarios_and_say_which_only_one_side_has() {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let write = |folder: &Path, o: &Outcome| {
        std::fs::create_dir_all(folder).unwrap();
        std::fs::write(
            crate::snapshot::path_for(folder, o),
            crate::snapshot::render_file(o),
        )
        .unwrap();
    };
    let plain = leak("<imei>", "http", None, "http.body", "plain");
    write(&a_dir, &sms(vec![plain.clone()]));
    write(&a_dir, &outcome("add-contact", "fw-a", vec![]));
    // B's send-sms is a run directory inside B's folder.
    let mut b_sms = sms(vec![]);
    b_sms.firmware = "fw-b".into();
    let run = b_dir.join("send-sms@fw-b-20261130T000000Z-0");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join(crate::snapshot::RUN_DIR_FILE),
        crate::snapshot::render_file(&b_sms),
    )
    .unwrap();
    write(&b_dir, &outcome("receive", "fw-b", vec![]));
    let doc = compare(
        &OutcomeSet::load(&a_dir).unwrap(),
        &OutcomeSet::load(&b_dir).unwrap(),
    );
    let names: Vec<&str> = doc.scenarios.iter().map(|s| s.scenario.as_str()).collect();
    assert_eq!(names, vec!["add-contact", "receive", "send-sms"]);
    assert_eq!(doc.b.firmwares, vec!["fw-b".to_string()]);
    assert!(!doc.same);
    let a_file = crate::snapshot::path_for(&a_dir, &outcome("add-contact", "fw-a", vec![]));
    assert_eq!(
        doc.sentences,
        vec![
            format!(
                "Build B has no outcome of the add-contact scenario to compare with build A's ({}).",
                a_file.display()
            ),
            format!(
                "Build A has no outcome of the receive scenario to compare with build B's ({}).",
                b_dir.join("receive@fw-b.snap").display()
            ),
            "Build B no longer sends <imei> (plain, in the clear over HTTP) to api.account.example when an SMS is sent in the send-sms scenario.".to_string(),
        ]
    );
    let md = render::markdown(&doc);
    assert!(
        md.contains("- Build B no longer sends `<imei>` (plain, in the clear over HTTP) to `api.account.example` when an SMS is sent in the `send-sms` scenario."),
        "{md}"
    );
    // Two outcomes of one scenario in a folder: not one build's set.
    write(&a_dir, &outcome("add-contact", "fw-a2", vec![]));
    assert!(matches!(
        OutcomeSet::load(&a_dir),
        Err(DiffError::Ambiguous { count: 2, .. })
    ));
    assert!(matches!(
        OutcomeSet::load(&dir.path().join("empty-none")),
        Err(DiffError::Snapshot(_))
    ));
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    assert!(matches!(
        OutcomeSet::load(&dir.path().join("empty")),
        Err(DiffError::Empty { .. })
    ));
}

#[test]
fn same_outcomes_say_nothing() {
    let o = sms(vec![leak("<imei>", "http", None, "http.body", "plain")]);
    let doc = compare(&single(o.clone()), &single(o));
    assert!(doc.same);
    assert!(doc.sentences.is_empty());
    assert!(render::text(&doc).contains("no difference"));
}

#[test]
fn old_snapshots_without_tls_parse_and_new_ones_keep_it() {
    let old = "scenario: s\nfirmware: f\ndevice:\n  manufacturer: A\n  model: B\n  android: \"13\"\nsteps:\n- step: 1 idle\n  hosts: []\n  leaks:\n  - identifier: <imei>\n    host: h\n    protocol: http\n    location: http.body\n    encoding: plain\n";
    let o: Outcome = serde_saphyr::from_str(old).unwrap();
    assert_eq!(o.steps[0].leaks[0].tls, None);
    assert_eq!(crate::snapshot::render(&o), old);
    let mut with = o.clone();
    with.steps[0].leaks[0].tls = Some("TLS 1.2".into());
    let text = crate::snapshot::render(&with);
    assert!(text.contains("tls: TLS 1.2"), "{text}");
    let back: Outcome = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(back, with);
}

/// The names documented as `` `name` `` at the start of a table row of docs/diff-json.md's section
/// `heading`.
fn documented(heading: &str) -> std::collections::BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/diff-json.md");
    let text = std::fs::read_to_string(path).unwrap();
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("no section `{heading}`"));
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn json_has_the_documented_fields_and_kinds() {
    let keys = |v: &serde_json::Value| -> std::collections::BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    let a = sms(vec![leak("<imei>", "http", None, "http.body", "plain")]);
    let b = sms(vec![leak(
        "<imei>",
        "http",
        Some("TLS 1.3"),
        "http.body",
        "plain",
    )]);
    let v = serde_json::to_value(compare(&single(a), &single(b))).unwrap();
    assert_eq!(keys(&v), documented("Fields"));
    assert_eq!(keys(&v["scenarios"][0]), documented("Each scenario"));
    let change = &v["scenarios"][0]["changes"][0];
    assert_eq!(keys(change), documented("Each change"));
    assert_eq!(change["kind"], "transport_changed");
    assert_eq!(change["carried_in_b"][0]["tls"], "TLS 1.3");
    // Every kind has its row in the table of sentences.
    let kinds = documented("What counts as a change");
    for kind in [
        ChangeKind::LeakAdded,
        ChangeKind::LeakRemoved,
        ChangeKind::EncodingChanged,
        ChangeKind::TransportChanged,
        ChangeKind::LocationChanged,
        ChangeKind::HostAdded,
        ChangeKind::HostRemoved,
        ChangeKind::HostTransportChanged,
        ChangeKind::StepAdded,
        ChangeKind::StepRemoved,
        ChangeKind::SizeCorrelationAdded,
        ChangeKind::SizeCorrelationRemoved,
        ChangeKind::SizeCorrelationChanged,
        ChangeKind::ScenarioOnlyInA,
        ChangeKind::ScenarioOnlyInB,
    ] {
        let name = serde_json::to_value(kind).unwrap();
        assert!(
            kinds.contains(name.as_str().unwrap()),
            "{name} undocumented"
        );
    }
}

fn correlated(mut o: Outcome, slopes: &[(&str, &str)]) -> Outcome {
    o.steps[1].size_correlations = slopes
        .iter()
        .map(|(id, slope)| crate::outcome::SizeCorrelation {
            identifier: id.to_string(),
            host: "sms.difflab.net".into(),
            slope: slope.to_string(),
        })
        .collect();
    o
}

/// A series' `differential.json` as one side.
fn series(o: Outcome, dir: &Path) -> OutcomeSet {
    let file = dir.join(crate::runner::DIFFERENTIAL_FILE);
    std::fs::write(
        &file,
        serde_json::to_vec(&serde_json::json!({"format_version": 1, "outcome": o})).unwrap(),
    )
    .unwrap();
    OutcomeSet::load(dir).unwrap()
}

#[test]
fn size_correlations_that_appear_disappear_or_change_between_series() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = correlated(sms(vec![]), &[("<sms_body>", "plain"), ("<imei>", "plain")]);
    let b = correlated(
        sms(vec![]),
        &[("<imei>", "compressed"), ("<contact_name>", "base64")],
    );
    let doc = compare(&series(a.clone(), da.path()), &series(b.clone(), db.path()));
    let kinds: Vec<ChangeKind> = doc.scenarios[0].changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::SizeCorrelationAdded,
            ChangeKind::SizeCorrelationChanged,
            ChangeKind::SizeCorrelationRemoved
        ]
    );
    assert_eq!(
        doc.sentences,
        [
            "Build B's TLS traffic to sms.difflab.net grows with <contact_name> (base64) when an SMS is sent; build A's did not.",
            "Build B's TLS traffic to sms.difflab.net grows with <imei> as compressed instead of plain when an SMS is sent.",
            "Build B's TLS traffic to sms.difflab.net no longer grows with <sms_body> (plain in build A) when an SMS is sent.",
        ]
    );
    assert!(!doc.same);
    let text = render::text(&doc);
    assert!(text.contains("  + Build B's TLS traffic"), "{text}");
    assert!(text.contains("  - Build B's TLS traffic"), "{text}");
    // The same series on both sides: nothing changed.
    let same = compare(&series(a.clone(), da.path()), &series(a.clone(), db.path()));
    assert!(same.same, "{:?}", same.sentences);
    // A single run never measured sizes: its having none is no change.
    let doc = compare(&series(a, da.path()), &single(b));
    assert!(doc.same, "{:?}", doc.sentences);
    // A directory that is no series says so, naming the file.
    std::fs::write(db.path().join(crate::runner::DIFFERENTIAL_FILE), "{}").unwrap();
    let e = OutcomeSet::load(db.path()).unwrap_err().to_string();
    assert!(
        e.contains("differential.json: not a differential series"),
        "{e}"
    );
}

#[test]
fn text_from_a_hostile_snapshot_cannot_reach_the_terminal() {
    let mut evil = leak("<imei>", "http", None, "http.body", "plain");
    evil.host = "evil.example\u{1b}]0;owned\u{7}\n+ Build B sends nothing".into();
    let doc = compare(&single(sms(vec![])), &single(sms(vec![evil])));
    for out in [render::text(&doc), render::markdown(&doc)] {
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
        assert!(
            !out.lines()
                .any(|l| l.starts_with("+ Build B sends nothing")),
            "{out}"
        );
    }
}
