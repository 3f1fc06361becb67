//! End-to-end tests against a real Kubernetes API server: the generated CRD installed, the
//! controller running in this process, the sandbox standing in for Attention on loopback.
//!
//! Run with `make cluster-test` (KUBECONFIG pointing at a disposable cluster, admin rights).
//! Each test works in a namespace of its own and deletes it when it passes.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use attention_operator::attention::{AuthScheme, ClientSettings, HttpClient};
use attention_operator::controller::{self, Context, Settings};
use attention_operator::crd::{
    AttentionUser, DeletionPolicy, FINALIZER, MANAGER, ManagementPolicy, Origin, PAUSED_ANNOTATION,
    crd_yaml,
};
use attention_operator::leader::Election;
use attention_operator::metrics::Metrics;
use attention_operator::sandbox::{AuthMode, Faults, Sandbox, SandboxConfig};
use attention_operator::server::Health;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::{API_KEY, PASSWORD, UserBuilder, seed};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(60);
const TEST_MANAGER: &str = "attention.tech/cluster-tests";

struct Cluster {
    client: Client,
    namespace: String,
    sandbox: Sandbox,
    settings: Settings,
    controller: Option<JoinHandle<()>>,
}

impl Cluster {
    /// Installs the CRD, makes a fresh namespace and starts the sandbox (not the controller).
    async fn prepare(faults: Faults) -> Cluster {
        let client = Client::try_default().await.expect("KUBECONFIG points at a cluster");
        install_crd(&client).await;
        let namespace = format!("atu-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let object = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
        namespaces.create(&PostParams::default(), &object).await.unwrap();
        let config = SandboxConfig { api_key: API_KEY.to_owned(), auth: AuthMode::Bearer, faults };
        let sandbox = Sandbox::start_local(config).await.unwrap();
        let settings = Settings {
            resync_interval: Duration::from_secs(30),
            backoff_first: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(4),
            namespaces: vec![namespace.clone()],
            ..Settings::default()
        };
        Cluster { client, namespace, sandbox, settings, controller: None }
    }

    async fn start(faults: Faults) -> Cluster {
        let mut cluster = Cluster::prepare(faults).await;
        cluster.start_controller();
        cluster
    }

    /// Like `start`, with the operator's settings changed by `tune`.
    async fn start_tuned(faults: Faults, tune: impl FnOnce(&mut Settings)) -> Cluster {
        let mut cluster = Cluster::prepare(faults).await;
        tune(&mut cluster.settings);
        cluster.start_controller();
        cluster
    }

    /// Starts the controller, watching this test's namespace only.
    fn start_controller(&mut self) {
        let settings = ClientSettings {
            base_url: self.sandbox.base_url().parse().unwrap(),
            api_key: API_KEY.to_owned(),
            auth_scheme: AuthScheme::Bearer,
            timeout: Duration::from_secs(2),
            requests_per_second: 50.try_into().unwrap(),
            max_in_flight: 8,
        };
        let api = Arc::new(HttpClient::new(settings).unwrap());
        let settings = self.settings.clone();
        let metrics = Arc::new(Metrics::new());
        let ctx = Arc::new(Context::new(self.client.clone(), api, settings, metrics));
        self.controller = Some(tokio::spawn(controller::run(ctx, Health::default())));
    }

    /// Kills the controller as a crash would: no graceful shutdown, work in flight dropped.
    fn kill_controller(&mut self) {
        if let Some(controller) = self.controller.take() {
            controller.abort();
        }
    }

    fn users(&self) -> Api<AttentionUser> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn apply(&self, user: AttentionUser) -> Result<AttentionUser, kube::Error> {
        let mut user = user;
        user.metadata.namespace = Some(self.namespace.clone());
        user.metadata.generation = None;
        user.metadata.uid = None;
        user.metadata.resource_version = None;
        self.users().create(&PostParams::default(), &user).await
    }

    async fn add_secret(&self, name: &str, key: &str, value: &str) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut secret = support::secret(name, key, value);
        secret.metadata.namespace = Some(self.namespace.clone());
        secrets.create(&PostParams::default(), &secret).await.unwrap();
    }

    /// Waits until the Ready condition of `name` has `reason`, and returns the object.
    async fn wait_for_reason(&self, name: &str, reason: &str) -> AttentionUser {
        let users = self.users();
        eventually(|| async {
            let user = users.get(name).await.ok()?;
            let ready = user.status.as_ref()?.ready()?;
            (ready.reason == reason).then_some(user.clone())
        })
        .await
        .unwrap_or_else(|| panic!("{name} never reached reason {reason}"))
    }

    /// (reason, type) of the Events about `name`, oldest first.
    async fn events(&self, name: &str) -> Vec<(String, String)> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut list = events.list(&ListParams::default()).await.unwrap().items;
        list.retain(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name));
        list.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
        list.into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.type_.unwrap_or_default()))
            .collect()
    }

    /// Waits until an Event about `name` has `reason` (Events are published after the status
    /// write and after a finalizer is released), and returns all of them as `events` does.
    async fn wait_for_event(&self, name: &str, reason: &str) -> Vec<(String, String)> {
        eventually(|| async {
            let events = self.events(name).await;
            events.iter().any(|(r, _)| r == reason).then_some(events)
        })
        .await
        .unwrap_or_else(|| panic!("no {reason} Event about {name}"))
    }

    fn creates(&self) -> usize {
        self.requests("POST")
    }

    fn requests(&self, method: &str) -> usize {
        self.sandbox.requests().iter().filter(|r| r.method == method).count()
    }

    /// The sandbox's user with this email, as a list shows it.
    fn remote(&self, email: &str) -> Option<serde_json::Value> {
        self.sandbox.users().into_iter().find(|user| user["email"] == email)
    }

    /// Applies a JSON merge patch to the resource, as `kubectl patch --type merge` does.
    async fn patch(&self, name: &str, patch: serde_json::Value) {
        let params = PatchParams::default();
        self.users().patch(name, &params, &Patch::Merge(&patch)).await.unwrap();
    }

    /// Waits until `name` no longer exists.
    async fn wait_gone(&self, name: &str) {
        let users = self.users();
        let gone =
            eventually(|| async { users.get_opt(name).await.unwrap().is_none().then_some(()) });
        gone.await.unwrap_or_else(|| panic!("{name} was never released"));
    }

    /// Stops the controller and deletes the namespace; called at the end of a passing test.
    async fn finish(mut self) {
        self.kill_controller();
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces.delete(&self.namespace, &DeleteParams::default()).await.unwrap();
    }
}

/// Applies the generated CRD and waits until the API server serves it.
async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_yaml::from_str(&crd_yaml()).unwrap();
    let params = PatchParams::apply(TEST_MANAGER).force();
    crds.patch(&crd.name_any(), &params, &Patch::Apply(&crd)).await.unwrap();
    eventually(|| async {
        let crd = crds.get(&crd.name_any()).await.ok()?;
        let conditions = crd.status?.conditions?;
        conditions.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
    })
    .await
    .expect("the CRD becomes established");
}

/// Polls `check` every 250 ms until it answers something or WAIT has passed.
async fn eventually<T, F, Fut>(mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if let Some(found) = check().await {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

fn admission_message(error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        other => panic!("expected a refusal at admission, got {other}"),
    }
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn a_valid_user_is_created_once_and_shown_ready() {
    let cluster = Cluster::start(Faults::default()).await;
    cluster.apply(UserBuilder::new("ada", "ada@example.com").build()).await.unwrap();

    let user = cluster.wait_for_reason("ada", "Created").await;

    let status = user.status.clone().unwrap();
    let ready = status.ready().unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(status.observed_generation, user.metadata.generation);
    assert_eq!(status.origin, Some(Origin::Created));
    assert_eq!(status.uuid.as_deref(), cluster.sandbox.users()[0]["uuid"].as_str());
    assert_eq!(cluster.creates(), 1);
    let events = cluster.wait_for_event("ada", "Created").await;
    assert_eq!(events, [("Created".to_owned(), "Normal".to_owned())]);
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn status_is_written_through_the_status_subresource_only() {
    let cluster = Cluster::start(Faults::default()).await;
    cluster.apply(UserBuilder::new("ada", "ada@example.com").build()).await.unwrap();

    let user = cluster.wait_for_reason("ada", "Created").await;

    let ours: Vec<_> = user
        .managed_fields()
        .iter()
        .filter(|entry| entry.manager.as_deref() == Some(MANAGER))
        .collect();
    assert!(!ours.is_empty(), "the operator's field manager wrote nothing");
    for entry in ours {
        assert_eq!(entry.subresource.as_deref(), Some("status"), "{entry:?}");
        assert_eq!(entry.operation.as_deref(), Some("Apply"));
    }
    assert_eq!(user.metadata.generation, Some(1), "the spec was never changed");
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn an_existing_email_is_adopted_without_a_create() {
    let cluster = Cluster::start(Faults::default()).await;
    let uuid = cluster.sandbox.insert_user(seed("Ada@Example.com"));
    cluster.apply(UserBuilder::new("ada", "ada@example.com").build()).await.unwrap();

    let user = cluster.wait_for_reason("ada", "Adopted").await;

    assert_eq!(user.status.unwrap().uuid, Some(uuid));
    assert_eq!(cluster.creates(), 0);
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn invalid_specs_are_refused_at_admission_with_plain_messages() {
    let cluster = Cluster::start(Faults::default()).await;

    let bad_email = UserBuilder::new("bad-email", "not-an-address").build();
    let message = admission_message(cluster.apply(bad_email).await.unwrap_err());
    assert!(message.contains("spec.email"), "{message}");

    let mut bad_role = UserBuilder::new("bad-role", "role@example.com").build();
    bad_role.spec.role_uuid = "84e67f54-5157-442b-a2b3-8b9c728b2fef1".to_owned();
    let message = admission_message(cluster.apply(bad_role).await.unwrap_err());
    assert!(message.contains("spec.roleUUID"), "{message}");

    // CEL rules: enforced at admission where the API server evaluates them (1.25 and later by
    // default); on a server that skips them the operator reports the same problem in status.
    let two_primaries = UserBuilder::new("two-primaries", "two@example.com")
        .teams(&[(support::TEAM_A, true), (support::TEAM_B, true)])
        .build();
    match cluster.apply(two_primaries).await {
        Err(error) => {
            let message = admission_message(error);
            assert!(message.contains("at most one team can be primary"), "{message}");
        }
        Ok(_) => {
            let user = cluster.wait_for_reason("two-primaries", "InvalidSpec").await;
            let message = user.status.unwrap().ready().unwrap().message.clone();
            assert!(message.contains("at most one team can be primary"), "{message}");
        }
    }
    assert_eq!(cluster.creates(), 0);
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn the_email_cannot_be_changed_once_set() {
    let cluster = Cluster::start(Faults::default()).await;
    cluster.apply(UserBuilder::new("ada", "ada@example.com").build()).await.unwrap();
    cluster.wait_for_reason("ada", "Created").await;

    let patch = json!({"spec": {"email": "ada@example.org"}});
    let result = cluster.users().patch("ada", &PatchParams::default(), &Patch::Merge(&patch)).await;

    match result {
        Err(error) => {
            let message = admission_message(error);
            assert!(message.contains("email cannot be changed"), "{message}");
        }
        // An API server that skips CEL rules accepts the change: the operator refuses it.
        Ok(_) => {
            let user = cluster.wait_for_reason("ada", "InvalidSpec").await;
            let message = user.status.unwrap().ready().unwrap().message.clone();
            assert!(message.contains("email cannot be changed"), "{message}");
            assert!(cluster.remote("ada@example.com").is_some(), "the user stays as it was");
        }
    }
    assert_eq!(cluster.creates(), 1);
    assert_eq!(cluster.requests("PATCH"), 0, "nothing is sent for the changed email");
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn a_password_secret_that_appears_later_is_used_for_the_create() {
    let cluster = Cluster::start(Faults::default()).await;
    let user = UserBuilder::new("ada", "ada@example.com").password_from("ada-password", "password");
    cluster.apply(user.build()).await.unwrap();

    let waiting = cluster.wait_for_reason("ada", "SecretMissing").await;
    let message = waiting.status.unwrap().ready().unwrap().message.clone();
    assert!(message.contains("Secret ada-password does not exist"), "{message}");
    assert_eq!(cluster.creates(), 0);

    cluster.add_secret("ada-password", "password", PASSWORD).await;
    let user = cluster.wait_for_reason("ada", "Created").await;

    assert!(cluster.sandbox.password_matches("ada@example.com", PASSWORD));
    let written = serde_json::to_string(&user).unwrap();
    assert!(!written.contains(PASSWORD));
    let events = cluster.wait_for_event("ada", "Created").await;
    let reasons: Vec<&str> = events.iter().map(|(reason, _)| reason.as_str()).collect();
    assert_eq!(reasons, ["SecretMissing", "Created"]);
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn a_controller_killed_between_create_and_status_write_creates_nothing_twice() {
    let faults = Faults { hold_after_commit_ms: 10_000, ..Faults::default() };
    let mut cluster = Cluster::start(faults).await;
    cluster.apply(UserBuilder::new("ada", "ada@example.com").build()).await.unwrap();

    let committed = eventually(|| async { (!cluster.sandbox.users().is_empty()).then_some(()) });
    committed.await.expect("the create reaches the sandbox");
    cluster.kill_controller();
    cluster.sandbox.set_faults(Faults::default());
    cluster.start_controller();

    let user = cluster.wait_for_reason("ada", "Created").await;

    assert_eq!(cluster.creates(), 1);
    assert_eq!(cluster.sandbox.users().len(), 1);
    assert_eq!(user.status.unwrap().origin, Some(Origin::Created));
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn a_healthy_user_costs_no_further_calls_until_the_resync() {
    let cluster = Cluster::start(Faults::default()).await;
    cluster.apply(UserBuilder::new("ada", "ada@example.com").build()).await.unwrap();
    let ready = cluster.wait_for_reason("ada", "Created").await;
    // Let the reconciles triggered by the operator's own status writes run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.sandbox.clear_requests();
    let version = cluster.users().get("ada").await.unwrap().resource_version();

    tokio::time::sleep(Duration::from_secs(5)).await;

    assert!(cluster.sandbox.requests().is_empty(), "{:?}", cluster.sandbox.requests());
    let after = cluster.users().get("ada").await.unwrap();
    assert_eq!(after.resource_version(), version, "nothing was written");
    assert_eq!(after.status, ready.status);
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn a_spec_edit_is_applied_with_one_patch() {
    let cluster = Cluster::start(Faults::default()).await;
    cluster.apply(UserBuilder::new("ada", "ada@example.com").build()).await.unwrap();
    cluster.wait_for_reason("ada", "Created").await;

    cluster.patch("ada", json!({"spec": {"lastName": "Byron", "seatType": "listener"}})).await;

    let changed = eventually(|| async {
        let user = cluster.remote("ada@example.com")?;
        (user["lastName"] == "Byron" && user["settings"]["seat_type"] == "listener").then_some(())
    });
    changed.await.expect("the edit reaches Attention");
    let reported = eventually(|| async {
        let status = cluster.users().get("ada").await.ok()?.status?;
        let ready = status.ready()?.status == "True";
        (ready && status.observed_generation == Some(2)).then_some(())
    });
    reported.await.expect("Ready on the new generation");
    assert_eq!(cluster.requests("PATCH"), 1);
    cluster.wait_for_event("ada", "Updated").await;
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn a_change_made_in_the_app_is_corrected_at_the_next_resync() {
    let cluster = Cluster::start_tuned(Faults::default(), |settings| {
        settings.resync_interval = Duration::from_secs(3);
        settings.directory_max_age = Duration::ZERO;
    })
    .await;
    cluster.apply(UserBuilder::new("ada", "ada@example.com").build()).await.unwrap();
    let uuid = cluster.wait_for_reason("ada", "Created").await.status.unwrap().uuid.unwrap();

    let edit = json!({"lastName": "Changed", "seat_type": "recording"});
    assert!(cluster.sandbox.update_user(&uuid, edit));

    let corrected = eventually(|| async {
        (cluster.remote("ada@example.com")?["lastName"] == "Lovelace").then_some(())
    });
    corrected.await.expect("the operator puts the last name back");
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn observe_reports_drift_and_changes_nothing() {
    let cluster = Cluster::start(Faults::default()).await;
    let mut existing = seed("ada@example.com");
    existing.last_name = "Byron".to_owned();
    cluster.sandbox.insert_user(existing);
    let observe = |u: &mut AttentionUser| u.spec.management_policy = ManagementPolicy::Observe;
    let user = UserBuilder::new("ada", "ada@example.com").with(observe).build();
    cluster.apply(user).await.unwrap();

    let drifted = cluster.wait_for_reason("ada", "Drifted").await;

    let drift = drifted.status.unwrap().drift;
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!((drift[0].field.as_str(), drift[0].desired.as_str()), ("lastName", "Lovelace"));
    assert_eq!(drift[0].actual, "Byron");
    assert_eq!(cluster.requests("POST") + cluster.requests("PATCH"), 0);
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn a_rotated_password_secret_is_sent_at_once() {
    let cluster = Cluster::start(Faults::default()).await;
    cluster.add_secret("ada-password", "password", PASSWORD).await;
    let user = UserBuilder::new("ada", "ada@example.com").password_from("ada-password", "password");
    cluster.apply(user.build()).await.unwrap();
    let created = cluster.wait_for_reason("ada", "Created").await;
    let first_version = created.status.unwrap().password_version.unwrap();

    let rotated = "N3w-Pa55phrase-r0tated";
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let patch = json!({"stringData": {"password": rotated}});
    let params = PatchParams::default();
    secrets.patch("ada-password", &params, &Patch::Merge(&patch)).await.unwrap();

    let applied = eventually(|| async {
        cluster.sandbox.password_matches("ada@example.com", rotated).then_some(())
    });
    applied.await.expect("the rotated password reaches Attention without a resync");
    let status = eventually(|| async {
        let status = cluster.users().get("ada").await.ok()?.status?;
        (status.password_version.as_ref()? != &first_version).then_some(status)
    })
    .await
    .unwrap();
    let written = serde_json::to_string(&status).unwrap();
    assert!(!written.contains(rotated) && !written.contains(PASSWORD));
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn deleting_follows_each_resources_deletion_policy() {
    let cluster = Cluster::start(Faults::default()).await;
    let delete = |u: &mut AttentionUser| u.spec.deletion_policy = Some(DeletionPolicy::Delete);
    cluster.apply(UserBuilder::new("ada", "ada@example.com").with(delete).build()).await.unwrap();
    cluster.apply(UserBuilder::new("bob", "bob@example.com").build()).await.unwrap();
    let ada = cluster.wait_for_reason("ada", "Created").await;
    let bob = cluster.wait_for_reason("bob", "Created").await;
    let finalizers = eventually(|| async {
        let ada = cluster.users().get("ada").await.ok()?;
        (!ada.finalizers().is_empty()).then(|| ada.finalizers().to_vec())
    });
    assert_eq!(finalizers.await.unwrap(), [FINALIZER]);
    assert!(bob.finalizers().is_empty(), "Retain needs no finalizer");
    assert_eq!(ada.status.unwrap().origin, Some(Origin::Created));

    for name in ["ada", "bob"] {
        cluster.users().delete(name, &DeleteParams::default()).await.unwrap();
    }
    cluster.wait_gone("ada").await;
    cluster.wait_gone("bob").await;

    assert!(cluster.remote("ada@example.com").is_none(), "Delete removed the user");
    assert!(cluster.remote("bob@example.com").is_some(), "Retain kept the user");
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn a_delete_attention_does_not_support_lets_the_resource_go_at_once() {
    let faults = Faults { delete_unsupported: true, ..Faults::default() };
    let cluster = Cluster::start(faults).await;
    let delete = |u: &mut AttentionUser| u.spec.deletion_policy = Some(DeletionPolicy::Delete);
    cluster.apply(UserBuilder::new("ada", "ada@example.com").with(delete).build()).await.unwrap();
    cluster.wait_for_reason("ada", "Created").await;
    let has_finalizer = eventually(|| async {
        let ada = cluster.users().get("ada").await.ok()?;
        (!ada.finalizers().is_empty()).then_some(())
    });
    has_finalizer.await.expect("the finalizer is added");

    cluster.users().delete("ada", &DeleteParams::default()).await.unwrap();
    cluster.wait_gone("ada").await;

    assert!(cluster.remote("ada@example.com").is_some(), "the user stays in place");
    assert_eq!(cluster.requests("DELETE"), 1, "another attempt would get the same answer");
    let events = cluster.wait_for_event("ada", "DeletionAbandoned").await;
    assert!(events.contains(&("DeletionAbandoned".to_owned(), "Warning".to_owned())));
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn a_paused_resource_calls_nothing_until_resumed() {
    let cluster = Cluster::start(Faults::default()).await;
    let paused = |u: &mut AttentionUser| {
        u.metadata.annotations = Some([(PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
    };
    cluster.apply(UserBuilder::new("ada", "ada@example.com").with(paused).build()).await.unwrap();

    let user = cluster.wait_for_reason("ada", "Paused").await;
    assert_eq!(user.status.unwrap().ready().unwrap().status, "Unknown");
    assert!(cluster.sandbox.requests().is_empty());

    cluster.patch("ada", json!({"metadata": {"annotations": {PAUSED_ANNOTATION: null}}})).await;
    cluster.wait_for_reason("ada", "Created").await;
    assert_eq!(cluster.creates(), 1);
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn of_two_resources_with_one_email_the_first_keeps_it() {
    let cluster = Cluster::start(Faults::default()).await;
    cluster.apply(UserBuilder::new("first", "ada@example.com").build()).await.unwrap();
    cluster.wait_for_reason("first", "Created").await;

    cluster.apply(UserBuilder::new("second", "Ada@Example.com").build()).await.unwrap();
    let second = cluster.wait_for_reason("second", "Conflict").await;
    let message = second.status.unwrap().ready().unwrap().message.clone();
    assert!(message.contains(&format!("{}/first", cluster.namespace)), "{message}");
    assert_eq!(cluster.creates(), 1);

    cluster.users().delete("first", &DeleteParams::default()).await.unwrap();
    cluster.wait_gone("first").await;
    cluster.wait_for_reason("second", "Adopted").await;
    assert_eq!(cluster.creates(), 1, "the second took the user over, it did not create one");
    cluster.finish().await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `make cluster-test`"]
async fn of_two_replicas_one_leads_and_the_other_takes_over_when_it_stops() {
    let cluster = Cluster::prepare(Faults::default()).await;
    let election = Election {
        lease_name: "attention-operator-test".to_owned(),
        namespace: cluster.namespace.clone(),
        identity: String::new(),
        lease_seconds: attention_operator::leader::LEASE_SECONDS,
    };
    let mut first = support::replica(cluster.client.clone(), &election, "replica-a");
    let first_leads = tokio::time::timeout(WAIT, &mut first.leads).await;
    first_leads.expect("the first replica leads").unwrap();
    let mut second = support::replica(cluster.client.clone(), &election, "replica-b");

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(second.leads.try_recv().is_err(), "two replicas led at once");
    assert!(second.health.is_standing_by() && !first.health.is_standing_by());
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let lease = leases.get("attention-operator-test").await.unwrap();
    let holder = lease.spec.and_then(|spec| spec.holder_identity);
    assert_eq!(holder.as_deref(), Some("replica-a"));

    first.stop.send(()).unwrap();
    first.task.await.unwrap().expect("a leader whose work ended gives the lease up and stops");
    let took_over = tokio::time::timeout(WAIT, &mut second.leads).await;
    took_over.expect("the second replica takes over").unwrap();
    assert!(!second.health.is_standing_by());
    second.stop.send(()).unwrap();
    second.task.await.unwrap().unwrap();
    cluster.finish().await;
}
