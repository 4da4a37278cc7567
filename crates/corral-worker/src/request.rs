//! What a request is before anything answers it, worked out as php-fpm does
//! (`fcgi_read_request`, `init_request_info`): FCGI_ROLE first among the
//! params, the CGI variables rewritten under cgi.fix_pathinfo, the fields
//! PHP's request_info starts from, and the script checked against
//! security.limit_extensions.

use corral_fastcgi::Params;
use corral_php::{Engine, RequestSpec};

use crate::cgi_env::{self, CgiOptions, FileSystem, Resolved};
use crate::PoolRuntime;

/// The request's CGI variables as PHP will see them. php-fpm's FastCGI
/// layer puts FCGI_ROLE first (scripts see it in $_SERVER and getenv()),
/// whatever the web server sent under that name.
pub fn resolve(mut params: Params, cgi: &CgiOptions, fs: &dyn FileSystem) -> Resolved {
    params.remove_all("FCGI_ROLE");
    params.insert_first("FCGI_ROLE", "RESPONDER");
    cgi_env::resolve(params, cgi, fs)
}

/// The request as PHP is handed it, from the resolved variables: it
/// borrows the params and takes the script and SCRIPT_NAME, so everything
/// after (status pages, the scoreboard, the access log) reads it from here.
pub fn spec<'p>(
    params: &'p Params,
    request_uri: Option<Vec<u8>>,
    path_translated: Option<Vec<u8>>,
    pool: &PoolRuntime,
) -> RequestSpec<'p> {
    let content_length = params
        .first("CONTENT_LENGTH")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let deny_extension = path_translated
        .as_deref()
        .is_some_and(|path| !extension_allowed(path, &pool.limit_extensions));
    RequestSpec {
        params,
        request_method: params.first("REQUEST_METHOD"),
        query_string: params.first("QUERY_STRING"),
        request_uri,
        path_translated,
        content_type: params.first("CONTENT_TYPE").unwrap_or_default(),
        content_length,
        deny_extension,
        want_opcache: false,
    }
}

/// php-fpm's error for a script security.limit_extensions refuses.
pub fn denied_message(path: &[u8]) -> String {
    format!(
        "Access to the script '{}' has been denied (see security.limit_extensions)",
        String::from_utf8_lossy(path)
    )
}

/// php-fpm's security.limit_extensions: the resolved script must end with
/// one of the listed suffixes (an empty list allows everything).
pub fn extension_allowed(path: &[u8], allowed: &[String]) -> bool {
    allowed.is_empty() || allowed.iter().any(|ext| path.ends_with(ext.as_bytes()))
}

/// The file system as php-fpm sees it before a request: realpath through
/// PHP's realpath cache (no syscall while warm), stat for the path-info walk.
pub struct EngineFs<'a>(pub &'a Engine);

impl FileSystem for EngineFs<'_> {
    fn resolves(&self, path: &[u8]) -> bool {
        self.0.path_resolves(path)
    }
    fn is_file(&self, path: &[u8]) -> bool {
        cgi_env::RealFs.is_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoFs;
    impl FileSystem for NoFs {
        fn resolves(&self, _: &[u8]) -> bool {
            true
        }
        fn is_file(&self, _: &[u8]) -> bool {
            true
        }
    }

    #[test]
    fn fcgi_role_comes_first_and_once() {
        let mut params = Params::default();
        params.push(b"REQUEST_METHOD", b"GET");
        params.push(b"FCGI_ROLE", b"FILTER");
        let r = resolve(params, &CgiOptions::default(), &NoFs);
        let names: Vec<&[u8]> = r.params.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [&b"FCGI_ROLE"[..], b"REQUEST_METHOD"]);
        assert_eq!(r.params.first("FCGI_ROLE"), Some(&b"RESPONDER"[..]));
    }

    #[test]
    fn limit_extensions() {
        let php = vec![".php".to_string()];
        assert!(extension_allowed(b"/www/x.php", &php));
        assert!(!extension_allowed(b"/www/x.txt", &php));
        assert!(extension_allowed(b"/www/x.txt", &[]));
    }
}
