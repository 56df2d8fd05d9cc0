//! Programs tattle runs on the host (tcpdump), found the same way everywhere.
//!
//! Owns: where a host program is looked for. Must not touch: how it is run (its callers do that).

use std::path::{Path, PathBuf};

/// The host's tcpdump: `TATTLE_TCPDUMP`, else the first on PATH or in the sbin directories (Debian
/// puts it in /usr/bin, others in /usr/sbin, which a normal user's PATH may lack).
pub fn find_tcpdump() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TATTLE_TCPDUMP") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join("tcpdump"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
