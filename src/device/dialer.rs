//! The IMEI from the screen, for builds that refuse it to the shell: the dialer's `*#06#` code.
//!
//! Owns the sequence: wake and unlock the screen (swipe locks only), open the dial pad
//! (`am start -a android.intent.action.DIAL`), type `*#06#` with key events (the dialer ignores
//! codes that arrive in an intent — `tel:*%2306%23` only fills the pad — and acts on digits typed
//! into it; key events also keep `#`, a comment in sh, out of the command line), read the
//! dialog with `uiautomator dump`, close it with its button (the IMEI dialog is not cancelable:
//! BACK does nothing), and go HOME, where a run starts from.
//!
//! What the dialog shows (AOSP Dialer `SpecialCharSequenceMgr.handleDeviceIdDisplay`): an alert
//! titled IMEI (or MEID) whose message lists one device ID per phone, slot 0 first; vendors add
//! labels (`IMEI1`, `IMEI 2`), an `/SV` suffix or barcodes. So every 15-digit run with a valid
//! Luhn digit is an IMEI, in order of appearance, and a 14-hex-digit run is a MEID.
//!
//! Must not touch: the values in logs or errors (counts and kinds only), anything but the
//! dialer's own screen.

use std::time::Duration;

use super::screen::{self, UiNode as Node};
use super::shell::Shell;
use super::validate;

const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the dialog may take to appear (a dump alone takes 1–2 s on a phone).
const DIALOG_WAIT: Duration = Duration::from_secs(8);

/// The device IDs the `*#06#` dialog showed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DialogIds {
    /// IMEIs in the order shown (slot 0 first).
    pub imeis: Vec<String>,
    pub meids: Vec<String>,
}

impl std::fmt::Debug for DialogIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialogIds")
            .field("imeis", &self.imeis.len())
            .field("meids", &self.meids.len())
            .finish()
    }
}

/// Types `*#06#` on the dial pad and reads the dialog. `Err` says, in words, why no ID could be
/// read; the screen is left at HOME either way.
pub async fn read_device_ids(adb: &impl Shell, sdk: u32) -> Result<DialogIds, String> {
    let result = read_inner(adb, sdk).await;
    // HOME whatever happened: a run starts from the launcher, and the dial pad must not be left
    // open with a code in it.
    let _ = run(adb, "input keyevent 3").await;
    result
}

async fn read_inner(adb: &impl Shell, sdk: u32) -> Result<DialogIds, String> {
    // KEYCODE_WAKEUP (224) exists from API 20; on 4.4 only POWER toggles, so it is pressed only
    // when the screen is off.
    if sdk >= 20 {
        run(adb, "input keyevent 224").await?;
    } else if run(adb, "dumpsys power")
        .await
        .is_ok_and(|t| t.contains("mScreenOn=false"))
    {
        run(adb, "input keyevent 26").await?;
    }
    // A swipe lock goes with `wm dismiss-keyguard` (6.0+) or MENU (older); a PIN does not.
    if sdk >= 23 {
        let _ = run(adb, "wm dismiss-keyguard").await;
    } else {
        let _ = run(adb, "input keyevent 82").await;
    }
    let started = run(adb, "am start -a android.intent.action.DIAL").await?;
    if started.contains("Error") || started.contains("unable to resolve") {
        return Err("the device has no dialer to type `*#06#` into".into());
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // KEYCODE_STAR 17, KEYCODE_POUND 18, KEYCODE_0 7, KEYCODE_6 13: one key a command, since
    // `input keyevent` takes several codes only on newer releases.
    for key in [17, 18, 7, 13, 18] {
        run(adb, &format!("input keyevent {key}")).await?;
    }
    let deadline = tokio::time::Instant::now() + DIALOG_WAIT;
    let mut last_error = String::new();
    let mut locked = false;
    loop {
        match screen::dump(adb, STEP_TIMEOUT).await {
            Ok(nodes) => {
                let ids = ids_in(&nodes);
                locked = nodes.iter().any(is_keyguard);
                if !ids.imeis.is_empty() || !ids.meids.is_empty() {
                    close_dialog(adb, &nodes).await;
                    return Ok(ids);
                }
                last_error.clear();
            }
            Err(e) => last_error = e.to_string(),
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    Err(if locked {
        "the `*#06#` dialog showed none: the phone is locked (unlock it and run again)".into()
    } else if !last_error.is_empty() {
        format!("the screen could not be read ({last_error})")
    } else {
        "the `*#06#` dialog showed none".into()
    })
}

/// Every IMEI and MEID in the texts of a screen, in order, without repeats.
pub fn ids_in(nodes: &[Node]) -> DialogIds {
    let mut ids = DialogIds::default();
    for node in nodes {
        for text in [&node.text, &node.content_desc] {
            let meid_label = text.to_ascii_uppercase().contains("MEID");
            for token in tokens(text) {
                if token.len() == 15
                    && validate::identifier(tattle_analysis::identifier::kinds::IMEI, &token)
                        .is_ok()
                {
                    if !ids.imeis.contains(&token) {
                        ids.imeis.push(token);
                    }
                } else if token.len() == 14
                    && (meid_label || validate::looks_like_meid(&token))
                    && let Ok(meid) = validate::identifier(validate::MEID, &token)
                    && !ids.meids.contains(&meid)
                {
                    ids.meids.push(meid);
                }
            }
        }
    }
    ids
}

/// Runs of hex digits in `text`; digits split by single spaces are joined when that makes 15 (an
/// IMEI shown in groups, `35 693803 564380 9`).
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for run in text.split(|c: char| !(c.is_ascii_hexdigit() || c == ' ')) {
        let joined: String = run.chars().filter(|c| *c != ' ').collect();
        if joined.len() == 15 && joined.bytes().all(|b| b.is_ascii_digit()) && run.contains(' ') {
            out.push(joined);
        } else {
            out.extend(run.split(' ').filter(|t| !t.is_empty()).map(str::to_string));
        }
    }
    out
}

fn is_keyguard(node: &Node) -> bool {
    node.package == "com.android.systemui" && node.resource_id.contains("keyguard")
}

/// Taps the dialog's positive button (`android:id/button1`, else a clickable OK), else presses
/// BACK (which a cancelable vendor dialog honours).
async fn close_dialog(adb: &impl Shell, nodes: &[Node]) {
    let button = nodes
        .iter()
        .find(|n| n.resource_id == "android:id/button1")
        .or_else(|| {
            nodes.iter().find(|n| {
                n.clickable && matches!(n.text.trim().to_ascii_uppercase().as_str(), "OK" | "CLOSE")
            })
        })
        .and_then(|n| n.bounds);
    let command = match button {
        Some(b) => {
            let (x, y) = b.centre();
            format!("input tap {x} {y}")
        }
        None => "input keyevent 4".to_string(),
    };
    let _ = run(adb, &command).await;
}

/// Runs a command whose output is not an identifier; `Err` in words.
async fn run(adb: &impl Shell, command: &str) -> Result<String, String> {
    match adb.run(command, STEP_TIMEOUT).await {
        Ok(out) => Ok(format!("{}{}", out.stdout_text(), out.stderr_text())),
        Err(e) => Err(format!(
            "`{}` failed: {e}",
            command
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_node(text: &str) -> Node {
        Node {
            text: text.into(),
            ..Node::default()
        }
    }

    #[test]
    fn imeis_in_dialog_texts() {
        // AOSP: one ID per line under the IMEI title; a vendor's labels, SV suffix and groups.
        let nodes = [
            text_node("IMEI"),
            text_node("490154203237518\n356938035643809"),
            text_node("IMEI1: 490154203237518/01"),
            text_node("IMEI 2: 35 693803 564380 9"),
            text_node("MEID: A0000012345678"),
            text_node("SV 01 · 1234567890"),
        ];
        let ids = ids_in(&nodes);
        assert_eq!(ids.imeis, ["490154203237518", "356938035643809"]);
        assert_eq!(ids.meids, ["A0000012345678"]);
        assert!(
            ids_in(&[text_node("IMEI 490154203237517")])
                .imeis
                .is_empty()
        );
        assert!(format!("{ids:?}").contains("imeis: 2"));
    }
}
