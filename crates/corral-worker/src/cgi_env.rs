//! The CGI variables php-fpm derives from the FastCGI params before it runs
//! a script (`init_request_info` in php-fpm): SCRIPT_FILENAME, PATH_INFO,
//! PATH_TRANSLATED, SCRIPT_NAME under `cgi.fix_pathinfo`, Apache
//! `proxy:fcgi://` prefixes, the IIS PATH_INFO quirk, and `ORIG_*` copies of
//! whatever was rewritten. Pure: the file system is behind [`FileSystem`].

use corral_fastcgi::Params;

/// Which php.ini settings steer the rewriting.
#[derive(Debug, Clone)]
pub struct CgiOptions {
    pub fix_pathinfo: bool,
    pub discard_path: bool,
    /// php.ini `doc_root`, used when the web server sends no DOCUMENT_ROOT.
    pub doc_root: Option<Vec<u8>>,
}

impl Default for CgiOptions {
    fn default() -> Self {
        CgiOptions {
            fix_pathinfo: true,
            discard_path: false,
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

/// What the common case decides: the script and the request URI.
type Decided = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The outcome: the rewritten params plus what PHP's request_info gets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub params: Params,
    /// The script to run; `None` means 404 "Primary script unknown".
    pub path_translated: Option<Vec<u8>>,
    /// SCRIPT_NAME as rewritten: PHP_SELF, ping/status matching, `%r`.
    pub request_uri: Option<Vec<u8>>,
}

/// Ordered params with php-fpm's FCGI_PUTENV semantics: setting replaces in
/// place (or appends), setting `None` removes.
struct Env(Params);

impl Env {
    fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.0.first(name).map(<[u8]>::to_vec)
    }
    fn set(&mut self, name: &str, value: Option<&[u8]>) {
        self.0.set(name, value)
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
pub fn resolve(params: Params, opts: &CgiOptions, fs: &dyn FileSystem) -> Resolved {
    if let Some((path_translated, request_uri)) = common_case(&params, opts, fs) {
        return Resolved {
            params,
            path_translated,
            request_uri,
        };
    }
    rewrite(params, opts, fs)
}

/// The request nearly every web server sends (nginx's and Apache's
/// SetHandler configurations): cgi.fix_pathinfo on, SCRIPT_FILENAME naming
/// a file that exists, and none of the cases [`rewrite`] exists for (an
/// Apache proxy prefix, IIS, a mod_fastcgi redirect, a missing
/// DOCUMENT_ROOT to fill in). php-fpm then changes nothing: the script is
/// SCRIPT_FILENAME and the request URI is SCRIPT_NAME. Answered with a few
/// lookups and no copy of the params; `None` hands the request to the
/// general path. A property test holds the two to the same answers.
fn common_case(params: &Params, opts: &CgiOptions, fs: &dyn FileSystem) -> Option<Decided> {
    if !opts.fix_pathinfo {
        return None;
    }
    let sf = params.first("SCRIPT_FILENAME")?;
    let plain = !sf.is_empty()
        && !sf.ends_with(b"/")
        && !APACHE_PREFIXES.iter().any(|p| starts_with_ci(sf, p))
        && !params
            .first("SERVER_SOFTWARE")
            .is_some_and(|sw| sw.starts_with(b"Microsoft-IIS"))
        && params.first("REDIRECT_URL").is_none()
        && (opts.doc_root.is_none() || params.first("DOCUMENT_ROOT").is_some());
    if !plain || !fs.resolves(sf) {
        return None;
    }
    let script = is_valid_path(sf).then(|| sf.to_vec());
    Some((script, params.first("SCRIPT_NAME").map(<[u8]>::to_vec)))
}

/// The general path: php-fpm's `init_request_info`, step by step.
fn rewrite(params: Params, opts: &CgiOptions, fs: &dyn FileSystem) -> Resolved {
    let mut rw = match Rewrite::read(Env(params)) {
        Ok(rw) => rw,
        Err(env) => {
            return Resolved {
                params: env.0,
                path_translated: None,
                request_uri: None,
            }
        }
    };
    rw.strip_iis_script_name();
    rw.strip_apache_proxy_prefix();
    if opts.fix_pathinfo {
        rw.fix_pathinfo(opts, fs);
    } else {
        rw.trust_the_web_server(opts);
    }
    Resolved {
        path_translated: rw.script.filter(|s| is_valid_path(s)),
        request_uri: rw.request_uri,
        params: rw.env.0,
    }
}

/// php-fpm's `init_request_info` at work: the params, and the variables it
/// keeps aside while it rewrites them.
struct Rewrite {
    env: Env,
    /// The script to run (php-fpm's `script_path_translated`).
    script: Option<Vec<u8>>,
    script_filename: Option<Vec<u8>>,
    /// PATH_TRANSLATED as the web server sent it.
    env_path_translated: Option<Vec<u8>>,
    path_info: Option<Vec<u8>>,
    script_name: Option<Vec<u8>>,
    /// SCRIPT_FILENAME came from Apache's mod_proxy_fcgi.
    apache: bool,
    /// What PHP_SELF and the status page will show.
    request_uri: Option<Vec<u8>>,
}

/// What cgi.fix_pathinfo rewrites, as it was before: the `ORIG_*` copies
/// are made of these.
struct Orig {
    path_translated: Option<Vec<u8>>,
    path_info: Option<Vec<u8>>,
    script_name: Option<Vec<u8>>,
    script_filename: Option<Vec<u8>>,
}

impl Rewrite {
    /// Without SCRIPT_FILENAME or PATH_TRANSLATED there is no script, and
    /// php-fpm rewrites nothing: the params come back as `Err`.
    fn read(env: Env) -> Result<Rewrite, Env> {
        let script_filename = env.get("SCRIPT_FILENAME");
        let env_path_translated = env.get("PATH_TRANSLATED");
        let Some(script) = script_filename
            .clone()
            .or_else(|| env_path_translated.clone())
        else {
            return Err(env);
        };
        Ok(Rewrite {
            script: Some(script),
            path_info: env.get("PATH_INFO"),
            script_name: env.get("SCRIPT_NAME"),
            env,
            script_filename,
            env_path_translated,
            apache: false,
            request_uri: None,
        })
    }

    /// IIS sends PATH_INFO with SCRIPT_NAME still in front of it.
    fn strip_iis_script_name(&mut self) {
        let (Some(sw), Some(sn), Some(pi)) = (
            self.env.get("SERVER_SOFTWARE"),
            &self.script_name,
            &self.path_info,
        ) else {
            return;
        };
        if sw.starts_with(b"Microsoft-IIS") && pi.starts_with(sn) {
            self.env.set("ORIG_PATH_INFO", Some(pi));
            let rest = pi[sn.len()..].to_vec();
            let rest = if rest.is_empty() { None } else { Some(rest) };
            self.env.set("PATH_INFO", rest.as_deref());
            self.path_info = rest;
        }
    }

    /// Apache's mod_proxy_fcgi sends
    /// SCRIPT_FILENAME=proxy:fcgi://host:port/path?query: the script is the
    /// path, and its PATH_INFO is still part of SCRIPT_NAME. The path stays
    /// as Apache sent it, URL-encoded: php-fpm 8.2 decodes nothing here.
    fn strip_apache_proxy_prefix(&mut self) {
        let Some(sf) = self.script_filename.clone() else {
            return;
        };
        let Some(prefix) = APACHE_PREFIXES.iter().find(|p| starts_with_ci(&sf, p)) else {
            return;
        };
        let rest = &sf[prefix.len()..];
        let mut fixed = match rest.iter().position(|&b| b == b'/') {
            Some(i) => {
                self.apache = true;
                rest[i..].to_vec()
            }
            None => sf.clone(),
        };
        if let Some(q) = fixed.iter().position(|&b| b == b'?') {
            fixed.truncate(q);
        }
        self.env.set("SCRIPT_FILENAME", Some(&fixed));
        if self.script == self.script_filename {
            self.script = Some(fixed.clone());
        }
        self.script_filename = Some(fixed);
    }

    /// cgi.fix_pathinfo = 0: PATH_INFO and PATH_TRANSLATED are taken as the
    /// web server sent them (the latter is the script unless
    /// cgi.discard_path).
    fn trust_the_web_server(&mut self, opts: &CgiOptions) {
        self.request_uri = self.path_info.clone().or(self.script_name.clone());
        if !opts.discard_path {
            if let Some(pt) = &self.env_path_translated {
                self.script = Some(pt.clone());
            }
        }
    }

    /// cgi.fix_pathinfo = 1: find the real script in the path, move the
    /// rest to PATH_INFO and make SCRIPT_NAME, SCRIPT_FILENAME and
    /// PATH_TRANSLATED agree with it.
    fn fix_pathinfo(&mut self, opts: &CgiOptions, fs: &dyn FileSystem) {
        let redirect_url = self.env.get("REDIRECT_URL");
        let document_root = self.document_root(opts);
        let orig = Orig {
            path_translated: self.env_path_translated.clone(),
            path_info: self.path_info.clone(),
            script_name: self.script_name.clone(),
            script_filename: self.script_filename.clone(),
        };
        let redirected = self.follow_mod_fastcgi_redirect(redirect_url.as_deref());
        let sp = self.script.clone().unwrap_or_default();
        if !sp.is_empty() && (sp.ends_with(b"/") || !fs.resolves(&sp)) {
            self.split_script_path(&sp, &orig, document_root.as_deref(), fs);
        } else {
            self.keep_script(&orig, redirect_url.is_some(), redirected);
        }
    }

    /// DOCUMENT_ROOT, or php.ini's doc_root when the web server sent none
    /// (then it is set for the script too).
    fn document_root(&mut self, opts: &CgiOptions) -> Option<Vec<u8>> {
        let document_root = self.env.get("DOCUMENT_ROOT");
        if document_root.is_some() {
            return document_root;
        }
        let dr = opts.doc_root.as_ref()?;
        self.env.set("DOCUMENT_ROOT", Some(dr));
        Some(dr.clone())
    }

    /// Apache's mod_fastcgi puts the real script in PATH_TRANSLATED and the
    /// URL asked for in REDIRECT_URL. Returns whether it did here.
    fn follow_mod_fastcgi_redirect(&mut self, redirect_url: Option<&[u8]>) -> bool {
        if self.apache {
            return false;
        }
        let (Some(pt), Some(ru)) = (&self.env_path_translated, redirect_url) else {
            return false;
        };
        if Some(pt) == self.script.as_ref() {
            return false;
        }
        self.script = Some(pt.clone());
        self.script_name = Some(ru.to_vec());
        true
    }

    /// The script path names no file (/info.php/test): the longest part of
    /// it that is a regular file is the script, the rest is PATH_INFO. With
    /// no such part there is no script ("Primary script unknown").
    fn split_script_path(
        &mut self,
        sp: &[u8],
        orig: &Orig,
        document_root: Option<&[u8]>,
        fs: &dyn FileSystem,
    ) {
        match file_prefix(sp, fs) {
            Some(pt) => {
                self.move_tail_to_path_info(sp, &pt, orig);
                self.set_script_filename(&pt, orig);
                self.script = Some(pt.clone());
                self.set_path_translated(&pt, orig, document_root);
            }
            None => self.forget_script(orig),
        }
        if self.request_uri.is_none() {
            self.settle_script_name(orig);
        }
    }

    /// What follows the script in its path becomes PATH_INFO, unless the web
    /// server's PATH_INFO already says so; SCRIPT_NAME loses it too.
    fn move_tail_to_path_info(&mut self, sp: &[u8], pt: &[u8], orig: &Orig) {
        let slen = sp.len() - pt.len();
        let Some(pi) = self.new_path_info(sp, pt, orig) else {
            return;
        };
        match &orig.path_info {
            Some(opi) => {
                self.env.set("ORIG_PATH_INFO", Some(opi));
                self.script_name_before(opi, &pi, orig);
            }
            None if self.apache => self.strip_path_info_from_script_name(&pi, slen, orig),
            None => {}
        }
        self.env.set("PATH_INFO", Some(&pi));
        self.path_info = Some(pi);
    }

    /// PATH_INFO as php-fpm derives it: for Apache the tail of the script
    /// path; otherwise as many trailing bytes of the web server's PATH_INFO
    /// as the tail is long. `None` when it stays as it is.
    fn new_path_info(&self, sp: &[u8], pt: &[u8], orig: &Orig) -> Option<Vec<u8>> {
        let slen = sp.len() - pt.len();
        if self.apache {
            let pi = sp[pt.len()..].to_vec();
            return (slen != 0 && orig.path_info.as_ref() != Some(&pi)).then_some(pi);
        }
        match &self.path_info {
            Some(pi) if pi.len() > slen => Some(pi[pi.len() - slen..].to_vec()),
            _ => None,
        }
    }

    /// SCRIPT_NAME is the web server's PATH_INFO cut where the new PATH_INFO
    /// starts (all of it for Apache), as php-fpm compares them.
    fn script_name_before(&mut self, opi: &[u8], pi: &[u8], orig: &Orig) {
        let head = if self.apache {
            opi.to_vec()
        } else {
            opi[..opi.len() - pi.len()].to_vec()
        };
        if orig.script_name.as_ref() != Some(&head) {
            if let Some(osn) = &orig.script_name {
                self.env.set("ORIG_SCRIPT_NAME", Some(osn));
            }
            self.env.set("SCRIPT_NAME", Some(&head));
            self.request_uri = Some(head);
        } else {
            self.request_uri = orig.script_name.clone();
        }
    }

    /// ProxyPass cannot set PATH_INFO, so it is still part of SCRIPT_NAME,
    /// which Apache sends decoded while the path is encoded (bug #74129):
    /// take it off, comparing decoded when it has to. PATH_INFO itself stays
    /// encoded, as php-fpm 8.2 leaves it (and PHP_SELF with it).
    fn strip_path_info_from_script_name(&mut self, pi: &[u8], slen: usize, orig: &Orig) {
        let Some(sn) = self.script_name.clone() else {
            return;
        };
        let decoded = pi.contains(&b'%').then(|| raw_url_decode(pi));
        let tail_start = if sn.len() > slen && sn[sn.len() - slen..] == pi[..] {
            Some(sn.len() - slen)
        } else {
            decoded.as_ref().and_then(|d| {
                (sn.len() > d.len() && sn[sn.len() - d.len()..] == d[..])
                    .then(|| sn.len() - d.len())
            })
        };
        if let Some(start) = tail_start {
            if let Some(osn) = &orig.script_name {
                self.env.set("ORIG_SCRIPT_NAME", Some(osn));
            }
            let trimmed = sn[..start].to_vec();
            self.env.set("SCRIPT_NAME", Some(&trimmed));
            self.request_uri = Some(trimmed.clone());
            self.script_name = Some(trimmed);
        }
    }

    /// SCRIPT_FILENAME names the file found, keeping the old value in
    /// ORIG_SCRIPT_FILENAME.
    fn set_script_filename(&mut self, pt: &[u8], orig: &Orig) {
        if orig.script_filename.as_deref() != Some(pt) {
            if let Some(osf) = &orig.script_filename {
                self.env.set("ORIG_SCRIPT_FILENAME", Some(osf));
            }
            self.env.set("SCRIPT_FILENAME", Some(pt));
        }
    }

    /// PATH_TRANSLATED = DOCUMENT_ROOT + PATH_INFO, or failing that
    /// SCRIPT_FILENAME - SCRIPT_NAME + PATH_INFO; unset when neither works.
    fn set_path_translated(&mut self, pt: &[u8], orig: &Orig, document_root: Option<&[u8]>) {
        let path_info = self.path_info.as_deref().unwrap_or_default();
        let base = match document_root {
            Some(dr) => Some(dr.strip_suffix(b"/").unwrap_or(dr)),
            None => self
                .script_name
                .as_ref()
                .filter(|sn| contains(pt, sn))
                .map(|sn| &pt[..pt.len().saturating_sub(sn.len())]),
        };
        let Some(base) = base else {
            return;
        };
        let mut translated = base.to_vec();
        translated.extend_from_slice(path_info);
        if let Some(opt) = &orig.path_translated {
            self.env.set("ORIG_PATH_TRANSLATED", Some(opt));
        }
        self.env.set("PATH_TRANSLATED", Some(&translated));
    }

    /// No part of the path is a file: there is no script to run.
    fn forget_script(&mut self, orig: &Orig) {
        if let Some(osf) = &orig.script_filename {
            self.env.set("ORIG_SCRIPT_FILENAME", Some(osf));
        }
        self.env.set("SCRIPT_FILENAME", None);
        self.script = None;
    }

    /// SCRIPT_NAME, when moving PATH_INFO did not already decide it: the
    /// mod_fastcgi redirect's URL if there was one.
    fn settle_script_name(&mut self, orig: &Orig) {
        if orig.script_name.is_none() || orig.script_name != self.script_name {
            if let Some(osn) = &orig.script_name {
                self.env.set("ORIG_SCRIPT_NAME", Some(osn));
            }
            self.env.set("SCRIPT_NAME", self.script_name.as_deref());
            self.request_uri = self.script_name.clone();
        } else {
            self.request_uri = orig.script_name.clone();
        }
    }

    /// The script path names a file: it is the script. After a mod_fastcgi
    /// redirect, the web server's PATH_INFO and PATH_TRANSLATED were about
    /// the URL asked for, not the script, and are dropped.
    fn keep_script(&mut self, orig: &Orig, redirect: bool, redirected: bool) {
        if orig.script_filename.is_none() || self.script != orig.script_filename {
            if let Some(osf) = &orig.script_filename {
                self.env.set("ORIG_SCRIPT_FILENAME", Some(osf));
            }
            self.env.set("SCRIPT_FILENAME", self.script.as_deref());
        }
        if !self.apache && redirect {
            if let Some(opi) = &orig.path_info {
                self.env.set("ORIG_PATH_INFO", Some(opi));
                self.env.set("PATH_INFO", None);
            }
            if let Some(opt) = &orig.path_translated {
                self.env.set("ORIG_PATH_TRANSLATED", Some(opt));
                self.env.set("PATH_TRANSLATED", None);
            }
        }
        if redirected {
            if let Some(osn) = &orig.script_name {
                self.env.set("ORIG_SCRIPT_NAME", Some(osn));
            }
            self.env.set("SCRIPT_NAME", self.script_name.as_deref());
        }
        self.request_uri = self.script_name.clone();
    }
}

/// The longest leading part of `path`, cut at a `/`, that is a regular file.
fn file_prefix(path: &[u8], fs: &dyn FileSystem) -> Option<Vec<u8>> {
    let mut pt = path.to_vec();
    while let Some(cut) = pt.iter().rposition(|&b| b == b'/') {
        pt.truncate(cut);
        if fs.is_file(&pt) {
            return Some(pt);
        }
    }
    None
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

    fn p(pairs: &[(&str, &str)]) -> Params {
        let mut params = Params::new();
        for (a, b) in pairs {
            params.push(a, b);
        }
        params
    }

    fn get<'a>(r: &'a Resolved, name: &str) -> Option<&'a str> {
        r.params
            .first(name)
            .map(|v| std::str::from_utf8(v).unwrap())
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
    fn iis_path_info_loses_the_script_name() {
        let fs = FakeFs(vec!["/www/index.php"]);
        let r = resolve(
            p(&[
                ("SERVER_SOFTWARE", "Microsoft-IIS/10.0"),
                ("SCRIPT_FILENAME", "/www/index.php"),
                ("SCRIPT_NAME", "/index.php"),
                ("PATH_INFO", "/index.php/foo"),
            ]),
            &CgiOptions::default(),
            &fs,
        );
        assert_eq!(get(&r, "PATH_INFO"), Some("/foo"));
        assert_eq!(get(&r, "ORIG_PATH_INFO"), Some("/index.php/foo"));
        assert_eq!(r.request_uri.as_deref(), Some(&b"/index.php"[..]));
    }

    #[test]
    fn mod_fastcgi_redirect_runs_path_translated() {
        let fs = FakeFs(vec!["/www/index.php"]);
        let r = resolve(
            p(&[
                ("SCRIPT_FILENAME", "/usr/lib/cgi-bin/php"),
                ("SCRIPT_NAME", "/cgi-bin/php"),
                ("PATH_INFO", "/index.php"),
                ("PATH_TRANSLATED", "/www/index.php"),
                ("REDIRECT_URL", "/index.php"),
            ]),
            &CgiOptions::default(),
            &fs,
        );
        assert_eq!(r.path_translated.as_deref(), Some(&b"/www/index.php"[..]));
        assert_eq!(get(&r, "SCRIPT_FILENAME"), Some("/www/index.php"));
        assert_eq!(
            get(&r, "ORIG_SCRIPT_FILENAME"),
            Some("/usr/lib/cgi-bin/php")
        );
        assert_eq!(get(&r, "SCRIPT_NAME"), Some("/index.php"));
        assert_eq!(get(&r, "ORIG_SCRIPT_NAME"), Some("/cgi-bin/php"));
        assert_eq!(get(&r, "PATH_INFO"), None);
        assert_eq!(get(&r, "ORIG_PATH_INFO"), Some("/index.php"));
        assert_eq!(get(&r, "PATH_TRANSLATED"), None);
        assert_eq!(get(&r, "ORIG_PATH_TRANSLATED"), Some("/www/index.php"));
        assert_eq!(r.request_uri.as_deref(), Some(&b"/index.php"[..]));
    }

    #[test]
    fn apache_proxy_pass_encoded_path_info() {
        let fs = FakeFs(vec!["/www/index.php"]);
        let r = resolve(
            p(&[
                (
                    "SCRIPT_FILENAME",
                    "proxy:fcgi://127.0.0.1:9000/www/index.php/x%2Fy",
                ),
                ("SCRIPT_NAME", "/index.php/x/y"),
                ("DOCUMENT_ROOT", "/www"),
            ]),
            &CgiOptions::default(),
            &fs,
        );
        assert_eq!(get(&r, "SCRIPT_FILENAME"), Some("/www/index.php"));
        assert_eq!(
            get(&r, "ORIG_SCRIPT_FILENAME"),
            Some("/www/index.php/x%2Fy")
        );
        assert_eq!(get(&r, "PATH_INFO"), Some("/x%2Fy"), "as Apache sent it");
        assert_eq!(get(&r, "SCRIPT_NAME"), Some("/index.php"));
        assert_eq!(get(&r, "ORIG_SCRIPT_NAME"), Some("/index.php/x/y"));
        assert_eq!(get(&r, "PATH_TRANSLATED"), Some("/www/x%2Fy"));
        assert_eq!(r.request_uri.as_deref(), Some(&b"/index.php"[..]));
    }

    #[test]
    fn ini_doc_root_stands_in_for_document_root() {
        let fs = FakeFs(vec!["/www/index.php"]);
        let opts = CgiOptions {
            doc_root: Some(b"/docroot/".to_vec()),
            ..CgiOptions::default()
        };
        let r = resolve(
            p(&[
                ("SCRIPT_FILENAME", "/www/index.php/foo"),
                ("SCRIPT_NAME", "/index.php/foo"),
                ("PATH_INFO", "/foo"),
            ]),
            &opts,
            &fs,
        );
        assert_eq!(get(&r, "DOCUMENT_ROOT"), Some("/docroot/"));
        assert_eq!(get(&r, "SCRIPT_FILENAME"), Some("/www/index.php"));
        assert_eq!(get(&r, "PATH_TRANSLATED"), Some("/docroot/foo"));
        assert_eq!(r.request_uri.as_deref(), Some(&b"/index.php/foo"[..]));
    }

    #[test]
    fn url_decode() {
        assert_eq!(raw_url_decode(b"/a%20b%zz%4"), b"/a b%zz%4".to_vec());
    }

    mod same_answers {
        use super::super::*;
        use proptest::prelude::*;

        struct Files(Vec<Vec<u8>>);
        impl FileSystem for Files {
            fn resolves(&self, p: &[u8]) -> bool {
                self.0
                    .iter()
                    .any(|f| f == p || f.starts_with(&[p, b"/"].concat()))
            }
            fn is_file(&self, p: &[u8]) -> bool {
                self.0.iter().any(|f| f == p)
            }
        }

        fn path() -> impl Strategy<Value = String> {
            prop::sample::select(vec![
                "/www/a.php",
                "/www/a.php/x/",
                "/www/a.php/x",
                "/www/",
                "/www",
                "/www/../a.php",
                "/a.php",
                "/x",
                "",
            ])
            .prop_map(str::to_string)
        }

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                path(),
                path().prop_map(|p| format!("proxy:fcgi://127.0.0.1:9000{p}")),
                Just("Microsoft-IIS/10".to_string()),
                Just("nginx".to_string()),
                Just(String::new()),
            ]
        }

        fn name() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec![
                "SCRIPT_FILENAME",
                "SCRIPT_NAME",
                "PATH_INFO",
                "PATH_TRANSLATED",
                "DOCUMENT_ROOT",
                "REDIRECT_URL",
                "SERVER_SOFTWARE",
                "REQUEST_URI",
            ])
        }

        proptest! {
            #[test]
            fn common_case_agrees_with_the_general_path(
                pairs in prop::collection::vec((name(), value()), 0..8),
                doc_root in prop::option::of(path()),
                files in prop::collection::vec(path(), 0..3),
            ) {
                let mut params = Params::new();
                for (n, v) in &pairs {
                    params.push(n, v);
                }
                let opts = CgiOptions {
                    fix_pathinfo: true,
                    discard_path: false,
                    doc_root: doc_root.map(String::into_bytes),
                };
                let mut files: Vec<Vec<u8>> = files.into_iter().map(String::into_bytes).collect();
                files.push(b"/www/a.php".to_vec());
                let fs = Files(files);
                if let Some((path_translated, request_uri)) = common_case(&params, &opts, &fs) {
                    let general = rewrite(params.clone(), &opts, &fs);
                    prop_assert_eq!(general.path_translated, path_translated);
                    prop_assert_eq!(general.request_uri, request_uri);
                    prop_assert_eq!(general.params, params);
                }
            }
        }
    }
}
