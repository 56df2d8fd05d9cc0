//! The virtual handset's Android emulator console: the telnet-style control port an emulator opens on
//! 127.0.0.1 (5554 for the first one), so that what drives a real emulator's console — tattle's
//! `emulator` capture source, `adb emu` — can be tried against the virtual handset.
//!
//! What it speaks is the emulator's own console, read from its sources (docs/research/emulator-console.md
//! names them; every text below names the file it was copied from):
//!
//! - the banners and the auth gate of `android/android-emu/android/console.cpp` (`control_global_accept`,
//!   `main_commands_preauth`, `do_auth`), with the token file of `console_auth.cpp`: read and trimmed at
//!   every connection and every `auth`, created with a fresh 16-character token when missing, an empty
//!   file turning auth off, an unreadable one closing every client at once;
//! - the dispatcher (`control_client_do_command`, `find_command`, `dump_help`, `do_help`): `OK` after a
//!   command that succeeded, the handler's own `KO: …` line after one that failed, the group help before
//!   `KO: missing sub-command` / `KO:  bad sub-command`, HTTP request lines and bytes that are not UTF-8
//!   (the console's lenient test) answered and the connection closed;
//! - the line discipline (`control_client_read_byte`): `\r` dropped, `\n` ends a command, a line longer
//!   than 4095 bytes starts over; every write has `\r` put before a bare `\n` (`control_control_write`)
//!   and is cut at 1023 bytes (`control_vwrite`'s buffer);
//! - `help`, `help-verbose`, `ping`, `avd name`, `auth`, `quit|exit`, `kill`, and `network capture
//!   start|stop`, which write a capture file exactly as `android/android-emu/android/qemu-tcpdump.c`
//!   does: classic pcap, microsecond stamps, the host's byte order, snaplen 65535, LINKTYPE_ETHERNET,
//!   through a stdio buffer that reaches the file in whole 4096-byte steps and at `stop` (the emulator
//!   never flushes either), including the `KO: could not start capture: <strerror>` reply that has no
//!   line ending.
//!
//! The packets are the handset's own, from a packet socket on its private namespace's `lo`
//! (`network::loopback_capture`): Ethernet frames (the loopback's, with all-zero MAC addresses), each
//! once, in both directions — where the emulator taps the frames between its virtual NIC and slirp.
//! A handset on the host's loopback (the fallback) has nothing of its own to tap, so `network capture
//! start` fails there the way the emulator's fails when it cannot start a capture.
//!
//! Bounded for untrusted input: at most `MAX_SESSIONS` clients (more are closed at once, as the console
//! closes a client it will not serve), a line is at most 4095 bytes (as in the console), a client that
//! does not read its replies within `WRITE_TIMEOUT` is dropped. The capture belongs to the handset, not
//! to a client, as in the emulator: a client that leaves mid-capture leaves it running until someone
//! stops it or the handset stops (which closes the file, as the emulator's `atexit` handler does).
//!
//! Owns: the console's listener, its sessions, and the capture file it writes. Must not touch: the
//! adbd (`adbd`), what the shell does (`shell`), the handset's traffic (`network`: only its namespace's
//! loopback is read here), and anything above `vhandset` (tattle's own client is
//! `crate::emulator_console`, written separately so that tests between the two prove something).

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::network::loopback_capture::{Frame, LoopbackCapture};
use super::network::{HandsetNetwork, stopped};

/// console.cpp: `char buff[4096]` per client, and `control_client_read_byte` starts the line over
/// when `buff_len >= sizeof(buff)-1`.
pub const LINE_MAX: usize = 4095;
/// console.cpp `control_vwrite`: every formatted write goes through `static char temp[1024]`.
const WRITE_MAX: usize = 1023;
/// Clients served at once. The emulator has no limit; a handset serving untrusted local clients does.
pub const MAX_SESSIONS: usize = 16;
/// A client that does not take its reply within this is dropped (the emulator would spin in
/// `send_chunk`; a test handset must not).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// qemu-tcpdump.c `PCAP_SNAPLEN`.
const SNAPLEN: usize = 65535;
/// qemu-tcpdump.c writes with `fwrite` and never flushes: the bytes reach the file when glibc's
/// buffer fills — `st_blksize`, 4096 on the usual file systems — and at `fclose`.
const STDIO_BUFFER: usize = 4096;
/// At `stop`, how long to wait for frames that crossed the loopback before it but are not read yet.
const DRAIN_WINDOW: Duration = Duration::from_millis(20);
/// How long stopping a capture may take to flush and close its file.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// console_auth.cpp `tokenGetPathDefault`: `<home>/.emulator_console_auth_token`.
pub const TOKEN_FILE_NAME: &str = ".emulator_console_auth_token";

/// The emulator's default token file: `$HOME/.emulator_console_auth_token` (console_auth.cpp joins
/// `System::getHomeDirectory()`; which variable newer emulators read instead, if any, was not checked —
/// docs/research/emulator-console.md §2). `None` without `$HOME`.
pub fn default_token_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(TOKEN_FILE_NAME))
}

// ---------------------------------------------------------------------------------------------
// The line discipline

/// Bytes in, commands out, as console.cpp `control_client_read_byte` cuts them: `\r` is dropped, `\n`
/// ends a command, and a line that reaches `LINE_MAX` bytes starts over from its next byte (so only the
/// tail after the last wrap is ever a command). Never holds more than `LINE_MAX` bytes.
#[derive(Debug, Default)]
pub struct LineReader {
    buf: Vec<u8>,
}

impl LineReader {
    pub fn new() -> LineReader {
        LineReader::default()
    }

    /// Feeds one byte; returns the command it completed, if any.
    pub fn push(&mut self, byte: u8) -> Option<Vec<u8>> {
        match byte {
            b'\r' => None,
            b'\n' => Some(std::mem::take(&mut self.buf)),
            _ => {
                if self.buf.len() >= LINE_MAX {
                    self.buf.clear();
                }
                self.buf.push(byte);
                None
            }
        }
    }

    /// Bytes waiting for their `\n`.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// The command as the console's C string sees it: up to the first NUL.
fn c_string(line: &[u8]) -> &[u8] {
    line.iter()
        .position(|&b| b == 0)
        .map_or(line, |nul| &line[..nul])
}

/// android/base/misc/HttpUtils.cpp `httpIsRequestLine`: one of GET, HEAD, POST, PUT, DELETE, TRACE,
/// CONNECT followed by a space or tab, and a last field (trailing blanks ignored) longer than `HTTP/`
/// that starts with it.
pub fn is_http_request_line(line: &[u8]) -> bool {
    let blank = |b: u8| b == b' ' || b == b'\t';
    let method = ["GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT"]
        .iter()
        .any(|m| line.starts_with(m.as_bytes()) && line.get(m.len()).is_some_and(|&b| blank(b)));
    if !method {
        return false;
    }
    let end = line.len() - line.iter().rev().take_while(|&&b| blank(b)).count();
    let trimmed = &line[..end];
    let start = trimmed.iter().rposition(|&b| blank(b)).map_or(0, |i| i + 1);
    // `version == line`: a last field that is the whole line is no version field.
    start > 0 && trimmed.len() - start > 5 && trimmed[start..].starts_with(b"HTTP/")
}

/// android/base/misc/Utf8Utils.cpp `utf8IsValid`: only the shape of each sequence is checked (a lead
/// byte announcing 0–5 continuation bytes, each `10xxxxxx`); overlong forms and surrogates pass, as
/// they do in the console.
pub fn utf8_is_valid(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        let ch = text[i];
        let n = match ch {
            _ if ch & 0x80 == 0 => 0,
            _ if ch & 0xe0 == 0xc0 => 1,
            _ if ch & 0xf0 == 0xe0 => 2,
            _ if ch & 0xf8 == 0xf0 => 3,
            _ if ch & 0xfc == 0xf8 => 4,
            _ if ch & 0xfe == 0xfc => 5,
            _ => return false,
        };
        // The C test counts the lead byte (`end - text < n`) and then reads one byte past a short
        // sequence: the string's NUL, which is no continuation byte. Either way: too short, invalid.
        if text.len() - i - 1 < n {
            return false;
        }
        i += 1;
        for _ in 0..n {
            if text[i] & 0xc0 != 0x80 {
                return false;
            }
            i += 1;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// The token file

/// C `isspace` in the C locale, which `android::base::trim` is taken to use (console_auth.cpp trims
/// the file's contents; the trim itself was not read).
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// console_auth.cpp `tokenLoadOrCreate`: create the file (`O_CREAT|O_EXCL`, 0600) with a fresh token
/// when it does not exist, else read it and trim it. An empty result means "no auth". Called at every
/// connection and every `auth`, as the console does.
pub fn load_or_create_token(path: &Path) -> io::Result<Vec<u8>> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let token = match generate_token() {
                Ok(t) => t,
                Err(e) => {
                    drop(file);
                    let _ = std::fs::remove_file(path);
                    return Err(e);
                }
            };
            io::Write::write_all(&mut file, &token)?;
            Ok(token)
        }
        // Any failure to create (it exists, or the directory is missing) falls back to reading, as
        // the emulator's does; a read failure is the console's CONSOLE_AUTH_STATUS_ERROR.
        Err(_) => {
            let contents = std::fs::read(path)?;
            let start = contents.iter().position(|&b| !c_isspace(b));
            let end = contents.iter().rposition(|&b| !c_isspace(b));
            let trimmed = match (start, end) {
                (Some(s), Some(e)) => &contents[s..=e],
                _ => &[][..],
            };
            // The token is used as a C string (`strdup`): it ends at a NUL.
            Ok(c_string(trimmed).to_vec())
        }
    }
}

/// console_auth.cpp `tokenGenerate`: 12 random bytes (96 bits) in base64, 16 characters, no newline.
fn generate_token() -> io::Result<Vec<u8>> {
    let mut bytes = [0u8; 12];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: getrandom(2) into the unfilled tail of a live buffer.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into_bytes())
}

/// Equal, comparing every byte whatever the first difference (console.cpp `const_time_strcmp`, so
/// the reply time does not tell how much of a guess was right).
fn same_token(given: &[u8], token: &[u8]) -> bool {
    if given.len() != token.len() {
        return false;
    }
    given
        .iter()
        .zip(token)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// `strerror(errno)`, as the console prints it after `could not start capture:`.
fn strerror(errno: i32) -> String {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: strerror_r (the XSI one the libc crate binds) writes a NUL-terminated string into `buf`.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr(), buf.len()) };
    if rc != 0 {
        return format!("Unknown error {errno}");
    }
    // SAFETY: NUL-terminated by strerror_r on success.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------------------------
// The command tables

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Help,
    HelpVerbose,
    Ping,
    AvdName,
    Auth,
    Quit,
    Kill,
    CaptureStart,
    CaptureStop,
    SmsSend,
}

/// One entry of a console command table (console.cpp `CommandDefRec`): `names` separated by `|`, a
/// one-line `summary` (the C field `abstract`), the `description` help prints instead when there is
/// one, and either an action or sub-commands.
struct Command {
    names: &'static str,
    summary: &'static str,
    description: Option<&'static str>,
    action: Option<Action>,
    subs: &'static [Command],
}

// console.cpp `HELP_BASIC_COMMAND`.
const HELP: Command = Command {
    names: "help|h|?",
    summary: "print a list of commands",
    description: None,
    action: Some(Action::Help),
    subs: &[],
};
// console.cpp `HELP_VERBOSE_COMMAND`.
const HELP_VERBOSE: Command = Command {
    names: "help-verbose",
    summary: "print a list of commands with descriptions",
    description: None,
    action: Some(Action::HelpVerbose),
    subs: &[],
};
// console.cpp `PING_COMMAND`.
const PING: Command = Command {
    names: "ping",
    summary: "check if the emulator is alive",
    description: None,
    action: Some(Action::Ping),
    subs: &[],
};
// console.cpp `QUIT_COMMAND`.
const QUIT: Command = Command {
    names: "quit|exit",
    summary: "quit control session",
    description: None,
    action: Some(Action::Quit),
    subs: &[],
};
// console.cpp `vm_commands` / `vm_commands_preauth`: of the `avd` sub-commands only `name` is here
// (the handset has no VM to stop, snapshot or rewind).
const AVD_NAME: [Command; 1] = [Command {
    names: "name",
    summary: "query virtual device name",
    description: Some("'avd name' will return the name of this virtual device\r\n"),
    action: Some(Action::AvdName),
    subs: &[],
}];
// console.cpp `AVD_COMMAND(sub_commands)`.
const AVD: Command = Command {
    names: "avd",
    summary: "control virtual device execution",
    description: Some(
        "allows you to control (e.g. start/stop) the execution of the virtual device\r\n",
    ),
    action: None,
    subs: &AVD_NAME,
};
// console.cpp `network_capture_commands`.
const CAPTURE_COMMANDS: [Command; 2] = [
    Command {
        names: "start",
        summary: "start network capture",
        description: Some(
            "'network capture start <file>' starts a new capture of network packets\r\n\
             into a specific <file>. This will stop any capture already in progress.\r\n\
             the capture file can later be analyzed by tools like WireShark. It uses\r\n\
             the libpcap file format.\r\n\r\n\
             you can stop the capture anytime with 'network capture stop'\r\n",
        ),
        action: Some(Action::CaptureStart),
        subs: &[],
    },
    Command {
        names: "stop",
        summary: "stop network capture",
        description: Some(
            "'network capture stop' stops a currently running packet capture, if any.\r\n\
             you can start one with 'network capture start <file>'\r\n",
        ),
        action: Some(Action::CaptureStop),
        subs: &[],
    },
];
// console.cpp `network_commands`: only `capture` (no `status`, `speed`, `delay`: the handset's
// network has no shaper to report or change).
const NETWORK_COMMANDS: [Command; 1] = [Command {
    names: "capture",
    summary: "dump network packets to file",
    description: Some(
        "allows to start/stop capture of network packets to a file for later analysis\r\n",
    ),
    action: None,
    subs: &CAPTURE_COMMANDS,
}];

/// console.cpp `main_commands_preauth`, in its order.
static PREAUTH_COMMANDS: [Command; 6] = [
    HELP,
    HELP_VERBOSE,
    PING,
    AVD,
    // console.cpp `main_commands_preauth`: the `auth` entry.
    Command {
        names: "auth",
        summary: "user authentication for the emulator console",
        description: Some("use 'auth <auth_token>' to get extended console functionality\r\n"),
        action: Some(Action::Auth),
        subs: &[],
    },
    QUIT,
];

// console.cpp `sms_commands`: `send` (`pdu` is left out: the handset has no PDU decoder).
const SMS_COMMANDS: [Command; 1] = [Command {
    names: "send",
    summary: "send inbound SMS text message",
    description: Some(
        "'sms send <phonenumber> <message>' allows you to simulate a new inbound sms message\r\n",
    ),
    action: Some(Action::SmsSend),
    subs: &[],
}];

/// console.cpp `main_commands`, in its order, keeping only the commands the handset has.
static MAIN_COMMANDS: [Command; 8] = [
    HELP,
    HELP_VERBOSE,
    PING,
    // console.cpp `main_commands`: the `kill` entry.
    Command {
        names: "kill",
        summary: "kill the emulator instance",
        description: None,
        action: Some(Action::Kill),
        subs: &[],
    },
    // console.cpp `main_commands`: the `network` entry.
    Command {
        names: "network",
        summary: "manage network settings",
        description: Some(
            "allows you to manage the settings related to the network data connection of the\r\n\
             emulated device.\r\n",
        ),
        action: None,
        subs: &NETWORK_COMMANDS,
    },
    QUIT,
    // console.cpp `main_commands`: the `sms` entry.
    Command {
        names: "sms",
        summary: "SMS related commands",
        description: Some("allows you to simulate an inbound SMS\r\n"),
        action: None,
        subs: &SMS_COMMANDS,
    },
    AVD,
];

/// console.cpp `find_command`: the command whose name (or one of its `|` aliases) starts the input and
/// is followed by a space or the end; its arguments are what follows the input's first space, leading
/// spaces skipped, `None` when nothing is left.
fn find_command<'a>(
    input: &'a [u8],
    table: &'static [Command],
) -> Option<(&'static Command, Option<&'a [u8]>)> {
    let args = input
        .iter()
        .position(|&b| b == b' ')
        .map(|space| {
            let rest = &input[space..];
            &rest[rest.iter().take_while(|&&b| b == b' ').count()..]
        })
        .filter(|a| !a.is_empty());
    table.iter().find_map(|cmd| {
        cmd.names
            .split('|')
            .any(|alias| {
                input.starts_with(alias.as_bytes())
                    && matches!(input.get(alias.len()), None | Some(b' '))
            })
            .then_some((cmd, args))
    })
}

// ---------------------------------------------------------------------------------------------
// Replies

/// What one command writes, as the console's writes shape it.
#[derive(Debug, Default)]
struct Out {
    bytes: Vec<u8>,
}

impl Out {
    /// One `control_write`: cut at `WRITE_MAX` bytes (console.cpp `control_vwrite`), then a `\r` put
    /// before every `\n` that lacks one (console.cpp `control_control_write`).
    fn write(&mut self, text: impl AsRef<[u8]>) {
        let text = text.as_ref();
        let text = &text[..text.len().min(WRITE_MAX)];
        for (i, &b) in text.iter().enumerate() {
            if b == b'\n' && (i == 0 || text[i - 1] != b'\r') {
                self.bytes.push(b'\r');
            }
            self.bytes.push(b);
        }
    }
}

/// What the session does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Continue,
    Close,
    /// `kill`: the reply goes out, then the handset stops.
    Kill,
}

// console.cpp `control_client_do_command`.
const KO_UNKNOWN: &str = "KO: unknown command, try 'help'\r\n";
// console.cpp `control_client_do_command`.
const KO_MISSING_SUB: &str = "KO: missing sub-command\r\n";
// console.cpp `control_client_do_command` (two spaces after `KO:` in the source).
const KO_BAD_SUB: &str = "KO:  bad sub-command\r\n";
// console.cpp `control_client_do_command`.
const KO_HTTP: &str = "KO: Forbidden HTTP request. Aborting\r\n";
// console.cpp `control_client_do_command`.
const KO_BINARY: &str = "KO: Forbidden binary request. Aborting\r\n";
// console.cpp `control_client_do_command`: written after every handler that returns 0.
const OK: &str = "OK\r\n";
// console.cpp `control_send_help_prompt`.
const HELP_PROMPT: &str = "Android Console: type 'help' for a list of commands\r\n";

// ---------------------------------------------------------------------------------------------
// The console

/// Shared by the listener and every session of one handset's console.
struct Shared {
    token_file: PathBuf,
    avd_name: String,
    network: Arc<HandsetNetwork>,
    /// Where `sms send` delivers (the handset's inbox); `None` in tests of the console alone.
    handset: Option<Arc<crate::vhandset::shell::Handset>>,
    /// At most one capture per handset (qemu-tcpdump.c keeps one `capture_file`).
    capture: Mutex<Option<Recorder>>,
    sessions: AtomicUsize,
    /// Sends `true` to stop the whole handset (its adbd, this console): what `kill` does.
    kill: Arc<watch::Sender<bool>>,
}

/// A running capture: its writer task and the word that stops it.
struct Recorder {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// qemu-tcpdump.c `qemu_tcpdump_stop`: the file is flushed and closed.
    async fn finish(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(STOP_TIMEOUT, &mut task).await.is_err() {
            tracing::warn!("the console's capture did not close its file within {STOP_TIMEOUT:?}");
            task.abort();
        }
    }
}

/// Counts a session for as long as it lives.
struct SessionGuard<'a>(&'a AtomicUsize);

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// qemu-tcpdump.c `qemu_tcpdump_start`: stop the capture in progress, open the file (`fopen(path,
    /// "wb")`: created or truncated, mode 0666 less the umask), write the header. The error is an
    /// errno, as the console prints it.
    async fn capture_start(&self, path: &Path) -> Result<(), i32> {
        let mut slot = self.capture.lock().await;
        if let Some(running) = slot.take() {
            running.finish().await;
        }
        // The host-loopback fallback has no interface of the handset's own to tap: refused the way
        // the console refuses a capture it cannot start, with the errno that says why.
        let Some(ns) = self.network.private_netns() else {
            return Err(libc::EOPNOTSUPP);
        };
        let errno = |e: io::Error| e.raw_os_error().unwrap_or(libc::EIO);
        // The socket first: a capture that cannot open leaves no file behind.
        let capture = LoopbackCapture::open(ns, None).map_err(errno)?;
        let file = tokio::fs::File::create(path).await.map_err(errno)?;
        let mut out = StdioFile::new(file);
        out.write(&pcap_header()).await.map_err(errno)?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(record(capture, out, stopped));
        *slot = Some(Recorder { stop, task });
        Ok(())
    }

    /// qemu-tcpdump.c `qemu_tcpdump_stop`: nothing to do when nothing runs.
    async fn capture_stop(&self) {
        if let Some(running) = self.capture.lock().await.take() {
            running.finish().await;
        }
    }
}

/// A file written as glibc's stdio writes a fully buffered stream (`fwrite`, libio's
/// `_IO_new_file_xsputn`): bytes fill a `STDIO_BUFFER`-byte buffer; when more come than fit, the full
/// buffer is written, then as many whole buffers' worth of the rest as there are, and the remainder is
/// kept. So while the emulator captures, its file grows in whole 4096-byte steps and may end in the
/// middle of a record; it is complete only after `fclose` (`network capture stop`, or the emulator's
/// exit). A reader of the live file must expect exactly that.
struct StdioFile {
    file: tokio::fs::File,
    buf: Vec<u8>,
}

impl StdioFile {
    fn new(file: tokio::fs::File) -> StdioFile {
        StdioFile {
            file,
            buf: Vec::with_capacity(STDIO_BUFFER),
        }
    }

    async fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        let take = (STDIO_BUFFER - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        data = &data[take..];
        if data.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf).await?;
        self.buf.clear();
        let direct = data.len() - data.len() % STDIO_BUFFER;
        if direct > 0 {
            self.file.write_all(&data[..direct]).await?;
        }
        self.buf.extend_from_slice(&data[direct..]);
        Ok(())
    }

    /// `fclose`: what is buffered, then the file closed (not synced to disk, as `fclose` does not).
    async fn close(mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).await?;
        }
        self.file.flush().await
    }
}

/// qemu-tcpdump.c `pcap_write_header`: the struct written with `fwrite`, so in the host's byte order.
fn pcap_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_ne_bytes()); // PCAP_MAGIC
    h[4..6].copy_from_slice(&2u16.to_ne_bytes()); // PCAP_MAJOR
    h[6..8].copy_from_slice(&4u16.to_ne_bytes()); // PCAP_MINOR
    // this_zone 0, sigfigs 0
    h[16..20].copy_from_slice(&(SNAPLEN as u32).to_ne_bytes()); // PCAP_SNAPLEN
    h[20..24].copy_from_slice(&1u32.to_ne_bytes()); // PCAP_ETHERNET
    h
}

/// qemu-tcpdump.c `qemu_tcpdump_packet`: seconds and microseconds, `incl_len = min(len, 65535)`,
/// `orig_len = len`, host byte order. The emulator stamps a frame with `gettimeofday` as it passes its
/// tap; the time the kernel stamped on the frame as it crossed the handset's `lo` is that moment here.
fn record_header(frame: &Frame) -> [u8; 16] {
    let since = frame.time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&(since.as_secs() as u32).to_ne_bytes());
    h[4..8].copy_from_slice(&since.subsec_micros().to_ne_bytes());
    h[8..12].copy_from_slice(&(frame.captured.min(SNAPLEN) as u32).to_ne_bytes());
    h[12..16].copy_from_slice(&(frame.wire as u32).to_ne_bytes());
    h
}

/// Writes every frame until told to stop, then flushes and closes the file. A failed write stops the
/// writing (the emulator ignores `fwrite`'s result; a full disk gives it a truncated file too) but not
/// the capture: `stop` still answers `OK`.
async fn record(mut capture: LoopbackCapture, mut out: StdioFile, mut stop: oneshot::Receiver<()>) {
    let mut buf = vec![0u8; SNAPLEN];
    let mut writable = true;
    let mut write = async |out: &mut StdioFile, frame: &Frame, bytes: &[u8]| {
        if !writable {
            return;
        }
        let kept = frame.captured.min(SNAPLEN);
        let written = async {
            out.write(&record_header(frame)).await?;
            out.write(&bytes[..kept]).await
        };
        if let Err(e) = written.await {
            tracing::warn!("console capture: writing the file failed: {e}");
            writable = false;
        }
    };
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            frame = capture.next(&mut buf) => match frame {
                Ok(frame) => write(&mut out, &frame, &buf).await,
                Err(e) => {
                    tracing::warn!("console capture: reading the handset's loopback failed: {e}");
                    let _ = (&mut stop).await;
                    return finish(out).await;
                }
            },
        }
    }
    // The emulator writes a frame the moment it passes its tap, so every frame that crossed the
    // loopback before `stop` belongs in the file: those still queued in the socket are written, up
    // to the first one stamped after the stop (or a short silence).
    let stopped_at = std::time::SystemTime::now();
    while let Ok(Ok(frame)) = tokio::time::timeout(DRAIN_WINDOW, capture.next(&mut buf)).await {
        if frame.time > stopped_at {
            break;
        }
        write(&mut out, &frame, &buf).await;
    }
    finish(out).await;
}

async fn finish(out: StdioFile) {
    if let Err(e) = out.close().await {
        tracing::warn!("console capture: closing the file failed: {e}");
    }
}

/// A running console. Stopped with the handset (`RunningHandset::shutdown`, or the console's `kill`).
pub struct ConsoleHandle {
    port: u16,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl ConsoleHandle {
    /// The console's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The token file the console reads (and creates when missing).
    pub fn token_file(&self) -> &Path {
        &self.shared.token_file
    }

    /// Clients connected right now.
    pub fn sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::SeqCst)
    }

    /// Whether a `network capture` is running.
    pub async fn capturing(&self) -> bool {
        self.shared.capture.lock().await.is_some()
    }

    /// Waits until the console has stopped (its listener closed, every session ended, the capture
    /// file closed). The console stops when the handset's stop signal turns true.
    pub(super) async fn join(self) {
        let _ = self.task.await;
    }
}

/// Serves the console on `listener` until `stop` turns true; `kill` is the handset's stop signal,
/// which the console's `kill` command sends.
pub(super) fn spawn(
    listener: TcpListener,
    token_file: PathBuf,
    avd_name: String,
    network: Arc<HandsetNetwork>,
    handset: Option<Arc<crate::vhandset::shell::Handset>>,
    stop: watch::Receiver<bool>,
    kill: Arc<watch::Sender<bool>>,
) -> io::Result<ConsoleHandle> {
    let port = listener.local_addr()?.port();
    let shared = Arc::new(Shared {
        token_file,
        avd_name,
        network,
        handset,
        capture: Mutex::new(None),
        sessions: AtomicUsize::new(0),
        kill,
    });
    let task = tokio::spawn(serve(listener, shared.clone(), stop));
    Ok(ConsoleHandle { port, shared, task })
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    if sessions.len() >= MAX_SESSIONS {
                        tracing::warn!(%peer, "emulator console: too many clients; closing");
                        continue;
                    }
                    shared.sessions.fetch_add(1, Ordering::SeqCst);
                    sessions.spawn(session(socket, shared.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!("emulator console: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    sessions.abort_all();
    while sessions.join_next().await.is_some() {}
    // qemu-tcpdump.c `capture_atexit`: the emulator closes the capture file when it exits.
    shared.capture_stop().await;
}

/// Sends what a command wrote; false when the client is gone or does not read.
async fn flush(writer: &mut tokio::net::tcp::OwnedWriteHalf, out: &mut Out) -> bool {
    if out.bytes.is_empty() {
        return true;
    }
    let bytes = std::mem::take(&mut out.bytes);
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&bytes)).await,
        Ok(Ok(()))
    )
}

async fn session(socket: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let _guard = SessionGuard(&shared.sessions);
    let _ = socket.set_nodelay(true);
    let (mut reader, mut writer) = socket.into_split();
    let mut out = Out::default();
    // console.cpp `control_global_accept`: the auth status is read at every connection.
    let mut authed = match load_or_create_token(&shared.token_file) {
        // CONSOLE_AUTH_STATUS_ERROR: the client is closed at once, with no word.
        Err(e) => {
            tracing::warn!(
                file = %shared.token_file.display(),
                "emulator console: the token file cannot be read or created ({e}); closing the client"
            );
            return;
        }
        // CONSOLE_AUTH_STATUS_DISABLED (console.cpp `control_global_accept`).
        Ok(token) if token.is_empty() => {
            out.write(HELP_PROMPT);
            out.write(OK);
            true
        }
        // CONSOLE_AUTH_STATUS_REQUIRED (console.cpp `control_global_accept`, five writes; "Studio looks
        // for the first line of this message /exactly/").
        Ok(_) => {
            out.write("Android Console: Authentication required\r\n");
            out.write("Android Console: type 'auth <auth_token>' to authenticate\r\n");
            out.write("Android Console: you can find your <auth_token> in \r\n'");
            out.write(shared.token_file.as_os_str().as_bytes());
            out.write("'\r\nOK\r\n");
            false
        }
    };
    if !flush(&mut writer, &mut out).await {
        return;
    }
    let mut lines = LineReader::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = stopped(&mut stop) => return,
        };
        for &byte in &buf[..n] {
            let Some(line) = lines.push(byte) else {
                continue;
            };
            let after = execute(&shared, &mut authed, &line, &mut out).await;
            if !flush(&mut writer, &mut out).await {
                return;
            }
            match after {
                After::Continue => {}
                After::Close => return,
                After::Kill => {
                    tracing::info!("emulator console: kill; stopping the handset");
                    shared.kill.send_replace(true);
                    return;
                }
            }
        }
    }
}

/// console.cpp `control_client_do_command`: the security checks, then the command and its
/// sub-commands down to a handler; `OK` when the handler succeeded, nothing more when it failed (it
/// wrote its own `KO:`).
async fn execute(shared: &Shared, authed: &mut bool, line: &[u8], out: &mut Out) -> After {
    let line = c_string(line);
    if is_http_request_line(line) {
        out.write(KO_HTTP);
        return After::Close;
    }
    if !utf8_is_valid(line) {
        out.write(KO_BINARY);
        return After::Close;
    }
    let table: &'static [Command] = if *authed {
        &MAIN_COMMANDS
    } else {
        &PREAUTH_COMMANDS
    };
    let Some((mut cmd, mut args)) = find_command(line, table) else {
        out.write(KO_UNKNOWN);
        return After::Continue;
    };
    loop {
        if let Some(action) = cmd.action {
            let (ok, after) = run(action, shared, authed, table, args, out).await;
            if ok {
                out.write(OK);
            }
            return after;
        }
        let Some(sub_line) = args else {
            dump_help(cmd, b"", out);
            out.write(KO_MISSING_SUB);
            return After::Continue;
        };
        match find_command(sub_line, cmd.subs) {
            Some((sub, rest)) => (cmd, args) = (sub, rest),
            None => {
                dump_help(cmd, b"", out);
                out.write(KO_BAD_SUB);
                return After::Continue;
            }
        }
    }
}

/// One handler: whether it succeeded (the C handler's `0`), and what the session does next.
async fn run(
    action: Action,
    shared: &Shared,
    authed: &mut bool,
    table: &'static [Command],
    args: Option<&[u8]>,
    out: &mut Out,
) -> (bool, After) {
    match action {
        Action::Help => (help(table, args, out), After::Continue),
        Action::HelpVerbose => {
            // console.cpp `do_help_verbose`.
            out.write("Android console command help:\r\n\r\n");
            for cmd in table {
                out.write(format!("    {:<15}  {}\r\n", cmd.names, cmd.summary));
            }
            out.write("\r\ntry 'help <command>' for command-specific help\r\n");
            (true, After::Continue)
        }
        Action::Ping => {
            // console.cpp `do_ping`.
            out.write("I am alive!\r\n");
            (true, After::Continue)
        }
        Action::AvdName => {
            // console.cpp `do_avd_name`: the AVD's name; the handset's is its profile's.
            out.write(format!("{}\r\n", shared.avd_name));
            (true, After::Continue)
        }
        Action::Auth => (auth(shared, authed, args, out), After::Continue),
        // console.cpp `do_quit`: the client is finished; no `OK` (the handler returns -1).
        Action::Quit => (false, After::Close),
        Action::Kill => {
            // console.cpp `do_kill`: its line, then the dispatcher's `OK` (it returns 0), then the
            // emulator exits.
            out.write("OK: killing emulator, bye bye\r\n");
            (true, After::Kill)
        }
        Action::CaptureStart => {
            let Some(file) = args else {
                // console.cpp `do_network_capture_start`.
                out.write("KO: missing <file> argument, see 'help network capture start'\r\n");
                return (false, After::Continue);
            };
            // The whole rest of the line is the path, spaces and all, as `qemu_tcpdump_start(args)`
            // gets it.
            match shared
                .capture_start(Path::new(OsStr::from_bytes(file)))
                .await
            {
                Ok(()) => (true, After::Continue),
                Err(errno) => {
                    // console.cpp `do_network_capture_start`: the format string has no line ending.
                    out.write(format!("KO: could not start capture: {}", strerror(errno)));
                    (false, After::Continue)
                }
            }
        }
        Action::CaptureStop => {
            // console.cpp `do_network_capture_stop`: "no need to return an error here".
            shared.capture_stop().await;
            (true, After::Continue)
        }
        Action::SmsSend => (sms_send(shared, args, out), After::Continue),
    }
}

/// console.cpp `do_sms_send`: `<phonenumber> <message>`, the number up to the first space and made of
/// `[+](0-9)*` (`sms_address_from_str`), the message unescaped (`sms_utf8_from_message_str`), then
/// delivered to the modem — here, the handset's inbox.
fn sms_send(shared: &Shared, args: Option<&[u8]>, out: &mut Out) -> bool {
    const MISSING: &str = "KO: missing argument, try 'sms send <phonenumber> <text message>'\r\n";
    let Some(args) = args else {
        out.write(MISSING);
        return false;
    };
    let Some(space) = args.iter().position(|&b| b == b' ') else {
        out.write(MISSING);
        return false;
    };
    let number = &args[..space];
    let digits = number.strip_prefix(b"+").unwrap_or(number);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        out.write("KO: bad phone number format, must be [+](0-9)*\r\n");
        return false;
    }
    let Some(text) = unescape_sms(&args[space + 1..]) else {
        out.write(
            "message must be utf8 and can use the following escapes:\r\n\
             \x20   \\n      for a newline\r\n\
             \x20   \\xNN    where NN are two hexadecimal numbers\r\n\
             \x20   \\uNNNN  where NNNN are four hexadecimal numbers\r\n\
             \x20   \\\\     to send a '\\' character\r\n\r\n\
             \x20   anything else is an error\r\n\
             KO: badly formatted text\r\n",
        );
        return false;
    };
    let Some(handset) = &shared.handset else {
        // console.cpp: what the console says when there is no modem.
        out.write("KO: modem emulation not running\r\n");
        return false;
    };
    handset.receive_sms(&String::from_utf8_lossy(number), &text);
    true
}

/// `sms_utf8_from_message_str`: UTF-8 with the escapes `\n`, `\xNN`, `\uNNNN`, `\\`; anything else
/// after a backslash, or text that is not UTF-8, is refused.
fn unescape_sms(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let hex = |from: usize, n: usize| -> Option<u32> {
            let digits = raw.get(from..from + n)?;
            u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
        };
        match raw.get(i + 1)? {
            b'n' => {
                out.push(b'\n');
                i += 2;
            }
            b'\\' => {
                out.push(b'\\');
                i += 2;
            }
            b'x' => {
                let c = char::from_u32(hex(i + 2, 2)?)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                i += 4;
            }
            b'u' => {
                let c = char::from_u32(hex(i + 2, 4)?)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                i += 6;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// console.cpp `do_help`.
fn help(table: &'static [Command], args: Option<&[u8]>, out: &mut Out) -> bool {
    let list = |out: &mut Out| {
        out.write("Android console commands:\r\n");
        for cmd in table {
            out.write(format!("    {}\r\n", cmd.names));
        }
        out.write(
            "\r\nTry 'help-verbose' for more description\r\nTry 'help <command>' for command-specific help\r\n",
        );
    };
    let Some(start) = args else {
        list(out);
        return true;
    };
    let mut commands = table;
    let mut line = start;
    loop {
        let Some((cmd, rest)) = find_command(line, commands) else {
            list(out);
            out.write("\r\nKO: unknown command\r\n");
            return false;
        };
        match rest {
            Some(rest) if !cmd.subs.is_empty() => {
                commands = cmd.subs;
                line = rest;
            }
            _ => {
                dump_help(cmd, start, out);
                return true;
            }
        }
    }
}

/// console.cpp `dump_help`: the description (or the summary), then the sub-commands, each as
/// `"   %s %-15s  %s\r\n"` of the prefix, its names and its summary.
fn dump_help(cmd: &Command, prefix: &[u8], out: &mut Out) {
    match cmd.description {
        Some(text) => out.write(text),
        None => out.write(format!("{}\r\n", cmd.summary)),
    }
    if cmd.subs.is_empty() {
        return;
    }
    out.write("\r\navailable sub-commands:\r\n");
    for sub in cmd.subs {
        let mut line = b"   ".to_vec();
        line.extend_from_slice(prefix);
        line.extend_from_slice(format!(" {:<15}  {}\r\n", sub.names, sub.summary).as_bytes());
        out.write(line);
    }
    out.write("\r\n");
}

/// console.cpp `do_auth`.
fn auth(shared: &Shared, authed: &mut bool, args: Option<&[u8]>, out: &mut Out) -> bool {
    let Some(given) = args else {
        out.write("KO: missing authentication token\r\n");
        return false;
    };
    let Ok(token) = load_or_create_token(&shared.token_file) else {
        out.write("KO: unable to read ~/.emulator_console_auth_token\r\n");
        return false;
    };
    // The console compares `strlen(token)+1` bytes, NUL included: the argument must be the token,
    // exactly (a trailing space does not match; an empty token matches nothing).
    if token.is_empty() || !same_token(given, &token) {
        out.write("KO: authentication token does not match ~/.emulator_console_auth_token\r\n");
        return false;
    }
    out.write(HELP_PROMPT);
    *authed = true;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[u8]) -> (Vec<Vec<u8>>, usize) {
        let mut r = LineReader::new();
        let lines = input.iter().filter_map(|&b| r.push(b)).collect();
        (lines, r.pending())
    }

    #[test]
    fn the_line_reader_cuts_as_the_console_does() {
        let (lines, pending) = lines_of(b"help\r\nping\n\r\nauth x\rx\npart");
        assert_eq!(lines, [&b"help"[..], b"ping", b"", b"auth xx"]);
        assert_eq!(pending, 4);
        // A line of 4095 bytes fits; its 4096th byte starts the line over.
        let mut long = vec![b'a'; LINE_MAX];
        long.extend_from_slice(b"help\n");
        let (lines, _) = lines_of(&long);
        assert_eq!(lines, [b"help".to_vec()]);
        let exact = [vec![b'b'; LINE_MAX], b"\n".to_vec()].concat();
        assert_eq!(lines_of(&exact).0, [vec![b'b'; LINE_MAX]]);
    }

    /// Fuzz-ish: whatever arrives, the reader never holds more than LINE_MAX bytes, never yields a
    /// line with `\r` or `\n` in it, and yields exactly one line per `\n`.
    #[test]
    fn the_line_reader_is_bounded_for_any_input() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..200 {
            let len = (round * 997) % 20_000;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Newlines rare in some rounds, frequent in others.
                    if round % 3 == 0 && x.is_multiple_of(50) {
                        b'\n'
                    } else {
                        x as u8
                    }
                })
                .collect();
            let mut r = LineReader::new();
            let mut yielded = 0;
            for &b in &input {
                if let Some(line) = r.push(b) {
                    yielded += 1;
                    assert!(line.len() <= LINE_MAX);
                    assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
                }
                assert!(r.pending() <= LINE_MAX);
            }
            assert_eq!(yielded, input.iter().filter(|&&b| b == b'\n').count());
        }
    }

    #[test]
    fn http_request_lines_are_recognised_as_httputils_does() {
        for yes in [
            &b"GET / HTTP/1.1"[..],
            b"POST /x HTTP/1.0  ",
            b"CONNECT\texample:443\tHTTP/2",
            b"GET HTTP/1.1",
        ] {
            assert!(
                is_http_request_line(yes),
                "{:?}",
                String::from_utf8_lossy(yes)
            );
        }
        for no in [
            &b"GET"[..],
            b"GET /",
            b"GET / HTTP/",
            b"GETX / HTTP/1.1",
            b"get / HTTP/1.1",
            b"help",
            b"",
            b"GET  ",
        ] {
            assert!(
                !is_http_request_line(no),
                "{:?}",
                String::from_utf8_lossy(no)
            );
        }
    }

    #[test]
    fn utf8_is_checked_as_leniently_as_the_console() {
        assert!(utf8_is_valid("zoë 🙂".as_bytes()));
        assert!(
            utf8_is_valid(b"\xc0\x80"),
            "overlong forms pass in the console"
        );
        assert!(
            utf8_is_valid(b"\xed\xa0\x80"),
            "surrogates pass in the console"
        );
        assert!(utf8_is_valid(b"\xf8\x80\x80\x80\x80"), "5-byte forms pass");
        assert!(!utf8_is_valid(b"\xff"));
        assert!(!utf8_is_valid(b"\x80"));
        assert!(!utf8_is_valid(b"\xc3"));
        assert!(!utf8_is_valid(b"\xe2\x82x"));
        // Never panics, whatever the bytes.
        let mut x = 7u64;
        for _ in 0..5000 {
            let v: Vec<u8> = (0..(x % 9) as usize)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 56) as u8
                })
                .collect();
            let _ = utf8_is_valid(&v);
            let _ = is_http_request_line(&v);
        }
    }

    #[test]
    fn commands_are_found_as_find_command_finds_them() {
        let (cmd, args) = find_command(b"help", &MAIN_COMMANDS).unwrap();
        assert_eq!((cmd.names, args), ("help|h|?", None));
        let (cmd, args) = find_command(b"? network", &MAIN_COMMANDS).unwrap();
        assert_eq!((cmd.names, args), ("help|h|?", Some(&b"network"[..])));
        let (cmd, args) = find_command(b"help-verbose", &MAIN_COMMANDS).unwrap();
        assert_eq!((cmd.names, args), ("help-verbose", None));
        let (cmd, args) = find_command(b"network   capture  start /a b", &MAIN_COMMANDS).unwrap();
        assert_eq!(cmd.names, "network");
        assert_eq!(args, Some(&b"capture  start /a b"[..]));
        let (cmd, args) = find_command(b"auth   ", &PREAUTH_COMMANDS).unwrap();
        assert_eq!((cmd.names, args), ("auth", None));
        assert!(find_command(b"networks", &MAIN_COMMANDS).is_none());
        assert!(find_command(b" help", &MAIN_COMMANDS).is_none());
        assert!(find_command(b"", &MAIN_COMMANDS).is_none());
        assert!(find_command(b"network", &PREAUTH_COMMANDS).is_none());
    }

    #[test]
    fn writes_get_crlf_and_are_cut_like_control_vwrite() {
        let mut out = Out::default();
        out.write("a\nb\r\n\nc");
        assert_eq!(out.bytes, b"a\r\nb\r\n\r\nc");
        let mut out = Out::default();
        out.write(vec![b'x'; 5000]);
        assert_eq!(out.bytes.len(), WRITE_MAX);
    }

    #[test]
    fn the_token_file_is_created_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_FILE_NAME);
        let token = load_or_create_token(&path).unwrap();
        assert_eq!(token.len(), 16);
        assert!(
            token
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+/".contains(b))
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            load_or_create_token(&path).unwrap(),
            token,
            "read back, not regenerated"
        );
        std::fs::write(&path, " \t s3cret \r\n\x0b").unwrap();
        assert_eq!(load_or_create_token(&path).unwrap(), b"s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(load_or_create_token(&path).unwrap(), b"");
        assert!(load_or_create_token(&dir.path().join("no/such/dir/t")).is_err());
        assert!(
            same_token(b"abc", b"abc")
                && !same_token(b"abc ", b"abc")
                && !same_token(b"ab", b"abc")
        );
    }

    #[test]
    fn strerror_is_the_c_text() {
        assert_eq!(strerror(libc::ENOENT), "No such file or directory");
        assert_eq!(strerror(libc::EOPNOTSUPP), "Operation not supported");
    }

    #[tokio::test]
    async fn the_capture_file_grows_in_stdio_buffer_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pcap");
        let mut f = StdioFile::new(tokio::fs::File::create(&path).await.unwrap());
        let size = || std::fs::metadata(&path).unwrap().len();
        let mut written = Vec::new();
        for (i, n) in [24usize, 100, 3972, 1, 9000, 50, 65535, 7]
            .into_iter()
            .enumerate()
        {
            let chunk = vec![i as u8; n];
            f.write(&chunk).await.unwrap();
            written.extend_from_slice(&chunk);
            f.file.flush().await.unwrap();
            assert_eq!(
                size() % STDIO_BUFFER as u64,
                0,
                "after {} bytes",
                written.len()
            );
            assert!(size() <= written.len() as u64);
        }
        assert_eq!(size(), 4096 * 19, "everything but the last partial buffer");
        f.close().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), written);
    }

    #[test]
    fn the_capture_file_header_is_qemu_tcpdump_s() {
        let h = pcap_header();
        assert_eq!(u32::from_ne_bytes(h[0..4].try_into().unwrap()), 0xa1b2_c3d4);
        assert_eq!(u32::from_ne_bytes(h[16..20].try_into().unwrap()), 65535);
        assert_eq!(u32::from_ne_bytes(h[20..24].try_into().unwrap()), 1);
        let frame = Frame {
            time: UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            captured: 70_000,
            wire: 70_000,
        };
        let r = record_header(&frame);
        assert_eq!(
            u32::from_ne_bytes(r[0..4].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(u32::from_ne_bytes(r[4..8].try_into().unwrap()), 123_456);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 65535);
        assert_eq!(u32::from_ne_bytes(r[12..16].try_into().unwrap()), 70_000);
    }
}
