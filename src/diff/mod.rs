//! Diff: what changed from one build's outcomes to another's, as changes a regulator can quote.
//!
//! Owns reading each side (a `.snap` file, a run directory, or a folder of either: one build's
//! set), pairing the two sets by scenario and their steps by name, finding each change —
//! identifiers and hosts added or removed, an identifier's encoding, transport (protocol, and the
//! TLS version it was decrypted from) or place changed, steps and scenarios only one side has —
//! and wording each in a sentence (`sentence`); the typed document they make (`model`), and its
//! text and Markdown (`render`).
//!
//! Must not touch: the terminal and exit codes (the CLI prints and decides), the device, the
//! analysis. Outcomes hold identifier kinds, never values, so nothing here can reveal one.

pub mod model;
pub mod render;
mod sentence;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::outcome::{HostContact, Leak, Outcome, StepOutcome};
use crate::snapshot::{self, SnapshotError};
use model::{
    Build, Carriage, Change, ChangeKind, DIFF_FORMAT_VERSION, DiffDocument, OutcomeRef,
    ScenarioDiff,
};
pub use sentence::Style;

/// A series' `differential.json` larger than this is not read (it lists every flow group).
const MAX_SERIES_BYTES: u64 = 64 * 1024 * 1024;

/// Entries read from one folder: a folder of more is not one build's set of outcomes.
const MAX_FOLDER_ENTRIES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} holds no outcome: give a .snap file, a run directory (with outcome.snap) or a \
         folder of either"
    )]
    Empty { path: PathBuf },
    #[error(
        "{path} holds {count} outcomes of scenario `{scenario}` ({files}): a folder is one build's \
         set, one outcome per scenario; give the two files to compare, or a folder per build"
    )]
    Ambiguous {
        path: PathBuf,
        scenario: String,
        count: usize,
        files: String,
    },
    #[error("{path} has more than {MAX_FOLDER_ENTRIES} entries: give one build's folder")]
    TooMany { path: PathBuf },
    #[error(
        "{path}: not a differential series' verdict ({why}); give the directory \
         `tattle run --differential N` printed, or its differential.json"
    )]
    Series { path: PathBuf, why: String },
}

/// The outcome a series' `differential.json` holds (bounded like a snapshot).
fn series_outcome(file: &Path) -> Result<Outcome, DiffError> {
    let failed = |why: String| DiffError::Series {
        path: file.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(file).map_err(|e| failed(e.to_string()))?;
    if meta.len() > MAX_SERIES_BYTES {
        return Err(failed(format!("larger than {} bytes", MAX_SERIES_BYTES)));
    }
    #[derive(serde::Deserialize)]
    struct Series {
        outcome: Outcome,
    }
    let text = std::fs::read(file).map_err(|e| failed(e.to_string()))?;
    serde_json::from_slice::<Series>(&text)
        .map(|s| s.outcome)
        .map_err(|e| failed(e.to_string()))
}

/// One side of a diff: the path given and the outcomes read from it, by scenario.
#[derive(Debug, Clone)]
pub struct OutcomeSet {
    pub path: PathBuf,
    /// `(file, outcome)`, one per scenario.
    pub outcomes: Vec<(PathBuf, Outcome)>,
    /// True when the path named a single outcome (a file or a run directory).
    pub single: bool,
}

impl OutcomeSet {
    /// The outcome of a run just made (the one `load` would read back from its run directory),
    /// known as `name` in what the comparison prints instead of the directory's path.
    pub fn of_run(run: &crate::runner::RunResult, name: &str) -> OutcomeSet {
        OutcomeSet {
            path: PathBuf::from(name),
            outcomes: vec![(run.dir.join(snapshot::RUN_DIR_FILE), run.outcome.clone())],
            single: true,
        }
    }

    /// Reads a `.snap` file, a run directory, or a folder holding `.snap` files and run
    /// directories (one outcome per scenario).
    pub fn load(path: &Path) -> Result<OutcomeSet, DiffError> {
        let run_file = path.join(snapshot::RUN_DIR_FILE);
        let series_file = path.join(crate::runner::DIFFERENTIAL_FILE);
        // A differential series: its directory or its `differential.json`, whose outcome carries
        // the size correlations.
        let series = if path.is_dir() && !run_file.is_file() && series_file.is_file() {
            Some(series_file)
        } else if path.is_file() && is_series(path) {
            Some(path.to_path_buf())
        } else {
            None
        };
        if let Some(file) = series {
            let outcome = series_outcome(&file)?;
            return Ok(OutcomeSet {
                path: path.to_path_buf(),
                outcomes: vec![(file, outcome)],
                single: true,
            });
        }
        if !path.is_dir() || run_file.is_file() {
            let file = if path.is_dir() {
                run_file
            } else {
                path.to_path_buf()
            };
            let outcome = snapshot::load_outcome(&file)?;
            return Ok(OutcomeSet {
                path: path.to_path_buf(),
                outcomes: vec![(file, outcome)],
                single: true,
            });
        }
        let read_error = |source| DiffError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for (n, entry) in std::fs::read_dir(path).map_err(read_error)?.enumerate() {
            if n >= MAX_FOLDER_ENTRIES {
                return Err(DiffError::TooMany {
                    path: path.to_path_buf(),
                });
            }
            let entry_path = entry.map_err(read_error)?.path();
            if entry_path.is_dir() {
                let inner = entry_path.join(snapshot::RUN_DIR_FILE);
                if inner.is_file() {
                    files.push(inner);
                }
            } else if entry_path.extension().is_some_and(|e| e == "snap") {
                files.push(entry_path);
            }
        }
        files.sort();
        let mut by_scenario: BTreeMap<String, Vec<(PathBuf, Outcome)>> = BTreeMap::new();
        for file in files {
            let outcome = snapshot::load_outcome(&file)?;
            by_scenario
                .entry(outcome.scenario.clone())
                .or_default()
                .push((file, outcome));
        }
        if by_scenario.is_empty() {
            return Err(DiffError::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut outcomes = Vec::new();
        for (scenario, mut found) in by_scenario {
            if found.len() > 1 {
                return Err(DiffError::Ambiguous {
                    path: path.to_path_buf(),
                    count: found.len(),
                    files: found
                        .iter()
                        .map(|(f, _)| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    scenario,
                });
            }
            outcomes.append(&mut found);
        }
        Ok(OutcomeSet {
            path: path.to_path_buf(),
            outcomes,
            single: false,
        })
    }

    fn build(&self) -> Build {
        let firmwares: BTreeSet<&str> = self
            .outcomes
            .iter()
            .map(|(_, o)| o.firmware.as_str())
            .collect();
        Build {
            path: self.path.display().to_string(),
            firmwares: firmwares.into_iter().map(str::to_string).collect(),
        }
    }
}

fn outcome_ref(file: &Path, outcome: &Outcome) -> OutcomeRef {
    let device = &outcome.device;
    let name = if device.model.starts_with(&device.manufacturer) {
        device.model.clone()
    } else {
        format!("{} {}", device.manufacturer, device.model)
    };
    OutcomeRef {
        file: file.display().to_string(),
        firmware: outcome.firmware.clone(),
        device: format!("{name}, Android {}", device.android),
    }
}

/// Compares build A's set with build B's. Two single outcomes are compared with each other even
/// when their scenario names differ (the user named both); sets are paired by scenario.
pub fn compare(a: &OutcomeSet, b: &OutcomeSet) -> DiffDocument {
    type Side<'s> = Option<&'s (PathBuf, Outcome)>;
    let mut pairs: Vec<(String, Side, Side)> = Vec::new();
    if a.single && b.single {
        let (sa, sb) = (&a.outcomes[0], &b.outcomes[0]);
        let name = if sa.1.scenario == sb.1.scenario {
            sa.1.scenario.clone()
        } else {
            format!("{} / {}", sa.1.scenario, sb.1.scenario)
        };
        pairs.push((name, Some(sa), Some(sb)));
    } else {
        let names: BTreeSet<&str> = a
            .outcomes
            .iter()
            .chain(&b.outcomes)
            .map(|(_, o)| o.scenario.as_str())
            .collect();
        for name in names {
            let find = |set: &'_ OutcomeSet| -> Option<usize> {
                set.outcomes.iter().position(|(_, o)| o.scenario == name)
            };
            pairs.push((
                name.to_string(),
                find(a).map(|i| &a.outcomes[i]),
                find(b).map(|i| &b.outcomes[i]),
            ));
        }
    }
    let name_scenario = pairs.len() > 1;
    let mut scenarios = Vec::new();
    for (name, sa, sb) in pairs {
        let mut scenario = ScenarioDiff {
            scenario: name,
            a: sa.map(|(f, o)| outcome_ref(f, o)),
            b: sb.map(|(f, o)| outcome_ref(f, o)),
            changes: Vec::new(),
        };
        scenario.changes = match (sa, sb) {
            // Size correlations exist only where a differential series measured them: one side's
            // absence says nothing when that side was a single run.
            (Some((fa, oa)), Some((fb, ob))) => {
                compare_outcomes(oa, ob, is_series(fa) && is_series(fb))
            }
            (Some(_), None) => vec![bare(ChangeKind::ScenarioOnlyInA)],
            (None, Some(_)) => vec![bare(ChangeKind::ScenarioOnlyInB)],
            (None, None) => Vec::new(),
        };
        for i in 0..scenario.changes.len() {
            let text = sentence::say(&scenario, &scenario.changes[i], name_scenario, Style::Plain);
            scenario.changes[i].sentence = text;
        }
        scenarios.push(scenario);
    }
    let sentences = scenarios
        .iter()
        .flat_map(|s| s.changes.iter().map(|c| c.sentence.clone()))
        .collect::<Vec<_>>();
    DiffDocument {
        format_version: DIFF_FORMAT_VERSION,
        a: a.build(),
        b: b.build(),
        same: sentences.is_empty(),
        scenarios,
        sentences,
    }
}

/// A change with only its kind set; the compare functions fill in the rest.
fn bare(kind: ChangeKind) -> Change {
    Change {
        kind,
        step: None,
        when: None,
        identifier: None,
        host: None,
        carried_in_a: Vec::new(),
        carried_in_b: Vec::new(),
        protocols_in_a: Vec::new(),
        protocols_in_b: Vec::new(),
        slopes_in_a: Vec::new(),
        slopes_in_b: Vec::new(),
        sentence: String::new(),
    }
}

/// `send-sms` of `4 send-sms`; `before-steps` of `0 before-steps`; a label without a number is
/// its own name (`after-steps`).
fn step_name(label: &str) -> &str {
    match label.split_once(' ') {
        Some((n, name)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => name,
        _ => label,
    }
}

/// Each step keyed by its name and how many steps of that name came before it (the second `idle`
/// is `(idle, 1)`), so a step inserted in B does not make every later step look changed.
fn keyed_steps(outcome: &Outcome) -> Vec<((&str, usize), &StepOutcome)> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    outcome
        .steps
        .iter()
        .map(|s| {
            let name = step_name(&s.step);
            let n = seen.entry(name).or_default();
            let key = (name, *n);
            *n += 1;
            (key, s)
        })
        .collect()
}

/// The steps of both outcomes in B's order, with A's steps that B lacks placed after the B step
/// that followed them in A.
fn compare_outcomes(a: &Outcome, b: &Outcome, sizes: bool) -> Vec<Change> {
    let steps_a = keyed_steps(a);
    let steps_b = keyed_steps(b);
    let names_a = a
        .steps
        .iter()
        .map(|s| step_name(&s.step))
        .collect::<Vec<_>>();
    let names_b = b
        .steps
        .iter()
        .map(|s| step_name(&s.step))
        .collect::<Vec<_>>();
    let repeated = |names: &[&str], name: &str| names.iter().filter(|n| **n == name).count() > 1;
    let when = |step: &StepOutcome, names: &[&str]| {
        sentence::when(&step.step, repeated(names, step_name(&step.step)))
    };
    let mut changes = Vec::new();
    let mut b_index = 0;
    for (key, sa) in &steps_a {
        match steps_b.iter().position(|(kb, _)| kb == key) {
            Some(pos) => {
                // B's steps before the match that A has not: added.
                for (kb, sb) in &steps_b[b_index.min(pos)..pos] {
                    if !steps_a.iter().any(|(ka, _)| ka == kb) {
                        step_only(
                            &mut changes,
                            sb,
                            when(sb, &names_b),
                            ChangeKind::StepAdded,
                            sizes,
                        );
                    }
                }
                b_index = b_index.max(pos + 1);
                let sb = steps_b[pos].1;
                compare_step(&mut changes, sa, sb, when(sb, &names_b), sizes);
            }
            None => step_only(
                &mut changes,
                sa,
                when(sa, &names_a),
                ChangeKind::StepRemoved,
                sizes,
            ),
        }
    }
    for (kb, sb) in &steps_b[b_index.min(steps_b.len())..] {
        if !steps_a.iter().any(|(ka, _)| ka == kb) {
            step_only(
                &mut changes,
                sb,
                when(sb, &names_b),
                ChangeKind::StepAdded,
                sizes,
            );
        }
    }
    changes
}

/// A step only one side has: the step, then what it sends and contacts (against nothing).
fn step_only(
    changes: &mut Vec<Change>,
    step: &StepOutcome,
    when: String,
    kind: ChangeKind,
    sizes: bool,
) {
    let mut change = bare(kind);
    change.step = Some(step.step.clone());
    change.when = Some(when.clone());
    changes.push(change);
    let empty = StepOutcome {
        step: step.step.clone(),
        hosts: Vec::new(),
        leaks: Vec::new(),
        size_correlations: Vec::new(),
    };
    if kind == ChangeKind::StepAdded {
        compare_step(changes, &empty, step, when, sizes);
    } else {
        compare_step(changes, step, &empty, when, sizes);
    }
}

fn carriage(leak: &Leak) -> Carriage {
    Carriage {
        protocol: leak.protocol.clone(),
        tls: leak.tls.clone(),
        location: leak.location.clone(),
        encoding: leak.encoding.clone(),
    }
}

/// Leaks by (identifier, host), each with the ways it was carried.
fn leaks_by_target(leaks: &[Leak]) -> BTreeMap<(&str, &str), BTreeSet<Carriage>> {
    let mut map: BTreeMap<(&str, &str), BTreeSet<Carriage>> = BTreeMap::new();
    for leak in leaks {
        map.entry((&leak.identifier, &leak.host))
            .or_default()
            .insert(carriage(leak));
    }
    map
}

fn hosts_by_name(hosts: &[HostContact]) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut map: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for host in hosts {
        map.entry(&host.host)
            .or_default()
            .extend(host.protocols.iter().map(String::as_str));
    }
    map
}

/// A series' `differential.json`, whose outcome carries size correlations (`.snap` files and run
/// directories never do).
fn is_series(file: &Path) -> bool {
    file.file_name()
        .is_some_and(|n| n == crate::runner::DIFFERENTIAL_FILE)
}

/// Size correlations by (identifier, host), each with its slope classes.
fn slopes_by_target(step: &StepOutcome) -> BTreeMap<(&str, &str), BTreeSet<&str>> {
    let mut map: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for c in &step.size_correlations {
        map.entry((&c.identifier, &c.host))
            .or_default()
            .insert(&c.slope);
    }
    map
}

/// The changes within one step present on both sides (either may be empty): leaks first, then
/// size correlations (when `sizes`: both sides were differential series), then hosts.
fn compare_step(
    changes: &mut Vec<Change>,
    a: &StepOutcome,
    b: &StepOutcome,
    when: String,
    sizes: bool,
) {
    // B's label; a step only A has is compared with an empty step of the same label.
    let label = &b.step;
    let start = |kind: ChangeKind, identifier: Option<&str>, host: &str| {
        let mut c = bare(kind);
        c.step = Some(label.clone());
        c.when = Some(when.clone());
        c.identifier = identifier.map(str::to_string);
        c.host = Some(host.to_string());
        c
    };
    let leaks_a = leaks_by_target(&a.leaks);
    let leaks_b = leaks_by_target(&b.leaks);
    let targets: BTreeSet<&(&str, &str)> = leaks_a.keys().chain(leaks_b.keys()).collect();
    let none = BTreeSet::new();
    for target in targets {
        let (identifier, host) = *target;
        let ca = leaks_a.get(target).unwrap_or(&none);
        let cb = leaks_b.get(target).unwrap_or(&none);
        if ca == cb {
            continue;
        }
        let with = |kind| {
            let mut c = start(kind, Some(identifier), host);
            c.carried_in_a = ca.iter().cloned().collect();
            c.carried_in_b = cb.iter().cloned().collect();
            c
        };
        if ca.is_empty() {
            changes.push(with(ChangeKind::LeakAdded));
            continue;
        }
        if cb.is_empty() {
            changes.push(with(ChangeKind::LeakRemoved));
            continue;
        }
        let project = |set: &BTreeSet<Carriage>, f: fn(&Carriage) -> (String, Option<String>)| {
            set.iter().map(f).collect::<BTreeSet<_>>()
        };
        let encoding = |c: &Carriage| (c.encoding.clone(), None);
        let transport = |c: &Carriage| (c.protocol.clone(), c.tls.clone());
        let location = |c: &Carriage| (c.location.clone(), None);
        let mut any = false;
        for (kind, f) in [
            (
                ChangeKind::EncodingChanged,
                encoding as fn(&Carriage) -> (String, Option<String>),
            ),
            (ChangeKind::TransportChanged, transport),
            (ChangeKind::LocationChanged, location),
        ] {
            if project(ca, f) != project(cb, f) {
                changes.push(with(kind));
                any = true;
            }
        }
        if !any {
            // Same encodings, transports and places, combined differently.
            changes.push(with(ChangeKind::LocationChanged));
        }
    }
    if sizes {
        let slopes_a = slopes_by_target(a);
        let slopes_b = slopes_by_target(b);
        let targets: BTreeSet<&(&str, &str)> = slopes_a.keys().chain(slopes_b.keys()).collect();
        for target in targets {
            let (sa, sb) = (slopes_a.get(target), slopes_b.get(target));
            let kind = match (sa, sb) {
                (None, Some(_)) => ChangeKind::SizeCorrelationAdded,
                (Some(_), None) => ChangeKind::SizeCorrelationRemoved,
                (Some(x), Some(y)) if x != y => ChangeKind::SizeCorrelationChanged,
                _ => continue,
            };
            let mut c = start(kind, Some(target.0), target.1);
            let list = |s: Option<&BTreeSet<&str>>| {
                s.map(|s| s.iter().map(|x| x.to_string()).collect())
                    .unwrap_or_default()
            };
            c.slopes_in_a = list(sa);
            c.slopes_in_b = list(sb);
            changes.push(c);
        }
    }
    let hosts_a = hosts_by_name(&a.hosts);
    let hosts_b = hosts_by_name(&b.hosts);
    let names: BTreeSet<&&str> = hosts_a.keys().chain(hosts_b.keys()).collect();
    for name in names {
        let pa = hosts_a.get(*name);
        let pb = hosts_b.get(*name);
        let kind = match (pa, pb) {
            (None, Some(_)) => ChangeKind::HostAdded,
            (Some(_), None) => ChangeKind::HostRemoved,
            (Some(x), Some(y)) if x != y => ChangeKind::HostTransportChanged,
            _ => continue,
        };
        let mut c = start(kind, None, name);
        let list = |p: Option<&BTreeSet<&str>>| {
            p.map(|p| p.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default()
        };
        c.protocols_in_a = list(pa);
        c.protocols_in_b = list(pb);
        changes.push(c);
    }
}

#[cfg(test)]
mod tests;
