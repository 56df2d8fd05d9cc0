//! TLS key logs: the NSS key log format (RFC 9850; what `SSLKEYLOGFILE`, PCAPdroid, mitmproxy,
//! curl, `openssl s_client -keylogfile` and pcapng Decryption Secrets Blocks carry) parsed into a map
//! from a connection's client random to its secrets — the first stage of decrypting TLS
//! (docs/research/tls-decryption-design.md §2.1, §8.9).
//!
//! Each line is `LABEL SP client_random SP secret`, both in hex (either case). `#` starts a comment;
//! blank lines, CRLF and extra spaces or tabs are tolerated. Labels the decryption does not use
//! (`EXPORTER_SECRET`, `ECH_SECRET`, `RSA`, …) are counted, not errors. A line with a wrong field
//! count, bad hex, a client random that is not 32 bytes, a `CLIENT_RANDOM` master secret that is not
//! 48 bytes, or a TLS 1.3 secret that is not 32 or 48 bytes is skipped and counted as malformed
//! (the first such line is remembered, for the message). A later line for the same label and random
//! wins, as in Wireshark.
//!
//! Owns: the format and the map. Must not touch: files (the caller reads them; the crate does no
//! I/O), the decryption itself. Never logs a secret.

use std::collections::HashMap;

/// One traffic secret of TLS 1.3 (32 bytes with SHA-256 suites, 48 with SHA-384), without heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret {
    len: u8,
    bytes: [u8; 48],
}

impl Secret {
    fn new(bytes: &[u8]) -> Option<Secret> {
        if bytes.len() != 32 && bytes.len() != 48 {
            return None;
        }
        let mut s = Secret {
            len: bytes.len() as u8,
            bytes: [0; 48],
        };
        s.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(s)
    }

    /// The secret's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Key material must never reach a log or a report: only its length is shown.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.len)
    }
}

/// What a key log holds for one connection (one client random).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Secrets {
    /// TLS 1.2's master secret (`CLIENT_RANDOM`).
    pub master: Option<[u8; 48]>,
    /// `CLIENT_EARLY_TRAFFIC_SECRET` (0-RTT).
    pub client_early: Option<Secret>,
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET`.
    pub client_handshake: Option<Secret>,
    /// `SERVER_HANDSHAKE_TRAFFIC_SECRET`.
    pub server_handshake: Option<Secret>,
    /// `CLIENT_TRAFFIC_SECRET_0`: the client's application data.
    pub client_traffic_0: Option<Secret>,
    /// `SERVER_TRAFFIC_SECRET_0`.
    pub server_traffic_0: Option<Secret>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let has = |b: bool| if b { "present" } else { "-" };
        f.debug_struct("Secrets")
            .field("master", &has(self.master.is_some()))
            .field("client_handshake", &has(self.client_handshake.is_some()))
            .field("client_traffic_0", &has(self.client_traffic_0.is_some()))
            .finish_non_exhaustive()
    }
}

/// What one `add_text` read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLogStats {
    /// Lines that were not blank and not comments.
    pub lines: u64,
    /// Secrets taken (one per line).
    pub secrets: u64,
    /// Lines with a well-formed label the decryption does not use.
    pub other_labels: u64,
    /// Lines skipped as malformed.
    pub malformed: u64,
    /// The 1-based number of the first malformed line.
    pub first_malformed_line: Option<u64>,
}

impl KeyLogStats {
    /// Adds the counts of another reading (the first malformed line stays the earliest read).
    pub fn add(&mut self, other: &KeyLogStats) {
        self.lines += other.lines;
        self.secrets += other.secrets;
        self.other_labels += other.other_labels;
        self.malformed += other.malformed;
        if self.first_malformed_line.is_none() {
            self.first_malformed_line = other.first_malformed_line;
        }
    }
}

/// Client random → secrets, from any number of key logs.
#[derive(Debug, Default, Clone)]
pub struct KeyLog {
    map: HashMap<[u8; 32], Secrets>,
}

/// Labels that are well-formed key log lines but carry nothing the decryption uses.
const OTHER_LABELS: &[&str] = &[
    "EXPORTER_SECRET",
    "EARLY_EXPORTER_SECRET",
    "ECH_SECRET",
    "ECH_CONFIG",
    "RSA",
    "PMS_CLIENT_RANDOM",
];

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl KeyLog {
    /// An empty key log.
    pub fn new() -> KeyLog {
        KeyLog::default()
    }

    /// Connections with at least one secret.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no secret is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The secrets of the connection whose ClientHello carried `client_random`.
    pub fn get(&self, client_random: &[u8; 32]) -> Option<&Secrets> {
        self.map.get(client_random)
    }

    /// Adds every line of `text` (a key log file, or a Decryption Secrets Block's `TLSK` data) and
    /// says what was taken and what was skipped. Never fails: a bad line is counted.
    pub fn add_text(&mut self, text: &[u8]) -> KeyLogStats {
        self.add_text_noting(text, &mut Vec::new())
    }

    /// `add_text`, and the client random of every secret taken pushed to `noted` (the flows
    /// waiting for them are looked up by it).
    pub(crate) fn add_text_noting(
        &mut self,
        text: &[u8],
        noted: &mut Vec<[u8; 32]>,
    ) -> KeyLogStats {
        let mut stats = KeyLogStats::default();
        for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(raw);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            stats.lines += 1;
            match self.add_line(line) {
                Line::Secret(random) => {
                    stats.secrets += 1;
                    noted.push(random);
                }
                Line::Other => stats.other_labels += 1,
                Line::Malformed => {
                    stats.malformed += 1;
                    stats.first_malformed_line.get_or_insert(index as u64 + 1);
                }
            }
        }
        stats
    }

    fn add_line(&mut self, line: &str) -> Line {
        let mut fields = line.split_ascii_whitespace();
        let (Some(label), Some(random), Some(secret), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            // `RSA Session-ID:…` and similar old forms have other shapes: known label, not ours.
            return if OTHER_LABELS.contains(&line.split_ascii_whitespace().next().unwrap_or("")) {
                Line::Other
            } else {
                Line::Malformed
            };
        };
        if OTHER_LABELS.contains(&label) {
            return Line::Other;
        }
        let (Some(random), Some(secret)) = (hex(random), hex(secret)) else {
            return Line::Malformed;
        };
        let Ok(random) = <[u8; 32]>::try_from(random.as_slice()) else {
            return Line::Malformed;
        };
        if label == "CLIENT_RANDOM" {
            let Ok(master) = <[u8; 48]>::try_from(secret.as_slice()) else {
                return Line::Malformed;
            };
            self.map.entry(random).or_default().master = Some(master);
            return Line::Secret(random);
        }
        let Some(secret) = Secret::new(&secret) else {
            return Line::Malformed;
        };
        let slot: fn(&mut Secrets) -> &mut Option<Secret> = match label {
            "CLIENT_EARLY_TRAFFIC_SECRET" => |s| &mut s.client_early,
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => |s| &mut s.client_handshake,
            "SERVER_HANDSHAKE_TRAFFIC_SECRET" => |s| &mut s.server_handshake,
            "CLIENT_TRAFFIC_SECRET_0" => |s| &mut s.client_traffic_0,
            "SERVER_TRAFFIC_SECRET_0" => |s| &mut s.server_traffic_0,
            _ => return Line::Malformed,
        };
        *slot(self.map.entry(random).or_default()) = Some(secret);
        Line::Secret(random)
    }
}

enum Line {
    Secret([u8; 32]),
    Other,
    Malformed,
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    const R2: &str = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";

    fn random(hex_text: &str) -> [u8; 32] {
        hex(&hex_text.to_ascii_lowercase())
            .unwrap()
            .try_into()
            .unwrap()
    }

    #[test]
    fn tls12_and_tls13_lines_in_every_layout() {
        let master = "ab".repeat(48);
        let s32 = "cd".repeat(32);
        let s48 = "EF".repeat(48);
        let text = format!(
            "# SSL/TLS secrets log file, generated by NSS\r\n\
             CLIENT_RANDOM {R1} {master}\r\n\
             \n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET\t{R2}   {s32}\n\
             CLIENT_TRAFFIC_SECRET_0 {R2} {s48}\n\
             SERVER_TRAFFIC_SECRET_0 {R2} {s32}\n\
             EXPORTER_SECRET {R2} {s32}\n"
        );
        let mut log = KeyLog::new();
        let stats = log.add_text(text.as_bytes());
        assert_eq!(
            stats,
            KeyLogStats {
                lines: 5,
                secrets: 4,
                other_labels: 1,
                malformed: 0,
                first_malformed_line: None
            }
        );
        assert_eq!(log.len(), 2);
        assert_eq!(log.get(&random(R1)).unwrap().master, Some([0xab; 48]));
        let s = log.get(&random(R2)).unwrap();
        assert_eq!(s.client_handshake.unwrap().bytes(), [0xcd; 32]);
        assert_eq!(s.client_traffic_0.unwrap().bytes(), [0xef; 48]);
        assert!(s.server_traffic_0.is_some() && s.client_early.is_none());
    }

    #[test]
    fn malformed_lines_are_counted_and_the_first_remembered() {
        let good = format!("CLIENT_TRAFFIC_SECRET_0 {R1} {}\n", "11".repeat(32));
        let text = format!(
            "{good}\
             CLIENT_RANDOM {R1}\n\
             CLIENT_RANDOM {R1} {}\n\
             CLIENT_TRAFFIC_SECRET_0 {} {}\n\
             CLIENT_TRAFFIC_SECRET_0 {R1} {}\n\
             CLIENT_TRAFFIC_SECRET_0 {R1} 1\n\
             CLIENT_TRAFFIC_SECRET_0 {R1} zz{}\n\
             WHAT_IS_THIS {R1} {}\n\
             RSA 0011 2233\n",
            "22".repeat(47),
            "33".repeat(31),
            "44".repeat(32),
            "55".repeat(40),
            "66".repeat(31),
            "77".repeat(32),
        );
        let mut log = KeyLog::new();
        let stats = log.add_text(text.as_bytes());
        // An unknown label does not leave an empty entry behind.
        log.add_text(format!("WHAT_IS_THIS {R2} {}\n", "77".repeat(32)).as_bytes());
        assert_eq!(stats.lines, 9);
        assert_eq!((stats.secrets, stats.other_labels), (1, 1));
        assert_eq!(stats.malformed, 7);
        assert_eq!(stats.first_malformed_line, Some(2));
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn the_last_line_for_a_label_and_random_wins_and_secrets_never_print() {
        let mut log = KeyLog::new();
        log.add_text(format!("CLIENT_TRAFFIC_SECRET_0 {R1} {}\n", "01".repeat(32)).as_bytes());
        log.add_text(format!("CLIENT_TRAFFIC_SECRET_0 {R1} {}\n", "02".repeat(32)).as_bytes());
        let s = log.get(&random(R1)).unwrap();
        assert_eq!(s.client_traffic_0.unwrap().bytes(), [2; 32]);
        let shown = format!("{log:?} {s:?}");
        assert!(
            !shown.contains("0202") && !shown.contains("[2, 2"),
            "{shown}"
        );
    }

    #[test]
    fn binary_and_huge_input_is_linear_and_never_panics() {
        let mut log = KeyLog::new();
        let junk: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let stats = log.add_text(&junk);
        assert_eq!(stats.secrets, 0);
        let line = format!("CLIENT_RANDOM {R1} {}\n", "ab".repeat(48));
        let big = line.repeat(100_000);
        let stats = log.add_text(big.as_bytes());
        assert_eq!((stats.lines, stats.secrets), (100_000, 100_000));
        assert_eq!(log.len(), 1);
    }
}
