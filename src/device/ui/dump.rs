//! `uiautomator dump` XML: parsing it into a flat list of nodes, finding a node by selector, and
//! describing a screen for an error message without leaking what it shows.
//!
//! The format is AOSP's `AccessibilityNodeInfoDumper` (frameworks/base,
//! cmds/uiautomator/library/core-src/com/android/uiautomator/core/AccessibilityNodeInfoDumper.java,
//! unchanged in shape from Android 4.3 to 15): an XML declaration, one `<hierarchy rotation="N">`
//! root, nested `<node …>` elements (self-closing for leaves) whose attributes are `index`, `text`,
//! `resource-id`, `class`, `package`, `content-desc`, the boolean states (`checkable` … `selected`)
//! and `bounds="[left,top][right,bottom]"` (`Rect.toShortString`), an optional `NAF="true"`.
//! Invisible children are not dumped; invalid XML characters were replaced by `.` on the device.
//!
//! The parser is written for that subset, not for XML at large, because the input comes from a
//! device (possibly hostile): a document type declaration (the only way to define entities, hence
//! entity bombs) is refused, unknown entities are errors, and size, node count and depth are bounded.
//! Every malformation is an error value, never a panic.
//!
//! Must not touch: the device (the caller fetches the bytes), the terminal.

use std::fmt;

/// A dump larger than this is not a screen (a busy screen is tens of kilobytes).
pub const MAX_DUMP_BYTES: usize = 8 * 1024 * 1024;
/// Nodes per dump.
const MAX_NODES: usize = 50_000;
/// Element nesting. Real view trees nest a few dozen levels deep.
const MAX_DEPTH: usize = 256;
/// Characters of an attribute value kept (longer text is cut: only selectors and messages read it).
const MAX_VALUE_CHARS: usize = 4096;

/// One `<node>` of a dump, in document order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UiNode {
    pub text: String,
    pub resource_id: String,
    pub class: String,
    pub package: String,
    pub content_desc: String,
    pub clickable: bool,
    pub enabled: bool,
    pub focused: bool,
    /// `None` when the attribute is missing or unreadable.
    pub bounds: Option<Bounds>,
    /// 0 for the children of `<hierarchy>`.
    pub depth: usize,
}

/// Screen text may hold personal data: `Debug` shows only the node's class, id and bounds.
impl fmt::Debug for UiNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UiNode {{ class: {:?}, resource_id: {:?}, text: {} chars, content_desc: {} chars, bounds: {:?} }}",
            self.class,
            self.resource_id,
            self.text.chars().count(),
            self.content_desc.chars().count(),
            self.bounds
        )
    }
}

/// A node's visible rectangle on screen, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
}

impl Bounds {
    /// `[0,0][1080,1920]`.
    pub fn parse(text: &str) -> Option<Bounds> {
        let rest = text.trim().strip_prefix('[')?;
        let (first, rest) = rest.split_once("][")?;
        let second = rest.strip_suffix(']')?;
        let pair = |s: &str| -> Option<(i32, i32)> {
            let (a, b) = s.split_once(',')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        };
        let (left, top) = pair(first)?;
        let (right, bottom) = pair(second)?;
        Some(Bounds {
            left,
            top,
            right,
            bottom,
        })
    }

    /// Zero-area nodes (collapsed, off screen) cannot be tapped.
    pub fn is_empty(&self) -> bool {
        self.right <= self.left || self.bottom <= self.top
    }

    /// Where a finger would tap it: the centre (`input tap X Y`).
    pub fn centre(&self) -> (i32, i32) {
        (
            self.left + (self.right - self.left) / 2,
            self.top + (self.bottom - self.top) / 2,
        )
    }
}

/// Why a dump could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    #[error("the screen dump is {0} bytes, more than the {MAX_DUMP_BYTES} a screen can take")]
    TooLarge(usize),
    #[error("the screen dump has more than {MAX_NODES} nodes")]
    TooManyNodes,
    #[error("the screen dump nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the screen dump declares a document type (entities are refused)")]
    Doctype,
    #[error("the screen dump is not uiautomator XML: {0}")]
    Malformed(String),
}

/// Which attribute a selector compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum By {
    Text,
    ResourceId,
    ContentDesc,
}

impl By {
    /// The attribute's name in dumps and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            By::Text => "text",
            By::ResourceId => "resource-id",
            By::ContentDesc => "content-desc",
        }
    }

    pub const ALL: [By; 3] = [By::Text, By::ResourceId, By::ContentDesc];
}

/// What a `tap` / `wait-for` / `type into` looks for on the screen.
#[derive(Clone, PartialEq, Eq)]
pub struct Selector {
    pub by: By,
    pub value: String,
}

/// A selector's value may be a canary (`text: "{contact_name}"`): `Debug` shows its length.
impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.by {
            By::ResourceId => write!(f, "resource-id {:?}", self.value),
            by => write!(f, "{} ({} chars)", by.name(), self.value.chars().count()),
        }
    }
}

impl Selector {
    pub fn new(by: By, value: impl Into<String>) -> Selector {
        Selector {
            by,
            value: value.into(),
        }
    }

    /// Text and content descriptions compare trimmed and case-insensitively (buttons are often
    /// shown in capitals that the accessibility text does not have). A resource id matches whole
    /// (`com.android.messaging:id/send_message_button`) or, given without its package, by its
    /// entry name (`send_message_button` matches any package's `…:id/send_message_button`).
    pub fn matches(&self, node: &UiNode) -> bool {
        let wanted = self.value.trim();
        if wanted.is_empty() {
            return false;
        }
        match self.by {
            By::Text => same_text(&node.text, wanted),
            By::ContentDesc => same_text(&node.content_desc, wanted),
            By::ResourceId => {
                let id = node.resource_id.trim();
                id == wanted
                    || (!wanted.contains(':')
                        && id
                            .strip_suffix(wanted)
                            .is_some_and(|head| head.ends_with(":id/")))
            }
        }
    }

    /// How the selector reads in messages: `resource-id "…:id/send"`; a text or description is
    /// shown (it was written in the scenario, and the run's redactor masks canaries), cut short.
    pub fn describe(&self) -> String {
        format!("{} \"{}\"", self.by.name(), shorten(&self.value, 60))
    }
}

fn same_text(have: &str, wanted: &str) -> bool {
    let have = have.trim();
    have == wanted || have.to_lowercase() == wanted.to_lowercase()
}

/// What looking for a selector on one screen found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<'a> {
    /// The first matching node, in document order, that has an area to tap.
    Node(&'a UiNode),
    /// Matching nodes exist, but none has an area (collapsed or off screen).
    Hidden(usize),
    Absent,
}

/// The first node `selector` matches that can be tapped.
pub fn find<'a>(nodes: &'a [UiNode], selector: &Selector) -> Found<'a> {
    let mut hidden = 0;
    for node in nodes.iter().filter(|n| selector.matches(n)) {
        match node.bounds {
            Some(b) if !b.is_empty() => return Found::Node(node),
            _ => hidden += 1,
        }
    }
    if hidden > 0 {
        Found::Hidden(hidden)
    } else {
        Found::Absent
    }
}

/// Entries a screen description lists at most.
const MAX_DESCRIBED: usize = 24;
/// Characters per described value.
const DESCRIBED_CHARS: usize = 40;

/// What was on a screen, for an error message: the apps showing, then what a selector could have
/// matched (`text "Send"`, `content-desc "Attach"`, `resource-id …:id/compose`), each once, in
/// screen order, at most 24 entries of 40 characters (100 for resource ids). Any value holding five digits or more has
/// every digit shown as `#` (a phone number, an IMEI on the `*#06#` dialog); control characters
/// are `?`. The runner's redactor then masks the run's own canaries (a contact's name).
pub fn describe_screen(nodes: &[UiNode]) -> String {
    let mut packages: Vec<&str> = Vec::new();
    for n in nodes {
        let p = n.package.trim();
        if !p.is_empty() && !packages.contains(&p) && packages.len() < 3 {
            packages.push(p);
        }
    }
    let mut entries: Vec<String> = Vec::new();
    let mut more = 0usize;
    for n in nodes {
        for (by, value) in [
            (By::Text, &n.text),
            (By::ContentDesc, &n.content_desc),
            (By::ResourceId, &n.resource_id),
        ] {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            // Resource ids are code, and only whole ones are useful to copy into a selector.
            let max = if by == By::ResourceId {
                100
            } else {
                DESCRIBED_CHARS
            };
            let entry = format!("{} \"{}\"", by.name(), mask_with(value, max));
            if entries.contains(&entry) {
                continue;
            }
            if entries.len() < MAX_DESCRIBED {
                entries.push(entry);
            } else {
                more += 1;
            }
        }
    }
    let apps = if packages.is_empty() {
        "no app named".to_string()
    } else {
        packages
            .iter()
            .map(|p| mask_for_message(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if entries.is_empty() {
        return format!(
            "{} node(s) of {apps}, none with a text, content-desc or resource-id",
            nodes.len()
        );
    }
    let mut out = format!("{apps}: {}", entries.join(", "));
    if more > 0 {
        out.push_str(&format!(" and {more} more"));
    }
    out
}

/// A screen value fit for a message: cut to 40 characters, digits masked when there are five or
/// more (numbers that long on a screen are identifiers more often than not), no control characters.
pub fn mask_for_message(value: &str) -> String {
    mask_with(value, DESCRIBED_CHARS)
}

fn mask_with(value: &str, max: usize) -> String {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let masked: String = value
        .chars()
        .map(|c| match c {
            c if digits >= 5 && c.is_ascii_digit() => '#',
            '"' => '\'',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    shorten(&masked, max)
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

/// Parses a `uiautomator dump`: every `<node>` under `<hierarchy>`, in document order.
pub fn parse(xml: &[u8]) -> Result<Vec<UiNode>, DumpError> {
    if xml.len() > MAX_DUMP_BYTES {
        return Err(DumpError::TooLarge(xml.len()));
    }
    let text = std::str::from_utf8(xml)
        .map_err(|e| DumpError::Malformed(format!("not UTF-8 after byte {}", e.valid_up_to())))?;
    Parser {
        s: text.strip_prefix('\u{feff}').unwrap_or(text),
        at: 0,
    }
    .document()
}

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

fn malformed(what: impl Into<String>) -> DumpError {
    DumpError::Malformed(what.into())
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start_matches([' ', '\t', '\r', '\n']);
        self.at = self.s.len() - trimmed.len();
    }

    /// Skips to just past `end`, or fails with `what`.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<(), DumpError> {
        match self.rest().find(end) {
            Some(i) => {
                self.at += i + end.len();
                Ok(())
            }
            None => Err(malformed(format!("unterminated {what}"))),
        }
    }

    /// Skips the prolog's and the epilog's declarations, comments, processing instructions and
    /// whitespace; refuses a document type.
    fn misc(&mut self) -> Result<(), DumpError> {
        loop {
            self.skip_ws();
            let rest = self.rest();
            if rest.starts_with("<?") {
                self.skip_past("?>", "processing instruction")?;
            } else if rest.starts_with("<!--") {
                self.skip_past("-->", "comment")?;
            } else if rest.starts_with("<!") {
                // <!DOCTYPE … [<!ENTITY …>]>: the way to entity bombs and external entities.
                return Err(DumpError::Doctype);
            } else {
                return Ok(());
            }
        }
    }

    fn document(mut self) -> Result<Vec<UiNode>, DumpError> {
        self.misc()?;
        if self.rest().is_empty() {
            return Err(malformed("the dump is empty"));
        }
        let (name, attrs, empty) = self.start_tag()?;
        if name != "hierarchy" {
            return Err(malformed(format!(
                "the root element is <{}>, not <hierarchy>",
                shorten(name, 40)
            )));
        }
        let _ = attrs;
        let mut nodes = Vec::new();
        if !empty {
            self.content(name, 0, &mut nodes)?;
        }
        self.misc()?;
        if !self.rest().is_empty() {
            return Err(malformed("content after the root element"));
        }
        Ok(nodes)
    }

    /// The children of an element named `parent` at `depth`, up to and including its end tag.
    /// Recursion is bounded by `MAX_DEPTH`.
    fn content(
        &mut self,
        parent: &str,
        depth: usize,
        nodes: &mut Vec<UiNode>,
    ) -> Result<(), DumpError> {
        loop {
            // Character data between elements: uiautomator writes none but whitespace; skip any.
            match self.rest().find('<') {
                Some(i) => self.at += i,
                None => {
                    return Err(malformed(format!(
                        "<{}> is not closed",
                        shorten(parent, 40)
                    )));
                }
            }
            let rest = self.rest();
            if rest.starts_with("</") {
                self.at += 2;
                let name = self.name()?;
                if name != parent {
                    return Err(malformed(format!(
                        "</{}> closes <{}>",
                        shorten(name, 40),
                        shorten(parent, 40)
                    )));
                }
                self.skip_ws();
                if !self.rest().starts_with('>') {
                    return Err(malformed("an end tag is not closed"));
                }
                self.at += 1;
                return Ok(());
            }
            if rest.starts_with("<!--") {
                self.skip_past("-->", "comment")?;
                continue;
            }
            if rest.starts_with("<?") {
                self.skip_past("?>", "processing instruction")?;
                continue;
            }
            if rest.starts_with("<!") {
                // CDATA or a declaration inside the tree: not something uiautomator writes.
                return Err(malformed("a CDATA section or declaration inside the tree"));
            }
            if depth + 1 > MAX_DEPTH {
                return Err(DumpError::TooDeep);
            }
            let (name, attrs, empty) = self.start_tag()?;
            if name == "node" {
                if nodes.len() >= MAX_NODES {
                    return Err(DumpError::TooManyNodes);
                }
                nodes.push(node_from(attrs, depth));
            }
            if !empty {
                self.content(name, depth + 1, nodes)?;
            }
        }
    }

    fn name(&mut self) -> Result<&'a str, DumpError> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '.')))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(malformed("a tag or attribute has no name"));
        }
        let (s, start) = (self.s, self.at);
        self.at += len;
        Ok(&s[start..start + len])
    }

    /// `<name attr="v" …>` or `<name … />`: the name, decoded attributes, and whether it is empty.
    #[allow(clippy::type_complexity)]
    fn start_tag(&mut self) -> Result<(&'a str, Vec<(&'a str, String)>, bool), DumpError> {
        if !self.rest().starts_with('<') {
            return Err(malformed("expected an element"));
        }
        self.at += 1;
        let s = self.s;
        let name_start = self.at;
        let name_len = self.name()?.len();
        let mut attrs = Vec::new();
        loop {
            let before = self.at;
            self.skip_ws();
            let rest = self.rest();
            if rest.starts_with("/>") {
                self.at += 2;
                return Ok((&s[name_start..name_start + name_len], attrs, true));
            }
            if rest.starts_with('>') {
                self.at += 1;
                return Ok((&s[name_start..name_start + name_len], attrs, false));
            }
            if rest.is_empty() {
                return Err(malformed("a tag is not closed"));
            }
            if self.at == before {
                return Err(malformed("attributes must be separated by spaces"));
            }
            let attr_start = self.at;
            let attr_len = self.name()?.len();
            self.skip_ws();
            if !self.rest().starts_with('=') {
                return Err(malformed("an attribute has no value"));
            }
            self.at += 1;
            self.skip_ws();
            let quote = match self.rest().chars().next() {
                Some(q @ ('"' | '\'')) => q,
                _ => return Err(malformed("an attribute value is not quoted")),
            };
            self.at += 1;
            let Some(end) = self.rest().find(quote) else {
                return Err(malformed("an attribute value is not closed"));
            };
            let raw = &s[self.at..self.at + end];
            self.at += end + 1;
            if raw.contains('<') {
                return Err(malformed("`<` inside an attribute value"));
            }
            let value = decode(raw)?;
            attrs.push((&s[attr_start..attr_start + attr_len], value));
        }
    }
}

/// Decodes the five predefined entities and character references; anything else is an error (a
/// dump defines no entities).
fn decode(raw: &str) -> Result<String, DumpError> {
    let mut out = String::with_capacity(raw.len().min(MAX_VALUE_CHARS));
    let mut rest = raw;
    let mut chars = 0usize;
    let mut push = |out: &mut String, c: char| {
        if chars < MAX_VALUE_CHARS {
            out.push(c);
            chars += 1;
        }
    };
    while let Some(i) = rest.find('&') {
        for c in rest[..i].chars() {
            push(&mut out, c);
        }
        let after = &rest[i + 1..];
        let Some(semi) = after.find(';').filter(|&s| s <= 12) else {
            return Err(malformed("a `&` that starts no entity"));
        };
        let entity = &after[..semi];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    return Err(malformed(format!(
                        "unknown entity `&{};`",
                        shorten(entity, 12)
                    )));
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| malformed("a character reference to no character"))?
            }
        };
        push(&mut out, c);
        rest = &after[semi + 1..];
    }
    for c in rest.chars() {
        push(&mut out, c);
    }
    Ok(out)
}

fn node_from(attrs: Vec<(&str, String)>, depth: usize) -> UiNode {
    let mut node = UiNode {
        depth,
        ..UiNode::default()
    };
    for (name, value) in attrs {
        match name {
            "text" => node.text = value,
            "resource-id" => node.resource_id = value,
            "class" => node.class = value,
            "package" => node.package = value,
            "content-desc" => node.content_desc = value,
            "clickable" => node.clickable = value == "true",
            "enabled" => node.enabled = value == "true",
            "focused" => node.focused = value == "true",
            "bounds" => node.bounds = Bounds::parse(&value),
            _ => {}
        }
    }
    node
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The shape AOSP's dumper writes (XmlSerializer: single-quoted declaration, self-closing
    /// leaves), as Google Messages' compose screen looks on Android 14: the send button has no
    /// text, only a content description and a resource id.
    pub(crate) const COMPOSE: &str = "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\
<hierarchy rotation=\"0\"><node index=\"0\" text=\"\" resource-id=\"\" class=\"android.widget.FrameLayout\" \
package=\"com.google.android.apps.messaging\" content-desc=\"\" checkable=\"false\" checked=\"false\" \
clickable=\"false\" enabled=\"true\" focusable=\"false\" focused=\"false\" scrollable=\"false\" \
long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[0,0][1080,2400]\">\
<node index=\"0\" text=\"Wei Ling Tan\" resource-id=\"com.google.android.apps.messaging:id/conversation_title\" \
class=\"android.widget.TextView\" package=\"com.google.android.apps.messaging\" content-desc=\"\" \
checkable=\"false\" checked=\"false\" clickable=\"false\" enabled=\"true\" focusable=\"false\" focused=\"false\" \
scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[189,127][640,190]\" />\
<node index=\"1\" text=\"tattle canary 1f2e3d4c &amp; &lt;more&gt;\" resource-id=\"com.google.android.apps.messaging:id/compose_message_text\" \
class=\"android.widget.EditText\" package=\"com.google.android.apps.messaging\" content-desc=\"\" \
checkable=\"false\" checked=\"false\" clickable=\"true\" enabled=\"true\" focusable=\"true\" focused=\"true\" \
scrollable=\"false\" long-clickable=\"true\" password=\"false\" selected=\"false\" bounds=\"[168,2205][880,2331]\" />\
<node NAF=\"true\" index=\"2\" text=\"\" resource-id=\"com.google.android.apps.messaging:id/send_message_button_icon\" \
class=\"android.widget.ImageView\" package=\"com.google.android.apps.messaging\" content-desc=\"Send SMS\" \
checkable=\"false\" checked=\"false\" clickable=\"true\" enabled=\"true\" focusable=\"true\" focused=\"false\" \
scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[901,2205][1059,2331]\" />\
<node index=\"3\" text=\"Collapsed\" resource-id=\"x:id/gone\" class=\"android.view.View\" package=\"com.google.android.apps.messaging\" \
content-desc=\"\" bounds=\"[0,0][0,0]\" /></node></hierarchy>";

    #[test]
    fn parses_aosp_dump_shape() {
        let nodes = parse(COMPOSE.as_bytes()).unwrap();
        assert_eq!(nodes.len(), 5);
        assert_eq!(nodes[0].depth, 0);
        assert_eq!(nodes[1].depth, 1);
        assert_eq!(nodes[1].text, "Wei Ling Tan");
        assert_eq!(nodes[2].text, "tattle canary 1f2e3d4c & <more>");
        assert!(nodes[2].focused && nodes[2].clickable && nodes[2].enabled);
        assert_eq!(nodes[3].content_desc, "Send SMS");
        assert_eq!(
            nodes[3].bounds,
            Some(Bounds {
                left: 901,
                top: 2205,
                right: 1059,
                bottom: 2331
            })
        );
        assert_eq!(nodes[3].bounds.unwrap().centre(), (980, 2268));
    }

    #[test]
    fn selectors_match_like_people_read() {
        let nodes = parse(COMPOSE.as_bytes()).unwrap();
        let find_one = |by, v: &str| match find(&nodes, &Selector::new(by, v)) {
            Found::Node(n) => Some(n.resource_id.clone()),
            _ => None,
        };
        let send = "com.google.android.apps.messaging:id/send_message_button_icon";
        assert_eq!(find_one(By::ContentDesc, "send sms").as_deref(), Some(send));
        assert_eq!(
            find_one(By::ContentDesc, " Send SMS ").as_deref(),
            Some(send)
        );
        assert_eq!(find_one(By::ResourceId, send).as_deref(), Some(send));
        // Without its package, by entry name; a prefix of the entry name is not enough.
        assert_eq!(
            find_one(By::ResourceId, "send_message_button_icon").as_deref(),
            Some(send)
        );
        assert_eq!(find_one(By::ResourceId, "message_button_icon"), None);
        assert_eq!(find_one(By::ResourceId, "send_message_button"), None);
        assert!(find_one(By::Text, "WEI LING TAN").is_some());
        assert_eq!(find_one(By::Text, "Wei Ling"), None);
        assert_eq!(
            find_one(By::Text, ""),
            None,
            "an empty selector matches nothing"
        );
        // Found but without an area to tap.
        assert_eq!(
            find(&nodes, &Selector::new(By::Text, "Collapsed")),
            Found::Hidden(1)
        );
        assert_eq!(
            find(&nodes, &Selector::new(By::Text, "Nothing")),
            Found::Absent
        );
    }

    #[test]
    fn screen_descriptions_mask_numbers_and_stay_short() {
        let mut nodes = parse(COMPOSE.as_bytes()).unwrap();
        nodes.push(UiNode {
            text: "IMEI: 356938035643809".into(),
            package: "com.android.phone".into(),
            ..UiNode::default()
        });
        nodes.push(UiNode {
            text: "+65 9876 5432".into(),
            ..UiNode::default()
        });
        nodes.push(UiNode {
            text: "bell\u{7}\"quoted\"".into(),
            ..UiNode::default()
        });
        let d = describe_screen(&nodes);
        assert!(
            d.starts_with("com.google.android.apps.messaging, com.android.phone: "),
            "{d}"
        );
        assert!(d.contains("content-desc \"Send SMS\""), "{d}");
        assert!(d.contains("text \"IMEI: ###############\""), "{d}");
        assert!(d.contains("text \"+## #### ####\""), "{d}");
        assert!(d.contains("text \"bell?'quoted'\""), "{d}");
        assert!(!d.contains("356938035643809") && !d.contains("9876"), "{d}");
        assert!(!d.contains('\u{7}'));
        // Bounded: many distinct texts give 24 entries and a count.
        let many: Vec<UiNode> = (0..200)
            .map(|i| UiNode {
                text: format!("item {i} {}", "x".repeat(100)),
                ..UiNode::default()
            })
            .collect();
        let d = describe_screen(&many);
        assert!(d.ends_with(" and 176 more"), "{d}");
        assert!(d.chars().count() < 24 * 60, "{}", d.len());
        assert_eq!(
            describe_screen(&[UiNode::default()]),
            "1 node(s) of no app named, none with a text, content-desc or resource-id"
        );
    }

    #[test]
    fn hostile_dumps_are_errors() {
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
            <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\
            <hierarchy><node text=\"&lol2;\"/></hierarchy>";
        assert_eq!(parse(bomb.as_bytes()), Err(DumpError::Doctype));
        let undefined = "<hierarchy><node text=\"&lol;\"/></hierarchy>";
        assert!(
            matches!(parse(undefined.as_bytes()), Err(DumpError::Malformed(m)) if m.contains("unknown entity"))
        );
        let deep = format!(
            "<hierarchy>{}{}</hierarchy>",
            "<node>".repeat(10_000),
            "</node>".repeat(10_000)
        );
        assert_eq!(parse(deep.as_bytes()), Err(DumpError::TooDeep));
        let wide = format!("<hierarchy>{}</hierarchy>", "<node/>".repeat(MAX_NODES + 1));
        assert_eq!(parse(wide.as_bytes()), Err(DumpError::TooManyNodes));
        let huge = vec![b' '; MAX_DUMP_BYTES + 1];
        assert_eq!(parse(&huge), Err(DumpError::TooLarge(MAX_DUMP_BYTES + 1)));
        for bad in [
            "",
            "   ",
            "UI hierchary dumped to: /sdcard/window_dump.xml",
            "<hierarchy>",
            "<hierarchy><node></hierarchy>",
            "<hierarchy><node text=\"a\" text2></node></hierarchy>",
            "<hierarchy><node text=a/></hierarchy>",
            "<hierarchy><node text=\"a/></hierarchy>",
            "<hierarchy><node text=\"<\"/></hierarchy>",
            "<hierarchy><node text=\"&\"/></hierarchy>",
            "<hierarchy><node text=\"&#xFFFFFFFF;\"/></hierarchy>",
            "<hierarchy><node text=\"&#55296;\"/></hierarchy>",
            "<hierarchy><![CDATA[x]]></hierarchy>",
            "<hierarchy></hierarchy><hierarchy></hierarchy>",
            "<window><node/></window>",
            "<hierarchy><node a=\"1\"b=\"2\"/></hierarchy>",
            "<hierarchy><!-- unterminated </hierarchy>",
            "<",
            "</hierarchy>",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
        assert!(parse(&[0xff, 0xfe, b'<']).is_err());
        // Long values are cut, not refused.
        let long = format!(
            "<hierarchy><node text=\"{}\"/></hierarchy>",
            "a".repeat(100_000)
        );
        assert_eq!(
            parse(long.as_bytes()).unwrap()[0].text.len(),
            MAX_VALUE_CHARS
        );
    }

    #[test]
    fn tolerated_variations() {
        // BOM, comments, an empty hierarchy, unknown attributes and elements, CRLF.
        let ok = "\u{feff}<?xml version='1.0'?>\r\n<!-- c --><hierarchy rotation=\"1\">\r\n\
                  <node text='single &#39;quoted&#x27;' extra=\"x\" bounds=\"[1,2][3,4]\">\
                  <other/></node>\r\n</hierarchy>\r\n";
        let nodes = parse(ok.as_bytes()).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].text, "single 'quoted'");
        assert!(parse(b"<hierarchy/>").unwrap().is_empty());
        assert_eq!(Bounds::parse("[1,2][3]"), None);
        assert_eq!(Bounds::parse("[-5,0][10,10]").unwrap().centre(), (2, 5));
    }
}
