//! A TLS client's records after its ClientHello: framed across TCP segments, held until the
//! ServerHello names the version and suite, then opened with the key log's secrets — TLS 1.3
//! (handshake, early data, application data and every KeyUpdate generation) and TLS 1.2 (from
//! the client's ChangeCipherSpec) — and the application data handed on as plaintext, each
//! record remembered as (plaintext end, ciphertext end) so a hit in the plaintext is reported at
//! the frame that completed its record (docs/research/tls-decryption-design.md §8.3).
//!
//! The flow's decryption status follows what happened: keys absent → `no_key` (or `ech`), the
//! first protected record fails → `keys_do_not_match`, a later one fails or bytes go missing →
//! `partial`. Memory: one record (≤ 18 KiB), records waiting for the ServerHello (≤ 64 KiB), the
//! start of the server's stream until its ServerHello (≤ 64 KiB).
//!
//! Owns: record framing, stage changes, statuses, the plaintext↔ciphertext offset map. Must not
//! touch: what the plaintext says (the caller's inner reader), flows, matching. Never logs
//! secrets or plaintext.

use std::collections::VecDeque;

use super::crypto::{RecordKeys, Suite, TLS12, TLS13, TrafficSecret, suite};
use super::{ClientHello, MAX_HELLO, ServerHello, ServerProgress, server_hello};
use crate::keylog::{KeyLog, Secrets};
use crate::{Decryption, TlsSummary};

/// The largest record fragment accepted (RFC 8446 §5.2: 2^14 + 256; RFC 5246 allows 2^14 + 2048).
const MAX_FRAGMENT: usize = (1 << 14) + 2048;
/// Whole client records held while the ServerHello has not been read.
const MAX_PENDING: usize = 64 << 10;
/// Records remembered for mapping plaintext offsets back to the capture.
const MAX_MAP: usize = 4096;
/// Bytes after a loss searched for the next record before the oldest are given up (opaque).
const MAX_RESYNC: usize = 64 << 10;
/// Bytes a flow may trial-decrypt finding its place again after losses (each trial opens one
/// record at one sequence number): `RESYNC_WORK_BASE`, plus `RESYNC_WORK_PER_BYTE` per client
/// byte the flow sent, at most `RESYNC_WORK`, so the work stays proportional to the input. A
/// trial costs its record's size, at least `TRIAL_COST`.
const RESYNC_WORK: u64 = 4 << 20;
const RESYNC_WORK_BASE: u64 = 256 << 10;
const RESYNC_WORK_PER_BYTE: u64 = 16;
const TRIAL_COST: u64 = 512;
/// Sequence numbers tried first either side of the estimate of how many records were lost.
const SEQ_SPREAD: u64 = 8;
/// The smallest TLS 1.3 record (header, type byte, tag): no more records than `lost / this` can
/// have gone missing. At most `MAX_SEQ_TRIED` sequence numbers are tried per record.
const MIN_RECORD: u64 = 22;
const MAX_SEQ_TRIED: u64 = 4096;

/// Bytes after a loss longer than the record it cut, while the next record is looked for.
#[derive(Debug)]
struct Resync {
    buf: Vec<u8>,
    /// The stream offset of `buf[0]`.
    at: u64,
    /// Positions of `buf` before this one were not a record that opened.
    scanned: usize,
    /// The sequence number of the first record that may follow (the cut one used its own).
    min_seq: u64,
    /// Bytes lost, for the estimate of how many records went with them.
    lost: u64,
}

/// The key logs an analysis decrypts with: the caller's (shared by every shard) and what the
/// capture's own Decryption Secrets Blocks taught this engine.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeyView {
    pub base: std::sync::Arc<KeyLog>,
    pub learned: KeyLog,
    /// The capture may teach keys later (pcapng: Decryption Secrets Blocks): a flow whose keys
    /// are not known yet holds its records for them.
    pub may_learn: bool,
}

impl KeyView {
    pub fn get(&self, random: &[u8; 32]) -> Option<&Secrets> {
        self.learned.get(random).or_else(|| self.base.get(random))
    }

    /// No key log at all: TLS flows are not even framed.
    pub fn is_empty(&self) -> bool {
        self.base.is_empty() && self.learned.is_empty()
    }

    /// Whether flows are framed: keys are known, or may come.
    pub fn attempt(&self) -> bool {
        self.may_learn || !self.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage13 {
    Early,
    Handshake,
    /// Application data under the n-th traffic secret (0 = `CLIENT_TRAFFIC_SECRET_0`).
    App(u32),
}

#[derive(Debug)]
enum Crypto {
    /// Waiting for the ServerHello (records go to `pending`).
    Start,
    /// The ServerHello is read but the key log does not know the connection yet, and the capture
    /// may still teach it: records go to `pending` until then (a late Decryption Secrets Block).
    AwaitKeys(ServerHello),
    /// TLS 1.2: the client's keys, used from its ChangeCipherSpec on (`active`).
    Tls12 { keys: Box<RecordKeys>, active: bool },
    Tls13 {
        suite: Suite,
        secrets: Box<Secrets>,
        stage: Stage13,
        /// The traffic secret of `stage` when it is `App`.
        app: Option<TrafficSecret>,
        keys: Option<Box<RecordKeys>>,
    },
    /// Nothing more is opened: every later record is opaque.
    Off,
}

/// One TLS client stream after its ClientHello.
#[derive(Debug)]
pub(crate) struct TlsStream {
    random: [u8; 32],
    ech: bool,
    early: bool,
    /// Some key log was given: records are framed and may be decrypted.
    attempt: bool,
    /// The start of the server's stream until its ServerHello is read.
    server_buf: Vec<u8>,
    server_done: bool,
    server: Option<ServerHello>,
    /// The record being framed: its header, its fragment so far, and the stream offset of its
    /// first byte.
    head: [u8; 5],
    head_len: usize,
    body: Vec<u8>,
    record_at: u64,
    /// The stream offset of the next byte expected.
    next_at: u64,
    /// Bytes of an unreadable record still to skip.
    skip: usize,
    /// Whole records (header ‖ fragment, with the stream offset of their last byte) waiting for
    /// the ServerHello.
    pending: VecDeque<(u64, Vec<u8>)>,
    pending_bytes: usize,
    crypto: Crypto,
    /// Why decryption stopped, if it did.
    stopped: Option<Decryption>,
    /// Some record opened.
    opened: bool,
    decrypted_bytes: u64,
    /// Ciphertext offset of the first record that failed to open, for `keys_do_not_match`.
    pub failed_at: Option<u64>,
    /// (plaintext end exclusive, ciphertext offset of the record's last byte), per record.
    map: VecDeque<(u64, u64)>,
    /// The plaintext offset of the next byte handed on.
    pub plain_next: u64,
    /// Client bytes not inspected since the caller last took them.
    pub opaque: u64,
    /// TLS 1.3: bytes of a handshake message that continue in the next record.
    hs_left: usize,
    /// What the plaintext spoke, as the caller's inner reader told.
    pub app: Option<&'static str>,
    /// The keys were waited for and did not come in time.
    waited: bool,
    /// Client bytes were lost after records opened: the flow is at best `partial`.
    lost: bool,
    /// Looking for the next record after a loss.
    resync: Option<Box<Resync>>,
    /// Bytes of trial decryption left (`RESYNC_WORK`).
    trials_left: u64,
    /// Records opened, for the average record size.
    records_opened: u64,
}

impl TlsStream {
    /// A stream whose ClientHello was `hello`; its records start at stream offset `at`.
    pub fn new(hello: &ClientHello, at: u64, keys: &KeyView) -> TlsStream {
        TlsStream {
            random: hello.random,
            ech: hello.ech,
            early: hello.early_data,
            attempt: keys.attempt(),
            server_buf: Vec::new(),
            server_done: false,
            server: None,
            head: [0; 5],
            head_len: 0,
            body: Vec::new(),
            record_at: at,
            next_at: at,
            skip: 0,
            pending: VecDeque::new(),
            pending_bytes: 0,
            crypto: Crypto::Start,
            stopped: None,
            opened: false,
            decrypted_bytes: 0,
            failed_at: None,
            map: VecDeque::new(),
            plain_next: 0,
            opaque: 0,
            hs_left: 0,
            app: None,
            waited: false,
            lost: false,
            resync: None,
            trials_left: RESYNC_WORK_BASE,
            records_opened: 0,
        }
    }

    /// Bytes held for later.
    pub fn buffered(&self) -> usize {
        self.server_buf.len()
            + self.body.len()
            + self.pending_bytes
            + self.resync.as_ref().map_or(0, |r| r.buf.len())
    }

    /// Fixed state kept on the heap besides what is held for later: the keys, the secrets, the
    /// plaintext↔ciphertext map.
    pub fn state_bytes(&self) -> usize {
        let keys = std::mem::size_of::<RecordKeys>();
        let crypto = match &self.crypto {
            Crypto::Tls12 { .. } => keys,
            Crypto::Tls13 { keys: k, .. } => {
                std::mem::size_of::<Secrets>() + if k.is_some() { keys } else { 0 }
            }
            _ => 0,
        };
        crypto + self.map.capacity() * std::mem::size_of::<(u64, u64)>()
    }

    /// Whether records are framed for decryption (a key log is given or may come).
    pub fn attempts(&self) -> bool {
        self.attempt
    }

    /// Whether the ServerHello is still wanted from the server's stream.
    pub fn wants_server(&self) -> bool {
        !self.server_done
    }

    /// The client random whose keys this stream waits for, if it does.
    pub fn awaiting(&self) -> Option<[u8; 32]> {
        matches!(self.crypto, Crypto::AwaitKeys(_)).then_some(self.random)
    }

    /// What the flow reports; `keys_known`: the analysis has some key log (else a flow that never
    /// found its keys was not attempted).
    pub fn summary(&self, keys_known: bool) -> TlsSummary {
        let decryption = match self.stopped {
            None if (self.waited || matches!(self.crypto, Crypto::AwaitKeys(_))) && !keys_known => {
                Decryption::NotAttempted
            }
            None if self.waited || matches!(self.crypto, Crypto::AwaitKeys(_)) => self.no_key(),
            Some(Decryption::KeysDoNotMatch { .. } | Decryption::Incomplete) if self.opened => {
                Decryption::Partial
            }
            Some(d) => d,
            None if self.opened && self.lost => Decryption::Partial,
            None if self.opened => Decryption::Decrypted,
            None if !self.attempt => Decryption::NotAttempted,
            None => Decryption::Incomplete,
        };
        TlsSummary {
            version: self.server.map(|s| s.version),
            cipher: self.server.map(|s| s.cipher),
            decryption,
            decrypted_bytes: self.decrypted_bytes,
            app: self.app,
        }
    }

    /// The ciphertext offset a plaintext offset `at` came from: the last byte of its record.
    pub fn cipher_offset(&self, at: u64) -> u64 {
        let i = self.map.partition_point(|&(end, _)| end <= at);
        match self.map.get(i).or(self.map.back()) {
            Some(&(_, c)) => c,
            None => self.next_at.saturating_sub(1),
        }
    }

    /// Bytes from the server at `at` of its stream: read until the ServerHello is known; then
    /// the records held for it are opened (their plaintext goes to `emit`).
    pub fn feed_server(
        &mut self,
        keys: &KeyView,
        at: u64,
        data: &[u8],
        emit: &mut dyn FnMut(u64, &[u8]),
    ) {
        if self.server_done {
            return;
        }
        if at != self.server_buf.len() as u64 {
            // A hole before the ServerHello was read: it cannot be found any more.
            self.server_done = true;
            self.server_buf = Vec::new();
            self.server_missing(keys, emit);
            return;
        }
        let progress = if self.server_buf.is_empty() {
            server_hello(data)
        } else {
            self.server_buf.extend_from_slice(data);
            server_hello(&self.server_buf)
        };
        match progress {
            ServerProgress::NeedMore if self.server_buf.len() + data.len() <= 2 * MAX_HELLO => {
                if self.server_buf.is_empty() {
                    self.server_buf.extend_from_slice(data);
                }
            }
            ServerProgress::Hello(h) => {
                self.server_done = true;
                self.server_buf = Vec::new();
                self.server = Some(h);
                self.start(keys, h);
                self.replay(emit);
            }
            _ => {
                self.server_done = true;
                self.server_buf = Vec::new();
                self.server_missing(keys, emit);
            }
        }
    }

    /// Records held while the ServerHello or the keys were missing, through the record layer
    /// again (each keeps the stream offset of its last byte, so its findings keep their frame).
    fn replay(&mut self, emit: &mut dyn FnMut(u64, &[u8])) {
        if matches!(self.crypto, Crypto::AwaitKeys(_) | Crypto::Start) {
            return;
        }
        // The record being framed now is kept aside: `record` works in `self.body`.
        let framing = std::mem::take(&mut self.body);
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        for (end, rec) in pending {
            let mut head = [0u8; 5];
            head.copy_from_slice(&rec[..5]);
            self.body.clear();
            self.body.extend_from_slice(&rec[5..]);
            self.record(head, end, emit);
        }
        self.body = framing;
    }

    /// The key log grew: a stream waiting for its keys starts decrypting if they are there now,
    /// and the records it held are opened (their plaintext goes to `emit`).
    pub fn keys_arrived(&mut self, keys: &KeyView, emit: &mut dyn FnMut(u64, &[u8])) {
        let Crypto::AwaitKeys(h) = self.crypto else {
            return;
        };
        if keys.get(&self.random).is_none() {
            return;
        }
        self.start(keys, h);
        self.replay(emit);
    }

    /// Keys did not come while the records could be held: nothing is opened any more, and the
    /// flow reports `no_key` (or `not_attempted` if the analysis never had any key).
    fn give_up_waiting(&mut self) {
        self.crypto = Crypto::Off;
        self.waited = true;
    }

    fn no_key(&self) -> Decryption {
        if self.ech {
            Decryption::Ech
        } else {
            Decryption::NoKey
        }
    }

    /// The ServerHello will never be read: what waits for it is opaque.
    fn server_missing(&mut self, _keys: &KeyView, _emit: &mut dyn FnMut(u64, &[u8])) {
        self.stop(Decryption::Incomplete);
        self.opaque += self.pending_bytes as u64;
        self.pending.clear();
        self.pending_bytes = 0;
    }

    fn stop(&mut self, why: Decryption) {
        self.stopped.get_or_insert(why);
        self.crypto = Crypto::Off;
    }

    /// Keys are chosen from the ServerHello: the suite must be one decrypted here, and the key
    /// log must know the connection.
    fn start(&mut self, keys: &KeyView, h: ServerHello) {
        if !self.attempt {
            self.crypto = Crypto::Off;
            return;
        }
        if h.version != TLS12 && h.version != TLS13 {
            return self.stop(Decryption::UnsupportedVersion(h.version));
        }
        let Some(suite) = suite(h.version, h.cipher) else {
            return self.stop(Decryption::UnsupportedCipher(h.cipher));
        };
        let Some(secrets) = keys.get(&self.random).copied() else {
            if keys.may_learn {
                self.crypto = Crypto::AwaitKeys(h);
                return;
            }
            return self.stop(self.no_key());
        };
        self.crypto = if h.version == TLS12 {
            let Some(master) = secrets.master else {
                return self.stop(Decryption::NoKey);
            };
            let Some(keys) = RecordKeys::tls12(suite, &master, &self.random, &h.random, h.etm)
            else {
                return self.stop(Decryption::NoKey);
            };
            Crypto::Tls12 {
                keys: Box::new(keys),
                active: false,
            }
        } else {
            if secrets.client_handshake.is_none() && secrets.client_traffic_0.is_none() {
                return self.stop(Decryption::NoKey);
            }
            let stage = if self.early && secrets.client_early.is_some() {
                Stage13::Early
            } else {
                Stage13::Handshake
            };
            Crypto::Tls13 {
                suite,
                secrets: Box::new(secrets),
                stage,
                app: None,
                keys: None,
            }
        };
    }

    /// Client bytes at stream offset `at` (in order; a jump is bytes lost to the capture).
    pub fn feed(&mut self, at: u64, data: &[u8], emit: &mut dyn FnMut(u64, &[u8])) {
        if !self.attempt || matches!(self.crypto, Crypto::Off) && self.server_done {
            // Nothing will be opened: no framing needed.
            self.opaque += data.len() as u64;
            self.next_at = at + data.len() as u64;
            return;
        }
        if at != self.next_at {
            self.gap(at);
        }
        self.next_at = at + data.len() as u64;
        self.trials_left =
            (self.trials_left + RESYNC_WORK_PER_BYTE * data.len() as u64).min(RESYNC_WORK);
        if let Some(r) = &mut self.resync {
            r.buf.extend_from_slice(data);
            if let Some(rest) = self.try_resync(emit) {
                self.frame(&rest, emit);
            }
            return;
        }
        self.frame(data, emit);
    }

    /// Stream bytes ending at `next_at`, cut into records.
    fn frame(&mut self, data: &[u8], emit: &mut dyn FnMut(u64, &[u8])) {
        let mut rest = data;
        while !rest.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(rest.len());
                self.skip -= n;
                self.opaque += n as u64;
                rest = &rest[n..];
                continue;
            }
            if self.head_len < 5 {
                if self.head_len == 0 {
                    self.record_at = self.next_at - rest.len() as u64;
                }
                let n = (5 - self.head_len).min(rest.len());
                self.head[self.head_len..self.head_len + n].copy_from_slice(&rest[..n]);
                self.head_len += n;
                rest = &rest[n..];
                if self.head_len < 5 {
                    break;
                }
                let len = u16::from_be_bytes([self.head[3], self.head[4]]) as usize;
                if self.head[1] != 0x03 || len > MAX_FRAGMENT {
                    // Not a record: the stream is no longer followed.
                    self.opaque += 5;
                    self.head_len = 0;
                    self.stop(Decryption::Incomplete);
                    self.opaque += rest.len() as u64;
                    return;
                }
                self.body.clear();
            }
            let len = u16::from_be_bytes([self.head[3], self.head[4]]) as usize;
            let n = (len - self.body.len()).min(rest.len());
            self.body.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.body.len() == len {
                let end = self.record_at + 5 + len as u64 - 1;
                let head = self.head;
                self.head_len = 0;
                self.record(head, end, emit);
            }
        }
        if self.body.capacity() > 2 * MAX_FRAGMENT && self.head_len == 0 {
            self.body = Vec::new();
        }
    }

    /// Bytes lost before `at`: the record they cut is skipped (its sequence number used), and
    /// the rest of the stream goes on if the gap ended inside that record; otherwise, once records
    /// have opened, the next record is looked for (`try_resync`), else decryption stops.
    fn gap(&mut self, at: u64) {
        if let Some(r) = &mut self.resync {
            // Lost again while looking: what was gathered is given up, the search starts over.
            self.opaque += r.buf.len() as u64;
            r.lost += at - (r.at + r.buf.len() as u64);
            r.buf.clear();
            r.at = at;
            r.scanned = 0;
            return;
        }
        if self.opened {
            self.lost = true;
        }
        let in_record = self.head_len == 5 && {
            let len = u16::from_be_bytes([self.head[3], self.head[4]]) as u64;
            at <= self.record_at + 5 + len
        };
        if self.head_len > 0 {
            self.opaque += (self.head_len + self.body.len()) as u64;
        }
        if in_record {
            let len = u16::from_be_bytes([self.head[3], self.head[4]]) as u64;
            let end = self.record_at + 5 + len;
            self.skip = (end - at) as usize;
            if self.protected(self.head[0]) {
                self.bump_seq();
            }
            // The plaintext has a hole too: readers must not join across it.
            self.plain_next += 1;
        } else if self.opened && self.keys_mut().is_some() {
            let seq = self.keys_mut().map_or(0, |k| k.seq);
            let from = if self.head_len > 0 {
                self.record_at
            } else {
                self.next_at
            };
            self.skip = 0;
            self.resync = Some(Box::new(Resync {
                buf: Vec::new(),
                at,
                scanned: 0,
                min_seq: seq + 1,
                lost: at - from,
            }));
            self.plain_next += 1;
        } else {
            self.skip = 0;
            self.stop(Decryption::Incomplete);
        }
        self.head_len = 0;
        self.body.clear();
    }

    /// The keys records are opened with now, if any.
    fn keys_mut(&mut self) -> Option<&mut RecordKeys> {
        match &mut self.crypto {
            Crypto::Tls12 { keys, active: true } => Some(keys),
            Crypto::Tls13 {
                keys: Some(k),
                stage: Stage13::App(_),
                ..
            } => Some(k),
            _ => None,
        }
    }

    /// Looks for the next record in the bytes after a loss: a plausible application data header
    /// whose record opens at a sequence number near the estimate of the records lost (TLS 1.3:
    /// or under the next key generation from 0, in case a KeyUpdate was lost). On success the
    /// record is opened and what follows it is returned, to be framed as usual.
    fn try_resync(&mut self, emit: &mut dyn FnMut(u64, &[u8])) -> Option<Vec<u8>> {
        let mut r = self.resync.take()?;
        let avg = (self.decrypted_bytes / self.records_opened.max(1)).max(22);
        let mut pos = r.scanned;
        let mut found = None;
        while pos + 5 <= r.buf.len() {
            let head: [u8; 5] = r.buf[pos..pos + 5].try_into().unwrap_or_default();
            let len = usize::from(u16::from_be_bytes([head[3], head[4]]));
            if head[..3] != [0x17, 0x03, 0x03] || !(17..=MAX_FRAGMENT).contains(&len) {
                pos += 1;
                continue;
            }
            let Some(body) = r.buf.get(pos + 5..pos + 5 + len) else {
                break;
            };
            if self.trials_left == 0 {
                break;
            }
            let lost = r.lost + pos as u64;
            let estimate = r.min_seq + lost / avg;
            if let Some(hit) = self.trial(&head, body, r.min_seq, estimate, lost) {
                found = Some((pos, len, hit));
                break;
            }
            pos += 1;
        }
        let Some((pos, len, (seq, next_generation))) = found else {
            r.scanned = pos;
            if self.trials_left == 0 {
                // Out of trials: the rest of the flow is opaque.
                self.opaque += r.buf.len() as u64;
                self.stop(Decryption::Partial);
                return None;
            }
            if r.buf.len() > MAX_RESYNC {
                let drop = r.buf.len() - MAX_RESYNC / 2;
                let drop = drop.min(r.scanned);
                r.buf.drain(..drop);
                r.at += drop as u64;
                r.lost += drop as u64;
                r.scanned -= drop;
                self.opaque += drop as u64;
            }
            self.resync = Some(r);
            return None;
        };
        self.opaque += pos as u64;
        if next_generation {
            self.next_generation();
        }
        if let Some(k) = self.keys_mut() {
            k.seq = seq;
        }
        let head: [u8; 5] = r.buf[pos..pos + 5].try_into().unwrap_or_default();
        self.body.clear();
        self.body.extend_from_slice(&r.buf[pos + 5..pos + 5 + len]);
        let end = r.at + (pos + 5 + len) as u64 - 1;
        self.record(head, end, emit);
        Some(r.buf.split_off(pos + 5 + len))
    }

    /// Which sequence number (and whether under the next TLS 1.3 key generation) opens the
    /// record `head ‖ body`, trying the first ones after the loss, those around `estimate`, and a
    /// TLS 1.2 explicit nonce that looks like a sequence number.
    fn trial(
        &mut self,
        head: &[u8; 5],
        body: &[u8],
        min: u64,
        estimate: u64,
        max_lost: u64,
    ) -> Option<(u64, bool)> {
        let mut seqs: Vec<u64> = Vec::with_capacity(4 * SEQ_SPREAD as usize);
        if let Some(n) = body.get(..8) {
            let n = u64::from_be_bytes(n.try_into().unwrap_or_default());
            if (min..min + (1 << 20)).contains(&n) {
                seqs.push(n);
            }
        }
        seqs.extend(min..min + SEQ_SPREAD);
        // Then every count of records the loss can hold, nearest the estimate first.
        let most = min + (max_lost / MIN_RECORD).min(MAX_SEQ_TRIED);
        let near = estimate.clamp(min, most);
        let first = seqs.clone();
        let outward = (0..=most - min)
            .flat_map(move |d| [near.checked_add(d), near.checked_sub(d).filter(|_| d > 0)])
            .flatten()
            .filter(move |s| (min..=most).contains(s) && !first.contains(s));
        let mut scratch = Vec::with_capacity(body.len());
        let cost = (body.len() as u64 + 5).max(TRIAL_COST);
        let mut try_with = |k: &mut RecordKeys, seq: u64, trials: &mut u64| -> bool {
            if *trials < cost {
                *trials = 0;
                return false;
            }
            *trials -= cost;
            scratch.clear();
            scratch.extend_from_slice(body);
            let saved = k.seq;
            k.seq = seq;
            let ok = k.open(head, &mut scratch).is_some();
            k.seq = saved;
            ok
        };
        let mut trials = self.trials_left;
        let mut hit = None;
        if let Some(k) = self.keys_mut() {
            for seq in seqs.iter().copied().chain(outward) {
                if trials == 0 {
                    break;
                }
                if try_with(k, seq, &mut trials) {
                    hit = Some((seq, false));
                    break;
                }
            }
        }
        if hit.is_none()
            && let Crypto::Tls13 {
                suite,
                app: Some(a),
                stage: Stage13::App(_),
                ..
            } = &self.crypto
            && let Some(mut k) = RecordKeys::tls13(*suite, &a.updated(suite.hash))
        {
            hit = (0..SEQ_SPREAD)
                .find(|&s| try_with(&mut k, s, &mut trials))
                .map(|s| (s, true));
        }
        self.trials_left = trials;
        hit
    }

    /// TLS 1.3: the keys of the next application traffic secret (a KeyUpdate was lost).
    fn next_generation(&mut self) {
        if let Crypto::Tls13 {
            suite,
            stage: stage @ Stage13::App(_),
            app: Some(a),
            keys,
            ..
        } = &mut self.crypto
        {
            let next = a.updated(suite.hash);
            if let Stage13::App(n) = *stage {
                *stage = Stage13::App(n + 1);
            }
            *a = next;
            *keys = RecordKeys::tls13(*suite, &next).map(Box::new);
        }
    }

    /// Whether a record of outer type `ty` is protected under the current keys.
    fn protected(&self, ty: u8) -> bool {
        match &self.crypto {
            Crypto::Tls12 { active, .. } => *active,
            Crypto::Tls13 { .. } => ty == 0x17,
            _ => false,
        }
    }

    fn bump_seq(&mut self) {
        match &mut self.crypto {
            Crypto::Tls12 { keys: k, .. } | Crypto::Tls13 { keys: Some(k), .. } => k.seq += 1,
            _ => {}
        }
    }

    /// The flow ends (or is flushed): a record half-read and records still waiting are opaque.
    pub fn finish(&mut self) {
        if let Some(r) = self.resync.take() {
            self.opaque += r.buf.len() as u64;
        }
        if self.head_len > 0 {
            self.opaque += (self.head_len + self.body.len()) as u64;
            self.head_len = 0;
        }
        self.body = Vec::new();
        if self.pending_bytes > 0 {
            self.opaque += self.pending_bytes as u64;
            self.pending.clear();
            self.pending_bytes = 0;
            if self.attempt && self.server.is_none() {
                self.stop(Decryption::Incomplete);
            }
        }
        self.server_buf = Vec::new();
        self.pending = VecDeque::new();
    }

    /// A flush for memory: what is held is dropped, the record being read is skipped exactly (its
    /// length is known) and decryption goes on with the next one.
    pub fn flush(&mut self) {
        if let Some(r) = &mut self.resync {
            // What was gathered is given up; the search goes on with the next bytes.
            self.opaque += r.buf.len() as u64;
            r.lost += r.buf.len() as u64;
            r.at += r.buf.len() as u64;
            r.buf = Vec::new();
            r.scanned = 0;
        }
        if self.head_len == 5 {
            let len = u16::from_be_bytes([self.head[3], self.head[4]]) as usize;
            self.opaque += (5 + self.body.len()) as u64;
            self.skip = len - self.body.len();
            if self.protected(self.head[0]) {
                self.bump_seq();
            }
            self.plain_next += 1;
            self.head_len = 0;
        }
        self.body = Vec::new();
        if self.pending_bytes > 0 {
            self.opaque += self.pending_bytes as u64;
            self.pending.clear();
            self.pending_bytes = 0;
            // Held for a ServerHello or for keys that did not come in time.
            match self.crypto {
                Crypto::AwaitKeys(_) => self.give_up_waiting(),
                _ => self.stop(Decryption::Incomplete),
            }
        }
    }

    /// One whole record (header `head`, fragment in `self.body`) whose last byte is at `end`.
    fn record(&mut self, head: [u8; 5], end: u64, emit: &mut dyn FnMut(u64, &[u8])) {
        let size = 5 + self.body.len();
        match &self.crypto {
            Crypto::Off => {
                self.opaque += size as u64;
            }
            Crypto::Start | Crypto::AwaitKeys(_) => {
                if self.pending_bytes + size > MAX_PENDING {
                    self.opaque += (self.pending_bytes + size) as u64;
                    self.pending.clear();
                    self.pending_bytes = 0;
                    if matches!(self.crypto, Crypto::Start) {
                        self.stop(Decryption::Incomplete);
                    } else {
                        self.give_up_waiting();
                    }
                    return;
                }
                let mut rec = Vec::with_capacity(size);
                rec.extend_from_slice(&head);
                rec.extend_from_slice(&self.body);
                self.pending.push_back((end, rec));
                self.pending_bytes += size;
            }
            Crypto::Tls12 { .. } => self.record12(head, end, emit),
            Crypto::Tls13 { .. } => self.record13(head, end, emit),
        }
    }

    fn record12(&mut self, head: [u8; 5], end: u64, emit: &mut dyn FnMut(u64, &[u8])) {
        let size = (5 + self.body.len()) as u64;
        let Crypto::Tls12 { keys, active } = &mut self.crypto else {
            return;
        };
        // Before the client's ChangeCipherSpec records are plaintext (ClientKeyExchange…).
        if !*active {
            *active = head[0] == 0x14;
            self.opaque += size;
            return;
        }
        match keys.open(&head, &mut self.body) {
            Some(ty) => {
                self.opened = true;
                self.records_opened += 1;
                self.decrypted_bytes += size;
                if ty == 0x17 {
                    let body = std::mem::take(&mut self.body);
                    self.plaintext(&body, end, emit);
                    self.body = body;
                }
            }
            None => self.failed(end, size),
        }
    }

    fn record13(&mut self, head: [u8; 5], end: u64, emit: &mut dyn FnMut(u64, &[u8])) {
        let size = (5 + self.body.len()) as u64;
        if head[0] != 0x17 {
            // A ChangeCipherSpec for middleboxes, a second ClientHello after a retry: plaintext.
            self.opaque += size;
            return;
        }
        let Crypto::Tls13 {
            suite,
            secrets,
            stage,
            app,
            keys,
        } = &mut self.crypto
        else {
            return;
        };
        let suite = *suite;
        // The current stage first, then the ones that may follow it unannounced (early data
        // rejected, a Finished in a record not parsed, a KeyUpdate lost).
        let mut candidates: Vec<(Stage13, Option<TrafficSecret>)> = Vec::with_capacity(3);
        let next_app = |n: u32, s: Option<TrafficSecret>| (Stage13::App(n), s);
        match *stage {
            Stage13::Early => {
                candidates.push((Stage13::Early, None));
                candidates.push((Stage13::Handshake, None));
                candidates.push(next_app(0, None));
            }
            Stage13::Handshake => {
                candidates.push((Stage13::Handshake, None));
                candidates.push(next_app(0, None));
            }
            Stage13::App(n) => {
                candidates.push((Stage13::App(n), *app));
                if let Some(a) = app {
                    candidates.push(next_app(n + 1, Some(a.updated(suite.hash))));
                }
            }
        }
        let original = if candidates.len() > 1 {
            Some(self.body.clone())
        } else {
            None
        };
        let mut opened = None;
        for (i, (st, sec)) in candidates.into_iter().enumerate() {
            let current = i == 0 && keys.is_some();
            if !current {
                let secret = match (st, sec) {
                    (Stage13::Early, _) => {
                        secrets.client_early.map(|s| TrafficSecret::new(s.bytes()))
                    }
                    (Stage13::Handshake, _) => secrets
                        .client_handshake
                        .map(|s| TrafficSecret::new(s.bytes())),
                    (Stage13::App(_), Some(s)) => Some(s),
                    (Stage13::App(_), None) => secrets
                        .client_traffic_0
                        .map(|s| TrafficSecret::new(s.bytes())),
                };
                let Some(secret) = secret else { continue };
                *keys = RecordKeys::tls13(suite, &secret).map(Box::new);
                *stage = st;
                *app = matches!(st, Stage13::App(_)).then_some(secret);
            }
            if i > 0
                && let Some(o) = &original
            {
                self.body.clear();
                self.body.extend_from_slice(o);
            }
            if let Some(k) = keys.as_mut()
                && let Some(ty) = k.open(&head, &mut self.body)
            {
                opened = Some(ty);
                break;
            }
        }
        let Some(ty) = opened else {
            // 0-RTT records whose early secret the key log lacks: skipped, not a wrong key.
            if self.early && !self.opened && secrets.client_early.is_none() {
                *stage = Stage13::Handshake;
                *keys = None;
                *app = None;
                self.opaque += size;
                return;
            }
            return self.failed(end, size);
        };
        self.opened = true;
        self.records_opened += 1;
        self.decrypted_bytes += size;
        match ty {
            0x17 => {
                let body = std::mem::take(&mut self.body);
                self.plaintext(&body, end, emit);
                self.body = body;
            }
            0x16 => self.handshake13(),
            _ => {}
        }
    }

    /// TLS 1.3 handshake messages inside protected records: EndOfEarlyData, Finished and
    /// KeyUpdate change the client's keys after the record that carries them.
    fn handshake13(&mut self) {
        let mut p = self.hs_left.min(self.body.len());
        self.hs_left -= p;
        let mut next = None;
        while p + 4 <= self.body.len() {
            let ty = self.body[p];
            let len = u32::from_be_bytes([0, self.body[p + 1], self.body[p + 2], self.body[p + 3]])
                as usize;
            match ty {
                5 => next = Some(Stage13::Handshake),
                20 => next = Some(Stage13::App(0)),
                24 => next = Some(Stage13::App(u32::MAX)),
                _ => {}
            }
            let end = p + 4 + len;
            if end > self.body.len() {
                self.hs_left = end - self.body.len();
                break;
            }
            p = end;
        }
        let Crypto::Tls13 {
            suite,
            secrets,
            stage,
            app,
            keys,
        } = &mut self.crypto
        else {
            return;
        };
        let secret = match (next, *stage) {
            (Some(Stage13::Handshake), _) => {
                *stage = Stage13::Handshake;
                secrets
                    .client_handshake
                    .map(|s| TrafficSecret::new(s.bytes()))
            }
            (Some(Stage13::App(0)), Stage13::Early | Stage13::Handshake) => {
                *stage = Stage13::App(0);
                secrets
                    .client_traffic_0
                    .map(|s| TrafficSecret::new(s.bytes()))
            }
            (Some(Stage13::App(_)), Stage13::App(n)) => {
                *stage = Stage13::App(n + 1);
                app.map(|a| a.updated(suite.hash))
            }
            _ => return,
        };
        *app = matches!(stage, Stage13::App(_)).then_some(secret).flatten();
        *keys = secret.and_then(|s| RecordKeys::tls13(*suite, &s).map(Box::new));
    }

    /// A protected record did not open: the keys are wrong (first record), or the stream lost
    /// its way (later). Either way nothing after it is opened.
    fn failed(&mut self, end: u64, size: u64) {
        self.opaque += size;
        if !self.opened {
            self.failed_at.get_or_insert(end);
            self.stop(Decryption::KeysDoNotMatch { frame: 0 });
        } else {
            self.stop(Decryption::Partial);
        }
    }

    /// Application data: handed on at the next plaintext offset, its record remembered.
    fn plaintext(&mut self, text: &[u8], end: u64, emit: &mut dyn FnMut(u64, &[u8])) {
        if text.is_empty() {
            return;
        }
        let at = self.plain_next;
        self.plain_next += text.len() as u64;
        self.map.push_back((self.plain_next, end));
        if self.map.len() > MAX_MAP {
            self.map.pop_front();
        }
        emit(at, text);
    }

    /// Sets the frame of a `keys_do_not_match` status once the caller knows it.
    pub fn set_failed_frame(&mut self, frame: u64) {
        if let Some(Decryption::KeysDoNotMatch { frame: f }) = &mut self.stopped {
            *f = frame;
        }
    }
}
