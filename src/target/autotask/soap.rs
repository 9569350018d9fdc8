//! The SOAP 1.6 calls: `query` and `update` of the `Resource` entity (the only documented way to set an API
//! user's password), and `getZoneInfo` for the connect checks.
//!
//! `update` clears every writable field it is not sent, so the apply sends back **the whole entity exactly as
//! `query` returned it** (every element, in order, with its attributes, and any namespace prefix their attributes
//! use) with `<Password>` in its place in the WSDL sequence (a strict reader drops it anywhere else). The envelope
//! that carries the password is built in a [`Zeroizing`] string sized up front, so it never reallocates and is
//! wiped when dropped.
//!
//! Outcomes of `update`, and why: HTTP 200 with `ReturnCode` ≥ 0 and the resource's id in `EntityResults` is done
//! (the same without the id proves nothing: `Unknown`); `ReturnCode -1` is a refusal that
//! changed nothing (a password rule → `Rejected`, a missing permission → `Invalid`); a 401 or an authentication
//! fault happens before anything changes; but an answer lost after sending, an unreadable 200 or an unexplained
//! 5xx may hide a done update, so it is `Unknown` and recovery asks Autotask which password it now accepts.

use super::KIND;
use super::answer::{CallFailure, EXCERPT, Refusal, classify, is_throttle_text};
use super::payload::Credential;
use super::tenant::{
    Attempt, AutotaskTenant, Endpoint, Failure, account_key, basic_auth, invalid, safe_failure,
};
use super::xml::{Element, escaped_len_bound, parse, push_escaped};
use crate::secret::SecretValue;
use crate::secret::redact::Redactor;
use crate::target::TargetError;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use zeroize::Zeroizing;

const ATWS: &str = "http://autotask.net/ATWS/v1_6/";
const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const XSD: &str = "http://www.w3.org/2001/XMLSchema";

/// An entity as `query` returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entity {
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
pub(super) struct Response {
    pub return_code: i64,
    pub errors: Vec<String>,
    pub entities: Vec<Entity>,
}

/// `getZoneInfo`'s answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ZoneInfo {
    pub url: String,
    pub error_code: i64,
}

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
pub(super) fn query_envelope(integration_code: &str, user: &str) -> Zeroizing<String> {
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
pub(super) fn update_envelope(
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
pub(super) fn zone_info_envelope(user: &str) -> String {
    let mut out = String::with_capacity(512);
    open_envelope(&mut out, None);
    out.push_str(&format!(r#"<getZoneInfo xmlns="{ATWS}"><UserName>"#));
    push_escaped(&mut out, user);
    out.push_str("</UserName></getZoneInfo>");
    close_envelope(&mut out);
    out
}

fn body_of(envelope: &Element) -> Result<&Element, String> {
    if envelope.local_name() != "Envelope" {
        return Err(format!("the answer is <{}>, not a SOAP envelope", envelope.name));
    }
    envelope.child("Body").ok_or_else(|| "the SOAP envelope has no Body".into())
}

/// The fault text of a SOAP fault, if the document is one (SOAP 1.1 `faultstring`, or 1.2 `Reason/Text`),
/// redacted and cut short.
pub(super) fn parse_fault(xml: &str, redactor: &Redactor) -> Option<String> {
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
pub(super) fn parse_response(xml: &str, operation: &str, redactor: &Redactor) -> Result<Response, String> {
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
pub(super) fn parse_zone_info(xml: &str) -> Result<ZoneInfo, String> {
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

/// A refusal text that names a missing right rather than a bad value.
fn is_permission_text(lower: &str) -> bool {
    [
        "permission",
        "authoriz",
        "administrator",
        "security level",
        "access denied",
        "privilege",
        "insufficient",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

fn headers(admin: &Credential, operation: &str) -> Result<HeaderMap, TargetError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
    let action = HeaderValue::from_str(&format!("\"{ATWS}{operation}\""))
        .map_err(|_| invalid("a SOAP action is not a header value".into()))?;
    headers.insert(HeaderName::from_static("soapaction"), action);
    headers.insert(reqwest::header::AUTHORIZATION, basic_auth(&admin.username, admin.secret.expose())?);
    Ok(headers)
}

/// One authenticated SOAP call as the admin. `changes`: the call changes something at Autotask (`update`), so an
/// answer lost after sending is `Unknown`, never retried. `sent`: the secrets the envelope carries, which (with
/// the admin's, inside the Basic-auth header) are redacted from every text of the answer.
async fn call(
    tenant: &AutotaskTenant,
    admin: &Credential,
    operation: &str,
    envelope: &Zeroizing<String>,
    changes: bool,
    sent: &[&SecretValue],
) -> Result<Response, CallFailure> {
    let what = format!("SOAP {operation}");
    let secrets: Vec<&SecretValue> = std::iter::once(&admin.secret).chain(sent.iter().copied()).collect();
    let redactor = Redactor::new(&secrets);
    let call = Call {
        tenant,
        admin,
        headers: headers(admin, operation)?,
        operation,
        envelope,
        changes,
        what: &what,
        redactor: &redactor,
    };
    let mut reresolved = false;
    let mut patience = tenant.patience(&what);
    loop {
        let attempt = call.attempt(&mut reresolved).await;
        if let Some(response) = patience.settle(attempt).await? {
            return Ok(response);
        }
    }
}

struct Call<'a> {
    tenant: &'a AutotaskTenant,
    admin: &'a Credential,
    headers: HeaderMap,
    operation: &'a str,
    envelope: &'a Zeroizing<String>,
    changes: bool,
    what: &'a str,
    redactor: &'a Redactor,
}

impl Call<'_> {
    fn unknown(&self, detail: String) -> CallFailure {
        CallFailure::Failed(TargetError::Unknown { target: KIND, detail })
    }

    async fn attempt(&self, reresolved: &mut bool) -> Attempt<Response, CallFailure> {
        let (tenant, user, what) = (self.tenant, self.admin.username.as_str(), self.what);
        let zone = match tenant.zone(user).await {
            Ok(zone) => zone,
            Err(e) => return Attempt::Stop(e.into()),
        };
        // reqwest takes its own copy of the body; ours is wiped when the caller drops `envelope`.
        let request = tenant
            .http()
            .post(zone.soap)
            .headers(self.headers.clone())
            .body(self.envelope.as_bytes().to_vec());
        let login = account_key(user);
        let answer = match tenant.exchange(Some(Endpoint::Soap), what, request, Some(&login)).await {
            Ok(answer) => answer,
            Err(Failure::NotSent(detail)) => {
                if !*reresolved {
                    *reresolved = true;
                    tenant.forget_zone(user);
                }
                return Attempt::Again { detail, retry_after: None, at_once: false };
            }
            Err(Failure::Lost(detail)) if self.changes => return Attempt::Stop(self.unknown(detail)),
            Err(failure) => return safe_failure(failure, what),
        };
        if answer.status == 200 {
            return match parse_response(&answer.body, self.operation, self.redactor) {
                Ok(response)
                    if response.return_code < 0
                        && response.errors.iter().any(|e| is_throttle_text(&e.to_ascii_lowercase())) =>
                {
                    Attempt::after(&Refusal::Throttled {
                        retry_after: None,
                        detail: response.errors.join("; "),
                    })
                }
                Ok(response) => Attempt::Done(response),
                Err(why) if self.changes => Attempt::Stop(
                    self.unknown(format!("{what}: HTTP 200 with an answer that cannot be read: {why}")),
                ),
                Err(why) => Attempt::Stop(
                    invalid(format!("{what}: HTTP 200 with an unreadable answer: {why}")).into(),
                ),
            };
        }
        let messages: Vec<String> = match parse_fault(&answer.body, self.redactor) {
            Some(fault) => vec![fault],
            None if answer.body.trim().is_empty() => Vec::new(),
            None => vec![self.redactor.excerpt(&answer.body, EXCERPT)],
        };
        match classify(answer.status, answer.retry_after, &messages) {
            refusal @ Refusal::Throttled { .. } => Attempt::after(&refusal),
            // An unexplained 5xx: the zone may have moved. For update it may also hide a done change.
            refusal @ Refusal::Server { .. } if self.changes => {
                tenant.forget_zone(user);
                Attempt::Stop(self.unknown(format!("{what}: {refusal}")))
            }
            refusal @ (Refusal::Server { .. } | Refusal::UnknownUser) if !*reresolved => {
                *reresolved = true;
                tenant.forget_zone(user);
                Attempt::Again { detail: refusal.to_string(), retry_after: None, at_once: true }
            }
            refusal @ Refusal::Server { .. } => Attempt::after(&refusal),
            refusal => Attempt::Stop(CallFailure::Refused(refusal)),
        }
    }
}

/// The admin's view of the resource named `user`: exactly one, or `Invalid`.
pub(super) async fn query_resource(
    tenant: &AutotaskTenant,
    admin: &Credential,
    user: &str,
) -> Result<Entity, CallFailure> {
    let envelope = query_envelope(&admin.integration_code, user);
    let response = call(tenant, admin, "query", &envelope, false, &[]).await?;
    if response.return_code < 0 {
        return Err(invalid(format!(
            "SOAP query of resource `{user}` refused: {}",
            response.errors.join("; ")
        ))
        .into());
    }
    let mut matching = response
        .entities
        .into_iter()
        .filter(|e| e.field("UserName").is_some_and(|name| name.trim().eq_ignore_ascii_case(user)));
    match (matching.next(), matching.next()) {
        (Some(entity), None) if entity.field("id").is_some_and(|id| !id.trim().is_empty()) => Ok(entity),
        (Some(_), None) => {
            Err(invalid(format!("SOAP query of resource `{user}` returned it without an id")).into())
        }
        (None, _) => Err(invalid(format!(
            "Autotask has no resource with UserName `{user}` (as the admin API user sees it)"
        ))
        .into()),
        (Some(_), Some(_)) => Err(invalid(format!(
            "Autotask has several resources with UserName `{user}`; rotavault will not guess"
        ))
        .into()),
    }
}

/// Sends `entity` back with `password`. See the module documentation for what each outcome means.
pub(super) async fn update_password(
    tenant: &AutotaskTenant,
    admin: &Credential,
    entity: &Entity,
    password: &SecretValue,
) -> Result<(), CallFailure> {
    let envelope = update_envelope(&admin.integration_code, entity, password);
    let response = call(tenant, admin, "update", &envelope, true, &[password]).await?;
    drop(envelope);
    if response.return_code >= 0 {
        return applied(entity, &response);
    }
    // Already redacted of the password (and the admin's secret) by the call.
    let reason = response.errors.join("; ");
    let reason = if reason.is_empty() { "ReturnCode -1 without a message".to_owned() } else { reason };
    if is_permission_text(&reason.to_ascii_lowercase()) {
        return Err(invalid(format!(
            "Autotask refused the update as `{}`: {reason}. Resource update() needs an admin API user with \
             System Administrator level (the \"API User (system) (API-only)\" security level)",
            admin.username
        ))
        .into());
    }
    Err(TargetError::Rejected { target: KIND, reason }.into())
}

/// An update that answered success counts as applied only when its `EntityResults` holds the entity it sent
/// (Autotask's docs: "use the returned entity only to read its id"). A `ReturnCode` without it proves nothing
/// either way, so the outcome is `Unknown` and recovery asks Autotask which password it accepts.
fn applied(entity: &Entity, response: &Response) -> Result<(), CallFailure> {
    // `0042` and `42` are the same id to Autotask.
    let id = |e: &Entity| {
        e.field("id")
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| id.parse::<i64>().map_or_else(|_| id.to_owned(), |n| n.to_string()))
    };
    let sent = id(entity).unwrap_or_else(|| "(none)".to_owned());
    if response.entities.iter().any(|e| id(e).as_ref() == Some(&sent)) {
        return Ok(());
    }
    let returned: Vec<String> =
        response.entities.iter().map(|e| id(e).unwrap_or_else(|| "(none)".to_owned())).collect();
    Err(CallFailure::Failed(TargetError::Unknown {
        target: KIND,
        detail: format!(
            "SOAP update answered ReturnCode {} without resource {sent} in EntityResults (ids returned: {}): \
             whether the password changed is not known",
            response.return_code,
            if returned.is_empty() { "none".to_owned() } else { returned.join(", ") }
        ),
    }))
}

/// `getZoneInfo` at `soap_url`: unauthenticated, counted by neither budget nor thread limit.
pub(super) async fn zone_info(
    tenant: &AutotaskTenant,
    soap_url: &str,
    user: &str,
) -> Result<ZoneInfo, TargetError> {
    let what = "SOAP getZoneInfo";
    let envelope = zone_info_envelope(user);
    let mut patience = tenant.patience(what);
    loop {
        let attempt = zone_info_attempt(tenant, soap_url, &envelope, what).await;
        if let Some(info) = patience.settle(attempt).await? {
            return Ok(info);
        }
    }
}

async fn zone_info_attempt(
    tenant: &AutotaskTenant,
    soap_url: &str,
    envelope: &str,
    what: &str,
) -> Attempt<ZoneInfo, TargetError> {
    let request = tenant
        .http()
        .post(soap_url)
        .header(CONTENT_TYPE, "text/xml; charset=utf-8")
        .header("SOAPAction", format!("\"{ATWS}getZoneInfo\""))
        .body(envelope.to_owned());
    match tenant.exchange(None, what, request, None).await {
        Ok(answer) if answer.status == 200 => match parse_zone_info(&answer.body) {
            Ok(info) => Attempt::Done(info),
            Err(why) => Attempt::Stop(invalid(format!("{what}: {why}"))),
        },
        Ok(answer) => {
            // getZoneInfo is unauthenticated: it sends no secret that could come back.
            let messages: Vec<String> = parse_fault(&answer.body, &Redactor::none()).into_iter().collect();
            match classify(answer.status, answer.retry_after, &messages) {
                refusal if refusal.is_temporary() => Attempt::after(&refusal),
                refusal => Attempt::Stop(invalid(format!("{what}: {refusal}"))),
            }
        }
        Err(failure) => safe_failure(failure, what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::autotask::tests::QUERY_ANSWER;

    fn queried() -> Entity {
        let response = parse_response(QUERY_ANSWER, "query", &Redactor::none()).unwrap();
        assert_eq!(response.return_code, 1);
        assert_eq!(response.entities.len(), 1);
        response.entities.into_iter().next().unwrap()
    }

    #[test]
    fn a_query_answer_becomes_the_ordered_field_list() {
        let entity = queried();
        let names: Vec<&str> = entity.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "UserDefinedFields",
                "Active",
                "UserName",
                "FirstName",
                "LastName",
                "Email",
                "Title",
                "OfficePhone",
                "LicenseType",
                "UserType",
                "ResourceType",
                "DefaultServiceDeskRoleID",
                "Password"
            ]
        );
        assert_eq!(entity.field("id"), Some("29682885"));
        assert_eq!(entity.field("lastname"), Some("Optimize <365>"));
        assert_eq!(entity.field("Title"), Some(r#"R&D "lead" 'x'"#));
        assert_eq!(entity.namespaces, [("q1".to_owned(), "urn:example:types".to_owned())]);
    }

    #[test]
    fn the_update_sends_every_queried_field_unchanged_plus_the_password_escaped() {
        let entity = queried();
        let password = SecretValue::new(r#"p<&"'>1#Ab"#);
        let envelope = update_envelope("CODE&<1>", &entity, &password);
        assert!(envelope.contains("&lt;&amp;&quot;&apos;&gt;1#Ab"), "the password is escaped");
        assert!(!envelope.contains(password.expose()), "the raw password never appears");
        assert!(envelope.contains("<IntegrationCode>CODE&amp;&lt;1&gt;</IntegrationCode>"));

        let root = parse(&envelope).unwrap();
        let update = root.child("Body").unwrap().child("update").unwrap();
        assert_eq!(update.attributes, [("xmlns".to_owned(), ATWS.to_owned())]);
        let sent = update.child("Entities").unwrap().child("Entity").unwrap();
        assert_eq!(sent.attributes[0], ("xsi:type".to_owned(), "Resource".to_owned()));
        assert!(sent.attributes.contains(&("xmlns:q1".to_owned(), "urn:example:types".to_owned())));
        let (password_fields, fields): (Vec<_>, Vec<_>) =
            sent.children.iter().partition(|f| f.local_name() == "Password");
        let queried: Vec<&Element> = entity.fields.iter().filter(|f| f.local_name() != "Password").collect();
        assert_eq!(fields.len(), queried.len(), "every queried field is sent");
        for (sent, queried) in fields.iter().zip(&queried) {
            assert_eq!(sent.name, queried.name);
            assert_eq!(sent.attributes, queried.attributes, "{}", sent.name);
            assert_eq!(sent.children, queried.children, "{}", sent.name);
            if queried.children.is_empty() {
                assert_eq!(sent.text, queried.text, "{}", sent.name);
            }
        }
        assert_eq!(password_fields.len(), 1, "the queried Password is replaced, not repeated");
        assert_eq!(password_fields[0].text, password.expose());
        assert!(password_fields[0].attributes.is_empty(), "the query's xsi:nil is not carried over");
        let position = |list: &[Element]| list.iter().position(|f| f.local_name() == "Password");
        assert_eq!(position(&sent.children), position(&entity.fields), "in the queried Password's slot");
    }

    /// The element names of the entity an update envelope sends.
    fn sent_names(envelope: &str) -> Vec<String> {
        let root = parse(envelope).unwrap();
        let sent = root.find("Entity").unwrap();
        sent.children.iter().map(|f| f.local_name().to_owned()).collect()
    }

    /// A query answer as the real service gives it: WSDL order, `xsi:type` on each field, a masked `Password`.
    const WSDL_ORDERED: &str = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body>
        <queryResponse xmlns="http://autotask.net/ATWS/v1_6/"><queryResult><EntityResults><Entity xsi:type="Resource">
        <id xsi:type="xsd:long">42</id><UserDefinedFields/><Active xsi:type="xsd:boolean">true</Active>
        <UserName xsi:type="xsd:string">a@x</UserName><DateFormat xsi:type="xsd:string">dd/MM/yyyy</DateFormat>
        <TimeFormat xsi:type="xsd:string">HH:mm</TimeFormat><Password xsi:type="xsd:string">******</Password>
        <PayrollType xsi:type="xsd:int">1</PayrollType><NumberFormat xsi:type="xsd:string">X</NumberFormat>
        <LicenseType xsi:type="xsd:int">7</LicenseType></Entity></EntityResults>
        <EntityResultType>resource</EntityResultType><Errors/><ReturnCode>1</ReturnCode></queryResult></queryResponse>
        </soap:Body></soap:Envelope>"#;

    #[test]
    fn the_password_goes_between_time_format_and_payroll_type_replacing_the_mask() {
        let entity = parse_response(WSDL_ORDERED, "query", &Redactor::none()).unwrap().entities.remove(0);
        let password = SecretValue::new("N3w!pass-word");
        let envelope = update_envelope("CODE", &entity, &password);
        let names = sent_names(&envelope);
        let at = names.iter().position(|n| n == "Password").unwrap();
        assert_eq!(
            (names[at - 1].as_str(), names[at + 1].as_str()),
            ("TimeFormat", "PayrollType"),
            "{names:?}"
        );
        assert_eq!(names.iter().filter(|n| *n == "Password").count(), 1);
        assert!(!envelope.contains("******"), "the mask is never sent back as a password");
        assert!(envelope.contains("<Password>N3w!pass-word</Password>"));
    }

    #[test]
    fn without_a_queried_password_it_goes_before_the_first_field_that_follows_it() {
        let answer = WSDL_ORDERED.replace(r#"<Password xsi:type="xsd:string">******</Password>"#, "");
        let entity = parse_response(&answer, "query", &Redactor::none()).unwrap().entities.remove(0);
        let names = sent_names(&update_envelope("CODE", &entity, &SecretValue::new("N3w!pass-word")));
        let at = names.iter().position(|n| n == "Password").unwrap();
        assert_eq!(
            (names[at - 1].as_str(), names[at + 1].as_str()),
            ("TimeFormat", "PayrollType"),
            "{names:?}"
        );

        let only_license = answer
            .replace(r#"<PayrollType xsi:type="xsd:int">1</PayrollType>"#, "")
            .replace(r#"<NumberFormat xsi:type="xsd:string">X</NumberFormat>"#, "");
        let entity = parse_response(&only_license, "query", &Redactor::none()).unwrap().entities.remove(0);
        let names = sent_names(&update_envelope("CODE", &entity, &SecretValue::new("N3w!pass-word")));
        assert_eq!(names[names.len() - 2..], ["Password", "LicenseType"], "{names:?}");

        let none_after = answer.replace(r#"<LicenseType xsi:type="xsd:int">7</LicenseType>"#, "");
        let none_after = none_after
            .replace(r#"<PayrollType xsi:type="xsd:int">1</PayrollType>"#, "")
            .replace(r#"<NumberFormat xsi:type="xsd:string">X</NumberFormat>"#, "");
        let entity = parse_response(&none_after, "query", &Redactor::none()).unwrap().entities.remove(0);
        let names = sent_names(&update_envelope("CODE", &entity, &SecretValue::new("N3w!pass-word")));
        assert_eq!(names.last().map(String::as_str), Some("Password"), "{names:?}");
    }

    #[test]
    fn the_query_escapes_the_user_name_twice() {
        let user = r#"o'brien&<co>"@x.com"#;
        let envelope = query_envelope("CODE", user);
        let root = parse(&envelope).unwrap();
        let header = root.child("Header").unwrap().child("AutotaskIntegrations").unwrap();
        assert_eq!(header.child("IntegrationCode").unwrap().text, "CODE");
        let sxml = root.child("Body").unwrap().child("query").unwrap().child("sXML").unwrap();
        let query = parse(&sxml.text).unwrap();
        assert_eq!(query.child("entity").unwrap().text, "Resource");
        let field = query.child("query").unwrap().child("field").unwrap();
        assert_eq!(field.text.trim(), "UserName");
        let expression = field.child("expression").unwrap();
        assert_eq!(expression.attributes, [("op".to_owned(), "equals".to_owned())]);
        assert_eq!(expression.text, user);
    }

    #[test]
    fn a_refused_update_yields_its_messages() {
        let answer = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
            <updateResponse xmlns="http://autotask.net/ATWS/v1_6/"><updateResult><EntityResults/>
            <EntityResultType>resource</EntityResultType>
            <Errors><ATWSError><Message>The password must contain a special character in positions 2-6.</Message></ATWSError>
            <ATWSError><Message>Second &amp; last</Message></ATWSError></Errors>
            <ReturnCode>-1</ReturnCode></updateResult></updateResponse></soap:Body></soap:Envelope>"#;
        let response = parse_response(answer, "update", &Redactor::none()).unwrap();
        assert_eq!(response.return_code, -1);
        assert_eq!(
            response.errors,
            ["The password must contain a special character in positions 2-6.", "Second & last"]
        );
        assert!(response.entities.is_empty());
        assert!(parse_response(answer, "query", &Redactor::none()).is_err(), "the operation is checked");
    }

    #[test]
    fn get_zone_info_answers_are_read() {
        let answer = r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
            <getZoneInfoResponse xmlns="http://autotask.net/ATWS/v1_6/"><getZoneInfoResult>
            <URL>https://webservices5.autotask.net/ATServices/1.6/atws.asmx</URL><ErrorCode>0</ErrorCode>
            <DataBaseType>Sandbox</DataBaseType><CI>1</CI><WebUrl>https://ww5.autotask.net/</WebUrl>
            </getZoneInfoResult></getZoneInfoResponse></soap:Body></soap:Envelope>"#;
        assert_eq!(
            parse_zone_info(answer).unwrap(),
            ZoneInfo {
                url: "https://webservices5.autotask.net/ATServices/1.6/atws.asmx".into(),
                error_code: 0
            }
        );
        let unknown = answer
            .replace("https://webservices5.autotask.net/ATServices/1.6/atws.asmx", "")
            .replace("<ErrorCode>0</ErrorCode>", "<ErrorCode>-1</ErrorCode>");
        assert_eq!(parse_zone_info(&unknown).unwrap(), ZoneInfo { url: String::new(), error_code: -1 });
        let envelope = zone_info_envelope("a&b@x");
        let root = parse(&envelope).unwrap();
        assert!(root.child("Header").is_none(), "getZoneInfo carries no integration header");
        assert_eq!(root.find("UserName").unwrap().text, "a&b@x");
    }

    #[test]
    fn faults_are_read() {
        let fault = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>
            <faultcode>soap:Server</faultcode><faultstring>IntegrationCode is invalid.</faultstring>
            </soap:Fault></soap:Body></soap:Envelope>"#;
        assert_eq!(parse_fault(fault, &Redactor::none()).as_deref(), Some("IntegrationCode is invalid."));
        assert!(
            parse_response(fault, "query", &Redactor::none())
                .unwrap_err()
                .contains("IntegrationCode is invalid.")
        );
        assert_eq!(parse_fault("<html>502</html>", &Redactor::none()), None);
    }

    #[test]
    fn permission_refusals_are_told_from_password_refusals() {
        for text in [
            "Resource update() requires System Administrator level access.",
            "You do not have permission to update Resource.",
            "User is not authorized to perform this operation",
        ] {
            assert!(is_permission_text(&text.to_ascii_lowercase()), "{text}");
        }
        for text in [
            "The password must be at least 7 characters long.",
            "Spaces are not allowed in passwords.",
            "The new password must differ from the last 5 passwords.",
            "The password must contain a special character in positions 2-6.",
        ] {
            assert!(!is_permission_text(&text.to_ascii_lowercase()), "{text}");
        }
    }
}
