//! The status an AttentionUser should have, built as a plain value from what was observed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::outcome::{Found, Outcome};
use crate::crd::{AttentionUserStatus, Drift, READY};

/// Reason of the `Ready` condition while a create is under way.
pub const CREATING: &str = "Creating";

/// The status that reports `outcome`. What a failure does not contradict (the UUID and the
/// details last read from Attention) is kept from `previous`.
pub fn build(
    previous: Option<&AttentionUserStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: Timestamp,
) -> AttentionUserStatus {
    let mut status = previous.cloned().unwrap_or_default();
    match outcome {
        Outcome::Ready(found) => record_found(&mut status, found, Vec::new()),
        Outcome::Drifted(found, drift) => record_found(&mut status, found, drift.clone()),
        Outcome::ApiFailed { step, error } if step.creates() => {
            // Once a create may have landed, only finding the user settles it: a later refusal
            // (a 409 for the email that create made) does not.
            let pending = status.create_pending == Some(true) || error.may_have_taken_effect();
            status.create_pending = pending.then_some(true);
        }
        _ => {}
    }
    set_ready(
        &mut status,
        generation,
        outcome.ready_status(),
        outcome.reason(),
        outcome.message(),
        now,
    );
    status
}

/// What Attention reports of the user, and what this reconcile found or did to it.
fn record_found(status: &mut AttentionUserStatus, found: &Found, drift: Vec<Drift>) {
    let user = &found.user;
    status.uuid = Some(user.uuid.clone());
    status.email = Some(user.email.clone());
    status.origin = Some(found.origin);
    status.create_pending = None;
    status.bot_name = user.bot_name.clone();
    status.primary_team_uuid = user.primary_team_uuid.clone();
    status.transcript_lang = user.transcript_lang.clone();
    status.settings = user.settings.clone();
    status.drift = drift;
    if found.password_version.is_some() {
        status.password_version = found.password_version.clone();
    }
}

/// The status written just before a create is sent, so that a create interrupted by a restart
/// is recognised as the operator's own when it is found afterwards.
pub fn creating(
    previous: Option<&AttentionUserStatus>,
    generation: Option<i64>,
    now: Timestamp,
) -> AttentionUserStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.create_pending = Some(true);
    let message = "creating the user in Attention".to_owned();
    set_ready(&mut status, generation, "False", CREATING, message, now);
    status
}

fn set_ready(
    status: &mut AttentionUserStatus,
    generation: Option<i64>,
    ready: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) {
    let since = match status.ready() {
        Some(previous) if previous.status == ready => previous.last_transition_time.clone(),
        _ => Time(now),
    };
    status.observed_generation = generation;
    status.conditions.retain(|condition| condition.type_ != READY);
    status.conditions.push(Condition {
        type_: READY.to_owned(),
        status: ready.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time: since,
        observed_generation: generation,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::{ApiError, RemoteUser};
    use crate::controller::Step;
    use crate::crd::Origin;
    use serde_json::json;

    fn remote() -> RemoteUser {
        serde_json::from_value(json!({
            "uuid": "5b0f6a3e-2c1d-4e8f-9a7b-6c5d4e3f2a1b",
            "email": "ada@example.com",
            "botName": "Ada's Notetaker",
            "primaryTeamUUID": "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e",
            "transcriptLang": "en",
            "settings": {"seat_type": "recording", "joinWhenIAmHostAndAlone": false},
        }))
        .unwrap()
    }

    fn ready(origin: Origin) -> Outcome {
        Outcome::Ready(Box::new(Found::new(remote(), origin)))
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn ready_status_carries_what_attention_reports() {
        let status = build(None, Some(3), &ready(Origin::Created), at(0));
        assert_eq!(status.uuid.as_deref(), Some("5b0f6a3e-2c1d-4e8f-9a7b-6c5d4e3f2a1b"));
        assert_eq!(status.origin, Some(Origin::Created));
        assert_eq!(status.bot_name.as_deref(), Some("Ada's Notetaker"));
        assert_eq!(
            status.primary_team_uuid.as_deref(),
            Some("8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e")
        );
        assert_eq!(status.transcript_lang.as_deref(), Some("en"));
        assert_eq!(status.settings.as_ref().unwrap()["seat_type"], json!("recording"));
        assert_eq!(status.observed_generation, Some(3));
        let condition = status.ready().unwrap();
        assert_eq!((condition.status.as_str(), condition.reason.as_str()), ("True", "Created"));
        assert_eq!(condition.observed_generation, Some(3));
        assert_eq!(condition.last_transition_time, Time(at(0)));
    }

    #[test]
    fn rebuilding_an_unchanged_outcome_gives_an_identical_status() {
        let first = build(None, Some(1), &ready(Origin::Adopted), at(0));
        let second = build(Some(&first), Some(1), &ready(Origin::Adopted), at(600));
        assert_eq!(first, second);
    }

    #[test]
    fn transition_time_moves_only_when_ready_changes() {
        let unavailable = Outcome::ApiFailed {
            step: Step::ListUsers,
            error: ApiError::Unavailable { detail: "status 503: x".into() },
        };
        let rate_limited = Outcome::ApiFailed {
            step: Step::ListUsers,
            error: ApiError::RateLimited { retry_after: None },
        };
        let first = build(None, Some(1), &unavailable, at(0));
        let second = build(Some(&first), Some(1), &rate_limited, at(10));
        assert_eq!(second.ready().unwrap().reason, "RateLimited");
        assert_eq!(second.ready().unwrap().last_transition_time, Time(at(0)));
        let third = build(Some(&second), Some(1), &ready(Origin::Created), at(20));
        assert_eq!(third.ready().unwrap().last_transition_time, Time(at(20)));
    }

    #[test]
    fn failures_keep_what_was_known_of_the_user() {
        let healthy = build(None, Some(1), &ready(Origin::Created), at(0));
        let failing = Outcome::ApiFailed {
            step: Step::ListUsers,
            error: ApiError::Unauthorized { status: 401 },
        };
        let status = build(Some(&healthy), Some(2), &failing, at(5));
        assert_eq!(status.uuid, healthy.uuid);
        assert_eq!(status.origin, Some(Origin::Created));
        assert_eq!(status.observed_generation, Some(2));
        let condition = status.ready().unwrap();
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("False", "Unauthorized")
        );
        assert_eq!(status.conditions.len(), 1);
    }

    #[test]
    fn drift_is_reported_then_cleared_when_the_user_matches() {
        let drift =
            vec![Drift { field: "lastName".into(), desired: "L".into(), actual: "K".into() }];
        let found = Box::new(Found::new(remote(), Origin::Adopted));
        let drifted = build(None, Some(1), &Outcome::Drifted(found, drift.clone()), at(0));
        assert_eq!(drifted.drift, drift);
        assert_eq!(drifted.uuid.as_deref(), Some("5b0f6a3e-2c1d-4e8f-9a7b-6c5d4e3f2a1b"));
        assert_eq!(drifted.ready().unwrap().status, "False");
        let matching = build(Some(&drifted), Some(1), &ready(Origin::Adopted), at(1));
        assert!(matching.drift.is_empty());
    }

    #[test]
    fn the_password_version_is_kept_until_a_new_one_is_sent() {
        let mut found = Found::new(remote(), Origin::Created);
        found.password_version = Some("ada-password/41".into());
        let sent = build(None, Some(1), &Outcome::Ready(Box::new(found)), at(0));
        assert_eq!(sent.password_version.as_deref(), Some("ada-password/41"));
        let later = build(Some(&sent), Some(1), &ready(Origin::Created), at(1));
        assert_eq!(later.password_version.as_deref(), Some("ada-password/41"));
    }

    #[test]
    fn paused_leaves_everything_but_the_condition() {
        let healthy = build(None, Some(1), &ready(Origin::Created), at(0));
        let paused = build(Some(&healthy), Some(2), &Outcome::Paused, at(1));
        assert_eq!(paused.uuid, healthy.uuid);
        let condition = paused.ready().unwrap();
        assert_eq!((condition.status.as_str(), condition.reason.as_str()), ("Unknown", "Paused"));
    }

    fn create_failed(error: ApiError) -> Outcome {
        Outcome::ApiFailed { step: Step::CreateUser, error }
    }

    #[test]
    fn a_create_that_may_have_landed_is_remembered_until_the_user_is_found() {
        let sent = creating(None, Some(1), at(0));
        assert_eq!(sent.ready().unwrap().reason, CREATING);
        assert_eq!(sent.create_pending, Some(true));

        let lost = create_failed(ApiError::Unavailable { detail: "status 502: x".into() });
        let after_502 = build(Some(&sent), Some(1), &lost, at(1));
        assert_eq!(after_502.create_pending, Some(true));

        let found = build(Some(&after_502), Some(1), &ready(Origin::Created), at(2));
        assert_eq!(found.create_pending, None);
    }

    #[test]
    fn a_refusal_after_a_create_that_may_have_landed_keeps_it_pending() {
        let sent = creating(None, Some(1), at(0));
        let lost = create_failed(ApiError::Unavailable { detail: "timeout".into() });
        let after_timeout = build(Some(&sent), Some(1), &lost, at(1));
        let duplicate = create_failed(ApiError::Rejected { status: 409, excerpt: "exists".into() });
        let after_409 = build(Some(&after_timeout), Some(1), &duplicate, at(2));
        assert_eq!(after_409.create_pending, Some(true));
    }

    #[test]
    fn a_refused_create_is_not_pending() {
        let sent = AttentionUserStatus::default();
        let refused = create_failed(ApiError::Rejected { status: 409, excerpt: "exists".into() });
        let status = build(Some(&sent), Some(1), &refused, at(1));
        assert_eq!(status.create_pending, None);
    }
}
