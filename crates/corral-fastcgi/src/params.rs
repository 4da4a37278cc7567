//! Name-value pair codec (FCGI_PARAMS, FCGI_GET_VALUES, FCGI_GET_VALUES_RESULT).
//!
//! Each length is one byte when < 128, else four bytes big-endian with the top
//! bit set (31-bit length). Lengths come from the peer, so decoding checks every
//! length against the bytes actually present before slicing or allocating.

use crate::error::ProtocolError;

/// Ordered name-value pairs as the web server sent them (duplicates kept, so
/// callers that care can see them).
///
/// Stored flat: every name and value lives in one buffer, each followed by a
/// NUL byte. A request's CGI environment then costs no allocation per pair,
/// a set kept across requests costs none at all once warm (see
/// [`Params::clear`]), and PHP can borrow each part as a C string
/// ([`Params::iter_nul`]). Setting a value appends the new bytes; the old
/// ones stay unused until the set is cleared.
#[derive(Clone, Default)]
pub struct Params {
    buf: Vec<u8>,
    pairs: Vec<Pair>,
    /// Parts stored since the last clear: each put one terminating NUL in
    /// `buf`, so more NULs than this means some part holds one of its own.
    stored: usize,
}

/// Where one name and its value sit in [`Params::buf`].
#[derive(Debug, Clone, Copy)]
struct Pair {
    name: Span,
    value: Span,
}

/// `len` bytes at `start`, followed by a NUL (not counted in `len`).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            }))
            .finish()
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Params {}

impl Params {
    /// An empty set.
    pub const fn new() -> Self {
        Params {
            buf: Vec::new(),
            pairs: Vec::new(),
            stored: 0,
        }
    }

    /// Wraps pairs as they are.
    pub fn from_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        let mut p = Params::new();
        for (n, v) in &pairs {
            p.push(n, v);
        }
        p
    }

    /// Empties the set, keeping its memory for the next request.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pairs.clear();
        self.stored = 0;
    }

    /// Whether some name or value may contain a NUL byte (conservative: a
    /// pair replaced or removed since still counts). When false, every part
    /// from [`Params::iter_nul`] is a valid C string as it is. One counting
    /// pass over the buffer, which vectorises, instead of a search per part.
    pub fn has_nul(&self) -> bool {
        count_nul(&self.buf) != self.stored
    }

    fn store(&mut self, bytes: &[u8]) -> Span {
        self.stored += 1;
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        self.buf.push(0);
        Span {
            start,
            len: bytes.len(),
        }
    }

    fn bytes(&self, s: Span) -> &[u8] {
        &self.buf[s.start..s.start + s.len]
    }

    /// Appends a pair.
    pub fn push(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let name = self.store(name.as_ref());
        let value = self.store(value.as_ref());
        self.pairs.push(Pair { name, value });
    }

    /// Puts a pair first (php-fpm's FastCGI layer puts FCGI_ROLE there).
    pub fn insert_first(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let name = self.store(name.as_ref());
        let value = self.store(value.as_ref());
        self.pairs.insert(0, Pair { name, value });
    }

    fn position(&self, name: &[u8]) -> Option<usize> {
        self.pairs.iter().position(|p| self.bytes(p.name) == name)
    }

    /// php-fpm's FCGI_PUTENV: `Some` replaces the first pair called `name`
    /// in place (or appends one), `None` removes it.
    pub fn set(&mut self, name: impl AsRef<[u8]>, value: Option<&[u8]>) {
        let name = name.as_ref();
        match (self.position(name), value) {
            (Some(i), Some(v)) => self.pairs[i].value = self.store(v),
            (None, Some(v)) => self.push(name, v),
            (Some(i), None) => {
                self.pairs.remove(i);
            }
            (None, None) => {}
        }
    }

    /// Removes every pair called `name`.
    pub fn remove_all(&mut self, name: impl AsRef<[u8]>) {
        let name = name.as_ref();
        let buf = &self.buf;
        self.pairs
            .retain(|p| &buf[p.name.start..p.name.start + p.name.len] != name);
    }

    /// The value of `name`. When a name occurs more than once the **last** one
    /// wins, matching php-fpm, whose params hash overwrites earlier entries.
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        let name = name.as_ref();
        self.pairs
            .iter()
            .rev()
            .find(|p| self.bytes(p.name) == name)
            .map(|p| self.bytes(p.value))
    }

    /// The value of the **first** pair called `name`: what php-fpm's
    /// FCGI_GETENV sees once the pairs are a CGI environment.
    pub fn first(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        let name = name.as_ref();
        self.pairs
            .iter()
            .find(|p| self.bytes(p.name) == name)
            .map(|p| self.bytes(p.value))
    }

    /// [`Params::get`] as UTF-8, `None` if absent or not valid UTF-8.
    pub fn get_str(&self, name: impl AsRef<[u8]>) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs
            .iter()
            .map(|p| (self.bytes(p.name), self.bytes(p.value)))
    }

    /// Pairs in wire order, each part with its terminating NUL included, for
    /// handing to C without a copy. The bytes before that NUL may contain
    /// NULs of their own: a C caller must check.
    pub fn iter_nul(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let with_nul = |s: Span| &self.buf[s.start..=s.start + s.len];
        self.pairs
            .iter()
            .map(move |p| (with_nul(p.name), with_nul(p.value)))
    }

    /// Number of pairs, duplicates included.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs, in wire order.
    pub fn into_pairs(self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
    }
}

/// NUL bytes in `bytes`, 32 at a time so that the compiler can count each
/// block with a few vector instructions (a byte-wise filter does not
/// vectorise and cost more than the rest of decoding a request).
fn count_nul(bytes: &[u8]) -> usize {
    let mut blocks = bytes.chunks_exact(32);
    let mut n = 0;
    for block in &mut blocks {
        n += usize::from(block.iter().map(|&b| u8::from(b == 0)).sum::<u8>());
    }
    n + blocks.remainder().iter().filter(|&&b| b == 0).count()
}

/// Largest length the 4-byte form can express.
pub const MAX_PAIR_PART_LEN: usize = 0x7fff_ffff;

fn encode_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        // < 128 fits in one byte.
        out.push(len as u8);
    } else {
        let len = u32::try_from(len.min(MAX_PAIR_PART_LEN)).unwrap_or(0x7fff_ffff);
        out.extend_from_slice(&(len | 0x8000_0000).to_be_bytes());
    }
}

/// Appends one encoded pair. Names or values longer than 2^31-1 bytes cannot be
/// expressed by FastCGI and are truncated to that length.
pub fn encode_pair(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let name = &name[..name.len().min(MAX_PAIR_PART_LEN)];
    let value = &value[..value.len().min(MAX_PAIR_PART_LEN)];
    encode_len(name.len(), out);
    encode_len(value.len(), out);
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// Appends every pair; the result is the FCGI_PARAMS *stream* (the caller
/// splits it into records, see [`crate::record::encode_stream`]).
pub fn encode_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>, out: &mut Vec<u8>)
where
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    for (name, value) in pairs {
        encode_pair(name.as_ref(), value.as_ref(), out);
    }
}

fn decode_len(bytes: &[u8], pos: &mut usize) -> Result<usize, ProtocolError> {
    let rest = bytes.get(*pos..).unwrap_or(&[]);
    let first = *rest.first().ok_or(ProtocolError::TruncatedPair {
        needed: 1,
        available: 0,
    })?;
    if first & 0x80 == 0 {
        *pos += 1;
        return Ok(usize::from(first));
    }
    let four: [u8; 4] =
        rest.get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(ProtocolError::TruncatedPair {
                needed: 4,
                available: rest.len(),
            })?;
    *pos += 4;
    let len = u32::from_be_bytes(four) & 0x7fff_ffff;
    // u32 always fits in usize on the 32/64-bit targets corral supports;
    // saturate instead of panicking anywhere else.
    Ok(usize::try_from(len).unwrap_or(usize::MAX))
}

/// Decodes a complete name-value stream. `max_pairs` bounds the number of
/// pairs (the byte size is bounded by the caller, who holds `bytes`).
pub fn decode_pairs(bytes: &[u8], max_pairs: usize) -> Result<Params, ProtocolError> {
    let mut params = Params::new();
    decode_pairs_into(bytes, max_pairs, &mut params)?;
    Ok(params)
}

/// [`decode_pairs`] into a set the caller keeps (cleared first), so that a
/// connection decodes every request into the same memory.
pub fn decode_pairs_into(
    bytes: &[u8],
    max_pairs: usize,
    params: &mut Params,
) -> Result<(), ProtocolError> {
    params.clear();
    // A pair's two NULs take no more room than its (at least two) length
    // bytes did: one reservation is the only allocation a cold set makes.
    params.buf.reserve(bytes.len());
    let mut pos = 0;
    while pos < bytes.len() {
        if params.len() >= max_pairs {
            return Err(ProtocolError::TooManyParams { limit: max_pairs });
        }
        let name_len = decode_len(bytes, &mut pos)?;
        let value_len = decode_len(bytes, &mut pos)?;
        let available = bytes.len() - pos;
        let needed = name_len as u64 + value_len as u64;
        if needed > available as u64 {
            return Err(ProtocolError::TruncatedPair { needed, available });
        }
        // Both lengths are now known to lie within `bytes`.
        let name = &bytes[pos..pos + name_len];
        pos += name_len;
        let value = &bytes[pos..pos + value_len];
        pos += value_len;
        params.push(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths() {
        let long = vec![b'v'; 300];
        let mut out = Vec::new();
        encode_pair(b"A", b"", &mut out);
        encode_pair(&[b'n'; 127], &long, &mut out);
        assert_eq!(&out[..3], &[1, 0, b'A']);
        assert_eq!(&out[3..8], &[127, 0x80, 0, 1, 44]);
        let p = decode_pairs(&out, 10).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.get("A"), Some(&b""[..]));
        assert_eq!(p.get([b'n'; 127]), Some(long.as_slice()));
    }

    #[test]
    fn four_byte_form_accepted_for_small_lengths() {
        // Some encoders always use the long form; it is legal.
        let bytes = [0x80, 0, 0, 1, 0x80, 0, 0, 2, b'a', b'x', b'y'];
        let p = decode_pairs(&bytes, 10).unwrap();
        assert_eq!(p.get_str("a"), Some("xy"));
    }

    #[test]
    fn last_duplicate_wins() {
        let mut out = Vec::new();
        encode_pairs([("X", "1"), ("X", "2")], &mut out);
        let p = decode_pairs(&out, 10).unwrap();
        assert_eq!(p.get("X"), Some(&b"2"[..]));
        assert_eq!(p.len(), 2);
        assert_eq!(p.get("missing"), None);
    }

    #[test]
    fn truncated_inputs_error() {
        for bad in [
            &[5u8][..],
            &[1, 1, b'a'],
            &[0x80, 0, 0],
            &[1, 0x80, 0],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2],
            &[2, 2, b'a', b'b', b'c'],
        ] {
            assert!(
                matches!(
                    decode_pairs(bad, 10),
                    Err(ProtocolError::TruncatedPair { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pair_cap() {
        let mut out = Vec::new();
        encode_pairs([("a", ""), ("b", ""), ("c", "")], &mut out);
        assert_eq!(
            decode_pairs(&out, 2),
            Err(ProtocolError::TooManyParams { limit: 2 })
        );
        assert!(decode_pairs(&out, 3).is_ok());
    }

    #[test]
    fn putenv_semantics_and_c_strings() {
        let mut p = Params::new();
        p.push("A", "1");
        p.push("B", "2");
        p.push("A", "3");
        p.set("A", Some(b"x"));
        assert_eq!(p.first("A"), Some(&b"x"[..]));
        assert_eq!(p.get("A"), Some(&b"3"[..]), "the last still wins for get");
        p.set("C", Some(b""));
        p.set("B", None);
        p.insert_first("R", "RESPONDER");
        let names: Vec<&[u8]> = p.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [&b"R"[..], b"A", b"A", b"C"]);
        p.remove_all("A");
        let c: Vec<(&[u8], &[u8])> = p.iter_nul().collect();
        assert_eq!(c, [(&b"R\0"[..], &b"RESPONDER\0"[..]), (b"C\0", b"\0")]);
        assert!(!p.has_nul());
        p.push("N", b"a\0b");
        assert!(p.has_nul());
        p.clear();
        assert!(p.is_empty());
        assert!(!p.has_nul());
        assert_eq!(p, Params::new());
    }

    #[test]
    fn decoding_into_a_kept_set_replaces_what_it_held() {
        let mut out = Vec::new();
        encode_pairs([("a", "1"), ("b", "2")], &mut out);
        let mut p = Params::new();
        p.push("old", "x");
        decode_pairs_into(&out, 10, &mut p).unwrap();
        assert_eq!(
            p.into_pairs(),
            [
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
    }

    #[test]
    fn nul_count_at_every_length_and_place() {
        for len in 0..100 {
            for at in 0..len {
                let mut v = vec![b'x'; len];
                v[at] = 0;
                assert_eq!(count_nul(&v), 1, "{len} {at}");
            }
            assert_eq!(count_nul(&vec![0; len]), len);
        }
    }

    #[test]
    fn empty_stream_is_empty_params() {
        assert!(decode_pairs(&[], 0).unwrap().is_empty());
    }
}
