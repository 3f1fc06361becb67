//! The controller: watches AttentionUsers and reconciles each with the Attention organisation.

mod outcome;
mod reconcile;
mod request;
mod retry;
mod secret;
mod status;
mod validate;

pub use outcome::{Next, Outcome, Step};
pub use reconcile::reconcile;
pub use retry::Retries;
pub use validate::problems as spec_problems;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client};

use crate::attention::AttentionApi;
use crate::crd::{AttentionUser, MANAGER};
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
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub kube: Client,
    pub metrics: Arc<Metrics>,
    pub api: Arc<dyn AttentionApi>,
    pub directory: Directory,
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
        let reporter = Reporter {
            controller: MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(kube.clone(), reporter),
            directory: Directory::new(api.clone(), settings.directory_max_age),
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
    #[error("the resource has no namespace")]
    NoNamespace,
}

impl Error {
    /// A short, stable name of the failure, for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ReadSecret { .. } => "ReadSecret",
            Error::WriteStatus(_) => "WriteStatus",
            Error::NoNamespace => "NoNamespace",
        }
    }
}

/// Backs off a reconcile that could not even report its outcome.
pub fn error_policy(user: Arc<AttentionUser>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(reason = error.reason(), %error, "Reconcile failed");
    ctx.metrics.reconcile_error(error.reason());
    ctx.action(
        &ObjectRef::from_obj(&*user),
        Next::Backoff { at_least: None },
    )
}

/// Runs the controller until the process receives SIGTERM or Ctrl-C. `health` follows its
/// watches and turns ready once each has listed its resources.
pub async fn run(ctx: Arc<Context>, health: Health) {
    let settings = &ctx.settings;
    let scopes: Vec<Api<AttentionUser>> = if settings.namespaces.is_empty() {
        vec![Api::all(ctx.kube.clone())]
    } else {
        settings
            .namespaces
            .iter()
            .map(|ns| Api::namespaced(ctx.kube.clone(), ns))
            .collect()
    };
    let controllers: Vec<_> = scopes
        .into_iter()
        .map(|users| {
            let controller = Controller::new(users, watcher::Config::default().any_semantic());
            health.watch(controller.store());
            controller
                .with_config(controller::Config::default().concurrency(settings.concurrency))
                .shutdown_on_signal()
                .run(reconcile, error_policy, ctx.clone())
                .for_each(|result| async move {
                    match result {
                        Ok((object, _)) => tracing::trace!(%object, "Reconciled"),
                        Err(controller::Error::ReconcilerFailed(..)) => {}
                        Err(error) => tracing::warn!(%error, "Controller error"),
                    }
                })
        })
        .collect();
    let readiness = tokio::spawn(health.become_ready_when_synced());
    futures::future::join_all(controllers).await;
    readiness.abort();
}
