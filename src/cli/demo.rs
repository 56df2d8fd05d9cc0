//! `tattle demo`: the story in one command. Two builds of the same budget phone — cloud messaging on by
//! default, and opt-in — run as virtual handsets registered with the real adb server; the `send-sms`
//! scenario runs on both at once; tattle prints both outcomes and what changed. Everything it started
//! (handsets, their network sinks, adb registrations) is cleaned up, also on error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};

use super::{Exit, load_scenario, print_run_notes, progress::TerminalProgress};
use crate::adb::AdbServer;
use crate::device::Device;
use crate::report;
use crate::runner::{self, RunOptions};
use crate::vhandset::{self, HandsetConfig, RunningHandset};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where the two run directories are created.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// Firmware profile of build A.
    #[arg(long, default_value = "miui-cloud-default")]
    a: String,
    /// Firmware profile of build B.
    #[arg(long, default_value = "miui-cloud-optin")]
    b: String,
    /// Scenario to run on both (a built-in name or a file).
    #[arg(long, default_value = "send-sms")]
    scenario: String,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<Exit> {
    let scenario = match load_scenario(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Exit::Environment);
        }
    };
    if which("tcpdump").is_none() {
        return Err(anyhow!(
            "the virtual handsets capture with the host's tcpdump, which is not installed: apt-get install tcpdump"
        ));
    }
    let server = AdbServer::from_env();
    server
        .ensure_running()
        .await
        .context("the demo registers its virtual handsets with the adb server")?;

    let profile_a = Arc::new(super::load_profile(&args.a)?);
    let profile_b = Arc::new(super::load_profile(&args.b)?);
    let mut handsets: Vec<RunningHandset> = Vec::new();
    let result = async {
        for profile in [&profile_a, &profile_b] {
            let handset = vhandset::start(HandsetConfig {
                profile: profile.clone(),
                adb_port: 0,
            })
            .await
            .with_context(|| format!("starting the virtual handset `{}`", profile.name))?;
            handsets.push(handset);
        }
        for handset in &handsets {
            server.connect(&handset.serial()).await?;
            server
                .wait_for_device(&handset.serial(), Duration::from_secs(20))
                .await?;
        }
        println!(
            "tattle demo: the `{}` scenario on two builds of the same phone",
            scenario.name
        );
        for (tag, handset) in ["A", "B"].iter().zip(&handsets) {
            println!(
                "  {tag}: {} — {} (adb serial {})",
                handset.profile().name,
                // The profile's headline: its description up to the first colon.
                handset
                    .profile()
                    .description
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim(),
                handset.serial()
            );
        }
        println!();

        let multi = indicatif::MultiProgress::new();
        let options = RunOptions {
            runs_root: args.runs.clone(),
            ..RunOptions::default()
        };
        let device_a = Device::new(server.device(&handsets[0].serial()));
        let device_b = Device::new(server.device(&handsets[1].serial()));
        let progress_a = TerminalProgress::new(&multi, &format!("A {}", profile_a.name));
        let progress_b = TerminalProgress::new(&multi, &format!("B {}", profile_b.name));
        let (ra, rb) = tokio::join!(
            runner::run(&scenario, &device_a, &options, &progress_a),
            runner::run(&scenario, &device_b, &options, &progress_b),
        );
        progress_a.clear();
        progress_b.clear();
        let ra = ra.with_context(|| format!("running {} on A", scenario.name))?;
        let rb = rb.with_context(|| format!("running {} on B", scenario.name))?;

        for (tag, r) in [("A", &ra), ("B", &rb)] {
            println!(
                "== {tag}: {}",
                report::render_outcome(&r.outcome, &r.traffic).trim_start()
            );
            print_run_notes(r);
            println!();
        }
        let d = report::diff(&ra.outcome, &rb.outcome, &profile_a.name, &profile_b.name);
        println!("== What changed from A to B");
        print!("{}", report::render_diff(&d));
        println!();
        println!(
            "In one sentence: {}",
            one_sentence(&d, &profile_a.name, &profile_b.name)
        );
        let interrupted = ra.interrupted.is_some() || rb.interrupted.is_some();
        Ok::<_, anyhow::Error>(if interrupted {
            Exit::Environment
        } else {
            Exit::Clean
        })
    }
    .await;

    for handset in handsets {
        let _ = server.disconnect(&handset.serial()).await;
        handset.shutdown().await;
    }
    result
}

/// "the default build sends <imei> and <phone_number> to HOST when an SMS is sent; the opt-in build
/// does not" — built from the diff, never written in advance.
fn one_sentence(d: &report::OutcomeDiff, a: &str, b: &str) -> String {
    let mut gone: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    let mut appeared: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for step in &d.steps {
        let step_name = step
            .step
            .split_once(' ')
            .map_or(step.step.as_str(), |(_, n)| n);
        for leak in &step.leaks_gone {
            let e = gone.entry(step_name).or_default();
            e.0.insert(&leak.identifier);
            e.1.insert(&leak.host);
        }
        for leak in &step.leaks_appeared {
            let e = appeared.entry(step_name).or_default();
            e.0.insert(&leak.identifier);
            e.1.insert(&leak.host);
        }
    }
    let when = |step: &str| match step {
        "send-sms" => "when an SMS is sent".to_string(),
        "add-contact" => "when a contact is added".to_string(),
        "fresh-setup" => "at setup".to_string(),
        other => format!("in step `{other}`"),
    };
    let list = |set: &BTreeSet<&str>| {
        let items: Vec<&str> = set.iter().copied().collect();
        match items.as_slice() {
            [] => String::new(),
            [one] => one.to_string(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    };
    let mut sentences = Vec::new();
    for (step, (ids, hosts)) in &gone {
        sentences.push(format!(
            "build A ({a}) sends {} to {} {}; build B ({b}) does not.",
            list(ids),
            list(hosts),
            when(step)
        ));
    }
    for (step, (ids, hosts)) in &appeared {
        sentences.push(format!(
            "build B ({b}) sends {} to {} {}; build A ({a}) does not.",
            list(ids),
            list(hosts),
            when(step)
        ));
    }
    if sentences.is_empty() {
        format!("builds A ({a}) and B ({b}) send the same identifiers to the same hosts.")
    } else {
        sentences.join(" ")
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
