//! The XML envelope a `Zend_Rest_Client` reads as `$result->response` and
//! `$result->status`:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <rest generator="assetgate" version="1.0"><response>…</response><status>success</status></rest>
//! ```
//!
//! Failures put `<message>` and `<code>` in `<response>` and say `failed`.

/// A small writer: elements are opened and closed explicitly, text is
/// escaped, and characters XML 1.0 forbids become U+FFFD.
#[derive(Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn text(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        self.open(name);
        escape_into(&mut self.out, &value.to_string());
        self.close(name)
    }

    /// Text already known to need no escaping (base64, hex, digits): no
    /// second pass over a megabyte of chunk.
    pub fn raw_text(&mut self, name: &str, value: &str) -> &mut Self {
        debug_assert!(!value.contains(['<', '&', '>']));
        self.open(name);
        self.out.push_str(value);
        self.close(name)
    }

    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rest generator=\"assetgate\" version=\"1.0\"><response>";

/// A success answer around `response` (the inside of `<response>`).
pub fn success(response: Xml) -> Vec<u8> {
    let body = response.into_string();
    let mut out = String::with_capacity(HEAD.len() + body.len() + 64);
    out.push_str(HEAD);
    out.push_str(&body);
    out.push_str("</response><status>success</status></rest>\n");
    out.into_bytes()
}

/// A failure answer.
pub fn failure(code: &str, message: &str) -> Vec<u8> {
    let mut x = Xml::new();
    x.text("message", message).text("code", code);
    let mut out = String::from(HEAD);
    out.push_str(&x.into_string());
    out.push_str("</response><status>failed</status></rest>\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_forbidden_characters() {
        let mut x = Xml::new();
        x.text("c", "a<b & \"c\" >\u{1}\tok");
        assert_eq!(
            x.into_string(),
            "<c>a&lt;b &amp; &quot;c&quot; &gt;\u{FFFD}\tok</c>"
        );
    }

    #[test]
    fn envelopes() {
        let mut x = Xml::new();
        x.text("process_id", "abc");
        let s = String::from_utf8(success(x)).unwrap();
        assert!(s.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rest "));
        assert!(s.contains(
            "<response><process_id>abc</process_id></response><status>success</status></rest>"
        ));
        let f = String::from_utf8(failure("bad_base64", "content <is> not base64")).unwrap();
        assert!(f.contains("<response><message>content &lt;is&gt; not base64</message><code>bad_base64</code></response><status>failed</status>"));
    }
}
