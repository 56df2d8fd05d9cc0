//! Terminal progress for runs: a spinner per run with the current step and live capture counters,
//! and a line above it for each finding the live analysis makes. Drawn on stderr only when it is a
//! terminal (indicatif hides itself, and drops those lines, otherwise), so piped output stays clean.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::capture::CaptureCounters;
use crate::runner::RunObserver;

pub struct TerminalProgress {
    bar: ProgressBar,
    label: String,
    step: Arc<Mutex<String>>,
    /// The counters of each capture segment (one, or one more per reboot).
    segments: Arc<Mutex<Vec<Arc<CaptureCounters>>>>,
}

impl TerminalProgress {
    pub fn new(multi: &MultiProgress, label: &str) -> Self {
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("{label}: reading the device"));
        Self {
            bar,
            label: label.to_string(),
            step: Arc::new(Mutex::new(String::from("starting"))),
            segments: Arc::default(),
        }
    }

    fn set_step(&self, text: String) {
        if let Ok(mut s) = self.step.lock() {
            *s = text.clone();
        }
        self.bar.set_message(format!("{}: {text}", self.label));
    }

    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl RunObserver for TerminalProgress {
    fn capture_started(&self, counters: Arc<CaptureCounters>) {
        // A reboot starts a new capture segment: the line counts every segment together.
        let first = match self.segments.lock() {
            Ok(mut segments) => {
                segments.push(counters);
                segments.len() == 1
            }
            Err(_) => false,
        };
        if !first {
            return;
        }
        // Counters change without events: a ticker refreshes them while the bar lives.
        let bar = self.bar.clone();
        let label = self.label.clone();
        let step = self.step.clone();
        let segments = self.segments.clone();
        tokio::spawn(async move {
            while !bar.is_finished() {
                let current = step.lock().map(|s| s.clone()).unwrap_or_default();
                let (packets, bytes) = segments
                    .lock()
                    .map(|all| {
                        all.iter().fold((0, 0), |(p, b), c| {
                            (
                                p + c.packets.load(Ordering::Relaxed),
                                b + c.bytes.load(Ordering::Relaxed),
                            )
                        })
                    })
                    .unwrap_or_default();
                bar.set_message(format!(
                    "{label}: {current} · capture {packets} packets, {} KB",
                    bytes / 1024
                ));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }

    fn step_started(&self, index: usize, total: usize, name: &str) {
        self.set_step(format!("step {index}/{total} {name}"));
    }

    fn live_finding(&self, notice: &str) {
        // A no-op when the bar is hidden (stderr is not a terminal).
        self.bar.println(format!("{}: LEAK {notice}", self.label));
    }

    fn note(&self, note: &str) {
        // What the run decided that the scenario did not say (a method or alternative skipped).
        self.bar.println(format!("{}: note: {note}", self.label));
    }

    fn analysing(&self) {
        self.set_step("finishing the analysis".into());
    }

    fn finished(&self) {
        self.bar.finish_and_clear();
    }
}
