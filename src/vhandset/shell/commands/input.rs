//! `input` (`keyevent`, `text`, and the touch commands that do nothing here), with an optional input
//! source first. Keys drive the messaging app's compose screen: DPAD_RIGHT/TAB focus the send button,
//! ENTER there sends the SMS (stored in the sent box, `SmsSent` raised), BACK/HOME close the screen.
//!
//! Must not touch: how the compose screen is opened (`activity`), the SMS table's format (`providers`).

use std::sync::Arc;

use super::CmdResult;
use crate::vhandset::HandsetEvent;
use crate::vhandset::shell::{Handset, now_ms};

fn keycode(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    Some(match name.trim_start_matches("KEYCODE_") {
        "HOME" => 3,
        "BACK" => 4,
        "DPAD_UP" => 19,
        "DPAD_DOWN" => 20,
        "DPAD_LEFT" => 21,
        "DPAD_RIGHT" => 22,
        "DPAD_CENTER" => 23,
        "TAB" => 61,
        "ENTER" => 66,
        "DEL" => 67,
        "MENU" => 82,
        "WAKEUP" => 224,
        "POWER" => 26,
        _ => return None,
    })
}

pub(super) fn input_cmd(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    // Optional input source first (`input keyboard keyevent 66`).
    let mut args: &[String] = args;
    if args.first().is_some_and(|a| {
        matches!(
            a.as_str(),
            "keyboard"
                | "touchscreen"
                | "touchpad"
                | "mouse"
                | "dpad"
                | "gamepad"
                | "stylus"
                | "trackball"
                | "joystick"
                | "touchnavigation"
        )
    }) {
        args = &args[1..];
    }
    let mut res = CmdResult::default();
    match args.first().map(String::as_str) {
        Some("keyevent") => {
            let mut st = handset.state();
            for k in args[1..].iter().filter(|a| !a.starts_with("--")) {
                let Some(code) = keycode(k) else {
                    res.err
                        .extend(format!("Error: Unknown keycode: {k}\n").into_bytes());
                    res.code = 1;
                    break;
                };
                match (code, st.compose.as_mut()) {
                    (22 | 61, Some(c)) => c.send_focused = true,
                    (21, Some(c)) => c.send_focused = false,
                    (66 | 23, Some(c)) if c.send_focused && !c.body.is_empty() => {
                        let (to, body) = (c.to.clone(), c.body.clone());
                        st.compose = None;
                        if st.providers.store_sent_sms(&to, &body, now_ms()).is_ok() {
                            res.events.push(HandsetEvent::SmsSent { to, body });
                        }
                    }
                    // The send button is disabled while the message is empty.
                    (66 | 23, Some(c)) if c.send_focused => {}
                    (66, Some(c)) => c.body.push('\n'),
                    (67, Some(c)) if !c.send_focused => {
                        c.body.pop();
                    }
                    (3 | 4, Some(_)) => st.compose = None,
                    _ => {}
                }
            }
        }
        Some("text") => {
            let Some(text) = args.get(1) else {
                return CmdResult::fail("Error: text requires an argument\n", 1);
            };
            let mut st = handset.state();
            if let Some(c) = st.compose.as_mut()
                && !c.send_focused
                && c.body.len() + text.len() <= 64 * 1024
            {
                // `input text` turns %s into spaces.
                c.body.push_str(&text.replace("%s", " "));
            }
        }
        Some(
            "tap" | "swipe" | "draganddrop" | "press" | "roll" | "motionevent" | "keycombination",
        ) => {}
        _ => {
            return CmdResult::fail("Usage: input [<source>] <command> [<arg>...]\n", 1);
        }
    }
    res
}
