//! The handset's screens: a small model of what is in the foreground (launcher, dialer with its `*#06#`
//! dialog, the messaging app's compose screen, the contacts editor), how taps and keys change it, and
//! the accessibility tree `uiautomator dump` writes.
//!
//! Screens are data: each one is built as a tree of `Node`s (class, resource-id, text, content-desc,
//! bounds, flags) from the state, and a node may carry the `Action` a tap on it performs. The ids, texts
//! and behaviours come from the AOSP apps (files named at each screen); the layout is simplified (the
//! real trees have more container levels) and the bounds are laid out for the handset's 1080x2400
//! display (`wm size`).
//!
//! The XML is what `AccessibilityNodeInfoDumper.dumpWindowToFile` writes through the platform's
//! KXmlSerializer (frameworks/base cmds/uiautomator, SDK 23–34 identical): the declaration
//! `<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>`, `<hierarchy rotation="0">`, one `<node>`
//! per visible view with `NAF="true"` first on clickable nodes without text or description, empty
//! elements closed with ` />`, no newlines.
//!
//! Must not touch: the SMS and contacts tables' format (`providers` stores, this only calls it), intents'
//! parsing (`commands::activity`), the network (events are returned).

use crate::vhandset::HandsetEvent;
use crate::vhandset::generation::{Generation, ImeiDialog};
use crate::vhandset::profile::{Profile, SendButton};

use super::providers::Providers;

/// Display size the screens are laid out for (what `wm size` reports).
pub const WIDTH: i32 = 1080;
pub const HEIGHT: i32 = 2400;

/// The messaging app's compose screen, opened by a SENDTO intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compose {
    pub to: String,
    pub body: String,
    /// DPAD_RIGHT/TAB moved the focus from the text field to the send button.
    pub send_focused: bool,
}

/// The dialer's dial pad.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialer {
    pub digits: String,
    /// The digits came from an intent (`tel:…`): DialpadFragment's `mDigitsFilledByIntent`, which keeps
    /// special sequences from running until the field is emptied.
    pub filled_by_intent: bool,
    /// The `*#06#` dialog is showing (not cancelable: only its OK button closes it).
    pub imei_dialog: bool,
}

/// A field of the contacts editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditorField {
    FirstName,
    LastName,
    Phone,
}

/// The contacts app's editor (a new contact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editor {
    pub first: String,
    pub last: String,
    pub phone: String,
    pub focus: EditorField,
}

/// What is in the foreground.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Home,
    Dialer(Dialer),
    ConversationList,
    Compose(Compose),
    Contacts,
    ContactEditor(Editor),
    /// A window of an emulated app (`vhandset::apps`): PCAPdroid's control request and VPN notice,
    /// and Android's VPN confirmation it leads to.
    Pcapdroid(crate::vhandset::apps::pcapdroid::Window),
}

/// The foreground screen and what BACK returns to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ui {
    pub screen: Screen,
    back: Vec<Screen>,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            screen: Screen::Home,
            back: Vec::new(),
        }
    }
}

/// An app the launcher and `am start -n` / `monkey -p` can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Dialer,
    Messaging,
    Contacts,
}

impl App {
    pub fn from_package(pkg: &str) -> Option<App> {
        Some(match pkg {
            "com.android.dialer" => App::Dialer,
            "com.android.messaging" | "com.google.android.apps.messaging" => App::Messaging,
            "com.android.contacts" => App::Contacts,
            _ => return None,
        })
    }
}

/// What a tap on a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Launch(App),
    DialKey(char),
    DialDelete,
    /// The dial button: placing calls is not modelled; it does nothing.
    Dial,
    ImeiOk,
    FocusBody,
    Send,
    Focus(EditorField),
    Save,
    NewContact,
    /// A button of a PCAPdroid window: `apps::pcapdroid` handles it (it starts and stops captures,
    /// which screens cannot).
    Pcapdroid(crate::vhandset::apps::pcapdroid::Button),
}

/// One accessibility node.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub class: &'static str,
    pub resource_id: String,
    pub text: String,
    pub desc: String,
    pub package: &'static str,
    pub clickable: bool,
    pub focusable: bool,
    pub focused: bool,
    pub scrollable: bool,
    pub long_clickable: bool,
    /// `View.setEnabled(false)`: dumped `enabled="false"`; a tap on it does nothing.
    pub disabled: bool,
    pub bounds: (i32, i32, i32, i32),
    pub children: Vec<Node>,
    pub action: Option<Action>,
}

pub(crate) fn node(
    class: &'static str,
    package: &'static str,
    id: &str,
    bounds: (i32, i32, i32, i32),
) -> Node {
    Node {
        class,
        package,
        resource_id: id.to_string(),
        bounds,
        ..Default::default()
    }
}

impl Node {
    pub(crate) fn text(mut self, t: impl Into<String>) -> Self {
        self.text = t.into();
        self
    }
    pub(crate) fn desc(mut self, d: impl Into<String>) -> Self {
        self.desc = d.into();
        self
    }
    pub(crate) fn tap(mut self, action: Action) -> Self {
        self.clickable = true;
        self.focusable = true;
        self.action = Some(action);
        self
    }
    pub(crate) fn kids(mut self, children: Vec<Node>) -> Self {
        self.children = children;
        self
    }
    fn contains(&self, x: i32, y: i32) -> bool {
        let (l, t, r, b) = self.bounds;
        x >= l && x < r && y >= t && y < b
    }
}

const LAUNCHER: &str = "com.android.launcher3";
const DIALER: &str = "com.android.dialer";
const MESSAGING: &str = "com.android.messaging";
const CONTACTS: &str = "com.android.contacts";

/// What the screens need to know about the handset.
pub struct Context<'a> {
    pub generation: &'static Generation,
    pub profile: &'a Profile,
}

impl Context<'_> {
    /// The device ids the dialer shows: slot 0, and slot 1 on a dual-SIM handset.
    fn device_ids(&self) -> Vec<String> {
        ["imei", "imei2"]
            .iter()
            .filter_map(|k| self.profile.identifiers.get(*k).cloned())
            .collect()
    }

    /// What an EditText reports as its text: its content, or (8.0+) its hint when empty.
    fn edit_text(&self, content: &str, hint: &str) -> String {
        if content.is_empty() && self.generation.ui.hint_as_text {
            hint.to_string()
        } else {
            content.to_string()
        }
    }
}

impl Ui {
    /// Opens a screen on top of the current one.
    pub fn open(&mut self, screen: Screen) {
        let previous = std::mem::replace(&mut self.screen, screen);
        if previous != Screen::Home && self.back.len() < 16 {
            self.back.push(previous);
        }
    }

    /// BACK: the previous screen, or the launcher.
    pub fn back(&mut self) {
        self.screen = self.back.pop().unwrap_or(Screen::Home);
    }

    /// HOME: the launcher (the apps' screens are forgotten, as if their activities finished).
    pub fn home(&mut self) {
        self.screen = Screen::Home;
        self.back.clear();
    }

    /// Closes every screen of `app` (force-stop, `pm clear`).
    pub fn close_app(&mut self, app: App) {
        self.close_where(|s| match s {
            Screen::Dialer(_) => app == App::Dialer,
            Screen::ConversationList | Screen::Compose(_) => app == App::Messaging,
            Screen::Contacts | Screen::ContactEditor(_) => app == App::Contacts,
            Screen::Home | Screen::Pcapdroid(_) => false,
        });
    }

    /// Closes every screen for which `of_app` is true (its activities finished).
    pub fn close_where(&mut self, of_app: impl Fn(&Screen) -> bool) {
        self.back.retain(|s| !of_app(s));
        while of_app(&self.screen) {
            self.back();
        }
    }

    /// The compose screen, if it is in the foreground.
    pub fn compose(&self) -> Option<&Compose> {
        match &self.screen {
            Screen::Compose(c) => Some(c),
            _ => None,
        }
    }

    pub fn compose_mut(&mut self) -> Option<&mut Compose> {
        match &mut self.screen {
            Screen::Compose(c) => Some(c),
            _ => None,
        }
    }

    /// Opens an app from its launcher icon.
    pub fn launch(&mut self, app: App) {
        self.open(match app {
            App::Dialer => Screen::Dialer(Dialer::default()),
            App::Messaging => Screen::ConversationList,
            App::Contacts => Screen::Contacts,
        });
    }

    /// The active window's accessibility tree (a dialog is its own window, the active one).
    pub fn tree(&self, ctx: &Context<'_>) -> Node {
        match &self.screen {
            Screen::Home => home(),
            Screen::Dialer(d) if d.imei_dialog => imei_dialog(ctx),
            Screen::Dialer(d) => dialer(d),
            Screen::ConversationList => conversation_list(),
            Screen::Compose(c) => compose(c, ctx),
            Screen::Contacts => contacts_list(),
            Screen::ContactEditor(e) => editor(e, ctx),
            Screen::Pcapdroid(w) => w.tree(std::time::Instant::now()),
        }
    }

    /// `input tap X Y`: the action of the deepest node under the point that has one.
    pub fn tap(
        &mut self,
        x: i32,
        y: i32,
        ctx: &Context<'_>,
        providers: &mut Providers,
        now_ms: i64,
    ) -> Vec<HandsetEvent> {
        let tree = self.tree(ctx);
        match hit(&tree, x, y) {
            Some(action) => self.perform(action, ctx, providers, now_ms),
            None => Vec::new(),
        }
    }

    fn perform(
        &mut self,
        action: Action,
        ctx: &Context<'_>,
        providers: &mut Providers,
        now_ms: i64,
    ) -> Vec<HandsetEvent> {
        match (action, &mut self.screen) {
            (Action::Launch(app), _) => self.launch(app),
            (Action::DialKey(c), Screen::Dialer(d)) => dial_chars(d, &c.to_string()),
            (Action::DialDelete, Screen::Dialer(d)) => {
                d.digits.pop();
                after_text_changed(d);
            }
            (Action::ImeiOk, Screen::Dialer(d)) => d.imei_dialog = false,
            (Action::FocusBody, Screen::Compose(c)) => c.send_focused = false,
            (Action::Send, Screen::Compose(_)) => return self.send(providers, now_ms),
            (Action::Focus(f), Screen::ContactEditor(e)) => e.focus = f,
            (Action::Save, Screen::ContactEditor(e)) => {
                let name = [e.first.trim(), e.last.trim()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
                let phone = e.phone.trim().to_string();
                // ContactEditorFragment.save: an editor with nothing in it saves nothing.
                let events = if name.is_empty() && phone.is_empty() {
                    Vec::new()
                } else {
                    providers.save_contact(&name, &phone).unwrap_or_default()
                };
                self.back();
                return events;
            }
            (Action::NewContact, _) => self.open(Screen::ContactEditor(Editor::new("", ""))),
            _ => {}
        }
        let _ = ctx;
        Vec::new()
    }

    /// The compose screen's Send: the SMS is stored in the sent box and leaves the phone.
    pub fn send(&mut self, providers: &mut Providers, now_ms: i64) -> Vec<HandsetEvent> {
        let Some(c) = self.compose() else {
            return Vec::new();
        };
        // ComposeMessageView: the send button is only shown (and only sends) with a message.
        if c.body.is_empty() {
            return Vec::new();
        }
        let (to, body) = (c.to.clone(), c.body.clone());
        // The messaging app finishes the compose activity after sending (`exit_on_sent`).
        self.back();
        match providers.store_sent_sms(&to, &body, now_ms) {
            Ok(_) => vec![HandsetEvent::SmsSent { to, body }],
            Err(_) => Vec::new(),
        }
    }

    /// `input keyevent CODE`.
    pub fn key(
        &mut self,
        code: u32,
        persona_send: SendButton,
        providers: &mut Providers,
        now_ms: i64,
    ) -> Vec<HandsetEvent> {
        // A non-cancelable dialog swallows BACK (AlertDialog.Builder.setCancelable(false)).
        if let Screen::Dialer(d) = &self.screen
            && d.imei_dialog
        {
            return Vec::new();
        }
        match code {
            3 => {
                self.home();
                return Vec::new();
            }
            4 => {
                self.back();
                return Vec::new();
            }
            _ => {}
        }
        match &mut self.screen {
            Screen::Dialer(d) => match code {
                7..=16 => dial_chars(d, &char::from(b'0' + (code - 7) as u8).to_string()),
                17 => dial_chars(d, "*"),
                18 => dial_chars(d, "#"),
                67 => {
                    d.digits.pop();
                    after_text_changed(d);
                }
                _ => {}
            },
            Screen::Compose(c) => match code {
                // The send button takes the focus only where it is focusable.
                22 | 61 if persona_send == SendButton::Keys => c.send_focused = true,
                21 => c.send_focused = false,
                66 | 23 if c.send_focused => return self.send(providers, now_ms),
                // ENTER in the text field: ComposeMessageView.onEditorAction only sends for
                // IME_ACTION_SEND; a hardware ENTER is a newline.
                66 => c.body.push('\n'),
                67 if !c.send_focused => {
                    c.body.pop();
                }
                _ => {}
            },
            Screen::ContactEditor(e) if code == 67 => {
                e.field_mut().pop();
            }
            _ => {}
        }
        Vec::new()
    }

    /// `input text TEXT` into the focused field.
    pub fn type_text(&mut self, text: &str) {
        match &mut self.screen {
            Screen::Dialer(d) if !d.imei_dialog => dial_chars(d, text),
            Screen::Compose(c) if !c.send_focused && c.body.len() + text.len() <= 64 * 1024 => {
                c.body.push_str(text)
            }
            Screen::ContactEditor(e) => {
                let f = e.field_mut();
                if f.len() + text.len() <= 1024 {
                    f.push_str(text);
                }
            }
            _ => {}
        }
    }
}

impl Editor {
    /// The editor of `Intent.ACTION_INSERT` with `name`/`phone` extras (ContactsContract.Intents.Insert):
    /// the name goes to the name fields, split at its last space (simplified from NameConverter).
    pub fn new(name: &str, phone: &str) -> Editor {
        let (first, last) = match name.trim().rsplit_once(' ') {
            Some((f, l)) => (f.trim().to_string(), l.to_string()),
            None => (name.trim().to_string(), String::new()),
        };
        Editor {
            first,
            last,
            phone: phone.to_string(),
            focus: EditorField::FirstName,
        }
    }

    fn field_mut(&mut self) -> &mut String {
        match self.focus {
            EditorField::FirstName => &mut self.first,
            EditorField::LastName => &mut self.last,
            EditorField::Phone => &mut self.phone,
        }
    }
}

/// Characters typed on the dial pad, one at a time, each followed by `afterTextChanged`.
fn dial_chars(d: &mut Dialer, text: &str) {
    for c in text.chars() {
        if d.imei_dialog {
            break;
        }
        if d.digits.len() < 256 && (c.is_ascii_digit() || matches!(c, '*' | '#' | '+' | ',' | ';'))
        {
            d.digits.push(c);
            after_text_changed(d);
        }
    }
}

/// DialpadFragment.afterTextChanged (Dialer at android-4.4.3_r1 lines 324–343, the same logic in
/// java/com/android/dialer/dialpadview/DialpadFragment.java at 14): a special sequence runs unless the
/// digits were filled by an intent, and then the digits are cleared; an empty field forgets the intent.
fn after_text_changed(d: &mut Dialer) {
    // SpecialCharSequenceMgr.MMI_IMEI_DISPLAY.
    if !d.filled_by_intent && d.digits == "*#06#" {
        d.imei_dialog = true;
        d.digits.clear();
    }
    if d.digits.is_empty() {
        d.filled_by_intent = false;
    }
}

/// The action a tap at (x, y) performs: the deepest node under it that has one. A disabled node takes
/// the touch and does nothing (View.onTouchEvent: a disabled clickable view consumes the event).
pub(crate) fn hit(n: &Node, x: i32, y: i32) -> Option<Action> {
    if !n.contains(x, y) || n.disabled {
        return None;
    }
    for child in n.children.iter().rev() {
        if let Some(a) = hit(child, x, y) {
            return Some(a);
        }
    }
    n.action
}

// ---- screens ----

/// Launcher3's hotseat (BubbleTextView icons have no id; their text and description are the label).
fn home() -> Node {
    let icon = |label: &str, app: App, left: i32| {
        node(
            "android.widget.TextView",
            LAUNCHER,
            "",
            (left, 2040, left + 216, 2280),
        )
        .text(label)
        .desc(label)
        .tap(Action::Launch(app))
    };
    node(
        "android.widget.FrameLayout",
        LAUNCHER,
        "",
        (0, 0, WIDTH, HEIGHT),
    )
    .kids(vec![
        icon("Phone", App::Dialer, 108),
        icon("Messaging", App::Messaging, 432),
        icon("Contacts", App::Contacts, 756),
    ])
}

/// Dialer's dial pad: java/com/android/dialer/dialpadview/res/layout/dialpad_view_unthemed.xml
/// (`digits`, `deleteButton` "backspace"), dialpad.xml (`one` … `pound`, each with a
/// `dialpad_key_number` and `dialpad_key_letters`), dialpad_fragment.xml
/// (`dialpad_floating_action_button` "dial"); key descriptions from DialpadView.setupKeypad ("2,ABC";
/// `*`, `#` and `0` are just the character). 4.4's dial pad had the same ids (res/layout/dialpad.xml at
/// android-4.4.3_r1); its descriptions were not checked.
fn dialer(d: &Dialer) -> Node {
    const KEYS: [(&str, char, &str); 12] = [
        ("one", '1', ""),
        ("two", '2', "ABC"),
        ("three", '3', "DEF"),
        ("four", '4', "GHI"),
        ("five", '5', "JKL"),
        ("six", '6', "MNO"),
        ("seven", '7', "PQRS"),
        ("eight", '8', "TUV"),
        ("nine", '9', "WXYZ"),
        ("star", '*', ""),
        ("zero", '0', "+"),
        ("pound", '#', ""),
    ];
    let id = |name: &str| format!("{DIALER}:id/{name}");
    let mut children = vec![
        node(
            "android.widget.EditText",
            DIALER,
            &id("digits"),
            (132, 1010, 930, 1160),
        )
        .text(d.digits.clone()),
        node(
            "android.widget.ImageButton",
            DIALER,
            &id("deleteButton"),
            (930, 1010, 1080, 1160),
        )
        .desc("backspace")
        .tap(Action::DialDelete),
    ];
    for (i, (name, c, letters)) in KEYS.iter().enumerate() {
        let (col, row) = (i as i32 % 3, i as i32 / 3);
        let bounds = (
            col * 360,
            1200 + row * 230,
            col * 360 + 360,
            1200 + row * 230 + 230,
        );
        let desc = match c {
            '*' | '#' | '0' => c.to_string(),
            _ => format!("{c},{letters}"),
        };
        let mut key_children = vec![
            node(
                "android.widget.TextView",
                DIALER,
                &id("dialpad_key_number"),
                (
                    bounds.0 + 130,
                    bounds.1 + 40,
                    bounds.0 + 230,
                    bounds.1 + 150,
                ),
            )
            .text(c.to_string()),
        ];
        if !letters.is_empty() {
            key_children.push(
                node(
                    "android.widget.TextView",
                    DIALER,
                    &id("dialpad_key_letters"),
                    (
                        bounds.0 + 110,
                        bounds.1 + 150,
                        bounds.0 + 250,
                        bounds.1 + 200,
                    ),
                )
                .text(*letters),
            );
        }
        children.push(
            node("android.widget.FrameLayout", DIALER, &id(name), bounds)
                .desc(desc)
                .tap(Action::DialKey(*c))
                .kids(key_children),
        );
    }
    children.push(
        node(
            "android.widget.ImageButton",
            DIALER,
            &id("dialpad_floating_action_button"),
            (456, 2150, 624, 2318),
        )
        .desc("dial")
        .tap(Action::Dial),
    );
    let mut root = node(
        "android.widget.FrameLayout",
        DIALER,
        "",
        (0, 0, WIDTH, HEIGHT),
    )
    .kids(children);
    root.children[0].focused = true;
    root.children[0].focusable = true;
    root.children[0].clickable = true;
    root
}

/// The `*#06#` dialog, its own window: title `android:id/alertTitle` ("IMEI", Dialer string `imei`),
/// OK button `android:id/button1` (android.R.string.ok). 4.4: `setMessage(getDeviceId())` in
/// `android:id/message`; 9+: a `row_deviceid` per slot with the id in `deviceid_hex` and an empty
/// `deviceid_dec` (res/values/bools.xml: `show_device_id_in_hex_and_decimal` false).
fn imei_dialog(ctx: &Context<'_>) -> Node {
    let ids = ctx.device_ids();
    let mut children = vec![
        node(
            "android.widget.TextView",
            DIALER,
            "android:id/alertTitle",
            (129, 1000, 951, 1080),
        )
        .text("IMEI"),
    ];
    let mut y = 1110;
    match ctx.generation.ui.imei_dialog {
        ImeiDialog::Message => {
            children.push(
                node(
                    "android.widget.TextView",
                    DIALER,
                    "android:id/message",
                    (129, y, 951, y + 70),
                )
                .text(ids.first().cloned().unwrap_or_default()),
            );
            y += 100;
        }
        ImeiDialog::DeviceIdRows => {
            for id in &ids {
                children.push(
                    node(
                        "android.widget.TextView",
                        DIALER,
                        &format!("{DIALER}:id/deviceid_hex"),
                        (129, y, 951, y + 60),
                    )
                    .text(id.clone()),
                );
                children.push(node(
                    "android.widget.TextView",
                    DIALER,
                    &format!("{DIALER}:id/deviceid_dec"),
                    (129, y + 60, 951, y + 120),
                ));
                y += 150;
            }
        }
    }
    children.push(
        node(
            "android.widget.Button",
            DIALER,
            "android:id/button1",
            (780, y, 951, y + 120),
        )
        .text("OK")
        .tap(Action::ImeiOk),
    );
    node(
        "android.widget.FrameLayout",
        DIALER,
        "",
        (66, 940, 1014, y + 150),
    )
    .kids(children)
}

/// AOSP Messaging's conversation list: the "Start chat" button is not modelled beyond its node.
fn conversation_list() -> Node {
    node(
        "android.widget.FrameLayout",
        MESSAGING,
        "",
        (0, 0, WIDTH, HEIGHT),
    )
    .kids(vec![
        node(
            "android.widget.ImageView",
            MESSAGING,
            &format!("{MESSAGING}:id/start_new_conversation_button"),
            (840, 2110, 1020, 2290),
        )
        .desc("Start new conversation"),
    ])
}

/// AOSP Messaging's compose bar: res/layout/compose_message_view.xml (`attach_media_button` "Add an
/// attachment", `compose_message_text` with hint "Send message", `send_message_button` "Send Message",
/// shown only when there is something to send, `self_send_icon` otherwise), strings.xml at the
/// android-14.0.0_r50 merge (LineageOS Messaging 027b5ff7).
fn compose(c: &Compose, ctx: &Context<'_>) -> Node {
    let id = |name: &str| format!("{MESSAGING}:id/{name}");
    let mut body = node(
        "android.widget.EditText",
        MESSAGING,
        &id("compose_message_text"),
        (150, 2170, 880, 2330),
    )
    .text(ctx.edit_text(&c.body, "Send message"))
    .tap(Action::FocusBody);
    body.focused = !c.send_focused;
    body.long_clickable = true;
    let mut children = vec![
        node(
            "android.widget.TextView",
            MESSAGING,
            &id("conversation_title"),
            (180, 70, 900, 150),
        )
        .text(c.to.clone()),
        node(
            "android.widget.ImageButton",
            MESSAGING,
            &id("attach_media_button"),
            (20, 2180, 150, 2320),
        )
        .desc("Add an attachment")
        .tap(Action::FocusBody),
        body,
    ];
    if c.body.is_empty() {
        let mut icon = node(
            "android.view.View",
            MESSAGING,
            &id("self_send_icon"),
            (900, 2190, 1060, 2320),
        );
        icon.clickable = true;
        children.push(icon);
    } else {
        let mut send = node(
            "android.widget.ImageButton",
            MESSAGING,
            &id("send_message_button"),
            (900, 2190, 1060, 2320),
        )
        .desc("Send Message")
        .tap(Action::Send);
        send.focusable = ctx.profile.persona.send_button == SendButton::Keys;
        send.focused = c.send_focused;
        children.push(send);
    }
    node(
        "android.widget.FrameLayout",
        MESSAGING,
        "",
        (0, 0, WIDTH, HEIGHT),
    )
    .kids(children)
}

/// The contacts list: only its "Create contact" button (`floating_action_button`).
fn contacts_list() -> Node {
    node(
        "android.widget.FrameLayout",
        CONTACTS,
        "",
        (0, 0, WIDTH, HEIGHT),
    )
    .kids(vec![
        node(
            "android.widget.ImageButton",
            CONTACTS,
            &format!("{CONTACTS}:id/floating_action_button"),
            (840, 2110, 1020, 2290),
        )
        .desc("Create contact")
        .tap(Action::NewContact),
    ])
}

/// The contacts editor: the Save button is res/layout/editor_save_button.xml
/// (`editor_menu_save_button`, text `menu_save` "Save"), the fields are EditTexts without ids whose
/// hints are `name_given` "First name", `name_family` "Last name" and `phoneLabelsGroup` "Phone"
/// (packages/apps/Contacts at android-14.0.0_r1).
fn editor(e: &Editor, ctx: &Context<'_>) -> Node {
    let field = |content: &str, hint: &str, f: EditorField, top: i32| {
        let mut n = node(
            "android.widget.EditText",
            CONTACTS,
            "",
            (150, top, 1050, top + 140),
        )
        .text(ctx.edit_text(content, hint))
        .tap(Action::Focus(f));
        n.focused = e.focus == f;
        n.long_clickable = true;
        n
    };
    node(
        "android.widget.FrameLayout",
        CONTACTS,
        "",
        (0, 0, WIDTH, HEIGHT),
    )
    .kids(vec![
        node(
            "android.widget.Button",
            CONTACTS,
            &format!("{CONTACTS}:id/editor_menu_save_button"),
            (860, 80, 1060, 200),
        )
        .text("Save")
        .tap(Action::Save),
        field(&e.first, "First name", EditorField::FirstName, 500),
        field(&e.last, "Last name", EditorField::LastName, 660),
        field(&e.phone, "Phone", EditorField::Phone, 900),
    ])
}

// ---- uiautomator's XML ----

/// `AccessibilityNodeInfoDumper.dumpWindowToFile`'s document for `root` (rotation 0).
pub fn dump_xml(root: &Node) -> String {
    let mut out = String::from("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>");
    out.push_str("<hierarchy rotation=\"0\">");
    write_node(root, 0, &mut out);
    out.push_str("</hierarchy>");
    out
}

fn write_node(n: &Node, index: usize, out: &mut String) {
    out.push_str("<node");
    if !naf_excluded(n) && !naf_check(n) {
        attr(out, "NAF", "true");
    }
    attr(out, "index", &index.to_string());
    attr(out, "text", &n.text);
    attr(out, "resource-id", &n.resource_id);
    attr(out, "class", n.class);
    attr(out, "package", n.package);
    attr(out, "content-desc", &n.desc);
    attr(out, "checkable", "false");
    attr(out, "checked", "false");
    attr(out, "clickable", bool_str(n.clickable));
    attr(out, "enabled", bool_str(!n.disabled));
    attr(out, "focusable", bool_str(n.focusable));
    attr(out, "focused", bool_str(n.focused));
    attr(out, "scrollable", bool_str(n.scrollable));
    attr(out, "long-clickable", bool_str(n.long_clickable));
    attr(out, "password", "false");
    attr(out, "selected", "false");
    let (l, t, r, b) = n.bounds;
    // Rect.toShortString.
    attr(out, "bounds", &format!("[{l},{t}][{r},{b}]"));
    if n.children.is_empty() {
        // KXmlSerializer closes an element without content with " />".
        out.push_str(" />");
        return;
    }
    out.push('>');
    for (i, c) in n.children.iter().enumerate() {
        write_node(c, i, out);
    }
    out.push_str("</node>");
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// KXmlSerializer.attribute: `name="value"` with `&`, `<`, `>` and `"` escaped, and (as in libcore's
/// writeEscaped) newlines, carriage returns and tabs as character references inside attributes.
fn attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\r' | '\t' => out.push_str(&format!("&#{};", c as u32)),
            // AccessibilityNodeInfoDumper.stripInvalidXMLChars.
            c if matches!(c as u32, 0x1..=0x8 | 0xB..=0xC | 0xE..=0x1F | 0x7F..=0x84 | 0x86..=0x9F | 0xFDD0..=0xFDDF) => {
                out.push('.')
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `nafExcludedClass`: GridView, GridLayout, ListView, TableLayout.
fn naf_excluded(n: &Node) -> bool {
    [
        "android.widget.GridView",
        "android.widget.GridLayout",
        "android.widget.ListView",
        "android.widget.TableLayout",
    ]
    .iter()
    .any(|c| n.class.ends_with(c))
}

/// `nafCheck`: a clickable, enabled node without text or description is "not accessibility friendly"
/// unless a descendant has text or a description.
fn naf_check(n: &Node) -> bool {
    let naf = n.clickable && !n.disabled && n.desc.is_empty() && n.text.is_empty();
    !naf || child_naf_check(n)
}

fn child_naf_check(n: &Node) -> bool {
    n.children
        .iter()
        .any(|c| !c.desc.is_empty() || !c.text.is_empty() || child_naf_check(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhandset::generation::by_id;

    fn ctx(profile: &Profile, g: &str) -> Context<'static> {
        // Leaked for the test's lifetime only: a profile is small.
        let profile: &'static Profile = Box::leak(Box::new(profile.clone()));
        Context {
            generation: by_id(g).unwrap(),
            profile,
        }
    }

    #[test]
    fn imei_dialog_only_after_the_code_is_typed_not_from_an_intent() {
        let profile = crate::vhandset::shell::tests::test_profile();
        let c = ctx(&profile, "android-14");
        let mut ui = Ui::default();
        ui.open(Screen::Dialer(Dialer {
            digits: "*#06#".into(),
            filled_by_intent: true,
            imei_dialog: false,
        }));
        after_text_changed(match &mut ui.screen {
            Screen::Dialer(d) => d,
            _ => unreachable!(),
        });
        assert!(!dump_xml(&ui.tree(&c)).contains("deviceid_hex"));
        // Emptying the field forgets the intent; typing the code shows the dialog.
        for _ in 0..5 {
            ui.key(67, SendButton::Keys, &mut Providers::default(), 0);
        }
        ui.type_text("*#06#");
        let xml = dump_xml(&ui.tree(&c));
        assert!(
            xml.contains("resource-id=\"com.android.dialer:id/deviceid_hex\"")
                && xml.contains("text=\"359881234567890\""),
            "{xml}"
        );
        // Not cancelable: BACK does nothing, OK closes it.
        ui.key(4, SendButton::Keys, &mut Providers::default(), 0);
        assert!(dump_xml(&ui.tree(&c)).contains("android:id/button1"));
        let ok = hit_center(&ui.tree(&c), "android:id/button1");
        ui.tap(ok.0, ok.1, &c, &mut Providers::default(), 0);
        let xml = dump_xml(&ui.tree(&c));
        assert!(xml.contains("com.android.dialer:id/digits") && !xml.contains("IMEI"));
    }

    fn hit_center(n: &Node, id: &str) -> (i32, i32) {
        if n.resource_id == id {
            let (l, t, r, b) = n.bounds;
            return ((l + r) / 2, (t + b) / 2);
        }
        n.children
            .iter()
            .map(|c| hit_center(c, id))
            .find(|p| *p != (-1, -1))
            .unwrap_or((-1, -1))
    }

    #[test]
    fn xml_shape() {
        let xml = dump_xml(&home());
        assert!(xml.starts_with(
            "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\"><node index=\"0\" text=\"\" resource-id=\"\" class=\"android.widget.FrameLayout\" package=\"com.android.launcher3\" content-desc=\"\" checkable=\"false\" checked=\"false\" clickable=\"false\" enabled=\"true\" focusable=\"false\" focused=\"false\" scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" bounds=\"[0,0][1080,2400]\"><node index=\"0\" text=\"Phone\""
        ), "{xml}");
        assert!(xml.ends_with(" /></node></hierarchy>"), "{xml}");
        let mut n = node("android.view.View", MESSAGING, "x", (0, 0, 1, 1));
        n.clickable = true;
        assert!(dump_xml(&n).contains("<node NAF=\"true\" index=\"0\""));
        let mut s = String::new();
        attr(&mut s, "text", "a&b<\"c\">\n");
        assert_eq!(s, " text=\"a&amp;b&lt;&quot;c&quot;&gt;&#10;\"");
    }
}
