//! The adbd's connections: the accept loop (a bounded number of connections at once), the CNXN handshake
//! with its banner, and one connection's multiplexing — OPEN starts a service on a new stream, WRTE/OKAY
//! are routed to their stream, CLSE ends it, all within a receive budget and a stream limit. A reboot
//! drops every connection (the server reconnects).
//!
//! Everything the peer sends is untrusted: per-stream queues are bounded, the bytes received and not yet
//! consumed are budgeted, a silent peer is dropped after the handshake timeout, and a protocol violation
//! closes that connection only.
//!
//! Must not touch: the message encoding (`message`), what a stream's bytes mean (services), the
//! handset's state beyond its reboot signal.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::AbortOnDrop;
use super::message::{A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_WRTE, MAX_PAYLOAD, Message, read_message};
use super::reverse::OpenRequest;
use super::services::{offered, parse_service, run_service, service_kind};
use super::stream::{AdbStream, Budgeted, MAX_PENDING_DATA, StreamEvent};
use crate::vhandset::Profile;
use crate::vhandset::shell::Handset;

/// Features the handset advertises; nothing here that is not implemented (see adb-wire-facts.md).
pub const FEATURES: &str = "shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir";
/// Streams open at once on one connection; more OPENs are refused (CLSE) rather than queued.
const MAX_STREAMS: usize = 32;
/// Connections at once on one handset.
const MAX_CONNECTIONS: usize = 8;
/// Bytes received on one connection and not yet consumed by its services. A correct host has at most
/// one unacknowledged WRTE per stream; going over this closes the connection.
const CONNECTION_BUDGET: usize = 32 * 1024 * 1024;

/// How long a new connection may take to send its CNXN.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The CNXN banner: `device::ro.product.name=…;ro.product.model=…;ro.product.device=…;features=…`
/// (no `features=` before 7.0: the generation's adbd decides).
pub fn banner(profile: &Profile) -> String {
    let mut out = String::from("device::");
    for key in ["ro.product.name", "ro.product.model", "ro.product.device"] {
        // `;` and `=` would break the server's banner parsing; a profile value never needs them.
        let value: String = profile
            .prop(key)
            .unwrap_or("")
            .chars()
            .filter(|c| *c != ';' && *c != '=' && !c.is_control())
            .collect();
        out.push_str(&format!("{key}={value};"));
    }
    if let Some(features) = profile.generation.adbd.features {
        out.push_str("features=");
        out.push_str(features);
    }
    out
}

/// Accepts connections until `stopped` changes, serving each one; then aborts them all.
pub async fn serve(
    listener: TcpListener,
    handset: Arc<Handset>,
    banner: String,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((socket, peer)) => {
                    if connections.len() >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "too many adb connections; refusing");
                        continue;
                    }
                    connections.spawn(serve_connection(socket, peer, handset.clone(), banner.clone()));
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped.changed() => break,
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    handset: Arc<Handset>,
    banner: String,
) {
    let _ = socket.set_nodelay(true);
    let (mut reader, mut writer) = socket.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    let (in_tx, mut in_rx) = mpsc::channel::<Message>(4);

    let writer_task = AbortOnDrop(tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            let bytes = msg.encode();
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    }));
    let _reader_task = AbortOnDrop(tokio::spawn(async move {
        loop {
            match read_message(&mut reader, MAX_PAYLOAD).await {
                Ok(Some(msg)) => {
                    if in_tx.send(msg).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%peer, "closing connection: {e}");
                    break;
                }
            }
        }
    }));

    let mut streams: HashMap<u32, mpsc::Sender<StreamEvent>> = HashMap::new();
    // Streams this side OPENed (reverse forwards), waiting for the host's OKAY or CLSE.
    let mut opening: HashMap<u32, oneshot::Sender<Option<AdbStream>>> = HashMap::new();
    let (opener, mut open_requests) = mpsc::channel::<OpenRequest>(8);
    let mut tasks: JoinSet<u32> = JoinSet::new();
    let mut next_id: u32 = 1;
    let mut max_payload: Option<usize> = None;
    let inflight = Arc::new(AtomicUsize::new(0));
    let mut reboots = handset.reboots();
    // A peer that connects and never says CNXN would hold one of the few connection slots forever.
    let handshake_deadline = tokio::time::sleep(HANDSHAKE_TIMEOUT);
    tokio::pin!(handshake_deadline);

    loop {
        tokio::select! {
            () = &mut handshake_deadline, if max_payload.is_none() => {
                tracing::debug!(%peer, "no CNXN within {HANDSHAKE_TIMEOUT:?}; closing");
                break;
            }
            msg = in_rx.recv() => {
                let Some(msg) = msg else { break };
                let send = |m: Message| { let out = out_tx.clone(); async move { out.send(m).await.is_ok() } };
                match (msg.command, max_payload) {
                    (A_CNXN, _) => {
                        let theirs = (msg.arg1 as usize).clamp(256, MAX_PAYLOAD);
                        max_payload = Some(theirs);
                        tracing::debug!(%peer, max_payload = theirs, "CNXN");
                        let adbd = &handset.profile().generation.adbd;
                        let reply = Message::new(A_CNXN, adbd.version, adbd.max_payload, banner.clone().into_bytes());
                        if !send(reply).await { break }
                    }
                    (_, None) => {
                        tracing::debug!(%peer, ?msg, "message before CNXN");
                        break;
                    }
                    (A_OPEN, Some(max)) => {
                        let host_id = msg.arg0;
                        let service = parse_service(&msg.payload)
                            .filter(|s| offered(s, handset.profile().generation));
                        match service {
                            Some(service) if host_id != 0 && streams.len() < MAX_STREAMS => {
                                let local = next_id;
                                next_id = next_id.checked_add(1).unwrap_or(1);
                                let (tx, rx) = mpsc::channel(MAX_PENDING_DATA + 4);
                                streams.insert(local, tx);
                                if !send(Message::new(A_OKAY, local, host_id, Vec::new())).await { break }
                                tracing::debug!(%peer, local, kind = service_kind(&service), "OPEN");
                                let stream = AdbStream::new(local, host_id, rx, out_tx.clone(), max);
                                let handset = handset.clone();
                                let opener = opener.clone();
                                tasks.spawn(async move { run_service(stream, service, handset, opener).await; local });
                            }
                            _ => {
                                if !send(Message::new(A_CLSE, 0, host_id, Vec::new())).await { break }
                            }
                        }
                    }
                    (A_OKAY, Some(max)) if opening.contains_key(&msg.arg1) => {
                        // The host accepted a stream we OPENed: it is ours from now on.
                        let local = msg.arg1;
                        if let Some(reply) = opening.remove(&local) {
                            let (tx, rx) = mpsc::channel(MAX_PENDING_DATA + 4);
                            streams.insert(local, tx);
                            let stream = AdbStream::new(local, msg.arg0, rx, out_tx.clone(), max);
                            if let Err(Some(stream)) = reply.send(Some(stream)) {
                                streams.remove(&local);
                                stream.close().await;
                            }
                        }
                    }
                    (A_CLSE, Some(_)) if opening.contains_key(&msg.arg1) => {
                        if let Some(reply) = opening.remove(&msg.arg1) {
                            let _ = reply.send(None);
                        }
                    }
                    (A_WRTE | A_OKAY, Some(_)) => {
                        let local = msg.arg1;
                        let event = if msg.command == A_WRTE {
                            let len = msg.payload.len();
                            if inflight.fetch_add(len, Ordering::Relaxed) + len > CONNECTION_BUDGET {
                                inflight.fetch_sub(len, Ordering::Relaxed);
                                tracing::debug!(%peer, "peer exceeds the receive budget; closing");
                                break;
                            }
                            StreamEvent::Data(Budgeted { data: msg.payload, len, budget: inflight.clone() })
                        } else {
                            StreamEvent::Ready
                        };
                        let delivered = match streams.get(&local) {
                            Some(tx) => tx.try_send(event).is_ok(),
                            None => false,
                        };
                        if !delivered && msg.command == A_WRTE && streams.remove(&local).is_some() {
                            // A peer ignoring flow control loses that stream only. WRTEs for streams
                            // that no longer exist are dropped silently, as adbd does.
                            if !send(Message::new(A_CLSE, local, msg.arg0, Vec::new())).await { break }
                        }
                    }
                    (A_CLSE, Some(_)) => {
                        // Dropping the sender ends the service's receive side once queued data is read.
                        streams.remove(&msg.arg1);
                    }
                    (_, Some(_)) => tracing::debug!(%peer, ?msg, "ignoring message"),
                }
            }
            Some(request) = open_requests.recv(), if max_payload.is_some() => {
                if streams.len() + opening.len() >= MAX_STREAMS {
                    let _ = request.reply.send(None);
                    continue;
                }
                let local = next_id;
                next_id = next_id.checked_add(1).unwrap_or(1);
                let mut payload = request.destination.into_bytes();
                payload.push(0);
                opening.insert(local, request.reply);
                if out_tx.send(Message::new(A_OPEN, local, 0, payload)).await.is_err() { break }
            }
            _ = reboots.changed() => {
                tracing::info!(%peer, "handset rebooting: dropping the connection");
                break;
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(local) = done { streams.remove(&local); }
            }
        }
    }
    tracing::debug!(%peer, "connection closed");
    // Dropping the JoinSet aborts every service (and, through AbortOnDrop, their commands).
    drop(tasks);
    drop(streams);
    drop(out_tx);
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        writer_task_join(writer_task),
    )
    .await;
}

async fn writer_task_join(mut t: AbortOnDrop<()>) {
    let _ = (&mut t.0).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_carries_product_props() {
        let mut props = std::collections::BTreeMap::new();
        props.insert("ro.product.name".to_string(), "p;x".to_string());
        props.insert("ro.product.model".to_string(), "Model 1".to_string());
        props.insert("ro.product.device".to_string(), "dev".to_string());
        let profile = Profile {
            name: "t".into(),
            description: String::new(),
            props,
            identifiers: Default::default(),
            traffic: Default::default(),
            source: "test".into(),
            generation: crate::vhandset::generation::by_id("android-13").unwrap(),
            persona: Default::default(),
        };
        assert_eq!(
            banner(&profile),
            "device::ro.product.name=px;ro.product.model=Model 1;ro.product.device=dev;features=shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir"
        );
    }
}
