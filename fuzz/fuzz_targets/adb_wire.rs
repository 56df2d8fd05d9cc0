//! Fuzz target for the adb client's framing (`src/adb/wire.rs`, and the shell v2 decoder of
//! `src/adb/shell.rs`): the input is what an adb server (or the device behind it) sends back, read
//! through the same functions `Conn` uses, from an in-memory stream that hands the bytes over in
//! arbitrary chunks (and sometimes says "not yet" first, as a socket does).
//!
//! Each input is decoded three times, whole, one byte at a time and in the input's own chunking, and
//! checked for:
//! - no panic (overflow checks are on);
//! - the same result (value, or error text) whatever the chunking;
//! - agreement with a small reference model of the framing written here from the protocol
//!   (`OKAY` | `FAIL` + hex4 + message; hex4 + body; shell v2 `id u8, len u32 LE, data`);
//! - memory: a hex4 body (a reply, a FAIL text) allocates at most what its length field promises
//!   (checked, ≤ 0xFFFF), the shell v2 decoder allocates nothing whatever its length fields say, and
//!   a bounded read to the end holds at most about twice the bytes that came (measured by a counting
//!   allocator; a few KiB of error text allowed).
//!
//! Input layout: byte 0 picks the exchange (low 2 bits) and, for the read to the end, its limit
//! (bits 2..8, times 8 bytes); byte 1's low 3 bits give the number N of chunk-size bytes that follow
//! (0 = the whole stream in one read); each chunk byte's low 6 bits + 1 is a read size and its top bit
//! a "pending" before that read. The rest is the server's reply stream.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use tattle::adb::{
    AdbError, ShellEvent, ShellV2Decoder, encode_request, parse_devices_l, parse_hex4,
    read_hex4_body, read_status, read_to_end_bounded,
};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// The serial a device request names (`host:transport:SERIAL`), for FAIL classification.
const SERIAL: &str = "127.0.0.1:7001";
const MAX_HEX4: usize = 0xFFFF;
/// Error messages (a FAIL text is sanitised and lower-cased: a few copies of at most 512 bytes, each
/// byte possibly widened to U+FFFD): what a reader may allocate beyond the data itself.
const SLACK: usize = 8 * 1024;

// ---- a counting allocator: the peak of live bytes above a mark -------------------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrink(layout.size());
            grow(new_size);
        }
        p
    }
}

fn grow(n: usize) {
    // `try_with`: the allocator also serves thread teardown, after the thread-locals are gone.
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

fn shrink(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result and the most bytes it had allocated at once.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, peak.saturating_sub(base))
}

// ---- a reply stream delivered in chunks ------------------------------------------------------------

struct Chunked<'a> {
    data: &'a [u8],
    pos: usize,
    /// Read sizes (cycled) with a "pending first" flag; empty = everything in one read.
    plan: &'a [u8],
    step: usize,
    pending_done: bool,
}

impl<'a> Chunked<'a> {
    fn new(data: &'a [u8], plan: &'a [u8]) -> Self {
        Chunked {
            data,
            pos: 0,
            plan,
            step: 0,
            pending_done: false,
        }
    }
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let want = if this.plan.is_empty() {
            usize::MAX
        } else {
            let b = this.plan[this.step % this.plan.len()];
            if b & 0x80 != 0 && !this.pending_done {
                // A socket with nothing yet: the caller must poll again (the waker is a no-op and
                // the driver re-polls).
                this.pending_done = true;
                return Poll::Pending;
            }
            (b & 0x3f) as usize + 1
        };
        this.pending_done = false;
        this.step += 1;
        let n = want.min(this.data.len() - this.pos).min(buf.remaining());
        buf.put_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// Polls `fut` to completion: every read is ready at once or after one `Pending`, so this ends.
fn drive<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("a reader never finished on a stream that is always ready");
}

static READ_BUF: std::sync::Mutex<[u8; 64 * 1024]> = std::sync::Mutex::new([0; 64 * 1024]);

// ---- the exchanges -----------------------------------------------------------------------------------

/// What one exchange produced, comparable across chunkings.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Body(Vec<u8>),
    Shell {
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        exit: Option<u8>,
    },
    Error(Kind, String),
}

/// The error's variant, for comparing with the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Protocol,
    Failed,
    DeviceNotFound,
    DeviceOffline,
    Unauthorized,
    TooLarge,
    Lost,
    Other,
    /// Model only: one of the FAIL kinds (`Failed` or a device error).
    AnyFail,
}

fn error(e: AdbError) -> Outcome {
    let kind = match &e {
        AdbError::Protocol { .. } => Kind::Protocol,
        AdbError::Failed { .. } => Kind::Failed,
        AdbError::DeviceNotFound { .. } => Kind::DeviceNotFound,
        AdbError::DeviceOffline { .. } => Kind::DeviceOffline,
        AdbError::Unauthorized { .. } => Kind::Unauthorized,
        AdbError::TooLarge { .. } => Kind::TooLarge,
        _ => Kind::Other,
    };
    Outcome::Error(kind, e.to_string())
}

#[derive(Clone, Copy)]
enum Exchange {
    /// A `host:` query: OKAY/FAIL then one hex4 body (`host:version`, `host:devices-l`, …).
    Query,
    /// A query about one device (`host-serial:S:features`): FAIL texts map to device errors.
    DeviceQuery,
    /// `host:transport:S` + `shell,v2,raw:…`: two statuses, then shell v2 packets until exit.
    ShellV2,
    /// `host:transport:S` + `shell:…` (legacy) or `reboot:`: two statuses, then bytes to the end,
    /// bounded.
    ToEnd(usize),
}

/// Runs one exchange over `r`; returns the outcome and the most bytes held at once by the framing
/// code (the shell sinks are allocated beforehand and not counted).
fn exchange(ex: Exchange, r: &mut Chunked<'_>) -> (Outcome, usize) {
    match ex {
        Exchange::Query | Exchange::DeviceQuery => {
            let serial = matches!(ex, Exchange::DeviceQuery).then_some(SERIAL);
            let (result, peak) = measured(|| {
                drive(async {
                    read_status(r, serial).await?;
                    read_hex4_body(r).await
                })
            });
            (result.map_or_else(error, Outcome::Body), peak)
        }
        Exchange::ShellV2 => {
            let total = r.data.len();
            let mut stdout = Vec::with_capacity(total);
            let mut stderr = Vec::with_capacity(total);
            let mut exit = None;
            // The device side reads into a 64 KiB buffer; one for the process, not one per input.
            let mut buf = READ_BUF.lock().expect("one fuzzing thread");
            let buf = &mut buf[..];
            let (result, peak) = measured(|| {
                drive(async {
                    read_status(r, Some(SERIAL)).await?;
                    read_status(r, Some(SERIAL)).await?;
                    let mut decoder = ShellV2Decoder::new();
                    while !decoder.exited() {
                        let n = r.read(buf).await?;
                        if n == 0 {
                            // The device went away before the exit packet: never a success.
                            return Ok(false);
                        }
                        decoder.feed(&buf[..n], |ev| {
                            match ev {
                                ShellEvent::Stdout(b) => stdout.extend_from_slice(b),
                                ShellEvent::Stderr(b) => stderr.extend_from_slice(b),
                                ShellEvent::Exit(c) => exit = Some(c),
                            }
                            Ok(())
                        })?;
                    }
                    Ok(true)
                })
            });
            let outcome = match result {
                Ok(true) => {
                    assert!(exit.is_some(), "decoder exited without an exit code");
                    Outcome::Shell {
                        stdout,
                        stderr,
                        exit,
                    }
                }
                Ok(false) => Outcome::Error(Kind::Lost, "lost".into()),
                Err(e) => error(e),
            };
            (outcome, peak)
        }
        Exchange::ToEnd(limit) => {
            let (result, peak) = measured(|| {
                drive(async {
                    read_status(r, Some(SERIAL)).await?;
                    read_status(r, Some(SERIAL)).await?;
                    read_to_end_bounded(r, limit).await
                })
            });
            (result.map_or_else(error, Outcome::Body), peak)
        }
    }
}

// ---- the reference model -------------------------------------------------------------------------------

/// Four ASCII hex digits, by the protocol's definition.
fn hex4(b: &[u8]) -> Option<usize> {
    if b.len() < 4 || !b[..4].iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Some(b[..4].iter().fold(0, |v, &d| {
        v * 16 + (d as char).to_digit(16).expect("hex digit") as usize
    }))
}

/// What the framing must make of `s`, and the largest body length it may buffer for it.
struct Model {
    /// `Ok(body)` (shell: stdout, stderr, exit), or the error kind.
    outcome: Result<Outcome, Kind>,
    promised: usize,
}

/// One status at `s[at..]`: `Ok(next offset)` after OKAY, or the error kind (and the FAIL length).
fn model_status(s: &[u8], at: usize, serial: bool) -> (Result<usize, Kind>, usize) {
    let Some(tag) = s.get(at..at + 4) else {
        return (Err(Kind::Protocol), 0);
    };
    match tag {
        b"OKAY" => (Ok(at + 4), 0),
        b"FAIL" => match hex4(&s[at + 4..]) {
            None => (Err(Kind::Protocol), 0),
            Some(len) if s.len() < at + 8 + len => (Err(Kind::Protocol), len),
            Some(len) => {
                let msg = String::from_utf8_lossy(&s[at + 8..at + 8 + len]).to_ascii_lowercase();
                let kind = if !serial {
                    Kind::Failed
                } else if len > 256 {
                    // The client classifies a shown prefix of the text (its length is the
                    // sanitiser's business): any of the FAIL kinds will do.
                    Kind::AnyFail
                } else if msg.contains("not found") || msg.contains("no devices/emulators") {
                    Kind::DeviceNotFound
                } else if msg.contains("offline") {
                    Kind::DeviceOffline
                } else if msg.contains("unauthorized") || msg.contains("authorizing") {
                    Kind::Unauthorized
                } else {
                    Kind::Failed
                };
                (Err(kind), len)
            }
        },
        _ => (Err(Kind::Protocol), 0),
    }
}

fn model(ex: Exchange, s: &[u8]) -> Model {
    let serial = !matches!(ex, Exchange::Query);
    let (first, promised) = model_status(s, 0, serial);
    let at = match first {
        Ok(at) => at,
        Err(kind) => {
            return Model {
                outcome: Err(kind),
                promised,
            };
        }
    };
    let at = match ex {
        Exchange::Query | Exchange::DeviceQuery => {
            return match hex4(&s[at..]) {
                None => Model {
                    outcome: Err(Kind::Protocol),
                    promised: 0,
                },
                Some(len) if s.len() < at + 4 + len => Model {
                    outcome: Err(Kind::Protocol),
                    promised: len,
                },
                Some(len) => Model {
                    outcome: Ok(Outcome::Body(s[at + 4..at + 4 + len].to_vec())),
                    promised: len,
                },
            };
        }
        Exchange::ShellV2 | Exchange::ToEnd(_) => match model_status(s, at, true) {
            (Ok(at), _) => at,
            (Err(kind), promised) => {
                return Model {
                    outcome: Err(kind),
                    promised,
                };
            }
        },
    };
    let rest = &s[at..];
    let outcome = match ex {
        Exchange::ToEnd(limit) if rest.len() > limit => Err(Kind::TooLarge),
        Exchange::ToEnd(_) => Ok(Outcome::Body(rest.to_vec())),
        _ => model_shell(rest),
    };
    Model {
        outcome,
        promised: 0,
    }
}

/// Shell v2 packets from a whole buffer: `id, u32 LE length, data`; 1 stdout, 2 stderr, 3 exit (one
/// byte), 0/4/5 skipped, anything else an error; the stream must end with an exit packet.
fn model_shell(mut s: &[u8]) -> Result<Outcome, Kind> {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    loop {
        if s.len() < 5 {
            return Err(Kind::Lost);
        }
        let id = s[0];
        let len = u32::from_le_bytes([s[1], s[2], s[3], s[4]]) as usize;
        match id {
            3 if len != 1 => return Err(Kind::Protocol),
            0..=5 => {}
            _ => return Err(Kind::Protocol),
        }
        s = &s[5..];
        let data = &s[..len.min(s.len())];
        match id {
            1 => stdout.extend_from_slice(data),
            2 => stderr.extend_from_slice(data),
            3 if !data.is_empty() => {
                return Ok(Outcome::Shell {
                    stdout,
                    stderr,
                    exit: Some(data[0]),
                });
            }
            _ => {}
        }
        if data.len() < len {
            return Err(Kind::Lost);
        }
        s = &s[len..];
    }
}

// ---- the target ----------------------------------------------------------------------------------------

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let ex = match data[0] & 3 {
        0 => Exchange::Query,
        1 => Exchange::DeviceQuery,
        2 => Exchange::ShellV2,
        _ => Exchange::ToEnd((data[0] >> 2) as usize * 8),
    };
    let n = (data[1] & 7) as usize;
    let Some(plan) = data.get(2..2 + n) else {
        return;
    };
    let stream = &data[2 + n..];

    let expected = model(ex, stream);
    let mut first: Option<Outcome> = None;
    for plan in [&[][..], &[0u8][..], plan] {
        let mut r = Chunked::new(stream, plan);
        let (outcome, peak) = exchange(ex, &mut r);
        assert!(r.pos <= stream.len());
        // Memory: a body buffers at most its promised length, the v2 decoder nothing, the read to
        // the end about what came.
        let bound = match ex {
            Exchange::ToEnd(_) => expected.promised.max(2 * stream.len()) + SLACK,
            _ => expected.promised + SLACK,
        };
        assert!(
            peak <= bound,
            "allocated {peak} bytes at once for a {}-byte stream (bound {bound})",
            stream.len()
        );
        assert!(expected.promised <= MAX_HEX4);
        match (&expected.outcome, &outcome) {
            (Ok(want), got) => assert_eq!(want, got, "differs from the model"),
            (Err(Kind::AnyFail), Outcome::Error(got, _)) => assert!(
                matches!(
                    got,
                    Kind::Failed | Kind::DeviceNotFound | Kind::DeviceOffline | Kind::Unauthorized
                ),
                "differs from the model: {outcome:?}"
            ),
            (Err(kind), Outcome::Error(got, _)) => {
                assert_eq!(kind, got, "differs from the model: {outcome:?}")
            }
            (Err(kind), got) => panic!("model says {kind:?}, got {got:?}"),
        }
        if let Outcome::Error(_, text) = &outcome {
            // Error texts reach the terminal: the server's bytes are sanitised.
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "{text:?}"
            );
        }
        match &first {
            None => first = Some(outcome),
            Some(f) => assert_eq!(f, &outcome, "chunking changed the result"),
        }
    }

    // The length prefix, both ways.
    if let Ok(digits) = <[u8; 4]>::try_from(&stream[..stream.len().min(4)]) {
        assert_eq!(parse_hex4(&digits).ok(), hex4(&digits));
    }
    let request = String::from_utf8_lossy(stream);
    match encode_request(&request) {
        Ok(bytes) => {
            let digits: [u8; 4] = bytes[..4].try_into().expect("4 digits");
            assert_eq!(parse_hex4(&digits).ok(), Some(request.len()));
            assert_eq!(&bytes[4..], request.as_bytes());
        }
        Err(_) => assert!(request.is_empty() || request.len() > MAX_HEX4),
    }
    // `host:devices-l` bodies are parsed from the same replies.
    for d in parse_devices_l(&request) {
        assert!(!d.serial.is_empty() && !d.serial.contains(char::is_whitespace));
    }
});
