//! The Android emulator's console, for `receive-sms`: an SMS that arrives from outside the phone.
//!
//! Owns what `sms send` needs beyond the console itself: a number the console accepts and the text
//! in its escapes (`\n`, `\xNN`, `\uNNNN`, `\\`). The conversation — the console's port from the
//! serial, its token file, banner, `auth`, the command and its `OK`/`KO:` — is
//! [`crate::emulator_console`]'s, the client the `emulator` capture source uses too.
//!
//! Exercised against the virtual handset's console, which delivers `sms send` to its inbox
//! (tests/it/emulator_console.rs), not against a real emulator: none was available.
//!
//! Must not touch: adb, the capture, anything but 127.0.0.1.

use std::path::PathBuf;

use crate::emulator_console::{ConsoleError, ConsoleSettings, EmulatorConsole, Outcome};

/// The console port of a device, when its serial is an emulator's (`emulator-5554`).
pub(super) fn console_port(serial: &str) -> Option<u16> {
    serial
        .strip_prefix("emulator-")?
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
}

/// Where the emulator keeps its console token: `$HOME/.emulator_console_auth_token`, as the
/// emulator's `System::getHomeDirectory()` reads it (the one rule for every console client).
pub(super) fn token_path() -> Option<PathBuf> {
    crate::emulator_console::default_token_file()
}

/// A number the console accepts: `[+](0-9)*`, at least one digit.
pub(super) fn valid_number(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The text as `sms send` reads it: backslashes doubled, line breaks `\n`, other control
/// characters `\xNN`, non-ASCII `\uNNNN`. `None` for characters beyond the BMP (the console's
/// escapes are 16-bit; whether it pairs surrogates was not checked).
pub(super) fn escape_text(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_ascii() => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            _ => return None,
        }
    }
    Some(out)
}

/// Delivers an SMS from `from` with `text` to the emulator whose console listens on `port`,
/// authenticating with `token_file` (the emulator's own when `None`).
pub(super) async fn sms_send(
    port: u16,
    token_file: Option<PathBuf>,
    from: &str,
    text: &str,
) -> Result<(), ConsoleError> {
    let mut settings = ConsoleSettings::new(port);
    if let Some(path) = token_file {
        settings = settings.with_token_file(path);
    }
    let escaped = escape_text(text).ok_or_else(|| ConsoleError::Refused {
        port,
        command: "sms send".into(),
        reply: "the text has characters beyond U+FFFF, which the console's escapes cannot carry"
            .into(),
    })?;
    let mut console = EmulatorConsole::connect(&settings).await?;
    let reply = console
        .command(&format!("sms send {from} {escaped}"))
        .await?;
    console.quit().await;
    match reply.outcome {
        Outcome::Ok => Ok(()),
        Outcome::Ko(ko) | Outcome::UnterminatedKo(ko) => Err(ConsoleError::Refused {
            port,
            command: "sms send".into(),
            reply: tattle_analysis::sanitize(&ko),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_numbers_and_text() {
        assert_eq!(console_port("emulator-5554"), Some(5554));
        assert_eq!(console_port("127.0.0.1:5555"), None);
        assert_eq!(console_port("emulator-x"), None);
        assert!(valid_number("+6598765432") && valid_number("5554"));
        assert!(!valid_number("+") && !valid_number("65 98") && !valid_number(""));
        assert_eq!(escape_text("a\tb\u{7f}").unwrap(), "a\\x09b\\x7f");
        assert_eq!(escape_text("🙂"), None);
    }
}
