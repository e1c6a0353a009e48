//! A small XML builder over quick-xml's writer: open, close, leaf; text and attributes escaped,
//! and cleaned of the characters XML 1.0 forbids (a raw U+0001 makes the document unreadable).

use std::borrow::Cow;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

/// Whether XML 1.0 forbids `c` (outside its `Char` production: C0 controls other than tab, LF
/// and CR; U+FFFE and U+FFFF).
fn forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Whether `s` is empty once written: only whitespace and characters XML forbids (they become
/// spaces). The writers leave such a value out and the rules treat it as missing, as the official
/// validators read it.
pub(crate) fn blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || forbidden(c))
}

/// `s` with every character XML 1.0 forbids replaced by a space.
pub(crate) fn xml_text(s: &str) -> Cow<'_, str> {
    if s.chars().any(forbidden) {
        Cow::Owned(
            s.chars()
                .map(|c| if forbidden(c) { ' ' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// Writes one XML document into memory.
pub(crate) struct Xml {
    w: Writer<Vec<u8>>,
}

impl Xml {
    /// A document with its declaration, indented by two spaces.
    pub(crate) fn new() -> Self {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing into a Vec cannot fail.
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        Xml { w }
    }

    /// Opens an element.
    pub(crate) fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        let mut e = BytesStart::new(name);
        for (k, v) in attrs {
            e.push_attribute((*k, xml_text(v).as_ref()));
        }
        let _ = self.w.write_event(Event::Start(e));
    }

    /// Closes an element.
    pub(crate) fn close(&mut self, name: &str) {
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
    }

    /// An element holding text.
    pub(crate) fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.open(name, attrs);
        let _ = self
            .w
            .write_event(Event::Text(BytesText::new(&xml_text(text))));
        self.close(name);
    }

    /// An element holding text inside elements holding nothing else, `outer` outermost first
    /// (`<a><b><c>text</c></b></a>`).
    pub(crate) fn within(
        &mut self,
        outer: &[&str],
        name: &str,
        attrs: &[(&str, &str)],
        text: &str,
    ) {
        for o in outer {
            self.open(o, &[]);
        }
        self.leaf(name, attrs, text);
        for o in outer.iter().rev() {
            self.close(o);
        }
    }

    /// An element holding text, when there is some.
    pub(crate) fn opt(&mut self, name: &str, text: Option<&str>) {
        if let Some(t) = text.filter(|t| !blank(t)) {
            self.leaf(name, &[], t);
        }
    }

    /// The bytes written, with a final newline.
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut v = self.w.into_inner();
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_characters_become_spaces_and_the_rest_stays() {
        assert_eq!(xml_text("a\u{1}b\u{1F}c\u{FFFE}d\u{FFFF}"), "a b c d ");
        assert_eq!(xml_text("tab\tlf\ncr\r é€"), "tab\tlf\ncr\r é€");
        let mut x = Xml::new();
        x.leaf("n", &[("a", "x\u{2}y")], "t\u{1}<&>");
        let out = String::from_utf8(x.finish()).unwrap();
        assert!(out.contains(r#"<n a="x y">t &lt;&amp;&gt;</n>"#), "{out}");
    }
}
