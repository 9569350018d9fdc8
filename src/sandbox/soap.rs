//! The SOAP 1.6 front end (`POST /ATServices/1.6/atws.asmx`): the envelope checked against `SOAPAction` (as
//! ASMX dispatches on it), `getZoneInfo` without auth, and `query`/`update` (in `soap_resource.rs`) with HTTP
//! Basic auth and the `AutotaskIntegrations` header, through the same gate as REST. Failures before the call
//! are SOAP faults with REST's statuses.

use super::Sandbox;
use super::faults::Call;
use super::gate::{self, Credentials, FaultStep, Refusal};
use super::limits::ThreadLimitResponse;
use super::request_log::{Api, Exchange};
use super::rest::{
    CODE_INVALID, LOCKED, NOT_API_ONLY, ZONE_UNKNOWN, base_for, fail, hourly_message, itgenatr005_message,
};
use super::soap_resource;
use super::xml::{self, Element, escape};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tokio::sync::oneshot;
use tokio::time::Instant;

const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub(super) const ATWS: &str = "http://autotask.net/ATWS/v1_6/";
pub(super) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const XML_TYPE: &str = "text/xml; charset=utf-8";
const BODY_LIMIT: usize = 1 << 20;
/// The thread-limit endpoint of every SOAP call *(choice: the wire page keys the limit on REST path segments)*.
const ENDPOINT: &str = "atws";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    GetZoneInfo,
    Query,
    Update,
}

impl Operation {
    fn from_name(name: &str) -> Option<Operation> {
        match name {
            "getZoneInfo" => Some(Operation::GetZoneInfo),
            "query" => Some(Operation::Query),
            "update" => Some(Operation::Update),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Operation::GetZoneInfo => "getZoneInfo",
            Operation::Query => "query",
            Operation::Update => "update",
        }
    }

    fn call(self) -> Call {
        match self {
            Operation::GetZoneInfo => Call::SoapGetZoneInfo,
            Operation::Query => Call::SoapQuery,
            Operation::Update => Call::SoapUpdate,
        }
    }
}

pub(super) fn xml_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, XML_TYPE)], body).into_response()
}

pub(super) fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:xsi="{XSI}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

/// A SOAP fault; `client` says the request itself was wrong.
pub(super) fn fault(status: StatusCode, client: bool, message: &str) -> Response {
    let code = if client { "soap:Client" } else { "soap:Server" };
    let body = format!(
        "<soap:Fault><faultcode>{code}</faultcode><faultstring>{}</faultstring><detail/></soap:Fault>",
        escape(message)
    );
    xml_response(status, envelope(&body))
}

fn unauthorized(body: Option<&str>) -> Response {
    let mut response = match body {
        Some(message) => fault(StatusCode::UNAUTHORIZED, true, message),
        None => StatusCode::UNAUTHORIZED.into_response(),
    };
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"ATWS\""));
    response
}

fn too_many(message: &str) -> Response {
    let mut response = fault(StatusCode::TOO_MANY_REQUESTS, false, message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// How SOAP answers a request that does not reach its call: the REST statuses, with SOAP fault bodies.
fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::UnknownUser => fault(StatusCode::INTERNAL_SERVER_ERROR, false, ZONE_UNKNOWN),
        Refusal::BadIntegrationCode => fault(StatusCode::INTERNAL_SERVER_ERROR, false, CODE_INVALID),
        Refusal::Hourly { limit } => too_many(&hourly_message(limit)),
        Refusal::Threads { limit, response: ThreadLimitResponse::Status429 }
        | Refusal::Throttle { limit } => {
            too_many(&format!("The Autotask API thread threshold of {limit} threads has been exceeded"))
        }
        Refusal::Threads { limit, response: ThreadLimitResponse::Itgenatr005 }
        | Refusal::Itgenatr005 { limit } => {
            fault(StatusCode::INTERNAL_SERVER_ERROR, false, &itgenatr005_message(limit))
        }
        Refusal::Fail { status, body } => fail(status, body, XML_TYPE),
        Refusal::Locked => unauthorized(Some(LOCKED)),
        Refusal::WrongSecret => unauthorized(None),
        Refusal::NotApiOnly => unauthorized(Some(NOT_API_ONLY)),
        Refusal::Hang(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// A `fail` body with the request's parts it names filled in (see [`super::faults::ECHO_PASSWORD`]).
fn echo(body: &str, headers: &HeaderMap, operation: &Element) -> String {
    use super::faults::{ECHO_AUTHORIZATION, ECHO_PASSWORD};
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let password = operation
        .child(ATWS, "Entities")
        .and_then(|e| e.child(ATWS, "Entity"))
        .and_then(|e| e.child(ATWS, "Password"))
        .map(|p| p.text().to_string())
        .unwrap_or_default();
    body.replace(ECHO_AUTHORIZATION, &escape(authorization)).replace(ECHO_PASSWORD, &escape(&password))
}

/// The user name of a Basic `Authorization` header, for the log, whatever else is wrong with the request.
fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.trim().strip_prefix("Basic ").or_else(|| value.trim().strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    decoded.split_once(':').map(|(user, _)| user.to_string())
}

/// The envelope's parts the sandbox reads.
struct Envelope {
    operation: Operation,
    /// The operation element (`<query>`, `<update>`, `<getZoneInfo>`).
    body: Element,
    integration_code: Option<String>,
}

/// Reads the envelope and checks it against the `SOAPAction` header, as ASMX dispatches on it. `Err` is the
/// message of a client fault.
fn read_envelope(headers: &HeaderMap, text: &str) -> Result<Envelope, String> {
    let action = headers.get("soapaction").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let action = action.trim().trim_matches('"');
    let Some(operation) = action.strip_prefix(ATWS).and_then(Operation::from_name) else {
        return Err(format!("Server did not recognize the value of HTTP Header SOAPAction: {action}."));
    };
    let bad = |message: &str| message.to_string();
    let root = xml::parse(text).map_err(|e| format!("The request is not valid XML: {e}."))?;
    if !root.is(SOAP_ENV, "Envelope") {
        return Err(bad("The request is not a SOAP 1.1 envelope."));
    }
    let integration_code = root
        .child(SOAP_ENV, "Header")
        .and_then(|h| h.child(ATWS, "AutotaskIntegrations"))
        .and_then(|a| a.child(ATWS, "IntegrationCode"))
        .map(|c| c.text().trim().to_string());
    let mut root = root;
    let position = root.children.iter().position(|c| c.is(SOAP_ENV, "Body"));
    let Some(mut soap_body) = position.map(|i| root.children.swap_remove(i)) else {
        return Err(bad("The SOAP envelope has no Body."));
    };
    if soap_body.children.is_empty() {
        return Err(bad("The SOAP Body is empty."));
    }
    let body = soap_body.children.swap_remove(0);
    if !body.is(ATWS, operation.name()) {
        return Err(bad("The SOAP Body does not hold the operation named by SOAPAction."));
    }
    Ok(Envelope { operation, body, integration_code })
}

pub(super) async fn handle(sandbox: Sandbox, request: Request) -> Response {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let mut exchange = Exchange::new(&sandbox, Api::Soap, basic_user(&parts.headers));
    if parts.method != Method::POST {
        return exchange.finish(StatusCode::METHOD_NOT_ALLOWED.into_response());
    }
    let content_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("text/xml") {
        return exchange.finish(StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response());
    }
    let text = match axum::body::to_bytes(body, BODY_LIMIT).await.map(|b| String::from_utf8(b.to_vec())) {
        Ok(Ok(text)) => text,
        _ => {
            return exchange.finish(fault(
                StatusCode::BAD_REQUEST,
                true,
                "The request body is not UTF-8 text.",
            ));
        }
    };
    let request = match read_envelope(&parts.headers, &text) {
        Ok(request) => request,
        Err(message) => return exchange.finish(fault(StatusCode::INTERNAL_SERVER_ERROR, true, &message)),
    };
    let call = request.operation.call();
    exchange.call = Some(call);

    if request.operation == Operation::GetZoneInfo {
        let user = request.body.child(ATWS, "UserName").map(|u| u.text().to_string());
        exchange.user = user.clone();
        let then_drop = match gate::fault_step(&sandbox, call).await {
            FaultStep::Go { then_drop, .. } => then_drop,
            FaultStep::Hang => return exchange.never_answer().await,
            FaultStep::Refuse(refusal) => return exchange.finish(refused(refusal)),
        };
        let known = user.is_some_and(|u| sandbox.state().tenant.find(&u).is_some());
        let base = base_for(&sandbox, &parts.headers);
        let result = if known {
            format!(
                "<URL>{}</URL><ErrorCode>0</ErrorCode><DataBaseType>Sandbox</DataBaseType><CI>1</CI><WebUrl>{}</WebUrl>",
                escape(&format!("{base}{}", super::SOAP_PATH)),
                escape(&format!("{base}/"))
            )
        } else {
            "<URL></URL><ErrorCode>-1</ErrorCode><DataBaseType></DataBaseType><CI>0</CI><WebUrl></WebUrl>"
                .to_string()
        };
        let body = format!(
            r#"<getZoneInfoResponse xmlns="{ATWS}"><getZoneInfoResult>{result}</getZoneInfoResult></getZoneInfoResponse>"#
        );
        let response = xml_response(StatusCode::OK, envelope(&body));
        return if then_drop { exchange.never_answer().await } else { exchange.finish(response) };
    }

    let Some(credentials) = Credentials::from_basic(&parts.headers, request.integration_code.clone()) else {
        return exchange.finish(unauthorized(None));
    };
    let admitted = match gate::admit(&sandbox, call, ENDPOINT, &credentials).await {
        Ok(admitted) => admitted,
        Err(Refusal::Hang(slot)) => {
            let response = exchange.never_answer().await;
            drop(slot);
            return response;
        }
        Err(Refusal::Fail { status, body }) => {
            return exchange.finish(fail(status, echo(&body, &parts.headers, &request.body), XML_TYPE));
        }
        Err(refusal) => return exchange.finish(refused(refusal)),
    };
    if let Some(delay) = admitted.commit_after {
        return commit_late(sandbox, exchange, admitted, request.body, arrived + delay).await;
    }
    let response = match request.operation {
        Operation::Query => soap_resource::query(&sandbox, &request.body),
        _ => soap_resource::update(&sandbox, &admitted, &request.body),
    };
    if admitted.then_drop {
        let response = exchange.never_answer().await;
        drop(admitted);
        return response;
    }
    exchange.finish(response)
}

/// A `commit_late` update: applied at `at` and answered then. The work runs in a task of its own because the HTTP
/// server drops this handler's future when the client disconnects, and a real server (IIS/ASMX) finishes a request
/// its client gave up on: the password changes although nobody reads the answer. The request log and the thread
/// slot follow the work, not the connection.
async fn commit_late(
    sandbox: Sandbox,
    exchange: Exchange,
    admitted: gate::Admitted,
    body: Element,
    at: Instant,
) -> Response {
    let (answer, answered) = oneshot::channel();
    sandbox.count_late_commit_received();
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            // A sandbox that stops takes its unfinished work with it.
            () = sandbox.until_shutdown() => return,
        }
        let response = soap_resource::update(&sandbox, &admitted, &body);
        drop(admitted);
        let response = exchange.finish(response);
        sandbox.count_late_commit();
        // The client may be gone; the update stands either way.
        let _ = answer.send(response);
    });
    answered.await.unwrap_or_else(|_| StatusCode::SERVICE_UNAVAILABLE.into_response())
}
