//! A sink of bounded size: totals per host, per kind of finding and per DNS name, whatever the
//! length of the capture (`tattle analyze` on a day of a router's traffic).
//!
//! Owns the aggregation only; names are kept raw (the caller redacts them for display, see
//! `Redactor`). Must not touch: how flows are followed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::flows::table::FxBuild;

use crate::{DnsQuery, Finding, Flow, FlowEnd, HostSource, Protocol, Sink, Timestamp};

/// Hosts listed; flows to further hosts are counted in the totals only.
pub const MAX_HOSTS: usize = 50_000;
/// Distinct (identifier, encoding, host, location, protocol) groups listed.
pub const MAX_FINDING_GROUPS: usize = 50_000;
/// Distinct DNS names listed.
pub const MAX_DNS_NAMES_LISTED: usize = 100_000;
/// Frames kept per finding group (the first ones), for a person to look up.
pub const FRAMES_PER_GROUP: usize = 16;

/// What flows to one host add up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSummary {
    /// How the name was learnt, over its flows.
    pub how: BTreeSet<HostSource>,
    /// What its flows spoke.
    pub protocols: BTreeSet<Protocol>,
    /// Flows to it.
    pub flows: u64,
    /// The first frame of its first flow.
    pub first_frame: u64,
    /// Payload bytes sent to it.
    pub bytes_out: u64,
    /// Payload bytes received from it.
    pub bytes_in: u64,
    /// Bytes that could not be inspected.
    pub opaque_bytes: u64,
    /// TCP bytes missing from the capture.
    pub gap_bytes: u64,
}

/// One identifier, sent one way, to one host, in one place: in how many flows, and where first.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingGroup {
    /// The identifier's kind.
    pub identifier: String,
    /// The encoding chain (see [`crate::Finding::encoding`]).
    pub encoding: String,
    /// The host (raw: redact before showing).
    pub host: String,
    /// How the host was learnt.
    pub host_source: HostSource,
    /// The flows' protocol.
    pub protocol: Protocol,
    /// Where in the message.
    pub location: String,
    /// Flows it was found in (once per flow).
    pub flows: u64,
    /// The earliest frame that completed a match.
    pub first_frame: u64,
    /// Its capture time.
    pub first_ts: Timestamp,
    /// The first `FRAMES_PER_GROUP` frames, ascending.
    pub frames: Vec<u64>,
    /// Seen in decrypted TLS: the version and suite (of the group's first flow).
    pub tls: Option<crate::TlsUse>,
    /// Every version and suite its flows were decrypted with (at most `MAX_GROUP_SUITES`, in
    /// order of first frame): a group spanning several shows them all.
    pub suites: Vec<crate::TlsUse>,
}

/// Versions and suites listed per finding group.
pub const MAX_GROUP_SUITES: usize = 4;
/// `keys_do_not_match` frames listed (the first ones).
pub const MAX_MISMATCH_FRAMES: usize = 8;

/// Adds the suites of `more` to `to`, distinct, bounded; `to`'s first stays first unless `more`
/// came earlier.
pub fn merge_suites(to: &mut Vec<crate::TlsUse>, more: &[crate::TlsUse], more_first: bool) {
    let mut all: Vec<crate::TlsUse> = if more_first {
        more.iter().chain(to.iter()).copied().collect()
    } else {
        to.iter().chain(more.iter()).copied().collect()
    };
    let mut seen = Vec::with_capacity(all.len());
    all.retain(|t| {
        let new = !seen.contains(t);
        seen.push(*t);
        new
    });
    all.truncate(MAX_GROUP_SUITES);
    *to = all;
}

/// A DNS name asked: how often, and first where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameSummary {
    /// Times asked.
    pub count: u64,
    /// The first question's frame.
    pub first_frame: u64,
}

type GroupKey = (String, String, String, String, Protocol);

/// Totals of a capture, bounded in memory (see the `MAX_*` bounds; what they leave out is counted
/// in `unlisted`).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Flows ended (every flow ends, at the latest with the capture).
    pub flows: u64,
    /// Flows that continue an earlier one after a silence.
    pub resumed_flows: u64,
    /// Flows by how they ended.
    pub endings: BTreeMap<FlowEnd, u64>,
    /// Client bytes the analysis could read (sent bytes minus opaque ones, per flow).
    pub readable_bytes: u64,
    /// Bytes that could not be inspected, both directions (encrypted, undecodable, over a cap).
    pub opaque_bytes: u64,
    /// Looked up once per flow and per DNS question: hashed, not ordered.
    hosts: HashMap<String, HostSummary, FxBuild>,
    groups: HashMap<GroupKey, FindingGroup, FxBuild>,
    dns_names: HashMap<String, NameSummary, FxBuild>,
    /// DNS questions asked, listed or not.
    pub dns_queries: u64,
    /// Hosts, finding groups and DNS names past their bound: counted, not listed.
    pub unlisted: Unlisted,
    /// TLS flows by what became of their records (`decrypted`, `no_key`… see
    /// [`crate::Decryption::as_str`]).
    pub tls_flows: BTreeMap<&'static str, u64>,
    /// Client record bytes that were decrypted and read.
    pub decrypted_bytes: u64,
    /// The frames of the first protected records that did not open (`keys_do_not_match`), the
    /// earliest `MAX_MISMATCH_FRAMES`.
    pub mismatch_frames: Vec<u64>,
}

/// What a `Summary` counted but did not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unlisted {
    /// Flows to hosts past `MAX_HOSTS`.
    pub hosts: u64,
    /// Findings in groups past `MAX_FINDING_GROUPS`.
    pub finding_groups: u64,
    /// Questions for names past `MAX_DNS_NAMES_LISTED`.
    pub dns_names: u64,
}

impl Summary {
    /// The finding groups, by first frame.
    pub fn findings(&self) -> Vec<&FindingGroup> {
        let mut v: Vec<&FindingGroup> = self.groups.values().collect();
        v.sort_by(|a, b| {
            (
                a.first_frame,
                &a.identifier,
                &a.encoding,
                &a.location,
                &a.host,
            )
                .cmp(&(
                    b.first_frame,
                    &b.identifier,
                    &b.encoding,
                    &b.location,
                    &b.host,
                ))
        });
        v
    }

    /// Hosts, in no particular order.
    pub fn hosts(&self) -> impl Iterator<Item = (&str, &HostSummary)> {
        self.hosts.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// DNS names asked, in no particular order.
    pub fn dns_names(&self) -> impl Iterator<Item = (&str, &NameSummary)> {
        self.dns_names.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Flows with at least one finding, counted once per (flow, group).
    pub fn finding_count(&self) -> u64 {
        self.groups.values().map(|g| g.flows).sum()
    }

    fn add_group(&mut self, key: GroupKey, g: FindingGroup) {
        let full = self.groups.len() >= MAX_FINDING_GROUPS;
        match self.groups.get_mut(&key) {
            Some(mine) => {
                mine.flows += g.flows;
                let earlier = g.first_frame < mine.first_frame;
                merge_suites(&mut mine.suites, &g.suites, earlier);
                if earlier {
                    mine.first_frame = g.first_frame;
                    mine.first_ts = g.first_ts;
                    mine.tls = g.tls;
                }
                mine.frames.extend(g.frames);
                mine.frames.sort_unstable();
                mine.frames.dedup();
                mine.frames.truncate(FRAMES_PER_GROUP);
            }
            None if full => self.unlisted.finding_groups += g.flows,
            None => {
                self.groups.insert(key, g);
            }
        }
    }

    fn add_host(&mut self, host: String, h: HostSummary) {
        let full = self.hosts.len() >= MAX_HOSTS;
        match self.hosts.get_mut(&host) {
            Some(mine) => {
                mine.how.extend(h.how);
                mine.protocols.extend(h.protocols);
                mine.flows += h.flows;
                mine.first_frame = mine.first_frame.min(h.first_frame);
                mine.bytes_out += h.bytes_out;
                mine.bytes_in += h.bytes_in;
                mine.opaque_bytes += h.opaque_bytes;
                mine.gap_bytes += h.gap_bytes;
            }
            None if full => self.unlisted.hosts += h.flows,
            None => {
                self.hosts.insert(host, h);
            }
        }
    }

    fn add_name(&mut self, name: String, n: NameSummary) {
        let full = self.dns_names.len() >= MAX_DNS_NAMES_LISTED;
        match self.dns_names.get_mut(&name) {
            Some(mine) => {
                mine.count += n.count;
                mine.first_frame = mine.first_frame.min(n.first_frame);
            }
            None if full => self.unlisted.dns_names += n.count,
            None => {
                self.dns_names.insert(name, n);
            }
        }
    }

    /// Adds another summary (a shard of a parallel analysis of the same capture).
    pub fn merge(&mut self, other: Summary) {
        self.flows += other.flows;
        self.resumed_flows += other.resumed_flows;
        for (end, n) in other.endings {
            *self.endings.entry(end).or_default() += n;
        }
        self.readable_bytes += other.readable_bytes;
        self.opaque_bytes += other.opaque_bytes;
        for (host, h) in other.hosts {
            self.add_host(host, h);
        }
        for (key, g) in other.groups {
            self.add_group(key, g);
        }
        for (name, n) in other.dns_names {
            self.add_name(name, n);
        }
        self.dns_queries += other.dns_queries;
        self.unlisted.hosts += other.unlisted.hosts;
        self.unlisted.finding_groups += other.unlisted.finding_groups;
        self.unlisted.dns_names += other.unlisted.dns_names;
        for (status, n) in other.tls_flows {
            *self.tls_flows.entry(status).or_default() += n;
        }
        self.decrypted_bytes += other.decrypted_bytes;
        self.add_mismatch(&other.mismatch_frames);
    }

    fn add_mismatch(&mut self, frames: &[u64]) {
        self.mismatch_frames.extend(frames);
        self.mismatch_frames.sort_unstable();
        self.mismatch_frames.dedup();
        self.mismatch_frames.truncate(MAX_MISMATCH_FRAMES);
    }
}

impl Sink for Summary {
    fn flow(&mut self, flow: Flow, findings: Vec<Finding>) {
        self.flows += 1;
        self.resumed_flows += u64::from(flow.resumed);
        *self.endings.entry(flow.end).or_default() += 1;
        // A TLS flow's opaque bytes include the server's: what was decrypted was read.
        let decrypted = flow.tls.map_or(0, |t| t.decrypted_bytes);
        self.readable_bytes += flow
            .bytes_out
            .saturating_sub(flow.opaque_bytes)
            .max(decrypted);
        self.opaque_bytes += flow.opaque_bytes;
        if let Some(t) = &flow.tls {
            *self.tls_flows.entry(t.decryption.as_str()).or_default() += 1;
            self.decrypted_bytes += t.decrypted_bytes;
            if let crate::Decryption::KeysDoNotMatch { frame } = t.decryption {
                self.add_mismatch(&[frame]);
            }
        }
        for f in findings {
            let key = (
                f.identifier.clone(),
                f.encoding.clone(),
                f.host.clone(),
                f.location.clone(),
                f.protocol,
            );
            let g = FindingGroup {
                identifier: f.identifier,
                encoding: f.encoding,
                host: f.host,
                host_source: f.host_source,
                protocol: f.protocol,
                location: f.location,
                flows: 1,
                first_frame: f.frame,
                first_ts: f.ts,
                frames: vec![f.frame],
                tls: f.tls,
                suites: f.tls.into_iter().collect(),
            };
            self.add_group(key, g);
        }
        // Most flows go to a host seen before: add to it without building its sets.
        if let Some(h) = self.hosts.get_mut(flow.host.as_str()) {
            h.how.insert(flow.host_source);
            h.protocols.insert(flow.protocol);
            h.flows += 1;
            h.first_frame = h.first_frame.min(flow.first_frame);
            h.bytes_out += flow.bytes_out;
            h.bytes_in += flow.bytes_in;
            h.opaque_bytes += flow.opaque_bytes;
            h.gap_bytes += flow.gap_bytes;
            return;
        }
        let h = HostSummary {
            how: BTreeSet::from([flow.host_source]),
            protocols: BTreeSet::from([flow.protocol]),
            flows: 1,
            first_frame: flow.first_frame,
            bytes_out: flow.bytes_out,
            bytes_in: flow.bytes_in,
            opaque_bytes: flow.opaque_bytes,
            gap_bytes: flow.gap_bytes,
        };
        self.add_host(flow.host, h);
    }

    fn dns_query(&mut self, query: DnsQuery) {
        self.dns_queries += 1;
        if let Some(n) = self.dns_names.get_mut(query.name.as_str()) {
            n.count += 1;
            n.first_frame = n.first_frame.min(query.frame);
            return;
        }
        self.add_name(
            query.name,
            NameSummary {
                count: 1,
                first_frame: query.frame,
            },
        );
    }
}
