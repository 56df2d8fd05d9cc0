//! Which capture source a run uses: `--capture SOURCE` on the command line or `capture:` in a
//! scenario (`device`, `file:PATH`, `file:-`, `iface:NAME`), parsed into a [`CaptureSource`] with
//! an error that lists the valid forms.
//!
//! Owns the vocabulary of sources and its parsing. Must not touch: how a source captures (the
//! other `capture` modules), where a relative path is resolved from (the caller knows whether it
//! came from a scenario file or the command line).

use std::fmt;
use std::path::PathBuf;

/// Where a run's capture comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CaptureSource {
    /// tcpdump on the device over `adb exec-out` (root found as the device offers it; a static
    /// tcpdump pushed with `--tcpdump-binary`). Timestamps on the device's clock.
    #[default]
    Device,
    /// A pcap/pcapng file that something else (tcpdump on an access point, Wireshark on a hotspot)
    /// writes during the run; its content is copied into the run directory when the run ends.
    /// Timestamps on the host's clock.
    File(PathBuf),
    /// A pcap/pcapng stream on tattle's stdin (`ssh ap tcpdump -w - | tattle run …`), written to
    /// the run directory as it arrives. Timestamps on the host's clock.
    Stdin,
    /// The host's own capture on one of its interfaces (a hotspot the phone joined, a tethering or
    /// access-point interface, as a PiRogue lab does), filtered to the phone's address, by the
    /// host's tcpdump. Timestamps on the host's clock.
    Iface(String),
    /// The Android emulator's own capture of its virtual NIC, started and stopped through its
    /// console (the port from the serial `emulator-N`, or `--console-port`). Timestamps on the
    /// host's clock.
    Emulator,
    /// PCAPdroid on the phone (no root): its capture-control Intent over adb, its TCP exporter
    /// through `adb reverse` (crate::pcapdroid). Timestamps on the device's clock.
    /// `pcapdroid:tls,pcapng,root` asks for its TLS decryption, pcapng, root capture.
    Pcapdroid(PcapdroidMode),
}

/// How PCAPdroid captures (`pcapdroid:OPTION,…`; also `--pcapdroid-tls`, `--pcapdroid-pcapng`,
/// `--pcapdroid-root`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PcapdroidMode {
    /// `tls`: PCAPdroid decrypts TLS with its mitm add-on and tattle collects the key log.
    pub tls: bool,
    /// `pcapng`: ask for pcapng (a paid PCAPdroid feature; its TLS keys then travel inside).
    pub pcapng: bool,
    /// `root`: capture as root (`root_capture`) instead of the VPN.
    pub root: bool,
}

impl PcapdroidMode {
    /// Root capture with TLS decryption gives no usable keys: refused with the reason.
    pub fn check(self) -> Result<PcapdroidMode, SourceError> {
        if self.tls && self.root {
            return Err(SourceError::PcapdroidTlsAsRoot);
        }
        Ok(self)
    }
}

/// The valid forms, for every error.
pub const VALID_FORMS: &str = "valid sources: `device` (tcpdump on the device, the default), \
    `file:PATH` (a pcap/pcapng file something else writes during the run, copied when it ends), \
    `file:-` (a pcap/pcapng stream on stdin, e.g. `ssh ap tcpdump -U -w - | tattle run …`), \
    `iface:NAME` (the host's capture on its interface NAME that the phone's traffic crosses), \
    `emulator` (the Android emulator's own capture, through its console), \
    `pcapdroid` (the PCAPdroid app on the phone: no root; `pcapdroid:tls` decrypts TLS with its \
    mitm add-on, `pcapdroid:pcapng`, `pcapdroid:root`)";

/// Longest interface name Linux allows (IFNAMSIZ 16, with the NUL).
const MAX_IFACE_NAME: usize = 15;

/// Why a capture source was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("the capture source is empty")]
    Empty,
    #[error("`file:` needs a path, or `-` for a capture on stdin")]
    NoPath,
    #[error(
        "`iface:` needs the name of one of the host's network interfaces (up to 15 letters, digits, \
         `.`, `-`, `_`; `ip link` lists them), e.g. `iface:wlan1`; got `{0}`"
    )]
    BadIface(String),
    #[error(
        "`pcapdroid:{0}`: PCAPdroid's options are `tls` (TLS decryption with its mitm add-on), \
         `pcapng` and `root`, separated by commas"
    )]
    BadPcapdroidOption(String),
    #[error(
        "`pcapdroid:root,tls`: PCAPdroid cannot give TLS keys in root mode: there its capture holds \
         the mitm add-on's connections to the servers, which the keys of the apps' connections \
         cannot decrypt, so PCAPdroid writes no key log (its issue #531; MitmReceiver.logMasterSecret)"
    )]
    PcapdroidTlsAsRoot,
    #[error("unknown capture source `{written}`")]
    Unknown {
        written: String,
        suggestion: Option<&'static str>,
    },
}

impl SourceError {
    /// What to write instead: the valid forms, and the closest one when there is one.
    pub fn help(&self) -> String {
        match self {
            SourceError::Unknown {
                suggestion: Some(s),
                ..
            } => format!("did you mean `{s}`? {VALID_FORMS}"),
            SourceError::PcapdroidTlsAsRoot => "decrypt in PCAPdroid's VPN mode: `pcapdroid:tls` \
                 (or capture as root without decryption: `pcapdroid:root`)"
                .to_string(),
            _ => VALID_FORMS.to_string(),
        }
    }
}

impl std::str::FromStr for CaptureSource {
    type Err = SourceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SourceError::Empty);
        }
        if text == "device" {
            return Ok(CaptureSource::Device);
        }
        if text == "emulator" {
            return Ok(CaptureSource::Emulator);
        }
        if text.eq_ignore_ascii_case("pcapdroid") {
            return Ok(CaptureSource::Pcapdroid(PcapdroidMode::default()));
        }
        // `get` first: a multi-byte character there is no panic, just not this form.
        if let Some(options) = text
            .get(..10)
            .filter(|p| p.eq_ignore_ascii_case("pcapdroid:"))
            .and_then(|_| text.get(10..))
        {
            let mut mode = PcapdroidMode::default();
            for option in options.split(',').map(str::trim) {
                match option {
                    "tls" => mode.tls = true,
                    "pcapng" => mode.pcapng = true,
                    "root" => mode.root = true,
                    other => return Err(SourceError::BadPcapdroidOption(shown(other))),
                }
            }
            return CaptureSource::Pcapdroid(mode).pipe_check();
        }
        if let Some(path) = text.strip_prefix("file:") {
            return match path {
                "" => Err(SourceError::NoPath),
                "-" => Ok(CaptureSource::Stdin),
                p => Ok(CaptureSource::File(PathBuf::from(p))),
            };
        }
        if let Some(name) = text.strip_prefix("iface:") {
            let valid = !name.is_empty()
                && name.len() <= MAX_IFACE_NAME
                && name != "."
                && name != ".."
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            return if valid {
                Ok(CaptureSource::Iface(name.to_string()))
            } else {
                Err(SourceError::BadIface(shown(name)))
            };
        }
        let keyword = text.split(':').next().unwrap_or(text);
        let lower = text.to_ascii_lowercase();
        let suggestion = if lower == "device"
            || lower.contains("tcpdump")
            || strsim::levenshtein(&lower, "device") <= 2
        {
            Some("device")
        } else if lower == "file"
            || lower == "-"
            || lower == "stdin"
            || strsim::levenshtein(keyword, "file") <= 1
        {
            Some("file:PATH")
        } else {
            None
        };
        Err(SourceError::Unknown {
            written: shown(text),
            suggestion,
        })
    }
}

/// At most 80 characters of what was written, safe for a terminal.
fn shown(text: &str) -> String {
    tattle_analysis::sanitize(&text.chars().take(80).collect::<String>())
}

impl fmt::Display for CaptureSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureSource::Device => write!(f, "device"),
            CaptureSource::File(p) => write!(f, "file:{}", p.display()),
            CaptureSource::Stdin => write!(f, "file:-"),
            CaptureSource::Iface(name) => write!(f, "iface:{name}"),
            CaptureSource::Emulator => write!(f, "emulator"),
            CaptureSource::Pcapdroid(mode) => {
                let options: Vec<&str> = [
                    (mode.tls, "tls"),
                    (mode.pcapng, "pcapng"),
                    (mode.root, "root"),
                ]
                .into_iter()
                .filter_map(|(on, name)| on.then_some(name))
                .collect();
                if options.is_empty() {
                    write!(f, "pcapdroid")
                } else {
                    write!(f, "pcapdroid:{}", options.join(","))
                }
            }
        }
    }
}

impl CaptureSource {
    /// Whether the capture's timestamps are on the device's clock (else the host's: the capturer
    /// is on the host or the network).
    pub fn device_clock(&self) -> bool {
        matches!(self, CaptureSource::Device | CaptureSource::Pcapdroid(_))
    }

    fn pipe_check(self) -> Result<CaptureSource, SourceError> {
        match self {
            CaptureSource::Pcapdroid(mode) => mode.check().map(CaptureSource::Pcapdroid),
            other => Ok(other),
        }
    }

    /// This source with a relative `file:` path taken from `base` (a scenario's folder).
    pub fn relative_to(&self, base: &std::path::Path) -> CaptureSource {
        match self {
            CaptureSource::File(p) if p.is_relative() => CaptureSource::File(base.join(p)),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CaptureSource, SourceError> {
        s.parse()
    }

    #[test]
    fn the_three_forms_parse_and_print_back() {
        assert_eq!(parse("device"), Ok(CaptureSource::Device));
        assert_eq!(parse(" device "), Ok(CaptureSource::Device));
        assert_eq!(parse("file:-"), Ok(CaptureSource::Stdin));
        assert_eq!(
            parse("file:/tmp/ap.pcap"),
            Ok(CaptureSource::File("/tmp/ap.pcap".into()))
        );
        // A path may hold colons.
        assert_eq!(
            parse("file:c:x.pcapng"),
            Ok(CaptureSource::File("c:x.pcapng".into()))
        );
        assert_eq!(
            parse("iface:wlan1"),
            Ok(CaptureSource::Iface("wlan1".into()))
        );
        for s in [
            "device",
            "file:-",
            "file:/tmp/ap.pcap",
            "iface:br-lan.2",
            "emulator",
        ] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
        for bad in [
            "iface:",
            "iface:a b",
            "iface:../x",
            "iface:0123456789abcdef",
            "iface:wl;rm",
        ] {
            assert!(matches!(parse(bad), Err(SourceError::BadIface(_))), "{bad}");
        }
        assert!(CaptureSource::Device.device_clock());
        assert!(!CaptureSource::Stdin.device_clock());
    }

    #[test]
    fn every_source_of_issue_9_parses() {
        let plain = CaptureSource::Pcapdroid(PcapdroidMode::default());
        assert_eq!(parse("pcapdroid"), Ok(plain.clone()));
        assert_eq!(parse("PCAPdroid"), Ok(plain.clone()));
        assert_eq!(parse("emulator"), Ok(CaptureSource::Emulator));
        let tls = PcapdroidMode {
            tls: true,
            pcapng: true,
            root: false,
        };
        assert_eq!(
            parse("pcapdroid:tls,pcapng"),
            Ok(CaptureSource::Pcapdroid(tls))
        );
        assert_eq!(
            parse("pcapdroid:pcapng, tls").unwrap().to_string(),
            "pcapdroid:tls,pcapng"
        );
        assert_eq!(parse("pcapdroid").unwrap().to_string(), "pcapdroid");
        assert_eq!(
            parse("pcapdroid:tls,root"),
            Err(SourceError::PcapdroidTlsAsRoot),
            "root mode gives no usable keys"
        );
        assert!(
            SourceError::PcapdroidTlsAsRoot.to_string().contains("#531"),
            "the reason, with its source"
        );
        assert_eq!(
            parse("pcapdroid:decrypt"),
            Err(SourceError::BadPcapdroidOption("decrypt".into()))
        );
        assert!(plain.device_clock(), "PCAPdroid stamps on the phone");
        assert!(!CaptureSource::Emulator.device_clock());
    }

    #[test]
    fn bad_values_list_the_valid_forms_with_a_suggestion() {
        assert_eq!(parse(""), Err(SourceError::Empty));
        assert_eq!(parse("file:"), Err(SourceError::NoPath));
        let e = parse("devcie").unwrap_err();
        assert_eq!(e.to_string(), "unknown capture source `devcie`");
        assert!(
            e.help().starts_with("did you mean `device`?"),
            "{}",
            e.help()
        );
        assert!(parse("tcpdump").unwrap_err().help().contains("`device`?"));
        assert!(parse("stdin").unwrap_err().help().contains("`file:PATH`?"));
        let e = parse("wireshark").unwrap_err();
        assert_eq!(e.help(), VALID_FORMS);
        // What was written reaches a terminal only sanitised and bounded.
        let e = parse(&format!("\u{1b}[2J{}", "x".repeat(500))).unwrap_err();
        assert!(!e.to_string().contains('\u{1b}'));
        assert!(e.to_string().len() < 120);
    }

    #[test]
    fn relative_files_resolve_from_a_base() {
        let base = std::path::Path::new("scenarios/lab");
        assert_eq!(
            CaptureSource::File("ap.pcap".into()).relative_to(base),
            CaptureSource::File("scenarios/lab/ap.pcap".into())
        );
        assert_eq!(
            CaptureSource::File("/abs.pcap".into()).relative_to(base),
            CaptureSource::File("/abs.pcap".into())
        );
        assert_eq!(CaptureSource::Stdin.relative_to(base), CaptureSource::Stdin);
    }
}
