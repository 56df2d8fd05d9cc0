//! PCAPdroid's pcap export, byte for byte: the 24-byte file header, the records, the PCAPdroid trailer
//! of `dump_extensions`, the snaplen rule and when a buffer is handed to the exporter.
//!
//! Sources (PCAPdroid v1.9.1, `fc9fe0c5`; docs/research/pcapdroid-api.md §5): `app/src/main/jni/core/
//! pcap_dump.c` (`get_pcap_file_header`, `dump_packet_pcap`, `alloc_dump_buffer`,
//! `export_dump_buffer`, `pcap_check_export`, `MAX_PCAP_DUMP_DELAY_MS`, `PCAP_BUFFER_SIZE`),
//! `pcap_dump.h` (`pcapdroid_trailer_t`, `PCAPDROID_TRAILER_MAGIC`), `pcapdroid.c` (the snaplen
//! clamp in `pd_run`), `pcapdroid.h` (`VPN_BUFFER_SIZE`), `crc32.c` (the standard CRC-32). Integers
//! are the phone's native order, little-endian on every Android ABI, except the trailer's magic and
//! uid (`htonl`).
//!
//! pcapng (`pcapng_format`) is not produced: it is a paid feature, and without a licence v1.9.1
//! silently dumps pcap instead (`CaptureSettings`: `pcapng_format = getBool(...) &&
//! isPurchased(PCAPNG_SKU)`), which is what an emulated PCAPdroid without a licence does.
//!
//! Must not touch: sockets, the capture, the clock (times are given).

use std::time::{Duration, SystemTime};

/// `LINKTYPE_RAW`: IPv4/IPv6 packets with no link header (the dump without extensions).
pub const LINKTYPE_RAW: u32 = 101;
/// `LINKTYPE_ETHERNET`: with `dump_extensions`, each packet gets a bogus Ethernet header.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `PCAPDROID_TRAILER_MAGIC` (pcap_dump.h), written big-endian.
pub const TRAILER_MAGIC: u32 = 0x0107_2021;
/// `sizeof(pcapdroid_trailer_t)`: magic 4 + uid 4 + appname 20 + fcs 4, packed.
pub const TRAILER_LEN: usize = 32;
/// `VPN_BUFFER_SIZE` (pcapdroid.h): the largest and the default snaplen in VPN mode.
pub const VPN_SNAPLEN: u32 = 32768;
/// `MAX_PCAP_DUMP_DELAY_MS`: a buffer waits at most this long after the previous export.
pub const MAX_DUMP_DELAY: Duration = Duration::from_millis(1000);
/// `PCAP_BUFFER_SIZE`: records accumulate here between exports.
pub const BUFFER_SIZE: usize = 512 * 1024;
const ETH_HEADER: usize = 14;

/// The snaplen in effect (`pd_run`): the `snaplen` extra when it is in 1..=max, else the max.
pub fn effective_snaplen(requested: i32) -> u32 {
    if requested <= 0 || requested as u32 > VPN_SNAPLEN {
        VPN_SNAPLEN
    } else {
        requested as u32
    }
}

/// `get_pcap_file_header`: magic 0xa1b2c3d4 (microseconds), 2.4, zone 0, sigfigs 0, snaplen, link
/// type RAW (or ETHERNET with extensions).
pub fn file_header(snaplen: u32, extensions: bool) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    let link = if extensions {
        LINKTYPE_ETHERNET
    } else {
        LINKTYPE_RAW
    };
    h[20..24].copy_from_slice(&link.to_le_bytes());
    h
}

/// Who sent a packet, as the trailer carries it: the uid and the app's name (`getApplicationByUid`:
/// the AppDescriptor's name, the app's label; AppsResolver names uid -1 "Unknown" and uid 1000
/// "Android"), cut to 19 bytes plus NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub uid: i32,
    pub name: String,
}

impl Owner {
    /// `Utils.UID_UNKNOWN` (-1), which AppsResolver names `unknown_app` ("Unknown").
    pub fn unknown() -> Owner {
        Owner {
            uid: -1,
            name: "Unknown".into(),
        }
    }
}

/// `dump_packet_pcap`: one record for the IP packet `packet` (16-byte header, then the bytes).
///
/// With extensions: a 14-byte Ethernet header (both MACs zero, ethertype from the IP version nibble),
/// the packet, zero padding so that the trailer starts 4-byte aligned (`(-(14 + len)) & 3`), then the
/// 32-byte trailer whose CRC-32 covers everything from the Ethernet header to the trailer's `appname`.
/// When that would exceed the snaplen the packet is written as plain IP without a trailer, as
/// PCAPdroid does (and warns once).
pub fn record(
    packet: &[u8],
    time: SystemTime,
    owner: &Owner,
    snaplen: u32,
    extensions: bool,
) -> Vec<u8> {
    let pktlen = packet.len();
    let mut incl_len = pktlen.min(snaplen as usize);
    let mut padding = 0;
    let mut overhead = 0;
    let mut with_trailer = false;
    if extensions {
        padding = (ETH_HEADER + incl_len).wrapping_neg() & 0x3;
        overhead = ETH_HEADER + padding + TRAILER_LEN;
        if incl_len + overhead <= snaplen as usize {
            incl_len += overhead;
            with_trailer = true;
        } else {
            padding = 0;
            overhead = 0;
        }
    }
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(16 + incl_len);
    out.extend_from_slice(&(since.as_secs() as u32).to_le_bytes());
    out.extend_from_slice(&since.subsec_micros().to_le_bytes());
    out.extend_from_slice(&(incl_len as u32).to_le_bytes());
    out.extend_from_slice(&((pktlen + overhead) as u32).to_le_bytes());
    let frame_start = out.len();
    let mut offset = 0;
    if with_trailer {
        out.extend_from_slice(&[0u8; 12]);
        let ethertype: u16 = if packet.first().is_some_and(|b| b >> 4 == 4) {
            0x0800
        } else {
            0x86dd
        };
        out.extend_from_slice(&ethertype.to_be_bytes());
        offset = ETH_HEADER;
    }
    let copy = pktlen.min(incl_len - offset);
    out.extend_from_slice(&packet[..copy]);
    if with_trailer {
        out.extend(std::iter::repeat_n(0u8, padding));
        out.extend_from_slice(&TRAILER_MAGIC.to_be_bytes());
        out.extend_from_slice(&owner.uid.to_be_bytes());
        // strncpy(buf, appname, 19) into a zeroed 20-byte field.
        let mut name = [0u8; 20];
        let bytes = owner.name.as_bytes();
        let n = bytes.len().min(19);
        name[..n].copy_from_slice(&bytes[..n]);
        out.extend_from_slice(&name);
        let fcs = crc32(&out[frame_start..]);
        out.extend_from_slice(&fcs.to_le_bytes());
    }
    out
}

/// The export buffer and its timing (`alloc_dump_buffer`, `pcap_check_export`,
/// `export_dump_buffer`): records accumulate; the buffer is handed on at the first check at least
/// `MAX_DUMP_DELAY` after the previous export (the first export happens at once: `last_dump_ms`
/// starts at 0), when the next record would not fit, and when the capture stops. With `max_dump_size`
/// the dump stops for good once it would reach that many bytes.
#[derive(Debug)]
pub struct Buffer {
    data: Vec<u8>,
    last_export: Option<std::time::Instant>,
    dumped: u64,
    max_dump_size: u64,
    full: bool,
}

impl Buffer {
    pub fn new(max_dump_size: u64) -> Buffer {
        Buffer {
            data: Vec::new(),
            last_export: None,
            dumped: 0,
            max_dump_size,
            full: false,
        }
    }

    /// Adds a record; returns a buffer to export first when it would not have fitted.
    pub fn push(&mut self, record: &[u8]) -> Option<Vec<u8>> {
        if self.full {
            return None;
        }
        let mut out = None;
        if BUFFER_SIZE - self.data.len() <= record.len() {
            out = self.take(std::time::Instant::now());
        }
        if BUFFER_SIZE - self.data.len() <= record.len() {
            return out;
        }
        if self.max_dump_size > 0 && self.dumped + record.len() as u64 >= self.max_dump_size {
            self.full = true;
            return out;
        }
        self.data.extend_from_slice(record);
        self.dumped += record.len() as u64;
        out
    }

    /// `pcap_check_export`: the buffer, when one is waiting and the last export is long enough ago.
    pub fn check(&mut self, now: std::time::Instant) -> Option<Vec<u8>> {
        let due = self
            .last_export
            .is_none_or(|at| now.duration_since(at) >= MAX_DUMP_DELAY);
        if due { self.take(now) } else { None }
    }

    /// When the waiting buffer is due (None: nothing waits).
    pub fn deadline(&self) -> Option<std::time::Instant> {
        if self.data.is_empty() || self.full {
            return None;
        }
        Some(
            self.last_export
                .map_or_else(std::time::Instant::now, |at| at + MAX_DUMP_DELAY),
        )
    }

    /// `export_dump_buffer`: whatever waits (at the stop, or when full). Nothing once the max dump
    /// size was reached.
    pub fn take(&mut self, now: std::time::Instant) -> Option<Vec<u8>> {
        if self.full || self.data.is_empty() {
            return None;
        }
        self.last_export = Some(now);
        Some(std::mem::take(&mut self.data))
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's): what PCAPdroid's `crc32.c` (slicing-by-4 after
/// stbrumme's Crc32.cpp, initial value 0) computes.
pub fn crc32(data: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    }
    const TABLE: [u32; 256] = table();
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        for (i, b) in p.iter_mut().enumerate().skip(1) {
            *b = i as u8;
        }
        p
    }

    #[test]
    fn header_fields_little_endian() {
        let h = file_header(32768, false);
        assert_eq!(
            h,
            [
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x80, 0, 0, 101,
                0, 0, 0
            ]
        );
        assert_eq!(
            &file_header(1500, true)[16..24],
            &[0xdc, 5, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(effective_snaplen(0), 32768);
        assert_eq!(effective_snaplen(-5), 32768);
        assert_eq!(effective_snaplen(70000), 32768);
        assert_eq!(effective_snaplen(96), 96);
    }

    #[test]
    fn raw_record_framing_and_snaplen() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let p = ipv4(60);
        let r = record(&p, t, &Owner::unknown(), 32768, false);
        assert_eq!(&r[0..4], &1_700_000_000u32.to_le_bytes());
        assert_eq!(&r[4..8], &123_456u32.to_le_bytes());
        assert_eq!(&r[8..12], &60u32.to_le_bytes());
        assert_eq!(&r[12..16], &60u32.to_le_bytes());
        assert_eq!(&r[16..], &p[..]);
        // Cut to the snaplen: incl_len is the snaplen, orig_len the packet's.
        let r = record(&p, t, &Owner::unknown(), 40, false);
        assert_eq!(&r[8..16], &[40, 0, 0, 0, 60, 0, 0, 0]);
        assert_eq!(r.len(), 16 + 40);
    }

    #[test]
    fn trailer_layout_magic_uid_name_crc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        let p = ipv4(61); // 14 + 61 = 75: 1 byte of padding to 76
        let owner = Owner {
            uid: 10067,
            name: "A name longer than nineteen".into(),
        };
        let r = record(&p, t, &owner, 32768, true);
        let incl = 14 + 61 + 1 + 32;
        assert_eq!(&r[8..12], &(incl as u32).to_le_bytes());
        assert_eq!(&r[12..16], &(incl as u32).to_le_bytes());
        let frame = &r[16..];
        assert_eq!(frame.len(), incl);
        assert_eq!(&frame[..12], &[0u8; 12], "both MAC addresses are zero");
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        assert_eq!(&frame[14..75], &p[..]);
        assert_eq!(frame[75], 0, "padding");
        let trailer = &frame[76..];
        assert_eq!(&trailer[0..4], &[0x01, 0x07, 0x20, 0x21]);
        assert_eq!(&trailer[4..8], &10067i32.to_be_bytes());
        assert_eq!(&trailer[8..27], b"A name longer than ");
        assert_eq!(trailer[27], 0, "19 characters and a NUL");
        let fcs = u32::from_le_bytes(trailer[28..32].try_into().unwrap());
        // Checked against flate2's (zlib's) CRC-32, an implementation of its own.
        let mut crc = flate2::Crc::new();
        crc.update(&frame[..incl - 4]);
        assert_eq!(fcs, crc.sum());
        // IPv6 gets 0x86DD; the unknown owner is uid -1, "Unknown".
        let mut p6 = ipv4(40);
        p6[0] = 0x60;
        let r = record(&p6, t, &Owner::unknown(), 32768, true);
        assert_eq!(&r[16 + 12..16 + 14], &[0x86, 0xdd]);
        let trailer = &r[r.len() - 32..];
        assert_eq!(&trailer[4..8], &[0xff; 4]);
        assert_eq!(&trailer[8..28], b"Unknown\0\0\0\0\0\0\0\0\0\0\0\0\0");
        // A trailer that would pass the snaplen is left out: raw IP in an Ethernet file.
        let r = record(&ipv4(100), t, &owner, 120, true);
        assert_eq!(&r[8..16], &[100, 0, 0, 0, 100, 0, 0, 0]);
        assert_eq!(r[16], 0x45);
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn buffer_exports_first_at_once_then_at_most_each_second() {
        let start = std::time::Instant::now();
        let mut b = Buffer::new(0);
        assert_eq!(b.check(start), None, "nothing waits");
        assert!(b.push(b"one").is_none());
        assert_eq!(
            b.check(start).as_deref(),
            Some(&b"one"[..]),
            "first at once"
        );
        b.push(b"two");
        assert_eq!(b.check(start + Duration::from_millis(999)), None);
        assert_eq!(b.deadline(), Some(start + MAX_DUMP_DELAY));
        assert_eq!(
            b.check(start + Duration::from_millis(1000)).as_deref(),
            Some(&b"two"[..])
        );
        b.push(b"three");
        assert_eq!(b.take(start).as_deref(), Some(&b"three"[..]), "at the stop");
        // max_dump_size: the record that would reach it, and every later one, is dropped.
        let mut b = Buffer::new(10);
        b.push(b"12345");
        b.push(b"12345");
        b.push(b"1");
        assert_eq!(b.take(start).as_deref(), None, "the dump stopped for good");
    }
}
