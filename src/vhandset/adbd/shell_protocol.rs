//! The shell protocol v2 packets carried inside a `shell,v2,…:` stream (AOSP adb/shell_protocol.h): one
//! id byte, a little-endian length, the data; stdin/close-stdin/window-size from the host, stdout/stderr/
//! exit to it. Packets may be split or merged across WRTEs, so the host's side is parsed incrementally.
//!
//! Must not touch: ADB messages and streams (`message`, `stream`), running the command (`shell_service`).

use super::message::{CodecError, MAX_PAYLOAD};

/// Shell-v2 packet ids (AOSP adb/shell_protocol.h).
pub(super) const ID_STDIN: u8 = 0;
pub(super) const ID_STDOUT: u8 = 1;
pub(super) const ID_STDERR: u8 = 2;
pub(super) const ID_EXIT: u8 = 3;
pub(super) const ID_CLOSE_STDIN: u8 = 4;
pub(super) const ID_WINDOW_SIZE: u8 = 5;

/// Encodes one shell-v2 packet.
pub fn shell_packet(id: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(id);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// Incremental parser of shell-v2 packets from the host (they may be split or merged across WRTEs).
#[derive(Debug, Default)]
pub struct ShellPacketParser {
    buf: Vec<u8>,
}

/// Largest shell-v2 packet accepted from the host (stdin chunks are small in practice).
pub const MAX_SHELL_PACKET: usize = MAX_PAYLOAD;

impl ShellPacketParser {
    /// Adds bytes; returns the complete packets, or an error for a packet that is too long.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, CodecError> {
        self.buf.extend_from_slice(data);
        let mut packets = Vec::new();
        let mut pos = 0;
        while self.buf.len() - pos >= 5 {
            let len = u32::from_le_bytes([
                self.buf[pos + 1],
                self.buf[pos + 2],
                self.buf[pos + 3],
                self.buf[pos + 4],
            ]);
            if len as usize > MAX_SHELL_PACKET {
                self.buf.clear();
                return Err(CodecError::TooLong {
                    len,
                    max: MAX_SHELL_PACKET,
                });
            }
            let end = pos + 5 + len as usize;
            if self.buf.len() < end {
                break;
            }
            packets.push((self.buf[pos], self.buf[pos + 5..end].to_vec()));
            pos = end;
        }
        self.buf.drain(..pos);
        Ok(packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_packets_split_and_merged() {
        let mut bytes = shell_packet(ID_STDIN, b"abc");
        bytes.extend(shell_packet(ID_CLOSE_STDIN, b""));
        let mut p = ShellPacketParser::default();
        let mut got = Vec::new();
        for b in &bytes {
            got.extend(p.push(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(
            got,
            vec![(ID_STDIN, b"abc".to_vec()), (ID_CLOSE_STDIN, vec![])]
        );
        let mut p = ShellPacketParser::default();
        assert_eq!(p.push(&bytes).unwrap().len(), 2);
        let mut p = ShellPacketParser::default();
        assert!(p.push(&[0, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
