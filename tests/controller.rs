//! The real reconcile against a fake Kubernetes API server and the sandbox Attention API:
//! which requests reach each side, with which bodies, and what the status says afterwards.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::sync::Arc;
use std::time::Duration;

use attention_operator::controller::reconcile;
use attention_operator::crd::{AttentionUser, AttentionUserStatus, ManagementPolicy, Origin};
use attention_operator::sandbox::Faults;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use support::harness::*;
use support::*;

#[tokio::test]
async fn a_new_user_is_created_once_and_reported_ready() {
    let h = Harness::start().await;
    let action = h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;

    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(h.api_calls(), ["GET /v2/organizations/users", "POST /v2/organizations/users"]);
    assert_eq!(
        h.creates()[0].body,
        Some(json!({
            "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
            "roleUUID": ROLE, "teams": [{"uuid": TEAM_A, "primary": true}],
            "seat_type": "recording",
        }))
    );
    assert_eq!(h.ready("ada"), ready("True", "Created"));
    let status = h.kube.user("ada").status.unwrap();
    let remote = &h.sandbox.users()[0];
    assert_eq!(status.uuid.as_ref(), remote["uuid"].as_str().map(str::to_owned).as_ref());
    assert_eq!(status.origin, Some(Origin::Created));
    assert_eq!(status.bot_name.as_deref(), Some("Ada's Notetaker"));
    assert_eq!(status.primary_team_uuid.as_deref(), Some(TEAM_A));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.create_pending, None);
}

#[tokio::test]
async fn status_is_applied_on_the_status_subresource_as_the_operator() {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;

    let writes = h.kube.status_writes();
    assert_eq!(writes.len(), 2, "a Creating mark, then the result");
    for write in &writes {
        assert_eq!(
            write.path,
            "/apis/attention.tech/v1alpha1/namespaces/team-a/attentionusers/ada/status"
        );
        assert_eq!(write.content_type, "application/apply-patch+yaml");
        assert!(write.query.contains("fieldManager=attention.tech%2Foperator"), "{}", write.query);
        assert!(write.query.contains("force=true"), "{}", write.query);
        assert_eq!(write.body["apiVersion"], "attention.tech/v1alpha1");
        assert_eq!(write.body["kind"], "AttentionUser");
        let keys: Vec<&String> = write.body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["apiVersion", "kind", "status"], "spec and metadata are never written");
    }
    assert_eq!(writes[0].body["status"]["conditions"][0]["reason"], "Creating");
    assert_eq!(writes[0].body["status"]["createPending"], true);
    assert_eq!(writes[1].body["status"]["conditions"][0]["reason"], "Created");
}

#[tokio::test]
async fn a_second_run_after_success_sends_nothing_and_writes_nothing() {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;

    h.assert_reconcile_is_idle("ada").await;
}

#[tokio::test]
async fn an_existing_email_is_adopted_whatever_its_case() {
    let h = Harness::start().await;
    let uuid = h.sandbox.insert_user(seed("Ada@Example.COM"));

    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;

    assert!(h.creates().is_empty());
    assert_eq!(h.ready("ada"), ready("True", "Adopted"));
    let status = h.kube.user("ada").status.unwrap();
    assert_eq!(status.uuid, Some(uuid));
    assert_eq!(status.origin, Some(Origin::Adopted));
    assert_eq!(h.kube.status_writes().len(), 1, "no Creating mark when nothing is created");
}

#[tokio::test]
async fn creation_and_adoption_are_announced_by_events_once() {
    let h = Harness::start().await;
    h.sandbox.insert_user(seed("bob@example.com"));
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    h.apply(UserBuilder::new("bob", "bob@example.com").build()).await;
    h.reconcile("ada").await;
    h.reconcile("bob").await;

    let events = h.kube.events();
    let summary: Vec<(Value, Value, Value)> = events
        .iter()
        .map(|e| {
            (e.body["regarding"]["name"].clone(), e.body["type"].clone(), e.body["reason"].clone())
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!("ada"), json!("Normal"), json!("Created")),
            (json!("bob"), json!("Normal"), json!("Adopted")),
        ]
    );
    assert_eq!(events[0].body["reportingController"], "attention.tech/operator");
    assert_eq!(events[0].path, "/apis/events.k8s.io/v1/namespaces/team-a/events");
}

#[tokio::test]
async fn the_password_from_the_secret_reaches_attention_and_nothing_else() {
    let h = Harness::start().await;
    h.kube.add_secret(secret("ada-password", "password", PASSWORD));
    let (logs, _guard) = capture_logs();

    let user = UserBuilder::new("ada", "ada@example.com").password_from("ada-password", "password");
    h.apply(user.build()).await;

    assert_eq!(h.ready("ada"), ready("True", "Created"));
    assert!(h.sandbox.password_matches("ada@example.com", PASSWORD));
    assert!(
        h.kube.calls().iter().any(|c| c.path == "/api/v1/namespaces/team-a/secrets/ada-password")
    );
    for call in h.kube.calls().iter().filter(|c| c.method != "GET") {
        assert!(!call.body.to_string().contains(PASSWORD), "{} {}", call.method, call.path);
    }
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty());
    assert!(!logs.contains(PASSWORD) && !logs.contains(API_KEY));
}

#[tokio::test]
async fn a_missing_secret_is_a_clear_condition_and_is_retried() {
    let h = Harness::start().await;
    let user = UserBuilder::new("ada", "ada@example.com").password_from("ada-password", "password");

    let action = h.apply(user.build()).await;

    assert_eq!(h.ready("ada"), ready("False", "SecretMissing"));
    assert!(
        h.message("ada").contains("Secret ada-password does not exist"),
        "{}",
        h.message("ada")
    );
    assert!(h.creates().is_empty());
    assert!(requeue_after(&action) < Duration::from_secs(3), "{action:?}");

    h.kube.add_secret(secret("ada-password", "other-key", PASSWORD));
    h.reconcile("ada").await;
    assert!(h.message("ada").contains("Secret ada-password has no key password"));

    h.kube.add_secret(secret("ada-password", "password", PASSWORD));
    h.reconcile("ada").await;
    assert_eq!(h.ready("ada"), ready("True", "Created"));
}

#[tokio::test]
async fn an_invalid_spec_that_passed_admission_is_reported_and_never_sent() {
    let h = Harness::start().await;
    let user = UserBuilder::new("ada", "ada@example.com").teams(&[(TEAM_A, true), (TEAM_B, true)]);

    let action = h.apply(user.build()).await;

    assert_eq!(action, Action::requeue(AWAIT_CHANGE));
    assert_eq!(h.ready("ada"), ready("False", "InvalidSpec"));
    assert_eq!(h.message("ada"), "the spec is invalid: at most one team can be primary");
    assert!(h.api_calls().is_empty());
}

#[tokio::test]
async fn a_create_refused_because_the_email_appeared_meanwhile_is_adopted_next() {
    let h = Harness::start().await;
    // Warm the shared view, then let someone add the email behind the operator's back.
    h.apply(UserBuilder::new("bob", "bob@example.com").build()).await;
    let uuid = h.sandbox.insert_user(seed("ada@example.com"));

    let action = h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    assert_eq!(h.ready("ada"), ready("False", "Rejected"));
    assert!(h.message("ada").contains("status 409"), "{}", h.message("ada"));
    assert!(requeue_after(&action) < Duration::from_secs(3), "retried soon: {action:?}");

    h.reconcile("ada").await;
    assert_eq!(h.ready("ada"), ready("True", "Adopted"));
    assert_eq!(h.kube.user("ada").status.unwrap().uuid, Some(uuid));
    assert_eq!(h.sandbox.users().len(), 2, "bob and the one ada, never a second ada");
}

#[tokio::test]
async fn a_create_answered_502_after_it_landed_is_found_not_repeated() {
    let faults = Faults { commit_then_502_next: 1, ..Faults::default() };
    let h = Harness::with(faults, API_KEY).await;

    let action = h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    assert_eq!(h.ready("ada"), ready("False", "Unavailable"));
    assert_eq!(h.kube.user("ada").status.unwrap().create_pending, Some(true));
    assert!(requeue_after(&action) < Duration::from_secs(3), "{action:?}");

    h.reconcile("ada").await;

    assert_eq!(h.ready("ada"), ready("True", "Created"));
    assert_eq!(h.creates().len(), 1);
    assert_eq!(h.sandbox.users().len(), 1);
    let calls = h.api_calls();
    assert_eq!(calls.last().unwrap(), "GET /v2/organizations/users", "looked up again first");
}

#[tokio::test]
async fn an_operator_killed_between_create_and_status_write_does_not_create_twice() {
    let faults = Faults { hold_after_commit_ms: 3_000, ..Faults::default() };
    let mut h = Harness::with(faults, API_KEY).await;
    h.kube.add_user(&UserBuilder::new("ada", "ada@example.com").build());

    let first = tokio::spawn(reconcile(Arc::new(h.kube.user("ada")), h.ctx.clone()));
    while h.sandbox.users().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.abort();
    h.sandbox.set_faults(Faults::default());
    h.restart();

    h.reconcile("ada").await;

    assert_eq!(h.creates().len(), 1);
    assert_eq!(h.ready("ada"), ready("True", "Created"));
    assert_eq!(h.kube.user("ada").status.unwrap().origin, Some(Origin::Created));
}

#[tokio::test]
async fn rate_limiting_waits_at_least_as_long_as_attention_asks() {
    let faults = Faults { rate_limit_next: 1, retry_after_secs: Some(45), ..Faults::default() };
    let h = Harness::with(faults, API_KEY).await;

    let action = h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;

    assert_eq!(h.ready("ada"), ready("False", "RateLimited"));
    assert_eq!(action, Action::requeue(Duration::from_secs(45)));
    assert!(h.creates().is_empty());
}

#[tokio::test]
async fn a_refused_api_key_is_reported_without_the_key() {
    let h = Harness::with(Faults::default(), "wrong-key-Zx81").await;

    let action = h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;

    assert_eq!(h.ready("ada"), ready("False", "Unauthorized"));
    assert!(h.message("ada").contains("check the operator's API key"));
    assert!(requeue_after(&action) < Duration::from_secs(3));
    let events = h.kube.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].body["type"], "Warning");
    for call in h.kube.calls() {
        assert!(!call.body.to_string().contains("wrong-key-Zx81"));
    }
}

#[tokio::test]
async fn retries_of_the_same_failure_repeat_no_event_and_back_off() {
    let faults = Faults { error_rate: 1.0, ..Faults::default() };
    let h = Harness::with(faults, API_KEY).await;

    let first = h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    let mut delays = vec![requeue_after(&first)];
    for _ in 0..4 {
        delays.push(requeue_after(&h.reconcile("ada").await));
    }

    assert_eq!(h.ready("ada"), ready("False", "Unavailable"));
    assert_eq!(h.kube.events().len(), 1);
    assert_eq!(h.kube.status_writes().len(), 1, "the same failure is written once");
    assert!(delays[4] >= Duration::from_secs(16), "{delays:?}");
}

#[tokio::test]
async fn an_observed_user_gone_from_attention_is_reported_not_recreated() {
    let mut h = Harness::start().await;
    let uuid = h.sandbox.insert_user(seed("ada@example.com"));
    let observe = |u: &mut AttentionUser| u.spec.management_policy = ManagementPolicy::Observe;
    h.apply(UserBuilder::new("ada", "ada@example.com").with(observe).build()).await;
    h.sandbox.remove_user(&uuid);
    h.restart();

    h.reconcile("ada").await;

    assert_eq!(h.ready("ada"), ready("False", "UserMissing"));
    assert!(h.message("ada").contains(&uuid));
    assert!(h.creates().is_empty());
}

#[tokio::test]
async fn a_managed_user_deleted_in_the_app_is_recreated_once_and_says_so() {
    let mut h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    let old = h.kube.user("ada").status.unwrap().uuid.unwrap();
    h.sandbox.remove_user(&old);
    h.restart();

    h.reconcile("ada").await;
    h.reconcile("ada").await;

    assert_eq!(h.ready("ada"), ready("True", "Recreated"));
    assert_eq!(h.creates().len(), 2, "the first create and one more");
    let status = h.kube.user("ada").status.unwrap();
    assert_ne!(status.uuid.unwrap(), old);
    let last = h.kube.events().last().unwrap().body.clone();
    assert_eq!(
        (last["type"].as_str(), last["reason"].as_str()),
        (Some("Warning"), Some("Recreated"))
    );
}

#[tokio::test]
async fn a_full_sync_costs_one_list_plus_one_create_per_missing_user() {
    let h = Harness::start().await;
    for i in 0..10 {
        h.sandbox.insert_user(seed(&format!("existing{i}@example.com")));
    }
    for i in 0..40 {
        let email =
            if i < 10 { format!("existing{i}@example.com") } else { format!("new{i}@example.com") };
        h.kube.add_user(&UserBuilder::new(&format!("user-{i}"), &email).build());
    }

    let names: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let runs = names.iter().map(|name| h.reconcile(name));
    futures::future::join_all(runs).await;

    let lists = h.api_calls().iter().filter(|c| c.starts_with("GET")).count();
    assert_eq!(lists, 1);
    assert_eq!(h.creates().len(), 30);
    assert!(names.iter().all(|name| h.ready(name).0 == "True"));
}

#[tokio::test]
async fn every_kubernetes_call_of_the_reconcile_is_granted_by_the_rbac_rules() {
    let faults = Faults { commit_then_502_next: 1, ..Faults::default() };
    let h = Harness::with(faults, API_KEY).await;
    h.kube.add_secret(secret("ada-password", "password", PASSWORD));
    let user = UserBuilder::new("ada", "ada@example.com").password_from("ada-password", "password");
    h.apply(user.build()).await;
    h.reconcile("ada").await;
    h.apply(UserBuilder::new("bob", "bob@example.com").password_from("gone", "password").build())
        .await;

    let calls = h.kube.calls();
    assert!(calls.iter().any(KubeCall::is_event) && calls.iter().any(KubeCall::is_status_write));
    for call in &calls {
        let (group, resource, verb) = access_of(call);
        assert!(
            attention_operator::rbac::allows(&group, &resource, &verb),
            "{verb} {group}/{resource} is not in rbac::REQUIRED"
        );
    }
}

#[tokio::test]
async fn reconciles_and_attention_calls_are_counted_without_personal_data() {
    let h = Harness::start().await;
    h.kube.add_secret(secret("ada-password", "password", PASSWORD));
    let user = UserBuilder::new("ada", "ada@example.com").password_from("ada-password", "password");
    h.apply(user.build()).await;
    h.apply(UserBuilder::new("bob", "bob@example.com").password_from("gone", "password").build())
        .await;
    h.kube.mark_deleted("bob");
    h.reconcile("bob").await;

    let text = h.ctx.metrics.encode();

    for line in [
        r#"attention_operator_reconciles_total{result="ready"} 1"#,
        r#"attention_operator_reconciles_total{result="not_ready"} 1"#,
        r#"attention_operator_reconcile_failures_total{reason="SecretMissing"} 1"#,
        r#"attention_operator_api_requests_total{operation="list_users",outcome="Success"} 1"#,
        r#"attention_operator_api_requests_total{operation="create_user",outcome="Success"} 1"#,
        "attention_operator_reconcile_duration_seconds_count 3",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    for private in ["@", "ada", "bob", PASSWORD, API_KEY] {
        assert!(!text.contains(private), "personal data or a secret in the metrics");
    }
}

#[tokio::test]
async fn a_409_after_a_create_that_may_have_landed_still_ends_created() {
    let h = Harness::start().await;
    // An earlier create timed out (status says so); the view is warm and does not show the
    // user that create made, as if the list were read before it landed.
    h.apply(UserBuilder::new("bob", "bob@example.com").build()).await;
    let uuid = h.sandbox.insert_user(seed("ada@example.com"));
    let pending = AttentionUserStatus { create_pending: Some(true), ..Default::default() };
    let user = UserBuilder::new("ada", "ada@example.com").status(pending).build();

    let action = h.apply(user).await;
    assert_eq!(h.ready("ada"), ready("False", "Rejected"));
    assert_eq!(h.kube.user("ada").status.unwrap().create_pending, Some(true));
    assert!(requeue_after(&action) < Duration::from_secs(3), "{action:?}");

    h.reconcile("ada").await;

    assert_eq!(h.ready("ada"), ready("True", "Created"));
    assert_eq!(h.kube.user("ada").status.unwrap().uuid, Some(uuid));
}
