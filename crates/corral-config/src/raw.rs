//! Phase one: files → a flat stream of statements with their positions.
//!
//! This is php-fpm's `fpm_conf_load_ini_file` without the typing: lines
//! are read one at a time, `include=` globs are expanded in place (so an
//! included file carries on in the current section), and the first error
//! ends reading.  Typing happens in phase two (`build`), which walks the
//! stream in order so the first error *in file order* is still the one
//! reported, as php-fpm would.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Diagnostic};
use crate::ini::{self, Statement};
use crate::paths;

/// Where a statement came from, printed `file:line` as php-fpm does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One statement of the config, in the order php-fpm would act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawItem {
    Section {
        name: String,
        at: Location,
    },
    Entry {
        name: String,
        value: Option<String>,
        at: Location,
    },
    Array {
        name: String,
        key: String,
        value: String,
        at: Location,
    },
    /// A non-fatal message emitted while reading (include matched nothing).
    Warning(Diagnostic),
}

/// Everything read before the first error, and that error's lines.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    pub items: Vec<RawItem>,
    pub error: Option<Vec<Diagnostic>>,
}

/// Inputs for reading: where relative includes resolve, and `${}` lookup.
pub struct Reader<'a> {
    pub prefix: Option<&'a Path>,
    pub lookup: ini::VarLookup<'a>,
    items: Vec<RawItem>,
    depth: usize,
    /// php-fpm keeps one global line counter that an include resets and
    /// does not restore; messages after an include inherit that quirk.
    lineno: usize,
}

/// Maximum include nesting, counting the main file (php-fpm: "more than 5").
const MAX_DEPTH: usize = 5;

impl<'a> Reader<'a> {
    pub fn new(prefix: Option<&'a Path>, lookup: ini::VarLookup<'a>) -> Self {
        Reader {
            prefix,
            lookup,
            items: Vec::new(),
            depth: 0,
            lineno: 0,
        }
    }

    /// Read the main file and its includes.
    pub fn read_file(mut self, path: &Path) -> RawConfig {
        let error = self.load(path, None).err();
        RawConfig {
            items: self.items,
            error,
        }
    }

    /// Parse text as if it were the main file (includes still work).
    pub fn read_str(mut self, text: &str, name: &Path) -> RawConfig {
        self.depth = 1;
        let error = self.lines(text, name).err();
        RawConfig {
            items: self.items,
            error,
        }
    }

    fn load(&mut self, path: &Path, _from: Option<&Path>) -> Result<(), Vec<Diagnostic>> {
        if path.as_os_str().is_empty() {
            return Err(vec![ConfigError::EmptyFilename.into()]);
        }
        let bytes = std::fs::read(path).map_err(|e| {
            vec![ConfigError::Open {
                path: path.to_path_buf(),
                reason: os_error_text(&e),
            }
            .into()]
        })?;
        if self.depth >= MAX_DEPTH {
            return Err(vec![ConfigError::IncludeDepth.into()]);
        }
        self.depth += 1;
        let text = String::from_utf8_lossy(&bytes);
        let r = self.lines(&text, path);
        self.depth -= 1;
        r
    }

    fn lines(&mut self, text: &str, file: &Path) -> Result<(), Vec<Diagnostic>> {
        self.lineno = 0;
        let fname = file.display().to_string();
        for line in text.split('\n') {
            self.lineno += 1;
            if line.is_empty() {
                continue;
            }
            let at = Location {
                file: file.to_path_buf(),
                line: self.lineno,
            };
            let stmts = ini::parse_line(line, self.lookup).map_err(|detail| {
                vec![ConfigError::Syntax {
                    file: fname.clone(),
                    line: at.line,
                    detail,
                }
                .into()]
            })?;
            let mut include = None;
            for st in stmts {
                match st {
                    Statement::Section(name) => self.items.push(RawItem::Section {
                        name,
                        at: at.clone(),
                    }),
                    Statement::Entry {
                        name,
                        value: Some(v),
                    } if name == "include" => {
                        if include.is_some() {
                            return Err(vec![ConfigError::TwoIncludes {
                                file: fname.clone(),
                                line: at.line,
                            }
                            .into()]);
                        }
                        include = Some(v);
                    }
                    Statement::Entry { name, value } => self.items.push(RawItem::Entry {
                        name,
                        value,
                        at: at.clone(),
                    }),
                    Statement::Array { name, key, value } => self.items.push(RawItem::Array {
                        name,
                        key,
                        value,
                        at: at.clone(),
                    }),
                }
            }
            if let Some(pattern) = include {
                let pattern = paths::full_path(&pattern, None, self.prefix, None);
                self.include(&pattern, &fname)?;
            }
        }
        Ok(())
    }

    fn include(&mut self, pattern: &str, from: &str) -> Result<(), Vec<Diagnostic>> {
        let matches = match glob_files(pattern) {
            GlobResult::Files(f) => f,
            GlobResult::NoMatch => {
                self.items.push(RawItem::Warning(
                    ConfigError::IncludeNothingMatches {
                        pattern: pattern.to_string(),
                        file: from.to_string(),
                        line: self.lineno,
                    }
                    .into(),
                ));
                return Ok(());
            }
            GlobResult::Aborted => {
                return Err(vec![ConfigError::Globalize {
                    pattern: pattern.to_string(),
                    file: from.to_string(),
                    line: self.lineno,
                }
                .into()])
            }
        };
        for path in matches {
            if let Err(mut errs) = self.load(&path, None) {
                errs.push(
                    ConfigError::Include {
                        path: path.display().to_string(),
                        file: from.to_string(),
                        line: self.lineno,
                    }
                    .into(),
                );
                return Err(errs);
            }
        }
        Ok(())
    }
}

/// strerror-style text with errno, as zlog's SYSERROR appends it.
fn os_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    // std renders "No such file or directory (os error 2)".
    match (s.rfind(" (os error "), e.raw_os_error()) {
        (Some(i), Some(code)) => format!("{} ({code})", &s[..i]),
        _ => s,
    }
}

enum GlobResult {
    Files(Vec<PathBuf>),
    NoMatch,
    Aborted,
}

/// glob(3) with GLOB_ERR|GLOB_MARK as php-fpm calls it: sorted matches,
/// directories skipped, and a missing/unreadable directory in front of the
/// first wildcard is an abort (ret=2) rather than "nothing matches".
fn glob_files(pattern: &str) -> GlobResult {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let mut all: Vec<PathBuf> = match glob::glob_with(pattern, opts) {
        Ok(paths) => paths.filter_map(Result::ok).collect(),
        Err(_) => Vec::new(),
    };
    if all.is_empty() {
        let dir = literal_dir(pattern);
        return match dir {
            Some(d) if !Path::new(&d).is_dir() => GlobResult::Aborted,
            _ => GlobResult::NoMatch,
        };
    }
    all.sort();
    // GLOB_MARK appends '/' to directories and php-fpm skips those; a
    // directory matched without a wildcard still counts as a match.
    GlobResult::Files(all.into_iter().filter(|p| !p.is_dir()).collect())
}

/// The directory glob must open first: the components before the first
/// one holding a wildcard.  `None` when the pattern has no wildcard.
fn literal_dir(pattern: &str) -> Option<String> {
    let first_magic = pattern.find(['*', '?', '['])?;
    let dir_end = pattern[..first_magic].rfind('/')?;
    Some(if dir_end == 0 {
        "/".to_string()
    } else {
        pattern[..dir_end].to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_dir_of_patterns() {
        assert_eq!(literal_dir("/a/b/*.conf").as_deref(), Some("/a/b"));
        assert_eq!(literal_dir("/*.conf").as_deref(), Some("/"));
        assert_eq!(literal_dir("/a/b.conf"), None);
    }

    #[test]
    fn os_error_has_errno() {
        let e = std::fs::read("/nonexistent/x").unwrap_err();
        assert_eq!(os_error_text(&e), "No such file or directory (2)");
    }
}
