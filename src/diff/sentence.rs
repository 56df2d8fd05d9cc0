//! The sentences of a diff: each change said once, in words a regulator can quote ("Build B no
//! longer sends <imei> (plain, in the clear over HTTP) to msg.example when an SMS is sent.").
//!
//! Steps are said by what they do (`when an SMS is sent`, `during setup`), from the step names
//! scenario files use; a step without a plainer meaning is named by its label.
//!
//! Must not touch: which changes there are (`diff`), output formats (`render`).

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Carriage, Change, ChangeKind, ScenarioDiff};

/// How names (identifier kinds, hosts, scenarios) are set in a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// As they are: for the terminal and JSON.
    Plain,
    /// In code spans: Markdown would otherwise read `<imei>` as an HTML tag.
    Markdown,
}

impl Style {
    fn name(self, text: &str) -> String {
        match self {
            Style::Plain => text.to_string(),
            Style::Markdown => format!("`{}`", text.replace('`', "'")),
        }
    }
}

/// What a step does, in words, for the step names scenario files use (docs/scenarios.md).
fn meaning(name: &str) -> Option<&'static str> {
    Some(match name {
        "fresh-setup" => "during setup",
        "idle" => "while the phone sits idle",
        "add-contact" => "when a contact is added",
        "send-sms" => "when an SMS is sent",
        "receive-sms" => "when an SMS is received",
        "launch" => "when an app is launched",
        "install" => "when an app is installed",
        "reboot" => "around a reboot",
        "toggle" => "when a setting is toggled",
        "before-steps" => "before the first step",
        "after-steps" => "after the last step",
        _ => return None,
    })
}

/// The step of `label` (`4 send-sms`) in words: `when an SMS is sent`, with its label added when
/// the scenario has several steps of that name (`while the phone sits idle (step `5 idle`)`), or
/// `in step `5 tap`` when the step has no plainer meaning.
pub(super) fn when(label: &str, repeated: bool) -> String {
    match meaning(super::step_name(label)) {
        Some(m) if repeated => format!("{m} (step `{label}`)"),
        Some(m) => m.to_string(),
        None => format!("in step `{label}`"),
    }
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// How an identifier travelled: `inside TLS 1.3`, `in the clear over HTTP`, `in the TLS handshake`.
fn transport(protocol: &str, tls: Option<&str>) -> String {
    match (tls, protocol) {
        (Some(version), _) => format!("inside {version}"),
        (None, "tls") => "in the TLS handshake".to_string(),
        (None, "quic") => "in the QUIC handshake".to_string(),
        (None, p) => format!("in the clear over {}", p.to_uppercase()),
    }
}

fn transports(carried: &[Carriage]) -> String {
    let set: BTreeSet<String> = carried
        .iter()
        .map(|c| transport(&c.protocol, c.tls.as_deref()))
        .collect();
    join_and(&set.into_iter().collect::<Vec<_>>())
}

/// The encodings in the order a reader checks them: the plain form first.
fn encodings(carried: &[Carriage]) -> String {
    let mut set: Vec<String> = carried
        .iter()
        .map(|c| c.encoding.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    set.sort_by(|a, b| (a != "plain", a).cmp(&(b != "plain", b)));
    join_and(&set)
}

fn locations(carried: &[Carriage]) -> String {
    let set: BTreeSet<String> = carried.iter().map(|c| c.location.clone()).collect();
    join_and(&set.into_iter().collect::<Vec<_>>())
}

/// `plain and md5, in the clear over HTTP; base64, inside TLS 1.3`; with `places`, each encoding
/// says where it was (`plain in http.body`).
fn carriage(carried: &[Carriage], places: bool) -> String {
    let mut by_transport: BTreeMap<String, Vec<Carriage>> = BTreeMap::new();
    for c in carried {
        by_transport
            .entry(transport(&c.protocol, c.tls.as_deref()))
            .or_default()
            .push(c.clone());
    }
    by_transport
        .into_iter()
        .map(|(t, cs)| {
            let how = if places {
                join_and(
                    &cs.iter()
                        .map(|c| format!("{} in {}", c.encoding, c.location))
                        .collect::<Vec<_>>(),
                )
            } else {
                encodings(&cs)
            };
            format!("{how}, {t}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// ` (when an SMS is sent)` after a step's label; nothing when the words would only repeat it.
fn aside(when: &str) -> String {
    if when.starts_with("in step `") {
        String::new()
    } else {
        format!(" ({when})")
    }
}

/// The sentence of one change of `scenario`. `name_scenario`: the diff covers several scenarios,
/// so each sentence says which.
pub(super) fn say(
    scenario: &ScenarioDiff,
    change: &Change,
    name_scenario: bool,
    style: Style,
) -> String {
    let n = |text: &str| style.name(text);
    let id = change.identifier.as_deref().map(n).unwrap_or_default();
    let host = change.host.as_deref().map(n).unwrap_or_default();
    let step = change.step.as_deref().unwrap_or_default();
    let mut when = change.when.clone().unwrap_or_default();
    if name_scenario {
        when = format!("{when} in the {} scenario", n(&scenario.scenario));
    }
    let (a, b) = (&change.carried_in_a, &change.carried_in_b);
    let protocols = |p: &[String]| join_and(p);
    match change.kind {
        ChangeKind::LeakAdded => format!(
            "Build B sends {id} ({}) to {host} {when}; build A did not.",
            carriage(b, false)
        ),
        ChangeKind::LeakRemoved => format!(
            "Build B no longer sends {id} ({}) to {host} {when}.",
            carriage(a, false)
        ),
        ChangeKind::EncodingChanged => format!(
            "Build B sends {id} to {host} as {} instead of {} {when}.",
            encodings(b),
            encodings(a)
        ),
        ChangeKind::TransportChanged => format!(
            "Build B sends {id} to {host} {} instead of {} {when}.",
            transports(b),
            transports(a)
        ),
        ChangeKind::LocationChanged if locations(a) != locations(b) => format!(
            "Build B sends {id} to {host} in {} instead of {} {when}.",
            locations(b),
            locations(a)
        ),
        ChangeKind::LocationChanged => format!(
            "Build B sends {id} to {host} as {} instead of {} {when}.",
            carriage(b, true),
            carriage(a, true)
        ),
        ChangeKind::HostAdded => format!(
            "Build B contacts {host} ({}) {when}; build A did not.",
            protocols(&change.protocols_in_b)
        ),
        ChangeKind::HostRemoved => format!(
            "Build B no longer contacts {host} ({}) {when}.",
            protocols(&change.protocols_in_a)
        ),
        ChangeKind::HostTransportChanged => format!(
            "Build B reaches {host} over {} instead of {} {when}.",
            protocols(&change.protocols_in_b),
            protocols(&change.protocols_in_a)
        ),
        ChangeKind::StepAdded => format!(
            "Build B's run has a step build A's has not: `{step}`{}.",
            aside(&when)
        ),
        ChangeKind::StepRemoved => format!(
            "Build B's run no longer has the step `{step}`{} that build A's had.",
            aside(&when)
        ),
        ChangeKind::SizeCorrelationAdded => format!(
            "Build B's TLS traffic to {host} grows with {id} ({}) {when}; build A's did not.",
            join_and(&change.slopes_in_b)
        ),
        ChangeKind::SizeCorrelationRemoved => format!(
            "Build B's TLS traffic to {host} no longer grows with {id} ({} in build A) {when}.",
            join_and(&change.slopes_in_a)
        ),
        ChangeKind::SizeCorrelationChanged => format!(
            "Build B's TLS traffic to {host} grows with {id} as {} instead of {} {when}.",
            join_and(&change.slopes_in_b),
            join_and(&change.slopes_in_a)
        ),
        ChangeKind::ScenarioOnlyInA => format!(
            "Build B has no outcome of the {} scenario to compare with build A's ({}).",
            n(&scenario.scenario),
            n(scenario.a.as_ref().map(|o| o.file.as_str()).unwrap_or("?"))
        ),
        ChangeKind::ScenarioOnlyInB => format!(
            "Build A has no outcome of the {} scenario to compare with build B's ({}).",
            n(&scenario.scenario),
            n(scenario.b.as_ref().map(|o| o.file.as_str()).unwrap_or("?"))
        ),
    }
}

/// The sentences of every change of `scenario` in `style`.
pub(super) fn sentences(scenario: &ScenarioDiff, name_scenario: bool, style: Style) -> Vec<String> {
    scenario
        .changes
        .iter()
        .map(|c| say(scenario, c, name_scenario, style))
        .collect()
}
