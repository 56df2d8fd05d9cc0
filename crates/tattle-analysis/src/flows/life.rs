//! The life of a flow: opened (or resumed after a silence), ended by its endpoints, by silence, by
//! a new connection on its addresses, for memory, or by the end of the capture — and what is
//! remembered once it ended.
//!
//! Must not touch: what a flow's bytes mean (see `client`, `datagram`), reassembly (`tcp`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::client::Reader;
use super::limits::*;
use super::table::{Ended, Endpoint, Entry, FlowKey, List};
use super::tcp::TcpDir;
use super::{Engine, FlowState, client, context, flow};
use crate::dns::DNS_PORTS;
use crate::sink::Sink;
use crate::{Finding, Flow, FlowEnd, HostSource, Limit, Protocol, Timestamp};

impl<S: Sink> Engine<S> {
    /// A SYN on an open flow: a new connection on the same addresses, unless it repeats the SYN
    /// that opened this one.
    pub(super) fn is_new_connection(&self, idx: u32, src: Endpoint, seq: u32) -> bool {
        let Some(f) = self.slots.get(idx as usize).and_then(|s| s.as_deref()) else {
            return true;
        };
        let d = usize::from(src != f.client);
        match f.dirs[d].base {
            // The stream of a SYN starts one past its sequence number.
            Some(base) => base != seq.wrapping_add(1) || d == 1,
            None => false,
        }
    }

    /// A non-SYN TCP packet on the addresses of an ended flow: `Some` (the memory of that flow) if
    /// it carries bytes the ended flow did not, so the flow goes on as a resumed one.
    pub(super) fn resume_tcp(
        &mut self,
        e: u32,
        src: Endpoint,
        seq: u32,
        len: usize,
        closing: bool,
    ) -> Option<Ended> {
        let ended = self.ended.get(e)?.clone();
        if len == 0 {
            return None;
        }
        let d = usize::from(src != ended.client);
        if let Some(next) = ended.next_seq[d] {
            // Wholly before what the flow had received: a retransmission (or its FIN's repeat).
            let end = seq.wrapping_add(len as u32);
            if (end.wrapping_sub(next) as i32) <= 0 || closing && seq == next {
                return None;
            }
        }
        if ended.end == FlowEnd::Evicted {
            self.notes.resumed_evicted.add(self.frame, 1);
        }
        Some(ended)
    }

    /// Ends the flows idle past their list's timeout (the oldest of each list first).
    pub(super) fn expire(&mut self) {
        for (list, idle) in [
            (List::Closing, CLOSING_IDLE),
            (List::Udp, UDP_IDLE),
            (List::Tcp, TCP_IDLE),
        ] {
            while let Some(head) = self.lists.head(list) {
                let last = self.slots[head as usize]
                    .as_ref()
                    .map_or(0.0, |f| f.last_ts);
                if last + idle >= self.now {
                    break;
                }
                let end = if list == List::Closing {
                    FlowEnd::HalfFin
                } else {
                    FlowEnd::Idle
                };
                self.end(head, end);
            }
        }
    }

    /// Opens a flow for `key` with `client` as the client side; `resumes` is the memory of the
    /// flow it continues, if any.
    pub(super) fn create(
        &mut self,
        key: FlowKey,
        (client, server): (Endpoint, Endpoint),
        frame: u64,
        ts: Timestamp,
        resumes: Option<Ended>,
    ) -> u32 {
        while self.open + FLOW_STATE_BYTES > self.max_state {
            if !self.evict_oldest() {
                break;
            }
        }
        let mut protocol = if DNS_PORTS.contains(&server.1) || DNS_PORTS.contains(&client.1) {
            Protocol::Dns
        } else if server.1 == NTP_PORT || client.1 == NTP_PORT {
            Protocol::Ntp
        } else if key.tcp {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        let mut reader = Reader::new();
        let mut dirs = [TcpDir::default(), TcpDir::default()];
        let resumed = resumes.is_some();
        let mut resumed_host = None;
        if let Some(e) = resumes {
            protocol = e.protocol;
            reader = Reader::resumed(e.protocol);
            resumed_host = e.host;
            for (d, next) in dirs.iter_mut().zip(e.next_seq) {
                d.base = next;
            }
        }
        let state = Box::new(FlowState {
            key,
            tcp: key.tcp,
            client,
            server,
            first_frame: frame,
            first_ts: ts,
            last_ts: ts,
            bytes_out: 0,
            bytes_in: 0,
            opaque: 0,
            gap_bytes: 0,
            protocol,
            sni: None,
            http_host: None,
            dns_name: self.dns_names.get(&server.0).cloned(),
            resumed_host,
            resumed,
            alpn: Vec::new(),
            dirs,
            reader,
            frames: VecDeque::new(),
            findings: HashMap::new(),
            held: 0,
            state: FLOW_STATE_BYTES,
            last_datagram: None,
            quic: None,
            tls: None,
            tls_app: None,
        });
        let list = state.list();
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(state);
                i
            }
            None => {
                self.slots.push(Some(state));
                (self.slots.len() - 1) as u32
            }
        };
        self.lists.push(idx, list);
        self.open += FLOW_STATE_BYTES;
        self.open_count += 1;
        self.table.insert(key, Entry::Open(idx));
        self.last = None;
        idx
    }

    /// Ends the least recently active flow to make room; false if none is open.
    pub(super) fn evict_oldest(&mut self) -> bool {
        let oldest = [List::Closing, List::Udp, List::Tcp]
            .into_iter()
            .filter_map(|l| self.lists.head(l))
            .min_by(|&a, &b| {
                let ts = |i: u32| self.slots[i as usize].as_ref().map_or(0.0, |f| f.last_ts);
                ts(a).total_cmp(&ts(b))
            });
        let Some(idx) = oldest else {
            return false;
        };
        tracing::debug!("flow state over its budget: ending the least recently active flow");
        let holding = self.slots[idx as usize]
            .as_ref()
            .is_some_and(|f| f.unfinished() > 0);
        if holding {
            // Its unfinished bytes are searched as far as they go: that is a cut.
            self.notes.evicted_holding.add(self.frame, 1);
        }
        self.end(idx, FlowEnd::Evicted);
        true
    }

    /// Ends flow `idx`: its streams are finished (lost bytes skipped, buffered bytes searched), it
    /// goes to the sink with its findings, and only its memory (`Ended`) is kept.
    pub(super) fn end(&mut self, idx: u32, how: FlowEnd) {
        self.skip_all_gaps(idx);
        self.quic_flush(idx, true);
        let f = flow!(self.slots, idx);
        let mut hits = Vec::new();
        let mut ctx = context!(self, self.frame, self.now);
        client::finish(f, &mut ctx, &mut hits);
        self.add_hits(idx, hits);
        let Some(f) = self.slots.get_mut(idx as usize).and_then(Option::take) else {
            return;
        };
        if let Reader::TlsData(t) = &f.reader
            && let Some(random) = t.awaiting()
            && self.awaiting.get(&random) == Some(&idx)
        {
            self.awaiting.remove(&random);
        }
        self.lists.unlink(idx);
        self.free.push(idx);
        self.open -= f.state;
        self.open_count -= 1;
        self.held -= f.held;
        self.ended_count += 1;
        let f = *f;
        let (host, host_source) = f.host();
        let mut findings = Vec::with_capacity(f.findings.len());
        let decrypted = f.tls_use("");
        for ((identifier, encoding, location, name), (frame, ts)) in f.findings {
            let (host, host_source) = match name {
                Some(n) => (n, HostSource::Qname),
                None => (host.clone(), host_source),
            };
            let tls = if location == "tls.sni" {
                None
            } else {
                decrypted
            };
            findings.push(Finding {
                tls,
                identifier: self.matcher.kind(identifier).to_string(),
                encoding,
                host,
                host_source,
                protocol: f.protocol,
                location,
                flow: f.first_frame,
                frame,
                ts,
            });
        }
        findings.sort_by(|a, b| {
            (a.frame, &a.identifier, &a.encoding, &a.location).cmp(&(
                b.frame,
                &b.identifier,
                &b.encoding,
                &b.location,
            ))
        });
        let next_seq = [0, 1].map(|d| {
            let dir = &f.dirs[d];
            dir.base.map(|b| b.wrapping_add(dir.next as u32))
        });
        // Only a flow ended by silence or for memory may go on (as a resumed flow); one ended by
        // its endpoints is followed by trailing ACKs (which start nothing) or a new connection.
        let remember = matches!(how, FlowEnd::Idle | FlowEnd::Evicted);
        let remembered_host = (remember && host_source != HostSource::Ip)
            .then(|| (Arc::from(host.as_str()), host_source));
        let flow = Flow {
            transport: if f.tcp { "tcp" } else { "udp" },
            client: f.client,
            server: f.server,
            host,
            host_source,
            protocol: f.protocol,
            first_frame: f.first_frame,
            first_ts: f.first_ts,
            last_ts: f.last_ts,
            bytes_out: f.bytes_out,
            bytes_in: f.bytes_in,
            opaque_bytes: f.opaque,
            gap_bytes: f.gap_bytes,
            alpn: f.alpn,
            end: how,
            resumed: f.resumed,
            tls: f.tls.or_else(|| {
                // A TLS flow whose ClientHello was never whole, or a resumed one.
                (f.protocol == Protocol::Tls).then_some(crate::TlsSummary {
                    version: None,
                    cipher: None,
                    decryption: if self.keys.is_empty() {
                        crate::Decryption::NotAttempted
                    } else {
                        crate::Decryption::Incomplete
                    },
                    decrypted_bytes: 0,
                    app: None,
                })
            }),
        };
        self.sink.flow(flow, findings);
        // A new flow may own the addresses already (a reused 4-tuple): then it keeps them.
        match self.table.remove(&f.key) {
            Some(Entry::Open(i)) if i == idx && remember => {
                let (e, replaced) = self.ended.push(Ended {
                    key: f.key,
                    client: f.client,
                    protocol: f.protocol,
                    host: remembered_host,
                    next_seq,
                    end: how,
                });
                // The memory overwritten, if its key still points at it, goes.
                if let Some(old) = replaced
                    && self.table.get(&old) == Some(&Entry::Ended(e))
                {
                    self.table.remove(&old);
                }
                self.table.insert(f.key, Entry::Ended(e));
            }
            Some(Entry::Open(i)) if i == idx => {}
            Some(other) => {
                self.table.insert(f.key, other);
            }
            None => {}
        }
        if self.last.is_some_and(|(_, i)| i == idx) {
            self.last = None;
        }
    }

    /// Ends every open flow (oldest first) and returns the sink and the limits that cut something.
    pub fn finish(self) -> (S, Vec<Limit>) {
        let max_buffered = self.max_buffered;
        let (sink, notes) = self.finish_notes();
        (sink, notes.limits(max_buffered))
    }

    /// `finish`, with the notes still countable (a shard's, to be merged with the others').
    pub(crate) fn finish_notes(mut self) -> (S, Notes) {
        let mut open: Vec<(u64, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|f| (f.first_frame, i as u32)))
            .collect();
        open.sort_unstable();
        for (_, idx) in open {
            self.end(idx, FlowEnd::CaptureEnd);
        }
        (self.sink, self.notes)
    }

    /// The capture's clock has reached `ts` (a shard of a parallel analysis learns the end of the
    /// capture this way: its own last packet may be older), ending the flows idle by then.
    pub(crate) fn advance(&mut self, ts: Timestamp) {
        if ts > self.now {
            self.now = ts;
            self.expire();
        }
    }
}
