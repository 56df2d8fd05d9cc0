//! The flow table: keys, the hasher, open-flow slots kept in least-recently-active order, and the
//! memory of flows that ended (so their trailing packets are recognised, and a flow that went
//! quiet and comes back continues where it was).
//!
//! Must not touch: what flows carry (reassembly, protocols, findings).

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use crate::{FlowEnd, HostSource, Protocol};

pub(crate) type Endpoint = (IpAddr, u16);

/// A multiply-rotate hasher (the Fx scheme): the flow table is looked up once per packet, and
/// SipHash's DoS resistance buys nothing here: a flood of keys is bounded by memory, not by hash
/// quality.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(FX_K).rotate_left(26);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// A conversation's identity, the same in both directions: addresses as 128-bit words (IPv4
/// mapped into IPv6), so comparing and hashing a key is a few integer operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowKey {
    lo: u128,
    hi: u128,
    /// The lower side's port in the high half.
    ports: u32,
    pub tcp: bool,
}

fn word(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(v.to_ipv6_mapped()),
        IpAddr::V6(v) => u128::from(v),
    }
}

impl FlowKey {
    pub fn new(a: Endpoint, b: Endpoint, tcp: bool) -> Self {
        let (wa, wb) = ((word(a.0), a.1), (word(b.0), b.1));
        let (lo, hi) = if wa <= wb { (wa, wb) } else { (wb, wa) };
        FlowKey {
            lo: lo.0,
            hi: hi.0,
            ports: u32::from(lo.1) << 16 | u32::from(hi.1),
            tcp,
        }
    }

    /// A hash of the key that does not depend on the table: the shard a flow belongs to.
    pub fn shard_hash(&self) -> u64 {
        let mut h = FxHasher::default();
        self.hash(&mut h);
        // Fx leaves the low bits weak: fold the high ones in before taking a remainder.
        let x = h.finish();
        x ^ (x >> 29) ^ (x >> 47)
    }
}

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let fold = |w: u128| (w >> 64) as u64 ^ w as u64;
        h.write_u64(fold(self.lo) ^ u64::from(self.ports) << 1 ^ u64::from(self.tcp));
        h.write_u64(fold(self.hi));
    }
}

/// Where a key's flow is: an open slot, or the memory of an ended flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    Open(u32),
    Ended(u32),
}

/// No slot.
pub(crate) const NIL: u32 = u32::MAX;

/// The lists open flows are kept in, each in order of last activity (oldest first), each with its
/// own idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    /// TCP connections neither side has ended.
    Tcp = 0,
    /// TCP connections with a FIN from one side: the other side's last bytes may still come.
    Closing = 1,
    Udp = 2,
}

/// One list's ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lru {
    pub head: u32,
    pub tail: u32,
    pub len: usize,
}

impl Default for Lru {
    fn default() -> Self {
        Lru {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

/// Links of an open slot in its list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Links {
    pub prev: u32,
    pub next: u32,
    pub list: List,
}

/// Doubly linked lists threaded through a slot array (`links[i]` belongs to slot `i`).
#[derive(Debug, Default)]
pub(crate) struct Lists {
    pub links: Vec<Links>,
    pub lists: [Lru; 3],
}

impl Lists {
    /// Appends slot `i` (not in any list) at the tail of `list`.
    pub fn push(&mut self, i: u32, list: List) {
        if self.links.len() <= i as usize {
            self.links.resize(
                i as usize + 1,
                Links {
                    prev: NIL,
                    next: NIL,
                    list,
                },
            );
        }
        let l = &mut self.lists[list as usize];
        self.links[i as usize] = Links {
            prev: l.tail,
            next: NIL,
            list,
        };
        if l.tail != NIL {
            self.links[l.tail as usize].next = i;
        } else {
            l.head = i;
        }
        l.tail = i;
        l.len += 1;
    }

    /// Takes slot `i` out of its list.
    pub fn unlink(&mut self, i: u32) {
        let Links { prev, next, list } = self.links[i as usize];
        let l = &mut self.lists[list as usize];
        if prev != NIL {
            self.links[prev as usize].next = next;
        } else {
            l.head = next;
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        } else {
            l.tail = prev;
        }
        l.len -= 1;
    }

    /// Moves slot `i` to the tail of `list` (it was active just now).
    #[inline]
    pub fn touch(&mut self, i: u32, list: List) {
        let links = self.links[i as usize];
        if links.list == list && links.next == NIL {
            return;
        }
        self.unlink(i);
        self.push(i, list);
    }

    pub fn head(&self, list: List) -> Option<u32> {
        let h = self.lists[list as usize].head;
        (h != NIL).then_some(h)
    }

    #[cfg(test)]
    pub fn len(&self, list: List) -> usize {
        self.lists[list as usize].len
    }
}

/// What is remembered of a flow after it ended.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    pub key: FlowKey,
    pub client: Endpoint,
    pub protocol: Protocol,
    pub host: Option<(Arc<str>, HostSource)>,
    /// Next sequence number expected from each side (TCP): bytes before it are retransmissions.
    pub next_seq: [Option<u32>; 2],
    pub end: FlowEnd,
}

/// The last `cap` ended flows, oldest overwritten first.
#[derive(Debug)]
pub(crate) struct EndedRing {
    items: Vec<Ended>,
    next: usize,
    cap: usize,
}

impl EndedRing {
    pub fn new(cap: usize) -> Self {
        EndedRing {
            items: Vec::new(),
            next: 0,
            cap,
        }
    }

    /// Stores `e`; returns its index and the key whose memory it replaced, if any.
    pub fn push(&mut self, e: Ended) -> (u32, Option<FlowKey>) {
        let i = self.next;
        self.next = (self.next + 1) % self.cap;
        if i < self.items.len() {
            let old = std::mem::replace(&mut self.items[i], e);
            (i as u32, Some(old.key))
        } else {
            self.items.push(e);
            (i as u32, None)
        }
    }

    pub fn get(&self, i: u32) -> Option<&Ended> {
        self.items.get(i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keep_activity_order() {
        let mut l = Lists::default();
        for i in 0..4 {
            l.push(i, List::Tcp);
        }
        l.touch(1, List::Tcp);
        l.touch(2, List::Closing);
        assert_eq!(l.head(List::Tcp), Some(0));
        l.unlink(0);
        assert_eq!(l.head(List::Tcp), Some(3));
        assert_eq!(l.len(List::Tcp), 2);
        assert_eq!(l.head(List::Closing), Some(2));
        l.unlink(3);
        assert_eq!(l.head(List::Tcp), Some(1));
        l.unlink(1);
        assert_eq!(l.head(List::Tcp), None);
        assert_eq!(l.len(List::Closing), 1);
    }

    #[test]
    fn keys_are_the_same_both_ways() {
        let a: Endpoint = ("10.0.0.1".parse().unwrap(), 4000);
        let b: Endpoint = ("10.0.0.2".parse().unwrap(), 80);
        assert_eq!(FlowKey::new(a, b, true), FlowKey::new(b, a, true));
        assert_ne!(FlowKey::new(a, b, true), FlowKey::new(a, b, false));
        assert_eq!(
            FlowKey::new(a, b, true).shard_hash(),
            FlowKey::new(b, a, true).shard_hash()
        );
    }
}
