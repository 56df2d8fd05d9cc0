//! Captures built to make an analysis hold or do more than they contain: memory and time grow
//! with what a capture *claims*, not with its size (see docs/performance.md, "Adversarial input").
//!
//! Must not touch: the analysis.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use super::frame::{ACK, FIN, L4, PSH, SYN};
use super::{Rng, Wire};

const MSS_V4: usize = 1448;

/// An adversarial capture: DNS queries of 64 questions each, the first a 253-character name and
/// the other 63 two-byte compression pointers to it (6 bytes on the wire, 253 characters once
/// read). Measures how the analysis' memory and time grow with what a capture *claims*, not with
/// its size (see docs/performance.md, "Adversarial input").
pub fn dns_amplification<W: Write>(out: W, packets: u64) -> io::Result<Wire<W>> {
    let mut rng = Rng::new(7);
    let mut w = Wire::new(out)?;
    let mut name = Vec::new();
    for (i, len) in [63u8, 63, 63, 61].into_iter().enumerate() {
        name.push(len);
        name.extend(std::iter::repeat_n(b'a' + i as u8, len as usize));
    }
    name.push(0);
    let phone = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15));
    let resolver = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3));
    for k in 0..packets {
        w.payload.clear();
        w.payload.extend_from_slice(&(k as u16).to_be_bytes());
        w.payload
            .extend_from_slice(&[0x01, 0x00, 0, 64, 0, 0, 0, 0, 0, 0]);
        w.payload.extend_from_slice(&name);
        w.payload.extend_from_slice(&[0, 1, 0, 1]);
        for _ in 1..64 {
            w.payload.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        }
        let port = 40_000 + (k % 1000) as u16;
        w.emit(&mut rng, (phone, port), (resolver, 53), L4::Udp)?;
    }
    w.flush()?;
    Ok(w)
}

/// An adversarial capture: `packets` SYNs, each opening a new connection (distinct port and
/// server), none ever closed: 70 bytes of capture per flow the analysis must track or evict.
pub fn syn_flood<W: Write>(out: W, packets: u64) -> io::Result<Wire<W>> {
    let mut rng = Rng::new(8);
    let mut w = Wire::new(out)?;
    let phone = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15));
    for k in 0..packets {
        w.payload.clear();
        let server = IpAddr::V4(Ipv4Addr::new(142, 250, (k / 60_000) as u8, 1));
        let port = 1024 + (k % 60_000) as u16;
        w.emit(
            &mut rng,
            (phone, port),
            (server, 443),
            L4::Tcp {
                seq: k as u32,
                ack: 0,
                flags: SYN,
            },
        )?;
    }
    w.flush()?;
    Ok(w)
}

/// An adversarial capture: `posts` HTTP POSTs, each a ~8 KB gzip body that inflates to 8 MiB (the
/// analysis' decoded-body cap) of text: CPU per capture byte, not memory.
pub fn gzip_bombs<W: Write>(out: W, posts: u64) -> io::Result<Wire<W>> {
    let mut rng = Rng::new(9);
    let mut w = Wire::new(out)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let line = [b'a'; 1024];
    for _ in 0..8 * 1024 {
        gz.write_all(&line)?;
    }
    let body = gz.finish()?;
    let mut req = format!(
        "POST /batch HTTP/1.1\r\nHost: bomb.example\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let phone = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15));
    let server = (IpAddr::V4(Ipv4Addr::new(142, 250, 0, 1)), 80);
    for k in 0..posts {
        let client = (phone, 20_000 + k as u16);
        w.payload.clear();
        w.emit(
            &mut rng,
            client,
            server,
            L4::Tcp {
                seq: 999,
                ack: 0,
                flags: SYN,
            },
        )?;
        for (i, seg) in req.chunks(MSS_V4).enumerate() {
            w.payload.clear();
            w.payload.extend_from_slice(seg);
            let seq = 1000 + (i * MSS_V4) as u32;
            w.emit(
                &mut rng,
                client,
                server,
                L4::Tcp {
                    seq,
                    ack: 1,
                    flags: PSH | ACK,
                },
            )?;
        }
        w.payload.clear();
        let end = 1000 + req.len() as u32;
        w.emit(
            &mut rng,
            client,
            server,
            L4::Tcp {
                seq: end,
                ack: 1,
                flags: FIN | ACK,
            },
        )?;
    }
    w.flush()?;
    Ok(w)
}
