//! HTTP-level tests of the Autotask target against a small fake: a `TcpListener` answering hand-written HTTP/1.1,
//! scripted per test. It is not a simulator (the sandbox is): it answers just what each test needs, records every
//! request it receives, and can hold or drop a connection, so that the client's order of calls, its headers and
//! bodies, its back-off, its thread limit and its reading of lost answers can be checked exactly.

use super::*;
use crate::store::memory::MemoryStore;
use crate::store::{Metadata, RotationId, SecretRef, Store};
use crate::target::autotask::xml::{Element, parse};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The engine's timeout of an apply once it sends, as the tests pass it.
const APPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A query answer in the shape of the wire page, with what real ATWS adds: typed values (`xsi:type`), a prefix
/// declared only in the answer, a nested UDF list, an empty field, and markup in values.
pub(super) const QUERY_ANSWER: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:q1="urn:example:types">
  <soap:Body>
<queryResponse xmlns="http://autotask.net/ATWS/v1_6/">
  <queryResult>
    <EntityResults>
      <Entity xsi:type="Resource">
        <id xsi:type="xsd:long">29682885</id>
        <UserDefinedFields><UserDefinedField><Name>Team</Name><Value>Ops &amp; Infra</Value></UserDefinedField></UserDefinedFields>
        <Active xsi:type="xsd:boolean">true</Active>
        <UserName>k3x9q2m7p4w8z1a@contoso.com</UserName>
        <FirstName>API</FirstName>
        <LastName>Optimize &lt;365&gt;</LastName>
        <Email>ops@contoso.com</Email>
        <Title xsi:type="q1:text">R&amp;D "lead" 'x'</Title>
        <OfficePhone/>
        <LicenseType>7</LicenseType>
        <UserType>4</UserType>
        <ResourceType>Employee</ResourceType>
        <DefaultServiceDeskRoleID>29683354</DefaultServiceDeskRoleID>
        <Password xsi:nil="true"/>
      </Entity>
    </EntityResults>
    <EntityResultType>resource</EntityResultType>
    <Errors/>
    <ReturnCode>1</ReturnCode>
  </queryResult>
</queryResponse>
  </soap:Body>
</soap:Envelope>"#;

const ADMIN: &str = "admin@contoso.com";
const ADMIN_SECRET: &str = "Ad#min<&>\"pw'1";
const ADMIN_CODE: &str = "ADMIN-CODE-27";
const JOB_CODE: &str = "JOB-CODE-27";
const USER_A: &str = "k3x9q2m7p4w8z1a@contoso.com";
const USER_B: &str = "b7y2@contoso.com";
const UPDATE_OK: &str = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body><updateResponse xmlns="http://autotask.net/ATWS/v1_6/"><updateResult><EntityResults><Entity xsi:type="Resource"><id>29682885</id></Entity></EntityResults><EntityResultType>resource</EntityResultType><Errors/><ReturnCode>1</ReturnCode></updateResult></updateResponse></soap:Body></soap:Envelope>"#;

/// One request as the fake received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query, as sent.
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    /// When the request had been read.
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn is(&self, path_start: &str) -> bool {
        self.path.to_ascii_lowercase().starts_with(&path_start.to_ascii_lowercase())
    }

    fn soap_action(&self) -> &str {
        self.header("SOAPAction").unwrap_or("").trim_matches('"').rsplit('/').next().unwrap_or("")
    }

    /// The text of the first element named `local` in a SOAP body.
    fn soap_text(&self, local: &str) -> Option<String> {
        parse(&self.body).ok()?.find(local).map(|e| e.text.clone())
    }
}

enum Reply {
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Read the request, then close without a word.
    Drop,
    /// Hold the answer this long (counted as in flight).
    After(Duration, Box<Reply>),
}

fn answer(status: u16, body: impl Into<String>) -> Reply {
    Reply::Answer { status, headers: Vec::new(), body: body.into() }
}

type Script = dyn Fn(&Seen, &str) -> Reply + Send + Sync;

struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    max_in_flight: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// Serves `script(request, base)` where `base` is `http://127.0.0.1:PORT`.
    async fn start(script: impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let base = format!("http://{addr}");
        let task = tokio::spawn({
            let (seen, in_flight, max_in_flight) = (seen.clone(), in_flight.clone(), max_in_flight.clone());
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else { return };
                    let (seen, in_flight, max, script, base) = (
                        seen.clone(),
                        in_flight.clone(),
                        max_in_flight.clone(),
                        script.clone(),
                        base.clone(),
                    );
                    tokio::spawn(async move {
                        let Some(request) = read_request(stream).await else { return };
                        let (request, mut stream) = request;
                        seen.lock().unwrap().push(request.clone());
                        let counted = !request.is("/atservicesrest/v1.0/zoneinformation");
                        if counted {
                            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(now, Ordering::SeqCst);
                        }
                        let mut reply = script(&request, &base);
                        while let Reply::After(wait, inner) = reply {
                            tokio::time::sleep(wait).await;
                            reply = *inner;
                        }
                        if let Reply::Answer { status, headers, body } = reply {
                            let mut head = format!(
                                "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n",
                                body.len()
                            );
                            for (k, v) in headers {
                                head.push_str(&format!("{k}: {v}\r\n"));
                            }
                            head.push_str("\r\n");
                            let _ = stream.write_all(head.as_bytes()).await;
                            let _ = stream.write_all(body.as_bytes()).await;
                            let _ = stream.flush().await;
                        }
                        if counted {
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                        }
                        let _ = stream.shutdown().await;
                    });
                }
            }
        });
        Self { addr, seen, max_in_flight, task }
    }

    fn lookup_url(&self) -> String {
        format!("http://{}/atservicesrest/", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, path_start: &str) -> usize {
        self.seen().iter().filter(|s| s.is(path_start)).count()
    }

    fn soap(&self, action: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.is("/ATServices/1.6/atws.asmx") && s.soap_action() == action)
            .collect()
    }
}

async fn read_request(mut stream: TcpStream) -> Option<(Seen, TcpStream)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    Some((Seen { method, path, headers, body, at: Instant::now() }, stream))
}

/// What a healthy tenant answers, for every call rotavault makes.
fn healthy(req: &Seen, base: &str) -> Reply {
    if req.is("/atservicesrest/v1.0/zoneinformation") {
        return answer(
            200,
            format!(r#"{{"zoneName":"Fake","url":"{base}/atservicesrest/","webUrl":"{base}/","ci":1}}"#),
        );
    }
    if req.is("/atservicesrest/V1.0/ThresholdInformation") {
        return answer(
            200,
            r#"{"externalRequestThreshold":10000,"requestThresholdTimeframe":60,"currentTimeframeRequestCount":12}"#,
        );
    }
    if req.is("/atservicesrest/V1.0/Resources/entityInformation") {
        return answer(
            200,
            r#"{"info":{"name":"Resource","canCreate":false,"canDelete":false,"canQuery":true,"canUpdate":true,"userAccessForCreate":"None","userAccessForDelete":"None","userAccessForQuery":"All","userAccessForUpdate":"All"}}"#,
        );
    }
    if req.is("/atservicesrest/V1.0/Resources/query") {
        let query: serde_json::Value = serde_json::from_str(&req.body).unwrap();
        let user = query["filter"][0]["value"].as_str().unwrap().to_owned();
        let items = serde_json::json!({"items":[{"id": 7, "userName": user, "isActive": true}],
            "pageDetails":{"count":1,"requestCount":500,"prevPageUrl":null,"nextPageUrl":null}});
        return answer(200, items.to_string());
    }
    if req.is("/ATServices/1.6/atws.asmx") {
        return match req.soap_action() {
            "getZoneInfo" => answer(
                200,
                format!(
                    r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><getZoneInfoResponse xmlns="http://autotask.net/ATWS/v1_6/"><getZoneInfoResult><URL>{base}/ATServices/1.6/atws.asmx</URL><ErrorCode>0</ErrorCode><DataBaseType>Sandbox</DataBaseType><CI>1</CI><WebUrl>{base}/</WebUrl></getZoneInfoResult></getZoneInfoResponse></soap:Body></soap:Envelope>"#
                ),
            ),
            "query" => {
                let sxml = req.soap_text("sXML").unwrap();
                let user = parse(&sxml).unwrap().find("expression").unwrap().text.clone();
                let mut escaped = String::new();
                crate::target::autotask::xml::push_escaped(&mut escaped, &user);
                answer(200, QUERY_ANSWER.replace(USER_A, &escaped))
            }
            "update" => answer(200, UPDATE_OK),
            other => answer(500, format!("no such action {other}")),
        };
    }
    answer(404, r#"{"errors":["not found"]}"#)
}

fn settings(fake: &Fake) -> TenantSettings {
    TenantSettings {
        zone_lookup_url: fake.lookup_url(),
        threads: 1,
        hourly_budget: 1000,
        timeout: Duration::from_secs(5),
        max_backoff: Duration::from_millis(50),
        zone_cache: None,
    }
}

async fn admin_source() -> AdminSource {
    let store = Arc::new(MemoryStore::new());
    let secret = SecretRef::new("autotask/admin", "autotask-admin");
    let payload =
        serde_json::json!({"username": ADMIN, "secret": ADMIN_SECRET, "integration_code": ADMIN_CODE});
    store
        .write_current(
            &secret,
            &SecretValue::new(payload.to_string()),
            &Metadata::new(None, chrono::Utc::now(), 1),
        )
        .await
        .unwrap();
    AdminSource { store, secret }
}

async fn target_with(settings: TenantSettings, users: &[&str]) -> AutotaskTarget {
    let tenant = AutotaskTenant::new(settings, admin_source().await).unwrap();
    AutotaskTarget::new(
        tenant,
        users.iter().map(|u| u.to_string()).collect(),
        JOB_CODE.into(),
        PayloadFormat::Json,
    )
    .unwrap()
}

async fn target(fake: &Fake, users: &[&str]) -> AutotaskTarget {
    target_with(settings(fake), users).await
}

fn info() -> RotationInfo {
    RotationInfo { job: "optimize365".into(), rotation_id: RotationId::new(), rotated_at: chrono::Utc::now() }
}

fn new_secret() -> SecretValue {
    autotask_policy().generate().unwrap()
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[tokio::test]
async fn apply_sends_the_whole_entity_back_with_the_new_password() {
    let fake = Fake::start(healthy).await;
    let target = target(&fake, &[USER_A]).await;
    let secret = new_secret();
    let payload = target.prepare(None, &secret, &info()).await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(payload.expose()).unwrap();
    assert_eq!(doc["username"], USER_A);
    assert_eq!(doc["zone_url"], fake.lookup_url(), "the zone's REST base, as the lookup returned it");
    assert_eq!(doc["integration_code"], JOB_CODE);

    target.apply(&payload, APPLY_TIMEOUT).await.unwrap();

    let soap: Vec<Seen> = fake.seen().into_iter().filter(|s| s.is("/ATServices/1.6/atws.asmx")).collect();
    let actions: Vec<&str> = soap.iter().map(Seen::soap_action).collect();
    assert_eq!(actions, ["query", "update"], "query first: update clears what it is not sent");
    for call in &soap {
        assert_eq!(call.method, "POST");
        assert_eq!(call.header("Authorization"), Some(basic(ADMIN, ADMIN_SECRET).as_str()));
        assert_eq!(call.header("Content-Type"), Some("text/xml; charset=utf-8"));
        assert_eq!(call.soap_text("IntegrationCode").as_deref(), Some(ADMIN_CODE));
    }
    assert_eq!(soap[1].header("SOAPAction"), Some("\"http://autotask.net/ATWS/v1_6/update\""));

    // Every element the query returned, unchanged and in order, then the new password.
    let queried = parse(QUERY_ANSWER).unwrap();
    let queried: Vec<&Element> =
        queried.find("Entity").unwrap().children.iter().filter(|f| f.name != "Password").collect();
    let sent = parse(&soap[1].body).unwrap();
    let sent = sent.find("Entity").unwrap();
    assert_eq!(sent.children.len(), queried.len() + 1);
    for (sent, queried) in sent.children.iter().zip(&queried) {
        assert_eq!(sent.name, queried.name);
        assert_eq!(sent.attributes, queried.attributes);
        assert_eq!(sent.children, queried.children);
        if queried.children.is_empty() {
            assert_eq!(sent.text, queried.text, "{}", sent.name);
        }
    }
    let password = sent.children.last().unwrap();
    assert_eq!(password.name, "Password");
    assert_eq!(password.text, secret.expose());
}

#[tokio::test]
async fn verify_sends_the_payloads_credential_and_a_401_is_one_failed_login() {
    let fake = Fake::start(|req, base| {
        if req.is("/atservicesrest/V1.0/ThresholdInformation")
            && req.header("Secret") != Some("right#Secret1")
        {
            return answer(401, "");
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let good = target.prepare(None, &SecretValue::new("right#Secret1"), &info()).await.unwrap();
    target.verify(&good).await.unwrap();
    let call = fake.seen().into_iter().find(|s| s.is("/atservicesrest/V1.0/ThresholdInformation")).unwrap();
    assert_eq!(call.method, "GET");
    assert_eq!(call.header("ApiIntegrationCode"), Some(JOB_CODE));
    assert_eq!(call.header("UserName"), Some(USER_A));
    assert_eq!(call.header("Secret"), Some("right#Secret1"));
    assert_eq!(fake.count("/ATServices/1.6/"), 0, "verify never touches SOAP");

    let bad = target.prepare(None, &new_secret(), &info()).await.unwrap();
    let err = target.verify(&bad).await.unwrap_err();
    assert!(matches!(err, TargetError::Unauthenticated { .. }), "{err}");
    assert_eq!(fake.count("/atservicesrest/V1.0/ThresholdInformation"), 2, "one good, one refused, no retry");
}

#[tokio::test]
async fn a_locked_account_or_a_bad_integration_code_is_not_a_failed_secret() {
    let fake = Fake::start(|req, base| {
        if req.is("/atservicesrest/V1.0/ThresholdInformation") {
            return match req.header("UserName") {
                Some(USER_A) => answer(401, r#"{"errors":["User account is locked."]}"#),
                _ => answer(500, r#"{"errors":["IntegrationCode is invalid."]}"#),
            };
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A, USER_B]).await;
    let on_a = target.prepare(None, &new_secret(), &info()).await.unwrap();
    let err = target.verify(&on_a).await.unwrap_err();
    assert!(matches!(err, TargetError::Invalid { .. }) && err.to_string().contains("locked"), "{err}");
    let on_b = target.prepare(Some(&on_a), &new_secret(), &info()).await.unwrap();
    let err = target.verify(&on_b).await.unwrap_err();
    assert!(
        matches!(err, TargetError::Invalid { .. }) && err.to_string().contains("IntegrationCode"),
        "{err}"
    );
    assert_eq!(fake.count("/atservicesrest/V1.0/ThresholdInformation"), 2);
}

#[tokio::test]
async fn throttles_are_waited_out_then_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let fake = Fake::start({
        let calls = calls.clone();
        move |req, base| {
            if req.is("/atservicesrest/V1.0/ThresholdInformation") {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => {
                        return Reply::Answer {
                            status: 429,
                            headers: vec![("Retry-After", "1".into())],
                            body: r#"{"errors":["The request threshold of 10000 requests per 60 minutes has been exceeded."]}"#.into(),
                        };
                    }
                    1 => return answer(500, r#"{"errors":["Itgenatr005: Thread Threshold Exceeded — The Autotask API thread threshold of 3 threads has been exceeded"]}"#),
                    _ => {}
                }
            }
            healthy(req, base)
        }
    })
    .await;
    let mut settings = settings(&fake);
    settings.max_backoff = Duration::from_secs(2);
    let target = target_with(settings, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    target.verify(&payload).await.unwrap();
    let calls: Vec<Seen> =
        fake.seen().into_iter().filter(|s| s.is("/atservicesrest/V1.0/ThresholdInformation")).collect();
    assert_eq!(calls.len(), 3, "429, Itgenatr005, then success");
    // Without the hint the first back-off would be at most 500 ms.
    assert!(calls[1].at - calls[0].at >= Duration::from_secs(1), "Retry-After is honoured");
}

#[tokio::test]
async fn a_throttle_that_outlasts_the_patience_is_transient_with_its_wait() {
    let fake = Fake::start(|req, base| {
        if req.is("/atservicesrest/V1.0/ThresholdInformation") {
            return Reply::Answer {
                status: 429,
                headers: vec![("Retry-After", "120".into())],
                body: String::new(),
            };
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    let err = target.verify(&payload).await.unwrap_err();
    match err {
        TargetError::Transient { retry_after, .. } => assert_eq!(retry_after, Some(Duration::from_secs(120))),
        other => panic!("expected Transient, got {other}"),
    }
    assert_eq!(
        fake.count("/atservicesrest/V1.0/ThresholdInformation"),
        1,
        "a long wait is the engine's to make"
    );
}

#[tokio::test]
async fn an_update_whose_answer_is_lost_is_unknown_and_never_resent() {
    let fake = Fake::start(|req, base| {
        if req.soap_action() == "update" {
            return Reply::Drop;
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    let err = target.apply(&payload, APPLY_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, TargetError::Unknown { .. }), "{err}");
    assert_eq!(fake.soap("update").len(), 1);
}

#[tokio::test]
async fn a_soap_update_without_the_queried_id_is_not_applied() {
    let other_id = UPDATE_OK.replace("<id>29682885</id>", "<id>555</id>");
    let no_entity = UPDATE_OK.replace(
        r#"<EntityResults><Entity xsi:type="Resource"><id>29682885</id></Entity></EntityResults>"#,
        "<EntityResults/>",
    );
    assert_ne!(no_entity, UPDATE_OK);
    for (body, returned) in [(other_id, "555"), (no_entity, "none")] {
        let fake = Fake::start(move |req, base| {
            if req.soap_action() == "update" {
                return answer(200, body.clone());
            }
            healthy(req, base)
        })
        .await;
        let target = target(&fake, &[USER_A]).await;
        let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
        let err = target.apply(&payload, APPLY_TIMEOUT).await.unwrap_err();
        assert!(matches!(err, TargetError::Unknown { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("29682885") && text.contains(returned) && text.contains("EntityResults"),
            "{text}"
        );
        assert_eq!(fake.soap("update").len(), 1, "never resent");
    }
}

#[tokio::test]
async fn an_update_whose_entity_results_hold_the_id_is_applied() {
    let padded = UPDATE_OK.replace("<id>29682885</id>", "<id> 029682885 </id>");
    let fake = Fake::start(move |req, base| {
        if req.soap_action() == "update" {
            return answer(200, padded.clone());
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    target.apply(&payload, APPLY_TIMEOUT).await.expect("the id in EntityResults proves the update");
}

#[tokio::test]
async fn an_unexplained_5xx_on_update_is_unknown_but_a_throttle_is_retried() {
    let updates = Arc::new(AtomicUsize::new(0));
    let fake = Fake::start({
        let updates = updates.clone();
        move |req, base| {
            if req.soap_action() == "update" && updates.fetch_add(1, Ordering::SeqCst) == 0 {
                return answer(500, r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>Itgenatr005: Thread Threshold Exceeded</faultstring></soap:Fault></soap:Body></soap:Envelope>"#);
            }
            if req.soap_action() == "update" {
                return answer(502, "<html>Bad gateway</html>");
            }
            healthy(req, base)
        }
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    let err = target.apply(&payload, APPLY_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, TargetError::Unknown { .. }), "{err}");
    assert_eq!(fake.soap("update").len(), 2, "the throttled update was retried, the 502 was not");
}

#[tokio::test]
async fn refusals_of_the_update_are_rejected_or_invalid() {
    let fake = Fake::start(|req, base| {
        if req.soap_action() == "update" {
            let password = req.soap_text("Password").unwrap();
            let message = if password.starts_with('x') {
                "Resource update() requires System Administrator level access.".to_owned()
            } else {
                format!("Password {password} matches one of the last 5 passwords.")
            };
            return answer(200, format!(
                r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><updateResponse xmlns="http://autotask.net/ATWS/v1_6/"><updateResult><EntityResults/><EntityResultType>resource</EntityResultType><Errors><ATWSError><Message>{}</Message></ATWSError></Errors><ReturnCode>-1</ReturnCode></updateResult></updateResponse></soap:Body></soap:Envelope>"#,
                message.replace('&', "&amp;").replace('<', "&lt;")
            ));
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let secret = SecretValue::new("a#bcDEF123-history");
    let payload = target.prepare(None, &secret, &info()).await.unwrap();
    let err = target.apply(&payload, APPLY_TIMEOUT).await.unwrap_err();
    match &err {
        TargetError::Rejected { reason, .. } => {
            assert!(reason.contains("last 5 passwords") && reason.contains("[redacted]"), "{reason}");
            assert!(!reason.contains(secret.expose()));
        }
        other => panic!("expected Rejected, got {other}"),
    }
    let payload = target.prepare(None, &SecretValue::new("x#bcDEF123"), &info()).await.unwrap();
    let err = target.apply(&payload, APPLY_TIMEOUT).await.unwrap_err();
    assert!(
        matches!(err, TargetError::Invalid { .. }) && err.to_string().contains("System Administrator"),
        "{err}"
    );
}

#[tokio::test]
async fn an_admin_that_does_not_authenticate_blocks_the_tenant_and_is_never_presented_again() {
    let fake = Fake::start(|req, base| {
        if req.is("/ATServices/1.6/") {
            return answer(401, "");
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    let err = target.apply(&payload, APPLY_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, TargetError::Blocked { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("the admin credential in memory store secret `autotask/admin` does not authenticate"),
        "{err}"
    );
    assert_eq!(fake.count("/ATServices/1.6/"), 1);
    // Neither a second apply nor `check --connect` presents the same credential again.
    let err = target.apply(&payload, APPLY_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, TargetError::Blocked { .. }), "{err}");
    assert!(err.to_string().contains("does not present it again"), "{err}");
    let checks = target.connect_checks().await;
    assert!(checks.iter().any(|c| !c.ok && c.detail.contains("not tried")), "{checks:?}");
    let logins = fake
        .seen()
        .iter()
        .filter(|s| s.header("Authorization").is_some() || s.header("Secret").is_some())
        .count();
    assert_eq!(logins, 1, "a refused admin login is not repeated");
    assert!(target.blocked().await.is_some_and(|why| why.contains("admin credential refused")));
}

#[tokio::test]
async fn apply_refuses_a_payload_for_a_user_the_job_does_not_name() {
    let fake = Fake::start(healthy).await;
    let target = target(&fake, &[USER_A]).await;
    let other = serde_json::json!({"username": "ceo@contoso.com", "secret": "x#y1Zabc", "integration_code": JOB_CODE});
    let err = target.apply(&SecretValue::new(other.to_string()), APPLY_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, TargetError::Invalid { .. }), "{err}");
    assert_eq!(fake.count("/ATServices/1.6/"), 0);
}

#[tokio::test]
async fn errors_never_carry_a_header_or_body_that_was_sent() {
    let fake = Fake::start(|req, base| {
        if req.is("/atservicesrest/V1.0/ThresholdInformation") {
            return answer(500, r#"{"errors":["IntegrationCode is invalid."]}"#);
        }
        if req.soap_action() == "update" {
            return Reply::Drop;
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let secret = new_secret();
    let payload = target.prepare(None, &secret, &info()).await.unwrap();
    let mut errors = vec![
        target.verify(&payload).await.unwrap_err(),
        target.apply(&payload, APPLY_TIMEOUT).await.unwrap_err(),
    ];

    // Nothing listening: a connection refused before anything was sent.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let mut unreachable = settings(&fake);
    unreachable.zone_lookup_url = format!("http://{closed}/atservicesrest/");
    let dead = target_with(unreachable, &[USER_A]).await;
    let refused = dead.prepare(None, &secret, &info()).await.unwrap_err();
    assert!(matches!(refused, TargetError::Transient { .. }), "{refused}");
    errors.push(refused);
    assert!(matches!(errors[0], TargetError::Invalid { .. }), "{}", errors[0]);
    assert!(matches!(errors[1], TargetError::Unknown { .. }), "{}", errors[1]);

    let forbidden = [
        secret.expose().to_owned(),
        ADMIN_SECRET.to_owned(),
        basic(ADMIN, ADMIN_SECRET),
        basic(ADMIN, ADMIN_SECRET).trim_start_matches("Basic ").to_owned(),
        "Authorization".into(),
        "Secret:".into(),
        "\"secret\"".into(),
        "Password".into(),
        "sXML".into(),
        "Envelope".into(),
        ADMIN_CODE.into(),
        JOB_CODE.into(),
        "reqwest".into(),
    ];
    for error in &errors {
        for text in [error.to_string(), format!("{error:?}")] {
            for bad in &forbidden {
                assert!(!text.contains(bad.as_str()), "error {text:?} carries {bad:?}");
            }
        }
    }
    assert!(
        format!("{target:?}").find(JOB_CODE).is_none(),
        "Debug of the target carries no integration code"
    );
}

#[tokio::test]
async fn one_request_per_endpoint_is_in_flight_with_one_thread() {
    let fake = Fake::start(|req, base| {
        if req.is("/atservicesrest/V1.0/ThresholdInformation") {
            return Reply::After(Duration::from_millis(150), Box::new(healthy(req, base)));
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    let (a, b, c) = tokio::join!(target.verify(&payload), target.verify(&payload), target.verify(&payload));
    a.unwrap();
    b.unwrap();
    c.unwrap();
    assert_eq!(fake.count("/atservicesrest/V1.0/ThresholdInformation"), 3);
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_hourly_budget_refuses_with_the_wait_until_it_refills() {
    let fake = Fake::start(healthy).await;
    let mut settings = settings(&fake);
    settings.hourly_budget = 1;
    let target = target_with(settings, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    target.verify(&payload).await.unwrap();
    match target.verify(&payload).await.unwrap_err() {
        TargetError::Transient { retry_after: Some(wait), .. } => {
            assert!(wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600), "{wait:?}")
        }
        other => panic!("expected Transient with a wait, got {other}"),
    }
    assert_eq!(fake.count("/atservicesrest/V1.0/ThresholdInformation"), 1, "the refused call was never sent");
    assert_eq!(
        fake.count("/atservicesrest/v1.0/zoneInformation"),
        1,
        "zone lookups are not budgeted, and cached"
    );
}

#[tokio::test]
async fn requests_are_counted_by_endpoint_and_status_and_the_budget_by_what_it_spent() {
    let calls = Arc::new(AtomicUsize::new(0));
    let fake = Fake::start({
        let calls = calls.clone();
        move |req, base| {
            if req.is("/atservicesrest/V1.0/ThresholdInformation")
                && calls.fetch_add(1, Ordering::SeqCst) == 0
            {
                return answer(429, r#"{"errors":["The request threshold has been exceeded."]}"#);
            }
            healthy(req, base)
        }
    })
    .await;
    let mut settings = settings(&fake);
    settings.hourly_budget = 2;
    let target = target_with(settings, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    target.verify(&payload).await.unwrap();
    target.verify(&payload).await.unwrap_err();
    let counts = target.tenant.request_counts();
    let count = |endpoint: &str, status: &str| {
        counts.iter().find(|((e, s), _)| *e == endpoint && s == status).map_or(0, |(_, n)| *n)
    };
    assert_eq!(count("zone_lookup", "200"), 1, "{counts:?}");
    assert_eq!(count("threshold_information", "429"), 1, "{counts:?}");
    assert_eq!(count("threshold_information", "200"), 1, "{counts:?}");
    assert_eq!(count("threshold_information", "over_budget"), 1, "{counts:?}");
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert_eq!(target.tenant.budget_used(), (2, 2), "the zone lookup is not budgeted");
}

#[tokio::test]
async fn a_zone_that_fails_is_looked_up_again_once() {
    let failures = Arc::new(AtomicUsize::new(0));
    let fake = Fake::start({
        let failures = failures.clone();
        move |req, base| {
            if req.is("/atservicesrest/V1.0/ThresholdInformation")
                && failures.fetch_add(1, Ordering::SeqCst) == 1
            {
                return answer(503, "<html>Service Unavailable</html>");
            }
            healthy(req, base)
        }
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    target.verify(&payload).await.unwrap();
    assert_eq!(fake.count("/atservicesrest/v1.0/zoneInformation"), 1, "cached");
    target.verify(&payload).await.unwrap();
    assert_eq!(fake.count("/atservicesrest/v1.0/zoneInformation"), 2, "re-resolved after the 503");
    assert_eq!(fake.count("/atservicesrest/V1.0/ThresholdInformation"), 3);
}

#[tokio::test]
async fn alternating_users_take_turns_and_describe_says_so() {
    let fake = Fake::start(healthy).await;
    let target = target(&fake, &[USER_A, USER_B]).await;
    let first = target.prepare(None, &new_secret(), &info()).await.unwrap();
    assert!(first.expose().contains(USER_A));
    let second = target.prepare(Some(&first), &new_secret(), &info()).await.unwrap();
    assert!(second.expose().contains(USER_B));
    let third = target.prepare(Some(&second), &new_secret(), &info()).await.unwrap();
    assert!(third.expose().contains(USER_A));
    assert_eq!(target.describe().detail, format!("Autotask API user {USER_A} (alternating with {USER_B})"));
    assert_eq!(target.describe().kind, "autotask");
    assert_eq!(target.policy(), autotask_policy());

    let err = target.payload_for("someone@else", &new_secret(), &info()).await.unwrap_err();
    assert!(matches!(err, TargetError::Invalid { .. }));
    let imported =
        target.payload_for(&USER_B.to_uppercase(), &SecretValue::new("x#Y1abcd"), &info()).await.unwrap();
    assert!(imported.expose().contains(USER_B), "the job's spelling of the user");
}

#[tokio::test]
async fn the_bare_secret_format_is_for_one_user_only() {
    let fake = Fake::start(healthy).await;
    let tenant = AutotaskTenant::new(settings(&fake), admin_source().await).unwrap();
    let two = vec![USER_A.to_owned(), USER_B.to_owned()];
    assert!(AutotaskTarget::new(tenant.clone(), two, JOB_CODE.into(), PayloadFormat::Secret).is_err());
    let one =
        AutotaskTarget::new(tenant, vec![USER_A.to_owned()], JOB_CODE.into(), PayloadFormat::Secret).unwrap();
    let secret = new_secret();
    let payload = one.prepare(None, &secret, &info()).await.unwrap();
    assert_eq!(payload, secret);
    one.apply(&payload, APPLY_TIMEOUT).await.unwrap();
    one.verify(&payload).await.unwrap();
    let verify = fake.seen().into_iter().find(|s| s.is("/atservicesrest/V1.0/ThresholdInformation")).unwrap();
    assert_eq!(verify.header("UserName"), Some(USER_A));
    assert_eq!(verify.header("ApiIntegrationCode"), Some(JOB_CODE));
}

#[tokio::test]
async fn settings_out_of_range_are_invalid() {
    for bad in [
        TenantSettings { threads: 0, ..TenantSettings::default() },
        TenantSettings { threads: 4, ..TenantSettings::default() },
        TenantSettings { hourly_budget: 0, ..TenantSettings::default() },
        TenantSettings { zone_lookup_url: "ftp://x/".into(), ..TenantSettings::default() },
    ] {
        assert!(matches!(AutotaskTenant::new(bad, admin_source().await), Err(TargetError::Invalid { .. })));
    }
    let tenant = AutotaskTenant::new(TenantSettings::default(), admin_source().await).unwrap();
    assert_eq!(tenant.settings().zone_lookup_url, DEFAULT_ZONE_LOOKUP_URL);
    for (users, code) in [
        (vec![], JOB_CODE),
        (vec![USER_A, USER_A], JOB_CODE),
        (vec![USER_A, USER_B, "c@x"], JOB_CODE),
        (vec![USER_A], " "),
    ] {
        let users = users.into_iter().map(str::to_owned).collect();
        assert!(AutotaskTarget::new(tenant.clone(), users, code.into(), PayloadFormat::Json).is_err());
    }
}

#[tokio::test]
async fn a_plain_http_zone_lookup_or_zone_off_this_machine_is_refused_naming_the_url() {
    let settings = TenantSettings {
        zone_lookup_url: "http://webservices2.autotask.net/atservicesrest/".into(),
        ..TenantSettings::default()
    };
    let err = AutotaskTenant::new(settings, admin_source().await).unwrap_err();
    assert!(matches!(err, TargetError::Invalid { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("http://webservices2.autotask.net/atservicesrest/") && text.contains("expected https"),
        "{text}"
    );

    // A zone lookup that answers with a plain-http zone elsewhere: no call follows it, and nothing is retried.
    let fake = Fake::start(|req, base| {
        if req.is("/atservicesrest/v1.0/zoneinformation") {
            return answer(
                200,
                r#"{"zoneName":"X","url":"http://webservices9.autotask.net/atservicesrest/","ci":1}"#,
            );
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let err = target.prepare(None, &new_secret(), &info()).await.unwrap_err();
    assert!(matches!(err, TargetError::Invalid { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("http://webservices9.autotask.net/atservicesrest/") && text.contains("expected https"),
        "{text}"
    );
    assert_eq!(fake.count("/atservicesrest/v1.0/zoneinformation"), 1);
    assert_eq!(fake.seen().len(), 1, "nothing is sent to the plain-http zone");
}

#[tokio::test]
async fn rest_paths_pin_v1_0_whatever_the_lookup_url_or_the_zone_says() {
    let fake = Fake::start(|req, base| {
        if req.is("/atservicesrest/v1.0/zoneinformation") {
            return answer(
                200,
                format!(r#"{{"zoneName":"Fake","url":"{base}/atservicesrest/V2.0/","ci":1}}"#),
            );
        }
        healthy(req, base)
    })
    .await;
    let settings =
        TenantSettings { zone_lookup_url: format!("{}V2.0/", fake.lookup_url()), ..settings(&fake) };
    let target = target_with(settings, &[USER_A]).await;
    let payload = target.prepare(None, &new_secret(), &info()).await.unwrap();
    target.verify(&payload).await.expect("verified at V1.0");
    target.apply(&payload, APPLY_TIMEOUT).await.expect("applied");
    let rest: Vec<String> =
        fake.seen().into_iter().filter(|s| s.is("/atservicesrest/")).map(|s| s.path).collect();
    assert!(rest.len() >= 2, "{rest:?}");
    for path in &rest {
        assert!(path.starts_with("/atservicesrest/V1.0/"), "{path}");
    }
    let stored: serde_json::Value = serde_json::from_str(payload.expose()).unwrap();
    assert_eq!(
        stored["zone_url"],
        format!("http://{}/atservicesrest/", fake.addr),
        "the base, without a version"
    );
}

#[tokio::test]
async fn connect_checks_pass_on_a_healthy_tenant() {
    let fake = Fake::start(healthy).await;
    let target = target(&fake, &[USER_A, USER_B]).await;
    let checks = target.connect_checks().await;
    let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("zone of `{USER_A}`").as_str(),
            &format!("zone of `{USER_B}`"),
            "SOAP 1.6 endpoint",
            "admin credential",
            "admin REST login",
            "admin SOAP login",
            "admin may update resources",
            &format!("API user `{USER_A}`"),
            &format!("API user `{USER_B}`"),
        ]
    );
    assert_eq!(fake.soap("update").len(), 0, "checks change nothing");
    assert!(
        fake.seen()
            .iter()
            .all(|s| s.header("Secret").is_none_or(|v| v != ADMIN_SECRET)
                || s.header("UserName") == Some(ADMIN))
    );
}

#[tokio::test]
async fn connect_checks_spare_the_lockout_and_say_what_to_fix() {
    let fake = Fake::start(|req, base| {
        if req.is("/atservicesrest/V1.0/ThresholdInformation") {
            return answer(401, "");
        }
        if req.is("/atservicesrest/V1.0/Resources") {
            return answer(200, r#"{"items":[],"pageDetails":{"count":0}}"#);
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let checks = target.connect_checks().await;
    let rest = checks.iter().find(|c| c.name == "admin REST login").unwrap();
    assert!(!rest.ok && rest.fix.is_some(), "{rest:?}");
    let soap = checks.iter().find(|c| c.name == "admin SOAP login").unwrap();
    assert!(!soap.ok && soap.detail.starts_with("not tried"), "{soap:?}");
    assert_eq!(fake.soap("query").len(), 0, "one failed admin login, not two");
    assert_eq!(fake.count("/atservicesrest/V1.0/ThresholdInformation"), 1);
}

/// A tenant that remembers passwords: `update` sets one (as the admin, by Basic auth), the REST verify accepts
/// only the one set. Enough to run whole rotations through the engine.
fn stateful(
    passwords: Arc<Mutex<std::collections::HashMap<String, String>>>,
) -> impl Fn(&Seen, &str) -> Reply {
    move |req, base| {
        let known = |user: &str| passwords.lock().unwrap().get(user).cloned();
        if req.is("/atservicesrest/V1.0/ThresholdInformation") {
            let user = req.header("UserName").unwrap_or("");
            if known(user).is_none() || req.header("Secret") != known(user).as_deref() {
                return answer(401, "");
            }
        }
        if req.is("/ATServices/1.6/atws.asmx") && req.soap_action() != "getZoneInfo" {
            let admin = known(ADMIN).unwrap();
            if req.header("Authorization") != Some(basic(ADMIN, &admin).as_str()) {
                return answer(401, "");
            }
            if req.soap_action() == "update" {
                let sent = parse(&req.body).unwrap();
                let entity = sent.find("Entity").unwrap();
                let user = entity.child("UserName").unwrap().text.clone();
                let password = entity.child("Password").unwrap().text.clone();
                passwords.lock().unwrap().insert(user, password);
            }
        }
        healthy(req, base)
    }
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test]
async fn whole_rotations_through_the_engine_alternate_self_rotate_and_log_no_secret() {
    use crate::rotation::state::StateDir;
    use crate::rotation::{Engine, Job, JobStore, Settings, Trigger};

    let logs = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let passwords = Arc::new(Mutex::new(std::collections::HashMap::from([
        (ADMIN.to_owned(), ADMIN_SECRET.to_owned()),
        (USER_A.to_owned(), "Initial#A1".to_owned()),
        (USER_B.to_owned(), "Initial#B1".to_owned()),
    ])));
    let fake = Fake::start(stateful(passwords.clone())).await;
    let admin = admin_source().await;
    let tenant = AutotaskTenant::new(settings(&fake), admin.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine_settings = Settings {
        settle: Duration::from_millis(10),
        verify_backoff: Duration::from_millis(10),
        call_timeout: Duration::from_secs(20),
        ..Settings::default()
    };
    let engine = Engine::new(
        engine_settings,
        Arc::new(crate::schedule::SystemClock),
        StateDir::new(dir.path()),
        false,
    );

    let target = Arc::new(
        AutotaskTarget::new(
            tenant.clone(),
            vec![USER_A.into(), USER_B.into()],
            JOB_CODE.into(),
            PayloadFormat::Json,
        )
        .unwrap(),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let slot = SecretRef::new("autotask/optimize365", "optimize365");
    let job = Job {
        name: "optimize365".into(),
        target: target.clone(),
        stores: vec![JobStore { label: "mem".into(), store: store.clone(), secret: slot.clone() }],
        policy: target.policy(),
    };
    let current_user = async || {
        let current = store.current(&slot).await.unwrap().unwrap().value;
        let payload = Payload::from_json(&current).unwrap();
        (payload.credential.username, payload.credential.secret)
    };

    engine.rotate(&job, Trigger::Manual).await.unwrap();
    let (user, secret) = current_user().await;
    assert_eq!(user, USER_A);
    assert_eq!(passwords.lock().unwrap()[USER_A], secret.expose(), "Autotask has what the store holds");
    engine.rotate(&job, Trigger::Manual).await.unwrap();
    let (user, secret) = current_user().await;
    assert_eq!(user, USER_B, "the second rotation sets the other user");
    assert_eq!(passwords.lock().unwrap()[USER_B], secret.expose());

    // The admin user rotates itself: apply reads the old admin secret from the current slot, and the next job's
    // apply reads the new one.
    let admin_target = Arc::new(
        AutotaskTarget::new(tenant.clone(), vec![ADMIN.into()], ADMIN_CODE.into(), PayloadFormat::Json)
            .unwrap(),
    );
    let admin_job = Job {
        name: "autotask-admin".into(),
        target: admin_target.clone(),
        stores: vec![JobStore {
            label: "admin".into(),
            store: admin.store.clone(),
            secret: admin.secret.clone(),
        }],
        policy: admin_target.policy(),
    };
    engine.rotate(&admin_job, Trigger::Manual).await.unwrap();
    let new_admin = admin.read().await.unwrap();
    assert_ne!(new_admin.secret.expose(), ADMIN_SECRET);
    assert_eq!(passwords.lock().unwrap()[ADMIN], new_admin.secret.expose());
    engine.rotate(&job, Trigger::Manual).await.unwrap();
    assert_eq!(current_user().await.0, USER_A, "rotations go on with the rotated admin credential");

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("rotation complete") && logs.contains("Autotask accepted the new password"),
        "{logs}"
    );
    let mut secrets: Vec<String> = passwords.lock().unwrap().values().cloned().collect();
    secrets.push(ADMIN_SECRET.to_owned());
    secrets.push(basic(ADMIN, ADMIN_SECRET));
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "the logs carry a secret");
    }
}

mod echo;

#[tokio::test(start_paused = true)]
async fn a_wait_for_the_admins_own_rotation_sends_nothing_and_ends_transient_outside_the_apply_timeout() {
    let source = admin_source().await;
    // The admin job has a value pending: its current secret may already be dead, so no apply presents it.
    let pending =
        serde_json::json!({"username": ADMIN, "secret": "N3w-admin-secret", "integration_code": ADMIN_CODE});
    let id = RotationId::new();
    source
        .store
        .stage(
            &source.secret,
            &SecretValue::new(pending.to_string()),
            &id,
            &Metadata::new(Some(id.clone()), chrono::Utc::now(), 2),
        )
        .await
        .unwrap();
    let settings = TenantSettings {
        // Nothing may be sent: a lookup or a call here would fail the test.
        zone_lookup_url: "http://127.0.0.1:9/atservicesrest/".into(),
        ..TenantSettings::default()
    };
    let tenant = AutotaskTenant::new(settings, source).unwrap();
    let target =
        AutotaskTarget::new(tenant, vec![USER_A.into()], JOB_CODE.into(), PayloadFormat::Json).unwrap();
    let credential = payload::Credential {
        username: USER_A.into(),
        secret: new_secret(),
        integration_code: JOB_CODE.into(),
    };
    let payload =
        payload::Payload::new(credential, "https://webservices2.autotask.net/atservicesrest/", &info())
            .to_json();
    let started = tokio::time::Instant::now();
    // The apply's own timeout is a second; the wait is a minute, and it is not cut short into "unknown".
    let err = target.apply(&payload, Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(err, TargetError::Transient { .. }), "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert!(started.elapsed() >= ADMIN_ROTATION_WAIT, "waited {:?}", started.elapsed());
}
