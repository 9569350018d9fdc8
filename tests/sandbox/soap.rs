//! SOAP 1.6: getZoneInfo, query, update with the whole entity (and what an omitted field costs), who may update,
//! each password rule, XML escaping of a password, Basic-auth failures, and the propagation delay.

use crate::support::*;
use reqwest::Method;
use rotavault::sandbox::{Call, Fault, FaultAction, Seed};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn get_zone_info_answers_known_and_unknown_users() {
    let run = start(seed()).await;
    let (status, body) = run.soap("getZoneInfo", None, None, &format!("<UserName>{ADMIN}</UserName>")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tag(&body, "URL"), Some(run.sandbox.soap_url()));
    assert_eq!(tag(&body, "ErrorCode").as_deref(), Some("0"));
    assert!(body.contains("<getZoneInfoResponse xmlns=\"http://autotask.net/ATWS/v1_6/\">"), "{body}");

    let (status, body) = run.soap("getZoneInfo", None, None, "<UserName>nobody@x</UserName>").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tag(&body, "ErrorCode").as_deref(), Some("-1"));
    assert_eq!(tag(&body, "URL").as_deref(), Some(""));
}

#[tokio::test]
async fn query_by_id_or_user_name_never_returns_the_password() {
    let run = start(seed()).await;
    let (status, by_id) = run.query_id(USER, USER_PW, USER_ID).await;
    assert_eq!(status, 200, "{by_id}");
    assert_eq!(tag(&by_id, "ReturnCode").as_deref(), Some("1"));
    assert!(by_id.contains("<Entity xsi:type=\"Resource\">"), "{by_id}");
    assert_eq!(tag(&by_id, "id"), Some(USER_ID.to_string()));
    assert_eq!(tag(&by_id, "UserName").as_deref(), Some(USER));
    assert_eq!(tag(&by_id, "Active").as_deref(), Some("true"));
    assert_eq!(tag(&by_id, "FirstName").as_deref(), Some("Ursula"));
    assert!(by_id.contains(r#"<FirstName xsi:type="xsd:string">Ursula</FirstName>"#), "{by_id}");
    assert!(by_id.contains(MASKED_PASSWORD) && !by_id.contains(USER_PW), "{by_id}");

    let (status, by_name) =
        run.soap("query", Some((USER, USER_PW)), Some(CODE), &query_xml("UserName", ADMIN)).await;
    assert_eq!(status, 200);
    assert_eq!(tag(&by_name, "id"), Some(ADMIN_ID.to_string()));
    assert!(by_name.contains(MASKED_PASSWORD) && !by_name.contains(ADMIN_PW), "{by_name}");
}

/// The element names of the first `<Entity>` in `xml`, in order.
fn element_order(xml: &str) -> Vec<String> {
    let start = xml.find("<Entity ").expect("an entity");
    let end = xml.find("</Entity>").expect("entity end");
    let inner = &xml[start..end];
    inner
        .split('<')
        .skip(2)
        .filter(|t| !t.starts_with('/'))
        .map(|t| t.split([' ', '>', '/']).next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_query_answers_as_the_real_service_fields_in_wsdl_order_typed_with_a_masked_password() {
    let run = start(seed()).await;
    let (status, body) = run.query_id(ADMIN, ADMIN_PW, USER_ID).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        element_order(&body),
        [
            "id",
            "UserDefinedFields",
            "Active",
            "Email",
            "FirstName",
            "LastName",
            "ResourceType",
            "Title",
            "UserName",
            "Password",
            "LicenseType"
        ]
    );
    assert!(body.contains(&format!(r#"<id xsi:type="xsd:long">{USER_ID}</id>"#)), "{body}");
    assert!(body.contains(r#"<Active xsi:type="xsd:boolean">true</Active>"#), "{body}");
    assert!(body.contains(r#"<LicenseType xsi:type="xsd:int">7</LicenseType>"#), "{body}");
    assert!(body.contains("<UserDefinedFields/>"), "{body}");
    assert!(body.contains(MASKED_PASSWORD), "{body}");
}

#[tokio::test]
async fn a_strict_reader_drops_a_password_sent_out_of_sequence_and_still_answers_success() {
    let mut seed = seed();
    seed.strict_reader = true;
    let run = start(seed).await;
    let entity = run.entity(USER_ID).await;
    let late = "N3w!out-of-order";
    let (status, body) = run.update(ADMIN, ADMIN_PW, &with_password_last(&entity, late)).await;
    assert_eq!((status, tag(&body, "ReturnCode").as_deref()), (200, Some("1")), "{body}");
    assert_eq!(
        run.sandbox.password_of(USER).as_deref(),
        Some(USER_PW),
        "the Password after LicenseType was dropped"
    );

    let placed = "N3w!in-its-place";
    let (status, body) = run.update(ADMIN, ADMIN_PW, &with_password(&entity, placed)).await;
    assert_eq!((status, tag(&body, "ReturnCode").as_deref()), (200, Some("1")), "{body}");
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(placed), "a Password in its slot is read");
}

#[tokio::test]
async fn a_lenient_reader_takes_a_password_wherever_it_is() {
    let run = start(seed()).await;
    let entity = run.entity(USER_ID).await;
    let new = "N3w!anywhere-1";
    let (status, body) = run.update(ADMIN, ADMIN_PW, &with_password_last(&entity, new)).await;
    assert_eq!((status, tag(&body, "ReturnCode").as_deref()), (200, Some("1")), "{body}");
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(new));
}

#[tokio::test]
async fn a_late_commit_lands_after_the_client_gave_up() {
    let delay = Duration::from_millis(1000);
    let mut seed = seed();
    seed.faults = vec![Fault::times(Call::SoapUpdate, FaultAction::CommitLate(delay), 1)];
    let run = start(seed).await;
    let new = "L@te-commit-1";
    let entity = with_password(&run.entity(USER_ID).await, new);
    let sent = run
        .soap_request(
            "update",
            Some((ADMIN, ADMIN_PW)),
            Some(CODE),
            &format!("<Entities>{entity}</Entities>"),
        )
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(sent.as_ref().is_err_and(reqwest::Error::is_timeout), "the client gives up: {sent:?}");
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(USER_PW), "not applied yet");
    assert_eq!(run.sandbox.late_commits_received(), 1, "it arrived, so it will land");
    assert_eq!(run.sandbox.late_commits(), 0);
    run.sandbox.until_late_commits_received(1).await;

    tokio::time::timeout(Duration::from_secs(30), run.sandbox.until_late_commits(1))
        .await
        .expect("the update lands without its client");
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(new));
    assert_eq!(run.sandbox.late_commits(), 1);
    assert_eq!(run.threshold_status(USER, new).await, 200);
    let logged = run.sandbox.request_log();
    assert!(
        logged.iter().any(|e| e.call == Some(Call::SoapUpdate) && e.status == Some(200)),
        "the log records the update when it landed: {logged:?}"
    );
}

#[tokio::test]
async fn a_late_commit_answers_a_client_that_waits() {
    let delay = Duration::from_millis(300);
    let mut seed = seed();
    seed.faults = vec![Fault::times(Call::SoapUpdate, FaultAction::CommitLate(delay), 1)];
    let run = start(seed).await;
    let new = "L@te-commit-2";
    let started = tokio::time::Instant::now();
    let (code, body) = run.set_password(USER_ID, new).await;
    assert_eq!(code, "1", "{body}");
    assert!(started.elapsed() >= delay, "answered only once applied");
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(new));
    run.sandbox.until_late_commits(1).await;
}

#[tokio::test]
async fn admin_update_with_the_whole_entity_changes_the_password_and_keeps_fields() {
    let run = start(seed()).await;
    let before = run.sandbox.resource(USER).expect("user");
    let new = "N3w!secret-value";
    let (code, body) = run.set_password(USER_ID, new).await;
    assert_eq!(code, "1", "{body}");
    assert!(body.contains("<updateResponse") && tag(&body, "id") == Some(USER_ID.to_string()), "{body}");
    assert!(!body.contains(new), "the answer never echoes the password");
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(new));
    assert_eq!(run.threshold_status(USER, USER_PW).await, 401, "the old password stops at once");
    assert_eq!(run.threshold_status(USER, new).await, 200, "the new one works");
    assert_eq!(run.sandbox.resource(USER), Some(before), "every field sent back is kept");
}

#[tokio::test]
async fn update_clears_a_field_that_is_not_sent() {
    let run = start(seed()).await;
    let entity = run.entity(USER_ID).await;
    let without_title = entity.replace(r#"<Title xsi:type="xsd:string">Integration</Title>"#, "");
    assert_ne!(without_title, entity);
    let (status, body) = run.update(ADMIN, ADMIN_PW, &without_title).await;
    assert_eq!((status, tag(&body, "ReturnCode").as_deref()), (200, Some("1")), "{body}");
    let resource = run.sandbox.resource(USER).expect("user");
    assert_eq!(resource["title"], Value::Null);
    assert_eq!(resource["firstName"], json!("Ursula"));
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(USER_PW), "no Password: unchanged");
}

#[tokio::test]
async fn update_by_a_non_admin_is_refused() {
    let run = start(seed()).await;
    let entity = with_password(&run.entity(USER_ID).await, "N3w!secret-value");
    let (status, body) = run.update(USER, USER_PW, &entity).await;
    assert_eq!(status, 200);
    assert_eq!(tag(&body, "ReturnCode").as_deref(), Some("-1"), "{body}");
    assert!(tag(&body, "Message").is_some_and(|m| m.contains("System Administrator")), "{body}");
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(USER_PW));
}

/// Sets `USER`'s password; the `<Message>` of a refusal, `None` when accepted.
async fn refusal(run: &Running, password: &str) -> Option<String> {
    let (code, body) = run.set_password(USER_ID, password).await;
    match code.as_str() {
        "1" => None,
        "-1" => Some(tag(&body, "Message").expect("a message")),
        other => panic!("ReturnCode {other}: {body}"),
    }
}

#[tokio::test]
async fn password_rules_refuse_with_a_message() {
    let run = start(seed()).await;
    let cases = [
        ("a!".repeat(32) + "X", "64"),
        ("Ab!cd ef9".to_string(), "spaces"),
        ("Ab!cd'ef9".to_string(), "single quote"),
        ("Ab!9".to_string(), "at least 7"),
        ("Abcdefg!9".to_string(), "positions 2 through 6"),
        ("!Abcdef9".to_string(), "positions 2 through 6"),
        ("a!bcdefg".to_string(), "at least two"),
        (USER_PW.to_string(), "last 5"),
    ];
    for (password, why) in cases {
        let message = refusal(&run, &password).await;
        assert!(message.as_deref().is_some_and(|m| m.contains(why)), "{password:?}: {message:?}");
        assert!(message.is_some_and(|m| !m.contains(&password)), "the message never quotes the password");
        assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(USER_PW));
    }
    assert_eq!(refusal(&run, &("a!".repeat(31) + "X9")).await, None, "64 characters are fine");
}

#[tokio::test]
async fn password_history_covers_the_last_five() {
    let run = start(seed()).await;
    for n in 1..=4 {
        assert_eq!(refusal(&run, &format!("Ch!nge-{n}")).await, None);
    }
    // Current Ch!nge-4, then 3, 2, 1 and the seeded one: five in all.
    let message = refusal(&run, USER_PW).await;
    assert!(message.is_some_and(|m| m.contains("last 5")));
    assert_eq!(refusal(&run, "Ch!nge-5").await, None);
    assert_eq!(refusal(&run, USER_PW).await, None, "six changes back is allowed again");
}

#[tokio::test]
async fn weak_password_tenant_skips_the_strong_rules_only() {
    let mut seed = seed();
    seed.strong_passwords = false;
    let run = start(seed).await;
    assert_eq!(refusal(&run, "abc").await, None);
    assert!(refusal(&run, "a b").await.is_some_and(|m| m.contains("spaces")));
}

#[tokio::test]
async fn a_password_with_xml_specials_travels_escaped_both_ways() {
    let run = start(seed()).await;
    let new = "a<&\"Zx9>k";
    let (code, body) = run.set_password(USER_ID, new).await;
    assert_eq!(code, "1", "{body}");
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some(new));
    assert_eq!(run.threshold_status(USER, new).await, 200);
    let (status, _) = run.query_id(USER, new, USER_ID).await;
    assert_eq!(status, 200, "Basic auth with the same password");
}

#[tokio::test]
async fn basic_auth_failures_follow_the_rest_order_and_count() {
    let mut seed = seed();
    seed.lockout_threshold = 2;
    let run = start(seed).await;
    let (status, body) = run.query_id("nobody@x", "x", USER_ID).await;
    assert_eq!(status, 500);
    assert!(
        body.contains("soap:Fault") && body.contains("Zone information could not be determined"),
        "{body}"
    );

    let (status, body) = run.soap("query", Some((USER, USER_PW)), Some("WRONG"), &query_xml("id", "1")).await;
    assert_eq!(status, 500);
    assert!(body.contains("IntegrationCode is invalid."), "{body}");
    let (status, _) = run.soap("query", Some((USER, USER_PW)), None, &query_xml("id", "1")).await;
    assert_eq!(status, 500, "no AutotaskIntegrations header");

    let (status, _) = run.soap("query", None, Some(CODE), &query_xml("id", "1")).await;
    assert_eq!(status, 401, "no Basic auth");

    for _ in 0..2 {
        assert_eq!(run.query_id(USER, "wrong", USER_ID).await.0, 401);
    }
    assert!(run.sandbox.is_locked(USER), "SOAP failures count toward the same lockout");
    let (status, body) = run.query_id(USER, USER_PW, USER_ID).await;
    assert_eq!(status, 401);
    assert!(body.contains("User account is locked."), "{body}");
    assert_eq!(run.query_id(UI, UI_PW, USER_ID).await.0, 401, "SOAP 1.6 needs an API-only user");
}

#[tokio::test]
async fn soap_action_must_name_the_operation_in_the_body() {
    let run = start(seed()).await;
    let mut request = run
        .soap_request("query", Some((USER, USER_PW)), Some(CODE), &query_xml("id", "1"))
        .build()
        .expect("request");
    let update = format!("\"{ATWS}update\"").parse().expect("header value");
    request.headers_mut().insert("SOAPAction", update);
    let response = run.http.execute(request).await.expect("request");
    assert_eq!(response.status().as_u16(), 500);
    assert!(response.text().await.expect("body").contains("soap:Fault"));
}

#[tokio::test]
async fn propagation_delay_refuses_the_new_password_until_it_passes() {
    let delay = Duration::from_millis(800);
    let mut seed: Seed = seed();
    seed.propagation_delay = delay;
    let run = start(seed).await;
    let new = "N3w!secret-value";
    let changed = tokio::time::Instant::now();
    let (code, body) = run.set_password(USER_ID, new).await;
    assert_eq!(code, "1", "{body}");
    assert_eq!(run.threshold_status(USER, new).await, 401, "not yet");
    assert_eq!(run.threshold_status(USER, USER_PW).await, 401, "the old one is already gone");
    assert!(changed.elapsed() < delay, "the machine was too slow for this test's delay");
    assert_eq!(run.sandbox.failed_logins(USER), 2, "failed logins count meanwhile");

    // Poll without logging in (a login would count), then log in once.
    while !run.sandbox.authenticates(USER, new) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(changed.elapsed() >= delay);
    assert_eq!(run.threshold_status(USER, new).await, 200);
    let response =
        run.rest_as(Method::GET, "V1.0/ThresholdInformation", USER, new).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 200);
}
