//! HTTP around the fake vault: the bearer challenge, `api-version`, the routes the Key Vault data plane serves
//! for secrets, and the request log.
//!
//! The challenge comes first and is unconditional: a request without `Authorization: Bearer <the fake's
//! token>` gets `401` with `WWW-Authenticate: Bearer authorization=".../<tenant>", resource="https://vault.
//! azure.net"` and touches nothing. That is what makes the official client work at all (its first request goes
//! out without a token and with its body stripped), and why a PUT is never accepted without the bearer: the
//! stripped first PUT would otherwise store a version with no value.

use super::vault::{Body, KvError, Permission, Vault};
use super::{FAKE_TOKEN, TENANT};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// The API versions the fake answers (the SDK's default first).
const API_VERSIONS: [&str; 4] = ["2025-07-01", "7.6", "7.5", "7.4"];

/// One request as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub bearer: bool,
    pub body_len: usize,
    pub status: u16,
}

#[derive(Debug, Default)]
pub struct Shared {
    pub vault: Mutex<Vault>,
    pub log: Mutex<Vec<Seen>>,
}

pub async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let response = match bearer.as_deref() {
        None => challenge("AKV10000: Request is missing a Bearer or PoP token."),
        Some(token) if token != FAKE_TOKEN => {
            challenge("AKV10032: Invalid issuer. The token was not accepted.")
        }
        Some(_) => {
            let mut vault = shared.vault.lock().expect("the vault lock");
            answer(&mut vault, &method, &uri, &body)
        }
    };
    shared.log.lock().expect("the log lock").push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        bearer: bearer.is_some(),
        body_len: body.len(),
        status: response.status().as_u16(),
    });
    response
}

fn challenge(message: &str) -> Response {
    let value = format!(
        r#"Bearer authorization="https://login.microsoftonline.com/{TENANT}", resource="https://vault.azure.net""#
    );
    let body = KvError::new(401, "Unauthorized", message);
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, value)], axum::Json(body.body())).into_response()
}

fn error(e: KvError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(e.body())).into_response();
    if let Some(secs) = e.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    response
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

/// The operation a request names, and the permission it needs.
enum Op<'a> {
    Set(&'a str),
    Get(&'a str, &'a str),
    Update(&'a str, &'a str),
    ListVersions(&'a str),
    Delete(&'a str),
    GetDeleted(&'a str),
    Recover(&'a str),
    Purge(&'a str),
}

impl Op<'_> {
    fn permission(&self) -> Permission {
        match self {
            Op::Set(_) | Op::Update(..) => Permission::Set,
            Op::Get(..) | Op::GetDeleted(_) => Permission::Get,
            Op::ListVersions(_) => Permission::List,
            Op::Delete(_) => Permission::Delete,
            Op::Recover(_) => Permission::Recover,
            Op::Purge(_) => Permission::Purge,
        }
    }
}

fn route<'a>(method: &Method, segments: &[&'a str]) -> Option<Op<'a>> {
    Some(match (method.as_str(), segments) {
        ("PUT", ["secrets", name]) => Op::Set(name),
        ("GET", ["secrets", name]) => Op::Get(name, ""),
        ("DELETE", ["secrets", name]) => Op::Delete(name),
        ("GET", ["secrets", name, "versions"]) => Op::ListVersions(name),
        // An empty last segment (`/secrets/NAME/`) is the latest version: how the SDK asks for it.
        ("GET", ["secrets", name, version]) => Op::Get(name, version),
        ("PATCH", ["secrets", name, version]) => Op::Update(name, version),
        ("GET", ["deletedsecrets", name]) => Op::GetDeleted(name),
        ("DELETE", ["deletedsecrets", name]) => Op::Purge(name),
        ("POST", ["deletedsecrets", name, "recover"]) => Op::Recover(name),
        _ => return None,
    })
}

fn answer(vault: &mut Vault, method: &Method, uri: &Uri, body: &[u8]) -> Response {
    let query = uri.query().unwrap_or("");
    let api_version = query.split('&').find_map(|pair| pair.strip_prefix("api-version="));
    match api_version {
        None => return error(KvError::bad("The 'api-version' query parameter is missing.")),
        Some(v) if !API_VERSIONS.contains(&v) => {
            return error(KvError::bad(format!("The specified version ({v}) is not recognized.")));
        }
        Some(_) => {}
    }
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let Some(op) = route(method, &segments) else {
        return error(KvError::new(404, "NotFound", "The fake serves no such route."));
    };
    if let Err(e) = vault.faults(op.permission()) {
        return error(e);
    }
    let parsed = || -> Result<Body, KvError> {
        serde_json::from_slice(body).map_err(|_| KvError::bad("The request body is not valid JSON."))
    };
    let result = match op {
        Op::Set(name) => parsed().and_then(|b| vault.set(name, b)),
        Op::Get(name, version) => vault.get(name, version),
        Op::Update(name, version) => parsed().and_then(|b| vault.update(name, version, b)),
        Op::ListVersions(name) => vault.list_versions(name),
        Op::Delete(name) => vault.delete(name),
        Op::GetDeleted(name) => vault.get_deleted(name),
        Op::Recover(name) => vault.recover(name),
        Op::Purge(name) => {
            return match vault.purge(name) {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => error(e),
            };
        }
    };
    match result {
        Ok(value) => ok(value),
        Err(e) => error(e),
    }
}
