//! Inflating gzip, zlib and raw deflate data up to a limit, with one inflater per thread reused
//! from body to body.
//!
//! Why not `flate2::read::GzDecoder`: creating a stream inflater zeroes ~40 KiB of state, which
//! costs more than inflating a typical telemetry body (a few hundred bytes of JSON); a capture of
//! many short HTTP flows spent a seventh of its time there. Here the body is inflated in one call
//! into a buffer that holds all of its output (miniz_oxide's non-wrapping mode, which also refuses
//! a back-reference before the body's first byte), with one decompressor per thread whose state is
//! re-initialised, not re-zeroed. The gzip container (RFC 1952) is read here.
//! Must not touch: what the bytes mean.

use std::cell::RefCell;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

thread_local! {
    static DECOMPRESSOR: RefCell<Box<DecompressorOxide>> = RefCell::new(Box::default());
}

/// How far inflating got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inflated {
    /// The stream ended where it says it does.
    Whole,
    /// More than `limit` bytes: the output holds `limit + 1`.
    OverLimit,
    /// The data stops or breaks before its end: the output holds what came before.
    Cut,
}

/// Inflates a gzip body (every member, as `MultiGzDecoder` does) into `out`, at most `limit + 1`
/// bytes. `None` if it does not start like gzip.
pub(crate) fn gzip(data: &[u8], limit: u64, out: &mut Vec<u8>) -> Option<Inflated> {
    out.clear();
    let mut rest = data;
    let mut first = true;
    loop {
        let Some(header) = gzip_header(rest) else {
            return if first { None } else { Some(Inflated::Whole) };
        };
        first = false;
        let (how, used) = run(&rest[header..], limit, out, 0);
        if how != Inflated::Whole {
            return Some(how);
        }
        // CRC-32 and length of the member (not checked: a damaged capture still shows its text).
        rest = rest.get(header + used + 8..).unwrap_or(&[]);
        if rest.is_empty() {
            return Some(Inflated::Whole);
        }
    }
}

/// Inflates zlib-wrapped deflate (`Content-Encoding: deflate` as the spec has it).
pub(crate) fn zlib(data: &[u8], limit: u64, out: &mut Vec<u8>) -> Inflated {
    out.clear();
    run(
        data,
        limit,
        out,
        inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER,
    )
    .0
}

/// Inflates raw deflate (what some servers send as `deflate`).
pub(crate) fn raw_deflate(data: &[u8], limit: u64, out: &mut Vec<u8>) -> Inflated {
    out.clear();
    run(data, limit, out, 0).0
}

/// Inflates one deflate stream from `data`, appending to `out` up to `limit + 1` bytes; how it
/// ended and the input bytes it used.
fn run(data: &[u8], limit: u64, out: &mut Vec<u8>, flags: u32) -> (Inflated, usize) {
    let flags = flags
        | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF
        | inflate_flags::TINFL_FLAG_IGNORE_ADLER32;
    let start = out.len();
    let cap = start.saturating_add(limit.saturating_add(1).min(usize::MAX as u64 / 2) as usize);
    DECOMPRESSOR.with(|d| {
        let d = &mut **d.borrow_mut();
        d.init();
        let mut in_pos = 0;
        let mut out_pos = start;
        // Room for a typical expansion first; doubled while the body asks for more.
        out.resize(cap.min(start + (data.len() * 4).max(4096)), 0);
        loop {
            let (status, used, written) = decompress(d, &data[in_pos..], out, out_pos, flags);
            in_pos += used;
            out_pos += written;
            match status {
                TINFLStatus::Done => {
                    out.truncate(out_pos);
                    let how = if out_pos >= cap {
                        Inflated::OverLimit
                    } else {
                        Inflated::Whole
                    };
                    return (how, in_pos);
                }
                TINFLStatus::HasMoreOutput if out.len() < cap => {
                    let grown = cap.min(out.len() * 2);
                    out.resize(grown, 0);
                }
                TINFLStatus::HasMoreOutput => {
                    out.truncate(out_pos);
                    return (Inflated::OverLimit, in_pos);
                }
                // The input ended before the stream did, or is broken.
                _ => {
                    out.truncate(out_pos);
                    return (Inflated::Cut, in_pos);
                }
            }
        }
    })
}

/// Length of a gzip member header (RFC 1952 §2.3), if `data` starts with one.
fn gzip_header(data: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    if data.len() < 10 || data[0] != 0x1f || data[1] != 0x8b || data[2] != 8 {
        return None;
    }
    let flags = data[3];
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let len = u16::from_le_bytes([*data.get(pos)?, *data.get(pos + 1)?]) as usize;
        pos += 2 + len;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            pos += data.get(pos..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
    }
    (pos <= data.len()).then_some(pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gz(text: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn whole_cut_over_limit_and_members() {
        // Varied enough that half of the compressed body decodes to something.
        let text: Vec<u8> = (0..3000u32)
            .flat_map(|i| format!("{{\"n\":{}}}", i.wrapping_mul(2_654_435_761)).into_bytes())
            .collect();
        let body = gz(&text);
        let mut out = Vec::new();
        assert_eq!(gzip(&body, 1 << 20, &mut out), Some(Inflated::Whole));
        assert_eq!(out, text);
        assert_eq!(gzip(&body, 100, &mut out), Some(Inflated::OverLimit));
        assert_eq!(out.len(), 101);
        assert_eq!(&out[..], &text[..101]);
        let cut = &body[..body.len() / 2];
        assert_eq!(gzip(cut, 1 << 20, &mut out), Some(Inflated::Cut));
        assert!(!out.is_empty() && text.starts_with(&out));
        let mut two = gz(b"first ");
        two.extend_from_slice(&gz(b"second"));
        assert_eq!(gzip(&two, 1 << 20, &mut out), Some(Inflated::Whole));
        assert_eq!(out, b"first second");
        assert_eq!(gzip(b"not gzip at all", 100, &mut out), None);
        // The reused inflater starts clean after a broken body.
        assert_eq!(gzip(&body, 1 << 20, &mut out), Some(Inflated::Whole));
        assert_eq!(out, text);
    }

    #[test]
    fn zlib_and_raw() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(b"hello zlib").unwrap();
        let z = z.finish().unwrap();
        let mut out = Vec::new();
        assert_eq!(zlib(&z, 1000, &mut out), Inflated::Whole);
        assert_eq!(out, b"hello zlib");
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        r.write_all(b"hello raw").unwrap();
        let r = r.finish().unwrap();
        assert_eq!(raw_deflate(&r, 1000, &mut out), Inflated::Whole);
        assert_eq!(out, b"hello raw");
        assert_ne!(zlib(&r, 1000, &mut out), Inflated::Whole);
    }

    #[test]
    fn headers_with_every_field() {
        let mut h = vec![0x1f, 0x8b, 8, 2 | 4 | 8 | 16, 0, 0, 0, 0, 0, 3];
        h.extend_from_slice(&[3, 0, b'x', b'y', b'z']);
        h.extend_from_slice(b"name\0comment\0");
        h.extend_from_slice(&[0xaa, 0xbb]);
        assert_eq!(gzip_header(&h), Some(h.len()));
        assert_eq!(gzip_header(&h[..12]), None);
    }
}
