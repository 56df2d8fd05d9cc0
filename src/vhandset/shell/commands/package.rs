//! `pm` (and `cmd package`): the packages the handset has with their APK paths (`list packages`,
//! `path`), and `clear`, which empties the data of the contacts and telephony providers or closes an
//! app's screens. Third-party apps of the persona (PCAPdroid) are listed with `-3` and cleared too.
//!
//! Must not touch: the provider tables' contents (`providers` clears them), intents (`activity`), an
//! app's own state (`apps` clears it).

use std::sync::Arc;

use super::CmdResult;
use crate::vhandset::apps::pcapdroid;
use crate::vhandset::shell::Handset;

/// System packages every handset has, with their APK paths.
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

/// Third-party packages the persona installed, with their APK paths.
fn third_party(handset: &Handset) -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    if pcapdroid::installed(handset).is_some() {
        v.push((pcapdroid::PACKAGE, pcapdroid::APK_PATH));
    }
    if pcapdroid::mitm::installed(handset).is_some() {
        v.push((pcapdroid::mitm::PACKAGE, pcapdroid::mitm::APK_PATH));
    }
    v
}

/// Every package installed (system and third-party), by name.
pub(crate) fn installed_packages(handset: &Handset) -> Vec<&'static str> {
    PACKAGES
        .iter()
        .map(|(p, _)| *p)
        .chain(third_party(handset).into_iter().map(|(p, _)| p))
        .collect()
}

pub(super) fn pm(handset: &Arc<Handset>, args: &[String]) -> CmdResult {
    match args.first().map(String::as_str) {
        Some("list") if args.get(1).is_some_and(|a| a == "packages") => {
            let with_path = args.iter().any(|a| a == "-f");
            let only_third_party = args.iter().any(|a| a == "-3");
            let only_system = args.iter().any(|a| a == "-s");
            let filter = args[2..].iter().find(|a| !a.starts_with('-'));
            let mut list: Vec<(&str, &str)> = Vec::new();
            if !only_third_party {
                list.extend(PACKAGES.iter().copied());
            }
            if !only_system {
                list.extend(third_party(handset));
            }
            // PackageManagerShellCommand sorts nothing; the system lists by package name.
            list.sort();
            let mut out = String::new();
            for (pkg, path) in list {
                if filter.is_some_and(|f| !pkg.contains(f.as_str())) {
                    continue;
                }
                if with_path {
                    out.push_str(&format!("package:{path}={pkg}\n"));
                } else {
                    out.push_str(&format!("package:{pkg}\n"));
                }
            }
            CmdResult::ok(out)
        }
        Some("path") => match args.get(1).and_then(|p| {
            PACKAGES
                .iter()
                .copied()
                .chain(third_party(handset))
                .find(|(n, _)| n == p)
        }) {
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
            if !installed_packages(handset).contains(&pkg.as_str()) {
                return CmdResult::ok("Failed\n");
            }
            if pkg == pcapdroid::PACKAGE {
                // The app is killed and its data (preferences: the API key) deleted.
                pcapdroid::force_stop(handset);
                handset.state().pcapdroid.clear_data();
                return CmdResult::ok("Success\n");
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
