//! The shell's parser: one command line in, a `Script` out.
//!
//! Covers what `adb shell` one-liners use on mksh (Android's `/system/bin/sh`): words with '…', "…" and
//! backslash quoting, `$?`/`$NAME`/`${NAME}` expansion (expanded at run time, since `$?` changes between
//! commands), `;`, `&` (run in the foreground here), `&&`, `||`, `|`, `!`, `#` comments and the
//! redirections `>`, `>>`, `<`, `N>`, `N>&M`. Command substitution, here-documents, globbing and
//! control structures are not supported and are reported as errors rather than misread.
//!
//! Input is untrusted (it comes from the adb host): bounded in size and word count, never panics.
//!
//! Must not touch: execution, the handset state.

/// Longest command line accepted.
pub const MAX_LINE: usize = 256 * 1024;
/// Most words + operators in one line.
pub const MAX_TOKENS: usize = 8192;

/// A piece of a word: literal text or a variable to expand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Var(String),
}

/// One word, before expansion.
pub type Word = Vec<Part>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirOp {
    /// `>`
    Write,
    /// `>>`
    Append,
    /// `<`
    Read,
    /// `>&N`
    Dup(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redir {
    pub fd: u32,
    pub op: RedirOp,
    /// Empty for `Dup`.
    pub target: Word,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    pub words: Vec<Word>,
    pub redirs: Vec<Redir>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pipeline {
    pub negate: bool,
    pub commands: Vec<SimpleCommand>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Connector, Pipeline)>,
}

pub type Script = Vec<AndOr>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no closing quote")]
    UnterminatedQuote,
    #[error("syntax error: '{0}' unexpected")]
    Unexpected(String),
    #[error("{0}: not supported by this shell")]
    Unsupported(&'static str),
    #[error("line too long")]
    TooLong,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(Word),
    /// `;`, `&` or newline.
    Sep(&'static str),
    And,
    Or,
    Pipe,
    Redir(u32, RedirOp),
}

fn push_lit(word: &mut Word, c: char) {
    if let Some(Part::Lit(s)) = word.last_mut() {
        s.push(c);
    } else {
        word.push(Part::Lit(c.to_string()));
    }
}

/// Reads a `$…` expansion after the `$`; returns the part to add.
fn dollar(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Part, ParseError> {
    match chars.peek().copied() {
        Some(c @ ('?' | '$' | '#' | '!' | '0'..='9' | '@' | '*' | '-')) => {
            chars.next();
            Ok(Part::Var(c.to_string()))
        }
        Some('{') => {
            chars.next();
            let mut name = String::new();
            loop {
                match chars.next() {
                    Some('}') => break,
                    Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '?' => name.push(c),
                    Some(_) => return Err(ParseError::Unsupported("${…} modifiers")),
                    None => return Err(ParseError::UnterminatedQuote),
                }
            }
            Ok(Part::Var(name))
        }
        Some('(') => Err(ParseError::Unsupported("$(…)")),
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            Ok(Part::Var(name))
        }
        _ => Ok(Part::Lit("$".into())),
    }
}

// The word-finishing macro resets state that its last expansions leave unread.
#[allow(unused_assignments)]
fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    if line.len() > MAX_LINE {
        return Err(ParseError::TooLong);
    }
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    let mut word: Word = Vec::new();
    // A word exists once anything (even an empty quote) was read.
    let mut in_word = false;
    // Unquoted digits only so far: `2>` makes them a file descriptor.
    let mut digits_only = true;

    macro_rules! finish_word {
        () => {
            if in_word {
                tokens.push(Token::Word(std::mem::take(&mut word)));
                in_word = false;
                digits_only = true;
                if tokens.len() > MAX_TOKENS {
                    return Err(ParseError::TooLong);
                }
            }
        };
    }

    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => finish_word!(),
            '\n' => {
                finish_word!();
                tokens.push(Token::Sep("\n"));
            }
            '#' if !in_word => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        tokens.push(Token::Sep("\n"));
                        break;
                    }
                }
            }
            '\'' => {
                in_word = true;
                digits_only = false;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => s.push(c),
                        None => return Err(ParseError::UnterminatedQuote),
                    }
                }
                word.push(Part::Lit(s));
            }
            '"' => {
                in_word = true;
                digits_only = false;
                word.push(Part::Lit(String::new()));
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('$' | '`' | '"' | '\\')) => push_lit(&mut word, c),
                            Some('\n') => {}
                            Some(c) => {
                                push_lit(&mut word, '\\');
                                push_lit(&mut word, c);
                            }
                            None => return Err(ParseError::UnterminatedQuote),
                        },
                        Some('$') => word.push(dollar(&mut chars)?),
                        Some('`') => return Err(ParseError::Unsupported("`…`")),
                        Some(c) => push_lit(&mut word, c),
                        None => return Err(ParseError::UnterminatedQuote),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    digits_only = false;
                    push_lit(&mut word, c);
                }
                None => {}
            },
            '$' => {
                in_word = true;
                digits_only = false;
                word.push(dollar(&mut chars)?);
            }
            '`' => return Err(ParseError::Unsupported("`…`")),
            ';' => {
                finish_word!();
                if chars.peek() == Some(&';') {
                    return Err(ParseError::Unexpected(";;".into()));
                }
                tokens.push(Token::Sep(";"));
            }
            '&' => {
                finish_word!();
                if chars.peek() == Some(&'&') {
                    chars.next();
                    tokens.push(Token::And);
                } else {
                    tokens.push(Token::Sep("&"));
                }
            }
            '|' => {
                finish_word!();
                if chars.peek() == Some(&'|') {
                    chars.next();
                    tokens.push(Token::Or);
                } else {
                    tokens.push(Token::Pipe);
                }
            }
            '>' | '<' => {
                // `2>`: the digits before are the descriptor, not a word.
                let fd = if in_word && digits_only {
                    let text: String = word
                        .iter()
                        .map(|p| match p {
                            Part::Lit(s) => s.as_str(),
                            Part::Var(_) => "",
                        })
                        .collect();
                    word.clear();
                    in_word = false;
                    text.parse::<u32>()
                        .ok()
                        .filter(|fd| *fd <= 9)
                        .ok_or_else(|| ParseError::Unexpected(text.clone()))?
                } else {
                    finish_word!();
                    if c == '>' { 1 } else { 0 }
                };
                let op = if c == '<' {
                    RedirOp::Read
                } else if chars.peek() == Some(&'>') {
                    chars.next();
                    RedirOp::Append
                } else if chars.peek() == Some(&'&') {
                    chars.next();
                    let mut n = String::new();
                    while let Some(&d) = chars.peek() {
                        if d.is_ascii_digit() && n.len() < 2 {
                            n.push(d);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    match n.parse::<u32>() {
                        Ok(to) => RedirOp::Dup(to),
                        Err(_) => return Err(ParseError::Unexpected(">&".into())),
                    }
                } else {
                    if chars.peek() == Some(&'|') {
                        chars.next();
                    }
                    RedirOp::Write
                };
                tokens.push(Token::Redir(fd, op));
                digits_only = true;
            }
            '(' | ')' | '{' | '}' if !in_word => {
                return Err(ParseError::Unsupported("grouping"));
            }
            c => {
                in_word = true;
                if !c.is_ascii_digit() {
                    digits_only = false;
                }
                push_lit(&mut word, c);
            }
        }
    }
    finish_word!();
    Ok(tokens)
}

fn token_text(t: &Token) -> String {
    match t {
        Token::Word(_) => "word".into(),
        Token::Sep(s) => (*s).into(),
        Token::And => "&&".into(),
        Token::Or => "||".into(),
        Token::Pipe => "|".into(),
        Token::Redir(_, RedirOp::Read) => "<".into(),
        Token::Redir(_, _) => ">".into(),
    }
}

/// Parses one command line (which may hold several lines).
pub fn parse(line: &str) -> Result<Script, ParseError> {
    let tokens = tokenize(line)?;
    let mut script = Vec::new();
    let mut it = tokens.into_iter().peekable();
    loop {
        while matches!(it.peek(), Some(Token::Sep(_))) {
            it.next();
        }
        if it.peek().is_none() {
            break;
        }
        let first = parse_pipeline(&mut it)?;
        let mut rest = Vec::new();
        loop {
            let conn = match it.peek() {
                Some(Token::And) => Connector::And,
                Some(Token::Or) => Connector::Or,
                _ => break,
            };
            it.next();
            while matches!(it.peek(), Some(Token::Sep("\n"))) {
                it.next();
            }
            rest.push((conn, parse_pipeline(&mut it)?));
        }
        script.push(AndOr { first, rest });
        match it.next() {
            None | Some(Token::Sep(_)) => {}
            Some(t) => return Err(ParseError::Unexpected(token_text(&t))),
        }
    }
    Ok(script)
}

fn parse_pipeline(
    it: &mut std::iter::Peekable<std::vec::IntoIter<Token>>,
) -> Result<Pipeline, ParseError> {
    let mut p = Pipeline::default();
    if let Some(Token::Word(w)) = it.peek()
        && w == &vec![Part::Lit("!".into())]
    {
        p.negate = true;
        it.next();
    }
    loop {
        let mut cmd = SimpleCommand::default();
        loop {
            match it.peek() {
                Some(Token::Word(_)) => {
                    if let Some(Token::Word(w)) = it.next() {
                        cmd.words.push(w);
                    }
                }
                Some(Token::Redir(..)) => {
                    let Some(Token::Redir(fd, op)) = it.next() else {
                        break;
                    };
                    let target = if matches!(op, RedirOp::Dup(_)) {
                        Vec::new()
                    } else {
                        match it.next() {
                            Some(Token::Word(w)) => w,
                            Some(t) => return Err(ParseError::Unexpected(token_text(&t))),
                            None => return Err(ParseError::Unexpected("newline".into())),
                        }
                    };
                    cmd.redirs.push(Redir { fd, op, target });
                }
                _ => break,
            }
        }
        if cmd.words.is_empty() && cmd.redirs.is_empty() {
            return Err(match it.peek() {
                Some(t) => ParseError::Unexpected(token_text(t)),
                None => ParseError::Unexpected("newline".into()),
            });
        }
        p.commands.push(cmd);
        if matches!(it.peek(), Some(Token::Pipe)) {
            it.next();
        } else {
            break;
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Word {
        vec![Part::Lit(s.into())]
    }

    fn words(script: &Script) -> Vec<Vec<Word>> {
        script
            .iter()
            .flat_map(|a| {
                std::iter::once(&a.first)
                    .chain(a.rest.iter().map(|(_, p)| p))
                    .flat_map(|p| p.commands.iter().map(|c| c.words.clone()))
            })
            .collect()
    }

    #[test]
    fn quoting() {
        let s = parse(r#"echo 'a b' "c $? d" e\ f "g\"h" '' x"y"z"#).unwrap();
        assert_eq!(
            words(&s)[0],
            vec![
                lit("echo"),
                lit("a b"),
                vec![
                    Part::Lit("c ".into()),
                    Part::Var("?".into()),
                    Part::Lit(" d".into())
                ],
                lit("e f"),
                lit("g\"h"),
                lit(""),
                vec![Part::Lit("x".into()), Part::Lit("yz".into())],
            ]
        );
    }

    #[test]
    fn operators_and_redirections() {
        let s = parse("true && echo a || echo b; false;echo c 2>/dev/null >&2 >>f").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].rest.len(), 2);
        assert_eq!(s[0].rest[0].0, Connector::And);
        assert_eq!(s[0].rest[1].0, Connector::Or);
        let c = &s[2].first.commands[0];
        assert_eq!(c.words, vec![lit("echo"), lit("c")]);
        assert_eq!(
            c.redirs,
            vec![
                Redir {
                    fd: 2,
                    op: RedirOp::Write,
                    target: lit("/dev/null")
                },
                Redir {
                    fd: 1,
                    op: RedirOp::Dup(2),
                    target: vec![]
                },
                Redir {
                    fd: 1,
                    op: RedirOp::Append,
                    target: lit("f")
                },
            ]
        );
        let s = parse("tcpdump -i any -U -w - 2>/dev/null").unwrap();
        assert_eq!(s[0].first.commands[0].words.len(), 6);
        assert_eq!(s[0].first.commands[0].redirs[0].fd, 2);
        // digits inside a word are not a descriptor
        let s = parse("echo a2>x").unwrap();
        assert_eq!(s[0].first.commands[0].words, vec![lit("echo"), lit("a2")]);
    }

    #[test]
    fn pipes_negation_comments() {
        let s = parse("! getprop | grep x # comment\necho y").unwrap();
        assert!(s[0].first.negate);
        assert_eq!(s[0].first.commands.len(), 2);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn errors() {
        assert_eq!(parse("echo 'abc"), Err(ParseError::UnterminatedQuote));
        assert_eq!(parse("echo \"abc"), Err(ParseError::UnterminatedQuote));
        assert!(matches!(parse("&& echo"), Err(ParseError::Unexpected(_))));
        assert!(matches!(parse("echo |"), Err(ParseError::Unexpected(_))));
        assert!(matches!(parse("echo >"), Err(ParseError::Unexpected(_))));
        assert!(matches!(
            parse("echo $(id)"),
            Err(ParseError::Unsupported(_))
        ));
        assert!(parse(&"x".repeat(MAX_LINE + 1)).is_err());
        assert!(parse(&"a ".repeat(MAX_TOKENS + 10)).is_err());
        assert_eq!(
            parse("   ;; ").map(|_| ()),
            Err(ParseError::Unexpected(";;".into()))
        );
        assert_eq!(parse(" \n ; ").unwrap().len(), 0);
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet: Vec<char> = "ab $?{}'\"\\;&|<>2#\n()`!é".chars().collect();
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(x % 24) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let _ = parse(&s);
        }
    }
}
