//! PCAPdroid's TLS decryption on the handset: the PCAPdroid-mitm add-on, the decryption rules that
//! choose which connections go through it, the key log it feeds, and where that key log ends up.
//!
//! Sources (PCAPdroid v1.9.1, `fc9fe0c5`):
//! - `CaptureService.onStartCommand`: with `tls_decryption` the built-in SOCKS5 proxy is the add-on's
//!   (`MitmReceiver`, port 7780); `MitmReceiver.start` binds `com.pcapdroid.mitm/.MitmService`
//!   (`MitmAddon.connect`, `MitmAPI.PACKAGE_NAME`); when the bind fails (the add-on is not installed)
//!   it toasts `mitm_start_failed` and the start is aborted (`abortStart`) before any dumper runs.
//! - `jni/core/capture_vpn.c` `should_proxify` / `matches_decryption_whitelist`: in VPN mode only TCP
//!   connections that match the decryption list (an IP or CIDR, an app's uid, a domain: exact after
//!   `www.`, or its second-level domain, `blacklist.c` `blacklist_match_domain`) go to the add-on; an
//!   empty list matches nothing. The `decryption_rules` extra (1.8.8+) replaces the list for the capture
//!   (`CaptureSettings.getDecryptionRulesFromIntent` wraps it as `{"rules":…}`, `MatchList.fromJson`).
//! - `MitmReceiver.logMasterSecret`: each secret mitmproxy reports is appended to `cache/SSLKEYLOG.txt`
//!   in pcap mode (the file is deleted when a capture starts, in `MitmReceiver`'s constructor); in
//!   pcapng mode it goes into the dump as a Decryption Secrets Block instead; in root mode it is
//!   dropped (the capture there holds mitmproxy↔internet, which these keys cannot decrypt: PCAPdroid
//!   issue #531, commit e9985cf8).
//! - `MainActivity`'s service status observer (lines 196–245): on STARTED → STOPPED, for a capture
//!   started through the API (`api_capture`) that decrypted TLS and left a cached key log, the key log
//!   is copied to `Download/PCAPdroid/<sslkeylog_name>` (`Utils.getDownloadsUri`, 1.8.8+) when the name
//!   is not blank, then deleted. The observer is a LiveData observer of the main activity: it runs only
//!   if the main activity exists and saw the capture run, and only once it is in front again.
//!
//! What the handset does: the add-on's proxy is not a real mitmproxy. The handset's TLS client talks to
//! the profile's servers as always; for a connection the rules match, the handset's [`TlsTap`] hands
//! its secrets to PCAPdroid's key log — the secrets of the app's side of the connection, which is what
//! mitmproxy logs and what the capture (the VPN's packets) holds. The main activity is modelled as
//! "launched since the app last started" and "in front only when `am start` brings it there": during a
//! run the scenario's apps are in front, so the copy happens when someone opens PCAPdroid after the
//! stop (tattle does). Not modelled: the add-on's version check of the setup wizard, the CA check
//! (`cert_reinstall_required`), the add-on's own app and doze notice, pcapng (no licence), HTTP
//! payloads shown in the app, QUIC blocking.
//!
//! Must not touch: the capture and its export (`service`, `export`), the windows (`windows`), the
//! handset's TLS client (it is asked through [`TlsTap`]).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::service::app_of_event;
use crate::vhandset::network::TlsTap;
use crate::vhandset::network::keylog::KeyLogLines;

/// `MitmAPI.PACKAGE_NAME`.
pub const PACKAGE: &str = "com.pcapdroid.mitm";
/// Where `pm path` says its APK is.
pub const APK_PATH: &str =
    "/data/app/~~pK2wX8cLr5TnQ0vYj3HsBg==/com.pcapdroid.mitm-7RzA1uVq9LmC4dE6fH2kNw==/base.apk";
/// strings.xml `mitm_start_failed`.
pub const MITM_START_FAILED: &str =
    "Could not start the mitm service. Try to open the mitm addon app manually and retry";
/// strings.xml `save_ok`: toasted when the key log was copied to Downloads.
pub const SAVE_OK: &str = "Saved";
/// `MitmReceiver.getKeylogFilePath`: `getCacheDir()/SSLKEYLOG.txt`, in the app's private data.
pub const KEYLOG_CACHE: &str = "/data/data/com.emanuelef.remote_capture/cache/SSLKEYLOG.txt";
/// `Utils.getDownloadsUri` on Android 10+: `Environment.DIRECTORY_DOWNLOADS + "/PCAPdroid/"`.
pub const DOWNLOADS_DIR: &str = "/sdcard/Download/PCAPdroid";

/// The add-on as installed on this handset, if it is (with PCAPdroid).
pub fn installed(
    handset: &crate::vhandset::shell::Handset,
) -> Option<&crate::vhandset::profile::MitmAddonSetup> {
    super::installed(handset).and_then(|s| s.mitm_addon.as_ref())
}

/// The add-on's section of `dumpsys package com.pcapdroid.mitm` (the lines tattle reads, among the
/// rest, as `Settings.dumpPackageLPr` prints them; paths and dates made up). minSdk 24 and targetSdk
/// 34 are the add-on's app/build.gradle at 1.4 (not checked against a device).
pub fn dumpsys_package(handset: &crate::vhandset::shell::Handset) -> Option<String> {
    let addon = installed(handset)?;
    let code = APK_PATH.trim_end_matches("/base.apk");
    Some(format!(
        "Packages:
  Package [{PACKAGE}] (5d2a9e1):
    userId=10216
    pkg=Package{{8c0e4f2 {PACKAGE}}}
    codePath={code}
    resourcePath={code}
    versionCode={} minSdk=24 targetSdk=34
    minExtensionVersions=[]
    versionName={}
    splits=[base]
    apkSigningVersion=2
    flags=[ HAS_CODE ALLOW_CLEAR_USER_DATA ]
    timeStamp=2026-11-02 10:15:41
    firstInstallTime=2026-11-02 10:15:43
    lastUpdateTime=2026-11-02 10:15:43
    installerPackageName=com.google.android.packageinstaller
",
        addon.version_code, addon.version_name
    ))
}

/// The decryption list of one capture (`MatchList` rules of type IP, HOST and APP; PROTOCOL and
/// COUNTRY rules are kept out, as the capture's list descriptor does for PROTOCOL; COUNTRY needs a
/// geo database the handset has not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecryptionRules {
    ips: Vec<(IpAddr, u8)>,
    hosts: Vec<String>,
    apps: Vec<String>,
}

impl DecryptionRules {
    /// `MatchList.fromJson` of `{"rules":[{"type":…,"value":…},…]}`; `None` when it is not that
    /// shape (fromJson returns -1 and the list keeps what it had: the user's, empty here). A rule
    /// that does not parse is skipped, as `deserialize` skips it.
    pub fn from_json(text: &str) -> Option<DecryptionRules> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let rules = value.as_object()?.get("rules")?.as_array()?;
        let mut out = DecryptionRules::default();
        for rule in rules {
            let (Some(kind), Some(v)) = (
                rule.get("type").and_then(|t| t.as_str()),
                rule.get("value").and_then(|t| t.as_str()),
            ) else {
                continue;
            };
            match kind {
                "IP" => {
                    if let Some(cidr) = parse_cidr(v) {
                        out.ips.push(cidr);
                    }
                }
                // ROOT_DOMAIN is migrated to HOST.
                "HOST" | "ROOT_DOMAIN" => out.hosts.push(clean_domain(v)),
                "APP" => out.apps.push(v.to_string()),
                _ => {}
            }
        }
        Some(out)
    }

    /// `matches_decryption_whitelist`: the server's IP, the app's package, or the host.
    pub fn matches(&self, host: &str, ip: Ipv4Addr, package: Option<&str>) -> bool {
        let ip_match = self.ips.iter().any(|(net, bits)| match net {
            IpAddr::V4(net) => {
                let mask = if *bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(*bits))
                };
                u32::from(ip) & mask == u32::from(*net) & mask
            }
            IpAddr::V6(_) => false,
        });
        let app_match = package.is_some_and(|p| self.apps.iter().any(|a| a == p));
        let host = host.strip_prefix("www.").unwrap_or(host);
        let second_level = {
            let labels: Vec<&str> = host.rsplitn(3, '.').collect();
            if labels.len() >= 2 {
                format!("{}.{}", labels[1], labels[0])
            } else {
                host.to_string()
            }
        };
        let host_match = self.hosts.iter().any(|h| *h == host || *h == second_level);
        ip_match || app_match || host_match
    }
}

/// `Utils.cleanDomain`: lower case, without a leading `www.`.
fn clean_domain(d: &str) -> String {
    let d = d.trim().to_ascii_lowercase();
    d.strip_prefix("www.").map(str::to_string).unwrap_or(d)
}

/// `blacklist_add_ipstr`: an address, or `ADDR/BITS`.
fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

/// The add-on in the path of one capture's TLS connections: it intercepts those the rules match and
/// collects their secrets (mitmproxy's `MASTER_SECRET` messages), bounded.
#[derive(Debug)]
pub struct Mitm {
    rules: DecryptionRules,
    app_filter: Vec<String>,
    secrets: Arc<KeyLogLines>,
}

impl Mitm {
    pub fn new(rules: DecryptionRules, app_filter: Vec<String>) -> Mitm {
        Mitm {
            rules,
            app_filter,
            secrets: Arc::new(KeyLogLines::default()),
        }
    }

    /// The secrets logged since the last call, as SSLKEYLOGFILE lines.
    pub fn take(&self) -> Vec<u8> {
        self.secrets.take()
    }
}

impl TlsTap for Mitm {
    fn key_log(
        &self,
        host: &str,
        ip: Ipv4Addr,
        event: Option<&'static str>,
    ) -> Option<Arc<dyn rustls::KeyLog>> {
        let package = event.and_then(app_of_event).map(|a| a.package);
        // Only apps the VPN routes reach the proxy (VpnService.addAllowedApplication).
        if !self.app_filter.is_empty()
            && !package.is_some_and(|p| self.app_filter.iter().any(|f| f == p))
        {
            return None;
        }
        self.rules
            .matches(host, ip, package)
            .then(|| self.secrets.clone() as Arc<dyn rustls::KeyLog>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_match_as_the_native_list_does() {
        let rules = DecryptionRules::from_json(
            r#"{"rules":[{"type":"IP","value":"10.0.0.0/8"},{"type":"HOST","value":"www.Example.com"},
            {"type":"APP","value":"com.android.contacts"},{"type":"IP","value":"bad/99"},{"type":"X","value":"y"}]}"#,
        )
        .unwrap();
        let other = Ipv4Addr::new(127, 77, 1, 10);
        assert!(rules.matches("x", Ipv4Addr::new(10, 1, 2, 3), None));
        assert!(
            rules.matches("api.example.com", other, None),
            "second level"
        );
        assert!(rules.matches("www.example.com", other, None));
        assert!(!rules.matches("example.org", other, None));
        assert!(rules.matches("z.org", other, Some("com.android.contacts")));
        let all = DecryptionRules::from_json(
            r#"{"rules":[{"type":"IP","value":"0.0.0.0/0"},{"type":"IP","value":"::/0"}]}"#,
        )
        .unwrap();
        assert!(
            all.matches("anything.net", other, None),
            "/0 is every address"
        );
        assert!(
            !DecryptionRules::default().matches("a.b", other, None),
            "an empty list: none"
        );
        assert_eq!(DecryptionRules::from_json("[1]"), None);
        assert_eq!(DecryptionRules::from_json("{\"rules\": 3}"), None);
    }
}
