//! The report of an offline capture analysis (`tattle analyze`): findings grouped by (identifier,
//! encoding, host, location), hosts, DNS names, how flows ended, damage and limits — as the
//! versioned JSON document of docs/analysis-json.md and as text. Built from the analysis'
//! bounded `Summary`, so its size follows the hosts and names of a capture, not its length. Every
//! name goes through the `Redactor` (a host or DNS name may carry an identifier in any encoding).
//!
//! Must not touch: files, the terminal, exit codes (the CLI prints what this returns).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use tattle_analysis::{FlowEnd, HostSource, Redactor, Summary, registrable_domain};

/// Version of the JSON document; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 3;

/// What the analysis ended with, as the report needs it.
pub struct Analysed {
    pub summary: Summary,
    pub frames: u64,
    pub damage: Vec<tattle_analysis::Damage>,
    pub limits: Vec<tattle_analysis::Limit>,
    pub skipped: Vec<tattle_analysis::Limit>,
    /// Threads the flows were followed on.
    pub threads: usize,
    /// The key logs given (`--keylog`) and the capture's own secrets.
    pub keylog: KeylogOut,
}

/// Key log statistics: what each `--keylog` file and the capture's Decryption Secrets Blocks
/// held. Never a secret, only counts.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct KeylogOut {
    pub files: Vec<KeylogFileOut>,
    /// Decryption Secrets Blocks read from the pcapng.
    pub capture_blocks: u64,
    /// Their secrets (one per line taken) and malformed lines.
    pub capture_secrets: u64,
    pub capture_malformed: u64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct KeylogFileOut {
    pub file: String,
    /// Lines that were not blank or comments.
    pub lines: u64,
    pub secrets: u64,
    /// Well-formed lines with labels decryption does not use (`EXPORTER_SECRET`…).
    pub other_labels: u64,
    /// Lines skipped as malformed, and the first one's number.
    pub malformed: u64,
    pub first_malformed_line: Option<u64>,
}

impl KeylogOut {
    fn given(&self) -> bool {
        !self.files.is_empty() || self.capture_blocks > 0
    }

    fn secrets(&self) -> u64 {
        self.files.iter().map(|f| f.secrets).sum::<u64>() + self.capture_secrets
    }

    fn malformed(&self) -> u64 {
        self.files.iter().map(|f| f.malformed).sum::<u64>() + self.capture_malformed
    }
}

/// How a finding inside TLS was seen.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TlsOut {
    /// `TLS 1.3`, `TLS 1.2`.
    pub version: String,
    /// IANA name (`TLS_AES_128_GCM_SHA256`), or `0x….` for one without a name here.
    pub cipher: String,
}

/// The JSON document (docs/analysis-json.md). Every name in it went through the `Redactor`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub format_version: u32,
    pub frames: u64,
    pub summary: Totals,
    pub findings: Vec<FindingOut>,
    pub hosts: Vec<HostOut>,
    pub dns_names: Vec<DnsOut>,
    /// Flows by how they ended (`fin`, `half_fin`, `reset`, `idle`, `reused`, `evicted`,
    /// `capture_end`).
    #[schemars(with = "BTreeMap<String, u64>")]
    pub flow_ends: BTreeMap<FlowEnd, u64>,
    pub damage: Vec<DamageOut>,
    pub limits: Vec<NoteOut>,
    pub skipped: Vec<NoteOut>,
    /// Counted but not listed (over the report's bounds).
    pub unlisted: Unlisted,
    /// Key logs used for TLS decryption.
    pub keylog: KeylogOut,
    /// The first frames whose protected record did not open with the logged keys, for the text
    /// (each flow's is in `flows.json` of a run).
    #[serde(skip)]
    #[schemars(skip)]
    pub mismatch_frames: Vec<u64>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Totals {
    /// Finding groups listed.
    pub findings: usize,
    /// (flow, group) pairs: each group counts once per flow it was found in.
    pub finding_flows: u64,
    pub flows: u64,
    /// Flows that continue an earlier one after a silence (same addresses, client and host).
    pub resumed_flows: u64,
    /// Client→server bytes the analysis could read (sent bytes minus opaque ones, per flow).
    pub readable_bytes: u64,
    /// Bytes that could not be inspected (encrypted, undecodable, over a cap).
    pub opaque_bytes: u64,
    pub dns_queries: u64,
    /// Client TLS record bytes decrypted and read (included in `readable_bytes`).
    pub decrypted_bytes: u64,
    /// TLS flows by what became of their records: `decrypted`, `partial`, `no_key`, `ech`,
    /// `keys_do_not_match`, `unsupported_cipher`, `unsupported_version`, `incomplete`,
    /// `not_attempted`.
    #[schemars(with = "BTreeMap<String, u64>")]
    pub tls_flows: BTreeMap<&'static str, u64>,
    /// The capture itself is damaged (`damage` is not empty).
    pub damaged: bool,
    pub threads: usize,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FindingOut {
    /// The identifier's kind, never its value.
    pub identifier: String,
    pub encoding: String,
    pub host: String,
    /// The registrable part of `host` (eTLD+1), when it is a name.
    pub domain: Option<String>,
    /// How the host was learnt: `sni`, `http`, `dns`, `ip`.
    #[schemars(with = "String")]
    pub host_source: HostSource,
    pub protocol: &'static str,
    pub location: String,
    /// Flows it was found in.
    pub flows: u64,
    pub first_frame: u64,
    pub first_ts: f64,
    /// The first frames (at most 16), for Wireshark.
    pub frames: Vec<u64>,
    /// Seen in decrypted TLS (version, cipher); `null`: seen as sent.
    pub tls: Option<TlsOut>,
    /// Every version and suite the group's flows were decrypted with, for the text (the JSON
    /// keeps the first flow's in `tls`).
    #[serde(skip)]
    #[schemars(skip)]
    pub suites: Vec<tattle_analysis::TlsUse>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HostOut {
    pub host: String,
    pub domain: Option<String>,
    /// How the name was learnt, best first: sni, http, dns, ip.
    #[schemars(with = "Vec<String>")]
    pub how: Vec<HostSource>,
    pub protocols: Vec<&'static str>,
    pub flows: u64,
    pub first_frame: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub opaque_bytes: u64,
    pub gap_bytes: u64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DnsOut {
    pub name: String,
    pub count: u64,
    pub first_frame: u64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DamageOut {
    pub offset: Option<u64>,
    pub after_frame: u64,
    pub what: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct NoteOut {
    pub after_frame: u64,
    pub what: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Unlisted {
    pub hosts: u64,
    pub finding_groups: u64,
    pub dns_names: u64,
}

impl Report {
    pub fn build(a: &Analysed, redactor: &Redactor) -> Report {
        let clean = |s: &str| redactor.clean(s);
        let domain = |host: &str| registrable_domain(host).map(|d| clean(&d));
        // Grouped again after redaction: names that differ only in an identifier's encoding
        // read the same once redacted.
        let mut findings: BTreeMap<(String, String, String, String, &'static str), FindingOut> =
            BTreeMap::new();
        for g in a.summary.findings() {
            let host = clean(&g.host);
            let key = (
                g.identifier.clone(),
                g.encoding.clone(),
                host.clone(),
                clean(&g.location),
                g.protocol.as_str(),
            );
            let out = findings.entry(key).or_insert_with(|| FindingOut {
                identifier: g.identifier.clone(),
                encoding: g.encoding.clone(),
                domain: domain(&g.host),
                host,
                host_source: g.host_source,
                protocol: g.protocol.as_str(),
                location: clean(&g.location),
                flows: 0,
                first_frame: g.first_frame,
                first_ts: g.first_ts,
                frames: Vec::new(),
                tls: tls_out(g.tls),
                suites: Vec::new(),
            });
            out.flows += g.flows;
            let earlier = g.first_frame < out.first_frame;
            tattle_analysis::merge_suites(&mut out.suites, &g.suites, earlier);
            if earlier {
                out.first_frame = g.first_frame;
                out.first_ts = g.first_ts;
                out.tls = tls_out(g.tls);
            }
            out.frames.extend(&g.frames);
            out.frames.sort_unstable();
            out.frames.dedup();
            out.frames.truncate(tattle_analysis::FRAMES_PER_GROUP);
        }
        let mut findings: Vec<FindingOut> = findings.into_values().collect();
        findings.sort_by(|a, b| {
            (a.first_frame, &a.identifier, &a.encoding, &a.location).cmp(&(
                b.first_frame,
                &b.identifier,
                &b.encoding,
                &b.location,
            ))
        });
        let mut hosts: BTreeMap<String, (HostOut, BTreeSet<HostSource>, BTreeSet<&'static str>)> =
            BTreeMap::new();
        for (name, h) in a.summary.hosts() {
            let host = clean(name);
            let (out, how, protocols) = hosts.entry(host.clone()).or_insert_with(|| {
                (
                    HostOut {
                        domain: domain(name),
                        host,
                        how: Vec::new(),
                        protocols: Vec::new(),
                        flows: 0,
                        first_frame: h.first_frame,
                        bytes_out: 0,
                        bytes_in: 0,
                        opaque_bytes: 0,
                        gap_bytes: 0,
                    },
                    BTreeSet::new(),
                    BTreeSet::new(),
                )
            });
            how.extend(h.how.iter().copied());
            protocols.extend(h.protocols.iter().map(|p| p.as_str()));
            out.flows += h.flows;
            out.first_frame = out.first_frame.min(h.first_frame);
            out.bytes_out += h.bytes_out;
            out.bytes_in += h.bytes_in;
            out.opaque_bytes += h.opaque_bytes;
            out.gap_bytes += h.gap_bytes;
        }
        let mut hosts: Vec<HostOut> = hosts
            .into_values()
            .map(|(mut out, how, protocols)| {
                out.how = how.into_iter().collect();
                out.protocols = protocols.into_iter().collect();
                out
            })
            .collect();
        hosts.sort_by_key(|h| h.first_frame);
        let mut names: BTreeMap<String, DnsOut> = BTreeMap::new();
        for (name, n) in a.summary.dns_names() {
            let name = clean(name);
            let out = names.entry(name.clone()).or_insert(DnsOut {
                name,
                count: 0,
                first_frame: n.first_frame,
            });
            out.count += n.count;
            out.first_frame = out.first_frame.min(n.first_frame);
        }
        let mut dns_names: Vec<DnsOut> = names.into_values().collect();
        dns_names.sort_by_key(|n| n.first_frame);
        let notes = |v: &[tattle_analysis::Limit]| {
            v.iter()
                .map(|l| NoteOut {
                    after_frame: l.after_frame,
                    what: clean(&l.what),
                })
                .collect()
        };
        Report {
            format_version: FORMAT_VERSION,
            frames: a.frames,
            summary: Totals {
                findings: findings.len(),
                finding_flows: a.summary.finding_count(),
                flows: a.summary.flows,
                resumed_flows: a.summary.resumed_flows,
                readable_bytes: a.summary.readable_bytes,
                opaque_bytes: a.summary.opaque_bytes,
                dns_queries: a.summary.dns_queries,
                decrypted_bytes: a.summary.decrypted_bytes,
                tls_flows: a.summary.tls_flows.clone(),
                damaged: !a.damage.is_empty(),
                threads: a.threads,
            },
            findings,
            hosts,
            dns_names,
            flow_ends: a.summary.endings.clone(),
            damage: a
                .damage
                .iter()
                .map(|d| DamageOut {
                    offset: d.offset,
                    after_frame: d.after_frame,
                    what: clean(&d.what),
                })
                .collect(),
            limits: notes(&a.limits),
            skipped: notes(&a.skipped),
            unlisted: Unlisted {
                hosts: a.summary.unlisted.hosts,
                finding_groups: a.summary.unlisted.finding_groups,
                dns_names: a.summary.unlisted.dns_names,
            },
            keylog: a.keylog.clone(),
            mismatch_frames: a.summary.mismatch_frames.clone(),
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
                let flows = if f.flows > 1 {
                    format!(" (in {} flows)", f.flows)
                } else {
                    String::new()
                };
                // Flows of one group may have negotiated different suites: all are shown.
                let suites: Vec<String> = if f.suites.len() > 1 {
                    f.suites
                        .iter()
                        .filter_map(|t| tls_out(Some(*t)))
                        .map(|t| format!("{} {}", t.version, t.cipher))
                        .collect()
                } else {
                    f.tls
                        .iter()
                        .map(|t| format!("{} {}", t.version, t.cipher))
                        .collect()
                };
                let seen = if suites.is_empty() {
                    String::new()
                } else {
                    format!(" in decrypted {}", suites.join(", "))
                };
                let _ = writeln!(
                    s,
                    "  <{}> as {} → {} ({}, {}) frame {}{flows}{seen}",
                    f.identifier, f.encoding, f.host, f.protocol, f.location, f.first_frame
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
        for (title, notes) in [
            (
                "Limits (the analysis stopped short; the capture is fine)",
                &self.limits,
            ),
            ("Not analysed", &self.skipped),
        ] {
            if !notes.is_empty() {
                let _ = writeln!(s, "\n{title}:");
                for n in notes {
                    let _ = writeln!(s, "  after frame {}: {}", n.after_frame, n.what);
                }
            }
        }
        if let Some(line) = self.tls_line() {
            let _ = writeln!(s, "\n{line}");
        }
        let tail = format!(
            "{} readable; {} opaque",
            kb(self.summary.readable_bytes),
            kb(self.summary.opaque_bytes)
        );
        if self.findings.is_empty() {
            let _ = writeln!(s, "\nno findings in {tail}");
        } else {
            let _ = writeln!(s, "\n{} finding(s) in {tail}", self.summary.finding_flows);
        }
        s
    }
}

impl Report {
    /// The key log and TLS line: what the key logs held and what became of the TLS flows, so
    /// an opaque flow is never read as a clean one.
    fn tls_line(&self) -> Option<String> {
        let flows = &self.summary.tls_flows;
        let n = |k: &str| flows.get(k).copied().unwrap_or(0);
        let total: u64 = flows.values().sum();
        let k = &self.keylog;
        if !k.given() {
            return (total > 0).then(|| {
                format!(
                    "TLS flows: {total} opaque (no key log: --keylog FILE decrypts those it has keys for)"
                )
            });
        }
        let mut line = format!("key log: {} secrets", k.secrets());
        if k.malformed() > 0 {
            let first = k
                .files
                .iter()
                .find_map(|f| f.first_malformed_line.map(|l| format!("{}:{l}", f.file)))
                .unwrap_or_else(|| "the capture's secrets block".into());
            line += &format!(
                " ({} malformed line(s) skipped, first: {first})",
                k.malformed()
            );
        }
        if k.capture_blocks > 0 {
            line += &format!(" ({} from the capture)", k.capture_secrets);
        }
        line += &format!(
            "; TLS flows: {} decrypted, {} partial, {} no key, {} keys do not match, {} unsupported",
            n("decrypted"),
            n("partial"),
            n("no_key") + n("ech"),
            n("keys_do_not_match"),
            n("unsupported_cipher") + n("unsupported_version"),
        );
        if !self.mismatch_frames.is_empty() {
            let frames: Vec<String> = self.mismatch_frames.iter().map(u64::to_string).collect();
            line += &format!(" (keys do not match at frame {})", frames.join(", "));
        }
        if n("incomplete") > 0 {
            line += &format!(", {} incomplete", n("incomplete"));
        }
        Some(line)
    }
}

fn tls_out(tls: Option<tattle_analysis::TlsUse>) -> Option<TlsOut> {
    tls.map(|t| TlsOut {
        version: tattle_analysis::tls_version_name(t.version),
        cipher: tattle_analysis::cipher_suite_name(t.cipher)
            .map_or_else(|| format!("0x{:04x}", t.cipher), str::to_string),
    })
}

fn source_name(s: HostSource) -> &'static str {
    match s {
        HostSource::Sni => "sni",
        HostSource::Http => "http",
        HostSource::Dns => "dns",
        HostSource::Ip => "ip",
        HostSource::Qname => "qname",
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
    use tattle_analysis::identifier::Identifier;
    use tattle_analysis::{Finding, Flow, FlowEnd, Protocol, Sink};

    #[test]
    fn report_redacts_names_and_always_states_coverage() {
        let ids = vec![Identifier::new("imei", "356938035643809")];
        let redactor = Redactor::new(&ids);
        let flow = Flow {
            transport: "udp",
            client: ("10.0.0.2".parse().unwrap(), 4000),
            server: ("10.0.0.1".parse().unwrap(), 53),
            host: "10.0.0.1".into(),
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
            end: FlowEnd::Idle,
            resumed: false,
            tls: None,
        };
        let finding = Finding {
            identifier: "imei".into(),
            encoding: "plain".into(),
            host: "35693803564380.t.example".into(),
            host_source: HostSource::Qname,
            protocol: Protocol::Dns,
            location: "dns.qname".into(),
            flow: 1,
            frame: 1,
            ts: 0.0,
            tls: None,
        };
        let mut summary = Summary::default();
        summary.flow(flow, vec![finding]);
        let analysed = Analysed {
            summary,
            frames: 1,
            damage: vec![],
            limits: vec![],
            skipped: vec![],
            threads: 1,
            keylog: KeylogOut::default(),
        };
        let r = Report::build(&analysed, &redactor);
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("3569380356438"), "{json}");
        assert!(json.contains("\"host\":\"<imei>.t.example\""), "{json}");
        assert!(json.contains("\"domain\":\"t.example\""), "{json}");
        let text = r.text("x.pcap");
        assert!(
            text.contains("1 finding(s) in 3.0 KB readable; 1.0 KB opaque"),
            "{text}"
        );
        let empty = Analysed {
            summary: Summary::default(),
            frames: 0,
            damage: vec![],
            limits: vec![],
            skipped: vec![],
            threads: 1,
            keylog: KeylogOut::default(),
        };
        let empty = Report::build(&empty, &redactor).text("y");
        assert!(
            empty.contains("no findings in 0.0 KB readable; 0.0 KB opaque"),
            "{empty}"
        );
    }

    /// A group spanning flows of different suites shows each; a flow whose keys did not match
    /// is named by its frame.
    #[test]
    fn text_shows_every_suite_of_a_group_and_the_frames_keys_did_not_match() {
        use tattle_analysis::{Decryption, TlsSummary, TlsUse};
        let ids = vec![Identifier::new("imei", "356938035643809")];
        let redactor = Redactor::new(&ids);
        let tls_flow = |first: u64, cipher: u16, version: u16, decryption| Flow {
            transport: "tcp",
            client: ("10.0.0.2".parse().unwrap(), 40_000 + first as u16),
            server: ("10.0.0.1".parse().unwrap(), 443),
            host: "api.example".into(),
            host_source: HostSource::Sni,
            protocol: Protocol::Tls,
            first_frame: first,
            first_ts: 0.0,
            last_ts: 0.0,
            bytes_out: 1000,
            bytes_in: 0,
            opaque_bytes: 100,
            gap_bytes: 0,
            alpn: vec![],
            end: FlowEnd::Fin,
            resumed: false,
            tls: Some(TlsSummary {
                version: Some(version),
                cipher: Some(cipher),
                decryption,
                decrypted_bytes: 900,
                app: Some("http/1.1"),
            }),
        };
        let finding = |flow: u64, cipher: u16, version: u16| Finding {
            identifier: "imei".into(),
            encoding: "plain".into(),
            host: "api.example".into(),
            host_source: HostSource::Sni,
            protocol: Protocol::Tls,
            location: "http.url".into(),
            flow,
            frame: flow + 3,
            ts: 0.0,
            tls: Some(TlsUse { version, cipher }),
        };
        let mut summary = Summary::default();
        for (first, cipher, version) in [(1, 0x1301, 0x0304), (10, 0xc02f, 0x0303)] {
            summary.flow(
                tls_flow(first, cipher, version, Decryption::Decrypted),
                vec![finding(first, cipher, version)],
            );
        }
        let bad = Decryption::KeysDoNotMatch { frame: 27 };
        summary.flow(tls_flow(20, 0x1302, 0x0304, bad), vec![]);
        let analysed = Analysed {
            summary,
            frames: 30,
            damage: vec![],
            limits: vec![],
            skipped: vec![],
            threads: 1,
            keylog: KeylogOut {
                files: vec![],
                capture_blocks: 1,
                capture_secrets: 6,
                ..KeylogOut::default()
            },
        };
        let r = Report::build(&analysed, &redactor);
        let text = r.text("x.pcap");
        assert!(
            text.contains(
                "in 2 flows) in decrypted TLS 1.3 TLS_AES_128_GCM_SHA256, TLS 1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            ),
            "{text}"
        );
        assert!(
            text.contains("1 keys do not match, 0 unsupported (keys do not match at frame 27)"),
            "{text}"
        );
        // The JSON keeps its shape: the first flow's suite.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["findings"][0]["tls"]["cipher"],
            "TLS_AES_128_GCM_SHA256"
        );
        assert!(json["findings"][0].get("suites").is_none());
    }
}
