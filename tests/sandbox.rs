//! HTTP tests of the Attention API sandbox, in process over loopback.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use attention_operator::sandbox::{AuthMode, Faults, Sandbox, SandboxConfig, SeedTeam, SeedUser};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const KEY: &str = "test-key-5f3a9c0d";
const PASSWORD: &str = "pw-9d81e2-hunter";
const ROLE: &str = "44444444-4444-4444-8444-444444444444";
const TEAM_A: &str = "11111111-1111-4111-8111-111111111111";
const TEAM_B: &str = "22222222-2222-4222-8222-222222222222";
const TEAM_C: &str = "33333333-3333-4333-8333-333333333333";
/// The reference's example role UUID: 37 characters, so not a UUID.
const BAD_ROLE: &str = "84e67f54-5157-442b-a2b3-8b9c728b2fef1";
const USERS: &str = "/organizations/users";

struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).expect("answer is json")
    }

    fn message(&self) -> String {
        self.json()["message"].as_str().expect("message").to_owned()
    }
}

async fn start_with(auth: AuthMode, faults: Faults) -> Sandbox {
    let config = SandboxConfig { api_key: KEY.to_owned(), auth, faults };
    Sandbox::start_local(config).await.expect("sandbox starts")
}

async fn start() -> Sandbox {
    start_with(AuthMode::Any, Faults::default()).await
}

fn http_client() -> reqwest::Client {
    attention_operator::attention::install_crypto_provider();
    reqwest::Client::new()
}

async fn send(url: String, method: Method, auth: Option<&str>, body: Option<Value>) -> Answer {
    let mut request = http_client().request(method, url);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body read");
    Answer { status, headers, text }
}

/// An API call with the right key as `Bearer`.
async fn api(sb: &Sandbox, method: Method, path: &str, body: Option<Value>) -> Answer {
    let auth = format!("Bearer {KEY}");
    send(format!("{}{path}", sb.base_url()), method, Some(&auth), body).await
}

async fn control(sb: &Sandbox, method: Method, path: &str, body: Option<Value>) -> Answer {
    let url = format!("http://{}/_sandbox{path}", sb.local_addr());
    send(url, method, None, body).await
}

/// A create body with the documented names, TEAM_A primary and TEAM_B.
fn create_body(email: &str) -> Value {
    json!({
        "email": email,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "roleUUID": ROLE,
        "teams": [{"uuid": TEAM_A, "primary": true}, {"uuid": TEAM_B, "primary": false}],
        "password": PASSWORD,
    })
}

async fn create(sb: &Sandbox, email: &str) -> Answer {
    api(sb, Method::POST, USERS, Some(create_body(email))).await
}

async fn create_uuid(sb: &Sandbox, email: &str) -> String {
    let answer = create(sb, email).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["data"]["uuid"].as_str().expect("uuid").to_owned()
}

async fn patch_user(sb: &Sandbox, uuid: &str, body: Value) -> Answer {
    api(sb, Method::PATCH, &format!("{USERS}/{uuid}"), Some(body)).await
}

async fn listed(sb: &Sandbox) -> Vec<Value> {
    let answer = api(sb, Method::GET, USERS, None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["data"].as_array().expect("data is a list").clone()
}

fn seed(email: &str) -> SeedUser {
    SeedUser {
        email: email.to_owned(),
        first_name: "Grace".to_owned(),
        last_name: "Hopper".to_owned(),
        role_uuid: ROLE.to_owned(),
        teams: vec![SeedTeam { uuid: TEAM_C.to_owned(), primary: true }],
        seat_type: None,
        password: None,
    }
}

#[tokio::test]
async fn missing_authorization_is_401_and_recorded_unauthorized() {
    let sb = start().await;
    let answer = send(format!("{}/users", sb.base_url()), Method::GET, None, None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json(), json!({"message": "unauthorized"}));
    assert!(!sb.requests()[0].authorized);
}

#[tokio::test]
async fn wrong_key_is_401_in_either_form() {
    let sb = start().await;
    for auth in ["Bearer not-the-key", "not-the-key", "Basic dGVzdA=="] {
        let answer = send(format!("{}/users", sb.base_url()), Method::GET, Some(auth), None).await;
        assert_eq!(answer.status, 401, "{auth}");
    }
}

#[tokio::test]
async fn any_mode_accepts_bearer_and_raw_keys() {
    let sb = start().await;
    for auth in [format!("Bearer {KEY}"), KEY.to_owned()] {
        let answer = send(format!("{}/users", sb.base_url()), Method::GET, Some(&auth), None).await;
        assert_eq!(answer.status, 200);
    }
}

#[tokio::test]
async fn bearer_and_raw_modes_accept_only_their_form() {
    let bearer = start_with(AuthMode::Bearer, Faults::default()).await;
    let raw = start_with(AuthMode::Raw, Faults::default()).await;
    let cases = [
        (&bearer, format!("Bearer {KEY}"), 200),
        (&bearer, KEY.to_owned(), 401),
        (&raw, KEY.to_owned(), 200),
        (&raw, format!("Bearer {KEY}"), 401),
    ];
    for (sb, auth, status) in cases {
        let answer = send(format!("{}/users", sb.base_url()), Method::GET, Some(&auth), None).await;
        assert_eq!(answer.status, status, "{auth}");
    }
}

#[tokio::test]
async fn create_answers_data_without_roles_or_teams_then_lists_them() {
    let sb = start().await;
    let answer = create(&sb, "ada@example.com").await;
    assert_eq!(answer.status, 200);
    let created = &answer.json()["data"];
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["firstName"], "Ada");
    assert_eq!(created["botName"], "Ada's Notetaker");
    assert_eq!(created["settings"]["seat_type"], "recording");
    assert!(created.get("roles").is_none() && created.get("teams").is_none());

    let users = listed(&sb).await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["uuid"], created["uuid"]);
    assert_eq!(users[0]["roles"][0]["uuid"], ROLE);
    let teams: Vec<&Value> =
        users[0]["teams"].as_array().unwrap().iter().map(|t| &t["uuid"]).collect();
    assert_eq!(teams, [TEAM_A, TEAM_B]);
    assert_eq!(users[0]["primaryTeamUUID"], TEAM_A);
}

#[tokio::test]
async fn list_filters_by_team_and_users_alias_lists_everyone() {
    let sb = start().await;
    create_uuid(&sb, "ada@example.com").await;
    sb.insert_user(seed("grace@example.com"));
    let members = api(&sb, Method::GET, &format!("{USERS}?teamUUID={TEAM_C}"), None).await;
    let members = members.json()["data"].as_array().unwrap().clone();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["email"], "grace@example.com");
    let everyone = api(&sb, Method::GET, "/users", None).await;
    assert_eq!(everyone.json()["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn create_with_camel_case_first_name_is_400() {
    let sb = start().await;
    let mut body = create_body("ada@example.com");
    let name = body.as_object_mut().unwrap().remove("first_name").unwrap();
    body["firstName"] = name;
    let answer = api(&sb, Method::POST, USERS, Some(body)).await;
    assert_eq!(answer.status, 400);
    assert!(answer.message().contains("first_name"), "{}", answer.text);
    assert!(sb.users().is_empty());
}

#[tokio::test]
async fn create_with_the_37_character_example_role_is_400() {
    let sb = start().await;
    let mut body = create_body("ada@example.com");
    body["roleUUID"] = json!(BAD_ROLE);
    let answer = api(&sb, Method::POST, USERS, Some(body)).await;
    assert_eq!(answer.status, 400);
    assert!(answer.message().contains("roleUUID"), "{}", answer.text);
    assert!(sb.users().is_empty());
}

#[tokio::test]
async fn create_with_two_primary_teams_is_400() {
    let sb = start().await;
    let mut body = create_body("ada@example.com");
    body["teams"] = json!([{"uuid": TEAM_A, "primary": true}, {"uuid": TEAM_B, "primary": true}]);
    let answer = api(&sb, Method::POST, USERS, Some(body)).await;
    assert_eq!(answer.status, 400);
    assert!(answer.message().contains("primary"), "{}", answer.text);
    assert!(sb.users().is_empty());
}

#[tokio::test]
async fn duplicate_email_in_another_case_is_409_by_default() {
    let sb = start().await;
    create_uuid(&sb, "ada@example.com").await;
    let answer = create(&sb, "ADA@Example.COM").await;
    assert_eq!(answer.status, 409);
    assert!(!answer.message().is_empty());
    assert_eq!(sb.users().len(), 1);
}

#[tokio::test]
async fn duplicate_status_is_configurable() {
    let faults = Faults { duplicate_status: 422, ..Faults::default() };
    let sb = start_with(AuthMode::Any, faults).await;
    create_uuid(&sb, "ada@example.com").await;
    assert_eq!(create(&sb, "Ada@example.com").await.status, 422);
}

#[tokio::test]
async fn patch_without_seat_type_resets_it_to_recording() {
    let sb = start().await;
    let mut body = create_body("ada@example.com");
    body["seat_type"] = json!("listener");
    let created = api(&sb, Method::POST, USERS, Some(body)).await;
    assert_eq!(created.json()["data"]["settings"]["seat_type"], "listener");
    let uuid = created.json()["data"]["uuid"].as_str().unwrap().to_owned();

    let kept = patch_user(&sb, &uuid, json!({"lastName": "King", "seat_type": "listener"})).await;
    assert_eq!(kept.status, 200);
    assert_eq!(kept.json()["data"]["settings"]["seat_type"], "listener");
    assert_eq!(kept.json()["data"]["lastName"], "King");

    let reset = patch_user(&sb, &uuid, json!({"dealsEnabled": true})).await;
    assert_eq!(reset.json()["data"]["settings"]["seat_type"], "recording");
    assert_eq!(reset.json()["data"]["dealsEnabled"], true);
    assert_eq!(reset.json()["data"]["lastName"], "King");
}

#[tokio::test]
async fn patch_adds_and_removes_teams_and_moves_the_primary() {
    let sb = start().await;
    let uuid = create_uuid(&sb, "ada@example.com").await;
    let body = json!({
        "teamsToAdd": [{"uuid": TEAM_C, "primary": true}],
        "teamUUIDsToRemove": [TEAM_A],
        "seat_type": "recording",
    });
    let answer = patch_user(&sb, &uuid, body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["data"]["primaryTeamUUID"], TEAM_C);
    let user = &listed(&sb).await[0];
    let teams: Vec<&Value> = user["teams"].as_array().unwrap().iter().map(|t| &t["uuid"]).collect();
    assert_eq!(teams, [TEAM_B, TEAM_C]);
}

#[tokio::test]
async fn patch_answers_flat_when_switched() {
    let sb = start().await;
    let uuid = create_uuid(&sb, "ada@example.com").await;
    sb.set_faults(Faults { flat_update_answers: true, ..Faults::default() });
    let answer = patch_user(&sb, &uuid, json!({"firstName": "Augusta"})).await;
    assert_eq!(answer.status, 200);
    assert!(answer.json().get("data").is_none());
    assert_eq!(answer.json()["firstName"], "Augusta");
    assert_eq!(answer.json()["uuid"], uuid);
}

#[tokio::test]
async fn patch_refuses_email_and_unknown_users() {
    let sb = start().await;
    let uuid = create_uuid(&sb, "ada@example.com").await;
    let email = patch_user(&sb, &uuid, json!({"email": "new@example.com"})).await;
    assert_eq!((email.status, email.message().as_str()), (400, "email cannot be changed"));
    assert_eq!(sb.users()[0]["email"], "ada@example.com");
    let unknown = patch_user(&sb, TEAM_A, json!({"firstName": "X"})).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn delete_removes_and_404s_unknown_users() {
    let sb = start().await;
    let uuid = create_uuid(&sb, "ada@example.com").await;
    let path = format!("{USERS}/{uuid}");
    let deleted = api(&sb, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, 204);
    assert!(listed(&sb).await.is_empty());
    assert_eq!(api(&sb, Method::DELETE, &path, None).await.status, 404);
}

#[tokio::test]
async fn delete_answers_405_when_unsupported() {
    let sb = start().await;
    let uuid = create_uuid(&sb, "ada@example.com").await;
    sb.set_faults(Faults { delete_unsupported: true, ..Faults::default() });
    let answer = api(&sb, Method::DELETE, &format!("{USERS}/{uuid}"), None).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.json(), json!({"message": "not supported"}));
    assert_eq!(sb.users().len(), 1);
}

#[tokio::test]
async fn latency_delays_every_api_answer() {
    let faults = Faults { latency_ms: 150, ..Faults::default() };
    let sb = start_with(AuthMode::Any, faults).await;
    let started = Instant::now();
    assert_eq!(api(&sb, Method::GET, USERS, None).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn error_rate_one_fails_every_request_before_the_handler() {
    let faults = Faults { error_rate: 1.0, error_status: 503, ..Faults::default() };
    let sb = start_with(AuthMode::Any, faults).await;
    assert_eq!(create(&sb, "ada@example.com").await.status, 503);
    assert_eq!(api(&sb, Method::GET, USERS, None).await.status, 503);
    assert!(sb.users().is_empty());
    assert_eq!(sb.requests().len(), 2);
}

#[tokio::test]
async fn rate_limit_next_answers_429_with_retry_after_then_recovers() {
    let faults = Faults { rate_limit_next: 2, retry_after_secs: Some(7), ..Faults::default() };
    let sb = start_with(AuthMode::Any, faults).await;
    for _ in 0..2 {
        let answer = api(&sb, Method::GET, USERS, None).await;
        assert_eq!(answer.status, 429);
        assert_eq!(answer.headers["retry-after"], "7");
    }
    assert_eq!(api(&sb, Method::GET, USERS, None).await.status, 200);
    assert_eq!(sb.faults().rate_limit_next, 0);
}

#[tokio::test]
async fn commit_then_502_commits_the_user_and_answers_html() {
    let faults = Faults { commit_then_502_next: 1, ..Faults::default() };
    let sb = start_with(AuthMode::Any, faults).await;
    let answer = create(&sb, "ada@example.com").await;
    assert_eq!(answer.status, 502);
    assert!(answer.text.contains("<html>"));
    assert_eq!(listed(&sb).await[0]["email"], "ada@example.com");
    assert_eq!(create(&sb, "grace@example.com").await.status, 200);
}

#[tokio::test]
async fn hold_after_commit_keeps_the_user_when_the_client_gives_up() {
    let faults = Faults { hold_after_commit_ms: 5_000, ..Faults::default() };
    let sb = start_with(AuthMode::Any, faults).await;
    attention_operator::attention::install_crypto_provider();
    let client = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let url = format!("{}{USERS}", sb.base_url());
    let request = client.post(url).bearer_auth(KEY).json(&create_body("ada@example.com"));
    let error = request.send().await.expect_err("the answer is held back");
    assert!(error.is_timeout());
    assert_eq!(sb.users().len(), 1);
    sb.set_faults(Faults::default());
    assert_eq!(create(&sb, "ada@example.com").await.status, 409);
}

#[tokio::test]
async fn recorded_requests_redact_passwords() {
    let sb = start().await;
    let uuid = create_uuid(&sb, "ada@example.com").await;
    patch_user(&sb, &uuid, json!({"password": PASSWORD})).await;
    let requests = sb.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("POST", "/v2/organizations/users")
    );
    assert!(requests[0].authorized);
    let created = requests[0].body.as_ref().expect("create body recorded");
    assert_eq!(created["password"], "<redacted>");
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(requests[1].body.as_ref().unwrap()["password"], "<redacted>");
    sb.clear_requests();
    assert!(sb.requests().is_empty());
}

#[tokio::test]
async fn password_matches_the_stored_password() {
    let sb = start().await;
    let uuid = create_uuid(&sb, "ada@example.com").await;
    assert!(sb.password_matches("ADA@example.com", PASSWORD));
    assert!(!sb.password_matches("ada@example.com", "wrong"));
    patch_user(&sb, &uuid, json!({"password": "changed-pw"})).await;
    assert!(sb.password_matches("ada@example.com", "changed-pw"));
    assert!(!sb.password_matches("ada@example.com", PASSWORD));
}

#[tokio::test]
async fn no_answer_or_record_contains_the_key_or_a_password() {
    let sb = start().await;
    let mut answers = vec![
        send(format!("{}/users", sb.base_url()), Method::GET, Some("Bearer wrong"), None).await,
    ];
    let uuid = create_uuid(&sb, "ada@example.com").await;
    answers.push(create(&sb, "ADA@example.com").await);
    let mut bad = create_body("grace@example.com");
    bad["password"] = json!(PASSWORD);
    bad["roleUUID"] = json!(BAD_ROLE);
    answers.push(api(&sb, Method::POST, USERS, Some(bad)).await);
    answers.push(patch_user(&sb, &uuid, json!({"password": PASSWORD})).await);
    answers.push(api(&sb, Method::GET, USERS, None).await);
    answers.push(api(&sb, Method::GET, "/users", None).await);
    sb.set_faults(Faults { rate_limit_next: 1, ..Faults::default() });
    answers.push(api(&sb, Method::GET, USERS, None).await);
    answers.push(control(&sb, Method::GET, "/requests", None).await);
    answers.push(control(&sb, Method::GET, "/users", None).await);
    let mut seen: Vec<String> = answers.into_iter().map(|a| a.text).collect();
    seen.push(serde_json::to_string(&sb.requests()).unwrap());
    seen.push(format!("{:?}", sb.requests()));
    seen.push(serde_json::to_string(&sb.users()).unwrap());
    for text in seen {
        assert!(!text.contains(KEY) && !text.contains(PASSWORD), "the key or password leaks");
    }
}

#[tokio::test]
async fn control_endpoints_mirror_the_handle_without_auth_faults_or_records() {
    let sb = start().await;
    let faults = json!({"error_rate": 1.0, "flat_update_answers": true});
    let put = control(&sb, Method::PUT, "/faults", Some(faults)).await;
    assert_eq!(put.status, 200);
    assert_eq!(control(&sb, Method::GET, "/faults", None).await.json()["error_rate"], 1.0);
    assert!(sb.faults().flat_update_answers);

    let seeded =
        control(&sb, Method::POST, "/users", Some(serde_json::to_value(seed("g@x.io")).unwrap()))
            .await;
    assert_eq!(seeded.status, 201, "{}", seeded.text);
    let uuid = seeded.json()["uuid"].as_str().unwrap().to_owned();
    let patched =
        control(&sb, Method::PATCH, &format!("/users/{uuid}"), Some(json!({"firstName": "G"})))
            .await;
    assert_eq!(patched.json()["firstName"], "G");
    assert_eq!(control(&sb, Method::GET, "/users", None).await.json()[0]["firstName"], "G");
    assert!(
        control(&sb, Method::GET, "/requests", None).await.json().as_array().unwrap().is_empty()
    );

    assert_eq!(api(&sb, Method::GET, USERS, None).await.status, 500);
    assert_eq!(
        control(&sb, Method::GET, "/requests", None).await.json().as_array().unwrap().len(),
        1
    );
    assert_eq!(control(&sb, Method::DELETE, "/requests", None).await.status, 204);
    assert!(sb.requests().is_empty());
    assert_eq!(control(&sb, Method::DELETE, &format!("/users/{uuid}"), None).await.status, 204);
    assert!(sb.users().is_empty());
}

#[tokio::test]
async fn control_reset_drops_users_and_requests_and_faults() {
    let sb = start().await;
    create_uuid(&sb, "ada@example.com").await;
    sb.set_faults(Faults { latency_ms: 5, ..Faults::default() });
    assert_eq!(control(&sb, Method::POST, "/reset", None).await.status, 204);
    assert!(sb.users().is_empty() && sb.requests().is_empty());
    assert_eq!(sb.faults(), Faults::default());
}

#[tokio::test]
async fn control_refuses_invalid_faults_and_seeds() {
    let sb = start().await;
    let faults = control(&sb, Method::PUT, "/faults", Some(json!({"error_rate": 2.0}))).await;
    assert_eq!(faults.status, 400);
    assert!(faults.message().contains("error_rate"));
    let mut bad = serde_json::to_value(seed("g@x.io")).unwrap();
    bad["roleUUID"] = json!(BAD_ROLE);
    assert_eq!(control(&sb, Method::POST, "/users", Some(bad)).await.status, 400);
    sb.insert_user(seed("dup@x.io"));
    let duplicate = serde_json::to_value(seed("DUP@x.io")).unwrap();
    assert_eq!(control(&sb, Method::POST, "/users", Some(duplicate)).await.status, 409);
}

#[tokio::test]
async fn unknown_routes_answer_404_json() {
    let sb = start().await;
    let api_answer = api(&sb, Method::GET, "/teams", None).await;
    assert_eq!(api_answer.status, 404);
    assert_eq!(api_answer.json(), json!({"message": "not found"}));
    let url = format!("http://{}/elsewhere", sb.local_addr());
    let other = send(url, Method::GET, None, None).await;
    assert_eq!((other.status, other.json()), (404, json!({"message": "not found"})));
}

#[tokio::test]
async fn handle_changes_users_behind_the_operators_back() {
    let sb = start().await;
    let mut listener = seed("grace@example.com");
    listener.seat_type = Some(attention_operator::sandbox::SeatType::Listener);
    let uuid = sb.insert_user(listener);
    assert_eq!(listed(&sb).await[0]["settings"]["seat_type"], "listener");
    assert!(sb.update_user(&uuid, json!({"lastName": "Murray"})));
    let user = &listed(&sb).await[0];
    assert_eq!(user["lastName"], "Murray");
    assert_eq!(user["settings"]["seat_type"], "recording");
    assert!(!sb.update_user(&uuid, json!({"email": "x@y.z"})));
    assert!(!sb.update_user("unknown", json!({})));
    assert!(sb.remove_user(&uuid));
    assert!(!sb.remove_user(&uuid));
    assert!(listed(&sb).await.is_empty());
    sb.shutdown().await;
}
