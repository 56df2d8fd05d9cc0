//! Where an analysis puts what it learns, as it learns it.
//!
//! Owns the `Sink` contract and the sink that keeps everything (`Analysis`). Must not touch: how
//! flows are followed (the engine calls the sink; the sink never calls back).

use crate::{Analysis, DnsQuery, Finding, Flow};

/// Receives an analysis' results as they become final.
///
/// Flows come in the order they end, not the order they started; a finding comes with its flow
/// (where its host is final) and, earlier, through `live_finding` the moment it is made (its host
/// the best known then: a later TLS SNI or HTTP Host may still name the flow better).
pub trait Sink {
    /// A flow ended (FIN, RST, idle, evicted, or the end of the capture), with its findings.
    fn flow(&mut self, flow: Flow, findings: Vec<Finding>);
    /// A DNS question the client asked.
    fn dns_query(&mut self, query: DnsQuery);
    /// A finding the moment it is made, before its flow ends. Ignored by default.
    fn live_finding(&mut self, _finding: &Finding) {}
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn flow(&mut self, flow: Flow, findings: Vec<Finding>) {
        (**self).flow(flow, findings)
    }
    fn dns_query(&mut self, query: DnsQuery) {
        (**self).dns_query(query)
    }
    fn live_finding(&mut self, finding: &Finding) {
        (**self).live_finding(finding)
    }
}

/// Keeps everything: memory grows with the flows of the capture. For captures of a run, tests and
/// small files; [`crate::Summary`] is the bounded one.
impl Sink for Analysis {
    fn flow(&mut self, flow: Flow, mut findings: Vec<Finding>) {
        self.flows.push(flow);
        self.findings.append(&mut findings);
    }

    fn dns_query(&mut self, query: DnsQuery) {
        self.dns_queries.push(query);
    }
}

impl Analysis {
    /// Flows by first frame, findings by (frame, identifier, encoding, location, host), DNS
    /// questions by frame: the order is the capture's, whatever order flows ended in.
    pub fn sort(&mut self) {
        self.flows.sort_by(|a, b| {
            (a.first_frame, a.client, a.server).cmp(&(b.first_frame, b.client, b.server))
        });
        self.findings.sort_by(|a, b| {
            (a.frame, &a.identifier, &a.encoding, &a.location, &a.host).cmp(&(
                b.frame,
                &b.identifier,
                &b.encoding,
                &b.location,
                &b.host,
            ))
        });
        self.dns_queries.sort_by_key(|q| q.frame);
    }

    /// Adds another analysis' results (a shard of a parallel analysis of the same capture).
    pub fn merge(&mut self, mut other: Analysis) {
        self.flows.append(&mut other.flows);
        self.findings.append(&mut other.findings);
        self.dns_queries.append(&mut other.dns_queries);
    }
}
