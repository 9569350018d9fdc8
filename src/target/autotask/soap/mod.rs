//! The SOAP 1.6 calls: `query` and `update` of the `Resource` entity (the only documented way to set an API
//! user's password), and `getZoneInfo` for the connect checks.
//!
//! `update` clears every writable field it is not sent, so the apply sends back **the whole entity exactly as
//! `query` returned it** (every element, in order, with its attributes, and any namespace prefix their attributes
//! use) with `<Password>` in its place in the WSDL sequence (a strict reader drops it anywhere else). The envelope
//! that carries the password is built in a [`Zeroizing`] string sized up front, so it never reallocates and is
//! wiped when dropped (`envelope`).
//!
//! Outcomes of `update`, and why: HTTP 200 with `ReturnCode` ≥ 0 and the resource's id in `EntityResults` is done
//! (the same without the id proves nothing: `Unknown`); `ReturnCode -1` is a refusal that
//! changed nothing (a password rule → `Rejected`, a missing permission → `Invalid`); a 401 or an authentication
//! fault happens before anything changes; but an answer lost after sending, an unreadable 200 or an unexplained
//! 5xx may hide a done update, so it is `Unknown` and recovery asks Autotask which password it now accepts.
//!
//! The map: `envelope` builds what is sent, `response` reads what comes back, this file sends it.

mod envelope;
mod response;
#[cfg(test)]
mod tests;

use envelope::{ATWS, query_envelope, update_envelope, zone_info_envelope};
pub(super) use response::{Entity, Response};
use response::{ZoneInfo, parse_fault, parse_response, parse_zone_info};

use super::KIND;
use super::answer::{CallFailure, EXCERPT, Refusal, classify, is_throttle_text};
use super::payload::Credential;
use super::tenant::{
    Attempt, AutotaskTenant, Endpoint, Failure, account_key, basic_auth, invalid, safe_failure,
};
use crate::secret::SecretValue;
use crate::secret::redact::Redactor;
use crate::target::TargetError;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use zeroize::Zeroizing;

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
