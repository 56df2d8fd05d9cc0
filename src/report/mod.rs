//! Reports: outcomes and their differences in words people can read and quote.
//!
//! Owns the text rendering of an outcome (per step: hosts contacted, identifiers that left) and the
//! comparison of two outcomes (`diff`), with the one-sentence summary a regulator can quote; the
//! typed JSON documents of runs and diffs (`json`, docs/run-json.md and docs/diff-json.md); the
//! `tattle analyze` report (`capture`, docs/analysis-json.md). Returns strings and serialisable
//! values; the CLI and the runner decide where they go.
//!
//! Must not touch: files, the terminal, exit codes.

pub mod capture;
pub mod differential;
pub mod json;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::outcome::{HostContact, Leak, Outcome, StepTraffic};

/// `1.5 KB`.
fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1024.0)
}

/// The outcome of one run as text. `traffic` (may be empty) adds how much each step sent and how much
/// of it was opaque, so "no findings" is never mistaken for "nothing to see".
pub fn render_outcome(outcome: &Outcome, traffic: &[StepTraffic]) -> String {
    let mut out = String::new();
    let device = &outcome.device;
    // Models often repeat the maker's name ("Kestrel Note 7"): say it once.
    let name = if device.model.starts_with(&device.manufacturer) {
        device.model.clone()
    } else {
        format!("{} {}", device.manufacturer, device.model)
    };
    let _ = writeln!(
        out,
        "{} on {} ({name}, Android {})",
        outcome.scenario, outcome.firmware, device.android
    );
    for step in &outcome.steps {
        let _ = writeln!(out, "  step {}", step.step);
        if step.hosts.is_empty() {
            let _ = writeln!(out, "    no traffic");
        }
        for host in &step.hosts {
            let _ = writeln!(
                out,
                "    contacted {} ({})",
                host.host,
                host.protocols.join(", ")
            );
        }
        if let Some(t) = traffic.iter().find(|t| t.step == step.step)
            && t.sent_bytes + t.received_bytes > 0
        {
            let opaque = if t.opaque_bytes > 0 {
                format!(
                    "; {} opaque (with {})",
                    kb(t.opaque_bytes),
                    t.opaque_hosts.join(", ")
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "    sent {}, received {}: {} readable{opaque}",
                kb(t.sent_bytes),
                kb(t.received_bytes),
                kb(t.readable_bytes())
            );
        }
        for (key, encodings) in group_leaks(&step.leaks) {
            let _ = writeln!(
                out,
                "    LEAK {} → {} over {} in {} as {}",
                key.identifier,
                key.host,
                key.protocol,
                key.location,
                encodings.join(", ")
            );
        }
    }
    let leaks = outcome.leak_count();
    let readable: u64 = traffic.iter().map(StepTraffic::readable_bytes).sum();
    let opaque: u64 = traffic.iter().map(|t| t.opaque_bytes).sum();
    if leaks == 0 && traffic.is_empty() {
        let _ = writeln!(out, "  no identifier found");
    } else if leaks == 0 {
        let _ = writeln!(
            out,
            "  no identifier found in {} readable; {} opaque (not inspectable)",
            kb(readable),
            kb(opaque)
        );
    } else {
        let kinds: BTreeSet<&str> = outcome
            .steps
            .iter()
            .flat_map(|s| s.leaks.iter().map(|l| l.identifier.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "  {leaks} finding(s): {} left the handset",
            kinds.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LeakKey {
    identifier: String,
    host: String,
    protocol: String,
    location: String,
}

/// Groups leaks that differ only by encoding, so a line reads "… as plain, url, md5".
fn group_leaks(leaks: &[Leak]) -> BTreeMap<LeakKey, Vec<String>> {
    let mut grouped: BTreeMap<LeakKey, Vec<String>> = BTreeMap::new();
    for leak in leaks {
        grouped
            .entry(LeakKey {
                identifier: leak.identifier.clone(),
                host: leak.host.clone(),
                protocol: leak.protocol.clone(),
                location: leak.location.clone(),
            })
            .or_default()
            .push(leak.encoding.clone());
    }
    // The plain form first: it is the one a reader checks in Wireshark.
    for encodings in grouped.values_mut() {
        encodings.sort_by(|a, b| (a != "plain", a).cmp(&(b != "plain", b)));
        encodings.dedup();
    }
    grouped
}

/// What changed in one step between outcome A and outcome B.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct StepDiff {
    pub step: String,
    /// Leaks in B that A did not have.
    pub leaks_appeared: Vec<Leak>,
    /// Leaks in A that B no longer has.
    pub leaks_gone: Vec<Leak>,
    pub hosts_appeared: Vec<HostContact>,
    pub hosts_gone: Vec<HostContact>,
}

impl StepDiff {
    pub fn is_empty(&self) -> bool {
        self.leaks_appeared.is_empty()
            && self.leaks_gone.is_empty()
            && self.hosts_appeared.is_empty()
            && self.hosts_gone.is_empty()
    }
}

/// The difference between two outcomes, step by step (steps matched by their label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeDiff {
    pub a_name: String,
    pub b_name: String,
    pub steps: Vec<StepDiff>,
}

impl OutcomeDiff {
    pub fn is_empty(&self) -> bool {
        self.steps.iter().all(StepDiff::is_empty)
    }
}

/// Compares two outcomes. Hosts are compared by name (a protocol change on the same host is not a new
/// host); leaks by everything they say.
pub fn diff(a: &Outcome, b: &Outcome, a_name: &str, b_name: &str) -> OutcomeDiff {
    let mut labels: Vec<&str> = Vec::new();
    for step in a.steps.iter().chain(&b.steps) {
        if !labels.contains(&step.step.as_str()) {
            labels.push(&step.step);
        }
    }
    let steps = labels
        .into_iter()
        .map(|label| {
            let empty = crate::outcome::StepOutcome {
                step: label.to_string(),
                hosts: vec![],
                leaks: vec![],
                size_correlations: vec![],
            };
            let sa = a.steps.iter().find(|s| s.step == label).unwrap_or(&empty);
            let sb = b.steps.iter().find(|s| s.step == label).unwrap_or(&empty);
            let hosts_a: BTreeSet<&str> = sa.hosts.iter().map(|h| h.host.as_str()).collect();
            let hosts_b: BTreeSet<&str> = sb.hosts.iter().map(|h| h.host.as_str()).collect();
            let leaks_a: BTreeSet<&Leak> = sa.leaks.iter().collect();
            let leaks_b: BTreeSet<&Leak> = sb.leaks.iter().collect();
            StepDiff {
                step: label.to_string(),
                leaks_appeared: leaks_b.difference(&leaks_a).map(|l| (*l).clone()).collect(),
                leaks_gone: leaks_a.difference(&leaks_b).map(|l| (*l).clone()).collect(),
                hosts_appeared: sb
                    .hosts
                    .iter()
                    .filter(|h| !hosts_a.contains(h.host.as_str()))
                    .cloned()
                    .collect(),
                hosts_gone: sa
                    .hosts
                    .iter()
                    .filter(|h| !hosts_b.contains(h.host.as_str()))
                    .cloned()
                    .collect(),
            }
        })
        .collect();
    OutcomeDiff {
        a_name: a_name.to_string(),
        b_name: b_name.to_string(),
        steps,
    }
}

/// The diff in words, step by step, then the summary sentences.
pub fn render_diff(d: &OutcomeDiff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A = {}\nB = {}", d.a_name, d.b_name);
    if d.is_empty() {
        let _ = writeln!(
            out,
            "no difference: same hosts and same leaks in every step"
        );
        return out;
    }
    for step in d.steps.iter().filter(|s| !s.is_empty()) {
        let _ = writeln!(out, "  step {}", step.step);
        for (key, encodings) in group_leaks(&step.leaks_gone) {
            let _ = writeln!(
                out,
                "    - A sends {} to {} ({} {}, as {}); B does not",
                key.identifier,
                key.host,
                key.protocol,
                key.location,
                encodings.join(", ")
            );
        }
        for (key, encodings) in group_leaks(&step.leaks_appeared) {
            let _ = writeln!(
                out,
                "    + B sends {} to {} ({} {}, as {}); A did not",
                key.identifier,
                key.host,
                key.protocol,
                key.location,
                encodings.join(", ")
            );
        }
        for host in &step.hosts_gone {
            let _ = writeln!(out, "    - A contacts {}; B does not", host.host);
        }
        for host in &step.hosts_appeared {
            let _ = writeln!(out, "    + B contacts {}; A did not", host.host);
        }
    }
    for sentence in summary(d) {
        let _ = writeln!(out, "{sentence}");
    }
    out
}

/// One sentence per (step, host, direction): "A sends <imei> and <phone_number> to HOST in step
/// `4 send-sms`; B does not."
pub fn summary(d: &OutcomeDiff) -> Vec<String> {
    let mut sentences = Vec::new();
    for step in &d.steps {
        for (who, other, leaks, verb) in [
            ("A", "B", &step.leaks_gone, "does not"),
            ("B", "A", &step.leaks_appeared, "did not"),
        ] {
            let mut by_host: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for leak in leaks {
                by_host
                    .entry(&leak.host)
                    .or_default()
                    .insert(&leak.identifier);
            }
            for (host, ids) in by_host {
                let ids: Vec<&str> = ids.into_iter().collect();
                sentences.push(format!(
                    "{who} sends {} to {host} in step `{}`; {other} {verb}.",
                    join_and(&ids),
                    step.step
                ));
            }
        }
    }
    sentences
}

/// "the default build sends <imei> and <phone_number> to HOST when an SMS is sent; the opt-in build
/// does not" — built from the diff, never written in advance.
pub fn one_sentence(d: &OutcomeDiff, a: &str, b: &str) -> String {
    let mut gone: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    let mut appeared: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for step in &d.steps {
        let step_name = step
            .step
            .split_once(' ')
            .map_or(step.step.as_str(), |(_, n)| n);
        for leak in &step.leaks_gone {
            let e = gone.entry(step_name).or_default();
            e.0.insert(&leak.identifier);
            e.1.insert(&leak.host);
        }
        for leak in &step.leaks_appeared {
            let e = appeared.entry(step_name).or_default();
            e.0.insert(&leak.identifier);
            e.1.insert(&leak.host);
        }
    }
    let when = |step: &str| match step {
        "send-sms" => "when an SMS is sent".to_string(),
        "add-contact" => "when a contact is added".to_string(),
        "fresh-setup" => "at setup".to_string(),
        other => format!("in step `{other}`"),
    };
    let list = |set: &BTreeSet<&str>| join_and(&set.iter().copied().collect::<Vec<_>>());
    let mut sentences = Vec::new();
    for (step, (ids, hosts)) in &gone {
        sentences.push(format!(
            "build A ({a}) sends {} to {} {}; build B ({b}) does not.",
            list(ids),
            list(hosts),
            when(step)
        ));
    }
    for (step, (ids, hosts)) in &appeared {
        sentences.push(format!(
            "build B ({b}) sends {} to {} {}; build A ({a}) does not.",
            list(ids),
            list(hosts),
            when(step)
        ));
    }
    if sentences.is_empty() {
        format!("builds A ({a}) and B ({b}) send the same identifiers to the same hosts.")
    } else {
        sentences.join(" ")
    }
}

fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::outcome::{OutcomeDevice, StepOutcome};

    /// A leak to `msg.vendor.example` over HTTP, in the body (this module's and `json`'s tests).
    pub(crate) fn leak(id: &str, enc: &str) -> Leak {
        Leak {
            identifier: id.into(),
            host: "msg.vendor.example".into(),
            protocol: "http".into(),
            location: "http.body".into(),
            encoding: enc.into(),
            tls: None,
        }
    }

    /// `send-sms` on `fw` with one step, `4 send-sms`, that contacts `msg.vendor.example`.
    pub(crate) fn outcome(leaks: Vec<Leak>) -> Outcome {
        Outcome {
            scenario: "send-sms".into(),
            firmware: "fw".into(),
            device: OutcomeDevice {
                manufacturer: "Acme".into(),
                model: "One".into(),
                android: "13".into(),
            },
            steps: vec![StepOutcome {
                step: "4 send-sms".into(),
                hosts: vec![HostContact {
                    host: "msg.vendor.example".into(),
                    protocols: vec!["http".into()],
                }],
                leaks,
                size_correlations: vec![],
            }],
        }
    }

    #[test]
    fn diff_says_what_went_away() {
        let a = outcome(vec![leak("<imei>", "plain"), leak("<phone_number>", "url")]);
        let b = outcome(vec![]);
        let d = diff(&a, &b, "default", "optin");
        assert!(!d.is_empty());
        assert_eq!(d.steps[0].leaks_gone.len(), 2);
        assert!(d.steps[0].hosts_gone.is_empty());
        assert_eq!(
            summary(&d),
            vec![
                "A sends <imei> and <phone_number> to msg.vendor.example in step `4 send-sms`; B does not."
            ]
        );
        assert!(diff(&a, &a, "x", "y").is_empty());
    }

    #[test]
    fn outcome_text_groups_encodings() {
        let text = render_outcome(
            &outcome(vec![leak("<imei>", "plain"), leak("<imei>", "md5")]),
            &[],
        );
        assert!(
            text.contains("LEAK <imei> → msg.vendor.example over http in http.body as plain, md5"),
            "{text}"
        );
    }

    #[test]
    fn one_sentence_names_the_step_in_words() {
        let a = outcome(vec![leak("<imei>", "plain"), leak("<phone_number>", "url")]);
        let b = outcome(vec![]);
        assert_eq!(
            one_sentence(&diff(&a, &b, "x", "y"), "default", "optin"),
            "build A (default) sends <imei> and <phone_number> to msg.vendor.example when an SMS is \
             sent; build B (optin) does not."
        );
        assert!(one_sentence(&diff(&a, &a, "x", "y"), "p", "q").contains("send the same"));
    }
}
