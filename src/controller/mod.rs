//! The controller: watches AttentionUsers and reconciles each with the Attention organisation.

mod claims;
mod diff;
mod finalize;
mod outcome;
mod reconcile;
mod request;
mod retry;
mod secret;
mod status;
mod validate;

pub use claims::Claims;
pub use finalize::MAX_DELETE_ATTEMPTS;
pub use outcome::{Found, Next, Outcome, Step};
pub use reconcile::reconcile;
pub use retry::Retries;
pub use validate::problems as spec_problems;

use std::sync::Arc;
use std::time::Duration;

use futures::{Future, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::PredicateConfig;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Api, Client};

use crate::attention::AttentionApi;
use std::hash::{Hash, Hasher};

use crate::crd::{AttentionUser, DeletionPolicy, MANAGER, PAUSED_ANNOTATION};
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::server::Health;

/// How the controller paces its work.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often a healthy user is checked again against Attention.
    pub resync_interval: Duration,
    /// How often a spec that cannot succeed is retried while it does not change.
    pub await_change_retry: Duration,
    /// First retry delay after a failure; later ones double.
    pub backoff_first: Duration,
    /// Longest retry delay after failures.
    pub backoff_cap: Duration,
    /// Oldest the shared view of the organisation's users may be when it is used.
    pub directory_max_age: Duration,
    /// Reconciles running at once, per watched namespace.
    pub concurrency: u16,
    /// Namespaces to watch; all when empty.
    pub namespaces: Vec<String>,
    /// What deleting a resource does to its user when its spec does not say.
    pub default_deletion_policy: DeletionPolicy,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            resync_interval: Duration::from_secs(600),
            await_change_retry: Duration::from_secs(1800),
            backoff_first: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            directory_max_age: Duration::from_secs(30),
            concurrency: 4,
            namespaces: Vec::new(),
            default_deletion_policy: DeletionPolicy::Retain,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub kube: Client,
    pub metrics: Arc<Metrics>,
    pub api: Arc<dyn AttentionApi>,
    pub directory: Directory,
    pub claims: Claims,
    pub recorder: Recorder,
    pub retries: Retries,
    pub settings: Settings,
}

impl Context {
    pub fn new(
        kube: Client,
        api: Arc<dyn AttentionApi>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Context {
        let reporter =
            Reporter { controller: MANAGER.to_owned(), instance: std::env::var("POD_NAME").ok() };
        Context {
            recorder: Recorder::new(kube.clone(), reporter),
            directory: Directory::new(api.clone(), settings.directory_max_age),
            claims: Claims::default(),
            retries: Retries::new(settings.backoff_first, settings.backoff_cap),
            kube,
            metrics,
            api,
            settings,
        }
    }

    /// The requeue for `object` after a reconcile that ended in `next`.
    pub fn action(&self, object: &ObjectRef<AttentionUser>, next: Next) -> Action {
        match next {
            Next::Resync => {
                self.retries.reset(object);
                Action::requeue(self.settings.resync_interval)
            }
            Next::AwaitChange => {
                self.retries.reset(object);
                Action::requeue(self.settings.await_change_retry)
            }
            Next::Backoff { at_least } => {
                let delay = self.retries.next_delay(object);
                Action::requeue(at_least.map_or(delay, |floor| delay.max(floor)))
            }
        }
    }
}

/// A failure that kept a reconcile from reporting its outcome in status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read Secret {name}: {source}")]
    ReadSecret { name: String, source: kube::Error },
    #[error("failed to write status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("failed to update the finalizers: {0}")]
    WriteFinalizer(#[source] kube::Error),
    #[error("the resource has no namespace")]
    NoNamespace,
}

impl Error {
    /// A short, stable name of the failure, for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ReadSecret { .. } => "ReadSecret",
            Error::WriteStatus(_) => "WriteStatus",
            Error::WriteFinalizer(_) => "WriteFinalizer",
            Error::NoNamespace => "NoNamespace",
        }
    }
}

/// Backs off a reconcile that could not even report its outcome.
pub fn error_policy(user: Arc<AttentionUser>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(reason = error.reason(), %error, "Reconcile failed");
    ctx.metrics.reconcile_error(error.reason());
    ctx.action(&ObjectRef::from_obj(&*user), Next::Backoff { at_least: None })
}

/// Runs the controller until the process receives SIGTERM or Ctrl-C: one per watched
/// namespace, or one for all. `health` follows their watches and turns ready once each has
/// listed its resources.
pub async fn run(ctx: Arc<Context>, health: Health) {
    let scopes: Vec<Option<String>> = if ctx.settings.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.settings.namespaces.iter().cloned().map(Some).collect()
    };
    let controllers: Vec<_> =
        scopes.iter().map(|scope| controller_for(scope.as_deref(), &ctx, &health)).collect();
    let readiness = tokio::spawn(health.become_ready_when_synced());
    futures::future::join_all(controllers).await;
    readiness.abort();
}

/// The controller of one scope. It also watches the metadata (never the data) of Secrets, so
/// that a rotated password Secret reaches its users at once.
fn controller_for(
    namespace: Option<&str>,
    ctx: &Arc<Context>,
    health: &Health,
) -> impl Future<Output = ()> + use<> {
    let users: Api<AttentionUser> = scoped(&ctx.kube, namespace);
    let secrets: Api<PartialObjectMeta<Secret>> = scoped(&ctx.kube, namespace);
    let (store, writer) = reflector::store();
    let changes = watcher::watcher(users, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(changes_that_matter, PredicateConfig::default());
    let controller = Controller::for_stream(changes, store.clone());
    health.watch(store.clone());
    ctx.claims.watch(store.clone());
    let secrets_listed = health.follow();
    let secret_changes = watcher::watcher(secrets, watcher::Config::default())
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) {
                secrets_listed.done();
            }
        })
        .touched_objects();
    controller
        .watches_stream(secret_changes, move |secret| users_of_secret(&store, &secret))
        .with_config(controller::Config::default().concurrency(ctx.settings.concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::trace!(%object, "Reconciled"),
                Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(error) => tracing::warn!(%error, "Controller error"),
            }
        })
}

fn scoped<K>(kube: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(kube.clone(), namespace),
        None => Api::all(kube.clone()),
    }
}

/// What of a resource, when it changes, calls for a reconcile: its spec (generation), the pause
/// annotation, its finalizers and deletion. Status changes, the operator's own writes among
/// them, do not: they would re-run a reconcile that just ran, and defeat the backoff of one
/// whose failures are counted in status.
fn changes_that_matter(user: &AttentionUser) -> Option<u64> {
    let mut hasher = std::hash::DefaultHasher::new();
    user.metadata.generation.hash(&mut hasher);
    user.annotations().get(PAUSED_ANNOTATION).hash(&mut hasher);
    user.finalizers().hash(&mut hasher);
    user.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// The AttentionUsers whose password lives in `secret`.
fn users_of_secret(
    store: &Store<AttentionUser>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<AttentionUser>> {
    let (namespace, name) = (secret.namespace(), secret.name_any());
    store
        .state()
        .iter()
        .filter(|user| user.namespace() == namespace)
        .filter(|user| user.spec.password_secret_ref.as_ref().is_some_and(|r| r.name == name))
        .map(|user| ObjectRef::from_obj(&**user))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn user(name: &str, secret: Option<&str>) -> AttentionUser {
        let mut user: AttentionUser = serde_json::from_value(json!({
            "apiVersion": "attention.tech/v1alpha1", "kind": "AttentionUser",
            "metadata": {"name": name, "namespace": "team-a", "generation": 1},
            "spec": {"email": "a@x.io", "firstName": "A", "lastName": "B",
                     "roleUUID": "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24",
                     "teams": [{"uuid": "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e"}]},
        }))
        .unwrap();
        user.spec.password_secret_ref =
            secret.map(|name| crate::crd::SecretKeyRef { name: name.into(), key: "pw".into() });
        user
    }

    #[test]
    fn status_changes_do_not_call_for_a_reconcile_but_the_rest_does() {
        let base = user("ada", None);
        let mut with_status = base.clone();
        with_status.status = Some(Default::default());
        assert_eq!(changes_that_matter(&base), changes_that_matter(&with_status));

        let mut edited = base.clone();
        edited.metadata.generation = Some(2);
        let mut paused = base.clone();
        paused.metadata.annotations = Some([(PAUSED_ANNOTATION.into(), "true".into())].into());
        let mut other_annotation = base.clone();
        other_annotation.metadata.annotations = Some([("team".into(), "x".into())].into());
        let mut deleted = base.clone();
        deleted.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
        let mut finalized = base.clone();
        finalized.metadata.finalizers = Some(vec![crate::crd::FINALIZER.into()]);
        for changed in [&edited, &paused, &deleted, &finalized] {
            assert_ne!(changes_that_matter(&base), changes_that_matter(changed));
        }
        assert_eq!(changes_that_matter(&base), changes_that_matter(&other_annotation));
    }

    #[test]
    fn a_secret_change_reaches_the_users_of_that_secret_only() {
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&Event::Init);
        for user in [user("ada", Some("shared")), user("bob", Some("other")), user("cy", None)] {
            writer.apply_watcher_event(&Event::InitApply(user));
        }
        writer.apply_watcher_event(&Event::InitDone);
        let secret: PartialObjectMeta<Secret> = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "shared", "namespace": "team-a"},
        }))
        .unwrap();
        let names: Vec<String> =
            users_of_secret(&store, &secret).into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["ada"]);
        let elsewhere: PartialObjectMeta<Secret> = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "shared", "namespace": "team-b"},
        }))
        .unwrap();
        assert!(users_of_secret(&store, &elsewhere).is_empty());
    }
}
