//! The REST calls: the verify (`GET V1.0/ThresholdInformation` with the job's new credential) and the admin's
//! read-only checks (`Resources/query`, `Resources/entityInformation`).
//!
//! Every call carries `ApiIntegrationCode`, `UserName` and `Secret` (marked sensitive). A refusal comes back as a
//! [`Refusal`] for the caller to read in its context: the same 401 is a failed login of the job's user in a
//! verify (`Unauthenticated`) and a configuration fault in an admin call (`Invalid`). A zone that answers with a
//! connection failure or an unexplained 5xx is re-resolved once per call.

use super::KIND;
use super::answer::{CallFailure, Refusal, classify, rest_messages};
use super::payload::Credential;
use super::tenant::Failure;
use super::tenant::{
    Attempt, AutotaskTenant, Endpoint, account_key, invalid, safe_failure, secret_header, transient,
};
use super::zone::REST_VERSION;
use crate::secret::redact::Redactor;
use crate::target::TargetError;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

fn headers(credential: &Credential) -> Result<HeaderMap, TargetError> {
    let mut headers = HeaderMap::new();
    let code = HeaderValue::from_str(&credential.integration_code)
        .map_err(|_| invalid("the integration code has characters an HTTP header cannot carry".into()))?;
    let user = HeaderValue::from_str(&credential.username)
        .map_err(|_| invalid("the user name has characters an HTTP header cannot carry".into()))?;
    headers.insert(HeaderName::from_static("apiintegrationcode"), code);
    headers.insert(HeaderName::from_static("username"), user);
    headers
        .insert(HeaderName::from_static("secret"), secret_header(credential.secret.expose(), "the secret")?);
    Ok(headers)
}

/// Whose lockout guard counts a REST call's login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Counted {
    /// The engine's: a job's verify, which the engine sends through the guard itself.
    ByEngine,
    /// Here, at the tenant: the admin's calls.
    Here,
}

/// One REST call as `credential`: `resource` below `{zone}V1.0/` (the version is pinned here, whatever the zone
/// or anything else says), a JSON body for POSTs. Returns the answer's body on 2xx.
pub(super) async fn call(
    tenant: &AutotaskTenant,
    credential: &Credential,
    method: Method,
    resource: &str,
    endpoint: Endpoint,
    body: Option<&serde_json::Value>,
    counted: Counted,
) -> Result<String, CallFailure> {
    let path = format!("{REST_VERSION}/{resource}");
    let path = path.as_str();
    let what = format!("{method} {path}");
    let login = (counted == Counted::Here).then(|| account_key(&credential.username));
    let redactor = Redactor::new(&[&credential.secret]);
    let call = Call {
        tenant,
        credential,
        headers: headers(credential)?,
        method,
        path,
        endpoint,
        body,
        what: &what,
        login: login.as_deref(),
        redactor: &redactor,
    };
    let mut reresolved = false;
    let mut patience = tenant.patience(&what);
    loop {
        let attempt = call.attempt(&mut reresolved).await;
        if let Some(body) = patience.settle(attempt).await? {
            return Ok(body);
        }
    }
}

struct Call<'a> {
    tenant: &'a AutotaskTenant,
    credential: &'a Credential,
    headers: HeaderMap,
    method: Method,
    path: &'a str,
    endpoint: Endpoint,
    body: Option<&'a serde_json::Value>,
    what: &'a str,
    login: Option<&'a str>,
    /// The credential's secret, in every form a server that echoes the request could send it back in.
    redactor: &'a Redactor,
}

impl Call<'_> {
    async fn attempt(&self, reresolved: &mut bool) -> Attempt<String, CallFailure> {
        let (tenant, user, what) = (self.tenant, self.credential.username.as_str(), self.what);
        let zone = match tenant.zone(user).await {
            Ok(zone) => zone,
            Err(e) => return Attempt::Stop(e.into()),
        };
        let url = format!("{}{}", zone.rest, self.path);
        let mut request = tenant.http().request(self.method.clone(), url).headers(self.headers.clone());
        if let Some(body) = self.body {
            request = request.header(CONTENT_TYPE, "application/json").body(body.to_string());
        }
        let answer = match tenant.exchange(Some(self.endpoint), what, request, self.login).await {
            Ok(answer) => answer,
            Err(Failure::NotSent(detail)) => {
                if !*reresolved {
                    *reresolved = true;
                    tenant.forget_zone(user);
                }
                return Attempt::Again { detail, retry_after: None, at_once: false };
            }
            // Sent, and no answer: for a login that is an unknown outcome, which the lockout guard counts.
            Err(Failure::Lost(detail)) => {
                return Attempt::Stop(CallFailure::Failed(TargetError::Unknown { target: KIND, detail }));
            }
            Err(failure) => return safe_failure(failure, what),
        };
        if (200..300).contains(&answer.status) {
            return Attempt::Done(answer.body);
        }
        match classify(answer.status, answer.retry_after, &rest_messages(&answer.body, self.redactor)) {
            // The zone may have moved: a 5xx from it, or "unknown user" from a zone that knew the user.
            refusal @ (Refusal::Server { .. } | Refusal::UnknownUser) if !*reresolved => {
                *reresolved = true;
                tenant.forget_zone(user);
                Attempt::Again { detail: refusal.to_string(), retry_after: None, at_once: true }
            }
            refusal if refusal.is_temporary() => Attempt::after(&refusal),
            refusal => Attempt::Stop(CallFailure::Refused(refusal)),
        }
    }
}

/// The verify: one authenticated call with the job's credential. Never retried on a 401: every refused login
/// counts toward the account's lockout, and the engine caps how many one run may cause.
pub(super) async fn verify(tenant: &AutotaskTenant, credential: &Credential) -> Result<(), TargetError> {
    match call(
        tenant,
        credential,
        Method::GET,
        "ThresholdInformation",
        Endpoint::ThresholdInformation,
        None,
        Counted::ByEngine,
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(CallFailure::Failed(e)) => Err(e),
        Err(CallFailure::Refused(refusal)) => Err(user_refusal(&refusal, credential)),
    }
}

/// What a refusal of the job's own credential means.
fn user_refusal(refusal: &Refusal, credential: &Credential) -> TargetError {
    let user = &credential.username;
    match refusal {
        Refusal::WrongSecret => TargetError::Unauthenticated {
            target: super::KIND,
            detail: format!("Autotask does not accept the secret of API user `{user}` (HTTP 401)"),
        },
        // A locked account proves nothing about the secret, and no retry can unlock it: a person must.
        Refusal::Locked => invalid(format!(
            "API user `{user}` is locked in Autotask after repeated failed logins; a person must unlock it \
             (Admin > Resources/Users > the user > Locked) before rotavault can verify it"
        )),
        Refusal::NotApiOnly => invalid(format!(
            "`{user}` is not an API-only user: give it an \"API User (API-only)\" security level in Autotask"
        )),
        Refusal::UnknownUser => invalid(format!("Autotask knows no API user `{user}`")),
        Refusal::BadIntegrationCode => invalid(format!(
            "Autotask does not accept the integration code stored for `{user}` (\"IntegrationCode is invalid.\")"
        )),
        Refusal::Throttled { retry_after, detail } => transient(detail.clone(), *retry_after),
        other @ Refusal::Server { .. } => transient(other.to_string(), None),
        other @ Refusal::Other { .. } => invalid(format!("verifying `{user}`: {other}")),
    }
}

/// Usage of the tenant's hourly request threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Threshold {
    pub external_request_threshold: u64,
    pub request_threshold_timeframe: u64,
    pub current_timeframe_request_count: u64,
}

pub(super) async fn threshold(
    tenant: &AutotaskTenant,
    credential: &Credential,
) -> Result<Threshold, CallFailure> {
    let body = call(
        tenant,
        credential,
        Method::GET,
        "ThresholdInformation",
        Endpoint::ThresholdInformation,
        None,
        Counted::Here,
    )
    .await?;
    serde_json::from_str(&body).map_err(|_| {
        CallFailure::Failed(invalid("ThresholdInformation answered something unexpected".into()))
    })
}

/// `userAccessForUpdate` of `Resources/entityInformation`: "None" for a caller without admin access to Resources.
pub(super) async fn resource_update_access(
    tenant: &AutotaskTenant,
    credential: &Credential,
) -> Result<String, CallFailure> {
    #[derive(serde::Deserialize)]
    struct Info {
        info: Access,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Access {
        user_access_for_update: Option<String>,
    }
    let body = call(
        tenant,
        credential,
        Method::GET,
        "Resources/entityInformation",
        Endpoint::Resources,
        None,
        Counted::Here,
    )
    .await?;
    let info: Info = serde_json::from_str(&body).map_err(|_| {
        CallFailure::Failed(invalid("Resources/entityInformation answered something unexpected".into()))
    })?;
    Ok(info.info.user_access_for_update.unwrap_or_else(|| "None".into()))
}

/// A resource as `Resources/query` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RestResource {
    pub id: i64,
    pub user_name: Option<String>,
    pub is_active: Option<bool>,
}

/// The resources whose `userName` is `user`, as `credential` (the admin) sees them.
pub(super) async fn find_resource(
    tenant: &AutotaskTenant,
    credential: &Credential,
    user: &str,
) -> Result<Vec<RestResource>, CallFailure> {
    #[derive(serde::Deserialize)]
    struct Items {
        items: Vec<RestResource>,
    }
    let query = json!({
        "filter": [{"op": "eq", "field": "userName", "value": user}],
        "includeFields": ["id", "userName", "isActive"],
    });
    let body = call(
        tenant,
        credential,
        Method::POST,
        "Resources/query",
        Endpoint::Resources,
        Some(&query),
        Counted::Here,
    )
    .await?;
    let items: Items = serde_json::from_str(&body)
        .map_err(|_| CallFailure::Failed(invalid("Resources/query answered something unexpected".into())))?;
    Ok(items.items)
}
