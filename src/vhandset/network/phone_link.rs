//! How the handset's packets look on a phone's interfaces, for its `tcpdump`: the frames its private
//! loopback carries (Ethernet with all-zero addresses) re-framed as a phone's capture would have
//! them — on `wlan0` an Ethernet frame between the phone's Wi-Fi MAC and its access point's, on
//! the `any` device a Linux "cooked" header, v1 (SLL, 16 bytes) up to Android 12 and v2 (SLL2, 20
//! bytes) from Android 13.
//!
//! Sources (read per release; the note docs/research/android-tcpdump-any.md has the commits):
//! AOSP external/tcpdump and external/libpcap — tcpdump 3.9.8/libpcap 0.9.8 on 4.4, 4.5.1/1.5.2 on
//! 5–6, 4.7.4/1.7.4 on 7–8.0, 4.9.x/1.8–1.10.0 on 8.1–12 (DLT_LINUX_SLL for `any`), 4.99.1+/1.10.1+
//! from 13 (tcpdump.c selects DLT_LINUX_SLL2 for a device named `any` when no `-y` is given, and
//! says `data link type LINUX_SLL2`); the headers as pcap/sll.h lays them out and pcap-linux.c
//! fills them (the packet type and the frame's source MAC from the kernel's sockaddr_ll).
//!
//! Must not touch: the sockets (that is `loopback_capture`), the tcpdump command line and pcap file
//! framing (`vhandset::tcpdump`).

use std::net::Ipv4Addr;

/// The link types a phone's tcpdump writes here.
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// The virtual access point's MAC (locally administered): the source of every frame that reaches
/// the phone.
const ACCESS_POINT_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
/// wlan0's interface index in SLL2 headers: a plausible one (a phone's varies with its drivers;
/// the research note's example uses 30).
const WLAN0_IFINDEX: u32 = 30;
/// `ARPHRD_ETHER`: Wi-Fi is an Ethernet-framed netdev.
const ARPHRD_ETHER: u16 = 1;
const PACKET_HOST: u8 = 0;
const PACKET_OUTGOING: u8 = 4;
/// The loopback's Ethernet header, which every frame read from the handset's `lo` starts with.
const LO_HEADER: usize = 14;

/// Which device a `tcpdump -i` names, as the handset has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `wlan0` (and no `-i`: tcpdump then takes the first interface that is up, Wi-Fi here).
    Wlan0,
    /// `-i any` up to Android 12.
    Sll,
    /// `-i any` from Android 13.
    Sll2,
}

impl Framing {
    /// The framing of `interface` on a release with `sdk`.
    pub fn for_capture(interface: Option<&str>, sdk: u32) -> Framing {
        match interface {
            Some("any") if sdk >= 33 => Framing::Sll2,
            Some("any") => Framing::Sll,
            _ => Framing::Wlan0,
        }
    }

    pub fn linktype(self) -> u32 {
        match self {
            Framing::Wlan0 => LINKTYPE_ETHERNET,
            Framing::Sll => LINKTYPE_LINUX_SLL,
            Framing::Sll2 => LINKTYPE_LINUX_SLL2,
        }
    }

    /// What tcpdump prints on stderr as it starts, for this framing on `sdk` with `snaplen`
    /// (tcpdump.c of each version: "capture size" before 4.99, "snapshot length" from it; the
    /// `data link type` line when 4.99.1–4.99.4 pick SLL2 themselves).
    pub fn banner(self, interface: &str, sdk: u32, snaplen: u32) -> String {
        let (name, description) = match self {
            Framing::Wlan0 => ("EN10MB", "Ethernet"),
            Framing::Sll if sdk >= 31 => ("LINUX_SLL", "Linux cooked v1"),
            Framing::Sll => ("LINUX_SLL", "Linux cooked"),
            Framing::Sll2 => ("LINUX_SLL2", "Linux cooked v2"),
        };
        let mut out = String::new();
        if self == Framing::Sll2 {
            out.push_str("tcpdump: data link type LINUX_SLL2\n");
        }
        if sdk < 21 && interface == "any" {
            // libpcap 0.9.8 (4.4) warns; from 1.5.2 the warning is overwritten when the ring is set.
            out.push_str(
                "tcpdump: WARNING: Promiscuous mode not supported on the \"any\" device\n",
            );
        }
        let size = if sdk >= 33 {
            "snapshot length"
        } else {
            "capture size"
        };
        out.push_str(&format!(
            "tcpdump: listening on {interface}, link-type {name} ({description}), {size} {snaplen} bytes\n"
        ));
        out
    }

    /// `-s 0` and the default: 65535 up to Android 6 (tcpdump before 4.7), 262144 after.
    pub fn max_snaplen(sdk: u32) -> u32 {
        if sdk < 24 { 65_535 } else { 262_144 }
    }

    /// The link-layer header for one frame read from the handset's loopback (`lo_frame`), or `None`
    /// for a frame too short to hold the loopback's Ethernet header. The rest of the frame (from the
    /// IP header on) follows it unchanged.
    pub fn header(self, lo_frame: &[u8], handset: Ipv4Addr, phone_mac: [u8; 6]) -> Option<Vec<u8>> {
        if lo_frame.len() < LO_HEADER {
            return None;
        }
        let ethertype = [lo_frame[12], lo_frame[13]];
        let outgoing = is_from(lo_frame, handset);
        let source = if outgoing {
            phone_mac
        } else {
            ACCESS_POINT_MAC
        };
        let pkttype = if outgoing {
            PACKET_OUTGOING
        } else {
            PACKET_HOST
        };
        let mut h = Vec::with_capacity(20);
        match self {
            Framing::Wlan0 => {
                let destination = if outgoing {
                    ACCESS_POINT_MAC
                } else {
                    phone_mac
                };
                h.extend_from_slice(&destination);
                h.extend_from_slice(&source);
                h.extend_from_slice(&ethertype);
            }
            Framing::Sll => {
                h.extend_from_slice(&u16::from(pkttype).to_be_bytes());
                h.extend_from_slice(&ARPHRD_ETHER.to_be_bytes());
                h.extend_from_slice(&6u16.to_be_bytes());
                h.extend_from_slice(&source);
                h.extend_from_slice(&[0, 0]);
                h.extend_from_slice(&ethertype);
            }
            Framing::Sll2 => {
                h.extend_from_slice(&ethertype);
                h.extend_from_slice(&[0, 0]);
                h.extend_from_slice(&WLAN0_IFINDEX.to_be_bytes());
                h.extend_from_slice(&ARPHRD_ETHER.to_be_bytes());
                h.push(pkttype);
                h.push(6);
                h.extend_from_slice(&source);
                h.extend_from_slice(&[0, 0]);
            }
        }
        Some(h)
    }

    /// Bytes the loopback's header took that this framing's header replaces.
    pub const LO_HEADER: usize = LO_HEADER;
}

/// Whether an IPv4 frame of the loopback was sent by the handset (its source is the handset's
/// address); everything else reached it.
fn is_from(lo_frame: &[u8], handset: Ipv4Addr) -> bool {
    lo_frame.len() >= LO_HEADER + 20
        && lo_frame[12..14] == [0x08, 0x00]
        && lo_frame[LO_HEADER + 12..LO_HEADER + 16] == handset.octets()
}

/// A MAC written `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo_frame(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        f.extend_from_slice(&ip);
        f
    }

    const PHONE: [u8; 6] = [0x02, 0, 0, 0xaa, 0xbb, 0xcc];

    #[test]
    fn any_is_cooked_v1_up_to_12_and_v2_from_13() {
        assert_eq!(Framing::for_capture(Some("any"), 19), Framing::Sll);
        assert_eq!(Framing::for_capture(Some("any"), 32), Framing::Sll);
        assert_eq!(Framing::for_capture(Some("any"), 33), Framing::Sll2);
        assert_eq!(Framing::for_capture(Some("wlan0"), 34), Framing::Wlan0);
        assert_eq!(Framing::for_capture(None, 34), Framing::Wlan0);
        assert_eq!(Framing::max_snaplen(19), 65_535);
        assert_eq!(Framing::max_snaplen(24), 262_144);
    }

    #[test]
    fn headers_as_pcap_linux_fills_them() {
        let handset = Ipv4Addr::new(127, 77, 9, 2);
        let out = lo_frame([127, 77, 9, 2], [127, 77, 9, 10]);
        let back = lo_frame([127, 77, 9, 10], [127, 77, 9, 2]);
        // SLL2, outgoing: protocol, reserved, ifindex 30, ARPHRD_ETHER, PACKET_OUTGOING, 6, the
        // phone's MAC (the frame's source), two zero bytes.
        assert_eq!(
            Framing::Sll2.header(&out, handset, PHONE).unwrap(),
            [
                8, 0, 0, 0, 0, 0, 0, 30, 0, 1, 4, 6, 2, 0, 0, 0xaa, 0xbb, 0xcc, 0, 0
            ]
        );
        // SLL, incoming: PACKET_HOST, the access point's MAC.
        assert_eq!(
            Framing::Sll.header(&back, handset, PHONE).unwrap(),
            [0, 0, 0, 1, 0, 6, 2, 0, 0x5e, 0x10, 0, 1, 0, 0, 8, 0]
        );
        let eth = Framing::Wlan0.header(&out, handset, PHONE).unwrap();
        assert_eq!(&eth[..6], ACCESS_POINT_MAC);
        assert_eq!(&eth[6..12], PHONE);
        assert_eq!(Framing::Wlan0.header(&[0; 5], handset, PHONE), None);
    }

    #[test]
    fn banners_per_release() {
        assert_eq!(
            Framing::Sll2.banner("any", 34, 262_144),
            "tcpdump: data link type LINUX_SLL2\ntcpdump: listening on any, link-type LINUX_SLL2 (Linux cooked v2), snapshot length 262144 bytes\n"
        );
        assert_eq!(
            Framing::Sll.banner("any", 31, 262_144),
            "tcpdump: listening on any, link-type LINUX_SLL (Linux cooked v1), capture size 262144 bytes\n"
        );
        assert!(
            Framing::Sll
                .banner("any", 19, 65_535)
                .starts_with("tcpdump: WARNING: Promiscuous")
        );
        assert_eq!(parse_mac("02:00:00:AA:bb:cc"), Some(PHONE));
        assert_eq!(parse_mac("02:00:00:aa:bb"), None);
    }
}
