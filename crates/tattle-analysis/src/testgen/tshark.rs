//! tshark as the reference reader: the names it finds in a capture file (DNS questions, TLS SNI,
//! HTTP Host), to compare with what the analysis finds. Used by the crate's tests and the bench.
//!
//! Must not touch: the analysis' own parsing (the point is a second, independent reading).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::{Analysis, HostSource};

/// DNS names asked, and the names flows were given by TLS/QUIC SNI or an HTTP `Host` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub dns: BTreeSet<String>,
    pub sni: BTreeSet<String>,
    pub http: BTreeSet<String>,
}

impl Names {
    /// What tshark reads from `file` (`tshark` must be on PATH; `.ci/run` installs it).
    pub fn from_tshark(file: &Path) -> std::io::Result<Names> {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(file)
            .args([
                "-T",
                "fields",
                "-e",
                "dns.qry.name",
                "-e",
                "dns.flags.response",
            ])
            .args([
                "-e",
                "tls.handshake.extensions_server_name",
                "-e",
                "http.host",
            ])
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "tshark failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let mut names = Names::default();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let [qname, response, sni, host, ..] = f[..] else {
                continue;
            };
            if !qname.is_empty() && response == "0" {
                names.dns.extend(qname.split(',').map(str::to_string));
            }
            if !sni.is_empty() {
                names.sni.insert(sni.to_string());
            }
            // tshark keeps a Host header's port; the analysis names the host without it.
            if let Some(h) = host.split(',').next().filter(|h| !h.is_empty()) {
                names.http.insert(crate::http::strip_port(h));
            }
        }
        Ok(names)
    }

    /// What the analysis found. (A flow named by SNI that also sent a `Host` header is listed
    /// under SNI only: compare `named()` with tshark's.)
    pub fn from_analysis(a: &Analysis) -> Names {
        let named = |source: HostSource| {
            a.flows
                .iter()
                .filter(|f| f.host_source == source)
                .map(|f| f.host.clone())
                .collect()
        };
        Names {
            dns: a.dns_queries.iter().map(|q| q.name.clone()).collect(),
            sni: named(HostSource::Sni),
            http: named(HostSource::Http),
        }
    }

    /// SNI and HTTP names together.
    pub fn named(&self) -> BTreeSet<String> {
        self.sni.union(&self.http).cloned().collect()
    }
}
