//! The operator's HTTP endpoints: `/healthz` (alive), `/readyz` (watches established) and
//! `/metrics` (Prometheus).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::runtime::reflector::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::crd::{AttentionUser, AttentionUserStatus};
use crate::metrics::Metrics;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the probes report: whether every watch has listed its resources once (or this
/// replica stands by for the lease), and the caches those watches fill.
#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
    standing_by: Arc<AtomicBool>,
    stores: Arc<Mutex<Vec<Store<AttentionUser>>>>,
    /// Watches that fill no store (the Secret metadata watch): whether each has listed.
    listings: Arc<Mutex<Vec<watch::Receiver<bool>>>>,
}

/// Tells `Health` that one watch it follows has listed its objects once.
pub struct Listed(watch::Sender<bool>);

impl Listed {
    pub fn done(&self) {
        self.0.send_replace(true);
    }
}

impl Health {
    /// Follows `store`: it counts for `/readyz` and for the users gauge.
    pub fn watch(&self, store: Store<AttentionUser>) {
        self.stores.lock().expect("no thread panics while holding the lock").push(store);
    }

    /// Follows a watch that fills no store: it counts for `/readyz` once `done` is called on
    /// the answer.
    pub fn follow(&self) -> Listed {
        let (sender, receiver) = watch::channel(false);
        self.listings.lock().expect("no thread panics while holding the lock").push(receiver);
        Listed(sender)
    }

    /// Marks the operator ready once every followed store and watch has completed its first
    /// listing.
    pub async fn become_ready_when_synced(self) {
        let stores = self.stores.lock().expect("no thread panics while holding the lock").clone();
        for store in stores {
            if store.wait_until_ready().await.is_err() {
                return;
            }
        }
        let listings =
            self.listings.lock().expect("no thread panics while holding the lock").clone();
        for mut listing in listings {
            if listing.wait_for(|listed| *listed).await.is_err() {
                return;
            }
        }
        self.ready.store(true, Ordering::SeqCst);
        tracing::info!("Watches established");
    }

    /// Marks this replica as standing by for the lease, or as leading. A replica standing by
    /// is ready: it is healthy, and a rolling update must be able to go on past it.
    pub fn stand_by(&self, standing_by: bool) {
        self.standing_by.store(standing_by, Ordering::SeqCst);
    }

    pub fn is_standing_by(&self) -> bool {
        self.standing_by.load(Ordering::SeqCst)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    fn users(&self) -> Vec<Arc<AttentionUser>> {
        let stores = self.stores.lock().expect("no thread panics while holding the lock");
        stores.iter().flat_map(Store::state).collect()
    }
}

#[derive(Clone)]
struct Endpoints {
    health: Health,
    metrics: Arc<Metrics>,
}

/// The routes, for serving or for tests.
pub fn router(health: Health, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Endpoints { health, metrics })
}

/// Serves the endpoints on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    axum::serve(listener, router(health, metrics)).await
}

async fn readyz(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    if endpoints.health.is_ready() {
        (StatusCode::OK, "ready")
    } else if endpoints.health.is_standing_by() {
        (StatusCode::OK, "standing by for the lease")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "watches not established yet")
    }
}

async fn metrics_text(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    let (ready, not_ready, unknown) = count_by_ready(&endpoints.health.users());
    endpoints.metrics.set_users(ready, not_ready, unknown);
    ([(header::CONTENT_TYPE, OPENMETRICS)], endpoints.metrics.encode())
}

/// How many users have a Ready condition that is True, False, or neither (none reported yet,
/// or a status older than the spec).
fn count_by_ready(users: &[Arc<AttentionUser>]) -> (i64, i64, i64) {
    let mut counts = (0, 0, 0);
    for user in users {
        let current = user
            .status
            .as_ref()
            .filter(|status| status.observed_generation == user.metadata.generation);
        match current.and_then(AttentionUserStatus::ready).map(|ready| ready.status.as_str()) {
            Some("True") => counts.0 += 1,
            Some("False") => counts.1 += 1,
            _ => counts.2 += 1,
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(generation: i64, observed: Option<i64>, ready: Option<&str>) -> Arc<AttentionUser> {
        let conditions: Vec<_> = ready
            .map(|status| {
                json!({"type": "Ready", "status": status, "reason": "R", "message": "",
                                 "lastTransitionTime": "2026-01-01T00:00:00Z"})
            })
            .into_iter()
            .collect();
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "attention.tech/v1alpha1", "kind": "AttentionUser",
                "metadata": {"name": "u", "namespace": "n", "generation": generation},
                "spec": {"email": "a@b.co", "firstName": "A", "lastName": "B",
                         "roleUUID": "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24",
                         "teams": [{"uuid": "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e"}]},
                "status": {"observedGeneration": observed, "conditions": conditions},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn users_are_counted_by_their_current_ready_status() {
        let users = [
            user(1, Some(1), Some("True")),
            user(2, Some(2), Some("True")),
            user(1, Some(1), Some("False")),
            user(3, Some(2), Some("True")),
            user(1, None, None),
        ];
        assert_eq!(count_by_ready(&users), (2, 1, 2), "a stale Ready counts as unknown");
    }
}
