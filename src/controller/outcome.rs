//! What one reconcile found or did, and the pure decisions that follow from it.

use std::time::Duration;

use crate::attention::{ApiError, RemoteUser};
use crate::crd::{Drift, Origin, PAUSED_ANNOTATION};

/// The result of looking at one AttentionUser and acting on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The user exists in Attention as the spec declares, and this resource manages it.
    Ready(Box<Found>),
    /// `Observe`: the user exists but differs from the spec on these fields.
    Drifted(Box<Found>, Vec<Drift>),
    /// `Observe`: no user has this email, and none is created.
    NotPresent,
    /// The spec cannot be sent to Attention as it stands.
    InvalidSpec(String),
    /// The password Secret is missing, lacks the key, or holds something unusable.
    SecretMissing(String),
    /// `Observe`: the user recorded in status no longer exists in the organisation.
    UserMissing { uuid: String },
    /// `adoptionPolicy: Refuse`, and a user with this email exists already.
    AdoptionRefused { uuid: String },
    /// Another AttentionUser (`namespace/name`) holds this email.
    Conflict { holder: String },
    /// The paused annotation is set: nothing is looked at or changed.
    Paused,
    /// A call to Attention failed.
    ApiFailed { step: Step, error: ApiError },
}

/// A user found (or just created or changed) in Attention.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub user: RemoteUser,
    pub origin: Origin,
    /// Spec fields this reconcile changed in Attention (an update), if any.
    pub changed: Vec<String>,
    /// The password version now in Attention, when this reconcile sent one.
    pub password_version: Option<String>,
}

impl Found {
    /// A user as found, with nothing changed by this reconcile.
    pub fn new(user: RemoteUser, origin: Origin) -> Found {
        Found { user, origin, changed: Vec::new(), password_version: None }
    }
}

/// The remote step that failed, named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    ListUsers,
    CreateUser,
    /// A create sent again after Attention refused the last one for this generation and the
    /// email was looked up afresh: a refusal now is no duplicate and will not pass by itself.
    CreateUserAgain,
    UpdateUser,
    DeleteUser,
}

impl Step {
    /// Whether this step sent a create.
    pub fn creates(self) -> bool {
        matches!(self, Step::CreateUser | Step::CreateUserAgain)
    }
}

/// When the next reconcile of the object should run, unless a change triggers it sooner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// All is well: check again after the resync interval, and forget past failures.
    Resync,
    /// A failure that may pass: retry after the object's next backoff delay, and no sooner
    /// than the delay the API asked for.
    Backoff { at_least: Option<Duration> },
    /// Nothing will change until the spec does: retry only rarely.
    AwaitChange,
}

impl Outcome {
    /// The `reason` of the `Ready` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Outcome::Ready(found) => match found.origin {
                Origin::Created => "Created",
                Origin::Adopted => "Adopted",
                Origin::Recreated => "Recreated",
            },
            Outcome::Drifted(..) => "Drifted",
            Outcome::NotPresent => "NotPresent",
            Outcome::InvalidSpec(_) => "InvalidSpec",
            Outcome::SecretMissing(_) => "SecretMissing",
            Outcome::UserMissing { .. } => "UserMissing",
            Outcome::AdoptionRefused { .. } => "AdoptionRefused",
            Outcome::Conflict { .. } => "Conflict",
            Outcome::Paused => "Paused",
            Outcome::ApiFailed { error, .. } => error.reason(),
        }
    }

    /// The `status` of the `Ready` condition: `Unknown` while paused.
    pub fn ready_status(&self) -> &'static str {
        match self {
            Outcome::Ready(_) => "True",
            Outcome::Paused => "Unknown",
            _ => "False",
        }
    }

    pub fn is_ready(&self) -> bool {
        matches!(self, Outcome::Ready(_))
    }

    /// Whether the reconcile failed to make the user as declared. A paused resource is not
    /// ready, but it is no failure either: someone asked for it.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Ready(_) | Outcome::Paused)
    }

    /// The `message` of the `Ready` condition: what happened and, for failures, what to do.
    pub fn message(&self) -> String {
        match self {
            Outcome::Ready(found) => ready_message(found.origin),
            Outcome::Drifted(_, drift) => {
                let fields: Vec<&str> = drift.iter().map(|d| d.field.as_str()).collect();
                format!(
                    "the user in Attention differs from the spec on {}; managementPolicy Observe \
                     changes nothing: see status.drift",
                    fields.join(", ")
                )
            }
            Outcome::NotPresent => "no user with this email exists in Attention; \
                managementPolicy Observe creates nothing"
                .to_owned(),
            Outcome::InvalidSpec(problem) => format!("the spec is invalid: {problem}"),
            Outcome::SecretMissing(problem) => {
                format!("cannot read the password: {problem}; retrying until it is there")
            }
            Outcome::UserMissing { uuid } => format!(
                "the Attention user {uuid} no longer exists in the organisation; \
                 managementPolicy Observe does not recreate it"
            ),
            Outcome::AdoptionRefused { uuid } => format!(
                "a user with this email already exists in Attention ({uuid}); adoptionPolicy \
                 Refuse leaves it alone: set adoptionPolicy Adopt to manage it"
            ),
            Outcome::Conflict { holder } => format!(
                "the AttentionUser {holder} already manages this email; this resource makes no \
                 call to Attention until that one is deleted"
            ),
            Outcome::Paused => {
                format!("reconciliation is paused by the annotation {PAUSED_ANNOTATION}: \"true\"")
            }
            Outcome::ApiFailed { step, error } => api_failure_message(*step, error),
        }
    }

    /// When to look at the object again.
    pub fn next(&self) -> Next {
        match self {
            Outcome::Ready(_)
            | Outcome::Drifted(..)
            | Outcome::NotPresent
            | Outcome::UserMissing { .. }
            | Outcome::AdoptionRefused { .. }
            | Outcome::Paused => Next::Resync,
            Outcome::InvalidSpec(_) => Next::AwaitChange,
            Outcome::SecretMissing(_) | Outcome::Conflict { .. } => {
                Next::Backoff { at_least: None }
            }
            Outcome::ApiFailed { step, error } => match error {
                // A refused create may be Attention's answer to a duplicate email: retry soon,
                // looking the email up first. Other refusals wait for a change.
                ApiError::Rejected { .. } if *step == Step::CreateUser => {
                    Next::Backoff { at_least: None }
                }
                // Refused again after a fresh lookup: other refusals wait for a change too.
                ApiError::Rejected { .. } => Next::AwaitChange,
                ApiError::RateLimited { retry_after } => Next::Backoff { at_least: *retry_after },
                ApiError::Unauthorized { .. }
                | ApiError::NotFound
                | ApiError::Unavailable { .. } => Next::Backoff { at_least: None },
            },
        }
    }
}

fn ready_message(origin: Origin) -> String {
    let how = match origin {
        Origin::Created => "the operator created it",
        Origin::Adopted => "it already existed with this email and was adopted",
        Origin::Recreated => "it had disappeared from Attention and the operator created it again",
    };
    format!("the user exists in Attention as declared; {how}")
}

fn api_failure_message(step: Step, error: &ApiError) -> String {
    let doing = match step {
        Step::ListUsers => "failed to list the organisation's users",
        Step::CreateUser | Step::CreateUserAgain => "failed to create the user",
        Step::UpdateUser => "failed to update the user",
        Step::DeleteUser => "failed to delete the user",
    };
    let advice = match error {
        ApiError::Rejected { .. } if step == Step::CreateUser => {
            "; the email is looked up again before any retry, as Attention may refuse a \
             duplicate this way"
        }
        ApiError::Rejected { .. } if step == Step::CreateUserAgain => {
            "; refused again although no user has this email: will not succeed until the spec \
             changes"
        }
        ApiError::Rejected { .. } => "; will not succeed until the spec changes",
        ApiError::Unauthorized { .. } => "; check the operator's API key, retrying",
        ApiError::NotFound => "; check the operator's API URL, retrying",
        ApiError::RateLimited { .. } | ApiError::Unavailable { .. } => "; retrying",
    };
    format!("{doing}: {error}{advice}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(error: ApiError) -> Outcome {
        Outcome::ApiFailed { step: Step::CreateUser, error }
    }

    #[test]
    fn every_outcome_has_a_distinct_reason() {
        let user: RemoteUser =
            serde_json::from_value(serde_json::json!({"uuid": "u", "email": "a@b.co"})).unwrap();
        let found = |origin| Box::new(Found::new(user.clone(), origin));
        let outcomes = [
            Outcome::Ready(found(Origin::Created)),
            Outcome::Ready(found(Origin::Adopted)),
            Outcome::Ready(found(Origin::Recreated)),
            Outcome::Drifted(found(Origin::Adopted), vec![]),
            Outcome::NotPresent,
            Outcome::InvalidSpec("x".into()),
            Outcome::SecretMissing("x".into()),
            Outcome::UserMissing { uuid: "u".into() },
            Outcome::AdoptionRefused { uuid: "u".into() },
            Outcome::Conflict { holder: "a/b".into() },
            Outcome::Paused,
            failed(ApiError::Rejected { status: 422, excerpt: "x".into() }),
            failed(ApiError::Unauthorized { status: 401 }),
            failed(ApiError::RateLimited { retry_after: None }),
            failed(ApiError::Unavailable { detail: "x".into() }),
        ];
        let mut reasons: Vec<_> = outcomes.iter().map(Outcome::reason).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), outcomes.len());
    }

    #[test]
    fn paused_is_neither_ready_nor_failed() {
        assert_eq!(Outcome::Paused.ready_status(), "Unknown");
        assert_eq!(Outcome::Conflict { holder: "a/b".into() }.ready_status(), "False");
        assert_eq!(Outcome::Paused.next(), Next::Resync);
        assert!(!Outcome::Paused.is_failure() && !Outcome::Paused.is_ready());
        assert!(Outcome::Conflict { holder: "a/b".into() }.is_failure());
    }

    #[test]
    fn a_conflict_names_the_holder_and_is_retried() {
        let conflict = Outcome::Conflict { holder: "team-a/ada".into() };
        assert!(conflict.message().starts_with("the AttentionUser team-a/ada already manages"));
        assert_eq!(conflict.next(), Next::Backoff { at_least: None });
    }

    #[test]
    fn drift_lists_the_fields_that_differ() {
        let user: RemoteUser =
            serde_json::from_value(serde_json::json!({"uuid": "u", "email": "a@b.co"})).unwrap();
        let drift = ["lastName", "teams"].map(|field| Drift {
            field: field.into(),
            desired: "d".into(),
            actual: "a".into(),
        });
        let outcome = Outcome::Drifted(Box::new(Found::new(user, Origin::Adopted)), drift.to_vec());
        assert!(outcome.message().contains("differs from the spec on lastName, teams"));
        assert_eq!(outcome.ready_status(), "False");
    }

    #[test]
    fn spec_problems_wait_for_a_change() {
        assert_eq!(Outcome::InvalidSpec("x".into()).next(), Next::AwaitChange);
        let error = ApiError::Rejected { status: 400, excerpt: "bad".into() };
        let rejected = Outcome::ApiFailed { step: Step::UpdateUser, error: error.clone() };
        assert_eq!(rejected.next(), Next::AwaitChange);
        assert_eq!(failed(error.clone()).next(), Next::Backoff { at_least: None }, "a duplicate?");
        let again = Outcome::ApiFailed { step: Step::CreateUserAgain, error };
        assert_eq!(again.next(), Next::AwaitChange, "refused again after a fresh lookup");
        assert!(again.message().ends_with("will not succeed until the spec changes"));
        let timed_out = ApiError::Unavailable { detail: "timeout".into() };
        let again = Outcome::ApiFailed { step: Step::CreateUserAgain, error: timed_out };
        assert_eq!(again.next(), Next::Backoff { at_least: None }, "an outage still passes");
    }

    #[test]
    fn passing_failures_back_off_and_honour_retry_after() {
        let retry_after = Some(Duration::from_secs(30));
        assert_eq!(
            failed(ApiError::RateLimited { retry_after }).next(),
            Next::Backoff { at_least: retry_after }
        );
        let unavailable = failed(ApiError::Unavailable { detail: "timeout".into() });
        assert_eq!(unavailable.next(), Next::Backoff { at_least: None });
        let unauthorized = failed(ApiError::Unauthorized { status: 401 });
        assert_eq!(unauthorized.next(), Next::Backoff { at_least: None });
        assert_eq!(Outcome::SecretMissing("x".into()).next(), Next::Backoff { at_least: None });
    }

    #[test]
    fn messages_name_the_step_and_say_what_happens_next() {
        let error = ApiError::Rejected { status: 422, excerpt: "role unknown".into() };
        assert_eq!(
            failed(error.clone()).message(),
            "failed to create the user: attention rejected the request with status 422: \
             role unknown; the email is looked up again before any retry, as Attention may \
             refuse a duplicate this way"
        );
        let updating = Outcome::ApiFailed { step: Step::UpdateUser, error };
        assert_eq!(
            updating.message(),
            "failed to update the user: attention rejected the request with status 422: \
             role unknown; will not succeed until the spec changes"
        );
        let listing = Outcome::ApiFailed {
            step: Step::ListUsers,
            error: ApiError::Unauthorized { status: 401 },
        };
        assert_eq!(
            listing.message(),
            "failed to list the organisation's users: attention refused the API key with \
             status 401; check the operator's API key, retrying"
        );
    }
}
