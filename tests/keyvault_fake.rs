//! The Key Vault fake's own faithfulness: it answers the official `SecretClient`, and raw HTTP, the way
//! reference/test-servers.md says Key Vault does. The store's tests are only as good as this fake, so each rule
//! the store depends on is pinned here: the challenge, a PUT without a bearer storing nothing, the trailing-slash
//! latest, disabled versions, the limits, soft delete, throttling and permissions, TLS.
//!
//! The cases live in `mod keyvault` so that `cargo test keyvault` selects them.
#![cfg(feature = "azure")]

mod support;

mod keyvault {
    use super::support::keyvault::vault::THROTTLE_RETRY_AFTER_SECS;
    use super::support::keyvault::{FAKE_TOKEN, FakeKeyVault, VAULT_URL, plain_client};
    use azure_core::error::ErrorKind;
    use azure_core::http::RequestContent;
    use azure_security_keyvault_secrets::models::{
        SecretAttributes, SecretClientGetSecretOptions, SecretClientUpdateSecretPropertiesOptions,
        SetSecretParameters, UpdateSecretPropertiesParameters,
    };
    use azure_security_keyvault_secrets::{ResourceExt, SecretClient};
    use serde_json::{Value, json};
    use std::collections::HashMap;

    const API: &str = "api-version=2025-07-01";

    fn client(fake: &FakeKeyVault) -> SecretClient {
        SecretClient::new(fake.vault_url(), fake.credential(), Some(fake.secret_client_options()))
            .expect("a client")
    }

    fn params(value: &str, tags: usize) -> RequestContent<SetSecretParameters> {
        let tags: HashMap<String, String> = (0..tags).map(|i| (format!("tag-{i}"), "v".to_owned())).collect();
        SetSecretParameters { value: Some(value.to_owned()), tags: Some(tags), ..Default::default() }
            .try_into()
            .expect("a body")
    }

    async fn set(client: &SecretClient, name: &str, value: &str) -> String {
        let secret =
            client.set_secret(name, params(value, 0), None).await.expect("set").into_model().expect("model");
        secret.resource_id().expect("an id").version.expect("a version")
    }

    async fn get(client: &SecretClient, name: &str, version: Option<&str>) -> azure_core::Result<String> {
        let options =
            SecretClientGetSecretOptions { secret_version: version.map(str::to_owned), ..Default::default() };
        let secret = client.get_secret(name, Some(options)).await?.into_model()?;
        Ok(secret.value.unwrap_or_default())
    }

    async fn set_enabled(
        client: &SecretClient,
        name: &str,
        version: &str,
        enabled: bool,
    ) -> azure_core::Result<()> {
        let body = UpdateSecretPropertiesParameters {
            secret_attributes: Some(SecretAttributes { enabled: Some(enabled), ..Default::default() }),
            ..Default::default()
        };
        let options = SecretClientUpdateSecretPropertiesOptions {
            secret_version: Some(version.to_owned()),
            ..Default::default()
        };
        client.update_secret_properties(name, body.try_into()?, Some(options)).await.map(drop)
    }

    /// Status and service error code of an SDK error.
    fn status_and_code(err: &azure_core::Error) -> (u16, String) {
        match err.kind() {
            ErrorKind::HttpResponse { status, error_code, .. } => {
                (u16::from(*status), error_code.clone().unwrap_or_default())
            }
            other => panic!("expected an HTTP error, got {other:?}: {err}"),
        }
    }

    #[tokio::test]
    async fn the_client_is_challenged_then_succeeds() {
        let fake = FakeKeyVault::start().await;
        let client = client(&fake);
        let version = set(&client, "first", "value-1").await;
        let seen = fake.requests();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(!seen[0].bearer && seen[0].body_len == 0 && seen[0].status == 401, "{:?}", seen[0]);
        assert!(seen[1].bearer && seen[1].body_len > 0 && seen[1].status == 200, "{:?}", seen[1]);
        assert_eq!(fake.token_scopes(), ["https://vault.azure.net/.default"]);
        // Later requests carry the token from the start.
        assert_eq!(get(&client, "first", Some(&version)).await.expect("get"), "value-1");
        assert!(fake.requests()[2].bearer);
        assert_eq!(fake.versions("first").len(), 1);
    }

    #[tokio::test]
    async fn a_put_without_the_bearer_never_stores_anything() {
        let fake = FakeKeyVault::start().await;
        let url = format!("{}/secrets/unauth?{API}", fake.local_url());
        for auth in [None, Some("Bearer not-the-token")] {
            let mut request = plain_client().put(&url).json(&json!({ "value": "should-not-land" }));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.expect("an answer");
            assert_eq!(response.status().as_u16(), 401);
            let challenge = response.headers()["www-authenticate"].to_str().expect("text").to_owned();
            assert!(
                challenge.starts_with(r#"Bearer authorization="https://login.microsoftonline.com/"#),
                "{challenge}"
            );
            assert!(challenge.contains(r#"resource="https://vault.azure.net""#), "{challenge}");
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(body["error"]["code"], "Unauthorized");
        }
        assert!(fake.versions("unauth").is_empty());
        assert!(fake.names().is_empty());
    }

    #[tokio::test]
    async fn the_trailing_slash_reads_the_latest_version() {
        let fake = FakeKeyVault::start().await;
        let client = client(&fake);
        let first = set(&client, "latest", "one").await;
        set(&client, "latest", "two").await;
        assert_eq!(get(&client, "latest", None).await.expect("latest"), "two");
        assert!(fake.requests().last().expect("a request").path.ends_with("/secrets/latest/"));
        assert_eq!(get(&client, "latest", Some(&first)).await.expect("by version"), "one");

        let raw: Value = plain_client()
            .get(format!("{}/secrets/latest/?{API}", fake.local_url()))
            .bearer_auth(FAKE_TOKEN)
            .send()
            .await
            .expect("an answer")
            .json()
            .await
            .expect("JSON");
        let versions = fake.versions("latest");
        assert_eq!(raw["id"], format!("{VAULT_URL}/secrets/latest/{}", versions[1].id));
        assert_eq!(raw["value"], "two");
        for field in ["enabled", "created", "updated", "recoveryLevel", "recoverableDays"] {
            assert!(!raw["attributes"][field].is_null(), "attributes.{field} in {raw}");
        }
    }

    #[tokio::test]
    async fn a_disabled_version_is_refused() {
        let fake = FakeKeyVault::start().await;
        let client = client(&fake);
        let old = set(&client, "toggled", "old").await;
        let new = set(&client, "toggled", "new").await;
        set_enabled(&client, "toggled", &new, false).await.expect("disable");
        for version in [None, Some(new.as_str())] {
            let err = get(&client, "toggled", version).await.expect_err("disabled");
            assert_eq!(status_and_code(&err), (403, "Forbidden".into()));
            assert!(err.to_string().contains("Operation get is not allowed on a disabled secret."), "{err}");
        }
        assert_eq!(get(&client, "toggled", Some(&old)).await.expect("an enabled version"), "old");
        set_enabled(&client, "toggled", &new, true).await.expect("enable again");
        assert_eq!(get(&client, "toggled", None).await.expect("enabled"), "new");
    }

    #[tokio::test]
    async fn fifteen_tags_at_most() {
        let fake = FakeKeyVault::start().await;
        let client = client(&fake);
        client.set_secret("tags", params("v", 15), None).await.expect("fifteen tags");
        let err = client.set_secret("tags", params("v", 16), None).await.expect_err("sixteen tags");
        assert_eq!(status_and_code(&err), (400, "BadParameter".into()));
        let version = fake.versions("tags")[0].id.clone();
        let tags: HashMap<String, String> = (0..16).map(|i| (format!("t{i}"), "v".to_owned())).collect();
        let body = UpdateSecretPropertiesParameters { tags: Some(tags), ..Default::default() };
        let options =
            SecretClientUpdateSecretPropertiesOptions { secret_version: Some(version), ..Default::default() };
        let err = client
            .update_secret_properties("tags", body.try_into().expect("a body"), Some(options))
            .await
            .expect_err("sixteen tags on update");
        assert_eq!(status_and_code(&err).0, 400);
        assert_eq!(fake.versions("tags").len(), 1);
        assert_eq!(fake.versions("tags")[0].tags.len(), 15);
    }

    #[tokio::test]
    async fn names_content_types_and_values_follow_key_vaults_limits() {
        let fake = FakeKeyVault::start().await;
        let client = client(&fake);
        for bad in ["a_b", "a.b", &"n".repeat(128)] {
            let err = client.set_secret(bad, params("v", 0), None).await.expect_err(bad);
            assert_eq!(status_and_code(&err), (400, "BadParameter".into()), "{bad}");
        }
        set(&client, &"n".repeat(127), "v").await;
        set(&client, "0-Az-9", "v").await;

        let long_type = SetSecretParameters {
            value: Some("v".into()),
            content_type: Some("x".repeat(256)),
            ..Default::default()
        };
        let err =
            client.set_secret("typed", long_type.try_into().expect("a body"), None).await.expect_err("256");
        assert_eq!(status_and_code(&err).0, 400);
        let err =
            client.set_secret("big", params(&"x".repeat(25 * 1024 + 1), 0), None).await.expect_err("25 KB");
        assert_eq!(status_and_code(&err).0, 400);
        set(&client, "big", &"x".repeat(25 * 1024)).await;
    }

    #[tokio::test]
    async fn a_deleted_name_stays_reserved_until_recovered_or_purged() {
        let fake = FakeKeyVault::start().await;
        let client = client(&fake);
        set(&client, "gone", "v1").await;
        client.delete_secret("gone", None).await.expect("soft delete");
        let err = get(&client, "gone", None).await.expect_err("deleted");
        assert_eq!(status_and_code(&err), (404, "SecretNotFound".into()));
        let err = client.set_secret("gone", params("v2", 0), None).await.expect_err("reserved");
        assert_eq!(status_and_code(&err), (409, "Conflict".into()));
        assert!(err.to_string().contains("deleted but recoverable"), "{err}");
        let body: Value = plain_client()
            .put(format!("{}/secrets/gone?{API}", fake.local_url()))
            .bearer_auth(FAKE_TOKEN)
            .json(&json!({ "value": "v2" }))
            .send()
            .await
            .expect("an answer")
            .json()
            .await
            .expect("JSON");
        assert_eq!(body["error"]["innererror"]["code"], "ObjectIsDeletedButRecoverable");
        client.get_deleted_secret("gone", None).await.expect("listed as deleted");

        client.recover_deleted_secret("gone", None).await.expect("recover");
        assert_eq!(get(&client, "gone", None).await.expect("recovered"), "v1");
        set(&client, "gone", "v2").await;

        assert!(fake.soft_delete("gone"));
        client.purge_deleted_secret("gone", None).await.expect("purge");
        set(&client, "gone", "fresh").await;
        assert_eq!(fake.versions("gone").len(), 1, "a purged name starts over");
    }

    #[tokio::test]
    async fn throttling_answers_429_with_retry_after_then_recovers() {
        let fake = FakeKeyVault::start().await;
        let client = client(&fake);
        set(&client, "busy", "v").await;
        fake.throttle_next(1);
        let response = plain_client()
            .get(format!("{}/secrets/busy/?{API}", fake.local_url()))
            .bearer_auth(FAKE_TOKEN)
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()["retry-after"], THROTTLE_RETRY_AFTER_SECS.to_string().as_str());
        assert_eq!(get(&client, "busy", None).await.expect("the next request"), "v");
    }

    #[tokio::test]
    async fn a_denied_permission_is_named_and_affects_only_its_operations() {
        let fake = FakeKeyVault::start().await;
        let client = client(&fake);
        set(&client, "guarded", "v").await;
        fake.deny_next("set", 1);
        assert_eq!(get(&client, "guarded", None).await.expect("get is still allowed"), "v");
        let err = client.set_secret("guarded", params("v2", 0), None).await.expect_err("set denied");
        assert_eq!(status_and_code(&err), (403, "Forbidden".into()));
        assert!(err.to_string().contains("does not have secrets set permission"), "{err}");
        // Permissions are checked before existence: a denied update of a missing version is 403, an allowed one 404.
        fake.deny_next("set", 1);
        let err = set_enabled(&client, "missing", "00000000000000000000000000000000", true)
            .await
            .expect_err("denied");
        assert_eq!(status_and_code(&err).0, 403);
        let err = set_enabled(&client, "missing", "00000000000000000000000000000000", true)
            .await
            .expect_err("missing");
        assert_eq!(status_and_code(&err), (404, "SecretNotFound".into()));
        assert_eq!(fake.versions("guarded").len(), 1);
    }

    #[tokio::test]
    async fn exp_and_nbf_are_informational() {
        let fake = FakeKeyVault::start().await;
        let client = client(&fake);
        let now = azure_core::time::OffsetDateTime::now_utc();
        let body = SetSecretParameters {
            value: Some("outside-its-window".into()),
            secret_attributes: Some(SecretAttributes {
                expires: Some(now - azure_core::time::Duration::days(1)),
                not_before: Some(now + azure_core::time::Duration::days(1)),
                ..Default::default()
            }),
            ..Default::default()
        };
        client.set_secret("window", body.try_into().expect("a body"), None).await.expect("set");
        assert_eq!(get(&client, "window", None).await.expect("still served"), "outside-its-window");
        let stored = &fake.versions("window")[0];
        assert_eq!(stored.exp, Some((now - azure_core::time::Duration::days(1)).unix_timestamp()));
        assert!(stored.nbf.is_some());
    }

    #[tokio::test]
    async fn api_version_is_required() {
        let fake = FakeKeyVault::start().await;
        let response = plain_client()
            .get(format!("{}/secrets/any/", fake.local_url()))
            .bearer_auth(FAKE_TOKEN)
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status().as_u16(), 400);
    }

    #[tokio::test]
    async fn tls_is_served_with_the_test_ca_and_refused_without_it() {
        let fake = FakeKeyVault::start_tls().await;
        let client = client(&fake);
        set(&client, "secure", "over-tls").await;
        assert_eq!(get(&client, "secure", None).await.expect("get"), "over-tls");

        let ca = fake.ca_der().expect("a TLS fake");
        let raw =
            fake.tls_client(ca).get(format!("{VAULT_URL}/secrets/secure/?{API}")).send().await.expect("TLS");
        assert_eq!(raw.status().as_u16(), 401, "verified TLS, then the challenge");
        let untrusting = reqwest::Client::builder()
            .resolve("myvault.vault.azure.net", fake.addr())
            .no_proxy()
            .build()
            .expect("a client");
        let err =
            untrusting.get(format!("{VAULT_URL}/secrets/secure/?{API}")).send().await.expect_err("untrusted");
        assert!(err.is_connect(), "{err:?}");
    }
}
