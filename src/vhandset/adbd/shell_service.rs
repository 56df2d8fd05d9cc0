//! The services that run a shell command on a stream: `exec:` and legacy `shell:` (raw bytes both ways,
//! stderr merged, no exit status) and `shell,v2,…:` (stdout/stderr/exit packets out, stdin/close-stdin/
//! window packets in). Each command runs in its own task that dies with its stream; when the host goes
//! away the command's outputs are closed (its cue to stop, e.g. tcpdump's SIGINT) before it is aborted.
//!
//! Must not touch: what a command does (`shell`), the packet format (`shell_protocol`), the stream's flow
//! control (`stream`).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::AbortOnDrop;
use super::shell_protocol::{
    ID_CLOSE_STDIN, ID_EXIT, ID_STDERR, ID_STDIN, ID_STDOUT, ID_WINDOW_SIZE, ShellPacketParser,
    shell_packet,
};
use super::stream::AdbStream;
use crate::vhandset::ShellIo;
use crate::vhandset::shell::{self, Handset};

/// Runs a command line, or an interactive shell (`tty`: with prompt and echo) when there is none.
fn spawn_command(
    handset: Arc<Handset>,
    command: Option<String>,
    io: ShellIo,
    tty: bool,
) -> AbortOnDrop<i32> {
    AbortOnDrop(tokio::spawn(async move {
        match command {
            Some(c) => shell::run_command(handset, &c, io).await,
            None => shell::run_interactive(handset, io, tty).await,
        }
    }))
}

/// `exec:` and legacy `shell:`: bytes both ways, stderr merged, no exit status. `crlf`: the command
/// runs under a pty (legacy `shell:` before 7.0), whose output processing turns every `\n` into `\r\n`.
pub(super) async fn run_raw(
    stream: &mut AdbStream,
    handset: Arc<Handset>,
    command: Option<String>,
    crlf: bool,
) {
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
    let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(16);
    let io = ShellIo {
        stdout: out_tx.clone(),
        stderr: out_tx,
        stdin: in_rx,
    };
    let mut task = spawn_command(handset, command, io, true);
    let mut stdin = Some(in_tx);
    let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
    let mut finished = false;
    let host_gone = 'io: {
        loop {
            tokio::select! {
                d = out_rx.recv() => match d {
                    Some(d) => {
                        let d = if crlf { onlcr(&d) } else { d };
                        if stream.write(&d).await.is_err() { break 'io true }
                    }
                    None => break,
                },
                r = &mut task.0, if !finished => {
                    finished = true;
                    if let Err(e) = r { tracing::debug!("command task failed: {e}"); }
                }
                d = stream.recv_unacked(), if pending.is_empty() => match d {
                    Some(d) => {
                        stream.ack().await;
                        if stdin.is_some() { pending.push_back(d); }
                    }
                    None => break 'io true,
                },
                permit = reserve(stdin.clone()), if !pending.is_empty() => match permit {
                    Some(p) => { p.send(pending.pop_front().unwrap_or_default()); }
                    None => { stdin = None; pending.clear(); }
                },
            }
        }
        false
    };
    if host_gone {
        stop_command(task, vec![out_rx]).await;
    }
}

/// A pty's ONLCR output processing.
fn onlcr(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    for &b in data {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The host is gone: close the command's outputs (its cue to stop, e.g. tcpdump's SIGINT), give it a
/// moment to finish cleanly, then abort it.
async fn stop_command(mut task: AbortOnDrop<i32>, outputs: Vec<mpsc::Receiver<Vec<u8>>>) {
    drop(outputs);
    if !task.0.is_finished() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), &mut task.0).await;
    }
}

/// A slot in the command's stdin; owned, so the `select!` does not borrow the sender.
async fn reserve(tx: Option<mpsc::Sender<Vec<u8>>>) -> Option<mpsc::OwnedPermit<Vec<u8>>> {
    match tx {
        Some(tx) => tx.reserve_owned().await.ok(),
        None => None,
    }
}

/// Shell protocol v2: stdout/stderr/exit packets out, stdin/close-stdin/window packets in.
pub(super) async fn run_v2(
    stream: &mut AdbStream,
    handset: Arc<Handset>,
    command: Option<String>,
    pty: bool,
) {
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
    let (err_tx, mut err_rx) = mpsc::channel::<Vec<u8>>(16);
    let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(16);
    // Under a pty both streams are the terminal. Senders not handed over are dropped here, or the
    // receivers would never see the command's end.
    let (stdout, stderr) = if pty {
        drop(err_tx);
        (out_tx.clone(), out_tx)
    } else {
        (out_tx, err_tx)
    };
    let io = ShellIo {
        stdout,
        stderr,
        stdin: in_rx,
    };
    let mut task = spawn_command(handset, command, io, pty);
    let mut stdin = Some(in_tx);
    let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
    let mut parser = ShellPacketParser::default();
    let (mut out_open, mut err_open) = (true, true);
    let mut exit: Option<i32> = None;
    let host_gone = 'io: {
        while out_open || err_open || exit.is_none() {
            tokio::select! {
                d = out_rx.recv(), if out_open => match d {
                    Some(d) => if stream.write(&shell_packet(ID_STDOUT, &d)).await.is_err() { break 'io true },
                    None => out_open = false,
                },
                d = err_rx.recv(), if err_open => match d {
                    Some(d) => if stream.write(&shell_packet(ID_STDERR, &d)).await.is_err() { break 'io true },
                    None => err_open = false,
                },
                r = &mut task.0, if exit.is_none() => {
                    exit = Some(r.unwrap_or_else(|e| { tracing::debug!("command task failed: {e}"); 255 }));
                }
                d = stream.recv_unacked(), if pending.is_empty() => match d {
                    Some(d) => {
                        stream.ack().await;
                        match parser.push(&d) {
                            Ok(packets) => for (id, data) in packets {
                                match id {
                                    ID_STDIN if stdin.is_some() && !data.is_empty() => pending.push_back(data),
                                    ID_CLOSE_STDIN => if pending.is_empty() { stdin = None } else { pending.push_back(Vec::new()) },
                                    ID_WINDOW_SIZE | ID_STDIN => {}
                                    other => tracing::debug!(id = other, "ignoring shell packet"),
                                }
                            },
                            Err(e) => { tracing::debug!("bad shell packet: {e}"); break 'io true }
                        }
                    }
                    None => break 'io true,
                },
                permit = reserve(stdin.clone()), if !pending.is_empty() => match permit {
                    Some(p) => {
                        let d = pending.pop_front().unwrap_or_default();
                        // An empty entry marks a close-stdin that arrived behind queued data.
                        if d.is_empty() { drop(p); stdin = None; pending.clear(); } else { p.send(d); }
                    }
                    None => { stdin = None; pending.clear(); }
                },
            }
        }
        false
    };
    if host_gone {
        stop_command(task, vec![out_rx, err_rx]).await;
        return;
    }
    let code = exit.unwrap_or(255);
    let _ = stream
        .write(&shell_packet(ID_EXIT, &[(code & 0xff) as u8]))
        .await;
}
