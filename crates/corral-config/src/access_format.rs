//! access.format, parsed once, when the configuration is loaded.
//!
//! php-fpm walks the format string twice with the same code
//! (`fpm_log_write`): once at start-up in test mode, where every problem is
//! fatal, and again for each request. The only runtime differences are
//! output limits, not syntax, so a format that parses here can always be
//! rendered: the worker gets [`Token`]s and has nothing left to reject.
//!
//! What php-fpm 8.2 accepts (each point observed with `php-fpm8.2 -t`):
//! * a `%` at the very end is dropped silently (`"abc %"` logs `"abc "`);
//! * `{...}` may repeat before a specifier and only the last one counts
//!   (`%{a}{b}t` formats with `b`); `%{}` is the same as no braces;
//! * a modifier keeps its first 128 bytes;
//! * modifiers of `%C`, `%d` and `%M` compare case-insensitively;
//! * braces after the last specifier (`"%{x}"`) are a missing embrace.
//!
//! One case is not php-fpm's: a `{` that is never closed makes php-fpm
//! read past the end of the string, and what it reports then depends on
//! the heap (observed: `Invalid token in the access.format (%D)`). We
//! report the missing embrace.

/// The format php-fpm uses when access.log is set and access.format is not.
pub const DEFAULT: &str = "%R - %u %t \"%m %r\" %s";

/// php-fpm copies a modifier into a 129-byte buffer.
pub const MODIFIER_MAX: usize = 128;

/// `%t`/`%T` without a modifier.
pub const DEFAULT_TIME: &str = "%d/%b/%Y:%H:%M:%S %z";

/// Which CPU time `%C` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cpu {
    Total,
    User,
    System,
}

/// `%d`'s unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duration {
    Seconds,
    Milliseconds,
    Microseconds,
}

/// `%M`'s unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Memory {
    Bytes,
    Kilobytes,
    Megabytes,
}

/// One piece of an access.format.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Token {
    /// Text copied as it is; `%%` is part of it.
    Literal(String),
    /// `%C`: percent of one CPU used by the request.
    Cpu(Cpu),
    /// `%d`: how long the request took.
    Duration(Duration),
    /// `%{NAME}e`: a FastCGI parameter.
    Env(String),
    /// `%f`: the script.
    Script,
    /// `%l`: the request's content length.
    ContentLength,
    /// `%m`: the request method.
    Method,
    /// `%M`: peak memory.
    Memory(Memory),
    /// `%n`: the pool name.
    Pool,
    /// `%{Name}o`: a response header the script set.
    Header(String),
    /// `%p`: the worker's pid.
    Pid,
    /// `%P`: the master's pid.
    MasterPid,
    /// `%q`: the query string.
    Query,
    /// `%Q`: `?` when there is a query string.
    QueryMark,
    /// `%r`: the request URI.
    RequestUri,
    /// `%R`: the client's address.
    RemoteAddr,
    /// `%s`: the response status.
    Status,
    /// `%t`: when the request was accepted, as strftime formats it.
    RequestTime(String),
    /// `%T`: when the line is written, as strftime formats it.
    LogTime(String),
    /// `%u`: the HTTP Basic user.
    User,
}

/// Parses access.format as php-fpm does. `Err` holds the WARNING php-fpm
/// logs for the first problem (it then fails with "wrong format").
pub fn parse(format: &str) -> Result<Vec<Token>, String> {
    let s = format.as_bytes();
    let mut tokens = Vec::new();
    let mut literal = String::new();
    // Always on a character boundary: it only moves past whole characters
    // and ASCII delimiters.
    let mut i = 0;
    while let Some(c) = format[i..].chars().next() {
        i += c.len_utf8();
        if c != '%' {
            literal.push(c);
            continue;
        }
        let mut modifier = "";
        while s.get(i) == Some(&b'{') {
            let Some(close) = s[i + 1..].iter().position(|&b| b == b'}') else {
                return Err(missing_embrace());
            };
            let end = i + 1 + close;
            modifier = truncate(&format[i + 1..end], MODIFIER_MAX);
            if end + 1 == s.len() {
                return Err(missing_embrace());
            }
            i = end + 1;
        }
        let Some(spec) = format[i..].chars().next() else {
            // A lone `%` at the end: php-fpm stops without writing it.
            break;
        };
        i += spec.len_utf8();
        let token = specifier(spec, modifier)?;
        match token {
            None => literal.push('%'),
            Some(t) => {
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(t);
            }
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

fn missing_embrace() -> String {
    "missing closing embrace in the access.format".into()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The token for `%{modifier}spec`; `None` for `%%`.
fn specifier(spec: char, modifier: &str) -> Result<Option<Token>, String> {
    let named = |what: &str| {
        if modifier.is_empty() {
            Err(format!(
                "the name of the {what} must be set between embraces for %{spec}"
            ))
        } else {
            Ok(modifier.to_string())
        }
    };
    let time = || match modifier {
        "" => DEFAULT_TIME.to_string(),
        m => m.to_string(),
    };
    let token = match spec {
        'C' => Token::Cpu(unit(
            modifier,
            &[
                (&["", "total"], Cpu::Total),
                (&["user"], Cpu::User),
                (&["system"], Cpu::System),
            ],
        )
        .ok_or_else(|| {
            format!(
                "only 'total', 'user' or 'system' are allowed as a modifier for %C ('{modifier}')"
            )
        })?),
        'd' => Token::Duration(unit(
            modifier,
            &[
                (&["", "seconds"], Duration::Seconds),
                (
                    &["milliseconds", "milli", "miliseconds", "mili"],
                    Duration::Milliseconds,
                ),
                (&["microseconds", "micro"], Duration::Microseconds),
            ],
        )
        .ok_or_else(|| {
            format!(
                "only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('{modifier}')"
            )
        })?),
        'M' => Token::Memory(unit(
            modifier,
            &[
                (&["", "bytes"], Memory::Bytes),
                (&["kilobytes", "kilo"], Memory::Kilobytes),
                (&["megabytes", "mega"], Memory::Megabytes),
            ],
        )
        .ok_or_else(|| {
            format!(
                "only 'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes' are allowed as a modifier for %M ('{modifier}')"
            )
        })?),
        'e' => Token::Env(named("environment variable")?),
        'o' => Token::Header(named("header")?),
        't' => Token::RequestTime(time()),
        'T' => Token::LogTime(time()),
        _ => {
            let plain = match spec {
                '%' => None,
                'f' => Some(Token::Script),
                'l' => Some(Token::ContentLength),
                'm' => Some(Token::Method),
                'n' => Some(Token::Pool),
                'p' => Some(Token::Pid),
                'P' => Some(Token::MasterPid),
                'q' => Some(Token::Query),
                'Q' => Some(Token::QueryMark),
                'r' => Some(Token::RequestUri),
                'R' => Some(Token::RemoteAddr),
                's' => Some(Token::Status),
                'u' => Some(Token::User),
                other => return Err(format!("Invalid token in the access.format (%{other})")),
            };
            // php-fpm checks this after the specifier itself.
            if !modifier.is_empty() {
                return Err(format!("embrace is not allowed for modifier %{spec}"));
            }
            return Ok(plain);
        }
    };
    Ok(Some(token))
}

/// The unit a modifier names (case-insensitively, as php-fpm's strcasecmp).
fn unit<T: Copy>(modifier: &str, table: &[(&[&str], T)]) -> Option<T> {
    table
        .iter()
        .find(|(names, _)| names.iter().any(|n| modifier.eq_ignore_ascii_case(n)))
        .map(|&(_, u)| u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Token {
        Token::Literal(s.into())
    }

    #[test]
    fn every_specifier() {
        let t = parse("%C %d %{HOST}e %f %l %m %M %n %{X-A}o %p %P %q %Q %r %R %s %t %T %u %%")
            .unwrap();
        let sp = || lit(" ");
        assert_eq!(
            t,
            vec![
                Token::Cpu(Cpu::Total),
                sp(),
                Token::Duration(Duration::Seconds),
                sp(),
                Token::Env("HOST".into()),
                sp(),
                Token::Script,
                sp(),
                Token::ContentLength,
                sp(),
                Token::Method,
                sp(),
                Token::Memory(Memory::Bytes),
                sp(),
                Token::Pool,
                sp(),
                Token::Header("X-A".into()),
                sp(),
                Token::Pid,
                sp(),
                Token::MasterPid,
                sp(),
                Token::Query,
                sp(),
                Token::QueryMark,
                sp(),
                Token::RequestUri,
                sp(),
                Token::RemoteAddr,
                sp(),
                Token::Status,
                sp(),
                Token::RequestTime(DEFAULT_TIME.into()),
                sp(),
                Token::LogTime(DEFAULT_TIME.into()),
                sp(),
                Token::User,
                lit(" %"),
            ]
        );
    }

    #[test]
    fn modifiers() {
        let one = |f: &str| {
            let mut t = parse(f).unwrap();
            assert_eq!(t.len(), 1, "{f}: {t:?}");
            t.remove(0)
        };
        for (f, want) in [
            ("%{total}C", Token::Cpu(Cpu::Total)),
            ("%{TOTAL}C", Token::Cpu(Cpu::Total)),
            ("%{user}C", Token::Cpu(Cpu::User)),
            ("%{System}C", Token::Cpu(Cpu::System)),
            ("%{seconds}d", Token::Duration(Duration::Seconds)),
            ("%{milli}d", Token::Duration(Duration::Milliseconds)),
            ("%{MILLISECONDS}d", Token::Duration(Duration::Milliseconds)),
            ("%{mili}d", Token::Duration(Duration::Milliseconds)),
            ("%{miliseconds}d", Token::Duration(Duration::Milliseconds)),
            ("%{micro}d", Token::Duration(Duration::Microseconds)),
            ("%{microseconds}d", Token::Duration(Duration::Microseconds)),
            ("%{bytes}M", Token::Memory(Memory::Bytes)),
            ("%{kilo}M", Token::Memory(Memory::Kilobytes)),
            ("%{KiloBytes}M", Token::Memory(Memory::Kilobytes)),
            ("%{mega}M", Token::Memory(Memory::Megabytes)),
            ("%{megabytes}M", Token::Memory(Memory::Megabytes)),
            ("%{%Y}t", Token::RequestTime("%Y".into())),
            ("%{%s}T", Token::LogTime("%s".into())),
            // Empty braces are no braces.
            ("%{}t", Token::RequestTime(DEFAULT_TIME.into())),
            ("%{}m", Token::Method),
            // The last braces win.
            ("%{a}{%H}t", Token::RequestTime("%H".into())),
            // Names are kept as written: php-fpm matches them exactly.
            ("%{http_host}e", Token::Env("http_host".into())),
        ] {
            assert_eq!(one(f), want, "{f}");
        }
    }

    #[test]
    fn trailing_percent_is_dropped() {
        assert_eq!(parse("abc %"), Ok(vec![lit("abc ")]));
        assert_eq!(parse("%"), Ok(vec![]));
        assert_eq!(parse("%m%"), Ok(vec![Token::Method]));
        assert_eq!(parse("%{x}t%"), Ok(vec![Token::RequestTime("x".into())]));
        assert_eq!(parse(""), Ok(vec![]));
    }

    #[test]
    fn literals_merge_with_percent_signs() {
        assert_eq!(parse("a%%b%%"), Ok(vec![lit("a%b%")]));
        assert_eq!(
            parse("é %m ü"),
            Ok(vec![lit("é "), Token::Method, lit(" ü")])
        );
    }

    #[test]
    fn long_modifiers_keep_128_bytes() {
        let name = "x".repeat(200);
        assert_eq!(
            parse(&format!("%{{{name}}}e")),
            Ok(vec![Token::Env("x".repeat(128))])
        );
        // The message names the truncated modifier, as php-fpm's does.
        let bad = format!("{}1", "0".repeat(127));
        assert_eq!(
            parse(&format!("%{{{bad}2}}C")),
            Err(format!(
                "only 'total', 'user' or 'system' are allowed as a modifier for %C ('{bad}')"
            ))
        );
        // Never inside a character.
        let wide = format!("{}é", "x".repeat(127));
        assert_eq!(
            parse(&format!("%{{{wide}}}e")),
            Ok(vec![Token::Env("x".repeat(127))])
        );
    }

    #[test]
    fn rejects_with_php_fpm_words() {
        let cases = [
            ("%Z", "Invalid token in the access.format (%Z)"),
            ("%}", "Invalid token in the access.format (%})"),
            ("%{a}}m", "Invalid token in the access.format (%})"),
            ("%{a}b", "Invalid token in the access.format (%b)"),
            ("%é", "Invalid token in the access.format (%é)"),
            ("%{x}m", "embrace is not allowed for modifier %m"),
            ("%{x}{y}m", "embrace is not allowed for modifier %m"),
            ("%{x}%", "embrace is not allowed for modifier %%"),
            ("%{x}u", "embrace is not allowed for modifier %u"),
            ("%{x", "missing closing embrace in the access.format"),
            ("%{x}", "missing closing embrace in the access.format"),
            ("a%{x}", "missing closing embrace in the access.format"),
            ("%{x}{y}", "missing closing embrace in the access.format"),
            ("%e", "the name of the environment variable must be set between embraces for %e"),
            ("%{}e", "the name of the environment variable must be set between embraces for %e"),
            ("%o", "the name of the header must be set between embraces for %o"),
            ("%{x}C", "only 'total', 'user' or 'system' are allowed as a modifier for %C ('x')"),
            ("%{x}d", "only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('x')"),
            ("%{x}M", "only 'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes' are allowed as a modifier for %M ('x')"),
        ];
        for (f, msg) in cases {
            assert_eq!(parse(f), Err(msg.to_string()), "{f}");
        }
    }

    #[test]
    fn default_format() {
        assert_eq!(
            parse(DEFAULT).unwrap(),
            vec![
                Token::RemoteAddr,
                lit(" - "),
                Token::User,
                lit(" "),
                Token::RequestTime(DEFAULT_TIME.into()),
                lit(" \""),
                Token::Method,
                lit(" "),
                Token::RequestUri,
                lit("\" "),
                Token::Status,
            ]
        );
    }
}
