//! `pm` (and `cmd package`): the packages the handset has with their APK paths (`list packages`,
//! `path`), and `clear`, which empties the data of the contacts and telephony providers or closes an
//! app's screens.
//!
//! Must not touch: the provider tables' contents (`providers` clears them), intents (`activity`).

use std::sync::Arc;

use super::CmdResult;
use crate::vhandset::shell::Handset;

/// Packages the handset has, with their APK paths.
pub(super) const PACKAGES: &[(&str, &str)] = &[
    ("android", "/system/framework/framework-res.apk"),
    (
        "com.android.contacts",
        "/product/priv-app/Contacts/Contacts.apk",
    ),
    (
        "com.android.messaging",
        "/product/app/messaging/messaging.apk",
    ),
    (
        "com.android.phone",
        "/system/priv-app/TeleService/TeleService.apk",
    ),
    (
        "com.android.providers.contacts",
        "/system/priv-app/ContactsProvider/ContactsProvider.apk",
    ),
    (
        "com.android.providers.settings",
        "/system/priv-app/SettingsProvider/SettingsProvider.apk",
    ),
    (
        "com.android.providers.telephony",
        "/system/priv-app/TelephonyProvider/TelephonyProvider.apk",
    ),
    (
        "com.android.settings",
        "/system_ext/priv-app/Settings/Settings.apk",
    ),
    ("com.android.shell", "/system/priv-app/Shell/Shell.apk"),
    (
        "com.android.systemui",
        "/system_ext/priv-app/SystemUI/SystemUI.apk",
    ),
    (
        "com.google.android.apps.messaging",
        "/product/app/PrebuiltBugle/PrebuiltBugle.apk",
    ),
];

pub(super) fn pm(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    match args.first().map(String::as_str) {
        Some("list") if args.get(1).is_some_and(|a| a == "packages") => {
            let with_path = args.iter().any(|a| a == "-f");
            let third_party = args.iter().any(|a| a == "-3");
            let filter = args[2..].iter().find(|a| !a.starts_with('-'));
            let mut out = String::new();
            if !third_party {
                for (pkg, path) in PACKAGES {
                    if filter.is_some_and(|f| !pkg.contains(f.as_str())) {
                        continue;
                    }
                    if with_path {
                        out.push_str(&format!("package:{path}={pkg}\n"));
                    } else {
                        out.push_str(&format!("package:{pkg}\n"));
                    }
                }
            }
            CmdResult::ok(out)
        }
        Some("path") => match args
            .get(1)
            .and_then(|p| PACKAGES.iter().find(|(n, _)| n == p))
        {
            Some((_, path)) => CmdResult::ok(format!("package:{path}\n")),
            None => CmdResult {
                code: 1,
                ..Default::default()
            },
        },
        Some("clear") => {
            let Some(pkg) = args.iter().skip(1).find(|a| !a.starts_with('-')) else {
                return CmdResult::fail("Error: no package specified\n", 1);
            };
            if !PACKAGES.iter().any(|(n, _)| n == pkg) {
                return CmdResult::ok("Failed\n");
            }
            let mut st = handset.state();
            match pkg.as_str() {
                "com.android.providers.contacts" => st.providers.clear_contacts(),
                "com.android.providers.telephony" => st.providers.clear_sms(),
                p => {
                    if let Some(app) = crate::vhandset::shell::ui::App::from_package(p) {
                        st.ui.close_app(app);
                    }
                }
            }
            CmdResult::ok("Success\n")
        }
        Some("grant" | "revoke" | "enable" | "disable-user" | "set-home-activity") => {
            CmdResult::default()
        }
        Some(other) => CmdResult::fail(format!("Unknown command: {other}\n"), 1),
        None => CmdResult::fail(
            "Package manager (package) commands:\n  help\n  list packages [-f] [-3] [FILTER]\n  path PACKAGE\n  clear PACKAGE\n",
            1,
        ),
    }
}
