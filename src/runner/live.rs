//! Live analysis of a run: the capture's bytes, teed as they reach the disk, fed to the streaming
//! analyser while the steps run, so a finding is known (and announced) the moment it is made, and
//! the analysis is done when the capture stops.
//!
//! Owns the analyser of one run, its sink (everything kept, as `Analysis`; each new finding
//! announced once to the `RunObserver` as a redacted line) and the step the run is in.
//!
//! Must not touch: the capture file, the device, the terminal (the observer decides what to show).

use std::collections::HashSet;
use std::convert::Infallible;

use tokio::sync::mpsc::UnboundedReceiver;

use tattle_analysis::identifier::placeholder;
use tattle_analysis::{
    Analysis, AnalysisError, Analyzer, Damage, DnsQuery, Finding, Flow, Needles, Redactor, Sink,
};

use super::RunObserver;
use crate::outcome::EvidenceItem;

/// A run announces at most this many distinct findings live (a hostile handset could make every
/// packet a new host); the analysis keeps all of them regardless.
const MAX_ANNOUNCED: usize = 1000;

/// Keeps everything (an `Analysis`) and announces each new finding to the observer.
struct LiveSink<'a> {
    analysis: Analysis,
    /// The label of the step running now (`4 send-sms`).
    step: String,
    announced: HashSet<String>,
    redactor: &'a Redactor,
    observer: &'a dyn RunObserver,
}

impl Sink for LiveSink<'_> {
    fn flow(&mut self, flow: Flow, findings: Vec<Finding>) {
        self.analysis.flow(flow, findings);
    }

    fn dns_query(&mut self, query: DnsQuery) {
        self.analysis.dns_query(query);
    }

    fn live_finding(&mut self, f: &Finding) {
        if self.announced.len() >= MAX_ANNOUNCED {
            return;
        }
        let clean = |s: &str| self.redactor.clean(s);
        let notice = notice(
            &placeholder(&f.identifier),
            &clean(&f.host),
            &clean(&f.location),
            &clean(&f.encoding),
            &self.step,
        );
        if self.announced.insert(notice.clone()) {
            self.observer.live_finding(&notice);
        }
    }
}

/// One announced finding: `<imei> → HOST (LOCATION as ENCODING) in step 4 send-sms` (redacted parts).
fn notice(identifier: &str, host: &str, location: &str, encoding: &str, step: &str) -> String {
    format!("{identifier} → {host} ({location} as {encoding}) in step {step}")
}

/// The findings of `keyed` (the second pass, with the run's key logs, over the same capture) that
/// the live pass did not make: by index, in order. A finding is the same when its frame, identifier,
/// location and encoding are.
pub(super) fn found_only_in(keyed: &Analysis, live: &Analysis) -> Vec<usize> {
    let seen: HashSet<(u64, &str, &str, &str)> = live
        .findings
        .iter()
        .map(|f| (f.frame, &*f.identifier, &*f.location, &*f.encoding))
        .collect();
    keyed
        .findings
        .iter()
        .enumerate()
        .filter(|(_, f)| !seen.contains(&(f.frame, &*f.identifier, &*f.location, &*f.encoding)))
        .map(|(i, _)| i)
        .collect()
}

/// The announcements of the findings only the key logs showed, in the live notices' style and
/// marked as such (`…, found with the key log (decrypted TLS 1.3 …)`), each once, from the run's
/// redacted evidence (one item per finding, in the analysis's order).
pub(super) fn keyed_notices(evidence: &[EvidenceItem], keyed_only: &[usize]) -> Vec<String> {
    let mut announced = HashSet::new();
    keyed_only
        .iter()
        .filter_map(|&i| evidence.get(i))
        .map(|e| {
            format!(
                "{}, found with the key log ({})",
                notice(&e.identifier, &e.host, &e.location, &e.encoding, &e.step),
                e.carried_over()
            )
        })
        .filter(|n| announced.insert(n.clone()))
        .take(MAX_ANNOUNCED)
        .collect()
}

/// The analyser of one run, fed from the capture's tee.
pub(super) struct LiveAnalysis<'a> {
    analyzer: Analyzer<LiveSink<'a>>,
    chunks: UnboundedReceiver<Vec<u8>>,
    /// Set when the stream is not a capture: nothing more is fed.
    failed: Option<AnalysisError>,
}

impl<'a> LiveAnalysis<'a> {
    pub fn new(
        needles: &Needles,
        redactor: &'a Redactor,
        observer: &'a dyn RunObserver,
        chunks: UnboundedReceiver<Vec<u8>>,
    ) -> Self {
        let sink = LiveSink {
            analysis: Analysis::default(),
            step: crate::outcome::BEFORE_STEPS.to_string(),
            announced: HashSet::new(),
            redactor,
            observer,
        };
        LiveAnalysis {
            analyzer: Analyzer::with_needles(needles, sink),
            chunks,
            failed: None,
        }
    }

    /// Findings made from now on are announced as made in step `label`.
    pub fn set_step(&mut self, label: String) {
        self.analyzer.sink_mut().step = label;
    }

    /// Analyses chunks as they arrive, for as long as it is polled: run it beside what the run
    /// waits for (`select!`). Cancel-safe: a chunk is either fed whole or still queued. Never
    /// returns (once the capture has ended, it waits forever).
    pub async fn follow(&mut self) -> Infallible {
        while let Some(chunk) = self.chunks.recv().await {
            self.feed(&chunk);
        }
        std::future::pending().await
    }

    fn feed(&mut self, chunk: &[u8]) {
        if self.failed.is_none()
            && let Err(e) = self.analyzer.feed(chunk)
        {
            self.failed = Some(e);
        }
    }

    /// Analyses what the capture sent until it ended (call after it stopped), ends every flow
    /// still open and returns the analysis — the same as `analyze_file` on the capture file.
    pub async fn finish(mut self) -> Analysis {
        while let Some(chunk) = self.chunks.recv().await {
            self.feed(&chunk);
        }
        let mut redactor = None;
        let mut analysis = self
            .analyzer
            .end()
            .map_sink(|sink| {
                redactor = Some(sink.redactor);
                sink.analysis
            })
            .into_analysis();
        let redactor = redactor.expect("the sink was just taken");
        if let Some(e) = self.failed {
            analysis.damage.insert(
                0,
                Damage {
                    offset: Some(0),
                    after_frame: 0,
                    what: redactor.clean(&e.to_string()),
                },
            );
        }
        analysis
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tattle_analysis::testgen;

    use super::*;

    #[derive(Default)]
    struct Notices(Mutex<Vec<String>>);
    impl RunObserver for Notices {
        fn live_finding(&self, notice: &str) {
            self.0.lock().unwrap().push(notice.to_string());
        }
    }

    /// Fed in pieces, the live analysis ends with what `analyze_reader` gives on the same bytes,
    /// and announces each finding once, redacted, with its step.
    #[tokio::test]
    async fn live_equals_whole_capture_and_announces_once() {
        let ids = testgen::identifiers();
        let capture = testgen::Generator::new(7)
            .write(Vec::new(), 300_000)
            .unwrap()
            .into_inner();
        let whole = tattle_analysis::analyze_reader(&capture[..], &ids).unwrap();
        assert!(!whole.findings.is_empty());

        let observer = Notices::default();
        let redactor = Redactor::new(&ids);
        let (tee, chunks) = tokio::sync::mpsc::unbounded_channel();
        let mut live = LiveAnalysis::new(&Needles::new(&ids), &redactor, &observer, chunks);
        live.set_step("1 send-sms".into());
        for piece in capture.chunks(1000) {
            tee.send(piece.to_vec()).unwrap();
        }
        drop(tee);
        assert_eq!(live.finish().await, whole);
        let notices = observer.0.into_inner().unwrap();
        assert!(!notices.is_empty());
        let unique: HashSet<&String> = notices.iter().collect();
        assert_eq!(unique.len(), notices.len(), "{notices:?}");
        for n in &notices {
            assert!(
                n.starts_with("<imei> → ") || n.starts_with("<phone_number> → "),
                "{n}"
            );
            assert!(n.ends_with(" in step 1 send-sms"), "{n}");
            assert!(
                !n.contains(testgen::IMEI) && !n.contains("6598765432"),
                "{n}"
            );
        }
    }

    /// What a second pass found beyond the live one is told apart by frame, identifier, location
    /// and encoding, and announced once each in the live style, marked.
    #[test]
    fn findings_only_the_keys_showed_are_announced_once_and_marked() {
        let ids = testgen::identifiers();
        let capture = testgen::Generator::new(7)
            .write(Vec::new(), 300_000)
            .unwrap()
            .into_inner();
        let keyed = tattle_analysis::analyze_reader(&capture[..], &ids).unwrap();
        assert!(keyed.findings.len() >= 2, "{}", keyed.findings.len());
        let mut live = keyed.clone();
        live.findings.remove(0);
        assert_eq!(found_only_in(&keyed, &live), [0]);
        let mut live = keyed.clone();
        live.findings[1].encoding = "something else".into();
        assert_eq!(found_only_in(&keyed, &live), [1]);
        assert!(found_only_in(&keyed, &keyed).is_empty());

        let item = |step: &str, tls: Option<&str>| EvidenceItem {
            step: step.into(),
            identifier: "<imei>".into(),
            encoding: "plain".into(),
            host: "activate.kestrelcloud.net".into(),
            protocol: "tls".into(),
            location: "http.body".into(),
            frame: 9,
            tls: tls.map(Into::into),
            at: 1.0,
        };
        let tls = Some("TLS 1.3 TLS_AES_128_GCM_SHA256");
        let evidence = [
            item("1 fresh-setup", tls),
            item("1 fresh-setup", tls),
            item("4 send-sms", None),
        ];
        assert_eq!(
            keyed_notices(&evidence, &[0, 1, 2, 7]),
            [
                "<imei> → activate.kestrelcloud.net (http.body as plain) in step 1 fresh-setup, \
                 found with the key log (decrypted TLS 1.3 TLS_AES_128_GCM_SHA256)",
                "<imei> → activate.kestrelcloud.net (http.body as plain) in step 4 send-sms, \
                 found with the key log (tls)"
            ]
        );
    }

    #[tokio::test]
    async fn a_stream_that_is_not_a_capture_is_damage() {
        let observer = Notices::default();
        let redactor = Redactor::new(&[]);
        let (tee, chunks) = tokio::sync::mpsc::unbounded_channel();
        let live = LiveAnalysis::new(&Needles::new(&[]), &redactor, &observer, chunks);
        tee.send(b"not a capture at all".to_vec()).unwrap();
        drop(tee);
        let analysis = live.finish().await;
        assert_eq!(analysis.frames, 0);
        assert!(
            analysis.damage[0].what.contains("not a pcap"),
            "{:?}",
            analysis.damage
        );
    }
}
