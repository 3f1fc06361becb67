//! Control endpoints under `/_sandbox/`: no auth, no faults, not recorded; loopback dev use.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};

use super::routes::{message, not_found, parse_body};
use serde::Deserialize;
use serde_json::Value;

use super::state::{SeedUser, UpdateError, redact_passwords};
use super::validate;
use super::{Faults, SeedError, Shared};

type AppState = Arc<Shared>;

/// Routes relative to `/_sandbox`, mirroring the [`super::Sandbox`] handle.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/faults", get(get_faults).put(put_faults))
        .route("/requests", get(get_requests).delete(delete_requests))
        .route("/users", get(get_users).post(post_user))
        .route("/users/{uuid}", patch(patch_user).delete(delete_user))
        .route("/reset", post(reset))
        .fallback(not_found)
}

async fn get_faults(State(shared): State<AppState>) -> Response {
    Json(shared.faults().clone()).into_response()
}

/// Replaces every fault switch; fields left out take their default (off).
async fn put_faults(State(shared): State<AppState>, body: Bytes) -> Response {
    let faults = match parse_body(&body, |v| Faults::deserialize(v).map_err(|e| e.to_string())) {
        Ok(faults) => faults,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(text) = faults.validate() {
        return message(StatusCode::BAD_REQUEST, &text);
    }
    tracing::info!(?faults, "faults set");
    *shared.faults() = faults.clone();
    Json(faults).into_response()
}

async fn get_requests(State(shared): State<AppState>) -> Response {
    Json(shared.requests()).into_response()
}

async fn delete_requests(State(shared): State<AppState>) -> StatusCode {
    shared.clear_requests();
    StatusCode::NO_CONTENT
}

async fn get_users(State(shared): State<AppState>) -> Response {
    Json(shared.store().list(None)).into_response()
}

/// Adds a user given as a seed (camelCase names); answers it as a list shows it.
async fn post_user(State(shared): State<AppState>, body: Bytes) -> Response {
    let seed = match parse_body(&body, seed_from) {
        Ok(seed) => seed,
        Err(refusal) => return refusal.into_response(),
    };
    match shared.try_insert(seed) {
        Ok(uuid) => created(&shared, &uuid),
        Err(error @ SeedError::Invalid(_)) => message(StatusCode::BAD_REQUEST, &error.to_string()),
        Err(error @ SeedError::DuplicateEmail) => message(StatusCode::CONFLICT, &error.to_string()),
    }
}

/// Reads a seed; an error message never quotes the password, even one of the wrong type.
fn seed_from(value: &Value) -> Result<SeedUser, String> {
    let mut shown = value.clone();
    redact_passwords(&mut shown);
    SeedUser::deserialize(value).map_err(|_| match SeedUser::deserialize(&shown) {
        Ok(_) => "password must be a string".to_owned(),
        Err(error) => format!("invalid user: {error}"),
    })
}

fn created(shared: &Shared, uuid: &str) -> Response {
    match shared.store().get(uuid) {
        Some(user) => (StatusCode::CREATED, Json(user)).into_response(),
        None => message(StatusCode::NOT_FOUND, "user removed meanwhile"),
    }
}

/// Changes a user with `PATCH` semantics; answers it as a list shows it.
async fn patch_user(
    State(shared): State<AppState>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Response {
    let patch = match parse_body(&body, validate::parse_patch) {
        Ok(patch) => patch,
        Err(refusal) => return refusal.into_response(),
    };
    let mut store = shared.store();
    match store.update(&uuid, patch) {
        Ok(_) => Json(store.get(&uuid)).into_response(),
        Err(UpdateError::NotFound) => message(StatusCode::NOT_FOUND, "user not found"),
        Err(UpdateError::Invalid(text)) => message(StatusCode::BAD_REQUEST, &text),
    }
}

async fn delete_user(State(shared): State<AppState>, Path(uuid): Path<String>) -> Response {
    if !shared.store().remove(&uuid) {
        return message(StatusCode::NOT_FOUND, "user not found");
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn reset(State(shared): State<AppState>) -> StatusCode {
    tracing::info!("sandbox reset");
    shared.reset();
    StatusCode::NO_CONTENT
}
