//! The handset's network: its own loopback /24, a DNS resolver, HTTP/TLS/NTP sinks for the profile's
//! hosts, and the emitter that plays a firmware's traffic for an event over real sockets.
//!
//! Layout of 127.77.N.0/24 (N picked free at start by binding): the handset itself is 127.77.N.2 (every
//! socket it opens binds there first, so a capture filtered on the /24 holds all of its traffic and only
//! its traffic), the resolver 127.77.N.1:53/udp, and profile host i (sorted by name) 127.77.N.(10+i) with
//! sinks on 80/tcp (HTTP), 443/tcp (TLS + HTTP) and 123/udp (NTP).
//!
//! Owns: sockets of the handset's traffic and of its sinks. Must not touch: the adbd, the shell, the
//! capture (that is `tcpdump`), anything above `vhandset`. Never logs identifier values: actions are
//! named by event key, index and kind; expanded bytes stay on the wire.

mod dns;
mod http;
pub mod keylog;
pub mod loopback_capture;
pub mod netns;
mod ntp;
pub mod phone_link;
mod tls;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::profile::{Action, Context, Request};
use super::{HandsetEvent, Profile, VhandsetError};
use netns::Netns;

/// Every action is local and quick; one that hangs is a bug, not a slow network.
const ACTION_TIMEOUT: Duration = Duration::from_secs(3);
const SINK_CONN_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on concurrent sink connections (other local processes can reach the sinks too).
const MAX_SINK_CONNS: usize = 128;
/// Events waiting to play; the shell raises a handful per scenario.
const QUEUE_DEPTH: usize = 64;
/// Socket owners remembered (an event opens a handful of sockets; ports are reused long after).
const MAX_OWNERS: usize = 4096;

const BIND_HINT: &str = "; binding ports below 1024 (DNS 53, HTTP 80, HTTPS 443, NTP 123) needs root or \
CAP_NET_BIND_SERVICE: run tattle as root, or `sudo setcap cap_net_bind_service+ep \"$(command -v tattle)\"` (and \
`sudo setcap cap_net_raw,cap_net_admin+eip \"$(command -v tcpdump)\"` for the capture), or \
`sudo sysctl -w net.ipv4.ip_unprivileged_port_start=53`";
const IN_USE_HINT: &str = "; no 127.77.N.0/24 is free: 254 handsets are running, or a server listens on all \
addresses (0.0.0.0) on port 53, 80, 123 or 443 (dnsmasq, a web server, ntpd): stop it or bind it to one address";

/// Something on the handset that sits in the path of its apps' TLS connections and learns their
/// secrets (PCAPdroid's mitm add-on while it decrypts): asked once per connection, before the
/// handshake.
pub trait TlsTap: Send + Sync {
    /// Where the secrets of the TLS connection the app of `event` (the firmware event key that opened
    /// the socket) opens to `host` at `ip` go, when the tap intercepts it; `None` leaves it alone.
    fn key_log(
        &self,
        host: &str,
        ip: Ipv4Addr,
        event: Option<&'static str>,
    ) -> Option<Arc<dyn rustls::KeyLog>>;
}

/// Both key logs get every secret (the build's own and a tap's).
#[derive(Debug)]
struct BothKeyLogs(Arc<dyn rustls::KeyLog>, Arc<dyn rustls::KeyLog>);

impl rustls::KeyLog for BothKeyLogs {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        self.0.log(label, client_random, secret);
        self.1.log(label, client_random, secret);
    }

    fn will_log(&self, label: &str) -> bool {
        self.0.will_log(label) || self.1.will_log(label)
    }
}

/// What playing one event did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayReport {
    pub actions: usize,
    pub failed: usize,
}

/// The network of one virtual handset. Cheap to clone (shared state).
#[derive(Clone)]
pub struct HandsetNetwork {
    inner: Arc<Inner>,
}

struct Inner {
    profile: Arc<Profile>,
    stack: Stack,
    n: u8,
    hosts: BTreeMap<String, Ipv4Addr>,
    tls_client: Arc<rustls::ClientConfig>,
    /// The client's key log lines, when the build keeps one (`handset.tls_keylog`).
    key_log: Option<Arc<keylog::KeyLogLines>>,
    /// What sits in the path of the handset's TLS connections now, if anything.
    tls_tap: Mutex<Option<Arc<dyn TlsTap>>>,
    ca_der: CertificateDer<'static>,
    shutdown: watch::Sender<bool>,
    /// Events in flight (emitted, not yet played).
    in_flight: watch::Sender<usize>,
    /// Emitted events, played by one task in emit order.
    queue: mpsc::Sender<(&'static str, Option<HandsetEvent>)>,
    /// Events play one after the other, in emit order, so each event's traffic stays in its step.
    play_lock: tokio::sync::Mutex<()>,
    sinks: Mutex<Vec<JoinHandle<()>>>,
    /// The event whose traffic is playing (events play one at a time, under `play_lock`).
    playing: Mutex<Option<&'static str>>,
    /// Which event opened the handset's socket on each local port: what lets an emulated app on the
    /// handset tell which app sent a packet, as Android tells a VPN app the uid owning a connection.
    owners: Mutex<HashMap<u16, &'static str>>,
}

struct Bound {
    resolver: UdpSocket,
    http: Vec<TcpListener>,
    https: Vec<TcpListener>,
    ntp: Vec<UdpSocket>,
}

/// `127.77.N.last`.
fn addr(n: u8, last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 77, n, last)
}

enum BindFailure {
    Taken(SocketAddr),
    Fatal(VhandsetError),
}

fn classify(addr: SocketAddr, e: io::Error) -> BindFailure {
    match e.kind() {
        io::ErrorKind::AddrInUse => BindFailure::Taken(addr),
        io::ErrorKind::PermissionDenied => BindFailure::Fatal(VhandsetError::Bind {
            addr: addr.to_string(),
            source: e,
            hint: BIND_HINT,
        }),
        _ => BindFailure::Fatal(VhandsetError::Bind {
            addr: addr.to_string(),
            source: e,
            hint: "",
        }),
    }
}

/// Where the handset's sockets are made: its own user + network namespace (the default, no root
/// needed, one loopback per handset), or the host's loopback (root or capabilities needed; used when
/// the host forbids unprivileged namespaces, or when asked with `TATTLE_VHANDSET_NET=host`).
pub enum Stack {
    Private(Netns),
    Host,
}

impl Stack {
    /// The private namespace unless `TATTLE_VHANDSET_NET=host`; falls back to the host when the
    /// namespace cannot be made (the error is kept for the message if the host fails too).
    fn choose() -> (Stack, Option<netns::NetnsError>) {
        if std::env::var("TATTLE_VHANDSET_NET").as_deref() == Ok("host") {
            return (Stack::Host, None);
        }
        match Netns::create() {
            Ok(ns) => (Stack::Private(ns), None),
            Err(e) => {
                tracing::info!(error = %e, "no private network namespace; the handset uses the host's loopback");
                (Stack::Host, Some(e))
            }
        }
    }

    fn socket(&self, ty: libc::c_int) -> io::Result<socket2::Socket> {
        let ty = ty | libc::SOCK_NONBLOCK;
        match self {
            Stack::Host => {
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::from(ty), None)
            }
            Stack::Private(ns) => ns.socket(libc::AF_INET, ty, 0).map(socket2::Socket::from),
        }
    }

    /// A UDP socket bound to `a`. No SO_REUSEADDR: a second handset on the same address fails
    /// instead of sharing it.
    fn udp(&self, a: SocketAddr) -> io::Result<UdpSocket> {
        let s = self.socket(libc::SOCK_DGRAM)?;
        s.bind(&a.into())?;
        UdpSocket::from_std(s.into())
    }

    /// A TCP listener on `a` (with SO_REUSEADDR, as std's `TcpListener::bind` does, so a port left
    /// in TIME_WAIT by a previous handset can be taken again).
    fn tcp_listener(&self, a: SocketAddr) -> io::Result<TcpListener> {
        let s = self.socket(libc::SOCK_STREAM)?;
        s.set_reuse_address(true)?;
        s.bind(&a.into())?;
        s.listen(128)?;
        TcpListener::from_std(s.into())
    }

    fn is_private(&self) -> bool {
        matches!(self, Stack::Private(_))
    }

    /// An unconnected TCP socket for an outgoing connection.
    fn tcp(&self) -> io::Result<TcpSocket> {
        let s = self.socket(libc::SOCK_STREAM)?;
        Ok(TcpSocket::from_std_stream(s.into()))
    }
}

fn bind_all(stack: &Stack, n: u8, host_count: usize) -> Result<Bound, BindFailure> {
    let udp = |a: SocketAddr| stack.udp(a).map_err(|e| classify(a, e));
    let tcp = |a: SocketAddr| stack.tcp_listener(a).map_err(|e| classify(a, e));
    // The resolver's port is the claim on N: bind it first.
    let resolver = udp(SocketAddr::from((addr(n, 1), 53)))?;
    let mut b = Bound {
        resolver,
        http: Vec::new(),
        https: Vec::new(),
        ntp: Vec::new(),
    };
    for i in 0..host_count {
        let ip = addr(n, 10 + i as u8);
        b.http.push(tcp(SocketAddr::from((ip, 80)))?);
        b.https.push(tcp(SocketAddr::from((ip, 443)))?);
        b.ntp.push(udp(SocketAddr::from((ip, 123)))?);
    }
    Ok(b)
}

/// Handsets of one process get different N even in private namespaces, so their captures stay
/// distinguishable when looked at side by side.
static NEXT_N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl HandsetNetwork {
    /// Takes a free 127.77.N.0/24, starts the resolver and sinks, and plays the profile's `boot` traffic.
    pub async fn start(profile: Arc<Profile>) -> Result<HandsetNetwork, VhandsetError> {
        let host_names = profile.hosts();
        let key_log = profile
            .persona
            .tls_keylog
            .is_some()
            .then(|| Arc::new(keylog::KeyLogLines::default()));
        let tls = tls::make(
            &host_names,
            key_log.clone().map(|k| k as Arc<dyn rustls::KeyLog>),
        )?;
        // Start the search at a different N per process and time so parallel tattles rarely collide.
        let seed = std::process::id()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
        // Forking the helper and waiting for its report blocks: not on a runtime worker.
        let (stack, private_failure) = tokio::task::spawn_blocking(Stack::choose)
            .await
            .map_err(|e| VhandsetError::Io(io::Error::other(e.to_string())))?;
        // In a namespace of its own every N is free: take them in turn, so handsets of one process
        // get different ones (their captures stay apart when looked at side by side).
        let seed = match stack {
            Stack::Private(_) => NEXT_N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            Stack::Host => seed,
        };
        let mut found = None;
        let mut last_taken = None;
        for k in 0..254u32 {
            let n = (1 + (seed.wrapping_add(k) % 254)) as u8;
            match bind_all(&stack, n, host_names.len()) {
                Ok(b) => {
                    found = Some((n, b));
                    break;
                }
                Err(BindFailure::Taken(a)) => last_taken = Some(a),
                Err(BindFailure::Fatal(VhandsetError::Bind { addr, source, .. }))
                    if private_failure.is_some()
                        && source.kind() == io::ErrorKind::PermissionDenied =>
                {
                    // Neither way works: say why the namespace failed, with its fix, first.
                    return Err(VhandsetError::NoNetwork {
                        private: private_failure.expect("checked"),
                        addr,
                        host: source,
                    });
                }
                Err(BindFailure::Fatal(e)) => return Err(e),
            }
        }
        let Some((n, bound)) = found else {
            return Err(VhandsetError::Bind {
                addr: last_taken.map_or_else(|| "127.77.*.1:53".into(), |a| a.to_string()),
                source: io::Error::from(io::ErrorKind::AddrInUse),
                hint: IN_USE_HINT,
            });
        };
        let hosts: BTreeMap<String, Ipv4Addr> = host_names
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), addr(n, 10 + i as u8)))
            .collect();
        let (shutdown, _) = watch::channel(false);
        let (in_flight, _) = watch::channel(0usize);
        let (queue, queue_rx) = mpsc::channel(QUEUE_DEPTH);
        let inner = Arc::new(Inner {
            profile,
            stack,
            n,
            hosts: hosts.clone(),
            tls_client: tls.client,
            key_log,
            tls_tap: Mutex::new(None),
            ca_der: tls.ca_der,
            shutdown,
            in_flight,
            queue,
            play_lock: tokio::sync::Mutex::new(()),
            sinks: Mutex::new(Vec::new()),
            playing: Mutex::new(None),
            owners: Mutex::new(HashMap::new()),
        });
        let conns = Arc::new(Semaphore::new(MAX_SINK_CONNS));
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(dns::serve(
            bound.resolver,
            hosts,
            inner.shutdown.subscribe(),
        )));
        for l in bound.http {
            tasks.push(tokio::spawn(accept_loop(
                l,
                None,
                conns.clone(),
                inner.shutdown.subscribe(),
            )));
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server);
        for l in bound.https {
            tasks.push(tokio::spawn(accept_loop(
                l,
                Some(acceptor.clone()),
                conns.clone(),
                inner.shutdown.subscribe(),
            )));
        }
        for s in bound.ntp {
            tasks.push(tokio::spawn(ntp::serve(
                s,
                addr(n, 1),
                inner.shutdown.subscribe(),
            )));
        }
        if let Ok(mut sinks) = inner.sinks.lock() {
            sinks.extend(tasks);
        }
        tracing::info!(profile = %inner.profile.name, private = inner.stack.is_private(), subnet = %format!("127.77.{n}.0/24"), hosts = inner.hosts.len(), "handset network up");
        let net = HandsetNetwork { inner };
        tokio::spawn(net.clone().player(queue_rx));
        net.spawn_play("boot", None);
        Ok(net)
    }

    /// Plays the profile's traffic for `event` in a spawned task; returns at once. Events play in the
    /// order they were emitted.
    pub fn emit(&self, event: HandsetEvent) {
        let key = event.profile_key();
        self.spawn_play(key, Some(event));
    }

    fn spawn_play(&self, key: &'static str, event: Option<HandsetEvent>) {
        if *self.inner.shutdown.borrow() {
            tracing::debug!(event = key, "network shut down; event dropped");
            return;
        }
        self.inner.in_flight.send_modify(|c| *c += 1);
        if self.inner.queue.try_send((key, event)).is_err() {
            self.inner
                .in_flight
                .send_modify(|c| *c = c.saturating_sub(1));
            tracing::warn!(
                event = key,
                "more than {QUEUE_DEPTH} events waiting; event dropped"
            );
        }
    }

    /// Plays queued events one by one until shutdown. Holds only a weak claim on the network's state
    /// through the channel: it ends when the network is shut down.
    async fn player(self, mut rx: mpsc::Receiver<(&'static str, Option<HandsetEvent>)>) {
        let mut sd = self.inner.shutdown.subscribe();
        loop {
            let next = tokio::select! {
                _ = stopped(&mut sd) => break,
                n = rx.recv() => n,
            };
            let Some((key, event)) = next else { break };
            let _guard = InFlight(&self.inner.in_flight);
            tokio::select! {
                _ = stopped(&mut sd) => break,
                _ = async {
                    let _played = self.inner.play_lock.lock().await;
                    self.play_unlocked(key, event.as_ref()).await
                } => {}
            }
        }
        // Whatever is still queued will never play: count it out so `wait_idle` returns.
        rx.close();
        while rx.try_recv().is_ok() {
            self.inner
                .in_flight
                .send_modify(|c| *c = c.saturating_sub(1));
        }
    }

    /// Plays the traffic for `event` and waits for it to finish.
    pub async fn play(&self, event: &HandsetEvent) -> PlayReport {
        let _played = self.inner.play_lock.lock().await;
        self.play_unlocked(event.profile_key(), Some(event)).await
    }

    async fn play_unlocked(&self, key: &'static str, event: Option<&HandsetEvent>) -> PlayReport {
        *self.inner.playing.lock().unwrap_or_else(|e| e.into_inner()) = Some(key);
        let profile = self.inner.profile.clone();
        let ctx = Context::new(&profile, event);
        let actions = profile.actions(key);
        let mut report = PlayReport {
            actions: actions.len(),
            failed: 0,
        };
        for (i, action) in actions.iter().enumerate() {
            let r = tokio::time::timeout(ACTION_TIMEOUT, self.run_action(action, &ctx)).await;
            let err = match r {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(_) => io::Error::new(io::ErrorKind::TimedOut, "action timed out"),
            };
            report.failed += 1;
            // The template source names placeholders, never their values.
            tracing::warn!(profile = %profile.name, event = key, index = i, kind = action.kind(),
                host = action.host().unwrap_or("(templated)"), error = %err, "firmware traffic action failed");
        }
        tracing::debug!(profile = %profile.name, event = key, ?report, "event played");
        *self.inner.playing.lock().unwrap_or_else(|e| e.into_inner()) = None;
        report
    }

    /// Notes that the event playing owns the handset's socket on `port`.
    fn own(&self, port: u16) {
        let playing = *self.inner.playing.lock().unwrap_or_else(|e| e.into_inner());
        let mut owners = self.inner.owners.lock().unwrap_or_else(|e| e.into_inner());
        if owners.len() >= MAX_OWNERS {
            owners.clear();
        }
        match playing {
            Some(key) => owners.insert(port, key),
            None => owners.remove(&port),
        };
    }

    /// The event key (`boot`, `setup`, `contact_added`, `sms_sent`) whose traffic opened the handset's
    /// socket on local `port` of 127.77.N.2, if the handset opened one there.
    pub fn socket_owner(&self, port: u16) -> Option<&'static str> {
        self.inner
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&port)
            .copied()
    }

    /// The TLS key log lines written since the last call (none unless the build keeps a key log).
    pub fn take_key_log(&self) -> Vec<u8> {
        self.inner
            .key_log
            .as_ref()
            .map(|k| k.take())
            .unwrap_or_default()
    }

    /// Puts `tap` in the path of the handset's next TLS connections (`None` takes it away).
    pub fn set_tls_tap(&self, tap: Option<Arc<dyn TlsTap>>) {
        *self.inner.tls_tap.lock().unwrap_or_else(|e| e.into_inner()) = tap;
    }

    /// The client configuration of one TLS connection: the handset's, with a tap's key log beside the
    /// build's own when a tap intercepts it.
    fn tls_config_for(&self, host: &str, stream: &TcpStream) -> Arc<rustls::ClientConfig> {
        let tap = self
            .inner
            .tls_tap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(tap) = tap else {
            return self.inner.tls_client.clone();
        };
        let ip = match stream.peer_addr() {
            Ok(SocketAddr::V4(a)) => *a.ip(),
            _ => return self.inner.tls_client.clone(),
        };
        let event = stream
            .local_addr()
            .ok()
            .and_then(|a| self.socket_owner(a.port()));
        match tap.key_log(host, ip, event) {
            None => self.inner.tls_client.clone(),
            Some(log) => {
                let mut config = (*self.inner.tls_client).clone();
                config.key_log = Arc::new(BothKeyLogs(config.key_log.clone(), log));
                Arc::new(config)
            }
        }
    }

    /// Waits until every emitted event has played.
    pub async fn wait_idle(&self) {
        let mut rx = self.inner.in_flight.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    async fn run_action(&self, action: &Action, ctx: &Context<'_>) -> io::Result<()> {
        match action {
            Action::Dns { name } => {
                let name = name.expand_string(ctx);
                match self.resolve(&name).await {
                    Ok(_) => Ok(()),
                    // A lookup that fails is still a lookup that left the phone: the firmware moves on.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Action::Ntp { host } => {
                let ip = self.resolve(host).await?;
                ntp::query(self.handset_udp()?, SocketAddr::from((ip, 123)))
                    .await
                    .map(|_| ())
            }
            Action::Http(req) => {
                let bytes = request_bytes(req, ctx);
                let mut stream = self.connect(&req.host, 80).await?;
                http::exchange(&mut stream, &bytes).await.map(|_| ())
            }
            Action::Https(req) => {
                let bytes = request_bytes(req, ctx);
                let stream = self.connect(&req.host, 443).await?;
                let name = ServerName::try_from(req.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                let connector =
                    tokio_rustls::TlsConnector::from(self.tls_config_for(&req.host, &stream));
                let mut tls = connector.connect(name, stream).await?;
                http::exchange(&mut tls, &bytes).await?;
                // close_notify, as a well-behaved client does; the answer is already in.
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                Ok(())
            }
        }
    }

    async fn resolve(&self, name: &str) -> io::Result<Ipv4Addr> {
        dns::resolve(name, self.handset_udp()?, self.resolver_addr()).await
    }

    /// A UDP socket of the handset's own, on an ephemeral port of 127.77.N.2.
    fn handset_udp(&self) -> io::Result<UdpSocket> {
        let sock = self.udp_socket(SocketAddr::from((self.handset_ip(), 0)))?;
        self.own(sock.local_addr()?.port());
        Ok(sock)
    }

    /// A UDP socket bound to `addr` in the handset's network (its private namespace, or the host's).
    pub fn udp_socket(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        self.inner.stack.udp(addr)
    }

    /// The handset's private namespace, when it has one (its capture then reads its `lo`).
    pub fn private_netns(&self) -> Option<&Netns> {
        match &self.inner.stack {
            Stack::Private(ns) => Some(ns),
            Stack::Host => None,
        }
    }

    async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let ip = self.resolve(host).await?;
        let sock = self.inner.stack.tcp()?;
        sock.bind(SocketAddr::from((self.handset_ip(), 0)))?;
        self.own(sock.local_addr()?.port());
        sock.connect(SocketAddr::from((ip, port))).await
    }

    /// A TCP connection from an app of the handset to `addr` in the handset's network (its private
    /// namespace, or the host's loopback), as `Socket.connect` makes it.
    pub async fn connect_app(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        self.inner.stack.tcp()?.connect(addr).await
    }

    /// The handset's own address, 127.77.N.2.
    pub fn handset_ip(&self) -> Ipv4Addr {
        addr(self.inner.n, 2)
    }

    /// N of 127.77.N.0/24.
    pub fn subnet_index(&self) -> u8 {
        self.inner.n
    }

    /// The handset's network in CIDR form, `127.77.N.0/24` (what a capture filters on).
    pub fn subnet(&self) -> String {
        format!("127.77.{}.0/24", self.inner.n)
    }

    /// The resolver, 127.77.N.1:53.
    pub fn resolver_addr(&self) -> SocketAddr {
        SocketAddr::from((addr(self.inner.n, 1), 53))
    }

    /// Profile hosts and the addresses the resolver gives them.
    pub fn hosts(&self) -> &BTreeMap<String, Ipv4Addr> {
        &self.inner.hosts
    }

    pub fn profile(&self) -> &Arc<Profile> {
        &self.inner.profile
    }

    /// DER of the private CA the sinks' certificate chains to.
    pub fn ca_certificate_der(&self) -> &[u8] {
        &self.inner.ca_der
    }

    /// Turns true when `shutdown` is called (the handset's `tcpdump` stops on it).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Stops the resolver and the sinks and drops events still queued. Idempotent.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = match self.inner.sinks.lock() {
            Ok(mut s) => s.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for t in tasks {
            if tokio::time::timeout(Duration::from_secs(2), t)
                .await
                .is_err()
            {
                tracing::warn!("a sink did not stop within 2 s");
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.wait_idle()).await;
    }
}

/// Resolves once `rx` says shut down (or its sender is gone). Does not hold the watch borrow across
/// awaits, so futures using it stay `Send`.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

struct InFlight<'a>(&'a watch::Sender<usize>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|c| *c = c.saturating_sub(1));
    }
}

fn request_bytes(req: &Request, ctx: &Context<'_>) -> Vec<u8> {
    let headers: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), v.expand(ctx)))
        .collect();
    let mut body = req.body.expand(ctx);
    if req.gzip_body {
        body = crate::vhandset::profile::Filter::Gzip.apply(&body);
    }
    http::build_request(
        &req.method,
        &req.host,
        &req.path.expand(ctx),
        &headers,
        &body,
    )
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    conns: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "sink accept");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = conns.clone().try_acquire_owned() else {
            tracing::debug!("sink busy: connection dropped");
            continue;
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let served = tokio::time::timeout(SINK_CONN_TIMEOUT, async move {
                match tls {
                    None => {
                        let mut s = stream;
                        http::serve(&mut s).await
                    }
                    Some(acceptor) => {
                        let mut s = acceptor.accept(stream).await?;
                        http::serve(&mut s).await
                    }
                }
            })
            .await;
            if let Ok(Err(e)) = served {
                tracing::debug!(error = %e, "sink connection");
            }
        });
    }
}

/// Answers datagrams on `sock` with `handler` (no reply when it returns `None`) until `shutdown`.
/// Receive and send errors are logged and skipped: one bad peer must not stop a sink.
async fn serve_udp(
    sock: tokio::net::UdpSocket,
    buf_len: usize,
    mut shutdown: watch::Receiver<bool>,
    what: &'static str,
    handler: impl Fn(&[u8]) -> Option<Vec<u8>>,
) {
    let mut buf = vec![0u8; buf_len];
    loop {
        let (len, peer) = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "{what} recv");
                    continue;
                }
            },
        };
        if let Some(reply) = handler(&buf[..len])
            && let Err(e) = sock.send_to(&reply, peer).await
        {
            tracing::debug!(error = %e, "{what} send");
        }
    }
}
