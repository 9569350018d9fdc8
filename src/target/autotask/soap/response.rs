//! Reading Autotask's SOAP answers: the `ATWSResponse` of `query` and `update` (return code, errors, entities with
//! every field as returned and the namespace prefixes their attributes use), faults, and `getZoneInfo`.

use super::envelope::{SOAP_ENV, XSD, XSI};
use crate::secret::redact::Redactor;
use crate::target::autotask::answer::EXCERPT;
use crate::target::autotask::xml::{Element, parse};

/// An entity as `query` returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entity {
    /// Every field element, in the order returned, unchanged.
    pub fields: Vec<Element>,
    /// Namespace prefixes declared on the way down to the entity (beyond soap, xsi and xsd), so that a field's
    /// `xsi:type="q1:string"` still means the same when sent back.
    pub namespaces: Vec<(String, String)>,
}

impl Entity {
    /// A field's text by name, without regard to case.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|f| f.local_name().eq_ignore_ascii_case(name)).map(|f| f.text.as_str())
    }
}

/// `queryResult`, `updateResult`: an `ATWSResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub return_code: i64,
    pub errors: Vec<String>,
    pub entities: Vec<Entity>,
}

/// `getZoneInfo`'s answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ZoneInfo {
    pub url: String,
    pub error_code: i64,
}

fn body_of(envelope: &Element) -> Result<&Element, String> {
    if envelope.local_name() != "Envelope" {
        return Err(format!("the answer is <{}>, not a SOAP envelope", envelope.name));
    }
    envelope.child("Body").ok_or_else(|| "the SOAP envelope has no Body".into())
}

/// The fault text of a SOAP fault, if the document is one (SOAP 1.1 `faultstring`, or 1.2 `Reason/Text`),
/// redacted and cut short.
pub(crate) fn parse_fault(xml: &str, redactor: &Redactor) -> Option<String> {
    let root = parse(xml).ok()?;
    let fault = root.find("Fault")?;
    let text = fault
        .child("faultstring")
        .map(|f| f.text.clone())
        .or_else(|| fault.find("Reason").and_then(|r| r.find("Text")).map(|t| t.text.clone()))
        .unwrap_or_default();
    Some(redactor.excerpt(&text, EXCERPT))
}

/// Reads `{operation}Response/{operation}Result`: `ReturnCode`, `Errors/ATWSError/Message` and the entities.
/// Error texts, and the parser's own complaint (which may quote the document), pass through `redactor`.
pub(crate) fn parse_response(xml: &str, operation: &str, redactor: &Redactor) -> Result<Response, String> {
    let root = parse(xml).map_err(|why| redactor.excerpt(&why, EXCERPT))?;
    let body = body_of(&root)?;
    let response_name = format!("{operation}Response");
    let Some(response) = body.child(&response_name) else {
        return match body.child("Fault") {
            Some(_) => Err(format!("SOAP fault: {}", parse_fault(xml, redactor).unwrap_or_default())),
            None => Err(format!("the SOAP Body has no {response_name}")),
        };
    };
    let result = response
        .child(&format!("{operation}Result"))
        .ok_or_else(|| format!("{response_name} has no {operation}Result"))?;
    let return_code = result
        .child("ReturnCode")
        .and_then(|c| c.text.trim().parse::<i64>().ok())
        .ok_or_else(|| format!("{operation}Result has no numeric ReturnCode"))?;
    let errors = result
        .child("Errors")
        .map(|errors| {
            errors
                .children_named("ATWSError")
                .map(|e| {
                    let message = e.child("Message").map(|m| m.text.as_str()).unwrap_or("(no message)");
                    redactor.excerpt(message, EXCERPT)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut namespaces = Vec::new();
    for element in [&root, body, response, result] {
        collect_namespaces(element, &mut namespaces);
    }
    let entities = match result.child("EntityResults") {
        Some(results) => {
            collect_namespaces(results, &mut namespaces);
            results
                .children_named("Entity")
                .map(|entity| {
                    let mut namespaces = namespaces.clone();
                    collect_namespaces(entity, &mut namespaces);
                    Entity { fields: entity.children.clone(), namespaces }
                })
                .collect()
        }
        None => Vec::new(),
    };
    Ok(Response { return_code, errors, entities })
}

/// `xmlns:p` declarations of `element`, except the three the request declares itself; a later (inner) one
/// replaces an earlier one of the same prefix.
fn collect_namespaces(element: &Element, into: &mut Vec<(String, String)>) {
    for (key, uri) in &element.attributes {
        let Some(prefix) = key.strip_prefix("xmlns:") else { continue };
        let ours = matches!((prefix, uri.as_str()), ("soap", SOAP_ENV) | ("xsi", XSI) | ("xsd", XSD));
        into.retain(|(p, _)| p != prefix);
        if !ours {
            into.push((prefix.to_owned(), uri.clone()));
        }
    }
}

/// Reads `getZoneInfoResponse/getZoneInfoResult`.
pub(crate) fn parse_zone_info(xml: &str) -> Result<ZoneInfo, String> {
    let root = parse(xml)?;
    let result = body_of(&root)?
        .child("getZoneInfoResponse")
        .and_then(|r| r.child("getZoneInfoResult"))
        .ok_or("the answer has no getZoneInfoResponse/getZoneInfoResult")?;
    let error_code = result
        .child("ErrorCode")
        .and_then(|c| c.text.trim().parse::<i64>().ok())
        .ok_or("getZoneInfoResult has no numeric ErrorCode")?;
    let url = result.child("URL").map(|u| u.text.trim().to_owned()).unwrap_or_default();
    Ok(ZoneInfo { url, error_code })
}
