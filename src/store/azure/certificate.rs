//! A service principal's certificate credential without OpenSSL: `azure_identity`'s own
//! `ClientCertificateCredential` needs OpenSSL (banned here), so this builds the same client assertion itself
//! and hands it to `azure_identity`'s [`ClientAssertionCredential`], which does the token exchange and caching.
//!
//! The assertion is what Entra ID documents for certificate credentials: a JWT with header `{"alg":"RS256",
//! "typ":"JWT","x5t":<base64url SHA-1 thumbprint of the certificate>}`, claims `aud` (the tenant's token
//! endpoint), `iss` = `sub` = the client id, a fresh `jti`, `nbf`, `exp` (five minutes), signed with the
//! certificate's RSA key by aws-lc-rs. The file is PEM holding the certificate and its unencrypted RSA private
//! key (PKCS#8 or PKCS#1), as `az ad sp create-for-rbac --create-cert` writes it; a PKCS#12 file can be
//! converted with `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`.

use super::BACKEND;
use crate::store::StoreError;
use async_trait::async_trait;
use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::ClientMethodOptions;
use azure_identity::{ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

/// How long an assertion is valid; Entra exchanges it at once.
const LIFETIME_SECS: i64 = 300;

/// Signs a fresh assertion for every token request.
pub(super) struct CertificateAssertion {
    key: RsaKeyPair,
    /// The encoded JWT header (it names the certificate, so it never changes).
    header: String,
    audience: String,
    client_id: String,
}

impl fmt::Debug for CertificateAssertion {
    /// Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAssertion").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

fn invalid(path: &Path, why: &str) -> StoreError {
    StoreError::Invalid {
        backend: BACKEND,
        detail: format!("the certificate file {}: {why}", path.display()),
    }
}

/// The credential for `identity = { kind = "client_certificate", .. }`.
pub(super) fn credential(
    tenant_id: &str,
    client_id: &str,
    path: &Path,
) -> Result<Arc<dyn TokenCredential>, StoreError> {
    credential_with(tenant_id, client_id, path, None)
}

/// [`credential`], with the token exchange's client options (tests: a transport standing in for Entra ID).
fn credential_with(
    tenant_id: &str,
    client_id: &str,
    path: &Path,
    options: Option<ClientAssertionCredentialOptions>,
) -> Result<Arc<dyn TokenCredential>, StoreError> {
    let read = std::fs::read(path).map_err(|e| invalid(path, &format!("cannot be read: {e}")))?;
    let pem = Zeroizing::new(read);
    let assertion =
        CertificateAssertion::from_pem(&pem, tenant_id, client_id).map_err(|why| invalid(path, &why))?;
    let credential =
        ClientAssertionCredential::new(tenant_id.to_owned(), client_id.to_owned(), assertion, options)
            .map_err(|e| StoreError::Invalid {
                backend: BACKEND,
                detail: format!("the certificate credential for client {client_id}: {e}"),
            })?;
    Ok(credential)
}

impl CertificateAssertion {
    pub fn from_pem(pem: &[u8], tenant_id: &str, client_id: &str) -> Result<Self, String> {
        let text = std::str::from_utf8(pem).map_err(|_| {
            "is not PEM text (a PKCS#12 file? convert it with `openssl pkcs12 -nodes`)".to_owned()
        })?;
        let blocks = pem_blocks(text)?;
        let certificate =
            blocks.iter().find(|(label, _)| label == "CERTIFICATE").ok_or("holds no CERTIFICATE block")?;
        if blocks.iter().any(|(label, _)| label == "ENCRYPTED PRIVATE KEY") {
            return Err(
                "holds an encrypted private key; rotavault needs it unencrypted (keep the file readable \
                        only by rotavault)"
                    .into(),
            );
        }
        let key = match blocks.iter().find(|(label, _)| label == "PRIVATE KEY" || label == "RSA PRIVATE KEY")
        {
            Some((label, der)) if label == "PRIVATE KEY" => RsaKeyPair::from_pkcs8(der),
            Some((_, der)) => RsaKeyPair::from_der(der),
            None => return Err("holds no PRIVATE KEY block".into()),
        }
        .map_err(|e| {
            format!("the private key is not a usable RSA key ({e}); Entra ID certificate credentials use RSA")
        })?;
        let thumbprint = URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, &certificate.1));
        let header = format!(r#"{{"alg":"RS256","typ":"JWT","x5t":"{thumbprint}"}}"#);
        Ok(Self {
            key,
            header: URL_SAFE_NO_PAD.encode(header),
            audience: format!("https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"),
            client_id: client_id.to_owned(),
        })
    }

    /// A signed assertion valid from `now` (unix seconds).
    pub fn sign(&self, now: i64) -> Result<String, String> {
        let claims = serde_json::json!({
            "aud": self.audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let signing_input = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| "signing the client assertion failed".to_owned())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(&self, _options: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.sign(chrono::Utc::now().timestamp())
            .map_err(|why| azure_core::Error::with_message(ErrorKind::Credential, why))
    }
}

/// One PEM block: its label and its DER bytes.
type Block = (String, Zeroizing<Vec<u8>>);

/// The `(label, DER)` blocks of a PEM text. Blocks with headers (`Proc-Type: 4,ENCRYPTED`, the old OpenSSL way
/// of encrypting a key) are refused: rotavault cannot decrypt them.
fn pem_blocks(text: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Zeroizing<String>)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) {
            open = Some((label.to_owned(), Zeroizing::new(String::new())));
        } else if let Some(label) = line.strip_prefix("-----END ").and_then(|l| l.strip_suffix("-----")) {
            let Some((open_label, body)) = open.take() else {
                return Err(format!("has an END {label} without its BEGIN"));
            };
            if open_label != label {
                return Err(format!("has BEGIN {open_label} closed by END {label}"));
            }
            let der =
                STANDARD.decode(body.as_bytes()).map_err(|_| format!("the {label} block is not base64"))?;
            blocks.push((open_label, Zeroizing::new(der)));
        } else if let Some((label, body)) = open.as_mut() {
            if line.contains(':') {
                return Err(format!("the {label} block is encrypted; rotavault needs it unencrypted"));
            }
            body.push_str(line);
        }
    }
    if blocks.is_empty() {
        return Err("holds no PEM blocks".into());
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use rcgen::{CertificateParams, PKCS_RSA_SHA256};

    /// A PEM file like `az ad sp create-for-rbac --create-cert` writes, and the key's public half.
    fn certificate_file() -> (String, Vec<u8>, Vec<u8>) {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("an RSA key");
        let pkcs8 = key.as_der().expect("PKCS#8").as_ref().to_vec();
        let public = key.public_key().as_ref().to_vec();
        let signing =
            rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_slice().into(), &PKCS_RSA_SHA256)
                .expect("rcgen takes the key");
        let cert = CertificateParams::new(vec!["rotavault".to_owned()])
            .expect("params")
            .self_signed(&signing)
            .expect("a certificate");
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n{}",
            STANDARD.encode(&pkcs8),
            cert.pem()
        );
        (pem, public, cert.der().to_vec())
    }

    fn decode_part(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_signed_by_the_certificates_key() {
        let (pem, public, cert_der) = certificate_file();
        let assertion =
            CertificateAssertion::from_pem(pem.as_bytes(), "tenant-1", "client-1").expect("parsed");
        let jwt = assertion.sign(1_772_000_000).expect("signed");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "{jwt}");

        let header = decode_part(parts[0]);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        let thumbprint = URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, &cert_der));
        assert_eq!(header["x5t"], thumbprint.as_str());

        let claims = decode_part(parts[1]);
        assert_eq!(claims["aud"], "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token");
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["nbf"], 1_772_000_000);
        assert_eq!(claims["exp"], 1_772_000_300);
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64url");
        let signed = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(signed.as_bytes(), &signature)
            .expect("the signature verifies with the certificate's public key");
        assert_ne!(assertion.sign(1_772_000_000).expect("again"), jwt, "each assertion has its own jti");
    }

    /// Stands in for Entra ID's token endpoint: records the form it is sent, answers a token.
    #[derive(Debug, Default)]
    struct Entra {
        seen: std::sync::Mutex<Vec<(String, String)>>,
    }

    #[async_trait]
    impl azure_core::http::HttpClient for Entra {
        async fn execute_request(
            &self,
            request: &azure_core::http::Request,
        ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
            let body = match request.body() {
                azure_core::http::Body::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => String::new(),
            };
            self.seen.lock().expect("the lock").push((request.url().to_string(), body));
            let token = r#"{"token_type":"Bearer","expires_in":3600,"ext_expires_in":3600,"access_token":"kv-token"}"#;
            Ok(azure_core::http::AsyncRawResponse::from_bytes(
                azure_core::http::StatusCode::Ok,
                azure_core::http::headers::Headers::new(),
                token.as_bytes().to_vec(),
            ))
        }
    }

    /// `application/x-www-form-urlencoded`, decoded.
    fn form(body: &str) -> std::collections::HashMap<String, String> {
        body.split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| {
                let v = v.replace('+', " ");
                let mut out = Vec::new();
                let bytes = v.as_bytes();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i] == b'%' && i + 3 <= bytes.len() {
                        let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                        out.push(u8::from_str_radix(hex, 16).expect("a percent escape"));
                        i += 3;
                    } else {
                        out.push(bytes[i]);
                        i += 1;
                    }
                }
                (k.to_owned(), String::from_utf8(out).expect("UTF-8"))
            })
            .collect()
    }

    #[tokio::test]
    async fn the_token_exchange_sends_the_signed_assertion_to_the_tenants_endpoint() {
        let (pem, public, _) = certificate_file();
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("sp.pem");
        std::fs::write(&path, pem).expect("write the certificate file");
        let entra = Arc::new(Entra::default());
        let options = ClientAssertionCredentialOptions {
            client_options: azure_core::http::ClientOptions {
                transport: Some(azure_core::http::Transport::new(entra.clone())),
                ..Default::default()
            },
        };
        let credential = credential_with("tenant-1", "client-1", &path, Some(options)).expect("a credential");
        let token = credential.get_token(&["https://vault.azure.net/.default"], None).await.expect("a token");
        assert_eq!(token.token.secret(), "kv-token");

        let seen = entra.seen.lock().expect("the lock").clone();
        assert_eq!(seen.len(), 1);
        let (url, body) = &seen[0];
        assert_eq!(url, "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token");
        let form = form(body);
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], "client-1");
        assert_eq!(form["scope"], "https://vault.azure.net/.default");
        assert_eq!(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        let (signed, signature) = form["client_assertion"].rsplit_once('.').expect("a JWT");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(signed.as_bytes(), &signature)
            .expect("signed with the certificate's key");
    }

    #[test]
    fn files_that_cannot_serve_are_refused_with_a_reason() {
        let (pem, _, _) = certificate_file();
        let cases = [
            (pem.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"), "encrypted"),
            (pem.split("-----BEGIN CERTIFICATE").next().unwrap_or_default().to_owned(), "no CERTIFICATE"),
            (
                pem.split("-----END PRIVATE KEY-----\n").nth(1).unwrap_or_default().to_owned(),
                "no PRIVATE KEY",
            ),
            ("not pem at all".to_owned(), "no PEM blocks"),
        ];
        for (text, expected) in cases {
            let err = CertificateAssertion::from_pem(text.as_bytes(), "t", "c").expect_err(expected);
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let err = CertificateAssertion::from_pem(&[0x30, 0x82, 0xff, 0xfe], "t", "c").expect_err("binary");
        assert!(err.contains("PKCS#12"), "{err}");
    }

    #[test]
    fn the_debug_form_never_shows_the_key() {
        let (pem, _, _) = certificate_file();
        let assertion = CertificateAssertion::from_pem(pem.as_bytes(), "t", "client-1").expect("parsed");
        let text = format!("{assertion:?}");
        assert!(text.contains("client-1") && !text.contains("key"), "{text}");
    }
}
