//! What one reconcile found or did, and the pure decisions that follow from it.

use std::time::Duration;

use crate::attention::{ApiError, RemoteUser};
use crate::crd::Origin;

/// The result of looking at one AttentionUser and acting on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The user exists in Attention and this resource manages it.
    Ready {
        user: Box<RemoteUser>,
        origin: Origin,
    },
    /// The spec cannot be sent to Attention as it stands.
    InvalidSpec(String),
    /// The password Secret is missing, lacks the key, or holds something unusable.
    SecretMissing(String),
    /// The user recorded in status no longer exists in the organisation.
    UserMissing { uuid: String },
    /// A call to Attention failed.
    ApiFailed { step: Step, error: ApiError },
}

/// The remote step that failed, named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    ListUsers,
    CreateUser,
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
            Outcome::Ready {
                origin: Origin::Created,
                ..
            } => "Created",
            Outcome::Ready {
                origin: Origin::Adopted,
                ..
            } => "Adopted",
            Outcome::InvalidSpec(_) => "InvalidSpec",
            Outcome::SecretMissing(_) => "SecretMissing",
            Outcome::UserMissing { .. } => "UserMissing",
            Outcome::ApiFailed { error, .. } => error.reason(),
        }
    }

    /// The `message` of the `Ready` condition: what happened and, for failures, what to do.
    pub fn message(&self) -> String {
        match self {
            Outcome::Ready {
                origin: Origin::Created,
                ..
            } => "the user exists in Attention; the operator created it".to_owned(),
            Outcome::Ready {
                origin: Origin::Adopted,
                ..
            } => "the user exists in Attention; it already existed with this email and was adopted"
                .to_owned(),
            Outcome::InvalidSpec(problem) => format!("the spec is invalid: {problem}"),
            Outcome::SecretMissing(problem) => {
                format!("cannot read the password: {problem}; retrying until it is there")
            }
            Outcome::UserMissing { uuid } => format!(
                "the Attention user {uuid} no longer exists in the organisation; it is not \
                 recreated automatically: delete and re-apply this resource to create it again"
            ),
            Outcome::ApiFailed { step, error } => api_failure_message(*step, error),
        }
    }

    pub fn is_ready(&self) -> bool {
        matches!(self, Outcome::Ready { .. })
    }

    /// When to look at the object again.
    pub fn next(&self) -> Next {
        match self {
            Outcome::Ready { .. } | Outcome::UserMissing { .. } => Next::Resync,
            Outcome::InvalidSpec(_) => Next::AwaitChange,
            Outcome::SecretMissing(_) => Next::Backoff { at_least: None },
            Outcome::ApiFailed { error, .. } => match error {
                ApiError::Rejected { .. } => Next::AwaitChange,
                ApiError::RateLimited { retry_after } => Next::Backoff {
                    at_least: *retry_after,
                },
                ApiError::Unauthorized { .. }
                | ApiError::NotFound
                | ApiError::Unavailable { .. } => Next::Backoff { at_least: None },
            },
        }
    }
}

fn api_failure_message(step: Step, error: &ApiError) -> String {
    let doing = match step {
        Step::ListUsers => "failed to list the organisation's users",
        Step::CreateUser => "failed to create the user",
    };
    let advice = match error {
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
        Outcome::ApiFailed {
            step: Step::CreateUser,
            error,
        }
    }

    #[test]
    fn every_outcome_has_a_distinct_reason() {
        let user: RemoteUser =
            serde_json::from_value(serde_json::json!({"uuid": "u", "email": "a@b.co"})).unwrap();
        let outcomes = [
            Outcome::Ready {
                user: Box::new(user.clone()),
                origin: Origin::Created,
            },
            Outcome::Ready {
                user: Box::new(user),
                origin: Origin::Adopted,
            },
            Outcome::InvalidSpec("x".into()),
            Outcome::SecretMissing("x".into()),
            Outcome::UserMissing { uuid: "u".into() },
            failed(ApiError::Rejected {
                status: 422,
                excerpt: "x".into(),
            }),
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
    fn spec_problems_wait_for_a_change() {
        assert_eq!(Outcome::InvalidSpec("x".into()).next(), Next::AwaitChange);
        let rejected = failed(ApiError::Rejected {
            status: 400,
            excerpt: "bad".into(),
        });
        assert_eq!(rejected.next(), Next::AwaitChange);
    }

    #[test]
    fn passing_failures_back_off_and_honour_retry_after() {
        let retry_after = Some(Duration::from_secs(30));
        assert_eq!(
            failed(ApiError::RateLimited { retry_after }).next(),
            Next::Backoff {
                at_least: retry_after
            }
        );
        let unavailable = failed(ApiError::Unavailable {
            detail: "timeout".into(),
        });
        assert_eq!(unavailable.next(), Next::Backoff { at_least: None });
        let unauthorized = failed(ApiError::Unauthorized { status: 401 });
        assert_eq!(unauthorized.next(), Next::Backoff { at_least: None });
        assert_eq!(
            Outcome::SecretMissing("x".into()).next(),
            Next::Backoff { at_least: None }
        );
    }

    #[test]
    fn messages_name_the_step_and_say_what_happens_next() {
        let rejected = failed(ApiError::Rejected {
            status: 422,
            excerpt: "role unknown".into(),
        });
        assert_eq!(
            rejected.message(),
            "failed to create the user: attention rejected the request with status 422: \
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
