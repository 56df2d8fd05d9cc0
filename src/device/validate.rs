//! What a value read from a device must look like before tattle watches the network for it.
//!
//! Owns the format checks per identifier kind: a vendor build with its own transaction codes, a
//! dialog that shows something else, or a null that prints as text must never make tattle look for
//! the wrong string (or, worse, report "no leak" for a value the phone never had). A value that
//! fails is reported missing with the reason, and the user supplies it with `--id`.
//!
//! Must not touch: the device (pure functions), the values in messages (reasons name the format,
//! never the value).

use tattle_analysis::identifier::{kinds, luhn_valid};

/// The kind tattle calls a CDMA phone's Mobile Equipment Identifier (no well-known kind exists in
/// the analysis crate: it is watched for as a custom kind).
pub const MEID: &str = "meid";

/// Checks `value` is a plausible identifier of `kind`; returns it normalised (trimmed; a MAC and an
/// advertising ID lower-case; an ICCID without the `F` filler of its BCD encoding), or why not.
pub fn identifier(kind: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("an empty string".into());
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match kind {
        // 14 digits of TAC + serial, then the Luhn check digit (3GPP TS 23.003 §6.2.1).
        kinds::IMEI => {
            if value.len() == 15 && digits(value) && luhn_valid(value) {
                Ok(value.into())
            } else {
                Err("a value that is not a 15-digit IMEI with a valid Luhn check digit".into())
            }
        }
        // MCC (3) + MNC (2–3) + MSIN: at most 15 digits (TS 23.003 §2.2); 14 or 15 in practice.
        kinds::IMSI => {
            if (14..=15).contains(&value.len()) && digits(value) {
                Ok(value.into())
            } else {
                Err("a value that is not a 14–15-digit IMSI".into())
            }
        }
        // ITU-T E.118: `89` (telecom), country, issuer, account; 18–22 digits. SIMs store the
        // number in BCD, which older releases print with its `F` filler. The Luhn check digit is
        // not required here (see `iccid_check_digit_ok`): the shape alone already tells an ICCID
        // from what a wrong transaction code returns (an IMSI, a number, a GID), and rejecting a
        // real SIM's ICCID would hide its leaks.
        kinds::ICCID => {
            let v = value.trim_end_matches(['F', 'f']);
            if (18..=22).contains(&v.len()) && digits(v) && v.starts_with("89") {
                Ok(v.into())
            } else {
                Err("a value that is not an ICCID (18–22 digits starting 89)".into())
            }
        }
        // E.164 (`+` and at most 15 digits), or the national digits a SIM often stores instead.
        kinds::PHONE_NUMBER => {
            let (plus, rest) = match value.strip_prefix('+') {
                Some(r) => (true, r),
                None => (false, value),
            };
            let min = if plus { 7 } else { 5 };
            if (min..=15).contains(&rest.len()) && digits(rest) {
                Ok(value.into())
            } else {
                Err("a value that is not a phone number (E.164 or national digits)".into())
            }
        }
        // Settings.Secure.ANDROID_ID: a 64-bit number in hex (16 digits; fewer when it starts
        // with zeros on old releases).
        kinds::ANDROID_ID => {
            if (1..=16).contains(&value.len())
                && value.bytes().all(|b| b.is_ascii_hexdigit())
                && value.bytes().any(|b| b != b'0')
            {
                Ok(value.into())
            } else {
                Err("a value that is not a hex Android ID".into())
            }
        }
        kinds::SERIAL => {
            let ok = (4..=64).contains(&value.len())
                && value.bytes().all(|b| b.is_ascii_alphanumeric())
                && !value.eq_ignore_ascii_case("unknown");
            if ok {
                Ok(value.into())
            } else {
                Err("a value that is not a serial number".into())
            }
        }
        kinds::WIFI_MAC => {
            let v = value.to_ascii_lowercase();
            let octets: Vec<&str> = v.split(':').collect();
            let well_formed = octets.len() == 6
                && octets
                    .iter()
                    .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
            // 02:00:00:00:00:00 is what Android 6+ gives callers it hides the MAC from.
            if well_formed && v != "00:00:00:00:00:00" && v != "02:00:00:00:00:00" {
                Ok(v)
            } else {
                Err("a value that is not a real MAC address".into())
            }
        }
        kinds::ADVERTISING_ID => {
            let v = value.to_ascii_lowercase();
            let groups: Vec<usize> = v.split('-').map(str::len).collect();
            let uuid =
                groups == [8, 4, 4, 4, 12] && v.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if !uuid {
                Err("a value that is not an advertising ID (a UUID)".into())
            } else if v.bytes().all(|b| b == b'0' || b == b'-') {
                Err("the all-zero advertising ID (the user deleted it, or it is disabled)".into())
            } else {
                Ok(v)
            }
        }
        // 14 hex digits (3GPP2 S.R0048): manufacturer code and serial; `A0`–`FF` as the first
        // byte for globally administered MEIDs. The optional check digit is not printed by Android.
        MEID => {
            let v = value.to_ascii_uppercase();
            if v.len() == 14 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(v)
            } else {
                Err("a value that is not a 14-hex-digit MEID".into())
            }
        }
        _ => Ok(value.into()),
    }
}

/// Whether an ICCID of the 19- or 20-digit form ends in the Luhn check digit of the rest (E.118);
/// `None` for the other lengths, where no check digit is defined.
pub fn iccid_check_digit_ok(iccid: &str) -> Option<bool> {
    (19..=20).contains(&iccid.len()).then(|| luhn_valid(iccid))
}

/// A device ID that is a MEID rather than an IMEI: 14 hex digits with a letter, or the `A0`–`FF`
/// range (what `getDeviceId` returns on a phone in CDMA mode).
pub fn looks_like_meid(value: &str) -> bool {
    let v = value.trim();
    v.len() == 14
        && v.bytes().all(|b| b.is_ascii_hexdigit())
        && (v.bytes().any(|b| b.is_ascii_alphabetic())
            || u8::from_str_radix(&v[..2], 16).is_ok_and(|b| b >= 0xA0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imei_needs_its_luhn_digit() {
        // 3GPP TS 23.003 Annex B's example IMEI body 49015420323751 has check digit 8.
        assert!(identifier(kinds::IMEI, "490154203237518").is_ok());
        assert!(identifier(kinds::IMEI, "490154203237517").is_err());
        assert!(identifier(kinds::IMEI, "49015420323751").is_err());
    }

    #[test]
    fn imsi_iccid_and_numbers() {
        // The Android emulator's SIM (AOSP device/generic/goldfish, `SimulatedCommands`/modem
        // simulator): IMSI 310260000000000, ICCID 89014103211118510720, number 15555215554.
        assert!(identifier(kinds::IMSI, "310260000000000").is_ok());
        assert!(identifier(kinds::IMSI, "31026").is_err());
        assert_eq!(
            identifier(kinds::ICCID, "89014103211118510720").as_deref(),
            Ok("89014103211118510720")
        );
        assert_eq!(
            identifier(kinds::ICCID, "8901260000000004215F").as_deref(),
            Ok("8901260000000004215"),
            "the BCD filler goes"
        );
        assert_eq!(iccid_check_digit_ok("89014103211118510720"), Some(true));
        assert_eq!(iccid_check_digit_ok("8901260000000004216"), Some(false));
        assert_eq!(iccid_check_digit_ok("890126000000000421"), None);
        assert!(identifier(kinds::ICCID, "9901260000000004216").is_err());
        assert!(identifier(kinds::ICCID, "310260000000000").is_err());
        assert!(identifier(kinds::PHONE_NUMBER, "15555215554").is_ok());
        assert!(identifier(kinds::PHONE_NUMBER, "+6591234567").is_ok());
        assert!(identifier(kinds::PHONE_NUMBER, "Unknown").is_err());
        assert!(identifier(kinds::PHONE_NUMBER, "+1234567890123456").is_err());
    }

    #[test]
    fn macs_ids_and_meids() {
        assert_eq!(
            identifier(kinds::WIFI_MAC, "AC:37:43:4B:5C:6D").as_deref(),
            Ok("ac:37:43:4b:5c:6d")
        );
        assert!(identifier(kinds::WIFI_MAC, "02:00:00:00:00:00").is_err());
        assert!(identifier(kinds::ANDROID_ID, "9f3c2a71b4e5d608").is_ok());
        assert!(identifier(kinds::ANDROID_ID, "null").is_err());
        assert!(
            identifier(
                kinds::ADVERTISING_ID,
                "38400000-8cf0-11bd-b23e-10b96e40000d"
            )
            .is_ok()
        );
        assert!(
            identifier(
                kinds::ADVERTISING_ID,
                "00000000-0000-0000-0000-000000000000"
            )
            .unwrap_err()
            .contains("deleted")
        );
        assert!(looks_like_meid("A0000012345678"));
        assert!(!looks_like_meid("35693803564380"));
        assert!(identifier(MEID, "a0000012345678").is_ok());
    }
}
