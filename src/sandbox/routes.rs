//! HTTP routes of the sandbox: the fault pipeline and the `/v2` user handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::control;
use super::state::{RecordedRequest, UpdateError};
use super::validate;

type AppState = Arc<Shared>;

/// Largest request body read; larger ones answer 413.
const MAX_BODY_BYTES: usize = 1 << 20;

/// The whole application: `/v2` behind the fault pipeline, `/_sandbox` without it.
pub(crate) fn router(shared: AppState) -> Router {
    let api = Router::new()
        .route("/organizations/users", get(list_users).post(create_user))
        .route("/organizations/users/{user_id}", patch(update_user).delete(delete_user))
        .route("/users", get(list_users))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), pipeline));
    Router::new()
        .nest("/v2", api)
        .nest("/_sandbox", control::router())
        .fallback(not_found)
        .with_state(shared)
}

/// A JSON answer `{"message": ...}` with `status`.
pub(crate) fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

pub(crate) async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> Response {
    message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// A refused request, answered as `{"message": ...}` with its status.
pub(crate) struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        message(self.0, &self.1)
    }
}

/// Parses a request body as JSON, then with `parse`; either failure is a 400.
pub(crate) fn parse_body<T>(
    body: &[u8],
    parse: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<T, Refusal> {
    let refuse = |text: String| Refusal(StatusCode::BAD_REQUEST, text);
    let value =
        serde_json::from_slice(body).map_err(|_| refuse("body is not valid json".into()))?;
    parse(&value).map_err(refuse)
}

/// Record, then latency, auth, rate-limit fault and error fault, then the handler.
async fn pipeline(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let authorized = record(&shared, &parts, &body);
    if let Some(answer) = injected(&shared, authorized).await {
        return answer;
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Records the request as the client sent it; answers whether it carried the key.
fn record(shared: &Shared, parts: &Parts, body: &[u8]) -> bool {
    let header = parts.headers.get(header::AUTHORIZATION);
    let authorized = shared.keys().accepts(header.map(|v| v.as_bytes()));
    // Nesting strips `/v2` from `parts.uri`: take the URI as the client sent it.
    let uri = parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |o| &o.0);
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    tracing::debug!(method = %parts.method, path, authorized, "api request");
    let method = parts.method.as_str();
    shared.record(RecordedRequest::new(method, path, authorized, body));
    authorized
}

/// The answer a fault or a failed auth check gives instead of the handler, if any.
async fn injected(shared: &Shared, authorized: bool) -> Option<Response> {
    let latency = shared.faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if !authorized {
        return Some(message(StatusCode::UNAUTHORIZED, "unauthorized"));
    }
    if let Some(retry_after) = shared.faults().take_rate_limit() {
        return Some(rate_limited(retry_after));
    }
    let error = shared.faults().error_for_roll(rand::random::<f64>());
    error.map(|status| message(status, "internal server error"))
}

fn rate_limited(retry_after_secs: Option<u64>) -> Response {
    let mut answer = message(StatusCode::TOO_MANY_REQUESTS, "too many requests");
    if let Some(secs) = retry_after_secs {
        answer.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    answer
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "teamUUID")]
    team_uuid: Option<String>,
}

async fn list_users(State(shared): State<AppState>, Query(query): Query<ListQuery>) -> Response {
    let users = shared.store().list(query.team_uuid.as_deref());
    axum::Json(json!({ "data": users })).into_response()
}

async fn create_user(State(shared): State<AppState>, body: Bytes) -> Response {
    let seed = match parse_body(&body, validate::parse_create) {
        Ok(seed) => seed,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(user) = shared.store().create(seed) else {
        let status = shared.faults().duplicate_status_code();
        return message(status, "a user with this email already exists");
    };
    tracing::info!(uuid = user["uuid"].as_str().unwrap_or_default(), "user created");
    answer_created(&shared, user).await
}

/// The answer to a committed create, after any hold and commit-then-502 fault.
async fn answer_created(shared: &Shared, user: Value) -> Response {
    let hold = shared.faults().hold_after_commit_ms;
    if hold > 0 {
        tokio::time::sleep(Duration::from_millis(hold)).await;
    }
    if shared.faults().take_commit_then_502() {
        return bad_gateway();
    }
    axum::Json(json!({ "data": user })).into_response()
}

fn bad_gateway() -> Response {
    let page = "<html><head><title>502 Bad Gateway</title></head>\
                <body><h1>502 Bad Gateway</h1></body></html>";
    let content_type = [(header::CONTENT_TYPE, "text/html")];
    (StatusCode::BAD_GATEWAY, content_type, page).into_response()
}

async fn update_user(
    State(shared): State<AppState>,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response {
    let patch = match parse_body(&body, validate::parse_patch) {
        Ok(patch) => patch,
        Err(refusal) => return refusal.into_response(),
    };
    let updated = shared.store().update(&user_id, patch);
    match updated {
        Ok(user) => {
            tracing::info!(uuid = %user_id, "user updated");
            update_answer(&shared, user)
        }
        Err(UpdateError::NotFound) => message(StatusCode::NOT_FOUND, "user not found"),
        Err(UpdateError::Invalid(text)) => message(StatusCode::BAD_REQUEST, &text),
    }
}

fn update_answer(shared: &Shared, user: Value) -> Response {
    if shared.faults().flat_update_answers {
        return axum::Json(user).into_response();
    }
    axum::Json(json!({ "data": user })).into_response()
}

/// 405 (or the configured status) for every user while `delete_unsupported` is on: the route
/// then does not exist.
async fn delete_user(State(shared): State<AppState>, Path(user_id): Path<String>) -> Response {
    let faults = shared.faults();
    if faults.delete_unsupported {
        let status = StatusCode::from_u16(faults.delete_unsupported_status)
            .unwrap_or(StatusCode::METHOD_NOT_ALLOWED);
        return message(status, "not supported");
    }
    if !shared.store().remove(&user_id) {
        return message(StatusCode::NOT_FOUND, "user not found");
    }
    tracing::info!(uuid = %user_id, "user deleted");
    StatusCode::NO_CONTENT.into_response()
}
