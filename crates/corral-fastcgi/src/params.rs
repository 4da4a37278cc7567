//! Name-value pair codec (FCGI_PARAMS, FCGI_GET_VALUES, FCGI_GET_VALUES_RESULT).
//!
//! Each length is one byte when < 128, else four bytes big-endian with the top
//! bit set (31-bit length). Lengths come from the peer, so decoding checks every
//! length against the bytes actually present before slicing or allocating.

use crate::error::ProtocolError;

/// Ordered name-value pairs as the web server sent them (duplicates kept, so
/// callers that care can see them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Params {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps pairs as they are.
    pub fn from_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        Params { pairs }
    }

    /// Appends a pair.
    pub fn push(&mut self, name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.pairs.push((name.into(), value.into()));
    }

    /// The value of `name`. When a name occurs more than once the **last** one
    /// wins, matching php-fpm, whose params hash overwrites earlier entries.
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        let name = name.as_ref();
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n.as_slice() == name)
            .map(|(_, v)| v.as_slice())
    }

    /// [`Params::get`] as UTF-8, `None` if absent or not valid UTF-8.
    pub fn get_str(&self, name: impl AsRef<[u8]>) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice()))
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
        self.pairs
    }
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
    let mut pairs = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        if pairs.len() >= max_pairs {
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
        let name = bytes[pos..pos + name_len].to_vec();
        pos += name_len;
        let value = bytes[pos..pos + value_len].to_vec();
        pos += value_len;
        pairs.push((name, value));
    }
    Ok(Params { pairs })
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
    fn empty_stream_is_empty_params() {
        assert!(decode_pairs(&[], 0).unwrap().is_empty());
    }
}
