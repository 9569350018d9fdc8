//! The REST front end (`/atservicesrest/…`): routing without regard to case, zone lookup, and the calls on
//! `ThresholdInformation` and `Resources`, each through the gate in the wire page's order. Errors are
//! `{"errors":["…"]}`; a wrong secret is a bare 401.

use super::Sandbox;
use super::faults::Call;
use super::fields::Field;
use super::filter::{PAGE, Query as ResourceQuery};
use super::gate::{self, Admitted, Credentials, FaultStep, Refusal};
use super::limits::ThreadLimitResponse;
use super::request_log::{Api, Exchange};
use super::seed::SecurityLevel;
use axum::Json;
use axum::body::Body;
use axum::extract::{Query, Request};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

pub(crate) const ZONE_UNKNOWN: &str = "Zone information could not be determined";
pub(crate) const CODE_INVALID: &str = "IntegrationCode is invalid.";
pub(crate) const LOCKED: &str = "User account is locked.";
pub(crate) const NOT_API_ONLY: &str = "API access requires an API-only security level.";
const BODY_LIMIT: usize = 1 << 20;

pub(crate) fn hourly_message(limit: u64) -> String {
    format!("The request threshold of {limit} requests per 60 minutes has been exceeded.")
}

pub(crate) fn itgenatr005_message(limit: u32) -> String {
    format!(
        "Itgenatr005: Thread Threshold Exceeded \u{2014} The Autotask API thread threshold of {limit} threads has been exceeded"
    )
}

fn errors(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "errors": [message.into()] }))).into_response()
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, Json(value)).into_response()
}

/// How REST answers a request that does not reach its call.
fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::UnknownUser => errors(StatusCode::INTERNAL_SERVER_ERROR, ZONE_UNKNOWN),
        Refusal::BadIntegrationCode => errors(StatusCode::INTERNAL_SERVER_ERROR, CODE_INVALID),
        Refusal::Hourly { limit } => errors(StatusCode::TOO_MANY_REQUESTS, hourly_message(limit)),
        Refusal::Threads { limit, response: ThreadLimitResponse::Status429 }
        | Refusal::Throttle { limit } => too_many(limit),
        Refusal::Threads { limit, response: ThreadLimitResponse::Itgenatr005 }
        | Refusal::Itgenatr005 { limit } => {
            errors(StatusCode::INTERNAL_SERVER_ERROR, itgenatr005_message(limit))
        }
        Refusal::Fail { status, body } => fail(status, body, "application/json; charset=utf-8"),
        Refusal::Locked => errors(StatusCode::UNAUTHORIZED, LOCKED),
        Refusal::WrongSecret => StatusCode::UNAUTHORIZED.into_response(),
        Refusal::NotApiOnly => errors(StatusCode::UNAUTHORIZED, NOT_API_ONLY),
        // Answered by the caller, which never answers it.
        Refusal::Hang(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn too_many(limit: u32) -> Response {
    let mut response = errors(
        StatusCode::TOO_MANY_REQUESTS,
        format!("The Autotask API thread threshold of {limit} threads has been exceeded"),
    );
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// The answer of a `fail` fault: the status and body given, as they are.
pub(crate) fn fail(status: u16, body: String, content_type: &'static str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The scheme and authority clients reached this sandbox at (its `Host`), so zone URLs work from anywhere.
pub(crate) fn base_for(sandbox: &Sandbox, headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .map_or_else(|| sandbox.base_url(), |host| format!("http://{host}"))
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    pairs.into_iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// Which call a method and path (after `/atservicesrest/`) name, or the answer when none.
enum Route {
    VersionInformation,
    Call { call: Call, endpoint: String, id: Option<i64> },
}

/// Why a method and path name no call.
enum Miss {
    NotFound,
    NotAllowed,
}

impl Miss {
    fn response(self, method: &Method, path: &str) -> Response {
        match self {
            Miss::NotFound => errors(StatusCode::NOT_FOUND, format!("No such resource: {path}")),
            Miss::NotAllowed => {
                let message = format!("The requested resource does not support http method '{method}'.");
                (StatusCode::METHOD_NOT_ALLOWED, Json(json!({ "Message": message }))).into_response()
            }
        }
    }
}

fn route(method: &Method, path: &str) -> Result<Route, Miss> {
    let lower = path.to_ascii_lowercase();
    let lower = lower.strip_suffix('/').unwrap_or(&lower);
    if lower == "versioninformation" {
        return if method == Method::GET { Ok(Route::VersionInformation) } else { Err(Miss::NotAllowed) };
    }
    let Some(rest) = lower.strip_prefix("v1.0/") else { return Err(Miss::NotFound) };
    let segments: Vec<&str> = rest.split('/').collect();
    let get = method == Method::GET;
    let (call, id) = match segments.as_slice() {
        ["zoneinformation"] if get => (Call::ZoneInformation, None),
        ["thresholdinformation"] if get => (Call::ThresholdInformation, None),
        ["resources", "query"] if get || method == Method::POST => (Call::ResourcesQuery, None),
        ["resources", "entityinformation"] if get => (Call::EntityInformation, None),
        ["resources", id] if get && id.parse::<i64>().is_ok() => (Call::ResourcesGet, id.parse().ok()),
        ["resources"] if method == Method::PATCH => (Call::ResourcesPatch, None),
        ["resources"] if method == Method::PUT => (Call::ResourcesPut, None),
        ["zoneinformation" | "thresholdinformation" | "resources"]
        | ["resources", "query" | "entityinformation"] => return Err(Miss::NotAllowed),
        ["resources", id] if id.parse::<i64>().is_ok() => return Err(Miss::NotAllowed),
        _ => return Err(Miss::NotFound),
    };
    Ok(Route::Call { call, endpoint: segments[0].to_string(), id })
}

pub(super) async fn handle(sandbox: Sandbox, path: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let credentials = Credentials::from_rest_headers(&parts.headers);
    let mut exchange = Exchange::new(&sandbox, Api::Rest, credentials.user.clone());
    let (call, endpoint, id) = match route(&parts.method, path) {
        Ok(Route::Call { call, endpoint, id }) => (call, endpoint, id),
        // Autotask lists 2.0 too; the sandbox serves only 1.0, as rotavault speaks only 1.0 (V2.0/… is 404).
        Ok(Route::VersionInformation) => {
            return exchange.finish(ok(json!({ "apiVersions": ["1.0", "2.0"] })));
        }
        Err(miss) => return exchange.finish(miss.response(&parts.method, path)),
    };
    exchange.call = Some(call);

    // Zone lookup needs no credentials and is exempt from the limits; only faults touch it.
    if call == Call::ZoneInformation {
        let user = query_param(&parts.uri, "user");
        exchange.user = user.clone();
        let then_drop = match gate::fault_step(&sandbox, call).await {
            FaultStep::Go { then_drop, .. } => then_drop,
            FaultStep::Hang => return exchange.never_answer().await,
            FaultStep::Refuse(refusal) => return exchange.finish(refused(refusal)),
        };
        let known = user.is_some_and(|u| sandbox.state().tenant.find(&u).is_some());
        let response = if known {
            let base = base_for(&sandbox, &parts.headers);
            ok(json!({
                "zoneName": "Sandbox",
                "url": format!("{base}/atservicesrest/"),
                "webUrl": format!("{base}/"),
                "ci": 1,
            }))
        } else {
            errors(StatusCode::INTERNAL_SERVER_ERROR, ZONE_UNKNOWN)
        };
        return if then_drop { exchange.never_answer().await } else { exchange.finish(response) };
    }

    let admitted = match gate::admit(&sandbox, call, &endpoint, &credentials).await {
        Ok(admitted) => admitted,
        Err(Refusal::Hang(slot)) => {
            let response = exchange.never_answer().await;
            drop(slot);
            return response;
        }
        Err(refusal) => return exchange.finish(refused(refusal)),
    };
    let response = match call {
        Call::ThresholdInformation => threshold(&sandbox),
        Call::ResourcesQuery => match query_body(&parts.method, &parts.uri, &parts.headers, body).await {
            Ok(query) => resources_query(&sandbox, &query),
            Err(response) => response,
        },
        Call::ResourcesGet => resources_get(&sandbox, id.unwrap_or_default()),
        Call::EntityInformation => entity_information(&admitted),
        Call::ResourcesPatch | Call::ResourcesPut => match json_body(&parts.headers, body).await {
            Ok(value) => resources_update(&sandbox, &admitted, &value, call == Call::ResourcesPut),
            Err(response) => response,
        },
        _ => errors(StatusCode::NOT_FOUND, "No such call."),
    };
    if admitted.then_drop {
        let response = exchange.never_answer().await;
        drop(admitted);
        return response;
    }
    exchange.finish(response)
}

/// A JSON request body; Autotask's Web API refuses bodies of other media types with 415.
async fn json_body(headers: &HeaderMap, body: Body) -> Result<Value, Response> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("application/json") {
        let message =
            format!("The request entity's media type '{content_type}' is not supported for this resource.");
        return Err(errors(StatusCode::UNSUPPORTED_MEDIA_TYPE, message));
    }
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| errors(StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large."))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| errors(StatusCode::INTERNAL_SERVER_ERROR, "The request body is not valid JSON."))
}

/// The query of `POST …/query` (body) or `GET …/query?search=` (URL-encoded JSON).
async fn query_body(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<ResourceQuery, Response> {
    let value = if method == Method::GET {
        let search = query_param(uri, "search")
            .ok_or_else(|| errors(StatusCode::INTERNAL_SERVER_ERROR, "The search parameter is required."))?;
        serde_json::from_str(&search).map_err(|_| {
            errors(StatusCode::INTERNAL_SERVER_ERROR, "The search parameter is not valid JSON.")
        })?
    } else {
        json_body(headers, body).await?
    };
    ResourceQuery::parse(&value).map_err(|message| errors(StatusCode::INTERNAL_SERVER_ERROR, message))
}

fn threshold(sandbox: &Sandbox) -> Response {
    let mut state = sandbox.state();
    let count = state.limits.hourly_count(Instant::now());
    ok(json!({
        "externalRequestThreshold": state.limits.hourly_limit,
        "requestThresholdTimeframe": 60,
        "currentTimeframeRequestCount": count,
    }))
}

fn resources_query(sandbox: &Sandbox, query: &ResourceQuery) -> Response {
    let state = sandbox.state();
    let items: Vec<Value> = state
        .tenant
        .accounts()
        .iter()
        .filter(|a| query.matches(&a.record))
        .take(query.max_records)
        .map(|a| a.record.to_rest(query.include()))
        .collect();
    ok(json!({
        "items": items,
        "pageDetails": { "count": items.len(), "requestCount": PAGE, "prevPageUrl": null, "nextPageUrl": null },
    }))
}

fn resources_get(sandbox: &Sandbox, id: i64) -> Response {
    let item = sandbox.state().tenant.by_id(id).map(|a| a.record.to_rest(None));
    ok(json!({ "item": item }))
}

fn entity_information(admitted: &Admitted) -> Response {
    let update = if admitted.level == SecurityLevel::ApiAdmin { "All" } else { "None" };
    ok(json!({ "info": {
        "name": "Resource",
        "canCreate": false,
        "canDelete": false,
        "canQuery": true,
        "canUpdate": true,
        "userAccessForCreate": "None",
        "userAccessForDelete": "None",
        "userAccessForQuery": "All",
        "userAccessForUpdate": update,
    }}))
}

/// PATCH changes the fields sent; PUT (`replace`) also clears every writable field not sent.
fn resources_update(sandbox: &Sandbox, admitted: &Admitted, body: &Value, replace: bool) -> Response {
    // The entity's footnote: updating Resources needs admin access to Resources/Users (HR).
    if admitted.level != SecurityLevel::ApiAdmin {
        return errors(
            StatusCode::FORBIDDEN,
            "The logged in user does not have permission to update Resource.",
        );
    }
    let Some(object) = body.as_object() else {
        return errors(StatusCode::INTERNAL_SERVER_ERROR, "The request body must be a JSON object.");
    };
    let Some(id) = object.iter().find(|(k, _)| k.eq_ignore_ascii_case("id")).and_then(|(_, v)| v.as_i64())
    else {
        return errors(StatusCode::INTERNAL_SERVER_ERROR, "The id field is required.");
    };
    let mut state = sandbox.state();
    let Some(account) = state.tenant.by_id(id) else {
        return errors(StatusCode::INTERNAL_SERVER_ERROR, format!("No Resource with id {id} exists."));
    };
    let mut record = if replace { account.record.cleared() } else { account.record.clone() };
    for (key, value) in object {
        // Properties that are not fields (a `password`, say) are ignored, as Autotask's JSON binding does.
        let Some(field) = Field::from_rest(key).filter(|f| f.writable()) else { continue };
        match field.rest_value(value) {
            Ok(value) => record.set(field, value),
            Err(message) => return errors(StatusCode::INTERNAL_SERVER_ERROR, message),
        }
    }
    if let Some(name) = record.user_name()
        && state.tenant.find(name).is_some_and(|a| a.record.id() != id)
    {
        return errors(StatusCode::INTERNAL_SERVER_ERROR, "The userName is already in use.");
    }
    if let Some(account) = state.tenant.by_id_mut(id) {
        account.record = record;
    }
    ok(json!({ "itemId": id }))
}
