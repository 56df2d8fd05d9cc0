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
#[allow(missing_docs)] // the names say what they are
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
    /// `imei`, `phone_number`, … or any snake_case name (see [`is_valid_kind`]).
    pub kind: String,
    /// The value as the device reports it or the scenario plants it.
    pub value: String,
}

impl Identifier {
    /// An identifier of `kind` with `value`.
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

/// The Luhn check digit of `body` (an IMEI's first 14 digits give its 15th). The one Luhn of the
/// workspace: the matcher derives an IMEI's other form with it, the device side and the virtual
/// handset validate IMEIs with [`luhn_valid`].
pub fn luhn_check_digit(body: &str) -> Option<char> {
    let mut sum = 0u32;
    for (i, c) in body.chars().rev().enumerate() {
        let mut d = c.to_digit(10)?;
        // From the right, every other digit of the body is doubled (it sits left of the check digit).
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    char::from_digit((10 - sum % 10) % 10, 10)
}

/// Whether `digits` ends with the Luhn check digit of the digits before it.
pub fn luhn_valid(digits: &str) -> bool {
    let Some(last) = digits.chars().last() else {
        return false;
    };
    let body = &digits[..digits.len() - last.len_utf8()];
    last.is_ascii_digit() && luhn_check_digit(body) == Some(last)
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

/// Replaces every identifier value, as written, in `text` by its placeholder, longest values first so
/// a value that contains another is replaced whole. Only the literal values: [`crate::Redactor`]
/// replaces every encoded form too, and is what outputs use.
pub(crate) fn redact_literal(text: &str, identifiers: &[Identifier]) -> String {
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
            redact_literal("to +6591234567 or 91234567", &ids),
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
