//! The XML envelope a `Zend_Rest_Client` reads as `$result->response` and
//! `$result->status`:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <rest generator="assetgate" version="1.0"><response>…</response><status>success</status></rest>
//! ```
//!
//! Failures put `<message>` and `<code>` in `<response>` and say `failed`.

/// A small writer of the inside of `<response>`: elements are opened and
/// closed explicitly, text is escaped, and characters XML 1.0 forbids
/// become U+FFFD. It writes into the answer's own buffer, after the
/// envelope's head, so [`success`] adds the tail without a copy, and a
/// streamed answer starts with [`Xml::into_head`].
pub struct Xml {
    out: String,
}

impl Default for Xml {
    fn default() -> Self {
        Xml {
            out: String::from(HEAD),
        }
    }
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

    /// Bytes written inside `<response>`.
    pub fn len(&self) -> usize {
        self.out.len() - HEAD.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What is inside `<response>`.
    pub fn into_string(mut self) -> String {
        self.out.split_off(HEAD.len())
    }

    /// The answer so far, envelope head included: the start of a success
    /// answer whose rest follows ([`SUCCESS_TAIL`] last).
    pub fn into_head(self) -> Vec<u8> {
        self.out.into_bytes()
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
/// What ends a success answer.
pub const SUCCESS_TAIL: &str = "</response><status>success</status></rest>\n";

/// A success answer around `response` (the inside of `<response>`).
pub fn success(response: Xml) -> Vec<u8> {
    let mut out = response.out;
    out.push_str(SUCCESS_TAIL);
    out.into_bytes()
}

/// A failure answer.
pub fn failure(code: &str, message: &str) -> Vec<u8> {
    let mut x = Xml::new();
    x.text("message", message).text("code", code);
    let mut out = x.out;
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
        let mut x = Xml::new();
        x.open("file").raw_text("id", "7");
        let mut streamed = x.into_head();
        streamed.extend_from_slice(b"</file>");
        streamed.extend_from_slice(SUCCESS_TAIL.as_bytes());
        let mut whole = Xml::new();
        whole.open("file").raw_text("id", "7").close("file");
        assert_eq!(
            streamed,
            success(whole),
            "a head and its tail make the answer"
        );
        let f = String::from_utf8(failure("bad_base64", "content <is> not base64")).unwrap();
        assert!(f.contains("<response><message>content &lt;is&gt; not base64</message><code>bad_base64</code></response><status>failed</status>"));
    }
}
