//! Policy files: YAML read with the scenario's positioned tree (`scenario::tree`: depth and size
//! limits, no aliases) into [`Policy`], every problem kept as a `FILE:LINE:COL` diagnostic with a
//! fix, as scenarios report theirs.
//!
//! Must not touch: evaluation (that is `policy`), I/O.

use std::path::Path;

use tattle_analysis::identifier::{is_valid_kind, kinds};

use super::{Check, Conditions, HostGlob, MAX_FILE_BYTES, MAX_RULES, Policy, PolicyError, Rule};
use crate::scenario::error::{Diagnostic, did_you_mean, suggestion};
use crate::scenario::tree::{self, Kind, Node, Pos};

const TOP_KEYS: &[&str] = &["version", "description", "rules"];
const RULE_KEYS: &[&str] = &["name", "deny", "allow", "steps"];
const DENY_KEYS: &[&str] = &["identifier", "to", "protocol", "encoding", "location"];
/// The protocols tattle's analysis names (`tattle_analysis::Protocol`).
const PROTOCOLS: &[&str] = &["dns", "http", "tls", "quic", "ntp", "tcp", "udp"];
/// Step names besides the scenario's: traffic outside every step.
const OUTSIDE_STEPS: &[&str] = &["before-steps", "after-steps"];
/// Kept per file; the rest are counted.
const MAX_DIAGNOSTICS: usize = 20;

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    diags: Vec<Diagnostic>,
    omitted: usize,
}

impl Ctx<'_> {
    fn error(&mut self, pos: Pos, width: usize, message: String, help: Option<String>) {
        if self.diags.len() >= MAX_DIAGNOSTICS {
            self.omitted += 1;
            return;
        }
        // Messages quote the file's own text: shown only sanitised, like the source line.
        let clean = |t: String| tattle_analysis::sanitize(&t);
        self.diags.push(Diagnostic::new(
            self.path,
            self.text,
            pos.line,
            pos.col,
            width,
            clean(message),
            help.map(clean),
        ));
    }

    fn at(&mut self, node: &Node, message: String, help: String) {
        self.error(node.pos, node.width(), message, Some(help));
    }

    /// A scalar or a list of scalars, as strings.
    fn strings(&mut self, node: &Node, what: &str) -> Vec<(String, Node)> {
        match &node.kind {
            Kind::Scalar { text, .. } if !node.is_null() => vec![(text.clone(), node.clone())],
            Kind::Seq(items) if !items.is_empty() => {
                let mut out = Vec::new();
                for item in items {
                    match item.as_scalar() {
                        Some(t) if !item.is_null() => out.push((t.to_string(), item.clone())),
                        _ => self.at(
                            item,
                            format!("each {what} is a string, this is {}", item.describe()),
                            format!("write one {what} per list item"),
                        ),
                    }
                }
                out
            }
            _ => {
                self.at(
                    node,
                    format!(
                        "expected a {what} or a list of them, found {}",
                        node.describe()
                    ),
                    format!("e.g. `{what}` or `[a, b]`"),
                );
                Vec::new()
            }
        }
    }

    fn globs(&mut self, node: &Node, what: &str) -> Vec<HostGlob> {
        let mut out = Vec::new();
        for (text, n) in self.strings(node, what) {
            match HostGlob::new(&text) {
                Ok(g) => out.push(g),
                Err(e) => self.at(
                    &n,
                    format!("`{text}` is not a valid glob: {}", e.kind()),
                    "use `*` for any characters and `?` for one, e.g. `*.example.com`".into(),
                ),
            }
        }
        out
    }

    /// Reports keys not in `known` (with did-you-mean) and returns the entries.
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        known: &[&str],
        what: &str,
    ) -> Vec<(&'n str, &'n Node)> {
        let Kind::Map(entries) = &node.kind else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in entries {
            let Some(key) = k.as_scalar() else {
                self.at(
                    k,
                    format!("{what} keys are strings"),
                    format!("valid keys: {}", known.join(", ")),
                );
                continue;
            };
            if !known.contains(&key) {
                self.at(
                    k,
                    format!("unknown key `{key}` in {what}"),
                    suggestion(key, known, "keys"),
                );
                continue;
            }
            if seen.contains(&key) {
                self.at(k, format!("`{key}` is given twice"), "keep one".into());
                continue;
            }
            seen.push(key);
            out.push((key, v));
        }
        out
    }
}

/// Parses and validates a policy.
pub(super) fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
    let sha256 = crate::evidence::sha256_hex(text.as_bytes());
    let mut cx = Ctx {
        path,
        text,
        diags: Vec::new(),
        omitted: 0,
    };
    let rules = check(&mut cx);
    if cx.diags.is_empty() && cx.omitted == 0 {
        return Ok(Policy {
            path: path.to_path_buf(),
            sha256,
            rules,
        });
    }
    cx.diags.sort_by_key(|d| (d.line, d.column));
    Err(PolicyError::Invalid {
        diagnostics: cx.diags,
        omitted: cx.omitted,
    })
}

fn check(cx: &mut Ctx<'_>) -> Vec<Rule> {
    if cx.text.len() > MAX_FILE_BYTES {
        cx.error(
            Pos::START,
            1,
            format!("the file is larger than {MAX_FILE_BYTES} bytes"),
            Some("is this the right file? policies are a few lines of YAML".into()),
        );
        return Vec::new();
    }
    let root = match tree::parse(cx.text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            cx.error(
                Pos::START,
                1,
                "the policy is empty".into(),
                Some("add `rules:`, e.g. `rules:\\n  - deny: { identifier: imei }`".into()),
            );
            return Vec::new();
        }
        Err(e) => {
            cx.error(e.pos, 1, e.message, Some(e.help));
            return Vec::new();
        }
    };
    if !matches!(root.kind, Kind::Map(_)) {
        cx.at(
            &root,
            format!(
                "a policy is a mapping with `rules:`, this is {}",
                root.describe()
            ),
            "start the file with `rules:`".into(),
        );
        return Vec::new();
    }
    let mut rules_node = None;
    for (key, value) in cx.entries(&root, TOP_KEYS, "the policy") {
        match key {
            "version" if value.as_scalar() != Some("1") => {
                cx.at(
                    value,
                    "unsupported policy version".into(),
                    "this tattle reads `version: 1`".into(),
                );
            }
            "rules" => rules_node = Some(value),
            _ => {}
        }
    }
    let Some(rules_node) = rules_node else {
        cx.at(
            &root,
            "missing `rules`".into(),
            "add a `rules:` list, e.g. `rules:\\n  - deny: { identifier: imei, to: \"*.example.com\" }`".into(),
        );
        return Vec::new();
    };
    let Kind::Seq(items) = &rules_node.kind else {
        cx.at(
            rules_node,
            format!("`rules` is a list, this is {}", rules_node.describe()),
            "write each rule as a list item: `- deny: {…}` or `- allow: [...]`".into(),
        );
        return Vec::new();
    };
    if items.len() > MAX_RULES {
        cx.at(
            rules_node,
            format!("more than {MAX_RULES} rules"),
            "split the policy".into(),
        );
        return Vec::new();
    }
    if items.is_empty() {
        cx.at(
            rules_node,
            "`rules` is empty: this policy would pass every run".into(),
            "add at least one `deny` or `allow` rule".into(),
        );
    }
    let mut rules: Vec<Rule> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(rule) = rule(cx, i + 1, item) else {
            continue;
        };
        // A rule is known by its name everywhere after this (policy.json, JUnit's cases, the
        // violations' lines): two rules of one name would be merged there.
        if let Some(first) = rules.iter().find(|r| r.name == rule.name) {
            let at = name_node(item).unwrap_or(item);
            let message = format!(
                "a second rule named `{}` (the first is at line {})",
                rule.name, first.line
            );
            let help = if name_node(item).is_some() {
                "give each rule its own `name:`; reports and JUnit tell rules apart by it".into()
            } else {
                format!(
                    "this unnamed rule is called `{}` by its place: rename the other one",
                    rule.name
                )
            };
            cx.at(at, message, help);
            continue;
        }
        rules.push(rule);
    }
    rules
}

/// A rule's `name:` value, for diagnostics about the name.
fn name_node(node: &Node) -> Option<&Node> {
    let Kind::Map(entries) = &node.kind else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.as_scalar() == Some("name"))
        .map(|(_, v)| v)
}

fn rule(cx: &mut Ctx<'_>, number: usize, node: &Node) -> Option<Rule> {
    if !matches!(node.kind, Kind::Map(_)) {
        cx.at(
            node,
            format!("a rule is a mapping, this is {}", node.describe()),
            "e.g. `- deny: { identifier: imei }` or `- allow: [\"*.example.com\"]`".into(),
        );
        return None;
    }
    let mut name = None;
    let mut check = None;
    let mut steps = None;
    let mut ok = true;
    for (key, value) in cx.entries(node, RULE_KEYS, "a rule") {
        match key {
            "name" => match value.as_scalar() {
                Some(n) if !value.is_null() => name = Some(tattle_analysis::sanitize(n)),
                _ => {
                    ok = false;
                    cx.at(
                        value,
                        "`name` is a string".into(),
                        "e.g. `name: no-imei-to-vendor`".into(),
                    );
                }
            },
            "deny" | "allow" if check.is_some() => {
                ok = false;
                cx.at(
                    value,
                    "a rule has either `deny` or `allow`, this one has both".into(),
                    "make them two rules".into(),
                );
            }
            "deny" => check = deny(cx, value),
            "allow" => {
                let globs = cx.globs(value, "host glob");
                check = (!globs.is_empty()).then_some(Check::Allow(globs));
            }
            "steps" => steps = Some(step_names(cx, value)),
            _ => {}
        }
    }
    let Some(check) = check else {
        if ok && !node_has(node, "deny") && !node_has(node, "allow") {
            cx.at(
                node,
                "a rule needs `deny` or `allow`".into(),
                "e.g. `deny: { identifier: imei, to: \"*.example.com\" }` or `allow: [\"*.example.com\"]`"
                    .into(),
            );
        }
        return None;
    };
    Some(Rule {
        name: name.unwrap_or_else(|| format!("rule {number}")),
        line: node.pos.line,
        check,
        steps,
    })
}

fn node_has(node: &Node, key: &str) -> bool {
    matches!(&node.kind, Kind::Map(e) if e.iter().any(|(k, _)| k.as_scalar() == Some(key)))
}

fn deny(cx: &mut Ctx<'_>, node: &Node) -> Option<Check> {
    if !matches!(node.kind, Kind::Map(_)) {
        cx.at(
            node,
            format!(
                "`deny` is a mapping of conditions, this is {}",
                node.describe()
            ),
            "e.g. `deny: { identifier: imei, to: \"*.example.com\", protocol: http }`".into(),
        );
        return None;
    }
    let mut c = Conditions::default();
    let mut has_identifier = false;
    let mut any = false;
    for (key, value) in cx.entries(node, DENY_KEYS, "`deny`") {
        any = true;
        match key {
            "identifier" => {
                has_identifier = true;
                for (kind, n) in cx.strings(value, "identifier kind") {
                    if kind == "any" || kind == "*" {
                        continue;
                    }
                    if kinds::ALL.contains(&kind.as_str()) {
                        c.identifiers.push(kind);
                        continue;
                    }
                    // A custom kind (a scenario's canary) is fine; a typo of a known one is not,
                    // since it would silently never match.
                    let close = did_you_mean(&kind, kinds::ALL.iter().copied());
                    if !is_valid_kind(&kind) || close.is_some() {
                        let help = match close {
                            Some(k) => format!("did you mean `{k}`?"),
                            None => format!(
                                "kinds are snake_case names: {}, or `any`",
                                kinds::ALL.join(", ")
                            ),
                        };
                        cx.at(&n, format!("unknown identifier kind `{kind}`"), help);
                    } else {
                        c.identifiers.push(kind);
                    }
                }
            }
            "to" => c.to = cx.globs(value, "host glob"),
            "protocol" => {
                for (p, n) in cx.strings(value, "protocol") {
                    if PROTOCOLS.contains(&p.as_str()) {
                        c.protocols.push(p);
                    } else {
                        cx.at(
                            &n,
                            format!("unknown protocol `{p}`"),
                            suggestion(&p, PROTOCOLS, "protocols"),
                        );
                    }
                }
            }
            "encoding" => {
                c.encodings = cx
                    .strings(value, "encoding")
                    .into_iter()
                    .map(|(e, _)| e)
                    .collect()
            }
            "location" => c.locations = cx.globs(value, "location glob"),
            _ => {}
        }
    }
    if !any {
        cx.at(
            node,
            "`deny` needs at least one condition".into(),
            "e.g. `identifier: imei`, `to: \"*.example.com\"` or `protocol: http`".into(),
        );
        return None;
    }
    if !has_identifier && (!c.encodings.is_empty() || !c.locations.is_empty()) {
        cx.at(
            node,
            "`encoding` and `location` describe a finding: they need `identifier`".into(),
            "add `identifier: any` to deny every identifier sent that way".into(),
        );
        return None;
    }
    Some(if has_identifier {
        Check::DenyIdentifier(c)
    } else {
        Check::DenyContact(c)
    })
}

/// `steps:`: step names (`send-sms`), numbers (`4`), labels (`4 send-sms`), `before-steps`,
/// `after-steps`.
fn step_names(cx: &mut Ctx<'_>, node: &Node) -> Vec<String> {
    let names: Vec<&str> = crate::scenario::STEP_NAMES
        .iter()
        .chain(OUTSIDE_STEPS)
        .copied()
        .collect();
    let mut out = Vec::new();
    for (step, n) in cx.strings(node, "step") {
        let name = match step.split_once(' ') {
            Some((num, rest)) if num.chars().all(|c| c.is_ascii_digit()) => rest,
            _ => step.as_str(),
        };
        let known = step.chars().all(|c| c.is_ascii_digit()) || names.contains(&name);
        if known {
            out.push(step);
        } else {
            cx.at(
                &n,
                format!("no step is called `{step}`"),
                suggestion(name, &names, "steps"),
            );
        }
    }
    out
}
