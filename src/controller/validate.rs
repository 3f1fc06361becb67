//! Checks of a spec that the CRD schema also makes, repeated here because admission can be
//! bypassed or older API servers skip CEL rules: nothing invalid is ever sent to Attention.

use std::collections::HashSet;

use crate::crd::{AttentionUserSpec, MAX_TEAMS};

const MAX_NAME: usize = 128;
const MAX_EMAIL: usize = 254;

/// Every problem of the spec, in field order, or nothing when it can be sent as it is.
pub fn problems(spec: &AttentionUserSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_email(&spec.email) {
        problems.push(format!("email {:?} is not a valid address", spec.email));
    }
    for (field, value) in [("firstName", &spec.first_name), ("lastName", &spec.last_name)] {
        if value.trim().is_empty() || value.chars().count() > MAX_NAME {
            problems.push(format!("{field} must have 1 to {MAX_NAME} characters, not only spaces"));
        }
    }
    if !is_uuid(&spec.role_uuid) {
        problems.push(format!("roleUUID {:?} is not a UUID", spec.role_uuid));
    }
    problems.extend(team_problems(spec));
    problems
}

fn team_problems(spec: &AttentionUserSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if spec.teams.is_empty() || spec.teams.len() > MAX_TEAMS {
        problems.push(format!("teams must list 1 to {MAX_TEAMS} teams"));
    }
    let mut seen = HashSet::new();
    for team in &spec.teams {
        if !is_uuid(&team.uuid) {
            problems.push(format!("team uuid {:?} is not a UUID", team.uuid));
        } else if !seen.insert(team.uuid.to_lowercase()) {
            problems.push(format!("team {} is listed more than once", team.uuid));
        }
    }
    if spec.teams.iter().filter(|team| team.primary).count() > 1 {
        problems.push("at most one team can be primary".to_owned());
    }
    problems
}

/// A hyphenated 36-character UUID, the only form the CRD schema accepts.
pub fn is_uuid(value: &str) -> bool {
    value.len() == 36 && uuid::Uuid::try_parse(value).is_ok()
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    value.len() <= MAX_EMAIL
        && !value.chars().any(char::is_whitespace)
        && !local.is_empty()
        && !domain.contains('@')
        && domain.split_once('.').is_some_and(|(host, rest)| !host.is_empty() && !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{SeatType, TeamMembership};

    const ROLE: &str = "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24";
    const TEAM_A: &str = "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e";
    const TEAM_B: &str = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a";

    fn spec() -> AttentionUserSpec {
        AttentionUserSpec {
            email: "ada@example.com".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            role_uuid: ROLE.into(),
            teams: vec![TeamMembership { uuid: TEAM_A.into(), primary: true }],
            seat_type: SeatType::Recording,
            password_secret_ref: None,
            management_policy: Default::default(),
            adoption_policy: Default::default(),
            deletion_policy: None,
        }
    }

    #[test]
    fn a_good_spec_has_no_problems() {
        assert!(problems(&spec()).is_empty());
    }

    #[test]
    fn bad_emails_are_named() {
        for email in ["ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a@b@c.io"] {
            let spec = AttentionUserSpec { email: email.into(), ..spec() };
            assert_eq!(problems(&spec), [format!("email {email:?} is not a valid address")]);
        }
    }

    #[test]
    fn blank_names_are_refused() {
        let spec =
            AttentionUserSpec { first_name: "  ".into(), last_name: String::new(), ..spec() };
        assert_eq!(problems(&spec).len(), 2);
        assert!(problems(&spec)[0].starts_with("firstName must have"));
    }

    #[test]
    fn the_documented_example_role_uuid_is_not_a_uuid() {
        let spec = AttentionUserSpec {
            role_uuid: "84e67f54-5157-442b-a2b3-8b9c728b2fef1".into(),
            ..spec()
        };
        assert_eq!(
            problems(&spec),
            ["roleUUID \"84e67f54-5157-442b-a2b3-8b9c728b2fef1\" is not a UUID"]
        );
        assert!(!is_uuid("3f1c7a525d0e4c599f7b2f6a9e0c1d24"), "the unhyphenated form is refused");
    }

    #[test]
    fn team_lists_are_checked() {
        let empty = AttentionUserSpec { teams: vec![], ..spec() };
        assert_eq!(problems(&empty), ["teams must list 1 to 64 teams"]);

        let twice = AttentionUserSpec {
            teams: vec![
                TeamMembership { uuid: TEAM_A.into(), primary: false },
                TeamMembership { uuid: TEAM_A.to_uppercase(), primary: false },
            ],
            ..spec()
        };
        assert_eq!(
            problems(&twice),
            [format!("team {} is listed more than once", TEAM_A.to_uppercase())]
        );

        let two_primaries = AttentionUserSpec {
            teams: vec![
                TeamMembership { uuid: TEAM_A.into(), primary: true },
                TeamMembership { uuid: TEAM_B.into(), primary: true },
            ],
            ..spec()
        };
        assert_eq!(problems(&two_primaries), ["at most one team can be primary"]);
    }
}
