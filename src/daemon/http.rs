//! The daemon's HTTP server: `/healthz`, `/readyz`, `/metrics`, `GET /v1/jobs[/{job}]` (what `status --json`
//! shows) and `POST /v1/jobs/{job}/rotate` (rotate now, with the bearer token from `[http] token_file`).
//!
//! Every answer that is not metrics is JSON; every error is `{"error": "..."}` naming what was wrong and what is
//! expected. Rotate-now checks the token before it looks at the job, so a caller without it learns nothing, not
//! even which jobs exist; a wrong token and a missing one get the same answer.

use super::{Daemon, metrics};
use crate::rotation::Trigger;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// No endpoint takes a body; anything larger than this is refused rather than read.
const MAX_BODY: u64 = 1024;

const ENDPOINTS: &str = "GET /healthz, GET /readyz, GET /metrics, GET /v1/jobs, GET /v1/jobs/{job}, \
                         POST /v1/jobs/{job}/rotate";

/// Serves on `listener` until the daemon's shutdown, on the daemon's tracker; returns the bound address.
pub(super) fn spawn(
    daemon: Arc<Daemon>,
    listener: tokio::net::TcpListener,
) -> Result<SocketAddr, super::DaemonError> {
    let addr = listener.local_addr().map_err(|e| super::DaemonError(format!("[http] listen: {e}")))?;
    let shutdown = daemon.shutdown.clone();
    let router = router(daemon.clone());
    daemon.tracker.spawn(async move {
        tracing::info!(%addr, "HTTP server listening");
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await
        {
            tracing::error!(%addr, error = %e, "HTTP server failed");
        }
    });
    Ok(addr)
}

fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/jobs", get(jobs))
        .route("/v1/jobs/{job}", get(job))
        .route("/v1/jobs/{job}/rotate", post(rotate))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(daemon)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn not_found(uri: Uri) -> Response {
    error(StatusCode::NOT_FOUND, format!("no such path `{}`: expected one of {ENDPOINTS}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on `{}`: expected one of {ENDPOINTS}", uri.path()),
    )
}

async fn healthz(State(daemon): State<Arc<Daemon>>) -> Response {
    match daemon.health.alive() {
        Ok(age) => {
            axum::Json(json!({ "status": "ok", "heartbeat_age_seconds": age.as_secs() })).into_response()
        }
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn readyz(State(daemon): State<Arc<Daemon>>) -> Response {
    let reasons = daemon.health.not_ready();
    if reasons.is_empty() {
        axum::Json(json!({ "status": "ready" })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({ "status": "not ready", "reasons": reasons })))
            .into_response()
    }
}

async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    let text = daemon.metrics.render(&daemon.runtime).await;
    ([(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE))], text).into_response()
}

async fn jobs(State(daemon): State<Arc<Daemon>>) -> Response {
    let runtime = &daemon.runtime;
    axum::Json(crate::status::statuses(runtime, runtime.engine.clock().now()).await).into_response()
}

async fn job(State(daemon): State<Arc<Daemon>>, Path(job): Path<String>) -> Response {
    match daemon.index(&job) {
        Some(index) => {
            let runtime = &daemon.runtime;
            let now = runtime.engine.clock().now();
            let status = crate::status::statuses_of(runtime, &[index], now).await.pop();
            axum::Json(status).into_response()
        }
        None => unknown_job(&daemon, &job),
    }
}

fn unknown_job(daemon: &Daemon, job: &str) -> Response {
    let names = daemon.runtime.job_names().iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    error(StatusCode::NOT_FOUND, format!("no job `{job}`: expected one of {names}"))
}

async fn rotate(State(daemon): State<Arc<Daemon>>, Path(job): Path<String>, headers: HeaderMap) -> Response {
    let too_long = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY);
    if too_long {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {MAX_BODY} bytes: expected none"),
        );
    }
    let Some(token) = &daemon.token else {
        return error(
            StatusCode::FORBIDDEN,
            "rotate-now is off: set `[http] token_file` to a file holding the bearer token to turn it on",
        );
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if !bool::from(presented.ct_eq(token.expose().as_bytes())) {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "expected `Authorization: Bearer <token>` with the token from `[http] token_file`",
        );
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let Some(index) = daemon.index(&job) else { return unknown_job(&daemon, &job) };
    if daemon.runtime.jobs[index].job.target.manual() {
        return error(
            StatusCode::CONFLICT,
            format!(
                "job `{job}` is manual (apply = \"manual\"): rotavault never sets its secret; a person sets it and \
                 pipes it to `rotavault import {job}`"
            ),
        );
    }
    if daemon.shutdown.is_cancelled() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "rotavault is stopping: try again once it has restarted",
        );
    }
    // Claimed here, before the answer, so a second request gets 409 and not a second task.
    let Some(claim) = daemon.claim(index) else {
        return error(
            StatusCode::CONFLICT,
            format!("job `{job}` is rotating now: try again when it has finished"),
        );
    };
    let task = daemon.clone();
    daemon.tracker.spawn(async move {
        let name = &task.runtime.jobs[index].job.name;
        match task.rotate(&claim, Trigger::Manual).await {
            Ok(outcome) => tracing::info!(job = %name, ?outcome, "rotation asked over HTTP done"),
            Err(e) => super::scheduler::log_failure(name, &e),
        }
        drop(claim);
        // The scheduler plans the job again from the new age; it has gone only if the daemon is stopping.
        let _ = task.replan.send(index);
    });
    (StatusCode::ACCEPTED, axum::Json(json!({ "job": job, "status": "started" }))).into_response()
}
