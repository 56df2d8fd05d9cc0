//! TCP reassembly, one direction at a time: the in-order fast path, out-of-order segments held up
//! to `MAX_OOO_BYTES`, retransmitted and overlapping bytes dropped (the first copy wins), gaps
//! skipped and counted once the missing bytes are clearly not coming.
//!
//! Must not touch: what the bytes mean (see `client`), flow lifecycles.

use std::collections::BTreeMap;

use super::{Engine, MAX_OOO_BYTES, MAX_OOO_SEGMENTS, flow};
use crate::Timestamp;
use crate::sink::Sink;

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub(crate) struct TcpDir {
    /// Sequence number of stream offset 0.
    pub base: Option<u32>,
    /// Next expected stream offset.
    pub next: u64,
    pub ooo: BTreeMap<u64, (Vec<u8>, u64, Timestamp)>,
    pub ooo_bytes: usize,
    pub fin: bool,
}

impl TcpDir {
    /// Stream offset of `seq`, taking the 32-bit wrap into account around the expected point.
    pub fn offset(&self, base: u32, seq: u32) -> i64 {
        let expected = base.wrapping_add(self.next as u32);
        self.next as i64 + seq.wrapping_sub(expected) as i32 as i64
    }
}

impl<S: Sink> Engine<S> {
    /// One TCP segment at stream offset `off` (may be negative for retransmitted bytes before the
    /// origin we chose).
    pub(super) fn segment(
        &mut self,
        idx: u32,
        d: usize,
        off: i64,
        payload: &[u8],
        frame: u64,
        ts: Timestamp,
    ) {
        let dir = &mut flow!(self.slots, idx).dirs[d];
        let end = off + payload.len() as i64;
        if end <= dir.next as i64 {
            return; // retransmission
        }
        if off <= dir.next as i64 {
            let skip = (dir.next as i64 - off) as usize;
            let at = dir.next;
            dir.next = end as u64;
            self.deliver(idx, d, at, &payload[skip..], frame, ts);
            self.drain_ooo(idx, d);
            return;
        }
        let off = off as u64;
        match dir.ooo.get(&off) {
            Some((old, _, _)) if old.len() >= payload.len() => return,
            Some((old, _, _)) => dir.ooo_bytes -= old.len(),
            None => {}
        }
        dir.ooo_bytes += payload.len();
        dir.ooo.insert(off, (payload.to_vec(), frame, ts));
        // Holding more than the bound: the missing bytes are not coming; skip them.
        loop {
            let dir = &flow!(self.slots, idx).dirs[d];
            if dir.ooo_bytes <= MAX_OOO_BYTES && dir.ooo.len() <= MAX_OOO_SEGMENTS {
                return;
            }
            self.skip_gap(idx, d);
        }
    }

    /// Declares the bytes before the first buffered segment lost and delivers what follows.
    fn skip_gap(&mut self, idx: u32, d: usize) {
        let f = flow!(self.slots, idx);
        let Some((&first, _)) = f.dirs[d].ooo.first_key_value() else {
            return;
        };
        if first > f.dirs[d].next {
            f.gap_bytes += first - f.dirs[d].next;
            f.dirs[d].next = first;
        }
        self.drain_ooo(idx, d);
    }

    fn drain_ooo(&mut self, idx: u32, d: usize) {
        loop {
            let dir = &mut flow!(self.slots, idx).dirs[d];
            let Some(entry) = dir.ooo.first_entry() else {
                return;
            };
            let off = *entry.key();
            if off > dir.next {
                return;
            }
            let (data, frame, ts) = entry.remove();
            dir.ooo_bytes -= data.len();
            let end = off + data.len() as u64;
            if end <= dir.next {
                continue;
            }
            let skip = (dir.next - off) as usize;
            let at = dir.next;
            dir.next = end;
            self.deliver(idx, d, at, &data[skip..], frame, ts);
        }
    }

    /// Declares every byte still missing in either direction of a TCP flow lost, so what is held
    /// out of order can be searched.
    pub(super) fn skip_all_gaps(&mut self, idx: u32) {
        if flow!(self.slots, idx).tcp {
            for d in 0..2 {
                while !flow!(self.slots, idx).dirs[d].ooo.is_empty() {
                    self.skip_gap(idx, d);
                }
            }
        }
    }
}
