//! Keys and bytes that come at the wrong time: a Decryption Secrets Block after the records it
//! opens (PCAPdroid writes one when it learns the keys), and client bytes lost to the capture.
//! Captures are built by `testgen::tls` (records sealed with secrets it chose) as pcapng, with the
//! key log placed anywhere.

use crate::identifier::Identifier;
use crate::testgen::frame::{self, ACK, FIN, PSH, SYN};
use crate::testgen::tls::{PcapngWriter, Tls13Client};
use crate::{Analysis, Analyzer, Decryption, Keys, keylog::KeyLog};

const IMEI: &str = "356938035643809";

/// What goes into the capture after the handshake, in order.
pub(super) enum Event {
    /// Client bytes sent (each in segments of the writer's size).
    Client(Vec<u8>),
    /// Client bytes never captured.
    Lost(usize),
    /// The key log as a secrets block here.
    Keys,
}

/// A pcapng of one TLS 1.3 connection: TCP handshake, ClientHello (frame 4), ServerHello
/// (frame 5), then `events`, then the client's FIN. Returns the file and the frame of each
/// `Client` event's last segment.
pub(super) fn pcapng(tls: &Tls13Client, events: &[Event], mss: usize) -> (Vec<u8>, Vec<u64>) {
    let c: frame::Endpoint = ("10.0.2.15".parse().unwrap(), 41_000);
    let s: frame::Endpoint = ("142.250.0.1".parse().unwrap(), 443);
    let mut out = PcapngWriter::new(Vec::new()).unwrap();
    let mut ts = 1_700_000_000_000_000u64;
    let mut buf = Vec::new();
    let mut packet =
        |out: &mut PcapngWriter<Vec<u8>>, up: bool, seq: u32, flags: u8, data: &[u8]| {
            let (src, dst) = if up { (c, s) } else { (s, c) };
            buf.clear();
            let l4 = frame::L4::Tcp { seq, ack: 1, flags };
            frame::ethernet(&mut buf, src, dst, l4, data);
            ts += 1000;
            out.packet(ts, &buf).unwrap();
            out.frames
        };
    packet(&mut out, true, 99, SYN, b"");
    packet(&mut out, false, 4999, SYN | ACK, b"");
    packet(&mut out, true, 100, ACK, b"");
    let hello = tls.client_hello("api.example");
    packet(&mut out, true, 100, PSH | ACK, &hello);
    let server = tls.server_hello();
    packet(&mut out, false, 5000, PSH | ACK, &server);
    let mut seq = 100 + hello.len() as u32;
    let mut frames = Vec::new();
    for e in events {
        match e {
            Event::Client(bytes) => {
                let mut last = 0;
                for piece in bytes.chunks(mss) {
                    last = packet(&mut out, true, seq, PSH | ACK, piece);
                    seq += piece.len() as u32;
                }
                frames.push(last);
            }
            Event::Lost(n) => seq += *n as u32,
            Event::Keys => out.secrets(tls.key_log().as_bytes()).unwrap(),
        }
    }
    packet(&mut out, true, seq, FIN | ACK, b"");
    (out.into_inner(), frames)
}

pub(super) fn analyse(file: &[u8], keys: Option<&str>) -> Analysis {
    let ids = [Identifier::new("imei", IMEI)];
    let mut a = Analyzer::new(&ids);
    if let Some(k) = keys {
        let mut log = KeyLog::new();
        log.add_text(k.as_bytes());
        a = a.with_keys(&Keys::new(log));
    }
    a.feed(file).unwrap();
    a.finish()
}

pub(super) fn request(i: usize) -> Vec<u8> {
    format!("GET /r{i}?imei={IMEI} HTTP/1.1\r\nHost: api.example\r\n\r\n").into_bytes()
}

/// `(location, frame)` of each finding, sorted.
pub(super) fn found(a: &Analysis) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = a
        .findings
        .iter()
        .map(|f| (f.location.clone(), f.frame))
        .collect();
    v.sort();
    v
}

#[test]
fn a_secrets_block_after_the_first_records_opens_them_with_their_frames() {
    let mut tls = Tls13Client::new(1);
    let finished = tls.finished();
    let first = tls.data(&request(1), 0);
    let second = tls.data(b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0);
    let events = [
        Event::Client(finished),
        Event::Client(first),
        Event::Keys,
        Event::Client(second),
    ];
    for mss in [7, 40, 1400] {
        let (file, frames) = pcapng(&tls, &events, mss);
        let late = analyse(&file, None);
        let t = late.flows[0].tls.unwrap();
        assert_eq!(t.decryption, Decryption::Decrypted, "mss {mss}");
        // The request's url was in the record completed at `frames[1]`, before the keys came.
        assert_eq!(found(&late), vec![("http.url".to_string(), frames[1])]);
        // As if the keys had been given up front.
        let given = analyse(&file, Some(&tls.key_log()));
        assert_eq!(given.findings, late.findings);
        assert_eq!(given.flows, late.flows);
        // Sharded, the same.
        let sharded = crate::analyze_parallel_with_keys(
            &file[..],
            &[Identifier::new("imei", IMEI)],
            &Keys::new(KeyLog::new()),
            2,
            Analysis::default,
        )
        .unwrap()
        .map_sink(|sinks| {
            let mut all = Analysis::default();
            for s in sinks {
                all.merge(s);
            }
            all
        })
        .into_analysis();
        assert_eq!(sharded.findings, late.findings);
        assert_eq!(sharded.flows, late.flows);
    }
}

#[test]
fn keys_that_never_come_or_come_too_late() {
    let mut tls = Tls13Client::new(2);
    let finished = tls.finished();
    let first = tls.data(&request(1), 0);
    // No secrets block at all: a pcapng without keys is not attempted, and nothing is held at
    // the end.
    let (file, _) = pcapng(
        &tls,
        &[
            Event::Client(finished.clone()),
            Event::Client(first.clone()),
        ],
        1400,
    );
    let a = analyse(&file, None);
    assert_eq!(a.flows[0].tls.unwrap().decryption, Decryption::NotAttempted);
    assert!(a.findings.is_empty());
    let hello = tls.client_hello("api.example").len() as u64;
    assert_eq!(
        a.flows[0].opaque_bytes,
        a.flows[0].bytes_out + a.flows[0].bytes_in - hello
    );
    // Another connection's keys came: this one has no key.
    let other = Tls13Client::new(3);
    let header = PcapngWriter::new(Vec::new()).unwrap().into_inner().len();
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    w.secrets(other.key_log().as_bytes()).unwrap();
    let mut file2 = w.into_inner();
    file2.extend_from_slice(&file[header..]);
    let a = analyse(&file2, None);
    assert_eq!(a.flows[0].tls.unwrap().decryption, Decryption::NoKey);
    // More than the bound (64 KiB) held before the keys came: the flow gave up waiting.
    let mut events = vec![Event::Client(finished), Event::Client(first)];
    for _ in 0..5 {
        events.push(Event::Client(tls.data(&[b'a'; 16_000], 0)));
    }
    events.push(Event::Keys);
    events.push(Event::Client(tls.data(&request(2), 0)));
    let (file, _) = pcapng(&tls, &events, 1400);
    let a = analyse(&file, None);
    assert_eq!(a.flows[0].tls.unwrap().decryption, Decryption::NoKey);
    assert!(a.findings.is_empty());
}

fn plain_request(i: usize) -> Vec<u8> {
    format!("GET /plain{i} HTTP/1.1\r\nHost: api.example\r\n\r\n").into_bytes()
}

/// Records lost whole, lost with a cut on either side, lost with a KeyUpdate among them, and
/// hundreds of small ones lost: the next record is found again and read as a new request, at the
/// frame that completed it; the flow is `partial`.
#[test]
fn after_records_are_lost_the_next_one_is_found_again() {
    type Build = fn(&mut Tls13Client) -> Vec<Event>;
    let cases: [(&str, Build); 4] = [
        ("two whole records", |t| {
            let a = t.data(&plain_request(1), 0);
            let lost = t.data(&plain_request(2), 0).len() + t.data(&plain_request(3), 0).len();
            vec![
                Event::Client(a),
                Event::Lost(lost),
                Event::Client(t.data(&request(4), 0)),
            ]
        }),
        ("cut on both sides", |t| {
            let a = t.data(&plain_request(1), 0);
            let b = t.data(&plain_request(2), 0);
            let c = t.data(&plain_request(3), 0);
            let d = t.data(&plain_request(4), 7);
            vec![
                Event::Client(a),
                Event::Client(b[..10].to_vec()),
                Event::Lost(b.len() - 10 + c.len() + 20),
                Event::Client(d[20..].to_vec()),
                Event::Client(t.data(&request(5), 0)),
            ]
        }),
        ("a KeyUpdate lost", |t| {
            let a = t.data(&plain_request(1), 0);
            let lost = t.key_update().len() + t.data(&plain_request(2), 0).len();
            vec![
                Event::Client(a),
                Event::Lost(lost),
                Event::Client(t.data(&request(3), 0)),
            ]
        }),
        ("300 small records lost", |t| {
            let a = t.data(&plain_request(1), 0);
            let lost: usize = (0..300).map(|_| t.data(b"x", 0).len()).sum();
            vec![
                Event::Client(a),
                Event::Lost(lost),
                Event::Client(t.data(&request(2), 0)),
            ]
        }),
    ];
    for (what, build) in cases {
        let mut tls = Tls13Client::new(7);
        let mut events = vec![Event::Client(tls.finished())];
        events.extend(build(&mut tls));
        let (file, frames) = pcapng(&tls, &events, 1400);
        let a = analyse(&file, Some(&tls.key_log()));
        let t = a.flows[0].tls.unwrap();
        assert_eq!(t.decryption, Decryption::Partial, "{what}");
        assert_eq!(
            found(&a),
            vec![("http.url".to_string(), *frames.last().unwrap())],
            "{what}"
        );
    }
}

/// Garbage after a loss: the search gives up after its trials, the rest is opaque, and the work
/// stays bounded.
#[test]
fn a_loss_followed_by_garbage_gives_up_within_its_trials() {
    let mut tls = Tls13Client::new(8);
    let mut junk = Vec::new();
    let mut rng = crate::testgen::Rng::new(5);
    for i in 0..200_000 {
        // Headers that look right, over bodies that never open.
        if i % 97 == 0 {
            junk.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x40]);
        }
        junk.push(rng.next_u64() as u8);
    }
    let events = [
        Event::Client(tls.finished()),
        Event::Client(tls.data(&plain_request(1), 0)),
        Event::Lost(100),
        Event::Client(junk),
        Event::Client(tls.data(&request(9), 0)),
    ];
    let (file, _) = pcapng(&tls, &events, 1400);
    let start = std::time::Instant::now();
    let a = analyse(&file, Some(&tls.key_log()));
    assert_eq!(a.flows[0].tls.unwrap().decryption, Decryption::Partial);
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}
