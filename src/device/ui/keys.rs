//! Keys and typed text: the key names a scenario may use, with their `KeyEvent` codes, and how a
//! text must be cut and escaped for `input text`.
//!
//! Must not touch: the device (callers run the commands), scenario positions (validation reports).

/// `(name, keycode, first SDK that has it)`. Codes and API levels are AOSP's
/// `frameworks/base/core/java/android/view/KeyEvent.java` (`KEYCODE_*` constants and their
/// `@since`/"added in API level" notes); a name is the constant without `KEYCODE_`, so the digit
/// keys are `0`…`9` (KEYCODE_0 = 7 … KEYCODE_9 = 16), not raw codes.
pub const KEYS: &[(&str, u32, u32)] = &[
    ("HOME", 3, 1),
    ("BACK", 4, 1),
    ("CALL", 5, 1),
    ("ENDCALL", 6, 1),
    ("0", 7, 1),
    ("1", 8, 1),
    ("2", 9, 1),
    ("3", 10, 1),
    ("4", 11, 1),
    ("5", 12, 1),
    ("6", 13, 1),
    ("7", 14, 1),
    ("8", 15, 1),
    ("9", 16, 1),
    ("STAR", 17, 1),
    ("POUND", 18, 1),
    ("DPAD_UP", 19, 1),
    ("DPAD_DOWN", 20, 1),
    ("DPAD_LEFT", 21, 1),
    ("DPAD_RIGHT", 22, 1),
    ("DPAD_CENTER", 23, 1),
    ("VOLUME_UP", 24, 1),
    ("VOLUME_DOWN", 25, 1),
    ("POWER", 26, 1),
    ("CAMERA", 27, 1),
    ("CLEAR", 28, 1),
    ("TAB", 61, 1),
    ("SPACE", 62, 1),
    ("ENTER", 66, 1),
    ("DEL", 67, 1),
    ("MENU", 82, 1),
    ("NOTIFICATION", 83, 1),
    ("SEARCH", 84, 1),
    ("PAGE_UP", 92, 9),
    ("PAGE_DOWN", 93, 9),
    ("ESCAPE", 111, 11),
    ("FORWARD_DEL", 112, 11),
    ("MOVE_HOME", 122, 11),
    ("MOVE_END", 123, 11),
    ("APP_SWITCH", 187, 11),
    ("SLEEP", 223, 20),
    ("WAKEUP", 224, 20),
];

/// A key by name, `KEYCODE_` prefix and case ignored: `(canonical name, code, first SDK)`.
pub fn key(name: &str) -> Option<(&'static str, u32, u32)> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("KEYCODE_").unwrap_or(&upper);
    KEYS.iter().copied().find(|(n, _, _)| *n == bare)
}

/// Key names for suggestions and help.
pub fn key_names() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(n, _, _)| *n)
}

/// Longest piece of text per `input text` command: keeps command lines short on old shells.
const CHUNK_CHARS: usize = 200;

/// Why a text cannot be typed with `input text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeError {
    /// `input text` maps characters through the virtual keyboard's key character map
    /// (`KeyCharacterMap.VIRTUAL_KEYBOARD`), which has printable ASCII only: anything else is
    /// dropped or fails on the device. Holds the offending character's position (1-based).
    NotTypeable { position: usize },
}

/// The arguments of the `input text` commands that type `text` exactly.
///
/// AOSP's `Input.sendText` (frameworks/base cmds/input/src/com/android/commands/input/Input.java,
/// 4.1–11; InputShellCommand.java from 12) turns `%s` into a space and types every other
/// character through the virtual key map. So: a space is sent as `%s` (the form every release
/// reads back as a space, whatever the shell does with blanks), and a literal `%` followed by `s` is cut between two commands so the
/// device never sees them together. Each argument still needs shell quoting by the caller.
pub fn input_text_chunks(text: &str) -> Result<Vec<String>, TypeError> {
    if let Some(i) = text.chars().position(|c| !(' '..='~').contains(&c)) {
        return Err(TypeError::NotTypeable { position: i + 1 });
    }
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    let mut previous = None;
    for c in text.chars() {
        // A `%` that ended the previous character and this `s` must not meet in one command.
        if (previous == Some('%') && c == 's') || current_chars >= CHUNK_CHARS {
            chunks.push(std::mem::take(&mut current));
            current_chars = 0;
        }
        if c == ' ' {
            current.push_str("%s");
        } else {
            current.push(c);
        }
        current_chars += 1;
        previous = Some(c);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What AOSP's `Input.sendText` makes of one argument: `%s` becomes a space (the loop as in
    /// Input.java, transcribed), everything else stays.
    fn device_types(arg: &str) -> String {
        let mut buff: Vec<char> = arg.chars().collect();
        let mut escape = false;
        let mut i = 0usize;
        while i < buff.len() {
            if escape {
                escape = false;
                if buff[i] == 's' {
                    buff[i] = ' ';
                    buff.remove(i - 1);
                    i -= 1;
                }
            }
            if buff[i] == '%' {
                escape = true;
            }
            i += 1;
        }
        buff.into_iter().collect()
    }

    #[test]
    fn typed_text_arrives_exactly() {
        for text in [
            "hello",
            "tattle canary 1f2e3d4c",
            "100%s sure",
            "%s",
            "%%s",
            "% s",
            "50% off %",
            "%",
            "a'b\"c`d$e\\f;g|h&i(j)k<l>m*n?o~p#q!",
            "  two  spaces  ",
        ] {
            let chunks = input_text_chunks(text).unwrap();
            let typed: String = chunks.iter().map(|c| device_types(c)).collect();
            assert_eq!(typed, text, "{chunks:?}");
            for c in &chunks {
                assert!(!c.contains(' '), "a space reached the device: {c:?}");
            }
        }
        assert_eq!(input_text_chunks("a b").unwrap(), ["a%sb"]);
        assert_eq!(input_text_chunks("5%s").unwrap(), ["5%", "s"]);
        assert!(input_text_chunks("").unwrap().is_empty());
        let long = "x".repeat(450);
        let chunks = input_text_chunks(&long).unwrap();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.concat(), long);
    }

    #[test]
    fn untypeable_text_is_refused_with_its_position() {
        assert_eq!(
            input_text_chunks("Zoë"),
            Err(TypeError::NotTypeable { position: 3 })
        );
        assert_eq!(
            input_text_chunks("line\nbreak"),
            Err(TypeError::NotTypeable { position: 5 })
        );
        assert_eq!(
            input_text_chunks("张伟"),
            Err(TypeError::NotTypeable { position: 1 })
        );
    }

    #[test]
    fn key_names() {
        assert_eq!(key("enter"), Some(("ENTER", 66, 1)));
        assert_eq!(key("KEYCODE_DPAD_RIGHT"), Some(("DPAD_RIGHT", 22, 1)));
        assert_eq!(key("0"), Some(("0", 7, 1)));
        assert_eq!(key("WAKEUP").map(|k| k.2), Some(20));
        assert_eq!(key("66"), None, "raw codes are not names");
        assert_eq!(key("ENTRE"), None);
        // Names are unique and codes match KeyEvent's digits run.
        let mut names: Vec<&str> = super::key_names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYS.len());
        for d in 0..10u32 {
            assert_eq!(key(&d.to_string()).unwrap().1, 7 + d);
        }
    }
}
