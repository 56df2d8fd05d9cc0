//! QUIC v1 as a client sends it: the Initial packets up to the ClientHello (`initial`, keys anyone
//! can derive), then — when a key log has the connection's secrets — its Handshake, 0-RTT and
//! 1-RTT packets opened (`protected`), their frames walked and STREAM data put back in order per
//! stream (`streams`), handed to the caller with the capture frame that carried each byte
//! (docs/research/tls-decryption-design.md §3.4, §7; docs/analysis.md "QUIC").
//!
//! A datagram may hold several long-header packets and at most one short-header packet, last
//! (RFC 9000 §12.2). The short header does not carry its Destination Connection ID's length: it is
//! the length of the CID the client sends its Handshake (or 0-RTT) packets to, else the Source
//! Connection ID of the server's long-header packets.
//!
//! Status, as for a TLS flow: no secrets for the client random → `no_key`; a packet that fails under
//! every candidate key before any opened → `keys_do_not_match` (at its frame); failures after some
//! opened → `partial`; protected packets that could not even be tried (no ClientHello, CID length
//! unknown) → `incomplete`. Packets of a space whose secret the key log lacks (a log with the
//! handshake secrets but no `CLIENT_TRAFFIC_SECRET_0`) are not read: `partial`, or `no_key` when
//! some were of the application spaces (0-RTT, 1-RTT) and none of those opened.
//!
//! Owns: packet parsing and protection, statuses, per-connection bounds. Must not touch: flows,
//! matching, what stream bytes mean (the caller's), I/O. Never logs secrets or plaintext.

mod initial;
mod protected;
mod streams;

pub use initial::looks_like_initial;
#[cfg(any(test, feature = "testgen"))]
pub use initial::seal_client_initial;
pub(crate) use protected::QUIC_V1;
pub(crate) use streams::Delivery;

use crate::keylog::Secrets;
use crate::tls::ClientHello;
use crate::tls::stream::KeyView;
use crate::{Decryption, TlsSummary};
use initial::Initials;
use protected::{Opened, Protected, Space};
use streams::Streams;

const VERSION_1: u32 = 1;
const MAX_CID: usize = 20;
const TAG_LEN: usize = 16;
/// Protected packets that fail before any opened, after which no more are tried (each costs up to
/// six AEAD attempts).
const MAX_FAILURES: u32 = 32;

/// A QUIC variable-length integer at `*pos` (RFC 9000 §16).
fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *b.get(*pos)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*pos..*pos + len)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &bytes[1..] {
        v = (v << 8) | u64::from(x);
    }
    *pos += len;
    Some(v)
}

#[cfg(any(test, feature = "testgen"))]
fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 1 << 6 {
        out.push(v as u8);
    } else if v < 1 << 14 {
        out.extend_from_slice(&(0x4000 | v as u16).to_be_bytes());
    } else if v < 1 << 30 {
        out.extend_from_slice(&(0x8000_0000 | v as u32).to_be_bytes());
    } else {
        out.extend_from_slice(&(0xc000_0000_0000_0000 | v).to_be_bytes());
    }
}

/// RFC 9000 §A.3: the full packet number closest to the next expected one.
fn decode_pn(largest: Option<u64>, truncated: u64, pn_len: usize) -> u64 {
    let expected = largest.map_or(0, |l| l + 1);
    let bits = 8 * pn_len as u32;
    let win = 1u64 << bits;
    let half = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate + half <= expected && candidate < (1u64 << 62) - win {
        candidate + win
    } else if candidate > expected + half && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

/// The parts of a v1 long header this module reads.
struct LongHeader<'a> {
    ty: u8,
    dcid: &'a [u8],
    scid: &'a [u8],
    /// Offset of the packet number.
    pn_off: usize,
    /// Offset just past the packet.
    end: usize,
}

/// The long-header packet at the start of `b`, if it is a whole v1 one (Retry has no length).
fn long_header(b: &[u8]) -> Option<LongHeader<'_>> {
    let first = *b.first()?;
    if first & 0x80 == 0 || b.len() < 7 || u32::from_be_bytes([b[1], b[2], b[3], b[4]]) != VERSION_1
    {
        return None;
    }
    let ty = (first >> 4) & 3;
    let mut pos = 5;
    let dcid_len = usize::from(b[pos]);
    if dcid_len > MAX_CID {
        return None;
    }
    let dcid = b.get(pos + 1..pos + 1 + dcid_len)?;
    pos += 1 + dcid_len;
    let scid_len = usize::from(*b.get(pos)?);
    if scid_len > MAX_CID {
        return None;
    }
    let scid = b.get(pos + 1..pos + 1 + scid_len)?;
    pos += 1 + scid_len;
    match ty {
        0 => {
            let token = usize::try_from(varint(b, &mut pos)?).ok()?;
            pos = pos.checked_add(token)?;
        }
        3 => return None,
        _ => {}
    }
    let length = usize::try_from(varint(b, &mut pos)?).ok()?;
    let end = pos.checked_add(length)?;
    (end <= b.len()).then_some(LongHeader {
        ty,
        dcid,
        scid,
        pn_off: pos,
        end,
    })
}

/// Where a datagram was captured: its frame and time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub frame: u64,
    pub ts: crate::Timestamp,
}

/// What a client datagram gave, besides the counters.
#[derive(Debug, Default)]
pub(crate) struct Read {
    /// The ClientHello, when this datagram completed it.
    pub hello: Option<ClientHello>,
    /// DATAGRAM frame payloads (RFC 9221), in order.
    pub datagrams: Vec<Vec<u8>>,
}

/// The client side of one QUIC connection, as seen in a capture.
#[derive(Debug)]
pub(crate) struct QuicClient {
    initials: Initials,
    /// A key log was there for a datagram of this connection (decided per datagram: a pcapng
    /// Decryption Secrets Block may bring the first keys after the connection began).
    attempt: bool,
    /// Protected packets read while there was no key log at all.
    unkeyed: u64,
    hello: Option<ClientHello>,
    /// The secrets, once the key log had them.
    secrets: Option<Box<Secrets>>,
    protected: Protected,
    /// Length of the server's connection IDs: (from the client's Handshake DCID, from the server's
    /// SCID).
    cid_from_client: Option<usize>,
    cid_from_server: Option<usize>,
    streams: Streams,
    /// Protected packets that did not open, and the frame of the first one while none had.
    failures: u32,
    failed_frame: Option<u64>,
    /// Protected packets that could not be tried (no ClientHello or CID length).
    untried: u64,
    opened: bool,
    /// Packets of a space whose secret the key log lacks: Handshake, application (0-RTT, 1-RTT).
    handshake_no_secret: u64,
    app_no_secret: u64,
    /// A 0-RTT or 1-RTT packet opened.
    app_opened: bool,
    /// Client packet bytes (headers and tags included) that authenticated.
    pub decrypted_bytes: u64,
    /// Client bytes not inspected since the caller last took them.
    pub opaque: u64,
}

impl QuicClient {
    /// A connection whose first client datagram is being read.
    pub fn new() -> QuicClient {
        QuicClient {
            initials: Initials::default(),
            attempt: false,
            unkeyed: 0,
            hello: None,
            secrets: None,
            protected: Protected::default(),
            cid_from_client: None,
            cid_from_server: None,
            streams: Streams::default(),
            failures: 0,
            failed_frame: None,
            untried: 0,
            opened: false,
            handshake_no_secret: 0,
            app_no_secret: 0,
            app_opened: false,
            decrypted_bytes: 0,
            opaque: 0,
        }
    }

    /// Bytes held for later (stream data out of order).
    pub fn buffered(&self) -> usize {
        self.streams.buffered()
    }

    /// A server datagram: only the Source Connection ID of its long-header packets is read (the
    /// length of the client's short-header DCID).
    pub fn server_datagram(&mut self, d: &[u8]) {
        if self.cid_from_server.is_some() {
            return;
        }
        if let Some(h) = long_header(d) {
            self.cid_from_server = Some(h.scid.len());
        }
    }

    /// One client→server datagram captured at `origin`. In-order stream bytes go to `deliver`.
    pub fn datagram(
        &mut self,
        d: &[u8],
        keys: &KeyView,
        origin: Origin,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) -> Read {
        let mut read = Read::default();
        // Key logs only grow: once there is one, every later packet is tried.
        self.attempt |= !keys.is_empty();
        let mut pos = 0usize;
        while pos < d.len() {
            let b = &d[pos..];
            if b[0] & 0x80 == 0 {
                // A short header takes the rest of the datagram. Its fixed bit may be greased
                // (RFC 9287: ngtcp2 does), so only all-zero bytes — padding some stacks add after
                // a datagram's packets — are known not to be one.
                if b.iter().any(|&x| x != 0) {
                    self.short(b, keys, origin, &mut read, deliver);
                    pos = d.len();
                }
                break;
            }
            let Some(h) = long_header(b) else { break };
            match h.ty {
                0 if !self.initials.done => {
                    let before = self.initials.opaque;
                    let Some((used, hello)) = self.initials.packet(b) else {
                        break;
                    };
                    self.opaque += self.initials.opaque - before;
                    if let Some(hello) = hello {
                        self.initials.done = true;
                        if self.attempt {
                            self.secrets = keys.get(&hello.random).copied().map(Box::new);
                        }
                        read.hello = Some(hello.clone());
                        self.hello = Some(hello);
                    }
                    pos += used;
                    continue;
                }
                1 | 2 => {
                    if h.ty == 2 {
                        self.cid_from_client = Some(h.dcid.len());
                    }
                    let space = if h.ty == 1 {
                        Space::Early
                    } else {
                        Space::Handshake
                    };
                    self.protected_packet(
                        &b[..h.end],
                        h.pn_off,
                        space,
                        keys,
                        origin,
                        &mut read,
                        deliver,
                    );
                }
                // Initials after the ClientHello (ACKs, retransmissions): nothing new.
                _ => self.opaque += h.end as u64,
            }
            pos += h.end;
        }
        // What could not be parsed (padding after the packets, garbage).
        self.opaque += (d.len() - pos.min(d.len())) as u64;
        read
    }

    fn short(
        &mut self,
        b: &[u8],
        keys: &KeyView,
        origin: Origin,
        read: &mut Read,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) {
        let Some(cid) = self.cid_from_client.or(self.cid_from_server) else {
            self.opaque += b.len() as u64;
            if self.attempt {
                self.untried += 1;
            } else {
                self.unkeyed += 1;
            }
            return;
        };
        self.protected_packet(b, 1 + cid, Space::OneRtt, keys, origin, read, deliver);
    }

    /// One protected packet (`pkt`, its packet number at `pn_off`) of `space`.
    #[allow(clippy::too_many_arguments)]
    fn protected_packet(
        &mut self,
        pkt: &[u8],
        pn_off: usize,
        space: Space,
        keys: &KeyView,
        origin: Origin,
        read: &mut Read,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) {
        let size = pkt.len() as u64;
        if !self.attempt {
            self.opaque += size;
            self.unkeyed += 1;
            return;
        }
        let Some(hello) = &self.hello else {
            self.untried += 1;
            self.opaque += size;
            return;
        };
        if self.secrets.is_none() {
            // Looked up again at each packet: a Decryption Secrets Block may come later.
            self.secrets = keys.get(&hello.random).copied().map(Box::new);
        }
        let Some(secrets) = self.secrets.as_deref() else {
            self.opaque += size;
            return;
        };
        if !self.opened && self.failures >= MAX_FAILURES {
            self.opaque += size;
            return;
        }
        match self.protected.open(pkt, pn_off, space, secrets) {
            Opened::Frames(plain) => {
                self.opened = true;
                self.app_opened |= !matches!(space, Space::Handshake);
                self.decrypted_bytes += size;
                let plain = plain.to_vec();
                let h3 = self.h3();
                self.streams
                    .frames(&plain, origin, &mut read.datagrams, &mut |mut d| {
                        d.h3 = h3;
                        deliver(d)
                    });
            }
            Opened::NoSecret => {
                self.opaque += size;
                if matches!(space, Space::Handshake) {
                    self.handshake_no_secret += 1;
                } else {
                    self.app_no_secret += 1;
                }
            }
            Opened::Failed => {
                self.opaque += size;
                self.failures += 1;
                if !self.opened {
                    self.failed_frame.get_or_insert(origin.frame);
                }
            }
        }
    }

    /// Searches what is held (stream data waiting for missing bytes), as far as it goes.
    pub fn flush(&mut self, deliver: &mut dyn FnMut(Delivery<'_>)) {
        let h3 = self.h3();
        self.streams.flush(&mut |mut d| {
            d.h3 = h3;
            deliver(d)
        });
    }

    /// The ClientHello offered HTTP/3.
    fn h3(&self) -> bool {
        self.hello
            .as_ref()
            .is_some_and(|h| h.alpn.iter().any(|a| a == "h3"))
    }

    /// The flow's TLS summary, once a key log was given and the ClientHello read.
    pub fn summary(&self) -> Option<TlsSummary> {
        if !self.attempt {
            return None;
        }
        let decryption = if self.hello.is_none() {
            Decryption::Incomplete
        } else if self.opened {
            if self.app_no_secret > 0 && !self.app_opened {
                // Only the handshake opened: nothing the client sent was read.
                Decryption::NoKey
            } else if self.failures > 0
                || self.untried > 0
                || self.unkeyed > 0
                || self.handshake_no_secret > 0
                || self.app_no_secret > 0
            {
                Decryption::Partial
            } else {
                Decryption::Decrypted
            }
        } else if let Some(frame) = self.failed_frame {
            Decryption::KeysDoNotMatch { frame }
        } else if self.secrets.is_none() {
            if self.hello.as_ref().is_some_and(|h| h.ech) {
                Decryption::Ech
            } else {
                Decryption::NoKey
            }
        } else {
            Decryption::Incomplete
        };
        Some(TlsSummary {
            version: Some(QUIC_V1),
            cipher: self.protected.suite_id(),
            decryption,
            decrypted_bytes: self.decrypted_bytes,
            app: self
                .hello
                .as_ref()
                .and_then(|h| (self.opened && h.alpn.iter().any(|a| a == "h3")).then_some("h3")),
        })
    }
}

#[cfg(test)]
mod tests;
