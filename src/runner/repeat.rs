//! A differential series (`tattle run --differential N`): the same scenario run N times on one
//! device, each run planting values of other lengths for the scenario's canaries
//! (`differential::Plan`), every run in its own run directory; then the runs' encrypted flows are
//! judged together and the verdict written to a directory of the series' own
//! (`ROOT/<scenario>-differential@<firmware>-<UTC time>-<n>/differential.json`, 0700/0600), so that
//! every run's directory stays as its manifest lists it.
//!
//! Must not touch: the terminal (progress through `RunObserver`), exit codes, what the verdicts
//! mean (`differential`).

use std::path::PathBuf;

use super::{RunError, RunObserver, RunOptions, RunResult, files};
use crate::device::Device;
use crate::differential::{self, Plan, PlantedKind, Verdicts};
use crate::outcome::Outcome;
use crate::report::json::DifferentialReport;
use crate::scenario::Scenario;

#[derive(Debug, thiserror::Error)]
pub enum DifferentialError {
    /// The series cannot be planned (too few runs, nothing to plant): nothing ran.
    #[error(transparent)]
    Plan(#[from] differential::DifferentialError),
    /// A run could not start or finish; the runs before it keep their directories.
    #[error("differential run {run} of {runs}: {source}")]
    Run {
        run: usize,
        runs: usize,
        #[source]
        source: RunError,
    },
}

/// What a differential series produced.
pub struct DifferentialSeries {
    /// Each planted kind and its length in each run (never the values).
    pub planted: Vec<PlantedKind>,
    /// The runs, in order; fewer than planned when one was interrupted.
    pub runs: Vec<RunResult>,
    pub verdicts: Verdicts,
    /// The first run's outcome with the verdicts added (`StepOutcome::size_correlations`).
    pub outcome: Outcome,
    /// Why the series stopped early: then nothing was judged.
    pub interrupted: Option<String>,
    /// The series' own directory, with `differential.json`.
    pub dir: PathBuf,
    /// `differential.json`.
    pub record: PathBuf,
}

/// Runs `scenario` `runs` times on `device`, planting other lengths each time, and judges which
/// encrypted flows' sizes follow the planted values.
pub async fn run_differential(
    scenario: &Scenario,
    device: &Device,
    options: &RunOptions,
    runs: usize,
    observer: &dyn RunObserver,
) -> Result<DifferentialSeries, DifferentialError> {
    let plan = Plan::new(&scenario.name, &differential::bases(scenario), runs, seed())?;
    let mut results: Vec<RunResult> = Vec::with_capacity(runs);
    let mut interrupted = None;
    for run in 0..runs {
        let lengths: Vec<String> = plan
            .kinds
            .iter()
            .map(|k| format!("{} {}", k.kind, k.lengths[run]))
            .collect();
        observer.note(&format!(
            "differential run {}/{runs}: planted lengths {}",
            run + 1,
            lengths.join(", ")
        ));
        let mut planted = scenario.clone();
        for (kind, value) in &mut planted.identifiers {
            if let Some((_, v)) = plan.values(run).iter().find(|(k, _)| k == kind) {
                // Letters and digits: no `{` a template could read.
                value.clone_from(v);
            }
        }
        let result = super::run(&planted, device, options, observer)
            .await
            .map_err(|source| DifferentialError::Run {
                run: run + 1,
                runs,
                source,
            })?;
        let stopped = result.interrupted.clone();
        results.push(result);
        if let Some(why) = stopped {
            interrupted = Some(format!("run {} of {runs} stopped early: {why}", run + 1));
            break;
        }
    }
    let verdicts = if interrupted.is_none() {
        let flows: Vec<_> = results.iter().map(|r| r.encrypted_flows.clone()).collect();
        differential::judge(&plan, &flows)
    } else {
        Verdicts::default()
    };
    // `run` returns a result or an error, so the first run is there.
    let first = &results[0];
    let mut outcome = first.outcome.clone();
    outcome.add_size_correlations(&verdicts.follows);
    let run_dirs: Vec<String> = results
        .iter()
        .map(|r| r.dir.display().to_string())
        .collect();
    // A directory of its own: each run's directory is complete, its manifest final.
    let failed = |source| DifferentialError::Run {
        run: results.len(),
        runs,
        source,
    };
    let dir = files::create_run_dir(
        &options.runs_root,
        &format!("{}-differential", scenario.name),
        &outcome.firmware,
    )
    .map_err(failed)?;
    let document = DifferentialReport::new(
        dir.display().to_string(),
        &outcome,
        &plan.kinds,
        &run_dirs,
        &verdicts,
        interrupted.as_deref(),
    );
    let record = files::write_differential(&dir, &document).map_err(failed)?;
    if let Some(note) = files::write_series_reports(&dir, &first.dir, &outcome).map_err(failed)? {
        observer.note(&note);
    }
    Ok(DifferentialSeries {
        planted: plan.kinds,
        runs: results,
        verdicts,
        outcome,
        interrupted,
        dir,
        record,
    })
}

/// A seed for the planted values: from the system's randomness (through the crypto provider tattle's
/// TLS uses), else the clock.
fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .is_err()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return nanos ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(bytes)
}
