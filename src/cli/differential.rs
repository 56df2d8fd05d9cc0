//! `tattle run SCENARIO --differential N`: the series on one device, its verdicts printed (text or
//! JSON), and the exit code.
//!
//! Must not touch: what the verdicts mean (`differential`), how the runs are repeated (`runner`).

use anyhow::Context as _;

use super::{Exit, Format, print_json, progress};
use crate::device::Device;
use crate::report::{self, json::DifferentialReport};
use crate::runner::{self, RunOptions};
use crate::scenario::Scenario;

/// Runs the series and reports it: exit 2 when it stopped early (nothing judged), 1 when a flow
/// follows a planted value or the first run has findings, else 0. Snapshots are not compared: each
/// run's directory has its own `outcome.snap`.
pub(super) async fn run(
    scenario: &Scenario,
    device: &Device,
    options: &RunOptions,
    runs: usize,
    format: Format,
) -> anyhow::Result<Exit> {
    let multi = indicatif::MultiProgress::new();
    let progress = progress::TerminalProgress::new(&multi, &scenario.name);
    let series = runner::run_differential(scenario, device, options, runs, &progress)
        .await
        .with_context(|| {
            format!(
                "differential series of {} on {}",
                scenario.name,
                device.serial()
            )
        })?;
    progress.clear();
    let run_dirs: Vec<String> = series
        .runs
        .iter()
        .map(|r| r.dir.display().to_string())
        .collect();
    match format {
        Format::Json => print_json(&DifferentialReport::new(
            series.dir.display().to_string(),
            &series.outcome,
            &series.planted,
            &run_dirs,
            &series.verdicts,
            series.interrupted.as_deref(),
        ))?,
        Format::Text => {
            let traffic = series.runs.first().map(|r| r.traffic.as_slice());
            // The verdicts follow in detail (sizes, fit, confidence): not said twice.
            let mut outcome = series.outcome.clone();
            for step in &mut outcome.steps {
                step.size_correlations.clear();
            }
            print!(
                "{}",
                report::render_outcome(&outcome, traffic.unwrap_or_default())
            );
            print!(
                "{}",
                report::differential::render_differential(
                    &series.planted,
                    &run_dirs,
                    &series.verdicts,
                    series.interrupted.as_deref(),
                )
            );
            println!("  verdict: {}", series.record.display());
        }
    }
    Ok(if series.interrupted.is_some() {
        Exit::Environment
    } else if series.outcome.has_findings() {
        Exit::Findings
    } else {
        Exit::Clean
    })
}
