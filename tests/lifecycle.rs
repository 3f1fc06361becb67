//! The life of an AttentionUser after its creation, through the real reconcile against the
//! fake API server and the sandbox: spec edits, drift, the management, adoption and deletion
//! policies, two resources claiming one email, password rotation and pause.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use attention_operator::attention::{ApiError, AttentionApi, NewUser, RemoteUser, UserUpdate};

use attention_operator::controller::{MAX_DELETE_ATTEMPTS, Settings};
use attention_operator::crd::{
    AdoptionPolicy, AttentionUser, AttentionUserStatus, DeletionPolicy, Drift, FINALIZER,
    ManagementPolicy, Origin, PAUSED_ANNOTATION, SeatType, TeamMembership,
};
use attention_operator::sandbox::{Faults, SeedTeam};
use kube::runtime::controller::Action;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use support::harness::*;
use support::*;

const OTHER_ROLE: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const NEW_PASSWORD: &str = "c0rrect-h0rse-b4ttery";
const USERS: &str = "/v2/organizations/users";

fn memberships(teams: &[(&str, bool)]) -> Vec<TeamMembership> {
    teams
        .iter()
        .map(|(uuid, primary)| TeamMembership { uuid: (*uuid).to_owned(), primary: *primary })
        .collect()
}

fn observe(user: &mut AttentionUser) {
    user.spec.management_policy = ManagementPolicy::Observe;
}

fn delete_policy(user: &mut AttentionUser) {
    user.spec.deletion_policy = Some(DeletionPolicy::Delete);
}

fn paused(user: &mut AttentionUser) {
    user.metadata
        .annotations
        .get_or_insert_default()
        .insert(PAUSED_ANNOTATION.to_owned(), "true".to_owned());
}

fn created_at(time: &str) -> impl FnOnce(&mut AttentionUser) {
    let time = serde_json::from_value(json!(time)).unwrap();
    move |user| user.metadata.creation_timestamp = Some(time)
}

fn patch_of(uuid: &str) -> String {
    format!("PATCH {USERS}/{uuid}")
}

fn delete_of(uuid: &str) -> String {
    format!("DELETE {USERS}/{uuid}")
}

/// The body of the last request the sandbox received.
fn last_body(h: &Harness) -> Value {
    h.sandbox.requests().last().unwrap().body.clone().unwrap()
}

fn team_uuids(remote: &Value) -> Vec<&str> {
    let teams = remote["teams"].as_array().unwrap();
    teams.iter().map(|t| t["uuid"].as_str().unwrap()).collect()
}

fn event(type_: &str, reason: &str, note: &str) -> (String, String, String) {
    (type_.to_owned(), reason.to_owned(), note.to_owned())
}

/// The PATCHes of AttentionUser objects themselves (finalizers), not of their status.
fn object_patches(h: &Harness) -> Vec<KubeCall> {
    let calls = h.kube.calls();
    let patches = calls.into_iter().filter(|c| c.method == "PATCH");
    patches.filter(|c| !c.is_status_write()).collect()
}

/// A created user whose spec was then edited on every field an update can change, after a
/// restart so that the operator compares it with a fresh list; reconciled once. Answers the
/// harness, with the requests of that reconcile only, and the user's UUID.
async fn created_then_edited() -> (Harness, String) {
    let mut h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    let uuid = h.uuid("ada");
    h.restart();
    h.sandbox.clear_requests();
    h.kube.clear_calls();
    h.kube.edit("ada", |u| {
        u.spec.last_name = "Byron".into();
        u.spec.seat_type = SeatType::Listener;
        u.spec.role_uuid = OTHER_ROLE.into();
        u.spec.teams = memberships(&[(TEAM_A, false), (TEAM_B, true)]);
    });
    h.reconcile("ada").await;
    (h, uuid)
}

// Updates

#[tokio::test]
async fn editing_the_spec_sends_one_patch_with_only_what_differs_and_the_seat_type() {
    let (h, uuid) = created_then_edited().await;

    assert_eq!(h.api_calls(), [format!("GET {USERS}"), patch_of(&uuid)]);
    assert_eq!(
        last_body(&h),
        json!({
            "lastName": "Byron",
            "roleUUID": OTHER_ROLE,
            "teamsToAdd": [{"uuid": TEAM_B, "primary": true}],
            "seat_type": "listener",
        })
    );
}

#[tokio::test]
async fn an_edited_spec_changes_the_user_in_attention_and_says_so() {
    let (h, uuid) = created_then_edited().await;

    let remote = h.remote(&uuid);
    assert_eq!(remote["firstName"], "Ada");
    assert_eq!(remote["lastName"], "Byron");
    assert_eq!(remote["settings"]["seat_type"], "listener");
    assert_eq!(remote["roles"][0]["uuid"], OTHER_ROLE);
    assert_eq!(team_uuids(&remote), [TEAM_A, TEAM_B]);
    assert_eq!(remote["primaryTeamUUID"], TEAM_B);
    assert_eq!(h.ready("ada"), ready("True", "Created"));
    assert_eq!(h.status("ada").observed_generation, Some(2));
    assert_eq!(
        h.events().last().unwrap(),
        &event(
            "Normal",
            "Updated",
            "updated lastName, roleUUID, teams, primaryTeam, seatType in Attention"
        )
    );
    assert_eq!(h.events().len(), 1, "Ready did not change: no other Event");
}

#[tokio::test]
async fn a_reconcile_right_after_an_update_sends_nothing_and_writes_nothing() {
    let (h, _) = created_then_edited().await;

    h.assert_reconcile_is_idle("ada").await;
}

#[tokio::test]
async fn after_an_update_a_fresh_list_finds_nothing_left_to_change() {
    let (mut h, _) = created_then_edited().await;
    h.restart();
    h.sandbox.clear_requests();
    h.kube.clear_calls();

    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [format!("GET {USERS}")]);
    assert!(h.kube.calls().is_empty(), "{:?}", h.kube.calls());
}

#[tokio::test]
async fn moving_only_the_primary_flag_adds_that_team_again_as_primary() {
    let h = Harness::start().await;
    let mut seeded = seed("ada@example.com");
    seeded.teams.push(SeedTeam { uuid: TEAM_B.to_owned(), primary: false });
    let uuid = h.sandbox.insert_user(seeded);

    let user = UserBuilder::new("ada", "ada@example.com").teams(&[(TEAM_A, false), (TEAM_B, true)]);
    h.apply(user.build()).await;

    assert_eq!(h.api_calls(), [format!("GET {USERS}"), patch_of(&uuid)]);
    assert_eq!(
        last_body(&h),
        json!({"teamsToAdd": [{"uuid": TEAM_B, "primary": true}], "seat_type": "recording"})
    );
    let remote = h.remote(&uuid);
    assert_eq!(team_uuids(&remote), [TEAM_A, TEAM_B]);
    assert_eq!(remote["primaryTeamUUID"], TEAM_B);
    assert_eq!(h.ready("ada"), ready("True", "Adopted"));
}

#[tokio::test]
async fn a_role_and_team_edit_right_after_creation_is_applied_without_waiting_for_a_list() {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    let uuid = h.uuid("ada");
    h.sandbox.clear_requests();
    h.kube.edit("ada", |u| {
        u.spec.role_uuid = OTHER_ROLE.into();
        u.spec.teams = memberships(&[(TEAM_B, true)]);
    });

    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [patch_of(&uuid)]);
    assert_eq!(
        last_body(&h),
        json!({
            "roleUUID": OTHER_ROLE,
            "teamsToAdd": [{"uuid": TEAM_B, "primary": true}],
            "teamUUIDsToRemove": [TEAM_A],
            "seat_type": "recording",
        })
    );
    let remote = h.remote(&uuid);
    assert_eq!(remote["roles"][0]["uuid"], OTHER_ROLE);
    assert_eq!(team_uuids(&remote), [TEAM_B]);
}

#[tokio::test]
async fn when_nothing_differs_nothing_is_sent() {
    let mut h = Harness::start().await;
    let mut seeded = seed("ada@example.com");
    seeded.seat_type = Some(attention_operator::sandbox::SeatType::Listener);
    h.sandbox.insert_user(seeded);
    let user = UserBuilder::new("ada", "ada@example.com").seat(SeatType::Listener);

    h.apply(user.build()).await;
    h.restart();
    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [format!("GET {USERS}"), format!("GET {USERS}")]);
    assert_eq!(h.ready("ada"), ready("True", "Adopted"));
    assert_eq!(h.kube.status_writes().len(), 1, "the second run wrote nothing");
}

// Drift from the other side

#[tokio::test]
async fn a_change_behind_the_operators_back_is_corrected_on_the_next_fresh_list() {
    let mut h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    let uuid = h.uuid("ada");
    let changed = h.sandbox.update_user(
        &uuid,
        json!({
            "lastName": "Byron", "roleUUID": OTHER_ROLE,
            "teamsToAdd": [{"uuid": TEAM_B, "primary": true}], "teamUUIDsToRemove": [TEAM_A],
            "seat_type": "listener",
        }),
    );
    assert!(changed);
    h.restart();
    h.sandbox.clear_requests();

    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [format!("GET {USERS}"), patch_of(&uuid)]);
    assert_eq!(
        last_body(&h),
        json!({
            "lastName": "Lovelace", "roleUUID": ROLE,
            "teamsToAdd": [{"uuid": TEAM_A, "primary": true}], "teamUUIDsToRemove": [TEAM_B],
            "seat_type": "recording",
        })
    );
    let remote = h.remote(&uuid);
    assert_eq!(remote["lastName"], "Lovelace");
    assert_eq!(remote["roles"][0]["uuid"], ROLE);
    assert_eq!(team_uuids(&remote), [TEAM_A]);
    assert_eq!(remote["primaryTeamUUID"], TEAM_A);
    assert_eq!(remote["settings"]["seat_type"], "recording");
    assert_eq!(h.ready("ada"), ready("True", "Created"));
}

#[tokio::test]
async fn observe_reports_every_difference_in_status_and_changes_nothing() {
    let h = Harness::start().await;
    let mut seeded = seed("ada@example.com");
    seeded.last_name = "Byron".into();
    seeded.role_uuid = OTHER_ROLE.into();
    seeded.teams = vec![SeedTeam { uuid: TEAM_B.to_owned(), primary: true }];
    seeded.seat_type = Some(attention_operator::sandbox::SeatType::Listener);
    let uuid = h.sandbox.insert_user(seeded);

    h.apply(UserBuilder::new("ada", "ada@example.com").with(observe).build()).await;
    h.reconcile("ada").await;

    assert_eq!(h.api_writes(), Vec::<String>::new());
    let drift = |field: &str, desired: &str, actual: &str| Drift {
        field: field.into(),
        desired: desired.into(),
        actual: actual.into(),
    };
    let status = h.status("ada");
    assert_eq!(
        status.drift,
        [
            drift("lastName", "Lovelace", "Byron"),
            drift("roleUUID", ROLE, OTHER_ROLE),
            drift("teams", TEAM_A, TEAM_B),
            drift("primaryTeam", TEAM_A, TEAM_B),
            drift("seatType", "recording", "listener"),
        ]
    );
    assert_eq!(status.uuid, Some(uuid));
    assert_eq!(h.ready("ada"), ready("False", "Drifted"));
    assert!(
        h.message("ada").contains("on lastName, roleUUID, teams, primaryTeam, seatType;"),
        "{}",
        h.message("ada")
    );
}

#[tokio::test]
async fn observed_drift_clears_once_the_user_is_back_in_line() {
    let mut h = Harness::start().await;
    let mut seeded = seed("ada@example.com");
    seeded.last_name = "Byron".into();
    let uuid = h.sandbox.insert_user(seeded);
    h.apply(UserBuilder::new("ada", "ada@example.com").with(observe).build()).await;
    assert_eq!(h.ready("ada"), ready("False", "Drifted"));

    assert!(h.sandbox.update_user(&uuid, json!({"lastName": "Lovelace"})));
    h.restart();
    h.reconcile("ada").await;

    assert!(h.status("ada").drift.is_empty());
    assert_eq!(h.ready("ada"), ready("True", "Adopted"));
    assert_eq!(h.api_writes(), Vec::<String>::new());
}

#[tokio::test]
async fn observe_without_a_user_reports_not_present_and_creates_nothing() {
    let h = Harness::start().await;

    h.apply(UserBuilder::new("ada", "ada@example.com").with(observe).build()).await;

    assert_eq!(h.api_calls(), [format!("GET {USERS}")]);
    assert_eq!(h.ready("ada"), ready("False", "NotPresent"));
    assert!(h.sandbox.users().is_empty());
    assert_eq!(h.status("ada").uuid, None);
}

// Adoption policy and conflicts

#[tokio::test]
async fn refuse_leaves_an_existing_user_alone() {
    let h = Harness::start().await;
    let uuid = h.sandbox.insert_user(seed("ada@example.com"));
    let refuse = |u: &mut AttentionUser| u.spec.adoption_policy = AdoptionPolicy::Refuse;
    let user = UserBuilder::new("ada", "ada@example.com").with(refuse).with(|u| {
        u.spec.last_name = "Byron".into();
    });

    h.apply(user.build()).await;
    h.reconcile("ada").await;

    assert_eq!(h.ready("ada"), ready("False", "AdoptionRefused"));
    assert!(h.message("ada").contains(&uuid), "{}", h.message("ada"));
    assert_eq!(h.api_writes(), Vec::<String>::new());
    assert_eq!(h.status("ada").uuid, None);
    assert_eq!(h.remote(&uuid)["lastName"], "Lovelace");
}

#[tokio::test]
async fn refuse_still_takes_the_user_its_own_create_may_have_made() {
    let faults = Faults { commit_then_502_next: 1, ..Faults::default() };
    let h = Harness::with(faults, API_KEY).await;
    let refuse = |u: &mut AttentionUser| u.spec.adoption_policy = AdoptionPolicy::Refuse;

    h.apply(UserBuilder::new("ada", "ada@example.com").with(refuse).build()).await;
    assert_eq!(h.status("ada").create_pending, Some(true));
    h.reconcile("ada").await;

    assert_eq!(h.ready("ada"), ready("True", "Created"));
    let remote = &h.sandbox.users()[0];
    assert_eq!(Some(h.uuid("ada").as_str()), remote["uuid"].as_str());
    assert_eq!(h.creates().len(), 1);
    assert_eq!(h.status("ada").origin, Some(Origin::Created));
}

#[tokio::test]
async fn refuse_does_not_take_a_user_that_appeared_while_its_create_was_refused() {
    let h = Harness::start().await;
    // Warm the shared view, then let someone add the email behind the operator's back.
    h.apply(UserBuilder::new("bob", "bob@example.com").build()).await;
    h.sandbox.insert_user(seed("ada@example.com"));
    let refuse = |u: &mut AttentionUser| u.spec.adoption_policy = AdoptionPolicy::Refuse;

    h.apply(UserBuilder::new("ada", "ada@example.com").with(refuse).build()).await;
    assert_eq!(h.ready("ada"), ready("False", "Rejected"));
    assert_eq!(h.status("ada").create_pending, None, "answered 409");
    h.reconcile("ada").await;

    assert_eq!(h.ready("ada"), ready("False", "AdoptionRefused"));
    assert_eq!(h.status("ada").uuid, None);
    assert_eq!(h.creates().len(), 2, "bob's, and ada's refused one");
}

/// Two resources declaring one email: `team-b/zed`, created first, and `team-a/ada`, created a
/// month later (so it is not the name that decides). Both are stored and watched.
async fn two_claims()
-> (Harness, AttentionUser, kube::runtime::reflector::store::Writer<AttentionUser>) {
    let h = Harness::start().await;
    let holder = UserBuilder::new("zed", "ada@example.com")
        .with(|u| u.metadata.namespace = Some("team-b".into()))
        .with(created_at("2026-01-01T00:00:00Z"))
        .build();
    let other =
        UserBuilder::new("ada", "Ada@Example.com").with(created_at("2026-02-01T00:00:00Z")).build();
    h.kube.add_user(&holder);
    h.kube.add_user(&other);
    let writer = h.watch(&[other, holder.clone()]);
    (h, holder, writer)
}

#[tokio::test]
async fn of_two_resources_with_one_email_the_older_creates_and_the_other_calls_nothing() {
    let (h, _, _writer) = two_claims().await;

    h.reconcile("ada").await;
    assert_eq!(h.api_calls(), Vec::<String>::new(), "before the holder's create");
    h.reconcile("zed").await;
    assert_eq!(h.ready("zed"), ready("True", "Created"));
    assert_eq!(h.creates().len(), 1);
    h.sandbox.clear_requests();
    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), Vec::<String>::new(), "after the holder's create");
    assert_eq!(h.ready("ada"), ready("False", "Conflict"));
    assert!(
        h.message("ada").starts_with("the AttentionUser team-b/zed already manages this email"),
        "{}",
        h.message("ada")
    );
    assert_eq!(h.status("ada").uuid, None);
}

#[tokio::test]
async fn once_the_holder_is_gone_the_other_adopts_its_user_without_a_second_create() {
    let (h, holder, mut writer) = two_claims().await;
    h.reconcile("zed").await;
    h.reconcile("ada").await;
    assert_eq!(h.ready("ada"), ready("False", "Conflict"));

    writer.apply_watcher_event(&Event::Delete(holder));
    h.reconcile("ada").await;

    assert_eq!(h.ready("ada"), ready("True", "Adopted"));
    assert_eq!(h.uuid("ada"), h.uuid("zed"));
    assert_eq!(h.creates().len(), 1);
    assert_eq!(h.sandbox.users().len(), 1);
}

// Password

/// A user created with the password in `ada-password`.
async fn created_with_password() -> Harness {
    let h = Harness::start().await;
    h.kube.add_secret(secret("ada-password", "password", PASSWORD));
    let user = UserBuilder::new("ada", "ada@example.com").password_from("ada-password", "password");
    h.apply(user.build()).await;
    assert!(h.sandbox.password_matches("ada@example.com", PASSWORD));
    h
}

#[tokio::test]
async fn a_rotated_password_secret_is_sent_once_and_recorded_by_version_only() {
    let h = created_with_password().await;
    let uuid = h.uuid("ada");
    assert_eq!(h.status("ada").password_version.as_deref(), Some("ada-password/101"));
    h.sandbox.clear_requests();

    h.kube.add_secret(secret("ada-password", "password", NEW_PASSWORD));
    h.reconcile("ada").await;
    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [patch_of(&uuid)], "sent once");
    assert_eq!(last_body(&h), json!({"password": "<redacted>", "seat_type": "recording"}));
    assert!(h.sandbox.password_matches("ada@example.com", NEW_PASSWORD));
    assert_eq!(h.status("ada").password_version.as_deref(), Some("ada-password/102"));
    for call in h.kube.calls().iter().filter(|c| c.method != "GET") {
        let body = call.body.to_string();
        assert!(
            !body.contains(NEW_PASSWORD) && !body.contains(PASSWORD),
            "{} {}",
            call.method,
            call.path
        );
    }
    assert_eq!(
        h.events().last().unwrap(),
        &event("Normal", "Updated", "updated password in Attention")
    );
}

#[tokio::test]
async fn an_update_without_a_rotation_sends_no_password() {
    let h = created_with_password().await;
    let uuid = h.uuid("ada");
    h.sandbox.clear_requests();
    h.kube.edit("ada", |u| u.spec.last_name = "Byron".into());

    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [patch_of(&uuid)]);
    assert_eq!(last_body(&h), json!({"lastName": "Byron", "seat_type": "recording"}));
    assert_eq!(h.status("ada").password_version.as_deref(), Some("ada-password/101"));
    assert!(h.sandbox.password_matches("ada@example.com", PASSWORD));
}

#[tokio::test]
async fn a_password_secret_deleted_after_creation_leaves_the_user_alone_and_ready() {
    let mut h = created_with_password().await;
    h.kube.remove_secret("ada-password");
    h.restart();
    h.sandbox.clear_requests();

    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [format!("GET {USERS}")]);
    assert_eq!(h.ready("ada"), ready("True", "Created"));
    assert!(h.sandbox.password_matches("ada@example.com", PASSWORD));
}

// Deletion

#[tokio::test]
async fn the_delete_policy_adds_the_finalizer_with_a_merge_patch_of_metadata() {
    let h = Harness::start().await;

    h.apply(UserBuilder::new("ada", "ada@example.com").with(delete_policy).build()).await;
    h.reconcile("ada").await;

    let patches = object_patches(&h);
    assert_eq!(patches.len(), 1, "added once");
    assert_eq!(
        patches[0].path,
        "/apis/attention.tech/v1alpha1/namespaces/team-a/attentionusers/ada"
    );
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    assert_eq!(
        patches[0].body,
        json!({"metadata": {"resourceVersion": "1", "finalizers": [FINALIZER]}})
    );
    assert_eq!(h.kube.finalizers("ada"), [FINALIZER]);
    assert_eq!(h.ready("ada"), ready("True", "Created"));
}

#[tokio::test]
async fn deleting_with_the_delete_policy_deletes_the_user_then_releases_the_resource() {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").with(delete_policy).build()).await;
    let uuid = h.uuid("ada");
    h.sandbox.clear_requests();

    h.kube.mark_deleted("ada");
    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [delete_of(&uuid)]);
    assert!(h.sandbox.users().is_empty());
    assert!(!h.kube.exists("ada"), "released by its last finalizer");
    assert_eq!(
        h.events().last().unwrap(),
        &event("Normal", "Deleted", &format!("deleted the Attention user {uuid}"))
    );
    let metrics = h.ctx.metrics.encode();
    assert!(metrics.contains(r#"attention_operator_releases_total{reason="Deleted"} 1"#));
}

#[tokio::test]
async fn retain_by_default_adds_no_finalizer_and_deleting_sends_nothing() {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    h.reconcile("ada").await;
    assert!(h.kube.finalizers("ada").is_empty());
    assert!(object_patches(&h).is_empty());
    h.sandbox.clear_requests();
    h.kube.clear_calls();

    h.kube.mark_deleted("ada");
    let action = h.reconcile("ada").await;

    assert_eq!(action, Action::await_change());
    assert_eq!(h.api_calls(), Vec::<String>::new());
    assert!(h.kube.calls().is_empty(), "{:?}", h.kube.calls());
    assert_eq!(h.sandbox.users().len(), 1);
}

#[tokio::test]
async fn observe_with_the_delete_policy_adds_no_finalizer_and_deleting_sends_nothing() {
    let h = Harness::start().await;
    h.sandbox.insert_user(seed("ada@example.com"));
    let user = UserBuilder::new("ada", "ada@example.com").with(observe).with(delete_policy);
    h.apply(user.build()).await;
    h.reconcile("ada").await;
    assert_eq!(h.ready("ada"), ready("True", "Adopted"));
    assert!(h.kube.finalizers("ada").is_empty());
    assert!(object_patches(&h).is_empty());
    h.sandbox.clear_requests();
    h.kube.clear_calls();

    h.kube.mark_deleted("ada");
    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), Vec::<String>::new());
    assert!(h.kube.calls().is_empty(), "{:?}", h.kube.calls());
    assert_eq!(h.sandbox.users().len(), 1);
}

#[tokio::test]
async fn the_operator_wide_delete_default_applies_unless_the_spec_says_retain() {
    let settings = Settings { default_deletion_policy: DeletionPolicy::Delete, ..settings() };
    let h = Harness::with_settings(Faults::default(), API_KEY, settings).await;
    let retain = |u: &mut AttentionUser| u.spec.deletion_policy = Some(DeletionPolicy::Retain);
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    h.apply(UserBuilder::new("bob", "bob@example.com").with(retain).build()).await;
    assert_eq!(h.kube.finalizers("ada"), [FINALIZER]);
    assert!(h.kube.finalizers("bob").is_empty());
    let (ada, bob) = (h.uuid("ada"), h.uuid("bob"));
    h.sandbox.clear_requests();

    h.kube.mark_deleted("ada");
    h.reconcile("ada").await;
    h.kube.mark_deleted("bob");
    h.reconcile("bob").await;

    assert_eq!(h.api_calls(), [delete_of(&ada)]);
    assert!(!h.kube.exists("ada"));
    let left: Vec<Value> = h.sandbox.users().iter().map(|u| u["uuid"].clone()).collect();
    assert_eq!(left, [json!(bob)]);
}

#[tokio::test]
async fn a_user_already_gone_from_attention_counts_as_deleted() {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").with(delete_policy).build()).await;
    let uuid = h.uuid("ada");
    assert!(h.sandbox.remove_user(&uuid));
    h.sandbox.clear_requests();

    h.kube.mark_deleted("ada");
    h.reconcile("ada").await;

    let confirmed = [delete_of(&uuid), format!("GET {USERS}")];
    assert_eq!(h.api_calls(), confirmed, "answered 404, then a list shows the user is gone");
    assert!(!h.kube.exists("ada"));
    assert_eq!(h.events().last().unwrap().1, "Deleted");
}

#[tokio::test]
async fn a_create_left_pending_is_looked_up_and_deleted_with_the_resource() {
    let faults = Faults { commit_then_502_next: 1, ..Faults::default() };
    let h = Harness::with(faults, API_KEY).await;
    h.apply(UserBuilder::new("ada", "ada@example.com").with(delete_policy).build()).await;
    assert_eq!(h.status("ada").create_pending, Some(true));
    let landed = h.sandbox.users()[0]["uuid"].as_str().unwrap().to_owned();
    h.sandbox.clear_requests();

    h.kube.mark_deleted("ada");
    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [format!("GET {USERS}"), delete_of(&landed)]);
    assert!(h.sandbox.users().is_empty());
    assert!(!h.kube.exists("ada"));
}

#[tokio::test]
async fn a_create_left_pending_that_never_landed_releases_the_resource_without_a_delete() {
    let h = Harness::start().await;
    // Warm the shared view, so that the create is sent and fails before it lands.
    h.apply(UserBuilder::new("bob", "bob@example.com").build()).await;
    h.sandbox.set_faults(Faults { error_rate: 1.0, ..Faults::default() });
    h.apply(UserBuilder::new("ada", "ada@example.com").with(delete_policy).build()).await;
    assert_eq!(h.status("ada").create_pending, Some(true));
    h.sandbox.set_faults(Faults::default());
    h.sandbox.clear_requests();

    h.kube.mark_deleted("ada");
    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [format!("GET {USERS}")]);
    assert!(!h.kube.exists("ada"));
    assert_eq!(h.sandbox.users().len(), 1, "bob only");
}

/// A resource with the Delete policy, its user created, now being deleted; faults as given.
async fn deleting_with(faults: Faults) -> (Harness, String) {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").with(delete_policy).build()).await;
    let uuid = h.uuid("ada");
    h.sandbox.clear_requests();
    h.sandbox.set_faults(faults);
    h.kube.mark_deleted("ada");
    (h, uuid)
}

fn warnings(h: &Harness) -> Vec<String> {
    h.events().into_iter().filter(|e| e.0 == "Warning").map(|e| e.1).collect()
}

#[tokio::test]
async fn a_delete_attention_does_not_support_releases_the_resource_at_once() {
    let (h, uuid) = deleting_with(Faults { delete_unsupported: true, ..Faults::default() }).await;

    h.reconcile("ada").await;

    assert!(!h.kube.exists("ada"), "released: another attempt would get the same answer");
    assert_eq!(h.api_calls(), [delete_of(&uuid)]);
    assert_eq!(h.sandbox.users().len(), 1, "left in place");
    assert_eq!(warnings(&h), ["DeletionAbandoned"]);
    let note = h.events().last().unwrap().2.clone();
    assert!(note.contains("status 405") && note.contains("left in place"), "{note}");
}

#[tokio::test]
async fn a_404_to_a_delete_of_a_user_still_listed_is_taken_for_a_missing_call() {
    let faults =
        Faults { delete_unsupported: true, delete_unsupported_status: 404, ..Faults::default() };
    let (h, uuid) = deleting_with(faults).await;

    h.reconcile("ada").await;

    assert!(!h.kube.exists("ada"));
    assert_eq!(h.api_calls(), [delete_of(&uuid), format!("GET {USERS}")], "checked by a list");
    assert_eq!(h.sandbox.users().len(), 1);
    assert_eq!(warnings(&h), ["DeletionAbandoned"], "not reported as deleted");
}

#[tokio::test]
async fn a_refused_key_is_tried_a_bounded_number_of_times_then_abandoned() {
    let (mut h, uuid) = deleting_with(Faults::default()).await;
    h.restart_with_key("revoked-key-Q9");

    for attempt in 1..MAX_DELETE_ATTEMPTS {
        h.reconcile("ada").await;
        assert_eq!(h.status("ada").deletion_attempts, Some(attempt));
        assert_eq!(h.ready("ada"), ready("False", "Unauthorized"));
        assert_eq!(h.kube.finalizers("ada"), [FINALIZER]);
    }
    h.reconcile("ada").await;

    assert!(!h.kube.exists("ada"), "released after the last attempt");
    assert_eq!(h.api_calls(), vec![delete_of(&uuid); MAX_DELETE_ATTEMPTS as usize]);
    assert_eq!(warnings(&h), ["Unauthorized", "DeletionAbandoned"], "one Warning per change");
}

#[tokio::test]
async fn an_outage_during_deletion_is_waited_out() {
    let (h, uuid) = deleting_with(Faults { error_rate: 1.0, ..Faults::default() }).await;

    for attempt in 1..=MAX_DELETE_ATTEMPTS * 2 {
        let action = h.reconcile("ada").await;
        assert_eq!(h.status("ada").deletion_attempts, Some(attempt));
        assert!(requeue_after(&action) >= Duration::from_secs(1), "backs off: {action:?}");
    }
    assert_eq!(h.kube.finalizers("ada"), [FINALIZER], "never abandoned for a passing outage");
    h.sandbox.set_faults(Faults::default());
    h.reconcile("ada").await;

    assert!(!h.kube.exists("ada"));
    assert!(h.sandbox.users().iter().all(|user| user["uuid"] != uuid.as_str()));
    assert_eq!(h.events().last().unwrap().1, "Deleted");
}

#[tokio::test]
async fn switching_from_delete_to_retain_removes_the_finalizer() {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").with(delete_policy).build()).await;
    assert_eq!(h.kube.finalizers("ada"), [FINALIZER]);
    h.kube.clear_calls();

    h.kube.edit("ada", |u| {
        u.spec.deletion_policy = Some(DeletionPolicy::Retain);
    });
    h.reconcile("ada").await;

    assert!(h.kube.finalizers("ada").is_empty());
    let patches = object_patches(&h);
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].body["metadata"]["finalizers"], json!([]));
    assert!(h.kube.exists("ada"));
}

// Pause

#[tokio::test]
async fn a_paused_resource_sends_nothing_and_is_neither_ready_nor_failed() {
    let h = Harness::start().await;

    h.apply(UserBuilder::new("ada", "ada@example.com").with(paused).build()).await;

    assert_eq!(h.api_calls(), Vec::<String>::new());
    assert_eq!(h.ready("ada"), ready("Unknown", "Paused"));
    assert!(h.message("ada").contains(PAUSED_ANNOTATION));
    let metrics = h.ctx.metrics.encode();
    assert!(metrics.contains(r#"attention_operator_reconciles_total{result="not_ready"} 1"#));
    assert!(!metrics.contains("reconcile_failures_total{"), "a pause is no failure: {metrics}");
}

#[tokio::test]
async fn resuming_applies_the_change_made_while_paused() {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    let uuid = h.uuid("ada");
    h.sandbox.clear_requests();
    h.kube.edit("ada", |u| {
        paused(u);
        u.spec.last_name = "Byron".into();
    });
    h.reconcile("ada").await;
    assert_eq!(h.api_calls(), Vec::<String>::new());
    assert_eq!(h.ready("ada"), ready("Unknown", "Paused"));

    h.kube.edit("ada", |u| {
        u.metadata.annotations = None;
    });
    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), [patch_of(&uuid)]);
    assert_eq!(h.remote(&uuid)["lastName"], "Byron");
    assert_eq!(h.ready("ada"), ready("True", "Created"));
}

#[tokio::test]
async fn deleting_a_paused_resource_releases_it_without_calling_attention() {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").with(delete_policy).build()).await;
    h.kube.edit("ada", paused);
    h.sandbox.clear_requests();

    h.kube.mark_deleted("ada");
    h.reconcile("ada").await;

    assert_eq!(h.api_calls(), Vec::<String>::new());
    assert!(!h.kube.exists("ada"));
    assert_eq!(h.sandbox.users().len(), 1);
    let last = h.events().last().unwrap().clone();
    assert_eq!((last.0.as_str(), last.1.as_str()), ("Warning", "Retained"));
    assert!(last.2.contains("paused"), "{}", last.2);
}

// RBAC

#[tokio::test]
async fn every_kubernetes_request_of_the_lifecycle_is_granted_by_the_rbac_rules() {
    let mut calls = Vec::new();

    let (h, _) = created_then_edited().await;
    calls.extend(h.kube.calls());

    let h = created_with_password().await;
    h.kube.add_secret(secret("ada-password", "password", NEW_PASSWORD));
    h.reconcile("ada").await;
    h.kube.edit("ada", |u| {
        delete_policy(u);
        paused(u);
    });
    h.reconcile("ada").await;
    h.kube.edit("ada", |u| u.metadata.annotations = None);
    h.reconcile("ada").await;
    h.kube.mark_deleted("ada");
    h.reconcile("ada").await;
    calls.extend(h.kube.calls());

    let faults = Faults { delete_unsupported: true, ..Faults::default() };
    let h = Harness::with(faults, API_KEY).await;
    h.sandbox.insert_user(seed("bob@example.com"));
    let bob = UserBuilder::new("bob", "bob@example.com").with(delete_policy);
    h.apply(bob.with(|u| u.spec.last_name = "Byron".into()).build()).await;
    h.kube.mark_deleted("bob");
    h.reconcile("bob").await;
    let observed = UserBuilder::new("obs", "bob@example.com").with(observe);
    h.apply(observed.build()).await;
    calls.extend(h.kube.calls());

    let (h, _, _writer) = two_claims().await;
    h.reconcile("ada").await;
    calls.extend(h.kube.calls());

    let mut seen = BTreeSet::new();
    for call in &calls {
        let (group, resource, verb) = access_of(call);
        assert!(
            attention_operator::rbac::allows(&group, &resource, &verb),
            "{verb} {group}/{resource} is not in rbac::REQUIRED"
        );
        seen.insert(format!("{verb} {group}/{resource}"));
    }
    // Grants the reconcile cannot show: the watchers list and watch, and kube's recorder
    // patches an Event only to fold a repeat into its series.
    let outside_the_reconcile = [
        "list attention.tech/attentionusers",
        "watch attention.tech/attentionusers",
        "list /secrets",
        "watch /secrets",
        "patch events.k8s.io/events",
    ];
    for access in attention_operator::rbac::REQUIRED {
        for verb in access.verbs {
            let grant = format!("{verb} {}/{}", access.group, access.resource);
            assert!(
                seen.contains(&grant) || outside_the_reconcile.contains(&grant.as_str()),
                "rbac::REQUIRED grants {grant}, which nothing uses: {seen:?}"
            );
        }
    }
}

#[tokio::test]
async fn deleting_the_holder_leaves_the_user_for_another_resource_with_its_email() {
    let h = Harness::start().await;
    let delete = |u: &mut AttentionUser| u.spec.deletion_policy = Some(DeletionPolicy::Delete);
    let holder = UserBuilder::new("zed", "ada@example.com")
        .with(delete)
        .with(created_at("2026-01-01T00:00:00Z"))
        .build();
    let other =
        UserBuilder::new("ada", "ada@example.com").with(created_at("2026-02-01T00:00:00Z")).build();
    h.kube.add_user(&holder);
    h.kube.add_user(&other);
    let mut writer = h.watch(&[holder, other]);
    h.reconcile("zed").await;
    h.reconcile("ada").await;
    assert_eq!(h.ready("ada"), ready("False", "Conflict"));
    let uuid = h.uuid("zed");

    h.kube.mark_deleted("zed");
    writer.apply_watcher_event(&Event::Apply(h.kube.user("zed")));
    h.reconcile("zed").await;

    assert!(!h.kube.exists("zed"), "the holder is released");
    assert!(h.api_calls().iter().all(|call| !call.starts_with("DELETE")), "{:?}", h.api_calls());
    let (_, reason, note) = h.events().last().cloned().unwrap();
    assert_eq!(reason, "Retained");
    assert!(note.contains("team-a/ada"), "{note}");
    h.reconcile("ada").await;
    assert_eq!(h.ready("ada"), ready("True", "Adopted"));
    assert_eq!(h.uuid("ada"), uuid);
}

#[tokio::test]
async fn adopting_a_user_keeps_its_password_and_later_rotations_are_sent() {
    let h = Harness::start().await;
    let mut existing = seed("ada@example.com");
    existing.password = Some("their-own-pw-1".to_owned());
    h.sandbox.insert_user(existing);
    h.kube.add_secret(secret("ada-password", "password", PASSWORD));
    let user = UserBuilder::new("ada", "ada@example.com").password_from("ada-password", "password");

    h.apply(user.build()).await;

    assert_eq!(h.ready("ada"), ready("True", "Adopted"));
    assert!(h.sandbox.password_matches("ada@example.com", "their-own-pw-1"));
    assert!(h.api_writes().is_empty(), "{:?}", h.api_writes());
    assert_eq!(h.status("ada").password_version.as_deref(), Some("ada-password/101"));

    h.kube.add_secret(secret("ada-password", "password", NEW_PASSWORD));
    h.reconcile("ada").await;
    assert!(h.sandbox.password_matches("ada@example.com", NEW_PASSWORD));
}

#[tokio::test]
async fn a_changed_email_that_admission_let_through_is_refused_and_changes_nothing() {
    let h = Harness::start().await;
    h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    let uuid = h.uuid("ada");
    h.sandbox.clear_requests();

    h.kube.edit("ada", |u| {
        u.spec.email = "lady@example.com".into();
        u.spec.last_name = "King".into();
    });
    h.reconcile("ada").await;

    assert_eq!(h.ready("ada"), ready("False", "InvalidSpec"));
    assert!(h.message("ada").starts_with("the spec is invalid: email cannot be changed"));
    assert!(h.api_writes().is_empty(), "{:?}", h.api_writes());
    assert_eq!(h.remote(&uuid)["lastName"], "Lovelace");

    h.kube.edit("ada", |u| u.spec.email = "ada@example.com".into());
    h.reconcile("ada").await;
    assert_eq!(h.ready("ada"), ready("True", "Created"));
    assert_eq!(h.remote(&uuid)["lastName"], "King", "the other edit applies once restored");
}

/// The sandbox, except that every create is refused as Attention refuses one over a seat limit.
struct RefusingCreates(attention_operator::attention::HttpClient);

#[async_trait::async_trait]
impl AttentionApi for RefusingCreates {
    async fn list_users(&self) -> Result<Vec<RemoteUser>, ApiError> {
        self.0.list_users().await
    }

    async fn create_user(&self, _: &NewUser) -> Result<RemoteUser, ApiError> {
        Err(ApiError::Rejected { status: 422, excerpt: "seat limit reached".into() })
    }

    async fn update_user(&self, uuid: &str, update: &UserUpdate) -> Result<RemoteUser, ApiError> {
        self.0.update_user(uuid, update).await
    }

    async fn delete_user(&self, uuid: &str) -> Result<(), ApiError> {
        self.0.delete_user(uuid).await
    }
}

#[tokio::test]
async fn a_refusal_that_is_not_a_duplicate_settles_a_pending_create() {
    let mut h = Harness::start().await;
    h.restart_with_api(Arc::new(RefusingCreates(client_for(&h.sandbox, API_KEY))));
    // An earlier create failed in a way that may have landed; it did not.
    let pending = AttentionUserStatus { create_pending: Some(true), ..Default::default() };
    let refuse = |u: &mut AttentionUser| u.spec.adoption_policy = AdoptionPolicy::Refuse;
    let user = UserBuilder::new("ada", "ada@example.com").with(refuse).status(pending).build();

    h.apply(user).await;
    assert_eq!(h.ready("ada"), ready("False", "Rejected"));
    assert_eq!(h.status("ada").create_pending, None, "the fresh list and the 422 settle it");

    h.sandbox.insert_user(seed("ada@example.com"));
    h.reconcile("ada").await;
    assert_eq!(h.ready("ada"), ready("False", "AdoptionRefused"), "someone else's user");
}

#[tokio::test]
async fn a_create_refused_again_after_a_fresh_lookup_waits_for_a_spec_change() {
    let mut h = Harness::start().await;
    h.restart_with_api(Arc::new(RefusingCreates(client_for(&h.sandbox, API_KEY))));

    let first = h.apply(UserBuilder::new("ada", "ada@example.com").build()).await;
    assert_eq!(h.ready("ada"), ready("False", "Rejected"));
    assert!(requeue_after(&first) < Duration::from_secs(3), "maybe a duplicate: {first:?}");

    let again = h.reconcile("ada").await;
    assert_eq!(again, Action::requeue(AWAIT_CHANGE));
    assert!(h.message("ada").contains("refused again"), "{}", h.message("ada"));
    assert_eq!(h.api_calls().iter().filter(|c| c.starts_with("GET")).count(), 2, "fresh list");

    h.kube.edit("ada", |u| u.spec.last_name = "King".into());
    let edited = h.reconcile("ada").await;
    assert!(requeue_after(&edited) < Duration::from_secs(3), "a new spec, a new first try");
}

#[tokio::test]
async fn a_resource_whose_email_was_edited_keeps_its_user_from_others_and_from_deletion() {
    let h = Harness::start().await;
    let first = UserBuilder::new("zed", "ada@example.com")
        .with(delete_policy)
        .with(created_at("2026-01-01T00:00:00Z"))
        .build();
    h.kube.add_user(&first);
    let mut writer = h.watch(&[first]);
    h.reconcile("zed").await;
    let uuid = h.uuid("zed");
    h.kube.edit("zed", |u| u.spec.email = "ada2@example.com".into());
    h.reconcile("zed").await;
    assert_eq!(h.ready("zed"), ready("False", "InvalidSpec"));
    let other =
        UserBuilder::new("ada", "ada@example.com").with(created_at("2026-02-01T00:00:00Z")).build();
    h.kube.add_user(&other);
    writer.apply_watcher_event(&Event::Apply(h.kube.user("zed")));
    writer.apply_watcher_event(&Event::Apply(other));

    h.reconcile("ada").await;
    assert_eq!(h.ready("ada"), ready("False", "Conflict"), "zed still holds ada@");

    h.kube.mark_deleted("zed");
    writer.apply_watcher_event(&Event::Apply(h.kube.user("zed")));
    h.reconcile("zed").await;

    assert!(!h.kube.exists("zed"));
    assert!(h.api_calls().iter().all(|call| !call.starts_with("DELETE")), "{:?}", h.api_calls());
    assert_eq!(h.remote(&uuid)["email"], "ada@example.com", "left for the other resource");
}
