//! REST: zone lookup, the six steps of header auth, header names and paths in any case, lockout, the hourly
//! counter, and the `Resources` calls.

use crate::support::*;
use reqwest::Method;
use rotavault::sandbox::Seed;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn zone_lookup_needs_no_credentials_and_refuses_unknown_users() {
    let run = start(seed()).await;
    let known =
        run.rest(Method::GET, "v1.0/zoneInformation").query(&[("user", ADMIN)]).send().await.expect("zone");
    let (status, body) = json_of(known).await;
    assert_eq!(status, 200);
    assert_eq!(body["url"], json!(run.sandbox.zone_lookup_url()), "{body}");
    assert!(body["zoneName"].is_string() && body["webUrl"].is_string() && body["ci"].is_number(), "{body}");

    let unknown = run.rest(Method::GET, "v1.0/zoneInformation").query(&[("user", "nobody@x")]).send().await;
    let (status, body) = json_of(unknown.expect("zone")).await;
    assert_eq!((status, body), (500, json!({ "errors": ["Zone information could not be determined"] })));
}

#[tokio::test]
async fn version_information_lists_2_0_where_zone_information_is_404() {
    let run = start(seed()).await;
    let (status, body) =
        json_of(run.rest(Method::GET, "versioninformation").send().await.expect("versions")).await;
    assert_eq!((status, body), (200, json!({ "apiVersions": ["1.0", "2.0"] })));
    let v2 = run.rest(Method::GET, "V2.0/zoneInformation").query(&[("user", ADMIN)]).send().await;
    assert_eq!(v2.expect("zone at 2.0").status().as_u16(), 404);
    let v2 = run.rest_as(Method::GET, "V2.0/ThresholdInformation", USER, USER_PW).send().await;
    assert_eq!(v2.expect("threshold at 2.0").status().as_u16(), 404);
}

#[tokio::test]
async fn auth_unknown_user_is_500_zone_error() {
    let run = start(seed()).await;
    let response = run.rest_as(Method::GET, "V1.0/ThresholdInformation", "nobody@x", "x").send().await;
    let (status, body) = json_of(response.expect("request")).await;
    assert_eq!((status, body), (500, json!({ "errors": ["Zone information could not be determined"] })));
}

#[tokio::test]
async fn auth_bad_integration_code_is_500_and_counts_no_failure() {
    let run = start(seed()).await;
    let response = run
        .rest(Method::GET, "V1.0/ThresholdInformation")
        .header("ApiIntegrationCode", "WRONG")
        .header("UserName", USER)
        .header("Secret", "wrong")
        .send()
        .await;
    let (status, body) = json_of(response.expect("request")).await;
    assert_eq!((status, body), (500, json!({ "errors": ["IntegrationCode is invalid."] })));
    assert_eq!(run.sandbox.failed_logins(USER), 0);
}

#[tokio::test]
async fn auth_locked_account_is_401_with_message_and_no_counter_change() {
    let mut seed = seed();
    seed.lockout_threshold = 2;
    let run = start(seed).await;
    for _ in 0..2 {
        assert_eq!(run.threshold_status(USER, "wrong").await, 401);
    }
    assert!(run.sandbox.is_locked(USER));
    let response = run.rest_as(Method::GET, "V1.0/ThresholdInformation", USER, "wrong").send().await;
    let (status, body) = json_of(response.expect("request")).await;
    assert_eq!((status, body), (401, json!({ "errors": ["User account is locked."] })));
    assert_eq!(run.sandbox.failed_logins(USER), 2, "a refusal while locked does not count");
}

#[tokio::test]
async fn auth_wrong_secret_is_bare_401_and_counts() {
    let run = start(seed()).await;
    let response =
        run.rest_as(Method::GET, "V1.0/ThresholdInformation", USER, "wrong").send().await.expect("request");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.text().await.expect("body"), "");
    assert_eq!(run.sandbox.failed_logins(USER), 1);
}

#[tokio::test]
async fn auth_ui_user_is_401_api_only() {
    let run = start(seed()).await;
    let response = run.rest_as(Method::GET, "V1.0/ThresholdInformation", UI, UI_PW).send().await;
    let (status, body) = json_of(response.expect("request")).await;
    assert_eq!(
        (status, body),
        (401, json!({ "errors": ["API access requires an API-only security level."] }))
    );
}

#[tokio::test]
async fn auth_success_proceeds_and_resets_the_counter() {
    let run = start(seed()).await;
    assert_eq!(run.threshold_status(USER, "wrong").await, 401);
    assert_eq!(run.threshold_status(USER, "wrong").await, 401);
    assert_eq!(run.sandbox.failed_logins(USER), 2);
    assert_eq!(run.threshold_status(USER, USER_PW).await, 200);
    assert_eq!(run.sandbox.failed_logins(USER), 0);
}

#[tokio::test]
async fn header_names_and_paths_match_in_any_case() {
    let run = start(seed()).await;
    let addr = run.sandbox.addr();
    // A raw request, because HTTP clients normalise the case of header names on the wire.
    let request = format!(
        "GET /ATSERVICESREST/v1.0/thresholdINFORMATION HTTP/1.1\r\nHost: {addr}\r\nAPIINTEGRATIONCODE: {CODE}\r\n\
         username: {USER}\r\nSeCrEt: {USER_PW}\r\nConnection: close\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"externalRequestThreshold\""), "{answer}");

    let lower = run.http.post(run.sandbox.soap_url().to_lowercase()).send().await.expect("soap path");
    assert_ne!(lower.status().as_u16(), 404, "the SOAP path matches in lower case too");
}

#[tokio::test]
async fn lockout_after_threshold_refuses_the_right_secret_until_unlock() {
    let mut seed = seed();
    seed.lockout_threshold = 3;
    let run = start(seed).await;
    for expected in 1..=3 {
        assert_eq!(run.threshold_status(USER, "wrong").await, 401);
        assert_eq!(run.sandbox.failed_logins(USER), expected);
    }
    assert!(run.sandbox.is_locked(USER));
    assert_eq!(run.threshold_status(USER, USER_PW).await, 401, "locked: even the right secret is refused");
    assert!(!run.sandbox.authenticates(USER, USER_PW));
    run.sandbox.unlock(USER);
    assert_eq!(run.sandbox.failed_logins(USER), 0);
    assert_eq!(run.threshold_status(USER, USER_PW).await, 200);
}

#[tokio::test]
async fn the_most_failed_logins_outlast_the_accepted_login_that_resets_the_count() {
    let run = start(seed()).await;
    for _ in 0..2 {
        assert_eq!(run.threshold_status(USER, "wrong").await, 401);
    }
    assert_eq!(run.threshold_status(USER, USER_PW).await, 200);
    assert_eq!(run.threshold_status(USER, "wrong").await, 401);
    assert_eq!(run.sandbox.failed_logins(USER), 1);
    assert_eq!(run.sandbox.most_failed_logins(USER), 2, "the high-water mark of the count");
    assert_eq!(run.sandbox.most_failed_logins("nobody@example.com"), 0);
}

#[tokio::test]
async fn threshold_information_counts_authenticated_requests_only() {
    let mut seed = seed();
    seed.hourly_limit = 1234;
    let run = start(seed).await;
    let read = || async {
        let response = run.rest_as(Method::GET, "V1.0/ThresholdInformation", USER, USER_PW).send().await;
        json_of(response.expect("threshold")).await.1
    };
    let first = read().await;
    assert_eq!(first["externalRequestThreshold"], json!(1234));
    assert_eq!(first["requestThresholdTimeframe"], json!(60));
    assert_eq!(first["currentTimeframeRequestCount"], json!(1));
    assert_eq!(run.threshold_status(USER, "wrong").await, 401);
    let second = read().await;
    assert_eq!(second["currentTimeframeRequestCount"], json!(2), "the failed login did not count");
    assert_eq!(run.sandbox.threshold_count(), 2);
}

#[tokio::test]
async fn hourly_limit_answers_429_once_exceeded() {
    let mut seed = seed();
    seed.hourly_limit = 2;
    let run = start(seed).await;
    assert_eq!(run.threshold_status(USER, USER_PW).await, 200);
    assert_eq!(run.threshold_status(ADMIN, ADMIN_PW).await, 200);
    let response = run.rest_as(Method::GET, "V1.0/ThresholdInformation", USER, USER_PW).send().await;
    let (status, body) = json_of(response.expect("request")).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({ "errors": ["The request threshold of 2 requests per 60 minutes has been exceeded."] })
    );
}

#[tokio::test]
async fn resources_query_by_post_and_by_get_search_limits_fields() {
    let run = start(seed()).await;
    let query = json!({
        "filter": [{ "op": "eq", "field": "UserName", "value": USER }],
        "includeFields": ["userName", "isActive"],
    });
    let post = run.rest_as(Method::POST, "V1.0/Resources/query", ADMIN, ADMIN_PW).json(&query).send().await;
    let (status, post) = json_of(post.expect("post query")).await;
    assert_eq!(status, 200);
    assert_eq!(
        post,
        json!({
            "items": [{ "id": USER_ID, "userName": USER, "isActive": true }],
            "pageDetails": { "count": 1, "requestCount": 500, "prevPageUrl": null, "nextPageUrl": null },
        })
    );

    let get = run
        .rest_as(Method::GET, "V1.0/Resources/query", ADMIN, ADMIN_PW)
        .query(&[("search", query.to_string())])
        .send()
        .await;
    let (status, got) = json_of(get.expect("get query")).await;
    assert_eq!((status, &got), (200, &post));

    let none = json!({ "filter": [{ "op": "eq", "field": "userName", "value": USER.to_uppercase() }] });
    let none = run.rest_as(Method::POST, "V1.0/Resources/query", ADMIN, ADMIN_PW).json(&none).send().await;
    let (status, none) = json_of(none.expect("query")).await;
    assert_eq!((status, none["items"].clone()), (200, json!([])), "string values compare exactly");
}

#[tokio::test]
async fn resources_get_by_id_returns_the_item_or_null() {
    let run = start(seed()).await;
    let found = run.rest_as(Method::GET, &format!("V1.0/Resources/{USER_ID}"), ADMIN, ADMIN_PW).send().await;
    let (status, found) = json_of(found.expect("get")).await;
    assert_eq!(status, 200);
    let item = &found["item"];
    assert_eq!(item["id"], json!(USER_ID));
    assert_eq!(item["userName"], json!(USER));
    assert_eq!(item["firstName"], json!("Ursula"));
    assert_eq!(item["licenseType"], json!(7));
    assert!(
        item.as_object().expect("object").keys().all(|k| !k.to_lowercase().contains("password")),
        "{item}"
    );

    let missing = run.rest_as(Method::GET, "V1.0/Resources/999", ADMIN, ADMIN_PW).send().await;
    assert_eq!(json_of(missing.expect("get")).await, (200, json!({ "item": null })));
}

#[tokio::test]
async fn patch_changes_only_the_fields_sent() {
    let run = start(seed()).await;
    let patch = json!({ "id": USER_ID, "title": "Patched" });
    let response = run.rest_as(Method::PATCH, "V1.0/Resources", ADMIN, ADMIN_PW).json(&patch).send().await;
    assert_eq!(json_of(response.expect("patch")).await, (200, json!({ "itemId": USER_ID })));
    let resource = run.sandbox.resource(USER).expect("user");
    assert_eq!(resource["title"], json!("Patched"));
    assert_eq!(resource["firstName"], json!("Ursula"));
    assert_eq!(resource["email"], json!("user@example.test"));
}

#[tokio::test]
async fn put_nulls_every_writable_field_not_sent() {
    let run = start(seed()).await;
    let put = json!({ "id": USER_ID, "userName": USER, "title": "Put", "isActive": true });
    let response = run.rest_as(Method::PUT, "V1.0/Resources", ADMIN, ADMIN_PW).json(&put).send().await;
    assert_eq!(json_of(response.expect("put")).await, (200, json!({ "itemId": USER_ID })));
    let resource = run.sandbox.resource(USER).expect("user");
    assert_eq!(resource["title"], json!("Put"));
    assert_eq!(resource["firstName"], Value::Null);
    assert_eq!(resource["email"], Value::Null);
    assert_eq!(resource["licenseType"], Value::Null);
    assert_eq!(resource["id"], json!(USER_ID));
}

#[tokio::test]
async fn updating_resources_needs_admin_access() {
    let run = start(seed()).await;
    let patch = json!({ "id": USER_ID, "title": "Mine now" });
    let response = run.rest_as(Method::PATCH, "V1.0/Resources", USER, USER_PW).json(&patch).send().await;
    assert_eq!(response.expect("patch").status().as_u16(), 403);
    assert_eq!(run.sandbox.resource(USER).expect("user")["title"], json!("Integration"));
}

#[tokio::test]
async fn entity_information_grants_update_to_admins_only() {
    let run = start(seed()).await;
    let info = |user: &'static str, secret: &'static str| {
        let request = run.rest_as(Method::GET, "V1.0/Resources/entityInformation", user, secret);
        async move { json_of(request.send().await.expect("entityInformation")).await }
    };
    let (status, admin) = info(ADMIN, ADMIN_PW).await;
    assert_eq!(status, 200);
    assert_eq!(admin["info"]["name"], json!("Resource"));
    assert_eq!(admin["info"]["canUpdate"], json!(true));
    assert_eq!(admin["info"]["userAccessForUpdate"], json!("All"));
    let (_, user) = info(USER, USER_PW).await;
    assert_eq!(user["info"]["userAccessForUpdate"], json!("None"));
    assert_eq!(user["info"]["userAccessForQuery"], json!("All"));
}

#[tokio::test]
async fn default_seed_has_the_documented_settings() {
    let seed = Seed::default();
    assert_eq!((seed.lockout_threshold, seed.hourly_limit, seed.thread_limit), (5, 10_000, 3));
    assert!(seed.strong_passwords);
}
