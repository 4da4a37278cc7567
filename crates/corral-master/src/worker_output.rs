//! A worker's captured stdout and stderr (`catch_workers_output`) turned
//! into log lines the way php-fpm 8.2 does it: `fpm_stdio_child_said()` in
//! fpm_stdio.c feeding one zlog stream per child (zlog.c).
//!
//! What that means, and what tools reading php-fpm's log rely on:
//! - one stream per worker, shared by both pipes: output on the other pipe
//!   ends the open line first;
//! - a line ends at `\n`, at the flush marker `\0fscf\0` the worker writes
//!   to stderr after every request, and when the worker is gone; an empty
//!   line is not logged;
//! - a line never exceeds `log_limit` bytes with its newline: longer output
//!   continues on further lines, each decorated line closed by its quote
//!   (undecorated lines carry `log_limit - 1` bytes of output);
//! - `, pipe is closed` ends the line only when the pipe closed in the very
//!   read that first heard from the worker.
//!
//! Deliberately not copied: php-fpm drops a flush marker split across two
//! reads when the second read has to wait, and writes blank lines when
//! `, pipe is closed` itself has to wrap. Here the marker is recognised
//! across reads and no blank line is written.

/// The flush marker php-fpm's children write to stderr at the end of each
/// request (`FPM_STDIO_CMD_FLUSH` with its terminating NUL).
pub const FLUSH_MARKER: &[u8] = b"\0fscf\0";

/// What php-fpm reads from a worker's pipe at once (`max_buf_size - 1`).
pub const READ_CHUNK: usize = 1023;

const PIPE_CLOSED: &[u8] = b", pipe is closed";

/// Which of the worker's pipes output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pipe {
    Stdout,
    Stderr,
}

impl Pipe {
    pub fn name(self) -> &'static str {
        match self {
            Pipe::Stdout => "stdout",
            Pipe::Stderr => "stderr",
        }
    }
}

/// How lines look: php-fpm's `log_limit` and `decorate_workers_output`.
#[derive(Clone, Copy, Debug)]
pub struct Format {
    pub limit: usize,
    pub decorate: bool,
}

/// Where finished lines go. `prefix` is the log's own start of a line
/// (`[time] WARNING: `), asked for when a decorated line starts.
pub trait LineSink {
    fn prefix(&mut self) -> Vec<u8>;
    fn line(&mut self, line: &[u8]);
}

/// The line being assembled from one worker's output.
pub struct OutputStream {
    /// `[pool www] child 42 said into ` (the pipe's name follows).
    said: String,
    /// The open line, from its prefix on; meaningful only while `open`.
    line: Vec<u8>,
    /// How much of `line` is its prefix.
    prefix_len: usize,
    open: bool,
    /// The pipe the open stream belongs to.
    pipe: Option<Pipe>,
    /// How much of a flush marker ended the previous read.
    marker: usize,
    /// Anything read from this worker yet (php-fpm creates its stream on
    /// the first read, and only that read may end with `, pipe is closed`).
    heard: bool,
}

impl OutputStream {
    pub fn new(pool: &str, pid: i32) -> OutputStream {
        OutputStream {
            said: format!("[pool {pool}] child {pid} said into "),
            line: Vec::new(),
            prefix_len: 0,
            open: false,
            pipe: None,
            marker: 0,
            heard: false,
        }
    }

    /// Whether the next read is the first one php-fpm would make for this
    /// worker; marks it heard.
    pub fn first_read(&mut self) -> bool {
        !std::mem::replace(&mut self.heard, true)
    }

    /// Bytes read from `pipe`.
    pub fn feed(&mut self, pipe: Pipe, data: &[u8], fmt: Format, sink: &mut dyn LineSink) {
        if self.pipe != Some(pipe) {
            self.flush_marker_bytes(fmt, sink);
            self.finish(fmt, sink, false);
            self.pipe = Some(pipe);
        }
        let mut rest = self.resume_marker(data, fmt, sink);
        while !rest.is_empty() {
            let Some(at) = rest.iter().position(|&b| b == b'\n' || b == 0) else {
                self.append(rest, fmt, sink);
                return;
            };
            self.append(&rest[..at], fmt, sink);
            if rest[at] == b'\n' {
                self.finish(fmt, sink, false);
                rest = &rest[at + 1..];
                continue;
            }
            let tail = &rest[at..];
            if tail.starts_with(FLUSH_MARKER) {
                self.finish(fmt, sink, false);
                rest = &tail[FLUSH_MARKER.len()..];
            } else if FLUSH_MARKER.starts_with(tail) {
                self.marker = tail.len();
                return;
            } else {
                self.append(&tail[..1], fmt, sink);
                rest = &tail[1..];
            }
        }
    }

    /// Completes a flush marker begun by the previous read, or gives back
    /// the bytes that only looked like one; returns what is left to scan.
    fn resume_marker<'d>(
        &mut self,
        data: &'d [u8],
        fmt: Format,
        sink: &mut dyn LineSink,
    ) -> &'d [u8] {
        if self.marker == 0 {
            return data;
        }
        let want = &FLUSH_MARKER[self.marker..];
        if data.starts_with(want) {
            self.marker = 0;
            self.finish(fmt, sink, false);
            return &data[want.len()..];
        }
        if want.starts_with(data) {
            self.marker += data.len();
            return &[];
        }
        let seen = &FLUSH_MARKER[..self.marker];
        self.marker = 0;
        self.append(seen, fmt, sink);
        data
    }

    /// The pipe closed: php-fpm ends the line with `, pipe is closed` only
    /// when this was the first read from the worker.
    pub fn closed(&mut self, first_read: bool, fmt: Format, sink: &mut dyn LineSink) {
        if first_read {
            self.finish(fmt, sink, true);
        }
    }

    /// The worker is gone: whatever is open is logged.
    pub fn close(&mut self, fmt: Format, sink: &mut dyn LineSink) {
        self.flush_marker_bytes(fmt, sink);
        self.finish(fmt, sink, false);
    }

    /// A marker that never completed was output after all.
    fn flush_marker_bytes(&mut self, fmt: Format, sink: &mut dyn LineSink) {
        if self.marker > 0 {
            let seen = &FLUSH_MARKER[..std::mem::take(&mut self.marker)];
            self.append(seen, fmt, sink);
        }
    }

    /// The most a line may hold before its closing quote and newline.
    fn capacity(fmt: Format) -> usize {
        fmt.limit.saturating_sub(1 + usize::from(fmt.decorate))
    }

    fn start(&mut self, fmt: Format, sink: &mut dyn LineSink, quote: bool) {
        self.line.clear();
        if fmt.decorate {
            self.line.extend_from_slice(&sink.prefix());
            self.line.extend_from_slice(self.said.as_bytes());
            self.line
                .extend_from_slice(self.pipe.unwrap_or(Pipe::Stderr).name().as_bytes());
            self.line.extend_from_slice(b": ");
            if quote {
                self.line.push(b'"');
            }
        }
        self.prefix_len = self.line.len();
        self.open = true;
    }

    /// Output for the open line, continued on new lines at the limit.
    fn append(&mut self, mut text: &[u8], fmt: Format, sink: &mut dyn LineSink) {
        let cap = Self::capacity(fmt);
        while !text.is_empty() {
            if !self.open {
                self.start(fmt, sink, true);
            }
            let mut room = cap.saturating_sub(self.line.len());
            if room == 0 {
                if self.line.len() > self.prefix_len {
                    self.emit(fmt, sink, &[]);
                    continue;
                }
                // A prefix as long as the limit: still make progress.
                room = 1;
            }
            let take = room.min(text.len());
            self.line.extend_from_slice(&text[..take]);
            text = &text[take..];
        }
    }

    /// Close the open line (quote, `suffix`, newline) and log it.
    fn emit(&mut self, fmt: Format, sink: &mut dyn LineSink, suffix: &[u8]) {
        if fmt.decorate {
            self.line.push(b'"');
            self.line.extend_from_slice(suffix);
        }
        self.line.push(b'\n');
        sink.line(&self.line);
        self.open = false;
    }

    fn finish(&mut self, fmt: Format, sink: &mut dyn LineSink, pipe_closed: bool) {
        if !self.open {
            return;
        }
        if !(pipe_closed && fmt.decorate) {
            self.emit(fmt, sink, &[]);
            return;
        }
        // `"` and the suffix must fit before the newline; what does not
        // continues on a line of its own, as php-fpm wraps it.
        let fits = fmt
            .limit
            .saturating_sub(2 + self.line.len())
            .min(PIPE_CLOSED.len());
        self.emit(fmt, sink, &PIPE_CLOSED[..fits]);
        if fits < PIPE_CLOSED.len() {
            self.start(fmt, sink, false);
            self.line.extend_from_slice(&PIPE_CLOSED[fits..]);
            self.line.push(b'\n');
            sink.line(&self.line);
            self.open = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects lines; the log prefix is a fixed stand-in of php-fpm's
    /// length (`[01-Dec-2026 10:00:00] WARNING: `).
    #[derive(Default)]
    struct Lines(Vec<Vec<u8>>);

    const PREFIX: &[u8] = b"[01-Dec-2026 10:00:00] WARNING: ";

    impl LineSink for Lines {
        fn prefix(&mut self) -> Vec<u8> {
            PREFIX.to_vec()
        }
        fn line(&mut self, line: &[u8]) {
            self.0.push(line.to_vec());
        }
    }

    fn plain(limit: usize) -> Format {
        Format {
            limit,
            decorate: false,
        }
    }

    fn decorated(limit: usize) -> Format {
        Format {
            limit,
            decorate: true,
        }
    }

    /// The output a decorated line carries, between its quotes.
    fn said(line: &[u8]) -> &[u8] {
        let open = line.iter().position(|&b| b == b'"').unwrap();
        let close = line.iter().rposition(|&b| b == b'"').unwrap();
        &line[open + 1..close]
    }

    fn run(fmt: Format, writes: &[(Pipe, &[u8])]) -> Vec<Vec<u8>> {
        let mut s = OutputStream::new("www", 42);
        let mut out = Lines::default();
        for (pipe, data) in writes {
            for chunk in data.chunks(READ_CHUNK) {
                s.feed(*pipe, chunk, fmt, &mut out);
            }
        }
        s.close(fmt, &mut out);
        out.0
    }

    #[test]
    fn plain_output_splits_at_the_limit_minus_its_newline() {
        let mut data = vec![b'a'; 100];
        data.extend(std::iter::repeat_n(b'b', 2500));
        data.push(b'\n');
        let lines = run(plain(1024), &[(Pipe::Stderr, &data)]);
        let lens: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(lens, [1024, 1024, 555]);
        assert!(lines[0].starts_with(&[b'a'; 100]));
        assert_eq!(lines[1], [vec![b'b'; 1023], vec![b'\n']].concat());
    }

    #[test]
    fn plain_output_honours_a_custom_limit() {
        let mut data = vec![b'a'; 3300];
        data.push(b'\n');
        let lines = run(plain(1500), &[(Pipe::Stderr, &data)]);
        let lens: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(lens, [1500, 1500, 3300 - 2 * 1499 + 1]);
    }

    #[test]
    fn decorated_output_continues_on_lines_of_exactly_the_limit() {
        let mut data = vec![b'a'; 2900];
        data.push(b'\n');
        let lines = run(decorated(1050), &[(Pipe::Stderr, &data)]);
        let total: usize = lines.iter().map(|l| said(l).len()).sum();
        assert_eq!(total, 2900);
        for l in &lines[..lines.len() - 1] {
            assert_eq!(l.len(), 1050, "{}", String::from_utf8_lossy(l));
        }
        for l in &lines {
            assert!(l.starts_with(PREFIX));
            assert!(l.ends_with(b"\"\n"));
            assert!(String::from_utf8_lossy(l).contains("[pool www] child 42 said into stderr: \""));
        }
    }

    #[test]
    fn the_flush_marker_ends_a_line_and_is_not_logged() {
        let mut data = vec![b'a'; 1022];
        data.extend_from_slice(FLUSH_MARKER);
        data.extend_from_slice(b"next");
        let lines = run(plain(1024), &[(Pipe::Stderr, &data)]);
        assert_eq!(
            lines,
            [[vec![b'a'; 1022], vec![b'\n']].concat(), b"next\n".to_vec()]
        );
    }

    #[test]
    fn a_marker_split_across_reads_is_still_a_marker() {
        let mut s = OutputStream::new("www", 42);
        let mut out = Lines::default();
        s.feed(Pipe::Stderr, b"one\0fs", plain(1024), &mut out);
        assert!(out.0.is_empty());
        s.feed(Pipe::Stderr, b"cf\0two", plain(1024), &mut out);
        s.close(plain(1024), &mut out);
        assert_eq!(out.0, [b"one\n".to_vec(), b"two\n".to_vec()]);
    }

    #[test]
    fn what_only_began_like_a_marker_is_output() {
        let mut data = vec![b'a'; 1021];
        data.extend_from_slice(b"\0fabc");
        let lines = run(plain(1024), &[(Pipe::Stderr, &data)]);
        assert_eq!(
            lines,
            [
                [vec![b'a'; 1021], b"\0f\n".to_vec()].concat(),
                b"abc\n".to_vec()
            ]
        );
    }

    #[test]
    fn each_request_gets_its_own_line() {
        let request = [
            (Pipe::Stderr, &b"msg 1 - "[..]),
            (Pipe::Stderr, b"msg 2 - "),
            (Pipe::Stderr, b"msg 3"),
            (Pipe::Stderr, FLUSH_MARKER),
        ];
        let lines = run(decorated(1024), &[request, request].concat());
        assert_eq!(lines.len(), 2);
        for l in &lines {
            assert_eq!(said(l), b"msg 1 - msg 2 - msg 3");
        }
    }

    #[test]
    fn output_on_the_other_pipe_ends_the_line() {
        let lines = run(
            decorated(1024),
            &[
                (Pipe::Stdout, b"msg 1 - "),
                (Pipe::Stderr, b"msg 2 - "),
                (Pipe::Stderr, b"msg 3"),
            ],
        );
        assert_eq!(lines.len(), 2);
        assert!(String::from_utf8_lossy(&lines[0]).contains("said into stdout: \"msg 1 - \""));
        assert!(String::from_utf8_lossy(&lines[1]).contains("said into stderr: \"msg 2 - msg 3\""));
    }

    #[test]
    fn empty_lines_are_not_logged() {
        let lines = run(decorated(1024), &[(Pipe::Stderr, b"\n\nx\n\n")]);
        assert_eq!(lines.len(), 1);
        assert_eq!(said(&lines[0]), b"x");
    }

    #[test]
    fn pipe_closed_only_ends_a_line_heard_in_the_first_read() {
        let fmt = decorated(1024);
        let mut s = OutputStream::new("www", 42);
        let mut out = Lines::default();
        let first = s.first_read();
        s.feed(Pipe::Stderr, b"bye", fmt, &mut out);
        s.closed(first, fmt, &mut out);
        assert!(out.0[0].ends_with(b"said into stderr: \"bye\", pipe is closed\n"));

        let mut s = OutputStream::new("www", 42);
        let mut out = Lines::default();
        let first = s.first_read();
        s.feed(Pipe::Stderr, b"hello", fmt, &mut out);
        assert!(first);
        let later = s.first_read();
        s.feed(Pipe::Stderr, b" world", fmt, &mut out);
        s.closed(later, fmt, &mut out);
        s.close(fmt, &mut out);
        assert_eq!(out.0.len(), 1);
        assert!(out.0[0].ends_with(b"\"hello world\"\n"));
    }

    #[test]
    fn pipe_closed_wraps_when_it_does_not_fit() {
        let fmt = decorated(600);
        let mut s = OutputStream::new("www", 42);
        let mut out = Lines::default();
        let first = s.first_read();
        let prefix = PREFIX.len() + "[pool www] child 42 said into stderr: \"".len();
        // Leaves room for the quote and ", pipe" only.
        let text = vec![b'x'; 600 - 2 - prefix - ", pipe".len()];
        s.feed(Pipe::Stderr, &text, fmt, &mut out);
        s.closed(first, fmt, &mut out);
        assert_eq!(out.0.len(), 2);
        assert_eq!(out.0[0].len(), 600);
        assert!(out.0[0].ends_with(b"\", pipe\n"));
        assert!(out.0[1].ends_with(b"said into stderr:  is closed\n"));
    }
}
