//! tattle's client of the Android emulator's console, for the `emulator` capture source: the emulator
//! itself writes the capture file (`network capture start FILE` … `network capture stop`), so a run on
//! an emulator needs neither root nor tcpdump in the image.
//!
//! The protocol is the one docs/research/emulator-console.md reads from the emulator's sources
//! (console.cpp, console_auth.cpp, qemu-tcpdump.c): a banner ending in `OK`, `auth TOKEN` when the
//! banner says "Authentication required" (the token is the trimmed contents of
//! `~/.emulator_console_auth_token` of the user running the emulator), then one command per line, each
//! answered by lines ending with `OK` or one `KO: …` line. Two replies break that rule and are handled
//! here: `network capture start` fails with `KO: could not start capture: …` and **no line ending**, and
//! a console whose `network capture` is a stub answers nothing at all; so every reply is read with an
//! idle timeout (a `KO:` with no line ending followed by silence is the reply) under an overall one.
//!
//! Finding the console: an emulator's adb serial is `emulator-N`, where N is its console port (adb's
//! own rule, `adb emu` reads it the same way); other serials (an emulator registered with `adb connect
//! 127.0.0.1:5555`, one with `-ports C,A`) need the console port given explicitly.
//!
//! The token is read from the file, sent once, and dropped: it is never logged, never part of an error
//! or a `Debug` output. The path the console's banner names is shown in errors (it says where the
//! emulator keeps its token) but never read: a program posing as a console on the port would otherwise
//! choose which of the user's files tattle sends it.
//!
//! Owns: the console conversation and its errors. Must not touch: the capture file's contents (the
//! capture source reads it), adb, the terminal. `runner` has an older, narrower client for `sms send`
//! (`runner::console`); this one is the general one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// console_auth.cpp `tokenGetPathDefault`: `<home>/.emulator_console_auth_token`.
pub const TOKEN_FILE_NAME: &str = ".emulator_console_auth_token";
/// A reply longer than this is no console's (`help` is under 1 KiB: Android Studio requires it).
const MAX_REPLY: usize = 64 * 1024;
/// The first line of the auth banner (console.cpp `control_global_accept`; "Studio looks for the first
/// line of this message /exactly/").
const AUTH_REQUIRED: &str = "Android Console: Authentication required";
/// Every banner's console line starts with this (console.cpp `control_global_accept`,
/// `control_send_help_prompt`).
const BANNER_PREFIX: &str = "Android Console:";

/// The console port of an emulator's adb serial: `emulator-5554` → 5554 (adb's
/// `getEmulatorSerialString`; `adb emu` parses it with `sscanf(serial, "emulator-%d")`).
pub fn console_port_from_serial(serial: &str) -> Option<u16> {
    let digits = serial.strip_prefix("emulator-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u16>().ok().filter(|&p| p > 0)
}

/// The emulator's token file for this user: `$HOME/.emulator_console_auth_token` (console_auth.cpp
/// joins `System::getHomeDirectory()`, as adb's `emu` does with its own home). `None` without `$HOME`.
pub fn default_token_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(TOKEN_FILE_NAME))
}

/// Where the console is and how to talk to it.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// The console's TCP port on 127.0.0.1 (the console listens on loopback only).
    pub port: u16,
    /// The token file; `None`: [`default_token_file`].
    pub token_file: Option<PathBuf>,
    /// For the TCP connection and the banner.
    pub connect_timeout: Duration,
    /// For a whole reply.
    pub reply_timeout: Duration,
    /// A reply that stopped mid-line (`KO: could not start capture: …` has no line ending) is taken as
    /// complete after this much silence.
    pub idle_timeout: Duration,
}

impl ConsoleSettings {
    /// The console on `port`, the default token file, timeouts for a local emulator.
    pub fn new(port: u16) -> ConsoleSettings {
        ConsoleSettings {
            port,
            token_file: None,
            connect_timeout: Duration::from_secs(5),
            reply_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_millis(500),
        }
    }

    /// The console of the device `serial`: `console_port` when given (an emulator known under another
    /// serial, or started with `-ports`), else the port in `emulator-N`.
    pub fn for_device(
        serial: &str,
        console_port: Option<u16>,
    ) -> Result<ConsoleSettings, ConsoleError> {
        match console_port.or_else(|| console_port_from_serial(serial)) {
            Some(port) => Ok(ConsoleSettings::new(port)),
            None => Err(ConsoleError::NotAnEmulator {
                serial: tattle_analysis::sanitize(serial),
            }),
        }
    }

    /// The same with another token file.
    pub fn with_token_file(mut self, path: impl Into<PathBuf>) -> ConsoleSettings {
        self.token_file = Some(path.into());
        self
    }
}

/// Why the console could not be used, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(
        "the device `{serial}` is not known as an emulator (its serial is not emulator-NNNN), so \
         tattle cannot tell where its console is: give the console port (an emulator's console is \
         the even port before its adb port: adb on 5555 → console 5554)"
    )]
    NotAnEmulator { serial: String },
    #[error(
        "no emulator console on 127.0.0.1:{port}: {detail} (an emulator's console is on the port of \
         its serial, emulator-5554 → 5554; `adb devices` lists the serials)"
    )]
    NoConsole { port: u16, detail: String },
    #[error(
        "the emulator console on 127.0.0.1:{port} refused authentication with the token in \
         {token_file}: {reason}. The console wants the contents of the token file of the user who \
         runs the emulator{named}: copy that file to {token_file} (or point tattle at it), or empty \
         it to turn authentication off (the emulator reads it at every connection)"
    )]
    AuthRefused {
        port: u16,
        token_file: String,
        reason: String,
        /// ` (the console names '…')`, from its banner, or empty.
        named: String,
    },
    #[error(
        "the emulator console on 127.0.0.1:{port} cannot capture: {reply}. Instead, start the \
         emulator with `-tcpdump FILE` (it captures every packet from boot into FILE) and give \
         tattle that file as the capture source (`file:FILE`)"
    )]
    CaptureRefused { port: u16, reply: String },
    #[error(
        "the emulator console on 127.0.0.1:{port} went away while {during} ({detail}): the emulator \
         was stopped or crashed; what it captured so far is in its capture file, complete up to its \
         last full record"
    )]
    Gone {
        port: u16,
        during: String,
        detail: String,
    },
    #[error("the emulator console on 127.0.0.1:{port} did not answer `{command}` within {after:?}")]
    Timeout {
        port: u16,
        command: String,
        after: Duration,
    },
    #[error("the emulator console on 127.0.0.1:{port} answered `{command}` with: {reply}")]
    Refused {
        port: u16,
        command: String,
        reply: String,
    },
    #[error("the capture file {path}: {why}")]
    BadPath { path: String, why: &'static str },
}

/// How a reply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A line `OK`.
    Ok,
    /// A `KO: …` line (sanitized).
    Ko(String),
    /// A `KO: …` with no line ending, taken after the idle timeout (sanitized).
    UnterminatedKo(String),
}

/// One reply: the lines before its end (sanitized), and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub lines: Vec<String>,
    pub outcome: Outcome,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    /// The `KO:` text, when the reply is a failure.
    pub fn ko(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Ok => None,
            Outcome::Ko(t) | Outcome::UnterminatedKo(t) => Some(t),
        }
    }
}

/// What the reader saw while waiting for a reply.
enum ReadError {
    Closed(String),
    Timeout,
    TooLong,
}

/// Lines from the console, with the byte that ended a line kept apart from a line still waiting.
struct Lines {
    read: OwnedReadHalf,
    pending: Vec<u8>,
}

impl Lines {
    /// The next reply: lines until `OK` or a `KO:` line, or a pending `KO:` followed by `idle` of
    /// silence; `overall` bounds the whole. Nothing but the reply is consumed.
    async fn reply(&mut self, overall: Duration, idle: Duration) -> Result<Reply, ReadError> {
        let deadline = tokio::time::Instant::now() + overall;
        let mut lines = Vec::new();
        let mut total = 0usize;
        loop {
            while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.pending.drain(..=nl).collect();
                let text = String::from_utf8_lossy(&raw[..nl]);
                let text = text.trim_end_matches('\r');
                if text == "OK" {
                    return Ok(Reply {
                        lines,
                        outcome: Outcome::Ok,
                    });
                }
                if text.starts_with("KO:") {
                    return Ok(Reply {
                        lines,
                        outcome: Outcome::Ko(tattle_analysis::sanitize(text)),
                    });
                }
                lines.push(tattle_analysis::sanitize(text));
            }
            // A partial `KO:` line waits only `idle` for more; anything else waits for the deadline.
            let unterminated_ko = self.pending.starts_with(b"KO:");
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(ReadError::Timeout);
            }
            let wait = if unterminated_ko {
                idle.min(deadline - now)
            } else {
                deadline - now
            };
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(wait, self.read.read(&mut buf)).await {
                Err(_) if unterminated_ko => {
                    let text = String::from_utf8_lossy(&self.pending).into_owned();
                    self.pending.clear();
                    return Ok(Reply {
                        lines,
                        outcome: Outcome::UnterminatedKo(tattle_analysis::sanitize(&text)),
                    });
                }
                Err(_) => return Err(ReadError::Timeout),
                Ok(Ok(0)) => return Err(ReadError::Closed("the connection was closed".into())),
                Ok(Err(e)) => return Err(ReadError::Closed(e.to_string())),
                Ok(Ok(n)) => {
                    total += n;
                    if total > MAX_REPLY {
                        return Err(ReadError::TooLong);
                    }
                    self.pending.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
}

/// One conversation with an emulator's console, authenticated when the console asked for it.
pub struct EmulatorConsole {
    port: u16,
    lines: Lines,
    write: OwnedWriteHalf,
    settings: ConsoleSettings,
    authenticated: bool,
}

impl std::fmt::Debug for EmulatorConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConsole")
            .field("port", &self.port)
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

impl EmulatorConsole {
    /// Connects, reads the banner, and authenticates when the console asks for it (with the token
    /// file of `settings`).
    pub async fn connect(settings: &ConsoleSettings) -> Result<EmulatorConsole, ConsoleError> {
        let port = settings.port;
        let no_console = |detail: String| ConsoleError::NoConsole { port, detail };
        let stream = match tokio::time::timeout(
            settings.connect_timeout,
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            Err(_) => return Err(no_console("no answer to the connection".into())),
            Ok(Err(e)) => return Err(no_console(e.to_string())),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let mut console = EmulatorConsole {
            port,
            lines: Lines {
                read,
                pending: Vec::new(),
            },
            write,
            settings: settings.clone(),
            authenticated: false,
        };
        let banner = match console
            .lines
            .reply(settings.connect_timeout, settings.idle_timeout)
            .await
        {
            Ok(b) => b,
            // console.cpp closes a client at once when the emulator cannot read or create its token
            // file (CONSOLE_AUTH_STATUS_ERROR).
            Err(ReadError::Closed(_)) => {
                return Err(no_console(
                    "something accepted the connection and closed it without a banner; an emulator \
                     does that when it cannot read or create its token file (it printed `ERROR: \
                     Unable to access '…': emulator console will not work` when it started)"
                        .into(),
                ));
            }
            Err(ReadError::Timeout) => {
                return Err(no_console(format!(
                    "the port answers but sent no console banner within {:?}",
                    settings.connect_timeout
                )));
            }
            Err(ReadError::TooLong) => {
                return Err(no_console(
                    "the port sends endless text, not a banner".into(),
                ));
            }
        };
        if !banner.is_ok() || !banner.lines.iter().any(|l| l.starts_with(BANNER_PREFIX)) {
            let first = banner
                .lines
                .first()
                .cloned()
                .or_else(|| banner.ko().map(str::to_string))
                .unwrap_or_default();
            return Err(no_console(format!(
                "the port answers, but not as an emulator console (it said `{first}`)"
            )));
        }
        if banner.lines.first().is_some_and(|l| l == AUTH_REQUIRED) {
            // The banner's last line before OK is the emulator's token path, quoted.
            let named = banner
                .lines
                .iter()
                .rev()
                .find(|l| l.starts_with('\'') && l.ends_with('\'') && l.len() > 2)
                .map(|l| format!(" (the console names {l})"))
                .unwrap_or_default();
            console.authenticate(named).await?;
        }
        Ok(console)
    }

    /// The console's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the console asked for the token and took it (false when auth is off).
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    async fn authenticate(&mut self, named: String) -> Result<(), ConsoleError> {
        let token_file = self.settings.token_file.clone().or_else(default_token_file);
        let shown = token_file.as_ref().map_or_else(
            || format!("$HOME/{TOKEN_FILE_NAME} (no $HOME)"),
            |p| tattle_analysis::sanitize(&p.display().to_string()),
        );
        let port = self.port;
        let refused = |reason: String| ConsoleError::AuthRefused {
            port,
            token_file: shown.clone(),
            reason,
            named: named.clone(),
        };
        let Some(path) = token_file.as_ref() else {
            return Err(refused("there is no token file to read".into()));
        };
        let token = match read_token(path) {
            Ok(t) => t,
            Err(e) => return Err(refused(e)),
        };
        let mut line = Vec::with_capacity(token.len() + 6);
        line.extend_from_slice(b"auth ");
        line.extend_from_slice(&token);
        line.push(b'\n');
        drop(token);
        // Not through `command`: that one names the command in its errors.
        let sent = self.write_line(&line, "authenticating").await;
        line.fill(0);
        sent?;
        let reply = self.read_reply("auth <token>", "authenticating").await?;
        match reply.ko() {
            None => {
                self.authenticated = true;
                Ok(())
            }
            Some(ko) => Err(refused(format!("the console answered `{ko}`"))),
        }
    }

    async fn write_line(&mut self, line: &[u8], during: &str) -> Result<(), ConsoleError> {
        self.write
            .write_all(line)
            .await
            .map_err(|e| ConsoleError::Gone {
                port: self.port,
                during: during.to_string(),
                detail: e.to_string(),
            })
    }

    async fn read_reply(&mut self, command: &str, during: &str) -> Result<Reply, ConsoleError> {
        let (overall, idle) = (self.settings.reply_timeout, self.settings.idle_timeout);
        match self.lines.reply(overall, idle).await {
            Ok(reply) => Ok(reply),
            Err(ReadError::Closed(detail)) => Err(ConsoleError::Gone {
                port: self.port,
                during: during.to_string(),
                detail,
            }),
            Err(ReadError::Timeout) => Err(ConsoleError::Timeout {
                port: self.port,
                command: command.to_string(),
                after: overall,
            }),
            Err(ReadError::TooLong) => Err(ConsoleError::Refused {
                port: self.port,
                command: command.to_string(),
                reply: format!("more than {MAX_REPLY} bytes of text"),
            }),
        }
    }

    /// Sends one command line and returns the console's reply, whatever it is. The line must be one
    /// line of printable text (the console reads bytes up to `\n` and drops `\r`).
    pub async fn command(&mut self, line: &str) -> Result<Reply, ConsoleError> {
        if line.chars().any(char::is_control) {
            return Err(ConsoleError::Refused {
                port: self.port,
                command: tattle_analysis::sanitize(line),
                reply: "not sent: a console command is one line without control characters".into(),
            });
        }
        let shown = tattle_analysis::sanitize(line);
        let during = format!("answering `{shown}`");
        self.write_line(format!("{line}\n").as_bytes(), &during)
            .await?;
        self.read_reply(&shown, &during).await
    }

    /// Whether the console has `network capture`: `help network` lists it among the sub-commands
    /// (console.cpp `dump_help`: `   network capture          dump network packets to file`).
    pub async fn supports_capture(&mut self) -> Result<bool, ConsoleError> {
        let reply = self.command("help network").await?;
        Ok(reply.is_ok()
            && reply.lines.iter().any(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some("network") && words.next() == Some("capture")
            }))
    }

    /// `network capture start FILE`: the emulator opens FILE itself (`fopen(FILE, "wb")`, as its own
    /// user, relative to its own working directory: so the path is made absolute here) and writes
    /// every Ethernet frame of its virtual NIC into it. The file is complete only after
    /// [`capture_stop`](Self::capture_stop): the emulator buffers it like any stdio file.
    pub async fn capture_start(&mut self, file: &Path) -> Result<(), ConsoleError> {
        let path = capture_path(file)?;
        let command = format!("network capture start {path}");
        let reply = match self.command(&command).await {
            Ok(r) => r,
            // A console whose `network capture start` is a stub answers nothing (a fork found in
            // the research did exactly that).
            Err(ConsoleError::Timeout { after, .. }) => {
                return Err(ConsoleError::CaptureRefused {
                    port: self.port,
                    reply: format!("no answer to `network capture start` within {after:?}"),
                });
            }
            Err(e) => return Err(e),
        };
        match &reply.outcome {
            Outcome::Ok => Ok(()),
            Outcome::Ko(ko) | Outcome::UnterminatedKo(ko) => {
                let why = if ko.starts_with("KO: unknown command")
                    || ko.starts_with("KO:  bad sub-command")
                {
                    " (this emulator's console has no `network capture`)"
                } else if ko.starts_with("KO: could not start capture") {
                    " (the emulator opens the file itself, as the user running it: the directory \
                     must exist and be writable by that user)"
                } else {
                    ""
                };
                Err(ConsoleError::CaptureRefused {
                    port: self.port,
                    reply: format!("`{ko}`{why}"),
                })
            }
        }
    }

    /// `network capture stop`: the emulator flushes and closes the file. The console answers `OK` even
    /// when nothing was capturing.
    pub async fn capture_stop(&mut self) -> Result<(), ConsoleError> {
        let reply = self.command("network capture stop").await?;
        match reply.ko() {
            None => Ok(()),
            Some(ko) => Err(ConsoleError::Refused {
                port: self.port,
                command: "network capture stop".into(),
                reply: ko.to_string(),
            }),
        }
    }

    /// `quit`: the console closes the connection (no reply).
    pub async fn quit(mut self) {
        let _ = self.write.write_all(b"quit\n").await;
        let _ = self.write.shutdown().await;
    }
}

/// The token as the emulator compares it: the file's contents trimmed of C whitespace
/// (console_auth.cpp). Errors say why in words, never with the token.
fn read_token(path: &Path) -> Result<Vec<u8>, String> {
    let contents = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read it ({e}); the emulator writes it when it starts, in the home directory of \
             the user running it"
        )
    })?;
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = contents.iter().position(|b| !is_space(b));
    let end = contents.iter().rposition(|b| !is_space(b));
    let token = match (start, end) {
        (Some(s), Some(e)) => contents[s..=e].to_vec(),
        _ => return Err("the file is empty, but the console asks for a token".into()),
    };
    if token.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(
            "the token in it has a line break or a control character, which the console cannot \
             match"
                .into(),
        );
    }
    Ok(token)
}

/// The path as the console must get it: absolute (the emulator resolves a relative one against its
/// own working directory), valid UTF-8, no control characters (the console drops `\r` and ends the
/// command at `\n`).
fn capture_path(file: &Path) -> Result<String, ConsoleError> {
    let bad = |why| ConsoleError::BadPath {
        path: tattle_analysis::sanitize(&file.display().to_string()),
        why,
    };
    let absolute = std::path::absolute(file).map_err(|_| bad("cannot be made absolute"))?;
    let text = absolute
        .to_str()
        .ok_or_else(|| bad("is not valid UTF-8, which the console refuses"))?;
    if text.chars().any(char::is_control) {
        return Err(bad(
            "has a control character (a line break would end the console command)",
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn serials_give_console_ports() {
        assert_eq!(console_port_from_serial("emulator-5554"), Some(5554));
        assert_eq!(console_port_from_serial("emulator-5584"), Some(5584));
        for no in [
            "127.0.0.1:5555",
            "emulator-",
            "emulator-x",
            "emulator-+5554",
            "emulator-0",
            "emulator-99999",
            "Emulator-5554",
            "0123456789ABCDEF",
        ] {
            assert_eq!(console_port_from_serial(no), None, "{no}");
        }
        let explicit = ConsoleSettings::for_device("127.0.0.1:5555", Some(5554)).unwrap();
        assert_eq!(explicit.port, 5554);
        let overridden = ConsoleSettings::for_device("emulator-5554", Some(6000)).unwrap();
        assert_eq!(
            overridden.port, 6000,
            "an explicit port wins over the serial"
        );
        let e = ConsoleSettings::for_device("R58M\x1b[2J", None).unwrap_err();
        assert!(matches!(e, ConsoleError::NotAnEmulator { .. }));
        assert!(!e.to_string().contains('\x1b'), "{e}");
    }

    #[test]
    fn tokens_are_read_as_the_emulator_trims_them() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "  abc123+/==\r\n").unwrap();
        assert_eq!(read_token(&f).unwrap(), b"abc123+/==");
        std::fs::write(&f, "\n\t").unwrap();
        assert!(read_token(&f).unwrap_err().contains("empty"));
        std::fs::write(&f, "line1\nline2").unwrap();
        let e = read_token(&f).unwrap_err();
        assert!(e.contains("line break") && !e.contains("line1"), "{e}");
        let e = read_token(&dir.path().join("absent")).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn capture_paths_are_absolute_single_lines() {
        assert!(
            capture_path(Path::new("rel/x.pcap"))
                .unwrap()
                .starts_with('/')
        );
        assert_eq!(
            capture_path(Path::new("/a b/x.pcap")).unwrap(),
            "/a b/x.pcap"
        );
        assert!(matches!(
            capture_path(Path::new("/tmp/a\nnetwork capture stop")),
            Err(ConsoleError::BadPath { .. })
        ));
        use std::os::unix::ffi::OsStrExt;
        assert!(capture_path(Path::new(std::ffi::OsStr::from_bytes(b"/tmp/\xff"))).is_err());
    }

    /// Replies fed in pieces: split anywhere, the reader gives the same reply; a `KO:` without a line
    /// end is the reply after the idle timeout; garbage and silence time out; a flood is cut.
    #[tokio::test]
    async fn the_reply_reader_handles_splits_missing_line_ends_and_floods() {
        async fn feed(chunks: Vec<Vec<u8>>, overall_ms: u64) -> Result<Reply, &'static str> {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                for c in chunks {
                    if s.write_all(&c).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                tokio::time::sleep(Duration::from_millis(400)).await;
            });
            let stream = TcpStream::connect(addr).await.unwrap();
            let (read, _write) = stream.into_split();
            let mut lines = Lines {
                read,
                pending: Vec::new(),
            };
            let r = lines
                .reply(
                    Duration::from_millis(overall_ms),
                    Duration::from_millis(100),
                )
                .await;
            server.abort();
            r.map_err(|e| match e {
                ReadError::Closed(_) => "closed",
                ReadError::Timeout => "timeout",
                ReadError::TooLong => "too long",
            })
        }
        let help =
            b"allows you\r\n\r\navailable sub-commands:\r\n   network capture  dump\r\n\r\nOK\r\n";
        for split in [1, 2, 3, 7, help.len()] {
            let chunks = help.chunks(split).map(<[u8]>::to_vec).collect();
            let r = feed(chunks, 2000).await.unwrap();
            assert!(r.is_ok(), "split {split}: {r:?}");
            assert_eq!(r.lines.len(), 5);
        }
        let r = feed(
            vec![b"KO: could not start capture: No such file or directory".to_vec()],
            3000,
        )
        .await
        .unwrap();
        assert_eq!(
            r.outcome,
            Outcome::UnterminatedKo(
                "KO: could not start capture: No such file or directory".into()
            )
        );
        let r = feed(vec![b"KO: unknown command, try 'help'\r\n".to_vec()], 2000)
            .await
            .unwrap();
        assert_eq!(r.ko(), Some("KO: unknown command, try 'help'"));
        // Control characters from the console never reach an error message raw.
        let r = feed(vec![b"KO: \x1b[31mred\r\n".to_vec()], 2000)
            .await
            .unwrap();
        assert_eq!(r.ko(), Some("KO: ?[31mred"));
        assert_eq!(feed(vec![], 300).await, Err("timeout"));
        assert_eq!(feed(vec![b"no end".to_vec()], 300).await, Err("timeout"));
        let flood = vec![b'x'; 4096];
        assert_eq!(
            feed(vec![flood; (MAX_REPLY / 4096) + 2], 5000).await,
            Err("too long")
        );
    }
}
