//! `junit.xml`: a run as JUnit XML, the format every CI (GitLab, Jenkins, GitHub's test reporters)
//! shows: one test case per step (it fails when an identifier left the handset in it) and one per
//! policy rule (built in: "no identifier leaves the handset"; then each rule of the policy the run was
//! judged by, from its `policy.json`).
//!
//! Owns the XML: written by hand (a handful of elements, escaped here) rather than with a crate, to
//! keep the format's few attributes in view; checked by a JUnit parser in the tests.
//!
//! Must not touch: files, the terminal.

use std::fmt::Write as _;

use super::run_dir::RunView;

/// XML text and attribute escaping (and control characters, which XML 1.0 forbids, as `?`).
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

struct Case {
    class: String,
    name: String,
    time: f64,
    failure: Option<(String, String)>,
    out: String,
}

/// The JUnit document of a run.
pub fn render(view: &RunView) -> String {
    let suite = format!("{}@{}", view.run.scenario, view.run.firmware);
    let mut cases = Vec::new();
    for step in &view.outcome.steps {
        let window = view.run.steps.iter().find(|w| w.label() == step.step);
        let hosts: Vec<String> = step
            .hosts
            .iter()
            .map(|h| {
                let party = view
                    .destination(&h.host)
                    .map_or("third party", |d| d.party.as_str());
                format!("contacted {} ({}; {party})", h.host, h.protocols.join(", "))
            })
            .collect();
        let evidence: Vec<String> = view
            .evidence
            .iter()
            .filter(|e| e.step == step.step)
            .map(|e| {
                format!(
                    "LEAK {} -> {} over {} in {} as {} (frame {})",
                    e.identifier,
                    e.host,
                    e.carried_over(),
                    e.location,
                    e.encoding,
                    e.frame
                )
            })
            .collect();
        let failure = (!step.leaks.is_empty()).then(|| {
            let mut ids: Vec<&str> = step.leaks.iter().map(|l| l.identifier.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            (
                format!("{} left the handset in step {}", ids.join(", "), step.step),
                evidence.join("\n"),
            )
        });
        cases.push(Case {
            class: format!("{suite}.steps"),
            name: step.step.clone(),
            time: window.map_or(0.0, |w| (w.end - w.start).max(0.0)),
            failure,
            out: hosts.join("\n"),
        });
    }
    let leaks = view.outcome.leak_count();
    cases.push(Case {
        class: format!("{suite}.policy"),
        name: "no identifier leaves the handset".into(),
        time: 0.0,
        failure: (leaks > 0).then(|| {
            (
                format!("{leaks} finding(s)"),
                view.evidence
                    .iter()
                    .map(|e| {
                        format!(
                            "{} -> {} in step {} (frame {})",
                            e.identifier, e.host, e.step, e.frame
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }),
        out: String::new(),
    });
    // The policy file's rules, each a case of its own, kept or broken (a verdict written before
    // tallies existed: the rules it names as broken).
    if let Some(policy) = &view.policy {
        let tallies: Vec<(String, usize)> = if policy.rule_tallies.is_empty() {
            let mut broken: Vec<(String, usize)> = Vec::new();
            for v in &policy.violations {
                match broken.iter_mut().find(|(r, _)| r == &v.rule) {
                    Some((_, n)) => *n += 1,
                    None => broken.push((v.rule.clone(), 1)),
                }
            }
            broken
        } else {
            policy
                .rule_tallies
                .iter()
                .map(|t| (t.rule.clone(), t.violations))
                .collect()
        };
        for (rule, count) in tallies {
            let listed: Vec<String> = policy
                .violations
                .iter()
                .filter(|v| v.rule == rule)
                .map(|v| format!("{} in step {} (frame {})", v.why, v.step, v.frame))
                .collect();
            let unlisted = count.saturating_sub(listed.len());
            let mut detail = listed.join("\n");
            if unlisted > 0 {
                detail.push_str(&format!(
                    "\n… and {unlisted} more not listed in policy.json"
                ));
            }
            cases.push(Case {
                class: format!("{suite}.policy"),
                name: format!("{rule} ({})", policy.policy),
                time: 0.0,
                failure: (count > 0).then(|| (format!("{count} violation(s)"), detail)),
                out: String::new(),
            });
        }
    }
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let errors = usize::from(view.run.interrupted.is_some());
    let total: f64 = cases.iter().map(|c| c.time).sum();
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<testsuites name="tattle" tests="{}" failures="{failures}" errors="{errors}" time="{total:.3}">"#,
        cases.len() + errors
    );
    let _ = writeln!(
        out,
        r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="{errors}" skipped="0" time="{total:.3}">"#,
        xml_escape(&suite),
        cases.len() + errors,
    );
    for case in &cases {
        let _ = write!(
            out,
            r#"    <testcase classname="{}" name="{}" time="{:.3}""#,
            xml_escape(&case.class),
            xml_escape(&case.name),
            case.time
        );
        if case.failure.is_none() && case.out.is_empty() {
            let _ = writeln!(out, "/>");
            continue;
        }
        let _ = writeln!(out, ">");
        if let Some((message, text)) = &case.failure {
            let _ = writeln!(
                out,
                r#"      <failure message="{}" type="leak">{}</failure>"#,
                xml_escape(message),
                xml_escape(text)
            );
        }
        if !case.out.is_empty() {
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                xml_escape(&case.out)
            );
        }
        let _ = writeln!(out, "    </testcase>");
    }
    if let Some(why) = &view.run.interrupted {
        let _ = writeln!(
            out,
            r#"    <testcase classname="{}.run" name="every step ran"><error message="{}" type="interrupted"/></testcase>"#,
            xml_escape(&suite),
            xml_escape(why)
        );
    }
    let _ = writeln!(out, "  </testsuite>\n</testsuites>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_case_per_step_and_policy() {
        let xml = render(&super::super::run_dir::tests::view());
        assert!(xml.contains(r#"tests="2" failures="2""#), "{xml}");
        assert!(xml.contains(r#"name="1 send-sms""#));
        assert!(xml.contains("(frame 7)"));
        assert!(!xml.contains("<script>"));
    }

    #[test]
    fn each_rule_of_the_runs_policy_is_a_case() {
        let mut view = super::super::run_dir::tests::view();
        view.policy = Some(crate::policy::PolicyReport {
            format_version: 1,
            policy: "policy.yaml".into(),
            policy_sha256: "00".into(),
            rules: 2,
            rule_tallies: vec![
                crate::policy::RuleTally {
                    rule: "no-imei-to-vendor".into(),
                    violations: 3,
                },
                crate::policy::RuleTally {
                    rule: "only-known-hosts".into(),
                    violations: 0,
                },
            ],
            passed: false,
            violations: vec![crate::policy::Violation {
                rule: "no-imei-to-vendor".into(),
                rule_line: 2,
                step: "1 send-sms".into(),
                host: "msg.vendor.example".into(),
                protocol: "http".into(),
                frame: 7,
                identifier: Some("<imei>".into()),
                location: Some("http.body".into()),
                encoding: Some("plain".into()),
                why: "<imei> sent to msg.vendor.example".into(),
            }],
            violations_omitted: 0,
        });
        let xml = render(&view);
        assert!(xml.contains(r#"tests="4" failures="3""#), "{xml}");
        let case = |name: &str| {
            let at = xml
                .find(&format!(r#"name="{name} (policy.yaml)""#))
                .unwrap();
            xml[at..].split("</testcase>").next().unwrap().to_string()
        };
        let broken = case("no-imei-to-vendor");
        assert!(broken.contains("3 violation(s)"), "{broken}");
        assert!(broken.contains("and 2 more not listed"), "{broken}");
        assert!(broken.contains("in step 1 send-sms (frame 7)"), "{broken}");
        assert!(!case("only-known-hosts").contains("<failure"), "{xml}");
    }

    #[test]
    fn escapes() {
        assert_eq!(xml_escape("a<b>&\"'\u{1b}"), "a&lt;b&gt;&amp;&quot;&apos;?");
    }
}
