//! Reports: outcomes and their differences in words people can read and quote.
//!
//! Owns the text rendering of an outcome (per step: hosts contacted, identifiers that left) and the
//! comparison of two outcomes (`diff`), with the one-sentence summary a regulator can quote; the
//! typed JSON documents of runs and diffs (`json`, docs/run-json.md and docs/diff-json.md); the
//! `tattle analyze` report (`capture`, docs/analysis-json.md); the reports of a run directory
//! (docs/reports.md), each rendered from the directory's files (`run_dir`) so `tattle report`
//! renders old runs too: `markdown`, `html`, `junit`, `har`, `pcapng`, and the run's text and
//! JSON (`render_run`); hosts as first/third party (`destinations`), flows' Community IDs
//! (`community_id`), the HTTP exchanges a HAR needs (`exchanges`). Returns strings and
//! serialisable values; the CLI and the runner decide where they go (`run_dir` reads a run
//! directory, `exchanges` runs tshark on a capture, `pcapng` streams one).
//!
//! Must not touch: files, the terminal, exit codes.

pub mod capture;
pub mod community_id;
pub mod destinations;
pub mod differential;
pub mod exchanges;
pub mod har;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod pcapng;
pub mod run_dir;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::outcome::{Leak, Outcome, StepTraffic};

/// `1.5 KB`.
pub(crate) fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1024.0)
}

/// The formats `tattle report` renders from a run directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFormat {
    Text,
    Json,
    Markdown,
    Html,
    Junit,
    Har,
    Pcapng,
}

impl RunFormat {
    /// The file each format is written to in a run directory.
    pub fn file_name(self) -> &'static str {
        match self {
            RunFormat::Text => "report.txt",
            RunFormat::Json => "report.json",
            RunFormat::Markdown => "report.md",
            RunFormat::Html => "report.html",
            RunFormat::Junit => "junit.xml",
            RunFormat::Har => "flows.har",
            RunFormat::Pcapng => "capture.pcapng",
        }
    }

    /// Every text format a run directory holds (the pcapng is streamed on its own).
    pub const TEXT_FORMATS: [RunFormat; 5] = [
        RunFormat::Text,
        RunFormat::Markdown,
        RunFormat::Html,
        RunFormat::Junit,
        RunFormat::Har,
    ];
}

/// `tattle report --format json`: the run with its destinations and its flows' Community IDs.
#[derive(Debug, Serialize)]
pub struct RunDirReport<'a> {
    pub format_version: u32,
    pub scenario: &'a str,
    pub firmware: &'a str,
    pub outcome: &'a Outcome,
    pub evidence: &'a [crate::outcome::EvidenceItem],
    pub traffic: &'a [StepTraffic],
    pub destinations: &'a [destinations::Destination],
    pub flows: Option<Vec<json::FlowOut<'a>>>,
    pub http: &'a [json::HttpExchange],
    pub interrupted: Option<&'a str>,
}

/// A text format of a run directory's view (not the pcapng, which is binary).
pub fn render_run(view: &run_dir::RunView, format: RunFormat) -> String {
    match format {
        RunFormat::Text => {
            let mut text = render_outcome(&view.outcome, &view.traffic);
            text.push_str(&render_destinations(view));
            text
        }
        RunFormat::Json => serde_json::to_string_pretty(&RunDirReport {
            format_version: json::RUN_FORMAT_VERSION,
            scenario: &view.run.scenario,
            firmware: &view.run.firmware,
            outcome: &view.outcome,
            evidence: &view.evidence,
            traffic: &view.traffic,
            destinations: &view.destinations,
            flows: view
                .flows
                .as_ref()
                .map(|f| f.iter().map(json::FlowOut::new).collect()),
            http: &view.http,
            interrupted: view.run.interrupted.as_deref(),
        })
        .unwrap_or_default(),
        RunFormat::Markdown => markdown::render(view),
        RunFormat::Html => html::render(view),
        RunFormat::Junit => junit::render(view),
        RunFormat::Har => har::render(view),
        RunFormat::Pcapng => String::new(),
    }
}

/// The destinations as text: each host with its party and tracker.
pub fn render_destinations(view: &run_dir::RunView) -> String {
    let mut out = String::from("  destinations\n");
    for d in &view.destinations {
        let _ = writeln!(
            out,
            "    {:<40} {}{}",
            d.host,
            d.party.as_str(),
            d.tracker
                .map(|t| format!(", tracker: {t}"))
                .unwrap_or_default()
        );
    }
    if view.destinations.is_empty() {
        out.push_str("    none\n");
    }
    out
}

/// "Kestrel Note 7 Lite": models often repeat the maker's name; say it once.
pub(crate) fn device_name(device: &crate::outcome::OutcomeDevice) -> String {
    if device.model.starts_with(&device.manufacturer) {
        device.model.clone()
    } else {
        format!("{} {}", device.manufacturer, device.model)
    }
}

/// The outcome of one run as text. `traffic` (may be empty) adds how much each step sent and how much
/// of it was opaque, so "no findings" is never mistaken for "nothing to see".
pub fn render_outcome(outcome: &Outcome, traffic: &[StepTraffic]) -> String {
    let mut out = String::new();
    let device = &outcome.device;
    let name = device_name(device);
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
        for c in &step.size_correlations {
            let _ = writeln!(out, "    SIZE {}", size_correlation(c));
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
    let correlations: BTreeSet<&str> = outcome
        .steps
        .iter()
        .flat_map(|s| s.size_correlations.iter().map(|c| c.identifier.as_str()))
        .collect();
    if !correlations.is_empty() {
        let _ = writeln!(
            out,
            "  TLS traffic grew with {} over the differential series: very likely carried inside",
            correlations.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    out
}

/// A differential verdict in words: `TLS traffic to HOST grows with <sms_body>'s length (plain)`.
pub(crate) fn size_correlation(c: &crate::outcome::SizeCorrelation) -> String {
    format!(
        "TLS traffic to {} grows with {}'s length ({})",
        c.host, c.identifier, c.slope
    )
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
    fn outcome_text_says_size_correlations() {
        let mut o = outcome(vec![]);
        o.steps[0]
            .size_correlations
            .push(crate::outcome::SizeCorrelation {
                identifier: "<sms_body>".into(),
                host: "sms.difflab.net".into(),
                slope: "plain".into(),
            });
        let text = render_outcome(&o, &[]);
        assert!(
            text.contains(
                "  step 4 send-sms\n    contacted msg.vendor.example (http)\n    SIZE TLS traffic to sms.difflab.net grows with <sms_body>'s length (plain)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("TLS traffic grew with <sms_body> over the differential series"),
            "{text}"
        );
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
