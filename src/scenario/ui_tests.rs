//! Unit tests for the UI steps (`launch`, `tap`, `wait-for`, `type`, `key`, `toggle`, `install`,
//! `reboot`, `any`) and `via`: what they parse to, and each mistake's line:col and fix.

use std::path::Path;
use std::time::Duration;

use super::tests::{parse, problems};
use super::*;

const UI: &str = r#"name: ui
identifiers:
  contact_phone: "+6598765432"
  sms_body: "tattle canary {run_id}"
steps:
  - launch: com.google.android.apps.messaging
  - launch: { action: android.intent.action.SENDTO, data: "sms:{contact_phone}", extras: { sms_body: "{sms_body}" } }
  - wait-for: { resource-id: "com.google.android.apps.messaging:id/compose_message_text", timeout: 20s }
  - type: { text: "{sms_body}", into: { resource-id: compose_message_text } }
  - tap: { content-desc: "Send SMS" }
  - key: [DPAD_RIGHT, keycode_enter]
  - key: HOME
  - toggle: { wifi: off, airplane: on }
  - install: apps/test.apk
  - reboot: { timeout: 5m }
  - any:
      - tap: { text: Send }
      - steps:
          - key: DPAD_RIGHT
          - key: ENTER
    settle: 3s
  - send-sms: { to: "{contact_phone}", body: "{sms_body}", via: keys }
  - add-contact: { name: Wei, phone: "{contact_phone}", via: [provider, ui] }
"#;

#[test]
fn ui_steps_parse() {
    let s = parse(UI).unwrap();
    let names: Vec<&str> = s.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(
        names,
        [
            "launch",
            "launch",
            "wait-for",
            "type",
            "tap",
            "key",
            "key",
            "toggle",
            "install",
            "reboot",
            "any",
            "send-sms",
            "add-contact"
        ]
    );
    assert_eq!(
        s.steps[0].action,
        StepAction::Launch(Launch::Package("com.google.android.apps.messaging".into()))
    );
    let StepAction::Launch(Launch::Intent(intent)) = &s.steps[1].action else {
        panic!("{:?}", s.steps[1].action)
    };
    assert_eq!(intent.data.as_deref(), Some("sms:{contact_phone}"));
    assert_eq!(
        intent.extras,
        [("sms_body".to_string(), "{sms_body}".to_string())]
    );
    assert_eq!(
        s.steps[2].action,
        StepAction::WaitFor {
            target: Selector::new(
                By::ResourceId,
                "com.google.android.apps.messaging:id/compose_message_text"
            ),
            timeout: Duration::from_secs(20)
        }
    );
    assert_eq!(s.steps[2].settle, Duration::ZERO, "wait-for causes nothing");
    assert_eq!(
        s.steps[3].settle,
        Duration::from_secs(1),
        "UI steps settle 1s"
    );
    assert_eq!(
        s.steps[4].action,
        StepAction::Tap {
            target: Selector::new(By::ContentDesc, "Send SMS"),
            timeout: crate::device::ui::DEFAULT_TIMEOUT
        }
    );
    let StepAction::Key(keys) = &s.steps[5].action else {
        panic!()
    };
    assert_eq!(
        keys.iter().map(|k| (k.name, k.code)).collect::<Vec<_>>(),
        [("DPAD_RIGHT", 22), ("ENTER", 66)]
    );
    assert_eq!(
        s.steps[7].action,
        StepAction::Toggle(vec![(Radio::Wifi, false), (Radio::Airplane, true)])
    );
    assert_eq!(
        s.steps[8].action,
        StepAction::Install {
            apk: "apps/test.apk".into()
        }
    );
    assert_eq!(
        s.steps[9].action,
        StepAction::Reboot {
            timeout: Duration::from_secs(300)
        }
    );
    let alternatives = s.steps[10].action.alternatives();
    assert_eq!(alternatives.len(), 2);
    assert_eq!(alternatives[0].len(), 1);
    assert_eq!(alternatives[1].len(), 2);
    assert_eq!(alternatives[1][1].line, 20);
    assert_eq!(s.steps[10].settle, Duration::from_secs(3));
    assert!(
        matches!(&s.steps[11].action, StepAction::SendSms { via, .. } if via == &[SmsVia::Keys])
    );
    assert!(
        matches!(&s.steps[12].action, StepAction::AddContact { via, .. } if via == &[ContactVia::Provider, ContactVia::Ui])
    );

    // Placeholders are filled everywhere a value may hold them, inside alternatives too.
    let (x, _) = s.expand("r1");
    let StepAction::Type { text, into, .. } = &x.steps[3].action else {
        panic!()
    };
    assert_eq!(text, "tattle canary r1");
    assert_eq!(into.as_ref().unwrap().value, "compose_message_text");
    let StepAction::Launch(Launch::Intent(intent)) = &x.steps[1].action else {
        panic!()
    };
    assert_eq!(intent.data.as_deref(), Some("sms:+6598765432"));
    assert_eq!(intent.extras[0].1, "tattle canary r1");
    // Debug keeps canaries out.
    let shown = format!("{x:?}");
    assert!(
        !shown.contains("6598765432") && !shown.contains("canary"),
        "{shown}"
    );
    // The any's quickest alternative: a tap (1s), plus its own settle.
    assert_eq!(
        s.steps[10].minimum_duration(),
        Duration::from_secs(1) + Duration::from_secs(3)
    );
}

#[test]
fn built_ins_try_the_screen_first() {
    let (file, text) = builtin("send-sms").unwrap();
    let s = Scenario::parse(text, Path::new(file)).unwrap();
    assert!(s.steps.iter().any(|st| matches!(&st.action,
        StepAction::SendSms { via, .. } if via == DEFAULT_SMS_VIA)));
    assert!(s.steps.iter().any(|st| matches!(&st.action,
        StepAction::AddContact { via, .. } if via == DEFAULT_CONTACT_VIA)));
    assert_eq!(DEFAULT_SMS_VIA, [SmsVia::Ui, SmsVia::Keys]);
    assert_eq!(DEFAULT_CONTACT_VIA, [ContactVia::Ui, ContactVia::Provider]);
}

#[test]
fn typos_get_suggestions() {
    assert_eq!(
        problems("steps:\n  - tapp: { text: Send }\n"),
        ["2:5: unknown step `tapp` | did you mean `tap`?"]
    );
    assert_eq!(
        problems("steps:\n  - wait_for: { text: Send }\n"),
        ["2:5: unknown step `wait_for` | did you mean `wait-for`?"]
    );
    assert_eq!(
        problems("steps:\n  - key: [DPAD_RIGHT, ENTRE]\n"),
        ["2:23: unknown key `ENTRE` | did you mean `ENTER`?"]
    );
    assert_eq!(
        problems("steps:\n  - key: 66\n"),
        [
            "2:10: unknown key `66` | keys are named (`ENTER`, `0` is the digit key 0); for a raw code use `shell: input keyevent N`"
        ]
    );
    assert_eq!(
        problems("steps:\n  - toggle: { wfi: off }\n"),
        ["2:15: unknown key `wfi` in `toggle` | did you mean `wifi`?"]
    );
    assert_eq!(
        problems("steps:\n  - tap: { txt: Send }\n"),
        ["2:12: unknown key `txt` in `tap` | did you mean `text`?",]
    );
    assert_eq!(
        problems("steps:\n  - send-sms: { to: \"+1\", body: hi, via: [ui, keyz] }\n"),
        ["2:47: unknown method `keyz` | did you mean `keys`?"]
    );
}

#[test]
fn ui_step_mistakes_point_at_their_node() {
    assert_eq!(
        problems("steps:\n  - tap: { timeout: 5s }\n"),
        [
            "2:10: `tap` needs what to look for on the screen | add one of `text: \"Send\"`, `resource-id: \"com.android.messaging:id/send_message_button\"` or `content-desc: \"Send SMS\"` (as `uiautomator dump` shows them)"
        ]
    );
    let p = problems("steps:\n  - tap: { text: Send, content-desc: Send }\n");
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with(
            "2:38: `tap` looks for one thing: `text` and `content-desc` are both given"
        ),
        "{p:?}"
    );
    let p = problems("steps:\n  - toggle: { wifi: maybe, airplane: true }\n");
    assert_eq!(
        p,
        [
            "2:21: `wifi` takes on or off, got `maybe` | write `wifi: on` or `wifi: off`",
            "2:38: `airplane` takes on or off, got `true` | write `airplane: on`",
        ]
    );
    let p = problems("steps:\n  - install: app.zip\n");
    assert!(
        p[0].starts_with("2:14: `app.zip` is not an .apk file"),
        "{p:?}"
    );
    let p = problems("steps:\n  - wait-for: { text: A, timeout: 0s }\n");
    assert!(p[0].starts_with("2:35: `timeout` is zero"), "{p:?}");
    let p = problems("steps:\n  - wait-for: { text: A, timeout: 5 }\n");
    assert!(
        p[0].starts_with("2:35: `timeout`: `5` has no unit | did you mean `5s`?"),
        "{p:?}"
    );
    let p = problems("steps:\n  - launch: not a package\n");
    assert!(
        p[0].starts_with("2:13: `not a package` is not a package name"),
        "{p:?}"
    );
    let p = problems("steps:\n  - launch: { component: com.android.settings }\n");
    assert!(
        p[0].starts_with("2:26: `com.android.settings` is not a component"),
        "{p:?}"
    );
    let p = problems("steps:\n  - launch: { category: x }\n");
    assert!(
        p[0].starts_with("2:13: `launch` needs what to start"),
        "{p:?}"
    );
    let p = problems("steps:\n  - type: \"Zoë\"\n");
    assert!(p[0].starts_with("2:11: `type` cannot type `ë`"), "{p:?}");
    let p = problems("steps:\n  - type: { text: \"{nope}\" }\n");
    assert!(p[0].starts_with("2:20: `{nope}` is not defined"), "{p:?}");
    let p = problems("steps:\n  - reboot: now\n");
    assert!(p[0].starts_with("2:13: `reboot` takes no value"), "{p:?}");
    let p = problems("steps:\n  - send-sms: { to: \"+1\", body: hi, via: [] }\n");
    assert!(p[0].starts_with("2:42: `via` is empty"), "{p:?}");
    let p = problems("steps:\n  - send-sms: { to: \"+1\", body: hi, via: [ui, ui] }\n");
    assert!(
        p[0].starts_with("2:47: `ui` is listed twice in `via`"),
        "{p:?}"
    );
    let p = problems("steps:\n  - add-contact: { name: Wei, phone: \"+1\", via: keys }\n");
    assert!(
        p[0].starts_with("2:49: unknown method `keys` | did you mean `ui`?")
            || p[0].contains("valid methods"),
        "{p:?}"
    );
}

#[test]
fn receive_sms_takes_a_sender_the_console_accepts() {
    let s = parse("identifiers:\n  sms_body: \"in {run_id}\"\nsteps:\n  - receive-sms: { from: \"+6598765432\", body: \"{sms_body}\" }\n").unwrap();
    assert_eq!(
        s.steps[0].action,
        StepAction::ReceiveSms {
            from: "+6598765432".into(),
            body: "{sms_body}".into()
        }
    );
    let p = problems("steps:\n  - receive-sms: { from: \"+65 9876\", body: hi }\n");
    assert!(
        p[0].starts_with("2:26: `+65 9876` is not a number the emulator accepts"),
        "{p:?}"
    );
    let p = problems("steps:\n  - receive-sms: { body: hi }\n");
    assert!(p[0].contains("`receive-sms` is missing `from`"), "{p:?}");
}

#[test]
fn any_is_checked_like_steps() {
    let p = problems("steps:\n  - any:\n      - tap: { text: A }\n");
    assert!(
        p[0].starts_with("3:7: `any` has 1 alternative(s): it needs at least two"),
        "{p:?}"
    );
    let p = problems(
        "steps:\n  - any:\n      - tap: { text: A }\n      - any:\n          - key: HOME\n          - key: BACK\n",
    );
    assert!(p[0].starts_with("4:9: an `any` inside an `any`"), "{p:?}");
    let p = problems("steps:\n  - any:\n      - reboot\n      - key: HOME\n");
    assert!(
        p[0].starts_with("3:9: `reboot` cannot be an alternative of an `any`"),
        "{p:?}"
    );
    let p = problems("steps:\n  - any:\n      - tapp: { text: A }\n      - steps: []\n");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].starts_with("3:9: unknown step `tapp` | did you mean `tap`?"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("4:16: an alternative's `steps` takes a non-empty list"),
        "{p:?}"
    );
    let p = problems("steps:\n  - any: { tap: { text: A } }\n");
    assert!(
        p[0].starts_with("2:10: `any` takes a list of alternatives"),
        "{p:?}"
    );
}
