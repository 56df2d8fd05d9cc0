//! `input` (`tap`, `text`, `keyevent`, and the gestures that do nothing here), with an optional input
//! source first, and `uiautomator dump`: the commands that look at and act on the screens of
//! `shell::ui`. A tap hits the node under the point (the dialer's keys, the IMEI dialog's OK, the
//! messaging app's Send button, the contacts editor's fields and Save); `input text` types into the
//! focused field (`%s` is a space, as in Input.java); keys are the dialer's digits, BACK, HOME, DEL,
//! and on the compose screen DPAD_RIGHT/TAB + ENTER where the Send button is focusable.
//!
//! Must not touch: how screens are opened by intents (`activity`), the SMS and contacts tables' format
//! (`providers`).

use std::sync::Arc;

use super::CmdResult;
use crate::vhandset::apps::pcapdroid;
use crate::vhandset::shell::{Handset, fs, now_ms, now_secs, ui};

/// RunTestCommand.detailedOptions (SDK 30).
const RUNTEST_OPTIONS: &str = "    runtest <class spec> [options]\n    <class spec>: <JARS> < -c <CLASSES> | -e class <CLASSES> >\n      <JARS>: a list of jar files containing test classes and dependencies. If\n        the path is relative, it's assumed to be under /data/local/tmp. Use\n        absolute path if the file is elsewhere. Multiple files can be\n        specified, separated by space.\n      <CLASSES>: a list of test class names to run, separated by comma. To\n        a single method, use TestClass#testMethod format. The -e or -c option\n        may be repeated. This option is not required and if not provided then\n        all the tests in provided jars will be run automatically.\n    options:\n      --nohup: trap SIG_HUP, so test won't terminate even if parent process\n               is terminated, e.g. USB is disconnected.\n      -e debug [true|false]: wait for debugger to connect before starting.\n      -e runner [CLASS]: use specified test runner class instead. If\n        unspecified, framework default runner will be used.\n      -e <NAME> <VALUE>: other name-value pairs to be passed to test classes.\n        May be repeated.\n      -e outputFormat simple | -s: enabled less verbose JUnit style output.\n";

fn keycode(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    // KeyEvent.java's KEYCODE_ constants.
    Some(match name.trim_start_matches("KEYCODE_") {
        "HOME" => 3,
        "BACK" => 4,
        "0" => 7,
        "1" => 8,
        "2" => 9,
        "3" => 10,
        "4" => 11,
        "5" => 12,
        "6" => 13,
        "7" => 14,
        "8" => 15,
        "9" => 16,
        "STAR" => 17,
        "POUND" => 18,
        "DPAD_UP" => 19,
        "DPAD_DOWN" => 20,
        "DPAD_LEFT" => 21,
        "DPAD_RIGHT" => 22,
        "DPAD_CENTER" => 23,
        "POWER" => 26,
        "TAB" => 61,
        "ENTER" => 66,
        "DEL" => 67,
        "MENU" => 82,
        "WAKEUP" => 224,
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
    let send_button = handset.profile().persona.send_button;
    match args.first().map(String::as_str) {
        Some("keyevent") => {
            for k in args[1..].iter().filter(|a| !a.starts_with("--")) {
                let Some(code) = keycode(k) else {
                    res.err
                        .extend(format!("Error: Unknown keycode: {k}\n").into_bytes());
                    res.code = 1;
                    break;
                };
                // An emulated app's window in front handles its own keys (BACK on PCAPdroid's).
                if pcapdroid::on_key(handset, code) {
                    continue;
                }
                let mut st = handset.state();
                let st = &mut *st;
                let events = st.ui.key(code, send_button, &mut st.providers, now_ms());
                res.events.extend(events);
            }
        }
        Some("text") => {
            let Some(text) = args.get(1) else {
                return CmdResult::fail("Error: text requires an argument\n", 1);
            };
            // `input text` turns %s into spaces.
            handset.state().ui.type_text(&text.replace("%s", " "));
        }
        Some("tap") => {
            let (Some(x), Some(y)) = (
                args.get(1).and_then(|v| v.parse::<f32>().ok()),
                args.get(2).and_then(|v| v.parse::<f32>().ok()),
            ) else {
                return CmdResult::fail("Error: tap requires two coordinates\n", 1);
            };
            // An emulated app's window in front: the app acts on the tap (it starts captures).
            if pcapdroid::on_tap(handset, x as i32, y as i32) {
                return res;
            }
            let ctx = handset.ui_context();
            let mut st = handset.state();
            let st = &mut *st;
            let events = st
                .ui
                .tap(x as i32, y as i32, &ctx, &mut st.providers, now_ms());
            res.events.extend(events);
        }
        Some("swipe" | "draganddrop" | "press" | "roll" | "motionevent" | "keycombination") => {}
        _ => {
            return CmdResult::fail("Usage: input [<source>] <command> [<arg>...]\n", 1);
        }
    }
    res
}

/// `uiautomator dump [--compressed] [--windows] [FILE]` (cmds/uiautomator DumpCommand.java): the
/// active window's tree to FILE (default `$EXTERNAL_STORAGE/window_dump.xml` of the generation), then
/// `UI hierchary dumped to: PATH` (AOSP's spelling). `/dev/tty` and `/dev/stdout` print the XML first.
pub(super) fn uiautomator(handset: &Arc<Handset>, args: &[String], cwd: &str) -> CmdResult {
    let storage = handset.profile().generation.ui.external_storage;
    match args.first().map(String::as_str) {
        Some("dump") => {
            let mut file = format!("{storage}/window_dump.xml");
            for a in &args[1..] {
                if !a.starts_with('-') {
                    file = a.clone();
                }
            }
            // File.getAbsolutePath(): relative to the working directory, not normalized.
            let shown = if file.starts_with('/') {
                file.clone()
            } else {
                format!("{}/{file}", cwd.trim_end_matches('/'))
            };
            let xml = {
                let ctx = handset.ui_context();
                let st = handset.state();
                ui::dump_xml(&st.ui.tree(&ctx))
            };
            let mut out = Vec::new();
            if matches!(shown.as_str(), "/dev/tty" | "/dev/stdout") {
                out.extend_from_slice(xml.as_bytes());
            } else {
                let written = fs::normalize(&shown, "/").and_then(|p| {
                    handset
                        .state()
                        .fs
                        .write(&p, xml.into_bytes(), 0o660, now_secs())
                });
                if written.is_err() {
                    // DumpWindowToFile logs the IOException ("failed to dump window to file") and the
                    // command still reports the path.
                    tracing::debug!(path = %shown, "uiautomator: cannot write the dump");
                }
            }
            out.extend_from_slice(format!("UI hierchary dumped to: {shown}\n").as_bytes());
            CmdResult {
                out,
                ..Default::default()
            }
        }
        Some("events") => CmdResult::default(),
        // Launcher.HELP_COMMAND (SDK 30 com/android/commands/uiautomator/Launcher.java): on stderr,
        // each command's short help and detailed options.
        _ => CmdResult {
            err: format!(
                "Usage: uiautomator <subcommand> [options]\n\nAvailable subcommands:\n\nhelp: displays help message\n\nruntest: executes UI automation tests\n{RUNTEST_OPTIONS}\ndump: creates an XML dump of current UI hierarchy\n    dump [--verbose][file]\n      [--compressed]: dumps compressed layout information.\n      [file]: the location where the dumped XML should be stored, default is\n      {storage}/window_dump.xml\n\nevents: prints out accessibility events until terminated\n\n"
            )
            .into_bytes(),
            ..Default::default()
        },
    }
}
