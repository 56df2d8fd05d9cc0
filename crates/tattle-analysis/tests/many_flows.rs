//! The many-flow shape end to end, through the public API: connections that end with FINs from
//! both sides, one FIN, a reset or nothing at all, interleaved by the dozen — every identifier
//! planted is found exactly once in its flow, nothing is reported as damage or as a limit, the flow
//! table stays bounded by what is active (counted, not timed), sharding changes nothing, and the
//! names read the same to tshark.

use tattle_analysis::testgen::tshark::Names;
use tattle_analysis::testgen::{Generator, Shape, identifiers};
use tattle_analysis::{
    Analysis, Analyzer, CLOSING_IDLE, FlowEnd, TCP_IDLE, UDP_IDLE, analyze_parallel,
};

/// A many-flow capture of `bytes`, its packets `time_scale` times further apart than a busy phone
/// sends them (so that it spans several idle timeouts).
fn capture(seed: u64, bytes: u64, time_scale: u64) -> (Vec<u8>, Generator) {
    let mut g = Generator::with_shape(seed, Shape::ManyFlows);
    g.time_scale = time_scale;
    let mut out = Vec::new();
    g.write(&mut out, bytes).expect("to memory");
    (out, g)
}

/// (flow, kind, encoding, location) of every finding, sorted.
fn found(a: &Analysis) -> Vec<(u64, String, String, String)> {
    let mut v: Vec<_> = a
        .findings
        .iter()
        .map(|f| {
            (
                f.flow,
                f.identifier.clone(),
                f.encoding.clone(),
                f.location.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

fn planted(g: &Generator) -> Vec<(u64, String, String, String)> {
    let mut v: Vec<_> = g
        .plants
        .iter()
        .map(|p| {
            (
                p.flow,
                p.kind.to_string(),
                p.encoding.to_string(),
                p.location.to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_plant_is_found_once_in_its_flow_and_the_table_stays_bounded() {
    // ~20 minutes of capture time: quiet connections outlive TCP_IDLE many times over.
    let (cap, g) = capture(11, 16 << 20, 20);
    assert!(g.duration > 3.0 * TCP_IDLE, "{} s", g.duration);
    let mut analyzer = Analyzer::new(&identifiers());
    let mut most_open = 0;
    for piece in cap.chunks(64 << 10) {
        analyzer.feed(piece).expect("a capture");
        most_open = most_open.max(analyzer.open_flows());
    }
    let a = analyzer.finish();
    assert!(a.damage.is_empty(), "{:?}", a.damage);
    assert!(a.limits.is_empty(), "{:?}", a.limits);
    assert!(a.skipped.is_empty(), "{:?}", a.skipped);
    assert_eq!(
        found(&a),
        planted(&g),
        "findings by flow, kind, encoding and place"
    );
    assert!(g.plants.len() > 300, "{} plants", g.plants.len());

    // Open at once: what is active, plus what waits for its idle timeout.
    let rate = |ending: &str| g.endings.get(ending).copied().unwrap_or(0) as f64 / g.duration;
    let waiting = rate("quiet") * TCP_IDLE
        + (rate("client-fin") + rate("server-fin")) * CLOSING_IDLE
        + rate("udp") * UDP_IDLE;
    let bound = (1.3 * waiting) as usize + 2 * g.concurrency;
    let flows = a.flows.len();
    assert!(
        most_open <= bound,
        "{most_open} flows open at once, bound {bound} ({flows} flows in all)"
    );
    assert!(most_open * 3 < flows, "{most_open} open of {flows}");

    // Every connection ended by its own rule. (A connection whose second FIN comes more than
    // CLOSING_IDLE after the first has ended half-closed by then: at this slowed-down pace a few
    // do.)
    let count = |e: FlowEnd| a.flows.iter().filter(|f| f.end == e).count() as u64;
    let e = |k: &str| g.endings.get(k).copied().unwrap_or(0);
    assert_eq!(count(FlowEnd::Reset), e("client-rst") + e("server-rst"));
    assert!(count(FlowEnd::Fin) * 100 >= e("both-fin") * 95);
    assert!(
        count(FlowEnd::Fin) + count(FlowEnd::HalfFin) + 100
            >= e("both-fin") + e("client-fin") + e("server-fin")
    );
    assert!(a.flows.iter().all(|f| !f.resumed && f.gap_bytes == 0));
}

#[test]
fn sharded_analysis_equals_the_single_threaded_one() {
    let (cap, _) = capture(12, 6 << 20, 5);
    let one = tattle_analysis::analyze_reader(&cap[..], &identifiers()).expect("a capture");
    for threads in [1, 2, 3] {
        let done = analyze_parallel(&cap[..], &identifiers(), threads, Analysis::default)
            .expect("a capture");
        let mut merged = Analysis::default();
        for shard in done.sink {
            merged.merge(shard);
        }
        merged.sort();
        assert_eq!(done.frames, one.frames);
        assert_eq!(merged.flows.len(), one.flows.len(), "{threads} threads");
        for (m, o) in merged.flows.iter().zip(&one.flows) {
            assert_eq!(m, o, "{threads} threads");
        }
        assert_eq!(merged.findings, one.findings, "{threads} threads");
        assert_eq!(merged.dns_queries, one.dns_queries, "{threads} threads");
        assert!(done.damage.is_empty() && done.limits.is_empty());
    }
}

/// What tshark reads as DNS names asked, TLS SNI and HTTP hosts, and what tattle reads, are the
/// same sets. tshark is a real peer here: `.ci/run` installs it.
#[test]
fn names_agree_with_tshark() {
    let (cap, _) = capture(13, 4 << 20, 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("many.pcap");
    std::fs::write(&file, &cap).expect("write capture");
    let theirs = Names::from_tshark(&file)
        .expect("tshark must be installed (apt-get install tshark; .ci/run does it)");
    let a = tattle_analysis::analyze_reader(&cap[..], &identifiers()).expect("a capture");
    let ours = Names::from_analysis(&a);
    assert!(
        theirs.dns.len() > 20 && theirs.named().len() > 10,
        "{theirs:?}"
    );
    assert_eq!(ours.dns, theirs.dns, "DNS names asked");
    assert_eq!(ours.named(), theirs.named(), "SNI and HTTP hosts");
}
