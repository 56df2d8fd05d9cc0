//! Sharded analysis: one thread frames records and decodes their headers, `N` shards follow the
//! flows, each flow always on the same shard (a hash of its addresses, the same both ways). A
//! shard receives each packet already decoded — its addresses, ports, TCP fields and a copy of
//! its payload — so no packet is decoded twice and no header byte is copied.
//!
//! What shards must share is sent to all of them in capture order: a DNS answer names flows on
//! every shard, so each DNS response goes to every shard (the owner follows its flow, the others
//! only learn its names) before any later packet; so does the key log text of each pcapng
//! Decryption Secrets Block. Everything else is per shard, so the result is
//! the single-threaded one split in `N`: merge the sinks (`Analysis::merge`, `Summary::merge`).
//!
//! Must not touch: what happens inside flows.

use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::analyzer::{READ_CHUNK, Undecoded};
use crate::flows::Engine;
use crate::flows::limits::{DECODE_BUDGET_BASE, MAX_BUFFERED, Notes};
use crate::flows::table::FlowKey;
use crate::identifier::Identifier;
use crate::matcher::Matcher;
use crate::packet::{self, Packet, Transport};
use crate::reader::CaptureReader;
use crate::sink::Sink;
use crate::{AnalysisError, CaptureSecrets, Damage, Finished, Keys, dns};

/// Payload bytes, or packets, a shard's batch collects before it is sent.
const BATCH_BYTES: usize = 256 << 10;
const BATCH_PACKETS: usize = 2048;
/// Batches in flight per shard: enough to keep workers busy, bounded so a slow shard holds the
/// reader back instead of memory growing.
const BATCHES_IN_FLIGHT: usize = 4;

/// One decoded packet of a batch; its payload is `data[start..end]` of the batch.
struct Item {
    frame: u64,
    ts: f64,
    src: IpAddr,
    dst: IpAddr,
    /// The transport header, its payload left empty (it is in the batch's data).
    header: Transport<'static>,
    start: usize,
    end: usize,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A packet of a flow this shard follows.
    Packet,
    /// Only a DNS response's names are for this shard (another shard follows its flow).
    NamesOnly,
    /// Key log text from a Decryption Secrets Block (`data[start..end]`).
    Secrets,
    /// The capture is pcapng: secrets blocks may come later.
    ExpectKeys,
}

impl Item {
    /// The packet again, its payload in `data`.
    fn packet<'a>(&self, data: &'a [u8]) -> Packet<'a> {
        let payload = &data[self.start..self.end];
        let transport = self.header.with_payload(payload);
        Packet {
            src: self.src,
            dst: self.dst,
            transport,
        }
    }
}

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
    /// The capture's latest timestamp so far: a shard's clock moves with the whole capture's,
    /// not only with its own packets, so flows end idle when they would on one thread.
    now: f64,
}

/// Analyses the capture read from `reader` with `shards` threads following flows while the calling
/// thread reads the capture and dispatches its packets (`shards == 0`: all on the calling thread),
/// each shard with a sink from `make_sink`. Returns the shards' sinks: merge them.
pub fn analyze_parallel<S, F>(
    reader: impl Read,
    identifiers: &[Identifier],
    shards: usize,
    make_sink: F,
) -> Result<Finished<Vec<S>>, AnalysisError>
where
    S: Sink + Send,
    F: Fn() -> S,
{
    analyze_parallel_with_keys(reader, identifiers, &Keys::default(), shards, make_sink)
}

/// [`analyze_parallel`], decrypting the TLS flows whose secrets `keys` holds.
pub fn analyze_parallel_with_keys<S, F>(
    mut reader: impl Read,
    identifiers: &[Identifier],
    keys: &Keys,
    shards: usize,
    make_sink: F,
) -> Result<Finished<Vec<S>>, AnalysisError>
where
    S: Sink + Send,
    F: Fn() -> S,
{
    let matcher = Arc::new(Matcher::new(identifiers));
    if shards == 0 {
        let mut a = crate::Analyzer::with_matcher(matcher, make_sink()).with_keys(keys);
        a.read_all(reader)?;
        let done = a.end();
        return Ok(done.map_sink(|s| vec![s]));
    }
    let sinks: Vec<S> = (0..shards).map(|_| make_sink()).collect();
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(shards);
        let mut workers = Vec::with_capacity(shards);
        for sink in sinks {
            let (tx, rx) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
            senders.push(tx);
            let engine = Engine::new(matcher.clone(), sink)
                .with_decode_budget(DECODE_BUDGET_BASE / shards as u64)
                .with_keys(keys.0.clone());
            workers.push(scope.spawn(move || follow(engine, rx)));
        }
        let framed = frame_and_dispatch(&mut reader, &senders);
        drop(senders);
        let mut notes = Notes::default();
        let mut out = Vec::with_capacity(shards);
        for w in workers {
            let (sink, n) = w.join().expect("a shard panicked");
            notes.merge(&n);
            out.push(sink);
        }
        let (frames, mut damage, undecoded, secrets) = framed?;
        let (mut bad, mut limits_cut, skipped) = undecoded.into_notes();
        damage.append(&mut bad);
        damage.sort_by_key(|d| (d.after_frame, d.offset));
        let mut limits = notes.limits(MAX_BUFFERED);
        limits.append(&mut limits_cut);
        limits.sort_by_key(|l| l.after_frame);
        Ok(Finished {
            sink: out,
            frames,
            damage,
            limits,
            skipped,
            secrets,
        })
    })
}

/// A shard: follows the flows of its batches, then ends them.
fn follow<S: Sink>(mut engine: Engine<S>, rx: Receiver<Batch>) -> (S, Notes) {
    for batch in rx {
        for it in &batch.items {
            match it.kind {
                Kind::Secrets => engine.learn_keys(&batch.data[it.start..it.end]),
                Kind::ExpectKeys => engine.expect_keys(),
                Kind::NamesOnly => learn_names(&mut engine, &it.packet(&batch.data)),
                Kind::Packet => engine.packet(it.frame, it.ts, &it.packet(&batch.data)),
            }
        }
        engine.advance(batch.now);
    }
    engine.finish_notes()
}

fn learn_names<S: Sink>(engine: &mut Engine<S>, p: &Packet<'_>) {
    if let Transport::Udp { payload, .. } = p.transport
        && let Some(msg) = dns::parse(payload)
        && msg.is_response
    {
        for (ip, name) in msg.answers {
            engine.learn_name(ip, &name);
        }
    }
}

/// A DNS response over UDP: its answers name flows on every shard.
fn is_dns_response(p: &Packet<'_>) -> bool {
    matches!(p.transport, Transport::Udp { src_port, .. } if dns::DNS_PORTS.contains(&src_port))
}

type Framed = Result<(u64, Vec<Damage>, Undecoded, CaptureSecrets), AnalysisError>;

/// Reads the capture, decodes each record's headers to find its shard, and sends batches.
fn frame_and_dispatch(reader: &mut impl Read, senders: &[SyncSender<Batch>]) -> Framed {
    let n = senders.len();
    let mut capture = CaptureReader::new();
    let mut batches: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
    let mut undecoded = Undecoded::default();
    let mut now = 0f64;
    let mut secrets = CaptureSecrets::default();
    let mut expecting_keys = false;
    while capture.read_chunk(reader, READ_CHUNK)? {
        loop {
            while let Some(rec) = capture.next_record()? {
                let Some(linktype) = rec.linktype else {
                    continue;
                };
                now = now.max(rec.ts);
                if rec.may_carry_secrets && !expecting_keys {
                    // Every shard frames its TLS flows for keys a later block may bring.
                    expecting_keys = true;
                    for b in batches.iter_mut() {
                        b.items.push(Item {
                            frame: 0,
                            ts: now,
                            src: IpAddr::from([0, 0, 0, 0]),
                            dst: IpAddr::from([0, 0, 0, 0]),
                            header: Transport::Udp {
                                src_port: 0,
                                dst_port: 0,
                                payload: &[],
                            },
                            start: b.data.len(),
                            end: b.data.len(),
                            kind: Kind::ExpectKeys,
                        });
                    }
                }
                let p = match packet::decode(linktype, rec.data) {
                    Ok(p) => p,
                    Err(e) => {
                        undecoded.add(e, rec.frame, rec.offset);
                        continue;
                    }
                };
                let (src_port, dst_port) = p.transport.ports();
                let (tcp, payload) = (p.transport.is_tcp(), p.transport.payload());
                let header = p.transport.with_payload(&[]);
                let key = FlowKey::new((p.src, src_port), (p.dst, dst_port), tcp);
                let owner = (key.shard_hash() % n as u64) as usize;
                let names = is_dns_response(&p);
                for (i, b) in batches.iter_mut().enumerate() {
                    if i != owner && !names {
                        continue;
                    }
                    let start = b.data.len();
                    b.data.extend_from_slice(payload);
                    b.items.push(Item {
                        frame: rec.frame,
                        ts: rec.ts,
                        src: p.src,
                        dst: p.dst,
                        header,
                        start,
                        end: b.data.len(),
                        kind: if i == owner {
                            Kind::Packet
                        } else {
                            Kind::NamesOnly
                        },
                    });
                }
            }
            // A Decryption Secrets Block: every shard learns its keys before the next packet.
            let Some(text) = capture.take_secrets() else {
                break;
            };
            secrets.blocks += 1;
            secrets.stats.add(&crate::analyzer::count_lines(&text));
            for b in batches.iter_mut() {
                let start = b.data.len();
                b.data.extend_from_slice(&text);
                b.items.push(Item {
                    frame: 0,
                    ts: now,
                    src: IpAddr::from([0, 0, 0, 0]),
                    dst: IpAddr::from([0, 0, 0, 0]),
                    header: Transport::Udp {
                        src_port: 0,
                        dst_port: 0,
                        payload: &[],
                    },
                    start,
                    end: b.data.len(),
                    kind: Kind::Secrets,
                });
            }
        }
        for (b, tx) in batches.iter_mut().zip(senders) {
            b.now = now;
            if b.data.len() >= BATCH_BYTES || b.items.len() >= BATCH_PACKETS {
                // A shard that died has nothing left to receive; the join reports it.
                let _ = tx.send(std::mem::take(b));
            }
        }
    }
    // Every shard gets the last batch, empty or not: it carries the capture's last timestamp.
    for (mut b, tx) in batches.into_iter().zip(senders) {
        b.now = now;
        let _ = tx.send(b);
    }
    capture.check_read()?;
    let damage = capture.finish();
    secrets.other_blocks = capture.other_secrets();
    Ok((capture.frames(), damage, undecoded, secrets))
}
