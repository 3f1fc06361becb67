//! HTTP tests of the Attention client against the sandbox and tiny local servers, on loopback.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use attention_operator::attention::{
    ApiError, AttentionApi, AuthScheme, ClientSettings, HttpClient, NewTeam, NewUser, Password,
    UserUpdate,
};
use attention_operator::sandbox::{
    AuthMode, Faults, Sandbox, SandboxConfig, SeatType, SeedTeam, SeedUser,
};
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::patch;
use axum::{Json, Router};
use serde_json::{Value, json};
use url::Url;

const KEY: &str = "sandbox-key-8f3a";
const WRONG_KEY: &str = "wrong-key-c71e";
const PASSWORD: &str = "Tr0ub4dor&3-pw";
const ROLE: &str = "44444444-4444-4444-8444-444444444444";
const TEAM_A: &str = "11111111-1111-4111-8111-111111111111";
const TEAM_B: &str = "22222222-2222-4222-8222-222222222222";
const TEAM_C: &str = "33333333-3333-4333-8333-333333333333";
const ROLE_2: &str = "55555555-5555-4555-8555-555555555555";
/// A well-formed UUID no sandbox user has.
const UNKNOWN_UUID: &str = "66666666-6666-4666-8666-666666666666";
const NEW_PASSWORD: &str = "C0rrect-h0rse&b4ttery";
/// The reference's example role UUID: 37 characters, so not a UUID.
const BAD_ROLE: &str = "84e67f54-5157-442b-a2b3-8b9c728b2fef1";
const EMAIL: &str = "ada@example.com";

async fn sandbox() -> Sandbox {
    sandbox_with(AuthMode::Any, Faults::default()).await
}

async fn sandbox_with(auth: AuthMode, faults: Faults) -> Sandbox {
    let config = SandboxConfig { api_key: KEY.to_owned(), auth, faults };
    Sandbox::start_local(config).await.expect("sandbox starts")
}

/// Settings with the right key as `Bearer` and limits loose enough to never be noticed.
fn settings(base_url: &str) -> ClientSettings {
    ClientSettings {
        base_url: Url::parse(base_url).expect("base URL parses"),
        api_key: KEY.to_owned(),
        auth_scheme: AuthScheme::Bearer,
        timeout: Duration::from_secs(5),
        requests_per_second: NonZeroU32::new(1000).expect("non-zero"),
        max_in_flight: 8,
    }
}

fn client(base_url: &str) -> HttpClient {
    client_with(base_url, |_| {})
}

fn client_with(base_url: &str, adjust: impl FnOnce(&mut ClientSettings)) -> HttpClient {
    let mut settings = settings(base_url);
    adjust(&mut settings);
    HttpClient::new(settings).expect("client builds")
}

/// A listener-seat user in TEAM_A (primary) and TEAM_B, with PASSWORD.
fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.to_owned(),
        first_name: "Ada".to_owned(),
        last_name: "Lovelace".to_owned(),
        role_uuid: ROLE.to_owned(),
        teams: vec![team(TEAM_A, true), team(TEAM_B, false)],
        password: Some(Password::new(PASSWORD)),
        seat_type: "listener".to_owned(),
    }
}

fn team(uuid: &str, primary: bool) -> NewTeam {
    NewTeam { uuid: uuid.to_owned(), primary }
}

fn seed(email: &str, first_name: &str) -> SeedUser {
    SeedUser {
        email: email.to_owned(),
        first_name: first_name.to_owned(),
        last_name: "Hopper".to_owned(),
        role_uuid: ROLE.to_owned(),
        teams: vec![
            SeedTeam { uuid: TEAM_B.to_owned(), primary: false },
            SeedTeam { uuid: TEAM_A.to_owned(), primary: true },
        ],
        seat_type: Some(SeatType::Listener),
        password: None,
    }
}

/// Serves `router` on a free loopback port; answers its base URL, ending in `/v2`.
async fn serve(router: Router) -> String {
    let listener =
        tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("loopback port binds");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/v2")
}

/// A server answering every request with `status` and `body` as JSON, whatever the body is.
async fn canned(status: u16, body: &'static str) -> String {
    let answer = move || async move {
        let status = StatusCode::from_u16(status).expect("valid status");
        (status, [(header::CONTENT_TYPE, "application/json")], body)
    };
    serve(Router::new().fallback(answer)).await
}

/// A server answering `status` with a message quoting the password and the header it got.
async fn echoing(status: u16) -> String {
    let answer = move |headers: HeaderMap, Json(body): Json<Value>| async move {
        let auth = headers[header::AUTHORIZATION].to_str().unwrap_or_default();
        let password = body["password"].as_str().unwrap_or_default();
        let text = format!("password {password} is too weak for {auth}");
        let status = StatusCode::from_u16(status).expect("valid status");
        (status, Json(json!({ "message": text })))
    };
    serve(Router::new().fallback(answer)).await
}

/// A base URL on a loopback port nothing listens on any more.
fn refused_base_url() -> String {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("port binds");
    let addr = listener.local_addr().expect("bound address");
    drop(listener);
    format!("http://{addr}/v2")
}

fn rejected(error: ApiError) -> (u16, String) {
    match error {
        ApiError::Rejected { status, excerpt } => (status, excerpt),
        other => panic!("expected Rejected, got {other:?}"),
    }
}

fn unavailable_detail(error: ApiError) -> String {
    match error {
        ApiError::Unavailable { detail } => detail,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

fn assert_secret_free(error: &ApiError) {
    for text in [error.to_string(), format!("{error:?}")] {
        for secret in [KEY, WRONG_KEY, PASSWORD, NEW_PASSWORD] {
            // On failure neither the text nor the secret is printed: test output stays clean.
            assert!(!text.contains(secret), "a key or password leaks into the error's text");
        }
    }
}

async fn create_error(client: &HttpClient, user: &NewUser) -> ApiError {
    client.create_user(user).await.expect_err("create fails")
}

// Each scenario below sends a create carrying PASSWORD and answers the error it got.

async fn wrong_key_error(sb: &Sandbox) -> ApiError {
    let client = client_with(&sb.base_url(), |s| s.api_key = WRONG_KEY.to_owned());
    create_error(&client, &new_user(EMAIL)).await
}

async fn duplicate_email_error(sb: &Sandbox) -> ApiError {
    sb.insert_user(seed(&EMAIL.to_uppercase(), "Ada"));
    create_error(&client(&sb.base_url()), &new_user(EMAIL)).await
}

async fn invalid_role_error(sb: &Sandbox) -> ApiError {
    let mut user = new_user(EMAIL);
    user.role_uuid = BAD_ROLE.to_owned();
    create_error(&client(&sb.base_url()), &user).await
}

async fn unserved_path_error(sb: &Sandbox) -> ApiError {
    let base_url = format!("http://{}/v9", sb.local_addr());
    create_error(&client(&base_url), &new_user(EMAIL)).await
}

async fn rate_limited_error(sb: &Sandbox, retry_after_secs: Option<u64>) -> ApiError {
    sb.set_faults(Faults { rate_limit_next: 1, retry_after_secs, ..Faults::default() });
    create_error(&client(&sb.base_url()), &new_user(EMAIL)).await
}

async fn server_error(sb: &Sandbox) -> ApiError {
    sb.set_faults(Faults { error_rate: 1.0, error_status: 503, ..Faults::default() });
    create_error(&client(&sb.base_url()), &new_user(EMAIL)).await
}

async fn commit_then_502_error(sb: &Sandbox) -> ApiError {
    sb.set_faults(Faults { commit_then_502_next: 1, ..Faults::default() });
    create_error(&client(&sb.base_url()), &new_user(EMAIL)).await
}

/// The create is committed, then its answer held far longer than the client waits.
async fn timeout_error(sb: &Sandbox) -> ApiError {
    sb.set_faults(Faults { hold_after_commit_ms: 3_000, ..Faults::default() });
    let client = client_with(&sb.base_url(), |s| s.timeout = Duration::from_millis(300));
    create_error(&client, &new_user(EMAIL)).await
}

async fn connection_refused_error() -> ApiError {
    create_error(&client(&refused_base_url()), &new_user(EMAIL)).await
}

async fn undecodable_answer_error() -> ApiError {
    let base_url = canned(200, "not json").await;
    create_error(&client(&base_url), &new_user(EMAIL)).await
}

/// One error of every failure class: first those the API answered with a refusal, then the
/// Unavailable ones, after which the create may have been committed.
async fn every_error() -> (Vec<ApiError>, Vec<ApiError>) {
    let refusals = vec![
        wrong_key_error(&sandbox().await).await,
        duplicate_email_error(&sandbox().await).await,
        invalid_role_error(&sandbox().await).await,
        unserved_path_error(&sandbox().await).await,
        rate_limited_error(&sandbox().await, Some(7)).await,
        rate_limited_error(&sandbox().await, None).await,
    ];
    let unavailable = vec![
        server_error(&sandbox().await).await,
        commit_then_502_error(&sandbox().await).await,
        timeout_error(&sandbox().await).await,
        connection_refused_error().await,
        undecodable_answer_error().await,
    ];
    (refusals, unavailable)
}

#[tokio::test]
async fn list_users_returns_seeded_users_with_roles_teams_and_settings() {
    let sb = sandbox().await;
    let grace = sb.insert_user(seed("grace@example.com", "Grace"));
    sb.insert_user(seed("alan@example.com", "Alan"));
    let users = client(&sb.base_url()).list_users().await.unwrap();
    let emails: Vec<&str> = users.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["grace@example.com", "alan@example.com"]);
    let user = &users[0];
    assert_eq!(user.uuid, grace);
    assert_eq!(user.first_name.as_deref(), Some("Grace"));
    assert_eq!(user.bot_name.as_deref(), Some("Grace's Notetaker"));
    assert_eq!(user.primary_team_uuid.as_deref(), Some(TEAM_A));
    assert_eq!(user.settings.as_ref().unwrap()["seat_type"], "listener");
    let roles = user.roles.as_ref().unwrap();
    assert_eq!(roles[0].uuid.as_deref(), Some(ROLE));
    assert_eq!(roles[0].name.as_deref(), Some("Member"));
    let teams: Vec<_> = user.teams.as_ref().unwrap().iter().map(|t| t.uuid.as_deref()).collect();
    assert_eq!(teams, [Some(TEAM_B), Some(TEAM_A)]);
}

#[tokio::test]
async fn create_user_sends_the_documented_body_and_the_record_redacts_the_password() {
    let sb = sandbox().await;
    client(&sb.base_url()).create_user(&new_user(EMAIL)).await.unwrap();
    let requests = sb.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v2/organizations/users");
    let expected = json!({
        "email": EMAIL,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "roleUUID": ROLE,
        "teams": [{"uuid": TEAM_A, "primary": true}, {"uuid": TEAM_B, "primary": false}],
        "password": "<redacted>",
        "seat_type": "listener",
    });
    assert_eq!(requests[0].body.as_ref(), Some(&expected));
}

#[tokio::test]
async fn create_user_returns_the_created_user() {
    let sb = sandbox().await;
    let created = client(&sb.base_url()).create_user(&new_user(EMAIL)).await.unwrap();
    assert_eq!(created.uuid, sb.users()[0]["uuid"]);
    assert_eq!(created.email, EMAIL);
    assert_eq!(created.first_name.as_deref(), Some("Ada"));
    assert_eq!(created.last_name.as_deref(), Some("Lovelace"));
    assert_eq!(created.primary_team_uuid.as_deref(), Some(TEAM_A));
    assert_eq!(created.settings.as_ref().unwrap()["seat_type"], "listener");
    assert_eq!((created.roles, created.teams), (None, None));
}

#[tokio::test]
async fn create_user_delivers_the_password_to_the_sandbox() {
    let sb = sandbox().await;
    client(&sb.base_url()).create_user(&new_user(EMAIL)).await.unwrap();
    assert!(sb.password_matches(EMAIL, PASSWORD));
    assert!(!sb.password_matches(EMAIL, "<redacted>"));
}

/// The error of a list call with `scheme` to a sandbox accepting only `mode`, if any.
async fn list_error(mode: AuthMode, scheme: AuthScheme) -> Option<ApiError> {
    let sb = sandbox_with(mode, Faults::default()).await;
    let client = client_with(&sb.base_url(), |s| s.auth_scheme = scheme);
    client.list_users().await.err()
}

#[tokio::test]
async fn bearer_scheme_sends_bearer_and_key() {
    let unauthorized = Some(ApiError::Unauthorized { status: 401 });
    assert_eq!(list_error(AuthMode::Bearer, AuthScheme::Bearer).await, None);
    assert_eq!(list_error(AuthMode::Raw, AuthScheme::Bearer).await, unauthorized);
}

#[tokio::test]
async fn raw_scheme_sends_the_bare_key() {
    let unauthorized = Some(ApiError::Unauthorized { status: 401 });
    assert_eq!(list_error(AuthMode::Raw, AuthScheme::Raw).await, None);
    assert_eq!(list_error(AuthMode::Bearer, AuthScheme::Raw).await, unauthorized);
}

#[tokio::test]
async fn wrong_key_is_unauthorized_401() {
    let sb = sandbox().await;
    assert_eq!(wrong_key_error(&sb).await, ApiError::Unauthorized { status: 401 });
    assert!(sb.users().is_empty());
}

#[tokio::test]
async fn duplicate_email_is_rejected_409() {
    let sb = sandbox().await;
    let (status, excerpt) = rejected(duplicate_email_error(&sb).await);
    assert_eq!(status, 409);
    assert!(excerpt.contains("already exists"), "{excerpt}");
    assert_eq!(sb.users().len(), 1);
}

#[tokio::test]
async fn invalid_role_uuid_is_rejected_400() {
    let sb = sandbox().await;
    let (status, excerpt) = rejected(invalid_role_error(&sb).await);
    assert_eq!(status, 400);
    assert!(excerpt.contains("roleUUID"), "{excerpt}");
    assert!(sb.users().is_empty());
}

#[tokio::test]
async fn unserved_path_is_not_found() {
    let sb = sandbox().await;
    assert_eq!(unserved_path_error(&sb).await, ApiError::NotFound);
}

#[tokio::test]
async fn rate_limit_takes_retry_after_from_the_header() {
    let error = rate_limited_error(&sandbox().await, Some(7)).await;
    let expected = ApiError::RateLimited { retry_after: Some(Duration::from_secs(7)) };
    assert_eq!(error, expected);
}

#[tokio::test]
async fn rate_limit_without_retry_after_has_no_delay() {
    let error = rate_limited_error(&sandbox().await, None).await;
    assert_eq!(error, ApiError::RateLimited { retry_after: None });
}

#[tokio::test]
async fn server_error_is_unavailable() {
    let detail = unavailable_detail(server_error(&sandbox().await).await);
    assert!(detail.starts_with("status 503"), "{detail}");
}

#[tokio::test]
async fn commit_then_502_is_unavailable_and_the_user_was_committed() {
    let sb = sandbox().await;
    let detail = unavailable_detail(commit_then_502_error(&sb).await);
    assert!(detail.starts_with("status 502"), "{detail}");
    assert_eq!(sb.users()[0]["email"], EMAIL);
}

#[tokio::test]
async fn timeout_is_unavailable_and_the_user_was_committed() {
    let sb = sandbox().await;
    let detail = unavailable_detail(timeout_error(&sb).await);
    assert_eq!(detail, "request timed out");
    assert_eq!(sb.users()[0]["email"], EMAIL);
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let detail = unavailable_detail(connection_refused_error().await);
    assert_eq!(detail, "connection failed");
}

#[tokio::test]
async fn undecodable_200_answer_is_unavailable() {
    let detail = unavailable_detail(undecodable_answer_error().await);
    assert!(detail.starts_with("undecodable answer"), "{detail}");
}

#[tokio::test]
async fn may_have_taken_effect_is_true_exactly_for_unavailable_errors() {
    let (refusals, unavailable) = every_error().await;
    let reasons: BTreeSet<&str> = refusals.iter().map(ApiError::reason).collect();
    let refused = ["NotFound", "RateLimited", "Rejected", "Unauthorized"];
    assert_eq!(reasons, BTreeSet::from(refused));
    for error in &refusals {
        assert!(!error.may_have_taken_effect(), "{error:?}");
    }
    for error in &unavailable {
        assert_eq!(error.reason(), "Unavailable", "{error:?}");
        assert!(error.may_have_taken_effect(), "{error:?}");
    }
}

#[tokio::test]
async fn no_error_text_shows_the_key_or_the_password() {
    let (refusals, unavailable) = every_error().await;
    for error in refusals.iter().chain(&unavailable) {
        assert_secret_free(error);
    }
}

#[tokio::test]
async fn echoed_key_and_password_are_redacted_in_error_text() {
    for status in [400, 502] {
        let client = client(&echoing(status).await);
        let error = create_error(&client, &new_user(EMAIL)).await;
        assert_secret_free(&error);
        let text = error.to_string();
        assert!(text.contains("password <redacted> is too weak"), "the password is not redacted");
        assert!(text.contains("for Bearer <redacted>"), "the key is not redacted");
    }
}

#[tokio::test]
async fn two_requests_per_second_spread_five_calls_over_at_least_one_and_a_half_seconds() {
    let sb = sandbox().await;
    let rate = NonZeroU32::new(2).unwrap();
    let client = client_with(&sb.base_url(), |s| s.requests_per_second = rate);
    let started = Instant::now();
    for _ in 0..5 {
        client.list_users().await.unwrap();
    }
    // A burst of two goes at once; each of the other three waits 500 ms for its cell.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1_450), "{elapsed:?}");
}

#[tokio::test]
async fn one_in_flight_serialises_three_concurrent_calls() {
    let faults = Faults { latency_ms: 200, ..Faults::default() };
    let sb = sandbox_with(AuthMode::Any, faults).await;
    let client = client_with(&sb.base_url(), |s| s.max_in_flight = 1);
    let started = Instant::now();
    let calls = tokio::join!(client.list_users(), client.list_users(), client.list_users());
    let elapsed = started.elapsed();
    assert!(calls.0.is_ok() && calls.1.is_ok() && calls.2.is_ok());
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
}

#[tokio::test]
async fn wrapped_answers_keep_unknown_fields_in_extra() {
    let sb = sandbox().await;
    let client = client(&sb.base_url());
    let created = client.create_user(&new_user(EMAIL)).await.unwrap();
    let listed = client.list_users().await.unwrap().remove(0);
    for user in [created, listed] {
        assert_eq!(user.extra["dealsEnabled"], false);
        assert!(user.extra["createdAt"].is_string(), "{:?}", user.extra);
        assert_eq!(user.email, EMAIL);
    }
}

#[tokio::test]
async fn flat_created_user_is_decoded_with_unknown_fields_in_extra() {
    let answer = r#"{"uuid": "u-1", "email": "ada@example.com", "firstName": "Ada",
        "seatType": "listener", "organizationRoleUUID": "r-1"}"#;
    let client = client(&canned(200, answer).await);
    let user = client.create_user(&new_user(EMAIL)).await.unwrap();
    assert_eq!((user.uuid.as_str(), user.email.as_str()), ("u-1", EMAIL));
    assert_eq!(user.first_name.as_deref(), Some("Ada"));
    assert_eq!(user.extra["seatType"], "listener");
    assert_eq!(user.extra["organizationRoleUUID"], "r-1");
}

#[tokio::test]
async fn flat_user_list_is_decoded_with_unknown_fields_in_extra() {
    let answer = r#"[{"uuid": "u-1", "email": "a@example.com"},
        {"uuid": "u-2", "email": "b@example.com", "joinOutsideHostMeetings": true}]"#;
    let users = client(&canned(200, answer).await).list_users().await.unwrap();
    let uuids: Vec<&str> = users.iter().map(|u| u.uuid.as_str()).collect();
    assert_eq!(uuids, ["u-1", "u-2"]);
    assert_eq!(users[1].extra["joinOutsideHostMeetings"], true);
    assert!(users[0].extra.is_empty());
}

#[tokio::test]
async fn list_entries_without_uuid_or_email_are_skipped() {
    let answer = r#"{"data": [{"uuid": "u-1", "email": "a@example.com"},
        {"email": "no-uuid@example.com"}, {"uuid": "u-3"}]}"#;
    let users = client(&canned(200, answer).await).list_users().await.unwrap();
    let uuids: Vec<&str> = users.iter().map(|u| u.uuid.as_str()).collect();
    assert_eq!(uuids, ["u-1"]);
}

// Update and delete.

const GRACE: &str = "grace@example.com";
/// A user id with a slash, a query mark, a fragment mark and an already escaped slash.
const ODD_ID: &str = "a/b?c#d%2F";
/// `ODD_ID` escaped as one path segment.
const ODD_ID_ESCAPED: &str = "a%2Fb%3Fc%23d%252F";

/// A sandbox holding Grace, a `seed` user: a listener in TEAM_B and TEAM_A (primary), with no
/// password. Answers the sandbox and her UUID.
async fn sandbox_with_grace() -> (Sandbox, String) {
    let sb = sandbox().await;
    let uuid = sb.insert_user(seed(GRACE, "Grace"));
    (sb, uuid)
}

/// The user `uuid` as the sandbox lists it, if it still does.
fn listed(sb: &Sandbox, uuid: &str) -> Option<Value> {
    sb.users().into_iter().find(|user| user["uuid"] == uuid)
}

/// New names and role, TEAM_B swapped for TEAM_C as the new primary, NEW_PASSWORD and the
/// seat changed to `recording`: every change the client can send.
fn full_update() -> UserUpdate {
    UserUpdate {
        first_name: Some("Augusta".to_owned()),
        last_name: Some("King".to_owned()),
        role_uuid: Some(ROLE_2.to_owned()),
        teams_to_add: vec![team(TEAM_C, true)],
        team_uuids_to_remove: vec![TEAM_B.to_owned()],
        password: Some(Password::new(NEW_PASSWORD)),
        ..UserUpdate::keeping("recording")
    }
}

/// A new name and NEW_PASSWORD, but Grace's two teams both removed: the sandbox refuses it.
fn removing_every_team() -> UserUpdate {
    UserUpdate {
        first_name: Some("Augusta".to_owned()),
        team_uuids_to_remove: vec![TEAM_A.to_owned(), TEAM_B.to_owned()],
        password: Some(Password::new(NEW_PASSWORD)),
        ..UserUpdate::keeping("listener")
    }
}

/// The errors of a full update, then of a delete, of Grace with `faults` set before each.
async fn update_and_delete_errors(faults: Faults) -> [ApiError; 2] {
    let (sb, uuid) = sandbox_with_grace().await;
    let client = client(&sb.base_url());
    sb.set_faults(faults.clone());
    let update = client.update_user(&uuid, &full_update()).await;
    sb.set_faults(faults);
    let delete = client.delete_user(&uuid).await;
    [update.expect_err("update fails"), delete.expect_err("delete fails")]
}

/// A server answering `status` with a message quoting the `Authorization` header it got.
async fn key_echoing(status: u16) -> String {
    let answer = move |headers: HeaderMap| async move {
        let auth = headers[header::AUTHORIZATION].to_str().unwrap_or_default();
        let text = format!("{auth} may not delete users");
        let status = StatusCode::from_u16(status).expect("valid status");
        (status, Json(json!({ "message": text })))
    };
    serve(Router::new().fallback(answer)).await
}

/// A server answering a PATCH of `/v2/organizations/users/{id}` with a flat user whose uuid
/// is the `id` the route decoded; anything else answers 404.
async fn id_echoing() -> String {
    let answer = |Path(id): Path<String>| async move { Json(json!({"uuid": id, "email": EMAIL})) };
    serve(Router::new().route("/v2/organizations/users/{id}", patch(answer))).await
}

#[tokio::test]
async fn update_user_sends_patch_with_the_documented_names_and_the_record_redacts_the_password() {
    let (sb, uuid) = sandbox_with_grace().await;
    client(&sb.base_url()).update_user(&uuid, &full_update()).await.unwrap();
    let requests = sb.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "PATCH");
    assert_eq!(requests[0].path, format!("/v2/organizations/users/{uuid}"));
    let expected = json!({
        "firstName": "Augusta",
        "lastName": "King",
        "roleUUID": ROLE_2,
        "teamsToAdd": [{"uuid": TEAM_C, "primary": true}],
        "teamUUIDsToRemove": [TEAM_B],
        "password": "<redacted>",
        "seat_type": "recording",
    });
    assert_eq!(requests[0].body.as_ref(), Some(&expected));
}

#[tokio::test]
async fn update_user_returns_the_changed_user() {
    let (sb, uuid) = sandbox_with_grace().await;
    let user = client(&sb.base_url()).update_user(&uuid, &full_update()).await.unwrap();
    assert_eq!((user.uuid.as_str(), user.email.as_str()), (uuid.as_str(), GRACE));
    assert_eq!(user.first_name.as_deref(), Some("Augusta"));
    assert_eq!(user.last_name.as_deref(), Some("King"));
    assert_eq!(user.primary_team_uuid.as_deref(), Some(TEAM_C));
    assert_eq!(user.settings.as_ref().unwrap()["seat_type"], "recording");
    assert_eq!((user.roles, user.teams), (None, None));
}

#[tokio::test]
async fn update_user_changes_names_role_teams_primary_team_and_seat_in_the_sandbox() {
    let (sb, uuid) = sandbox_with_grace().await;
    assert_eq!(listed(&sb, &uuid).unwrap()["primaryTeamUUID"], TEAM_A);
    client(&sb.base_url()).update_user(&uuid, &full_update()).await.unwrap();
    let user = listed(&sb, &uuid).expect("the user is still listed");
    assert_eq!(user["firstName"], "Augusta");
    assert_eq!(user["lastName"], "King");
    assert_eq!(user["roles"][0]["uuid"], ROLE_2);
    let teams: Vec<&str> =
        user["teams"].as_array().unwrap().iter().filter_map(|t| t["uuid"].as_str()).collect();
    assert_eq!(teams, [TEAM_A, TEAM_C]);
    assert_eq!(user["primaryTeamUUID"], TEAM_C);
    assert_eq!(user["settings"]["seat_type"], "recording");
}

#[tokio::test]
async fn update_user_delivers_the_new_password_to_the_sandbox() {
    let (sb, uuid) = sandbox_with_grace().await;
    assert!(!sb.password_matches(GRACE, NEW_PASSWORD));
    client(&sb.base_url()).update_user(&uuid, &full_update()).await.unwrap();
    assert!(sb.password_matches(GRACE, NEW_PASSWORD));
    assert!(!sb.password_matches(GRACE, "<redacted>"));
}

#[tokio::test]
async fn update_stating_only_the_seat_type_keeps_a_listener_a_listener() {
    let (sb, uuid) = sandbox_with_grace().await;
    let before = listed(&sb, &uuid).unwrap();
    let user =
        client(&sb.base_url()).update_user(&uuid, &UserUpdate::keeping("listener")).await.unwrap();
    assert_eq!(sb.requests()[0].body, Some(json!({"seat_type": "listener"})));
    assert_eq!(user.settings.as_ref().unwrap()["seat_type"], "listener");
    assert_eq!(listed(&sb, &uuid).unwrap(), before, "nothing changes");
    // The quirk is live in the sandbox: the same update without seat_type resets the seat.
    assert!(sb.update_user(&uuid, json!({})));
    assert_eq!(listed(&sb, &uuid).unwrap()["settings"]["seat_type"], "recording");
}

#[tokio::test]
async fn wrapped_and_flat_update_answers_decode_to_the_same_user() {
    let (sb, uuid) = sandbox_with_grace().await;
    let client = client(&sb.base_url());
    let update =
        UserUpdate { first_name: Some("Augusta".to_owned()), ..UserUpdate::keeping("listener") };
    let wrapped = client.update_user(&uuid, &update).await.unwrap();
    sb.set_faults(Faults { flat_update_answers: true, ..Faults::default() });
    let flat = client.update_user(&uuid, &update).await.unwrap();
    assert_eq!(flat, wrapped);
    assert_eq!(flat.uuid, uuid);
    assert_eq!(flat.first_name.as_deref(), Some("Augusta"));
    assert!(flat.extra["createdAt"].is_string(), "{:?}", flat.extra);
}

#[tokio::test]
async fn update_of_an_unknown_uuid_is_not_found() {
    let (sb, _) = sandbox_with_grace().await;
    let before = sb.users();
    let answer = client(&sb.base_url()).update_user(UNKNOWN_UUID, &full_update()).await;
    assert_eq!(answer, Err(ApiError::NotFound));
    assert_eq!(sb.users(), before);
}

#[tokio::test]
async fn update_removing_every_team_is_rejected_400_and_changes_nothing() {
    let (sb, uuid) = sandbox_with_grace().await;
    let before = sb.users();
    let error =
        client(&sb.base_url()).update_user(&uuid, &removing_every_team()).await.unwrap_err();
    let (status, excerpt) = rejected(error);
    assert_eq!(status, 400);
    assert!(excerpt.contains("at least one team"), "{excerpt}");
    assert_eq!(sb.users(), before);
    assert!(!sb.password_matches(GRACE, NEW_PASSWORD));
}

#[tokio::test]
async fn delete_user_removes_the_user_and_takes_the_204_as_success() {
    let (sb, grace) = sandbox_with_grace().await;
    let alan = sb.insert_user(seed("alan@example.com", "Alan"));
    let answer = client(&sb.base_url()).delete_user(&grace).await;
    assert_eq!(answer, Ok(()));
    let left: Vec<Value> = sb.users().iter().map(|u| u["uuid"].clone()).collect();
    assert_eq!(left, [json!(alan)]);
    let requests = sb.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "DELETE");
    assert_eq!(requests[0].path, format!("/v2/organizations/users/{grace}"));
}

#[tokio::test]
async fn delete_of_an_unknown_uuid_is_not_found() {
    let (sb, uuid) = sandbox_with_grace().await;
    let answer = client(&sb.base_url()).delete_user(UNKNOWN_UUID).await;
    assert_eq!(answer, Err(ApiError::NotFound));
    assert!(listed(&sb, &uuid).is_some());
}

#[tokio::test]
async fn delete_where_the_api_has_no_delete_is_rejected_405() {
    let (sb, uuid) = sandbox_with_grace().await;
    sb.set_faults(Faults { delete_unsupported: true, ..Faults::default() });
    let error = client(&sb.base_url()).delete_user(&uuid).await.unwrap_err();
    assert_eq!(rejected(error).0, 405);
    assert!(listed(&sb, &uuid).is_some());
}

#[tokio::test]
async fn update_and_delete_rate_limits_keep_the_retry_after_delay() {
    let faults = Faults { rate_limit_next: 1, retry_after_secs: Some(7), ..Faults::default() };
    let expected = ApiError::RateLimited { retry_after: Some(Duration::from_secs(7)) };
    let errors = update_and_delete_errors(faults).await;
    assert_eq!(errors, [expected.clone(), expected]);
}

#[tokio::test]
async fn update_and_delete_server_errors_are_unavailable() {
    let faults = Faults { error_rate: 1.0, error_status: 503, ..Faults::default() };
    for error in update_and_delete_errors(faults).await {
        let detail = unavailable_detail(error);
        assert!(detail.starts_with("status 503"), "{detail}");
    }
}

#[tokio::test]
async fn no_update_or_delete_error_text_shows_the_key_or_the_new_password() {
    let rate_limit = Faults { rate_limit_next: 1, retry_after_secs: Some(7), ..Faults::default() };
    let server_error = Faults { error_rate: 1.0, ..Faults::default() };
    let mut errors = Vec::from(update_and_delete_errors(rate_limit).await);
    errors.extend(update_and_delete_errors(server_error).await);
    let (sb, uuid) = sandbox_with_grace().await;
    let right = client(&sb.base_url());
    let wrong = client_with(&sb.base_url(), |s| s.api_key = WRONG_KEY.to_owned());
    errors.push(right.update_user(UNKNOWN_UUID, &full_update()).await.unwrap_err());
    errors.push(right.update_user(&uuid, &removing_every_team()).await.unwrap_err());
    errors.push(wrong.update_user(&uuid, &full_update()).await.unwrap_err());
    errors.push(wrong.delete_user(&uuid).await.unwrap_err());
    sb.set_faults(Faults { delete_unsupported: true, ..Faults::default() });
    errors.push(right.delete_user(&uuid).await.unwrap_err());
    let reasons: BTreeSet<&str> = errors.iter().map(ApiError::reason).collect();
    let every = ["NotFound", "RateLimited", "Rejected", "Unauthorized", "Unavailable"];
    assert_eq!(reasons, BTreeSet::from(every));
    for error in &errors {
        assert_secret_free(error);
    }
}

#[tokio::test]
async fn echoed_key_and_new_password_are_redacted_in_update_and_delete_errors() {
    for status in [400, 502] {
        let error = client(&echoing(status).await)
            .update_user(UNKNOWN_UUID, &full_update())
            .await
            .unwrap_err();
        assert_secret_free(&error);
        let text = error.to_string();
        assert!(text.contains("password <redacted> is too weak"), "the password is not redacted");
        assert!(text.contains("for Bearer <redacted>"), "the key is not redacted");
        let error = client(&key_echoing(status).await).delete_user(UNKNOWN_UUID).await.unwrap_err();
        assert_secret_free(&error);
        let text = error.to_string();
        assert!(text.contains("Bearer <redacted> may not delete"), "the key is not redacted");
    }
}

#[tokio::test]
async fn a_uuid_needing_escapes_is_sent_as_one_escaped_path_segment() {
    let sb = sandbox().await;
    let client = client(&sb.base_url());
    let update = client.update_user(ODD_ID, &UserUpdate::keeping("listener")).await;
    let delete = client.delete_user(ODD_ID).await;
    assert_eq!(update, Err(ApiError::NotFound));
    assert_eq!(delete, Err(ApiError::NotFound));
    let path = format!("/v2/organizations/users/{ODD_ID_ESCAPED}");
    let requests = sb.requests();
    let sent: Vec<(&str, &str)> =
        requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(sent, [("PATCH", path.as_str()), ("DELETE", path.as_str())]);
}

#[tokio::test]
async fn an_escaped_uuid_segment_decodes_back_to_exactly_the_uuid() {
    let user = client(&id_echoing().await)
        .update_user(ODD_ID, &UserUpdate::keeping("listener"))
        .await
        .unwrap();
    assert_eq!(user.uuid, ODD_ID);
}

#[tokio::test]
async fn empty_and_dot_segment_uuids_never_address_the_user_collection() {
    let sb = sandbox().await;
    let client = client(&sb.base_url());
    for id in ["", ".", ".."] {
        let update = client.update_user(id, &UserUpdate::keeping("listener")).await;
        assert!(update.is_err(), "update of {id:?}");
        assert!(client.delete_user(id).await.is_err(), "delete of {id:?}");
    }
    let collection = ["/v2/organizations/users", "/v2/organizations/users/"];
    let astray: Vec<String> = sb
        .requests()
        .iter()
        .filter(|r| collection.contains(&r.path.as_str()))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(astray.is_empty(), "{astray:?}");
}
