//! Community ID v1 of a flow: the string Zeek, Suricata and Wireshark give the same TCP or UDP
//! conversation (`1:LQU9qZlK+B5F3KDmev6m5PMibrg=`), so a tattle flow can be joined with their logs.
//!
//! Owns the hash of the corelight specification (github.com/corelight/community-id-spec, version 1):
//! SHA-1 over seed (2 bytes, big-endian), source address, destination address, IP protocol, one zero
//! byte, source port, destination port — endpoints ordered so the smaller (address, port) comes
//! first — then base64 with `1:` before it. Only TCP and UDP: tattle's flows are nothing else.
//!
//! Written here over `sha1` and `base64` (already dependencies) rather than with a crate: the one
//! published crate for it (`communityid`) has had no release in years, and the whole algorithm is
//! twenty lines checked against the specification's vectors and against tshark's own dissector.
//!
//! Must not touch: flows' meaning, files.

use std::net::IpAddr;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// IANA protocol numbers of the transports tattle's flows use.
const TCP: u8 = 6;
const UDP: u8 = 17;

/// The Community ID (v1, seed 0) of a `tcp` or `udp` conversation; `None` for another transport or
/// two addresses of different families.
pub fn community_id(transport: &str, a: (IpAddr, u16), b: (IpAddr, u16)) -> Option<String> {
    let proto = match transport {
        "tcp" => TCP,
        "udp" => UDP,
        _ => return None,
    };
    let bytes = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    if a.0.is_ipv4() != b.0.is_ipv4() {
        return None;
    }
    let (a_addr, b_addr) = (bytes(a.0), bytes(b.0));
    // The spec orders by address, then port, so both directions hash alike.
    let ((src, sport), (dst, dport)) = if (&a_addr, a.1) <= (&b_addr, b.1) {
        ((a_addr, a.1), (b_addr, b.1))
    } else {
        ((b_addr, b.1), (a_addr, a.1))
    };
    let mut hash = Sha1::new();
    hash.update(0u16.to_be_bytes());
    hash.update(&src);
    hash.update(&dst);
    hash.update([proto, 0]);
    hash.update(sport.to_be_bytes());
    hash.update(dport.to_be_bytes());
    Some(format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(hash.finalize())
    ))
}

/// The Community ID of a flow of `flows.json` (its `ip:port` strings parsed back).
pub fn of_flow(flow: &crate::outcome::FlowItem) -> Option<String> {
    let client: std::net::SocketAddr = flow.client.parse().ok()?;
    let server: std::net::SocketAddr = flow.server.parse().ok()?;
    community_id(
        &flow.transport,
        (client.ip(), client.port()),
        (server.ip(), server.port()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> (IpAddr, u16) {
        let addr: std::net::SocketAddr = s.parse().unwrap();
        (addr.ip(), addr.port())
    }

    /// The specification's baseline vectors (seed 0), in both directions.
    #[test]
    fn spec_vectors() {
        let cases = [
            (
                "tcp",
                "128.232.110.120:34855",
                "66.35.250.204:80",
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                "udp",
                "192.168.1.52:54585",
                "8.8.8.8:53",
                "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            ),
        ];
        for (t, a, b, want) in cases {
            assert_eq!(community_id(t, ep(a), ep(b)).as_deref(), Some(want));
            assert_eq!(community_id(t, ep(b), ep(a)).as_deref(), Some(want));
        }
        assert_eq!(community_id("sctp", ep("1.1.1.1:1"), ep("2.2.2.2:2")), None);
        assert_eq!(community_id("tcp", ep("1.1.1.1:1"), ep("[::1]:2")), None);
        assert!(community_id("tcp", ep("[fe80::1]:1"), ep("[::1]:2")).is_some());
    }
}
