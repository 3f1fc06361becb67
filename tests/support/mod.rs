//! Shared test fixtures: AttentionUser builders, a fake Kubernetes API server answering the
//! calls the reconcile makes, and a log capture for secret checks.
#![allow(dead_code)]

pub mod harness;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use attention_operator::crd::{
    AttentionUser, AttentionUserSpec, AttentionUserStatus, SeatType, SecretKeyRef, TeamMembership,
};
use attention_operator::sandbox::{SeedTeam, SeedUser};
use http::{Request, Response, StatusCode};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use serde_json::{Value, json};

pub const NAMESPACE: &str = "team-a";
pub const ROLE: &str = "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24";
pub const TEAM_A: &str = "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e";
pub const TEAM_B: &str = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a";
pub const API_KEY: &str = "test-key-7Hq2vX";
pub const PASSWORD: &str = "Tr0ub4dor&3-pw";

/// A chainable AttentionUser for tests.
pub struct UserBuilder(AttentionUser);

impl UserBuilder {
    pub fn new(name: &str, email: &str) -> UserBuilder {
        let spec = AttentionUserSpec {
            email: email.to_owned(),
            first_name: "Ada".to_owned(),
            last_name: "Lovelace".to_owned(),
            role_uuid: ROLE.to_owned(),
            teams: vec![TeamMembership { uuid: TEAM_A.to_owned(), primary: true }],
            seat_type: SeatType::Recording,
            password_secret_ref: None,
            management_policy: Default::default(),
            adoption_policy: Default::default(),
            deletion_policy: None,
        };
        let mut user = AttentionUser::new(name, spec);
        user.metadata.namespace = Some(NAMESPACE.to_owned());
        user.metadata.generation = Some(1);
        user.metadata.uid = Some(format!("uid-{name}"));
        user.metadata.resource_version = Some("1".to_owned());
        UserBuilder(user)
    }

    pub fn password_from(mut self, secret: &str, key: &str) -> UserBuilder {
        let reference = SecretKeyRef { name: secret.to_owned(), key: key.to_owned() };
        self.0.spec.password_secret_ref = Some(reference);
        self
    }

    pub fn teams(mut self, teams: &[(&str, bool)]) -> UserBuilder {
        self.0.spec.teams = teams
            .iter()
            .map(|(uuid, primary)| TeamMembership { uuid: (*uuid).to_owned(), primary: *primary })
            .collect();
        self
    }

    pub fn seat(mut self, seat: SeatType) -> UserBuilder {
        self.0.spec.seat_type = seat;
        self
    }

    pub fn with(mut self, change: impl FnOnce(&mut AttentionUser)) -> UserBuilder {
        change(&mut self.0);
        self
    }

    pub fn status(mut self, status: AttentionUserStatus) -> UserBuilder {
        self.0.status = Some(status);
        self
    }

    pub fn build(self) -> AttentionUser {
        self.0
    }
}

/// A sandbox user with this email, matching what UserBuilder declares (Ada Lovelace, ROLE,
/// TEAM_A primary, a recording seat).
pub fn seed(email: &str) -> SeedUser {
    SeedUser {
        email: email.to_owned(),
        first_name: "Ada".to_owned(),
        last_name: "Lovelace".to_owned(),
        role_uuid: ROLE.to_owned(),
        teams: vec![SeedTeam { uuid: TEAM_A.to_owned(), primary: true }],
        seat_type: None,
        password: None,
    }
}

/// A Secret holding `value` under `key`.
pub fn secret(name: &str, key: &str, value: &str) -> Secret {
    let mut secret = Secret {
        data: Some(BTreeMap::from([(key.to_owned(), ByteString(value.as_bytes().to_vec()))])),
        ..Secret::default()
    };
    secret.metadata.name = Some(name.to_owned());
    secret.metadata.namespace = Some(NAMESPACE.to_owned());
    secret
}

/// One request the fake API server received.
#[derive(Debug, Clone)]
pub struct KubeCall {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

impl KubeCall {
    pub fn is_status_write(&self) -> bool {
        self.method == "PATCH" && self.path.ends_with("/status")
    }

    pub fn is_event(&self) -> bool {
        self.method == "POST" && self.path.contains("/events")
    }
}

#[derive(Default)]
struct KubeState {
    calls: Vec<KubeCall>,
    users: HashMap<String, AttentionUser>,
    secrets: HashMap<String, Secret>,
    /// Leases by name, with the field manager that set each one's holder.
    leases: HashMap<String, (Value, Option<String>)>,
    versions: u64,
}

/// A fake Kubernetes API server for the calls a reconcile makes: reading Secrets, applying
/// AttentionUser status and creating Events. Anything else answers 404 and is recorded.
#[derive(Clone, Default)]
pub struct FakeKube {
    state: Arc<Mutex<KubeState>>,
}

impl FakeKube {
    /// A kube client whose requests this fake answers.
    pub fn client(&self) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let state = self.state.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap();
                let call = KubeCall {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    query: parts.uri.query().unwrap_or("").to_owned(),
                    content_type: parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                };
                let response = answer(&mut state.lock().unwrap(), call);
                respond.send_response(response);
            }
        });
        kube::Client::new(service, "default")
    }

    pub fn add_user(&self, user: &AttentionUser) {
        let name = user.metadata.name.clone().unwrap();
        self.state.lock().unwrap().users.insert(name, user.clone());
    }

    /// Stores (or replaces, as a rotation would) a Secret, with a new resourceVersion.
    pub fn add_secret(&self, mut secret: Secret) {
        let name = secret.metadata.name.clone().unwrap();
        let mut state = self.state.lock().unwrap();
        state.versions += 1;
        secret.metadata.resource_version = Some(format!("{}", 100 + state.versions));
        state.secrets.insert(name, secret);
    }

    /// Deletes a Secret, as `kubectl delete secret` would.
    pub fn remove_secret(&self, name: &str) {
        self.state.lock().unwrap().secrets.remove(name);
    }

    /// The finalizers of the stored object.
    pub fn finalizers(&self, name: &str) -> Vec<String> {
        self.user(name).metadata.finalizers.unwrap_or_default()
    }

    /// Whether the object is still stored (a deleted one goes with its last finalizer).
    pub fn exists(&self, name: &str) -> bool {
        self.state.lock().unwrap().users.contains_key(name)
    }

    /// Marks the stored object as being deleted, as `kubectl delete` does to one with
    /// finalizers.
    pub fn mark_deleted(&self, name: &str) {
        let mut state = self.state.lock().unwrap();
        let user = state.users.get_mut(name).unwrap();
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        user.metadata.deletion_timestamp = Some(now);
    }

    /// Changes the stored object as a person editing it would, bumping its generation.
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut AttentionUser)) {
        let mut state = self.state.lock().unwrap();
        let user = state.users.get_mut(name).unwrap();
        change(user);
        user.metadata.generation = Some(user.metadata.generation.unwrap_or(1) + 1);
    }

    /// The user as stored, with every status written so far.
    pub fn user(&self, name: &str) -> AttentionUser {
        self.state.lock().unwrap().users[name].clone()
    }

    /// The holder of the Lease `name`, if it has one.
    pub fn lease_holder(&self, name: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        let (lease, _) = state.leases.get(name)?;
        lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
    }

    /// Gives the Lease `name` to `holder`, freshly renewed, as another process would.
    pub fn take_lease(&self, name: &str, holder: &str) {
        let mut state = self.state.lock().unwrap();
        let (lease, owner) = state.leases.get_mut(name).unwrap();
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            k8s_openapi::jiff::Timestamp::now(),
        );
        lease["spec"]["holderIdentity"] = json!(holder);
        lease["spec"]["renewTime"] = serde_json::to_value(now).unwrap();
        lease["spec"]["leaseDurationSeconds"] = json!(60);
        *owner = Some(format!("{holder}-manager"));
    }

    pub fn calls(&self) -> Vec<KubeCall> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    pub fn status_writes(&self) -> Vec<KubeCall> {
        self.calls().into_iter().filter(KubeCall::is_status_write).collect()
    }

    pub fn events(&self) -> Vec<KubeCall> {
        self.calls().into_iter().filter(KubeCall::is_event).collect()
    }
}

/// (group, resource, verb) of a request the fake API server received, as RBAC names them.
pub fn access_of(call: &KubeCall) -> (String, String, String) {
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("unexpected path {}", call.path),
    };
    let resource = match rest {
        ["namespaces", _, resource, _, sub] => format!("{resource}/{sub}"),
        ["namespaces", _, resource, ..] => (*resource).to_owned(),
        _ => panic!("unexpected path {}", call.path),
    };
    let verb = match call.method.as_str() {
        "GET" => "get",
        "POST" => "create",
        "PATCH" => "patch",
        "PUT" => "update",
        "DELETE" => "delete",
        other => panic!("unexpected method {other}"),
    };
    (group.to_owned(), resource, verb.to_owned())
}

fn answer(state: &mut KubeState, call: KubeCall) -> Response<Body> {
    state.calls.push(call.clone());
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    match (call.method.as_str(), segments.as_slice()) {
        ("GET", ["api", "v1", "namespaces", _, "secrets", name]) => {
            match state.secrets.get(*name) {
                Some(secret) => respond(StatusCode::OK, &serde_json::to_value(secret).unwrap()),
                None => not_found(&format!("secrets \"{name}\" not found")),
            }
        }
        (
            "PATCH",
            [
                "apis",
                "attention.tech",
                "v1alpha1",
                "namespaces",
                _,
                "attentionusers",
                name,
                "status",
            ],
        ) => match state.users.get_mut(*name) {
            Some(user) => {
                user.status = Some(serde_json::from_value(call.body["status"].clone()).unwrap());
                respond(StatusCode::OK, &serde_json::to_value(&*user).unwrap())
            }
            None => not_found(&format!("attentionusers \"{name}\" not found")),
        },
        (
            "PATCH",
            ["apis", "attention.tech", "v1alpha1", "namespaces", _, "attentionusers", name],
        ) => patch_metadata(state, name, &call.body),
        ("POST", ["apis", "events.k8s.io", "v1", "namespaces", _, "events"]) => {
            respond(StatusCode::CREATED, &call.body)
        }
        ("GET", ["apis", "coordination.k8s.io", "v1", "namespaces", _, "leases", name]) => {
            match state.leases.get(*name) {
                Some((lease, _)) => respond(StatusCode::OK, lease),
                None => not_found(&format!("leases.coordination.k8s.io \"{name}\" not found")),
            }
        }
        ("POST", ["apis", "coordination.k8s.io", "v1", "namespaces", _, "leases"]) => {
            let name = call.body["metadata"]["name"].as_str().unwrap().to_owned();
            if state.leases.contains_key(&name) {
                let body = json!({"kind": "Status", "code": 409, "reason": "AlreadyExists"});
                return respond(StatusCode::CONFLICT, &body);
            }
            state.leases.insert(name, (call.body.clone(), None));
            respond(StatusCode::CREATED, &call.body)
        }
        ("PATCH", ["apis", "coordination.k8s.io", "v1", "namespaces", _, "leases", name]) => {
            patch_lease(state, name, &call)
        }
        _ => not_found("no such path in the fake API server"),
    }
}

/// A merge patch of `metadata.finalizers` (all the operator patches outside status), with the
/// API server's optimistic lock on `resourceVersion`. An object being deleted goes away with
/// its last finalizer.
fn patch_metadata(state: &mut KubeState, name: &str, patch: &Value) -> Response<Body> {
    let Some(user) = state.users.get_mut(name) else {
        return not_found(&format!("attentionusers \"{name}\" not found"));
    };
    let expected = patch["metadata"]["resourceVersion"].as_str();
    if expected.is_some() && expected != user.metadata.resource_version.as_deref() {
        return respond(StatusCode::CONFLICT, &json!({"kind": "Status", "code": 409}));
    }
    let finalizers: Vec<String> =
        serde_json::from_value(patch["metadata"]["finalizers"].clone()).unwrap();
    user.metadata.finalizers = Some(finalizers.clone()).filter(|f| !f.is_empty());
    let version: u64 = user.metadata.resource_version.as_deref().unwrap_or("1").parse().unwrap();
    user.metadata.resource_version = Some((version + 1).to_string());
    let answer = serde_json::to_value(&*user).unwrap();
    if finalizers.is_empty() && user.metadata.deletion_timestamp.is_some() {
        state.users.remove(name);
    }
    respond(StatusCode::OK, &answer)
}

/// A patch of a Lease's spec, with what server-side apply does for leader election: an apply
/// that would change the holder another field manager set is refused as a conflict, and
/// whoever sets the holder (by apply or strategic merge) then owns it.
fn patch_lease(state: &mut KubeState, name: &str, call: &KubeCall) -> Response<Body> {
    let Some((lease, owner)) = state.leases.get_mut(name) else {
        return not_found(&format!("leases.coordination.k8s.io \"{name}\" not found"));
    };
    let manager = call
        .query
        .split('&')
        .find_map(|pair| pair.strip_prefix("fieldManager="))
        .map(|manager| manager.replace("%2F", "/"));
    let patch = &call.body["spec"];
    let holder = &patch["holderIdentity"];
    let current = &lease["spec"]["holderIdentity"];
    let applying = call.content_type.starts_with("application/apply-patch");
    if applying && !current.is_null() && current != holder && *owner != manager {
        let body = json!({"kind": "Status", "code": 409, "reason": "Conflict"});
        return respond(StatusCode::CONFLICT, &body);
    }
    if let Some(set) = patch.get("holderIdentity") {
        *owner = if set.is_null() { None } else { manager };
    }
    let spec = lease["spec"].as_object().cloned().unwrap_or_default();
    let mut spec = Value::Object(spec);
    merge(&mut spec, patch);
    lease["spec"] = spec;
    respond(StatusCode::OK, lease)
}

/// JSON merge patch: objects merge key by key, null removes a key, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn not_found(message: &str) -> Response<Body> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "NotFound", "code": 404,
    });
    respond(StatusCode::NOT_FOUND, &status)
}

/// Log lines written while the returned guard lives, at every level, as text.
pub fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || LogWriter(writer.clone()))
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A replica taking part in a leader election: its task, a signal that it began to lead, a
/// switch that ends its work, and its probes' state.
pub struct Replica {
    pub task: tokio::task::JoinHandle<Result<(), attention_operator::leader::Error>>,
    pub leads: tokio::sync::oneshot::Receiver<()>,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub health: attention_operator::server::Health,
}

/// Starts `identity` in the election `election` names (its identity field is replaced).
pub fn replica(
    client: kube::Client,
    election: &attention_operator::leader::Election,
    identity: &str,
) -> Replica {
    let election =
        attention_operator::leader::Election { identity: identity.to_owned(), ..election.clone() };
    let (leading, leads) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let health = attention_operator::server::Health::default();
    let replica_health = health.clone();
    let task = tokio::spawn(async move {
        let work = async move {
            let _ = leading.send(());
            let _ = stopped.await;
        };
        attention_operator::leader::lead(client, &election, &replica_health, work).await
    });
    Replica { task, leads, stop, health }
}
