//! Just enough XML for SOAP: a small element tree read with `quick-xml`, and escaping written straight into the
//! caller's buffer.
//!
//! The tree keeps every element of a response as written (qualified name, attributes, text, children, in
//! document order), because `update` must send the entity back exactly as `query` returned it: any field left out
//! is cleared by Autotask. Escaping appends to the caller's `String` instead of returning a new one, so that a
//! password is copied only into the zeroizing request body and nowhere else.

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

/// Deeper than any SOAP answer Autotask gives; a bound so that a hostile document cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// One element: its name as written (`soap:Body`, `Active`), attributes in order, text, and child elements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The name without its namespace prefix.
    pub fn local_name(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.local_name() == local)
    }

    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.local_name() == local)
    }

    /// The first element named `local` in document order, this one included.
    pub fn find(&self, local: &str) -> Option<&Element> {
        if self.local_name() == local {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(local))
    }

    #[cfg(test)]
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Writes the element back as XML, attributes and text escaped. Whitespace between child elements is layout,
    /// not content, and is left out.
    pub fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (key, value) in &self.attributes {
            out.push(' ');
            out.push_str(key);
            out.push_str("=\"");
            push_escaped(out, value);
            out.push('"');
        }
        let text =
            if self.children.is_empty() || !self.text.trim().is_empty() { self.text.as_str() } else { "" };
        if text.is_empty() && self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        push_escaped(out, text);
        for child in &self.children {
            child.write(out);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Appends `text` escaped for element content and for double- or single-quoted attribute values.
pub(super) fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A literal CR would be read back as LF (end-of-line normalisation).
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// The most `text` can grow by escaping: every character becoming `&quot;`.
pub(super) fn escaped_len_bound(text: &str) -> usize {
    text.len() * 6
}

/// Parses a whole document into its root element. Comments, processing instructions and the declaration are
/// skipped; entity references are resolved (the five predefined ones and character references only).
pub(super) fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("XML nested deeper than {MAX_DEPTH} elements"));
                }
                stack.push(element(&start)?);
            }
            Event::Empty(start) => attach(&mut stack, &mut root, element(&start)?)?,
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches the open one.
                let done = stack.pop().ok_or("an end tag without a start tag")?;
                attach(&mut stack, &mut root, done)?;
            }
            Event::Text(text) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = reference.xml10_content();
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown XML entity `&{name};`"))?
                            .to_owned()
                    }
                    Err(e) => return Err(format!("bad character reference: {e}")),
                };
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("the XML document ends inside an element".into());
    }
    root.ok_or_else(|| "the XML document has no element".into())
}

fn element(start: &BytesStart<'_>) -> Result<Element, String> {
    let name = start.name().0.to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| format!("a bad attribute on <{name}>: {e}"))?;
        let key = attribute.key.0;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| format!("a bad attribute value on <{name}>: {e}"))?;
        attributes.push((key.to_owned(), value.into_owned()));
    }
    Ok(Element { name, attributes, text: String::new(), children: Vec::new() })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, done: Element) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(done),
        None if root.is_none() => *root = Some(done),
        None => return Err("the XML document has more than one root element".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_cr() {
        let mut out = String::new();
        push_escaped(&mut out, "a<b>&\"c'\r");
        assert_eq!(out, "a&lt;b&gt;&amp;&quot;c&apos;&#13;");
        assert!(out.len() <= escaped_len_bound("a<b>&\"c'\r"));
    }

    #[test]
    fn parse_resolves_references_and_keeps_order_and_attributes() {
        let doc = r#"<?xml version="1.0"?><a xmlns:x="urn:x"><!-- c --><b x:t="q&quot;1">1 &lt; 2 &amp; &#65;</b>
            <c/><b>two</b></a>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "a");
        let names: Vec<_> = root.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "b"]);
        assert_eq!(root.children[0].text, "1 < 2 & A");
        assert_eq!(root.children[0].attribute("x:t"), Some("q\"1"));
        assert_eq!(root.children_named("b").count(), 2);
    }

    #[test]
    fn write_round_trips_through_parse() {
        let doc = r#"<E t="a&amp;b"><F>x &lt;&amp;&gt; "y" 'z'</F><G/><H><I>1</I></H></E>"#;
        let root = parse(doc).unwrap();
        let mut out = String::new();
        root.write(&mut out);
        assert_eq!(parse(&out).unwrap(), root);
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("<a>&bogus;</a>").is_err());
        assert!(parse("").is_err());
    }
}
