//! Firmware profiles: data files that say what a handset is and what traffic it emits.
//!
//! Owns the profile format (YAML under `profiles/`, the built-ins embedded with `include_str!`), its
//! validation (required props, identifier formats with the IMEI Luhn check — the second SIM's `imei2`,
//! `imsi2`, `iccid2`, `phone_number2` too —, the `generation:` a profile imitates and whose SDK it must
//! have, the build's `handset:` traits (`Persona`), host names, templates) and the
//! template language used in traffic actions: `{imei}`, `{prop:ro.product.model}`, event fields such as
//! `{sms_body}`, filters `{phone_number|url}`, `|md5`, `|sha1`, `|sha256`, `|base64`, `|hex`, `|gzip`,
//! `|random_pad` (a size control for differential canaries), and
//! `{{` / `}}` for literal braces. Everything is checked at load time so a profile that loads never fails
//! to expand.
//!
//! Must not touch: sockets or any other I/O besides reading the profile file (playing traffic is
//! `network`'s job), and nothing above `vhandset` in the crate.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use md5::Digest as _;
use serde::Deserialize;

use super::generation::{self, Generation};
use super::{HandsetEvent, VhandsetError};
use tattle_analysis::identifier::{is_valid_kind, kinds};

/// Profile files are small; anything bigger is a mistake (or an attack on the parser).
const MAX_PROFILE_BYTES: u64 = 1024 * 1024;
/// Each event's action list is played in well under a second; keep it that way.
const MAX_ACTIONS_PER_EVENT: usize = 64;
/// Host addresses are 127.77.N.10 + i, so at most 245 fit in the /24.
pub const MAX_HOSTS: usize = 240;
/// Event fields come from the shell (an SMS body typed by the host): bound what one expansion can hold.
const MAX_EVENT_FIELD_BYTES: usize = 64 * 1024;
const MAX_LITERAL_BYTES: usize = 256 * 1024;

const BUILTINS: &[(&str, &str)] = &[
    ("aosp-clean", include_str!("../../profiles/aosp-clean.yaml")),
    (
        "miui-cloud-default",
        include_str!("../../profiles/miui-cloud-default.yaml"),
    ),
    (
        "miui-cloud-optin",
        include_str!("../../profiles/miui-cloud-optin.yaml"),
    ),
    ("hostile", include_str!("../../profiles/hostile.yaml")),
    (
        "aosp-4.4-rooted",
        include_str!("../../profiles/aosp-4.4-rooted.yaml"),
    ),
    (
        "aosp-9-userdebug",
        include_str!("../../profiles/aosp-9-userdebug.yaml"),
    ),
    ("aosp-12", include_str!("../../profiles/aosp-12.yaml")),
    (
        "vendor-14-locked",
        include_str!("../../profiles/vendor-14-locked.yaml"),
    ),
    ("aosp-15", include_str!("../../profiles/aosp-15.yaml")),
    (
        "differential-lab",
        include_str!("../../profiles/differential-lab.yaml"),
    ),
];
const BUILTIN_NAMES: &[&str] = &[
    "aosp-clean",
    "miui-cloud-default",
    "miui-cloud-optin",
    "hostile",
    "aosp-4.4-rooted",
    "aosp-9-userdebug",
    "aosp-12",
    "vendor-14-locked",
    "aosp-15",
    "differential-lab",
];

/// Props every profile must define: what `getprop`, the adb banner and device identity read.
pub const REQUIRED_PROPS: &[&str] = &[
    "ro.product.name",
    "ro.product.model",
    "ro.product.device",
    "ro.product.brand",
    "ro.product.manufacturer",
    "ro.build.fingerprint",
    "ro.build.display.id",
    "ro.build.id",
    "ro.build.type",
    "ro.build.tags",
    "ro.build.version.release",
    "ro.build.version.sdk",
    "ro.build.version.incremental",
    "ro.serialno",
];

/// Identifier kinds every profile must define.
pub const REQUIRED_IDENTIFIERS: &[&str] = &[
    kinds::IMEI,
    kinds::IMSI,
    kinds::ICCID,
    kinds::PHONE_NUMBER,
    kinds::ANDROID_ID,
    kinds::SERIAL,
];

/// Event keys a profile may list traffic under. `boot` is played when the handset's network starts.
pub const EVENT_KEYS: &[&str] = &["boot", "setup", "contact_added", "sms_sent"];

/// The fields an event makes available to templates, by event key.
fn event_fields(key: &str) -> &'static [&'static str] {
    match key {
        "contact_added" => &["contact_name", "contact_phone"],
        "sms_sent" => &["sms_to", "sms_body"],
        _ => &[],
    }
}

/// A firmware profile (see `profiles/*.yaml`).
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// System properties (`getprop`), e.g. `ro.product.model`.
    pub props: BTreeMap<String, String>,
    /// The handset's identifiers by kind (`imei`, `imsi`, `iccid`, `phone_number`, `android_id`, `serial`).
    pub identifiers: BTreeMap<String, String>,
    /// Traffic per event key (`boot`, `setup`, `contact_added`, `sms_sent`), played in order.
    pub traffic: BTreeMap<String, Vec<Action>>,
    /// Where the profile came from: `builtin:NAME` or the file path.
    pub source: String,
    /// The Android release the handset imitates (`generation:`; by default the one of its SDK).
    pub generation: &'static Generation,
    /// What this build does differently from AOSP's defaults (`handset:`).
    pub persona: Persona,
}

/// What a build decides rather than its Android release: the `handset:` section of a profile. The
/// defaults are AOSP's.
#[derive(Debug, Clone, PartialEq)]
pub struct Persona {
    /// The Shell package holds the permissions AOSP gives it for phone identifiers (READ_PHONE_STATE;
    /// from 10 READ_PRIVILEGED_PHONE_STATE, READ_SMS, READ_PHONE_NUMBERS). A vendor build that removed
    /// them refuses `service call iphonesubinfo` with the release's SecurityException.
    pub shell_reads_phone_identifiers: bool,
    /// How the messaging app's Send button is reached: `keys` (it is focusable, DPAD_RIGHT/TAB then ENTER
    /// press it, and a tap works too) or `tap` (only a tap on it sends).
    pub send_button: SendButton,
    /// Seconds from a reboot until `sys.boot_completed` is `1` (adbd answers before that, as on a phone).
    pub boot_seconds: f64,
    /// PCAPdroid (`com.emanuelef.remote_capture`) is installed, and how the user set it up
    /// (`handset.pcapdroid:`); absent on AOSP, so `None` by default.
    pub pcapdroid: Option<PcapdroidSetup>,
    /// Where the build's TLS client writes an NSS key log (`handset.tls_keylog:`, an absolute path on
    /// the handset), as a debug build or an app instrumented for key logging does; `None`: no key log.
    pub tls_keylog: Option<String>,
}

impl Default for Persona {
    fn default() -> Self {
        Persona {
            shell_reads_phone_identifiers: true,
            send_button: SendButton::Keys,
            boot_seconds: 2.0,
            pcapdroid: None,
            tls_keylog: None,
        }
    }
}

/// PCAPdroid as installed and set up on a handset: its version (what `dumpsys package` shows and what
/// decides which Intent extras it reads), the API key generated in its settings (Settings → Control
/// permissions → Generate API key), and whether the user already accepted Android's VPN request for
/// it once.
#[derive(Clone, PartialEq, Eq)]
pub struct PcapdroidSetup {
    /// `versionName` of app/build.gradle, e.g. `1.9.1`.
    pub version_name: String,
    /// `versionCode`, e.g. 91 for 1.9.1 (docs/research/pcapdroid-api.md §0 maps them).
    pub version_code: u32,
    /// The `api_key` preference; `None` when the user never generated one.
    pub api_key: Option<String>,
    /// `VpnService.prepare` returns null: the VPN consent was given before.
    pub vpn_consented: bool,
    /// The PCAPdroid-mitm add-on (`com.pcapdroid.mitm`) is installed and its setup done (its CA
    /// installed), so `tls_decryption` works; `None`: not installed.
    pub mitm_addon: Option<MitmAddonSetup>,
}

/// The PCAPdroid-mitm add-on as installed: what `dumpsys package com.pcapdroid.mitm` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MitmAddonSetup {
    /// `versionName`, e.g. `1.4` (the add-on PCAPdroid 1.9.1 asks for: MitmAddon.PACKAGE_VERSION_NAME).
    pub version_name: String,
    /// `versionCode`, e.g. 21 for 1.4 (MitmAddon.PACKAGE_VERSION_CODE of PCAPdroid 1.9.1).
    pub version_code: u32,
}

/// The API key is a secret: never in logs or `Debug` output.
impl fmt::Debug for PcapdroidSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapdroidSetup")
            .field("version_name", &self.version_name)
            .field("version_code", &self.version_code)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("vpn_consented", &self.vpn_consented)
            .field("mitm_addon", &self.mitm_addon)
            .finish()
    }
}

/// How the messaging app's Send button is reached (see `Persona::send_button`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendButton {
    Keys,
    Tap,
}

/// One network action of a firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A DNS A lookup through the handset's resolver (the name may be a template).
    Dns { name: Template },
    /// An HTTP/1.1 request over TLS to port 443.
    Https(Request),
    /// A plain HTTP/1.1 request to port 80.
    Http(Request),
    /// An SNTP query to port 123.
    Ntp { host: String },
}

impl Action {
    /// The literal host this action contacts, if it has one.
    pub fn host(&self) -> Option<&str> {
        match self {
            Action::Dns { name } => name.as_literal(),
            Action::Https(r) | Action::Http(r) => Some(&r.host),
            Action::Ntp { host } => Some(host),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Action::Dns { .. } => "dns",
            Action::Https(_) => "https",
            Action::Http(_) => "http",
            Action::Ntp { .. } => "ntp",
        }
    }
}

/// An HTTP request of a firmware; everything but the host may be a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub host: String,
    pub path: Template,
    pub headers: Vec<(String, Template)>,
    pub body: Template,
    /// `compress: gzip`: the expanded body is gzip-compressed as a whole (send it with
    /// `Content-Encoding: gzip`), as an app compresses a JSON document with a value inside.
    pub gzip_body: bool,
}

/// A transformation applied to a placeholder's value, left to right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Lower-case hex MD5 digest.
    Md5,
    /// Lower-case hex SHA-1 digest.
    Sha1,
    /// Lower-case hex SHA-256 digest.
    Sha256,
    /// Standard base64 with padding.
    Base64,
    /// Percent-encoding of everything but RFC 3986 unreserved characters (`+` becomes `%2B`).
    Url,
    /// Lower-case hex of the bytes.
    Hex,
    /// gzip-compressed bytes (binary; meant for bodies sent with `Content-Encoding: gzip`).
    Gzip,
    /// The value followed by 0–255 random letters, new at every expansion: a request whose size
    /// changes for no planted reason (the false-positive control of differential canaries).
    RandomPad,
}

impl Filter {
    pub const NAMES: &'static [&'static str] = &[
        "md5",
        "sha1",
        "sha256",
        "base64",
        "url",
        "hex",
        "gzip",
        "random_pad",
    ];

    /// The name profiles write.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Md5 => "md5",
            Filter::Sha1 => "sha1",
            Filter::Sha256 => "sha256",
            Filter::Base64 => "base64",
            Filter::Url => "url",
            Filter::Hex => "hex",
            Filter::Gzip => "gzip",
            Filter::RandomPad => "random_pad",
        }
    }

    fn parse(name: &str) -> Option<Filter> {
        Some(match name {
            "md5" => Filter::Md5,
            "sha1" => Filter::Sha1,
            "sha256" => Filter::Sha256,
            "base64" => Filter::Base64,
            "url" => Filter::Url,
            "hex" => Filter::Hex,
            "gzip" => Filter::Gzip,
            "random_pad" => Filter::RandomPad,
            _ => return None,
        })
    }

    pub fn apply(self, input: &[u8]) -> Vec<u8> {
        match self {
            Filter::Md5 => hex::encode(md5::Md5::digest(input)).into_bytes(),
            Filter::Sha1 => hex::encode(sha1::Sha1::digest(input)).into_bytes(),
            Filter::Sha256 => hex::encode(sha2::Sha256::digest(input)).into_bytes(),
            Filter::Base64 => base64::engine::general_purpose::STANDARD
                .encode(input)
                .into_bytes(),
            Filter::Url => percent_encoding::percent_encode(input, URL_ENCODE_SET)
                .to_string()
                .into_bytes(),
            Filter::Hex => hex::encode(input).into_bytes(),
            Filter::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                // Writing into a Vec cannot fail.
                let _ = enc.write_all(input);
                enc.finish().unwrap_or_default()
            }
            Filter::RandomPad => {
                let mut random = [0u8; 256];
                // The provider tattle's TLS already uses; without randomness the pad is empty.
                let _ = rustls::crypto::ring::default_provider()
                    .secure_random
                    .fill(&mut random);
                let len = usize::from(random[0]);
                let mut out = input.to_vec();
                out.extend(random[1..=len.min(255)].iter().map(|b| b'a' + b % 26));
                out
            }
        }
    }
}

/// Everything except RFC 3986 unreserved characters, as form and query encoders do.
const URL_ENCODE_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Field { name: String, filters: Vec<Filter> },
}

/// A parsed template string: literals and `{placeholder|filter…}` fields.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl fmt::Debug for Template {
    // Show the template source, never an expanded value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({self})")
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for seg in &self.segments {
            match seg {
                Segment::Literal(s) => f.write_str(&s.replace('{', "{{").replace('}', "}}"))?,
                Segment::Field { name, filters } => {
                    write!(f, "{{{name}")?;
                    for flt in filters {
                        write!(f, "|{}", flt.name())?;
                    }
                    f.write_str("}")?;
                }
            }
        }
        Ok(())
    }
}

/// Why a template string does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl Template {
    /// Parses `text`. Field names are not checked here (see `Profile` validation / `check_fields`).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => {
                    return Err(TemplateError(
                        "a lone `}`; write `}}` for a literal brace".to_string(),
                    ));
                }
                '{' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        match c {
                            '}' => {
                                closed = true;
                                break;
                            }
                            '{' => {
                                return Err(TemplateError(
                                    "`{` inside a placeholder; write `{{` for a literal brace"
                                        .into(),
                                ));
                            }
                            _ => inner.push(c),
                        }
                    }
                    if !closed {
                        return Err(TemplateError(format!(
                            "placeholder `{{{inner}` is not closed; write `{{{{` for a literal brace"
                        )));
                    }
                    let mut parts = inner.split('|').map(str::trim);
                    let name = parts.next().unwrap_or_default().to_string();
                    if name.is_empty() {
                        return Err(TemplateError("empty placeholder `{}`".into()));
                    }
                    let mut filters = Vec::new();
                    for f in parts {
                        match Filter::parse(f) {
                            Some(flt) => filters.push(flt),
                            None => {
                                return Err(TemplateError(format!(
                                    "unknown filter `{f}` in `{{{inner}}}`{}; filters: {}",
                                    did_you_mean(f, Filter::NAMES.iter().copied()),
                                    Filter::NAMES.join(", ")
                                )));
                            }
                        }
                    }
                    if !lit.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut lit)));
                    }
                    segments.push(Segment::Field { name, filters });
                }
                _ => lit.push(c),
            }
        }
        if !lit.is_empty() {
            segments.push(Segment::Literal(lit));
        }
        Ok(Template { segments })
    }

    /// The text if the template has no placeholders.
    pub fn as_literal(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [] => Some(""),
            [Segment::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// Names of the placeholders used.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Field { name, .. } => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Expands with `ctx`. A placeholder the context lacks expands to nothing (profile validation makes
    /// that impossible for a loaded profile).
    pub fn expand(&self, ctx: &Context) -> Vec<u8> {
        let mut out = Vec::new();
        for seg in &self.segments {
            match seg {
                Segment::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Segment::Field { name, filters } => {
                    let mut value = ctx.get(name).unwrap_or_default().as_bytes().to_vec();
                    for f in filters {
                        value = f.apply(&value);
                    }
                    out.extend_from_slice(&value);
                }
            }
        }
        out
    }

    /// Like `expand`, as text (lossy for binary filters such as `gzip`).
    pub fn expand_string(&self, ctx: &Context) -> String {
        String::from_utf8_lossy(&self.expand(ctx)).into_owned()
    }
}

/// The values placeholders expand to: the profile's identifiers, its props (`prop:KEY`) and the
/// current event's fields.
pub struct Context<'a> {
    profile: &'a Profile,
    fields: BTreeMap<&'static str, String>,
}

impl<'a> Context<'a> {
    /// A context for `event` (or for `boot` with `None`).
    pub fn new(profile: &'a Profile, event: Option<&HandsetEvent>) -> Context<'a> {
        let mut fields = BTreeMap::new();
        let bounded = |s: &str| truncate_utf8(s, MAX_EVENT_FIELD_BYTES).to_string();
        match event {
            Some(HandsetEvent::ContactAdded { name, phone }) => {
                fields.insert("contact_name", bounded(name));
                fields.insert("contact_phone", bounded(phone));
            }
            Some(HandsetEvent::SmsSent { to, body }) => {
                fields.insert("sms_to", bounded(to));
                fields.insert("sms_body", bounded(body));
            }
            Some(HandsetEvent::SetupComplete) | None => {}
        }
        Context { profile, fields }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some(key) = name.strip_prefix("prop:") {
            return self.profile.prop(key);
        }
        if let Some(v) = self.fields.get(name) {
            return Some(v);
        }
        self.profile.identifiers.get(name).map(String::as_str)
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

// ---- YAML shape ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    description: String,
    props: BTreeMap<String, String>,
    identifiers: BTreeMap<String, String>,
    #[serde(default)]
    traffic: BTreeMap<String, Vec<RawAction>>,
    #[serde(default)]
    generation: Option<String>,
    #[serde(default)]
    handset: RawPersona,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPersona {
    shell_reads_phone_identifiers: Option<bool>,
    send_button: Option<SendButton>,
    boot_seconds: Option<f64>,
    pcapdroid: Option<RawPcapdroid>,
    tls_keylog: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPcapdroid {
    version_name: String,
    version_code: u32,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    vpn_consented: bool,
    #[serde(default)]
    mitm_addon: Option<RawMitmAddon>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMitmAddon {
    version_name: String,
    version_code: u32,
}

/// `handset.tls_keylog`, checked: an absolute, normalised path on the handset.
fn check_keylog_path(path: String) -> Result<String, String> {
    let ok = path.starts_with('/')
        && path.len() <= 256
        && !path.ends_with('/')
        && path
            .split('/')
            .skip(1)
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if ok {
        Ok(path)
    } else {
        Err(format!(
            "handset.tls_keylog: `{}` is not an absolute file path on the handset (e.g. \
             /data/local/tmp/sslkeys.log: letters, digits, `/._-`, at most 256 bytes)",
            truncate_utf8(&path, 80)
        ))
    }
}

/// A version name as a build has one: 1-32 letters, digits, `.`, `-`, `_`.
fn version_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// `handset.pcapdroid`, checked: a version name and code as a build would have them, an API key of
/// printable ASCII (PCAPdroid generates 32 letters and digits; any other key is the profile's choice).
fn convert_pcapdroid(raw: RawPcapdroid) -> Result<PcapdroidSetup, String> {
    if !version_name_ok(&raw.version_name) {
        return Err(
            "handset.pcapdroid.version_name: 1-32 letters, digits, `.`, `-` or `_` (e.g. \"1.9.1\")"
                .into(),
        );
    }
    if raw.version_code == 0 {
        return Err("handset.pcapdroid.version_code: a positive number (91 is 1.9.1)".into());
    }
    if let Some(key) = &raw.api_key
        && (key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(
            "handset.pcapdroid.api_key: 1-128 printable ASCII characters without spaces".into(),
        );
    }
    let mitm_addon = match raw.mitm_addon {
        None => None,
        Some(m) => {
            if !version_name_ok(&m.version_name) || m.version_code == 0 {
                return Err(
                    "handset.pcapdroid.mitm_addon: a version_name (1-32 letters, digits, `.`, `-`, \
                     `_`, e.g. \"1.4\") and a positive version_code (21 is 1.4)"
                        .into(),
                );
            }
            Some(MitmAddonSetup {
                version_name: m.version_name,
                version_code: m.version_code,
            })
        }
    };
    Ok(PcapdroidSetup {
        version_name: raw.version_name,
        version_code: raw.version_code,
        api_key: raw.api_key,
        vpn_consented: raw.vpn_consented,
        mitm_addon,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RawAction {
    Dns(String),
    Https(RawRequest),
    Http(RawRequest),
    Ntp(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(default = "default_method")]
    method: String,
    host: String,
    #[serde(default = "default_path")]
    path: String,
    #[serde(default)]
    headers: OrderedMap,
    #[serde(default)]
    body: String,
    #[serde(default)]
    compress: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}
fn default_path() -> String {
    "/".into()
}

/// A YAML mapping kept in file order (header order is part of what a firmware sends).
#[derive(Default)]
struct OrderedMap(Vec<(String, String)>);

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of header names to values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    if out.len() >= 64 {
                        return Err(serde::de::Error::custom("more than 64 headers"));
                    }
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

// ---- loading and validation ----

impl Profile {
    /// Names of the profiles embedded in the binary.
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Result<Profile, VhandsetError> {
        let (_, text) = BUILTINS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            VhandsetError::UnknownProfile {
                name: name.to_string(),
                known: BUILTIN_NAMES.join(", "),
            }
        })?;
        Profile::from_yaml(text, &format!("builtin:{name}"))
    }

    /// Loads a user's profile file.
    pub fn load(path: &Path) -> Result<Profile, VhandsetError> {
        let shown = path.display().to_string();
        let bad = |message: String| VhandsetError::BadProfile {
            path: shown.clone(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        if meta.len() > MAX_PROFILE_BYTES {
            return Err(bad(format!(
                "file is {} bytes; profiles are limited to {MAX_PROFILE_BYTES}",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
        Profile::from_yaml(&text, &shown)
    }

    /// Parses and validates profile YAML; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Profile, VhandsetError> {
        let bad = |message: String| VhandsetError::BadProfile {
            path: origin.to_string(),
            message,
        };
        if text.len() as u64 > MAX_PROFILE_BYTES {
            return Err(bad(format!("larger than {MAX_PROFILE_BYTES} bytes")));
        }
        let raw: RawProfile = serde_saphyr::from_str(text)
            // The snippet would quote lines of the file, and those may hold identifier values.
            .map_err(|e| bad(e.without_snippet().to_string()))?;
        Profile::validate(raw, origin).map_err(bad)
    }

    /// A system property.
    pub fn prop(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    /// The actions listed for an event key (empty when the profile lists none).
    pub fn actions(&self, key: &str) -> &[Action] {
        self.traffic.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every literal host name the profile contacts, sorted: the resolver answers these, and host i
    /// gets address 127.77.N.(10 + i).
    pub fn hosts(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .traffic
            .values()
            .flatten()
            .filter_map(Action::host)
            .collect();
        set.into_iter()
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn validate(raw: RawProfile, origin: &str) -> Result<Profile, String> {
        let RawProfile {
            name,
            description,
            props,
            identifiers,
            traffic: raw_traffic,
            generation: raw_generation,
            handset,
        } = raw;
        // `.` for release numbers (`aosp-4.4-rooted`); never leading, never `..`.
        if name.is_empty()
            || name.len() > 64
            || name.starts_with('.')
            || name.contains("..")
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(format!(
                "name `{}`: use 1-64 characters a-z, 0-9, `-` and `.`",
                truncate_utf8(&name, 80)
            ));
        }
        validate_props(&props)?;
        validate_identifiers(&identifiers)?;
        if props.get("ro.serialno") != identifiers.get(kinds::SERIAL) {
            return Err("props.ro.serialno must equal identifiers.serial".into());
        }

        let mut traffic = BTreeMap::new();
        for (key, raw_actions) in raw_traffic {
            if !EVENT_KEYS.contains(&key.as_str()) {
                return Err(format!(
                    "traffic: unknown event `{key}`{}; events: {}",
                    did_you_mean(&key, EVENT_KEYS.iter().copied()),
                    EVENT_KEYS.join(", ")
                ));
            }
            if raw_actions.len() > MAX_ACTIONS_PER_EVENT {
                return Err(format!(
                    "traffic.{key}: {} actions; at most {MAX_ACTIONS_PER_EVENT}",
                    raw_actions.len()
                ));
            }
            let mut known: Vec<String> = identifiers.keys().cloned().collect();
            known.extend(event_fields(&key).iter().map(|s| s.to_string()));
            let checker = FieldChecker {
                known: &known,
                props: &props,
                key: &key,
            };
            let mut actions = Vec::new();
            for (i, ra) in raw_actions.into_iter().enumerate() {
                let at = format!("traffic.{key}[{i}]");
                actions.push(convert_action(ra, &at, &checker)?);
            }
            traffic.insert(key, actions);
        }
        let generation = resolve_generation(raw_generation.as_deref(), &props)?;
        let defaults = Persona::default();
        let boot_seconds = handset.boot_seconds.unwrap_or(defaults.boot_seconds);
        if !(0.0..=600.0).contains(&boot_seconds) {
            return Err("handset.boot_seconds: a number of seconds from 0 to 600".into());
        }
        let persona = Persona {
            shell_reads_phone_identifiers: handset
                .shell_reads_phone_identifiers
                .unwrap_or(defaults.shell_reads_phone_identifiers),
            send_button: handset.send_button.unwrap_or(defaults.send_button),
            boot_seconds,
            pcapdroid: handset.pcapdroid.map(convert_pcapdroid).transpose()?,
            tls_keylog: handset.tls_keylog.map(check_keylog_path).transpose()?,
        };
        let profile = Profile {
            name,
            description,
            props,
            identifiers,
            traffic,
            source: origin.to_string(),
            generation,
            persona,
        };
        let hosts = profile.hosts();
        if hosts.len() > MAX_HOSTS {
            return Err(format!(
                "{} distinct hosts; at most {MAX_HOSTS}",
                hosts.len()
            ));
        }
        Ok(profile)
    }
}

/// The generation a profile names, or the one of its SDK; its SDK must be one the release has.
fn resolve_generation(
    named: Option<&str>,
    props: &BTreeMap<String, String>,
) -> Result<&'static Generation, String> {
    let sdk: u32 = props["ro.build.version.sdk"]
        .parse()
        .map_err(|_| "props.ro.build.version.sdk must be a number such as \"33\"".to_string())?;
    let known = generation::ids().join(", ");
    let g = match named {
        Some(id) => generation::by_id(id).ok_or_else(|| {
            format!(
                "generation `{}` is not one the handset imitates{}; generations: {known}",
                truncate_utf8(id, 40),
                did_you_mean(id, generation::ids().into_iter())
            )
        })?,
        None => generation::for_sdk(sdk).ok_or_else(|| {
            format!(
                "no generation has SDK {sdk}; name one with `generation:` and a matching \
                 ro.build.version.sdk (generations: {known})"
            )
        })?,
    };
    if !(g.sdk.0..=g.sdk.1).contains(&sdk) {
        return Err(format!(
            "props.ro.build.version.sdk is {sdk} but generation {} is SDK {}{}",
            g.id,
            g.sdk.0,
            if g.sdk.1 != g.sdk.0 {
                format!("-{}", g.sdk.1)
            } else {
                String::new()
            }
        ));
    }
    Ok(g)
}

fn validate_props(props: &BTreeMap<String, String>) -> Result<(), String> {
    for key in REQUIRED_PROPS {
        match props.get(*key) {
            None => return Err(format!("props: `{key}` is missing")),
            Some(v) if v.is_empty() => return Err(format!("props: `{key}` is empty")),
            Some(_) => {}
        }
    }
    if props.len() > 1024 {
        return Err("props: more than 1024 entries".into());
    }
    for (k, v) in props {
        if k.is_empty()
            || k.len() > 128
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
        {
            return Err(format!(
                "props: key `{}` is not a property name",
                truncate_utf8(k, 80)
            ));
        }
        if v.len() > 1024 || v.chars().any(char::is_control) {
            return Err(format!(
                "props.{k}: values are one line of at most 1024 bytes"
            ));
        }
    }
    // A phone's fingerprint is made from these props by the build (AOSP build/make/core/sysprop.mk,
    // BUILD_FINGERPRINT: `$(PRODUCT_BRAND)/$(TARGET_PRODUCT)/$(TARGET_DEVICE):$(PLATFORM_VERSION)/
    // $(BUILD_ID)/$(BUILD_NUMBER):$(TARGET_BUILD_VARIANT)/$(BUILD_VERSION_TAGS)`); a profile whose
    // fingerprint disagrees with its props would be a phone no build system makes.
    let built = format!(
        "{}/{}/{}:{}/{}/{}:{}/{}",
        props["ro.product.brand"],
        props["ro.product.name"],
        props["ro.product.device"],
        props["ro.build.version.release"],
        props["ro.build.id"],
        props["ro.build.version.incremental"],
        props["ro.build.type"],
        props["ro.build.tags"],
    );
    if props["ro.build.fingerprint"] != built {
        return Err(format!(
            "props.ro.build.fingerprint must be made of the other props as a build makes it \
             (brand/name/device:release/id/incremental:type/tags): `{}`",
            truncate_utf8(&built, 300)
        ));
    }
    if !props["ro.build.version.sdk"]
        .bytes()
        .all(|b| b.is_ascii_digit())
    {
        return Err("props.ro.build.version.sdk must be a number such as \"33\"".into());
    }
    Ok(())
}

fn all_digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn validate_identifiers(ids: &BTreeMap<String, String>) -> Result<(), String> {
    for kind in REQUIRED_IDENTIFIERS {
        if !ids.contains_key(*kind) {
            return Err(format!("identifiers: `{kind}` is missing"));
        }
    }
    if ids.len() > 64 {
        return Err("identifiers: more than 64 entries".into());
    }
    for (kind, value) in ids {
        if !is_valid_kind(kind) {
            return Err(format!(
                "identifiers: `{}` is not a kind (snake_case, e.g. `imei`)",
                truncate_utf8(kind, 80)
            ));
        }
        // Messages name the kind and the rule, never the value. `imei2`, `imsi2`, `iccid2` and
        // `phone_number2` are the second SIM slot's and follow the same rules.
        let base = match kind.as_str() {
            "imei2" => kinds::IMEI,
            "imsi2" => kinds::IMSI,
            "iccid2" => kinds::ICCID,
            "phone_number2" => kinds::PHONE_NUMBER,
            k => k,
        };
        let rule = match base {
            kinds::IMEI
                if !(all_digits(value, 15, 15)
                    && tattle_analysis::identifier::luhn_valid(value)) =>
            {
                "15 digits with a valid Luhn check digit"
            }
            kinds::IMSI if !all_digits(value, 14, 15) => "14-15 digits (MCC + MNC + MSIN)",
            kinds::ICCID if !(all_digits(value, 19, 20) && value.starts_with("89")) => {
                "19-20 digits starting with 89"
            }
            kinds::PHONE_NUMBER
                if !(value.starts_with('+')
                    && all_digits(&value[1..], 8, 15)
                    && !value[1..].starts_with('0')) =>
            {
                "E.164: `+`, country code, number, 8-15 digits in all"
            }
            kinds::ANDROID_ID
                if !(value.len() == 16
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))) =>
            {
                "16 lower-case hex digits"
            }
            kinds::SERIAL
                if !((6..=20).contains(&value.len())
                    && value.bytes().all(|b| b.is_ascii_alphanumeric())) =>
            {
                "6-20 letters and digits"
            }
            _ if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) => {
                "one line of 1-256 bytes"
            }
            _ => continue,
        };
        return Err(format!("identifiers.{kind} must be {rule}"));
    }
    Ok(())
}

struct FieldChecker<'a> {
    known: &'a [String],
    props: &'a BTreeMap<String, String>,
    key: &'a str,
}

impl FieldChecker<'_> {
    fn template(&self, text: &str, at: &str) -> Result<Template, String> {
        if text.len() > MAX_LITERAL_BYTES {
            return Err(format!("{at}: longer than {MAX_LITERAL_BYTES} bytes"));
        }
        let t = Template::parse(text).map_err(|e| format!("{at}: {}", e.0))?;
        for field in t.fields() {
            if let Some(prop) = field.strip_prefix("prop:") {
                if !self.props.contains_key(prop) {
                    return Err(format!(
                        "{at}: `{{{field}}}` names a prop the profile does not define"
                    ));
                }
                continue;
            }
            if self.known.iter().any(|k| k == field) {
                continue;
            }
            let elsewhere = EVENT_KEYS
                .iter()
                .find(|k| event_fields(k).contains(&field))
                .map(|k| format!(" (`{{{field}}}` exists only in `{k}` traffic)"))
                .unwrap_or_default();
            return Err(format!(
                "{at}: unknown placeholder `{{{field}}}`{elsewhere}{}; known in `{}`: {}, prop:KEY",
                did_you_mean(field, self.known.iter().map(String::as_str))
                    .replace('`', "")
                    .replace("mean ", "mean `{")
                    .replace('?', "}`?"),
                self.key,
                self.known.join(", ")
            ));
        }
        Ok(t)
    }
}

/// A DNS name a sink can answer: lower-case labels of a-z, 0-9 and `-`.
pub fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && host.contains('.')
}

fn check_host(host: &str, at: &str) -> Result<String, String> {
    if is_valid_host(host) {
        Ok(host.to_string())
    } else {
        Err(format!(
            "{at}: `{}` is not a host name (lower-case DNS labels; no templates, ports or schemes)",
            truncate_utf8(host, 80)
        ))
    }
}

fn convert_action(ra: RawAction, at: &str, c: &FieldChecker<'_>) -> Result<Action, String> {
    Ok(match ra {
        RawAction::Dns(name) => {
            let t = c.template(&name, &format!("{at}.dns"))?;
            if let Some(lit) = t.as_literal() {
                check_host(lit, &format!("{at}.dns"))?;
            }
            Action::Dns { name: t }
        }
        RawAction::Ntp(host) => Action::Ntp {
            host: check_host(&host, &format!("{at}.ntp"))?,
        },
        RawAction::Https(r) => Action::Https(convert_request(r, &format!("{at}.https"), c)?),
        RawAction::Http(r) => Action::Http(convert_request(r, &format!("{at}.http"), c)?),
    })
}

fn convert_request(r: RawRequest, at: &str, c: &FieldChecker<'_>) -> Result<Request, String> {
    if r.method.is_empty()
        || r.method.len() > 16
        || !r.method.bytes().all(|b| b.is_ascii_uppercase())
    {
        return Err(format!(
            "{at}.method: an upper-case HTTP method such as GET or POST"
        ));
    }
    let host = check_host(&r.host, &format!("{at}.host"))?;
    if !r.path.starts_with('/') {
        return Err(format!("{at}.path: must start with `/`"));
    }
    let path = c.template(&r.path, &format!("{at}.path"))?;
    let mut headers = Vec::new();
    for (name, value) in r.headers.0 {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!(
                "{at}.headers: `{}` is not a header name",
                truncate_utf8(&name, 80)
            ));
        }
        let lower = name.to_ascii_lowercase();
        if lower == "host" || lower == "content-length" {
            return Err(format!(
                "{at}.headers: `{name}` is set by the handset itself"
            ));
        }
        headers.push((
            name.clone(),
            c.template(&value, &format!("{at}.headers.{name}"))?,
        ));
    }
    let body = c.template(&r.body, &format!("{at}.body"))?;
    let gzip_body = match r.compress.as_deref() {
        None => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(format!(
                "{at}.compress: `{}` is not known; the one compression is `gzip`",
                truncate_utf8(other, 40)
            ));
        }
    };
    Ok(Request {
        method: r.method,
        host,
        path,
        headers,
        body,
        gzip_body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_must_be_made_of_the_props() {
        let text = include_str!("../../profiles/aosp-clean.yaml")
            .replace("vhandset:13/TP1A.220624.014", "vhandset:14/TP1A.220624.014");
        let e = Profile::from_yaml(&text, "test.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ro.build.fingerprint must be made of the other props")
                && e.contains("Android/aosp_vhandset/vhandset:13/"),
            "{e}"
        );
    }

    #[test]
    fn generations_and_personas_load() {
        let p = Profile::builtin("vendor-14-locked").unwrap();
        assert_eq!(p.generation.id, "android-14");
        assert!(!p.persona.shell_reads_phone_identifiers);
        assert_eq!(p.persona.send_button, SendButton::Tap);
        assert_eq!(
            Profile::builtin("aosp-clean").unwrap().generation.id,
            "android-13"
        );
        // Without `generation:` the SDK picks it; a mismatch or an unknown one is refused.
        let text =
            include_str!("../../profiles/aosp-clean.yaml").replace("generation: android-13\n", "");
        assert_eq!(
            Profile::from_yaml(&text, "t").unwrap().generation.id,
            "android-13"
        );
        let text = include_str!("../../profiles/aosp-clean.yaml")
            .replace("generation: android-13", "generation: android-14");
        let e = Profile::from_yaml(&text, "t").unwrap_err().to_string();
        assert!(
            e.contains("ro.build.version.sdk is 33 but generation android-14 is SDK 34"),
            "{e}"
        );
        let text = include_str!("../../profiles/aosp-clean.yaml")
            .replace("generation: android-13", "generation: android-13.1");
        let e = Profile::from_yaml(&text, "t").unwrap_err().to_string();
        assert!(e.contains("generations: android-4.4, android-9"), "{e}");
        // A second SIM's identifiers follow the first's rules.
        let text = include_str!("../../profiles/vendor-14-locked.yaml")
            .replace("imei2: \"352099140000023\"", "imei2: \"352099140000024\"");
        let e = Profile::from_yaml(&text, "t").unwrap_err().to_string();
        assert!(
            e.contains("identifiers.imei2 must be 15 digits with a valid Luhn"),
            "{e}"
        );
    }

    #[test]
    fn every_builtin_loads() {
        for name in Profile::builtin_names() {
            let p = Profile::builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&p.name, name);
            assert!(!p.hosts().is_empty());
        }
    }

    #[test]
    fn template_parse_and_escape() {
        let t = Template::parse("{{\"a\":\"{imei|md5}\"}}").unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), ["imei"]);
        assert_eq!(t.to_string(), "{{\"a\":\"{imei|md5}\"}}");
        assert!(Template::parse("{imei").is_err());
        assert!(Template::parse("a } b").is_err());
        assert!(
            Template::parse("{imei|rot13}")
                .unwrap_err()
                .0
                .contains("rot13")
        );
        assert!(Template::parse("{}").is_err());
        assert_eq!(
            Template::parse("plain").unwrap().as_literal(),
            Some("plain")
        );
    }

    #[test]
    fn random_pad_keeps_the_value_and_varies_the_size() {
        let lengths: BTreeSet<usize> = (0..20)
            .map(|_| {
                let out = Filter::RandomPad.apply(b"K7");
                assert!(out.starts_with(b"K7") && out.len() <= 2 + 255);
                assert!(out[2..].iter().all(u8::is_ascii_lowercase));
                out.len()
            })
            .collect();
        assert!(lengths.len() > 1, "{lengths:?}");
        assert_eq!(
            Template::parse("{imei|random_pad}").unwrap().to_string(),
            "{imei|random_pad}"
        );
    }

    #[test]
    fn filters() {
        assert_eq!(
            Filter::Md5.apply(b"abc"),
            b"900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            Filter::Sha1.apply(b"abc"),
            b"a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            Filter::Sha256.apply(b"abc"),
            b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Filter::Base64.apply(b"+65 9"), b"KzY1IDk=");
        assert_eq!(
            Filter::Url.apply(b"+6591234567 a&b"),
            b"%2B6591234567%20a%26b"
        );
        assert_eq!(Filter::Hex.apply(b"AZ"), b"415a");
        let gz = Filter::Gzip.apply(b"hello");
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back)
            .unwrap();
        assert_eq!(back, "hello");
    }
}
