//! Streaming `multipart/form-data` parsing (RFC 7578): bytes go in as they
//! arrive, events come out, and a part's data is never held whole — an
//! upload of any size streams through with a buffer of about one input
//! chunk plus the boundary.

use std::fmt;

/// Largest header block of one part.
const MAX_PART_HEADERS: usize = 16 * 1024;

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
}

/// The boundary parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let mime = parts.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

impl Parser {
    pub fn new(boundary: &str) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Parser {
            delimiter,
            buf: Vec::new(),
            state: State::Preamble,
        }
    }

    /// Feeds the next bytes; returns the events they complete.
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<Event>, MultipartError> {
        self.buf.extend_from_slice(data);
        let mut events = Vec::new();
        loop {
            let progressed = match self.state {
                State::Preamble => self.preamble(),
                State::AfterBoundary => self.after_boundary(&mut events)?,
                State::Headers => self.headers(&mut events)?,
                State::Body => self.body(&mut events),
                State::Done => {
                    self.buf.clear();
                    false
                }
            };
            if !progressed {
                return Ok(events);
            }
        }
    }

    /// Call at the end of input; errors if the body was cut short.
    pub fn finish(&mut self) -> Result<(), MultipartError> {
        if self.state == State::Done {
            Ok(())
        } else {
            Err(MultipartError(
                "body ended before the closing boundary".into(),
            ))
        }
    }

    fn preamble(&mut self) -> bool {
        // The first boundary may start the body without a leading CRLF.
        let dash_boundary = &self.delimiter[2..];
        if self.buf.starts_with(dash_boundary) {
            self.buf.drain(..dash_boundary.len());
            self.state = State::AfterBoundary;
            return true;
        }
        if let Some(i) = find(&self.buf, &self.delimiter) {
            self.buf.drain(..i + self.delimiter.len());
            self.state = State::AfterBoundary;
            return true;
        }
        // Keep only what could be the start of a delimiter.
        let keep = self.delimiter.len().min(self.buf.len());
        let cut = self.buf.len() - keep;
        self.buf.drain(..cut);
        false
    }

    fn after_boundary(&mut self, events: &mut Vec<Event>) -> Result<bool, MultipartError> {
        if self.buf.len() < 2 {
            return Ok(false);
        }
        if self.buf.starts_with(b"--") {
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
        let Some(end) = find(&self.buf, b"\r\n\r\n").or_else(|| {
            // A part with no headers at all starts right with CRLF.
            self.buf.starts_with(b"\r\n").then_some(0)
        }) else {
            if self.buf.len() > MAX_PART_HEADERS {
                return Err(MultipartError("part headers too large".into()));
            }
            return Ok(false);
        };
        let block = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let consumed = if end == 0 { 2 } else { end + 4 };
        self.buf.drain(..consumed);
        let mut headers = PartHeaders::default();
        for line in block.split("\r\n").filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                return Err(MultipartError(format!("bad part header `{line}`")));
            };
            let value = value.trim();
            if name.trim().eq_ignore_ascii_case("content-disposition") {
                headers.name = disposition_param(value, "name");
                headers.filename = disposition_param(value, "filename");
            } else if name.trim().eq_ignore_ascii_case("content-type") {
                headers.content_type = Some(value.to_string());
            }
        }
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

/// `name="file"` from `form-data; name="file"; filename="a b.png"`.
/// Handles quoted values with `\"` escapes and RFC 5987 `filename*=`.
fn disposition_param(value: &str, key: &str) -> Option<String> {
    let mut rest = value;
    let mut plain = None;
    while let Some(semi) = rest.find(';') {
        rest = &rest[semi + 1..];
        let trimmed = rest.trim_start();
        let Some((k, v)) = trimmed.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let (val, tail) = if let Some(q) = v.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &q[end.min(q.len())..])
        } else {
            let end = v.find(';').unwrap_or(v.len());
            (v[..end].trim().to_string(), &v[end..])
        };
        if k.eq_ignore_ascii_case(&format!("{key}*")) {
            // charset'lang'percent-encoded
            if let Some(enc) = val.splitn(3, '\'').nth(2) {
                return Some(crate::query::percent_decode(enc, false));
            }
        } else if k.eq_ignore_ascii_case(key) {
            plain = Some(val);
        }
        rest = tail;
    }
    plain
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
        assert_eq!(
            disposition_param(
                "form-data; name=\"f\"; filename*=UTF-8''%C3%A9t%C3%A9.jpg",
                "filename"
            )
            .as_deref(),
            Some("été.jpg")
        );
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
