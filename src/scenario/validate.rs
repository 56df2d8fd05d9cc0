//! Turns the positioned YAML tree into a [`Scenario`], checking everything before any device is
//! touched and collecting every problem (up to a limit) with its position and a fix.
//!
//! Must not touch: I/O, devices, placeholder expansion (that happens in `Scenario::expand`).

use std::path::Path;
use std::time::Duration;

use saphyr_parser::ScalarStyle;

use super::error::{Diagnostic, MAX_DIAGNOSTICS, ScenarioError, suggestion};
use super::template::{self, DurationError, parse_duration, placeholders};
use super::tree::{self, Kind, Node, Pos};
use super::{
    By, ContactVia, DEFAULT_CONTACT_VIA, DEFAULT_SETTLE, DEFAULT_SMS_VIA, Intent, KeyPress, Launch,
    MAX_FILE_BYTES, MAX_STEPS, RUN_ID, Radio, STEP_NAMES, Scenario, Selector, SmsVia, Step,
    StepAction,
};
use crate::capture::CaptureSource;
use crate::capture::keylog::KeylogSource;
use crate::device::ui;
use tattle_analysis::identifier::is_valid_kind;
use tattle_analysis::sanitize;

/// Shorter canary values would match by chance.
const MIN_CANARY_CHARS: usize = 4;
const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "identifiers",
    "capture",
    "keylog",
    "policy",
    "steps",
];
const DURATION_HELP: &str = "use a number with a unit: 500ms, 5s or 2m (sums like 1m30s work too)";
/// The default `settle` of `tap`, `type` and `key`.
pub(super) const UI_SETTLE: Duration = Duration::from_secs(1);
/// Alternatives an `any` may have.
const MAX_ALTERNATIVES: usize = 16;

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    diags: Vec<Diagnostic>,
    omitted: usize,
}

impl Ctx<'_> {
    fn error(&mut self, pos: Pos, width: usize, message: String, help: impl Into<Option<String>>) {
        if self.diags.len() >= MAX_DIAGNOSTICS {
            self.omitted += 1;
            return;
        }
        // A column stays within its line (one past its end at most): saphyr-parser 0.3.4 adds the
        // bytes of a directive name to the column, not its characters (`%ééé\0` is reported 3
        // columns too far).
        let col = match self.text.lines().nth(pos.line.saturating_sub(1)) {
            Some(line) => pos.col.min(line.trim_end_matches('\r').chars().count() + 1),
            None => 1,
        };
        // Messages quote the file (a key, a step name, a value), and YAML escapes such as "\e" can
        // put any control character there: they reach the terminal only as `?`.
        let d = Diagnostic::new(
            self.path,
            self.text,
            pos.line,
            col,
            width,
            sanitize(&message),
            help.into().map(|h| sanitize(&h)),
        );
        self.diags.push(d);
    }

    fn at(&mut self, node: &Node, message: String, help: impl Into<Option<String>>) {
        self.error(node.pos, node.width(), message, help);
    }

    /// Keys of a mapping as strings, reporting non-string and duplicate keys.
    fn keys<'n>(
        &mut self,
        entries: &'n [(Node, Node)],
        context: &str,
    ) -> Vec<(&'n str, &'n Node, &'n Node)> {
        let mut out: Vec<(&str, &Node, &Node)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let Some(name) = k.as_scalar().filter(|_| !k.is_null()) else {
                self.at(
                    k,
                    format!("{context}: keys must be plain names, got {}", k.describe()),
                    "write `key: value` with a simple word as the key".to_string(),
                );
                continue;
            };
            if let Some((_, first, _)) = out.iter().find(|(n, _, _)| *n == name) {
                let line = first.pos.line;
                self.at(
                    k,
                    format!("duplicate key `{name}` ({context})"),
                    format!("it is already set on line {line}; keep one of them"),
                );
                continue;
            }
            out.push((name, k, v));
        }
        out
    }

    /// The node's text for a field that takes a string; reports anything else.
    fn string<'n>(&mut self, what: &str, node: &'n Node, example: &str) -> Option<&'n str> {
        match &node.kind {
            Kind::Scalar { text, .. } if !node.is_null() => {
                if text.trim().is_empty() {
                    self.at(
                        node,
                        format!("{what} is empty"),
                        format!("write e.g. `{example}`"),
                    );
                    return None;
                }
                Some(text)
            }
            _ => {
                let got = node.describe();
                let hint = if matches!(node.kind, Kind::Map(_)) {
                    " (a value starting with `{` is read as a mapping: put it in \"double quotes\")"
                } else {
                    ""
                };
                self.at(
                    node,
                    format!("{what} takes a string, got {got}{hint}"),
                    format!("write e.g. `{example}`"),
                );
                None
            }
        }
    }

    fn duration(&mut self, what: &str, node: &Node) -> Option<Duration> {
        let text = match &node.kind {
            Kind::Scalar { text, .. } if !node.is_null() => text,
            _ => {
                let got = node.describe();
                self.at(
                    node,
                    format!("{what} takes a duration like `5s`, got {got}"),
                    DURATION_HELP.to_string(),
                );
                return None;
            }
        };
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(DurationError::NoUnit(fixed)) => {
                self.at(
                    node,
                    format!("{what}: `{text}` has no unit"),
                    format!("did you mean `{fixed}`? {DURATION_HELP}"),
                );
                None
            }
            Err(DurationError::Malformed) => {
                let shown: String = text.chars().take(40).collect();
                self.at(
                    node,
                    format!("{what}: bad duration `{shown}`"),
                    DURATION_HELP.to_string(),
                );
                None
            }
            Err(DurationError::TooLong) => {
                self.at(
                    node,
                    format!("{what}: `{text}` is longer than 24h"),
                    "use a shorter duration; idle on a real phone is minutes, not days".to_string(),
                );
                None
            }
        }
    }

    /// Reports placeholders in `template` that are not in `defined`, pointing at the placeholder itself.
    fn placeholders(&mut self, node: &Node, template: &str, defined: &[&str], in_identifier: bool) {
        for (name, offset) in placeholders(template) {
            if defined.contains(&name) {
                continue;
            }
            let pos = self.placeholder_pos(node, name, offset);
            let width = name.chars().count() + 2;
            let list = defined.join(", ");
            let help = if in_identifier {
                format!(
                    "an identifier may use only `{{{RUN_ID}}}`; for a literal brace write `{{{{`"
                )
            } else {
                let close = defined.iter().copied().filter(|d| *d != name);
                match super::error::did_you_mean(name, close) {
                    Some(s) => format!("defined: {list}; did you mean `{{{s}}}`?"),
                    None => format!(
                        "defined: {list}; define it under `identifiers:`, or write `{{{{` for a literal brace"
                    ),
                }
            };
            let message = if in_identifier && name != RUN_ID {
                format!("`{{{name}}}` cannot be used inside an identifier")
            } else {
                format!("`{{{name}}}` is not defined")
            };
            self.error(pos, width, message, help);
        }
    }

    /// Where `{name}` sits in the file: found in the node's raw source when the node is on one line,
    /// else the node's start (multi-line and escaped scalars have no simple offset mapping).
    fn placeholder_pos(&self, node: &Node, name: &str, offset: usize) -> Pos {
        let needle = format!("{{{name}}}");
        if node.end.line == node.pos.line {
            if let Some(line) = self.text.lines().nth(node.pos.line - 1) {
                let raw: String = line
                    .chars()
                    .skip(node.pos.col - 1)
                    .take(node.end.col.saturating_sub(node.pos.col))
                    .collect();
                if let Some(byte_at) = raw.find(&needle) {
                    let chars = raw[..byte_at].chars().count();
                    return Pos {
                        line: node.pos.line,
                        col: node.pos.col + chars,
                    };
                }
            }
            if let Kind::Scalar {
                style: ScalarStyle::Plain,
                ..
            } = node.kind
            {
                return Pos {
                    line: node.pos.line,
                    col: node.pos.col + offset,
                };
            }
        }
        node.pos
    }
}

/// Parses and validates a whole scenario file.
pub(super) fn validate(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    // YAML breaks lines at a lone CR too, so the parser's line numbers count it; the diagnostics
    // look the line up with `str::lines`, which does not. A lone CR is never content in YAML (it is
    // a line break wherever it appears), so making it an LF changes no value and no position.
    let sha256 = crate::evidence::sha256_hex(text.as_bytes());
    let normalized;
    let text = if text.contains('\r') {
        normalized = lone_cr_to_lf(text);
        normalized.as_str()
    } else {
        text
    };
    let mut cx = Ctx {
        path,
        text,
        diags: Vec::new(),
        omitted: 0,
    };
    let scenario = check(&mut cx);
    match scenario {
        Some(s) if cx.diags.is_empty() && cx.omitted == 0 => Ok(Scenario { sha256, ..s }),
        _ => {
            if cx.diags.is_empty() {
                // Every failing path reports; this guards the invariant instead of returning Ok.
                cx.error(Pos::START, 1, "invalid scenario".to_string(), None);
            }
            cx.diags.sort_by_key(|d| (d.line, d.column));
            Err(ScenarioError::Invalid {
                diagnostics: cx.diags,
                omitted: cx.omitted,
            })
        }
    }
}

/// `\r` not followed by `\n` becomes `\n`; CRLF stays.
fn lone_cr_to_lf(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() != Some(&'\n') {
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

fn check(cx: &mut Ctx<'_>) -> Option<Scenario> {
    if cx.text.len() > MAX_FILE_BYTES {
        cx.error(
            Pos::START,
            1,
            format!(
                "the file is {} bytes; a scenario may be at most {MAX_FILE_BYTES}",
                cx.text.len()
            ),
            "is this the right file? scenarios are a few lines of YAML".to_string(),
        );
        return None;
    }
    let root = match tree::parse(cx.text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            cx.error(
                Pos::START,
                1,
                "the file is empty".to_string(),
                "a scenario needs at least `name: my-scenario` and `steps:` with one step, e.g. `- idle: 5s`"
                    .to_string(),
            );
            return None;
        }
        Err(e) => {
            cx.error(e.pos, 1, e.message, e.help);
            return None;
        }
    };
    let Kind::Map(entries) = &root.kind else {
        let got = root.describe();
        cx.at(
            &root,
            format!("a scenario is a mapping with `name`, `description`, `identifiers` and `steps`; got {got}"),
            "start the file with `name: my-scenario` and a `steps:` list".to_string(),
        );
        return None;
    };

    let (mut name_node, mut desc_node, mut ids_node, mut steps_node) = (None, None, None, None);
    let (mut capture_node, mut keylog_node, mut policy_node) = (None, None, None);
    for (key, k, v) in cx.keys(entries, "scenario") {
        match key {
            "name" => name_node = Some(v),
            "description" => desc_node = Some(v),
            "identifiers" => ids_node = Some(v),
            "capture" => capture_node = Some(v),
            "keylog" => keylog_node = Some(v),
            "policy" => policy_node = Some(v),
            "steps" => steps_node = Some(v),
            other => {
                let help = if STEP_NAMES.contains(&other) {
                    format!("steps go in the `steps:` list: `steps:\\n  - {other}: …`")
                } else {
                    suggestion(other, TOP_KEYS, "keys")
                };
                cx.at(k, format!("unknown key `{other}`"), help);
            }
        }
    }

    let name = match name_node {
        Some(n) => scenario_name(cx, n),
        None => Some(default_name(cx.path)),
    };
    let description = match desc_node {
        Some(n) if n.is_null() => Some(String::new()),
        Some(n) => cx
            .string("`description`", n, "description: What this scenario does.")
            .map(str::to_string),
        None => Some(String::new()),
    };
    let identifiers = match ids_node {
        Some(n) => identifiers(cx, n),
        None => Vec::new(),
    };
    let capture = match capture_node {
        Some(n) => capture_source(cx, n),
        None => Some(None),
    };
    let keylogs = match keylog_node {
        Some(n) => keylog_sources(cx, n),
        None => Some(Vec::new()),
    };
    // `policy: FILE`: checked when the run loads it (`--policy` wins), where its own problems get
    // their own positions.
    let policy = match policy_node {
        Some(n) => cx
            .string("`policy`", n, "policy: ci-policy.yaml")
            .map(|p| Some(std::path::PathBuf::from(p))),
        None => Some(None),
    };
    let mut defined: Vec<&str> = vec![RUN_ID];
    defined.extend(identifiers.iter().map(|(k, _)| k.as_str()));
    let steps = match steps_node {
        Some(n) => steps(cx, n, &defined),
        None => {
            cx.at(
                &root,
                "missing `steps`".to_string(),
                "add a `steps:` list, e.g. `steps:\\n  - fresh-setup: {}\\n  - idle: 5s`"
                    .to_string(),
            );
            None
        }
    };
    Some(Scenario {
        name: name?,
        description: description?,
        path: cx.path.to_path_buf(),
        identifiers,
        capture: capture?,
        keylogs: keylogs?,
        policy: policy?,
        steps: steps?,
        sha256: String::new(),
    })
}

/// `keylog: SOURCE` or a list of them: a host file (relative to the scenario's folder) or
/// `device:/ABSOLUTE/PATH` on the phone (`KeylogSource`).
fn keylog_sources(cx: &mut Ctx<'_>, node: &Node) -> Option<Vec<KeylogSource>> {
    const EXAMPLE: &str = "keylog: device:/data/local/tmp/sslkeys.log";
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        let Some(text) = cx.string("`keylog`", item, EXAMPLE) else {
            ok = false;
            continue;
        };
        match text.parse::<KeylogSource>() {
            Ok(source) => out.push(source),
            Err(e) => {
                cx.at(item, format!("`keylog`: {e}"), e.help().to_string());
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `capture: SOURCE`: `device`, `file:PATH` or `file:-` (`CaptureSource`); a path is taken from
/// the scenario's folder when it is relative (the caller resolves it).
fn capture_source(cx: &mut Ctx<'_>, node: &Node) -> Option<Option<CaptureSource>> {
    let text = cx.string("`capture`", node, "capture: file:-")?;
    match text.parse::<CaptureSource>() {
        Ok(source) => Some(Some(source)),
        Err(e) => {
            cx.at(node, format!("`capture`: {e}"), e.help());
            None
        }
    }
}

/// Scenario names end up in snapshot file names (`<scenario>@<firmware>.snap`), so they are kept to
/// characters that are safe there.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(64) {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.') {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches(|c| c == '-' || c == '.').to_string();
    if valid_name(&out) {
        out
    } else {
        "scenario".to_string()
    }
}

fn default_name(path: &Path) -> String {
    slug(
        &path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

fn scenario_name(cx: &mut Ctx<'_>, node: &Node) -> Option<String> {
    let text = cx.string("`name`", node, "name: send-sms")?;
    if valid_name(text) {
        return Some(text.to_string());
    }
    let shown: String = text.chars().take(64).collect();
    cx.at(
        node,
        format!("scenario name `{shown}` is not usable in snapshot file names"),
        format!(
            "use lower-case letters, digits, `-`, `_` or `.` (at most 64), e.g. `name: {}`",
            slug(text)
        ),
    );
    None
}

fn identifiers(cx: &mut Ctx<'_>, node: &Node) -> Vec<(String, String)> {
    let entries = match &node.kind {
        Kind::Map(e) => e,
        _ if node.is_null() => return Vec::new(),
        _ => {
            let got = node.describe();
            cx.at(
                node,
                format!("`identifiers` takes a mapping of kind: value, got {got}"),
                "write e.g. `identifiers:\\n  contact_name: Wei Ling Tan`".to_string(),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (kind, k, v) in cx.keys(entries, "identifiers") {
        if kind == RUN_ID {
            cx.at(
                k,
                format!("`{RUN_ID}` is reserved: tattle sets it to a value unique to each run"),
                format!("pick another kind name and use `{{{RUN_ID}}}` inside its value"),
            );
            continue;
        }
        if !is_valid_kind(kind) {
            cx.at(
                k,
                format!("identifier kind `{kind}` is not snake_case"),
                format!(
                    "use lower-case letters, digits and `_`, e.g. `{}`",
                    slug(kind).replace(['-', '.'], "_")
                ),
            );
            continue;
        }
        let what = format!("identifier `{kind}`");
        let Some(value) = cx.string(&what, v, &format!("{kind}: \"tattle {{{RUN_ID}}}\"")) else {
            continue;
        };
        cx.placeholders(v, value, &[RUN_ID], true);
        let uses_run_id = placeholders(value).iter().any(|(n, _)| *n == RUN_ID);
        if !uses_run_id && value.trim().chars().count() < MIN_CANARY_CHARS {
            // A two-letter canary matches random bytes in compressed or encrypted traffic: every
            // finding would be noise.
            cx.at(
                v,
                format!("identifier `{kind}` is too short to be found reliably in traffic"),
                format!("use at least {MIN_CANARY_CHARS} characters, or add `{{{RUN_ID}}}` to it"),
            );
            continue;
        }
        out.push((kind.to_string(), value.to_string()));
    }
    out
}

fn steps(cx: &mut Ctx<'_>, node: &Node, defined: &[&str]) -> Option<Vec<Step>> {
    let items = match &node.kind {
        Kind::Seq(items) => items,
        _ => {
            let got = node.describe();
            cx.at(
                node,
                format!("`steps` takes a list of steps, got {got}"),
                "write each step on its own line starting with `- `, e.g. `steps:\\n  - idle: 5s`"
                    .to_string(),
            );
            return None;
        }
    };
    if items.is_empty() {
        cx.at(
            node,
            "`steps` is empty".to_string(),
            "add at least one step, e.g. `- fresh-setup: {}`".to_string(),
        );
        return None;
    }
    if items.len() > MAX_STEPS {
        cx.at(
            &items[MAX_STEPS],
            format!("more than {MAX_STEPS} steps"),
            "split the scenario into several files".to_string(),
        );
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match step(cx, item, defined, false) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One list item of `steps` (or of an `any`'s alternatives, `nested`).
fn step(cx: &mut Ctx<'_>, item: &Node, defined: &[&str], nested: bool) -> Option<Step> {
    let entries: Vec<(&str, &Node, &Node)> = match &item.kind {
        Kind::Scalar { text, .. } if !item.is_null() => {
            // `- fresh-setup` on its own: a step with no arguments.
            let name = text.as_str();
            if !STEP_NAMES.contains(&name) {
                cx.at(
                    item,
                    format!("unknown step `{name}`"),
                    suggestion(name, STEP_NAMES, "steps"),
                );
                return None;
            }
            return step_action(cx, name, item, None, defined, nested).map(|(action, _)| Step {
                settle: default_settle(&action),
                action,
                line: item.pos.line,
            });
        }
        Kind::Map(entries) => cx.keys(entries, "step"),
        _ => {
            let got = item.describe();
            cx.at(
                item,
                format!("a step is `- NAME: ARGUMENTS`, got {got}"),
                format!("valid steps: {}", STEP_NAMES.join(", ")),
            );
            return None;
        }
    };

    let mut found: Option<(&str, &Node, &Node)> = None;
    let mut settle: Option<&Node> = None;
    let mut bad = false;
    for (name, k, v) in entries {
        if STEP_NAMES.contains(&name) {
            if let Some((first, _, _)) = found {
                cx.at(
                    k,
                    format!("one step per list item: `{first}` and `{name}` share one"),
                    format!("start a new item for it: `- {name}: …` on its own line"),
                );
                bad = true;
            } else {
                found = Some((name, k, v));
            }
        } else if name == "settle" {
            settle = Some(v);
        } else {
            let mut valid: Vec<&str> = STEP_NAMES.to_vec();
            valid.push("settle");
            let what = if found.is_some() { "key" } else { "step" };
            cx.at(
                k,
                format!("unknown {what} `{name}`"),
                suggestion(name, &valid, "steps and keys"),
            );
            bad = true;
        }
    }
    let Some((name, key, args)) = found else {
        if !bad {
            cx.at(
                item,
                "this list item has no step".to_string(),
                format!("valid steps: {}", STEP_NAMES.join(", ")),
            );
        }
        return None;
    };
    let (action, inner_settle) = step_action(cx, name, key, Some(args), defined, nested)?;
    if bad {
        return None;
    }
    let settle_node = match (settle, inner_settle) {
        (Some(_), Some(inner)) => {
            cx.at(
                inner,
                "`settle` is given twice for this step".to_string(),
                "keep one of them".to_string(),
            );
            return None;
        }
        (a, b) => a.or(b),
    };
    let settle = match settle_node {
        Some(n) if matches!(action, StepAction::Idle(_)) => {
            cx.at(
                n,
                "`idle` has no `settle`: its whole duration is its window".to_string(),
                "remove `settle`, or lengthen the idle".to_string(),
            );
            return None;
        }
        Some(n) => cx.duration("`settle`", n)?,
        None => default_settle(&action),
    };
    Some(Step {
        action,
        settle,
        line: key.pos.line,
    })
}

/// UI steps are small actions in long sequences: a second each (traffic a tap causes shows up within
/// it), none for `wait-for`, which does nothing; everything else waits `DEFAULT_SETTLE`.
fn default_settle(action: &StepAction) -> Duration {
    match action {
        StepAction::Idle(_) | StepAction::WaitFor { .. } => Duration::ZERO,
        StepAction::Tap { .. } | StepAction::Type { .. } | StepAction::Key(_) => UI_SETTLE,
        _ => DEFAULT_SETTLE,
    }
}

/// Parses one step's arguments. Returns the action and a `settle` given inside the arguments, if any.
fn step_action<'n>(
    cx: &mut Ctx<'_>,
    name: &str,
    key: &Node,
    args: Option<&'n Node>,
    defined: &[&str],
    nested: bool,
) -> Option<(StepAction, Option<&'n Node>)> {
    // Point at the arguments when there are any, else at the step name.
    let args_or_key = args.filter(|a| !a.is_null()).unwrap_or(key);
    match name {
        "any" if nested => {
            cx.at(
                key,
                "an `any` inside an `any`".to_string(),
                "list every alternative in the outer `any`".to_string(),
            );
            None
        }
        "reboot" if nested => {
            cx.at(
                key,
                "`reboot` cannot be an alternative of an `any`".to_string(),
                "put the reboot in the scenario's own `steps` (the capture restarts after it)"
                    .to_string(),
            );
            None
        }
        "any" => any(cx, key, args, defined).map(|a| (a, None)),
        "launch" => launch(cx, args_or_key, args, defined),
        "tap" | "wait-for" => {
            let f = fields(
                cx,
                name,
                args,
                &["text", "resource-id", "content-desc", "timeout"],
            )?;
            let target = selector(cx, name, &f, args_or_key, defined);
            let timeout = timeout(cx, &f, ui::DEFAULT_TIMEOUT);
            let (target, timeout) = (target?, timeout?);
            let action = if name == "tap" {
                StepAction::Tap { target, timeout }
            } else {
                StepAction::WaitFor { target, timeout }
            };
            Some((action, f.settle))
        }
        "type" => type_step(cx, args_or_key, args, defined),
        "key" => {
            let Some(args) = args.filter(|a| !a.is_null()) else {
                cx.at(
                    args_or_key,
                    "`key` needs a key name".to_string(),
                    "write e.g. `- key: HOME` or `- key: [DPAD_RIGHT, ENTER]`".to_string(),
                );
                return None;
            };
            Some((StepAction::Key(keys(cx, args)?), None))
        }
        "toggle" => toggle(cx, args_or_key, args),
        "install" => install(cx, args_or_key, args),
        "reboot" => {
            if let Some(a) = args.filter(|a| matches!(a.kind, Kind::Scalar { .. }) && !a.is_null())
            {
                cx.at(
                    a,
                    "`reboot` takes no value".to_string(),
                    "write `- reboot: {}` (or `{ timeout: 5m }`)".to_string(),
                );
                return None;
            }
            let f = fields(cx, name, args, &["timeout"])?;
            let timeout = timeout(cx, &f, ui::DEFAULT_BOOT_TIMEOUT)?;
            Some((StepAction::Reboot { timeout }, f.settle))
        }
        "idle" => {
            let Some(args) = args.filter(|a| !a.is_null()) else {
                cx.at(
                    args_or_key,
                    "`idle` needs a duration".to_string(),
                    "write e.g. `- idle: 5s`".to_string(),
                );
                return None;
            };
            Some((StepAction::Idle(cx.duration("`idle`", args)?), None))
        }
        "shell" => {
            if let Some(a) = args.filter(|a| matches!(a.kind, Kind::Scalar { .. }) && !a.is_null())
            {
                let cmd = cx.string("`shell`", a, "shell: \"getprop ro.build.fingerprint\"")?;
                cx.placeholders(a, cmd, defined, false);
                return Some((
                    StepAction::Shell {
                        command: cmd.to_string(),
                        expect_exit: None,
                    },
                    None,
                ));
            }
            let f = fields(cx, name, args, &["command", "expect_exit"])?;
            let command = required(
                cx,
                name,
                &f,
                args_or_key,
                "command",
                "command: \"getprop ro.build.fingerprint\"",
                defined,
            );
            let expect_exit = match f.get("expect_exit") {
                None => Some(None),
                Some(n) => exit_code(cx, n).map(Some),
            };
            Some((
                StepAction::Shell {
                    command: command?,
                    expect_exit: expect_exit?,
                },
                f.settle,
            ))
        }
        "fresh-setup" => {
            if let Some(a) = args.filter(|a| matches!(a.kind, Kind::Scalar { .. }) && !a.is_null())
            {
                cx.at(
                    a,
                    "`fresh-setup` takes no value".to_string(),
                    "write `- fresh-setup: {}` (or `{ settle: 5s }`)".to_string(),
                );
                return None;
            }
            let f = fields(cx, name, args, &[])?;
            Some((StepAction::FreshSetup, f.settle))
        }
        "add-contact" => {
            let f = fields(cx, name, args, &["name", "phone", "via"])?;
            let n = required(
                cx,
                name,
                &f,
                args_or_key,
                "name",
                "name: \"{contact_name}\"",
                defined,
            );
            let p = required(
                cx,
                name,
                &f,
                args_or_key,
                "phone",
                "phone: \"{contact_phone}\"",
                defined,
            );
            let via = match f.get("via") {
                Some(node) => via(
                    cx,
                    node,
                    &[("ui", ContactVia::Ui), ("provider", ContactVia::Provider)],
                ),
                None => Some(DEFAULT_CONTACT_VIA.to_vec()),
            };
            Some((
                StepAction::AddContact {
                    name: n?,
                    phone: p?,
                    via: via?,
                },
                f.settle,
            ))
        }
        "send-sms" => {
            let f = fields(cx, name, args, &["to", "body", "via"])?;
            let to = required(
                cx,
                name,
                &f,
                args_or_key,
                "to",
                "to: \"{contact_phone}\"",
                defined,
            );
            let body = required(
                cx,
                name,
                &f,
                args_or_key,
                "body",
                "body: \"{sms_body}\"",
                defined,
            );
            let via = match f.get("via") {
                Some(node) => via(cx, node, &[("ui", SmsVia::Ui), ("keys", SmsVia::Keys)]),
                None => Some(DEFAULT_SMS_VIA.to_vec()),
            };
            Some((
                StepAction::SendSms {
                    to: to?,
                    body: body?,
                    via: via?,
                },
                f.settle,
            ))
        }
        "receive-sms" => {
            let f = fields(cx, name, args, &["from", "body"])?;
            let from = required(
                cx,
                name,
                &f,
                args_or_key,
                "from",
                "from: \"+6598765432\"",
                defined,
            );
            let body = required(
                cx,
                name,
                &f,
                args_or_key,
                "body",
                "body: \"{sms_body}\"",
                defined,
            );
            if let (Some(n), Some(node)) = (&from, f.get("from")) {
                let digits = n.strip_prefix('+').unwrap_or(n);
                if !n.contains('{')
                    && (digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()))
                {
                    cx.at(
                        node,
                        format!("`{}` is not a number the emulator accepts", n.chars().take(40).collect::<String>()),
                        "write digits with an optional leading `+`, no spaces: `from: \"+6598765432\"`"
                            .to_string(),
                    );
                    return None;
                }
            }
            Some((
                StepAction::ReceiveSms {
                    from: from?,
                    body: body?,
                },
                f.settle,
            ))
        }
        _ => None,
    }
}

struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node)>,
    settle: Option<&'n Node>,
}

impl<'n> Fields<'n> {
    fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
}

/// Checks a step's argument mapping: only `allowed` keys and `settle`, no duplicates.
fn fields<'n>(
    cx: &mut Ctx<'_>,
    step: &str,
    args: Option<&'n Node>,
    allowed: &[&str],
) -> Option<Fields<'n>> {
    let mut f = Fields {
        entries: Vec::new(),
        settle: None,
    };
    let entries = match args {
        None => return Some(f),
        Some(a) if a.is_null() => return Some(f),
        Some(Node {
            kind: Kind::Map(e), ..
        }) => e,
        Some(other) => {
            let got = other.describe();
            // Optional keys are left out of the example: it shows what must be there.
            let shown: Vec<&&str> = allowed
                .iter()
                .filter(|k| !matches!(**k, "via" | "timeout" | "into"))
                .collect();
            let shape = if shown.is_empty() {
                "`{}`".to_string()
            } else {
                format!(
                    "{{ {} }}",
                    shown
                        .iter()
                        .map(|k| format!("{k}: …"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            cx.at(
                other,
                format!("`{step}` takes a mapping like `{shape}`, got {got}"),
                format!("write `- {step}: {shape}`"),
            );
            return None;
        }
    };
    let mut ok = true;
    for (key, k, v) in cx.keys(entries, step) {
        if key == "settle" {
            f.settle = Some(v);
        } else if allowed.contains(&key) {
            f.entries.push((key, v));
        } else {
            let mut valid: Vec<&str> = allowed.to_vec();
            valid.push("settle");
            cx.at(
                k,
                format!("unknown key `{key}` in `{step}`"),
                suggestion(key, &valid, "keys"),
            );
            ok = false;
        }
    }
    ok.then_some(f)
}

fn required(
    cx: &mut Ctx<'_>,
    step: &str,
    f: &Fields<'_>,
    at: &Node,
    field: &str,
    example: &str,
    defined: &[&str],
) -> Option<String> {
    let Some(node) = f.get(field) else {
        cx.at(
            at,
            format!("`{step}` is missing `{field}`"),
            format!("add `{example}`"),
        );
        return None;
    };
    let text = cx.string(&format!("`{step}` `{field}`"), node, example)?;
    cx.placeholders(node, text, defined, false);
    Some(text.to_string())
}

fn exit_code(cx: &mut Ctx<'_>, node: &Node) -> Option<i32> {
    let parsed = match &node.kind {
        Kind::Scalar {
            text,
            style: ScalarStyle::Plain,
        } => text.parse::<i32>().ok(),
        _ => None,
    };
    match parsed {
        Some(code) if (0..=255).contains(&code) => Some(code),
        _ => {
            let got = match node.as_scalar() {
                Some(t) if !node.is_null() => {
                    format!("`{}`", t.chars().take(20).collect::<String>())
                }
                _ => node.describe().to_string(),
            };
            cx.at(
                node,
                format!("`expect_exit` takes an exit code from 0 to 255, got {got}"),
                "write e.g. `expect_exit: 0`".to_string(),
            );
            None
        }
    }
}

/// `via: ui` or `via: [ui, keys]`: methods by name, in order, each once.
fn via<T: Copy + PartialEq>(
    cx: &mut Ctx<'_>,
    node: &Node,
    methods: &[(&str, T)],
) -> Option<Vec<T>> {
    let names: Vec<&str> = methods.iter().map(|(n, _)| *n).collect();
    let example = format!("via: [{}]", names.join(", "));
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Scalar { .. } if !node.is_null() => vec![node],
        _ => {
            let got = node.describe();
            cx.at(
                node,
                format!("`via` takes a method or a list of methods, got {got}"),
                format!("write e.g. `{example}`"),
            );
            return None;
        }
    };
    if items.is_empty() {
        cx.at(
            node,
            "`via` is empty".to_string(),
            format!("name at least one method: `{example}`"),
        );
        return None;
    }
    let mut out: Vec<T> = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(name) = item.as_scalar().filter(|_| !item.is_null()) else {
            cx.at(
                item,
                format!("a `via` method is a name, got {}", item.describe()),
                format!("write e.g. `{example}`"),
            );
            ok = false;
            continue;
        };
        match methods.iter().find(|(n, _)| *n == name) {
            Some((_, m)) if out.contains(m) => {
                cx.at(
                    item,
                    format!("`{name}` is listed twice in `via`"),
                    "name each method once".to_string(),
                );
                ok = false;
            }
            Some((_, m)) => out.push(*m),
            None => {
                cx.at(
                    item,
                    format!("unknown method `{name}`"),
                    suggestion(name, &names, "methods"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `timeout: 10s`, or `default`.
fn timeout(cx: &mut Ctx<'_>, f: &Fields<'_>, default: Duration) -> Option<Duration> {
    match f.get("timeout") {
        None => Some(default),
        Some(node) => {
            let d = cx.duration("`timeout`", node)?;
            if d.is_zero() {
                cx.at(
                    node,
                    "`timeout` is zero: nothing could ever be found".to_string(),
                    "give the screen time, e.g. `timeout: 10s`".to_string(),
                );
                return None;
            }
            Some(d)
        }
    }
}

/// Exactly one of `text`, `resource-id`, `content-desc`.
fn selector(
    cx: &mut Ctx<'_>,
    step: &str,
    f: &Fields<'_>,
    at: &Node,
    defined: &[&str],
) -> Option<Selector> {
    let given: Vec<(By, &Node)> = By::ALL
        .iter()
        .filter_map(|by| f.get(by.name()).map(|n| (*by, n)))
        .collect();
    match given.as_slice() {
        [] => {
            cx.at(
                at,
                format!("`{step}` needs what to look for on the screen"),
                "add one of `text: \"Send\"`, `resource-id: \"com.android.messaging:id/send_message_button\"` \
                 or `content-desc: \"Send SMS\"` (as `uiautomator dump` shows them)"
                    .to_string(),
            );
            None
        }
        [(by, node)] => {
            let what = format!("`{step}` `{}`", by.name());
            let example = match by {
                By::Text => "text: \"Send\"",
                By::ResourceId => "resource-id: \"com.android.messaging:id/send_message_button\"",
                By::ContentDesc => "content-desc: \"Send SMS\"",
            };
            let value = cx.string(&what, node, example)?;
            cx.placeholders(node, value, defined, false);
            Some(Selector::new(*by, value))
        }
        [(first, _), (second, node), ..] => {
            cx.at(
                node,
                format!(
                    "`{step}` looks for one thing: `{}` and `{}` are both given",
                    first.name(),
                    second.name()
                ),
                "keep one of them; to wait for one node and tap another, use two steps".to_string(),
            );
            None
        }
    }
}

/// `type: TEXT` or `type: { text: TEXT, into: { resource-id: … }, timeout: 10s }`.
fn type_step<'n>(
    cx: &mut Ctx<'_>,
    args_or_key: &Node,
    args: Option<&'n Node>,
    defined: &[&str],
) -> Option<(StepAction, Option<&'n Node>)> {
    if let Some(a) = args.filter(|a| matches!(a.kind, Kind::Scalar { .. }) && !a.is_null()) {
        let text = cx.string("`type`", a, "type: \"{sms_body}\"")?;
        cx.placeholders(a, text, defined, false);
        typeable(cx, a, text)?;
        return Some((
            StepAction::Type {
                text: text.to_string(),
                into: None,
                timeout: ui::DEFAULT_TIMEOUT,
            },
            None,
        ));
    }
    let f = fields(cx, "type", args, &["text", "into", "timeout"])?;
    let text = required(
        cx,
        "type",
        &f,
        args_or_key,
        "text",
        "text: \"{sms_body}\"",
        defined,
    );
    if let (Some(t), Some(node)) = (&text, f.get("text")) {
        typeable(cx, node, t)?;
    }
    let into = match f.get("into") {
        None => Some(None),
        Some(node) => {
            let inner = fields(
                cx,
                "into",
                Some(node),
                &["text", "resource-id", "content-desc"],
            )?;
            selector(cx, "into", &inner, node, defined).map(Some)
        }
    };
    let timeout = timeout(cx, &f, ui::DEFAULT_TIMEOUT);
    Some((
        StepAction::Type {
            text: text?,
            into: into?,
            timeout: timeout?,
        },
        f.settle,
    ))
}

/// `input text` types printable ASCII only; what the file itself says is checked here (placeholder
/// values are checked by the runner's preflight once they are known).
fn typeable(cx: &mut Ctx<'_>, node: &Node, text: &str) -> Option<()> {
    let literal = template::fill(text, |_| Some(""));
    if let Some(c) = literal.chars().find(|c| !(' '..='~').contains(c)) {
        let shown = if c.is_control() {
            format!("U+{:04X}", u32::from(c))
        } else {
            format!("`{c}`")
        };
        cx.at(
            node,
            format!("`type` cannot type {shown}: Android's `input text` types printable ASCII only"),
            "use ASCII text; press keys with `key` (ENTER, TAB), or set other text with a `shell` step"
                .to_string(),
        );
        return None;
    }
    Some(())
}

/// `key: HOME` or `key: [DPAD_RIGHT, ENTER]`.
fn keys(cx: &mut Ctx<'_>, node: &Node) -> Option<Vec<KeyPress>> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) if !items.is_empty() => items.iter().collect(),
        Kind::Scalar { .. } => vec![node],
        _ => {
            cx.at(
                node,
                format!(
                    "`key` takes a key name or a list of them, got {}",
                    node.describe()
                ),
                "write e.g. `- key: HOME` or `- key: [DPAD_RIGHT, ENTER]`".to_string(),
            );
            return None;
        }
    };
    let names: Vec<&str> = ui::key_names().collect();
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(text) = item.as_scalar().filter(|_| !item.is_null()) else {
            cx.at(
                item,
                format!("a key is a name, got {}", item.describe()),
                "write e.g. `ENTER`".to_string(),
            );
            ok = false;
            continue;
        };
        match ui::key(text) {
            Some((name, code, min_sdk)) => out.push(KeyPress {
                name,
                code,
                min_sdk,
            }),
            None => {
                let bare = text.trim().to_ascii_uppercase();
                let bare = bare.strip_prefix("KEYCODE_").unwrap_or(&bare).to_string();
                let help = if bare.parse::<u32>().is_ok() {
                    "keys are named (`ENTER`, `0` is the digit key 0); for a raw code use \
                     `shell: input keyevent N`"
                        .to_string()
                } else {
                    suggestion(&bare, &names, "keys")
                };
                cx.at(item, format!("unknown key `{}`", text.trim()), help);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `toggle: { wifi: off, airplane: on }`.
fn toggle<'n>(
    cx: &mut Ctx<'_>,
    args_or_key: &Node,
    args: Option<&'n Node>,
) -> Option<(StepAction, Option<&'n Node>)> {
    let radios: Vec<&str> = Radio::ALL.iter().map(|r| r.name()).collect();
    let f = fields(cx, "toggle", args, &radios)?;
    if f.entries.is_empty() {
        cx.at(
            args_or_key,
            "`toggle` needs a radio and a state".to_string(),
            "write e.g. `- toggle: { wifi: off }` (radios: wifi, mobile-data, airplane)"
                .to_string(),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (name, node) in &f.entries {
        let radio = Radio::ALL
            .into_iter()
            .find(|r| r.name() == *name)
            .expect("fields() allowed only radio names");
        let on = match node.as_scalar().filter(|_| !node.is_null()) {
            Some("on") => Some(true),
            Some("off") => Some(false),
            other => {
                let got = other.map_or_else(
                    || node.describe().to_string(),
                    |t| format!("`{}`", t.chars().take(20).collect::<String>()),
                );
                let fix = match other.map(str::to_ascii_lowercase).as_deref() {
                    Some("true" | "yes" | "enable" | "enabled" | "1" | "on") => {
                        format!("write `{name}: on`")
                    }
                    Some("false" | "no" | "disable" | "disabled" | "0" | "off") => {
                        format!("write `{name}: off`")
                    }
                    _ => format!("write `{name}: on` or `{name}: off`"),
                };
                cx.at(node, format!("`{name}` takes on or off, got {got}"), fix);
                None
            }
        };
        match on {
            Some(on) => out.push((radio, on)),
            None => ok = false,
        }
    }
    ok.then_some((StepAction::Toggle(out), f.settle))
}

/// `install: app.apk` or `install: { apk: app.apk }`.
fn install<'n>(
    cx: &mut Ctx<'_>,
    args_or_key: &Node,
    args: Option<&'n Node>,
) -> Option<(StepAction, Option<&'n Node>)> {
    let (node, settle) = match args {
        Some(a) if matches!(a.kind, Kind::Scalar { .. }) && !a.is_null() => (a, None),
        _ => {
            let f = fields(cx, "install", args, &["apk"])?;
            let Some(node) = f.get("apk") else {
                cx.at(
                    args_or_key,
                    "`install` is missing `apk`".to_string(),
                    "add `apk: path/to/app.apk` (relative to the scenario's folder)".to_string(),
                );
                return None;
            };
            (node, f.settle)
        }
    };
    let path = cx.string("`install` `apk`", node, "apk: apps/example.apk")?;
    if !path.to_ascii_lowercase().ends_with(".apk") {
        cx.at(
            node,
            format!(
                "`{}` is not an .apk file",
                path.chars().take(80).collect::<String>()
            ),
            "give the path of an APK on this computer, e.g. `apk: apps/example.apk` (split APKs \
             and .apks bundles are not supported)"
                .to_string(),
        );
        return None;
    }
    Some((
        StepAction::Install {
            apk: path.to_string(),
        },
        settle,
    ))
}

/// `launch: PACKAGE` or `launch: { package | action | data | type | category | component | extras }`.
fn launch<'n>(
    cx: &mut Ctx<'_>,
    args_or_key: &Node,
    args: Option<&'n Node>,
    defined: &[&str],
) -> Option<(StepAction, Option<&'n Node>)> {
    if let Some(a) = args.filter(|a| matches!(a.kind, Kind::Scalar { .. }) && !a.is_null()) {
        let package = cx.string("`launch`", a, "launch: com.android.settings")?;
        package_name(cx, a, package)?;
        return Some((
            StepAction::Launch(Launch::Package(package.to_string())),
            None,
        ));
    }
    let f = fields(
        cx,
        "launch",
        args,
        &[
            "package",
            "action",
            "data",
            "type",
            "category",
            "component",
            "extras",
        ],
    )?;
    let mut ok = true;
    let mut text = |cx: &mut Ctx<'_>, key: &str, example: &str| -> Option<String> {
        let node = f.get(key)?;
        match cx.string(&format!("`launch` `{key}`"), node, example) {
            Some(t) => {
                cx.placeholders(node, t, defined, false);
                Some(t.to_string())
            }
            None => {
                ok = false;
                None
            }
        }
    };
    let package = text(cx, "package", "package: com.android.settings");
    let action = text(cx, "action", "action: android.intent.action.VIEW");
    let data = text(cx, "data", "data: \"https://example.org\"");
    let mime = text(cx, "type", "type: vnd.android.cursor.dir/contact");
    let category = text(cx, "category", "category: android.intent.category.DEFAULT");
    let component = text(cx, "component", "component: com.android.settings/.Settings");
    if let (Some(p), Some(node)) = (&package, f.get("package")) {
        ok &= package_name(cx, node, p).is_some();
    }
    if let (Some(c), Some(node)) = (&component, f.get("component"))
        && !c.contains('{')
        && !c
            .split_once('/')
            .is_some_and(|(p, a)| !p.is_empty() && !a.is_empty())
    {
        cx.at(
            node,
            format!(
                "`{}` is not a component",
                c.chars().take(80).collect::<String>()
            ),
            "write PACKAGE/ACTIVITY, e.g. `component: com.android.settings/.Settings`".to_string(),
        );
        ok = false;
    }
    let mut extras = Vec::new();
    if let Some(node) = f.get("extras") {
        match &node.kind {
            Kind::Map(entries) => {
                for (key, _, value) in cx.keys(entries, "extras") {
                    match cx.string(&format!("extra `{key}`"), value, "sms_body: \"{sms_body}\"") {
                        Some(v) => {
                            cx.placeholders(value, v, defined, false);
                            extras.push((key.to_string(), v.to_string()));
                        }
                        None => ok = false,
                    }
                }
            }
            _ => {
                cx.at(
                    node,
                    format!(
                        "`extras` takes a mapping of name: text, got {}",
                        node.describe()
                    ),
                    "write e.g. `extras: { sms_body: \"{sms_body}\" }` (string extras, `--es`)"
                        .to_string(),
                );
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    let only_package = action.is_none()
        && data.is_none()
        && mime.is_none()
        && category.is_none()
        && component.is_none()
        && extras.is_empty();
    if let (Some(p), true) = (&package, only_package) {
        return Some((StepAction::Launch(Launch::Package(p.clone())), f.settle));
    }
    if action.is_none() && component.is_none() && data.is_none() {
        cx.at(
            args_or_key,
            "`launch` needs what to start".to_string(),
            "give `package: …` (its launcher screen), or an intent with `action`, `data` or \
             `component`"
                .to_string(),
        );
        return None;
    }
    Some((
        StepAction::Launch(Launch::Intent(Intent {
            action,
            data,
            mime,
            categories: category.into_iter().collect(),
            component,
            package,
            extras,
        })),
        f.settle,
    ))
}

/// A Java package name (`com.android.settings`); values with placeholders are checked when known.
fn package_name(cx: &mut Ctx<'_>, node: &Node, text: &str) -> Option<()> {
    let valid = text.split('.').count() >= 2
        && text.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if valid || text.contains('{') {
        return Some(());
    }
    cx.at(
        node,
        format!(
            "`{}` is not a package name",
            text.chars().take(80).collect::<String>()
        ),
        "write the app's package, e.g. `com.android.settings` (`adb shell pm list packages` lists \
         them)"
            .to_string(),
    );
    None
}

/// `any:` — a list of alternatives, each one step or `steps: [...]`.
fn any(cx: &mut Ctx<'_>, key: &Node, args: Option<&Node>, defined: &[&str]) -> Option<StepAction> {
    const EXAMPLE: &str = "- any:\\n    - tap: { content-desc: \"Send SMS\" }\\n    - steps:\\n        - key: DPAD_RIGHT\\n        - key: ENTER";
    let items = match args.map(|a| &a.kind) {
        Some(Kind::Seq(items)) => items,
        _ => {
            let at = args.filter(|a| !a.is_null()).unwrap_or(key);
            cx.at(
                at,
                format!("`any` takes a list of alternatives, got {}", at.describe()),
                format!("write e.g. `{EXAMPLE}`"),
            );
            return None;
        }
    };
    if items.len() < 2 {
        cx.at(
            args.unwrap_or(key),
            format!(
                "`any` has {} alternative(s): it needs at least two",
                items.len()
            ),
            "with one way to do it, write its steps directly".to_string(),
        );
        return None;
    }
    if items.len() > MAX_ALTERNATIVES {
        cx.at(
            &items[MAX_ALTERNATIVES],
            format!("more than {MAX_ALTERNATIVES} alternatives"),
            "split the `any`".to_string(),
        );
        return None;
    }
    let mut alternatives = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        let sequence = match &item.kind {
            Kind::Map(entries)
                if entries.len() == 1 && entries[0].0.as_scalar() == Some("steps") =>
            {
                Some(&entries[0].1)
            }
            _ => None,
        };
        let steps: Option<Vec<Step>> = match sequence {
            Some(seq) => match &seq.kind {
                Kind::Seq(inner) if !inner.is_empty() => {
                    let parsed: Vec<Option<Step>> =
                        inner.iter().map(|i| step(cx, i, defined, true)).collect();
                    parsed.into_iter().collect()
                }
                _ => {
                    cx.at(
                        seq,
                        "an alternative's `steps` takes a non-empty list of steps".to_string(),
                        format!("write e.g. `{EXAMPLE}`"),
                    );
                    None
                }
            },
            None => step(cx, item, defined, true).map(|s| vec![s]),
        };
        match steps {
            Some(s) => alternatives.push(s),
            None => ok = false,
        }
    }
    ok.then_some(StepAction::Any(alternatives))
}
