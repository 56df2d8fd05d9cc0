//! What is on the device's screen, for code that reaches the device through the [`Shell`] trait (the
//! `*#06#` IMEI dialog): `uiautomator dump` written to a file and printed, the XML cut out of what
//! the command printed, and parsed by the one strict parser, [`super::ui::parse_dump`] (AOSP
//! frameworks/testing uiautomator `AccessibilityNodeInfoDumper`), which the UI steps use too.
//!
//! Must not touch: what a screen means (finding a dialog or a button is the caller's), input
//! (taps and keys are the caller's), the XML grammar (that is `ui::dump`).

use std::time::Duration;

use super::DeviceError;
use super::shell::Shell;
pub use super::ui::UiNode;

/// Where the dump is written on the device: shell-writable on every release (uiautomator's own
/// default, /sdcard/window_dump.xml, needs storage). Written to a file because `/dev/tty` does not
/// exist for a command without a terminal (shell v2 raw, `exec:`).
pub const DUMP_PATH: &str = "/data/local/tmp/tattle-window.xml";

/// The XML of a dump in what the dump command printed: `uiautomator dump` says where it wrote
/// ("UI hierchary dumped to: …", AOSP's spelling) before the file is printed, and prints its
/// errors instead ("ERROR: null root node returned by UiTestAutomationBridge." while the screen
/// animates), which are returned as they are.
pub fn xml_in(printed: &str) -> Result<&str, String> {
    let Some(start) = printed.find("<?xml").or_else(|| printed.find("<hierarchy")) else {
        let first = printed
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        return Err(format!(
            "no view hierarchy in the dump: {}",
            first.chars().take(200).collect::<String>()
        ));
    };
    let end = printed
        .rfind("</hierarchy>")
        .map_or(printed.len(), |e| e + "</hierarchy>".len());
    Ok(&printed[start..end.max(start)])
}

/// Takes one dump and parses it.
pub async fn dump(adb: &impl Shell, timeout: Duration) -> Result<Vec<UiNode>, DeviceError> {
    let command =
        format!("uiautomator dump {DUMP_PATH} >/dev/null && cat {DUMP_PATH}; rm -f {DUMP_PATH}");
    let out = adb.run(&command, timeout).await?;
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    let unexpected = |detail: String| DeviceError::Unexpected {
        what: "uiautomator dump".into(),
        detail,
    };
    let xml = xml_in(&text).map_err(unexpected)?;
    super::ui::parse_dump(xml.as_bytes()).map_err(|e| unexpected(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape `AccessibilityNodeInfoDumper` writes (one line, nested nodes, self-closing
    /// leaves), with the dump's own "UI hierchary dumped to:" line before it (`uiautomator dump`
    /// prints it when writing to a file that is then printed).
    const DUMP: &str = "UI hierchary dumped to: /dev/tty\n<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\"><node index=\"0\" text=\"\" resource-id=\"\" class=\"android.widget.FrameLayout\" package=\"com.android.dialer\" content-desc=\"\" checkable=\"false\" checked=\"false\" clickable=\"false\" enabled=\"true\" focusable=\"false\" focused=\"false\" scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[0,0][1080,2400]\"><node index=\"0\" text=\"IMEI\" resource-id=\"android:id/alertTitle\" class=\"android.widget.TextView\" package=\"com.android.dialer\" content-desc=\"\" checkable=\"false\" checked=\"false\" clickable=\"false\" enabled=\"true\" focusable=\"false\" focused=\"false\" scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[96,1000][984,1080]\" /><node index=\"1\" text=\"OK &amp; close &#x263A;\" resource-id=\"android:id/button1\" class=\"android.widget.Button\" package=\"com.android.dialer\" content-desc=\"a &quot;b&quot; &lt;c&gt;\" checkable=\"false\" checked=\"false\" clickable=\"true\" enabled=\"true\" focusable=\"true\" focused=\"false\" scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[800,1300][984,1400]\" /></node></hierarchy>";

    #[test]
    fn the_dump_printed_after_its_file_line_is_parsed_strictly() {
        let nodes = super::super::ui::parse_dump(xml_in(DUMP).unwrap().as_bytes()).unwrap();
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[1].text, "IMEI");
        assert_eq!(nodes[1].resource_id, "android:id/alertTitle");
        let button = &nodes[2];
        assert_eq!(button.text, "OK & close \u{263A}");
        assert_eq!(button.content_desc, "a \"b\" <c>");
        assert!(button.clickable && button.enabled);
        assert_eq!(button.bounds.unwrap().centre(), (892, 1350));
        assert_eq!(nodes[0].package, "com.android.dialer");
    }

    #[test]
    fn errors_are_said_as_printed() {
        let err =
            xml_in("ERROR: null root node returned by UiTestAutomationBridge.\n").unwrap_err();
        assert!(err.contains("null root node"), "{err}");
        assert!(xml_in("").unwrap_err().contains("no output"));
        // Garbage after the marker is the strict parser's to refuse, never a panic.
        for text in [
            "<hierarchy><node text=\"unterminated",
            "<hierarchy><node text=>",
            "<?xml",
        ] {
            let _ = super::super::ui::parse_dump(xml_in(text).unwrap().as_bytes());
        }
    }
}
