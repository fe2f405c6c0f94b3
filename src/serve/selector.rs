//! Kubernetes label selectors (`labelSelector=workload=api,metric in (rps,cpu),!canary`), parsed
//! and matched as `k8s.io/apimachinery/pkg/labels` does, since the HPA and kubectl send them in
//! that syntax.
//!
//! Written here: the Rust Kubernetes crates build selectors but do not parse the text form,
//! and this grammar is small. Every input is bounded ([`MAX_LEN`]) and every error says what
//! was expected where, so a hostile selector costs one `400`.
//!
//! ```text
//! selector    := "" | requirement ("," requirement)*
//! requirement := "!" KEY | KEY | KEY ("=" | "==" | "!=") VALUE? | KEY ("in" | "notin") "(" VALUE? ("," VALUE?)* ")"
//!              | KEY (">" | "<") INTEGER
//! ```

use std::collections::BTreeMap;

/// Longest selector accepted, in bytes: the HPA's selectors are a few labels long.
pub const MAX_LEN: usize = 2048;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key` (the label is present).
    Exists(String),
    /// `!key` (the label is absent).
    NotExists(String),
    /// `key=v`, `key==v`, `key in (a,b)`: present with one of the values.
    In(String, Vec<String>),
    /// `key!=v`, `key notin (a,b)`: absent, or present with none of the values.
    NotIn(String, Vec<String>),
    /// `key>n`: present with an integer value above `n`.
    Greater(String, i64),
    /// `key<n`: present with an integer value below `n`.
    Less(String, i64),
}

/// A parsed selector: every requirement must hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// The requirements, in the order written.
    pub requirements: Vec<Requirement>,
}

/// Why a selector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(pub String);

impl Selector {
    /// Parses the text form; the empty string (or only whitespace) is the empty selector.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        if text.len() > MAX_LEN {
            return Err(SelectorError(format!(
                "the selector is {} bytes long; at most {MAX_LEN} are accepted",
                text.len()
            )));
        }
        let tokens = lex(text)?;
        let mut p = Parser { tokens, at: 0 };
        let mut requirements = Vec::new();
        if p.peek().is_none() {
            return Ok(Self { requirements });
        }
        loop {
            requirements.push(p.requirement()?);
            match p.next() {
                None => break,
                Some(Token::Comma) => {
                    if p.peek().is_none() {
                        return Err(SelectorError(
                            "found '', expected: identifier after ','".into(),
                        ));
                    }
                }
                Some(other) => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        other.text()
                    )))
                }
            }
        }
        Ok(Self { requirements })
    }

    /// The values `key` must take when the selector pins it (`key=v`, `key in (a,b)`): a
    /// matching item has one of them, so an index on `key` can narrow the search.
    pub fn pinned(&self, key: &str) -> Option<&[String]> {
        self.requirements.iter().find_map(|r| match r {
            Requirement::In(k, values) if k == key => Some(values.as_slice()),
            _ => None,
        })
    }

    /// True when `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
            Requirement::Greater(k, n) => labels
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            Requirement::Less(k, n) => labels
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Eq,
    DoubleEq,
    NotEq,
    Not,
    Greater,
    Less,
    Open,
    Close,
    Comma,
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Self::Ident(s) => s,
            Self::Eq => "=",
            Self::DoubleEq => "==",
            Self::NotEq => "!=",
            Self::Not => "!",
            Self::Greater => ">",
            Self::Less => "<",
            Self::Open => "(",
            Self::Close => ")",
            Self::Comma => ",",
        }
    }
}

fn lex(text: &str) -> Result<Vec<Token>, SelectorError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let special = |b: u8| matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<');
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    while i < bytes.len() {
        let b = bytes[i];
        if space(b) {
            i += 1;
            continue;
        }
        let two = bytes.get(i + 1).copied();
        let (token, len) = match (b, two) {
            (b'=', Some(b'=')) => (Token::DoubleEq, 2),
            (b'!', Some(b'=')) => (Token::NotEq, 2),
            (b'=', _) => (Token::Eq, 1),
            (b'!', _) => (Token::Not, 1),
            (b'>', _) => (Token::Greater, 1),
            (b'<', _) => (Token::Less, 1),
            (b'(', _) => (Token::Open, 1),
            (b')', _) => (Token::Close, 1),
            (b',', _) => (Token::Comma, 1),
            _ => {
                let start = i;
                while i < bytes.len() && !special(bytes[i]) && !space(bytes[i]) {
                    i += 1;
                }
                // Splitting on ASCII bytes keeps UTF-8 boundaries.
                tokens.push(Token::Ident(text[start..i].to_string()));
                continue;
            }
        };
        tokens.push(token);
        i += len;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next() {
            Some(Token::Ident(k)) => {
                check_key(&k)?;
                Ok(k)
            }
            other => Err(SelectorError(format!(
                "found '{}', expected: identifier",
                other.as_ref().map_or("", Token::text)
            ))),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek() == Some(&Token::Not) {
            self.next();
            return Ok(Requirement::NotExists(self.key()?));
        }
        let key = self.key()?;
        let op = match self.peek() {
            None | Some(Token::Comma) => return Ok(Requirement::Exists(key)),
            _ => self.next(),
        };
        match op {
            Some(Token::Eq | Token::DoubleEq) => Ok(Requirement::In(key, vec![self.value()?])),
            Some(Token::NotEq) => Ok(Requirement::NotIn(key, vec![self.value()?])),
            Some(Token::Greater) => Ok(Requirement::Greater(key, self.integer()?)),
            Some(Token::Less) => Ok(Requirement::Less(key, self.integer()?)),
            Some(Token::Ident(word)) if word == "in" => Ok(Requirement::In(key, self.set()?)),
            Some(Token::Ident(word)) if word == "notin" => Ok(Requirement::NotIn(key, self.set()?)),
            other => Err(SelectorError(format!(
                "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                other.as_ref().map_or("", Token::text)
            ))),
        }
    }

    /// A value after `=`: possibly empty (`a=` or `a=,b=c`).
    fn value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            Some(Token::Ident(_)) => {
                let Some(Token::Ident(v)) = self.next() else {
                    unreachable!("peeked an identifier")
                };
                check_value(&v)?;
                Ok(v)
            }
            None | Some(Token::Comma) => Ok(String::new()),
            Some(other) => Err(SelectorError(format!(
                "found '{}', expected: identifier",
                other.text()
            ))),
        }
    }

    fn integer(&mut self) -> Result<i64, SelectorError> {
        let v = self.value()?;
        v.parse().map_err(|_| {
            SelectorError(format!(
                "for 'gt', 'lt' operators, the value must be an integer, got {v:?}"
            ))
        })
    }

    /// `( v1, v2, ... )`; empty entries are the empty value, as in Kubernetes.
    fn set(&mut self) -> Result<Vec<String>, SelectorError> {
        if self.next() != Some(Token::Open) {
            return Err(SelectorError("found '', expected: '('".into()));
        }
        let mut values = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Ident(_)) => values.push(self.value()?),
                Some(Token::Comma) => {
                    values.push(String::new());
                    self.next();
                    continue;
                }
                Some(Token::Close) => {
                    self.next();
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                other => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        other.map_or("", Token::text)
                    )))
                }
            }
            match self.next() {
                Some(Token::Comma) => {
                    if self.peek() == Some(&Token::Close) {
                        values.push(String::new());
                    }
                }
                Some(Token::Close) => return Ok(values),
                other => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: ',' or ')'",
                        other.as_ref().map_or("", Token::text)
                    )))
                }
            }
        }
    }
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters that starts and ends with a letter or digit.
fn check_key(key: &str) -> Result<(), SelectorError> {
    let bad = |why: &str| Err(SelectorError(format!("invalid label key {key:?}: {why}")));
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if p.is_empty() || p.len() > 253 || !p.split('.').all(label_ok) {
            return bad("the prefix must be a lower-case DNS subdomain of at most 253 characters");
        }
    }
    if name.contains('/') {
        return bad("at most one '/' is allowed");
    }
    if name.is_empty() || !is_label_value(name) {
        return bad("the name must be 1-63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit");
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_label_value(value) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "invalid label value {value:?}: at most 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        )))
    }
}

fn is_label_value(v: &str) -> bool {
    let b = v.as_bytes();
    v.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_parses_and_matches_as_kubernetes_does() {
        let l = labels(&[("workload", "api"), ("metric", "rps"), ("shard", "3")]);
        for (text, expected) in [
            ("", true),
            ("  ", true),
            ("workload=api", true),
            ("workload==api", true),
            ("workload!=api", false),
            ("workload=web", false),
            ("metric in (rps, cpu)", true),
            ("metric notin (rps,cpu)", false),
            ("missing notin (a)", true),
            ("workload", true),
            ("!workload", false),
            ("!canary", true),
            ("shard>2,shard<4", true),
            ("shard>3", false),
            ("workload=api,metric=cpu", false),
            ("example.com/team=", false),
            ("metric in (in)", false),
            ("in in (x)", false),
        ] {
            let s = Selector::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(s.matches(&l), expected, "{text:?}");
        }
        assert_eq!(
            Selector::parse("a in (b,,c)").unwrap().requirements,
            [Requirement::In(
                "a".into(),
                vec!["b".into(), "".into(), "c".into()]
            )]
        );
        assert_eq!(
            Selector::parse("a=").unwrap().requirements,
            [Requirement::In("a".into(), vec!["".into()])]
        );
    }

    #[test]
    fn malformed_selectors_say_what_was_expected() {
        for (text, expected) in [
            ("a=b c", "expected: ',' or 'end of string'"),
            ("a=b,", "identifier after ','"),
            ("a in b", "expected: '('"),
            ("a in (b", "expected: ',' or ')'"),
            ("a >x", "must be an integer"),
            ("a ~ b", "expected: in, notin"),
            ("-bad=1", "invalid label key"),
            ("a=-bad", "invalid label value"),
            ("a/b/c=1", "at most one '/'"),
            ("UP.case/x=1", "lower-case DNS subdomain"),
            ("=a", "expected: identifier"),
        ] {
            let e = Selector::parse(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
        let long = "a=b,".repeat(600);
        assert!(Selector::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("at most"));
    }

    proptest! {
        #[test]
        fn any_input_parses_or_fails_cleanly(text in ".{0,300}") {
            let _ = Selector::parse(&text);
        }

        #[test]
        fn written_selectors_round_trip(
            pairs in prop::collection::btree_map("[a-z][a-z0-9]{0,8}", "[a-z0-9]{1,8}", 0..6),
        ) {
            let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let s = Selector::parse(&text.join(",")).unwrap();
            prop_assert!(s.matches(&pairs));
            prop_assert_eq!(s.requirements.len(), pairs.len());
        }
    }
}
