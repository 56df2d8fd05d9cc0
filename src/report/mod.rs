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

use crate::outcome::{Leak, Outcome, StepTraffic};

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
            let decrypted = if t.decrypted_bytes > 0 {
                format!(" ({} decrypted)", kb(t.decrypted_bytes))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "    sent {}, received {}: {} readable{decrypted}{opaque}",
                kb(t.sent_bytes),
                kb(t.received_bytes),
                kb(t.readable_bytes())
            );
        }
        for (key, encodings) in group_leaks(&step.leaks) {
            // Seen inside TLS: the version says more than `tls`, and "decrypted" says how.
            let over = match &key.tls {
                Some(version) => format!("{version} (decrypted)"),
                None => key.protocol.clone(),
            };
            let _ = writeln!(
                out,
                "    LEAK {} → {} over {over} in {} as {}",
                key.identifier,
                key.host,
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
    tls: Option<String>,
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
                tls: leak.tls.clone(),
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::outcome::{HostContact, OutcomeDevice, StepOutcome};

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
}
