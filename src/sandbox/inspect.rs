//! The inspection interface under `/_sandbox/`, served only when the sandbox was started with `inspect` (404
//! otherwise): the in-process controls over HTTP, for the demo, scripts and tests in other processes. It shows
//! passwords on purpose; they are the sandbox's own test values.
//!
//! - `GET /_sandbox/resources`: `[{user, id, password, failed_logins, locked}]`
//! - `POST /_sandbox/faults` (a fault as JSON, flat as in the seed), `DELETE /_sandbox/faults`
//! - `POST /_sandbox/resources/{user}/password` `{"password": …}`, `POST /_sandbox/resources/{user}/unlock`
//! - `GET /_sandbox/log`: the request log
//! - `GET /_sandbox/late_commits`: `{"landed": N}`, the `commit_late` updates applied so far
//! - `POST /_sandbox/propagation` `{"delay": "5s"}`

use super::Sandbox;
use super::faults::Fault;
use axum::Json;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "errors": [message.into()] }))).into_response()
}

async fn body<T: DeserializeOwned>(request: Request) -> Result<T, Response> {
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .map_err(|_| problem(StatusCode::PAYLOAD_TOO_LARGE, "body too large"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| problem(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Propagation {
    #[serde(deserialize_with = "super::seed::duration_text")]
    delay: std::time::Duration,
}

/// Decodes `%XX` escapes in a path segment (user names may arrive with `@` as `%40`).
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub(super) async fn handle(sandbox: Sandbox, path: &str, request: Request) -> Response {
    let method = request.method().clone();
    let path = path.trim_end_matches('/');
    let lower = path.to_ascii_lowercase();
    match (&method, lower.as_str()) {
        (&Method::GET, "resources") => {
            let state = sandbox.state();
            let list: Vec<_> = state
                .tenant
                .accounts()
                .iter()
                .map(|a| {
                    json!({
                        "user": a.record.user_name(),
                        "id": a.record.id(),
                        "password": a.password(),
                        "failed_logins": a.failed_logins,
                        "locked": a.locked,
                    })
                })
                .collect();
            Json(list).into_response()
        }
        (&Method::GET, "log") => Json(sandbox.request_log()).into_response(),
        (&Method::GET, "late_commits") => Json(json!({ "landed": sandbox.late_commits() })).into_response(),
        (&Method::POST, "faults") => match body::<Fault>(request).await {
            Ok(fault) => {
                sandbox.add_fault(fault);
                StatusCode::NO_CONTENT.into_response()
            }
            Err(response) => response,
        },
        (&Method::DELETE, "faults") => {
            sandbox.clear_faults();
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::POST, "propagation") => match body::<Propagation>(request).await {
            Ok(p) => {
                sandbox.set_propagation_delay(p.delay);
                StatusCode::NO_CONTENT.into_response()
            }
            Err(response) => response,
        },
        (&Method::POST, _) if lower.starts_with("resources/") => {
            let Some((user, action)) = path["resources/".len()..].rsplit_once('/') else {
                return StatusCode::NOT_FOUND.into_response();
            };
            let Some(user) = percent_decode(user) else {
                return problem(StatusCode::BAD_REQUEST, "the user name is not valid percent-encoding");
            };
            if sandbox.state().tenant.find(&user).is_none() {
                return problem(StatusCode::NOT_FOUND, format!("no user {user:?}"));
            }
            match action.to_ascii_lowercase().as_str() {
                "unlock" => {
                    sandbox.unlock(&user);
                    StatusCode::NO_CONTENT.into_response()
                }
                "password" => match body::<NewPassword>(request).await {
                    Ok(p) => {
                        sandbox.set_password_behind_the_back(&user, &p.password);
                        StatusCode::NO_CONTENT.into_response()
                    }
                    Err(response) => response,
                },
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
