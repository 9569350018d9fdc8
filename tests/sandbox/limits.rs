//! The thread limit (both answers) and every fault action, set from Rust and from the seed.

use crate::support::*;
use reqwest::Method;
use rotavault::sandbox::{Call, Fault, FaultAction, Seed, ThreadLimitResponse};
use std::time::Duration;
use tokio::time::Instant;

/// Four concurrent `ThresholdInformation` calls while each admitted one is held for a while; the answers sorted.
async fn four_at_once(run: &Running) -> Vec<(u16, Option<String>, String)> {
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let request = run.rest_as(Method::GET, "V1.0/ThresholdInformation", USER, USER_PW);
        requests.spawn(async move {
            let response = request.send().await.expect("request");
            let retry =
                response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
            (response.status().as_u16(), retry, response.text().await.expect("body"))
        });
    }
    let mut answers = requests.join_all().await;
    answers.sort();
    answers
}

#[tokio::test]
async fn thread_limit_refuses_the_fourth_concurrent_request_with_either_answer() {
    let run = start(seed()).await;
    run.sandbox
        .add_fault(Fault::always(Call::ThresholdInformation, FaultAction::Delay(Duration::from_millis(600))));

    let answers = four_at_once(&run).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [200, 200, 200, 429], "{answers:?}");
    assert_eq!(answers[3].1.as_deref(), Some("1"), "Retry-After: 1");

    run.sandbox.set_thread_limit_response(ThreadLimitResponse::Itgenatr005);
    let answers = four_at_once(&run).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [200, 200, 200, 500], "{answers:?}");
    assert!(answers[3].2.contains("Itgenatr005: Thread Threshold Exceeded"), "{answers:?}");
    assert!(answers[3].2.contains("thread threshold of 3 threads"), "{answers:?}");
}

#[tokio::test]
async fn thread_limit_is_per_integration_code_and_endpoint() {
    let mut seed = seed();
    seed.integration_codes.push("OTHER-CODE".to_string());
    let run = start(seed).await;
    run.sandbox.add_fault(Fault::times(Call::ThresholdInformation, FaultAction::Hang, 3));
    let mut held = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let request = run.rest_as(Method::GET, "V1.0/ThresholdInformation", USER, USER_PW);
        held.spawn(request.send());
    }
    // A hang is logged (status None) when it starts: then all three hold their slots.
    while run.sandbox.request_log().iter().filter(|e| e.status.is_none()).count() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(run.threshold_status(USER, USER_PW).await, 429, "the endpoint is full");
    let other = run.rest_as(Method::GET, &format!("V1.0/Resources/{USER_ID}"), USER, USER_PW).send().await;
    assert_eq!(other.expect("other endpoint").status().as_u16(), 200, "another endpoint has its own slots");
    let other_code = run
        .rest(Method::GET, "V1.0/ThresholdInformation")
        .header("ApiIntegrationCode", "OTHER-CODE")
        .header("UserName", USER)
        .header("Secret", USER_PW)
        .send()
        .await;
    assert_eq!(other_code.expect("other code").status().as_u16(), 200, "another code has its own slots");
    held.abort_all();
}

#[tokio::test]
async fn fail_fault_answers_its_status_and_body_and_counts_down() {
    let run = start(seed()).await;
    let body = r#"{"errors":["sandbox says no"]}"#.to_string();
    run.sandbox.add_fault(Fault::times(
        Call::ResourcesGet,
        FaultAction::Fail { status: 503, body: body.clone() },
        2,
    ));
    let path = format!("V1.0/Resources/{USER_ID}");
    for _ in 0..2 {
        let response = run.rest_as(Method::GET, &path, USER, USER_PW).send().await.expect("request");
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.text().await.expect("body"), body);
    }
    let third = run.rest_as(Method::GET, &path, USER, USER_PW).send().await.expect("request");
    assert_eq!(third.status().as_u16(), 200, "times = 2 is used up");
}

#[tokio::test]
async fn hang_fault_never_answers() {
    let run = start(seed()).await;
    run.sandbox.add_fault(Fault::times(Call::ThresholdInformation, FaultAction::Hang, 1));
    let result = run
        .rest_as(Method::GET, "V1.0/ThresholdInformation", USER, USER_PW)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    let log = run.sandbox.request_log();
    assert_eq!(log.last().map(|e| e.status), Some(None), "logged as never answered");
    assert_eq!(run.threshold_status(USER, USER_PW).await, 200);
}

#[tokio::test]
async fn delay_fault_delays_then_answers() {
    let run = start(seed()).await;
    let delay = Duration::from_millis(300);
    run.sandbox.add_fault(Fault::times(Call::ThresholdInformation, FaultAction::Delay(delay), 1));
    let began = Instant::now();
    assert_eq!(run.threshold_status(USER, USER_PW).await, 200);
    assert!(began.elapsed() >= delay);
}

#[tokio::test]
async fn apply_then_drop_applies_the_update_without_answering() {
    let run = start(seed()).await;
    run.sandbox.add_fault(Fault::times(Call::SoapUpdate, FaultAction::ApplyThenDrop, 1));
    let new = "Dr!pped-answer0";
    let entity = with_password(&run.entity(USER_ID).await, new);
    let result = run
        .soap_request(
            "update",
            Some((ADMIN, ADMIN_PW)),
            Some(CODE),
            &format!("<Entities>{entity}</Entities>"),
        )
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(new), "the update was applied");
    assert!(run.sandbox.authenticates(USER, new));
}

#[tokio::test]
async fn throttle_fault_is_429_with_retry_after() {
    let run = start(seed()).await;
    run.sandbox.add_fault(Fault::times(Call::ResourcesQuery, FaultAction::Throttle, 1));
    let query = serde_json::json!({ "filter": [{ "op": "eq", "field": "id", "value": USER_ID }] });
    let response = run
        .rest_as(Method::POST, "V1.0/Resources/query", USER, USER_PW)
        .json(&query)
        .send()
        .await
        .expect("query");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
}

#[tokio::test]
async fn itgenatr005_fault_is_500_naming_the_code() {
    let run = start(seed()).await;
    run.sandbox.add_fault(Fault::times(Call::SoapQuery, FaultAction::Itgenatr005, 1));
    let (status, body) = run.query_id(USER, USER_PW, USER_ID).await;
    assert_eq!(status, 500);
    assert!(body.contains("Itgenatr005"), "{body}");
    assert_eq!(run.query_id(USER, USER_PW, USER_ID).await.0, 200);
}

#[tokio::test]
async fn clear_faults_removes_them_all() {
    let run = start(seed()).await;
    run.sandbox.add_fault(Fault::always(Call::ThresholdInformation, FaultAction::Throttle));
    assert_eq!(run.threshold_status(USER, USER_PW).await, 429);
    run.sandbox.clear_faults();
    assert_eq!(run.threshold_status(USER, USER_PW).await, 200);
}

#[tokio::test]
async fn seeded_faults_hit_calls_without_credentials_too() {
    let mut seed: Seed = Seed::from_toml(
        r#"
        [[faults]]
        call = "zone_information"
        action = "fail"
        status = 502
        body = "bad gateway"
        times = 1

        [[faults]]
        call = "soap_get_zone_info"
        action = "throttle"
        "#,
    )
    .expect("seed");
    seed.resources = crate::support::seed().resources;
    let run = start(seed).await;
    let zone = || run.rest(Method::GET, "v1.0/zoneInformation").query(&[("user", USER)]).send();
    let first = zone().await.expect("zone");
    assert_eq!(first.status().as_u16(), 502);
    assert_eq!(first.text().await.expect("body"), "bad gateway");
    assert_eq!(zone().await.expect("zone").status().as_u16(), 200);
    let (status, _) = run.soap("getZoneInfo", None, None, &format!("<UserName>{USER}</UserName>")).await;
    assert_eq!(status, 429);
}
