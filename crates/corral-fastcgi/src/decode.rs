//! Streaming record decoder: turns a byte stream cut at arbitrary points into
//! whole records.
//!
//! It consumes only what it needs from each input slice and holds at most one
//! record's content (≤ 65535 bytes; padding is counted, not stored), so memory
//! is bounded no matter how much or how little the caller feeds at once. The
//! content buffer grows only as content bytes actually arrive, so a header that
//! merely *announces* a large record costs nothing.

use crate::error::ProtocolError;
use crate::record::{Header, Record, FCGI_VERSION_1, HEADER_LEN};

/// Incremental FastCGI record decoder.
#[derive(Debug, Default)]
pub struct RecordDecoder {
    header_buf: [u8; HEADER_LEN],
    header_filled: usize,
    /// Set once the 8 header bytes are in.
    header: Option<Header>,
    content: Vec<u8>,
    padding_left: usize,
}

impl RecordDecoder {
    /// A decoder waiting for the first header byte.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes bytes from the front of `input` and returns the next complete
    /// record, or `Ok(None)` once `input` is exhausted mid-record. Call it in a
    /// loop until it returns `None`; unconsumed bytes stay in `input`.
    ///
    /// After an error the stream cannot be re-framed; drop the connection.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Record>, ProtocolError> {
        {
            let header = match self.header {
                Some(header) => header,
                None => {
                    let want = HEADER_LEN - self.header_filled;
                    let take = want.min(input.len());
                    self.header_buf[self.header_filled..self.header_filled + take]
                        .copy_from_slice(&input[..take]);
                    self.header_filled += take;
                    *input = &input[take..];
                    if self.header_filled < HEADER_LEN {
                        return Ok(None);
                    }
                    let header = Header::parse(&self.header_buf);
                    if header.version != FCGI_VERSION_1 {
                        return Err(ProtocolError::UnsupportedVersion(header.version));
                    }
                    self.header = Some(header);
                    self.padding_left = usize::from(header.padding_length);
                    header
                }
            };

            let content_len = usize::from(header.content_length);
            if self.content.len() < content_len {
                let take = (content_len - self.content.len()).min(input.len());
                self.content.extend_from_slice(&input[..take]);
                *input = &input[take..];
                if self.content.len() < content_len {
                    return Ok(None);
                }
            }
            if self.padding_left > 0 {
                let take = self.padding_left.min(input.len());
                self.padding_left -= take;
                *input = &input[take..];
                if self.padding_left > 0 {
                    return Ok(None);
                }
            }

            self.header = None;
            self.header_filled = 0;
            let record = Record {
                record_type: header.record_type,
                request_id: header.request_id,
                content: std::mem::take(&mut self.content),
            };
            Ok(Some(record))
        }
    }

    /// Gives back the content of a record the caller is done with, so the
    /// next record is read into its memory instead of a new allocation.
    pub fn recycle(&mut self, mut content: Vec<u8>) {
        if self.content.is_empty() && content.capacity() > self.content.capacity() {
            content.clear();
            self.content = content;
        }
    }

    /// Back to waiting for a first header byte, keeping the memory.
    pub fn reset(&mut self) {
        self.header_filled = 0;
        self.header = None;
        self.content.clear();
        self.padding_left = 0;
    }

    /// True when no partial record is buffered: the stream is at a record
    /// boundary (useful to tell a clean EOF from a truncated one).
    pub fn is_idle(&self) -> bool {
        self.header.is_none() && self.header_filled == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{encode_record, RecordType};

    fn decode_all(bytes: &[u8], step: usize) -> Vec<Record> {
        let mut dec = RecordDecoder::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(step.max(1)) {
            let mut input = chunk;
            while let Some(r) = dec.decode(&mut input).unwrap() {
                out.push(r);
            }
            assert!(input.is_empty());
        }
        assert!(dec.is_idle());
        out
    }

    #[test]
    fn decodes_byte_by_byte_and_whole() {
        let mut bytes = Vec::new();
        encode_record(RecordType::Stdin, 1, b"hello", &mut bytes);
        encode_record(RecordType::Stdin, 1, b"", &mut bytes);
        encode_record(RecordType::Other(77), 9, &[1; 16], &mut bytes);
        for step in [1, 3, 8, 1000] {
            let recs = decode_all(&bytes, step);
            assert_eq!(recs.len(), 3);
            assert_eq!(recs[0].content, b"hello");
            assert_eq!(recs[1].content, b"");
            assert_eq!(recs[2].record_type, RecordType::Other(77));
            assert_eq!(recs[2].request_id, 9);
        }
    }

    #[test]
    fn accepts_unaligned_and_max_padding() {
        // Spec allows any padding 0..=255; peers other than php-fpm use it.
        let mut bytes = vec![1, 5, 0, 1, 0, 2, 255, 0, b'a', b'b'];
        bytes.extend_from_slice(&[0; 255]);
        let recs = decode_all(&bytes, 7);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].content, b"ab");
    }

    #[test]
    fn rejects_bad_version() {
        let mut dec = RecordDecoder::new();
        let mut input: &[u8] = &[2, 5, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            dec.decode(&mut input),
            Err(ProtocolError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn announced_length_is_not_preallocated() {
        let mut dec = RecordDecoder::new();
        let mut input: &[u8] = &[1, 5, 0, 1, 0xff, 0xff, 0xff, 0];
        assert_eq!(dec.decode(&mut input), Ok(None));
        assert_eq!(dec.content.capacity(), 0);
        assert!(!dec.is_idle());
    }
}
