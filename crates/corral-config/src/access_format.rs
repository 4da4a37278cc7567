//! access.format validation, as php-fpm's fpm_log_write does in test mode.
//!
//! php-fpm checks the format once at start-up (and in `-t`); a bad format
//! is fatal, with a WARNING naming the problem before the ERROR line.

/// `Err` is the WARNING text php-fpm logs for the first problem.
pub fn validate(format: &str) -> Result<(), String> {
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let mut token = false;
    while i < chars.len() {
        let c = chars[i];
        if !token {
            token = c == '%';
            i += 1;
            continue;
        }
        let mut modifier = String::new();
        let mut c = c;
        if c == '{' {
            let Some(end) = chars[i + 1..].iter().position(|&x| x == '}') else {
                return Err("missing closing embrace in the access.format".into());
            };
            modifier = chars[i + 1..i + 1 + end].iter().collect();
            i += end + 2;
            match chars.get(i) {
                Some(&n) => c = n,
                None => return Ok(()),
            }
        }
        let m = modifier.to_ascii_lowercase();
        let one_of = |allowed: &[&str]| m.is_empty() || allowed.contains(&m.as_str());
        match c {
            '%' | 't' | 'T' => {}
            'C' if !one_of(&["total", "user", "system"]) => {
                return Err(format!(
                    "only 'total', 'user' or 'system' are allowed as a modifier for %C ('{modifier}')"
                ))
            }
            'd' if !one_of(&[
                "seconds",
                "mili",
                "milli",
                "miliseconds",
                "milliseconds",
                "micro",
                "microseconds",
            ]) =>
            {
                return Err(format!("only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('{modifier}')"))
            }
            'M' if !one_of(&["bytes", "kilo", "kilobytes", "mega", "megabytes"]) => {
                return Err(format!("only 'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes' are allowed as a modifier for %M ('{modifier}')"))
            }
            'C' | 'd' | 'M' => {}
            'e' if modifier.is_empty() => {
                return Err(
                    "the name of the environment variable must be set between embraces for %e"
                        .into(),
                )
            }
            'o' if modifier.is_empty() => {
                return Err("the name of the header must be set between embraces for %o".into())
            }
            'e' | 'o' => {}
            'f' | 'l' | 'm' | 'n' | 'p' | 'P' | 'q' | 'Q' | 'r' | 'R' | 's' | 'u' => {
                if !modifier.is_empty() {
                    return Err(format!("embrace is not allowed for modifier %{c}"));
                }
            }
            other => return Err(format!("Invalid token in the access.format (%{other})")),
        }
        token = false;
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_real_formats() {
        for ok in [
            "%R - %u %t \"%m %r\" %s",
            "%R - %u %t \"%m %r%Q%q\" %s %f %{mili}d %{kilo}M %{user}C%%",
            "%{%Y-%m-%dT%H:%M:%S%z}t %{HTTP_HOST}e %{Content-Type}o %p %P %n %l %T",
            "abc %",
            "%{micro}d %{bytes}M %{TOTAL}C",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_with_php_fpm_words() {
        let cases = [
            ("%Z", "Invalid token in the access.format (%Z)"),
            ("%{x}m", "embrace is not allowed for modifier %m"),
            ("%{x", "missing closing embrace in the access.format"),
            ("%e", "the name of the environment variable must be set between embraces for %e"),
            ("%{}e", "the name of the environment variable must be set between embraces for %e"),
            ("%{x}C", "only 'total', 'user' or 'system' are allowed as a modifier for %C ('x')"),
            ("%{x}d", "only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('x')"),
            ("%{x}M", "only 'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes' are allowed as a modifier for %M ('x')"),
        ];
        for (f, msg) in cases {
            assert_eq!(validate(f), Err(msg.to_string()), "{f}");
        }
    }
}
