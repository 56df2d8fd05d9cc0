//! Third-party apps a handset may have installed (its profile's persona says which): today PCAPdroid
//! (`pcapdroid`), the capture app a stock, unrooted phone can run. An app here is reached the way a
//! phone's app is: `am start` delivers it an Intent (`shell::commands::activity` dispatches), its
//! windows are screens of `shell::ui`, and what it sends leaves through the handset's network or an
//! `adb reverse` forward.
//!
//! Also the Intent extras as an app reads them (`Bundle`): the typed values `am` puts in the Bundle
//! and the `getString`/`getInt`/`getBoolean` rules of `android.os.Bundle` (a value of another type
//! reads as the default).
//!
//! Must not touch: `am`'s own parsing and output (`commands::activity`), the adbd, the handset's
//! traffic generation (`network`), anything above `vhandset`.

pub mod pcapdroid;

use std::collections::BTreeMap;

/// One Intent extra as `am` puts it in the Bundle (Intent.parseCommandArgs: `-e`/`--es` a String,
/// `--esn` a null String, `--ei` an Integer, `--ez` a Boolean, anything else another type).
#[derive(Clone, PartialEq, Eq)]
pub enum Extra {
    Str(String),
    Null,
    Int(i32),
    Bool(bool),
    /// `--el`, `--ef`, `--eu`, `--ecn`, arrays: no app here reads them.
    Other,
}

/// The extras of one Intent, by key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Bundle(pub BTreeMap<String, Extra>);

/// Extras carry secrets (PCAPdroid's `api_key`): `Debug` shows the keys only.
impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Bundle {
    /// `Bundle.getString` / `Intent.getStringExtra`: a String value, else none.
    pub fn string(&self, key: &str) -> Option<&str> {
        match self.0.get(key) {
            Some(Extra::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// `Bundle.getInt(key, default)`: an Integer value, else the default (a value of another type is
    /// a ClassCastException that Bundle catches).
    pub fn int(&self, key: &str, default: i32) -> i32 {
        match self.0.get(key) {
            Some(Extra::Int(i)) => *i,
            _ => default,
        }
    }

    /// `Bundle.getBoolean(key, default)`.
    pub fn boolean(&self, key: &str, default: bool) -> bool {
        match self.0.get(key) {
            Some(Extra::Bool(b)) => *b,
            _ => default,
        }
    }
}

/// `Integer.parseInt`: an optional sign and decimal digits within i32; anything else (spaces, empty,
/// overflow) is a NumberFormatException.
pub fn java_parse_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i32>().ok()
}

/// `String.split(",")`: the pieces between commas, with trailing empty pieces removed (leading and
/// inner ones kept).
pub fn java_split_commas(s: &str) -> Vec<String> {
    let mut parts: Vec<String> = s.split(',').map(str::to_string).collect();
    while parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_int_and_split_rules() {
        assert_eq!(java_parse_int("5123"), Some(5123));
        assert_eq!(java_parse_int("+7"), Some(7));
        assert_eq!(java_parse_int("-1"), Some(-1));
        for bad in ["", " 1", "1 ", "0x10", "99999999999", "+", "1.0"] {
            assert_eq!(java_parse_int(bad), None, "{bad:?}");
        }
        assert_eq!(java_split_commas("a,,b,,"), ["a", "", "b"]);
        assert_eq!(java_split_commas(",a"), ["", "a"]);
        assert!(java_split_commas(",,").is_empty());
    }

    #[test]
    fn bundle_reads_by_type() {
        let mut b = Bundle::default();
        b.0.insert("s".into(), Extra::Str("x".into()));
        b.0.insert("i".into(), Extra::Int(3));
        b.0.insert("n".into(), Extra::Null);
        assert_eq!(b.string("s"), Some("x"));
        assert_eq!(b.string("i"), None, "an Integer is no String");
        assert_eq!(b.string("n"), None);
        assert_eq!(b.int("i", 9), 3);
        assert_eq!(b.int("s", 9), 9, "a String is no Integer");
        assert!(!b.boolean("i", false));
        assert_eq!(format!("{b:?}"), "{\"i\", \"n\", \"s\"}");
    }
}
