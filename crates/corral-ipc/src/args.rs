//! The prototype's arguments. They travel in one environment variable so
//! that the process title stays exactly php-fpm's `php-fpm: pool NAME`,
//! which monitoring scripts grep for.

/// Set (to the encoded [`PrototypeArgs`]) when `corral` is exec'd as a
/// prototype; the prototype removes it from its environment at once.
pub const PROTOTYPE_ENV: &str = "CORRAL_PROTOTYPE";

/// Separates the arguments in the environment value: a control character
/// no pool name, path or `-d` define can contain.
const SEP: char = '\u{1f}';

/// What PHP is started with: php-fpm's `-c`, `-n` and `-d`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhpArgs {
    pub ini_path: Option<String>,
    pub no_ini: bool,
    pub defines: Vec<String>,
    /// `-e`: compile with extended information for debuggers and
    /// profilers (ZEND_COMPILE_EXTENDED_INFO).
    pub extended_info: bool,
}

impl PhpArgs {
    /// The same options as php-fpm command-line words, in order.
    pub fn to_words(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.ini_path {
            out.extend(["-c".to_string(), c.clone()]);
        }
        if self.no_ini {
            out.push("-n".into());
        }
        for d in &self.defines {
            out.extend(["-d".to_string(), d.clone()]);
        }
        if self.extended_info {
            out.push("-e".into());
        }
        out
    }
}

impl PhpArgs {
    /// Read php-fpm's `-c PATH`, `-n`, `-d NAME=VALUE` and `-e` words (as the
    /// master keeps them from its own command line); other words are not
    /// PHP's and are ignored.
    pub fn from_words(words: &[String]) -> PhpArgs {
        let mut out = PhpArgs::default();
        let mut it = words.iter();
        while let Some(w) = it.next() {
            match w.as_str() {
                "-c" => out.ini_path = it.next().cloned(),
                "-n" => out.no_ini = true,
                "-d" => out.defines.extend(it.next().cloned()),
                "-e" => out.extended_info = true,
                _ => {}
            }
        }
        out
    }
}

/// Everything a prototype is told besides its descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrototypeArgs {
    pub pool: String,
    /// Size of the pool's scoreboard, in 64-bit words.
    pub board_words: usize,
    /// A `<pool>_status` pool: its parent's name and scoreboard size.
    pub status_of: Option<(String, usize)>,
    /// Whether descriptor 7 holds the pool's access.log.
    pub access_log: bool,
    pub php: PhpArgs,
    /// TCP ports the pool may not connect to (every pool's FastCGI and
    /// status TCP ports), for its Landlock ruleset; empty when the pool
    /// has no `corral.landlock`.
    pub deny_connect: Vec<u16>,
}

/// The environment value is not a prototype's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown prototype argument '{0}'")]
    Unknown(String),
    #[error("prototype argument '{0}' needs a value")]
    MissingValue(&'static str),
    #[error("prototype argument '{0}' is not a number: '{1}'")]
    NotANumber(&'static str, String),
    #[error("no --pool given to the prototype")]
    NoPool,
    #[error("--status-of and --status-words go together")]
    StatusHalf,
    #[error("--deny-connect takes comma-separated ports 0..=65535, not '{0}'")]
    BadPorts(String),
}

impl PrototypeArgs {
    pub fn encode(&self) -> String {
        let mut w = vec![
            "--pool".to_string(),
            self.pool.clone(),
            "--board-words".into(),
            self.board_words.to_string(),
        ];
        if let Some((parent, words)) = &self.status_of {
            w.extend([
                "--status-of".to_string(),
                parent.clone(),
                "--status-words".into(),
                words.to_string(),
            ]);
        }
        if self.access_log {
            w.push("--access-log".into());
        }
        if !self.deny_connect.is_empty() {
            let ports: Vec<String> = self.deny_connect.iter().map(u16::to_string).collect();
            w.extend(["--deny-connect".to_string(), ports.join(",")]);
        }
        w.extend(self.php.to_words());
        w.join(&SEP.to_string())
    }

    pub fn decode(value: &str) -> Result<PrototypeArgs, ArgsError> {
        let mut pool = None;
        let mut board_words = 0;
        let mut status_of: Option<String> = None;
        let mut status_words: Option<usize> = None;
        let mut access_log = false;
        let mut php = PhpArgs::default();
        let mut deny_connect = Vec::new();
        let mut it = value.split(SEP).filter(|w| !w.is_empty());
        fn value_of<'a>(
            it: &mut impl Iterator<Item = &'a str>,
            name: &'static str,
        ) -> Result<&'a str, ArgsError> {
            it.next().ok_or(ArgsError::MissingValue(name))
        }
        fn num(v: &str, name: &'static str) -> Result<usize, ArgsError> {
            v.parse()
                .map_err(|_| ArgsError::NotANumber(name, v.to_string()))
        }
        while let Some(word) = it.next() {
            match word {
                "--pool" => pool = Some(value_of(&mut it, "--pool")?.to_string()),
                "--board-words" => {
                    board_words = num(value_of(&mut it, "--board-words")?, "--board-words")?
                }
                "--status-of" => status_of = Some(value_of(&mut it, "--status-of")?.to_string()),
                "--status-words" => {
                    status_words =
                        Some(num(value_of(&mut it, "--status-words")?, "--status-words")?)
                }
                "--access-log" => access_log = true,
                "--deny-connect" => {
                    let v = value_of(&mut it, "--deny-connect")?;
                    deny_connect = v
                        .split(',')
                        .map(|p| match p.parse::<u16>() {
                            Ok(n) if !p.starts_with('+') => Ok(n),
                            _ => Err(ArgsError::BadPorts(v.to_string())),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "-c" => php.ini_path = Some(value_of(&mut it, "-c")?.to_string()),
                "-n" => php.no_ini = true,
                "-d" => php.defines.push(value_of(&mut it, "-d")?.to_string()),
                "-e" => php.extended_info = true,
                other => return Err(ArgsError::Unknown(other.to_string())),
            }
        }
        let status_of = match (status_of, status_words) {
            (Some(p), Some(w)) => Some((p, w)),
            (None, None) => None,
            _ => return Err(ArgsError::StatusHalf),
        };
        Ok(PrototypeArgs {
            pool: pool.ok_or(ArgsError::NoPool)?,
            board_words,
            status_of,
            access_log,
            php,
            deny_connect,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Anything but the separator, and not empty (empty words are skipped).
    const WORD: &str = "[^\u{1f}]{1,20}";

    proptest! {
        #[test]
        fn round_trips(
            pool in WORD,
            board_words in any::<usize>(),
            status in proptest::option::of((WORD, any::<usize>())),
            access_log in any::<bool>(),
            ini_path in proptest::option::of(WORD),
            no_ini in any::<bool>(),
            defines in proptest::collection::vec(WORD, 0..4),
            extended_info in any::<bool>(),
            deny_connect in proptest::collection::vec(any::<u16>(), 0..40),
        ) {
            let a = PrototypeArgs {
                pool,
                board_words,
                status_of: status,
                access_log,
                php: PhpArgs { ini_path, no_ini, defines, extended_info },
                deny_connect,
            };
            prop_assert_eq!(PrototypeArgs::decode(&a.encode()), Ok(a));
        }
    }

    #[test]
    fn php_words_round_trip() {
        let php = PhpArgs {
            ini_path: Some("/etc/php.ini".into()),
            no_ini: true,
            defines: vec!["a=1".into(), "b=2".into()],
            extended_info: true,
        };
        assert_eq!(PhpArgs::from_words(&php.to_words()), php);
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        assert_eq!(
            PrototypeArgs::decode("--pool\u{1f}www\u{1f}--bogus"),
            Err(ArgsError::Unknown("--bogus".into()))
        );
        assert_eq!(PrototypeArgs::decode("-n"), Err(ArgsError::NoPool));
        assert_eq!(
            PrototypeArgs::decode("--pool\u{1f}a\u{1f}--status-of\u{1f}b"),
            Err(ArgsError::StatusHalf)
        );
        assert_eq!(
            PrototypeArgs::decode("--pool\u{1f}a\u{1f}--board-words\u{1f}x"),
            Err(ArgsError::NotANumber("--board-words", "x".into()))
        );
        for bad in ["1,,2", "65536", "-1", "80 81", "+80"] {
            assert_eq!(
                PrototypeArgs::decode(&format!("--pool\u{1f}a\u{1f}--deny-connect\u{1f}{bad}")),
                Err(ArgsError::BadPorts(bad.into())),
                "{bad:?}"
            );
        }
    }
}
