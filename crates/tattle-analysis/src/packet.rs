//! Packet decoding: link layer, IPv4/IPv6, TCP/UDP, from one captured record.
//!
//! Owns the link types tattle reads (Ethernet, Linux cooked SLL and SLL2, raw IP, BSD loopback/NULL)
//! and hands the network layer to etherparse. Returns borrowed slices only: nothing is copied here.
//!
//! Must not touch: flows, reassembly, protocols, identifiers.

use std::net::IpAddr;

use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_IPV6: u32 = 229;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// The transport part of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        syn: bool,
        ack: bool,
        fin: bool,
        rst: bool,
        payload: &'a [u8],
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
}

impl<'a> Transport<'a> {
    /// (source port, destination port).
    #[inline]
    pub fn ports(&self) -> (u16, u16) {
        match *self {
            Transport::Tcp {
                src_port, dst_port, ..
            }
            | Transport::Udp {
                src_port, dst_port, ..
            } => (src_port, dst_port),
        }
    }

    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        match *self {
            Transport::Tcp { payload, .. } | Transport::Udp { payload, .. } => payload,
        }
    }

    #[inline]
    pub fn is_tcp(&self) -> bool {
        matches!(self, Transport::Tcp { .. })
    }

    /// The same header with another payload (e.g. none, to keep the header apart from its bytes).
    #[inline]
    pub fn with_payload<'b>(&self, payload: &'b [u8]) -> Transport<'b> {
        match *self {
            Transport::Tcp {
                src_port,
                dst_port,
                seq,
                syn,
                ack,
                fin,
                rst,
                ..
            } => Transport::Tcp {
                src_port,
                dst_port,
                seq,
                syn,
                ack,
                fin,
                rst,
                payload,
            },
            Transport::Udp {
                src_port, dst_port, ..
            } => Transport::Udp {
                src_port,
                dst_port,
                payload,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport<'a>,
}

/// Why a record yielded no TCP/UDP packet. Each is counted, not fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("link type {0} is not supported")]
    UnknownLinkType(u32),
    #[error("not an IP packet ({0})")]
    NotIp(String),
    #[error("IP fragment (not reassembled)")]
    Fragment,
    #[error("IP packet carries neither TCP nor UDP")]
    OtherTransport,
    #[error("malformed packet: {0}")]
    Malformed(String),
}

pub fn decode(linktype: u32, data: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let sliced = match linktype {
        LINKTYPE_ETHERNET => SlicedPacket::from_ethernet(data),
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 | 12 | 14 => SlicedPacket::from_ip(data),
        LINKTYPE_LINUX_SLL => {
            let proto = be16(data, 14).ok_or_else(|| short("SLL"))?;
            from_ether_type(proto, &data[16..])
        }
        LINKTYPE_LINUX_SLL2 => {
            let proto = be16(data, 0).ok_or_else(|| short("SLL2"))?;
            if data.len() < 20 {
                return Err(short("SLL2"));
            }
            from_ether_type(proto, &data[20..])
        }
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            if data.len() < 4 {
                return Err(short("loopback"));
            }
            let b = [data[0], data[1], data[2], data[3]];
            // NULL is in the capturing host's byte order: a real family is small either way.
            let family = if linktype == LINKTYPE_LOOP {
                u32::from_be_bytes(b)
            } else if u32::from_le_bytes(b) < 0x100 {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            };
            match family {
                2 | 10 | 24 | 28 | 30 => SlicedPacket::from_ip(&data[4..]),
                other => return Err(DecodeError::NotIp(format!("address family {other}"))),
            }
        }
        other => return Err(DecodeError::UnknownLinkType(other)),
    }
    .map_err(|e| DecodeError::Malformed(e.to_string()))?;

    let (src, dst, fragmenting) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
            v4.payload().fragmented,
        ),
        Some(NetSlice::Ipv6(v6)) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
            v6.payload().fragmented,
        ),
        Some(_) => return Err(DecodeError::NotIp("ARP".into())),
        None => {
            let what = match &sliced.link {
                Some(etherparse::LinkSlice::Ethernet2(e)) => {
                    format!("ethertype {:#06x}", e.ether_type().0)
                }
                _ => "no network layer".into(),
            };
            return Err(DecodeError::NotIp(what));
        }
    };
    if fragmenting {
        return Err(DecodeError::Fragment);
    }
    let transport = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => Transport::Tcp {
            src_port: t.source_port(),
            dst_port: t.destination_port(),
            seq: t.sequence_number(),
            syn: t.syn(),
            ack: t.ack(),
            fin: t.fin(),
            rst: t.rst(),
            payload: t.payload(),
        },
        Some(TransportSlice::Udp(u)) => Transport::Udp {
            src_port: u.source_port(),
            dst_port: u.destination_port(),
            payload: u.payload(),
        },
        _ => return Err(DecodeError::OtherTransport),
    };
    Ok(Packet {
        src,
        dst,
        transport,
    })
}

fn from_ether_type(
    proto: u16,
    data: &[u8],
) -> Result<SlicedPacket<'_>, etherparse::err::packet::SliceError> {
    SlicedPacket::from_ether_type(EtherType(proto), data)
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

fn short(what: &str) -> DecodeError {
    DecodeError::Malformed(format!("{what} header truncated"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// A 20-byte IPv4 header (DF set, TTL 64, checksum zero) for `total` bytes of `protocol`.
    fn ipv4_header(total: usize, protocol: u8, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            protocol,
            0,
            0,
        ];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p
    }

    /// An IPv4 + TCP packet (checksums left zero: nothing here verifies them, nor does Wireshark
    /// by default).
    pub(crate) fn ipv4_tcp(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut p = ipv4_header(20 + 20 + payload.len(), 6, src, dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(payload);
        p
    }

    pub(crate) fn ipv4_udp(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut p = ipv4_header(20 + 8 + payload.len(), 17, src, dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    pub(crate) fn ethernet(ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn every_link_type_reaches_tcp() {
        let ip = ipv4_tcp([127, 0, 0, 1], [127, 0, 0, 2], 40000, 80, 7, 0x18, b"GET");
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&0x0800u16.to_be_bytes());
        sll.extend_from_slice(&ip);
        let mut sll2 = 0x0800u16.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        let mut null_le = 2u32.to_le_bytes().to_vec();
        null_le.extend_from_slice(&ip);
        let mut null_be = 2u32.to_be_bytes().to_vec();
        null_be.extend_from_slice(&ip);
        for (lt, frame) in [
            (LINKTYPE_ETHERNET, ethernet(&ip)),
            (LINKTYPE_LINUX_SLL, sll),
            (LINKTYPE_LINUX_SLL2, sll2),
            (LINKTYPE_RAW, ip.clone()),
            (LINKTYPE_NULL, null_le),
            (LINKTYPE_NULL, null_be.clone()),
            (LINKTYPE_LOOP, null_be),
        ] {
            let p = decode(lt, &frame).unwrap_or_else(|e| panic!("link type {lt}: {e}"));
            assert_eq!(p.src, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
            match p.transport {
                Transport::Tcp {
                    dst_port,
                    seq,
                    payload,
                    syn,
                    ..
                } => {
                    assert_eq!((dst_port, seq, payload, syn), (80, 7, &b"GET"[..], false));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn ipv6_udp() {
        let payload = b"hello";
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[17, 64]);
        p.extend_from_slice(&[0; 15]);
        p.push(1);
        p.extend_from_slice(&[0; 15]);
        p.push(1);
        p.extend_from_slice(&5353u16.to_be_bytes());
        p.extend_from_slice(&53u16.to_be_bytes());
        p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        let pkt = decode(LINKTYPE_RAW, &p).expect("ipv6");
        assert!(pkt.src.is_ipv6());
        assert_eq!(
            pkt.transport,
            Transport::Udp {
                src_port: 5353,
                dst_port: 53,
                payload
            }
        );
    }

    #[test]
    fn errors_are_classified_and_never_panic() {
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&0x0806u16.to_be_bytes());
        arp.extend_from_slice(&[0u8; 28]);
        assert!(matches!(
            decode(LINKTYPE_ETHERNET, &arp),
            Err(DecodeError::NotIp(_)) | Err(DecodeError::Malformed(_))
        ));
        assert_eq!(decode(147, b"x"), Err(DecodeError::UnknownLinkType(147)));
        let ip = ipv4_udp([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, b"abc");
        for cut in 0..ip.len() {
            for lt in [
                LINKTYPE_RAW,
                LINKTYPE_LINUX_SLL,
                LINKTYPE_LINUX_SLL2,
                LINKTYPE_NULL,
                LINKTYPE_ETHERNET,
            ] {
                let _ = decode(lt, &ip[..cut]);
            }
        }
    }
}
