//! One device behind the adb server, reached with `host:transport:SERIAL` then a service: shell (v2 with a
//! fallback to legacy `shell:`), `exec:` streams, sync push/pull/stat, `reverse:` forwards (phone port →
//! host port), and its feature list.
//!
//! Owns: `AdbDevice` and `ExecStream`. Must not touch: what commands mean on Android (`device` module), and
//! the server's `host:` services (`server`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;

use super::server::{AdbServer, DeviceState};
use super::shell::{CLOSE_STDIN_PACKET, ShellEvent, ShellOutput, ShellV2Decoder, shell_quote};
use super::sync::{RemoteStat, Sync};
use super::wire::Conn;
use super::{AdbError, DEFAULT_OUTPUT_LIMIT, command_label, sanitize};

/// Default bound on one device operation (shell command, push, pull) when none is given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One device serial behind an adb server. Cheap to clone; clones share the cached feature list.
#[derive(Debug, Clone)]
pub struct AdbDevice {
    server: AdbServer,
    serial: String,
    timeout: Duration,
    output_limit: usize,
    features: Arc<OnceCell<Vec<String>>>,
}

impl AdbDevice {
    pub(crate) fn new(server: AdbServer, serial: &str) -> AdbDevice {
        AdbDevice {
            server,
            serial: serial.to_string(),
            timeout: DEFAULT_TIMEOUT,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            features: Arc::new(OnceCell::new()),
        }
    }

    /// Bound for `shell`, `push`, `pull`, `stat`, `features` and opening `exec_out` (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> AdbDevice {
        self.timeout = timeout;
        self
    }

    /// Bound on a shell command's stdout + stderr (default 64 MiB); beyond it the command fails `TooLarge`.
    pub fn with_output_limit(mut self, limit: usize) -> AdbDevice {
        self.output_limit = limit;
        self
    }

    pub fn serial(&self) -> &str {
        &self.serial
    }

    pub fn server(&self) -> &AdbServer {
        &self.server
    }

    /// The device's features (`shell_v2`, `stat_v2`, …) from its banner, cached after the first success.
    pub async fn features(&self) -> Result<Vec<String>, AdbError> {
        let list = self
            .features
            .get_or_try_init(|| async {
                let request = format!("host-serial:{}:features", self.serial);
                self.server
                    .within(&request, self.timeout, async {
                        let mut conn = Conn::open(self.server.addr()).await?;
                        conn.send(&request).await?;
                        conn.status(Some(&self.serial)).await?;
                        let body = conn.read_hex4_body().await?;
                        Ok(String::from_utf8_lossy(&body)
                            .split(',')
                            .map(|f| f.trim().to_string())
                            .filter(|f| !f.is_empty())
                            .collect::<Vec<_>>())
                    })
                    .await
            })
            .await?;
        Ok(list.clone())
    }

    pub async fn has_feature(&self, feature: &str) -> Result<bool, AdbError> {
        Ok(self.features().await?.iter().any(|f| f == feature))
    }

    /// Runs `command` with the default timeout. See `shell_with_timeout`.
    pub async fn shell(&self, command: &str) -> Result<ShellOutput, AdbError> {
        self.shell_with_timeout(command, self.timeout).await
    }

    /// Runs one program with arguments, each quoted with `shell_quote`, so values such as contact names can
    /// never be read as shell syntax.
    pub async fn shell_argv(&self, argv: &[&str]) -> Result<ShellOutput, AdbError> {
        let command: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        self.shell(&command.join(" ")).await
    }

    /// Runs `command` through the device's shell: shell v2 (exit code, separate stderr) when the device has
    /// `shell_v2`, else legacy `shell:` (`exit_code` None, stderr merged into stdout). A v2 stream that ends
    /// without an exit packet is `DeviceLost`.
    pub async fn shell_with_timeout(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Result<ShellOutput, AdbError> {
        if command.trim().is_empty() {
            // An empty v2 command would open an interactive shell that never ends.
            return Err(AdbError::InvalidRequest {
                message: "empty shell command".into(),
            });
        }
        let label = command_label(command);
        let work = async {
            if self.has_feature("shell_v2").await? {
                self.shell_v2(command, &label).await
            } else {
                self.shell_legacy_inner(command).await
            }
        };
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(AdbError::Timeout {
                what: format!("shell command {label} on {}", self.serial),
                after: timeout,
            }),
        };
        match &result {
            Ok(out) => tracing::debug!(
                serial = %self.serial, command = %label, exit = ?out.exit_code,
                stdout_bytes = out.stdout.len(), stderr_bytes = out.stderr.len(),
                ms = started.elapsed().as_millis() as u64, "shell"
            ),
            Err(e) => {
                tracing::debug!(serial = %self.serial, command = %label, error = %e, "shell failed")
            }
        }
        result
    }

    async fn shell_v2(&self, command: &str, label: &str) -> Result<ShellOutput, AdbError> {
        let mut conn = self
            .open_service(&format!("shell,v2,raw:{command}"))
            .await?;
        let lost = || AdbError::DeviceLost {
            serial: self.serial.clone(),
            during: format!("shell command {label}"),
        };
        conn.stream
            .write_all(&CLOSE_STDIN_PACKET)
            .await
            .map_err(|_| lost())?;
        let mut decoder = ShellV2Decoder::new();
        let mut out = ShellOutput {
            stdout: Vec::new(),
            stderr: Vec::new(),
            exit_code: None,
        };
        let limit = self.output_limit;
        let mut buf = vec![0u8; 64 * 1024];
        while !decoder.exited() {
            let n = match conn.stream.read(&mut buf).await {
                Ok(0) => return Err(lost()),
                Ok(n) => n,
                Err(e) if is_disconnect(&e) => return Err(lost()),
                Err(e) => return Err(e.into()),
            };
            decoder.feed(&buf[..n], |event| {
                let total = out.stdout.len() + out.stderr.len();
                let (target, bytes) = match event {
                    ShellEvent::Stdout(b) => (&mut out.stdout, b),
                    ShellEvent::Stderr(b) => (&mut out.stderr, b),
                    ShellEvent::Exit(code) => {
                        out.exit_code = Some(code as i32);
                        return Ok(());
                    }
                };
                if total.saturating_add(bytes.len()) > limit {
                    return Err(AdbError::TooLarge {
                        what: format!("output of shell command {label}"),
                        limit: limit as u64,
                    });
                }
                target.extend_from_slice(bytes);
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// Runs `command` through the legacy `shell:` service even when the device has shell v2: no exit status
    /// (`exit_code` None) and stderr merged into stdout. For devices whose shell v2 misbehaves; `shell`
    /// picks this by itself when the device lacks `shell_v2`.
    pub async fn shell_legacy(&self, command: &str) -> Result<ShellOutput, AdbError> {
        if command.trim().is_empty() {
            return Err(AdbError::InvalidRequest {
                message: "empty shell command".into(),
            });
        }
        let label = command_label(command);
        match tokio::time::timeout(self.timeout, self.shell_legacy_inner(command)).await {
            Ok(r) => r,
            Err(_) => Err(AdbError::Timeout {
                what: format!("shell command {label} on {}", self.serial),
                after: self.timeout,
            }),
        }
    }

    /// The device's state as the server sees it (`host-serial:SERIAL:get-state`).
    pub async fn state(&self) -> Result<DeviceState, AdbError> {
        let request = format!("host-serial:{}:get-state", self.serial);
        self.server
            .within(&request, self.timeout, async {
                let mut conn = Conn::open(self.server.addr()).await?;
                conn.send(&request).await?;
                conn.status(Some(&self.serial)).await?;
                let body = conn.read_hex4_body().await?;
                Ok(DeviceState::parse(String::from_utf8_lossy(&body).trim()))
            })
            .await
    }

    async fn shell_legacy_inner(&self, command: &str) -> Result<ShellOutput, AdbError> {
        let mut conn = self.open_service(&format!("shell:{command}")).await?;
        let stdout = conn
            .read_to_end_bounded(self.output_limit)
            .await
            .map_err(|e| match e {
                AdbError::TooLarge { limit, .. } => AdbError::TooLarge {
                    what: format!("output of shell command {}", command_label(command)),
                    limit,
                },
                other => other,
            })?;
        Ok(ShellOutput {
            stdout,
            stderr: Vec::new(),
            exit_code: None,
        })
    }

    /// Opens `exec:COMMAND`: the command's raw stdout as a byte stream (no pty, no shell v2 framing, no exit
    /// code), e.g. a pcap from `tcpdump -w -`. Only opening is bounded by the timeout; reads are the
    /// caller's to bound. Dropping the stream closes it, which ends the command on the device.
    pub async fn exec_out(&self, command: &str) -> Result<ExecStream, AdbError> {
        if command.trim().is_empty() {
            return Err(AdbError::InvalidRequest {
                message: "empty exec command".into(),
            });
        }
        let label = command_label(command);
        let conn = self
            .server
            .within(
                &format!("exec {label} on {}", self.serial),
                self.timeout,
                self.open_service(&format!("exec:{command}")),
            )
            .await?;
        tracing::debug!(serial = %self.serial, command = %label, "exec stream open");
        Ok(ExecStream {
            stream: conn.stream,
        })
    }

    /// Asks the device to reboot (`reboot:` service; `target` is `""`, `"bootloader"`, `"recovery"`…).
    /// Returns once the device has accepted and dropped the stream; the caller then waits for it with
    /// `AdbServer::wait_for_device`, since the device goes offline first.
    pub async fn reboot(&self, target: &str) -> Result<(), AdbError> {
        let what = format!("reboot of {}", self.serial);
        let work = async {
            let mut conn = self.open_service(&format!("reboot:{target}")).await?;
            // adbd may print a reason before it goes; the stream ends when it does, possibly with a reset.
            match conn.read_to_end_bounded(64 * 1024).await {
                Ok(_) => Ok(()),
                Err(AdbError::Io(e)) if is_disconnect(&e) => Ok(()),
                Err(e) => Err(e),
            }
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(AdbError::Timeout {
                what,
                after: self.timeout,
            }),
        }
    }

    /// `adb reverse LOCAL REMOTE`: connections to the phone's LOCAL (`tcp:PORT`) reach the host's REMOTE
    /// through the adb server (Android 5.0+). `reverse:forward:LOCAL;REMOTE` on the device's transport:
    /// the server's OKAY for the open, then the device's own OKAY or FAIL + message (adb's
    /// commandline.cpp reads both: `adb_connect`, then `adb_status`), then, for `tcp:0`, the port it
    /// chose as a hex4 string. Returns that port when there is one. An existing forward of LOCAL is
    /// replaced, as `adb reverse` does without `--no-rebind`.
    pub async fn reverse_forward(
        &self,
        local: &str,
        remote: &str,
    ) -> Result<Option<u16>, AdbError> {
        if local.is_empty() || remote.is_empty() || local.contains(';') || remote.contains(';') {
            return Err(AdbError::InvalidRequest {
                message: "a reverse forward needs LOCAL and REMOTE such as tcp:5123".into(),
            });
        }
        let what = format!("adb reverse {local} {remote} on {}", self.serial);
        self.server
            .within(&what, self.timeout, async {
                let mut conn = self
                    .open_service(&format!("reverse:forward:{local};{remote}"))
                    .await?;
                // The device's answer is about the forward, not the device: no serial, so that a
                // "not found" in it is not read as a missing device.
                super::wire::read_status(&mut conn.stream, None).await?;
                if local != "tcp:0" {
                    return Ok(None);
                }
                let body = conn.read_hex4_body().await?;
                let text = String::from_utf8_lossy(&body);
                text.trim().parse::<u16>().map(Some).map_err(|_| {
                    AdbError::protocol(format!("reverse forward port {:?}", sanitize(&body)))
                })
            })
            .await
    }

    /// `adb reverse --remove LOCAL` (`reverse:killforward:LOCAL`); the device's FAIL text (e.g.
    /// `listener 'tcp:5123' not found`) is the error.
    pub async fn reverse_remove(&self, local: &str) -> Result<(), AdbError> {
        let what = format!("adb reverse --remove {local} on {}", self.serial);
        self.server
            .within(&what, self.timeout, async {
                let mut conn = self
                    .open_service(&format!("reverse:killforward:{local}"))
                    .await?;
                super::wire::read_status(&mut conn.stream, None).await
            })
            .await
    }

    /// `adb reverse --list` (`reverse:list-forward`): the phone's reverse forwards as (LOCAL, REMOTE),
    /// from adbd's `(reverse) LOCAL REMOTE` lines.
    pub async fn reverse_list(&self) -> Result<Vec<(String, String)>, AdbError> {
        let what = format!("adb reverse --list on {}", self.serial);
        self.server
            .within(&what, self.timeout, async {
                let mut conn = self.open_service("reverse:list-forward").await?;
                let body = conn.read_hex4_body().await?;
                Ok(String::from_utf8_lossy(&body)
                    .lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        match f[..] {
                            [_, local, remote] => Some((local.to_string(), remote.to_string())),
                            _ => None,
                        }
                    })
                    .collect())
            })
            .await
    }

    /// Writes `data` to `remote_path` with permission bits `mode` (sync SEND).
    pub async fn push(&self, data: &[u8], remote_path: &str, mode: u32) -> Result<(), AdbError> {
        let mtime = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        let during = format!("push {remote_path}");
        self.sync_op(&during, async |s| {
            s.push(data, remote_path, mode, mtime).await
        })
        .await
    }

    /// Reads `remote_path` (sync RECV), failing `TooLarge` beyond `limit` bytes.
    pub async fn pull(&self, remote_path: &str, limit: u64) -> Result<Vec<u8>, AdbError> {
        let during = format!("pull {remote_path}");
        self.sync_op(&during, async |s| s.pull(remote_path, limit).await)
            .await
    }

    /// `pull` bounded by `timeout` instead of the device's, into `out`: what arrived before a
    /// timeout (or any other failure) stays in `out`, for a caller that can use part of a file.
    pub async fn pull_into(
        &self,
        remote_path: &str,
        limit: u64,
        timeout: Duration,
        out: &mut Vec<u8>,
    ) -> Result<(), AdbError> {
        let during = format!("pull {remote_path}");
        self.clone()
            .with_timeout(timeout)
            .sync_op(&during, async |s| {
                s.pull_into(remote_path, limit, out).await
            })
            .await
    }

    /// Type, size and mtime of `remote_path`, or None when it does not exist.
    pub async fn stat(&self, remote_path: &str) -> Result<Option<RemoteStat>, AdbError> {
        let v2 = self.has_feature("stat_v2").await?;
        let during = format!("stat {remote_path}");
        self.sync_op(&during, async |s| s.stat(remote_path, v2).await)
            .await
    }

    async fn sync_op<T>(
        &self,
        during: &str,
        op: impl AsyncFnOnce(&mut Sync<'_, TcpStream>) -> Result<T, AdbError>,
    ) -> Result<T, AdbError> {
        let work = async {
            let mut conn = self.open_service("sync:").await?;
            let mut sync = Sync {
                stream: &mut conn.stream,
                serial: &self.serial,
                during: during.to_string(),
            };
            let result = op(&mut sync).await;
            if result.is_ok() {
                sync.quit().await;
            }
            result
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(AdbError::Timeout {
                what: format!("{during} on {}", self.serial),
                after: self.timeout,
            }),
        }
    }

    /// A connection switched to this device with `service` opened on it.
    async fn open_service(&self, service: &str) -> Result<Conn, AdbError> {
        let mut conn = Conn::open(self.server.addr()).await?;
        conn.send(&format!("host:transport:{}", self.serial))
            .await?;
        conn.status(Some(&self.serial)).await?;
        conn.send(service).await?;
        match conn.status(Some(&self.serial)).await {
            Ok(()) => Ok(conn),
            // The device refused the service ("closed"): name the service kind, not its arguments.
            Err(AdbError::Failed { message }) => Err(AdbError::Failed {
                message: format!(
                    "device {} refused service `{}`: {}",
                    self.serial,
                    sanitize(service.split(':').next().unwrap_or("").as_bytes()),
                    message
                ),
            }),
            Err(e) => Err(e),
        }
    }
}

fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

/// The raw byte stream of an `exec:` service. Reading gives the command's stdout; writing feeds its stdin.
/// Dropping it closes the stream.
#[derive(Debug)]
pub struct ExecStream {
    stream: TcpStream,
}

impl AsyncRead for ExecStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ExecStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
