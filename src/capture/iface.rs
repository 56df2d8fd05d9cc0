//! The `iface:NAME` source: the host captures the phone's traffic on one of its own interfaces — the
//! hotspot the phone joined, a USB-tethering or access-point interface, a lab bridge (PiRogue) — with
//! the host's tcpdump, filtered to the phone's address, streamed to the run directory as it arrives.
//!
//! The phone's address: `--phone-address` (a MAC or an IP), else the Wi-Fi MAC the device reported,
//! else its IPv4 address on `wlan0`. A MAC is the better filter: it keeps the phone's IPv6 and IPv4
//! traffic and survives a DHCP renewal; Android randomises it per network, but `/sys/class/net/wlan0/
//! address` (what tattle reads) is the one in use.
//!
//! Capturing on a host interface needs the capture right on the host (CAP_NET_RAW for tcpdump):
//! tattle never asks for root; when tcpdump is refused, the error says how to grant it.
//!
//! Must not touch: the device (the caller gives the address), the run's order, the analysis.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::process::{Child, ChildStdout, Command};

use super::{
    CaptureError, Input, RunningCapture, Tee, create_private, hex, is_capture_magic, path_for,
    stream_to_file,
};

/// tcpdump writes its file header as soon as it opens the interface (with -U it is flushed).
const START_TIMEOUT: Duration = Duration::from_secs(10);

const GRANT: &str = "give tcpdump the capture right once: `sudo setcap cap_net_raw,cap_net_admin+eip \
\"$(command -v tcpdump)\"` (or run tattle as root, or capture elsewhere and use `--capture file:-`)";

/// How the phone is told apart on the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneAddress {
    Mac(String),
    Ip(IpAddr),
}

impl PhoneAddress {
    /// A MAC (`aa:bb:cc:dd:ee:ff`, any case) or an IP address.
    pub fn parse(text: &str) -> Option<PhoneAddress> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(PhoneAddress::Ip(ip));
        }
        let parts: Vec<&str> = text.split(':').collect();
        let is_mac = parts.len() == 6
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
        is_mac.then(|| PhoneAddress::Mac(text.to_ascii_lowercase()))
    }

    /// The tcpdump filter that keeps this phone's traffic and nothing else.
    pub fn filter(&self) -> String {
        match self {
            PhoneAddress::Mac(mac) => format!("ether host {mac}"),
            PhoneAddress::Ip(ip) => format!("host {ip}"),
        }
    }
}

/// The IPv4 address `ip -o -4 addr show` (Android's toybox/iproute2) gives for `iface`.
pub fn ipv4_of(ip_output: &str, iface: &str) -> Option<IpAddr> {
    ip_output.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let _index = words.next()?;
        let name = words.next()?.trim_end_matches(':');
        if name != iface {
            return None;
        }
        let mut words = words.skip_while(|w| *w != "inet");
        words.next()?;
        let cidr = words.next()?;
        cidr.split('/').next()?.parse().ok()
    })
}

/// Checks before the run that the interface exists on the host and tcpdump is there.
pub(crate) fn check_iface(name: &str) -> Result<PathBuf, CaptureError> {
    if !interface_exists(name) {
        let known = interface_names();
        return Err(CaptureError::Iface {
            name: name.to_string(),
            why: format!(
                "the host has no interface `{name}` (it has: {})",
                if known.is_empty() {
                    "none listed".into()
                } else {
                    known.join(", ")
                }
            ),
        });
    }
    crate::host_tools::find_tcpdump().ok_or_else(|| CaptureError::Iface {
        name: name.to_string(),
        why: "the host's tcpdump captures it, and it is not installed: `sudo apt-get install tcpdump`"
            .into(),
    })
}

/// Asked of the kernel for this process's network namespace (/sys/class/net may show another's).
fn interface_exists(name: &str) -> bool {
    let Ok(c_name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: if_nametoindex(3) reads a NUL-terminated string.
    unsafe { libc::if_nametoindex(c_name.as_ptr()) != 0 }
}

/// The interfaces of this network namespace, for the error that names what exists.
fn interface_names() -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: if_nameindex(3) returns an array ended by a zero entry, freed with if_freenameindex.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return names;
        }
        let mut entry = list;
        while (*entry).if_index != 0 && !(*entry).if_name.is_null() {
            names.push(
                std::ffi::CStr::from_ptr((*entry).if_name)
                    .to_string_lossy()
                    .into_owned(),
            );
            entry = entry.add(1);
        }
        libc::if_freenameindex(list);
    }
    names
}

/// tcpdump's stdout, with the process: killed when the stream is dropped.
struct TcpdumpOutput {
    _child: Child,
    stdout: ChildStdout,
}

impl AsyncRead for TcpdumpOutput {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

/// Starts the host's tcpdump on `name` for `phone` and streams its pcap to `path` and `tee`.
/// Returns once the pcap header arrived, i.e. tcpdump is capturing.
pub(crate) async fn start_iface(
    name: &str,
    phone: &PhoneAddress,
    path: &Path,
    tee: Tee,
) -> Result<RunningCapture, CaptureError> {
    let tcpdump = check_iface(name)?;
    let fail = |why: String| CaptureError::Iface {
        name: name.to_string(),
        why,
    };
    let mut child = Command::new(&tcpdump)
        .args(["-i", name, "-U", "--immediate-mode", "-s", "0", "-w", "-"])
        .arg(phone.filter())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run {}: {e}", tcpdump.display())))?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(fail("tcpdump's output could not be read".into()));
    };
    let mut header = [0u8; 24];
    let mut have = 0;
    let read_header = async {
        while have < header.len() {
            match stdout.read(&mut header[have..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => have += n,
            }
        }
    };
    let timed_out = tokio::time::timeout(START_TIMEOUT, read_header)
        .await
        .is_err();
    if have < header.len() {
        let _ = child.start_kill();
        let mut text = String::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut text)).await;
        let text = tattle_analysis::sanitize(text.trim());
        let lower = text.to_ascii_lowercase();
        return Err(
            if lower.contains("permission") || lower.contains("not permitted") {
                fail(format!("tcpdump may not capture here ({text}); {GRANT}"))
            } else if timed_out {
                fail(format!(
                    "tcpdump sent no pcap header within {START_TIMEOUT:?}"
                ))
            } else {
                fail(format!("tcpdump stopped: {text}"))
            },
        );
    }
    if !is_capture_magic(&header) {
        return Err(CaptureError::NotPcap(hex(&header)));
    }
    // tcpdump's own words ("listening on …", the final counts) are of no use to the run.
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink).await;
    });
    let path = path_for(path, &header);
    let file = create_private(&path).await?;
    let reader = TcpdumpOutput {
        _child: child,
        stdout,
    };
    stream_to_file(
        Input::Reader(Box::pin(reader)),
        header.to_vec(),
        file,
        &path,
        tee,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_make_filters() {
        assert_eq!(
            PhoneAddress::parse("02:1A:11:f0:00:01").unwrap().filter(),
            "ether host 02:1a:11:f0:00:01"
        );
        assert_eq!(
            PhoneAddress::parse("192.168.4.23").unwrap().filter(),
            "host 192.168.4.23"
        );
        assert_eq!(
            PhoneAddress::parse("fe80::1").unwrap().filter(),
            "host fe80::1"
        );
        for bad in [
            "",
            "02:1a:11:f0:00",
            "host 1.2.3.4",
            "02:1a:11:f0:00:zz",
            "1.2.3.4 or 1",
        ] {
            assert_eq!(PhoneAddress::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_wlan0_address_from_ip_addr() {
        // toybox `ip -o -4 addr show` (Android 10+), and iproute2's form on older releases.
        let out = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n\
                   30: wlan0    inet 192.168.4.23/24 brd 192.168.4.255 scope global wlan0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(ipv4_of(out, "wlan0"), "192.168.4.23".parse().ok());
        assert_eq!(ipv4_of(out, "rmnet0"), None);
        assert_eq!(ipv4_of("garbage\n\n30:\n", "wlan0"), None);
    }
}
