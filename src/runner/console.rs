//! The Android emulator's console, for `receive-sms`: an SMS that arrives from outside the phone.
//!
//! Owns finding the console of a device (`emulator-5554` → TCP 127.0.0.1:5554; adb's own rule in
//! adb/client/console.cpp), the auth token (`~/.emulator_console_auth_token`), and one
//! conversation: banner, `auth TOKEN`, `sms send NUMBER TEXT`, `quit`. The protocol is the one
//! docs/research/emulator-console.md reads from the emulator's console.cpp and console_auth.cpp:
//! every line the console writes ends with CRLF, a command succeeds with `OK`, fails with one
//! `KO: …` line; the text of `sms send` understands the escapes `\n`, `\xNN`, `\uNNNN`, `\\`.
//!
//! Exercised against a console written from that description in this module's tests (a TCP
//! listener on loopback), not against a real emulator: none was available, and the virtual handset
//! has no console.
//!
//! Must not touch: adb, the capture, anything but 127.0.0.1.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Bytes read from the console per conversation (its banner and replies are a few lines).
const MAX_REPLY: usize = 16 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The console port of a device, when its serial is an emulator's (`emulator-5554`).
pub(super) fn console_port(serial: &str) -> Option<u16> {
    serial
        .strip_prefix("emulator-")?
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
}

/// Where the emulator keeps its console token: `$ANDROID_EMULATOR_HOME` when set (unverified:
/// the research did not settle which variable newer emulators read), else `$HOME`.
pub(super) fn token_path() -> Option<PathBuf> {
    let home = std::env::var_os("ANDROID_EMULATOR_HOME").or_else(|| std::env::var_os("HOME"))?;
    Some(PathBuf::from(home).join(".emulator_console_auth_token"))
}

/// A number the console accepts: `[+](0-9)*`, at least one digit.
pub(super) fn valid_number(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The text as `sms send` reads it: backslashes doubled, line breaks `\n`, other control
/// characters `\xNN`, non-ASCII `\uNNNN`. `None` for characters beyond the BMP (the console's
/// escapes are 16-bit; whether it pairs surrogates was not checked).
pub(super) fn escape_text(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_ascii() => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            _ => return None,
        }
    }
    Some(out)
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot reach the emulator console at 127.0.0.1:{port}: {detail}")]
    Unreachable { port: u16, detail: String },
    #[error("the emulator console refused the auth token from {path}: {reply}")]
    Auth { path: String, reply: String },
    #[error("the emulator console answered `sms send` with: {0}")]
    Refused(String),
    #[error("the emulator console: {0}")]
    Protocol(String),
}

struct Conversation {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    read: usize,
}

impl Conversation {
    /// Lines up to and including the one that ends the reply: `OK`, or a `KO: …` line.
    async fn reply(&mut self) -> Result<(Vec<String>, Result<(), String>), ConsoleError> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(TIMEOUT, self.reader.read_line(&mut line))
                .await
                .map_err(|_| ConsoleError::Protocol(format!("no reply within {TIMEOUT:?}")))?
                .map_err(|e| ConsoleError::Protocol(e.to_string()))?;
            if n == 0 {
                return Err(ConsoleError::Protocol(
                    "the console closed the connection".into(),
                ));
            }
            self.read += n;
            if self.read > MAX_REPLY {
                return Err(ConsoleError::Protocol("the reply is too long".into()));
            }
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            if line == "OK" {
                return Ok((lines, Ok(())));
            }
            if line.starts_with("KO:") {
                return Ok((lines, Err(tattle_analysis::sanitize(&line))));
            }
            lines.push(line);
        }
    }

    async fn send(&mut self, line: &str) -> Result<(), ConsoleError> {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| ConsoleError::Protocol(e.to_string()))
    }
}

/// Delivers an SMS from `from` with `text` to the emulator whose console listens on `port`.
pub(super) async fn sms_send(
    port: u16,
    token: Option<&str>,
    token_file: &str,
    from: &str,
    text: &str,
) -> Result<(), ConsoleError> {
    let unreachable = |detail: String| ConsoleError::Unreachable { port, detail };
    let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(("127.0.0.1", port)))
        .await
        .map_err(|_| unreachable("no answer".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let (read, writer) = stream.into_split();
    let mut c = Conversation {
        reader: BufReader::new(read),
        writer,
        read: 0,
    };
    let (banner, _) = c.reply().await?;
    if banner.iter().any(|l| l.contains("Authentication required")) {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(ConsoleError::Auth {
                path: token_file.into(),
                reply: "the console wants a token and the file is missing or empty".into(),
            });
        };
        c.send(&format!("auth {token}")).await?;
        if let (_, Err(ko)) = c.reply().await? {
            return Err(ConsoleError::Auth {
                path: token_file.into(),
                reply: ko,
            });
        }
    }
    let escaped = escape_text(text)
        .ok_or_else(|| ConsoleError::Protocol("the text has characters beyond U+FFFF".into()))?;
    c.send(&format!("sms send {from} {escaped}")).await?;
    let (_, result) = c.reply().await?;
    let _ = c.send("quit").await;
    result.map_err(ConsoleError::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A console as docs/research/emulator-console.md §2–§5 describes it: the auth banner, `auth`
    /// against `token`, `sms send` checks, CRLF line ends. Returns the port and what it received.
    async fn fake_console(token: &'static str) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(
                b"Android Console: Authentication required\r\n\
                  Android Console: type 'auth <auth_token>' to authenticate\r\n\
                  Android Console: you can find your <auth_token> in \r\n\
                  '/home/u/.emulator_console_auth_token'\r\nOK\r\n",
            )
            .await
            .unwrap();
            let mut got = Vec::new();
            let mut buf = Vec::new();
            let mut authed = false;
            loop {
                let mut byte = [0u8; 1];
                if s.read(&mut byte).await.unwrap_or(0) == 0 {
                    break;
                }
                if byte[0] != b'\n' {
                    buf.push(byte[0]);
                    continue;
                }
                let line = String::from_utf8(std::mem::take(&mut buf)).unwrap();
                got.push(line.clone());
                let reply: &[u8] = if let Some(t) = line.strip_prefix("auth ") {
                    if t == token {
                        authed = true;
                        b"Android Console: type 'help' for a list of commands\r\nOK\r\n"
                    } else {
                        b"KO: authentication token does not match ~/.emulator_console_auth_token\r\n"
                    }
                } else if line == "quit" {
                    break;
                } else if !authed {
                    b"KO: unknown command, try 'help'\r\n"
                } else if let Some(rest) = line.strip_prefix("sms send ") {
                    match rest.split_once(' ') {
                        Some((n, _)) if valid_number(n) => b"OK\r\n",
                        Some(_) => b"KO: bad phone number format, must be [+](0-9)*\r\n",
                        None => {
                            b"KO: missing argument, try 'sms send <phonenumber> <text message>'\r\n"
                        }
                    }
                } else {
                    b"KO: unknown command, try 'help'\r\n"
                };
                s.write_all(reply).await.unwrap();
            }
            got
        });
        (port, task)
    }

    #[tokio::test]
    async fn sms_send_authenticates_and_escapes() {
        let (port, console) = fake_console("s3cr3tT0k3n12345").await;
        sms_send(
            port,
            Some("s3cr3tT0k3n12345"),
            "~/.t",
            "+6598765432",
            "hi \\ there\nZoë",
        )
        .await
        .unwrap();
        let got = console.await.unwrap();
        assert_eq!(
            got,
            [
                "auth s3cr3tT0k3n12345",
                "sms send +6598765432 hi \\\\ there\\nZo\\u00eb",
                "quit"
            ]
        );
    }

    #[tokio::test]
    async fn refusals_are_errors_with_the_console_s_words() {
        let (port, _console) = fake_console("right").await;
        let e = sms_send(
            port,
            Some("wrong"),
            "/home/u/.emulator_console_auth_token",
            "+1",
            "x",
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().ends_with(
                "/home/u/.emulator_console_auth_token: KO: authentication token does not match \
                 ~/.emulator_console_auth_token"
            ),
            "{e}"
        );
        let (port, _console) = fake_console("t").await;
        let e = sms_send(port, Some("t"), "f", "12a", "x")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("bad phone number format"), "{e}");
        let (port, _console) = fake_console("t").await;
        let e = sms_send(port, None, "f", "+1", "x").await.unwrap_err();
        assert!(e.to_string().contains("missing or empty"), "{e}");
        // Nothing listening.
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let e = sms_send(port, None, "f", "+1", "x").await.unwrap_err();
        assert!(matches!(e, ConsoleError::Unreachable { .. }), "{e}");
    }

    #[test]
    fn serials_numbers_and_text() {
        assert_eq!(console_port("emulator-5554"), Some(5554));
        assert_eq!(console_port("127.0.0.1:5555"), None);
        assert_eq!(console_port("emulator-x"), None);
        assert!(valid_number("+6598765432") && valid_number("5554"));
        assert!(!valid_number("+") && !valid_number("65 98") && !valid_number(""));
        assert_eq!(escape_text("a\tb\u{7f}").unwrap(), "a\\x09b\\x7f");
        assert_eq!(escape_text("🙂"), None);
    }
}
