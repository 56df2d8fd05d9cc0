//! One open ADB stream as a service sees it (`AdbStream`): writes split to the negotiated payload size
//! with one WRTE in flight until the host's OKAY, reads acknowledged when the service consumes them (which
//! is the backpressure), and the CLSE owed at the end. Received bytes stay counted against their
//! connection's budget (`Budgeted`) until consumed or dropped.
//!
//! Must not touch: the socket and the stream table (`connection`), what the bytes mean (services).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::message::{A_CLSE, A_OKAY, A_WRTE, Message};

/// Data messages a stream may hold unacknowledged. A correct peer never has more than one in flight.
pub(super) const MAX_PENDING_DATA: usize = 2;

/// Received bytes counted against the connection's budget until consumed or dropped.
#[derive(Debug)]
pub(super) struct Budgeted {
    pub(super) data: Vec<u8>,
    pub(super) len: usize,
    pub(super) budget: Arc<AtomicUsize>,
}

impl Budgeted {
    fn into_inner(mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }
}

impl Drop for Budgeted {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.len, Ordering::Relaxed);
    }
}

/// What the connection delivers to one stream.
#[derive(Debug)]
pub(super) enum StreamEvent {
    Data(Budgeted),
    /// The peer acknowledged our last WRTE.
    Ready,
}

/// The host closed the stream (or the connection went away).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stream closed by the host")]
pub struct StreamClosed;

/// One open ADB stream, as seen by a service.
pub struct AdbStream {
    local: u32,
    remote: u32,
    rx: mpsc::Receiver<StreamEvent>,
    out: mpsc::Sender<Message>,
    max_payload: usize,
    /// Data that arrived while we waited for an OKAY: not yet handed out, not yet acknowledged.
    inbound: VecDeque<Budgeted>,
    /// The host closed the stream (or the connection is gone): no CLSE owed.
    closed: bool,
    /// We gave up on the stream (protocol violation): only a CLSE is left to send.
    broken: bool,
}

impl AdbStream {
    /// A stream the connection just opened: ours is `local`, the host's is `remote`; `rx` is what the
    /// connection routes to it, `out` the connection's outgoing messages.
    pub(super) fn new(
        local: u32,
        remote: u32,
        rx: mpsc::Receiver<StreamEvent>,
        out: mpsc::Sender<Message>,
        max_payload: usize,
    ) -> Self {
        AdbStream {
            local,
            remote,
            rx,
            out,
            max_payload,
            inbound: VecDeque::new(),
            closed: false,
            broken: false,
        }
    }

    /// Writes `data` as WRTEs of at most the negotiated size, each one waiting for the host's OKAY.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), StreamClosed> {
        if self.closed || self.broken {
            return Err(StreamClosed);
        }
        for chunk in data.chunks(self.max_payload.max(1)) {
            let msg = Message::new(A_WRTE, self.local, self.remote, chunk.to_vec());
            if self.out.send(msg).await.is_err() {
                self.closed = true;
                return Err(StreamClosed);
            }
            loop {
                match self.rx.recv().await {
                    Some(StreamEvent::Ready) => break,
                    Some(StreamEvent::Data(d)) => {
                        if self.inbound.len() >= MAX_PENDING_DATA {
                            // Give up on the stream; `close` still tells the host (CLSE).
                            tracing::debug!(local = self.local, "peer ignores flow control");
                            self.broken = true;
                            return Err(StreamClosed);
                        }
                        self.inbound.push_back(d);
                    }
                    None => {
                        self.closed = true;
                        return Err(StreamClosed);
                    }
                }
            }
        }
        Ok(())
    }

    /// The next data from the host, not yet acknowledged (call `ack` after taking it). Cancel-safe, so
    /// it can sit in a `select!`. `None` once the host closed the stream.
    pub async fn recv_unacked(&mut self) -> Option<Vec<u8>> {
        if let Some(d) = self.inbound.pop_front() {
            return Some(d.into_inner());
        }
        loop {
            match self.rx.recv().await {
                Some(StreamEvent::Data(d)) => return Some(d.into_inner()),
                Some(StreamEvent::Ready) => continue,
                None => {
                    self.closed = true;
                    return None;
                }
            }
        }
    }

    /// Acknowledges one received WRTE, letting the host send the next.
    pub async fn ack(&mut self) {
        let msg = Message::new(A_OKAY, self.local, self.remote, Vec::new());
        if self.out.send(msg).await.is_err() {
            self.closed = true;
        }
    }

    /// The next data from the host, acknowledged.
    pub async fn read(&mut self) -> Option<Vec<u8>> {
        let d = self.recv_unacked().await?;
        self.ack().await;
        Some(d)
    }

    /// Closes our side (CLSE), unless the host already did.
    pub async fn close(mut self) {
        if !self.closed {
            self.closed = true;
            let _ = self
                .out
                .send(Message::new(A_CLSE, self.local, self.remote, Vec::new()))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_returned_when_data_is_consumed_or_dropped() {
        let budget = Arc::new(AtomicUsize::new(0));
        let make = |n: usize| {
            budget.fetch_add(n, Ordering::Relaxed);
            Budgeted {
                data: vec![0; n],
                len: n,
                budget: budget.clone(),
            }
        };
        let a = make(10);
        let b = make(5);
        assert_eq!(budget.load(Ordering::Relaxed), 15);
        assert_eq!(a.into_inner().len(), 10);
        assert_eq!(budget.load(Ordering::Relaxed), 5);
        drop(b);
        assert_eq!(budget.load(Ordering::Relaxed), 0);
    }
}
