//! Capture file reader: pcap and pcapng records out of a byte stream that arrives in pieces.
//!
//! Owns the container formats only: pcap (both byte orders, µs and ns timestamps) and pcapng (SHB, IDB,
//! EPB, SPB, several interfaces and sections, either byte order), numbering frames exactly as Wireshark
//! does (1-based; every packet record counts, decodable or not). Bytes are pushed as they come (a file
//! read in chunks, a pipe from a live tcpdump) and records are pulled out once complete, so memory is
//! one record plus one read chunk.
//!
//! Every length field is checked against a cap *before* anything is buffered for it; a record that
//! cannot be read stops reading and becomes a `Damage` (what came before stays analysed).
//!
//! A Decryption Secrets Block of TLS key log text (`TLSK`) pauses `next_record` so the caller
//! takes it (`take_secrets`) before the packets after it: secrets apply in capture order.
//!
//! Must not touch: link/IP decoding, flows, protocols, identifiers.

use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le};
use pcap_parser::traits::PcapNGPacketBlock as _;

use super::{AnalysisError, Damage, Timestamp};

/// Largest packet record accepted in a pcap file (tcpdump's maximum snaplen is 262144).
pub const MAX_PCAP_RECORD: usize = 1 << 20;
/// Largest pcapng block accepted.
pub const MAX_PCAPNG_BLOCK: usize = 16 << 20;
/// Interfaces accepted per pcapng section.
const MAX_INTERFACES: usize = 4096;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;
/// pcapng block types Wireshark numbers as frames: EPB, SPB, obsolete PB, systemd journal export.
const FRAME_BLOCKS: [u32; 4] = [6, 3, 2, 9];

/// One packet record.
#[derive(Debug)]
pub struct Record<'a> {
    pub frame: u64,
    pub ts: Timestamp,
    /// LINKTYPE_* value of the interface, `None` when the record names an interface never described.
    pub linktype: Option<u32>,
    pub data: &'a [u8],
    /// File offset of the record's header.
    pub offset: u64,
    /// The capture is pcapng: Decryption Secrets Blocks may come later in it.
    pub may_carry_secrets: bool,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    resolution: u64,
    ts_offset: i64,
}

#[derive(Debug)]
enum Format {
    Unknown,
    Pcap {
        big_endian: bool,
        nanos: bool,
        linktype: u32,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Incremental reader. `push` bytes, then call `next_record` until it returns `None`.
#[derive(Debug)]
pub struct CaptureReader {
    /// Bytes `..end` are the capture's; the rest is room for the next read (kept, not re-zeroed).
    buf: Vec<u8>,
    end: usize,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    /// File offset of `buf[0]`.
    base: u64,
    format: Format,
    frames: u64,
    last_ts: Timestamp,
    /// Set once the capture cannot be read further; later bytes are ignored.
    stopped: bool,
    /// Bytes read from a reader so far (`read_chunk`), and the first 8 of them.
    read: u64,
    first: Vec<u8>,
    damage: Vec<Damage>,
    /// TLS key log text of a Decryption Secrets Block, until the caller takes it.
    secrets: Option<Vec<u8>>,
    /// Decryption Secrets Blocks of other kinds (WireGuard, SSH…), skipped.
    other_secrets: u64,
}

/// `secrets_type` of a Decryption Secrets Block holding an NSS key log ("TLSK").
const SECRETS_TLS: u32 = 0x544c_534b;

impl Default for CaptureReader {
    fn default() -> Self {
        Self::new()
    }
}

impl CaptureReader {
    pub fn new() -> Self {
        CaptureReader {
            buf: Vec::new(),
            end: 0,
            pos: 0,
            base: 0,
            format: Format::Unknown,
            frames: 0,
            last_ts: 0.0,
            stopped: false,
            read: 0,
            first: Vec::new(),
            damage: Vec::new(),
            secrets: None,
            other_secrets: 0,
        }
    }

    /// Reads the next chunk of a capture from `r` into the buffer: `Ok(true)` when bytes came,
    /// `Ok(false)` at the end. A read error after the first bytes is damage (what came before is
    /// analysed) and ends the reading; before any byte it is an error.
    pub fn read_chunk(
        &mut self,
        r: &mut impl std::io::Read,
        want: usize,
    ) -> Result<bool, AnalysisError> {
        loop {
            match self.fill_from(r, want) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    if self.first.len() < 8 {
                        self.first = self.head(8).to_vec();
                    }
                    self.read += n as u64;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) if self.read == 0 => {
                    return Err(AnalysisError::Open {
                        path: "(reader)".into(),
                        source,
                    });
                }
                Err(e) => {
                    self.damage.push(Damage {
                        offset: Some(self.read),
                        after_frame: self.frames,
                        what: format!("read error: {e}"),
                    });
                    return Ok(false);
                }
            }
        }
    }

    /// After reading to the end: too few bytes to be any capture is an error.
    pub fn check_read(&self) -> Result<(), AnalysisError> {
        if self.read < 4 {
            return Err(AnalysisError::NotACapture {
                magic: hex::encode(&self.first),
            });
        }
        Ok(())
    }

    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The key log text of the Decryption Secrets Block just read, once: the records after it
    /// are returned only when it was taken.
    pub fn take_secrets(&mut self) -> Option<Vec<u8>> {
        self.secrets.take()
    }

    /// Decryption Secrets Blocks of kinds other than TLS key logs, skipped so far.
    pub fn other_secrets(&self) -> u64 {
        self.other_secrets
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.stopped {
            return;
        }
        self.room(data.len()).copy_from_slice(data);
        self.end += data.len();
    }

    /// Reads up to `want` bytes from `r` straight into the buffer (no intermediate copy); the
    /// number read, 0 at end of input or once reading stopped.
    pub fn fill_from(&mut self, r: &mut impl std::io::Read, want: usize) -> std::io::Result<usize> {
        if self.stopped {
            return Ok(0);
        }
        let n = r.read(self.room(want))?;
        self.end += n.min(want);
        Ok(n.min(want))
    }

    /// `want` writable bytes after the data, compacting first so the buffer holds one record plus
    /// one chunk, not the file.
    fn room(&mut self, want: usize) -> &mut [u8] {
        if self.pos > 0 && (self.pos >= self.end / 2 || self.pos > 1 << 16) {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
        }
        if self.buf.len() < self.end + want {
            self.buf.resize(self.end + want, 0);
        }
        &mut self.buf[self.end..self.end + want]
    }

    /// The first bytes of the capture (up to `n`), while they are still buffered.
    pub(crate) fn head(&self, n: usize) -> &[u8] {
        if self.base == 0 {
            &self.buf[..self.end.min(n)]
        } else {
            &[]
        }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn stop(&mut self, what: String) {
        tracing::warn!(
            offset = self.offset(),
            after_frame = self.frames,
            "capture damaged: {what}"
        );
        self.damage.push(Damage {
            offset: Some(self.offset()),
            after_frame: self.frames,
            what,
        });
        self.stopped = true;
        self.buf = Vec::new();
        self.end = 0;
        self.pos = 0;
    }

    /// Damage that does not stop reading (a record for an unknown interface…).
    fn note(&mut self, offset: u64, what: String) {
        self.damage.push(Damage {
            offset: Some(offset),
            after_frame: self.frames,
            what,
        });
    }

    /// Called at end of input: unread bytes mean the capture was cut inside a record.
    pub fn finish(&mut self) -> Vec<Damage> {
        let left = self.end - self.pos;
        if !self.stopped && left > 0 {
            let what = match self.format {
                Format::Unknown => format!("capture ends inside the file header ({left} bytes)"),
                _ => format!("capture ends inside a record ({left} bytes of it present)"),
            };
            self.stop(what);
        }
        std::mem::take(&mut self.damage)
    }

    /// The next record, `Ok(None)` when more bytes are needed (or reading stopped).
    /// Errors only when the very first bytes are not a capture at all.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, AnalysisError> {
        loop {
            if self.stopped || self.secrets.is_some() {
                return Ok(None);
            }
            let avail = self.end - self.pos;
            match self.format {
                Format::Unknown => {
                    if avail < 4 {
                        return Ok(None);
                    }
                    let magic = &self.buf[self.pos..self.pos + 4];
                    let m_le = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]);
                    match m_le {
                        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => {
                            if avail < 24 {
                                return Ok(None);
                            }
                            let h = &self.buf[self.pos..self.pos + 24];
                            let big_endian = (m_le & 0xffff) == 0xb2a1;
                            let nanos = m_le == 0xa1b2_3c4d || m_le == 0x4d3c_b2a1;
                            let lt = [h[20], h[21], h[22], h[23]];
                            // The upper bits of the link-type field carry FCS flags.
                            let linktype = if big_endian {
                                u32::from_be_bytes(lt)
                            } else {
                                u32::from_le_bytes(lt)
                            } & 0x0fff_ffff;
                            self.format = Format::Pcap {
                                big_endian,
                                nanos,
                                linktype,
                            };
                            self.pos += 24;
                        }
                        PCAPNG_SHB => {
                            // The SHB is read by the pcapng path below, which also learns the byte
                            // order from it.
                            self.format = Format::PcapNg {
                                big_endian: false,
                                interfaces: Vec::new(),
                            };
                        }
                        _ => {
                            return Err(AnalysisError::NotACapture {
                                magic: hex::encode(magic),
                            });
                        }
                    }
                }
                Format::Pcap { .. } => return Ok(self.next_pcap()),
                Format::PcapNg { .. } => match self.next_pcapng() {
                    Step::Record(r) => {
                        // Re-borrow for the returned record (the block was copied out as offsets).
                        return Ok(Some(Record {
                            frame: r.frame,
                            ts: r.ts,
                            linktype: r.linktype,
                            data: &self.buf[r.start..r.end],
                            offset: r.offset,
                            may_carry_secrets: true,
                        }));
                    }
                    Step::NeedMore => return Ok(None),
                    Step::Continue => continue,
                },
            }
        }
    }

    fn next_pcap(&mut self) -> Option<Record<'_>> {
        let Format::Pcap {
            big_endian,
            nanos,
            linktype,
        } = self.format
        else {
            return None;
        };
        let avail = self.end - self.pos;
        if avail < 16 {
            return None;
        }
        let h = &self.buf[self.pos..self.pos + 16];
        let field = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (sec, frac, caplen) = (field(0), field(4), field(8) as usize);
        if caplen > MAX_PCAP_RECORD {
            self.stop(format!(
                "pcap record claims {caplen} captured bytes (more than the {MAX_PCAP_RECORD}-byte cap)"
            ));
            return None;
        }
        if avail < 16 + caplen {
            return None;
        }
        let offset = self.offset();
        let start = self.pos + 16;
        self.pos = start + caplen;
        self.frames += 1;
        let ts = sec as f64 + frac as f64 / if nanos { 1e9 } else { 1e6 };
        self.last_ts = ts;
        Some(Record {
            frame: self.frames,
            ts,
            linktype: Some(linktype),
            data: &self.buf[start..start + caplen],
            offset,
            may_carry_secrets: false,
        })
    }

    fn next_pcapng(&mut self) -> Step {
        let avail = self.end - self.pos;
        if avail < 12 {
            return Step::NeedMore;
        }
        let head = &self.buf[self.pos..self.pos + 12];
        let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let big_endian = if raw_type == PCAPNG_SHB {
            // A new section: its byte-order magic decides how everything up to the next SHB reads.
            let bom_le = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
            if bom_le == PCAPNG_BOM {
                false
            } else if bom_le.swap_bytes() == PCAPNG_BOM {
                true
            } else {
                self.stop(format!(
                    "pcapng section header with bad byte-order magic {bom_le:#010x}"
                ));
                return Step::Continue;
            }
        } else {
            match &self.format {
                Format::PcapNg { big_endian, .. } => *big_endian,
                _ => false,
            }
        };
        let rd = |b: &[u8]| {
            let a = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        let block_type = rd(&head[0..4]);
        let len = rd(&head[4..8]) as usize;
        if len < 12 || !len.is_multiple_of(4) || len > MAX_PCAPNG_BLOCK {
            self.stop(format!(
                "pcapng block of type {block_type:#x} claims an invalid length {len}"
            ));
            return Step::Continue;
        }
        if avail < len {
            return Step::NeedMore;
        }
        let offset = self.offset();
        let start = self.pos;
        let slice = &self.buf[start..start + len];
        let parsed = if big_endian {
            parse_block_be(slice)
        } else {
            parse_block_le(slice)
        };
        let is_frame = FRAME_BLOCKS.contains(&block_type);
        let block = match parsed {
            Ok((_, b)) => b,
            Err(e) => {
                let what = format!("pcapng block of type {block_type:#x} is malformed: {e:?}");
                let what: String = what.chars().take(200).collect();
                self.stop(what);
                return Step::Continue;
            }
        };
        self.pos += len;
        let buf_ptr = self.buf.as_ptr() as usize;
        // Record data is located by offsets so the borrow of `buf` ends with this match.
        let locate = |data: &[u8]| {
            let s = data.as_ptr() as usize - buf_ptr;
            (s, s + data.len())
        };
        let Format::PcapNg {
            big_endian: fmt_be,
            interfaces,
        } = &mut self.format
        else {
            return Step::Continue;
        };
        let found: Option<Found> = match block {
            Block::SectionHeader(_) => {
                *fmt_be = big_endian;
                interfaces.clear();
                None
            }
            Block::InterfaceDescription(idb) => {
                if interfaces.len() < MAX_INTERFACES {
                    interfaces.push(Interface {
                        linktype: idb.linktype.0 as u32,
                        resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                        ts_offset: idb.ts_offset(),
                    });
                }
                None
            }
            Block::EnhancedPacket(epb) => {
                let iface = interfaces.get(epb.if_id as usize).copied();
                let ts = iface.map(|i| epb.decode_ts_f64(i.ts_offset as u64, i.resolution));
                let unknown = iface.is_none().then_some(epb.if_id);
                Some((iface, locate(epb.packet_data()), ts, unknown))
            }
            Block::SimplePacket(spb) => Some((
                interfaces.first().copied(),
                locate(spb.packet_data()),
                None,
                None,
            )),
            Block::DecryptionSecrets(dsb) => {
                if dsb.secrets_type.0 == SECRETS_TLS {
                    let len = (dsb.secrets_len as usize).min(dsb.data.len());
                    self.secrets = Some(dsb.data[..len].to_vec());
                } else {
                    self.other_secrets += 1;
                }
                None
            }
            // Obsolete packet blocks and journal entries: numbered, not decoded.
            _ if is_frame => Some((None, (start + len, start + len), None, None)),
            _ => None,
        };
        let Some((iface, (s, e), ts, unknown_if)) = found else {
            return Step::Continue;
        };
        self.frames += 1;
        let ts = ts.unwrap_or(self.last_ts);
        self.last_ts = ts;
        if let Some(if_id) = unknown_if {
            self.note(offset, format!("packet for undescribed interface {if_id}"));
        }
        Step::Record(Located {
            frame: self.frames,
            ts,
            linktype: iface.map(|i| i.linktype),
            start: s,
            end: e,
            offset,
        })
    }
}

/// A packet block's interface, data position, timestamp, and the interface id if undescribed.
type Found = (
    Option<Interface>,
    (usize, usize),
    Option<Timestamp>,
    Option<u32>,
);

struct Located {
    frame: u64,
    ts: Timestamp,
    linktype: Option<u32>,
    start: usize,
    end: usize,
    offset: u64,
}

enum Step {
    Record(Located),
    NeedMore,
    Continue,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A little-endian µs pcap with the given link type and packets (the crate's one writer).
    pub(crate) fn pcap(linktype: u32, packets: &[&[u8]]) -> Vec<u8> {
        crate::pcap::to_vec(linktype, packets)
    }

    fn be32(v: u32) -> [u8; 4] {
        v.to_be_bytes()
    }

    /// A big-endian pcapng with two interfaces (ns resolution on the second).
    pub(crate) fn pcapng_be(packets: &[(u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        // SHB: type, len, bom, major, minor, section length, len.
        out.extend_from_slice(&be32(PCAPNG_SHB));
        out.extend_from_slice(&be32(28));
        out.extend_from_slice(&be32(PCAPNG_BOM));
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&(-1i64).to_be_bytes());
        out.extend_from_slice(&be32(28));
        // IDB 0: Ethernet, default µs. IDB 1: raw IP with if_tsresol = 9 (ns).
        out.extend_from_slice(&be32(1));
        out.extend_from_slice(&be32(20));
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&be32(0));
        out.extend_from_slice(&be32(20));
        out.extend_from_slice(&be32(1));
        out.extend_from_slice(&be32(32));
        out.extend_from_slice(&101u16.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&be32(0));
        out.extend_from_slice(&9u16.to_be_bytes()); // if_tsresol
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&[9, 0, 0, 0]);
        out.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        out.extend_from_slice(&be32(32));
        for (if_id, p) in packets {
            let padded = p.len().div_ceil(4) * 4;
            let len = 32 + padded as u32;
            let ts: u64 = if *if_id == 0 {
                1_700_000_000_250_000
            } else {
                1_700_000_000_250_000_000
            };
            out.extend_from_slice(&be32(6));
            out.extend_from_slice(&be32(len));
            out.extend_from_slice(&be32(*if_id));
            out.extend_from_slice(&be32((ts >> 32) as u32));
            out.extend_from_slice(&be32(ts as u32));
            out.extend_from_slice(&be32(p.len() as u32));
            out.extend_from_slice(&be32(p.len() as u32));
            out.extend_from_slice(p);
            out.resize(out.len() + padded - p.len(), 0);
            out.extend_from_slice(&be32(len));
        }
        out
    }

    type Rec = (u64, f64, Option<u32>, Vec<u8>);

    fn read_all(bytes: &[u8], chunk: usize) -> (Vec<Rec>, Vec<Damage>) {
        let mut r = CaptureReader::new();
        let mut got = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            r.push(piece);
            while let Some(rec) = r.next_record().expect("capture") {
                got.push((rec.frame, rec.ts, rec.linktype, rec.data.to_vec()));
            }
        }
        (got, r.finish())
    }

    /// Offsets at which each record ends, and the offset of the first record.
    fn read_offsets(bytes: &[u8]) -> (Vec<u64>, u64) {
        let mut r = CaptureReader::new();
        r.push(bytes);
        let mut ends = Vec::new();
        let mut first = None;
        while let Some(rec) = r.next_record().expect("capture") {
            first.get_or_insert(rec.offset);
            let _ = rec;
            ends.push(r.offset());
        }
        (ends, first.unwrap_or(0))
    }

    #[test]
    fn pcap_records_in_any_chunking() {
        let file = pcap(1, &[b"first", b"", b"third packet"]);
        for chunk in [1, 3, 16, 1000] {
            let (got, damage) = read_all(&file, chunk);
            assert!(damage.is_empty(), "{damage:?}");
            assert_eq!(got.len(), 3);
            assert_eq!(got[2].0, 3);
            assert_eq!(got[2].3, b"third packet");
            assert_eq!(got[0].2, Some(1));
            assert!((got[0].1 - 1_700_000_000.5).abs() < 1e-6);
        }
    }

    #[test]
    fn pcap_big_endian_nanoseconds() {
        let mut file = Vec::new();
        file.extend_from_slice(&0xa1b2_3c4du32.to_be_bytes());
        file.extend_from_slice(&2u16.to_be_bytes());
        file.extend_from_slice(&4u16.to_be_bytes());
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&65535u32.to_be_bytes());
        file.extend_from_slice(&276u32.to_be_bytes());
        file.extend_from_slice(&10u32.to_be_bytes());
        file.extend_from_slice(&250_000_000u32.to_be_bytes());
        file.extend_from_slice(&2u32.to_be_bytes());
        file.extend_from_slice(&2u32.to_be_bytes());
        file.extend_from_slice(b"hi");
        let (got, damage) = read_all(&file, 7);
        assert!(damage.is_empty());
        assert_eq!(got, vec![(1, 10.25, Some(276), b"hi".to_vec())]);
    }

    #[test]
    fn pcapng_big_endian_two_interfaces() {
        let file = pcapng_be(&[(0, b"abcde"), (1, b"xyz"), (7, b"?")]);
        let (got, damage) = read_all(&file, 5);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].2, Some(1));
        assert_eq!(got[0].3, b"abcde");
        assert!((got[0].1 - 1_700_000_000.25).abs() < 1e-3, "{}", got[0].1);
        assert_eq!(got[1].2, Some(101));
        assert!((got[1].1 - 1_700_000_000.25).abs() < 1e-3, "{}", got[1].1);
        assert_eq!(got[2].2, None);
        assert_eq!(damage.len(), 1, "{damage:?}");
        assert_eq!(damage[0].after_frame, 3);
    }

    #[test]
    fn not_a_capture_is_an_error() {
        let mut r = CaptureReader::new();
        r.push(b"GET / HTTP/1.1\r\n");
        assert!(matches!(
            r.next_record(),
            Err(AnalysisError::NotACapture { .. })
        ));
    }

    #[test]
    fn absurd_lengths_stop_with_damage_and_no_allocation() {
        let mut file = pcap(1, &[b"ok"]);
        let at = file.len() as u64;
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&u32::MAX.to_le_bytes());
        file.extend_from_slice(&u32::MAX.to_le_bytes());
        let (got, damage) = read_all(&file, 4096);
        assert_eq!(got.len(), 1);
        assert_eq!(damage.len(), 1);
        assert_eq!(damage[0].offset, Some(at));
        assert_eq!(damage[0].after_frame, 1);

        let mut ng = pcapng_be(&[(0, b"abc")]);
        ng.extend_from_slice(&be32(6));
        ng.extend_from_slice(&be32(0x7fff_fff0));
        ng.extend_from_slice(&[0; 8]);
        let (got, damage) = read_all(&ng, 4096);
        assert_eq!(got.len(), 1);
        assert_eq!(damage.len(), 1, "{damage:?}");
    }

    #[test]
    fn truncation_at_every_offset_never_panics_and_reports() {
        let files = [
            pcap(1, &[b"one", b"two-two", b"three"]),
            pcapng_be(&[(0, b"abcdef"), (1, b"x")]),
        ];
        for file in files {
            let (full, _) = read_all(&file, 4096);
            let (ends, first) = read_offsets(&file);
            for cut in 4..file.len() {
                let (got, damage) = read_all(&file[..cut], 64);
                assert_eq!(got[..], full[..got.len()], "cut {cut}");
                // Without damage, the cut must fall between records.
                let at_boundary = cut as u64 <= first || ends.contains(&(cut as u64));
                assert!(
                    !damage.is_empty() || at_boundary || got.len() == full.len(),
                    "cut {cut}: no damage reported"
                );
                assert!(
                    damage.iter().all(|d| d.what.contains("ends inside")),
                    "{damage:?}"
                );
            }
        }
    }

    #[test]
    fn garbage_after_header_is_damage() {
        let mut ng = pcapng_be(&[(0, b"abc")]);
        ng.extend_from_slice(&[0xAB; 64]);
        let (got, damage) = read_all(&ng, 10);
        assert_eq!(got.len(), 1);
        assert_eq!(damage.len(), 1);
        assert_eq!(damage[0].after_frame, 1);
    }
}
