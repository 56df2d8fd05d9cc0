//! A small positioned YAML tree built from saphyr-parser events.
//!
//! Owns turning scenario text into nodes that each carry their 1-based line and column, with hard
//! limits (nesting depth, node count) so hostile input cannot exhaust the stack or memory. It drives
//! the parser's event iterator itself instead of `saphyr`'s loader because that loader recurses once
//! per nesting level and would overflow the stack on `[[[[…`.
//!
//! Must not touch: scenario semantics (that is `validate`), I/O.

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};

/// Deeper than any scenario needs (a step's arguments sit at depth 4).
pub(crate) const MAX_DEPTH: usize = 32;
/// A scenario has tens of nodes; a hundred thousand is generous and still bounded.
pub(crate) const MAX_NODES: usize = 100_000;

/// A 1-based position in the source, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub(crate) const START: Pos = Pos { line: 1, col: 1 };

    fn from_marker(m: &Marker) -> Pos {
        // saphyr-parser lines are already 1-based, columns are 0-based.
        Pos {
            line: m.line().max(1),
            col: m.col().saturating_add(1),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub pos: Pos,
    /// Exclusive end; equal to `pos` for empty nodes.
    pub end: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Scalar { text: String, style: ScalarStyle },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A plain `~`, `null` or nothing at all: YAML's null, which scenarios treat as "no value".
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, style: ScalarStyle::Plain }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What the node is, in the words an error message uses.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "nothing",
            Kind::Scalar { .. } => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    pub(crate) fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Characters to underline: the node's width when it sits on one line, else 1.
    pub(crate) fn width(&self) -> usize {
        if self.end.line == self.pos.line && self.end.col > self.pos.col {
            self.end.col - self.pos.col
        } else {
            1
        }
    }
}

/// A syntax or limit error: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub pos: Pos,
    pub message: String,
    pub help: String,
}

enum Frame {
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<(Node, Node)>, Option<Node>),
}

/// Parses `text` into the root node of its single document (`None` for an empty file).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(ev)) => ev,
            Some(Err(e)) => {
                return Err(SyntaxError {
                    pos: Pos::from_marker(e.marker()),
                    message: format!("YAML syntax: {}", e.info()),
                    help: "check indentation (spaces only, no tabs) and quoting: a value that \
                           contains `: `, starts with `{`, `[`, `*`, `&` or `!`, or ends with `:` \
                           needs \"double quotes\""
                        .to_string(),
                });
            }
        };
        let pos = Pos::from_marker(&span.start);
        let done: Option<Node> = match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => None,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        pos,
                        message: "a scenario file holds one YAML document, this is the second"
                            .to_string(),
                        help: "remove the `---` line and everything after it, or put the second \
                               scenario in its own file"
                            .to_string(),
                    });
                }
                None
            }
            Event::Alias(_) => {
                return Err(SyntaxError {
                    pos,
                    message: "YAML aliases (`*name`) are not supported in scenarios".to_string(),
                    help: "write the value out, or define it once under `identifiers:` and use \
                           its `{placeholder}`"
                        .to_string(),
                });
            }
            Event::Scalar(text, style, _, _) => {
                nodes += 1;
                Some(Node {
                    pos,
                    end: end_pos(&span),
                    kind: Kind::Scalar {
                        text: text.into_owned(),
                        style,
                    },
                })
            }
            Event::SequenceStart(_, _) | Event::MappingStart(_, _) => {
                nodes += 1;
                if stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError {
                        pos,
                        message: format!("nesting deeper than {MAX_DEPTH} levels"),
                        help: "a scenario is a flat list of steps; remove the extra nesting"
                            .to_string(),
                    });
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(pos, Vec::new())
                } else {
                    Frame::Map(pos, Vec::new(), None)
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let end = end_pos(&span);
                match stack.pop() {
                    Some(Frame::Seq(start, items)) => Some(Node {
                        pos: start,
                        end,
                        kind: Kind::Seq(items),
                    }),
                    Some(Frame::Map(start, entries, _)) => Some(Node {
                        pos: start,
                        end,
                        kind: Kind::Map(entries),
                    }),
                    // The parser balances start/end events; an unbalanced end is ignored.
                    None => None,
                }
            }
        };
        if nodes > MAX_NODES {
            return Err(SyntaxError {
                pos,
                message: format!("more than {MAX_NODES} YAML nodes"),
                help: "a scenario is a short list of steps; split this file".to_string(),
            });
        }
        if let Some(node) = done {
            match stack.last_mut() {
                Some(Frame::Seq(_, items)) => items.push(node),
                Some(Frame::Map(_, entries, pending)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => entries.push((key, node)),
                },
                None => root = Some(node),
            }
        }
    }
    Ok(root)
}

fn end_pos(span: &Span) -> Pos {
    let end = Pos::from_marker(&span.end);
    let start = Pos::from_marker(&span.start);
    end.max(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_entries(node: &Node) -> &[(Node, Node)] {
        match &node.kind {
            Kind::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn positions_are_one_based_and_point_at_the_node() {
        let text = "name: x\nsteps:\n  - idle: 5s\n  - add-contact: { name: \"{a}\", phone: b }\n";
        let root = parse(text).unwrap().unwrap();
        let top = map_entries(&root);
        assert_eq!(top[0].0.pos, Pos { line: 1, col: 1 });
        assert_eq!(top[0].1.pos, Pos { line: 1, col: 7 });
        let Kind::Seq(steps) = &top[1].1.kind else {
            panic!()
        };
        assert_eq!(steps[0].pos, Pos { line: 3, col: 5 });
        let idle = map_entries(&steps[0]);
        assert_eq!(idle[0].1.pos, Pos { line: 3, col: 11 });
        assert_eq!(idle[0].1.width(), 2);
        let add = map_entries(&steps[1]);
        assert_eq!(add[0].1.pos, Pos { line: 4, col: 18 });
        let args = map_entries(&add[0].1);
        // A quoted scalar starts at its opening quote.
        assert_eq!(args[0].1.pos, Pos { line: 4, col: 26 });
        assert_eq!(args[0].1.as_scalar(), Some("{a}"));
    }

    #[test]
    fn syntax_errors_carry_the_parser_position() {
        let err = parse("steps:\n  - idle: 5s\n   - idle: [\n").unwrap_err();
        assert_eq!(err.pos.line, 3, "{err:?}");
        assert!(err.message.starts_with("YAML syntax"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "[".repeat(100_000);
        let err = parse(&text).unwrap_err();
        // The scanner looks ahead and may refuse first with its own flow-level limit.
        assert!(
            err.message.contains("nesting") || err.message.contains("recursion"),
            "{err:?}"
        );
        let text = "- ".repeat(50_000);
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("nesting"), "{err:?}");
        assert_eq!(
            err.pos,
            Pos {
                line: 1,
                col: 2 * MAX_DEPTH + 1
            }
        );
    }

    #[test]
    fn aliases_and_second_documents_are_rejected() {
        let err = parse("a: &x 1\nb: *x\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 2, col: 4 });
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(err.pos.line, 2);
    }

    #[test]
    fn empty_input_has_no_root() {
        assert!(parse("").unwrap().is_none());
        assert!(parse("# only a comment\n").unwrap().is_none());
    }

    #[test]
    fn garbage_never_panics() {
        let samples = [
            "\u{0}\u{1}\u{2}",
            "{:",
            "- [a, {b: c}",
            "\t- x",
            "? ? ? ?",
            "'unterminated",
            "key: \"\\x\"",
            "!!binary |\n  ###",
            "%YAML 9.9\n---\na",
        ];
        for s in samples {
            let _ = parse(s);
        }
        // Pseudo-random bytes from a fixed LCG: deterministic fuzzing of the event builder.
        let mut x: u32 = 12345;
        let alphabet = b"-:{}[],'\"\n #&*!|>?%@`abc12\t";
        for _ in 0..2000 {
            let len = (x % 40) as usize;
            let mut s = String::new();
            for _ in 0..len {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                s.push(alphabet[(x >> 16) as usize % alphabet.len()] as char);
            }
            let _ = parse(&s);
        }
    }
}
