//! DNS messages (UDP datagrams, or TCP messages after their 2-byte length): the names asked and the
//! addresses answered, which name later flows to those addresses.
//!
//! Owns DNS decoding only (via simple-dns). A message yields distinct names only, totalling at most
//! its own length in bytes: compression pointers cannot make a datagram worth more names than it
//! carries. Must not touch: flows, matching, I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;

use crate::matcher::Matcher;
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

/// Distinct names of one message, their bytes bounded by the message's own length: compression
/// pointers let a 6-byte question read as a 253-character name, so without this bound a datagram
/// would be worth 40× its size in names.
struct Names {
    seen: Vec<String>,
    left: usize,
}

impl Names {
    /// Whether `name` is kept (new, non-empty, and within the byte bound).
    fn admit(&mut self, name: &str) -> bool {
        if name.is_empty() || self.seen.iter().any(|n| n == name) {
            return false;
        }
        if name.len() > self.left {
            // Stop at the first name over the bound: later ones are not looked at either.
            self.left = 0;
            return false;
        }
        self.left -= name.len();
        self.seen.push(name.to_string());
        true
    }
}

/// The dotted text of a name, as simple-dns's `Display` writes it (labels as lossy UTF-8, a `.` or
/// a backslash inside a label escaped with a backslash), without formatting it one character at a time: every
/// question of every DNS message goes through here.
fn name_text(name: &simple_dns::Name<'_>) -> String {
    let mut out = String::new();
    for (i, label) in name.as_bytes().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if label.is_ascii() && !label.iter().any(|&b| b == b'.' || b == b'\\') {
            // ASCII is valid UTF-8: the whole label at once.
            out.push_str(std::str::from_utf8(label).unwrap_or_default());
            continue;
        }
        for c in String::from_utf8_lossy(label).chars() {
            if c == '.' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// `None` when the payload is not a DNS message. Question names are de-duplicated, and the
/// distinct names kept from a message (questions and answers) total at most its length in bytes.
pub fn parse(payload: &[u8]) -> Option<DnsMessage> {
    let packet = Packet::parse(payload).ok()?;
    let mut names = Names {
        seen: Vec::new(),
        left: payload.len(),
    };
    let mut questions: Vec<String> = Vec::new();
    // Indices of the questions kept, to skip repeats before their text is built.
    let mut kept: Vec<usize> = Vec::new();
    for (i, q) in packet.questions.iter().take(MAX_RECORDS).enumerate() {
        let repeat = kept
            .iter()
            .any(|&k| packet.questions[k].qname.as_bytes().eq(q.qname.as_bytes()));
        let labels = q.qname.as_bytes().map(|l| l.len() + 1).sum::<usize>();
        if repeat {
            continue;
        }
        if labels.saturating_sub(1) > names.left {
            names.left = 0;
            continue;
        }
        let name = name_text(&q.qname);
        if names.admit(&name) {
            questions.push(name);
            kept.push(i);
        }
    }
    let mut answers = Vec::new();
    for rr in packet.answers.iter().take(MAX_RECORDS) {
        let ip = match &rr.rdata {
            RData::A(a) => IpAddr::V4(Ipv4Addr::from(a.address)),
            RData::AAAA(a) => IpAddr::V6(Ipv6Addr::from(a.address)),
            _ => continue,
        };
        let name = match questions.first() {
            Some(q) => q.clone(),
            None => {
                let owner = name_text(&rr.name);
                if !names.seen.contains(&owner) && !names.admit(&owner) {
                    continue;
                }
                owner
            }
        };
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

/// The identifiers in a DNS name asked, as (identifier, encoding): the name as written, lower-cased
/// (resolvers and 0x20 randomisation change letter case; hex and base32 labels are usually lower
/// case), and its labels joined without dots (a value too long for one 63-byte label is split
/// across several).
pub fn scan_name(m: &Matcher, name: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut add = |hay: &[u8]| {
        for r in m.scan_layers(hay, true) {
            if !out
                .iter()
                .any(|(i, e)| *i == r.identifier && *e == r.encoding)
            {
                out.push((r.identifier, r.encoding));
            }
        }
    };
    add(name.as_bytes());
    let lower = name.to_ascii_lowercase();
    if lower != name {
        add(lower.as_bytes());
    }
    if lower.contains('.') {
        let joined: String = lower.split('.').collect();
        add(joined.as_bytes());
    }
    out
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
    fn compression_pointers_do_not_amplify_names() {
        // One 253-character name, then 63 questions that are each a 2-byte pointer to it.
        let label = "a".repeat(63);
        let long = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(long.len(), 253);
        let mut msg = vec![0, 1, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0];
        for part in long.split('.') {
            msg.push(part.len() as u8);
            msg.extend_from_slice(part.as_bytes());
        }
        msg.extend_from_slice(&[0, 0, 1, 0, 1]);
        for _ in 0..63 {
            msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        }
        let m = parse(&msg).expect("dns");
        assert_eq!(m.questions, vec![long.clone()]);

        // 64 distinct names by pointer (a label, then a pointer to the long name): bounded by the
        // message's length, not 64 × 255 characters.
        // (240 characters: with the extra label the names stay within DNS's 255.)
        let long = format!("{label}.{label}.{label}.{}", "b".repeat(48));
        let mut msg = vec![0, 1, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0];
        for part in long.split('.') {
            msg.push(part.len() as u8);
            msg.extend_from_slice(part.as_bytes());
        }
        msg.extend_from_slice(&[0, 0, 1, 0, 1]);
        for i in 0..63u8 {
            msg.extend_from_slice(&[1, b'0' + i % 10, 0xc0, 12, 0, 1, 0, 1]);
        }
        let m = parse(&msg).expect("dns");
        let bytes: usize = m.questions.iter().map(String::len).sum();
        assert!(bytes <= msg.len(), "{bytes} > {}", msg.len());
        assert!(m.questions.len() < 10, "{}", m.questions.len());
    }

    #[test]
    fn name_text_is_what_display_writes() {
        use simple_dns::Name;
        let labels: [&[u8]; 6] = [
            b"api",
            b"ex.ample",
            b"back\\slash",
            b"caf\xc3\xa9",
            b"\xff\xfe",
            b"",
        ];
        for a in labels {
            for b in labels {
                let ls = [
                    simple_dns::Label::new_unchecked(a),
                    simple_dns::Label::new_unchecked(b),
                ];
                let n = Name::new_with_labels(&ls);
                assert_eq!(name_text(&n), n.to_string());
            }
        }
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
