//! CaptureService on the handset: the "VPN" (the packet socket on the handset's private loopback),
//! the TCP exporter (TCPDumper) and the export of each packet the handset's apps send or receive.
//!
//! PCAPdroid's VPN sees the IP packets of the apps routed through it, never its own exporter
//! connection (that socket is `protect()`ed, and the dumper's BPF `not (host C and tcp port P)`
//! excludes it). Here the capture reads the handset's private `lo` and keeps the IPv4 packets from or
//! to the handset's 127.77.N.0/24, minus the collector's TCP port; the exporter's connection to
//! `127.0.0.1` goes through `adb reverse`, i.e. through the adbd, which is not in that namespace at
//! all. Each packet's owner (uid and app name, for `app_filter` and the trailer) is the app of the
//! firmware event that opened the handset's socket (`HandsetNetwork::socket_owner`): setup and boot
//! traffic is "Android" (uid 1000), a saved contact's traffic the contacts app, a sent SMS's the
//! messaging app. Packets the handset cannot attribute are uid -1 ("Unknown") and never pass an
//! `app_filter` (VpnService.addAllowedApplication routes only the listed apps).
//!
//! TCPDumper (pcap_dump/TCPDumper.java): connect with a 1000 ms timeout on the dumper thread; a
//! failure is reported and stops the capture (CaptureService.dumpWork → reportError →
//! stopPacketLoop). The header (`getPcapHeader`) goes out with the first buffer; a write error stops
//! the capture; the stop closes the socket.
//!
//! Must not touch: the record format (`export`), the windows and the Intent (`super`), the handset's
//! sockets other than its own capture and exporter.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::export::{self, Owner};
use super::mitm::{self, Mitm};
use super::{DumpMode, EndedCapture, Settings, Stop, VPN_SETUP_FAILED, app_not_found};
use crate::vhandset::network::loopback_capture::LoopbackCapture;
use crate::vhandset::network::{HandsetNetwork, stopped};
use crate::vhandset::shell::Handset;

/// `mSocket.connect(mServer, 1000)`.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Largest frame on a loopback: 65536-byte MTU and the 14-byte Ethernet header.
const LO_MAX_FRAME: usize = 65_550;

/// The app a firmware event's traffic belongs to, by the event key that opened the socket.
pub(super) struct App {
    pub uid: i32,
    pub package: &'static str,
    /// The app's label (AppsResolver names uid 1000 "Android").
    pub label: &'static str,
}

pub(super) fn app_of_event(event: &str) -> Option<App> {
    Some(match event {
        "boot" | "setup" => App {
            uid: 1000,
            package: "android",
            label: "Android",
        },
        "contact_added" => App {
            uid: 10045,
            package: "com.android.contacts",
            label: "Contacts",
        },
        "sms_sent" => App {
            uid: 10067,
            package: "com.android.messaging",
            label: "Messaging",
        },
        _ => return None,
    })
}

fn toast(handset: &Handset, text: impl Into<String>) {
    handset.state().pcapdroid.toast(text);
}

/// The exporter's socket: a reverse connection (a duplex stream) or a socket in the handset's network;
/// `Dead` when the adb server could not reach the host (adbd accepted the phone-side connection, then
/// closed it: the first write fails).
enum Exporter {
    Stream(Box<dyn AsyncWrite + Unpin + Send>),
    Dead,
}

/// The libcore text of a refused connect (IoBridge: "failed to connect to /ADDR (port P) … after
/// 1000ms: isConnected failed: ECONNREFUSED (Connection refused)"), derived from its format.
fn refused(addr: &SocketAddr) -> String {
    format!(
        "failed to connect to /{} (port {}) after 1000ms: isConnected failed: ECONNREFUSED (Connection refused)",
        addr.ip(),
        addr.port()
    )
}

/// CaptureService from `onStartCommand` to the end of the capture.
pub(super) async fn run(
    handset: Arc<Handset>,
    settings: Settings,
    previous: Option<JoinHandle<()>>,
    mut stop: watch::Receiver<Stop>,
) {
    if let Some(p) = previous {
        let _ = p.await;
    }
    // A capture with no private network cannot have its "VPN": establish() fails.
    let Some(network) = handset.network().cloned() else {
        toast(&handset, VPN_SETUP_FAILED);
        return;
    };
    let Some(ns) = network.private_netns() else {
        tracing::info!("PCAPdroid: the handset has no private network namespace; no VPN");
        toast(&handset, VPN_SETUP_FAILED);
        return;
    };
    // Builder.addAllowedApplication throws NameNotFoundException for a package not installed.
    if !settings.app_filter.is_empty() {
        let installed = crate::vhandset::shell::commands::installed_packages(&handset);
        if settings
            .app_filter
            .iter()
            .any(|p| !installed.iter().any(|i| i == p))
        {
            toast(&handset, app_not_found(&settings.app_filter));
            return;
        }
    }
    // onStartCommand: the exporter is set up first, then the mitm add-on is bound; a failed bind
    // (no add-on) aborts the start before any dumper thread runs.
    if settings.tls_decryption
        && super::installed(&handset)
            .and_then(|s| s.mitm_addon.as_ref())
            .is_none()
    {
        toast(&handset, mitm::MITM_START_FAILED);
        return;
    }
    let collector = if settings.dump_mode == DumpMode::TcpExporter {
        // InetAddress.getByName on an IP literal (a host name was refused as remote before).
        let Ok(ip) = settings.collector_address.parse::<IpAddr>() else {
            toast(
                &handset,
                format!(
                    "Unable to resolve host \"{}\": No address associated with hostname",
                    settings.collector_address
                ),
            );
            return;
        };
        // new InetSocketAddress throws for a port out of range: the service crashes (inferred).
        let Ok(port) = u16::try_from(settings.collector_port) else {
            handset.state().pcapdroid.log(format!(
                "java.lang.IllegalArgumentException: port out of range:{}",
                settings.collector_port
            ));
            return;
        };
        Some(SocketAddr::new(ip, port))
    } else {
        None
    };
    let mut capture = match LoopbackCapture::open(ns, None) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "PCAPdroid: cannot open the handset's capture");
            toast(&handset, VPN_SETUP_FAILED);
            return;
        }
    };
    tracing::info!(
        exporter = collector.is_some(),
        tls = settings.tls_decryption,
        "PCAPdroid capture started"
    );
    // In VPN mode the add-on sits in the path of the connections the decryption list matches;
    // `MitmReceiver`'s constructor deletes the last capture's cached key log.
    let tls_tap = (settings.tls_decryption && !settings.root_capture).then(|| {
        Arc::new(Mitm::new(
            settings.decryption_rules.clone().unwrap_or_default(),
            settings.app_filter.clone(),
        ))
    });
    if settings.tls_decryption {
        let _ = handset.state().fs.remove(mitm::KEYLOG_CACHE);
    }
    if let Some(tap) = &tls_tap {
        network.set_tls_tap(Some(tap.clone()));
    }
    {
        let mut st = handset.state();
        if st.pcapdroid.main.alive {
            st.pcapdroid.main.saw_started = true;
        }
    }
    let mut exporter = match collector {
        None => None,
        Some(addr) => match connect(&handset, &network, addr).await {
            Ok(e) => Some(e),
            Err(message) => {
                toast(&handset, message);
                tracing::info!("PCAPdroid: the exporter could not connect; capture stopped");
                return;
            }
        },
    };
    let snaplen = export::effective_snaplen(settings.snaplen);
    let extensions = settings.dump_extensions;
    let mut buffer = export::Buffer::new(u64::try_from(settings.max_dump_size).unwrap_or(0));
    let mut header_sent = false;
    let mut shutdown = network.shutdown_signal();
    let mut frame = vec![0u8; LO_MAX_FRAME];
    let subnet = network.handset_ip().octets();
    let handset_ip = network.handset_ip();

    // Writes one exported buffer (the header first, once); false when the write failed and the
    // capture must stop.
    async fn send(
        exporter: &mut Option<Exporter>,
        header_sent: &mut bool,
        header: [u8; 24],
        data: Vec<u8>,
        handset: &Handset,
    ) -> bool {
        let Some(e) = exporter else {
            return true;
        };
        let result = match e {
            Exporter::Dead => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
            Exporter::Stream(s) => {
                // dumpData: getPcapHeader() goes out just before the first buffer.
                let mut bytes = Vec::with_capacity(data.len() + header.len());
                if !*header_sent {
                    bytes.extend_from_slice(&header);
                }
                bytes.extend_from_slice(&data);
                match s.write_all(&bytes).await {
                    Ok(()) => s.flush().await,
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => {
                *header_sent = true;
                true
            }
            Err(e) => {
                // dumpWork: reportError(e.getLocalizedMessage()), then stopPacketLoop.
                toast(handset, e.to_string());
                false
            }
        }
    }
    let header = export::file_header(snaplen, extensions);

    let end = loop {
        let deadline = buffer.deadline();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = capture.next(&mut frame) => {
                let f = match r {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(error = %e, "PCAPdroid: capture read failed");
                        break Stop::Flush;
                    }
                };
                let Some(ip) = frame.get(14..f.captured) else { continue };
                let Some(owner) = accept(&frame[..f.captured], ip, subnet, handset_ip, collector, &network, &settings.app_filter) else {
                    continue;
                };
                let rec = export::record(ip, f.time, &owner, snaplen, extensions);
                if let Some(full) = buffer.push(&rec)
                    && !send(&mut exporter, &mut header_sent, header, full, &handset).await
                {
                    break Stop::Kill;
                }
                if let Some(due) = buffer.check(Instant::now())
                    && !send(&mut exporter, &mut header_sent, header, due, &handset).await
                {
                    break Stop::Kill;
                }
            }
            _ = sleep => {
                if let Some(due) = buffer.check(Instant::now())
                    && !send(&mut exporter, &mut header_sent, header, due, &handset).await
                {
                    break Stop::Kill;
                }
            }
            how = stop_requested(&mut stop) => break how,
            _ = stopped(&mut shutdown) => break Stop::Kill,
        }
    };
    if end == Stop::Flush
        && let Some(rest) = buffer.take(Instant::now())
    {
        send(&mut exporter, &mut header_sent, header, rest, &handset).await;
    }
    // stopDumper: close the socket (the host sees EOF). A killed process just drops it.
    if let Some(Exporter::Stream(mut s)) = exporter
        && end == Stop::Flush
    {
        let _ = s.shutdown().await;
    }
    if let Some(tap) = tls_tap {
        network.set_tls_tap(None);
        // logMasterSecret in pcap mode: the secrets went to cache/SSLKEYLOG.txt (pcapng, which would
        // carry them in the dump, needs the licence the handset's PCAPdroid lacks).
        let lines = tap.take();
        if !lines.is_empty() && end == Stop::Flush {
            let now = crate::vhandset::shell::now_secs();
            let mut st = handset.state();
            let written = st
                .fs
                .mkdir_all("/data/data/com.emanuelef.remote_capture/cache")
                .and_then(|()| st.fs.write(mitm::KEYLOG_CACHE, lines, 0o600, now));
            if let Err(e) = written {
                tracing::warn!(?e, "PCAPdroid: the key log could not be cached");
            }
        }
    }
    super::capture_ended(
        &handset,
        EndedCapture {
            api_capture: true,
            decrypting: settings.tls_decryption,
            sslkeylog_name: settings.sslkeylog_name.clone(),
        },
    );
    tracing::info!(?end, "PCAPdroid capture ended");
}

/// How the capture was asked to end (a dropped service is a killed one).
async fn stop_requested(rx: &mut watch::Receiver<Stop>) -> Stop {
    match rx.wait_for(|s| *s != Stop::Running).await {
        Ok(s) => *s,
        Err(_) => Stop::Kill,
    }
}

/// TCPDumper.startDumper: `127.0.0.1` is the phone's loopback, where adbd listens for `adb reverse`;
/// any other (local) address is a socket in the handset's own network.
async fn connect(
    handset: &Handset,
    network: &HandsetNetwork,
    addr: SocketAddr,
) -> Result<Exporter, String> {
    if addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST) {
        use crate::vhandset::adbd::ReverseError;
        match tokio::time::timeout(CONNECT_TIMEOUT, handset.reverses().connect_tcp(addr.port()))
            .await
        {
            Ok(Ok(stream)) => Ok(Exporter::Stream(Box::new(stream))),
            Ok(Err(ReverseError::HostRefused(_))) => Ok(Exporter::Dead),
            Ok(Err(ReverseError::NotForwarded(_))) => Err(refused(&addr)),
            Err(_) => Err(format!(
                "failed to connect to /{} (port {}) after 1000ms",
                addr.ip(),
                addr.port()
            )),
        }
    } else {
        match tokio::time::timeout(CONNECT_TIMEOUT, network.connect_app(addr)).await {
            Ok(Ok(stream)) => Ok(Exporter::Stream(Box::new(stream))),
            Ok(Err(_)) => Err(refused(&addr)),
            Err(_) => Err(format!(
                "failed to connect to /{} (port {}) after 1000ms",
                addr.ip(),
                addr.port()
            )),
        }
    }
}

/// Whether PCAPdroid would see and dump this frame, and whose packet it is: IPv4 from or to the
/// handset's /24, not the exporter's own connection, from an app `app_filter` lets through.
fn accept(
    frame: &[u8],
    ip: &[u8],
    subnet: [u8; 4],
    handset_ip: Ipv4Addr,
    collector: Option<SocketAddr>,
    network: &HandsetNetwork,
    app_filter: &[String],
) -> Option<Owner> {
    if frame.get(12..14) != Some(&[0x08, 0x00]) || ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let in_subnet = |a: Ipv4Addr| a.octets()[..3] == subnet[..3];
    if !in_subnet(src) && !in_subnet(dst) {
        return None;
    }
    let proto = ip[9];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let ports = match proto {
        6 | 17 => ip.get(ihl..ihl + 4).map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        }),
        _ => None,
    };
    // The dumper's BPF: not (host C and tcp port P).
    if let (Some(c), Some((sp, dp))) = (collector, ports)
        && proto == 6
        && (IpAddr::V4(src) == c.ip() || IpAddr::V4(dst) == c.ip())
        && (sp == c.port() || dp == c.port())
    {
        return None;
    }
    let local_port = ports.and_then(|(sp, dp)| {
        if src == handset_ip {
            Some(sp)
        } else if dst == handset_ip {
            Some(dp)
        } else {
            None
        }
    });
    let app = local_port
        .and_then(|p| network.socket_owner(p))
        .and_then(app_of_event);
    if !app_filter.is_empty()
        && !app
            .as_ref()
            .is_some_and(|a| app_filter.iter().any(|f| f == a.package))
    {
        return None;
    }
    Some(match app {
        Some(a) => Owner {
            uid: a.uid,
            name: a.label.to_string(),
        },
        None => Owner::unknown(),
    })
}
