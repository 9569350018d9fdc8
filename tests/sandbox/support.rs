//! What every sandbox test needs: a seeded tenant with an admin API user, an API user and a UI user; a running
//! sandbox that stops when the test ends; REST and SOAP requests shaped as on the wire page.

#![allow(dead_code)]

use reqwest::{Method, RequestBuilder};
use rotavault::sandbox::{Sandbox, SecurityLevel, Seed, SeedResource};
use tokio_util::sync::CancellationToken;

pub const CODE: &str = "TEST-INTEGRATION-CODE";
pub const ADMIN: &str = "admin@sandbox.test";
pub const ADMIN_PW: &str = "Adm!n-initial-1";
pub const ADMIN_ID: i64 = 100;
pub const USER: &str = "user@sandbox.test";
pub const USER_PW: &str = "Us#r-initial-1";
pub const USER_ID: i64 = 101;
pub const UI: &str = "ui@sandbox.test";
pub const UI_PW: &str = "Ui$-initial-1";
pub const UI_ID: i64 = 102;

pub const ATWS: &str = "http://autotask.net/ATWS/v1_6/";

pub fn seed() -> Seed {
    Seed {
        integration_codes: vec![CODE.to_string()],
        resources: vec![
            SeedResource {
                id: Some(ADMIN_ID),
                first_name: Some("Ada".to_string()),
                last_name: Some("Admin".to_string()),
                email: Some("admin@example.test".to_string()),
                title: Some("Rotator".to_string()),
                ..SeedResource::new(ADMIN, ADMIN_PW, SecurityLevel::ApiAdmin)
            },
            SeedResource {
                id: Some(USER_ID),
                first_name: Some("Ursula".to_string()),
                last_name: Some("User".to_string()),
                email: Some("user@example.test".to_string()),
                title: Some("Integration".to_string()),
                license_type: Some(7),
                resource_type: Some("Employee".to_string()),
                ..SeedResource::new(USER, USER_PW, SecurityLevel::ApiUser)
            },
            SeedResource { id: Some(UI_ID), ..SeedResource::new(UI, UI_PW, SecurityLevel::UiUser) },
        ],
        ..Seed::default()
    }
}

/// A running sandbox; shut down when dropped.
pub struct Running {
    pub sandbox: Sandbox,
    pub shutdown: CancellationToken,
    pub http: reqwest::Client,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start(seed: Seed) -> Running {
    start_with(seed, false).await
}

pub async fn start_with(seed: Seed, inspect: bool) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let shutdown = CancellationToken::new();
    let sandbox = Sandbox::start(listener, seed, inspect, shutdown.clone()).await.expect("sandbox starts");
    Running { sandbox, shutdown, http: reqwest::Client::new() }
}

pub fn esc(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// The text of the first `<name>…</name>` in `xml`, attributes on the opening tag allowed.
pub fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut from = 0;
    let start = loop {
        let at = xml[from..].find(&open)? + from + open.len();
        match xml[at..].chars().next() {
            Some('>') => break at + 1,
            Some(' ') => break at + xml[at..].find('>')? + 1,
            _ => from = at,
        }
    };
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].to_string())
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.zone_lookup_url())
    }

    /// A REST request without credentials.
    pub fn rest(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// A REST request with the three headers, spelled as the wire page spells them.
    pub fn rest_as(&self, method: Method, path: &str, user: &str, secret: &str) -> RequestBuilder {
        self.rest(method, path)
            .header("ApiIntegrationCode", CODE)
            .header("UserName", user)
            .header("Secret", secret)
    }

    /// `GET V1.0/ThresholdInformation` as `user`; the status.
    pub async fn threshold_status(&self, user: &str, secret: &str) -> u16 {
        let response = self.rest_as(Method::GET, "V1.0/ThresholdInformation", user, secret).send().await;
        response.expect("threshold request").status().as_u16()
    }

    pub fn soap_request(
        &self,
        operation: &str,
        auth: Option<(&str, &str)>,
        code: Option<&str>,
        inner: &str,
    ) -> RequestBuilder {
        let header = code
            .map(|c| {
                format!(
                    r#"<soap:Header><AutotaskIntegrations xmlns="{ATWS}"><IntegrationCode>{}</IntegrationCode></AutotaskIntegrations></soap:Header>"#,
                    esc(c)
                )
            })
            .unwrap_or_default();
        let envelope = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">{header}<soap:Body><{operation} xmlns="{ATWS}">{inner}</{operation}></soap:Body></soap:Envelope>"#
        );
        let mut request = self
            .http
            .post(self.sandbox.soap_url())
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"{ATWS}{operation}\""))
            .body(envelope);
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        request
    }

    /// A SOAP call; (status, body).
    pub async fn soap(
        &self,
        operation: &str,
        auth: Option<(&str, &str)>,
        code: Option<&str>,
        inner: &str,
    ) -> (u16, String) {
        let response = self.soap_request(operation, auth, code, inner).send().await.expect("soap request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("soap body"))
    }

    /// `query` for a Resource by id, as `user`.
    pub async fn query_id(&self, user: &str, password: &str, id: i64) -> (u16, String) {
        self.soap("query", Some((user, password)), Some(CODE), &query_xml("id", &id.to_string())).await
    }

    /// The `<Entity …>…</Entity>` of a Resource, as the admin reads it: what a client sends back on update.
    pub async fn entity(&self, id: i64) -> String {
        let admin_pw = self.sandbox.password_of(ADMIN).expect("admin exists");
        let (status, body) = self.query_id(ADMIN, &admin_pw, id).await;
        assert_eq!(status, 200, "{body}");
        let start = body.find("<Entity ").expect("an entity");
        let end = body.find("</Entity>").expect("entity end") + "</Entity>".len();
        body[start..end].to_string()
    }

    /// `update` of one entity, as `user`.
    pub async fn update(&self, user: &str, password: &str, entity: &str) -> (u16, String) {
        self.soap("update", Some((user, password)), Some(CODE), &format!("<Entities>{entity}</Entities>"))
            .await
    }

    /// The admin sets `id`'s password with the whole entity, as rotavault's apply does; (ReturnCode, body).
    pub async fn set_password(&self, id: i64, new: &str) -> (String, String) {
        let entity = with_password(&self.entity(id).await, new);
        let admin_pw = self.sandbox.password_of(ADMIN).expect("admin exists");
        let (status, body) = self.update(ADMIN, &admin_pw, &entity).await;
        assert_eq!(status, 200, "{body}");
        (tag(&body, "ReturnCode").expect("a ReturnCode"), body)
    }
}

pub fn query_xml(field: &str, value: &str) -> String {
    let query = format!(
        r#"<queryxml><entity>Resource</entity><query><field>{field}<expression op="equals">{}</expression></field></query></queryxml>"#,
        esc(value)
    );
    format!("<sXML>{}</sXML>", esc(&query))
}

/// The masked `Password` a query answers with, in its WSDL slot.
pub const MASKED_PASSWORD: &str = r#"<Password xsi:type="xsd:string">******</Password>"#;

/// The queried entity with `password` in the masked one's slot, as a WSDL-driven client sends it.
pub fn with_password(entity: &str, password: &str) -> String {
    assert!(entity.contains(MASKED_PASSWORD), "a queried entity has a masked Password: {entity}");
    entity.replace(MASKED_PASSWORD, &format!("<Password>{}</Password>", esc(password)))
}

/// The queried entity without its masked `Password` and with `password` after every other field: out of the WSDL
/// sequence whenever a field that follows `Password` (such as `LicenseType`) is there.
pub fn with_password_last(entity: &str, password: &str) -> String {
    entity
        .replace(MASKED_PASSWORD, "")
        .replace("</Entity>", &format!("<Password>{}</Password></Entity>", esc(password)))
}
