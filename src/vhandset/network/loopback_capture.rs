//! The handset's capture in its private network: a packet socket on the namespace's own `lo`, made by
//! the namespace helper and read here, so capturing needs neither root nor the host's tcpdump.
//!
//! What it yields is what tcpdump would record on that `lo`: whole Ethernet frames (all-zero MAC
//! addresses, the loopback's framing; pcap LINKTYPE_ETHERNET) with the kernel's receive time. Every
//! packet crosses a loopback twice (sent, then received); like libpcap on `lo`, only the received copy
//! is kept — by `PACKET_IGNORE_OUTGOING` where the kernel has it (4.20+), else by dropping frames whose
//! packet type is OUTGOING. A classic BPF program (as `tcpdump -ddd` prints it) may filter in the kernel.
//!
//! Owns: the packet socket. Must not touch: pcap framing and the tcpdump command line (that is
//! `vhandset::tcpdump`), the handset's other sockets.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, SystemTime};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::netns::Netns;

/// `lo` is interface 1 in every network namespace (the kernel creates it first).
const LOOPBACK_IFINDEX: libc::c_int = 1;
/// From linux/if_packet.h (not exported by every libc build).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_OUTGOING: u8 = 4;
/// Asked for; the kernel caps it at `net.core.rmem_max` for a normal user.
const RECEIVE_BUFFER: libc::c_int = 8 << 20;

/// One captured frame's metadata; its bytes are in the caller's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub time: SystemTime,
    /// Bytes copied into the buffer (at most its length).
    pub captured: usize,
    /// The frame's length on the wire.
    pub wire: usize,
}

/// Counters as tcpdump prints them when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub dropped: u64,
}

pub struct LoopbackCapture {
    fd: AsyncFd<OwnedFd>,
    /// False on kernels without PACKET_IGNORE_OUTGOING: outgoing copies are dropped by hand.
    kernel_drops_outgoing: bool,
    received: u64,
    dropped: u64,
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_option<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: setsockopt(2) with a pointer to a live `T` and its size.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
}

impl LoopbackCapture {
    /// Opens the capture on `ns`'s loopback, with `filter` (classic BPF) applied in the kernel.
    pub fn open(ns: &Netns, filter: Option<&[libc::sock_filter]>) -> io::Result<LoopbackCapture> {
        let protocol = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
        // Made with protocol 0, the socket receives nothing until the bind below names ETH_P_ALL
        // (as libpcap does): the filter and the options are in place before the first frame.
        let fd = ns.socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK, 0)?;
        if let Some(program) = filter {
            let fprog = libc::sock_fprog {
                len: u16::try_from(program.len()).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "filter program too long")
                })?,
                filter: program.as_ptr().cast_mut(),
            };
            set_option(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)?;
        }
        let kernel_drops_outgoing = set_option(
            &fd,
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            &1 as &libc::c_int,
        )
        .is_ok();
        // Best effort: a small buffer only risks drops, which the stats then report.
        let _ = set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &RECEIVE_BUFFER);
        set_option(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &1 as &libc::c_int,
        )?;
        // SAFETY: a zeroed sockaddr_ll is valid; the fields set make it a bind to `lo`.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = protocol as u16;
        sll.sll_ifindex = LOOPBACK_IFINDEX;
        // SAFETY: bind(2) with a sockaddr_ll and its size.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        // SAFETY: `fd` is owned by the AsyncFd from here on and closed only when it is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
        Ok(LoopbackCapture {
            fd,
            kernel_drops_outgoing,
            received: 0,
            dropped: 0,
        })
    }

    /// Waits for the next frame and copies up to `buf.len()` bytes of it.
    pub async fn next(&mut self, buf: &mut [u8]) -> io::Result<Frame> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| receive(fd.get_ref(), buf)) {
                Ok(Ok(Some((frame, pkttype)))) => {
                    if !self.kernel_drops_outgoing && pkttype == PACKET_OUTGOING {
                        continue;
                    }
                    self.received += 1;
                    return Ok(frame);
                }
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Frames received and dropped by the kernel so far (the kernel's counters reset on read).
    pub fn stats(&mut self) -> Stats {
        // SAFETY: getsockopt(2) into a tpacket_stats-sized buffer (two u32).
        let mut counters = [0u32; 2];
        let mut len = std::mem::size_of_val(&counters) as libc::socklen_t;
        let rc = unsafe {
            libc::getsockopt(
                self.fd.get_ref().as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                counters.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc == 0 {
            self.dropped += u64::from(counters[1]);
        }
        Stats {
            received: self.received,
            dropped: self.dropped,
        }
    }
}

/// One `recvmsg` with MSG_TRUNC (to learn the wire length) and the kernel's timestamp.
fn receive(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<(Frame, u8)>> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: zeroed sockaddr_ll and msghdr are valid; the pointers set outlive the call.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut space = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&space) as _;
    // SAFETY: recvmsg(2) into the buffers described by `msg`.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let wire = n as usize;
    let mut time = None;
    // SAFETY: walking the control messages the kernel wrote, with the libc macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                time = Some(
                    SystemTime::UNIX_EPOCH
                        + Duration::new(
                            ts.tv_sec.max(0) as u64,
                            ts.tv_nsec.clamp(0, 999_999_999) as u32,
                        ),
                );
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let frame = Frame {
        time: time.unwrap_or_else(SystemTime::now),
        captured: wire.min(buf.len()),
        wire,
    };
    Ok(Some((frame, from.sll_pkttype)))
}
