//! The report of an offline capture analysis (`tattle analyze`): flows grouped by host, findings,
//! DNS names and damage, as the versioned JSON document of docs/analysis-json.md and as text. Every
//! name goes through `Matcher::redact` (host and DNS names may carry an identifier in any encoding).
//!
//! Must not touch: files, the terminal, exit codes (the CLI prints what this returns).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use tattle_analysis::identifier::Identifier;
use tattle_analysis::matcher::Matcher;
use tattle_analysis::{Analysis, HostSource};

/// Version of the JSON document; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// The JSON document (docs/analysis-json.md). Every name in it went through `Matcher::redact`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub frames: u64,
    pub summary: Summary,
    pub findings: Vec<FindingOut>,
    pub hosts: Vec<HostOut>,
    pub dns_queries: Vec<DnsOut>,
    pub damage: Vec<DamageOut>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub findings: usize,
    pub flows: usize,
    /// Client→server bytes the analysis could read (sent bytes minus opaque ones, per flow).
    pub readable_bytes: u64,
    /// Bytes that could not be inspected (encrypted, undecodable, over a cap).
    pub opaque_bytes: u64,
    pub damaged: bool,
}

#[derive(Debug, Serialize)]
pub struct FindingOut {
    /// The identifier's kind, never its value.
    pub identifier: String,
    pub encoding: String,
    pub host: String,
    pub host_source: HostSource,
    pub protocol: &'static str,
    pub location: String,
    pub frame: u64,
    pub ts: f64,
}

#[derive(Debug, Serialize)]
pub struct HostOut {
    pub host: String,
    /// How the name was learnt, best first: sni, http, dns, ip.
    pub how: Vec<HostSource>,
    pub protocols: Vec<&'static str>,
    pub flows: usize,
    pub first_frame: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub opaque_bytes: u64,
    pub gap_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct DnsOut {
    pub name: String,
    pub frame: u64,
}

#[derive(Debug, Serialize)]
pub struct DamageOut {
    pub offset: Option<u64>,
    pub after_frame: u64,
    pub what: String,
}

impl Report {
    pub fn build(a: &Analysis, matcher: &Matcher, ids: &[Identifier]) -> Report {
        // Names from the network: every form of every identifier replaced, control characters too.
        let clean = |s: &str| {
            crate::outcome::sanitize(&tattle_analysis::identifier::redact(
                &matcher.redact(s),
                ids,
            ))
        };
        let findings: Vec<FindingOut> = a
            .findings
            .iter()
            .map(|f| FindingOut {
                identifier: f.identifier.clone(),
                encoding: f.encoding.clone(),
                host: clean(&f.host),
                host_source: f.host_source,
                protocol: f.protocol.as_str(),
                location: clean(&f.location),
                frame: f.frame,
                ts: f.ts,
            })
            .collect();
        let mut by_host: BTreeMap<String, HostOut> = BTreeMap::new();
        let mut how: BTreeMap<String, BTreeSet<HostSource>> = BTreeMap::new();
        let mut protos: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
        let (mut readable, mut opaque) = (0u64, 0u64);
        for f in &a.flows {
            let host = clean(&f.host);
            readable += f.bytes_out.saturating_sub(f.opaque_bytes);
            opaque += f.opaque_bytes;
            how.entry(host.clone()).or_default().insert(f.host_source);
            protos
                .entry(host.clone())
                .or_default()
                .insert(f.protocol.as_str());
            let h = by_host.entry(host.clone()).or_insert_with(|| HostOut {
                host,
                how: Vec::new(),
                protocols: Vec::new(),
                flows: 0,
                first_frame: f.first_frame,
                bytes_out: 0,
                bytes_in: 0,
                opaque_bytes: 0,
                gap_bytes: 0,
            });
            h.flows += 1;
            h.first_frame = h.first_frame.min(f.first_frame);
            h.bytes_out += f.bytes_out;
            h.bytes_in += f.bytes_in;
            h.opaque_bytes += f.opaque_bytes;
            h.gap_bytes += f.gap_bytes;
        }
        let mut hosts: Vec<HostOut> = by_host
            .into_iter()
            .map(|(name, mut h)| {
                h.how = how.remove(&name).unwrap_or_default().into_iter().collect();
                h.protocols = protos
                    .remove(&name)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                h
            })
            .collect();
        hosts.sort_by_key(|h| h.first_frame);
        Report {
            format_version: FORMAT_VERSION,
            frames: a.frames,
            summary: Summary {
                findings: findings.len(),
                flows: a.flows.len(),
                readable_bytes: readable,
                opaque_bytes: opaque,
                damaged: !a.damage.is_empty(),
            },
            findings,
            hosts,
            dns_queries: a
                .dns_queries
                .iter()
                .map(|q| DnsOut {
                    name: clean(&q.name),
                    frame: q.frame,
                })
                .collect(),
            damage: a
                .damage
                .iter()
                .map(|d| DamageOut {
                    offset: d.offset,
                    after_frame: d.after_frame,
                    what: clean(&d.what),
                })
                .collect(),
        }
    }

    /// The readable summary. Always says how much could and could not be read, so an empty
    /// report is never mistaken for a clean phone.
    pub fn text(&self, name: &str) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{name}: {} frames, {} flows, {} hosts",
            self.frames,
            self.summary.flows,
            self.hosts.len()
        );
        if !self.findings.is_empty() {
            let _ = writeln!(s, "\nFindings ({}):", self.findings.len());
            for f in &self.findings {
                let _ = writeln!(
                    s,
                    "  <{}> as {} → {} ({}, {}) frame {}",
                    f.identifier, f.encoding, f.host, f.protocol, f.location, f.frame
                );
            }
        }
        if !self.hosts.is_empty() {
            let _ = writeln!(s, "\nHosts (named by sni/http/dns, else ip):");
            for h in &self.hosts {
                let how: Vec<&str> = h.how.iter().map(|x| source_name(*x)).collect();
                let _ = writeln!(
                    s,
                    "  {} [{}] {}: {} flow(s), sent {}, opaque {}{}",
                    h.host,
                    how.join(","),
                    h.protocols.join(","),
                    h.flows,
                    kb(h.bytes_out),
                    kb(h.opaque_bytes),
                    if h.gap_bytes > 0 {
                        format!(", {} missing from capture", kb(h.gap_bytes))
                    } else {
                        String::new()
                    }
                );
            }
        }
        if !self.damage.is_empty() {
            let _ = writeln!(s, "\nCapture damage (analysed up to and around it):");
            for d in &self.damage {
                let at = d.offset.map(|o| format!(" (byte {o})")).unwrap_or_default();
                let _ = writeln!(s, "  after frame {}{at}: {}", d.after_frame, d.what);
            }
        }
        let tail = format!(
            "{} readable; {} opaque",
            kb(self.summary.readable_bytes),
            kb(self.summary.opaque_bytes)
        );
        if self.findings.is_empty() {
            let _ = writeln!(s, "\nno findings in {tail}");
        } else {
            let _ = writeln!(s, "\n{} finding(s) in {tail}", self.findings.len());
        }
        s
    }
}

fn source_name(s: HostSource) -> &'static str {
    match s {
        HostSource::Sni => "sni",
        HostSource::Http => "http",
        HostSource::Dns => "dns",
        HostSource::Ip => "ip",
    }
}

fn kb(bytes: u64) -> String {
    if bytes < 10 << 10 {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    } else {
        format!("{} KB", bytes / 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tattle_analysis::{Finding, Flow, Protocol};

    #[test]
    fn report_redacts_names_and_always_states_coverage() {
        let ids = vec![Identifier::new("imei", "356938035643809")];
        let m = Matcher::new(&ids);
        let flow = Flow {
            transport: "udp",
            client: ("10.0.0.2".parse().unwrap(), 4000),
            server: ("10.0.0.1".parse().unwrap(), 53),
            host: "35693803564380.t.example".into(),
            host_source: HostSource::Ip,
            protocol: Protocol::Dns,
            first_frame: 1,
            first_ts: 0.0,
            last_ts: 0.0,
            bytes_out: 4096,
            bytes_in: 0,
            opaque_bytes: 1024,
            gap_bytes: 0,
            alpn: vec![],
        };
        let a = Analysis {
            frames: 1,
            flows: vec![flow],
            findings: vec![Finding {
                identifier: "imei".into(),
                encoding: "plain".into(),
                host: "35693803564380.t.example".into(),
                host_source: HostSource::Ip,
                protocol: Protocol::Dns,
                location: "dns.qname".into(),
                frame: 1,
                ts: 0.0,
            }],
            ..Default::default()
        };
        let r = Report::build(&a, &m, &ids);
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("3569380356438"), "{json}");
        assert!(json.contains("<imei>.t.example"), "{json}");
        let text = r.text("x.pcap");
        assert!(
            text.contains("1 finding(s) in 3.0 KB readable; 1.0 KB opaque"),
            "{text}"
        );
        let empty = Report::build(&Analysis::default(), &m, &ids).text("y");
        assert!(
            empty.contains("no findings in 0.0 KB readable; 0.0 KB opaque"),
            "{empty}"
        );
    }
}
