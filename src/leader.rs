//! Leader election: of several replicas, only the one that holds a Lease runs the controller.

use std::future::Future;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError, LeaseParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::crd::MANAGER;
use crate::server::Health;

/// How long the lease lasts without being renewed, unless an election says otherwise. A
/// replica standing by looks again when the lease it saw expires, so it takes over within this
/// long of the leader stopping or crashing. The leader renews it when a third is left.
pub const LEASE_SECONDS: u64 = 15;

/// Longest a leader that is stopping waits for its lease to be given up.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Where the lease lives and who this replica is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    pub lease_name: String,
    pub namespace: String,
    /// This replica's name in the lease: the pod's name, or a random one outside a pod.
    pub identity: String,
    /// How long the lease lasts without being renewed (at least 2 seconds).
    pub lease_seconds: u64,
}

/// Why a replica stopped before its work was done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to take part in the election for Lease {lease}: {source}")]
    Elect { lease: String, source: LeaseManagerError },
    #[error("the election for Lease {lease} ended before this replica led")]
    Ended { lease: String },
    #[error("lost the Lease {lease} to another replica")]
    Lost { lease: String },
}

/// Runs `work` once this replica holds the lease, and until it is done; stands by until
/// then (ready, so that a rolling update can go on), and gives the lease up when `work`
/// ends. A leader that loses its lease stops at once with `Error::Lost`, so that two replicas
/// never act together; a SIGTERM while standing by ends the wait.
pub async fn lead(
    client: Client,
    election: &Election,
    health: &Health,
    work: impl Future<Output = ()>,
) -> Result<(), Error> {
    health.stand_by(true);
    tracing::info!(lease = %election.lease_name, identity = %election.identity, "Standing by");
    let mut leadership = tokio::select! {
        acquired = acquire(client, election) => acquired?,
        () = shutdown_signal() => return Ok(()),
    };
    health.stand_by(false);
    tracing::info!(lease = %election.lease_name, "Leading");
    tokio::select! {
        () = work => {}
        () = leadership.lost() => {
            return Err(Error::Lost { lease: election.lease_name.clone() });
        }
    }
    leadership.release().await;
    Ok(())
}

/// This replica's hold on the lease, renewed in the background while it is kept.
struct Leadership {
    leading: watch::Receiver<bool>,
    renewal: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

/// Waits until this replica holds the lease.
async fn acquire(client: Client, election: &Election) -> Result<Leadership, Error> {
    let failed = |source| Error::Elect { lease: election.lease_name.clone(), source };
    // Each replica needs a field manager of its own: the server-side apply conflicts between
    // them are what stops two replicas from taking the lease at once.
    let field_manager: String =
        format!("{MANAGER}/{}", election.identity).chars().take(128).collect();
    let lease_seconds = election.lease_seconds.max(2);
    let renew_before = (lease_seconds / 3).max(1);
    let params = LeaseParams::new(&election.identity, lease_seconds, renew_before)
        .with_field_manager(field_manager);
    let manager = LeaseManagerBuilder::new(client, &election.lease_name)
        .with_namespace(&election.namespace)
        .with_parameters(params)
        .build()
        .await
        .map_err(failed)?;
    let (mut leading, renewal) = manager.watch().await;
    if leading.wait_for(|leading| *leading).await.is_err() {
        // The background task ended before it got the lease: its result says why.
        return Err(match renewal.await {
            Ok(Err(source)) => failed(source),
            Ok(Ok(_)) | Err(_) => Error::Ended { lease: election.lease_name.clone() },
        });
    }
    Ok(Leadership { leading, renewal })
}

impl Leadership {
    /// Resolves once this replica no longer holds the lease.
    async fn lost(&mut self) {
        // An error means the renewal task ended: the lease is not renewed any more either.
        let _ = self.leading.wait_for(|leading| !*leading).await;
    }

    /// Gives the lease up, so that it is free when a replica standing by looks again.
    async fn release(self) {
        drop(self.leading);
        match tokio::time::timeout(RELEASE_WAIT, self.renewal).await {
            Ok(Ok(Ok(_))) => tracing::info!("Gave up the lease"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "Failed to give up the lease"),
            Ok(Err(error)) => tracing::warn!(%error, "Failed to give up the lease"),
            Err(_) => tracing::warn!("Gave up waiting to give up the lease; it expires by itself"),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
