//! One reconcile of one AttentionUser: find, create or converge the user (or clean it up when
//! the resource goes away), then report it.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::outcome::{Found, Outcome, Step};
use super::{Context, Error, diff, finalize, request, secret, status, validate};
use crate::attention::{ApiError, Password, RemoteUser};
use crate::crd::{
    AttentionUser, AttentionUserStatus, MANAGER, ManagementPolicy, Origin, PAUSED_ANNOTATION,
    SecretKeyRef,
};

/// Makes the organisation hold the user `user` declares and reports the outcome in status,
/// or lets the user go as its deletion policy says when the resource is being deleted.
#[tracing::instrument(skip_all, fields(namespace = user.namespace(), name = user.name_any()))]
pub async fn reconcile(user: Arc<AttentionUser>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = if user.metadata.deletion_timestamp.is_some() {
        finalize::cleanup(&user, &ctx, is_paused(&user)).await
    } else {
        apply(&user, &ctx).await
    };
    ctx.metrics.reconcile_took(started.elapsed());
    result
}

/// Brings the user in line with the spec, as far as the policies allow, and reports it.
async fn apply(user: &AttentionUser, ctx: &Context) -> Result<Action, Error> {
    finalize::keep_in_line(user, ctx).await?;
    let mut current = user.status.clone();
    let outcome =
        if is_paused(user) { Outcome::Paused } else { observe(user, ctx, &mut current).await? };
    let desired =
        status::build(current.as_ref(), user.metadata.generation, &outcome, Timestamp::now());
    if current.as_ref() != Some(&desired) {
        write_status(user, ctx, &desired).await?;
    }
    publish_event(user, ctx, &outcome).await;
    ctx.metrics.reconciled(outcome.is_ready(), outcome.is_failure().then(|| outcome.reason()));
    tracing::debug!(reason = outcome.reason(), "Reconciled");
    Ok(ctx.action(&ObjectRef::from_obj(user), outcome.next()))
}

/// Whether the paused annotation is set to `"true"`.
pub fn is_paused(user: &AttentionUser) -> bool {
    user.annotations().get(PAUSED_ANNOTATION).is_some_and(|value| value == "true")
}

/// Finds the user in Attention and brings it in line with the spec as the policies allow.
/// `current` follows the status as written so far.
async fn observe(
    user: &AttentionUser,
    ctx: &Context,
    current: &mut Option<AttentionUserStatus>,
) -> Result<Outcome, Error> {
    let problems = validate::problems(&user.spec);
    if !problems.is_empty() {
        return Ok(Outcome::InvalidSpec(problems.join("; ")));
    }
    if let Some(holder) = ctx.claims.claim(user).await {
        return Ok(Outcome::Conflict { holder });
    }
    let status = current.as_ref();
    let recorded = status.and_then(|status| status.uuid.clone());
    let pending = status.and_then(|status| status.create_pending) == Some(true);
    if let (Some(uuid), false) = (&recorded, pending) {
        match ctx.directory.find_by_uuid(uuid).await {
            Ok(Some(remote)) if !remote.has_email(&user.spec.email) => {
                // Only possible where admission skipped the CEL rule that forbids it.
                return Ok(Outcome::InvalidSpec(format!(
                    "email cannot be changed: this resource manages the Attention user {uuid}, \
                     whose email is {}; restore spec.email, or create a new AttentionUser",
                    remote.email
                )));
            }
            Ok(Some(remote)) => {
                let origin = status.and_then(|s| s.origin).unwrap_or(Origin::Adopted);
                return converge(user, ctx, current.as_ref(), remote, origin).await;
            }
            Ok(None) => {}
            Err(error) => {
                return Ok(Outcome::ApiFailed { step: Step::ListUsers, error });
            }
        }
    }
    match ctx.directory.find_by_email(&user.spec.email).await {
        Ok(Some(remote)) => match origin_of_found(user, recorded.is_some(), pending) {
            Some(origin) => converge(user, ctx, current.as_ref(), remote, origin).await,
            None => Ok(Outcome::AdoptionRefused { uuid: remote.uuid }),
        },
        Ok(None) => create_missing(user, ctx, current, recorded).await,
        Err(error) => Ok(Outcome::ApiFailed { step: Step::ListUsers, error }),
    }
}

/// How a user found by email came to be this resource's: its own create if one may have
/// landed, else an adoption, if the adoption policy allows one.
fn origin_of_found(user: &AttentionUser, recorded: bool, pending: bool) -> Option<Origin> {
    match (pending, recorded) {
        (true, true) => Some(Origin::Recreated),
        (true, false) => Some(Origin::Created),
        (false, _) if user.spec.adoption_policy == crate::crd::AdoptionPolicy::Refuse => None,
        (false, _) => Some(Origin::Adopted),
    }
}

/// Creates a user that does not exist, or reports it when the policy creates nothing.
async fn create_missing(
    user: &AttentionUser,
    ctx: &Context,
    current: &mut Option<AttentionUserStatus>,
    recorded: Option<String>,
) -> Result<Outcome, Error> {
    match (user.spec.management_policy, recorded) {
        (ManagementPolicy::Observe, Some(uuid)) => Ok(Outcome::UserMissing { uuid }),
        (ManagementPolicy::Observe, None) => Ok(Outcome::NotPresent),
        (ManagementPolicy::Manage, Some(uuid)) => {
            tracing::warn!(%uuid, "The recorded user is gone from Attention; creating it again");
            create(user, ctx, current, Origin::Recreated).await
        }
        (ManagementPolicy::Manage, None) => create(user, ctx, current, Origin::Created).await,
    }
}

/// Creates the user, with its password when one is configured. A mark is written to status
/// first so that a create interrupted by a restart is recognised afterwards.
async fn create(
    user: &AttentionUser,
    ctx: &Context,
    current: &mut Option<AttentionUserStatus>,
    origin: Origin,
) -> Result<Outcome, Error> {
    let (password, version) = match &user.spec.password_secret_ref {
        Some(reference) => match read_password(user, ctx, reference).await? {
            Ok((password, version)) => (Some(password), Some(version)),
            Err(problem) => return Ok(Outcome::SecretMissing(problem)),
        },
        None => (None, None),
    };
    let pending_before = current.as_ref().and_then(|status| status.create_pending) == Some(true);
    let step = if refused_before(user) { Step::CreateUserAgain } else { Step::CreateUser };
    let creating = status::creating(current.as_ref(), user.metadata.generation, Timestamp::now());
    write_status(user, ctx, &creating).await?;
    *current = Some(creating);
    match ctx.api.create_user(&request::new_user(&user.spec, password)).await {
        Ok(remote) => {
            tracing::info!(uuid = %remote.uuid, "Created user in Attention");
            let remote = diff::with_declared_membership(remote, &user.spec);
            ctx.directory.record(remote.clone()).await;
            let found = Found { password_version: version, ..Found::new(remote, origin) };
            Ok(Outcome::Ready(Box::new(found)))
        }
        Err(error) => {
            ctx.directory.invalidate().await;
            // The mark written for this attempt says nothing once the answer is known. An
            // earlier create that may have landed was not in the list just read; it stays
            // pending only if this refusal says the email now exists (409), as it would if
            // that create landed meanwhile. Any other refusal settles it.
            let duplicate = matches!(error, ApiError::Rejected { status: 409, .. });
            if let Some(status) = current.as_mut() {
                status.create_pending = (pending_before && duplicate).then_some(true);
            }
            Ok(Outcome::ApiFailed { step, error })
        }
    }
}

/// Whether Attention refused this generation's last create. The email has been looked up
/// since (a failed create invalidates the shared view), so another refusal is no duplicate.
fn refused_before(user: &AttentionUser) -> bool {
    let ready = user.status.as_ref().and_then(AttentionUserStatus::ready);
    ready.is_some_and(|ready| {
        ready.reason == ApiError::REJECTED && ready.observed_generation == user.metadata.generation
    })
}

/// Compares the user with the spec; corrects the differences (and a rotated password) when
/// the resource manages it, reports them when it only observes.
async fn converge(
    user: &AttentionUser,
    ctx: &Context,
    current: Option<&AttentionUserStatus>,
    remote: RemoteUser,
    origin: Origin,
) -> Result<Outcome, Error> {
    let drift = diff::differences(&user.spec, &remote);
    if user.spec.management_policy == ManagementPolicy::Observe {
        let found = Box::new(Found::new(remote, origin));
        return Ok(if drift.is_empty() {
            Outcome::Ready(found)
        } else {
            Outcome::Drifted(found, drift)
        });
    }
    let adopting = current.and_then(|status| status.uuid.as_ref()).is_none();
    let (password, version) = password_to_send(user, ctx, current, adopting).await?;
    let sending = password.is_some();
    let Some(update) = diff::update(&user.spec, &remote, &drift, password) else {
        let found = Found { password_version: version, ..Found::new(remote, origin) };
        return Ok(Outcome::Ready(Box::new(found)));
    };
    match ctx.api.update_user(&remote.uuid, &update).await {
        Ok(updated) => {
            let mut changed: Vec<String> = drift.into_iter().map(|d| d.field).collect();
            changed.extend(sending.then(|| "password".to_owned()));
            tracing::info!(uuid = %updated.uuid, changed = ?changed, "Updated user in Attention");
            let updated = diff::with_declared_membership(updated, &user.spec);
            ctx.directory.record(updated.clone()).await;
            let found = Found { changed, password_version: version, ..Found::new(updated, origin) };
            Ok(Outcome::Ready(Box::new(found)))
        }
        Err(error) => Ok(Outcome::ApiFailed { step: Step::UpdateUser, error }),
    }
}

/// The password to send to an existing user, and the Secret version to record: a version
/// not sent yet is sent, except when the user is being adopted, which keeps its own password
/// (only later rotations of the Secret are sent). A Secret that is gone or unusable after the
/// user exists changes nothing.
async fn password_to_send(
    user: &AttentionUser,
    ctx: &Context,
    current: Option<&AttentionUserStatus>,
    adopting: bool,
) -> Result<(Option<Password>, Option<String>), Error> {
    let Some(reference) = &user.spec.password_secret_ref else {
        return Ok((None, None));
    };
    let sent = current.and_then(|status| status.password_version.as_deref());
    match read_password(user, ctx, reference).await? {
        Ok((_, version)) if Some(version.as_str()) == sent => Ok((None, None)),
        Ok((_, version)) if adopting => Ok((None, Some(version))),
        Ok((password, version)) => Ok((Some(password), Some(version))),
        Err(problem) => {
            tracing::debug!(%problem, "Password Secret unusable; the user keeps its password");
            Ok((None, None))
        }
    }
}

/// The password and the version of the Secret holding it, or what is wrong with the Secret.
async fn read_password(
    user: &AttentionUser,
    ctx: &Context,
    reference: &SecretKeyRef,
) -> Result<Result<(Password, String), String>, Error> {
    let namespace = user.namespace().ok_or(Error::NoNamespace)?;
    let secrets: Api<Secret> = Api::namespaced(ctx.kube.clone(), &namespace);
    let found = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|source| Error::ReadSecret { name: reference.name.clone(), source })?;
    let version = format!(
        "{}/{}",
        reference.name,
        found.as_ref().and_then(|s| s.resource_version()).unwrap_or_default()
    );
    Ok(secret::password(found.as_ref(), reference).map(|password| (password, version)))
}

/// Writes `status` through the status subresource with server-side apply.
pub(super) async fn write_status(
    user: &AttentionUser,
    ctx: &Context,
    status: &AttentionUserStatus,
) -> Result<(), Error> {
    let namespace = user.namespace().ok_or(Error::NoNamespace)?;
    let users: Api<AttentionUser> = Api::namespaced(ctx.kube.clone(), &namespace);
    let patch = json!({
        "apiVersion": AttentionUser::api_version(&()),
        "kind": AttentionUser::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(MANAGER).force();
    users
        .patch_status(&user.name_any(), &params, &Patch::Apply(&patch))
        .await
        .map_err(Error::WriteStatus)?;
    Ok(())
}

/// Records an Event when the `Ready` reason changes, so retries repeat none, and one for
/// every update sent to Attention.
pub(super) async fn publish_event(user: &AttentionUser, ctx: &Context, outcome: &Outcome) {
    if let Outcome::Ready(found) = outcome
        && !found.changed.is_empty()
    {
        let note = format!("updated {} in Attention", found.changed.join(", "));
        announce(user, ctx, EventType::Normal, "Updated", "Update", &note).await;
    }
    let previous = user.status.as_ref().and_then(AttentionUserStatus::ready);
    if previous.is_some_and(|ready| ready.reason == outcome.reason()) {
        return;
    }
    let (type_, action) = match outcome {
        Outcome::Ready(found) if found.origin == Origin::Adopted => (EventType::Normal, "Adopt"),
        Outcome::Ready(found) if found.origin == Origin::Recreated => {
            (EventType::Warning, "Create")
        }
        Outcome::Ready(_) => (EventType::Normal, "Create"),
        Outcome::Paused => (EventType::Normal, "Pause"),
        Outcome::ApiFailed { step, .. } if step.creates() => (EventType::Warning, "Create"),
        Outcome::ApiFailed { step: Step::UpdateUser, .. } => (EventType::Warning, "Update"),
        Outcome::ApiFailed { step: Step::DeleteUser, .. } => (EventType::Warning, "Delete"),
        _ => (EventType::Warning, "Reconcile"),
    };
    announce(user, ctx, type_, outcome.reason(), action, &outcome.message()).await;
}

/// Publishes one Event about `user`; a failure to publish is logged, never fatal.
pub(super) async fn announce(
    user: &AttentionUser,
    ctx: &Context,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.to_owned()),
        action: action.to_owned(),
        secondary: None,
    };
    // Without the resource version, kube's recorder folds a repeat into the first Event's series.
    let mut regarding = user.object_ref(&());
    regarding.resource_version = None;
    if let Err(error) = ctx.recorder.publish(&event, &regarding).await {
        tracing::warn!(%error, "Failed to publish an Event");
    }
}
