//! The request log: one entry per REST or SOAP request (API, call, user name, status, time), for tests and
//! `GET /_sandbox/log`. It holds no secret by construction: there is no field a password could go in.

use super::Sandbox;
use super::faults::Call;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Entries kept; older ones are dropped, so a long-running `rotavault sandbox` stays small.
const KEEP: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Rest,
    Soap,
}

/// One request as the sandbox saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub api: Api,
    /// `None` for requests outside the simulated calls (an unknown path, `versioninformation`, a malformed SOAP
    /// envelope).
    pub call: Option<Call>,
    /// The user name presented (header, Basic auth, `?user=` or `<UserName>`), if any.
    pub user: Option<String>,
    /// The HTTP status answered; `None` when the request was never answered (a hang, apply-then-drop, or a
    /// client that left before the answer).
    pub status: Option<u16>,
    /// When it was answered, or known never to be.
    pub at: DateTime<Utc>,
    /// When it arrived: with `at`, the time the sandbox spent on it, so that a test sees requests that overlapped.
    pub arrived: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub(crate) struct RequestLog(Vec<LoggedRequest>);

impl RequestLog {
    pub(crate) fn entries(&self) -> Vec<LoggedRequest> {
        self.0.clone()
    }

    fn push(&mut self, entry: LoggedRequest) {
        if self.0.len() >= KEEP {
            self.0.drain(..KEEP / 10);
        }
        self.0.push(entry);
    }
}

/// One request being answered: what the log will say about it once its status is known.
pub(crate) struct Exchange {
    sandbox: Sandbox,
    pub(crate) api: Api,
    pub(crate) call: Option<Call>,
    pub(crate) user: Option<String>,
    arrived: DateTime<Utc>,
    recorded: bool,
}

/// A request whose client left before its answer (the handler was dropped) is logged too, unanswered.
impl Drop for Exchange {
    fn drop(&mut self) {
        if !self.recorded {
            self.record(None);
        }
    }
}

impl Exchange {
    pub(crate) fn new(sandbox: &Sandbox, api: Api, user: Option<String>) -> Exchange {
        Exchange { sandbox: sandbox.clone(), api, call: None, user, arrived: Utc::now(), recorded: false }
    }

    /// Logs the answer and hands it back.
    pub(crate) fn finish(mut self, response: Response) -> Response {
        self.record(Some(response.status().as_u16()));
        response
    }

    /// Logs a request that will never be answered, then waits for the sandbox to shut down (so a graceful
    /// shutdown is not held up by it) and gives a 503 that nobody is expected to read.
    pub(crate) async fn never_answer(mut self) -> Response {
        self.record(None);
        self.sandbox.until_shutdown().await;
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    }

    fn record(&mut self, status: Option<u16>) {
        self.recorded = true;
        let call = self.call.map(Call::name);
        tracing::debug!(api = ?self.api, call, user = self.user.as_deref(), status, "sandbox request");
        let entry = LoggedRequest {
            api: self.api,
            call: self.call,
            user: self.user.clone(),
            status,
            at: Utc::now(),
            arrived: self.arrived,
        };
        self.sandbox.state().log.push(entry);
    }
}
