//! `capture.pcapng`: the run's capture as pcapng, with tattle's findings and step boundaries as
//! packet comments (`opt_comment`) that Wireshark shows (`frame.comment`, Statistics → Capture
//! File Properties → Packet Comments) and a display filter can select (`frame.comment contains
//! "tattle"`).
//!
//! Owns copying a pcap or pcapng capture packet by packet (read with `pcap-parser`, streamed: memory
//! is one packet whatever the capture's size), numbering frames as Wireshark does (every packet
//! block from 1), and the small pcapng writer (section header, interface description, enhanced
//! packet with comments, decryption secrets; little-endian; pcap-parser 0.17 only reads). Comments
//! come from the redacted evidence: the packets themselves are the capture's, raw, like
//! `capture.pcap`, and the run's TLS key log rides along as a Decryption Secrets Block (private
//! like the key log itself: the file is 0600).
//!
//! Must not touch: what the findings mean (they come in as evidence), the terminal.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use pcap_parser::{Block, PcapBlockOwned, PcapError};

use super::run_dir::RunView;
use crate::outcome::{EvidenceItem, StepWindow};

/// Reader buffer: larger than any packet a 256 KiB snaplen writes.
const BUFFER: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PcapngError {
    #[error("cannot read the capture: {0}")]
    Read(String),
    #[error("cannot write the pcapng: {0}")]
    Write(#[from] std::io::Error),
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    pub frames: u64,
    pub commented: u64,
    /// The copy stopped at damage in the capture (what was before it is written).
    pub damaged: bool,
    /// Decryption Secrets Blocks the capture itself carried (PCAPdroid's pcapng with TLS
    /// decryption, `editcap --inject-secrets`), copied in place.
    pub carried_secrets: u64,
}

/// The comments of each frame: each finding on the frame that completed it, and each step's start
/// on its first frame. `clock_offset` is the device clock minus the host's (run.json), applied to
/// the step windows (host clock) to meet the capture's timestamps.
pub struct Comments<'a> {
    by_frame: BTreeMap<u64, Vec<String>>,
    steps: Vec<(f64, String)>,
    next_step: usize,
    _evidence: std::marker::PhantomData<&'a ()>,
}

impl<'a> Comments<'a> {
    pub fn new(evidence: &'a [EvidenceItem], steps: &[StepWindow], clock_offset: f64) -> Self {
        let mut by_frame: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for e in evidence {
            by_frame.entry(e.frame).or_default().push(format!(
                "tattle finding: {} -> {} ({} {} as {}) in step {}",
                e.identifier, e.host, e.protocol, e.location, e.encoding, e.step
            ));
        }
        let steps = steps
            .iter()
            .map(|w| (w.start + clock_offset, w.label()))
            .collect();
        Comments {
            by_frame,
            steps,
            next_step: 0,
            _evidence: std::marker::PhantomData,
        }
    }

    /// The comments of frame `frame`, captured at `ts` (capture clock); frames come in order.
    fn take(&mut self, frame: u64, ts: f64) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((start, label)) = self.steps.get(self.next_step) {
            if ts < *start {
                break;
            }
            out.push(format!("tattle step boundary: step {label} starts"));
            self.next_step += 1;
        }
        // Several steps with no packet of their own all start here: say only the last.
        if out.len() > 1 {
            out.drain(..out.len() - 1);
        }
        if let Some(findings) = self.by_frame.remove(&frame) {
            out.extend(findings);
        }
        out
    }
}

/// Copies the capture in `input` (pcap or pcapng) to `out` as pcapng with `comments`, and with
/// `tls_keys` (an NSS key log, the run's `tls-keys.log`) as a Decryption Secrets Block, so
/// Wireshark decrypts the TLS in it with no preference set.
pub fn write(
    input: impl Read + Send,
    out: &mut impl Write,
    mut comments: Comments,
    tls_keys: Option<&[u8]>,
) -> Result<Written, PcapngError> {
    let mut reader = pcap_parser::create_reader(BUFFER, input)
        .map_err(|e| PcapngError::Read(format!("not a pcap or pcapng capture ({e:?})")))?;
    let mut written = Written::default();
    // Per output interface: the resolution of its timestamps (units per second) and its offset.
    let mut interfaces: Vec<(f64, f64)> = Vec::new();
    let mut header_written = false;
    let mut stalled_at = None;
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                stalled_at = None;
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        let nanos = h.is_nanosecond_precision();
                        section_header(out)?;
                        header_written = true;
                        secrets(out, tls_keys)?;
                        interface(out, h.network.0 as u16, h.snaplen, nanos.then_some(9))?;
                        interfaces.push((if nanos { 1e9 } else { 1e6 }, 0.0));
                    }
                    PcapBlockOwned::Legacy(p) => {
                        let (per_sec, _) = interfaces.first().copied().unwrap_or((1e6, 0.0));
                        let units = u64::from(p.ts_sec) * per_sec as u64 + u64::from(p.ts_usec);
                        let ts = f64::from(p.ts_sec) + f64::from(p.ts_usec) / per_sec;
                        written.frames += 1;
                        let c = comments.take(written.frames, ts);
                        written.commented += u64::from(!c.is_empty());
                        packet(out, 0, units, p.origlen, p.data, &c)?;
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        // One output section: interfaces of later sections are appended.
                        if !header_written {
                            section_header(out)?;
                            header_written = true;
                            secrets(out, tls_keys)?;
                        }
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let resol = idb.if_tsresol;
                        interface(out, idb.linktype.0 as u16, idb.snaplen, Some(resol))?;
                        let per_sec = if resol & 0x80 != 0 {
                            2f64.powi(i32::from(resol & 0x7f))
                        } else {
                            10f64.powi(i32::from(resol))
                        };
                        interfaces.push((per_sec, idb.if_tsoffset as f64));
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                        let (per_sec, offset_s) = interfaces
                            .get(epb.if_id as usize)
                            .copied()
                            .unwrap_or((1e6, 0.0));
                        written.frames += 1;
                        let c = comments.take(written.frames, units as f64 / per_sec + offset_s);
                        written.commented += u64::from(!c.is_empty());
                        packet(out, epb.if_id, units, epb.origlen, epb.data, &c)?;
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        // No timestamp: it counts as a frame, and keeps its place.
                        written.frames += 1;
                        let c = comments.take(written.frames, f64::NEG_INFINITY);
                        written.commented += u64::from(!c.is_empty());
                        packet(out, 0, 0, spb.origlen, spb.data, &c)?;
                    }
                    // The capture's own secrets stay where they were: before the packets they
                    // decrypt (tshark applies a DSB to the packets after it).
                    PcapBlockOwned::NG(Block::DecryptionSecrets(dsb)) if header_written => {
                        let len = (dsb.secrets_len as usize).min(dsb.data.len());
                        secrets_block(out, dsb.secrets_type.0, &dsb.data[..len])?;
                        written.carried_secrets += 1;
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                let at = reader.consumed();
                if stalled_at == Some(at) {
                    // Refilling brought nothing: a truncated last packet.
                    written.damaged = true;
                    break;
                }
                stalled_at = Some(at);
                reader
                    .refill()
                    .map_err(|e| PcapngError::Read(format!("{e:?}")))?;
            }
            Err(e) => {
                if written.frames == 0 && !header_written {
                    return Err(PcapngError::Read(format!("{e:?}")));
                }
                written.damaged = true;
                break;
            }
        }
    }
    if !header_written {
        return Err(PcapngError::Read("no capture header".into()));
    }
    out.flush()?;
    Ok(written)
}

/// The run's capture as annotated pcapng, with its key log when it kept one.
pub fn write_run(view: &RunView, out: &mut impl Write) -> Result<Written, PcapngError> {
    let capture = view
        .capture_path()
        .ok_or_else(|| PcapngError::Read(format!("{} holds no capture", view.dir.display())))?;
    let input = std::fs::File::open(&capture)
        .map_err(|e| PcapngError::Read(format!("{}: {e}", capture.display())))?;
    let keys = view.tls_keys();
    write(
        std::io::BufReader::new(input),
        out,
        Comments::new(
            &view.evidence,
            &view.run.steps,
            view.run.clock_offset_seconds,
        ),
        keys.as_deref(),
    )
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// One block: type, total length, body, total length again.
fn block(out: &mut impl Write, kind: u32, body: &[u8]) -> std::io::Result<()> {
    let len = (12 + body.len()) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&len.to_le_bytes())
}

fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(value.len() as u16).to_le_bytes());
    body.extend_from_slice(value);
    body.extend(std::iter::repeat_n(0u8, pad4(value.len())));
}

fn end_of_options(body: &mut Vec<u8>) {
    body.extend_from_slice(&[0, 0, 0, 0]);
}

fn section_header(out: &mut impl Write) -> std::io::Result<()> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    // shb_userappl
    option(
        &mut body,
        4,
        concat!("tattle ", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    end_of_options(&mut body);
    block(out, 0x0A0D_0D0A, &body)
}

/// `secrets_type` of TLS key log lines (`TLSK`).
const TLS_KEY_LOG: u32 = 0x544C_534B;

/// A Decryption Secrets Block of TLS key log lines (`TLSK`), when there are any.
fn secrets(out: &mut impl Write, tls_keys: Option<&[u8]>) -> std::io::Result<()> {
    match tls_keys.filter(|k| !k.is_empty()) {
        Some(keys) => secrets_block(out, TLS_KEY_LOG, keys),
        None => Ok(()),
    }
}

/// A Decryption Secrets Block (pcapng §4.7): its type, the secrets, padding, no options.
fn secrets_block(out: &mut impl Write, secrets_type: u32, data: &[u8]) -> std::io::Result<()> {
    let mut body = Vec::with_capacity(data.len() + 12);
    body.extend_from_slice(&secrets_type.to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    body.extend(std::iter::repeat_n(0u8, pad4(data.len())));
    block(out, 0x0000_000A, &body)
}

fn interface(
    out: &mut impl Write,
    linktype: u16,
    snaplen: u32,
    tsresol: Option<u8>,
) -> std::io::Result<()> {
    let mut body = Vec::new();
    body.extend_from_slice(&linktype.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&snaplen.to_le_bytes());
    if let Some(r) = tsresol.filter(|r| *r != 6) {
        option(&mut body, 9, &[r]);
    }
    end_of_options(&mut body);
    block(out, 1, &body)
}

fn packet(
    out: &mut impl Write,
    if_id: u32,
    ts_units: u64,
    origlen: u32,
    data: &[u8],
    comments: &[String],
) -> std::io::Result<()> {
    let mut body = Vec::with_capacity(20 + data.len() + 8);
    body.extend_from_slice(&if_id.to_le_bytes());
    body.extend_from_slice(&((ts_units >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ts_units as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&origlen.to_le_bytes());
    body.extend_from_slice(data);
    body.extend(std::iter::repeat_n(0u8, pad4(data.len())));
    if !comments.is_empty() {
        for c in comments {
            // An option's length is 16 bits.
            let text = &c.as_bytes()[..c.len().min(60_000)];
            option(&mut body, 1, text);
        }
        end_of_options(&mut body);
    }
    block(out, 6, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(frame: u64) -> EvidenceItem {
        EvidenceItem {
            step: "1 send-sms".into(),
            identifier: "<imei>".into(),
            encoding: "plain".into(),
            host: "h.example".into(),
            protocol: "http".into(),
            location: "http.body".into(),
            frame,
            tls: None,
            at: 0.0,
        }
    }

    /// pcap in, pcapng out that pcap-parser reads back with the same frames and the comments.
    #[test]
    fn copies_frames_and_adds_comments() {
        // One second apart from 1_700_000_000.5.
        let pcap = tattle_analysis::pcap::to_vec(1, &[&[0; 41], &[1; 41], &[2; 41]]);
        let ev = [evidence(2)];
        let steps = [StepWindow {
            index: 1,
            name: "send-sms".into(),
            start: 1_700_000_001.0,
            end: 1_700_000_100.0,
        }];
        let mut out = Vec::new();
        let w = write(&pcap[..], &mut out, Comments::new(&ev, &steps, 0.0), None).unwrap();
        assert_eq!((w.frames, w.commented, w.damaged), (3, 1, false));
        let mut reader = pcap_parser::create_reader(BUFFER, &out[..]).unwrap();
        let mut frames = Vec::new();
        loop {
            match reader.next() {
                Ok((offset, PcapBlockOwned::NG(Block::EnhancedPacket(epb)))) => {
                    let comments: Vec<String> = epb
                        .options
                        .iter()
                        .filter(|o| o.code.0 == 1)
                        .map(|o| String::from_utf8_lossy(&o.value).into_owned())
                        .collect();
                    frames.push((epb.data[..41].to_vec(), comments));
                    reader.consume(offset);
                }
                Ok((offset, _)) => reader.consume(offset),
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => reader.refill().unwrap(),
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(frames.len(), 3);
        assert!(frames[0].1.is_empty());
        assert_eq!(frames[1].0, vec![1; 41]);
        assert_eq!(
            frames[1].1,
            vec![
                "tattle step boundary: step 1 send-sms starts".to_string(),
                "tattle finding: <imei> -> h.example (http http.body as plain) in step 1 send-sms"
                    .to_string()
            ]
        );
    }

    /// The secrets blocks of the blocks in `pcapng`, in order: (type, data), and the frames.
    fn secrets_and_frames(pcapng: &[u8]) -> (Vec<(u32, Vec<u8>)>, usize) {
        let mut reader = pcap_parser::create_reader(BUFFER, pcapng).unwrap();
        let (mut dsbs, mut frames) = (Vec::new(), 0);
        loop {
            match reader.next() {
                Ok((offset, block)) => {
                    match block {
                        PcapBlockOwned::NG(Block::DecryptionSecrets(d)) => {
                            dsbs.push((d.secrets_type.0, d.data[..d.secrets_len as usize].to_vec()))
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(_)) => frames += 1,
                        _ => {}
                    }
                    reader.consume(offset);
                }
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => reader.refill().unwrap(),
                Err(e) => panic!("{e:?}"),
            }
        }
        (dsbs, frames)
    }

    /// A pcapng whose secrets ride inside (PCAPdroid's with TLS decryption) keeps them, in place,
    /// beside the run's own key log.
    #[test]
    fn the_captures_own_secrets_blocks_are_carried() {
        let own = b"CLIENT_RANDOM aa bb".to_vec();
        let wireguard = b"wg key".to_vec();
        let mut input = Vec::new();
        section_header(&mut input).unwrap();
        interface(&mut input, 101, 65535, None).unwrap();
        packet(&mut input, 0, 1, 20, &[0x45; 20], &[]).unwrap();
        secrets_block(&mut input, TLS_KEY_LOG, &own).unwrap();
        secrets_block(&mut input, 0x5747_4B4C, &wireguard).unwrap();
        packet(&mut input, 0, 2, 20, &[0x45; 20], &[]).unwrap();
        let mut out = Vec::new();
        let w = write(&input[..], &mut out, Comments::new(&[], &[], 0.0), None).unwrap();
        assert_eq!((w.frames, w.carried_secrets), (2, 2));
        let (dsbs, frames) = secrets_and_frames(&out);
        assert_eq!(frames, 2);
        assert_eq!(dsbs, [(TLS_KEY_LOG, own.clone()), (0x5747_4B4C, wireguard)]);
        // With the run's key log too: the run's first (after the header), then the capture's.
        let mut out = Vec::new();
        write(
            &input[..],
            &mut out,
            Comments::new(&[], &[], 0.0),
            Some(b"CLIENT_RANDOM cc dd"),
        )
        .unwrap();
        let (dsbs, _) = secrets_and_frames(&out);
        assert_eq!(dsbs.len(), 3);
        assert_eq!(dsbs[0].1, b"CLIENT_RANDOM cc dd");
        assert_eq!(dsbs[1].1, own);
    }

    #[test]
    fn garbage_is_an_error_and_truncation_is_damage() {
        let mut out = Vec::new();
        assert!(
            write(
                &b"not a capture at all"[..],
                &mut out,
                Comments::new(&[], &[], 0.0),
                None
            )
            .is_err()
        );
        let pcap = tattle_analysis::pcap::to_vec(1, &[&[7; 100], &[8; 100]]);
        let mut out = Vec::new();
        let cut = &pcap[..pcap.len() - 10];
        let w = write(cut, &mut out, Comments::new(&[], &[], 0.0), None).unwrap();
        assert_eq!((w.frames, w.damaged), (1, true));
    }
}
