//! SNTP (RFC 4330) both ends: the handset's client query and the sinks' server answer.
//!
//! Must not touch: anything but 48-byte NTP packets over UDP.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::watch;

const PACKET: usize = 48;
/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const UNIX_TO_NTP: u64 = 2_208_988_800;
const MODE_CLIENT: u8 = 3;
const MODE_SERVER: u8 = 4;

fn ntp_now() -> [u8; 8] {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = (d.as_secs() + UNIX_TO_NTP) as u32; // era wrap-around is what NTP does too
    let frac = ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000) as u32;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&secs.to_be_bytes());
    out[4..].copy_from_slice(&frac.to_be_bytes());
    out
}

/// A server's answer to a client packet, or `None` if `req` is not an NTP client request.
pub(super) fn answer(req: &[u8], refid: Ipv4Addr) -> Option<[u8; PACKET]> {
    if req.len() < PACKET || req[0] & 0x07 != MODE_CLIENT {
        return None;
    }
    let version = (req[0] >> 3) & 0x07;
    let mut out = [0u8; PACKET];
    out[0] = (version.clamp(1, 4) << 3) | MODE_SERVER; // leap indicator 0: clock synchronised
    out[1] = 2; // stratum 2: synchronised to a stratum-1 server, whose address is the refid
    out[2] = req[2]; // poll interval: echo the client's
    out[3] = 0xEC; // precision -20 (about a microsecond)
    out[4..8].copy_from_slice(&0x0000_0100u32.to_be_bytes()); // root delay 1/256 s
    out[8..12].copy_from_slice(&0x0000_0200u32.to_be_bytes()); // root dispersion
    out[12..16].copy_from_slice(&refid.octets());
    let now = ntp_now();
    out[16..24].copy_from_slice(&now); // reference timestamp
    out[24..32].copy_from_slice(&req[40..48]); // originate = the client's transmit timestamp
    out[32..40].copy_from_slice(&now); // receive
    out[40..48].copy_from_slice(&ntp_now()); // transmit
    Some(out)
}

pub(super) async fn serve(sock: UdpSocket, refid: Ipv4Addr, shutdown: watch::Receiver<bool>) {
    super::serve_udp(sock, 512, shutdown, "ntp sink", |req| {
        answer(req, refid).map(|reply| reply.to_vec())
    })
    .await;
}

/// One SNTP query from `sock` (the handset's) to `server`; returns the server's stratum.
pub(super) async fn query(sock: UdpSocket, server: SocketAddr) -> io::Result<u8> {
    let mut req = [0u8; PACKET];
    req[0] = (4 << 3) | MODE_CLIENT;
    let sent = ntp_now();
    req[40..48].copy_from_slice(&sent);
    sock.send_to(&req, server).await?;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let (len, peer) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no NTP answer"))??;
        if peer == server && len >= PACKET && buf[0] & 0x07 == MODE_SERVER && buf[24..32] == sent {
            return Ok(buf[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_packet_echoes_originate_and_rejects_non_clients() {
        let mut req = [0u8; PACKET];
        req[0] = 0x23;
        req[40..48].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let a = answer(&req, Ipv4Addr::new(127, 77, 1, 1)).unwrap();
        assert_eq!(a[0] & 7, MODE_SERVER);
        assert_eq!((a[0] >> 3) & 7, 4);
        assert_eq!(a[1], 2);
        assert_eq!(&a[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(u32::from_be_bytes(a[40..44].try_into().unwrap()) > 3_900_000_000);
        let mut server_pkt = req;
        server_pkt[0] = 0x24;
        assert!(answer(&server_pkt, Ipv4Addr::LOCALHOST).is_none());
        assert!(answer(&req[..47], Ipv4Addr::LOCALHOST).is_none());
    }
}
