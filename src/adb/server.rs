//! The adb server as a whole: where it is, whether it runs, its `host:` services (version, devices,
//! connect, disconnect, kill), and a private server on a free port for tests and `--private-adb`.
//!
//! Owns: `AdbServer`, `PrivateAdbServer`, `DeviceInfo` and the `host:devices-l` parser. Must not touch:
//! device services (see `device`); the user's default server on 5037 is never started or killed by
//! `PrivateAdbServer`.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream as StdTcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::device::AdbDevice;
use super::wire::{Conn, MAX_HEX4};
use super::{AdbError, sanitize};

const DEFAULT_PORT: u16 = 5037;
/// Bound for one `host:` exchange with a server that answers from memory.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// `host:connect` waits for the TCP connect; the server gives up on a silent peer after ~10 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(25);
/// `adb start-server` on a slow machine (it also generates the host key on first use).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Address of an adb server (smart-socket protocol) and the `adb` program used to start one.
#[derive(Debug, Clone)]
pub struct AdbServer {
    addr: SocketAddr,
    adb_binary: PathBuf,
}

impl AdbServer {
    /// The server the `adb` command line would use: `ADB_SERVER_SOCKET=tcp:[host:]port`, else
    /// 127.0.0.1:`ANDROID_ADB_SERVER_PORT`, else 127.0.0.1:5037. Unusable values are logged and ignored.
    pub(crate) fn from_env() -> AdbServer {
        let socket = std::env::var("ADB_SERVER_SOCKET").ok();
        let port = std::env::var("ANDROID_ADB_SERVER_PORT").ok();
        AdbServer::at(addr_from_env(socket.as_deref(), port.as_deref()))
    }

    /// The server `adb -H HOST -P PORT` would use: either flag replaces the environment's choice
    /// (HOST defaults to localhost, PORT to 5037, as in adb); neither means [`from_env`].
    /// A host that does not resolve is an error naming it.
    ///
    /// [`from_env`]: AdbServer::from_env
    pub fn from_flags(host: Option<&str>, port: Option<u16>) -> Result<AdbServer, AdbError> {
        if host.is_none() && port.is_none() {
            return Ok(AdbServer::from_env());
        }
        let host = host.unwrap_or("localhost");
        let port = port.unwrap_or(DEFAULT_PORT);
        let spec = if host.contains(':') && !host.starts_with('[') {
            format!("tcp:[{host}]:{port}")
        } else {
            format!("tcp:{host}:{port}")
        };
        parse_server_socket(&spec)
            .map(AdbServer::at)
            .ok_or_else(|| AdbError::BadServerAddress(format!("{host}:{port}")))
    }

    pub fn at(addr: SocketAddr) -> AdbServer {
        AdbServer {
            addr,
            adb_binary: PathBuf::from("adb"),
        }
    }

    /// Uses this `adb` program (instead of `adb` from PATH) when a server must be started.
    pub fn with_adb_binary(mut self, binary: impl Into<PathBuf>) -> AdbServer {
        self.adb_binary = binary.into();
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Starts the server with `adb -P PORT start-server` if nothing answers. Only for a loopback address:
    /// a remote server (device farm) cannot be started from here.
    pub async fn ensure_running(&self) -> Result<(), AdbError> {
        match self.version().await {
            Ok(_) => return Ok(()),
            Err(AdbError::ServerUnreachable { .. }) if self.addr.ip().is_loopback() => {}
            Err(e) => return Err(e),
        }
        tracing::info!(port = self.port(), "no adb server answers; starting one");
        let mut cmd = tokio::process::Command::new(&self.adb_binary);
        cmd.arg("-P")
            .arg(self.port().to_string())
            .arg("start-server")
            .env_remove("ADB_SERVER_SOCKET")
            .env_remove("ANDROID_ADB_SERVER_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| spawn_error(&self.adb_binary, self.port(), e))?;
        let out = tokio::time::timeout(START_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| AdbError::Timeout {
                what: format!("`adb -P {} start-server`", self.port()),
                after: START_TIMEOUT,
            })??;
        if !out.status.success() {
            return Err(AdbError::ServerStart {
                port: self.port(),
                message: format!(
                    "`adb start-server` failed ({}): {}",
                    out.status,
                    sanitize(&out.stderr)
                ),
            });
        }
        self.version().await.map(|_| ())
    }

    /// The server's protocol version (`host:version`), 41 for Debian's adb 29.
    pub async fn version(&self) -> Result<u32, AdbError> {
        let body = self.query("host:version", REQUEST_TIMEOUT).await?;
        let text =
            std::str::from_utf8(&body).map_err(|_| AdbError::protocol("non-ASCII version"))?;
        u32::from_str_radix(text.trim(), 16)
            .map_err(|_| AdbError::protocol(format!("bad version {:?}", sanitize(&body))))
    }

    /// Every device the server knows, with its state and banner fields (`host:devices-l`).
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>, AdbError> {
        let body = self.query("host:devices-l", REQUEST_TIMEOUT).await?;
        Ok(parse_devices_l(&String::from_utf8_lossy(&body)))
    }

    /// `adb connect HOST:PORT`. The server answers OKAY even when it failed, so the reply text decides.
    pub async fn connect(&self, host_port: &str) -> Result<(), AdbError> {
        let body = self
            .query(&format!("host:connect:{host_port}"), CONNECT_TIMEOUT)
            .await?;
        let text = sanitize(&body);
        if text.starts_with("connected to") || text.starts_with("already connected to") {
            tracing::debug!(target_addr = host_port, "adb connect: {text}");
            Ok(())
        } else {
            Err(AdbError::Failed { message: text })
        }
    }

    /// What a starting emulator tells the adb server (`host:emulator:ADB_PORT`): the server connects to
    /// 127.0.0.1:ADB_PORT as it does for the emulators its scan of 5555–5585 finds (adb's
    /// `local_connect`), and lists the device as `emulator-(ADB_PORT-1)`, the console port. Any port
    /// works, so a handset outside the scanned range gets an emulator's serial without being found by
    /// every other adb server on the machine. The server sends no reply (tried on Debian's adb 29); the
    /// serial appears in `devices` once it is connected: wait for it with `wait_for_device`.
    pub async fn register_emulator(&self, adb_port: u16) -> Result<(), AdbError> {
        let request = format!("host:emulator:{adb_port}");
        self.within(&request, REQUEST_TIMEOUT, async {
            let mut conn = Conn::open(self.addr).await?;
            conn.send(&request).await?;
            // The server closes the connection when it has read the request.
            conn.read_to_end_bounded(4096).await.map(|_| ())
        })
        .await
    }

    /// `adb disconnect HOST:PORT`.
    pub async fn disconnect(&self, host_port: &str) -> Result<(), AdbError> {
        let request = format!("host:disconnect:{host_port}");
        let result = self.within(&request, REQUEST_TIMEOUT, async {
            let mut conn = Conn::open(self.addr).await?;
            conn.send(&request).await?;
            conn.status(Some(host_port)).await?;
            conn.read_hex4_body().await
        });
        match result.await {
            Ok(_) => Ok(()),
            // "no such device 'X'": say it the way every other request does.
            Err(AdbError::Failed { message }) if message.starts_with("no such device") => {
                Err(AdbError::DeviceNotFound {
                    serial: host_port.to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Waits until `serial` is listed in state `device`. Polls, because `wait-for-device` on the server side
    /// has no timeout of its own.
    pub async fn wait_for_device(&self, serial: &str, timeout: Duration) -> Result<(), AdbError> {
        let deadline = Instant::now() + timeout;
        let mut last_state: Option<DeviceState> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let devices = tokio::time::timeout(remaining, self.devices()).await;
            match devices {
                Ok(Ok(list)) => {
                    last_state = list
                        .into_iter()
                        .find(|d| d.serial == serial)
                        .map(|d| d.state);
                    if last_state == Some(DeviceState::Device) {
                        return Ok(());
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                let serial = serial.to_string();
                return Err(match last_state {
                    Some(DeviceState::Unauthorized) => AdbError::Unauthorized { serial },
                    Some(DeviceState::Offline) => AdbError::DeviceOffline { serial },
                    state => AdbError::Timeout {
                        what: format!(
                            "device `{serial}` to be ready (last state: {})",
                            state.map_or("not listed".to_string(), |s| s.to_string())
                        ),
                        after: timeout,
                    },
                });
            }
            tokio::time::sleep(Duration::from_millis(150).min(remaining)).await;
        }
    }

    /// A handle on one device behind this server. Nothing is checked until it is used.
    pub fn device(&self, serial: &str) -> AdbDevice {
        AdbDevice::new(self.clone(), serial)
    }

    /// `adb kill-server`: the server answers OKAY and exits.
    pub async fn kill(&self) -> Result<(), AdbError> {
        self.within("host:kill", REQUEST_TIMEOUT, async {
            let mut conn = Conn::open(self.addr).await?;
            conn.send("host:kill").await?;
            conn.status(None).await
        })
        .await
    }

    /// A `host:` request whose OKAY is followed by one hex4 body.
    async fn query(&self, request: &str, timeout: Duration) -> Result<Vec<u8>, AdbError> {
        self.within(request, timeout, async {
            let mut conn = Conn::open(self.addr).await?;
            conn.send(request).await?;
            conn.status(None).await?;
            conn.read_hex4_body().await
        })
        .await
    }

    pub(crate) async fn within<T>(
        &self,
        what: &str,
        timeout: Duration,
        fut: impl Future<Output = Result<T, AdbError>>,
    ) -> Result<T, AdbError> {
        match tokio::time::timeout(timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(AdbError::Timeout {
                what: format!("the adb server at {} to answer {what}", self.addr),
                after: timeout,
            }),
        }
    }
}

fn spawn_error(binary: &std::path::Path, port: u16, e: std::io::Error) -> AdbError {
    if e.kind() == std::io::ErrorKind::NotFound {
        AdbError::AdbMissing {
            binary: binary.display().to_string(),
        }
    } else {
        AdbError::ServerStart {
            port,
            message: format!("cannot run `{}`: {e}", binary.display()),
        }
    }
}

fn addr_from_env(socket: Option<&str>, port: Option<&str>) -> SocketAddr {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    if let Some(spec) = socket.filter(|s| !s.is_empty()) {
        if let Some(addr) = parse_server_socket(spec) {
            return addr;
        }
        tracing::warn!(
            value = spec,
            "ignoring ADB_SERVER_SOCKET: expected tcp:PORT or tcp:HOST:PORT"
        );
    }
    if let Some(p) = port.filter(|s| !s.is_empty()) {
        match p.trim().parse::<u16>() {
            Ok(p) if p != 0 => return SocketAddr::new(loopback, p),
            _ => tracing::warn!(
                value = p,
                "ignoring ANDROID_ADB_SERVER_PORT: not a port number"
            ),
        }
    }
    SocketAddr::new(loopback, DEFAULT_PORT)
}

/// `tcp:5037`, `tcp:localhost:5037`, `tcp:10.0.0.2:5037`, `tcp:[::1]:5037`.
fn parse_server_socket(spec: &str) -> Option<SocketAddr> {
    let rest = spec.strip_prefix("tcp:")?;
    if let Ok(port) = rest.parse::<u16>() {
        return (port != 0).then(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(addr) = rest.parse::<SocketAddr>() {
        return Some(addr);
    }
    let (host, port) = rest.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    if host == "localhost" {
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    // Name resolution is blocking; this runs once at start-up, before any async work matters.
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()?
        .next()
}

/// State of a device as `adb devices` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceState {
    Device,
    Offline,
    Unauthorized,
    Authorizing,
    Connecting,
    Bootloader,
    Recovery,
    Sideload,
    Rescue,
    Host,
    /// `no permissions (…)`: the USB device node is not accessible to the server.
    NoPermissions,
    Other(String),
}

impl DeviceState {
    pub(crate) fn parse(text: &str) -> DeviceState {
        match text {
            "device" => DeviceState::Device,
            "offline" => DeviceState::Offline,
            "unauthorized" => DeviceState::Unauthorized,
            "authorizing" => DeviceState::Authorizing,
            "connecting" => DeviceState::Connecting,
            "bootloader" => DeviceState::Bootloader,
            "recovery" => DeviceState::Recovery,
            "sideload" => DeviceState::Sideload,
            "rescue" => DeviceState::Rescue,
            "host" => DeviceState::Host,
            t if t.starts_with("no permissions") => DeviceState::NoPermissions,
            other => DeviceState::Other(other.chars().take(64).collect()),
        }
    }
}

impl std::fmt::Display for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceState::Device => "device",
            DeviceState::Offline => "offline",
            DeviceState::Unauthorized => "unauthorized",
            DeviceState::Authorizing => "authorizing",
            DeviceState::Connecting => "connecting",
            DeviceState::Bootloader => "bootloader",
            DeviceState::Recovery => "recovery",
            DeviceState::Sideload => "sideload",
            DeviceState::Rescue => "rescue",
            DeviceState::Host => "host",
            DeviceState::NoPermissions => "no permissions",
            DeviceState::Other(s) => s,
        })
    }
}

/// One line of `adb devices -l`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub serial: String,
    pub state: DeviceState,
    pub product: Option<String>,
    pub model: Option<String>,
    pub device: Option<String>,
    /// USB path (`usb:1-1`) for USB devices.
    pub usb: Option<String>,
    pub transport_id: Option<u64>,
}

const FIELD_KEYS: [&str; 5] = ["usb:", "product:", "model:", "device:", "transport_id:"];

/// Parses `host:devices-l` text: `SERIAL <spaces> STATE [usb:…] [product:…] [model:…] [device:…]
/// [transport_id:N]`. The state may hold spaces (`no permissions (…)`), so it runs up to the first known
/// field. Lines that make no sense are skipped, never fatal.
pub fn parse_devices_l(text: &str) -> Vec<DeviceInfo> {
    let mut out = Vec::new();
    for line in text.lines().take(MAX_HEX4) {
        let mut tokens = line.split_whitespace();
        let Some(serial) = tokens.next() else {
            continue;
        };
        let rest: Vec<&str> = tokens.collect();
        let first_field = rest
            .iter()
            .position(|t| FIELD_KEYS.iter().any(|k| t.starts_with(k)))
            .unwrap_or(rest.len());
        if first_field == 0 {
            continue;
        }
        let mut info = DeviceInfo {
            serial: serial.to_string(),
            state: DeviceState::parse(&rest[..first_field].join(" ")),
            product: None,
            model: None,
            device: None,
            usb: None,
            transport_id: None,
        };
        for token in &rest[first_field..] {
            let Some((key, value)) = token.split_once(':') else {
                continue;
            };
            let value = Some(value.to_string());
            match key {
                "usb" => info.usb = value,
                "product" => info.product = value,
                "model" => info.model = value,
                "device" => info.device = value,
                "transport_id" => info.transport_id = token[key.len() + 1..].parse().ok(),
                _ => {}
            }
        }
        out.push(info);
    }
    out
}

/// An adb server of tattle's own on a free loopback port, run as a child process (`adb -P PORT nodaemon
/// server`) so that it is ours to stop: killed when dropped. The user's default server is never touched.
pub struct PrivateAdbServer {
    server: AdbServer,
    child: Option<Child>,
}

impl PrivateAdbServer {
    /// Starts a server with `adb` from PATH and waits until it answers.
    pub async fn start() -> Result<PrivateAdbServer, AdbError> {
        Self::start_with(PathBuf::from("adb")).await
    }

    /// Same with an explicit `adb` program.
    pub async fn start_with(adb_binary: PathBuf) -> Result<PrivateAdbServer, AdbError> {
        // An adb server's first start creates the user's key pair (~/.android/adbkey); two servers
        // starting at once on a fresh machine race on it and one aborts (SIGABRT, seen on a fresh
        // CI machine). So starts wait for each other until one server of this process has answered.
        static KEY_READY: tokio::sync::Mutex<bool> = tokio::sync::Mutex::const_new(false);
        let mut key_ready = KEY_READY.lock().await;
        if *key_ready {
            drop(key_ready);
            return Self::start_unserialised(adb_binary).await;
        }
        let started = Self::start_unserialised(adb_binary).await;
        *key_ready = started.is_ok();
        started
    }

    async fn start_unserialised(adb_binary: PathBuf) -> Result<PrivateAdbServer, AdbError> {
        let port = free_port()?;
        let server = AdbServer::at(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
            .with_adb_binary(&adb_binary);
        let child = std::process::Command::new(&adb_binary)
            .arg("-P")
            .arg(port.to_string())
            .arg("nodaemon")
            .arg("server")
            .env_remove("ADB_SERVER_SOCKET")
            .env_remove("ANDROID_ADB_SERVER_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| spawn_error(&adb_binary, port, e))?;
        let mut private = PrivateAdbServer {
            server,
            child: Some(child),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match private.server.version().await {
                Ok(_) => break,
                Err(AdbError::ServerUnreachable { .. }) if Instant::now() < deadline => {}
                Err(e) => return Err(e),
            }
            if let Some(child) = private.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                private.child = None;
                return Err(AdbError::ServerStart {
                    port,
                    message: format!(
                        "`adb nodaemon server` exited at once ({status}); is the port taken?"
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::debug!(port, "private adb server started");
        Ok(private)
    }

    pub fn server(&self) -> &AdbServer {
        &self.server
    }
}

impl Drop for PrivateAdbServer {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Ask politely first so the server closes its device transports; then make sure.
        if let Ok(mut s) = StdTcpStream::connect_timeout(&self.server.addr, Duration::from_secs(1))
        {
            use std::io::Write;
            let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = s.write_all(b"0009host:kill");
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn free_port() -> Result<u16, AdbError> {
    // Ports the adb server scans for emulators (5555–5585) are never handed out by the kernel's ephemeral
    // range on Linux, so no check is needed for them.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_l_lines() {
        let text = "127.0.0.1:7001         device product:aosp_x86 model:Pixel_7 device:panther transport_id:3\n\
                    emulator-5554          offline transport_id:1\n\
                    0123456789ABCDEF       no permissions (user in plugdev group; are your udev rules wrong?); see [http://developer.android.com/tools/device.html] usb:1-1 transport_id:2\n\
                    R58M123                unauthorized usb:2-1 transport_id:4\n\
                    \n\
                    garbage-only-serial\n\
                    x transport_id:notanumber\n";
        let list = parse_devices_l(text);
        assert_eq!(list.len(), 4);
        assert_eq!(list[0].serial, "127.0.0.1:7001");
        assert_eq!(list[0].state, DeviceState::Device);
        assert_eq!(list[0].product.as_deref(), Some("aosp_x86"));
        assert_eq!(list[0].model.as_deref(), Some("Pixel_7"));
        assert_eq!(list[0].device.as_deref(), Some("panther"));
        assert_eq!(list[0].transport_id, Some(3));
        assert_eq!(list[1].state, DeviceState::Offline);
        assert_eq!(list[1].model, None);
        assert_eq!(list[2].state, DeviceState::NoPermissions);
        assert_eq!(list[2].usb.as_deref(), Some("1-1"));
        assert_eq!(list[2].transport_id, Some(2));
        assert_eq!(list[3].state, DeviceState::Unauthorized);
        assert!(parse_devices_l("").is_empty());
    }

    #[test]
    fn devices_l_survives_hostile_text() {
        let hostile = "\u{1b}[2J\tdevice\n:::: :::\nserial\ttransport_id:99999999999999999999999\n\
                       s model:\u{0}x device:\nno permissions\n";
        let list = parse_devices_l(hostile);
        assert!(list.iter().all(|d| d.transport_id.is_none()));
        let long = "x ".repeat(100_000);
        let _ = parse_devices_l(&long);
    }

    #[test]
    fn env_addresses() {
        let lo = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
        assert_eq!(addr_from_env(None, None), lo(5037));
        assert_eq!(addr_from_env(None, Some("15037")), lo(15037));
        assert_eq!(addr_from_env(None, Some("nope")), lo(5037));
        assert_eq!(addr_from_env(Some("tcp:6000"), Some("15037")), lo(6000));
        assert_eq!(addr_from_env(Some("tcp:localhost:6001"), None), lo(6001));
        assert_eq!(
            addr_from_env(Some("tcp:10.1.2.3:6002"), None),
            "10.1.2.3:6002".parse().unwrap()
        );
        assert_eq!(
            addr_from_env(Some("tcp:[::1]:6003"), None),
            "[::1]:6003".parse().unwrap()
        );
        assert_eq!(
            addr_from_env(Some("localfilesystem:/x"), Some("7000")),
            lo(7000)
        );
    }
}
