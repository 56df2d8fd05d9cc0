//! What is on the device's screen: `uiautomator dump` taken and parsed into nodes (text,
//! resource-id, content-desc, class, package, clickable, bounds).
//!
//! Owns the dump command and the parser of its XML (AOSP frameworks/testing uiautomator
//! `AccessibilityNodeInfoDumper`: `<hierarchy rotation="0">` of nested `<node index text
//! resource-id class package content-desc checkable checked clickable enabled focusable focused
//! scrollable long-clickable password selected bounds="[x1,y1][x2,y2]">`; `resource-id` exists
//! from 4.3 on). Shared with whoever needs the screen (the `*#06#` IMEI dialog here; UI steps).
//!
//! The XML is untrusted (a hostile app controls its texts): the parser reads only `<node …>`
//! tags and their quoted attributes, bounded in size and count, never panics; entities are
//! decoded (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#N;`, `&#xN;`), anything else is kept
//! as written.
//!
//! Must not touch: what a screen means (finding a dialog or a button is the caller's), input
//! (taps and keys are the caller's).

use std::time::Duration;

use super::DeviceError;
use super::shell::Shell;

/// Where the dump is written on the device: shell-writable on every release (uiautomator's own
/// default, /sdcard/window_dump.xml, needs storage). Written to a file because `/dev/tty` does not
/// exist for a command without a terminal (shell v2 raw, `exec:`).
pub const DUMP_PATH: &str = "/data/local/tmp/tattle-window.xml";

/// Most nodes kept from one dump (a long list view has a few hundred).
const MAX_NODES: usize = 20_000;
/// Largest dump read.
const MAX_DUMP_BYTES: usize = 8 * 1024 * 1024;

/// A rectangle on the screen, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
}

impl Bounds {
    /// The point a tap on this node goes to.
    pub fn center(&self) -> (i32, i32) {
        (
            self.left + (self.right - self.left) / 2,
            self.top + (self.bottom - self.top) / 2,
        )
    }

    /// `[x1,y1][x2,y2]`.
    pub fn parse(text: &str) -> Option<Bounds> {
        let nums: Vec<i32> = text
            .split(['[', ']', ','])
            .filter(|s| !s.is_empty())
            .map(|s| s.trim().parse().ok())
            .collect::<Option<_>>()?;
        let [left, top, right, bottom] = nums.as_slice() else {
            return None;
        };
        Some(Bounds {
            left: *left,
            top: *top,
            right: *right,
            bottom: *bottom,
        })
    }
}

/// One view on the screen.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub text: String,
    /// `android:id/button1`, `com.android.dialer:id/digits`; empty when the view has none.
    pub resource_id: String,
    pub content_desc: String,
    pub class: String,
    pub package: String,
    pub clickable: bool,
    pub enabled: bool,
    pub bounds: Option<Bounds>,
}

impl std::fmt::Debug for Node {
    // Texts may be identifiers (an IMEI dialog): sizes only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("resource_id", &self.resource_id)
            .field("class", &self.class)
            .field("package", &self.package)
            .field("text_chars", &self.text.chars().count())
            .field("clickable", &self.clickable)
            .field("bounds", &self.bounds)
            .finish()
    }
}

/// Parses a `uiautomator dump`: every `<node>` in document order. `Err` when the text holds no
/// hierarchy (uiautomator's own errors, e.g. `ERROR: null root node returned by
/// UiTestAutomationBridge.` while the screen animates).
pub fn parse_dump(xml: &str) -> Result<Vec<Node>, String> {
    let xml = &xml[..floor_char_boundary(xml, MAX_DUMP_BYTES)];
    let Some(start) = xml.find("<hierarchy") else {
        let first = xml.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!(
            "no UI hierarchy in the dump ({})",
            tattle_analysis::sanitize(&first.chars().take(120).collect::<String>())
        ));
    };
    let mut nodes = Vec::new();
    let mut rest = &xml[start..];
    while let Some(at) = rest.find("<node") {
        rest = &rest[at + "<node".len()..];
        // The tag ends at the first `>` outside quotes.
        let (attrs, after) = split_tag(rest);
        rest = after;
        nodes.push(node_of(attributes(attrs)));
        if nodes.len() >= MAX_NODES {
            break;
        }
    }
    Ok(nodes)
}

/// Takes a dump of the current screen (written to [`DUMP_PATH`], printed, removed).
pub async fn dump(adb: &impl Shell, timeout: Duration) -> Result<Vec<Node>, DeviceError> {
    let command =
        format!("uiautomator dump {DUMP_PATH} >/dev/null && cat {DUMP_PATH}; rm -f {DUMP_PATH}");
    let out = adb.run(&command, timeout).await?;
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    parse_dump(&text).map_err(|detail| DeviceError::Unexpected {
        what: "uiautomator dump".into(),
        detail,
    })
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The attribute text of a tag and what follows it.
fn split_tag(text: &str) -> (&str, &str) {
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return (&text[..i], &text[i + 1..]),
            _ => {}
        }
    }
    (text, "")
}

/// `name="value"` pairs of a tag, values decoded.
fn attributes(text: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim().trim_end_matches('/').trim();
        let after = rest[eq + 1..].trim_start();
        let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let body = &after[1..];
        let Some(end) = body.find(q) else {
            break;
        };
        let name = name.rsplit(char::is_whitespace).next().unwrap_or(name);
        out.push((name, decode_entities(&body[..end])));
        rest = &body[end + 1..];
    }
    out
}

fn node_of(attrs: Vec<(&str, String)>) -> Node {
    let mut node = Node {
        enabled: true,
        ..Node::default()
    };
    for (name, value) in attrs {
        match name {
            "text" => node.text = value,
            "resource-id" => node.resource_id = value,
            "content-desc" => node.content_desc = value,
            "class" => node.class = value,
            "package" => node.package = value,
            "clickable" => node.clickable = value == "true",
            "enabled" => node.enabled = value != "false",
            "bounds" => node.bounds = Bounds::parse(&value),
            _ => {}
        }
    }
    node
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape `AccessibilityNodeInfoDumper` writes (one line, nested nodes, self-closing
    /// leaves), with the dump's own "UI hierchary dumped to:" line before it (`uiautomator dump`
    /// prints it when writing to a file that is then printed).
    const DUMP: &str = "UI hierchary dumped to: /dev/tty\n<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\"><node index=\"0\" text=\"\" resource-id=\"\" class=\"android.widget.FrameLayout\" package=\"com.android.dialer\" content-desc=\"\" checkable=\"false\" checked=\"false\" clickable=\"false\" enabled=\"true\" focusable=\"false\" focused=\"false\" scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[0,0][1080,2400]\"><node index=\"0\" text=\"IMEI\" resource-id=\"android:id/alertTitle\" class=\"android.widget.TextView\" package=\"com.android.dialer\" content-desc=\"\" checkable=\"false\" checked=\"false\" clickable=\"false\" enabled=\"true\" focusable=\"false\" focused=\"false\" scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[96,1000][984,1080]\" /><node index=\"1\" text=\"OK &amp; close &#x263A;\" resource-id=\"android:id/button1\" class=\"android.widget.Button\" package=\"com.android.dialer\" content-desc=\"a &quot;b&quot; &lt;c&gt;\" checkable=\"false\" checked=\"false\" clickable=\"true\" enabled=\"true\" focusable=\"true\" focused=\"false\" scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[800,1300][984,1400]\" /></node></hierarchy>";

    #[test]
    fn nodes_with_their_attributes() {
        let nodes = parse_dump(DUMP).unwrap();
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[1].text, "IMEI");
        assert_eq!(nodes[1].resource_id, "android:id/alertTitle");
        let button = &nodes[2];
        assert_eq!(button.text, "OK & close \u{263A}");
        assert_eq!(button.content_desc, "a \"b\" <c>");
        assert!(button.clickable && button.enabled);
        assert_eq!(button.bounds.unwrap().center(), (892, 1350));
        assert_eq!(nodes[0].package, "com.android.dialer");
    }

    #[test]
    fn errors_and_garbage() {
        let err =
            parse_dump("ERROR: null root node returned by UiTestAutomationBridge.\n").unwrap_err();
        assert!(err.contains("null root node"), "{err}");
        for text in [
            "<hierarchy><node text=\"unterminated",
            "<hierarchy><node text=>",
            "<hierarchy><node bounds=\"[1,2][3]\" text='x'/>",
            "<hierarchy><node text=\"&#xFFFFFFFF;&#99999999999;&\"/>",
            "<hierarchy>",
        ] {
            let _ = parse_dump(text);
        }
        let nodes = parse_dump("<hierarchy><node bounds=\"[1,2][3]\" text='x'/>").unwrap();
        assert_eq!(nodes[0].bounds, None);
        assert_eq!(nodes[0].text, "x");
        assert_eq!(
            parse_dump("<hierarchy><node text=\"&#xFFFFFFFF;&amp\"/>").unwrap()[0].text,
            "&#xFFFFFFFF;&amp"
        );
    }
}
