//! Streaming `multipart/form-data` parsing (RFC 7578): bytes go in as they
//! arrive, events come out, and a part's data is never held whole — an
//! upload of any size streams through with a buffer of about one input
//! chunk plus the boundary.

use crate::filename::{self, FilenameError};
use std::fmt;

/// Largest header block of one part, in bytes. Part headers are a few
/// short lines; tens of kilobytes of them are an attack on the parser.
pub const MAX_PART_HEADERS: usize = 8 * 1024;
/// Most header lines in one part (a form sends two or three).
pub const MAX_PART_HEADER_LINES: usize = 16;
/// Bytes allowed before the first boundary (RFC 2046's preamble, which no
/// form client sends) and after the closing one (its epilogue): skipped
/// when this short, refused when longer, so that a body cannot stream
/// unbounded bytes that nothing reads.
pub const MAX_PREAMBLE: usize = 1024;
/// RFC 2046: a boundary is 1 to 70 of these, not ending with a space.
const BOUNDARY_CHARS: &[u8] = b"'()+_,-./:=? ";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartHeaders {
    pub name: Option<String>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A part starts.
    Part(PartHeaders),
    /// Some bytes of the current part.
    Data(Vec<u8>),
    /// The current part ended.
    PartEnd,
    /// The closing boundary was seen.
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartError(pub String);

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed multipart body: {}", self.0)
    }
}

impl std::error::Error for MultipartError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Preamble,
    AfterBoundary,
    Headers,
    Body,
    Done,
}

pub struct Parser {
    /// `\r\n--boundary`
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    state: State,
    /// Preamble or epilogue bytes skipped so far.
    skipped: usize,
}

/// The boundary parameter of a `multipart/form-data` content type, or
/// `None` (also when it is missing or malformed: [`form_boundary`] says
/// why).
pub fn boundary(content_type: &str) -> Option<String> {
    form_boundary(content_type).ok().flatten()
}

/// `Ok(None)` when `content_type` is not `multipart/form-data`; its
/// boundary when it is; an error naming the problem when the boundary is
/// missing, repeated, empty, longer than 70 characters or has characters
/// RFC 2046 does not allow.
pub fn form_boundary(content_type: &str) -> Result<Option<String>, MultipartError> {
    let (mime, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Ok(None);
    }
    let bad = |m: String| MultipartError(format!("Content-Type multipart/form-data: {m}"));
    let params = filename::parameters(params).map_err(|e| bad(e.0))?;
    let Some((_, b)) = params.into_iter().find(|(k, _)| k == "boundary") else {
        return Err(bad(
            "no boundary parameter (e.g. `; boundary=----x1y2z3`)".into()
        ));
    };
    if b.is_empty() || b.len() > 70 {
        return Err(bad(format!(
            "the boundary must be 1 to 70 characters, not {}",
            b.len()
        )));
    }
    if let Some(c) = b.chars().find(|&c| {
        !(c.is_ascii_alphanumeric() || c.is_ascii() && BOUNDARY_CHARS.contains(&(c as u8)))
    }) {
        return Err(bad(format!(
            "the boundary may hold letters, digits and '()+_,-./:=? only, not {:?}",
            c
        )));
    }
    if b.ends_with(' ') {
        return Err(bad("the boundary must not end with a space".into()));
    }
    Ok(Some(b))
}

impl Parser {
    pub fn new(boundary: &str) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Parser {
            delimiter,
            buf: Vec::new(),
            state: State::Preamble,
            skipped: 0,
        }
    }

    /// Feeds the next bytes; returns the events they complete.
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<Event>, MultipartError> {
        self.buf.extend_from_slice(data);
        let mut events = Vec::new();
        loop {
            let progressed = match self.state {
                State::Preamble => self.preamble()?,
                State::AfterBoundary => self.after_boundary(&mut events)?,
                State::Headers => self.headers(&mut events)?,
                State::Body => self.body(&mut events),
                State::Done => self.epilogue()?,
            };
            if !progressed {
                return Ok(events);
            }
        }
    }

    /// Call at the end of input; errors if the body was cut short.
    pub fn finish(&mut self) -> Result<(), MultipartError> {
        let why = match self.state {
            State::Done => return Ok(()),
            State::Preamble => {
                "the body has no boundary line (`--` and the boundary of the \
                                Content-Type)"
            }
            State::AfterBoundary | State::Headers => {
                "the body ended inside a part's headers (no blank line after them)"
            }
            State::Body => "the body ended before the closing boundary",
        };
        Err(MultipartError(why.into()))
    }

    fn preamble(&mut self) -> Result<bool, MultipartError> {
        // The first boundary may start the body without a leading CRLF —
        // the very start only: after skipped preamble bytes it needs its
        // CRLF, or the verdict would depend on how the body was chunked
        // (found by fuzz/fuzz_targets/multipart.rs).
        let dash_boundary = &self.delimiter[2..];
        if self.skipped == 0 && self.buf.starts_with(dash_boundary) {
            self.buf.drain(..dash_boundary.len());
            self.state = State::AfterBoundary;
            return Ok(true);
        }
        if let Some(i) = find(&self.buf, &self.delimiter) {
            self.skip(i)?;
            self.buf.drain(..i + self.delimiter.len());
            self.state = State::AfterBoundary;
            return Ok(true);
        }
        // Keep only what could be the start of a delimiter.
        let keep = self.delimiter.len().min(self.buf.len());
        let cut = self.buf.len() - keep;
        self.skip(cut)?;
        self.buf.drain(..cut);
        Ok(false)
    }

    /// After the closing boundary: a short epilogue is skipped; another
    /// boundary line (a part after the end, which other parsers might
    /// read) or a long tail is refused.
    fn epilogue(&mut self) -> Result<bool, MultipartError> {
        let dash_boundary = &self.delimiter[2..];
        if find(&self.buf, dash_boundary).is_some() {
            return Err(MultipartError(
                "a boundary line after the closing boundary: parts must come before it".into(),
            ));
        }
        let cut = self.buf.len().saturating_sub(dash_boundary.len() - 1);
        self.skip(cut)?;
        self.buf.drain(..cut);
        Ok(false)
    }

    fn skip(&mut self, n: usize) -> Result<(), MultipartError> {
        self.skipped += n;
        if self.skipped > MAX_PREAMBLE {
            let where_ = if self.state == State::Done {
                "after the closing boundary"
            } else {
                "before the first boundary"
            };
            return Err(MultipartError(format!(
                "more than {MAX_PREAMBLE} bytes {where_}"
            )));
        }
        Ok(())
    }

    fn after_boundary(&mut self, events: &mut Vec<Event>) -> Result<bool, MultipartError> {
        if self.buf.len() < 2 {
            return Ok(false);
        }
        if self.buf.starts_with(b"--") {
            self.buf.drain(..2);
            self.skipped = 0;
            self.state = State::Done;
            events.push(Event::End);
            return Ok(true);
        }
        // Transport padding (spaces/tabs) may precede the CRLF.
        let pad = self
            .buf
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        if self.buf.len() < pad + 2 {
            return Ok(false);
        }
        if &self.buf[pad..pad + 2] != b"\r\n" {
            return Err(MultipartError("boundary not followed by CRLF".into()));
        }
        self.buf.drain(..pad + 2);
        self.state = State::Headers;
        Ok(true)
    }

    fn headers(&mut self, events: &mut Vec<Event>) -> Result<bool, MultipartError> {
        // A part with no headers at all starts right with CRLF.
        let end = if self.buf.starts_with(b"\r\n") {
            Some(0)
        } else {
            find(&self.buf, b"\r\n\r\n")
        };
        // Bounded whether or not the blank line has arrived: a huge block
        // delivered in one chunk is refused like one trickling in.
        if end.unwrap_or(self.buf.len()) > MAX_PART_HEADERS {
            return Err(MultipartError(format!(
                "a part's headers exceed {MAX_PART_HEADERS} bytes"
            )));
        }
        let Some(end) = end else {
            return Ok(false);
        };
        let headers = parse_part_headers(&self.buf[..end])?;
        let consumed = if end == 0 { 2 } else { end + 4 };
        self.buf.drain(..consumed);
        events.push(Event::Part(headers));
        self.state = State::Body;
        Ok(true)
    }

    fn body(&mut self, events: &mut Vec<Event>) -> bool {
        if let Some(i) = find(&self.buf, &self.delimiter) {
            if i > 0 {
                events.push(Event::Data(self.buf[..i].to_vec()));
            }
            events.push(Event::PartEnd);
            self.buf.drain(..i + self.delimiter.len());
            self.state = State::AfterBoundary;
            return true;
        }
        // Everything but a possible partial delimiter at the end is data.
        let safe = self.buf.len().saturating_sub(self.delimiter.len() - 1);
        if safe > 0 {
            events.push(Event::Data(self.buf.drain(..safe).collect()));
        }
        false
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&c| c == first)
        {
            None => return None,
            Some(off) => {
                i += off;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// One part's header block (without its blank line). Strict where a
/// lenient reading could differ from another parser's: UTF-8 only, no NUL,
/// no bare CR or LF, no folded lines, no repeated `Content-Disposition` or
/// `Content-Type`, and a well-formed disposition (RFC 7578).
fn parse_part_headers(block: &[u8]) -> Result<PartHeaders, MultipartError> {
    if block.contains(&0) {
        return Err(MultipartError(
            "a NUL byte in a part's headers (not allowed in a file name)".into(),
        ));
    }
    let block = std::str::from_utf8(block).map_err(|_| {
        MultipartError(
            "part headers are not UTF-8 (send non-ASCII file names as UTF-8, \
             or percent-encoded in filename*=UTF-8''…)"
                .into(),
        )
    })?;
    let mut headers = PartHeaders::default();
    if block.is_empty() {
        return Ok(headers);
    }
    let (mut disposition, mut content_type) = (false, false);
    for (n, line) in block.split("\r\n").enumerate() {
        if n >= MAX_PART_HEADER_LINES {
            return Err(MultipartError(format!(
                "a part has more than {MAX_PART_HEADER_LINES} header lines"
            )));
        }
        if line.contains(['\r', '\n']) {
            return Err(MultipartError(
                "a bare CR or LF in a part's headers (lines end with CRLF; a file name \
                 holding one must be percent-encoded in filename*=)"
                    .into(),
            ));
        }
        if line.starts_with([' ', '\t']) {
            return Err(MultipartError(
                "a part header line starts with white space (folded header lines are not \
                 allowed)"
                    .into(),
            ));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(MultipartError(format!(
                "part header line {:?} has no `:`",
                cut(line)
            )));
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(MultipartError(format!(
                "{:?} is not a header name (folded header lines are not allowed)",
                cut(name)
            )));
        }
        let value = value.trim();
        let seen = if name.eq_ignore_ascii_case("content-disposition") {
            let d = filename::parse_disposition(value).map_err(|e: FilenameError| {
                MultipartError(format!("part Content-Disposition: {e}"))
            })?;
            headers.name = d.name;
            headers.filename = d.filename;
            &mut disposition
        } else if name.eq_ignore_ascii_case("content-type") {
            headers.content_type = Some(value.to_string());
            &mut content_type
        } else {
            continue;
        };
        if std::mem::replace(seen, true) {
            return Err(MultipartError(format!("a part has two {name} headers")));
        }
    }
    Ok(headers)
}

/// A header line quoted in a message: at most 60 characters.
fn cut(s: &str) -> &str {
    match s.char_indices().nth(60) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"preamble\r\n--XyZ\r\n");
        b.extend_from_slice(b"Content-Disposition: form-data; name=\"formData\"\r\n\r\n");
        b.extend_from_slice(b"{\"title\":\"Test\"}");
        b.extend_from_slice(b"\r\n--XyZ\r\n");
        b.extend_from_slice(b"Content-Disposition: form-data; name=\"file\"; filename=\"te\\\"st.png\"\r\nContent-Type: image/png\r\n\r\n");
        b.extend_from_slice(b"\x89PNG\r\n--XyNot a boundary\r\n--XyQ");
        b.extend_from_slice(b"\r\n--XyZ--\r\nepilogue");
        b
    }

    fn collect(events: Vec<Event>) -> Vec<(PartHeaders, Vec<u8>)> {
        let mut parts = Vec::new();
        let mut ended = false;
        for e in events {
            match e {
                Event::Part(h) => parts.push((h, Vec::new())),
                Event::Data(d) => parts.last_mut().unwrap().1.extend(d),
                Event::PartEnd => {}
                Event::End => ended = true,
            }
        }
        assert!(ended);
        parts
    }

    #[test]
    fn parses_fields_and_files() {
        let mut p = Parser::new("XyZ");
        let events = p.feed(&body()).unwrap();
        p.finish().unwrap();
        let parts = collect(events);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0.name.as_deref(), Some("formData"));
        assert_eq!(parts[0].1, b"{\"title\":\"Test\"}");
        assert_eq!(parts[1].0.filename.as_deref(), Some("te\"st.png"));
        assert_eq!(parts[1].0.content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[1].1, b"\x89PNG\r\n--XyNot a boundary\r\n--XyQ");
    }

    #[test]
    fn truncated_and_malformed_bodies_are_errors() {
        let b = body();
        let mut p = Parser::new("XyZ");
        p.feed(&b[..b.len() - 20]).unwrap();
        assert!(p.finish().is_err());
        let mut p = Parser::new("XyZ");
        assert!(p.feed(b"--XyZ garbage").is_err());
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("application/json"), None);
        let h = parse_part_headers(
            b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%C3%A9t%C3%A9.jpg",
        )
        .unwrap();
        assert_eq!(h.filename.as_deref(), Some("été.jpg"));
    }

    #[test]
    fn boundaries() {
        let ok = [
            ("multipart/form-data; boundary=XyZ", "XyZ"),
            ("Multipart/Form-Data;boundary=\"a b\"", "a b"),
            (
                "multipart/form-data; charset=utf-8; BOUNDARY=----x1'()+_,-./:=?",
                "----x1'()+_,-./:=?",
            ),
        ];
        for (ct, b) in ok {
            assert_eq!(form_boundary(ct).unwrap().as_deref(), Some(b), "{ct}");
        }
        for ct in [
            "application/json",
            "image/png; boundary=x",
            "multipart/mixed; boundary=x",
            "",
        ] {
            assert_eq!(form_boundary(ct).unwrap(), None, "{ct}");
        }
        let long = format!("multipart/form-data; boundary={}", "a".repeat(71));
        let bad = [
            "multipart/form-data",
            "multipart/form-data;",
            "multipart/form-data; charset=utf-8",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"\"",
            long.as_str(),
            "multipart/form-data; boundary=\"a;b\"",
            "multipart/form-data; boundary=\"a\\\"b\"",
            "multipart/form-data; boundary=\"ab \"",
            "multipart/form-data; boundary=é",
            "multipart/form-data; boundary=a\tb",
            "multipart/form-data; boundary=a; boundary=b",
            "multipart/form-data; boundary=\"unterminated",
        ];
        for ct in bad {
            let e = form_boundary(ct).unwrap_err();
            assert!(
                e.0.contains("boundary") || e.0.contains("quoted"),
                "{ct}: {e}"
            );
            assert_eq!(boundary(ct), None);
        }
    }

    /// A body whose only part has `headers` (CRLF-separated, no blank line).
    fn with_headers(headers: &[u8]) -> Vec<u8> {
        let mut b = b"--B\r\n".to_vec();
        b.extend_from_slice(headers);
        b.extend_from_slice(b"\r\n\r\ndata\r\n--B--\r\n");
        b
    }

    fn parse_all(body: &[u8], chunk: usize) -> Result<Vec<Event>, MultipartError> {
        let mut p = Parser::new("B");
        let mut events = Vec::new();
        for piece in body.chunks(chunk.max(1)) {
            events.extend(p.feed(piece)?);
        }
        p.finish()?;
        Ok(events)
    }

    #[test]
    fn hostile_part_headers_are_refused() {
        let big = format!(
            "Content-Disposition: form-data; name=\"file\"; filename=\"{}\"",
            "a".repeat(MAX_PART_HEADERS)
        );
        let many: String = (0..MAX_PART_HEADER_LINES + 1)
            .map(|i| format!("X-H{i}: v"))
            .collect::<Vec<_>>()
            .join("\r\n");
        let cases: &[(&[u8], &str)] = &[
            (big.as_bytes(), "exceed"),
            (many.as_bytes(), "header lines"),
            (
                b"Content-Disposition: form-data; name=\"f\"; filename=\"a\nb\"",
                "bare CR or LF",
            ),
            (
                b"Content-Disposition: form-data; name=\"f\"; filename=\"a\rb\"",
                "bare CR or LF",
            ),
            (
                b"Content-Disposition: form-data; name=\"f\"; filename=\"\xff.jpg\"",
                "UTF-8",
            ),
            (
                b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%C3\xc3\xa9",
                "filename*",
            ),
            (
                b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%",
                "filename*",
            ),
            (
                b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%FF",
                "filename*",
            ),
            (
                b"Content-Disposition: form-data; name=\"f\"\r\n continued",
                "folded",
            ),
            (
                b"Content-Disposition: form-data; name=\"f\"\r\nno colon",
                "no `:`",
            ),
            (
                b"Content-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b",
                "two",
            ),
            (b"Content-Type: a/b\r\nContent-Type: c/d", "two"),
            (
                b"Content-Disposition: form-data; name=\"f\"; filename=\"a\0b\"",
                "NUL",
            ),
            (
                b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''a%00",
                "NUL",
            ),
            (
                b"Content-Disposition: form-data; name=\"f\"; filename=\"open",
                "not terminated",
            ),
        ];
        for (headers, why) in cases {
            for chunk in [1, 7, 100, 1 << 20] {
                let e = parse_all(&with_headers(headers), chunk).unwrap_err();
                assert!(
                    e.0.contains(why),
                    "{:?} in chunks of {chunk}: {e}",
                    String::from_utf8_lossy(headers)
                );
            }
        }
        // Headers that never end are refused once over the bound, not buffered.
        let mut p = Parser::new("B");
        p.feed(b"--B\r\nX: ").unwrap();
        let e = p.feed(&vec![b'a'; MAX_PART_HEADERS]).unwrap_err();
        assert!(e.0.contains("exceed"), "{e}");
        // …and a body cut inside them says so.
        let mut p = Parser::new("B");
        p.feed(b"--B\r\nContent-Disposition: form-data; name=\"f\"\r\n")
            .unwrap();
        assert!(
            p.finish()
                .unwrap_err()
                .0
                .contains("inside a part's headers")
        );
        // Just under the bounds is fine.
        let fits = format!("X: {}", "a".repeat(MAX_PART_HEADERS - 3));
        assert!(parse_all(&with_headers(fits.as_bytes()), 1000).is_ok());
    }

    #[test]
    fn a_boundary_without_crlf_counts_only_at_the_very_start() {
        // Fuzzer reproducer (fuzz/artifacts/multipart/crash-5b52a684…):
        // whole or cut after "x--B\r\n", the same verdict.
        let body = b"x--B\r\n\r\nraw\r\n--B--";
        let outcome = |pieces: &[&[u8]]| {
            let mut p = Parser::new("B");
            let mut events = Vec::new();
            for piece in pieces {
                events.extend(p.feed(piece).map_err(|e| e.to_string())?);
            }
            p.finish().map_err(|e| e.to_string())?;
            Ok::<_, String>(events.len())
        };
        let whole = outcome(&[body]);
        for cut in 0..=body.len() {
            assert_eq!(
                outcome(&[&body[..cut], &body[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn preamble_and_epilogue_are_bounded() {
        let mut ok = vec![b'p'; MAX_PREAMBLE - 2];
        ok.extend_from_slice(b"\r\n");
        ok.extend_from_slice(&with_headers(b"X: y"));
        ok.extend_from_slice(&vec![b'e'; MAX_PREAMBLE - 2]);
        for chunk in [1, 5, 4096] {
            assert!(parse_all(&ok, chunk).is_ok(), "{chunk}");
        }
        let mut long_preamble = vec![b'p'; MAX_PREAMBLE + 10];
        long_preamble.extend_from_slice(&with_headers(b"X: y"));
        let mut long_epilogue = with_headers(b"X: y");
        long_epilogue.extend_from_slice(&vec![b'e'; MAX_PREAMBLE + 10]);
        let mut smuggled = with_headers(b"X: y");
        smuggled.extend_from_slice(
            b"--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--B--",
        );
        let cases: [(&[u8], &str); 4] = [
            (&long_preamble, "before the first boundary"),
            (&long_epilogue, "after the closing boundary"),
            (&smuggled, "boundary line after the closing boundary"),
            (b"no boundary here at all", "no boundary line"),
        ];
        for (body, why) in cases {
            for chunk in [1, 3, 64, 1 << 20] {
                let e = parse_all(body, chunk).unwrap_err();
                assert!(e.0.contains(why), "chunks of {chunk}: {e}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_parts(cuts in proptest::collection::vec(0usize..400, 0..12)) {
            let b = body();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(b.len())).collect();
            cuts.sort();
            let mut p = Parser::new("XyZ");
            let mut events = Vec::new();
            let mut last = 0;
            for c in cuts {
                events.extend(p.feed(&b[last..c]).unwrap());
                last = c;
            }
            events.extend(p.feed(&b[last..]).unwrap());
            p.finish().unwrap();
            let mut whole = Parser::new("XyZ");
            let expected = collect(whole.feed(&b).unwrap());
            prop_assert_eq!(collect(events), expected);
        }
    }
}
