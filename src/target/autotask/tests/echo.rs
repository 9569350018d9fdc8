//! Servers that echo the request they refuse: whatever form the password, the admin's secret or the Basic-auth
//! header comes back in, no error carries it.

use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

fn escaped(text: &str) -> String {
    let mut out = String::new();
    crate::target::autotask::xml::push_escaped(&mut out, text);
    out
}

fn soap_fault(text: &str) -> String {
    format!(
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>{}</faultstring></soap:Fault></soap:Body></soap:Envelope>"#,
        escaped(text)
    )
}

fn refused_update(messages: &[String]) -> String {
    let errors: String = messages
        .iter()
        .map(|m| format!("<ATWSError><Message>{}</Message></ATWSError>", escaped(m)))
        .collect();
    format!(
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><updateResponse xmlns="http://autotask.net/ATWS/v1_6/"><updateResult><EntityResults/><EntityResultType>resource</EntityResultType><Errors>{errors}</Errors><ReturnCode>-1</ReturnCode></updateResult></updateResponse></soap:Body></soap:Envelope>"#
    )
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02x}") })
        .collect()
}

fn assert_clean(error: &TargetError, secrets: &[&str]) {
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(text.contains("[redacted]"), "the echo reaches the message, redacted: {text}");
        for secret in secrets {
            assert!(!text.contains(secret), "error {text:?} carries {secret:?}");
        }
    }
}

#[tokio::test]
async fn an_update_fault_that_echoes_the_request_carries_no_secret() {
    let fake = Fake::start(|req, base| {
        if req.soap_action() == "update" {
            // As an ASP.NET error page would: the header, the value, then the envelope, before any cut.
            let text = format!(
                "Bad request with Authorization: {}; Password={}; body: {}",
                req.header("Authorization").unwrap_or_default(),
                req.soap_text("Password").unwrap_or_default(),
                req.body
            );
            return answer(500, soap_fault(&text));
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let secret = new_secret();
    let payload = target.prepare(None, &secret, &info()).await.unwrap();
    let err = target.apply(&payload, APPLY_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, TargetError::Unknown { .. }), "{err}");
    let header = basic(ADMIN, ADMIN_SECRET);
    assert_clean(&err, &[secret.expose(), ADMIN_SECRET, &header[6..]]);
    assert!(err.to_string().contains("Password=[redacted]"), "{err}");
}

#[tokio::test]
async fn a_refused_update_that_quotes_the_password_in_any_form_carries_none_of_them() {
    let fake = Fake::start(|req, base| {
        if req.soap_action() == "update" {
            let password = req.soap_text("Password").unwrap_or_default();
            let json = serde_json::to_string(&password).unwrap();
            let messages = [
                format!("The password {password} is not allowed."),
                format!("The value {} is not allowed.", escaped(&password)),
                format!("Field {{\"Password\":{json}}} is invalid."),
                format!("Form value Password={} is invalid.", percent(&password)),
                format!("Token {} is invalid.", STANDARD.encode(&password)),
                format!("Token {} is invalid.", URL_SAFE_NO_PAD.encode(&password)),
            ];
            return answer(200, refused_update(&messages));
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let secret = new_secret();
    let payload = target.prepare(None, &secret, &info()).await.unwrap();
    let err = target.apply(&payload, APPLY_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, TargetError::Rejected { .. }), "{err}");
    let encoded = [
        escaped(secret.expose()),
        percent(secret.expose()),
        STANDARD.encode(secret.expose()),
        URL_SAFE_NO_PAD.encode(secret.expose()),
    ];
    let mut forbidden: Vec<&str> = encoded.iter().map(String::as_str).collect();
    forbidden.push(secret.expose());
    assert_clean(&err, &forbidden);
}

#[tokio::test]
async fn a_verify_answer_that_echoes_the_secret_header_carries_no_secret() {
    let fake = Fake::start(|req, base| {
        if req.is("/atservicesrest/V1.0/ThresholdInformation") {
            let secret = req.header("Secret").unwrap_or_default();
            let body = serde_json::json!({"errors": [format!("Header Secret '{secret}' is not valid here")]});
            return answer(403, body.to_string());
        }
        healthy(req, base)
    })
    .await;
    let target = target(&fake, &[USER_A]).await;
    let secret = new_secret();
    let payload = target.prepare(None, &secret, &info()).await.unwrap();
    let err = target.verify(&payload).await.unwrap_err();
    assert!(matches!(err, TargetError::Invalid { .. }), "{err}");
    assert_clean(&err, &[secret.expose()]);
}
