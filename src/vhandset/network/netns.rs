//! A private network for one virtual handset: a user namespace with a network namespace inside it,
//! entered by a normal user, no root, no capabilities on the host.
//!
//! Why: the handset's servers listen on ports 53/80/123/443 and its capture reads a packet socket; on
//! the host both need root. In a user namespace of its own the same user holds every capability *for
//! that namespace only* (user_namespaces(7)), and the network namespace it owns has a loopback that
//! carries the handset's traffic and nothing else — one handset, one `lo`, one capture.
//!
//! How: tattle is multi-threaded (tokio), and a threaded process may not unshare a user namespace
//! (the kernel answers EINVAL). So a forked helper — the *minter* — unshares, maps the user's ids,
//! brings `lo` up, and from then on only makes sockets on request and hands each back over a Unix
//! socket (`SCM_RIGHTS`). Every socket is used in tattle's own process: as the namespace's owner it may
//! bind low ports and set options on them; only `socket(2)` itself must run inside. The namespace lives
//! as long as one of its sockets is open; the minter exits when tattle closes its end (or exits).
//! The facts behind this, each tried on a stock kernel as a normal user: docs/research/rootless-capture.md.
//!
//! Owns: the minter process and its little protocol. Must not touch: what the sockets are for (that is
//! the rest of `network`), the adbd (it stays in the host's namespaces, where the adb server reaches it).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::Duration;

use libc::c_int;

/// How long the minter may take to set the namespace up and answer its first word.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// One socket request is a local round trip; a minter that does not answer within this is gone.
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);

/// The step of the set-up that failed, as the minter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Fork,
    Unshare,
    SetGroups,
    UidMap,
    GidMap,
    LoopbackUp,
    /// The minter did not report (killed, or the report was garbled).
    Report,
}

impl Stage {
    fn from_code(code: i32) -> Option<Stage> {
        Some(match code {
            1 => Stage::Unshare,
            2 => Stage::SetGroups,
            3 => Stage::UidMap,
            4 => Stage::GidMap,
            5 => Stage::LoopbackUp,
            _ => return None,
        })
    }
}

/// Why no private network could be made, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}{}", advice(*.stage, .source))]
pub struct NetnsError {
    pub stage: Stage,
    what: &'static str,
    pub source: io::Error,
}

impl NetnsError {
    fn new(stage: Stage, source: io::Error) -> NetnsError {
        let what = match stage {
            Stage::Fork => "cannot start the namespace helper",
            Stage::Unshare => "cannot create a user + network namespace",
            Stage::SetGroups => "cannot write /proc/self/setgroups in the new user namespace",
            Stage::UidMap => "cannot map the user id into the new user namespace",
            Stage::GidMap => "cannot map the group id into the new user namespace",
            Stage::LoopbackUp => "cannot bring up the loopback of the new network namespace",
            Stage::Report => "the namespace helper did not report",
        };
        NetnsError {
            stage,
            what,
            source,
        }
    }
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The one fix that applies, told apart by the failing step, its errno and the host's knobs (the
/// table in docs/research/rootless-capture.md §5).
fn advice(stage: Stage, e: &io::Error) -> String {
    let apparmor = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
        == Some("1");
    let debian_knob = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone");
    let errno = e.raw_os_error();
    let fix = match (stage, errno) {
        (Stage::Unshare, Some(libc::ENOSPC)) => {
            "user namespaces are limited to none here (user.max_user_namespaces): \
             `sudo sysctl -w user.max_user_namespaces=10000`"
                .to_string()
        }
        (Stage::Unshare, Some(libc::EPERM)) if debian_knob.as_deref() == Some("0") => {
            "this kernel forbids unprivileged user namespaces: \
             `sudo sysctl -w kernel.unprivileged_userns_clone=1`"
                .to_string()
        }
        (Stage::Unshare, Some(libc::EPERM)) => "user namespaces are refused here (a container's \
             seccomp profile, or this process already runs in a namespace without a mapped uid): run \
             tattle on the host, or start the container with user namespaces allowed"
            .to_string(),
        (Stage::UidMap | Stage::GidMap | Stage::SetGroups | Stage::LoopbackUp, _) if apparmor => {
            "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10 and later): \
             `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or an AppArmor profile \
             granting `userns,` to the tattle binary (docs/virtual-handset.md)"
                .to_string()
        }
        _ => String::new(),
    };
    let root = "; or run as root, or let the virtual handsets use the host's own loopback: \
                `sudo setcap cap_net_bind_service+ep \"$(command -v tattle)\"` and `sudo setcap \
                cap_net_raw,cap_net_admin+eip \"$(command -v tcpdump)\"`";
    if fix.is_empty() {
        root.to_string()
    } else {
        format!("; {fix}{root}")
    }
}

/// A private network namespace and the helper that makes sockets in it.
#[derive(Debug)]
pub struct Netns {
    /// Our end of the minter's `SOCK_SEQPACKET` pair; one request at a time. `None` once a round
    /// trip failed: a reply left queued would answer the next request with the wrong socket, so the
    /// channel is never used again after an error.
    control: Mutex<Option<OwnedFd>>,
}

impl Netns {
    /// Forks the minter, which creates the namespaces and brings `lo` up; returns once it has.
    pub fn create() -> Result<Netns, NetnsError> {
        let err = |stage| move |e| NetnsError::new(stage, e);
        let mut pair = [0 as c_int; 2];
        // SAFETY: socketpair(2) writing two fds into a 2-element array.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                pair.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(NetnsError::new(Stage::Fork, io::Error::last_os_error()));
        }
        // SAFETY: both fds were just created and are owned by nobody else.
        let (ours, theirs) =
            unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
        // Everything the minter needs is prepared here: after fork() it may not allocate.
        // The kernel wants the writer's effective ids in the maps. SAFETY: these cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let uid_map = IdMap::new(uid);
        let gid_map = IdMap::new(gid);

        // SAFETY: fork(2). The child runs only async-signal-safe system calls on memory prepared
        // above (see `minter`), never returns, and leaves through `_exit`.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(NetnsError::new(Stage::Fork, io::Error::last_os_error()));
        }
        if pid == 0 {
            // The intermediate child: fork the minter and leave at once, so the minter is adopted by
            // init (or the nearest subreaper) and never becomes our zombie.
            // SAFETY: as above; both branches end in `_exit` or `minter`, which never returns.
            unsafe {
                let grandchild = libc::fork();
                if grandchild == 0 {
                    minter(theirs.as_raw_fd(), ours.as_raw_fd(), &uid_map, &gid_map);
                }
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: reaping the intermediate child we just forked; it exits at once.
        unsafe {
            libc::waitpid(pid, &mut status, 0);
        }
        drop(theirs);
        set_timeout(&ours, libc::SO_RCVTIMEO, REPLY_TIMEOUT).map_err(err(Stage::Fork))?;

        let mut report = [0u8; 8];
        match recv_with_deadline(&ours, &mut report, START_TIMEOUT) {
            Ok(8) => {}
            Ok(_) => {
                return Err(NetnsError::new(
                    Stage::Report,
                    io::Error::new(io::ErrorKind::UnexpectedEof, "the helper exited"),
                ));
            }
            Err(e) => return Err(NetnsError::new(Stage::Report, e)),
        }
        let stage = i32::from_ne_bytes([report[0], report[1], report[2], report[3]]);
        let errno = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
        if stage != 0 {
            let stage = Stage::from_code(stage).unwrap_or(Stage::Report);
            return Err(NetnsError::new(stage, io::Error::from_raw_os_error(errno)));
        }
        Ok(Netns {
            control: Mutex::new(Some(ours)),
        })
    }

    /// `socket(domain, ty, protocol)` made inside the namespace. `ty` may carry `SOCK_NONBLOCK`;
    /// `SOCK_CLOEXEC` is always added.
    pub fn socket(&self, domain: c_int, ty: c_int, protocol: c_int) -> io::Result<OwnedFd> {
        let mut guard = self
            .control
            .lock()
            .map_err(|_| io::Error::other("the namespace helper's channel was poisoned"))?;
        let Some(control) = guard.as_ref() else {
            return Err(gone(io::Error::other("an earlier request failed")));
        };
        match round_trip(control, domain, ty, protocol) {
            Ok(answer) => answer,
            Err(e) => {
                // Out of step or gone: close our end (the minter then exits) and refuse from now on.
                *guard = None;
                Err(e)
            }
        }
    }
}

/// One request and its reply. `Err` when the channel itself failed; `Ok(Err(errno))` when the
/// minter answered that `socket(2)` failed.
fn round_trip(
    control: &OwnedFd,
    domain: c_int,
    ty: c_int,
    protocol: c_int,
) -> io::Result<io::Result<OwnedFd>> {
    let mut request = [0u8; 12];
    request[..4].copy_from_slice(&domain.to_ne_bytes());
    request[4..8].copy_from_slice(&(ty | libc::SOCK_CLOEXEC).to_ne_bytes());
    request[8..].copy_from_slice(&protocol.to_ne_bytes());
    // SAFETY: send(2) of a local buffer on a socket we own.
    let sent = unsafe {
        libc::send(
            control.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if sent != request.len() as isize {
        return Err(gone(io::Error::last_os_error()));
    }
    let (errno, fd) = recv_fd(control)?;
    Ok(match (errno, fd) {
        (0, Some(fd)) => Ok(fd),
        (0, None) => Err(io::Error::other(
            "the namespace helper answered without a socket (tattle has no descriptor left?)",
        )),
        (errno, _) => Err(io::Error::from_raw_os_error(errno)),
    })
}

fn gone(e: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("the virtual handset's namespace helper is gone ({e})"),
    )
}

fn set_timeout(fd: &OwnedFd, option: c_int, t: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: setsockopt(2) with a timeval of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn recv_with_deadline(fd: &OwnedFd, buf: &mut [u8], t: Duration) -> io::Result<usize> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = std::time::Instant::now() + t;
    let rc = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // SAFETY: poll(2) on one pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, left.as_millis() as c_int) };
        if rc < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break rc;
    };
    if rc == 0 {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {t:?}"),
        ));
    }
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: recv(2) into a buffer of the given length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Receives one reply: a 4-byte errno and, when it is 0, one descriptor.
fn recv_fd(control: &OwnedFd) -> io::Result<(i32, Option<OwnedFd>)> {
    let mut payload = [0u8; 4];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // Room for one cmsg carrying up to 4 descriptors, aligned for cmsghdr.
    let mut space = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&space) as _;
    let n = loop {
        // SAFETY: recvmsg(2) into the buffers described by `msg`.
        let n = unsafe { libc::recvmsg(control.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break n;
    };
    if n < 0 {
        return Err(gone(io::Error::last_os_error()));
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(gone(io::Error::other(
            "the descriptor was dropped in transit (out of file descriptors?)",
        )));
    }
    if n == 0 {
        return Err(gone(io::Error::from(io::ErrorKind::UnexpectedEof)));
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel wrote into `space`, with the libc macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if n != 4 || fds.len() > 1 {
        return Err(io::Error::other(
            "the namespace helper sent a garbled reply",
        ));
    }
    Ok((i32::from_ne_bytes(payload), fds.pop()))
}

/// `0 <id> 1\n` for uid_map/gid_map, formatted before the fork.
struct IdMap {
    bytes: [u8; 32],
    len: usize,
}

impl IdMap {
    fn new(id: u32) -> IdMap {
        let text = format!("0 {id} 1\n");
        let mut bytes = [0u8; 32];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        IdMap {
            bytes,
            len: text.len(),
        }
    }
}

/// The minter's whole life, in the forked child. Only async-signal-safe system calls: the parent is
/// multi-threaded, and another thread may have held the allocator's lock at the fork.
///
/// # Safety
/// Call only in a freshly forked child; never returns.
unsafe fn minter(control: RawFd, parents_end: RawFd, uid_map: &IdMap, gid_map: &IdMap) -> ! {
    const CONTROL: RawFd = 3;
    unsafe {
        // Out of tattle's session: a Ctrl-C on the terminal is tattle's to handle, not ours.
        libc::setsid();
        // tokio's signal handlers came with the fork and would write to descriptors closed below:
        // the default dispositions, and nothing blocked.
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::close(parents_end);
        // Keep only the control socket (as fd 3) and /dev/null on 0-2: copies of tattle's other
        // descriptors (listeners, pipes, adb connections) would otherwise outlive their closing.
        if control != CONTROL {
            libc::dup2(control, CONTROL);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
        }
        if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
            for fd in 4..65_536 {
                libc::close(fd);
            }
        }
        if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
            report_and_exit(CONTROL, 1);
        }
        // `deny` must precede gid_map for an unprivileged writer; kernels before 3.19 have no file.
        if !write_file(c"/proc/self/setgroups", b"deny") && errno() != libc::ENOENT {
            report_and_exit(CONTROL, 2);
        }
        if !write_file(c"/proc/self/uid_map", &uid_map.bytes[..uid_map.len]) {
            report_and_exit(CONTROL, 3);
        }
        if !write_file(c"/proc/self/gid_map", &gid_map.bytes[..gid_map.len]) {
            report_and_exit(CONTROL, 4);
        }
        if !loopback_up() {
            report_and_exit(CONTROL, 5);
        }
        report(CONTROL, 0, 0);
        serve(CONTROL)
    }
}

unsafe fn errno() -> c_int {
    unsafe { *libc::__errno_location() }
}

unsafe fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> bool {
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
        if fd < 0 {
            return false;
        }
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let saved = errno();
        libc::close(fd);
        *libc::__errno_location() = saved;
        n == bytes.len() as isize
    }
}

/// `ip link set lo up`, by the two ioctls every `ifconfig` uses (no netlink needed).
unsafe fn loopback_up() -> bool {
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return false;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        let mut ok = libc::ioctl(s, libc::SIOCGIFFLAGS as _, &mut req) == 0;
        if ok {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            ok = libc::ioctl(s, libc::SIOCSIFFLAGS as _, &mut req) == 0;
        }
        let saved = errno();
        libc::close(s);
        *libc::__errno_location() = saved;
        ok
    }
}

unsafe fn report(control: RawFd, stage: i32, errno: i32) {
    let mut word = [0u8; 8];
    word[..4].copy_from_slice(&stage.to_ne_bytes());
    word[4..].copy_from_slice(&errno.to_ne_bytes());
    unsafe {
        libc::send(
            control,
            word.as_ptr().cast(),
            word.len(),
            libc::MSG_NOSIGNAL,
        );
    }
}

unsafe fn report_and_exit(control: RawFd, stage: i32) -> ! {
    unsafe {
        report(control, stage, errno());
        libc::_exit(1)
    }
}

/// Answers socket requests until tattle closes its end.
unsafe fn serve(control: RawFd) -> ! {
    loop {
        let mut request = [0u8; 12];
        let n = unsafe { libc::recv(control, request.as_mut_ptr().cast(), request.len(), 0) };
        if n == 0 || (n < 0 && unsafe { errno() } != libc::EINTR) {
            unsafe { libc::_exit(0) };
        }
        if n != 12 {
            continue;
        }
        let word = |i: usize| {
            i32::from_ne_bytes([request[i], request[i + 1], request[i + 2], request[i + 3]])
        };
        let fd = unsafe { libc::socket(word(0), word(4), word(8)) };
        let errno = if fd < 0 { unsafe { errno() } } else { 0 };
        unsafe {
            send_fd(control, errno, fd);
            if fd >= 0 {
                libc::close(fd);
            }
        }
    }
}

/// Sends a 4-byte errno and, when `fd` is valid, the descriptor with it.
unsafe fn send_fd(control: RawFd, errno: i32, fd: RawFd) {
    let mut payload = errno.to_ne_bytes();
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut space = [0u64; 4];
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if fd >= 0 {
            msg.msg_control = space.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
        libc::sendmsg(control, &msg, libc::MSG_NOSIGNAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs where unprivileged user namespaces are allowed (the test reports, rather than hides,
    /// a host that forbids them: the error must then name the fix).
    #[test]
    fn minted_sockets_live_in_a_private_loopback() {
        let ns = match Netns::create() {
            Ok(ns) => ns,
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("run as root"), "{text}");
                eprintln!("user namespaces unavailable here: {text}");
                return;
            }
        };
        // A low port binds inside, for a normal user too (we own the namespace).
        let fd = ns
            .socket(libc::AF_INET, libc::SOCK_STREAM, 0)
            .expect("socket");
        let listener = std::net::TcpListener::from(fd);
        drop(listener);
        let fd = ns.socket(libc::AF_INET, libc::SOCK_DGRAM, 0).unwrap();
        let udp = std::net::UdpSocket::from(fd);
        udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        // Invalid requests come back as errors, and the helper keeps serving.
        let bad = ns.socket(12345, libc::SOCK_STREAM, 0).unwrap_err();
        assert_eq!(bad.raw_os_error(), Some(libc::EAFNOSUPPORT));
        assert!(ns.socket(libc::AF_INET, libc::SOCK_DGRAM, 0).is_ok());
    }

    #[test]
    fn every_failure_names_a_fix() {
        for stage in [
            Stage::Unshare,
            Stage::UidMap,
            Stage::LoopbackUp,
            Stage::Report,
        ] {
            for errno in [libc::EPERM, libc::ENOSPC, libc::EINVAL] {
                let e = NetnsError::new(stage, io::Error::from_raw_os_error(errno));
                assert!(e.to_string().contains("run as root"), "{e}");
            }
        }
        let e = NetnsError::new(Stage::Unshare, io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(e.to_string().contains("max_user_namespaces"), "{e}");
    }
}
