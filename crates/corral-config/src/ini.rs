//! One line of php-fpm config text → statements, with values INI-normalised.
//!
//! php-fpm hands every physical line separately to Zend's INI parser in
//! NORMAL mode, so a value never spans lines and the Zend scanner's rules
//! decide what a value *means*: bare `yes/on/true` become "1", `no/off/
//! false/none/null` become "", PHP constants are substituted, `& | ^ ~ !`
//! and parentheses are evaluated as integer expressions, `${NAME}` is
//! expanded, `"..."` eats the blanks around it while `'...'` is literal.
//! This module reproduces those rules (checked against php-fpm8.2 -tt) so a
//! config means the same thing to corral as to php-fpm.

/// A statement found on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `[name]`, kept verbatim (php-fpm keeps inner blanks too).
    Section(String),
    /// `name = value`; `None` when the line holds a bare name.
    Entry { name: String, value: Option<String> },
    /// `name[key] = value`.
    Array {
        name: String,
        key: String,
        value: String,
    },
}

/// Resolves `${NAME}`: php.ini directive first, then the environment.
pub type VarLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parse one physical line.  `Err` carries a bison-like detail such as
/// "unexpected '='".
pub fn parse_line(line: &str, lookup: VarLookup<'_>) -> Result<Vec<Statement>, String> {
    let mut p = Parser {
        s: line.chars().collect(),
        i: 0,
        lookup,
    };
    p.statements()
}

/// Zend's error-reporting constants: the only PHP constants whose values
/// php-fpm configs realistically use (`E_ALL & ~E_NOTICE`).  Other bare
/// words stay as written, as Zend does for undefined constants.
pub fn php_constant(name: &str) -> Option<i64> {
    Some(match name {
        "E_ERROR" => 1,
        "E_WARNING" => 2,
        "E_PARSE" => 4,
        "E_NOTICE" => 8,
        "E_CORE_ERROR" => 16,
        "E_CORE_WARNING" => 32,
        "E_COMPILE_ERROR" => 64,
        "E_COMPILE_WARNING" => 128,
        "E_USER_ERROR" => 256,
        "E_USER_WARNING" => 512,
        "E_USER_NOTICE" => 1024,
        "E_STRICT" => 2048,
        "E_RECOVERABLE_ERROR" => 4096,
        "E_DEPRECATED" => 8192,
        "E_USER_DEPRECATED" => 16384,
        "E_ALL" => 32767,
        "PHP_INT_SIZE" => 8,
        "PHP_INT_MAX" => i64::MAX,
        "PHP_INT_MIN" => i64::MIN,
        _ => return None,
    })
}

/// C `atoi` as glibc does it: blanks, sign, digits; the long result is
/// truncated to `int` (Zend's INI expressions work on `int`).
pub fn atoi(s: &str) -> i32 {
    atol(s) as i32
}

/// C `atol` (strtol base 10 with saturation on overflow).
pub fn atol(s: &str) -> i64 {
    let b = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match b.as_bytes().first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let mut v: i64 = 0;
    for c in digits.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(c - b'0');
        v = if neg {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        };
    }
    v
}

const KEYWORDS: [(&str, &str); 8] = [
    ("true", "1"),
    ("on", "1"),
    ("yes", "1"),
    ("false", ""),
    ("off", ""),
    ("no", ""),
    ("none", ""),
    ("null", ""),
];

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_label_char(c: char) -> bool {
    !matches!(
        c,
        '=' | '\n'
            | '\r'
            | '\t'
            | ';'
            | '&'
            | '|'
            | '^'
            | '$'
            | '~'
            | '('
            | ')'
            | '{'
            | '}'
            | '!'
            | '"'
            | '['
            | ']'
            | '\0'
    )
}

fn is_value_char(c: char) -> bool {
    !matches!(
        c,
        '$' | '='
            | ' '
            | '\t'
            | '\n'
            | '\r'
            | ';'
            | '&'
            | '|'
            | '^'
            | '~'
            | '('
            | ')'
            | '!'
            | '"'
            | '\''
            | '\0'
    )
}

fn is_constant_name(s: &str) -> bool {
    let mut it = s.chars();
    matches!(it.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && it.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn describe(c: Option<char>) -> String {
    match c {
        None | Some('\n') | Some('\r') => "unexpected END_OF_LINE".to_string(),
        Some(c) => format!("unexpected '{c}'"),
    }
}

struct Parser<'a> {
    s: Vec<char>,
    i: usize,
    lookup: VarLookup<'a>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, off: usize) -> Option<char> {
        self.s.get(self.i + off).copied()
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.i += 1;
        }
    }

    /// End of the statement: end of text, a newline or a `;` comment.
    fn at_end(&self) -> bool {
        matches!(self.peek(), None | Some('\n') | Some('\r') | Some(';'))
    }

    fn statements(&mut self) -> Result<Vec<Statement>, String> {
        let mut out = Vec::new();
        loop {
            self.skip_blanks();
            if self.at_end() {
                return Ok(out);
            }
            if self.peek() == Some('[') {
                self.i += 1;
                out.push(Statement::Section(self.section_name()?));
                continue;
            }
            out.push(self.assignment()?);
            self.skip_blanks();
            if !self.at_end() {
                return Err(describe(self.peek()));
            }
            return Ok(out);
        }
    }

    fn section_name(&mut self) -> Result<String, String> {
        let mut name = String::new();
        loop {
            match self.peek() {
                None | Some('\n') | Some('\r') => return Err(describe(None)),
                Some(']') => {
                    self.i += 1;
                    return Ok(name);
                }
                Some('$') if self.peek_at(1) == Some('{') => name.push_str(&self.variable()?),
                Some('"') => {
                    self.i += 1;
                    name.push_str(&self.double_quoted()?);
                }
                Some(c) => {
                    name.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn assignment(&mut self) -> Result<Statement, String> {
        let start = self.i;
        while self.peek().is_some_and(is_label_char) {
            self.i += 1;
        }
        if self.i == start {
            return Err(describe(self.peek()));
        }
        let name: String = self.s[start..self.i].iter().collect();
        let name = name.trim_end_matches([' ', '\t']).to_string();
        if self.peek() == Some('[') {
            self.i += 1;
            let key = self.offset()?;
            self.skip_blanks();
            if self.peek() != Some('=') {
                return Err(describe(self.peek()));
            }
            self.i += 1;
            let value = self.value()?;
            return Ok(Statement::Array { name, key, value });
        }
        self.skip_blanks();
        if self.at_end() {
            return Ok(Statement::Entry { name, value: None });
        }
        if self.peek() != Some('=') {
            return Err(describe(self.peek()));
        }
        self.i += 1;
        let value = self.value()?;
        Ok(Statement::Entry {
            name,
            value: Some(value),
        })
    }

    /// The key of `name[key]`: leading blanks dropped, trailing kept
    /// (observed: `php_value[ h ]` is key "h ").
    fn offset(&mut self) -> Result<String, String> {
        self.skip_blanks();
        let mut key = String::new();
        loop {
            match self.peek() {
                None | Some('\n') | Some('\r') | Some(';') => return Err(describe(self.peek())),
                Some(']') => {
                    self.i += 1;
                    return Ok(key);
                }
                Some('$') if self.peek_at(1) == Some('{') => key.push_str(&self.variable()?),
                Some('"') => {
                    self.i += 1;
                    key.push_str(&self.double_quoted()?);
                }
                Some(c) if is_value_char(c) || is_blank(c) || c == '$' || c == '\'' => {
                    key.push(c);
                    self.i += 1;
                }
                Some(c) => return Err(describe(Some(c))),
            }
        }
    }

    fn value(&mut self) -> Result<String, String> {
        self.skip_blanks();
        if self.at_end() {
            return Ok(String::new());
        }
        if let Some(v) = self.keyword() {
            self.skip_blanks();
            if !self.at_end() {
                return Err(describe(self.peek()));
            }
            return Ok(v.to_string());
        }
        let v = self.expr()?;
        self.skip_blanks();
        if !self.at_end() {
            return Err(describe(self.peek()));
        }
        Ok(v.text)
    }

    /// Length of the run of value characters starting here.
    fn run_len(&self) -> usize {
        let mut j = self.i;
        while let Some(&c) = self.s.get(j) {
            if is_value_char(c) {
                j += 1;
            } else if c == '$' && self.s.get(j + 1) != Some(&'{') {
                j += if j + 1 < self.s.len() { 2 } else { 1 };
            } else {
                break;
            }
        }
        j - self.i
    }

    /// A whole-value `yes`/`off`/`null`...; the scanner prefers it when it
    /// is at least as long as the competing plain-string match.
    fn keyword(&mut self) -> Option<&'static str> {
        let run = self.run_len();
        let word: String = self.s[self.i..self.i + run].iter().collect();
        let (_, v) = KEYWORDS
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&word))?;
        self.i += run;
        Some(v)
    }

    fn expr(&mut self) -> Result<Val, String> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(c @ ('&' | '|' | '^')) => c,
                _ => return Ok(left),
            };
            self.i += 1;
            self.skip_blanks();
            let right = self.unary()?;
            let (a, b) = (left.int(), right.int());
            let r = match op {
                '&' => a & b,
                '|' => a | b,
                _ => a ^ b,
            };
            left = Val::num(r);
        }
    }

    fn unary(&mut self) -> Result<Val, String> {
        match self.peek() {
            Some('~') => {
                self.i += 1;
                self.skip_blanks();
                Ok(Val::num(!self.unary()?.int()))
            }
            Some('!') => {
                self.i += 1;
                self.skip_blanks();
                Ok(Val::num(i32::from(self.unary()?.int() == 0)))
            }
            Some('(') => {
                self.i += 1;
                self.skip_blanks();
                let v = self.expr()?;
                if self.peek() != Some(')') {
                    return Err(describe(self.peek()));
                }
                self.i += 1;
                self.skip_blanks();
                Ok(v)
            }
            _ => self.string_list(),
        }
    }

    /// Concatenation of plain words, blanks, quoted strings and `${VAR}`s.
    fn string_list(&mut self) -> Result<Val, String> {
        let mut out = String::new();
        let mut any = false;
        loop {
            match self.peek() {
                Some(c) if is_blank(c) => {
                    let start = self.i;
                    self.skip_blanks();
                    // Blanks before the end or before a quote are eaten by
                    // the scanner; elsewhere they are part of the value.
                    if self.at_end() || self.peek() == Some('"') {
                        continue;
                    }
                    if !any {
                        return Err(describe(self.peek()));
                    }
                    out.extend(&self.s[start..self.i]);
                }
                Some('"') => {
                    self.i += 1;
                    out.push_str(&self.double_quoted()?);
                    self.skip_blanks();
                    any = true;
                }
                Some('\'') => {
                    self.i += 1;
                    let start = self.i;
                    while self.peek().is_some_and(|c| c != '\'') {
                        self.i += 1;
                    }
                    if self.peek() != Some('\'') {
                        return Err(describe(None));
                    }
                    out.extend(&self.s[start..self.i]);
                    self.i += 1;
                    any = true;
                }
                Some('$') if self.peek_at(1) == Some('{') => {
                    out.push_str(&self.variable()?);
                    any = true;
                }
                Some(c) if is_value_char(c) || c == '$' => {
                    let run = self.run_len();
                    let word: String = self.s[self.i..self.i + run].iter().collect();
                    if any && KEYWORDS.iter().any(|(k, _)| k.eq_ignore_ascii_case(&word)) {
                        return Err("unexpected BOOL_TRUE".to_string());
                    }
                    self.i += run;
                    match php_constant(&word).filter(|_| is_constant_name(&word)) {
                        Some(v) => out.push_str(&v.to_string()),
                        None => out.push_str(&word),
                    }
                    any = true;
                }
                _ => break,
            }
        }
        if !any {
            return Err(describe(self.peek()));
        }
        Ok(Val { text: out })
    }

    /// After the opening quote; handles `\"`, `\\`, `\$` and `${VAR}`.
    fn double_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unexpected end of file".to_string()),
                Some('"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some('\\') => match self.peek_at(1) {
                    Some(c @ ('"' | '\\' | '$')) => {
                        out.push(c);
                        self.i += 2;
                    }
                    _ => {
                        out.push('\\');
                        self.i += 1;
                    }
                },
                Some('$') if self.peek_at(1) == Some('{') => out.push_str(&self.variable()?),
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// `${NAME}` → php.ini value or environment, else "".
    fn variable(&mut self) -> Result<String, String> {
        self.i += 2;
        let start = self.i;
        while self.peek().is_some_and(|c| c != '}' && c != '\n') {
            self.i += 1;
        }
        if self.peek() != Some('}') {
            return Err(describe(self.peek()));
        }
        let name: String = self.s[start..self.i].iter().collect();
        self.i += 1;
        Ok((self.lookup)(&name).unwrap_or_default())
    }
}

/// A value in an INI expression: text, read as an `int` when operated on.
struct Val {
    text: String,
}

impl Val {
    fn num(n: i32) -> Val {
        Val {
            text: n.to_string(),
        }
    }
    fn int(&self) -> i32 {
        atoi(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lk(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "memory_limit" => Some("128M".into()),
            _ => None,
        }
    }

    fn val(v: &str) -> String {
        match parse_line(&format!("x = {v}"), &lk).unwrap().as_slice() {
            [Statement::Entry { value: Some(v), .. }] => v.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn arr(line: &str) -> (String, String, String) {
        match parse_line(line, &lk).unwrap().as_slice() {
            [Statement::Array { name, key, value }] => (name.clone(), key.clone(), value.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keywords_normalise() {
        for (i, o) in [
            ("yes", "1"),
            ("On", "1"),
            ("TRUE", "1"),
            ("no", ""),
            ("off", ""),
            ("false", ""),
            ("none", ""),
            ("null", ""),
            ("yes   ", "1"),
            ("yesno", "yesno"),
            ("trueish", "trueish"),
            ("on/off", "on/off"),
        ] {
            assert_eq!(val(i), o, "{i}");
        }
    }

    #[test]
    fn constants_and_expressions() {
        assert_eq!(val("E_ALL & ~E_NOTICE"), "32759");
        assert_eq!(val("E_ALL&~E_NOTICE"), "32759");
        assert_eq!(val("E_ALL ^ E_DEPRECATED"), "24575");
        assert_eq!(val("E_ALL|E_STRICT"), "32767");
        assert_eq!(val("(E_ALL)"), "32767");
        assert_eq!(val("E_ALL & ~(E_NOTICE | E_WARNING)"), "32757");
        assert_eq!(val("5 | 2 & 3"), "3");
        assert_eq!(val("~8"), "-9");
        assert_eq!(val("!1"), "0");
        assert_eq!(val("!0"), "1");
        assert_eq!(val("-E_ALL"), "-E_ALL");
        assert_eq!(val("E_ALL & E_ALL a"), "32767");
        assert_eq!(val("UNKNOWN_CONST"), "UNKNOWN_CONST");
    }

    #[test]
    fn strings_quotes_and_blanks() {
        assert_eq!(val("%u \"%m %r\" %s"), "%u%m %r%s");
        assert_eq!(val("a 'b c' d"), "a b c d");
        assert_eq!(val("a b   c  "), "a b   c");
        assert_eq!(val("  \"q\" "), "q");
        assert_eq!(val("'single ${HOME} q'"), "single ${HOME} q");
        assert_eq!(
            val(r#""dq ${HOME} \"x\" \n \\ \$ y""#),
            r#"dq /root "x" \n \ $ y"#
        );
        assert_eq!(val("a;comment"), "a");
        assert_eq!(val("\"a;notcomment\""), "a;notcomment");
        assert_eq!(val("1.5"), "1.5");
        assert_eq!(val("-3"), "-3");
        assert_eq!(val("a$b"), "a$b");
        assert_eq!(val("foo$pool"), "foo$pool");
        assert_eq!(val("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(val("%{REQUEST_URI}e"), "%{REQUEST_URI}e");
        assert_eq!(val(""), "");
        assert_eq!(val("   ; only comment"), "");
    }

    #[test]
    fn variables() {
        assert_eq!(val("${HOME}/x"), "/root/x");
        assert_eq!(val("x${HOME}y"), "x/rooty");
        assert_eq!(val("${memory_limit}"), "128M");
        assert_eq!(val("${NOPE}"), "");
        assert_eq!(val("${VAR:-default}"), "");
    }

    #[test]
    fn arrays_and_sections() {
        assert_eq!(
            arr("php_value[ h ] = a"),
            ("php_value".into(), "h ".into(), "a".into())
        );
        assert_eq!(
            arr("env[X] = $HOME"),
            ("env".into(), "X".into(), "$HOME".into())
        );
        assert_eq!(arr("access.suppress_path[] = /a").1, "");
        assert_eq!(
            parse_line("[  sp  ]", &lk).unwrap(),
            vec![Statement::Section("  sp  ".into())]
        );
        assert_eq!(
            parse_line("[www] user = x", &lk).unwrap(),
            vec![
                Statement::Section("www".into()),
                Statement::Entry {
                    name: "user".into(),
                    value: Some("x".into())
                }
            ]
        );
        assert_eq!(
            parse_line("  foo  ", &lk).unwrap(),
            vec![Statement::Entry {
                name: "foo".into(),
                value: None
            }]
        );
        assert!(parse_line("; comment", &lk).unwrap().is_empty());
        assert!(parse_line("", &lk).unwrap().is_empty());
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "x = yes please",
            "x = a=b",
            "x = (a",
            "x = \"unterminated",
            "x = foo(bar)",
            "= x",
            "[unterminated",
            "x = &1",
        ] {
            assert!(parse_line(bad, &lk).is_err(), "{bad}");
        }
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("12abc"), 12);
        assert_eq!(atoi("  -7"), -7);
        assert_eq!(atoi(""), 0);
        assert_eq!(atoi("1.5"), 1);
        assert_eq!(atol("99999999999999999999"), i64::MAX);
    }
}
