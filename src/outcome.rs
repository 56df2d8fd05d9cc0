//! Outcome: what a run means, step by step, with every identifier value replaced by its kind.
//!
//! Owns the placement of analysis results (flows, DNS questions, findings) into the scenario's step
//! windows, and the redacted, deterministic `Outcome` that snapshots store and diffs compare: sorted,
//! no timestamps, ports, frame numbers or byte counts, no raw values (`<imei>`). The detailed,
//! per-packet `Evidence` (frame numbers a regulator can look up in Wireshark) is kept beside it for the
//! run directory — also without raw values.
//!
//! Must not touch: the device, the capture, the terminal, files.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::device::DeviceIdentity;
use crate::device::clock::ClockMap;
use tattle_analysis::identifier::placeholder;
use tattle_analysis::{Analysis, Protocol, Timestamp};
use tattle_analysis::{Redactor, sanitize};

/// One step's time window on the host clock, as the runner recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepWindow {
    /// 1-based position in the scenario.
    pub index: usize,
    /// `fresh-setup`, `send-sms`…
    pub name: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl StepWindow {
    /// The label steps are known by in outcomes and diffs: `4 send-sms`.
    pub fn label(&self) -> String {
        format!("{} {}", self.index, self.name)
    }
}

/// Label of traffic captured before the first step started.
pub(crate) const BEFORE_STEPS: &str = "0 before-steps";
/// Label of traffic captured after the last step ended.
pub(crate) const AFTER_STEPS: &str = "after-steps";

/// The redacted, comparable result of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Outcome {
    pub scenario: String,
    pub firmware: String,
    pub device: OutcomeDevice,
    pub steps: Vec<StepOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OutcomeDevice {
    pub manufacturer: String,
    pub model: String,
    pub android: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepOutcome {
    /// `4 send-sms`.
    pub step: String,
    #[serde(default)]
    pub hosts: Vec<HostContact>,
    #[serde(default)]
    pub leaks: Vec<Leak>,
    /// Encrypted flows whose sizes followed a planted value over a `--differential` series
    /// (`crate::differential`); absent from single runs and their snapshots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub size_correlations: Vec<SizeCorrelation>,
}

/// An encrypted flow whose size followed a planted value across the runs of a differential series:
/// it very likely carries that value. No sizes and no values: what the finding is, not how big.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct SizeCorrelation {
    /// `<sms_body>`: the planted kind.
    pub identifier: String,
    pub host: String,
    /// `plain`, `base64`, `hex`, `compressed` or `other` (`differential::SlopeClass`).
    pub slope: String,
}

/// A host the handset talked to in a step, and over what.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct HostContact {
    pub host: String,
    pub protocols: Vec<String>,
}

/// An identifier that left the handset.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Leak {
    /// `<imei>`: the kind, never the value.
    pub identifier: String,
    pub host: String,
    pub protocol: String,
    pub location: String,
    pub encoding: String,
    /// How the identifier was carried when it was seen inside TLS the analysis decrypted
    /// (`TLS 1.3`); absent when it was seen in the clear. Absent in snapshots written before it
    /// existed, which therefore keep parsing (and rendering) as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

impl Outcome {
    pub fn leak_count(&self) -> usize {
        self.steps.iter().map(|s| s.leaks.len()).sum()
    }

    pub fn has_findings(&self) -> bool {
        self.leak_count() > 0 || self.steps.iter().any(|s| !s.size_correlations.is_empty())
    }

    /// Every step's size correlations, with the step's name, in step order.
    pub fn size_correlations(&self) -> Vec<(&str, &SizeCorrelation)> {
        self.steps
            .iter()
            .flat_map(|s| {
                s.size_correlations
                    .iter()
                    .map(move |c| (s.step.as_str(), c))
            })
            .collect()
    }

    /// Adds a differential series' verdicts to the steps they are about (a step the outcome lacks
    /// is added in order), sorted and without duplicates.
    pub fn add_size_correlations(&mut self, follows: &[crate::differential::Follows]) {
        for f in follows {
            let found = SizeCorrelation {
                identifier: placeholder(&f.kind),
                host: f.group.host.clone(),
                slope: f.class.as_str().to_string(),
            };
            match self.steps.iter_mut().find(|s| s.step == f.group.step) {
                Some(step) => step.size_correlations.push(found),
                None => self.steps.push(StepOutcome {
                    step: f.group.step.clone(),
                    hosts: Vec::new(),
                    leaks: Vec::new(),
                    size_correlations: vec![found],
                }),
            }
        }
        self.steps.sort_by_key(|s| step_sort_key(&s.step));
        for step in &mut self.steps {
            step.size_correlations.sort();
            step.size_correlations.dedup();
        }
    }
}

/// One finding with what a person needs to find the packet: frame number and step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvidenceItem {
    pub step: String,
    pub identifier: String,
    pub encoding: String,
    pub host: String,
    pub protocol: String,
    pub location: String,
    /// Wireshark's frame number in the run's capture.
    pub frame: u64,
    /// Seen inside TLS the analysis decrypted: version and cipher suite (`TLS 1.3
    /// TLS_AES_128_GCM_SHA256`); absent when seen in the clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Seconds since the capture started.
    pub at: f64,
}

impl EvidenceItem {
    /// What carried it, for tables: the protocol, or the decrypted TLS it was seen in
    /// (`decrypted TLS 1.3 TLS_AES_128_GCM_SHA256`).
    pub fn carried_over(&self) -> String {
        match &self.tls {
            Some(tls) => format!("decrypted {tls}"),
            None => self.protocol.clone(),
        }
    }
}

/// How much a step sent, and how much of it could not be inspected. Kept beside the outcome, not in it:
/// byte counts change from run to run, and snapshots must not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepTraffic {
    pub step: String,
    /// Payload bytes the handset sent in flows that started in this step.
    pub sent_bytes: u64,
    /// Payload bytes it received in those flows.
    pub received_bytes: u64,
    /// Of both, bytes no parser could read (TLS application data, QUIC, undecodable payload).
    pub opaque_bytes: u64,
    /// Hosts that received opaque bytes.
    pub opaque_hosts: Vec<String>,
    /// Of the readable bytes, the handset's TLS records the analysis decrypted with a key log
    /// (client → server only; headers and tags included). Absent in runs made before decryption
    /// existed.
    #[serde(default)]
    pub decrypted_bytes: u64,
}

impl StepTraffic {
    pub fn readable_bytes(&self) -> u64 {
        (self.sent_bytes + self.received_bytes).saturating_sub(self.opaque_bytes)
    }
}

/// Sums what each step sent, readable and opaque, by the step in which each flow started.
pub(crate) fn traffic_by_step(
    windows: &[StepWindow],
    clock: &ClockMap,
    analysis: &Analysis,
    redactor: &Redactor,
) -> Vec<StepTraffic> {
    let mut by_step: BTreeMap<String, (u64, u64, u64, BTreeSet<String>, u64)> = BTreeMap::new();
    for flow in &analysis.flows {
        let entry = by_step
            .entry(step_label(windows, clock.to_host(flow.first_ts)))
            .or_default();
        entry.4 += flow.tls.as_ref().map_or(0, |t| t.decrypted_bytes);
        entry.0 += flow.bytes_out;
        entry.1 += flow.bytes_in;
        let opaque = flow.opaque_bytes.min(flow.bytes_out + flow.bytes_in);
        entry.2 += opaque;
        if opaque > 0 {
            entry.3.insert(redactor.clean(&flow.host));
        }
    }
    let mut steps: Vec<StepTraffic> = by_step
        .into_iter()
        .map(
            |(step, (sent, received, opaque, hosts, decrypted))| StepTraffic {
                step,
                sent_bytes: sent,
                received_bytes: received,
                opaque_bytes: opaque,
                opaque_hosts: hosts.into_iter().collect(),
                decrypted_bytes: decrypted,
            },
        )
        .collect();
    steps.sort_by_key(|s| step_sort_key(&s.step));
    steps
}

/// The run's TLS flows over TCP as the differential judges them: step, redacted host, server port,
/// and the bytes the client sent after its ClientHello. Without a key the analysis counts a TLS
/// flow's bytes after the ClientHello, both ways, as opaque, so the client's share is its opaque
/// bytes minus what the server sent.
pub(crate) fn encrypted_flows(
    windows: &[StepWindow],
    clock: &ClockMap,
    analysis: &Analysis,
    redactor: &Redactor,
) -> Vec<crate::differential::EncryptedFlow> {
    analysis
        .flows
        .iter()
        .filter(|f| f.protocol == Protocol::Tls && f.transport == "tcp")
        .map(|f| crate::differential::EncryptedFlow {
            step: step_label(windows, clock.to_host(f.first_ts)),
            host: redactor.clean(&f.host),
            port: f.server.1,
            first_frame: f.first_frame,
            // A flow decrypted with a key log counts its client records as read, not opaque:
            // they are added back, so runs with and without keys measure the same bytes.
            bytes: f.opaque_bytes.saturating_sub(f.bytes_in)
                + f.tls.as_ref().map_or(0, |t| t.decrypted_bytes),
            complete: f.gap_bytes == 0,
        })
        .collect()
}

/// One TCP connection or UDP conversation, placed in the step it started in, for the run
/// directory's `flows.json` and the reports built from it (HTML, HAR, pcapng, Community IDs).
/// Addresses are kept: they are the network's, not the handset owner's identifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowItem {
    pub step: String,
    /// `tcp` or `udp`.
    pub transport: String,
    /// `ip:port` of the side that opened it (the handset), `[v6]:port` for IPv6.
    pub client: String,
    pub server: String,
    /// Best name of the server (SNI > HTTP Host > DNS answer > IP), redacted.
    pub host: String,
    pub protocol: String,
    /// Wireshark's frame number of its first packet.
    pub first_frame: u64,
    /// Seconds since the capture started, and how long it lasted.
    pub at: f64,
    pub duration: f64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub opaque_bytes: u64,
}

/// Every flow with its step (by the time it started), in frame order.
pub(crate) fn flows_by_step(
    windows: &[StepWindow],
    clock: &ClockMap,
    analysis: &Analysis,
    redactor: &Redactor,
) -> Vec<FlowItem> {
    let start = capture_start(analysis);
    let ms = |s: f64| (s * 1000.0).round() / 1000.0;
    analysis
        .flows
        .iter()
        .map(|flow| FlowItem {
            step: step_label(windows, clock.to_host(flow.first_ts)),
            transport: flow.transport.to_string(),
            client: std::net::SocketAddr::from(flow.client).to_string(),
            server: std::net::SocketAddr::from(flow.server).to_string(),
            host: redactor.clean(&flow.host),
            protocol: flow.protocol.as_str().to_string(),
            first_frame: flow.first_frame,
            at: if start.is_finite() {
                ms(flow.first_ts - start)
            } else {
                0.0
            },
            duration: ms((flow.last_ts - flow.first_ts).max(0.0)),
            bytes_out: flow.bytes_out,
            bytes_in: flow.bytes_in,
            opaque_bytes: flow.opaque_bytes.min(flow.bytes_out + flow.bytes_in),
        })
        .collect()
}

/// The capture time of the first flow or DNS question (what evidence's `at` counts from).
fn capture_start(analysis: &Analysis) -> f64 {
    analysis
        .flows
        .iter()
        .map(|f| f.first_ts)
        .chain(analysis.dns_queries.iter().map(|q| q.ts))
        .fold(f64::INFINITY, f64::min)
}

/// The label of the step whose window holds host time `t`.
fn step_label(windows: &[StepWindow], t: Timestamp) -> String {
    match windows.iter().find(|w| t >= w.start && t < w.end) {
        Some(w) => w.label(),
        None if windows.first().is_some_and(|w| t < w.start) => BEFORE_STEPS.to_string(),
        None => AFTER_STEPS.to_string(),
    }
}

/// Builds the outcome and the evidence of a run.
///
/// `clock` turns capture timestamps (the device's clock for the `device` source, the host's for
/// the `file:` sources) into host time, which the step windows use.
pub(crate) fn build(
    scenario: &str,
    identity: &DeviceIdentity,
    windows: &[StepWindow],
    clock: &ClockMap,
    analysis: &Analysis,
    redactor: &Redactor,
) -> (Outcome, Vec<EvidenceItem>) {
    let label_at = |capture_ts: Timestamp| step_label(windows, clock.to_host(capture_ts));
    let clean = |s: &str| redactor.clean(s);

    let mut hosts: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut leaks: BTreeMap<String, BTreeSet<Leak>> = BTreeMap::new();
    for window in windows {
        hosts.entry(window.label()).or_default();
        leaks.entry(window.label()).or_default();
    }
    for query in &analysis.dns_queries {
        hosts
            .entry(label_at(query.ts))
            .or_default()
            .entry(clean(&query.name))
            .or_default()
            .insert("dns".into());
    }
    for flow in &analysis.flows {
        // The resolver's own address says nothing: DNS is listed by the names asked.
        if flow.protocol == Protocol::Dns {
            continue;
        }
        hosts
            .entry(label_at(flow.first_ts))
            .or_default()
            .entry(clean(&flow.host))
            .or_default()
            .insert(flow.protocol.as_str().into());
    }
    let capture_start = capture_start(analysis);
    let mut evidence = Vec::new();
    for finding in &analysis.findings {
        let step = label_at(finding.ts);
        let leak = Leak {
            identifier: placeholder(&finding.identifier),
            host: clean(&finding.host),
            protocol: finding.protocol.as_str().into(),
            location: clean(&finding.location),
            encoding: clean(&finding.encoding),
            // The version only: which suite a phone and a server agree on (ChaCha20 where the CPU
            // lacks AES instructions) is not the firmware's choice, and snapshots compare firmware.
            tls: finding
                .tls
                .map(|t| tattle_analysis::tls_version_name(t.version)),
        };
        evidence.push(EvidenceItem {
            step: step.clone(),
            identifier: leak.identifier.clone(),
            encoding: leak.encoding.clone(),
            host: leak.host.clone(),
            protocol: leak.protocol.clone(),
            location: leak.location.clone(),
            frame: finding.frame,
            tls: finding.tls.map(|t| t.to_string()),
            at: if capture_start.is_finite() {
                ((finding.ts - capture_start) * 1000.0).round() / 1000.0
            } else {
                0.0
            },
        });
        leaks.entry(step).or_default().insert(leak);
    }

    let mut labels: Vec<String> = hosts.keys().chain(leaks.keys()).cloned().collect();
    labels.sort_by_key(|l| step_sort_key(l));
    labels.dedup();
    let steps = labels
        .into_iter()
        .map(|label| StepOutcome {
            hosts: hosts
                .get(&label)
                .map(|m| {
                    m.iter()
                        .map(|(host, protocols)| HostContact {
                            host: host.clone(),
                            protocols: protocols.iter().cloned().collect(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            leaks: leaks
                .get(&label)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
            size_correlations: Vec::new(),
            step: label,
        })
        .collect();
    let outcome = Outcome {
        scenario: scenario.to_string(),
        firmware: identity.firmware_key().key,
        device: OutcomeDevice {
            manufacturer: sanitize(&identity.manufacturer),
            model: sanitize(&identity.model),
            android: sanitize(&identity.android_release),
        },
        steps,
    };
    (outcome, evidence)
}

/// A host contacted in a step over a protocol, with the first frame that shows it: what a policy's
/// host rules name when they are broken (the outcome's `hosts` carry no frames, so snapshots stay
/// stable).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct ContactItem {
    pub step: String,
    pub host: String,
    /// `dns` for a name asked, else the flow's protocol.
    pub protocol: String,
    /// Wireshark's frame number of the first packet: the DNS question, or the flow's first packet.
    pub frame: u64,
}

/// Every (step, host, protocol) of the outcome's `hosts` with its first frame, sorted.
pub(crate) fn contacts(
    windows: &[StepWindow],
    clock: &ClockMap,
    analysis: &Analysis,
    redactor: &Redactor,
) -> Vec<ContactItem> {
    let label_at = |capture_ts: Timestamp| step_label(windows, clock.to_host(capture_ts));
    let mut first: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut note = |step: String, host: &str, protocol: &str, frame: u64| {
        let e = first
            .entry((step, redactor.clean(host), protocol.to_string()))
            .or_insert(frame);
        *e = (*e).min(frame);
    };
    for query in &analysis.dns_queries {
        note(label_at(query.ts), &query.name, "dns", query.frame);
    }
    for flow in &analysis.flows {
        if flow.protocol == Protocol::Dns {
            continue;
        }
        note(
            label_at(flow.first_ts),
            &flow.host,
            flow.protocol.as_str(),
            flow.first_frame,
        );
    }
    first
        .into_iter()
        .map(|((step, host, protocol), frame)| ContactItem {
            step,
            host,
            protocol,
            frame,
        })
        .collect()
}

/// Orders step labels by their number, `before-steps` first and `after-steps` last.
fn step_sort_key(label: &str) -> (usize, String) {
    if label == AFTER_STEPS {
        return (usize::MAX, label.to_string());
    }
    let n = label
        .split_once(' ')
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(usize::MAX - 1);
    (n, label.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use tattle_analysis::identifier::Identifier;
    use tattle_analysis::{DnsQuery, Finding, Flow, FlowEnd, HostSource};

    fn identity() -> DeviceIdentity {
        DeviceIdentity {
            serial: "x".into(),
            manufacturer: "Acme".into(),
            model: "Phone\x1b[31m".into(),
            product: "p".into(),
            device: "d".into(),
            brand: "acme".into(),
            fingerprint: "f".into(),
            build: "build 1".into(),
            build_id: "B1".into(),
            incremental: "1".into(),
            security_patch: None,
            baseband: None,
            android_release: "13".into(),
            sdk: 33,
        }
    }

    fn flow(host: &str, protocol: Protocol, ts: f64) -> Flow {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 77, 1, 10));
        Flow {
            transport: "tcp",
            client: (ip, 40000),
            server: (ip, 443),
            host: host.into(),
            host_source: HostSource::Sni,
            protocol,
            first_frame: 1,
            first_ts: ts,
            last_ts: ts,
            bytes_out: 1,
            bytes_in: 1,
            opaque_bytes: 0,
            gap_bytes: 0,
            alpn: vec![],
            end: FlowEnd::Fin,
            resumed: false,
            tls: None,
        }
    }

    #[test]
    fn places_traffic_in_steps_and_redacts() {
        let windows = vec![
            StepWindow {
                index: 1,
                name: "fresh-setup".into(),
                start: 100.0,
                end: 110.0,
            },
            StepWindow {
                index: 2,
                name: "send-sms".into(),
                start: 110.0,
                end: 120.0,
            },
        ];
        let ids = vec![Identifier::new("imei", "356938035643809")];
        let analysis = Analysis {
            frames: 3,
            flows: vec![flow("356938035643809.evil.example", Protocol::Tls, 112.0)],
            dns_queries: vec![DnsQuery {
                name: "a.example".into(),
                frame: 1,
                ts: 101.0,
                flow: 1,
            }],
            findings: vec![Finding {
                identifier: "imei".into(),
                encoding: "plain".into(),
                host: "356938035643809.evil.example".into(),
                host_source: HostSource::Sni,
                protocol: Protocol::Tls,
                location: "tls.sni".into(),
                frame: 3,
                flow: 1,
                ts: 112.0,
                tls: None,
            }],
            ..Analysis::default()
        };
        // Device clock 2 s ahead of the host's.
        let shifted = Analysis {
            flows: analysis
                .flows
                .iter()
                .map(|f| Flow {
                    first_ts: f.first_ts + 2.0,
                    ..f.clone()
                })
                .collect(),
            dns_queries: analysis
                .dns_queries
                .iter()
                .map(|q| DnsQuery {
                    ts: q.ts + 2.0,
                    flow: 1,
                    ..q.clone()
                })
                .collect(),
            findings: analysis
                .findings
                .iter()
                .map(|f| Finding {
                    ts: f.ts + 2.0,
                    ..f.clone()
                })
                .collect(),
            ..analysis
        };
        let (outcome, evidence) = build(
            "send-sms",
            &identity(),
            &windows,
            &ClockMap::constant(2.0),
            &shifted,
            &Redactor::new(&ids),
        );
        assert_eq!(outcome.steps.len(), 2);
        assert_eq!(outcome.steps[0].hosts[0].host, "a.example");
        assert_eq!(outcome.steps[1].leaks.len(), 1);
        assert_eq!(outcome.steps[1].leaks[0].host, "<imei>.evil.example");
        assert_eq!(outcome.device.model, "Phone?[31m");
        assert_eq!(evidence[0].frame, 3);
        assert_eq!(evidence[0].step, "2 send-sms");
        let text = format!("{outcome:?}{evidence:?}");
        assert!(!text.contains("356938035643809"));
    }

    #[test]
    fn traffic_outside_windows_gets_its_own_labels() {
        let windows = vec![StepWindow {
            index: 1,
            name: "idle".into(),
            start: 100.0,
            end: 110.0,
        }];
        let analysis = Analysis {
            dns_queries: vec![
                DnsQuery {
                    name: "early.example".into(),
                    frame: 1,
                    ts: 90.0,
                    flow: 1,
                },
                DnsQuery {
                    name: "late.example".into(),
                    frame: 2,
                    ts: 130.0,
                    flow: 1,
                },
            ],
            ..Analysis::default()
        };
        let (outcome, _) = build(
            "s",
            &identity(),
            &windows,
            &ClockMap::host(),
            &analysis,
            &Redactor::new(&[]),
        );
        let labels: Vec<&str> = outcome.steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(labels, vec![BEFORE_STEPS, "1 idle", AFTER_STEPS]);
    }

    #[test]
    fn traffic_is_summed_per_step_with_opaque_hosts() {
        let windows = vec![StepWindow {
            index: 1,
            name: "send-sms".into(),
            start: 100.0,
            end: 110.0,
        }];
        let mut tls = flow("a.example", Protocol::Tls, 101.0);
        tls.bytes_out = 1000;
        tls.opaque_bytes = 700;
        let mut http = flow("b.example", Protocol::Http, 102.0);
        http.bytes_out = 300;
        let analysis = Analysis {
            flows: vec![tls, http],
            ..Analysis::default()
        };
        let traffic = traffic_by_step(&windows, &ClockMap::host(), &analysis, &Redactor::new(&[]));
        assert_eq!(traffic.len(), 1);
        assert_eq!(traffic[0].sent_bytes, 1300);
        assert_eq!(traffic[0].opaque_bytes, 700);
        assert_eq!(traffic[0].received_bytes, 2);
        assert_eq!(traffic[0].readable_bytes(), 602);
        assert_eq!(traffic[0].opaque_hosts, vec!["a.example".to_string()]);
    }

    /// The differential sees TLS flows only, by the client's bytes after its ClientHello: opaque
    /// bytes (both ways, after the hello) minus what the server sent.
    #[test]
    fn encrypted_flows_are_tls_flows_with_the_clients_bytes_after_the_hello() {
        let windows = vec![StepWindow {
            index: 2,
            name: "send-sms".into(),
            start: 100.0,
            end: 110.0,
        }];
        let mut tls = flow("sms-tattle-canary-12345678.example", Protocol::Tls, 101.0);
        tls.bytes_out = 517 + 300;
        tls.bytes_in = 2000;
        tls.opaque_bytes = 300 + 2000;
        let mut lossy = flow("b.example", Protocol::Tls, 102.0);
        lossy.gap_bytes = 10;
        let http = flow("c.example", Protocol::Http, 103.0);
        // The same flow decrypted with a key log: its client records are read, not opaque.
        let mut decrypted = flow("d.example", Protocol::Tls, 104.0);
        decrypted.bytes_out = 517 + 300;
        decrypted.bytes_in = 2000;
        decrypted.opaque_bytes = 2000;
        decrypted.tls = Some(tattle_analysis::TlsSummary {
            version: Some(0x0304),
            cipher: Some(0x1301),
            decryption: tattle_analysis::Decryption::Decrypted,
            decrypted_bytes: 300,
            app: Some("http/1.1"),
        });
        let analysis = Analysis {
            flows: vec![tls, lossy, http, decrypted],
            ..Analysis::default()
        };
        let redactor = Redactor::new(&[Identifier::new("sms_body", "tattle-canary-12345678")]);
        let flows = encrypted_flows(&windows, &ClockMap::host(), &analysis, &redactor);
        assert_eq!(flows.len(), 3);
        assert_eq!(flows[2].bytes, flows[0].bytes, "keys change nothing");
        assert_eq!(flows[0].step, "2 send-sms");
        assert_eq!(flows[0].host, "sms-<sms_body>.example");
        assert_eq!((flows[0].port, flows[0].bytes), (443, 300));
        assert!(flows[0].complete && !flows[1].complete);
    }

    #[test]
    fn encoded_identifiers_in_names_are_redacted_too() {
        let ids = vec![Identifier::new("imei", "356938035643809")];
        let redactor = Redactor::new(&ids);
        // The IMEI without its check digit, as a DNS label.
        assert_eq!(
            redactor.clean("35693803564380.t.example"),
            "<imei>.t.example"
        );
        assert_eq!(redactor.clean("plain.example\n"), "plain.example?");
    }
}
