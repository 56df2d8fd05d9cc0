//! TLS decryption with keys: a TLS 1.3 connection whose records really open (sealed by
//! `testgen::tls` with secrets it chose, so the key log is known) followed by what the fuzzer
//! says — more sealed records of its plaintext (HTTP or not), KeyUpdates, raw bytes, corrupted
//! records, bytes lost to the capture, extra key log lines, server bytes — cut into TCP segments
//! and written as pcapng with the key log given to the analyzer or carried as a Decryption
//! Secrets Block at the start, after the first application record (a late key), or at the end.
//!
//! Input layout: byte 0 = control (bits 0–1 key placement, bit 2 swap segment pairs, bits 3–7 the
//! segment size in 8-byte steps), then operations `[op, len, len bytes…]` (see `Op`).
//!
//! Checked beyond "never panics": every frame written is counted, no damage is reported, findings
//! name frames of the capture; and when the fuzzer only added sealed records (no raw bytes, loss,
//! corruption or key log noise) with the keys given or in a secrets block before the first
//! protected record or right after the first application record, the flow is `decrypted` and every
//! client byte after the ClientHello authenticated.
//!
//! `TLS_KEYS_DUMP=FILE` writes the capture built from the (last) input, for tshark or
//! `tattle analyze`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use tattle_analysis::identifier::Identifier;
use tattle_analysis::keylog::KeyLog;
use tattle_analysis::testgen::frame::{self, L4};
use tattle_analysis::testgen::tls::{PcapngWriter, Tls13Client};
use tattle_analysis::{Analysis, Analyzer, Decryption, Keys, Needles};

fn needles() -> &'static Needles {
    static NEEDLES: OnceLock<Needles> = OnceLock::new();
    NEEDLES.get_or_init(|| {
        Needles::new(&[
            Identifier::new("imei", "356938035643809"),
            Identifier::new("phone_number", "+6598765432"),
        ])
    })
}

/// Where the key log goes.
#[derive(Clone, Copy, PartialEq)]
enum Placement {
    Analyzer,
    First,
    AfterFirstData,
    End,
}

/// A piece of the client's stream: bytes sent, or bytes lost (never captured).
enum Piece {
    Sent(Vec<u8>),
    Lost(usize),
}

fuzz_target!(|data: &[u8]| {
    let [control, ops @ ..] = data else {
        return;
    };
    let placement = [
        Placement::Analyzer,
        Placement::First,
        Placement::AfterFirstData,
        Placement::End,
    ][usize::from(control & 3)];
    let swap = control & 4 != 0;
    let mss = usize::from(control >> 3) * 8 + 1;

    let mut tls = Tls13Client::new(u64::from(*control));
    let mut key_log = tls.key_log();
    let mut client: Vec<Piece> = vec![Piece::Sent(tls.finished())];
    let mut server: Vec<u8> = Vec::new();
    let mut clean = true;
    let mut sealed_bytes = client_len(&client);
    let mut first_data_end: Option<usize> = None;
    let mut rest = ops;
    while let [op, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (arg, next) = tail.split_at(n);
        rest = next;
        match op % 8 {
            // Application data, sealed (and padded by the next byte of the op, 0–15).
            0 | 6 => {
                let pad = if op % 8 == 6 {
                    usize::from(*op >> 4)
                } else {
                    0
                };
                let r = tls.data(arg, pad);
                sealed_bytes += r.len();
                client.push(Piece::Sent(r));
                first_data_end.get_or_insert(client_len(&client));
            }
            // Raw bytes into the stream (a record header, garbage, a plaintext alert).
            1 => {
                clean = false;
                client.push(Piece::Sent(arg.to_vec()));
            }
            2 => {
                let r = tls.key_update();
                sealed_bytes += r.len();
                client.push(Piece::Sent(r));
            }
            // Bytes lost: a sealed record of `arg` is never captured.
            3 => {
                clean = false;
                let r = tls.data(arg, 0);
                client.push(Piece::Lost(r.len()));
            }
            4 => {
                clean = false;
                key_log.push_str(&String::from_utf8_lossy(arg));
                key_log.push('\n');
            }
            // A sealed record with one byte flipped.
            5 => {
                clean = false;
                let mut r = tls.data(arg, 0);
                let at = usize::from(*op >> 3) % r.len();
                r[at] ^= 0x80 | *op;
                client.push(Piece::Sent(r));
            }
            _ => server.extend_from_slice(arg),
        }
    }

    // The capture: a TCP handshake, the ClientHello, the ServerHello (+ the fuzzer's server
    // bytes), then the client's pieces in segments.
    let c: frame::Endpoint = ("10.0.2.15".parse().unwrap(), 41_000);
    let s: frame::Endpoint = ("142.250.0.1".parse().unwrap(), 443);
    let mut out = PcapngWriter::new(Vec::new()).expect("to memory");
    let mut buf = Vec::new();
    let mut ts = 1_700_000_000_000_000u64;
    let mut emit = |out: &mut PcapngWriter<Vec<u8>>,
                    from_client: bool,
                    seq: u32,
                    ack: u32,
                    flags: u8,
                    payload: &[u8]| {
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        buf.clear();
        frame::ethernet(&mut buf, src, dst, L4::Tcp { seq, ack, flags }, payload);
        ts += 10;
        out.packet(ts, &buf).expect("to memory");
    };
    if placement == Placement::First {
        out.secrets(key_log.as_bytes()).expect("to memory");
    }
    let (cisn, sisn) = (1000u32, 9000u32);
    emit(&mut out, true, cisn - 1, 0, frame::SYN, b"");
    emit(
        &mut out,
        false,
        sisn - 1,
        cisn,
        frame::SYN | frame::ACK,
        b"",
    );
    emit(&mut out, true, cisn, sisn, frame::ACK, b"");
    let hello = tls.client_hello("api.example");
    emit(&mut out, true, cisn, sisn, frame::PSH | frame::ACK, &hello);
    let mut cseq = cisn.wrapping_add(hello.len() as u32);
    let mut sseq = sisn;
    let server_all = [tls.server_hello(), server].concat();
    for piece in server_all.chunks(1400) {
        emit(&mut out, false, sseq, cseq, frame::PSH | frame::ACK, piece);
        sseq = sseq.wrapping_add(piece.len() as u32);
    }
    let mut segments: Vec<(u32, &[u8])> = Vec::new();
    let mut offset = 0usize;
    let mut late_at = None;
    for piece in &client {
        match piece {
            Piece::Sent(bytes) => {
                for chunk in bytes.chunks(mss) {
                    segments.push((cseq.wrapping_add(offset as u32), chunk));
                    offset += chunk.len();
                    if late_at.is_none() && first_data_end.is_some_and(|e| offset >= e) {
                        late_at = Some(segments.len());
                    }
                }
            }
            Piece::Lost(n) => offset += n,
        }
    }
    if swap {
        for pair in segments.chunks_mut(2) {
            pair.reverse();
        }
    }
    for (i, (seq, chunk)) in segments.iter().enumerate() {
        emit(&mut out, true, *seq, sseq, frame::PSH | frame::ACK, chunk);
        if placement == Placement::AfterFirstData && late_at == Some(i + 1) {
            out.secrets(key_log.as_bytes()).expect("to memory");
        }
    }
    cseq = cseq.wrapping_add(offset as u32);
    emit(&mut out, true, cseq, sseq, frame::FIN | frame::ACK, b"");
    if placement == Placement::End || placement == Placement::AfterFirstData && late_at.is_none() {
        out.secrets(key_log.as_bytes()).expect("to memory");
    }
    let frames = out.frames;
    let file = out.into_inner();
    static DUMP: OnceLock<Option<std::ffi::OsString>> = OnceLock::new();
    if let Some(path) = DUMP.get_or_init(|| std::env::var_os("TLS_KEYS_DUMP")) {
        let _ = std::fs::write(path, &file);
    }

    let mut analyzer = Analyzer::with_needles(needles(), Analysis::default());
    if placement == Placement::Analyzer {
        let mut log = KeyLog::new();
        log.add_text(key_log.as_bytes());
        analyzer = analyzer.with_keys(&Keys::new(log));
    }
    analyzer
        .read_all(&file[..])
        .expect("a well-formed pcapng is always accepted");
    let a = analyzer.finish();
    assert_eq!(a.frames, frames, "every frame written is counted");
    assert!(
        a.damage.is_empty(),
        "a well-formed capture reports no damage: {:?}",
        a.damage.iter().map(|d| &d.what).collect::<Vec<_>>()
    );
    for f in &a.findings {
        assert!(
            f.frame >= 1 && f.frame <= a.frames,
            "finding past the last frame"
        );
    }
    let flow = a
        .flows
        .iter()
        .find(|f| f.server.1 == 443)
        .expect("the TLS flow");
    let t = flow.tls.expect("a TLS flow has TLS facts");
    assert!(t.decrypted_bytes <= flow.bytes_out);
    let in_time = matches!(placement, Placement::Analyzer | Placement::First)
        || placement == Placement::AfterFirstData && LATE_KEYS;
    if clean && in_time {
        assert_eq!(
            t.decryption,
            Decryption::Decrypted,
            "a clean session with its keys"
        );
        assert_eq!(
            t.decrypted_bytes, sealed_bytes as u64,
            "every sealed byte opened"
        );
    }
});

/// Whether a DSB after the first application record is honoured for the records before it.
const LATE_KEYS: bool = true;

fn client_len(client: &[Piece]) -> usize {
    client
        .iter()
        .map(|p| match p {
            Piece::Sent(b) => b.len(),
            Piece::Lost(n) => *n,
        })
        .sum()
}
