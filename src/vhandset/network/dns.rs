//! The handset's DNS: the resolver on 127.77.N.1:53 (answers A for the profile's hosts, NXDOMAIN for
//! anything else) and the stub the handset uses to ask it.
//!
//! Must not touch: anything but DNS messages over UDP.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use simple_dns::rdata::{A, RData};
use simple_dns::{
    CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, ResourceRecord, TYPE,
};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Answers carry a short TTL: the addresses only live as long as the handset.
const TTL: u32 = 60;
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves queries on `sock` until `shutdown` turns true.
pub(super) async fn serve(
    sock: UdpSocket,
    zone: BTreeMap<String, Ipv4Addr>,
    shutdown: watch::Receiver<bool>,
) {
    // 512 bytes is classic DNS; EDNS clients may send more, and anything longer is not ours to parse.
    super::serve_udp(sock, 4096, shutdown, "resolver", |query| {
        answer(query, &zone)
    })
    .await;
}

/// The reply to one query, or `None` for something that is not a query at all.
pub(super) fn answer(query: &[u8], zone: &BTreeMap<String, Ipv4Addr>) -> Option<Vec<u8>> {
    let packet = Packet::parse(query).ok()?;
    if packet.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let mut reply = Packet::new_reply(packet.id());
    reply.set_flags(PacketFlag::RECURSION_AVAILABLE | PacketFlag::AUTHORITATIVE_ANSWER);
    if packet.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    if packet.questions.len() != 1 {
        *reply.rcode_mut() = RCODE::FormatError;
        return reply.build_bytes_vec().ok();
    }
    let q = &packet.questions[0];
    let asked = q
        .qname
        .to_string()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    reply.questions.push(q.clone());
    match zone.get(&asked) {
        None => *reply.rcode_mut() = RCODE::NameError,
        Some(addr) => {
            if matches!(q.qtype, QTYPE::TYPE(TYPE::A) | QTYPE::ANY) {
                reply.answers.push(ResourceRecord::new(
                    q.qname.clone(),
                    CLASS::IN,
                    TTL,
                    RData::A(A {
                        address: u32::from(*addr),
                    }),
                ));
            }
            // Other types of a known name: NOERROR with no answer (NODATA), as real resolvers say.
        }
    }
    reply.build_bytes_vec().ok()
}

/// Resolves `name` to an IPv4 address by a real query from `sock` (the handset's) to `resolver`.
pub(super) async fn resolve(
    name: &str,
    sock: UdpSocket,
    resolver: SocketAddr,
) -> io::Result<Ipv4Addr> {
    let id = query_id();
    let mut q = Packet::new_query(id);
    q.set_flags(PacketFlag::RECURSION_DESIRED);
    let qname =
        Name::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    q.questions.push(Question::new(
        qname,
        QTYPE::TYPE(TYPE::A),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    let bytes = q
        .build_bytes_vec()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    sock.send_to(&bytes, resolver).await?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
    loop {
        let (len, peer) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no DNS answer"))??;
        if peer != resolver {
            continue;
        }
        let Ok(reply) = Packet::parse(&buf[..len]) else {
            continue;
        };
        if reply.id() != id {
            continue;
        }
        if reply.rcode() == RCODE::NameError {
            return Err(io::Error::new(io::ErrorKind::NotFound, "NXDOMAIN"));
        }
        return reply
            .answers
            .iter()
            .find_map(|rr| match &rr.rdata {
                RData::A(a) => Some(Ipv4Addr::from(a.address)),
                _ => None,
            })
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no A record"));
    }
}

fn query_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ (nanos >> 16)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: TYPE) -> Vec<u8> {
        let mut q = Packet::new_query(7);
        q.questions.push(Question::new(
            Name::new(name).unwrap(),
            QTYPE::TYPE(qtype),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        q.build_bytes_vec().unwrap()
    }

    #[test]
    fn answers_known_names_and_nxdomain_otherwise() {
        let zone = BTreeMap::from([(
            "a.example-vendor.net".to_string(),
            Ipv4Addr::new(127, 77, 3, 10),
        )]);
        let r = answer(&query("A.Example-Vendor.net", TYPE::A), &zone).unwrap();
        let p = Packet::parse(&r).unwrap();
        assert_eq!(p.id(), 7);
        assert_eq!(p.rcode(), RCODE::NoError);
        assert!(
            matches!(&p.answers[0].rdata, RData::A(a) if a.address == u32::from(Ipv4Addr::new(127, 77, 3, 10)))
        );
        let r = answer(&query("a.example-vendor.net", TYPE::AAAA), &zone).unwrap();
        let p = Packet::parse(&r).unwrap();
        assert_eq!((p.rcode(), p.answers.len()), (RCODE::NoError, 0));
        let r = answer(&query("nope.example-vendor.net", TYPE::A), &zone).unwrap();
        assert_eq!(Packet::parse(&r).unwrap().rcode(), RCODE::NameError);
        assert!(answer(b"\x00\x01garbage", &zone).is_none());
        assert!(answer(&[], &zone).is_none());
    }
}
