//! Policies: what a run may and may not send, as rules a CI job checks (`tattle run --policy FILE`,
//! `tattle check RUN_DIR --policy FILE`; the format is docs/policy.md).
//!
//! Owns the policy file (parsed with the scenario's positioned YAML tree, so every problem is
//! reported as `FILE:LINE:COL` with a fix: `parse`), the rules (`deny` an identifier or a host,
//! `allow` a list of expected hosts; each everywhere or in some steps) and their evaluation over a
//! run's stored facts: its findings and the hosts it contacted, each with its frame. A violation names
//! the rule, the step, the host and the frame.
//!
//! Must not touch: devices, the capture, files other than the policy it is given, the terminal,
//! exit codes (the CLI maps "violations" to exit 1).

mod parse;

use std::path::{Path, PathBuf};

use globset::GlobMatcher;
use serde::Serialize;

use crate::outcome::{ContactItem, EvidenceItem};
pub use crate::scenario::Diagnostic;

/// `format_version` of [`PolicyReport`].
pub const POLICY_FORMAT_VERSION: u32 = 1;
/// Policy files are a few hundred bytes; anything past this is not a policy.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Rules per policy.
pub const MAX_RULES: usize = 10_000;
/// Violations kept in a report; the rest are counted (a broken allow-list on a chatty phone could
/// otherwise list every packet).
pub const MAX_VIOLATIONS: usize = 1_000;

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file it was read from (for messages and the report).
    pub path: PathBuf,
    /// SHA-256 (hex) of the file's bytes: the report says which policy judged the run.
    pub sha256: String,
    pub rules: Vec<Rule>,
}

/// One rule of a policy.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `name:`, else `rule N`.
    pub name: String,
    /// 1-based line of the rule in the file.
    pub line: usize,
    pub check: Check,
    /// `steps:`: the steps it applies in (a step's name, its number, or its label); `None`:
    /// everywhere, traffic before the first step and after the last included.
    pub steps: Option<Vec<String>>,
}

/// What a rule forbids or expects.
#[derive(Debug, Clone)]
pub enum Check {
    /// `deny:` with `identifier:` — a finding that matches every condition given breaks it.
    DenyIdentifier(Conditions),
    /// `deny:` without `identifier:` — contacting a matching host (over a matching protocol)
    /// breaks it.
    DenyContact(Conditions),
    /// `allow:` — a contacted host that matches none of these globs breaks it.
    Allow(Vec<HostGlob>),
}

/// The conditions of a `deny` rule; an empty list matches anything.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Identifier kinds (`imei`); empty with `identifier: any`.
    pub identifiers: Vec<String>,
    /// `to:`: host globs.
    pub to: Vec<HostGlob>,
    /// `protocol:` (`http`, `dns`, `tls`…).
    pub protocols: Vec<String>,
    /// `encoding:`: the finding's whole encoding chain (`plain`, `md5`, `md5+base64`).
    pub encodings: Vec<String>,
    /// `location:`: globs over where in the message (`http.body`, `http.header:*`).
    pub locations: Vec<HostGlob>,
}

/// A glob as written and compiled (case-insensitive; `*` also crosses dots: `*.example.com`
/// matches every subdomain at any depth, but not `example.com` itself).
#[derive(Debug, Clone)]
pub struct HostGlob {
    pub text: String,
    matcher: GlobMatcher,
}

impl HostGlob {
    pub(crate) fn new(text: &str) -> Result<Self, globset::Error> {
        let glob = globset::GlobBuilder::new(text)
            .case_insensitive(true)
            .literal_separator(false)
            .build()?;
        Ok(HostGlob {
            text: text.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    pub fn matches(&self, text: &str) -> bool {
        self.matcher.is_match(text)
    }
}

/// Everything that can go wrong loading a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}: error: cannot read the policy: {source}\n  help: give the path of a policy YAML file (docs/policy.md)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found, in file order.
    #[error("{}", render(.diagnostics, *.omitted))]
    Invalid {
        diagnostics: Vec<Diagnostic>,
        omitted: usize,
    },
}

impl PolicyError {
    /// The positioned problems (empty for read errors).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Invalid { diagnostics, .. } => diagnostics,
            PolicyError::Read { .. } => &[],
        }
    }
}

fn render(diags: &[Diagnostic], omitted: usize) -> String {
    let mut out = diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n\n");
    if omitted > 0 {
        out.push_str(&format!("\n\n... and {omitted} more problems"));
    }
    let total = diags.len() + omitted;
    if total > 1 {
        out.push_str(&format!("\n\nerror: {total} problems in this policy"));
    }
    out
}

impl Policy {
    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        use std::io::Read as _;
        let read_err = |source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        // Bounded: one byte past the limit is enough to say it is too large.
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            read_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file is not UTF-8 text",
            ))
        })?;
        Policy::parse(&text, path)
    }

    /// Validates policy text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        parse::parse(text, path)
    }

    /// Checks a run's facts against every rule.
    pub fn evaluate(&self, findings: &[EvidenceItem], contacts: &[ContactItem]) -> PolicyReport {
        let mut violations = Vec::new();
        let mut omitted = 0usize;
        let mut per_rule: std::collections::HashMap<String, usize> = Default::default();
        let mut push = |v: Violation| {
            *per_rule.entry(v.rule.clone()).or_default() += 1;
            if violations.len() < MAX_VIOLATIONS {
                violations.push(v);
            } else {
                omitted += 1;
            }
        };
        for rule in &self.rules {
            match &rule.check {
                Check::DenyIdentifier(c) => {
                    for f in findings.iter().filter(|f| rule.applies_in(&f.step)) {
                        if c.matches_finding(f) {
                            push(Violation {
                                rule: rule.name.clone(),
                                rule_line: rule.line,
                                step: f.step.clone(),
                                host: f.host.clone(),
                                protocol: f.protocol.clone(),
                                frame: f.frame,
                                identifier: Some(f.identifier.clone()),
                                location: Some(f.location.clone()),
                                encoding: Some(f.encoding.clone()),
                                why: format!(
                                    "{} sent to {} over {} in {} as {}",
                                    f.identifier, f.host, f.protocol, f.location, f.encoding
                                ),
                            });
                        }
                    }
                }
                Check::DenyContact(c) => {
                    for contact in contacts.iter().filter(|x| rule.applies_in(&x.step)) {
                        if c.matches_contact(contact) {
                            push(contact_violation(
                                rule,
                                contact,
                                format!("{} contacted over {}", contact.host, contact.protocol),
                            ));
                        }
                    }
                }
                Check::Allow(globs) => {
                    for contact in contacts.iter().filter(|x| rule.applies_in(&x.step)) {
                        if !globs.iter().any(|g| g.matches(&contact.host)) {
                            push(contact_violation(
                                rule,
                                contact,
                                format!(
                                    "{} contacted over {}, which is not in the allow-list",
                                    contact.host, contact.protocol
                                ),
                            ));
                        }
                    }
                }
            }
        }
        PolicyReport {
            format_version: POLICY_FORMAT_VERSION,
            policy: self.path.display().to_string(),
            policy_sha256: self.sha256.clone(),
            rules: self.rules.len(),
            rule_tallies: self
                .rules
                .iter()
                .map(|r| RuleTally {
                    rule: r.name.clone(),
                    violations: per_rule.get(&r.name).copied().unwrap_or(0),
                })
                .collect(),
            passed: violations.is_empty(),
            violations,
            violations_omitted: omitted,
        }
    }
}

fn contact_violation(rule: &Rule, contact: &ContactItem, why: String) -> Violation {
    Violation {
        rule: rule.name.clone(),
        rule_line: rule.line,
        step: contact.step.clone(),
        host: contact.host.clone(),
        protocol: contact.protocol.clone(),
        frame: contact.frame,
        identifier: None,
        location: None,
        encoding: None,
        why,
    }
}

impl Rule {
    /// Whether the rule applies in the step labelled `label` (`4 send-sms`, `0 before-steps`,
    /// `after-steps`).
    fn applies_in(&self, label: &str) -> bool {
        let Some(steps) = &self.steps else {
            return true;
        };
        let (number, name) = match label.split_once(' ') {
            Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => (Some(n), rest),
            _ => (None, label),
        };
        steps
            .iter()
            .any(|s| s == label || s == name || Some(s.as_str()) == number)
    }
}

impl Conditions {
    fn matches_finding(&self, f: &EvidenceItem) -> bool {
        let kind = f.identifier.trim_start_matches('<').trim_end_matches('>');
        (self.identifiers.is_empty() || self.identifiers.iter().any(|k| k == kind))
            && self.matches_host_and_protocol(&f.host, &f.protocol)
            && (self.encodings.is_empty() || self.encodings.contains(&f.encoding))
            && (self.locations.is_empty() || self.locations.iter().any(|g| g.matches(&f.location)))
    }

    fn matches_contact(&self, c: &ContactItem) -> bool {
        self.matches_host_and_protocol(&c.host, &c.protocol)
    }

    fn matches_host_and_protocol(&self, host: &str, protocol: &str) -> bool {
        (self.to.is_empty() || self.to.iter().any(|g| g.matches(host)))
            && (self.protocols.is_empty() || self.protocols.iter().any(|p| p == protocol))
    }
}

/// The verdict of a policy on a run: `policy.json` in the run directory, the `policy` field of
/// `tattle run --format json`, and `tattle check --format json` (docs/policy.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PolicyReport {
    pub format_version: u32,
    /// The policy file, as given.
    pub policy: String,
    /// SHA-256 (hex) of the policy file.
    pub policy_sha256: String,
    /// How many rules were checked.
    pub rules: usize,
    /// Every rule, in the policy's order, with how many times it was broken (listed or not), so a
    /// report can show the rules kept as well as the broken ones. Absent in verdicts written before
    /// it existed.
    #[serde(default)]
    pub rule_tallies: Vec<RuleTally>,
    /// True when no rule was broken.
    pub passed: bool,
    /// Each broken rule, per finding or contact, in rule order.
    pub violations: Vec<Violation>,
    /// Violations past the first 1000, counted but not listed.
    pub violations_omitted: usize,
}

/// One rule of a policy and how many times the run broke it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RuleTally {
    /// The rule's `name:` (or `rule N`).
    pub rule: String,
    /// Violations of it, including those past the listed ones.
    pub violations: usize,
}

/// One broken rule: which, where, to whom, and the frame to open in Wireshark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Violation {
    /// The rule's `name:` (or `rule N`).
    pub rule: String,
    /// The rule's line in the policy file.
    pub rule_line: usize,
    /// The step label (`4 send-sms`).
    pub step: String,
    pub host: String,
    pub protocol: String,
    /// Wireshark's frame number in the run's capture.
    pub frame: u64,
    /// `<imei>` for an identifier rule; `null` for host rules.
    pub identifier: Option<String>,
    /// Where in the message (`http.body`); `null` for host rules.
    pub location: Option<String>,
    /// How it was encoded (`plain`, `md5`); `null` for host rules.
    pub encoding: Option<String>,
    /// The violation in words.
    pub why: String,
}

impl PolicyReport {
    /// One line per violation, as `tattle run` and `tattle check` print them.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            out.push_str(&format!(
                "POLICY VIOLATION rule `{}` ({}:{}) in step {}: {} (frame {})\n",
                v.rule, self.policy, v.rule_line, v.step, v.why, v.frame
            ));
        }
        if self.violations_omitted > 0 {
            out.push_str(&format!(
                "... and {} more violations\n",
                self.violations_omitted
            ));
        }
        if self.passed {
            out.push_str(&format!(
                "policy {}: {} rule(s), no violation\n",
                self.policy, self.rules
            ));
        } else {
            out.push_str(&format!(
                "policy {}: {} violation(s) of {} rule(s)\n",
                self.policy,
                self.violations.len() + self.violations_omitted,
                self.rules
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests;
