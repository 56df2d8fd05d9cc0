//! UDP datagrams of a flow: DNS (questions searched and listed, answers naming later flows), QUIC
//! (the Initial decrypted up to the ClientHello, then opaque), anything else searched whole.
//!
//! Must not touch: TCP, flow lifecycles.

use std::hash::Hasher as _;

use super::client::question;
use super::table::{Endpoint, FxHasher};
use super::{DUPLICATE_WINDOW, Engine, NewFinding, context, flow, record};
use crate::quic;
use crate::sink::Sink;
use crate::{Protocol, Timestamp, dns};

impl<S: Sink> Engine<S> {
    pub(super) fn udp(
        &mut self,
        idx: u32,
        frame: u64,
        ts: Timestamp,
        src: Endpoint,
        payload: &[u8],
    ) {
        let f = flow!(self.slots, idx);
        f.last_ts = ts;
        let outbound = src == f.client;
        let digest = {
            let mut h = FxHasher::default();
            h.write(payload);
            h.write_usize(payload.len());
            h.finish()
        };
        if let Some((o, d, t)) = f.last_datagram
            && o == outbound
            && d == digest
            && (ts - t).abs() < DUPLICATE_WINDOW
        {
            return;
        }
        f.last_datagram = Some((outbound, digest, ts));
        if outbound
            && f.protocol == Protocol::Udp
            && f.bytes_out == 0
            && quic::looks_like_initial(payload)
        {
            f.protocol = Protocol::Quic;
            f.quic = Some(Box::default());
        }
        if outbound {
            f.bytes_out += payload.len() as u64;
        } else {
            f.bytes_in += payload.len() as u64;
        }
        match f.protocol {
            Protocol::Dns => {
                let Some(msg) = dns::parse(payload) else {
                    if outbound {
                        f.opaque += payload.len() as u64;
                    }
                    return;
                };
                if msg.is_response {
                    for (ip, name) in msg.answers {
                        self.remember_name(ip, &name);
                    }
                    return;
                }
                let mut ctx = context!(self, frame, ts);
                for name in msg.questions {
                    question(f, &mut ctx, name);
                }
            }
            Protocol::Quic => {
                let Some(q) = f.quic.as_mut().filter(|_| outbound) else {
                    // Server packets: protected with keys derived from the client's, but they
                    // carry nothing the handset said.
                    f.opaque += payload.len() as u64;
                    return;
                };
                let before = q.opaque;
                let hello = q.datagram(payload);
                f.opaque += q.opaque - before;
                if let Some(hello) = hello {
                    if let Some(sni) = &hello.sni {
                        for (identifier, encoding) in self.names.scan(&self.matcher, sni) {
                            let n = NewFinding {
                                identifier,
                                encoding,
                                location: "tls.sni".into(),
                                name: None,
                                frame,
                                ts,
                            };
                            record(f, &self.matcher, &mut self.sink, n);
                        }
                    }
                    f.sni = hello.sni.filter(|s| !s.is_empty());
                    f.alpn = hello.alpn;
                }
            }
            _ if outbound => {
                for r in self.matcher.scan_layers(payload, true) {
                    let n = NewFinding {
                        identifier: r.identifier,
                        encoding: r.encoding,
                        location: "udp.payload".into(),
                        name: None,
                        frame,
                        ts,
                    };
                    record(f, &self.matcher, &mut self.sink, n);
                }
            }
            _ => {}
        }
    }
}
