//! Parsers for what Android's own tools print: `getprop`, `service call` Parcel dumps, `content query`
//! rows, `date +%s`. Device output is untrusted: every parser returns `None`/skips on anything odd and
//! never panics.
//!
//! Written from AOSP's sources of the printing side (`getprop` in system/core toolbox, `Parcel::print`
//! via `service call` in frameworks/native cmds/service, `content` in frameworks/base cmds/content), not
//! from the virtual handset, which is written separately.

use std::collections::BTreeMap;

/// Upper bound on how many properties we keep from one `getprop` (a real phone has ~1000).
const MAX_PROPS: usize = 20_000;

/// `getprop` with no argument prints `[key]: [value]` per line.
pub fn getprop_all(text: &str) -> BTreeMap<String, String> {
    let mut props = BTreeMap::new();
    for line in text.lines() {
        if props.len() >= MAX_PROPS {
            break;
        }
        let line = line.trim_end_matches('\r');
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let Some((key, rest)) = rest.split_once("]: [") else {
            continue;
        };
        let Some(value) = rest.strip_suffix(']') else {
            continue;
        };
        props.insert(key.to_string(), value.to_string());
    }
    props
}

/// Decodes the reply of `service call iphonesubinfo N …`, which prints the reply Parcel as
/// `Result: Parcel(` + lines of `0xOFFSET: w0 w1 w2 w3 'ascii'` + `)`, each word a little-endian u32 in
/// hex. A String16 reply is: i32 exception code (0 = none), i32 length in UTF-16 units (-1 = null), the
/// units, a NUL unit, padding to 4 bytes.
///
/// Returns `Ok(Some(string))`, `Ok(None)` for a null string, `Err(reason)` for an exception or garbage.
pub fn parcel_string16(text: &str) -> Result<Option<String>, String> {
    let start = text
        .find("Parcel(")
        .ok_or_else(|| "no `Result: Parcel(` in the reply".to_string())?;
    let body = &text[start + "Parcel(".len()..];
    let mut bytes: Vec<u8> = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        // Either `0x00000000: 00000000 0000000f …` or, for short replies on one line, the words right
        // after `Parcel(` (e.g. `Result: Parcel(00000000 ffffffff   '........')`).
        let words_part = match line.split_once(": ") {
            Some((offset, rest)) if offset.starts_with("0x") => rest,
            _ => line,
        };
        // The ASCII column starts at the first quote.
        let words_part = words_part.split('\'').next().unwrap_or("");
        for word in words_part.split_whitespace() {
            let word = word.trim_end_matches(')');
            if word.len() != 8 {
                continue;
            }
            let Ok(value) = u32::from_str_radix(word, 16) else {
                continue;
            };
            bytes.extend_from_slice(&value.to_le_bytes());
            if bytes.len() > 64 * 1024 {
                return Err("reply larger than 64 KiB".into());
            }
        }
    }
    if bytes.len() < 4 {
        return Err("reply has no status word".into());
    }
    let exception = i32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    if exception != 0 {
        return Err(format!(
            "the service answered with exception code {exception} (often: permission denied)"
        ));
    }
    if bytes.len() < 8 {
        return Err("reply has no string".into());
    }
    let len = i32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    let units_end = 8 + len * 2;
    if bytes.len() < units_end {
        return Err(format!(
            "string of {len} units does not fit in a {}-byte reply",
            bytes.len()
        ));
    }
    let units: Vec<u16> = bytes[8..units_end]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units)
        .map(Some)
        .map_err(|_| "string is not valid UTF-16".to_string())
}

/// One row of `content query`: `Row: N key=value, key=value`. Values may contain `, ` themselves, so
/// columns are split only where `, ` is followed by one of the `expected` column names and `=`.
pub fn content_rows(text: &str, expected: &[&str]) -> Vec<BTreeMap<String, String>> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim_end_matches('\r').strip_prefix("Row: ") else {
            continue;
        };
        let Some((_, mut rest)) = rest.split_once(' ') else {
            continue;
        };
        let mut row = BTreeMap::new();
        while let Some((key, after)) = rest.split_once('=') {
            // The value runs until the next `, COLUMN=`.
            let mut end = after.len();
            for col in expected {
                let marker = format!(", {col}=");
                if let Some(pos) = after.find(&marker) {
                    end = end.min(pos);
                }
            }
            row.insert(key.to_string(), after[..end].to_string());
            if end == after.len() {
                break;
            }
            rest = &after[end + 2..];
        }
        rows.push(row);
    }
    rows
}

/// `date +%s` prints the epoch seconds.
pub fn epoch_seconds(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getprop_lines() {
        let props = getprop_all(
            "[ro.product.model]: [Pixel 7]\n[ro.build.version.sdk]: [33]\ngarbage\n[broken: [x]\n",
        );
        assert_eq!(
            props.get("ro.product.model").map(String::as_str),
            Some("Pixel 7")
        );
        assert_eq!(
            props.get("ro.build.version.sdk").map(String::as_str),
            Some("33")
        );
        assert_eq!(props.len(), 2);
    }

    /// Builds the dump the way `service call` prints a Parcel holding `status, String16(s)`.
    fn dump_of(s: &str) -> String {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0i32.to_le_bytes());
        let units: Vec<u16> = s.encode_utf16().collect();
        bytes.extend_from_slice(&(units.len() as i32).to_le_bytes());
        for u in units.iter().chain(std::iter::once(&0u16)) {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        while bytes.len() % 4 != 0 {
            bytes.push(0);
        }
        let mut out = String::from("Result: Parcel(\n");
        for (i, chunk) in bytes.chunks(16).enumerate() {
            out.push_str(&format!("  0x{:08x}: ", i * 16));
            for w in chunk.chunks(4) {
                let v = u32::from_le_bytes(w.try_into().unwrap());
                out.push_str(&format!("{v:08x} "));
            }
            out.push_str("'................')\n");
        }
        out.push(')');
        out
    }

    #[test]
    fn parcel_string_round_trip() {
        let text = dump_of("356938035643809");
        assert_eq!(
            parcel_string16(&text).unwrap().as_deref(),
            Some("356938035643809")
        );
    }

    #[test]
    fn parcel_exception_is_an_error() {
        let text = "Result: Parcel(ffffffff 00000000   '........')";
        assert!(parcel_string16(text).is_err());
    }

    #[test]
    fn parcel_garbage_never_panics() {
        for text in [
            "",
            "Result: Parcel(",
            "Result: Parcel(00000000 7fffffff)",
            "Parcel(zzzz)",
        ] {
            let _ = parcel_string16(text);
        }
        assert!(parcel_string16("Result: Parcel(00000000 7fffffff)").is_err());
    }

    #[test]
    fn content_rows_with_commas_in_values() {
        let rows = content_rows(
            "Row: 0 _id=3, data1=Tan, Wei Ling, mimetype=vnd.android.cursor.item/name\n",
            &["_id", "data1", "mimetype"],
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["data1"], "Tan, Wei Ling");
        assert_eq!(rows[0]["_id"], "3");
    }
}
