//! The bounds that keep an analysis' memory and time proportional to its input, and the notes of
//! what each one cut (reported as limits: the capture was fine, the analysis stopped short).
//!
//! Must not touch: anything but numbers and their notes.

use crate::Limit;

/// Client bytes searched per flow.
pub const INSPECT_CAP: u64 = 4 << 20;
/// Out-of-order bytes held per direction before the missing ones are declared lost.
pub const MAX_OOO_BYTES: usize = 1 << 20;
pub(crate) const MAX_OOO_SEGMENTS: usize = 2048;
/// Stream-offset → frame entries kept per flow (oldest dropped first).
pub(crate) const MAX_FRAME_MAP: usize = 4096;
/// Entries further back than this from the newest byte are dropped: no reader reports a match that
/// far behind (an HTTP body is at most `MAX_BODY` after its head, a head at most `MAX_HEAD`).
pub(crate) const FRAME_MAP_REACH: u64 = 4 << 20;
/// Distinct findings kept per flow.
pub(crate) const MAX_FINDINGS_PER_FLOW: usize = 10_000;
/// What one open flow costs besides the bytes it holds: its state, its box, its table entry and
/// list links, the small allocations of a typical flow. Measured with the many-flow capture
/// (`testgen::Shape::ManyFlows`): RSS per open flow.
pub const FLOW_STATE_BYTES: usize = 1024;
/// Open flows' state together (`FLOW_STATE_BYTES` each): past it the least recently active flow
/// is ended early. 24 MiB ≈ 24 000 flows open at once.
pub const MAX_FLOW_STATE: usize = 24 << 20;
/// Bytes held by all open flows together (out-of-order data, unfinished messages, frame maps);
/// past it the largest holders are flushed until half of it is left.
pub const MAX_BUFFERED: usize = 32 << 20;
/// A TCP connection silent this long (capture time, seconds) has ended; if it speaks again it
/// goes on as a resumed flow. Phones keep push connections open for many minutes: this is about
/// memory, not correctness, since a resumed flow keeps its client, protocol and host.
pub const TCP_IDLE: f64 = 300.0;
/// A TCP connection with a FIN from one side, silent this long, has ended.
pub const CLOSING_IDLE: f64 = 10.0;
/// A UDP conversation silent this long has ended, as conntrack has it: UDP has no end.
pub const UDP_IDLE: f64 = 120.0;
/// Flows ended idle or evicted that are remembered, so that one that speaks again is resumed (its
/// client, protocol and name kept): the most recent ones, about 2 MiB of them.
pub(crate) const MAX_ENDED_KEYS: usize = 16_384;
/// Addresses named by DNS answers kept (to name later flows).
pub const MAX_DNS_NAMES: usize = 100_000;
/// Decoded HTTP body bytes the capture may produce: this much, plus `DECODE_PER_BYTE` per client
/// byte seen, so the work stays proportional to the input whatever the compression ratios.
pub const DECODE_BUDGET_BASE: u64 = 16 << 20;
pub const DECODE_PER_BYTE: u64 = 8;
pub(crate) const NTP_PORT: u16 = 123;
/// Two identical datagrams of one flow, same direction, this close (seconds): one packet captured
/// twice (loopback seen leaving and arriving on `-i any`), not an application repeat.
pub(crate) const DUPLICATE_WINDOW: f64 = 0.001;
/// Bytes a held out-of-order segment costs besides its payload (tree node share, allocation).
pub(crate) const OOO_ENTRY: usize = 96;
/// Bytes an offset → frame entry costs.
pub(crate) const FRAME_ENTRY: usize = std::mem::size_of::<(u64, u64, f64)>();

/// A limit that cut something: how often, and the frame where it first did.
#[derive(Debug, Default, Clone)]
pub(crate) struct Note {
    pub count: u64,
    pub first_frame: u64,
}

impl Note {
    pub fn add(&mut self, frame: u64, n: u64) {
        if self.count == 0 || frame < self.first_frame {
            self.first_frame = frame;
        }
        self.count += n;
    }

    /// Adds another note's counts (a shard's).
    pub fn merge(&mut self, other: &Note) {
        if other.count > 0 {
            self.add(other.first_frame, other.count);
        }
    }

    fn limit(&self, what: impl FnOnce(u64) -> String) -> Option<Limit> {
        (self.count > 0).then(|| Limit {
            after_frame: self.first_frame.saturating_sub(1),
            what: format!("{} (first: frame {})", what(self.count), self.first_frame),
        })
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Notes {
    pub dns_names: Note,
    pub budget: Note,
    pub decode_cut: Note,
    /// Flows ended early for memory while holding unfinished bytes.
    pub evicted_holding: Note,
    /// Flows ended early for memory that then sent again.
    pub resumed_evicted: Note,
    /// Decryption Secrets Blocks ignored: the capture taught more keys than `MAX_LEARNED_KEYS`.
    pub learned_keys: Note,
}

/// Connections whose secrets a capture's Decryption Secrets Blocks may teach (~300 B each).
pub const MAX_LEARNED_KEYS: usize = 200_000;

impl Notes {
    pub fn limits(&self, max_buffered: usize) -> Vec<Limit> {
        [
            self.dns_names.limit(|c| {
                format!("{c} DNS answer(s) not used to name flows: more than {MAX_DNS_NAMES} addresses")
            }),
            self.budget.limit(|c| {
                format!(
                    "{c} flow(s) flushed early: open flows held more than {} MiB",
                    max_buffered >> 20
                )
            }),
            self.decode_cut.limit(|c| {
                format!(
                    "{c} HTTP body(ies) decoded only in part (decompression ratio or budget); counted opaque"
                )
            }),
            self.evicted_holding.limit(|c| {
                format!(
                    "{c} flow(s) ended early with unfinished bytes: more open flows than {} MiB of state",
                    MAX_FLOW_STATE >> 20
                )
            }),
            self.learned_keys.limit(|c| {
                format!(
                    "{c} decryption secrets block(s) ignored: the capture carries secrets for more than {MAX_LEARNED_KEYS} connections"
                )
            }),
            self.resumed_evicted.limit(|c| {
                format!(
                    "{c} flow(s) went on after being ended early for memory: analysed from there as resumed flows"
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    pub fn merge(&mut self, other: &Notes) {
        self.dns_names.merge(&other.dns_names);
        self.budget.merge(&other.budget);
        self.decode_cut.merge(&other.decode_cut);
        self.evicted_holding.merge(&other.evicted_holding);
        self.resumed_evicted.merge(&other.resumed_evicted);
        self.learned_keys.merge(&other.learned_keys);
    }
}
