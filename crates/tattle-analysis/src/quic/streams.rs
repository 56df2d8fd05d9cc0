//! The frames of an opened QUIC packet (RFC 9000 §19, DATAGRAM of RFC 9221), and the STREAM data
//! they carry put back in order per stream.
//!
//! Every frame type of RFC 9000 is skipped by its layout; an unknown type ends the packet (its
//! length cannot be known). In-order stream bytes are handed on at once, each run with the capture
//! frame of the datagram that carried it and a connection-wide position (strictly increasing, so
//! a caller can map positions back to frames). Bytes after a hole are held until the hole fills,
//! up to `MAX_HELD` bytes per connection; past it, or when the flow is flushed or ends, a stream's
//! held pieces are handed on with their holes (a jump in the stream offset). A stream closed for
//! the cap on streams is not ended: where it was is remembered (up to `MAX_CLOSED` of them) and its
//! later bytes go on from there, after a hole if some were missed.
//!
//! Owns: frame layouts, reassembly, its memory bound. Must not touch: keys, flows, matching.

use std::collections::{BTreeMap, BTreeSet};

use super::{Origin, varint};

/// Out-of-order stream bytes held per connection (the bytes plus `PIECE_COST` per piece).
pub const MAX_HELD: usize = 1 << 20;
const PIECE_COST: usize = 64;
/// Streams followed at once per connection; past it the lowest-numbered is set aside.
const MAX_STREAMS: usize = 1024;
/// Ended streams remembered, so late retransmissions are not handed on again; as many streams
/// set aside for the cap.
const MAX_CLOSED: usize = 4096;

/// In-order bytes of one stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery<'a> {
    pub stream: u64,
    /// Stream offset of `data[0]`; larger than the bytes handed on so far after a hole.
    pub offset: u64,
    /// Connection-wide position of `data[0]`.
    pub abs: u64,
    pub data: &'a [u8],
    /// The stream ended with these bytes.
    pub fin: bool,
    /// The datagram that carried them.
    pub origin: Origin,
    /// The ClientHello offered HTTP/3 (ALPN `h3`): the streams speak it.
    pub h3: bool,
}

#[derive(Debug, Default)]
struct Stream {
    /// The next stream offset expected.
    next: u64,
    /// Pieces after a hole: offset → (bytes, carrier).
    pending: BTreeMap<u64, (Vec<u8>, Origin)>,
    fin_at: Option<u64>,
    /// Connection-wide position just after this stream's last byte handed on, once one was.
    abs_end: Option<u64>,
}

/// The client's streams of one connection.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    open: BTreeMap<u64, Stream>,
    /// Ended by FIN or RESET_STREAM: later bytes are retransmissions.
    closed: BTreeSet<u64>,
    /// Set aside for `MAX_STREAMS`, with the next offset expected: later bytes go on from there.
    set_aside: BTreeMap<u64, u64>,
    held: usize,
    abs_next: u64,
}

impl Streams {
    pub fn buffered(&self) -> usize {
        self.held
    }

    /// Walks the frames of one opened packet. DATAGRAM payloads go to `datagrams`.
    pub fn frames(
        &mut self,
        p: &[u8],
        origin: Origin,
        datagrams: &mut Vec<Vec<u8>>,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) {
        let mut pos = 0usize;
        // Returns at the first frame that does not parse: the rest of the packet is unknown.
        let mut step = |pos: &mut usize| -> Option<()> {
            let ty = varint(p, pos)?;
            let skip = |n: usize, pos: &mut usize| -> Option<()> {
                for _ in 0..n {
                    varint(p, pos)?;
                }
                Some(())
            };
            match ty {
                0x00 => {
                    // PADDING runs are long: skip them at once.
                    while p.get(*pos) == Some(&0) {
                        *pos += 1;
                    }
                }
                0x01 | 0x1e => {}
                0x02 | 0x03 => {
                    varint(p, pos)?;
                    varint(p, pos)?;
                    let ranges = varint(p, pos)?;
                    varint(p, pos)?;
                    for _ in 0..ranges.min(p.len() as u64) {
                        skip(2, pos)?;
                    }
                    if ty == 0x03 {
                        skip(3, pos)?;
                    }
                }
                0x04 => {
                    let id = varint(p, pos)?;
                    skip(2, pos)?;
                    self.reset(id, deliver);
                }
                0x05 | 0x11 | 0x15 => skip(2, pos)?,
                0x06 | 0x07 => {
                    if ty == 0x06 {
                        varint(p, pos)?;
                    }
                    let len = usize::try_from(varint(p, pos)?).ok()?;
                    *pos = pos.checked_add(len).filter(|&e| e <= p.len())?;
                }
                0x08..=0x0f => {
                    let id = varint(p, pos)?;
                    let off = if ty & 0x04 != 0 { varint(p, pos)? } else { 0 };
                    let len = if ty & 0x02 != 0 {
                        usize::try_from(varint(p, pos)?).ok()?
                    } else {
                        p.len().checked_sub(*pos)?
                    };
                    let data = p.get(*pos..pos.checked_add(len)?)?;
                    *pos += len;
                    self.stream(id, off, data, ty & 0x01 != 0, origin, deliver);
                }
                0x10 | 0x12 | 0x13 | 0x14 | 0x16 | 0x17 | 0x19 => skip(1, pos)?,
                0x18 => {
                    skip(2, pos)?;
                    let len = usize::from(*p.get(*pos)?);
                    *pos = pos.checked_add(1 + len + 16).filter(|&e| e <= p.len())?;
                }
                0x1a | 0x1b => *pos = pos.checked_add(8).filter(|&e| e <= p.len())?,
                0x1c | 0x1d => {
                    skip(if ty == 0x1c { 2 } else { 1 }, pos)?;
                    let len = usize::try_from(varint(p, pos)?).ok()?;
                    *pos = pos.checked_add(len).filter(|&e| e <= p.len())?;
                }
                0x30 | 0x31 => {
                    let len = if ty == 0x31 {
                        usize::try_from(varint(p, pos)?).ok()?
                    } else {
                        p.len().checked_sub(*pos)?
                    };
                    let data = p.get(*pos..pos.checked_add(len)?)?;
                    *pos += len;
                    datagrams.push(data.to_vec());
                }
                _ => return None,
            }
            Some(())
        };
        while pos < p.len() {
            if step(&mut pos).is_none() {
                break;
            }
        }
    }

    /// A STREAM frame's data at offset `off` of stream `id`.
    fn stream(
        &mut self,
        id: u64,
        off: u64,
        data: &[u8],
        fin: bool,
        origin: Origin,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) {
        if self.closed.contains(&id) {
            return;
        }
        if !self.open.contains_key(&id)
            && self.open.len() >= MAX_STREAMS
            && let Some((&lowest, _)) = self.open.iter().next()
        {
            self.set_aside(lowest, deliver);
        }
        let Some(end) = off.checked_add(data.len() as u64) else {
            return;
        };
        let next = self.set_aside.remove(&id).unwrap_or(0);
        let s = self.open.entry(id).or_insert_with(|| Stream {
            next,
            ..Stream::default()
        });
        if fin {
            s.fin_at = Some(end);
        }
        if off <= s.next {
            if end > s.next {
                let from = (s.next - off) as usize;
                let at = s.next;
                s.next = end;
                emit(&mut self.abs_next, id, at, &data[from..], origin, deliver);
                s.abs_end = Some(self.abs_next);
            }
            self.drain(id, deliver);
            return;
        }
        let cost = data.len() + PIECE_COST;
        if self.held + cost > MAX_HELD {
            // Over the bound: this stream's held pieces and this one go on, holes and all.
            let pieces = std::mem::take(&mut s.pending);
            let mut all: Vec<(u64, Vec<u8>, Origin)> =
                pieces.into_iter().map(|(o, (d, g))| (o, d, g)).collect();
            for (_, d, _) in &all {
                self.held = self.held.saturating_sub(d.len() + PIECE_COST);
            }
            all.push((off, data.to_vec(), origin));
            all.sort_by_key(|x| x.0);
            for (o, d, g) in all {
                self.put(id, o, &d, g, deliver);
            }
            self.drain(id, deliver);
            return;
        }
        match s.pending.get(&off) {
            Some((old, _)) if old.len() >= data.len() => {}
            _ => {
                if let Some((old, _)) = s.pending.insert(off, (data.to_vec(), origin)) {
                    self.held = self.held.saturating_sub(old.len() + PIECE_COST);
                }
                self.held += cost;
            }
        }
    }

    /// Hands on `data` at `off` of stream `id`, jumping over a hole if there is one.
    fn put(
        &mut self,
        id: u64,
        off: u64,
        data: &[u8],
        origin: Origin,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) {
        let Some(s) = self.open.get_mut(&id) else {
            return;
        };
        let end = off + data.len() as u64;
        if end <= s.next {
            return;
        }
        let from = s.next.saturating_sub(off) as usize;
        let at = off.max(s.next);
        s.next = end;
        emit(&mut self.abs_next, id, at, &data[from..], origin, deliver);
        s.abs_end = Some(self.abs_next);
    }

    /// Hands on held pieces that are now in order, and the end of the stream if reached.
    fn drain(&mut self, id: u64, deliver: &mut dyn FnMut(Delivery<'_>)) {
        loop {
            let Some(s) = self.open.get_mut(&id) else {
                return;
            };
            let Some(entry) = s.pending.first_entry() else {
                break;
            };
            if *entry.key() > s.next {
                break;
            }
            let (off, (d, g)) = entry.remove_entry();
            self.held = self.held.saturating_sub(d.len() + PIECE_COST);
            self.put(id, off, &d, g, deliver);
        }
        let Some(s) = self.open.get(&id) else { return };
        if s.fin_at.is_some_and(|f| f <= s.next) && s.pending.is_empty() {
            // Its end is after its own last byte, not the connection's (another stream's).
            let last = Delivery {
                stream: id,
                offset: s.next,
                abs: s.abs_end.unwrap_or(self.abs_next),
                data: &[],
                fin: true,
                origin: Origin { frame: 0, ts: 0.0 },
                h3: false,
            };
            deliver(last);
            self.forget(id);
        }
    }

    /// A stream that ends now: what it holds goes on, holes and all.
    fn close(&mut self, id: u64, deliver: &mut dyn FnMut(Delivery<'_>)) {
        let Some(s) = self.open.get_mut(&id) else {
            return;
        };
        let pending = std::mem::take(&mut s.pending);
        for (off, (d, g)) in pending {
            self.held = self.held.saturating_sub(d.len() + PIECE_COST);
            self.put(id, off, &d, g, deliver);
        }
        self.forget(id);
    }

    /// A stream closed for the cap on streams: what it holds goes on, where it was is kept.
    fn set_aside(&mut self, id: u64, deliver: &mut dyn FnMut(Delivery<'_>)) {
        let Some(s) = self.open.get_mut(&id) else {
            return;
        };
        let pending = std::mem::take(&mut s.pending);
        for (off, (d, g)) in pending {
            self.held = self.held.saturating_sub(d.len() + PIECE_COST);
            self.put(id, off, &d, g, deliver);
        }
        if let Some(s) = self.open.remove(&id) {
            self.set_aside.insert(id, s.next);
            if self.set_aside.len() > MAX_CLOSED {
                self.set_aside.pop_first();
            }
        }
    }

    fn forget(&mut self, id: u64) {
        self.open.remove(&id);
        self.set_aside.remove(&id);
        self.closed.insert(id);
        if self.closed.len() > MAX_CLOSED {
            self.closed.pop_first();
        }
    }

    /// RESET_STREAM: the sender abandons the stream.
    fn reset(&mut self, id: u64, deliver: &mut dyn FnMut(Delivery<'_>)) {
        self.close(id, deliver);
    }

    /// Everything held goes on (for memory, or at the end of the flow); streams stay open.
    pub fn flush(&mut self, deliver: &mut dyn FnMut(Delivery<'_>)) {
        let ids: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, s)| !s.pending.is_empty())
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let Some(s) = self.open.get_mut(&id) else {
                continue;
            };
            let pending = std::mem::take(&mut s.pending);
            for (off, (d, g)) in pending {
                self.put(id, off, &d, g, deliver);
            }
        }
        self.held = 0;
    }
}

fn emit(
    abs_next: &mut u64,
    stream: u64,
    offset: u64,
    data: &[u8],
    origin: Origin,
    deliver: &mut dyn FnMut(Delivery<'_>),
) {
    if data.is_empty() {
        return;
    }
    let abs = *abs_next;
    *abs_next += data.len() as u64;
    deliver(Delivery {
        stream,
        offset,
        abs,
        data,
        fin: false,
        origin,
        h3: false,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (stream, offset, bytes, fin) of each delivery.
    type Got = Vec<(u64, u64, Vec<u8>, bool)>;

    fn feed(s: &mut Streams, id: u64, off: u64, data: &[u8], fin: bool, got: &mut Got) {
        feed_at(s, id, off, data, fin, &mut |d| {
            got.push((d.stream, d.offset, d.data.to_vec(), d.fin))
        });
    }

    fn feed_at(
        s: &mut Streams,
        id: u64,
        off: u64,
        data: &[u8],
        fin: bool,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) {
        let origin = Origin { frame: 1, ts: 0.0 };
        s.stream(id, off, data, fin, origin, deliver);
    }

    /// A FIN-only STREAM frame ends its stream at its own last byte, whatever came on other
    /// streams since.
    #[test]
    fn a_fin_alone_sits_after_its_own_streams_last_byte() {
        let mut s = Streams::default();
        let mut abs = Vec::new();
        let mut got = |d: Delivery<'_>| abs.push((d.stream, d.abs, d.data.len(), d.fin));
        feed_at(&mut s, 0, 0, b"abc", false, &mut got);
        feed_at(&mut s, 4, 0, b"defgh", false, &mut got);
        feed_at(&mut s, 0, 3, b"", true, &mut got);
        // A FIN before any byte of its stream: at the connection's current end.
        feed_at(&mut s, 8, 0, b"", true, &mut got);
        assert_eq!(
            abs,
            vec![
                (0, 0, 3, false),
                (4, 3, 5, false),
                (0, 3, 0, true),
                (8, 8, 0, true)
            ]
        );
    }

    /// A stream set aside for the cap on streams is not ended: its later bytes still go on.
    #[test]
    fn a_stream_set_aside_for_the_cap_goes_on() {
        let mut s = Streams::default();
        let mut got = Got::new();
        feed(&mut s, 0, 0, b"ab", false, &mut got);
        // Stream 0 is the lowest: the cap sets it aside for the last new stream.
        for i in 1..=MAX_STREAMS as u64 {
            feed(&mut s, 4 * i, 0, b"x", false, &mut got);
        }
        assert!(!s.open.contains_key(&0));
        got.clear();
        feed(&mut s, 0, 2, b"cd", false, &mut got);
        feed(&mut s, 0, 6, b"gh", true, &mut got);
        feed(&mut s, 0, 4, b"ef", false, &mut got);
        assert_eq!(
            got,
            vec![
                (0, 2, b"cd".to_vec(), false),
                (0, 4, b"ef".to_vec(), false),
                (0, 6, b"gh".to_vec(), false),
                (0, 8, vec![], true),
            ]
        );
        // Ended by its FIN: a retransmission is not handed on again.
        got.clear();
        feed(&mut s, 0, 0, b"abcdefgh", true, &mut got);
        assert!(got.is_empty());
    }
}
