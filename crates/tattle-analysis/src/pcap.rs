//! Writing pcap: the one writer of the workspace (tests, bench, fuzz seeds and the traffic generator
//! all frame their packets through it), so what tattle writes is written one way and Wireshark reads it.
//!
//! Owns the classic pcap container (little-endian, microsecond timestamps, as tcpdump writes it) and
//! its two counters. Must not touch: what the packets contain (see `testgen::frame` for building
//! frames), reading captures (see `reader`).

use std::io::{self, Write};

/// Link types (pcap `LINKTYPE_*` values) the writer is used with.
#[allow(missing_docs)] // LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2
pub mod linktype {
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const LINUX_SLL: u32 = 113;
    pub const LINUX_SLL2: u32 = 276;
}

/// Largest frame a record may carry (tcpdump's default snap length).
pub const SNAPLEN: u32 = 262_144;

/// Frames records one at a time into a pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    /// Records written.
    pub frames: u64,
    /// Bytes written, the 24-byte file header included.
    pub bytes: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header: version 2.4, the given link type.
    pub fn new(mut out: W, linktype: u32) -> io::Result<Self> {
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0, as every modern writer leaves them.
        hdr[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        hdr[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&hdr)?;
        Ok(PcapWriter {
            out,
            frames: 0,
            bytes: 24,
        })
    }

    /// Writes one record captured whole at `ts_us` microseconds since the Unix epoch.
    pub fn record(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        self.record_cut(ts_us, frame, frame.len())
    }

    /// Writes one record whose frame was `wire_len` bytes on the wire, of which `frame` was kept (a
    /// snap length shorter than the packet).
    pub fn record_cut(&mut self, ts_us: u64, frame: &[u8], wire_len: usize) -> io::Result<()> {
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(wire_len.max(frame.len()) as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(frame)?;
        self.frames += 1;
        self.bytes += 16 + frame.len() as u64;
        Ok(())
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The underlying writer, the capture written to it.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Counts the packet records of a capture stream as it arrives (pcap or pcapng), with the same
/// framing as the analysis, decoding nothing: a live capture's progress counter.
#[derive(Debug, Default)]
pub struct RecordCounter {
    reader: crate::reader::CaptureReader,
}

impl RecordCounter {
    /// A counter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next bytes of the stream; how many records they completed. An error if the stream
    /// does not start like a capture (its first bytes say so).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<u64, crate::AnalysisError> {
        let before = self.reader.frames();
        self.reader.push(bytes);
        while self.reader.next_record()?.is_some() {}
        Ok(self.reader.frames() - before)
    }
}

/// A whole capture in memory: `packets` as Ethernet (or `linktype`) frames one second apart from
/// 2023-11-14T22:13:20.5Z. For tests and seeds.
pub fn to_vec(linktype: u32, packets: &[&[u8]]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), linktype).expect("writing to memory");
    for (i, p) in packets.iter().enumerate() {
        w.record(1_700_000_000_500_000 + i as u64 * 1_000_000, p)
            .expect("writing to memory");
    }
    w.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_records_are_what_the_reader_reads() {
        let file = to_vec(linktype::RAW, &[b"\x45abc", b"\x60"]);
        assert_eq!(&file[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(file.len(), 24 + 16 + 4 + 16 + 1);
        let mut r = crate::reader::CaptureReader::new();
        r.push(&file);
        let first = r.next_record().expect("header").expect("record");
        assert_eq!(
            (first.frame, first.linktype, first.data),
            (1, Some(101), &b"\x45abc"[..])
        );
        assert!((first.ts - 1_700_000_000.5).abs() < 1e-6);
        let second = r.next_record().expect("header").expect("record");
        assert_eq!(second.frame, 2);
        assert!(r.next_record().expect("end").is_none());
    }

    #[test]
    fn records_are_counted_across_pieces_and_a_non_capture_refused() {
        let file = to_vec(linktype::ETHERNET, &[&[0u8; 10], b"", &[0xab; 70]]);
        let mut counter = RecordCounter::new();
        let total: u64 = file.chunks(7).map(|c| counter.feed(c).expect("pcap")).sum();
        assert_eq!(total, 3);
        assert!(RecordCounter::new().feed(&[b'x'; 24]).is_err());
    }

    #[test]
    fn a_cut_record_keeps_its_wire_length() {
        let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET).unwrap();
        w.record_cut(0, b"abcd", 1500).unwrap();
        let file = w.into_inner();
        assert_eq!(u32::from_le_bytes(file[32..36].try_into().unwrap()), 4);
        assert_eq!(u32::from_le_bytes(file[36..40].try_into().unwrap()), 1500);
    }
}
