//! The envelopes rotavault sends: `query` of a `Resource` by user name, `update` of the whole queried entity with
//! the new `Password` in its WSDL place, and `getZoneInfo`. The one that carries a password is built in a
//! [`Zeroizing`] string sized up front, so it never reallocates and is wiped when dropped.

use super::response::Entity;
use crate::secret::SecretValue;
use crate::target::autotask::xml::{Element, escaped_len_bound, push_escaped};
use zeroize::Zeroizing;

pub(crate) const ATWS: &str = "http://autotask.net/ATWS/v1_6/";
pub(crate) const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub(crate) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub(crate) const XSD: &str = "http://www.w3.org/2001/XMLSchema";

fn open_envelope(out: &mut String, integration_code: Option<&str>) {
    out.push_str(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    out.push_str(&format!(r#"<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:xsi="{XSI}" xmlns:xsd="{XSD}">"#));
    if let Some(code) = integration_code {
        out.push_str(&format!(r#"<soap:Header><AutotaskIntegrations xmlns="{ATWS}"><IntegrationCode>"#));
        push_escaped(out, code);
        out.push_str("</IntegrationCode></AutotaskIntegrations></soap:Header>");
    }
    out.push_str("<soap:Body>");
}

fn close_envelope(out: &mut String) {
    out.push_str("</soap:Body></soap:Envelope>");
}

/// `query` for the `Resource` whose `UserName` equals `user`. The query XML is itself escaped into `<sXML>`, so
/// the user name is escaped twice.
pub(crate) fn query_envelope(integration_code: &str, user: &str) -> Zeroizing<String> {
    let mut query =
        String::from("<queryxml><entity>Resource</entity><query><field>UserName<expression op=\"equals\">");
    push_escaped(&mut query, user);
    query.push_str("</expression></field></query></queryxml>");
    let mut out = Zeroizing::new(String::with_capacity(1024 + escaped_len_bound(&query)));
    open_envelope(&mut out, Some(integration_code));
    out.push_str(&format!(r#"<query xmlns="{ATWS}"><sXML>"#));
    push_escaped(&mut out, &query);
    out.push_str("</sXML></query>");
    close_envelope(&mut out);
    out
}

/// The `Resource` elements that the SOAP 1.6 WSDL's sequence puts after `Password` (it follows `TimeFormat`).
const AFTER_PASSWORD: [&str; 7] = [
    "PayrollType",
    "NumberFormat",
    "AccountingReferenceID",
    "InternalCost",
    "HireDate",
    "SurveyResourceRating",
    "LicenseType",
];

/// Where the new `Password` goes among the queried fields: in the slot of the (masked) one the query returned,
/// else before the first field the WSDL sequence puts after it. A schema-bound reader drops an element out of
/// sequence and still answers success, so a `Password` after `LicenseType` could be lost without a word.
fn password_slot(fields: &[Element]) -> usize {
    let is = |f: &Element, name: &str| f.local_name().eq_ignore_ascii_case(name);
    fields
        .iter()
        .position(|f| is(f, "Password"))
        .or_else(|| fields.iter().position(|f| AFTER_PASSWORD.iter().any(|name| is(f, name))))
        .unwrap_or(fields.len())
}

/// `update` of `entity` with every field as queried and the new `Password` in its WSDL place. The `Password` the
/// query returned (masked `******`, empty or nil) is replaced, never sent back, so the field is sent once, with
/// the new value.
pub(crate) fn update_envelope(
    integration_code: &str,
    entity: &Entity,
    password: &SecretValue,
) -> Zeroizing<String> {
    // The fields hold no secret: write them first, then size the zeroizing buffer so it never reallocates.
    let slot = password_slot(&entity.fields);
    let (mut before, mut after) = (String::new(), String::new());
    for (index, field) in entity.fields.iter().enumerate() {
        if field.local_name().eq_ignore_ascii_case("Password") {
            continue;
        }
        field.write(if index < slot { &mut before } else { &mut after });
    }
    let mut declarations = String::new();
    for (prefix, uri) in &entity.namespaces {
        declarations.push_str(&format!(" xmlns:{prefix}=\""));
        push_escaped(&mut declarations, uri);
        declarations.push('"');
    }
    let capacity = 1024
        + escaped_len_bound(integration_code)
        + declarations.len()
        + before.len()
        + after.len()
        + escaped_len_bound(password.expose());
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    open_envelope(&mut out, Some(integration_code));
    out.push_str(&format!(r#"<update xmlns="{ATWS}"><Entities><Entity xsi:type="Resource""#));
    out.push_str(&declarations);
    out.push('>');
    out.push_str(&before);
    out.push_str("<Password>");
    push_escaped(&mut out, password.expose());
    out.push_str("</Password>");
    out.push_str(&after);
    out.push_str("</Entity></Entities></update>");
    close_envelope(&mut out);
    debug_assert!(out.len() <= capacity, "the update envelope outgrew its buffer");
    out
}

/// `getZoneInfo` (no authentication, no integration header).
pub(crate) fn zone_info_envelope(user: &str) -> String {
    let mut out = String::with_capacity(512);
    open_envelope(&mut out, None);
    out.push_str(&format!(r#"<getZoneInfo xmlns="{ATWS}"><UserName>"#));
    push_escaped(&mut out, user);
    out.push_str("</UserName></getZoneInfo>");
    close_envelope(&mut out);
    out
}
