//! Fuzz target for the capture analysis (issue 4): arbitrary bytes as a capture, analysed whole with
//! `analyze_reader` and streamed through `Analyzer::feed` in chunkings chosen by the input.
//!
//! Input layout: byte 0 is a control byte choosing the chunking, the rest is the capture. The seed
//! corpus (crates/tattle-analysis/fuzz/seeds/analyze/) is real and generated captures with one
//! control byte in front, so the fuzzer starts from valid pcap/pcapng and mutates both the capture and the split points.
//!
//! Properties checked, beyond "never panics / never aborts on allocation":
//! - the streamed analysis equals the whole-file analysis, whatever the chunk boundaries (the reader
//!   and the flow engine must not depend on how bytes arrive from a pipe);
//! - no finding, flow, or damage entry is produced for frames that do not exist.
//!
//! Owns nothing in src/: a failure here is reported, with its input committed under
//! crates/tattle-analysis/fuzz/regressions/, never fixed from this crate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use tattle_analysis::identifier::Identifier;
use tattle_analysis::{Analysis, Analyzer, Needles};

/// The identifiers searched: a couple of real kinds, one with phone-number formats, one with spaces
/// (URL encoding differs from plain), so every needle family is in the automaton.
fn identifiers() -> Vec<Identifier> {
    vec![
        Identifier::new("imei", "356938035643809"),
        Identifier::new("phone_number", "+6598765432"),
        Identifier::new("contact_name", "Wei Ling Tan"),
    ]
}

/// Chunk sizes for the streaming run, from the control byte: the low 2 bits pick a size scale
/// (1 byte at a time, small, around a record, large), the high bits seed the sequence so split
/// points fall at varied offsets, inside headers and records alike.
struct Chunks {
    state: u32,
    max: usize,
}

impl Chunks {
    fn new(control: u8) -> Self {
        let max = match control & 3 {
            0 => 1,
            1 => 17,
            2 => 300,
            _ => 70_000,
        };
        Chunks {
            state: (0x9e37_79b9 ^ u32::from(control >> 2).wrapping_mul(0x0101_0101)) | 1,
            max,
        }
    }

    fn next_len(&mut self) -> usize {
        // xorshift32: deterministic per input, no dependency on a RNG crate.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + (self.state as usize) % self.max
    }
}

/// Compiled once per process: building the automaton costs more than analysing most inputs.
fn needles() -> &'static Needles {
    static NEEDLES: OnceLock<Needles> = OnceLock::new();
    NEEDLES.get_or_init(|| Needles::new(&identifiers()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, capture)) = data.split_first() else {
        return;
    };
    let mut whole = Analyzer::with_needles(needles(), Analysis::default());
    let whole = whole.read_all(capture).map(|()| whole.finish());

    let mut streamed = Analyzer::with_needles(needles(), Analysis::default());
    let mut chunks = Chunks::new(control);
    let mut rest = capture;
    let mut feed_failed = false;
    while !rest.is_empty() {
        let n = chunks.next_len().min(rest.len());
        let (piece, tail) = rest.split_at(n);
        if streamed.feed(piece).is_err() {
            feed_failed = true;
            break;
        }
        rest = tail;
    }

    match whole {
        Ok(whole) => {
            // analyze_reader refuses fewer than 4 bytes; `feed` only refuses a bad magic. So a
            // successful whole-file run means every feed must have been accepted.
            assert!(
                !feed_failed,
                "feed refused a capture analyze_reader accepted"
            );
            let streamed = streamed.finish();
            assert!(
                whole == streamed,
                "streamed analysis differs from whole-file analysis (control byte {control:#04x}): \
                 frames {} vs {}, flows {} vs {}, findings {} vs {}, damage {} vs {}",
                whole.frames,
                streamed.frames,
                whole.flows.len(),
                streamed.flows.len(),
                whole.findings.len(),
                streamed.findings.len(),
                whole.damage.len(),
                streamed.damage.len(),
            );
            for f in &whole.findings {
                assert!(
                    f.frame >= 1 && f.frame <= whole.frames,
                    "finding past the last frame"
                );
            }
            for f in &whole.flows {
                assert!(
                    f.first_frame >= 1 && f.first_frame <= whole.frames,
                    "flow starts past the last frame"
                );
            }
            for d in &whole.damage {
                assert!(d.after_frame <= whole.frames, "damage past the last frame");
            }
        }
        Err(_) => {
            // Refused as a whole (too short / bad magic): the streamed run must not panic on
            // finish either.
            let _ = streamed.finish();
        }
    }
});
