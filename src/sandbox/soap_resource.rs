//! `query` and `update` of the SOAP `Resource` entity, behind the gate. Entities are written as the real service
//! writes them (WSDL order, `xsi:type` on each field, the password masked in its slot). `update` writes the whole
//! entity (a writable field not sent is cleared), is for System Administrators only, and applies the password
//! rules; a refusal is `ReturnCode -1` with a message in HTTP 200, as ATWS answers. With the seed's
//! `strict_reader` it drops elements out of the WSDL sequence, as a schema-bound reader would.

use super::Sandbox;
use super::fields::{Field, Record, SOAP_SEQUENCE, soap_position, soap_text};
use super::gate::Admitted;
use super::seed::SecurityLevel;
use super::soap::{ATWS, XSI, envelope, fault, xml_response};
use super::xml::{self, Element, escape};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use std::fmt::Write;
use tokio::time::Instant;

/// What the service shows in place of a password: the element is there, its value never is.
const MASKED_PASSWORD: &str = "******";

/// An entity as the real service writes it: elements in WSDL order, each with its `xsi:type`, null fields left
/// out, an empty `<UserDefinedFields/>`, and `Password` masked in its slot.
fn entity_xml(record: &Record) -> String {
    let mut xml = String::from(r#"<Entity xsi:type="Resource">"#);
    for name in SOAP_SEQUENCE {
        match name {
            "UserDefinedFields" => xml.push_str("<UserDefinedFields/>"),
            "Password" => {
                let _ = write!(xml, r#"<Password xsi:type="xsd:string">{MASKED_PASSWORD}</Password>"#);
            }
            _ => {
                let Some(field) = Field::from_soap(name, false) else { continue };
                let value = record.get(field);
                if value.is_null() {
                    continue;
                }
                // Writing to a String cannot fail.
                let _ = write!(
                    xml,
                    r#"<{0} xsi:type="{1}">{2}</{0}>"#,
                    field.soap(),
                    field.xsd_type(),
                    escape(&soap_text(&value))
                );
            }
        }
    }
    xml.push_str("</Entity>");
    xml
}

/// An `ATWSResponse` in HTTP 200: `ReturnCode` 1 with entities, or -1 with error messages.
fn result(operation: &str, entities: &[String], errors: &[String]) -> Response {
    let entities = if entities.is_empty() {
        "<EntityResults/>".to_string()
    } else {
        format!("<EntityResults>{}</EntityResults>", entities.concat())
    };
    let (errors, code) = if errors.is_empty() {
        ("<Errors/>".to_string(), 1)
    } else {
        let messages: String = errors
            .iter()
            .map(|m| format!("<ATWSError><Message>{}</Message></ATWSError>", escape(m)))
            .collect();
        (format!("<Errors>{messages}</Errors>"), -1)
    };
    let body = format!(
        r#"<{operation}Response xmlns="{ATWS}"><{operation}Result>{entities}<EntityResultType>resource</EntityResultType>{errors}<ReturnCode>{code}</ReturnCode></{operation}Result></{operation}Response>"#
    );
    xml_response(StatusCode::OK, envelope(&body))
}

fn refuse(operation: &str, message: impl Into<String>) -> Response {
    result(operation, &[], &[message.into()])
}

/// `query`: `<sXML>` holds an escaped `<queryxml>` on `Resource` with `equals` conditions (ANDed).
pub(super) fn query(sandbox: &Sandbox, body: &Element) -> Response {
    let Some(sxml) = body.child(ATWS, "sXML") else {
        return refuse("query", "The sXML parameter is required.");
    };
    let queryxml = match xml::parse(sxml.text()) {
        Ok(root) if root.name.eq_ignore_ascii_case("queryxml") => root,
        Ok(_) => return refuse("query", "sXML must hold a queryxml element."),
        Err(e) => return refuse("query", format!("sXML is not valid XML: {e}.")),
    };
    let entity = queryxml.child_ci("entity").map(|e| e.text().trim().to_string()).unwrap_or_default();
    if !entity.eq_ignore_ascii_case("Resource") {
        return refuse("query", format!("The sandbox knows only the Resource entity, not {entity:?}."));
    }
    let mut conditions = Vec::new();
    for item in queryxml.child_ci("query").map(|q| q.children.as_slice()).unwrap_or_default() {
        if !item.name.eq_ignore_ascii_case("field") {
            return refuse("query", format!("The sandbox does not support <{}> in a query.", item.name));
        }
        let name = item.text().trim();
        let Some(field) = Field::from_soap(name, true) else {
            return refuse("query", format!("Unknown field {name:?} for Resource."));
        };
        let Some(expression) = item.child_ci("expression") else {
            return refuse("query", format!("The field {name} has no expression."));
        };
        let op = expression.attr(None, "op").unwrap_or_default();
        if !op.eq_ignore_ascii_case("equals") {
            return refuse("query", format!("The sandbox supports only op=\"equals\", not {op:?}."));
        }
        match field.soap_value(Some(expression.text())) {
            Ok(value) => conditions.push((field, value)),
            Err(message) => return refuse("query", message),
        }
    }
    if conditions.is_empty() {
        return refuse("query", "The query has no condition.");
    }
    let state = sandbox.state();
    let entities: Vec<String> = state
        .tenant
        .accounts()
        .iter()
        .filter(|a| conditions.iter().all(|(f, v)| !v.is_null() && a.record.get(*f) == *v))
        .map(|a| entity_xml(&a.record))
        .collect();
    result("query", &entities, &[])
}

/// One `<Entity>` of an update, as sent.
struct Sent {
    id: Option<i64>,
    fields: Vec<(Field, Value)>,
    password: Option<String>,
}

/// Reads one `<Entity>`. A `strict` reader follows the WSDL sequence as a schema-bound deserializer does: an
/// element that comes after one it should precede (or repeats one) is dropped without a word, and the update
/// still succeeds without it.
fn read_entity(entity: &Element, strict: bool) -> Result<Sent, String> {
    let kind = entity.attr(Some(XSI), "type").unwrap_or_default();
    let kind = kind.rsplit(':').next().unwrap_or_default();
    if kind != "Resource" {
        return Err(format!("The sandbox can update only Resource entities, not {kind:?}."));
    }
    let mut sent = Sent { id: None, fields: Vec::new(), password: None };
    let mut reached: Option<usize> = None;
    for child in entity.children.iter().filter(|c| c.ns.as_deref() == Some(ATWS)) {
        if strict && let Some(position) = soap_position(&child.name) {
            if reached.is_some_and(|r| position <= r) {
                tracing::debug!(
                    element = child.name,
                    "sandbox: strict reader drops an element out of sequence"
                );
                continue;
            }
            reached = Some(position);
        }
        let nil = child.attr(Some(XSI), "nil") == Some("true");
        let text = (!nil).then(|| child.text());
        if child.name == "Password" {
            // The mask a query answers with, sent back unchanged, is no new password *(choice: undocumented; a
            // client that echoes the entity to change another field must not set the password to the mask)*.
            if text != Some(MASKED_PASSWORD) {
                sent.password = text.map(str::to_string);
            }
            continue;
        }
        // Elements that are not fields are ignored, as the .NET serializer behind ATWS ignores them.
        let Some(field) = Field::from_soap(&child.name, false) else { continue };
        let value = field.soap_value(text)?;
        if field == Field::Id {
            sent.id = value.as_i64();
        } else {
            sent.fields.push((field, value));
        }
    }
    Ok(sent)
}

/// `update`: each entity replaces every writable field (those not sent become null); `Password`, if sent,
/// must pass the rules, stops the old password at once and works after the propagation delay. All entities
/// are checked before any is applied.
pub(super) fn update(sandbox: &Sandbox, admitted: &Admitted, body: &Element) -> Response {
    if admitted.level != SecurityLevel::ApiAdmin {
        return refuse(
            "update",
            "Resource update() is only available when logged into the Web Services with System Administrator level access.",
        );
    }
    let entities: Vec<&Element> = body
        .child(ATWS, "Entities")
        .map(|e| e.children.iter().filter(|c| c.is(ATWS, "Entity")).collect())
        .unwrap_or_default();
    if entities.is_empty() {
        return refuse("update", "The update has no entity.");
    }
    let strict = sandbox.state().tenant.strict_reader;
    let mut sent = Vec::new();
    for entity in entities {
        match read_entity(entity, strict) {
            Ok(entity) => sent.push(entity),
            // A value the serializer cannot read fails the whole request, as ASMX does.
            Err(message) => return fault(StatusCode::INTERNAL_SERVER_ERROR, true, &message),
        }
    }

    let now = Instant::now();
    let mut state = sandbox.state();
    let mut records = Vec::new();
    for entity in &sent {
        let Some(id) = entity.id else { return refuse("update", "Each Resource needs its id.") };
        let Some(account) = state.tenant.by_id(id) else {
            return refuse("update", format!("No Resource with id {id} exists."));
        };
        let mut record = account.record.cleared();
        for (field, value) in &entity.fields {
            record.set(*field, value.clone());
        }
        if let Some(name) = record.user_name()
            && state.tenant.find(name).is_some_and(|a| a.record.id() != id)
        {
            return refuse("update", "The UserName is already in use.");
        }
        if let Some(password) = &entity.password
            && let Err(why) = state.tenant.check_password(id, password)
        {
            return refuse("update", why);
        }
        records.push(record);
    }
    let effective_at = now + state.tenant.propagation_delay;
    let mut answer = Vec::new();
    for (record, entity) in records.into_iter().zip(&sent) {
        let id = record.id();
        answer.push(entity_xml(&record));
        if let Some(account) = state.tenant.by_id_mut(id) {
            account.record = record;
        }
        if let Some(password) = &entity.password {
            state.tenant.set_password(id, password, effective_at);
            tracing::debug!(id, caller = admitted.user, "sandbox: password changed by SOAP update");
        }
    }
    result("update", &answer, &[])
}
