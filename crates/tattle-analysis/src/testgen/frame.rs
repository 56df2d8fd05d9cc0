//! Ethernet frames around IPv4/IPv6 and TCP/UDP, with correct lengths and checksums: what the
//! generator and the fuzz targets put on the (virtual) wire.
//!
//! Written from the formats (RFC 791, 8200, 793, 768 and the Ethernet II header), not from the
//! analysis' decoder. Must not touch: pcap framing (see `crate::pcap`), traffic models.

use std::net::IpAddr;

pub type Endpoint = (IpAddr, u16);

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// The transport header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp { seq: u32, ack: u32, flags: u8 },
    Udp,
}

const PHONE_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x15];
const GATEWAY_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x35, 0x02];

/// Whether `ip` is the handset's side in the generated networks (10.0.0.0/8, fd00::/16): it picks
/// the MAC addresses, so frames read like a capture on the phone's link.
fn is_phone(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.octets()[0] == 10,
        IpAddr::V6(a) => a.segments()[0] == 0xfd00,
    }
}

/// Appends one Ethernet frame from `src` to `dst` carrying `payload` to `out`.
///
/// # Panics
/// If `src` and `dst` are of different address families.
pub fn ethernet(out: &mut Vec<u8>, src: Endpoint, dst: Endpoint, l4: L4, payload: &[u8]) {
    let (dmac, smac) = if is_phone(src.0) {
        (GATEWAY_MAC, PHONE_MAC)
    } else {
        (PHONE_MAC, GATEWAY_MAC)
    };
    out.extend_from_slice(&dmac);
    out.extend_from_slice(&smac);
    let ethertype: u16 = if src.0.is_ipv4() { 0x0800 } else { 0x86dd };
    out.extend_from_slice(&ethertype.to_be_bytes());
    ip(out, src, dst, l4, payload);
}

/// Appends one IP packet (no link header) from `src` to `dst` to `out`.
pub fn ip(out: &mut Vec<u8>, src: Endpoint, dst: Endpoint, l4: L4, payload: &[u8]) {
    let l4_len = match l4 {
        L4::Tcp { .. } => 20,
        L4::Udp => 8,
    } + payload.len();
    let proto = match l4 {
        L4::Tcp { .. } => 6u8,
        L4::Udp => 17u8,
    };
    let addr_sum = match (src.0, dst.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let start = out.len();
            out.extend_from_slice(&[0x45, 0]);
            out.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
            // Identification: varied so tshark's IP heuristics see distinct packets.
            out.extend_from_slice(&(payload.len() as u16 ^ src.1).to_be_bytes());
            out.extend_from_slice(&0x4000u16.to_be_bytes());
            out.extend_from_slice(&[64, proto, 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let ck = !fold(sum16(&out[start..start + 20]));
            out[start + 10..start + 12].copy_from_slice(&ck.to_be_bytes());
            sum16(&s.octets()) + sum16(&d.octets())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&(l4_len as u16).to_be_bytes());
            out.extend_from_slice(&[proto, 64]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            sum16(&s.octets()) + sum16(&d.octets())
        }
        _ => panic!("mixed address families in one packet"),
    };
    let pseudo = addr_sum + u32::from(proto) + l4_len as u32;
    let l4_start = out.len();
    out.extend_from_slice(&src.1.to_be_bytes());
    out.extend_from_slice(&dst.1.to_be_bytes());
    match l4 {
        L4::Tcp { seq, ack, flags } => {
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
            out.extend_from_slice(&[5 << 4, flags]);
            out.extend_from_slice(&65535u16.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]);
        }
        L4::Udp => {
            out.extend_from_slice(&(l4_len as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
    }
    out.extend_from_slice(payload);
    let ck = !fold(pseudo + sum16(&out[l4_start..]));
    let (at, ck) = match l4 {
        L4::Tcp { .. } => (l4_start + 16, ck),
        // A UDP checksum of 0 means "none": an all-ones result is sent instead (RFC 768).
        L4::Udp => (l4_start + 6, if ck == 0 { 0xffff } else { ck }),
    };
    out[at..at + 2].copy_from_slice(&ck.to_be_bytes());
}

fn sum16(bytes: &[u8]) -> u32 {
    let mut s = 0u32;
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u32::from(*last) << 8;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Transport, decode};

    #[test]
    fn frames_decode_with_valid_checksums() {
        let c: Endpoint = ("10.0.2.15".parse().unwrap(), 40000);
        let s: Endpoint = ("142.250.1.1".parse().unwrap(), 443);
        let mut f = Vec::new();
        ethernet(
            &mut f,
            c,
            s,
            L4::Tcp {
                seq: 7,
                ack: 9,
                flags: PSH | ACK,
            },
            b"hello",
        );
        let p = decode(1, &f).expect("tcp frame");
        assert!(matches!(
            p.transport,
            Transport::Tcp {
                seq: 7,
                payload: b"hello",
                ..
            }
        ));
        // The IPv4 header sums to all ones with its checksum in.
        assert_eq!(fold(sum16(&f[14..34])), 0xffff);
        let c6: Endpoint = ("fd00::15".parse().unwrap(), 5353);
        let s6: Endpoint = ("2001:db8::1".parse().unwrap(), 53);
        f.clear();
        ethernet(&mut f, c6, s6, L4::Udp, b"q");
        let p = decode(1, &f).expect("udp frame");
        assert!(matches!(
            p.transport,
            Transport::Udp {
                dst_port: 53,
                payload: b"q",
                ..
            }
        ));
    }
}
