//! One reconcile of one AttentionUser: find or create the user, then report it.

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

use super::outcome::{Outcome, Step};
use super::{Context, Error, request, secret, status, validate};
use crate::attention::Password;
use crate::crd::{AttentionUser, AttentionUserStatus, MANAGER, Origin, SecretKeyRef};

/// Makes the organisation hold the user `user` declares and reports the outcome in status.
#[tracing::instrument(skip_all, fields(namespace = user.namespace(), name = user.name_any()))]
pub async fn reconcile(user: Arc<AttentionUser>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let mut current = user.status.clone();
    let outcome = observe(&user, &ctx, &mut current).await?;
    let generation = user.metadata.generation;
    let desired = status::build(current.as_ref(), generation, &outcome, Timestamp::now());
    if current.as_ref() != Some(&desired) {
        write_status(&user, &ctx, &desired).await?;
    }
    publish_event(&user, &ctx, &outcome).await;
    tracing::debug!(reason = outcome.reason(), "Reconciled");
    ctx.metrics
        .reconciled(outcome.reason(), outcome.is_ready(), started.elapsed());
    Ok(ctx.action(&ObjectRef::from_obj(&*user), outcome.next()))
}

/// Finds the user in Attention, creating it when it does not exist yet. `current` follows the
/// status as written so far.
async fn observe(
    user: &AttentionUser,
    ctx: &Context,
    current: &mut Option<AttentionUserStatus>,
) -> Result<Outcome, Error> {
    let problems = validate::problems(&user.spec);
    if !problems.is_empty() {
        return Ok(Outcome::InvalidSpec(problems.join("; ")));
    }
    let recorded = current.as_ref().and_then(|status| status.uuid.clone());
    match recorded {
        Some(uuid) => Ok(check_recorded(uuid, current.as_ref(), ctx).await),
        None => find_or_create(user, ctx, current).await,
    }
}

/// The user recorded in status, which is reported missing rather than created again.
async fn check_recorded(
    uuid: String,
    current: Option<&AttentionUserStatus>,
    ctx: &Context,
) -> Outcome {
    let origin = current
        .and_then(|status| status.origin)
        .unwrap_or(Origin::Adopted);
    match ctx.directory.find_by_uuid(&uuid).await {
        Ok(Some(remote)) => Outcome::Ready {
            user: Box::new(remote),
            origin,
        },
        Ok(None) => Outcome::UserMissing { uuid },
        Err(error) => Outcome::ApiFailed {
            step: Step::ListUsers,
            error,
        },
    }
}

/// Adopts the user with this email, or creates it when there is none.
async fn find_or_create(
    user: &AttentionUser,
    ctx: &Context,
    current: &mut Option<AttentionUserStatus>,
) -> Result<Outcome, Error> {
    match ctx.directory.find_by_email(&user.spec.email).await {
        Ok(Some(remote)) => {
            let origin = status::origin_of_found(current.as_ref());
            return Ok(Outcome::Ready {
                user: Box::new(remote),
                origin,
            });
        }
        Ok(None) => {}
        Err(error) => {
            return Ok(Outcome::ApiFailed {
                step: Step::ListUsers,
                error,
            });
        }
    }
    let password = match &user.spec.password_secret_ref {
        Some(reference) => match read_password(user, ctx, reference).await? {
            Ok(password) => Some(password),
            Err(problem) => return Ok(Outcome::SecretMissing(problem)),
        },
        None => None,
    };
    let creating = status::creating(current.as_ref(), user.metadata.generation, Timestamp::now());
    write_status(user, ctx, &creating).await?;
    *current = Some(creating);
    Ok(create(&request::new_user(&user.spec, password), ctx).await)
}

async fn create(request: &crate::attention::NewUser, ctx: &Context) -> Outcome {
    match ctx.api.create_user(request).await {
        Ok(remote) => {
            tracing::info!(uuid = %remote.uuid, "Created user in Attention");
            ctx.directory.record(remote.clone()).await;
            Outcome::Ready {
                user: Box::new(remote),
                origin: Origin::Created,
            }
        }
        Err(error) => {
            ctx.directory.invalidate().await;
            Outcome::ApiFailed {
                step: Step::CreateUser,
                error,
            }
        }
    }
}

/// The password, or what is wrong with the Secret meant to hold it.
async fn read_password(
    user: &AttentionUser,
    ctx: &Context,
    reference: &SecretKeyRef,
) -> Result<Result<Password, String>, Error> {
    let namespace = user.namespace().ok_or(Error::NoNamespace)?;
    let secrets: Api<Secret> = Api::namespaced(ctx.kube.clone(), &namespace);
    let found = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|source| Error::ReadSecret {
            name: reference.name.clone(),
            source,
        })?;
    Ok(secret::password(found.as_ref(), reference))
}

/// Writes `status` through the status subresource with server-side apply.
async fn write_status(
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

/// Records an Event when the `Ready` reason changes, so retries repeat none.
async fn publish_event(user: &AttentionUser, ctx: &Context, outcome: &Outcome) {
    let previous = user.status.as_ref().and_then(AttentionUserStatus::ready);
    if previous.is_some_and(|ready| ready.reason == outcome.reason()) {
        return;
    }
    let (type_, action) = match outcome {
        Outcome::Ready {
            origin: Origin::Created,
            ..
        } => (EventType::Normal, "Create"),
        Outcome::Ready {
            origin: Origin::Adopted,
            ..
        } => (EventType::Normal, "Adopt"),
        Outcome::ApiFailed {
            step: Step::CreateUser,
            ..
        } => (EventType::Warning, "Create"),
        _ => (EventType::Warning, "Reconcile"),
    };
    let event = Event {
        type_,
        reason: outcome.reason().to_owned(),
        note: Some(outcome.message()),
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
