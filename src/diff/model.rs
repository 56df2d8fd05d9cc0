//! The typed output of `tattle diff` (`--format json`, docs/diff-json.md): plain serde structs and
//! nothing else, with the JSON Schema derived from them (`schema/diff.schema.json`).
//!
//! Every string is tattle's own vocabulary or comes from outcomes, which hold identifier kinds
//! (`<imei>`), never values.
//!
//! Must not touch: how changes are found (`diff`) or worded (`diff::sentence`).

use serde::Serialize;

/// `format_version` of [`DiffDocument`].
pub const DIFF_FORMAT_VERSION: u32 = 3;

/// `tattle diff A B`: what changed from build A's outcomes to build B's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DiffDocument {
    pub format_version: u32,
    pub a: Build,
    pub b: Build,
    /// True when no scenario changed: the same hosts and leaks, carried the same way, in every step.
    pub same: bool,
    /// Each scenario either build has, in name order; scenarios without a change included.
    pub scenarios: Vec<ScenarioDiff>,
    /// Every change's sentence, in the order of `scenarios` and their `changes`.
    pub sentences: Vec<String>,
}

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Build {
    /// The path as given: a `.snap` file, a run directory or a folder of either.
    pub path: String,
    /// The firmware keys of its outcomes (usually one).
    pub firmwares: Vec<String>,
}

/// One scenario compared across the two builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ScenarioDiff {
    pub scenario: String,
    /// Build A's outcome of it; `null` when only B ran it.
    pub a: Option<OutcomeRef>,
    /// Build B's outcome of it; `null` when only A ran it.
    pub b: Option<OutcomeRef>,
    /// What changed, step by step; empty when nothing did.
    pub changes: Vec<Change>,
}

/// Which outcome a side of a scenario is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct OutcomeRef {
    /// The `.snap` file, or the run directory's `outcome.snap`.
    pub file: String,
    pub firmware: String,
    /// `Kestrel Note 7 Lite, Android 13`.
    pub device: String,
}

/// The kinds of change, each with a sentence of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// B sends an identifier to a host (in a step) that A did not send there.
    LeakAdded,
    /// B no longer sends an identifier to a host that A sent it to.
    LeakRemoved,
    /// Both send it to the host; the encodings differ (`plain` → `md5`).
    EncodingChanged,
    /// Both send it to the host; how it travels differs (in the clear over HTTP → inside TLS 1.3).
    TransportChanged,
    /// Both send it to the host the same way; where in the traffic differs (`http.body` →
    /// `http.url`), or the combination of where and how does.
    LocationChanged,
    /// B contacts a host A did not (in that step).
    HostAdded,
    /// B no longer contacts a host A contacted.
    HostRemoved,
    /// Both contact the host; the protocols differ (`http` → `tls`).
    HostTransportChanged,
    /// B's run has a step A's has not.
    StepAdded,
    /// A's run has a step B's has not.
    StepRemoved,
    /// B's TLS traffic to a host grows with a planted identifier's length (a differential series'
    /// size correlation) where A's did not.
    SizeCorrelationAdded,
    /// B's TLS traffic to a host no longer grows with a planted identifier where A's did.
    SizeCorrelationRemoved,
    /// Both grow with it; by another slope class (`plain` → `compressed`).
    SizeCorrelationChanged,
    /// Only build A has an outcome of the scenario.
    ScenarioOnlyInA,
    /// Only build B has an outcome of the scenario.
    ScenarioOnlyInB,
}

/// One change, and the sentence that says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Change {
    pub kind: ChangeKind,
    /// The step's label (`4 send-sms`): B's, or A's for a step B no longer has; `null` for a
    /// scenario only one build has.
    pub step: Option<String>,
    /// The step in words (`when an SMS is sent`, `during setup`; the label when the step has no
    /// plainer meaning).
    pub when: Option<String>,
    /// The identifier's kind (`<imei>`); `null` for host, step and scenario changes.
    pub identifier: Option<String>,
    /// The host; `null` for step and scenario changes.
    pub host: Option<String>,
    /// How build A carried the identifier to the host (leaks); empty when it did not.
    pub carried_in_a: Vec<Carriage>,
    /// How build B carries it.
    pub carried_in_b: Vec<Carriage>,
    /// The protocols build A used with the host (host changes).
    pub protocols_in_a: Vec<String>,
    /// The protocols build B uses with the host.
    pub protocols_in_b: Vec<String>,
    /// Size correlation changes: the slope classes (`plain`, `base64`, `hex`, `compressed`,
    /// `other`) with which build A's TLS traffic to the host grew with the identifier; else empty.
    pub slopes_in_a: Vec<String>,
    /// The same for build B.
    pub slopes_in_b: Vec<String>,
    /// The change in one sentence a person can quote.
    pub sentence: String,
}

/// One way an identifier reached a host: the outcome's leak without its identifier and host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub struct Carriage {
    /// The protocol it was found in (`http`, `dns`, `tls`…).
    pub protocol: String,
    /// The TLS version it was decrypted from (`TLS 1.3`); `null` when seen in the clear.
    pub tls: Option<String>,
    /// Where in the traffic (`http.body`, `http.header:Cookie`, `tls.sni`…).
    pub location: String,
    /// How it was encoded (`plain`, `url`, `md5`, `md5+base64`…).
    pub encoding: String,
}
