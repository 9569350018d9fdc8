//! A fake of the Kubernetes API server's `coordination.k8s.io/v1` Leases, on 127.0.0.1 at a free port, reached
//! through the real kube client (in the test process through a `kube::Client`, in a `rotavault` process through a
//! kubeconfig file it writes).
//!
//! It follows the API exactly where a lease depends on it: every object has a `resourceVersion` the server sets,
//! a replace whose `metadata.resourceVersion` is not the stored one is refused with 409 Conflict, a create of an
//! existing name with 409 AlreadyExists, a read or replace of a missing one with 404 NotFound, each as a
//! `Status` object; the server keeps `spec` as written (`holderIdentity`, `renewTime`, `leaseDurationSeconds`,
//! `acquireTime`, `leaseTransitions`) and never judges expiry: clients do. Requests without the bearer token of
//! its kubeconfig are refused with 401. Tests can make it unreachable for a while (every request answered 503
//! after a delay, as an overloaded API server does) and read every successful write in order.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "lease-api-test-token";
pub const NAMESPACE: &str = "rotavault";

/// One successful write: who held the Lease after it, and when the server took it.
#[derive(Clone, Debug)]
pub struct Write {
    pub name: String,
    pub holder: Option<String>,
    pub resource_version: u64,
    pub at: std::time::Instant,
    pub object: Value,
}

#[derive(Default)]
struct Inner {
    objects: Mutex<BTreeMap<(String, String), Value>>,
    writes: Mutex<Vec<Write>>,
    version: AtomicU64,
    down: AtomicBool,
}

pub struct LeaseApi {
    pub addr: std::net::SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    pub kubeconfig: std::path::PathBuf,
}

impl Drop for LeaseApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LeaseApi {
    pub async fn start() -> LeaseApi {
        let inner = Arc::new(Inner::default());
        let base = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases";
        let app = Router::new()
            .route(base, post(create))
            .route(&format!("{base}/{{name}}"), get(read).put(replace))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the lease API");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("lease API");
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {NAMESPACE}\n\
                 current-context: fake\nusers:\n- name: fake\n  user:\n    token: {TOKEN}\n"
            ),
        )
        .expect("write the kubeconfig");
        LeaseApi { addr, inner, task, _dir: dir, kubeconfig }
    }

    /// A kube client of this server, as a kubeconfig would make it.
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(format!("http://{}", self.addr).parse().expect("uri"));
        config.default_namespace = NAMESPACE.into();
        config.auth_info.token = Some(TOKEN.to_owned().into());
        kube::Client::try_from(config).expect("kube client")
    }

    /// While `down`, every request waits a little and is answered 503.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    pub fn object(&self, name: &str) -> Option<Value> {
        self.inner.objects.lock().expect("objects").get(&(NAMESPACE.to_owned(), name.to_owned())).cloned()
    }

    pub fn holder(&self, name: &str) -> Option<String> {
        self.object(name)
            .and_then(|o| o["spec"]["holderIdentity"].as_str().map(str::to_owned))
            .filter(|h| !h.is_empty())
    }

    pub fn writes(&self) -> Vec<Write> {
        self.inner.writes.lock().expect("writes").clone()
    }

    /// The shared state annotation of the Lease, parsed.
    pub fn shared(&self, name: &str) -> Value {
        self.object(name)
            .and_then(|o| o["metadata"]["annotations"]["rotavault.io/shared"].as_str().map(str::to_owned))
            .map_or(Value::Null, |text| serde_json::from_str(&text).expect("the shared annotation is JSON"))
    }

    /// Deletes the Lease, as `kubectl delete lease` would.
    pub fn delete(&self, name: &str) {
        self.inner.objects.lock().expect("objects").remove(&(NAMESPACE.to_owned(), name.to_owned()));
    }

    /// Replaces the object as another writer would (a person with kubectl): the stored version moves on.
    pub fn touch(&self, name: &str, change: impl FnOnce(&mut Value)) {
        let key = (NAMESPACE.to_owned(), name.to_owned());
        let mut objects = self.inner.objects.lock().expect("objects");
        let object = objects.get_mut(&key).expect("the lease exists");
        change(object);
        let version = self.inner.version.fetch_add(1, Ordering::SeqCst) + 1;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
    }
}

fn status(code: StatusCode, reason: &str, message: String, name: &str) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "group": "coordination.k8s.io", "kind": "leases"},
        "code": code.as_u16(),
    });
    (code, [("content-type", "application/json")], body.to_string()).into_response()
}

/// 401 without the token, 503 while down; `None` when the request may go on.
async fn gate(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    if inner.down.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        return Some(status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the server is down".into(),
            "",
        ));
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return Some(status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized".into(), ""));
    }
    None
}

fn not_found(name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("leases.coordination.k8s.io \"{name}\" not found"),
        name,
    )
}

fn ok(code: StatusCode, object: &Value) -> Response {
    (code, [("content-type", "application/json")], object.to_string()).into_response()
}

async fn read(
    State(inner): State<Arc<Inner>>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = gate(&inner, &headers).await {
        return refused;
    }
    match inner.objects.lock().expect("objects").get(&(ns, name.clone())) {
        Some(object) => ok(StatusCode::OK, object),
        None => not_found(&name),
    }
}

/// The body as a Lease, or why it is not one (answered 400).
fn parse(body: &Bytes) -> Result<Value, String> {
    let object: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not a Lease: {e}"))?;
    if object["kind"] != "Lease" || object["apiVersion"] != "coordination.k8s.io/v1" {
        return Err("expected a coordination.k8s.io/v1 Lease".into());
    }
    Ok(object)
}

/// Stores `object` under a new version, and records the write; `objects` is the map, locked by the caller since
/// its check.
fn store(
    inner: &Inner,
    objects: &mut BTreeMap<(String, String), Value>,
    ns: &str,
    name: &str,
    mut object: Value,
    creation: bool,
) -> Value {
    let version = inner.version.fetch_add(1, Ordering::SeqCst) + 1;
    object["metadata"]["resourceVersion"] = json!(version.to_string());
    object["metadata"]["namespace"] = json!(ns);
    if creation {
        object["metadata"]["uid"] = json!(format!("uid-{version}"));
    }
    objects.insert((ns.to_owned(), name.to_owned()), object.clone());
    inner.writes.lock().expect("writes").push(Write {
        name: name.to_owned(),
        holder: object["spec"]["holderIdentity"].as_str().map(str::to_owned).filter(|h| !h.is_empty()),
        resource_version: version,
        at: std::time::Instant::now(),
        object: object.clone(),
    });
    object
}

async fn create(
    State(inner): State<Arc<Inner>>,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = gate(&inner, &headers).await {
        return refused;
    }
    let object = match parse(&body) {
        Ok(object) => object,
        Err(why) => return status(StatusCode::BAD_REQUEST, "BadRequest", why, ""),
    };
    let Some(name) = object["metadata"]["name"].as_str().map(str::to_owned) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name: Required value".into(),
            "",
        );
    };
    if object["metadata"].get("resourceVersion").is_some_and(|v| !v.is_null()) {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "resourceVersion should not be set on objects to be created".into(),
            &name,
        );
    }
    // The check and the insert under one lock: two creates of one name, one wins.
    let mut objects = inner.objects.lock().expect("objects");
    if objects.contains_key(&(ns.clone(), name.clone())) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("leases.coordination.k8s.io \"{name}\" already exists"),
            &name,
        );
    }
    let stored = store(&inner, &mut objects, &ns, &name, object, true);
    ok(StatusCode::CREATED, &stored)
}

async fn replace(
    State(inner): State<Arc<Inner>>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = gate(&inner, &headers).await {
        return refused;
    }
    let object = match parse(&body) {
        Ok(object) => object,
        Err(why) => return status(StatusCode::BAD_REQUEST, "BadRequest", why, ""),
    };
    if object["metadata"]["name"].as_str() != Some(name.as_str()) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the name of the object does not match the name on the URL".into(),
            &name,
        );
    }
    // Compare and store under one lock, as etcd's transaction does.
    let mut objects = inner.objects.lock().expect("objects");
    let Some(current) = objects.get(&(ns.clone(), name.clone())) else {
        return not_found(&name);
    };
    let sent = object["metadata"]["resourceVersion"].as_str();
    if sent.is_some_and(|v| Some(v) != current["metadata"]["resourceVersion"].as_str()) {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
            &name,
        );
    }
    let uid = current["metadata"]["uid"].clone();
    let mut object = object;
    object["metadata"]["uid"] = uid;
    let stored = store(&inner, &mut objects, &ns, &name, object, false);
    ok(StatusCode::OK, &stored)
}
