//! The windows a PCAPdroid start can put on screen, as `uiautomator dump` shows them: PCAPdroid's
//! control request (CaptureCtrl), its notice before the VPN request, and Android's own VPN
//! confirmation.
//!
//! Every text names the file it comes from. PCAPdroid: v1.9.1 (`fc9fe0c5`),
//! `app/src/main/res/values/strings.xml` and `app/src/main/res/layout/ctrl_consent.xml`; Android's
//! dialog: `packages/VpnDialogs` (`res/values/strings.xml`, `ConfirmDialog.java`) of LineageOS
//! frameworks/base (docs/research/pcapdroid-api.md §3, source A-vpn). What the dump shows beyond the
//! resource texts is derived, not observed (no phone here): buttons of PCAPdroid's
//! MaterialComponents theme are upper-cased by `textAllCaps` (accessibility reports the transformed
//! text, TextView.getTextForAccessibility), a `<b>` in a string keeps its text, `Html.fromHtml`
//! turns `<br />` into a newline and an `<img>` into U+FFFC. The layout is simplified (fewer
//! containers than the real trees) and laid out for the handset's 1080x2400 display.
//!
//! Must not touch: what a button does (`pcapdroid` handles `Button`s), the screens of other apps.

use std::time::{Duration, Instant};

use super::super::Bundle;
use super::PACKAGE;
use crate::vhandset::shell::ui::{Action, Node, WIDTH, node};

/// strings.xml `ctrl_consent_title`.
pub const CONSENT_TITLE: &str = "PCAPdroid control request";
/// strings.xml `ctrl_consent`.
pub const CONSENT_TEXT: &str =
    "An app wants to capture your device traffic.\nDeny it if you are not sure";
/// strings.xml `deny`, upper-cased by the button's textAllCaps.
pub const DENY: &str = "DENY";
/// strings.xml `allow`, upper-cased by the button's textAllCaps.
pub const ALLOW: &str = "ALLOW";
/// ctrl_consent.xml: the Allow button starts disabled; CaptureCtrl.onCreate enables it with
/// `postDelayed(..., 1500)`.
pub const ALLOW_DELAY: Duration = Duration::from_millis(1500);
/// strings.xml `vpn_setup_msg` (its `<b>NOTE:</b>` is bold text), the message of CaptureHelper's
/// AlertDialog before the system's VPN request.
pub const VPN_NOTICE_TEXT: &str = "PCAPdroid simulates a VPN in order to capture the network traffic without root.\n\nTo start the capture, you need to accept the VPN request in the next screen.\n\nNOTE: to proceed, disable any configured Always-on VPN from the Android settings";
/// strings.xml `ok`, the notice's positive button.
pub const OK: &str = "OK";
/// VpnDialogs strings.xml `prompt`: the title of Android's ConfirmDialog.
pub const VPN_CONFIRM_TITLE: &str = "Connection request";
/// VpnDialogs strings.xml `warning` with the app's label ("PCAPdroid", strings.xml
/// `pcapdroid_app_name`) through Html.fromHtml: the XML's line breaks collapse to spaces, each
/// `<br />` is a newline, the icon `<img>` an object replacement character.
pub const VPN_CONFIRM_TEXT: &str = "PCAPdroid wants to set up a VPN connection that allows it to monitor network traffic. Only accept if you trust the source. \n\n\u{FFFC} appears at the top of your screen when VPN is active.";
/// android.R.string.cancel, ConfirmDialog's negative button.
pub const CANCEL: &str = "Cancel";
/// The package of Android's VPN dialogs (VpnDialogs AndroidManifest.xml).
pub const VPN_DIALOGS: &str = "com.android.vpndialogs";

/// What a start or stop request waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The `action` extra (`start`, `stop`, `get_status`).
    pub action: String,
    pub extras: Bundle,
}

/// A PCAPdroid-related window in the foreground.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// CaptureCtrl's consent window (ctrl_consent.xml). For an adb request there is no calling app:
    /// the `caller_app` group — app icon, name, package and the Once/Forever radio buttons
    /// (`choice_once`, `choice_forever`) — is GONE, so none of it is in the dump.
    Consent { request: Request, shown_at: Instant },
    /// CaptureHelper.startCapture's AlertDialog (`vpn_setup_msg`, OK) when VpnService.prepare asks
    /// for consent; cancelable (BACK fails the start).
    VpnNotice { request: Request },
    /// Android's `com.android.vpndialogs/.ConfirmDialog` (OK / Cancel; BACK does nothing:
    /// `onBackPressed` is empty).
    VpnConfirm { request: Request },
}

/// A tap on one of the windows' buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Allow,
    Deny,
    NoticeOk,
    ConfirmOk,
    ConfirmCancel,
}

impl Window {
    /// Whether the window belongs to CaptureCtrl's activity (the consent window and the notice, an
    /// AlertDialog on it): a new Intent for it is then delivered to that top-most instance.
    pub fn is_capture_ctrl(&self) -> bool {
        !matches!(self, Window::VpnConfirm { .. })
    }

    pub fn request(&self) -> &Request {
        match self {
            Window::Consent { request, .. }
            | Window::VpnNotice { request }
            | Window::VpnConfirm { request } => request,
        }
    }

    /// The window's accessibility tree at `now` (the Allow button is enabled 1500 ms after it shows).
    pub fn tree(&self, now: Instant) -> Node {
        match self {
            Window::Consent { shown_at, .. } => {
                consent(now.duration_since(*shown_at) >= ALLOW_DELAY)
            }
            Window::VpnNotice { .. } => vpn_notice(),
            Window::VpnConfirm { .. } => vpn_confirm(),
        }
    }
}

fn id(name: &str) -> String {
    format!("{PACKAGE}:id/{name}")
}

fn consent(allow_enabled: bool) -> Node {
    let mut allow = node(
        "android.widget.Button",
        PACKAGE,
        &id("allow_btn"),
        (540, 1382, 1001, 1508),
    )
    .text(ALLOW)
    .tap(Action::Pcapdroid(Button::Allow));
    allow.disabled = !allow_enabled;
    node(
        "android.widget.FrameLayout",
        PACKAGE,
        "",
        (0, 880, WIDTH, 1520),
    )
    .kids(vec![
        node(
            "android.widget.LinearLayout",
            PACKAGE,
            "",
            (26, 880, 1054, 1520),
        )
        .kids(vec![
            node("android.widget.TextView", PACKAGE, "", (290, 920, 790, 985)).text(CONSENT_TITLE),
            node(
                "android.widget.TextView",
                PACKAGE,
                "",
                (110, 1200, 970, 1330),
            )
            .text(CONSENT_TEXT),
            node(
                "android.widget.LinearLayout",
                PACKAGE,
                "",
                (79, 1382, 1001, 1508),
            )
            .kids(vec![
                node(
                    "android.widget.Button",
                    PACKAGE,
                    &id("deny_btn"),
                    (79, 1382, 540, 1508),
                )
                .text(DENY)
                .tap(Action::Pcapdroid(Button::Deny)),
                allow,
            ]),
        ]),
    ])
}

fn vpn_notice() -> Node {
    node(
        "android.widget.FrameLayout",
        PACKAGE,
        "",
        (66, 920, 1014, 1480),
    )
    .kids(vec![
        node(
            "android.widget.TextView",
            PACKAGE,
            "android:id/message",
            (129, 980, 951, 1330),
        )
        .text(VPN_NOTICE_TEXT),
        node(
            "android.widget.Button",
            PACKAGE,
            "android:id/button1",
            (780, 1350, 951, 1470),
        )
        .text(OK)
        .tap(Action::Pcapdroid(Button::NoticeOk)),
    ])
}

fn vpn_confirm() -> Node {
    node(
        "android.widget.FrameLayout",
        VPN_DIALOGS,
        "",
        (66, 860, 1014, 1540),
    )
    .kids(vec![
        node(
            "android.widget.TextView",
            VPN_DIALOGS,
            "android:id/alertTitle",
            (129, 900, 951, 980),
        )
        .text(VPN_CONFIRM_TITLE),
        node(
            "android.widget.TextView",
            VPN_DIALOGS,
            &format!("{VPN_DIALOGS}:id/warning"),
            (129, 1010, 951, 1380),
        )
        .text(VPN_CONFIRM_TEXT),
        node(
            "android.widget.Button",
            VPN_DIALOGS,
            "android:id/button2",
            (560, 1410, 760, 1530),
        )
        .text(CANCEL)
        .tap(Action::Pcapdroid(Button::ConfirmCancel)),
        node(
            "android.widget.Button",
            VPN_DIALOGS,
            "android:id/button1",
            (780, 1410, 951, 1530),
        )
        .text(OK)
        .tap(Action::Pcapdroid(Button::ConfirmOk)),
    ])
}
