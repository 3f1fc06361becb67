//! Deletion: a finalizer holds a resource whose policy deletes its Attention user until the
//! user is deleted, and never longer than a bounded number of failed attempts.

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use super::outcome::{Outcome, Step};
use super::{Context, Error, reconcile, status};
use crate::attention::ApiError;
use crate::crd::{AttentionUser, DeletionPolicy, FINALIZER, ManagementPolicy};

/// Attempts refused for the API key after which the resource is released anyway.
pub const MAX_DELETE_ATTEMPTS: u32 = 5;

/// How long a delete is retried through passing trouble (5xx, timeouts, 429) before the
/// resource is released anyway.
pub const DELETE_PATIENCE: Duration = Duration::from_secs(3600);

/// What deleting the resource should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDelete {
    /// Nothing holds the resource.
    Nothing,
    /// Let the resource go without calling Attention, saying why.
    Release(String),
    /// Delete this Attention user, then let the resource go.
    DeleteUser(String),
    /// Delete the user with the resource's email if a create left pending reached Attention,
    /// then let the resource go.
    DeletePending,
}

/// Whether deleting `user` deletes its Attention user: only a managed user whose policy (or
/// the operator's default) says `Delete`.
pub fn deletes_user(user: &AttentionUser, default: DeletionPolicy) -> bool {
    user.spec.management_policy == ManagementPolicy::Manage
        && user.spec.deletion_policy.unwrap_or(default) == DeletionPolicy::Delete
}

/// What to do about a resource that is being deleted.
pub fn on_delete(user: &AttentionUser, default: DeletionPolicy, paused: bool) -> OnDelete {
    if !user.finalizers().iter().any(|f| f == FINALIZER) {
        return OnDelete::Nothing;
    }
    if paused {
        return OnDelete::Release(
            "reconciliation is paused: the Attention user was left in place".into(),
        );
    }
    if !deletes_user(user, default) {
        return OnDelete::Release(
            "the deletion policy is Retain: the Attention user was left in place".into(),
        );
    }
    let status = user.status.as_ref();
    if status.and_then(|status| status.create_pending) == Some(true) {
        return OnDelete::DeletePending;
    }
    match status.and_then(|status| status.uuid.clone()) {
        Some(uuid) => OnDelete::DeleteUser(uuid),
        None => OnDelete::Release("no Attention user was recorded for this resource".into()),
    }
}

/// Adds the finalizer when the policy needs it and removes it when it no longer does.
pub async fn keep_in_line(user: &AttentionUser, ctx: &Context) -> Result<(), Error> {
    let wanted = deletes_user(user, ctx.settings.default_deletion_policy);
    let present = user.finalizers().iter().any(|f| f == FINALIZER);
    if wanted == present {
        return Ok(());
    }
    let mut finalizers: Vec<String> =
        user.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    if wanted {
        finalizers.push(FINALIZER.to_owned());
    }
    set_finalizers(user, ctx, finalizers).await
}

/// Deletes the Attention user if the policy says so, then releases the resource; after a
/// failure, retries with backoff until MAX_DELETE_ATTEMPTS.
pub async fn cleanup(user: &AttentionUser, ctx: &Context, paused: bool) -> Result<Action, Error> {
    let mut decision = on_delete(user, ctx.settings.default_deletion_policy, paused);
    if matches!(decision, OnDelete::DeleteUser(_) | OnDelete::DeletePending)
        && let Some(other) = ctx.claims.holder_other_than(user).await
    {
        // Another resource still declares this email: its user must outlive this resource.
        decision = OnDelete::Release(format!(
            "the AttentionUser {other} declares the same email: the Attention user was left in \
             place for it"
        ));
    }
    let uuid = match decision {
        OnDelete::Nothing => return Ok(Action::await_change()),
        OnDelete::Release(why) => {
            let type_ = if paused { EventType::Warning } else { EventType::Normal };
            return release(user, ctx, type_, "Retained", &why).await;
        }
        OnDelete::DeleteUser(uuid) => uuid,
        OnDelete::DeletePending => match ctx.directory.find_by_email(&user.spec.email).await {
            Ok(Some(remote)) => remote.uuid,
            Ok(None) => {
                let why = "the create left pending never reached Attention";
                return release(user, ctx, EventType::Normal, "Retained", why).await;
            }
            Err(error) => return delete_failed(user, ctx, error).await,
        },
    };
    match ctx.api.delete_user(&uuid).await {
        Ok(()) => deleted(user, ctx, &uuid).await,
        Err(ApiError::NotFound) => confirm_gone(user, ctx, &uuid).await,
        Err(error) => delete_failed(user, ctx, error).await,
    }
}

/// A 404 means the user is gone, or that Attention has no such call: a fresh list tells which.
async fn confirm_gone(user: &AttentionUser, ctx: &Context, uuid: &str) -> Result<Action, Error> {
    ctx.directory.invalidate().await;
    match ctx.directory.find_by_uuid(uuid).await {
        Ok(None) => deleted(user, ctx, uuid).await,
        Ok(Some(_)) => {
            let unsupported = ApiError::Rejected {
                status: 404,
                excerpt: "the delete call is not available, and the user still exists".into(),
            };
            delete_failed(user, ctx, unsupported).await
        }
        Err(error) => delete_failed(user, ctx, error).await,
    }
}

async fn deleted(user: &AttentionUser, ctx: &Context, uuid: &str) -> Result<Action, Error> {
    ctx.directory.forget(uuid).await;
    let why = format!("deleted the Attention user {uuid}");
    release(user, ctx, EventType::Normal, "Deleted", &why).await
}

/// Whether a failed delete is worth another attempt.
pub fn retry_delete(error: &ApiError, attempts: u32, deleting_for: Duration) -> bool {
    match error {
        // Attention refuses or lacks the call: another attempt gets the same answer.
        ApiError::Rejected { .. } | ApiError::NotFound => false,
        // The key is refused: a few attempts, in case it is being rotated.
        ApiError::Unauthorized { .. } => attempts < MAX_DELETE_ATTEMPTS,
        // Passing trouble: keep trying for an hour, and a few times at least (the operator may
        // have been down when the deletion was asked for).
        ApiError::RateLimited { .. } | ApiError::Unavailable { .. } => {
            attempts < MAX_DELETE_ATTEMPTS || deleting_for < DELETE_PATIENCE
        }
    }
}

/// Reports a failed delete and retries it, or gives up (see `retry_delete`) so that a
/// namespace deletion never hangs on an API that cannot delete.
async fn delete_failed(
    user: &AttentionUser,
    ctx: &Context,
    error: ApiError,
) -> Result<Action, Error> {
    let attempts = user.status.as_ref().and_then(|s| s.deletion_attempts).unwrap_or(0) + 1;
    if !retry_delete(&error, attempts, deleting_for(user)) {
        let why = format!(
            "gave up deleting the Attention user after {attempts} attempt(s) ({error}); it was \
             left in place"
        );
        return release(user, ctx, EventType::Warning, "DeletionAbandoned", &why).await;
    }
    let outcome = Outcome::ApiFailed { step: Step::DeleteUser, error };
    let mut status =
        status::build(user.status.as_ref(), user.metadata.generation, &outcome, Timestamp::now());
    status.deletion_attempts = Some(attempts);
    reconcile::write_status(user, ctx, &status).await?;
    reconcile::publish_event(user, ctx, &outcome).await;
    Ok(ctx.action(&ObjectRef::from_obj(user), outcome.next()))
}

/// How long ago the resource was asked to go.
fn deleting_for(user: &AttentionUser) -> Duration {
    let since = user.metadata.deletion_timestamp.as_ref().map(|time| time.0);
    since.map_or(Duration::ZERO, |since| {
        let elapsed = Timestamp::now().duration_since(since);
        Duration::try_from(elapsed).unwrap_or(Duration::ZERO)
    })
}

/// Removes the finalizer, recording why in an Event.
async fn release(
    user: &AttentionUser,
    ctx: &Context,
    type_: EventType,
    reason: &'static str,
    why: &str,
) -> Result<Action, Error> {
    let finalizers = user.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    set_finalizers(user, ctx, finalizers).await?;
    ctx.retries.reset(&ObjectRef::from_obj(user));
    ctx.metrics.released(reason);
    reconcile::announce(user, ctx, type_, reason, "Delete", why).await;
    Ok(Action::await_change())
}

/// Writes the finalizer list, failing if the object changed since it was read.
async fn set_finalizers(
    user: &AttentionUser,
    ctx: &Context,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    let namespace = user.namespace().ok_or(Error::NoNamespace)?;
    let users: Api<AttentionUser> = Api::namespaced(ctx.kube.clone(), &namespace);
    let patch = json!({
        "metadata": {"resourceVersion": user.resource_version(), "finalizers": finalizers}
    });
    users
        .patch(&user.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::WriteFinalizer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::AttentionUserStatus;

    fn user(policy: Option<DeletionPolicy>, finalizer: bool, uuid: Option<&str>) -> AttentionUser {
        let mut user: AttentionUser = serde_json::from_value(json!({
            "apiVersion": "attention.tech/v1alpha1", "kind": "AttentionUser",
            "metadata": {"name": "ada", "namespace": "team-a"},
            "spec": {"email": "ada@x.io", "firstName": "A", "lastName": "B",
                     "roleUUID": "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24",
                     "teams": [{"uuid": "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e"}]},
        }))
        .unwrap();
        user.spec.deletion_policy = policy;
        if finalizer {
            user.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
        }
        user.status =
            Some(AttentionUserStatus { uuid: uuid.map(Into::into), ..Default::default() });
        user
    }

    #[test]
    fn only_managed_users_with_a_delete_policy_are_deleted() {
        assert!(!deletes_user(&user(None, false, None), DeletionPolicy::Retain));
        assert!(deletes_user(&user(None, false, None), DeletionPolicy::Delete));
        assert!(deletes_user(
            &user(Some(DeletionPolicy::Delete), false, None),
            DeletionPolicy::Retain
        ));
        assert!(!deletes_user(
            &user(Some(DeletionPolicy::Retain), false, None),
            DeletionPolicy::Delete
        ));
        let mut observed = user(Some(DeletionPolicy::Delete), false, None);
        observed.spec.management_policy = ManagementPolicy::Observe;
        assert!(!deletes_user(&observed, DeletionPolicy::Delete), "Observe changes nothing");
    }

    #[test]
    fn a_delete_is_retried_only_while_another_attempt_can_succeed() {
        let refused = ApiError::Rejected { status: 405, excerpt: "no".into() };
        assert!(!retry_delete(&refused, 1, Duration::ZERO), "unsupported: give up at once");
        let key = ApiError::Unauthorized { status: 401 };
        assert!(retry_delete(&key, MAX_DELETE_ATTEMPTS - 1, Duration::ZERO));
        assert!(!retry_delete(&key, MAX_DELETE_ATTEMPTS, Duration::ZERO));
        let down = ApiError::Unavailable { detail: "503".into() };
        assert!(retry_delete(&down, 50, Duration::from_secs(600)), "an outage is waited out");
        assert!(!retry_delete(&down, 50, DELETE_PATIENCE), "but not forever");
        assert!(retry_delete(&down, 1, DELETE_PATIENCE * 3), "late deletions get a few attempts");
    }

    #[test]
    fn deleting_follows_the_policy_the_pause_and_the_record() {
        let delete = Some(DeletionPolicy::Delete);
        let default = DeletionPolicy::Retain;
        assert_eq!(on_delete(&user(delete, false, Some("u-1")), default, false), OnDelete::Nothing);
        assert_eq!(
            on_delete(&user(delete, true, Some("u-1")), default, false),
            OnDelete::DeleteUser("u-1".into())
        );
        assert!(matches!(
            on_delete(&user(delete, true, Some("u-1")), default, true),
            OnDelete::Release(_)
        ));
        assert!(matches!(
            on_delete(&user(delete, true, None), default, false),
            OnDelete::Release(_)
        ));
        let mut pending = user(delete, true, Some("u-old"));
        pending.status.as_mut().unwrap().create_pending = Some(true);
        assert_eq!(on_delete(&pending, default, false), OnDelete::DeletePending);
        let retained = user(Some(DeletionPolicy::Retain), true, Some("u-1"));
        assert!(matches!(on_delete(&retained, default, false), OnDelete::Release(_)));
    }
}
