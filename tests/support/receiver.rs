//! An HTTP receiver for signed webhooks, on 127.0.0.1 at a free port: it records each request, answers with the
//! status the test sets, and checks Standard Webhooks signatures with its own HMAC-SHA256 (not the code under test).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// The signing key every receiver checks with (`whsec_` + its base64 in a key file).
pub const KEY_BYTES: [u8; 32] = [0x5a; 32];

/// HMAC-SHA256 as RFC 2104 defines it, written here so that the signature is checked independently.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

#[derive(Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Whether `webhook-signature` is right for `webhook-id`, `webhook-timestamp` and the body, per the
    /// Standard Webhooks specification, and the timestamp is recent.
    pub fn signature_is_valid(&self) -> bool {
        let header = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
        let Ok(seconds) = timestamp.parse::<i64>() else { return false };
        if (chrono::Utc::now().timestamp() - seconds).abs() > 300 {
            return false;
        }
        let mut signed = format!("{id}.{timestamp}.").into_bytes();
        signed.extend_from_slice(&self.body);
        let expected = format!("v1,{}", STANDARD.encode(hmac_sha256(&KEY_BYTES, &signed)));
        header("webhook-signature").split(' ').any(|s| s == expected)
    }
}

#[derive(Clone)]
struct Receiver {
    seen: mpsc::UnboundedSender<Received>,
    /// The status each request gets.
    status: Arc<Mutex<StatusCode>>,
    /// When set, each request waits for a permit before it is answered.
    gate: Option<Arc<Semaphore>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = receiver.seen.send(Received { path: uri.path().to_owned(), headers, body });
    if let Some(gate) = &receiver.gate {
        gate.acquire().await.expect("gate open").forget();
    }
    *receiver.status.lock().expect("status")
}

pub struct Server {
    pub base: String,
    pub seen: mpsc::UnboundedReceiver<Received>,
    status: Arc<Mutex<StatusCode>>,
}

impl Server {
    pub async fn start(gate: Option<Arc<Semaphore>>) -> Self {
        let (tx, seen) = mpsc::unbounded_channel();
        let status = Arc::new(Mutex::new(StatusCode::NO_CONTENT));
        let app = Router::new().route("/{*path}", post(receive)).with_state(Receiver {
            seen: tx,
            status: status.clone(),
            gate,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, seen, status }
    }

    pub fn answer(&self, status: StatusCode) {
        *self.status.lock().expect("status") = status;
    }

    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.seen.recv())
            .await
            .expect("a request within 10s")
            .expect("the server runs")
    }
}
