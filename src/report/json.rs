//! The JSON documents tattle writes for machines, one typed struct per document, each with its
//! `format_version` (bumped on any incompatible change) and documented field by field:
//! `tattle run --format json` ([`RunReport`]) and a run directory's `run.json` ([`RunRecord`]) and
//! `evidence.json` ([`EvidenceRecord`]) in docs/run-json.md. (`tattle diff --format json` is
//! `crate::diff::model::DiffDocument`, docs/diff-json.md; `tattle analyze`'s is
//! `report::capture::Report`.)
//!
//! Every string in them is either tattle's own vocabulary or went through the run's `Redactor`
//! before it got here (outcomes, evidence, reasons, errors): no document holds an identifier's
//! value. Serialisation escapes control characters.
//!
//! Must not touch: files, the terminal, exit codes (callers write or print what this serialises).

use serde::{Deserialize, Serialize};

use crate::capture::{CaptureSummary, SourceRecord};
use crate::device::clock::ClockRecord;
use crate::device::{DeviceIdentity, FirmwareSource, MissingIdentifier};
use crate::outcome::{ContactItem, EvidenceItem, FlowItem, Outcome, StepTraffic, StepWindow};
use crate::snapshot::Comparison;

/// `format_version` of [`RunReport`], [`RunRecord`] and [`EvidenceRecord`].
pub const RUN_FORMAT_VERSION: u32 = 1;

/// `tattle run --format json`: a run's outcome, its evidence and its comparison with the accepted
/// snapshot.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RunReport<'a> {
    pub format_version: u32,
    /// The run directory (`capture.pcap`, `run.json`, `evidence.json`, `outcome.snap`, `report.txt`).
    pub run_dir: String,
    /// What the snapshot stores: hosts and leaks per step.
    pub outcome: &'a Outcome,
    /// Every finding with its step and Wireshark frame number.
    pub evidence: &'a [EvidenceItem],
    /// Bytes per step, readable and opaque.
    pub traffic: &'a [StepTraffic],
    /// The accepted snapshot the outcome was compared with (`<scenario>@<firmware>.snap`).
    pub snapshot: String,
    pub comparison: ComparisonOut,
    /// The `.snap.new` written for review (comparison `missing` or `different`).
    pub pending: Option<String>,
    /// Why the run stopped early; `null` when it ran every step.
    pub interrupted: Option<&'a str>,
    pub identifiers_missing: &'a [MissingIdentifier],
    pub capture: CaptureOut,
    /// Which capture source the run used, and how.
    pub capture_source: &'a SourceRecord,
    /// The policy's verdict (`--policy`); `null` without one.
    pub policy: Option<&'a crate::policy::PolicyReport>,
}

/// `tattle run --format json` over several devices (`--device A --device B`, `--all-devices`):
/// one entry per device, in the order given.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MultiRunReport<'a> {
    pub format_version: u32,
    pub runs: Vec<DeviceRun<'a>>,
}

/// One device's entry: its serial, and its run's document or why there is none.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeviceRun<'a> {
    /// The device's adb serial.
    pub serial: String,
    #[serde(flatten)]
    pub result: DeviceRunResult<'a>,
}

/// `run` or `error`, never both.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRunResult<'a> {
    /// The device's run, as `tattle run --format json` prints it for one device.
    Run(Box<RunReport<'a>>),
    /// Why this device's run could not be made (it went away before its first step, its capture
    /// could not start), redacted.
    Error(String),
}

/// How the outcome compares with its accepted snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComparisonOut {
    /// Equal to the accepted snapshot.
    Equal,
    /// No accepted snapshot yet: `pending` was written.
    Missing,
    /// Different from the accepted snapshot: `pending` was written.
    Different,
    /// The run was interrupted: a partial outcome is never compared.
    NotCompared,
    /// `--update=always|unseen`: the outcome was written as the accepted snapshot (new, or
    /// replacing a different one).
    Written,
}

impl ComparisonOut {
    /// The kind of a comparison, and the `.snap.new` it wrote.
    pub fn of(comparison: Option<&Comparison>) -> (Self, Option<String>) {
        let shown = |p: &std::path::Path| Some(p.display().to_string());
        match comparison {
            None => (ComparisonOut::NotCompared, None),
            Some(Comparison::Equal) => (ComparisonOut::Equal, None),
            Some(Comparison::Missing { pending }) => {
                (ComparisonOut::Missing, pending.as_deref().and_then(shown))
            }
            Some(Comparison::Different { pending, .. }) => {
                (ComparisonOut::Different, pending.as_deref().and_then(shown))
            }
            Some(Comparison::Written { .. }) => (ComparisonOut::Written, None),
        }
    }
}

/// What the capture recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CaptureOut {
    /// The capture's file name in the run directory.
    pub file: String,
    pub bytes: u64,
    pub packets: u64,
    /// The stream ended before tattle stopped it (device gone, tcpdump died, size cap).
    pub ended_early: bool,
}

impl From<&CaptureSummary> for CaptureOut {
    fn from(c: &CaptureSummary) -> Self {
        CaptureOut {
            file: c
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes: c.bytes,
            packets: c.packets,
            ended_early: c.ended_early,
        }
    }
}

/// A run directory's `run.json`: the run's facts — the device, the step windows, the clock offset,
/// the capture — with kinds of identifiers but never their values. Written also when the capture
/// could not start (`error` set, `capture` null, no steps).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RunRecord<'a> {
    pub format_version: u32,
    pub scenario: &'a str,
    pub scenario_file: String,
    /// The id planted in canaries (`{run_id}`).
    pub run_id: &'a str,
    /// The device's identity, every field redacted.
    pub device: DeviceIdentity,
    /// The snapshot key (`<scenario>@<firmware>`): `brand-device-id-incremental` of the build
    /// fingerprint, file-safe, or `--firmware`.
    pub firmware: &'a str,
    /// What the key was made from: the fingerprint, the props it is made of, the display id, or
    /// `--firmware`.
    pub firmware_source: FirmwareSource,
    /// Why the key is not the fingerprint's (missing or malformed, and what was used instead);
    /// `null` when it is, or when `--firmware` named it. Redacted.
    pub firmware_note: Option<String>,
    /// Device clock minus host clock, in seconds, as applied from the start (0 within the
    /// reading's uncertainty, and for the `file:` sources, whose timestamps are the host's).
    pub clock_offset_seconds: f64,
    /// The device's clock read at the start and the end, and whose clock the capture is on.
    pub clock: ClockRecord,
    /// Which capture source the run used, and how.
    pub capture_source: SourceRecord,
    /// Kinds of the identifiers looked for.
    pub identifiers_watched: Vec<&'a str>,
    pub identifiers_missing: &'a [MissingIdentifier],
    /// Each step's window on the host clock (Unix seconds).
    pub steps: &'a [StepWindow],
    pub capture: Option<CaptureOut>,
    /// Where the capture could not be read (`after frame N: what`).
    pub damage: Vec<String>,
    pub interrupted: Option<&'a str>,
    /// What the run decided that the scenario did not say (redacted): the method or alternative a
    /// step used, what the preflight skipped.
    pub notes: &'a [String],
    /// Why the run could not capture at all.
    pub error: Option<String>,
}

/// A run directory's `evidence.json`: every finding with its frame, and the bytes per step.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct EvidenceRecord<'a> {
    pub format_version: u32,
    pub findings: &'a [EvidenceItem],
    pub traffic: &'a [StepTraffic],
    /// Each host contacted per step and protocol, with its first frame.
    pub contacts: &'a [ContactItem],
}

/// `format_version` of [`DifferentialReport`].
pub const DIFFERENTIAL_FORMAT_VERSION: u32 = 1;

/// `tattle run --differential N --format json` and the series' `differential.json`: which encrypted
/// flows' sizes followed the planted values (docs/run-json.md, docs/differential.md). Lengths,
/// slopes and hosts only: never a planted value or a size.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DifferentialReport<'a> {
    pub format_version: u32,
    /// The series' own directory, where `differential.json` is.
    pub series_dir: String,
    /// The first run's outcome with `size_correlations` in its steps.
    pub outcome: &'a Outcome,
    /// Each run's directory, in order.
    pub run_dirs: &'a [String],
    /// Each planted kind, its alphabet and its length in each run.
    pub planted: &'a [crate::differential::PlantedKind],
    /// Groups of encrypted flows (step, host, port, ordinal) seen in any run.
    pub groups: usize,
    /// Groups whose sizes followed a planted value.
    pub follows: &'a [crate::differential::Follows],
    /// Groups that could not be judged, and why.
    pub not_judged: &'a [crate::differential::NotJudged],
    /// Why the series stopped early (then nothing was judged); `null` otherwise.
    pub interrupted: Option<&'a str>,
}

impl<'a> DifferentialReport<'a> {
    pub fn new(
        series_dir: String,
        outcome: &'a Outcome,
        planted: &'a [crate::differential::PlantedKind],
        run_dirs: &'a [String],
        verdicts: &'a crate::differential::Verdicts,
        interrupted: Option<&'a str>,
    ) -> Self {
        Self {
            format_version: DIFFERENTIAL_FORMAT_VERSION,
            series_dir,
            outcome,
            run_dirs,
            planted,
            groups: verdicts.groups,
            follows: &verdicts.follows,
            not_judged: &verdicts.not_judged,
            interrupted,
        }
    }
}

/// `format_version` of [`FlowsRecord`].
pub const FLOWS_FORMAT_VERSION: u32 = 1;

/// A run directory's `flows.json`: every flow with its step and Community ID, and the HTTP
/// exchanges read from the capture, all redacted (docs/reports.md). The reports that need more
/// than the outcome (HTML, HAR, pcapng, JUnit) are rendered from it, also by `tattle report` later.
#[derive(Debug, Serialize, Deserialize)]
pub struct FlowsRecord<F> {
    pub format_version: u32,
    pub flows: Vec<F>,
    #[serde(default)]
    pub http: Vec<HttpExchange>,
    /// Why `http` is empty or short, in words; `null` when it is complete.
    #[serde(default)]
    pub http_note: Option<String>,
}

/// A flow as `flows.json` writes it: the flow and its Community ID (v1, seed 0).
#[derive(Debug, Serialize)]
pub struct FlowOut<'a> {
    #[serde(flatten)]
    pub flow: &'a FlowItem,
    pub community_id: Option<String>,
}

impl<'a> FlowOut<'a> {
    pub fn new(flow: &'a FlowItem) -> Self {
        FlowOut {
            flow,
            community_id: super::community_id::of_flow(flow),
        }
    }
}

/// One HTTP request and its response, as a HAR entry needs it: names but no values (header values
/// and bodies are never kept; the path and host went through the run's redactor and query values
/// are replaced by `<value>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpExchange {
    /// The step of the flow that carried it.
    pub step: String,
    /// The flow's first frame (its id in `flows`), and the frames of the request and response.
    pub flow: u64,
    pub request_frame: u64,
    pub response_frame: Option<u64>,
    /// Capture time of the request (Unix seconds, the capture's clock) and the response's delay.
    pub started: f64,
    pub wait_seconds: Option<f64>,
    pub method: String,
    /// `http` or `https` (decrypted).
    pub scheme: String,
    pub host: String,
    /// Path and query, redacted.
    pub path: String,
    pub http_version: String,
    pub request_headers: Vec<String>,
    pub request_body_bytes: Option<u64>,
    pub status: Option<u16>,
    pub status_text: Option<String>,
    pub response_headers: Vec<String>,
    pub response_content_type: Option<String>,
    pub response_body_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use serde_json::Value;

    use super::*;
    use crate::device::clock::ClockReading;
    use crate::report::tests::{leak, outcome};

    const IMEI: &str = "356938035643809";

    /// The names documented as `` `name` `` at the start of a table row of `page`'s section
    /// `heading` (docs/run-json.md, docs/diff-json.md).
    fn documented(page: &str, heading: &str) -> BTreeSet<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(page);
        let text = std::fs::read_to_string(&path).unwrap();
        let section = text
            .split("\n## ")
            .find(|s| s.starts_with(heading))
            .unwrap_or_else(|| panic!("{page}: no section `{heading}`"));
        // Its own table, not its subsections' (`### follows items`).
        let section = section.split("\n### ").next().unwrap_or_default();
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_string)
            .collect()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    fn parsed(doc: &impl Serialize) -> (String, Value) {
        let text = serde_json::to_string_pretty(doc).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        (text, value)
    }

    #[test]
    fn differential_document_has_the_documented_fields() {
        use crate::differential::{EncryptedFlow, Plan, judge};
        let plan = Plan::new("s", &[("sms_body".into(), 22)], 4, 3).unwrap();
        let flows: Vec<Vec<EncryptedFlow>> = (0..4)
            .map(|run| {
                let flow = |host: &str, bytes: u64| EncryptedFlow {
                    step: "4 send-sms".into(),
                    host: host.into(),
                    port: 443,
                    first_frame: 1,
                    bytes,
                    complete: true,
                };
                vec![
                    flow("a.example", 100 + plan.kinds[0].lengths[run] as u64),
                    flow("b.example", [10, 90, 40, 200][run]),
                ]
            })
            .collect();
        let verdicts = judge(&plan, &flows);
        let mut o = outcome(vec![]);
        o.add_size_correlations(&verdicts.follows);
        let dirs = ["runs/a".to_string()];
        let doc = DifferentialReport::new("runs/s".into(), &o, &plan.kinds, &dirs, &verdicts, None);
        let (text, v) = parsed(&doc);
        assert_eq!(keys(&v), documented("run-json.md", "`differential.json`"));
        let follows = documented_items("`follows` items");
        assert_eq!(keys(&v["follows"][0]), follows);
        assert_eq!(v["follows"][0]["class"], "plain");
        assert_eq!(v["not_judged"][0]["reason"], "noisy_baseline");
        assert_eq!(
            v["outcome"]["steps"][0]["size_correlations"][0]["identifier"],
            "<sms_body>"
        );
        for value in (0..4).flat_map(|r| plan.values(r).iter().map(|(_, v)| v.clone())) {
            assert!(!text.contains(&value));
        }
    }

    /// The names in the table of the `### heading` subsection of run-json.md's `differential.json`.
    fn documented_items(heading: &str) -> BTreeSet<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/run-json.md");
        let text = std::fs::read_to_string(path).unwrap();
        let section = text
            .split("\n### ")
            .find(|s| s.starts_with(heading))
            .unwrap_or_else(|| panic!("run-json.md: no subsection {heading}"));
        section
            .split("\n## ")
            .next()
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn run_documents_have_the_documented_fields() {
        let o = outcome(vec![leak("<imei>", "plain")]);
        let missing = [MissingIdentifier {
            kind: "imsi".into(),
            reason: "the device has none (no SIM?)".into(),
        }];
        let capture = CaptureSummary {
            path: PathBuf::from("runs/x/capture.pcap"),
            bytes: 100,
            packets: 3,
            ended_early: false,
        };
        let source = SourceRecord {
            source: "file:-".into(),
            detail: "a capture stream on stdin".into(),
        };
        let (comparison, pending) = ComparisonOut::of(Some(&Comparison::Missing {
            pending: Some(PathBuf::from("snapshots/send-sms@fw.snap.new")),
        }));
        let report = RunReport {
            format_version: RUN_FORMAT_VERSION,
            run_dir: "runs/x".into(),
            outcome: &o,
            evidence: &[],
            traffic: &[],
            snapshot: "snapshots/send-sms@fw.snap".into(),
            comparison,
            pending,
            interrupted: None,
            identifiers_missing: &missing,
            capture: CaptureOut::from(&capture),
            capture_source: &source,
            policy: None,
        };
        let (text, v) = parsed(&report);
        assert_eq!(
            keys(&v),
            documented("run-json.md", "`tattle run --format json`")
        );
        assert_eq!(v["format_version"], 1);
        assert_eq!(v["comparison"], "missing");
        assert_eq!(v["pending"], "snapshots/send-sms@fw.snap.new");
        assert_eq!(v["capture"]["file"], "capture.pcap");
        assert_eq!(
            keys(&v["capture_source"]),
            documented("run-json.md", "`capture_source`")
        );
        assert_eq!(v["capture_source"]["source"], "file:-");
        assert_eq!(v["identifiers_missing"][0]["kind"], "imsi");
        assert_eq!(v["outcome"]["steps"][0]["leaks"][0]["identifier"], "<imei>");
        assert!(!text.contains(IMEI));

        let identity = DeviceIdentity {
            serial: IMEI.into(),
            manufacturer: "Acme".into(),
            model: "One".into(),
            product: "p".into(),
            device: "d".into(),
            brand: "acme".into(),
            fingerprint: format!("acme/{IMEI}"),
            build: "fw".into(),
            build_id: "ID1".into(),
            incremental: "1".into(),
            security_patch: Some("2024-08-05".into()),
            baseband: None,
            android_release: "13".into(),
            sdk: 33,
        };
        let key = identity.firmware_key();
        let redactor =
            tattle_analysis::Redactor::new(&[tattle_analysis::identifier::Identifier::new(
                "imei", IMEI,
            )]);
        let record = RunRecord {
            format_version: RUN_FORMAT_VERSION,
            scenario: "send-sms",
            scenario_file: "scenarios/send-sms.yaml".into(),
            run_id: "0badf00d",
            device: identity.redacted(&redactor),
            firmware: &key.key,
            firmware_source: key.source,
            firmware_note: key.note.as_deref().map(|n| redactor.clean(n)),
            clock_offset_seconds: 0.5,
            clock: ClockRecord {
                timestamps: "device",
                start: ClockReading {
                    offset_seconds: Some(0.5),
                    uncertainty_seconds: Some(0.06),
                    host_time: Some(1_795_590_000.0),
                    command: Some("date +%s.%N"),
                    unmeasured: None,
                },
                end: ClockReading::unmeasured("the device did not answer `date +%s.%N`"),
            },
            capture_source: source.clone(),
            identifiers_watched: vec!["imei"],
            identifiers_missing: &missing,
            steps: &[],
            capture: Some(CaptureOut::from(&capture)),
            damage: vec![],
            interrupted: None,
            notes: &[],
            error: None,
        };
        let (text, v) = parsed(&record);
        assert_eq!(keys(&v), documented("run-json.md", "`run.json`"));
        assert_eq!(
            keys(&v["device"]),
            documented("run-json.md", "`run.json`: `device`")
        );
        assert_eq!(
            keys(&v["clock"]),
            documented("run-json.md", "`run.json`: `clock`")
        );
        for side in ["start", "end"] {
            assert_eq!(
                keys(&v["clock"][side]),
                documented("run-json.md", "`run.json`: `clock.start`, `clock.end`")
            );
        }
        assert_eq!(v["clock"]["end"]["offset_seconds"], Value::Null);
        assert_eq!(v["device"]["serial"], "<imei>");
        assert_eq!(v["device"]["security_patch"], "2024-08-05");
        assert_eq!(v["device"]["baseband"], Value::Null);
        // `acme/<imei>` is no fingerprint: the key was made from the props, and the record says so.
        assert_eq!(v["firmware"], "acme-d-ID1-1");
        assert_eq!(v["firmware_source"], "props");
        assert!(
            v["firmware_note"]
                .as_str()
                .unwrap()
                .starts_with("ro.build.fingerprint is malformed"),
            "{text}"
        );
        assert!(!text.contains(IMEI), "{text}");

        let evidence = EvidenceRecord {
            format_version: RUN_FORMAT_VERSION,
            findings: &[],
            traffic: &[],
            contacts: &[],
        };
        let (_, v) = parsed(&evidence);
        assert_eq!(keys(&v), documented("run-json.md", "`evidence.json`"));
    }
}
