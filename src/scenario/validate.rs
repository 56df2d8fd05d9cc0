//! Turns the positioned YAML tree into a [`Scenario`], checking everything before any device is
//! touched and collecting every problem (up to a limit) with its position and a fix.
//!
//! Must not touch: I/O, devices, placeholder expansion (that happens in `Scenario::expand`).

use std::path::Path;
use std::time::Duration;

use saphyr_parser::ScalarStyle;

use super::error::{Diagnostic, MAX_DIAGNOSTICS, ScenarioError, suggestion};
use super::template::{DurationError, parse_duration, placeholders};
use super::tree::{self, Kind, Node, Pos};
use super::{
    DEFAULT_SETTLE, MAX_FILE_BYTES, MAX_STEPS, RUN_ID, STEP_NAMES, Scenario, Step, StepAction,
};
use tattle_analysis::identifier::is_valid_kind;
use tattle_analysis::sanitize;

/// Shorter canary values would match by chance.
const MIN_CANARY_CHARS: usize = 4;
const TOP_KEYS: &[&str] = &["name", "description", "identifiers", "steps"];
const DURATION_HELP: &str = "use a number with a unit: 500ms, 5s or 2m (sums like 1m30s work too)";

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
        Some(s) if cx.diags.is_empty() && cx.omitted == 0 => Ok(s),
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
    for (key, k, v) in cx.keys(entries, "scenario") {
        match key {
            "name" => name_node = Some(v),
            "description" => desc_node = Some(v),
            "identifiers" => ids_node = Some(v),
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
        steps: steps?,
    })
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
        match step(cx, item, defined) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn step(cx: &mut Ctx<'_>, item: &Node, defined: &[&str]) -> Option<Step> {
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
            return step_action(cx, name, item, None, defined).map(|(action, _)| Step {
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
    let (action, inner_settle) = step_action(cx, name, key, Some(args), defined)?;
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

fn default_settle(action: &StepAction) -> Duration {
    match action {
        StepAction::Idle(_) => Duration::ZERO,
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
) -> Option<(StepAction, Option<&'n Node>)> {
    // Point at the arguments when there are any, else at the step name.
    let args_or_key = args.filter(|a| !a.is_null()).unwrap_or(key);
    match name {
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
            let f = fields(cx, name, args, &["name", "phone"])?;
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
            Some((
                StepAction::AddContact {
                    name: n?,
                    phone: p?,
                },
                f.settle,
            ))
        }
        "send-sms" => {
            let f = fields(cx, name, args, &["to", "body"])?;
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
            Some((
                StepAction::SendSms {
                    to: to?,
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
            let shape = if allowed.is_empty() {
                "`{}`".to_string()
            } else {
                format!(
                    "{{ {} }}",
                    allowed
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
