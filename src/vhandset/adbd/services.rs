//! The services a host may OPEN, parsed from the OPEN payload (AOSP SERVICES.TXT): `shell,v2,…:`, legacy
//! `shell:`, `exec:`, `sync:`, `reboot:`, `root:`/`unroot:`, `reverse:` (see `reverse`); which of them the profile's generation's
//! adbd has (`offered`: 4.4 has no `exec:` and no `unroot:`); and the dispatch of an opened stream to
//! the code that serves it. Anything else is not offered (the connection refuses it with CLSE(0, id)).
//!
//! `root:` and `unroot:` answer as adbd's `restart_root_service` / `restart_unroot_service` do
//! (system/core adb/services.c at android-4.4.3_r1, adb/services.cpp at android-9): refused unless
//! `ro.debuggable` is 1; otherwise adbd restarts as root (every connection drops and the server
//! reconnects, as after a reboot) and later shells run as uid 0.
//!
//! Must not touch: the ADB messages (`message`, `connection`), command semantics (`shell`), the sync wire
//! format (`sync`).

use std::sync::Arc;

use super::reverse::Opener;
use super::shell_service::{run_raw, run_v2};
use super::stream::AdbStream;
use crate::vhandset::generation::Generation;
use crate::vhandset::shell::Handset;

/// A service the host may OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// `shell,v2,…:CMD`, `shell:CMD`. Empty command = interactive.
    Shell {
        v2: bool,
        pty: bool,
        command: String,
    },
    /// `exec:CMD`: raw bytes, stderr merged into stdout, no exit status.
    Exec {
        command: String,
    },
    Sync,
    /// `root:`: adbd restarts as root where the build allows it.
    Root,
    /// `unroot:` (6.0+): adbd restarts as the shell user.
    Unroot,
    /// `reboot:…`: the handset drops its connections and comes back (the server reconnects).
    Reboot,
    /// `reverse:REQUEST` (5.0+): `adb reverse` forwards from the phone to the host.
    Reverse {
        request: String,
    },
}

/// Parses the OPEN payload; `None` for services the handset does not offer.
pub fn parse_service(payload: &[u8]) -> Option<Service> {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    let text = std::str::from_utf8(&payload[..end]).ok()?;
    match text {
        "sync:" => return Some(Service::Sync),
        "root:" => return Some(Service::Root),
        "unroot:" => return Some(Service::Unroot),
        t if t.starts_with("reboot:") => return Some(Service::Reboot),
        _ => {}
    }
    if let Some(request) = text.strip_prefix("reverse:") {
        return Some(Service::Reverse {
            request: request.to_string(),
        });
    }
    if let Some(command) = text.strip_prefix("exec:") {
        return Some(Service::Exec {
            command: command.to_string(),
        });
    }
    let rest = text.strip_prefix("shell")?;
    let (options, command) = if let Some(command) = rest.strip_prefix(':') {
        ("", command)
    } else {
        let rest = rest.strip_prefix(',')?;
        rest.split_once(':')?
    };
    let options: Vec<&str> = options.split(',').filter(|o| !o.is_empty()).collect();
    let v2 = options.contains(&"v2");
    let pty = if options.contains(&"raw") {
        false
    } else if options.contains(&"pty") {
        true
    } else {
        command.is_empty()
    };
    Some(Service::Shell {
        v2,
        pty,
        command: command.to_string(),
    })
}

/// Whether `generation`'s adbd has the service.
pub fn offered(service: &Service, generation: &Generation) -> bool {
    match service {
        Service::Exec { .. } => generation.adbd.exec_service,
        Service::Unroot => generation.adbd.unroot_service,
        Service::Reverse { .. } => generation.adbd.reverse_service,
        _ => true,
    }
}

/// adbd's answer to `root:`/`unroot:`, and whether it restarts (dropping every connection).
fn restart(handset: &Handset, to_root: bool) -> (&'static str, bool) {
    let mut st = handset.state();
    match (to_root, st.adbd_root) {
        (true, true) => ("adbd is already running as root\n", false),
        (true, false) if !st.debuggable() => {
            ("adbd cannot run as root in production builds\n", false)
        }
        (true, false) => {
            st.adbd_root = true;
            ("restarting adbd as root\n", true)
        }
        (false, false) => ("adbd not running as root\n", false),
        (false, true) => {
            st.adbd_root = false;
            ("restarting adbd as non root\n", true)
        }
    }
}

pub(super) async fn run_service(
    mut stream: AdbStream,
    service: Service,
    handset: Arc<Handset>,
    opener: Opener,
) {
    let crlf = handset.profile().generation.adbd.legacy_shell_pty;
    match service {
        Service::Reverse { request } => {
            let reply = handset.reverses().handle(&request, &opener);
            let _ = stream.write(&reply).await;
        }
        Service::Sync => crate::vhandset::sync::serve(&mut stream, &handset).await,
        Service::Reboot => {
            handset.forget_volatile_state();
            stream.close().await;
            // Let the CLSE reach the host before the connections go.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            handset.drop_connections();
            return;
        }
        Service::Root | Service::Unroot => {
            let (text, restarts) = restart(&handset, service == Service::Root);
            let _ = stream.write(text.as_bytes()).await;
            if restarts {
                stream.close().await;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                handset.drop_connections();
                return;
            }
        }
        Service::Exec { command } => run_raw(&mut stream, handset, Some(command), false).await,
        Service::Shell {
            v2: false, command, ..
        } => {
            let command = (!command.is_empty()).then_some(command);
            run_raw(&mut stream, handset, command, crlf).await
        }
        Service::Shell {
            v2: true,
            pty,
            command,
        } => {
            let command = (!command.is_empty()).then_some(command);
            run_v2(&mut stream, handset, command, pty).await
        }
    }
    stream.close().await;
}

/// A short name of the service, for logs.
pub(super) fn service_kind(s: &Service) -> &'static str {
    match s {
        Service::Shell { v2: true, .. } => "shell-v2",
        Service::Shell { .. } => "shell",
        Service::Exec { .. } => "exec",
        Service::Sync => "sync",
        Service::Root => "root",
        Service::Unroot => "unroot",
        Service::Reboot => "reboot",
        Service::Reverse { .. } => "reverse",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_parse() {
        assert_eq!(
            parse_service(b"shell,v2,TERM=xterm,raw:getprop ro.x\0"),
            Some(Service::Shell {
                v2: true,
                pty: false,
                command: "getprop ro.x".into()
            })
        );
        assert_eq!(
            parse_service(b"shell,v2,TERM=xterm-256color,pty:\0"),
            Some(Service::Shell {
                v2: true,
                pty: true,
                command: String::new()
            })
        );
        assert_eq!(
            parse_service(b"shell:echo a:b\0"),
            Some(Service::Shell {
                v2: false,
                pty: false,
                command: "echo a:b".into()
            })
        );
        assert_eq!(
            parse_service(b"exec:tcpdump -w -\0"),
            Some(Service::Exec {
                command: "tcpdump -w -".into()
            })
        );
        assert_eq!(parse_service(b"sync:\0"), Some(Service::Sync));
        assert_eq!(parse_service(b"root:\0"), Some(Service::Root));
        let kitkat = crate::vhandset::generation::by_id("android-4.4").unwrap();
        assert!(!offered(&parse_service(b"exec:id\0").unwrap(), kitkat));
        assert!(!offered(&Service::Unroot, kitkat));
        assert!(offered(&Service::Sync, kitkat));
        assert_eq!(
            parse_service(b"reverse:forward:tcp:1;tcp:2\0"),
            Some(Service::Reverse {
                request: "forward:tcp:1;tcp:2".into()
            })
        );
        assert_eq!(parse_service(b"shellfish"), None);
        assert_eq!(parse_service(&[0xff, 0xfe, 0]), None);
    }
}
