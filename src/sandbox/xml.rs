//! A small XML tree, read with quick-xml's namespace-aware reader: enough for SOAP envelopes and Autotask's
//! query XML. quick-xml reports entity and character references apart from text, so they are resolved here
//! (only XML's five predefined entities exist; a DTD is refused). Errors say where, never what: the text of a
//! request may hold a password.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};
use std::borrow::Cow;

#[derive(Debug, Default)]
pub(crate) struct Element {
    /// The namespace the element's name resolves to.
    pub(crate) ns: Option<String>,
    /// The local name (without prefix).
    pub(crate) name: String,
    attrs: Vec<Attr>,
    pub(crate) children: Vec<Element>,
    /// The element's own text (not its children's), references resolved.
    text: String,
}

#[derive(Debug)]
struct Attr {
    ns: Option<String>,
    name: String,
    value: String,
}

fn namespace(resolved: ResolveResult<'_>) -> Result<Option<String>, String> {
    match resolved {
        ResolveResult::Bound(ns) => Ok(Some(ns.into_inner().to_string())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(_) => {
            Err("an element or attribute uses an undeclared namespace prefix".to_string())
        }
    }
}

/// Parses a whole document into its root element.
pub(crate) fn parse(text: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let malformed = |at: u64| format!("the XML is not well-formed (near byte {at})");
    loop {
        let position = reader.buffer_position();
        let (resolved, event) = reader.read_resolved_event().map_err(|_| malformed(position))?;
        let ns = namespace(resolved)?;
        let (element, open) = match event {
            Event::Start(start) => (start, true),
            Event::Empty(start) => (start, false),
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| malformed(position))?;
                attach(&mut stack, &mut root, element)?;
                continue;
            }
            Event::Text(text) => {
                append(&mut stack, &text.xml10_content())?;
                continue;
            }
            Event::CData(data) => {
                append(&mut stack, &data.xml10_content())?;
                continue;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(|_| malformed(position))? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&reference)
                        .ok_or_else(|| malformed(position))?
                        .to_string(),
                };
                append(&mut stack, &resolved)?;
                continue;
            }
            Event::DocType(_) => return Err("a DTD is not allowed".to_string()),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
        };
        let mut attrs = Vec::new();
        for attr in element.attributes() {
            let attr = attr.map_err(|_| malformed(position))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (resolved, local) = reader.resolver().resolve_attribute(attr.key);
            let ns = namespace(resolved)?;
            let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|_| malformed(position))?;
            attrs.push(Attr { ns, name: local.into_inner().to_string(), value: value.into_owned() });
        }
        let node = Element {
            ns,
            name: element.local_name().into_inner().to_string(),
            attrs,
            children: Vec::new(),
            text: String::new(),
        };
        if open {
            stack.push(node);
        } else {
            attach(&mut stack, &mut root, node)?;
        }
    }
    if !stack.is_empty() {
        return Err("the XML ends inside an element".to_string());
    }
    root.ok_or_else(|| "the XML has no root element".to_string())
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err("the XML has more than one root element".to_string()),
    }
    Ok(())
}

fn append(stack: &mut [Element], text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(element) => element.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err("the XML has text outside its root element".to_string()),
    }
    Ok(())
}

impl Element {
    /// Whether this element is `name` in namespace `ns`.
    pub(crate) fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    /// The first child `name` in namespace `ns`.
    pub(crate) fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// The first child named `name` in any namespace, without regard to case (for Autotask's query XML).
    pub(crate) fn child_ci(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn attr(&self, ns: Option<&str>, name: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.ns.as_deref() == ns && a.name == name).map(|a| a.value.as_str())
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

/// Escapes text for element content or attribute values (`<`, `>`, `&`, `'`, `"`).
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn references_are_resolved_in_text_and_attributes() {
        let root = parse(r#"<a xmlns="urn:x" k="&lt;&amp;&quot;"><b>x&lt;&amp;&quot;&#65;&#x42;y</b></a>"#)
            .expect("parses");
        assert_eq!(root.attr(None, "k"), Some("<&\""));
        let b = root.child("urn:x", "b").expect("child in the default namespace");
        assert_eq!(b.text(), "x<&\"ABy");
    }

    #[test]
    fn unknown_entities_and_dtds_are_refused_without_echoing_content() {
        let error = parse("<a>sec&ret;</a>").expect_err("unknown entity");
        assert!(!error.contains("ret"), "{error}");
        assert!(parse("<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>").is_err());
    }
}
