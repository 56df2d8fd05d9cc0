//! The handset's `tcpdump`: the host's real tcpdump on the handset's own traffic.
//! (Being written: the API below is fixed.)

use super::ShellIo;
use super::network::HandsetNetwork;

/// Runs the handset's `tcpdump` with `args` (argv after "tcpdump"); returns the exit status.
pub async fn run(_args: &[String], _network: &HandsetNetwork, io: ShellIo) -> i32 {
    let _ = io.stderr.send(b"tcpdump: not yet available\n".to_vec()).await;
    1
}
