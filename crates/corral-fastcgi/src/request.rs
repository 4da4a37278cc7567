//! What a client sends: [`Request`], plus a builder that fills the parameters
//! nginx's stock `fastcgi_params` would, so tests look like real traffic.

use crate::record::Role;

/// One FastCGI request as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Request id; must not be 0 (reserved for management records).
    pub id: u16,
    /// Almost always `Role::Responder`; other roles exist to test rejection.
    pub role: Role,
    /// Ask the application to keep the connection open afterwards.
    pub keep_conn: bool,
    /// CGI environment, in the order sent.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// Request body.
    pub stdin: Vec<u8>,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            id: 1,
            role: Role::Responder,
            keep_conn: false,
            params: Vec::new(),
            stdin: Vec::new(),
        }
    }
}

fn split_script_path(script_filename: &str) -> (&str, &str) {
    match script_filename.rfind('/') {
        Some(0) | None => ("/", script_filename.trim_start_matches('/')),
        Some(i) => (&script_filename[..i], &script_filename[i + 1..]),
    }
}

impl Request {
    /// The exact bytes a client writes for this request: BEGIN_REQUEST, the
    /// PARAMS stream and its terminator, the STDIN stream and its terminator.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024 + self.stdin.len());
        crate::record::encode_begin_request(self.id, self.role, self.keep_conn, &mut out);
        let mut params = Vec::new();
        crate::params::encode_pairs(self.params.iter().map(|(n, v)| (n, v)), &mut params);
        crate::record::encode_stream(
            crate::record::RecordType::Params,
            self.id,
            &params,
            &mut out,
        );
        crate::record::encode_stream_end(crate::record::RecordType::Params, self.id, &mut out);
        crate::record::encode_stream(
            crate::record::RecordType::Stdin,
            self.id,
            &self.stdin,
            &mut out,
        );
        crate::record::encode_stream_end(crate::record::RecordType::Stdin, self.id, &mut out);
        out
    }

    /// An empty responder request with id 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// A GET for `script_filename` with the parameters nginx's `fastcgi_params`
    /// plus `SCRIPT_FILENAME` produce. DOCUMENT_ROOT is the script's directory
    /// and SCRIPT_NAME/REQUEST_URI are `/<file name>`; change them with
    /// [`Request::document_root`], [`Request::query`] and friends.
    pub fn php(script_filename: &str) -> Self {
        let (root, file) = split_script_path(script_filename);
        let script_name = format!("/{file}");
        let mut req = Request::new();
        for (name, value) in [
            ("QUERY_STRING", ""),
            ("REQUEST_METHOD", "GET"),
            ("CONTENT_TYPE", ""),
            ("CONTENT_LENGTH", ""),
            ("SCRIPT_FILENAME", script_filename),
            ("SCRIPT_NAME", &script_name),
            ("REQUEST_URI", &script_name),
            ("DOCUMENT_URI", &script_name),
            ("DOCUMENT_ROOT", root),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("SERVER_SOFTWARE", "corral-test"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", "40000"),
            ("SERVER_ADDR", "127.0.0.1"),
            ("SERVER_PORT", "80"),
            ("SERVER_NAME", "localhost"),
            ("REDIRECT_STATUS", "200"),
            ("HTTP_HOST", "localhost"),
        ] {
            req.params.push((name.into(), value.into()));
        }
        req
    }

    /// Sets a parameter, replacing an existing one of the same name in place.
    pub fn param(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.set_param(name.as_ref(), value.as_ref());
        self
    }

    fn set_param(&mut self, name: &[u8], value: &[u8]) {
        match self.params.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_vec(),
            None => self.params.push((name.to_vec(), value.to_vec())),
        }
    }

    fn get_param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// Sets the request id.
    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }

    /// Sets FCGI_KEEP_CONN.
    pub fn keep_conn(mut self, keep: bool) -> Self {
        self.keep_conn = keep;
        self
    }

    /// Sets the role (only useful to test rejection of non-responders).
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Sets REQUEST_METHOD.
    pub fn method(self, method: &str) -> Self {
        self.param("REQUEST_METHOD", method)
    }

    /// Sets QUERY_STRING and appends it to REQUEST_URI, as nginx does.
    pub fn query(mut self, query: &str) -> Self {
        let path = self
            .get_param("DOCUMENT_URI")
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_else(|| "/".into());
        let uri = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        self.set_param(b"REQUEST_URI", uri.as_bytes());
        self.param("QUERY_STRING", query)
    }

    /// Sets DOCUMENT_ROOT and derives SCRIPT_NAME, DOCUMENT_URI and REQUEST_URI
    /// from SCRIPT_FILENAME relative to it (keeping the query string).
    pub fn document_root(mut self, root: &str) -> Self {
        let root = root.trim_end_matches('/');
        let filename = self
            .get_param("SCRIPT_FILENAME")
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default();
        let script_name = match filename.strip_prefix(root) {
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => format!("/{}", split_script_path(&filename).1),
        };
        self.set_param(
            b"DOCUMENT_ROOT",
            if root.is_empty() {
                b"/"
            } else {
                root.as_bytes()
            },
        );
        self.set_param(b"SCRIPT_NAME", script_name.as_bytes());
        self.set_param(b"DOCUMENT_URI", script_name.as_bytes());
        let query = self
            .get_param("QUERY_STRING")
            .map(|q| String::from_utf8_lossy(q).into_owned())
            .unwrap_or_default();
        self.query(&query)
    }

    /// Adds an HTTP request header as `HTTP_<NAME>` (upper case, `-` → `_`),
    /// the way nginx passes request headers.
    pub fn header(self, name: &str, value: &str) -> Self {
        let cgi_name: String = name
            .chars()
            .map(|c| match c {
                '-' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        self.param(format!("HTTP_{cgi_name}"), value)
    }

    /// Sets the body with CONTENT_TYPE and CONTENT_LENGTH (and their HTTP_
    /// twins, which nginx also sends).
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.stdin = body.into();
        let len = self.stdin.len().to_string();
        self.param("CONTENT_TYPE", content_type)
            .param("CONTENT_LENGTH", &len)
            .header("Content-Type", content_type)
            .header("Content-Length", &len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(r: &'a Request, name: &str) -> &'a str {
        std::str::from_utf8(r.get_param(name).unwrap()).unwrap()
    }

    #[test]
    fn php_defaults() {
        let r = Request::php("/srv/www/index.php");
        assert_eq!(get(&r, "DOCUMENT_ROOT"), "/srv/www");
        assert_eq!(get(&r, "SCRIPT_NAME"), "/index.php");
        assert_eq!(get(&r, "REQUEST_METHOD"), "GET");
        assert_eq!(get(&r, "GATEWAY_INTERFACE"), "CGI/1.1");
        assert_eq!(r.role, Role::Responder);
    }

    #[test]
    fn builder_updates_derived_params() {
        let r = Request::php("/srv/www/app/x.php")
            .query("a=1")
            .document_root("/srv/www/")
            .method("POST")
            .header("X-Forwarded-For", "1.2.3.4")
            .body("application/x-www-form-urlencoded", "k=v")
            .id(7)
            .keep_conn(true);
        assert_eq!(get(&r, "SCRIPT_NAME"), "/app/x.php");
        assert_eq!(get(&r, "REQUEST_URI"), "/app/x.php?a=1");
        assert_eq!(get(&r, "QUERY_STRING"), "a=1");
        assert_eq!(get(&r, "HTTP_X_FORWARDED_FOR"), "1.2.3.4");
        assert_eq!(get(&r, "CONTENT_LENGTH"), "3");
        assert_eq!(
            get(&r, "HTTP_CONTENT_TYPE"),
            "application/x-www-form-urlencoded"
        );
        assert_eq!(r.stdin, b"k=v");
        assert_eq!((r.id, r.keep_conn), (7, true));
        let names: Vec<_> = r
            .params
            .iter()
            .filter(|(n, _)| n == b"QUERY_STRING")
            .collect();
        assert_eq!(names.len(), 1, "param() replaces, never duplicates");
    }

    #[test]
    fn script_at_root() {
        let r = Request::php("/x.php");
        assert_eq!(get(&r, "DOCUMENT_ROOT"), "/");
        assert_eq!(get(&r, "SCRIPT_NAME"), "/x.php");
    }
}
