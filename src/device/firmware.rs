//! The firmware key: what snapshots of a build are known by (`snapshots/<scenario>@<key>.snap`).
//!
//! Owns the parsing of `ro.build.fingerprint` and the key made from it: brand, device, build id and
//! incremental, file-safe, joined by `-` (`Xiaomi-armani-KTU84P-KHHMIBH20.0`). The fingerprint is
//! unique per build (Android's CDD: "MUST uniquely identify this build") and the same on every phone
//! of that build, so the key is too; `ro.build.display.id`, the old key, is often shared by two builds
//! of a phone (`TP1A.220624.014 release-keys`). When the fingerprint is missing or malformed the key
//! is made from the props it is built from (`ro.product.brand`, `ro.product.device`, `ro.build.id`,
//! `ro.build.version.incremental`), and the key says so (`FirmwareSource`, `note`).
//!
//! Must not touch: files (the snapshot module names them), the virtual handset's profiles (they check
//! their fingerprints with their own code).

use serde::Serialize;
use sha2::Digest as _;

use super::DeviceIdentity;

/// A key part longer than this is cut and ends in 8 hex digits of its SHA-256, so that a snapshot
/// file name stays far below 255 bytes (4 parts, a 64-byte scenario name, `@`, `.snap.new`) and two
/// long incrementals that share a prefix still get different keys.
const MAX_KEY_PART: usize = 40;

/// `ro.build.fingerprint`, split: `brand/product/device:release/id/incremental:type/tags`
/// (AOSP build/make: `$(PRODUCT_BRAND)/$(TARGET_PRODUCT)/$(TARGET_DEVICE):$(PLATFORM_VERSION)/
/// $(BUILD_ID)/$(BUILD_NUMBER):$(TARGET_BUILD_VARIANT)/$(BUILD_VERSION_TAGS)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint<'a> {
    pub brand: &'a str,
    pub product: &'a str,
    pub device: &'a str,
    pub release: &'a str,
    pub id: &'a str,
    pub incremental: &'a str,
    pub build_type: &'a str,
    pub tags: &'a str,
}

impl<'a> Fingerprint<'a> {
    /// Splits a fingerprint; every one of its eight parts must be there and non-empty, and nothing
    /// may be a control character. The error says what is wrong, without quoting the value.
    pub fn parse(text: &'a str) -> Result<Fingerprint<'a>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("it is empty".into());
        }
        if text.chars().any(char::is_control) {
            return Err("it holds control characters".into());
        }
        let groups: Vec<&str> = text.split(':').collect();
        let [left, middle, right] = groups.as_slice() else {
            return Err(format!(
                "it has {} `:`-separated groups, not 3 (brand/product/device:release/id/incremental:type/tags)",
                groups.len()
            ));
        };
        let split = |group: &'a str, n: usize, names: &str| -> Result<Vec<&'a str>, String> {
            let parts: Vec<&str> = group.split('/').collect();
            if parts.len() != n {
                return Err(format!(
                    "`{names}` has {} `/`-separated parts, not {n}",
                    parts.len()
                ));
            }
            Ok(parts)
        };
        let l = split(left, 3, "brand/product/device")?;
        let m = split(middle, 3, "release/id/incremental")?;
        let r = split(right, 2, "type/tags")?;
        let fp = Fingerprint {
            brand: l[0],
            product: l[1],
            device: l[2],
            release: m[0],
            id: m[1],
            incremental: m[2],
            build_type: r[0],
            tags: r[1],
        };
        let named = [
            ("brand", fp.brand),
            ("product", fp.product),
            ("device", fp.device),
            ("release", fp.release),
            ("id", fp.id),
            ("incremental", fp.incremental),
            ("type", fp.build_type),
            ("tags", fp.tags),
        ];
        if let Some((name, _)) = named.iter().find(|(_, v)| v.trim().is_empty()) {
            return Err(format!("its {name} is empty"));
        }
        Ok(fp)
    }

    /// The firmware key of this build: `brand-device-id-incremental`, each part file-safe.
    pub fn key(&self) -> String {
        join_key([self.brand, self.device, self.id, self.incremental])
    }
}

/// Where a firmware key was made from (`firmware_source` in run.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FirmwareSource {
    /// `ro.build.fingerprint`: its brand, device, build id and incremental.
    Fingerprint,
    /// The fingerprint was missing or malformed: `ro.product.brand`, `ro.product.device`,
    /// `ro.build.id` and `ro.build.version.incremental`, `unknown` for any that is missing.
    Props,
    /// Neither the fingerprint nor any of those props could be read: `ro.build.display.id`,
    /// which two builds of a phone may share.
    DisplayId,
    /// The user named the firmware: `--firmware NAME` (made file-safe).
    #[serde(rename = "--firmware")]
    Option,
}

/// A firmware's snapshot key, where it came from, and what went wrong when it could not come from
/// the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareKey {
    /// File-safe: `[A-Za-z0-9._-]`, never empty.
    pub key: String,
    pub source: FirmwareSource,
    /// Why the key is not the fingerprint's (set for `Props` and `DisplayId`).
    pub note: Option<String>,
}

impl FirmwareKey {
    /// The key the user chose (`--firmware NAME`), made file-safe.
    pub fn from_option(name: &str) -> FirmwareKey {
        FirmwareKey {
            key: sanitize_firmware_id(name),
            source: FirmwareSource::Option,
            note: None,
        }
    }

    /// The key of a device: from its fingerprint, else from the props the fingerprint is made of,
    /// else from its display id.
    pub fn of(identity: &DeviceIdentity) -> FirmwareKey {
        let why = match Fingerprint::parse(&identity.fingerprint) {
            Ok(fp) => {
                return FirmwareKey {
                    key: fp.key(),
                    source: FirmwareSource::Fingerprint,
                    note: None,
                };
            }
            Err(_) if identity.fingerprint.trim().is_empty() => {
                "ro.build.fingerprint is missing".to_string()
            }
            Err(e) => format!("ro.build.fingerprint is malformed ({e})"),
        };
        let props = [
            ("ro.product.brand", identity.brand.as_str()),
            ("ro.product.device", identity.device.as_str()),
            ("ro.build.id", identity.build_id.as_str()),
            (
                "ro.build.version.incremental",
                identity.incremental.as_str(),
            ),
        ];
        let missing: Vec<&str> = props
            .iter()
            .filter(|(_, v)| v.trim().is_empty())
            .map(|(k, _)| *k)
            .collect();
        if missing.len() < props.len() {
            let mut note = format!(
                "{why}; the key was made from ro.product.brand, ro.product.device, ro.build.id and \
                 ro.build.version.incremental"
            );
            if !missing.is_empty() {
                note.push_str(&format!(
                    " ({} missing: `unknown` in its place, so other builds may share this key)",
                    missing.join(", ")
                ));
            }
            return FirmwareKey {
                key: join_key(props.map(|(_, v)| v)),
                source: FirmwareSource::Props,
                note: Some(note),
            };
        }
        FirmwareKey {
            key: sanitize_firmware_id(&identity.build),
            source: FirmwareSource::DisplayId,
            note: Some(format!(
                "{why}, and so are ro.product.brand, ro.product.device, ro.build.id and \
                 ro.build.version.incremental; the key was made from ro.build.display.id, which \
                 other builds of this phone may share (name the build with --firmware NAME)"
            )),
        }
    }
}

/// `a-b-c-d` of the file-safe parts; an empty part is `unknown`.
fn join_key(parts: [&str; 4]) -> String {
    parts.map(key_part).join("-")
}

/// One part of a key: `[A-Za-z0-9._-]` kept, each run of anything else one `_`; at most
/// `MAX_KEY_PART` bytes (a longer part keeps its start and ends in `_` + 8 hex digits of the
/// SHA-256 of the whole part).
fn key_part(raw: &str) -> String {
    let raw = raw.trim();
    if raw.is_empty() {
        return "unknown".to_string();
    }
    let mut out = String::new();
    let mut in_unsafe = false;
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
            in_unsafe = false;
        } else if !in_unsafe {
            out.push('_');
            in_unsafe = true;
        }
    }
    if out.len() > MAX_KEY_PART {
        let digest = sha2::Sha256::digest(raw.as_bytes());
        out.truncate(MAX_KEY_PART - 9);
        out.push('_');
        out.push_str(&hex::encode(&digest[..4]));
    }
    out
}

/// Makes a name the user gave (or a display id) usable in a file name: `[A-Za-z0-9._-]`, others
/// become `-`; at most 100 characters; `unknown-build` when empty.
pub(crate) fn sanitize_firmware_id(raw: &str) -> String {
    let cleaned: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect();
    if cleaned.is_empty() {
        "unknown-build".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn identity(props: &[(&str, &str)]) -> DeviceIdentity {
        let props: BTreeMap<String, String> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DeviceIdentity::from_props("serial", &props)
    }

    fn key_of(fingerprint: &str) -> FirmwareKey {
        FirmwareKey::of(&identity(&[("ro.build.fingerprint", fingerprint)]))
    }

    #[test]
    fn keys_from_real_fingerprints() {
        // A Redmi 1S on KitKat, and a Pixel 6 on Android 14.
        let k = key_of("Xiaomi/armani/armani:4.4.4/KTU84P/KHHMIBH20.0:user/release-keys");
        assert_eq!(k.key, "Xiaomi-armani-KTU84P-KHHMIBH20.0");
        assert_eq!(k.source, FirmwareSource::Fingerprint);
        assert_eq!(k.note, None);
        assert_eq!(
            key_of("google/oriole/oriole:14/AP2A.240805.005/12025142:user/release-keys").key,
            "google-oriole-AP2A.240805.005-12025142"
        );
        // The emulator: product and device differ; the key takes the device.
        assert_eq!(
            key_of(
                "google/sdk_gphone64_x86_64/emu64xa:14/UE1A.230829.036.A1/11228894:userdebug/dev-keys"
            )
            .key,
            "google-emu64xa-UE1A.230829.036.A1-11228894"
        );
        // Surrounding whitespace (a getprop line read as is) does not change the key.
        assert_eq!(
            key_of(" Xiaomi/armani/armani:4.4.4/KTU84P/KHHMIBH20.0:user/release-keys\n").key,
            "Xiaomi-armani-KTU84P-KHHMIBH20.0"
        );
    }

    #[test]
    fn two_builds_of_a_phone_get_two_keys() {
        let a = key_of(
            "kestrel/wren_global/wren:13/TP1A.220624.014/V14.0.3.0.TGLMIXM:user/release-keys",
        );
        let b = key_of(
            "kestrel/wren_global/wren:13/TP1A.220624.014/V14.0.4.0.TGLMIXM:user/release-keys",
        );
        assert_eq!(a.key, "kestrel-wren-TP1A.220624.014-V14.0.3.0.TGLMIXM");
        assert_ne!(a.key, b.key);
    }

    #[test]
    fn unsafe_characters_are_replaced() {
        // Spaces, brackets, `#`, non-ASCII and `..` in the parts of a (non-conforming) fingerprint.
        let k = key_of(
            "Acme Mobile/acme_one/acme one:11/RKQ1.200826.002/V12.5.1.0 (beta)#2:user/release-keys",
        );
        assert_eq!(k.source, FirmwareSource::Fingerprint);
        assert_eq!(
            k.key,
            "Acme_Mobile-acme_one-RKQ1.200826.002-V12.5.1.0_beta_2"
        );
        let k = key_of("../x/..:1/../é€:user/ü");
        assert_eq!(k.key, "..-..-..-_");
        assert!(!k.key.contains('/'));
        // A long incremental is cut, and keeps a digest of the whole.
        let long_a = format!("b/p/d:13/ID1/{}A:user/release-keys", "x".repeat(60));
        let long_b = format!("b/p/d:13/ID1/{}B:user/release-keys", "x".repeat(60));
        let (a, b) = (key_of(&long_a).key, key_of(&long_b).key);
        assert_ne!(a, b);
        assert!(a.len() <= "b-d-ID1-".len() + MAX_KEY_PART, "{a}");
        for key in [&a, &b] {
            assert!(
                key.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)),
                "{key}"
            );
        }
    }

    #[test]
    fn malformed_fingerprints_fall_back_to_the_props() {
        let props = [
            ("ro.product.brand", "Xiaomi"),
            ("ro.product.device", "armani"),
            ("ro.build.id", "KTU84P"),
            ("ro.build.version.incremental", "KHHMIBH20.0"),
            ("ro.build.display.id", "KHHMIBH20.0"),
        ];
        let with = |fp: &str| {
            let mut all = props.to_vec();
            all.push(("ro.build.fingerprint", fp));
            FirmwareKey::of(&identity(&all))
        };
        for bad in [
            "Xiaomi/armani/armani:4.4.4/KTU84P/KHHMIBH20.0",
            "Xiaomi/armani:4.4.4/KTU84P/KHHMIBH20.0:user/release-keys",
            "Xiaomi/armani/armani:4.4.4/KTU84P/:user/release-keys",
            "Xiaomi/armani/armani:4.4.4/KTU84P/KHHMIBH20.0:user/release-keys:extra",
            "unknown",
        ] {
            let k = with(bad);
            assert_eq!(k.key, "Xiaomi-armani-KTU84P-KHHMIBH20.0", "{bad}");
            assert_eq!(k.source, FirmwareSource::Props, "{bad}");
            let note = k.note.unwrap();
            assert!(
                note.starts_with("ro.build.fingerprint is malformed ("),
                "{note}"
            );
            assert!(!note.contains("unknown`"), "{note}");
        }
        let k = with("");
        assert_eq!(k.key, "Xiaomi-armani-KTU84P-KHHMIBH20.0");
        assert!(
            k.note
                .unwrap()
                .starts_with("ro.build.fingerprint is missing;")
        );
        // Parts missing too: `unknown` in their place, and the note says so.
        let k = FirmwareKey::of(&identity(&[
            ("ro.product.brand", "Xiaomi"),
            ("ro.build.id", "KTU84P"),
        ]));
        assert_eq!(k.key, "Xiaomi-unknown-KTU84P-unknown");
        let note = k.note.unwrap();
        assert!(
            note.contains("ro.product.device, ro.build.version.incremental missing"),
            "{note}"
        );
        // Nothing but the display id.
        let k = FirmwareKey::of(&identity(&[(
            "ro.build.display.id",
            "TP1A.220624.014 release-keys",
        )]));
        assert_eq!(k.key, "TP1A.220624.014-release-keys");
        assert_eq!(k.source, FirmwareSource::DisplayId);
        assert!(k.note.unwrap().contains("--firmware"));
        let k = FirmwareKey::of(&identity(&[]));
        assert_eq!(k.key, "unknown-build");
    }

    #[test]
    fn the_props_key_equals_the_fingerprint_key_of_a_consistent_build() {
        let fp = "google/oriole/oriole:14/AP2A.240805.005/12025142:user/release-keys";
        let props = [
            ("ro.product.brand", "google"),
            ("ro.product.device", "oriole"),
            ("ro.build.id", "AP2A.240805.005"),
            ("ro.build.version.incremental", "12025142"),
        ];
        let mut with_fp = props.to_vec();
        with_fp.push(("ro.build.fingerprint", fp));
        assert_eq!(
            FirmwareKey::of(&identity(&props)).key,
            FirmwareKey::of(&identity(&with_fp)).key
        );
    }

    #[test]
    fn the_option_wins_and_is_made_file_safe() {
        let k = FirmwareKey::from_option("TQ3A.230901.001 test-keys");
        assert_eq!(k.key, "TQ3A.230901.001-test-keys");
        assert_eq!(k.source, FirmwareSource::Option);
        assert_eq!(sanitize_firmware_id("../../etc"), "..-..-etc");
        assert_eq!(sanitize_firmware_id(""), "unknown-build");
        assert_eq!(
            serde_json::to_value(FirmwareSource::Option).unwrap(),
            "--firmware"
        );
        assert_eq!(
            serde_json::to_value(FirmwareSource::DisplayId).unwrap(),
            "display_id"
        );
    }

    #[test]
    fn fingerprints_are_split() {
        let fp = Fingerprint::parse(
            "google/oriole/oriole:14/AP2A.240805.005/12025142:user/release-keys",
        )
        .unwrap();
        assert_eq!(
            (fp.brand, fp.product, fp.device, fp.release),
            ("google", "oriole", "oriole", "14")
        );
        assert_eq!(
            (fp.id, fp.incremental, fp.build_type, fp.tags),
            ("AP2A.240805.005", "12025142", "user", "release-keys")
        );
        assert!(Fingerprint::parse("a/b/c:1/2/3:user/x\u{1b}[31m").is_err());
        assert!(
            Fingerprint::parse("a/b/c:1/2/3:user")
                .unwrap_err()
                .contains("type/tags")
        );
    }
}
