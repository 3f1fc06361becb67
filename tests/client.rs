//! HTTP tests of the Attention client against the sandbox and tiny local servers, on loopback.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use attention_operator::attention::{
    ApiError, AttentionApi, AuthScheme, ClientSettings, HttpClient, NewTeam, NewUser, Password,
};
use attention_operator::sandbox::{
    AuthMode, Faults, Sandbox, SandboxConfig, SeatType, SeedTeam, SeedUser,
};
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Json, Router};
use serde_json::{Value, json};
use url::Url;

const KEY: &str = "sandbox-key-8f3a";
const WRONG_KEY: &str = "wrong-key-c71e";
const PASSWORD: &str = "Tr0ub4dor&3-pw";
const ROLE: &str = "44444444-4444-4444-8444-444444444444";
const TEAM_A: &str = "11111111-1111-4111-8111-111111111111";
const TEAM_B: &str = "22222222-2222-4222-8222-222222222222";
/// The reference's example role UUID: 37 characters, so not a UUID.
const BAD_ROLE: &str = "84e67f54-5157-442b-a2b3-8b9c728b2fef1";
const EMAIL: &str = "ada@example.com";

async fn sandbox() -> Sandbox {
    sandbox_with(AuthMode::Any, Faults::default()).await
}

async fn sandbox_with(auth: AuthMode, faults: Faults) -> Sandbox {
    let config = SandboxConfig {
        api_key: KEY.to_owned(),
        auth,
        faults,
    };
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
    NewTeam {
        uuid: uuid.to_owned(),
        primary,
    }
}

fn seed(email: &str, first_name: &str) -> SeedUser {
    SeedUser {
        email: email.to_owned(),
        first_name: first_name.to_owned(),
        last_name: "Hopper".to_owned(),
        role_uuid: ROLE.to_owned(),
        teams: vec![
            SeedTeam {
                uuid: TEAM_B.to_owned(),
                primary: false,
            },
            SeedTeam {
                uuid: TEAM_A.to_owned(),
                primary: true,
            },
        ],
        seat_type: Some(SeatType::Listener),
        password: None,
    }
}

/// Serves `router` on a free loopback port; answers its base URL, ending in `/v2`.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("loopback port binds");
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
        for secret in [KEY, WRONG_KEY, PASSWORD] {
            assert!(!text.contains(secret), "{secret} leaks in {text}");
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
    sb.set_faults(Faults {
        rate_limit_next: 1,
        retry_after_secs,
        ..Faults::default()
    });
    create_error(&client(&sb.base_url()), &new_user(EMAIL)).await
}

async fn server_error(sb: &Sandbox) -> ApiError {
    sb.set_faults(Faults {
        error_rate: 1.0,
        error_status: 503,
        ..Faults::default()
    });
    create_error(&client(&sb.base_url()), &new_user(EMAIL)).await
}

async fn commit_then_502_error(sb: &Sandbox) -> ApiError {
    sb.set_faults(Faults {
        commit_then_502_next: 1,
        ..Faults::default()
    });
    create_error(&client(&sb.base_url()), &new_user(EMAIL)).await
}

/// The create is committed, then its answer held far longer than the client waits.
async fn timeout_error(sb: &Sandbox) -> ApiError {
    sb.set_faults(Faults {
        hold_after_commit_ms: 3_000,
        ..Faults::default()
    });
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
    let teams: Vec<_> = user
        .teams
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.uuid.as_deref())
        .collect();
    assert_eq!(teams, [Some(TEAM_B), Some(TEAM_A)]);
}

#[tokio::test]
async fn create_user_sends_the_documented_body_and_the_record_redacts_the_password() {
    let sb = sandbox().await;
    client(&sb.base_url())
        .create_user(&new_user(EMAIL))
        .await
        .unwrap();
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
    let created = client(&sb.base_url())
        .create_user(&new_user(EMAIL))
        .await
        .unwrap();
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
    client(&sb.base_url())
        .create_user(&new_user(EMAIL))
        .await
        .unwrap();
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
    assert_eq!(
        list_error(AuthMode::Raw, AuthScheme::Bearer).await,
        unauthorized
    );
}

#[tokio::test]
async fn raw_scheme_sends_the_bare_key() {
    let unauthorized = Some(ApiError::Unauthorized { status: 401 });
    assert_eq!(list_error(AuthMode::Raw, AuthScheme::Raw).await, None);
    assert_eq!(
        list_error(AuthMode::Bearer, AuthScheme::Raw).await,
        unauthorized
    );
}

#[tokio::test]
async fn wrong_key_is_unauthorized_401() {
    let sb = sandbox().await;
    assert_eq!(
        wrong_key_error(&sb).await,
        ApiError::Unauthorized { status: 401 }
    );
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
    let expected = ApiError::RateLimited {
        retry_after: Some(Duration::from_secs(7)),
    };
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
        assert!(text.contains("password <redacted> is too weak"), "{text}");
        assert!(text.contains("for Bearer <redacted>"), "{text}");
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
    let faults = Faults {
        latency_ms: 200,
        ..Faults::default()
    };
    let sb = sandbox_with(AuthMode::Any, faults).await;
    let client = client_with(&sb.base_url(), |s| s.max_in_flight = 1);
    let started = Instant::now();
    let calls = tokio::join!(
        client.list_users(),
        client.list_users(),
        client.list_users()
    );
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
    let users = client(&canned(200, answer).await)
        .list_users()
        .await
        .unwrap();
    let uuids: Vec<&str> = users.iter().map(|u| u.uuid.as_str()).collect();
    assert_eq!(uuids, ["u-1", "u-2"]);
    assert_eq!(users[1].extra["joinOutsideHostMeetings"], true);
    assert!(users[0].extra.is_empty());
}

#[tokio::test]
async fn list_entries_without_uuid_or_email_are_skipped() {
    let answer = r#"{"data": [{"uuid": "u-1", "email": "a@example.com"},
        {"email": "no-uuid@example.com"}, {"uuid": "u-3"}]}"#;
    let users = client(&canned(200, answer).await)
        .list_users()
        .await
        .unwrap();
    let uuids: Vec<&str> = users.iter().map(|u| u.uuid.as_str()).collect();
    assert_eq!(uuids, ["u-1"]);
}
