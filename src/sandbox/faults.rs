//! Fault injection: a test (Rust API), the seed or `POST /_sandbox/faults` names a call and what goes wrong with
//! it. Faults fire in the order they were added, each counting its `times` down and vanishing at zero; they act
//! where Autotask's own limits act (after the header check, inside the thread slot), so a `Delay` or `Hang` holds
//! a thread slot just as a slow real request does.
//!
//! Whether a faulted call still changes anything matters to recovery, so each action says so. `Delay` runs inside
//! the request's own handler, which the HTTP server drops when the client disconnects: a client that gives up
//! during the delay cancels the call. `CommitLate` is the server that finishes anyway, as IIS/ASMX does: the
//! update runs in a task of its own and lands whether or not anyone is still waiting for the answer.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A call the sandbox answers, by the name faults and the request log use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    ZoneInformation,
    ThresholdInformation,
    ResourcesQuery,
    ResourcesGet,
    ResourcesPatch,
    ResourcesPut,
    EntityInformation,
    SoapGetZoneInfo,
    SoapQuery,
    SoapUpdate,
}

impl Call {
    /// The snake_case name, as in the seed and the request log.
    pub fn name(self) -> &'static str {
        match self {
            Call::ZoneInformation => "zone_information",
            Call::ThresholdInformation => "threshold_information",
            Call::ResourcesQuery => "resources_query",
            Call::ResourcesGet => "resources_get",
            Call::ResourcesPatch => "resources_patch",
            Call::ResourcesPut => "resources_put",
            Call::EntityInformation => "entity_information",
            Call::SoapGetZoneInfo => "soap_get_zone_info",
            Call::SoapQuery => "soap_query",
            Call::SoapUpdate => "soap_update",
        }
    }
}

/// In the body of a `fail` fault on a SOAP call, stands for the request's `Authorization` header as received
/// (XML-escaped), so that a test can play a server or proxy that quotes the request it refused.
pub const ECHO_AUTHORIZATION: &str = "{authorization}";

/// In the body of a `fail` fault on a SOAP `update`, stands for the `Password` the request carries (XML-escaped).
pub const ECHO_PASSWORD: &str = "{password}";

/// What goes wrong with a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer `status` with `body` instead of doing the call; in SOAP, [`ECHO_AUTHORIZATION`] and
    /// [`ECHO_PASSWORD`] in `body` are filled in from the request.
    Fail { status: u16, body: String },
    /// Never answer (until the sandbox shuts down); nothing is done, ever.
    Hang,
    /// Wait, then do the call as usual. A client that disconnects during the wait cancels the call: nothing is
    /// done.
    Delay(Duration),
    /// Do the call (an update is applied), then never answer: the caller cannot know the outcome.
    ApplyThenDrop,
    /// SOAP `update` only: authenticate at once, then apply the update this long after it arrived and answer
    /// then, whether or not the client is still connected (a server that finishes a request its client gave up
    /// on). [`super::Sandbox::until_late_commits`] waits for it to land.
    CommitLate(Duration),
    /// `429` with `Retry-After: 1`.
    Throttle,
    /// `500` with the `Itgenatr005` thread-threshold body.
    Itgenatr005,
}

/// One injected fault. Serialized flat, as in the seed: `{call, action, times?, status?, body?, delay?}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FaultSpec", into = "FaultSpec")]
pub struct Fault {
    pub call: Call,
    pub action: FaultAction,
    /// How many calls it hits; `None` = every call until cleared.
    pub times: Option<u32>,
}

impl Fault {
    /// A fault on every call of `call` until cleared.
    pub fn always(call: Call, action: FaultAction) -> Fault {
        Fault { call, action, times: None }
    }

    /// A fault on the next `times` calls of `call`.
    pub fn times(call: Call, action: FaultAction, times: u32) -> Fault {
        Fault { call, action, times: Some(times) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionName {
    Fail,
    Hang,
    Delay,
    ApplyThenDrop,
    CommitLate,
    Throttle,
    Itgenatr005,
}

/// The flat wire form of a fault, shared by the TOML seed and the inspection JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    call: Call,
    action: ActionName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay: Option<String>,
}

impl TryFrom<FaultSpec> for Fault {
    type Error = String;

    fn try_from(spec: FaultSpec) -> Result<Fault, String> {
        if spec.times == Some(0) {
            return Err("times must be at least 1 (leave it out for \"always\")".to_string());
        }
        let is = |name| spec.action == name;
        if (spec.status.is_some() || spec.body.is_some()) && !is(ActionName::Fail) {
            return Err("status and body belong to action \"fail\" only".to_string());
        }
        if spec.delay.is_some() && !is(ActionName::Delay) && !is(ActionName::CommitLate) {
            return Err("delay belongs to actions \"delay\" and \"commit_late\" only".to_string());
        }
        if is(ActionName::CommitLate) && spec.call != Call::SoapUpdate {
            return Err(format!(
                "action \"commit_late\" applies to call \"soap_update\" only, not {:?}",
                spec.call.name()
            ));
        }
        let delay = |action: &str| -> Result<Duration, String> {
            let text =
                spec.delay.clone().ok_or(format!("action \"{action}\" needs delay, e.g. delay = \"2s\""))?;
            humantime::parse_duration(&text).map_err(|e| format!("invalid delay {text:?}: {e}"))
        };
        let action = match spec.action {
            ActionName::Fail => {
                let status = spec.status.unwrap_or(500);
                if !(100..=599).contains(&status) {
                    return Err(format!("status {status} is not an HTTP status"));
                }
                FaultAction::Fail { status, body: spec.body.unwrap_or_default() }
            }
            ActionName::Hang => FaultAction::Hang,
            ActionName::Delay => FaultAction::Delay(delay("delay")?),
            ActionName::ApplyThenDrop => FaultAction::ApplyThenDrop,
            ActionName::CommitLate => FaultAction::CommitLate(delay("commit_late")?),
            ActionName::Throttle => FaultAction::Throttle,
            ActionName::Itgenatr005 => FaultAction::Itgenatr005,
        };
        Ok(Fault { call: spec.call, action, times: spec.times })
    }
}

impl From<Fault> for FaultSpec {
    fn from(fault: Fault) -> FaultSpec {
        let mut spec = FaultSpec {
            call: fault.call,
            action: ActionName::Hang,
            times: fault.times,
            status: None,
            body: None,
            delay: None,
        };
        spec.action = match fault.action {
            FaultAction::Fail { status, body } => {
                spec.status = Some(status);
                spec.body = Some(body);
                ActionName::Fail
            }
            FaultAction::Hang => ActionName::Hang,
            FaultAction::Delay(d) => {
                spec.delay = Some(humantime::format_duration(d).to_string());
                ActionName::Delay
            }
            FaultAction::ApplyThenDrop => ActionName::ApplyThenDrop,
            FaultAction::CommitLate(d) => {
                spec.delay = Some(humantime::format_duration(d).to_string());
                ActionName::CommitLate
            }
            FaultAction::Throttle => ActionName::Throttle,
            FaultAction::Itgenatr005 => ActionName::Itgenatr005,
        };
        spec
    }
}

/// The active faults, in the order they were added.
#[derive(Debug, Default)]
pub(crate) struct FaultTable(Vec<Fault>);

impl FaultTable {
    pub(crate) fn add(&mut self, fault: Fault) {
        self.0.push(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The action of the first fault on `call`, counting it down.
    pub(crate) fn take(&mut self, call: Call) -> Option<FaultAction> {
        let index = self.0.iter().position(|f| f.call == call)?;
        let fault = &mut self.0[index];
        let action = fault.action.clone();
        if let Some(times) = &mut fault.times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.0.remove(index);
            }
        }
        Some(action)
    }
}
