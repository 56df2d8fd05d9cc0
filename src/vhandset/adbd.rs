//! The handset's adbd: the ADB transport over TCP (CNXN/OPEN/OKAY/WRTE/CLSE), stream multiplexing and
//! the services `shell,v2,…:`, legacy `shell:`, `exec:`, `sync:`, `reboot:` and the production-build
//! refusals of `root:`/`unroot:`; plus `start`/`RunningHandset`, which tie the adbd, the handset's state
//! (`shell::Handset`) and its network together. Other services are refused with CLSE(0, id).
//!
//! Protocol facts come from AOSP's protocol.txt / SERVICES.TXT and from /work/shared/notes/adb-wire-facts.md
//! (measured against Debian's adb server): no AUTH, no STLS, no `delayed_ack`; one WRTE in flight per
//! stream; every incoming WRTE acknowledged (here: when the service consumes it, which is the
//! backpressure); the data checksum is sent but never checked.
//!
//! Everything the peer sends is untrusted: lengths are checked against the negotiated maximum before any
//! allocation, per-stream queues are bounded, and a protocol violation closes that connection only.
//!
//! Must not touch: command semantics (that is `shell`), the sync wire format (`sync`), traffic (`network`).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::network::HandsetNetwork;
use super::shell::{self, Handset};
use super::{Profile, ShellIo, VhandsetError};

pub const A_CNXN: u32 = u32::from_le_bytes(*b"CNXN");
pub const A_OPEN: u32 = u32::from_le_bytes(*b"OPEN");
pub const A_OKAY: u32 = u32::from_le_bytes(*b"OKAY");
pub const A_WRTE: u32 = u32::from_le_bytes(*b"WRTE");
pub const A_CLSE: u32 = u32::from_le_bytes(*b"CLSE");
pub const A_AUTH: u32 = u32::from_le_bytes(*b"AUTH");
pub const A_STLS: u32 = u32::from_le_bytes(*b"STLS");
/// Protocol version with checksums optional (what current adbd and the server both send).
pub const A_VERSION: u32 = 0x0100_0001;
/// Largest payload we accept and advertise: what the server offers too (1 MiB).
pub const MAX_PAYLOAD: usize = 1024 * 1024;
/// Features the handset advertises; nothing here that is not implemented (see adb-wire-facts.md).
pub const FEATURES: &str = "shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir";
pub const HEADER_LEN: usize = 24;

/// Streams open at once on one connection; more OPENs are refused (CLSE) rather than queued.
const MAX_STREAMS: usize = 32;
/// Connections at once on one handset.
const MAX_CONNECTIONS: usize = 8;
/// Data messages a stream may hold unacknowledged. A correct peer never has more than one in flight.
const MAX_PENDING_DATA: usize = 2;
/// Bytes received on one connection and not yet consumed by its services. A correct host has at most
/// one unacknowledged WRTE per stream; going over this closes the connection.
const CONNECTION_BUDGET: usize = 32 * 1024 * 1024;
/// Shell-v2 packet ids (AOSP adb/shell_protocol.h).
const ID_STDIN: u8 = 0;
const ID_STDOUT: u8 = 1;
const ID_STDERR: u8 = 2;
const ID_EXIT: u8 = 3;
const ID_CLOSE_STDIN: u8 = 4;
const ID_WINDOW_SIZE: u8 = 5;

// ---------------------------------------------------------------------------------------------------
// Message codec

/// One ADB message.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Message {
    // Payloads may carry identifiers (shell output); show only their size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}({:#x}, {:#x}, {} bytes)",
            command_name(self.command),
            self.arg0,
            self.arg1,
            self.payload.len()
        )
    }
}

fn command_name(command: u32) -> String {
    let bytes = command.to_le_bytes();
    if bytes.iter().all(|b| b.is_ascii_uppercase()) {
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        format!("{command:#010x}")
    }
}

/// A parsed message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub length: u32,
}

/// Why a peer's bytes are not an ADB message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("bad magic for command {0:#010x}")]
    BadMagic(u32),
    #[error("unknown command {0:#010x}")]
    UnknownCommand(u32),
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    TooLong { len: u32, max: usize },
}

impl Message {
    pub fn new(command: u32, arg0: u32, arg1: u32, payload: Vec<u8>) -> Self {
        Self {
            command,
            arg0,
            arg1,
            payload,
        }
    }

    /// Header + payload as sent on the wire (checksum = byte sum, as old peers expect).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        let checksum = self
            .payload
            .iter()
            .fold(0u32, |acc, &b| acc.wrapping_add(u32::from(b)));
        for word in [
            self.command,
            self.arg0,
            self.arg1,
            self.payload.len() as u32,
            checksum,
            self.command ^ 0xffff_ffff,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.payload);
        out
    }
}

/// Parses and validates a header; `max_payload` bounds the length before anything is allocated.
pub fn parse_header(bytes: &[u8; HEADER_LEN], max_payload: usize) -> Result<Header, CodecError> {
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let command = word(0);
    let length = word(12);
    if word(20) != command ^ 0xffff_ffff {
        return Err(CodecError::BadMagic(command));
    }
    if ![A_CNXN, A_OPEN, A_OKAY, A_WRTE, A_CLSE, A_AUTH, A_STLS].contains(&command) {
        return Err(CodecError::UnknownCommand(command));
    }
    if length as usize > max_payload {
        return Err(CodecError::TooLong {
            len: length,
            max: max_payload,
        });
    }
    Ok(Header {
        command,
        arg0: word(4),
        arg1: word(8),
        length,
    })
}

/// Reads one message; `None` on a clean EOF at a message boundary.
async fn read_message<R: AsyncReadExt + Unpin>(
    reader: &mut R,
    max_payload: usize,
) -> Result<Option<Message>, ConnError> {
    let mut header = [0u8; HEADER_LEN];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(ConnError::Io(e)),
    }
    let h = parse_header(&header, max_payload)?;
    let mut payload = vec![0u8; h.length as usize];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(ConnError::Io)?;
    Ok(Some(Message::new(h.command, h.arg0, h.arg1, payload)))
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("i/o: {0}")]
    Io(std::io::Error),
}

/// The CNXN banner: `device::ro.product.name=…;ro.product.model=…;ro.product.device=…;features=…`.
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
    out.push_str("features=");
    out.push_str(FEATURES);
    out
}

// ---------------------------------------------------------------------------------------------------
// Streams

/// Received bytes counted against the connection's budget until consumed or dropped.
#[derive(Debug)]
struct Budgeted {
    data: Vec<u8>,
    len: usize,
    budget: Arc<AtomicUsize>,
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
enum StreamEvent {
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

/// Aborts a spawned task when dropped, so a command dies with the stream that runs it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// ---------------------------------------------------------------------------------------------------
// Services

/// A service the host may OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// `shell,v2,…:CMD`, `shell:CMD`. Empty command = interactive.
    Shell {
        v2: bool,
        pty: bool,
        command: String,
    },
    /// `exec:CMD`: raw bytes, stderr merged into stdout, no exit status.
    Exec {
        command: String,
    },
    Sync,
    /// `root:`/`unroot:`: a production build answers with a message and closes.
    Message(&'static str),
    /// `reboot:…`: the handset drops its connections and comes back (the server reconnects).
    Reboot,
}

/// Parses the OPEN payload; `None` for services the handset does not offer.
pub fn parse_service(payload: &[u8]) -> Option<Service> {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    let text = std::str::from_utf8(&payload[..end]).ok()?;
    match text {
        "sync:" => return Some(Service::Sync),
        "root:" => {
            return Some(Service::Message(
                "adbd cannot run as root in production builds\n",
            ));
        }
        "unroot:" => return Some(Service::Message("adbd not running as root\n")),
        t if t.starts_with("reboot:") => return Some(Service::Reboot),
        _ => {}
    }
    if let Some(command) = text.strip_prefix("exec:") {
        return Some(Service::Exec {
            command: command.to_string(),
        });
    }
    let rest = text.strip_prefix("shell")?;
    let (options, command) = if let Some(command) = rest.strip_prefix(':') {
        ("", command)
    } else {
        let rest = rest.strip_prefix(',')?;
        rest.split_once(':')?
    };
    let options: Vec<&str> = options.split(',').filter(|o| !o.is_empty()).collect();
    let v2 = options.contains(&"v2");
    let pty = if options.contains(&"raw") {
        false
    } else if options.contains(&"pty") {
        true
    } else {
        command.is_empty()
    };
    Some(Service::Shell {
        v2,
        pty,
        command: command.to_string(),
    })
}

async fn run_service(mut stream: AdbStream, service: Service, handset: Arc<Handset>) {
    match service {
        Service::Sync => super::sync::serve(&mut stream, &handset).await,
        Service::Reboot => {
            handset.forget_volatile_state();
            stream.close().await;
            // Let the CLSE reach the host before the connections go.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            handset.drop_connections();
            return;
        }
        Service::Message(text) => {
            let _ = stream.write(text.as_bytes()).await;
        }
        Service::Exec { command } => run_raw(&mut stream, handset, Some(command)).await,
        Service::Shell {
            v2: false, command, ..
        } => {
            let command = (!command.is_empty()).then_some(command);
            run_raw(&mut stream, handset, command).await
        }
        Service::Shell {
            v2: true,
            pty,
            command,
        } => {
            let command = (!command.is_empty()).then_some(command);
            run_v2(&mut stream, handset, command, pty).await
        }
    }
    stream.close().await;
}

/// Runs a command line, or an interactive shell (`tty`: with prompt and echo) when there is none.
fn spawn_command(
    handset: Arc<Handset>,
    command: Option<String>,
    io: ShellIo,
    tty: bool,
) -> AbortOnDrop<i32> {
    AbortOnDrop(tokio::spawn(async move {
        match command {
            Some(c) => shell::run_command(handset, &c, io).await,
            None => shell::run_interactive(handset, io, tty).await,
        }
    }))
}

/// `exec:` and legacy `shell:`: bytes both ways, stderr merged, no exit status.
async fn run_raw(stream: &mut AdbStream, handset: Arc<Handset>, command: Option<String>) {
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
    let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(16);
    let io = ShellIo {
        stdout: out_tx.clone(),
        stderr: out_tx,
        stdin: in_rx,
    };
    let mut task = spawn_command(handset, command, io, true);
    let mut stdin = Some(in_tx);
    let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
    let mut finished = false;
    let host_gone = 'io: {
        loop {
            tokio::select! {
                d = out_rx.recv() => match d {
                    Some(d) => if stream.write(&d).await.is_err() { break 'io true },
                    None => break,
                },
                r = &mut task.0, if !finished => {
                    finished = true;
                    if let Err(e) = r { tracing::debug!("command task failed: {e}"); }
                }
                d = stream.recv_unacked(), if pending.is_empty() => match d {
                    Some(d) => {
                        stream.ack().await;
                        if stdin.is_some() { pending.push_back(d); }
                    }
                    None => break 'io true,
                },
                permit = reserve(stdin.clone()), if !pending.is_empty() => match permit {
                    Some(p) => { p.send(pending.pop_front().unwrap_or_default()); }
                    None => { stdin = None; pending.clear(); }
                },
            }
        }
        false
    };
    if host_gone {
        stop_command(task, vec![out_rx]).await;
    }
}

/// The host is gone: close the command's outputs (its cue to stop, e.g. tcpdump's SIGINT), give it a
/// moment to finish cleanly, then abort it.
async fn stop_command(mut task: AbortOnDrop<i32>, outputs: Vec<mpsc::Receiver<Vec<u8>>>) {
    drop(outputs);
    if !task.0.is_finished() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), &mut task.0).await;
    }
}

/// A slot in the command's stdin; owned, so the `select!` does not borrow the sender.
async fn reserve(tx: Option<mpsc::Sender<Vec<u8>>>) -> Option<mpsc::OwnedPermit<Vec<u8>>> {
    match tx {
        Some(tx) => tx.reserve_owned().await.ok(),
        None => None,
    }
}

/// Encodes one shell-v2 packet.
pub fn shell_packet(id: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(id);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// Incremental parser of shell-v2 packets from the host (they may be split or merged across WRTEs).
#[derive(Debug, Default)]
pub struct ShellPacketParser {
    buf: Vec<u8>,
}

/// Largest shell-v2 packet accepted from the host (stdin chunks are small in practice).
pub const MAX_SHELL_PACKET: usize = MAX_PAYLOAD;

impl ShellPacketParser {
    /// Adds bytes; returns the complete packets, or an error for a packet that is too long.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, CodecError> {
        self.buf.extend_from_slice(data);
        let mut packets = Vec::new();
        let mut pos = 0;
        while self.buf.len() - pos >= 5 {
            let len = u32::from_le_bytes([
                self.buf[pos + 1],
                self.buf[pos + 2],
                self.buf[pos + 3],
                self.buf[pos + 4],
            ]);
            if len as usize > MAX_SHELL_PACKET {
                self.buf.clear();
                return Err(CodecError::TooLong {
                    len,
                    max: MAX_SHELL_PACKET,
                });
            }
            let end = pos + 5 + len as usize;
            if self.buf.len() < end {
                break;
            }
            packets.push((self.buf[pos], self.buf[pos + 5..end].to_vec()));
            pos = end;
        }
        self.buf.drain(..pos);
        Ok(packets)
    }
}

/// Shell protocol v2: stdout/stderr/exit packets out, stdin/close-stdin/window packets in.
async fn run_v2(stream: &mut AdbStream, handset: Arc<Handset>, command: Option<String>, pty: bool) {
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
    let (err_tx, mut err_rx) = mpsc::channel::<Vec<u8>>(16);
    let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(16);
    // Under a pty both streams are the terminal. Senders not handed over are dropped here, or the
    // receivers would never see the command's end.
    let (stdout, stderr) = if pty {
        drop(err_tx);
        (out_tx.clone(), out_tx)
    } else {
        (out_tx, err_tx)
    };
    let io = ShellIo {
        stdout,
        stderr,
        stdin: in_rx,
    };
    let mut task = spawn_command(handset, command, io, pty);
    let mut stdin = Some(in_tx);
    let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
    let mut parser = ShellPacketParser::default();
    let (mut out_open, mut err_open) = (true, true);
    let mut exit: Option<i32> = None;
    let host_gone = 'io: {
        while out_open || err_open || exit.is_none() {
            tokio::select! {
                d = out_rx.recv(), if out_open => match d {
                    Some(d) => if stream.write(&shell_packet(ID_STDOUT, &d)).await.is_err() { break 'io true },
                    None => out_open = false,
                },
                d = err_rx.recv(), if err_open => match d {
                    Some(d) => if stream.write(&shell_packet(ID_STDERR, &d)).await.is_err() { break 'io true },
                    None => err_open = false,
                },
                r = &mut task.0, if exit.is_none() => {
                    exit = Some(r.unwrap_or_else(|e| { tracing::debug!("command task failed: {e}"); 255 }));
                }
                d = stream.recv_unacked(), if pending.is_empty() => match d {
                    Some(d) => {
                        stream.ack().await;
                        match parser.push(&d) {
                            Ok(packets) => for (id, data) in packets {
                                match id {
                                    ID_STDIN if stdin.is_some() && !data.is_empty() => pending.push_back(data),
                                    ID_CLOSE_STDIN => if pending.is_empty() { stdin = None } else { pending.push_back(Vec::new()) },
                                    ID_WINDOW_SIZE | ID_STDIN => {}
                                    other => tracing::debug!(id = other, "ignoring shell packet"),
                                }
                            },
                            Err(e) => { tracing::debug!("bad shell packet: {e}"); break 'io true }
                        }
                    }
                    None => break 'io true,
                },
                permit = reserve(stdin.clone()), if !pending.is_empty() => match permit {
                    Some(p) => {
                        let d = pending.pop_front().unwrap_or_default();
                        // An empty entry marks a close-stdin that arrived behind queued data.
                        if d.is_empty() { drop(p); stdin = None; pending.clear(); } else { p.send(d); }
                    }
                    None => { stdin = None; pending.clear(); }
                },
            }
        }
        false
    };
    if host_gone {
        stop_command(task, vec![out_rx, err_rx]).await;
        return;
    }
    let code = exit.unwrap_or(255);
    let _ = stream
        .write(&shell_packet(ID_EXIT, &[(code & 0xff) as u8]))
        .await;
}

// ---------------------------------------------------------------------------------------------------
// Connections

/// How long a new connection may take to send its CNXN.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
                        let reply = Message::new(A_CNXN, A_VERSION, MAX_PAYLOAD as u32, banner.clone().into_bytes());
                        if !send(reply).await { break }
                    }
                    (_, None) => {
                        tracing::debug!(%peer, ?msg, "message before CNXN");
                        break;
                    }
                    (A_OPEN, Some(max)) => {
                        let host_id = msg.arg0;
                        let service = parse_service(&msg.payload);
                        match service {
                            Some(service) if host_id != 0 && streams.len() < MAX_STREAMS => {
                                let local = next_id;
                                next_id = next_id.checked_add(1).unwrap_or(1);
                                let (tx, rx) = mpsc::channel(MAX_PENDING_DATA + 4);
                                streams.insert(local, tx);
                                if !send(Message::new(A_OKAY, local, host_id, Vec::new())).await { break }
                                tracing::debug!(%peer, local, kind = service_kind(&service), "OPEN");
                                let stream = AdbStream {
                                    local, remote: host_id, rx, out: out_tx.clone(),
                                    max_payload: max, inbound: VecDeque::new(), closed: false, broken: false,
                                };
                                let handset = handset.clone();
                                tasks.spawn(async move { run_service(stream, service, handset).await; local });
                            }
                            _ => {
                                if !send(Message::new(A_CLSE, 0, host_id, Vec::new())).await { break }
                            }
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

fn service_kind(s: &Service) -> &'static str {
    match s {
        Service::Shell { v2: true, .. } => "shell-v2",
        Service::Shell { .. } => "shell",
        Service::Exec { .. } => "exec",
        Service::Sync => "sync",
        Service::Message(_) => "message",
        Service::Reboot => "reboot",
    }
}

// ---------------------------------------------------------------------------------------------------
// Handset lifecycle

/// How to start one virtual handset.
#[derive(Debug, Clone)]
pub struct HandsetConfig {
    pub profile: Arc<Profile>,
    /// TCP port of the adbd on 127.0.0.1; 0 picks a free one. Avoid 5555–5585: the adb server probes
    /// those at start-up and would list the handset as an emulator.
    pub adb_port: u16,
}

/// A started handset. Dropping it does not stop it; call `shutdown`.
pub struct RunningHandset {
    port: u16,
    profile: Arc<Profile>,
    handset: Arc<Handset>,
    network: Arc<HandsetNetwork>,
    stop: watch::Sender<bool>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl RunningHandset {
    /// The serial the adb server will give it after `adb connect`: `127.0.0.1:PORT`.
    pub fn serial(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    /// The handset's shared state (what its shell sees), e.g. to inspect contacts or events in tests.
    pub fn handset(&self) -> &Arc<Handset> {
        &self.handset
    }
    /// The handset's network (its address, to filter a capture on).
    pub fn network(&self) -> &HandsetNetwork {
        &self.network
    }
    /// Stops the adbd, the network sinks and every running command (tcpdump included).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.acceptor.await;
        self.network.shutdown().await;
    }
}

/// Starts the adbd, the handset's network and its state. Returns once it is listening.
pub async fn start(config: HandsetConfig) -> Result<RunningHandset, VhandsetError> {
    let addr = format!("127.0.0.1:{}", config.adb_port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| VhandsetError::Bind {
            hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                " (port in use: pick another, or 0 for a free one)"
            } else {
                ""
            },
            addr: addr.clone(),
            source,
        })?;
    let port = listener.local_addr()?.port();
    let network = Arc::new(HandsetNetwork::start(config.profile.clone()).await?);
    let handset = Handset::new(config.profile.clone(), Some(network.clone()));
    let banner = banner(&config.profile);
    let (stop, mut stopped) = watch::channel(false);
    let acceptor_handset = handset.clone();
    let acceptor = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((socket, peer)) => {
                        if connections.len() >= MAX_CONNECTIONS {
                            tracing::warn!(%peer, "too many adb connections; refusing");
                            continue;
                        }
                        connections.spawn(serve_connection(socket, peer, acceptor_handset.clone(), banner.clone()));
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
    });
    tracing::info!(port, profile = %config.profile.name, "virtual handset listening");
    Ok(RunningHandset {
        port,
        profile: config.profile,
        handset,
        network,
        stop,
        acceptor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(m: &Message) -> [u8; HEADER_LEN] {
        m.encode()[..HEADER_LEN].try_into().unwrap()
    }

    #[test]
    fn encode_parse_round_trip() {
        let m = Message::new(A_WRTE, 7, 9, b"hello".to_vec());
        let bytes = m.encode();
        assert_eq!(bytes.len(), HEADER_LEN + 5);
        assert_eq!(&bytes[0..4], b"WRTE");
        // checksum is the byte sum
        let sum: u32 = b"hello".iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), sum);
        let h = parse_header(&header_bytes(&m), MAX_PAYLOAD).unwrap();
        assert_eq!(
            h,
            Header {
                command: A_WRTE,
                arg0: 7,
                arg1: 9,
                length: 5
            }
        );
    }

    #[test]
    fn garbage_headers_are_rejected_without_panic() {
        let mut bad = header_bytes(&Message::new(A_OKAY, 1, 2, vec![]));
        bad[20] ^= 1;
        assert!(matches!(
            parse_header(&bad, MAX_PAYLOAD),
            Err(CodecError::BadMagic(_))
        ));
        let unknown = header_bytes(&Message::new(0x1234_5678, 0, 0, vec![]));
        assert!(matches!(
            parse_header(&unknown, MAX_PAYLOAD),
            Err(CodecError::UnknownCommand(0x1234_5678))
        ));
        let mut long = header_bytes(&Message::new(A_WRTE, 1, 1, vec![]));
        long[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_header(&long, MAX_PAYLOAD),
            Err(CodecError::TooLong { .. })
        ));
        // Pseudo-random garbage: never panics, almost never parses.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            let mut b = [0u8; HEADER_LEN];
            for byte in &mut b {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *byte = x as u8;
            }
            let _ = parse_header(&b, MAX_PAYLOAD);
        }
    }

    #[tokio::test]
    async fn read_message_handles_truncation() {
        let m = Message::new(A_OPEN, 1, 0, b"shell:ls\0".to_vec()).encode();
        let mut cut = &m[..m.len() - 2];
        assert!(read_message(&mut cut, MAX_PAYLOAD).await.is_err());
        let mut whole = &m[..];
        let got = read_message(&mut whole, MAX_PAYLOAD)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.payload, b"shell:ls\0");
        let mut empty: &[u8] = &[];
        assert!(
            read_message(&mut empty, MAX_PAYLOAD)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn services_parse() {
        assert_eq!(
            parse_service(b"shell,v2,TERM=xterm,raw:getprop ro.x\0"),
            Some(Service::Shell {
                v2: true,
                pty: false,
                command: "getprop ro.x".into()
            })
        );
        assert_eq!(
            parse_service(b"shell,v2,TERM=xterm-256color,pty:\0"),
            Some(Service::Shell {
                v2: true,
                pty: true,
                command: String::new()
            })
        );
        assert_eq!(
            parse_service(b"shell:echo a:b\0"),
            Some(Service::Shell {
                v2: false,
                pty: false,
                command: "echo a:b".into()
            })
        );
        assert_eq!(
            parse_service(b"exec:tcpdump -w -\0"),
            Some(Service::Exec {
                command: "tcpdump -w -".into()
            })
        );
        assert_eq!(parse_service(b"sync:\0"), Some(Service::Sync));
        assert!(matches!(
            parse_service(b"root:\0"),
            Some(Service::Message(_))
        ));
        assert_eq!(parse_service(b"reverse:forward:tcp:1;tcp:2\0"), None);
        assert_eq!(parse_service(b"shellfish"), None);
        assert_eq!(parse_service(&[0xff, 0xfe, 0]), None);
    }

    #[test]
    fn shell_packets_split_and_merged() {
        let mut bytes = shell_packet(ID_STDIN, b"abc");
        bytes.extend(shell_packet(ID_CLOSE_STDIN, b""));
        let mut p = ShellPacketParser::default();
        let mut got = Vec::new();
        for b in &bytes {
            got.extend(p.push(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(
            got,
            vec![(ID_STDIN, b"abc".to_vec()), (ID_CLOSE_STDIN, vec![])]
        );
        let mut p = ShellPacketParser::default();
        assert_eq!(p.push(&bytes).unwrap().len(), 2);
        let mut p = ShellPacketParser::default();
        assert!(p.push(&[0, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

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
        };
        assert_eq!(
            banner(&profile),
            "device::ro.product.name=px;ro.product.model=Model 1;ro.product.device=dev;features=shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir"
        );
    }
}
