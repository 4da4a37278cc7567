//! The CGI variables php-fpm derives from the FastCGI params before it runs
//! a script (`init_request_info` in php-fpm): SCRIPT_FILENAME, PATH_INFO,
//! PATH_TRANSLATED, SCRIPT_NAME under `cgi.fix_pathinfo`, Apache
//! `proxy:fcgi://` prefixes, the IIS PATH_INFO quirk, and `ORIG_*` copies of
//! whatever was rewritten. Pure: the file system is behind [`FileSystem`].

/// Which php.ini settings steer the rewriting.
#[derive(Debug, Clone)]
pub struct CgiOptions {
    pub fix_pathinfo: bool,
    pub discard_path: bool,
    pub script_path_encoded: bool,
    /// php.ini `doc_root`, used when the web server sends no DOCUMENT_ROOT.
    pub doc_root: Option<Vec<u8>>,
}

impl Default for CgiOptions {
    fn default() -> Self {
        CgiOptions {
            fix_pathinfo: true,
            discard_path: false,
            script_path_encoded: true,
            doc_root: None,
        }
    }
}

/// The two questions php-fpm asks the file system.
pub trait FileSystem {
    /// realpath() succeeds.
    fn resolves(&self, path: &[u8]) -> bool;
    /// stat() says regular file.
    fn is_file(&self, path: &[u8]) -> bool;
}

/// The real file system.
pub struct RealFs;

impl FileSystem for RealFs {
    fn resolves(&self, path: &[u8]) -> bool {
        // realpath() fails exactly when a component is missing or not a
        // directory, which one stat() also tells, without a readlink per
        // component on every request.
        std::fs::metadata(bytes_path(path)).is_ok()
    }
    fn is_file(&self, path: &[u8]) -> bool {
        std::fs::metadata(bytes_path(path)).is_ok_and(|m| m.is_file())
    }
}

fn bytes_path(b: &[u8]) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(b))
}

/// The outcome: the rewritten params plus what PHP's request_info gets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// The script to run; `None` means 404 "Primary script unknown".
    pub path_translated: Option<Vec<u8>>,
    /// SCRIPT_NAME as rewritten: PHP_SELF, ping/status matching, `%r`.
    pub request_uri: Option<Vec<u8>>,
}

/// Ordered params with php-fpm's FCGI_PUTENV semantics: setting replaces in
/// place (or appends), setting `None` removes.
struct Env(Vec<(Vec<u8>, Vec<u8>)>);

impl Env {
    fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.0
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.clone())
    }
    fn set(&mut self, name: &str, value: Option<&[u8]>) {
        let pos = self.0.iter().position(|(n, _)| n == name.as_bytes());
        match (pos, value) {
            (Some(i), Some(v)) => self.0[i].1 = v.to_vec(),
            (None, Some(v)) => self.0.push((name.as_bytes().to_vec(), v.to_vec())),
            (Some(i), None) => {
                self.0.remove(i);
            }
            (None, None) => {}
        }
    }
}

const APACHE_PREFIXES: [&[u8]; 2] = [b"proxy:fcgi://", b"proxy:balancer://"];

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// `%XX` decoding as PHP's rawurldecode (no `+` to space).
pub fn raw_url_decode(s: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// php-fpm refuses a script path with a `..` segment.
pub fn is_valid_path(path: &[u8]) -> bool {
    !path.split(|&b| b == b'/').any(|seg| seg == b"..")
}

/// Rewrite `params` as php-fpm does before running a request.
pub fn resolve(
    params: Vec<(Vec<u8>, Vec<u8>)>,
    opts: &CgiOptions,
    fs: &dyn FileSystem,
) -> Resolved {
    let mut env = Env(params);
    let mut script_filename = env.get("SCRIPT_FILENAME");
    let env_path_translated = env.get("PATH_TRANSLATED");
    let mut script = script_filename
        .clone()
        .or_else(|| env_path_translated.clone());
    let mut request_uri: Option<Vec<u8>> = None;

    if script.is_none() {
        return Resolved {
            params: env.0,
            path_translated: None,
            request_uri: None,
        };
    }

    let mut path_info = env.get("PATH_INFO");
    let mut script_name = env.get("SCRIPT_NAME");

    // IIS sends PATH_INFO with SCRIPT_NAME still in front of it.
    if let (Some(sw), Some(sn), Some(pi)) = (env.get("SERVER_SOFTWARE"), &script_name, &path_info) {
        if sw.starts_with(b"Microsoft-IIS") && pi.starts_with(sn) {
            env.set("ORIG_PATH_INFO", Some(pi));
            let rest = pi[sn.len()..].to_vec();
            let rest = if rest.is_empty() { None } else { Some(rest) };
            env.set("PATH_INFO", rest.as_deref());
            path_info = rest;
        }
    }

    // Apache mod_proxy_fcgi: SCRIPT_FILENAME=proxy:fcgi://host:port/path?query
    let mut apache = false;
    if let Some(sf) = script_filename.clone() {
        for prefix in APACHE_PREFIXES {
            if starts_with_ci(&sf, prefix) {
                let rest = &sf[prefix.len()..];
                let mut fixed = match rest.iter().position(|&b| b == b'/') {
                    Some(i) => {
                        apache = true;
                        rest[i..].to_vec()
                    }
                    None => sf.clone(),
                };
                if let Some(q) = fixed.iter().position(|&b| b == b'?') {
                    fixed.truncate(q);
                }
                if apache && !opts.script_path_encoded {
                    fixed = raw_url_decode(&fixed);
                }
                env.set("SCRIPT_FILENAME", Some(&fixed));
                if script == script_filename {
                    script = Some(fixed.clone());
                }
                script_filename = Some(fixed);
                break;
            }
        }
    }

    if opts.fix_pathinfo {
        let redirect_url = env.get("REDIRECT_URL");
        let mut document_root = env.get("DOCUMENT_ROOT");
        if document_root.is_none() {
            if let Some(dr) = &opts.doc_root {
                env.set("DOCUMENT_ROOT", Some(dr));
                document_root = Some(dr.clone());
            }
        }
        let orig_path_translated = env_path_translated.clone();
        let orig_path_info = path_info.clone();
        let orig_script_name = script_name.clone();
        let orig_script_filename = script_filename.clone();
        let mut script_name_redirected = false;

        // Apache mod_fastcgi: the real script is in PATH_TRANSLATED.
        if !apache {
            if let (Some(pt), Some(ru)) = (&env_path_translated, &redirect_url) {
                if Some(pt) != script.as_ref() {
                    script = Some(pt.clone());
                    script_name = Some(ru.clone());
                    script_name_redirected = true;
                }
            }
        }

        let sp = script.clone().unwrap_or_default();
        if !sp.is_empty() && (sp.ends_with(b"/") || !fs.resolves(&sp)) {
            // Walk back through the path until a regular file is found: the
            // rest is PATH_INFO (/info.php/test).
            let mut pt = sp.clone();
            let mut found = false;
            while let Some(cut) = pt.iter().rposition(|&b| b == b'/') {
                pt.truncate(cut);
                if !fs.is_file(&pt) {
                    continue;
                }
                found = true;
                let slen = sp.len() - pt.len();
                let (new_pi, changed) = if apache {
                    let pi = sp[pt.len()..].to_vec();
                    let changed = slen != 0 && orig_path_info.as_ref() != Some(&pi);
                    (Some(pi), changed)
                } else {
                    match &path_info {
                        Some(pi) if pi.len() > slen => (Some(pi[pi.len() - slen..].to_vec()), true),
                        _ => (None, false),
                    }
                };
                if changed {
                    let pi = new_pi.clone().unwrap_or_default();
                    let mut decoded: Option<Vec<u8>> = None;
                    if let Some(opi) = &orig_path_info {
                        env.set("ORIG_PATH_INFO", Some(opi));
                        // php-fpm compares SCRIPT_NAME with PATH_INFO cut
                        // where the new PATH_INFO starts.
                        let head: Vec<u8> = if apache {
                            opi.clone()
                        } else {
                            opi[..opi.len() - pi.len()].to_vec()
                        };
                        if orig_script_name.as_ref() != Some(&head) {
                            if let Some(osn) = &orig_script_name {
                                env.set("ORIG_SCRIPT_NAME", Some(osn));
                            }
                            env.set("SCRIPT_NAME", Some(&head));
                            request_uri = Some(head);
                        } else {
                            request_uri = orig_script_name.clone();
                        }
                    } else if let (true, Some(sn)) = (apache, &script_name) {
                        // ProxyPass cannot set PATH_INFO, so it is still
                        // part of SCRIPT_NAME: take it off.
                        if opts.script_path_encoded && pi.contains(&b'%') {
                            decoded = Some(raw_url_decode(&pi));
                        }
                        let tail_start = if sn.len() > slen && sn[sn.len() - slen..] == pi[..] {
                            Some(sn.len() - slen)
                        } else {
                            decoded.as_ref().and_then(|d| {
                                (sn.len() > d.len() && sn[sn.len() - d.len()..] == d[..])
                                    .then(|| sn.len() - d.len())
                            })
                        };
                        if let Some(start) = tail_start {
                            if let Some(osn) = &orig_script_name {
                                env.set("ORIG_SCRIPT_NAME", Some(osn));
                            }
                            let trimmed = sn[..start].to_vec();
                            env.set("SCRIPT_NAME", Some(&trimmed));
                            request_uri = Some(trimmed.clone());
                            script_name = Some(trimmed);
                        }
                    }
                    let final_pi = decoded.unwrap_or(pi);
                    env.set("PATH_INFO", Some(&final_pi));
                    path_info = Some(final_pi);
                }
                if orig_script_filename.as_ref() != Some(&pt) {
                    if let Some(osf) = &orig_script_filename {
                        env.set("ORIG_SCRIPT_FILENAME", Some(osf));
                    }
                    env.set("SCRIPT_FILENAME", Some(&pt));
                }
                script = Some(pt.clone());
                // PATH_TRANSLATED = DOCUMENT_ROOT + PATH_INFO, or failing
                // that SCRIPT_FILENAME - SCRIPT_NAME + PATH_INFO.
                let translated = if let Some(dr) = &document_root {
                    let l = if dr.ends_with(b"/") {
                        dr.len() - 1
                    } else {
                        dr.len()
                    };
                    let mut t = dr[..l].to_vec();
                    t.extend_from_slice(path_info.as_deref().unwrap_or_default());
                    Some(t)
                } else if let Some(sn) = script_name.as_ref().filter(|sn| contains(&pt, sn)) {
                    let keep = pt.len().saturating_sub(sn.len());
                    let mut t = pt[..keep].to_vec();
                    t.extend_from_slice(path_info.as_deref().unwrap_or_default());
                    Some(t)
                } else {
                    None
                };
                if let Some(t) = translated {
                    if let Some(opt) = &orig_path_translated {
                        env.set("ORIG_PATH_TRANSLATED", Some(opt));
                    }
                    env.set("PATH_TRANSLATED", Some(&t));
                }
                break;
            }
            if !found {
                if let Some(osf) = &orig_script_filename {
                    env.set("ORIG_SCRIPT_FILENAME", Some(osf));
                }
                env.set("SCRIPT_FILENAME", None);
                script = None;
            }
            if request_uri.is_none() {
                if orig_script_name.is_none() || orig_script_name != script_name {
                    if let Some(osn) = &orig_script_name {
                        env.set("ORIG_SCRIPT_NAME", Some(osn));
                    }
                    env.set("SCRIPT_NAME", script_name.as_deref());
                    request_uri = script_name.clone();
                } else {
                    request_uri = orig_script_name.clone();
                }
            }
        } else {
            if orig_script_filename.is_none() || script != orig_script_filename {
                if let Some(osf) = &orig_script_filename {
                    env.set("ORIG_SCRIPT_FILENAME", Some(osf));
                }
                env.set("SCRIPT_FILENAME", script.as_deref());
            }
            if !apache && redirect_url.is_some() {
                if let Some(opi) = &orig_path_info {
                    env.set("ORIG_PATH_INFO", Some(opi));
                    env.set("PATH_INFO", None);
                }
                if let Some(opt) = &orig_path_translated {
                    env.set("ORIG_PATH_TRANSLATED", Some(opt));
                    env.set("PATH_TRANSLATED", None);
                }
            }
            if script_name_redirected {
                if let Some(osn) = &orig_script_name {
                    env.set("ORIG_SCRIPT_NAME", Some(osn));
                }
                env.set("SCRIPT_NAME", script_name.as_deref());
            }
            request_uri = script_name.clone();
        }
    } else {
        request_uri = path_info.clone().or(script_name.clone());
        if !opts.discard_path {
            if let Some(pt) = &env_path_translated {
                script = Some(pt.clone());
            }
        }
    }

    let path_translated = script.filter(|s| is_valid_path(s));
    Resolved {
        params: env.0,
        path_translated,
        request_uri,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeFs(Vec<&'static str>);
    impl FileSystem for FakeFs {
        fn resolves(&self, p: &[u8]) -> bool {
            self.0
                .iter()
                .any(|f| f.as_bytes() == p || f.as_bytes().starts_with(&[p, b"/"].concat()))
        }
        fn is_file(&self, p: &[u8]) -> bool {
            self.0.iter().any(|f| f.as_bytes() == p)
        }
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect()
    }

    fn get<'a>(r: &'a Resolved, name: &str) -> Option<&'a str> {
        r.params
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
    }

    const FS: FakeFs = FakeFs(Vec::new());

    #[test]
    fn nginx_style_is_left_alone() {
        let fs = FakeFs(vec!["/www/index.php"]);
        let r = resolve(
            p(&[
                ("SCRIPT_FILENAME", "/www/index.php"),
                ("SCRIPT_NAME", "/index.php"),
                ("PATH_INFO", "/foo/bar"),
                ("DOCUMENT_ROOT", "/www"),
            ]),
            &CgiOptions::default(),
            &fs,
        );
        assert_eq!(r.path_translated.as_deref(), Some(&b"/www/index.php"[..]));
        assert_eq!(r.request_uri.as_deref(), Some(&b"/index.php"[..]));
        assert_eq!(get(&r, "PATH_TRANSLATED"), None);
        assert_eq!(get(&r, "ORIG_SCRIPT_FILENAME"), None);
    }

    #[test]
    fn path_info_split_from_script_filename() {
        let fs = FakeFs(vec!["/www/index.php"]);
        let r = resolve(
            p(&[
                ("SCRIPT_FILENAME", "/www/index.php/foo/bar"),
                ("SCRIPT_NAME", "/index.php/foo/bar"),
                ("PATH_INFO", "/index.php/foo/bar"),
                ("DOCUMENT_ROOT", "/www"),
            ]),
            &CgiOptions::default(),
            &fs,
        );
        assert_eq!(get(&r, "SCRIPT_FILENAME"), Some("/www/index.php"));
        assert_eq!(
            get(&r, "ORIG_SCRIPT_FILENAME"),
            Some("/www/index.php/foo/bar")
        );
        assert_eq!(get(&r, "PATH_INFO"), Some("/foo/bar"));
        assert_eq!(get(&r, "ORIG_PATH_INFO"), Some("/index.php/foo/bar"));
        assert_eq!(get(&r, "SCRIPT_NAME"), Some("/index.php"));
        assert_eq!(get(&r, "PATH_TRANSLATED"), Some("/www/foo/bar"));
        assert_eq!(r.request_uri.as_deref(), Some(&b"/index.php"[..]));
    }

    #[test]
    fn no_path_info_param_keeps_script_name_and_sets_docroot_translated() {
        // The surprise observed in php-fpm 8.2: SCRIPT_NAME stays long and
        // PATH_TRANSLATED becomes DOCUMENT_ROOT.
        let fs = FakeFs(vec!["/www/index.php"]);
        let r = resolve(
            p(&[
                ("SCRIPT_FILENAME", "/www/index.php/foo/bar"),
                ("SCRIPT_NAME", "/index.php/foo/bar"),
                ("DOCUMENT_ROOT", "/www"),
            ]),
            &CgiOptions::default(),
            &fs,
        );
        assert_eq!(get(&r, "SCRIPT_FILENAME"), Some("/www/index.php"));
        assert_eq!(get(&r, "PATH_INFO"), None);
        assert_eq!(get(&r, "SCRIPT_NAME"), Some("/index.php/foo/bar"));
        assert_eq!(get(&r, "PATH_TRANSLATED"), Some("/www"));
    }

    #[test]
    fn apache_proxy_fcgi_prefix() {
        let fs = FakeFs(vec!["/srv/www/index.php"]);
        let r = resolve(
            p(&[
                (
                    "SCRIPT_FILENAME",
                    "proxy:fcgi://127.0.0.1:9911/srv/www/index.php/pi?q=1",
                ),
                ("SCRIPT_NAME", "/index.php/pi"),
                ("DOCUMENT_ROOT", "/srv/www"),
            ]),
            &CgiOptions::default(),
            &fs,
        );
        assert_eq!(get(&r, "SCRIPT_FILENAME"), Some("/srv/www/index.php"));
        assert_eq!(get(&r, "PATH_INFO"), Some("/pi"));
        assert_eq!(get(&r, "SCRIPT_NAME"), Some("/index.php"));
        assert_eq!(get(&r, "ORIG_SCRIPT_NAME"), Some("/index.php/pi"));
        assert_eq!(get(&r, "PATH_TRANSLATED"), Some("/srv/www/pi"));
    }

    #[test]
    fn missing_file_is_unknown() {
        let r = resolve(
            p(&[
                ("SCRIPT_FILENAME", "/nope/x.php"),
                ("SCRIPT_NAME", "/x.php"),
            ]),
            &CgiOptions::default(),
            &FS,
        );
        assert_eq!(r.path_translated, None);
        assert_eq!(get(&r, "SCRIPT_FILENAME"), None);
        assert_eq!(get(&r, "ORIG_SCRIPT_FILENAME"), Some("/nope/x.php"));
    }

    #[test]
    fn dot_dot_is_refused() {
        let fs = FakeFs(vec!["/www/index.php"]);
        let r = resolve(
            p(&[("SCRIPT_FILENAME", "/www/../www/index.php")]),
            &CgiOptions::default(),
            &FakeFs(vec!["/www/../www/index.php"]),
        );
        assert_eq!(r.path_translated, None);
        let _ = fs;
        assert!(is_valid_path(b"/a/..b/c"));
        assert!(!is_valid_path(b"/a/../c"));
        assert!(!is_valid_path(b".."));
    }

    #[test]
    fn fix_pathinfo_off_uses_path_info_and_path_translated() {
        let opts = CgiOptions {
            fix_pathinfo: false,
            ..CgiOptions::default()
        };
        let r = resolve(
            p(&[
                ("SCRIPT_FILENAME", "/www/index.php"),
                ("SCRIPT_NAME", "/index.php"),
                ("PATH_INFO", "/x"),
                ("PATH_TRANSLATED", "/www/x"),
            ]),
            &opts,
            &FS,
        );
        assert_eq!(r.request_uri.as_deref(), Some(&b"/x"[..]));
        assert_eq!(r.path_translated.as_deref(), Some(&b"/www/x"[..]));
    }

    #[test]
    fn no_script_at_all() {
        let r = resolve(p(&[("REQUEST_METHOD", "GET")]), &CgiOptions::default(), &FS);
        assert_eq!(r.path_translated, None);
        assert_eq!(r.request_uri, None);
    }

    #[test]
    fn url_decode() {
        assert_eq!(raw_url_decode(b"/a%20b%zz%4"), b"/a b%zz%4".to_vec());
    }
}
