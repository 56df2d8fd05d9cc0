//! DNS messages (UDP datagrams, or TCP messages after their 2-byte length): the names asked and the
//! addresses answered, which name later flows to those addresses.
//!
//! Owns DNS decoding only (via simple-dns). Must not touch: flows, matching, I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{Packet, PacketFlag};

/// Ports whose UDP/TCP payload is decoded as DNS: DNS, mDNS, LLMNR.
pub const DNS_PORTS: [u16; 3] = [53, 5353, 5355];
/// Questions and answers looked at per message: a real message has a handful.
const MAX_RECORDS: usize = 64;

/// What one DNS message says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsMessage {
    pub is_response: bool,
    /// Question names, dotted, without the trailing dot.
    pub questions: Vec<String>,
    /// Addresses in A/AAAA answers, with the name they answer for: the first question when there is
    /// one (what the client asked for, through any CNAME chain), else the record's owner name.
    pub answers: Vec<(IpAddr, String)>,
}

/// `None` when the payload is not a DNS message.
pub fn parse(payload: &[u8]) -> Option<DnsMessage> {
    let packet = Packet::parse(payload).ok()?;
    let questions: Vec<String> = packet
        .questions
        .iter()
        .take(MAX_RECORDS)
        .map(|q| q.qname.to_string())
        .filter(|n| !n.is_empty())
        .collect();
    let mut answers = Vec::new();
    for rr in packet.answers.iter().take(MAX_RECORDS) {
        let ip = match &rr.rdata {
            RData::A(a) => IpAddr::V4(Ipv4Addr::from(a.address)),
            RData::AAAA(a) => IpAddr::V6(Ipv6Addr::from(a.address)),
            _ => continue,
        };
        let name = questions
            .first()
            .cloned()
            .unwrap_or_else(|| rr.name.to_string());
        if !name.is_empty() {
            answers.push((ip, name));
        }
    }
    Some(DnsMessage {
        is_response: packet.has_flags(PacketFlag::RESPONSE),
        questions,
        answers,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use simple_dns::rdata::A;
    use simple_dns::{CLASS, Name, QCLASS, QTYPE, Question, ResourceRecord, TYPE};

    pub(crate) fn query(id: u16, name: &str) -> Vec<u8> {
        let mut p = Packet::new_query(id);
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.build_bytes_vec().expect("query")
    }

    pub(crate) fn answer(id: u16, name: &str, ip: Ipv4Addr) -> Vec<u8> {
        let mut p = Packet::new_reply(id);
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.answers.push(ResourceRecord::new(
            Name::new_unchecked(name),
            CLASS::IN,
            60,
            RData::A(A { address: ip.into() }),
        ));
        p.build_bytes_vec().expect("answer")
    }

    #[test]
    fn query_and_answer() {
        let q = parse(&query(7, "api.example.com")).expect("query");
        assert!(!q.is_response);
        assert_eq!(q.questions, vec!["api.example.com"]);
        let a = parse(&answer(7, "api.example.com", Ipv4Addr::new(127, 9, 0, 1))).expect("answer");
        assert!(a.is_response);
        assert_eq!(
            a.answers,
            vec![(
                IpAddr::V4(Ipv4Addr::new(127, 9, 0, 1)),
                "api.example.com".to_string()
            )]
        );
    }

    #[test]
    fn garbage_and_truncation_are_not_dns() {
        assert_eq!(parse(b""), None);
        let q = query(1, "a.example");
        for cut in 0..q.len() {
            // Must not panic; short prefixes are simply not DNS.
            let _ = parse(&q[..cut]);
        }
        assert_eq!(parse(&[0xff; 12]), None);
    }
}
