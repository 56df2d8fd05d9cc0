//! Personal identifiers: what the audit looks for in traffic.
//!
//! Owns the `Identifier` value type shared by `scenario` (canaries), `device` (values read from the
//! handset) and `analysis` (needles). An identifier's *kind* (`imei`, `phone_number`, …) is what reports
//! and snapshots show; its *value* never leaves memory except inside the raw capture. `Debug` is
//! redacted so a stray `{:?}` in a log cannot leak a value.
//!
//! Must not touch: I/O of any kind.

use std::fmt;

/// Well-known kinds. Any other snake_case name is accepted as a custom kind.
pub mod kinds {
    pub const IMEI: &str = "imei";
    pub const IMSI: &str = "imsi";
    pub const ICCID: &str = "iccid";
    pub const PHONE_NUMBER: &str = "phone_number";
    pub const ANDROID_ID: &str = "android_id";
    pub const SERIAL: &str = "serial";
    pub const WIFI_MAC: &str = "wifi_mac";
    pub const EMAIL: &str = "email";
    pub const ADVERTISING_ID: &str = "advertising_id";
    pub const LOCATION: &str = "location";
    pub const CONTACT_NAME: &str = "contact_name";
    pub const CONTACT_PHONE: &str = "contact_phone";
    pub const SMS_BODY: &str = "sms_body";

    pub const ALL: &[&str] = &[
        IMEI,
        IMSI,
        ICCID,
        PHONE_NUMBER,
        ANDROID_ID,
        SERIAL,
        WIFI_MAC,
        EMAIL,
        ADVERTISING_ID,
        LOCATION,
        CONTACT_NAME,
        CONTACT_PHONE,
        SMS_BODY,
    ];
}

/// One identifier to look for: its kind and its raw value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier {
    pub kind: String,
    pub value: String,
}

impl Identifier {
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// What reports and snapshots show instead of the value: `<imei>`.
    pub fn placeholder(&self) -> String {
        placeholder(&self.kind)
    }
}

/// `<kind>`: the redacted form of any identifier of that kind.
pub fn placeholder(kind: &str) -> String {
    format!("<{kind}>")
}

/// A kind is a snake_case name: lower-case ASCII letters, digits and `_`, starting with a letter.
pub fn is_valid_kind(kind: &str) -> bool {
    let mut chars = kind.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The Luhn check: an IMEI's 15th digit makes the digit sum a multiple of 10. One definition for the
/// device side (validating what a phone reports) and the virtual handset (validating its profiles).
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Identifier({}, {} chars)",
            self.placeholder(),
            self.value.chars().count()
        )
    }
}

/// Replaces every identifier value in `text` by its placeholder, longest values first so a value that
/// contains another is replaced whole. Used on anything that came from the device or the network before
/// it is shown or stored.
pub fn redact(text: &str, identifiers: &[Identifier]) -> String {
    let mut sorted: Vec<&Identifier> = identifiers.iter().filter(|i| !i.value.is_empty()).collect();
    sorted.sort_by_key(|i| std::cmp::Reverse(i.value.len()));
    let mut out = text.to_string();
    for id in sorted {
        if out.contains(&id.value) {
            out = out.replace(&id.value, &id.placeholder());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let id = Identifier::new("imei", "356938035643809");
        let shown = format!("{id:?}");
        assert!(!shown.contains("356938035643809"), "{shown}");
        assert!(shown.contains("<imei>"));
    }

    #[test]
    fn redact_replaces_longest_first() {
        let ids = [
            Identifier::new("phone_number", "+6591234567"),
            Identifier::new("contact_phone", "91234567"),
        ];
        assert_eq!(
            redact("to +6591234567 or 91234567", &ids),
            "to <phone_number> or <contact_phone>"
        );
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("356938035643809"));
        assert!(!luhn_valid("356938035643808"));
        assert!(!luhn_valid("35693803564380x"));
        assert!(!luhn_valid(""));
    }

    #[test]
    fn kinds_are_snake_case() {
        assert!(kinds::ALL.iter().all(|k| is_valid_kind(k)));
        assert!(!is_valid_kind("IMEI"));
        assert!(!is_valid_kind("9lives"));
        assert!(!is_valid_kind("a-b"));
    }
}
