//! `tattle demo`: the story in one command. Two builds of the same budget phone — cloud messaging on by
//! default, and opt-in — run as virtual handsets registered with the real adb server; the `send-sms`
//! scenario runs on both at once; tattle prints both outcomes and what changed. Everything it started
//! (handsets, their network sinks, adb registrations) is cleaned up, also on error.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::{Exit, load_scenario, print_run_notes, progress::TerminalProgress};
use crate::adb::AdbServer;
use crate::capture::keylog::KeylogSource;
use crate::device::Device;
use crate::diff::{self, OutcomeSet};
use crate::report;
use crate::runner::{self, RunOptions};
use crate::vhandset::profile::Profile;
use crate::virtual_device::VirtualDevice;

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

pub async fn run(args: DemoArgs, server: AdbServer) -> anyhow::Result<Exit> {
    let scenario = match load_scenario(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Exit::Environment);
        }
    };
    server
        .ensure_running()
        .await
        .context("the demo registers its virtual handsets with the adb server")?;

    let profile_a = Arc::new(super::load_profile(&args.a)?);
    let profile_b = Arc::new(super::load_profile(&args.b)?);
    let mut handsets: Vec<VirtualDevice> = Vec::new();
    let result = async {
        for profile in [&profile_a, &profile_b] {
            handsets.push(VirtualDevice::start(profile.clone(), &server).await?);
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
        // What a user of such a build passes as `--keylog device:PATH`: where the build writes
        // its TLS key log, when it keeps one.
        let options_for = |profile: &Profile| RunOptions {
            runs_root: args.runs.clone(),
            cancel: Some(super::cancel_on_ctrl_c()),
            keylogs: profile
                .persona
                .tls_keylog
                .iter()
                .map(|path| KeylogSource::Device(path.clone()))
                .collect(),
            ..RunOptions::default()
        };
        let (options_a, options_b) = (options_for(&profile_a), options_for(&profile_b));
        let device_a = Device::new(handsets[0].adb());
        let device_b = Device::new(handsets[1].adb());
        let progress_a = TerminalProgress::new(&multi, &format!("A {}", profile_a.name));
        let progress_b = TerminalProgress::new(&multi, &format!("B {}", profile_b.name));
        let (ra, rb) = tokio::join!(
            runner::run(&scenario, &device_a, &options_a, &progress_a),
            runner::run(&scenario, &device_b, &options_b, &progress_b),
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
        // The same comparison `tattle diff A_RUN B_RUN` makes of the two run directories.
        let doc = diff::compare(
            &OutcomeSet::of_run(&ra, &profile_a.name),
            &OutcomeSet::of_run(&rb, &profile_b.name),
        );
        println!("== What changed from A to B");
        print!("{}", diff::render::text(&doc));
        println!();
        let interrupted = ra.interrupted.is_some() || rb.interrupted.is_some();
        Ok::<_, anyhow::Error>(if interrupted {
            Exit::Environment
        } else {
            Exit::Clean
        })
    }
    .await;

    for handset in handsets {
        handset.shutdown().await;
    }
    result
}
