use std::path::Path;

use super::*;

fn finding(
    step: &str,
    kind: &str,
    host: &str,
    protocol: &str,
    encoding: &str,
    frame: u64,
) -> EvidenceItem {
    EvidenceItem {
        step: step.into(),
        identifier: format!("<{kind}>"),
        encoding: encoding.into(),
        host: host.into(),
        protocol: protocol.into(),
        location: "http.body".into(),
        frame,
        tls: None,
        at: 1.0,
    }
}

fn contact(step: &str, host: &str, protocol: &str, frame: u64) -> ContactItem {
    ContactItem {
        step: step.into(),
        host: host.into(),
        protocol: protocol.into(),
        frame,
    }
}

fn policy(text: &str) -> Policy {
    Policy::parse(text, Path::new("policy.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(text: &str) -> String {
    Policy::parse(text, Path::new("policy.yaml"))
        .expect_err("expected the policy to be rejected")
        .to_string()
}

/// The facts of the demo's `send-sms` on the cloud-by-default build.
fn facts() -> (Vec<EvidenceItem>, Vec<ContactItem>) {
    (
        vec![
            finding(
                "4 send-sms",
                "imei",
                "msg.kestrelcloud.net",
                "http",
                "plain",
                71,
            ),
            finding(
                "4 send-sms",
                "phone_number",
                "msg.kestrelcloud.net",
                "http",
                "md5",
                73,
            ),
        ],
        vec![
            contact("1 fresh-setup", "activate.kestrelcloud.net", "dns", 3),
            contact("1 fresh-setup", "activate.kestrelcloud.net", "tls", 5),
            contact("1 fresh-setup", "time.android.com", "ntp", 9),
            contact("4 send-sms", "msg.kestrelcloud.net", "dns", 60),
            contact("4 send-sms", "msg.kestrelcloud.net", "http", 64),
        ],
    )
}

#[test]
fn a_denied_identifier_to_a_host_glob_is_a_violation_with_step_host_and_frame() {
    let p = policy(
        "rules:\n  - name: no-imei-to-vendor\n    deny: { identifier: imei, to: '*.kestrelcloud.net' }\n",
    );
    let (findings, contacts) = facts();
    let v = p.evaluate(&findings, &contacts);
    assert!(!v.passed);
    assert_eq!(v.violations.len(), 1, "{v:?}");
    let hit = &v.violations[0];
    assert_eq!(
        (
            hit.rule.as_str(),
            hit.rule_line,
            hit.step.as_str(),
            hit.host.as_str(),
            hit.frame
        ),
        (
            "no-imei-to-vendor",
            2,
            "4 send-sms",
            "msg.kestrelcloud.net",
            71
        )
    );
    assert_eq!(hit.identifier.as_deref(), Some("<imei>"));
    let text = v.render();
    assert!(
        text.contains("rule `no-imei-to-vendor` (policy.yaml:2) in step 4 send-sms"),
        "{text}"
    );
    assert!(text.contains("(frame 71)"), "{text}");
}

#[test]
fn rules_that_do_not_match_pass() {
    let p = policy(concat!(
        "rules:\n",
        "- deny: { identifier: imei, to: '*.xiaomi.com' }\n",
        "- deny: { identifier: [imsi, iccid] }\n",
        "- deny: { identifier: imei, protocol: tls }\n",
        "- deny: { identifier: phone_number, encoding: plain }\n",
        "- deny: { identifier: any }\n",
        "  steps: [fresh-setup, 2, '3 add-contact', before-steps]\n",
        "- allow: ['*.kestrelcloud.net', time.android.com]\n",
        "- deny: { to: '*.doubleclick.net' }\n",
    ));
    let (findings, contacts) = facts();
    let v = p.evaluate(&findings, &contacts);
    assert!(v.passed, "{v:?}");
    assert_eq!(v.rules, 7);
    assert!(v.render().contains("no violation"));
}

#[test]
fn no_identifier_in_plain_http_anywhere() {
    let p =
        policy("rules:\n  - name: no-plain-http\n    deny: { identifier: any, protocol: http }\n");
    let (findings, contacts) = facts();
    let v = p.evaluate(&findings, &contacts);
    let frames: Vec<u64> = v.violations.iter().map(|x| x.frame).collect();
    assert_eq!(frames, [71, 73]);
}

#[test]
fn hosts_outside_the_allow_list_are_named_with_their_first_frame() {
    let p = policy("rules:\n  - allow: ['*.kestrelcloud.net']\n    steps: [fresh-setup]\n");
    let (findings, contacts) = facts();
    let v = p.evaluate(&findings, &contacts);
    assert_eq!(v.violations.len(), 1, "{v:?}");
    let hit = &v.violations[0];
    assert_eq!(
        (hit.rule.as_str(), hit.host.as_str(), hit.frame),
        ("rule 1", "time.android.com", 9)
    );
    assert_eq!(hit.identifier, None);
    // The apex is not `*.`'s: it must be listed itself.
    let p = policy("rules:\n  - allow: ['*.kestrelcloud.net', '*.android.com']\n");
    let apex = [contact("1 fresh-setup", "kestrelcloud.net", "dns", 2)];
    assert_eq!(p.evaluate(&[], &apex).violations.len(), 1);
    // Host globs ignore case, as DNS does.
    assert!(
        p.evaluate(&[], &[contact("1 x", "API.KestrelCloud.NET", "tls", 1)])
            .passed
    );
}

#[test]
fn a_denied_host_is_a_violation_per_protocol_in_scope() {
    let p = policy(
        "rules:\n  - deny: { to: msg.kestrelcloud.net, protocol: http }\n    steps: [send-sms]\n",
    );
    let (findings, contacts) = facts();
    let v = p.evaluate(&findings, &contacts);
    assert_eq!(v.violations.len(), 1);
    assert_eq!(v.violations[0].frame, 64);
}

#[test]
fn violations_are_bounded() {
    let p = policy("rules:\n  - allow: [nothing.example]\n");
    let contacts: Vec<ContactItem> = (0..(MAX_VIOLATIONS as u64 + 5))
        .map(|i| contact("1 idle", &format!("h{i}.example"), "dns", i))
        .collect();
    let v = p.evaluate(&[], &contacts);
    assert_eq!(v.violations.len(), MAX_VIOLATIONS);
    assert_eq!(v.violations_omitted, 5);
}

#[test]
fn mistakes_are_reported_with_position_and_fix() {
    let e = problems("rules:\n  - deny: { identifier: imie, to: '*.x.com' }\n");
    assert!(
        e.starts_with("policy.yaml:2:25: error: unknown identifier kind `imie`"),
        "{e}"
    );
    assert!(e.contains("did you mean `imei`?"), "{e}");

    let e = problems("rules:\n  - deny: { identifier: imei }\n    stepz: [send-sms]\n");
    assert!(
        e.contains("policy.yaml:3:5: error: unknown key `stepz` in a rule"),
        "{e}"
    );
    assert!(e.contains("did you mean `steps`?"), "{e}");

    let e = problems("rules:\n  - deny: { protocol: htp }\n");
    assert!(
        e.contains("unknown protocol `htp`") && e.contains("did you mean `http`?"),
        "{e}"
    );

    let e = problems("rules:\n  - allow: ['*.x.com']\n    steps: [send-smss]\n");
    assert!(
        e.contains("policy.yaml:3:13: error: no step is called `send-smss`"),
        "{e}"
    );
    assert!(e.contains("did you mean `send-sms`?"), "{e}");

    let e = problems("rules:\n  - name: x\n");
    assert!(
        e.contains("policy.yaml:2:5: error: a rule needs `deny` or `allow`"),
        "{e}"
    );

    let e = problems("rules:\n  - deny: {}\n");
    assert!(e.contains("needs at least one condition"), "{e}");

    let e = problems("rules:\n  - deny: { to: x.com, encoding: md5 }\n");
    assert!(e.contains("need `identifier`"), "{e}");

    let e = problems("rules:\n  - allow: ['[x']\n");
    assert!(e.contains("is not a valid glob"), "{e}");

    let e = problems("rules: [\n");
    assert!(e.starts_with("policy.yaml:2:1: error: YAML syntax"), "{e}");

    let e = problems("");
    assert!(e.contains("the policy is empty"), "{e}");

    let e = problems("version: 2\nrules: []\n");
    assert!(
        e.contains("unsupported policy version") && e.contains("`rules` is empty"),
        "{e}"
    );
    assert!(e.ends_with("error: 2 problems in this policy"), "{e}");

    // Two rules of one name would be one case in JUnit and one line in policy.json.
    let e = problems(
        "rules:\n  - name: no-imei\n    deny: { identifier: imei }\n  - name: no-imei\n    allow: ['*.x.com']\n",
    );
    assert!(
        e.starts_with(
            "policy.yaml:4:11: error: a second rule named `no-imei` (the first is at line 2)"
        ),
        "{e}"
    );
    assert!(e.contains("give each rule its own `name:`"), "{e}");
    // An unnamed rule is `rule N` by its place: an explicit `rule 2` before it collides with it.
    let e = problems(
        "rules:\n  - name: rule 2\n    deny: { identifier: imei }\n  - deny: { identifier: imsi }\n",
    );
    assert!(
        e.starts_with("policy.yaml:4:5: error: a second rule named `rule 2`")
            && e.contains("rename the other one"),
        "{e}"
    );

    // A custom kind (a scenario's canary) that is no typo of a known one is accepted.
    policy("rules:\n  - deny: { identifier: loyalty_card }\n");
}

#[test]
fn hostile_input_never_panics_and_stays_bounded() {
    let deep = format!("rules: {}", "[".repeat(10_000));
    assert!(Policy::parse(&deep, Path::new("p")).is_err());
    let many = format!("rules:\n{}", "  - deny: { identifier: imie }\n".repeat(500));
    let e = Policy::parse(&many, Path::new("p")).unwrap_err();
    assert_eq!(e.diagnostics().len(), 20);
    assert!(e.to_string().contains("... and 480 more problems"));
    let control = "rules:\n  - allow: [\"\u{1b}[31mred\"]\n    steps: [\"\u{1b}x\"]\n";
    let e = problems(control);
    assert!(!e.contains('\u{1b}'), "{e:?}");
}
