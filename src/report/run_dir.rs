//! A run directory read back: what every report format is rendered from, so `tattle report RUN_DIR`
//! renders an old run exactly as the runner did at its end.
//!
//! Owns reading `run.json` (the facts the reports need), `evidence.json`, `outcome.snap` and the
//! optional `flows.json` (runs before it have no flows: the reports say so), each with a size cap
//! and an error naming the file and the fix; and the [`RunView`] they make, with each host's
//! [`Destination`]. Everything read here was redacted when it was written; nothing here adds a
//! value.
//!
//! Must not touch: the capture's bytes (`pcapng` reads them), the terminal.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::destinations::{Classifier, Destination};
use super::json::{FlowsRecord, HttpExchange};
use crate::device::DeviceIdentity;
use crate::outcome::{EvidenceItem, FlowItem, Outcome, StepTraffic, StepWindow};
use crate::snapshot;

/// The run directory's files this module reads.
pub const RUN_FILE: &str = "run.json";
pub const EVIDENCE_FILE: &str = "evidence.json";
pub const FLOWS_FILE: &str = "flows.json";
/// The policy verdict's file (`runner` writes it when a run is judged by a policy).
pub const POLICY_FILE: &str = "policy.json";

/// JSON documents larger than this are refused (a run's are kilobytes; a huge one is not ours).
const MAX_DOCUMENT: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error(
        "{path}: {source}\n  help: give a run directory tattle made (runs/<scenario>@<firmware>-<time>-<n>)"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a document tattle wrote ({detail})\n  help: the file was changed or truncated; run the scenario again"
    )]
    Parse { path: PathBuf, detail: String },
    #[error(
        "{path}: {size} bytes is more than a run's document can be ({MAX_DOCUMENT})\n  help: this is not a file tattle wrote"
    )]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{path}: {source}")]
    Outcome {
        path: PathBuf,
        source: snapshot::SnapshotError,
    },
}

/// What `run.json` says that reports use (fields added later are optional).
#[derive(Debug, Clone, Deserialize)]
pub struct RunFacts {
    pub scenario: String,
    pub device: DeviceIdentity,
    pub firmware: String,
    #[serde(default)]
    pub clock_offset_seconds: f64,
    #[serde(default)]
    pub steps: Vec<StepWindow>,
    #[serde(default)]
    pub capture: Option<CaptureFacts>,
    #[serde(default)]
    pub damage: Vec<String>,
    #[serde(default)]
    pub interrupted: Option<String>,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CaptureFacts {
    pub file: String,
    pub bytes: u64,
    pub packets: u64,
}

#[derive(Debug, Deserialize)]
struct EvidenceFile {
    #[serde(default)]
    findings: Vec<EvidenceItem>,
    #[serde(default)]
    traffic: Vec<StepTraffic>,
}

/// One run, as every report sees it.
#[derive(Debug, Clone)]
pub struct RunView {
    pub dir: PathBuf,
    pub run: RunFacts,
    pub outcome: Outcome,
    pub evidence: Vec<EvidenceItem>,
    pub traffic: Vec<StepTraffic>,
    /// `None` for runs made before `flows.json` existed.
    pub flows: Option<Vec<FlowItem>>,
    pub http: Vec<HttpExchange>,
    /// Why `http` is empty when it is (no tshark at the run's end, a run before HAR…).
    pub http_note: Option<String>,
    /// Every host of the outcome, classified, sorted by host.
    pub destinations: Vec<Destination>,
    /// Whether the shipped vendor list knows the device's maker.
    pub maker_known: bool,
    /// The policy's verdict, when the run was judged by one (`policy.json`).
    pub policy: Option<crate::policy::PolicyReport>,
}

impl RunView {
    /// Reads a run directory.
    pub fn load(dir: &Path) -> Result<RunView, RunDirError> {
        let run: RunFacts = read_json(&dir.join(RUN_FILE))?;
        let evidence: EvidenceFile = read_json(&dir.join(EVIDENCE_FILE))?;
        let outcome = snapshot::load_outcome(dir).map_err(|source| RunDirError::Outcome {
            path: dir.join(snapshot::RUN_DIR_FILE),
            source,
        })?;
        let flows_path = dir.join(FLOWS_FILE);
        let flows: Option<FlowsRecord<FlowItem>> = if flows_path.exists() {
            Some(read_json(&flows_path)?)
        } else {
            None
        };
        let mut view = RunView::new(
            dir,
            run,
            outcome,
            evidence.findings,
            evidence.traffic,
            flows,
        );
        let policy_path = dir.join(POLICY_FILE);
        if policy_path.exists() {
            view.policy = Some(read_json(&policy_path)?);
        }
        Ok(view)
    }

    /// A view of what a run has in memory (the runner renders its reports with it).
    pub fn new(
        dir: &Path,
        run: RunFacts,
        outcome: Outcome,
        evidence: Vec<EvidenceItem>,
        traffic: Vec<StepTraffic>,
        flows: Option<FlowsRecord<FlowItem>>,
    ) -> RunView {
        let classifier = Classifier::new(&run.device.brand, &run.device.manufacturer);
        let hosts: BTreeSet<&str> = outcome
            .steps
            .iter()
            .flat_map(|s| s.hosts.iter().map(|h| h.host.as_str()))
            .chain(evidence.iter().map(|e| e.host.as_str()))
            .collect();
        let destinations = hosts.into_iter().map(|h| classifier.classify(h)).collect();
        let (flows, http, http_note) = match flows {
            Some(f) => (Some(f.flows), f.http, f.http_note),
            None => (
                None,
                Vec::new(),
                Some(format!(
                    "this run has no {FLOWS_FILE} (made by a tattle before it kept flows)"
                )),
            ),
        };
        RunView {
            dir: dir.to_path_buf(),
            maker_known: classifier.knows_maker(),
            policy: None,
            run,
            outcome,
            evidence,
            traffic,
            flows,
            http,
            http_note,
            destinations,
        }
    }

    pub fn destination(&self, host: &str) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.host == host)
    }

    /// The capture file, when the run has one.
    pub fn capture_path(&self) -> Option<PathBuf> {
        self.run
            .capture
            .as_ref()
            .map(|c| self.dir.join(&c.file))
            .filter(|p| p.is_file())
    }

    /// The run's TLS key log (`tls-keys.log`), when it kept one and it is within the key log cap.
    pub fn tls_keys(&self) -> Option<Vec<u8>> {
        let path = self.dir.join(crate::capture::keylog::RUN_DIR_FILE);
        let file = std::fs::File::open(path).ok()?;
        let mut keys = Vec::new();
        file.take(crate::capture::keylog::MAX_KEYLOG_BYTES)
            .read_to_end(&mut keys)
            .ok()?;
        Some(keys)
    }

    /// The step label of a leak's host and step: the flows of that step to that host.
    pub fn flows_of(&self, step: &str, host: &str) -> Vec<&FlowItem> {
        self.flows
            .iter()
            .flatten()
            .filter(|f| f.step == step && f.host == host)
            .collect()
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RunDirError> {
    let read_err = |source| RunDirError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    if size > MAX_DOCUMENT {
        return Err(RunDirError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let mut text = Vec::with_capacity(size as usize);
    file.take(MAX_DOCUMENT)
        .read_to_end(&mut text)
        .map_err(read_err)?;
    serde_json::from_slice(&text).map_err(|e| RunDirError::Parse {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::outcome::{HostContact, Leak, OutcomeDevice, StepOutcome};

    /// A host name as the network may send it: markup, a table separator, a quote.
    pub(crate) const HOSTILE: &str = "<script>alert(1)</script>|x\"`.evil.example";

    /// A run with one step that leaked `<imei>` to [`HOSTILE`], read as a run directory is.
    pub(crate) fn view() -> RunView {
        let run: RunFacts = serde_json::from_value(serde_json::json!({
            "scenario": "send-sms",
            "device": {
                "serial": "s", "manufacturer": "Xiaomi", "model": "Redmi 9", "product": "p",
                "device": "d", "brand": "Redmi", "fingerprint": "f", "build": "b",
                "build_id": "B", "incremental": "1", "security_patch": null, "baseband": null,
                "android_release": "13", "sdk": 33
            },
            "firmware": "fw",
            "steps": [{"index": 1, "name": "send-sms", "start": 100.0, "end": 110.0}],
            "capture": {"file": "capture.pcap", "bytes": 10, "packets": 1}
        }))
        .unwrap();
        let leak = Leak {
            identifier: "<imei>".into(),
            host: HOSTILE.into(),
            protocol: "http".into(),
            location: "http.body".into(),
            encoding: "plain".into(),
            tls: None,
        };
        let outcome = Outcome {
            scenario: "send-sms".into(),
            firmware: "fw".into(),
            device: OutcomeDevice {
                manufacturer: "Xiaomi".into(),
                model: "Redmi 9".into(),
                android: "13".into(),
            },
            steps: vec![StepOutcome {
                step: "1 send-sms".into(),
                hosts: vec![
                    HostContact {
                        host: HOSTILE.into(),
                        protocols: vec!["http".into()],
                    },
                    HostContact {
                        host: "api.miui.com".into(),
                        protocols: vec!["tls".into()],
                    },
                ],
                leaks: vec![leak],
                size_correlations: Vec::new(),
            }],
        };
        let evidence = vec![EvidenceItem {
            step: "1 send-sms".into(),
            identifier: "<imei>".into(),
            encoding: "plain".into(),
            host: HOSTILE.into(),
            protocol: "http".into(),
            location: "http.body".into(),
            frame: 7,
            tls: None,
            at: 1.0,
        }];
        RunView::new(Path::new("/runs/x"), run, outcome, evidence, vec![], None)
    }

    #[test]
    fn destinations_use_the_device_brand() {
        let v = view();
        assert!(v.maker_known);
        assert_eq!(
            v.destination("api.miui.com").unwrap().party,
            super::super::destinations::Party::First
        );
        assert!(v.flows.is_none());
        assert!(v.http_note.as_deref().unwrap().contains(FLOWS_FILE));
    }

    #[test]
    fn unreadable_directories_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunView::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("run.json") && err.contains("help:"), "{err}");
        std::fs::write(dir.path().join(RUN_FILE), "{ not json").unwrap();
        let err = RunView::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a document tattle wrote"), "{err}");
    }
}
