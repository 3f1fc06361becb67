//! The reconcile harness: the real reconcile wired to a fake Kubernetes API server and an
//! in-process sandbox, with helpers to read what each side received.

use std::sync::Arc;
use std::time::Duration;

use attention_operator::attention::{AttentionApi, AuthScheme, ClientSettings, HttpClient};
use attention_operator::controller::{Context, Settings, reconcile};
use attention_operator::crd::{AttentionUser, AttentionUserStatus};
use attention_operator::metrics::Metrics;
use attention_operator::sandbox::{AuthMode, Faults, RecordedRequest, Sandbox, SandboxConfig};
use kube::runtime::controller::Action;
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use serde_json::Value;

use super::{API_KEY, FakeKube};

pub const RESYNC: Duration = Duration::from_secs(600);
pub const AWAIT_CHANGE: Duration = Duration::from_secs(1800);

pub struct Harness {
    pub sandbox: Sandbox,
    pub kube: FakeKube,
    pub ctx: Arc<Context>,
    settings: Settings,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with(Faults::default(), API_KEY).await
    }

    pub async fn with(faults: Faults, key: &str) -> Harness {
        Harness::with_settings(faults, key, settings()).await
    }

    /// A harness whose operator runs with `settings` and sends `key` to the sandbox.
    pub async fn with_settings(faults: Faults, key: &str, settings: Settings) -> Harness {
        let config = SandboxConfig { api_key: API_KEY.to_owned(), auth: AuthMode::Bearer, faults };
        let sandbox = Sandbox::start_local(config).await.unwrap();
        let kube = FakeKube::default();
        let ctx = context(&kube, &sandbox, key, settings.clone());
        Harness { sandbox, kube, ctx, settings }
    }

    /// A new operator process: a fresh context (empty caches) against the same two servers.
    pub fn restart(&mut self) {
        self.restart_with_key(API_KEY);
    }

    /// A new operator process that sends `key` to the sandbox.
    pub fn restart_with_key(&mut self, key: &str) {
        self.ctx = context(&self.kube, &self.sandbox, key, self.settings.clone());
    }

    /// Lets the operator see these resources when it checks who holds an email, as the
    /// controller's watch would; returns the writer to change what it sees later.
    pub fn watch(&self, users: &[AttentionUser]) -> reflector::store::Writer<AttentionUser> {
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&Event::Init);
        for user in users {
            writer.apply_watcher_event(&Event::InitApply(user.clone()));
        }
        writer.apply_watcher_event(&Event::InitDone);
        self.ctx.claims.watch(store);
        writer
    }

    /// Stores `user` in the fake API server and reconciles it once.
    pub async fn apply(&self, user: AttentionUser) -> Action {
        self.kube.add_user(&user);
        self.reconcile(user.metadata.name.as_deref().unwrap()).await
    }

    /// Reconciles the stored object, as the controller would after a watch event.
    pub async fn reconcile(&self, name: &str) -> Action {
        reconcile(Arc::new(self.kube.user(name)), self.ctx.clone()).await.unwrap()
    }

    /// Reconciles `name` once more and checks it was idle: nothing sent to Attention, nothing
    /// written to Kubernetes, the next check after the resync interval.
    pub async fn assert_reconcile_is_idle(&self, name: &str) {
        self.sandbox.clear_requests();
        self.kube.clear_calls();
        let action = self.reconcile(name).await;
        assert_eq!(action, Action::requeue(RESYNC));
        assert_eq!(self.api_calls(), Vec::<String>::new());
        assert!(self.kube.calls().is_empty(), "{:?}", self.kube.calls());
    }

    /// (status, reason) of the stored object's Ready condition.
    pub fn ready(&self, name: &str) -> (String, String) {
        let user = self.kube.user(name);
        let ready = user.status.as_ref().and_then(|s| s.ready()).cloned().unwrap();
        (ready.status, ready.reason)
    }

    /// The stored object's status.
    pub fn status(&self, name: &str) -> AttentionUserStatus {
        self.kube.user(name).status.unwrap()
    }

    /// The Attention UUID the stored object's status records.
    pub fn uuid(&self, name: &str) -> String {
        self.status(name).uuid.unwrap()
    }

    /// The sandbox user with this UUID, as a list answer shows it.
    pub fn remote(&self, uuid: &str) -> Value {
        let users = self.sandbox.users();
        users.into_iter().find(|u| u["uuid"] == uuid).unwrap()
    }

    /// "METHOD path" of every request that could change something in Attention.
    pub fn api_writes(&self) -> Vec<String> {
        let calls = self.api_calls();
        calls.into_iter().filter(|c| !c.starts_with("GET ")).collect()
    }

    /// (type, reason, note) of every Event published so far.
    pub fn events(&self) -> Vec<(String, String, String)> {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        let events = self.kube.events();
        events
            .iter()
            .map(|e| (text(&e.body["type"]), text(&e.body["reason"]), text(&e.body["note"])))
            .collect()
    }

    pub fn message(&self, name: &str) -> String {
        let user = self.kube.user(name);
        user.status.unwrap().ready().unwrap().message.clone()
    }

    /// "METHOD path" of every request the sandbox received.
    pub fn api_calls(&self) -> Vec<String> {
        self.sandbox.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect()
    }

    pub fn creates(&self) -> Vec<RecordedRequest> {
        self.sandbox.requests().into_iter().filter(|r| r.method == "POST").collect()
    }
}

/// The settings tests run the operator with: fixed resync and retry periods to compare with.
pub fn settings() -> Settings {
    Settings {
        resync_interval: RESYNC,
        await_change_retry: AWAIT_CHANGE,
        backoff_first: Duration::from_secs(1),
        backoff_cap: Duration::from_secs(300),
        ..Settings::default()
    }
}

fn context(kube: &FakeKube, sandbox: &Sandbox, key: &str, settings: Settings) -> Arc<Context> {
    let metrics = Arc::new(Metrics::new());
    let api = Arc::new(client_for(sandbox, key).with_metrics(metrics.clone()));
    Arc::new(Context::new(kube.client(), api, settings, metrics))
}

/// An HTTP client of the sandbox, sending `key`.
pub fn client_for(sandbox: &Sandbox, key: &str) -> HttpClient {
    let client = ClientSettings {
        base_url: sandbox.base_url().parse().unwrap(),
        api_key: key.to_owned(),
        auth_scheme: AuthScheme::Bearer,
        timeout: Duration::from_millis(500),
        requests_per_second: 1000.try_into().unwrap(),
        max_in_flight: 16,
    };
    HttpClient::new(client).unwrap()
}

impl Harness {
    /// Puts `api` between the operator and the sandbox, as a new operator process would.
    pub fn restart_with_api(&mut self, api: Arc<dyn AttentionApi>) {
        let metrics = Arc::new(Metrics::new());
        self.ctx = Arc::new(Context::new(self.kube.client(), api, self.settings.clone(), metrics));
    }
}

/// The requeue delay of an action. kube's Action has no getter, so this reads its Debug form,
/// `Action { requeue_after: Some(1.234s) }`.
pub fn requeue_after(action: &Action) -> Duration {
    let text = format!("{action:?}");
    let inner = text.split("Some(").nth(1).and_then(|rest| rest.split(')').next()).unwrap();
    match inner.strip_suffix("ms") {
        Some(millis) => Duration::from_secs_f64(millis.parse::<f64>().unwrap() / 1000.0),
        None => Duration::from_secs_f64(inner.trim_end_matches('s').parse().unwrap()),
    }
}

pub fn ready(status: &str, reason: &str) -> (String, String) {
    (status.to_owned(), reason.to_owned())
}
