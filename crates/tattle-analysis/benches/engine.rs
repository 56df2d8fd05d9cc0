//! `cargo bench -p tattle-analysis --bench engine`: the engine alone, in process — a generated
//! capture of each shape in memory, analysed on one thread (`Analyzer::feed` in 256 KiB pieces)
//! and sharded over every core (`analyze_parallel`), with the `Summary` sink `tattle analyze` uses.
//! No process start, no file system: what the analysis itself costs.
//!
//! Prints MB/s (median of `TATTLE_BENCH_RUNS`, default 5) and checks every plant was found once
//! per flow. `TATTLE_ENGINE_MB` (default 100) sets the capture size. Never asserts a time.

use std::time::Instant;

use tattle_analysis::testgen::{self, Generator, Shape};
use tattle_analysis::{Analyzer, Needles, Summary, analyze_parallel};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("TATTLE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let size: u64 = std::env::var("TATTLE_ENGINE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        << 20;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ids = testgen::identifiers();
    let t = Instant::now();
    let needles = Needles::new(&ids);
    println!(
        "needles + automaton for {} identifiers: {:.2} ms",
        ids.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    for (name, shape) in [("phone", Shape::Phone), ("many-flows", Shape::ManyFlows)] {
        let mut g = Generator::with_shape(7, shape);
        let mut capture = Vec::with_capacity(size as usize + (4 << 20));
        g.write(&mut capture, size).expect("to memory");
        let mb = capture.len() as f64 / 1e6;
        let mut one = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let t = Instant::now();
            let mut a = Analyzer::with_needles(&needles, Summary::default());
            for piece in capture.chunks(256 << 10) {
                a.feed(piece).expect("a capture");
            }
            let done = a.end();
            one.push(mb / t.elapsed().as_secs_f64());
            last = Some(done);
        }
        let done = last.expect("a run");
        // Sharded: `shards` threads follow flows while this one reads and dispatches.
        let mut sharded = Vec::new();
        for shards in (1..=cores).rev() {
            let mut rates = Vec::new();
            for _ in 0..runs {
                let t = Instant::now();
                let done_n = analyze_parallel(&capture[..], &ids, shards, Summary::default)
                    .expect("a capture");
                rates.push(mb / t.elapsed().as_secs_f64());
                let mut merged = Summary::default();
                for s in done_n.sink {
                    merged.merge(s);
                }
                assert_eq!(merged.flows, done.sink.flows, "sharding changed the flows");
                assert_eq!(merged.finding_count(), done.sink.finding_count());
            }
            sharded.push(format!("{shards} shard(s) {:.0} MB/s", median(rates)));
        }
        if shape == Shape::ManyFlows {
            assert_eq!(done.sink.finding_count(), g.plants.len() as u64);
        }
        assert!(done.damage.is_empty() && done.limits.is_empty());
        println!(
            "{name:<11} {mb:>6.0} MB {:>8} flows: 1 thread {:>6.0} MB/s; {} (median of {runs})",
            done.sink.flows,
            median(one),
            sharded.join(", ")
        );
    }
}
