//! Shell results and the shell v2 packet decoder, plus quoting for the device's `/system/bin/sh`.
//!
//! Owns: `ShellOutput`, `ShellV2Decoder` (a byte-stream state machine: packets arrive split or merged across
//! reads, and the device is untrusted), `shell_quote`. Must not touch: sockets (`device` feeds the decoder).
//!
//! Shell v2 packet: id (u8) + length (u32 LE) + data. Ids: 0 stdin, 1 stdout, 2 stderr, 3 exit status (one
//! byte), 4 close stdin, 5 window size.

use super::AdbError;

const ID_STDIN: u8 = 0;
const ID_STDOUT: u8 = 1;
const ID_STDERR: u8 = 2;
const ID_EXIT: u8 = 3;
const ID_CLOSE_STDIN: u8 = 4;
const ID_WINDOW_SIZE: u8 = 5;

/// The "close stdin" packet the client sends at once: tattle never feeds a shell command's stdin, and a
/// command that reads stdin must see EOF rather than wait forever.
pub(crate) const CLOSE_STDIN_PACKET: [u8; 5] = [ID_CLOSE_STDIN, 0, 0, 0, 0];

/// What one shell command produced.
#[derive(Clone, PartialEq, Eq)]
pub struct ShellOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the device lacks shell v2: the legacy `shell:` service carries no exit status (and merges
    /// stderr into stdout).
    pub exit_code: Option<i32>,
}

impl ShellOutput {
    /// stdout as text (lossy UTF-8), with trailing line ends trimmed.
    pub fn stdout_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.stdout);
        text.trim_end_matches(['\r', '\n']).to_string()
    }

    /// stderr as text (lossy UTF-8), with trailing line ends trimmed.
    pub fn stderr_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        text.trim_end_matches(['\r', '\n']).to_string()
    }

    /// True only for a known exit code 0: an unknown status (legacy shell) is not proof of success.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

impl std::fmt::Debug for ShellOutput {
    // Output can hold identifiers (an IMEI from `service call iphonesubinfo`): show sizes only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellOutput")
            .field("stdout_bytes", &self.stdout.len())
            .field("stderr_bytes", &self.stderr.len())
            .field("exit_code", &self.exit_code)
            .finish()
    }
}

/// One decoded piece of a shell v2 stream.
#[derive(Debug, PartialEq, Eq)]
pub enum ShellEvent<'a> {
    Stdout(&'a [u8]),
    Stderr(&'a [u8]),
    Exit(u8),
}

/// Incremental decoder of a shell v2 stream. Memory use is constant: packet data is handed out as it arrives,
/// never buffered whole, so a lying length field cannot make it allocate.
#[derive(Debug, Default)]
pub struct ShellV2Decoder {
    header: [u8; 5],
    have: usize,
    /// Id and bytes left of the packet whose data is being read, if any.
    body: Option<(u8, u32)>,
    exited: bool,
}

impl ShellV2Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// True once the exit packet was decoded; later bytes are ignored.
    pub fn exited(&self) -> bool {
        self.exited
    }

    /// Decodes `data`, calling `on` for each event in order. An unknown packet id or a malformed exit packet
    /// is a protocol error (the stream is garbage from there on).
    pub fn feed<'a>(
        &mut self,
        mut data: &'a [u8],
        mut on: impl FnMut(ShellEvent<'a>) -> Result<(), AdbError>,
    ) -> Result<(), AdbError> {
        while !data.is_empty() && !self.exited {
            match self.body {
                None => {
                    let take = (5 - self.have).min(data.len());
                    self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
                    self.have += take;
                    data = &data[take..];
                    if self.have < 5 {
                        break;
                    }
                    self.have = 0;
                    let id = self.header[0];
                    let len = u32::from_le_bytes([
                        self.header[1],
                        self.header[2],
                        self.header[3],
                        self.header[4],
                    ]);
                    match id {
                        ID_EXIT if len != 1 => {
                            return Err(AdbError::protocol(format!(
                                "shell v2 exit packet of {len} bytes (expected 1)"
                            )));
                        }
                        ID_STDIN | ID_STDOUT | ID_STDERR | ID_EXIT | ID_CLOSE_STDIN
                        | ID_WINDOW_SIZE => {}
                        other => {
                            return Err(AdbError::protocol(format!(
                                "unknown shell v2 packet id {other}"
                            )));
                        }
                    }
                    if len > 0 {
                        self.body = Some((id, len));
                    }
                }
                Some((id, remaining)) => {
                    let take = (remaining as usize).min(data.len());
                    let (chunk, rest) = data.split_at(take);
                    data = rest;
                    let left = remaining - take as u32;
                    self.body = if left == 0 { None } else { Some((id, left)) };
                    match id {
                        ID_STDOUT => on(ShellEvent::Stdout(chunk))?,
                        ID_STDERR => on(ShellEvent::Stderr(chunk))?,
                        ID_EXIT => {
                            self.exited = true;
                            on(ShellEvent::Exit(chunk[0]))?;
                        }
                        // stdin echo, close-stdin and window-size data mean nothing to a client: skip them.
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }
}

/// Quotes one argument for the device's `/system/bin/sh` (mksh on Android): left bare when it is made only
/// of characters no shell treats specially, otherwise single-quoted with embedded `'` written as `'\''`.
pub fn shell_quote(arg: &str) -> String {
    let safe = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | '-' | '.' | '/' | ':' | ',' | '+' | '@' | '%' | '=')
    };
    if !arg.is_empty() && arg.chars().all(safe) {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(id: u8, data: &[u8]) -> Vec<u8> {
        let mut p = vec![id];
        p.extend_from_slice(&(data.len() as u32).to_le_bytes());
        p.extend_from_slice(data);
        p
    }

    /// stdout, stderr and exit status of a decoded stream.
    type Decoded = (Vec<u8>, Vec<u8>, Option<u8>);

    /// Decodes `stream` fed in pieces of `step` bytes.
    fn decode(stream: &[u8], step: usize) -> Result<Decoded, AdbError> {
        let mut d = ShellV2Decoder::new();
        let (mut out, mut err, mut exit) = (Vec::new(), Vec::new(), None);
        for chunk in stream.chunks(step.max(1)) {
            d.feed(chunk, |ev| {
                match ev {
                    ShellEvent::Stdout(b) => out.extend_from_slice(b),
                    ShellEvent::Stderr(b) => err.extend_from_slice(b),
                    ShellEvent::Exit(c) => exit = Some(c),
                }
                Ok(())
            })?;
        }
        Ok((out, err, exit))
    }

    #[test]
    fn split_and_merged_packets_decode_the_same() {
        let mut stream = packet(1, b"hello ");
        stream.extend(packet(2, b"oops\n"));
        stream.extend(packet(5, b"\x00\x18\x00\x50")); // window size: ignored
        stream.extend(packet(1, b""));
        stream.extend(packet(1, b"world\n"));
        stream.extend(packet(3, &[42]));
        for step in [1, 2, 3, 5, 7, stream.len()] {
            let (out, err, exit) = decode(&stream, step).unwrap();
            assert_eq!(out, b"hello world\n", "step {step}");
            assert_eq!(err, b"oops\n");
            assert_eq!(exit, Some(42));
        }
    }

    #[test]
    fn bytes_after_exit_are_ignored_and_missing_exit_is_visible() {
        let mut stream = packet(1, b"x");
        stream.extend(packet(3, &[0]));
        stream.extend(b"trailing garbage");
        assert_eq!(
            decode(&stream, 4).unwrap(),
            (b"x".to_vec(), vec![], Some(0))
        );
        let (_, _, exit) = decode(&packet(1, b"partial"), 3).unwrap();
        assert_eq!(exit, None, "no exit packet must stay visible to the caller");
    }

    #[test]
    fn garbage_is_a_protocol_error_not_a_panic() {
        assert!(matches!(
            decode(b"HTTP/1.1 200 OK\r\n", 4),
            Err(AdbError::Protocol { .. })
        ));
        assert!(matches!(
            decode(&packet(3, &[1, 2]), 2),
            Err(AdbError::Protocol { .. })
        ));
        assert!(matches!(
            decode(&packet(3, &[]), 2),
            Err(AdbError::Protocol { .. })
        ));
        // A huge announced length allocates nothing: the data just never completes.
        let mut huge = vec![1u8];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(b"abc");
        assert_eq!(decode(&huge, 2).unwrap(), (b"abc".to_vec(), vec![], None));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..2000 {
            let len = (next() % 64) as usize;
            // Mostly small ids and lengths, so that valid packets and garbage both occur.
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    if i % 5 == 0 {
                        (next() % 7) as u8
                    } else {
                        (next() % 4) as u8
                    }
                })
                .collect();
            let step = 1 + (round % 7);
            let _ = decode(&bytes, step);
        }
    }

    #[test]
    fn output_text_and_success() {
        let o = ShellOutput {
            stdout: b"value\r\n\n".to_vec(),
            stderr: b"warn\n".to_vec(),
            exit_code: Some(0),
        };
        assert_eq!(o.stdout_text(), "value");
        assert_eq!(o.stderr_text(), "warn");
        assert!(o.success());
        let legacy = ShellOutput {
            exit_code: None,
            ..o.clone()
        };
        assert!(!legacy.success());
        assert!(!format!("{o:?}").contains("value"));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("content://sms/sent"), "content://sms/sent");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("Wei Ling Tan"), "'Wei Ling Tan'");
        assert_eq!(
            shell_quote("it's $HOME; rm -rf /"),
            "'it'\\''s $HOME; rm -rf /'"
        );
        assert_eq!(shell_quote("a\nb"), "'a\nb'");
    }
}
