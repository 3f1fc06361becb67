//! Where the user in Attention differs from the spec, and the update that removes the
//! difference. Only what Attention reports is compared: a field missing from its answer (the
//! create answer has no roles or teams) is never taken for a difference.

use std::collections::BTreeSet;

use crate::attention::{NewTeam, Password, RemoteRef, RemoteUser, UserUpdate};
use crate::crd::{AttentionUserSpec, Drift};

/// Every field on which `remote` differs from `spec`, in spec order.
pub fn differences(spec: &AttentionUserSpec, remote: &RemoteUser) -> Vec<Drift> {
    let mut drift = Vec::new();
    let mut compare = |field: &str, desired: &str, actual: Option<&str>| {
        if let Some(actual) = actual.filter(|actual| *actual != desired) {
            drift.push(Drift {
                field: field.into(),
                desired: desired.into(),
                actual: actual.into(),
            });
        }
    };
    compare("firstName", &spec.first_name, remote.first_name.as_deref());
    compare("lastName", &spec.last_name, remote.last_name.as_deref());
    compare("roleUUID", &spec.role_uuid, role_of(spec, remote).as_deref());
    compare(
        "teams",
        &joined(&spec_teams(spec)),
        remote_teams(remote).map(|t| joined(&t)).as_deref(),
    );
    if let Some(primary) = spec.teams.iter().find(|team| team.primary) {
        let actual = remote.primary_team_uuid.as_deref().map(str::to_lowercase);
        compare("primaryTeam", &primary.uuid.to_lowercase(), actual.as_deref());
    }
    compare("seatType", spec.seat_type.as_str(), seat_of(remote));
    drift
}

/// The update that makes `remote` match `spec` on the fields in `drift`, with `password`
/// when it must be sent; `None` when there is nothing to send.
pub fn update(
    spec: &AttentionUserSpec,
    remote: &RemoteUser,
    drift: &[Drift],
    password: Option<Password>,
) -> Option<UserUpdate> {
    if drift.is_empty() && password.is_none() {
        return None;
    }
    let differs = |field: &str| drift.iter().any(|d| d.field == field);
    let mut update = UserUpdate::keeping(spec.seat_type.as_str());
    update.first_name = differs("firstName").then(|| spec.first_name.clone());
    update.last_name = differs("lastName").then(|| spec.last_name.clone());
    update.role_uuid = differs("roleUUID").then(|| spec.role_uuid.clone());
    if differs("teams") || differs("primaryTeam") {
        let current = remote_teams(remote).unwrap_or_default();
        update.teams_to_add = teams_to_add(spec, &current, differs("primaryTeam"));
        update.team_uuids_to_remove = current.difference(&spec_teams(spec)).cloned().collect();
    }
    update.password = password;
    Some(update)
}

/// `answer`, the answer to a create or update made from `spec`, with the role and teams it
/// leaves out taken from `spec`: that call has just made them the spec's. Kept as it is, the
/// answer would hide a role or team edited soon after, compared with nothing until the next
/// list of the organisation.
pub fn with_declared_membership(mut answer: RemoteUser, spec: &AttentionUserSpec) -> RemoteUser {
    let reference = |uuid: &str| RemoteRef {
        uuid: Some(uuid.to_owned()),
        name: None,
        extra: Default::default(),
    };
    if answer.roles.is_none() {
        answer.roles = Some(vec![reference(&spec.role_uuid)]);
    }
    if answer.teams.is_none() {
        answer.teams = Some(spec.teams.iter().map(|team| reference(&team.uuid)).collect());
    }
    answer
}

/// Teams missing from Attention, and the primary team again when only its flag must move.
fn teams_to_add(
    spec: &AttentionUserSpec,
    current: &BTreeSet<String>,
    move_primary: bool,
) -> Vec<NewTeam> {
    spec.teams
        .iter()
        .filter(|team| {
            !current.contains(&team.uuid.to_lowercase()) || (team.primary && move_primary)
        })
        .map(|team| NewTeam { uuid: team.uuid.clone(), primary: team.primary })
        .collect()
}

/// The spec's role if Attention lists it among the user's roles, else what it lists.
fn role_of(spec: &AttentionUserSpec, remote: &RemoteUser) -> Option<String> {
    let roles: Vec<String> = remote.roles.as_ref()?.iter().filter_map(|r| r.uuid.clone()).collect();
    if roles.iter().any(|role| role.eq_ignore_ascii_case(&spec.role_uuid)) {
        return Some(spec.role_uuid.clone());
    }
    Some(roles.join(","))
}

fn spec_teams(spec: &AttentionUserSpec) -> BTreeSet<String> {
    spec.teams.iter().map(|team| team.uuid.to_lowercase()).collect()
}

fn remote_teams(remote: &RemoteUser) -> Option<BTreeSet<String>> {
    let teams = remote.teams.as_ref()?;
    Some(teams.iter().filter_map(|team| team.uuid.as_deref()).map(str::to_lowercase).collect())
}

fn seat_of(remote: &RemoteUser) -> Option<&str> {
    remote.settings.as_ref()?.get("seat_type")?.as_str()
}

fn joined(teams: &BTreeSet<String>) -> String {
    teams.iter().cloned().collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{SeatType, TeamMembership};
    use serde_json::json;

    const ROLE: &str = "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24";
    const OTHER_ROLE: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    const TEAM_A: &str = "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e";
    const TEAM_B: &str = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a";

    fn spec(teams: &[(&str, bool)]) -> AttentionUserSpec {
        AttentionUserSpec {
            email: "ada@example.com".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            role_uuid: ROLE.into(),
            teams: teams
                .iter()
                .map(|(uuid, primary)| TeamMembership { uuid: (*uuid).into(), primary: *primary })
                .collect(),
            seat_type: SeatType::Recording,
            password_secret_ref: None,
            management_policy: Default::default(),
            adoption_policy: Default::default(),
            deletion_policy: None,
        }
    }

    /// A user as a list answer shows it.
    fn listed(first: &str, role: &str, teams: &[&str], primary: &str, seat: &str) -> RemoteUser {
        let teams: Vec<_> = teams.iter().map(|uuid| json!({"uuid": uuid, "name": "T"})).collect();
        serde_json::from_value(json!({
            "uuid": "u-1", "email": "ada@example.com", "firstName": first, "lastName": "Lovelace",
            "roles": [{"uuid": role, "name": "Member"}], "teams": teams,
            "primaryTeamUUID": primary, "settings": {"seat_type": seat},
        }))
        .unwrap()
    }

    fn fields(drift: &[Drift]) -> Vec<&str> {
        drift.iter().map(|d| d.field.as_str()).collect()
    }

    #[test]
    fn a_matching_user_has_no_differences_and_needs_no_update() {
        let spec = spec(&[(TEAM_A, true), (TEAM_B, false)]);
        let remote = listed("Ada", ROLE, &[TEAM_B, TEAM_A], TEAM_A, "recording");
        assert_eq!(differences(&spec, &remote), []);
        assert_eq!(update(&spec, &remote, &[], None), None);
    }

    #[test]
    fn fields_missing_from_the_answer_are_not_differences() {
        let created: RemoteUser =
            serde_json::from_value(json!({"uuid": "u-1", "email": "ada@example.com"})).unwrap();
        assert_eq!(differences(&spec(&[(TEAM_A, true)]), &created), []);
    }

    #[test]
    fn names_role_and_seat_are_compared_and_sent_alone() {
        let mut spec = spec(&[(TEAM_A, true)]);
        spec.seat_type = SeatType::Listener;
        let remote = listed("Augusta", OTHER_ROLE, &[TEAM_A], TEAM_A, "recording");
        let drift = differences(&spec, &remote);
        assert_eq!(fields(&drift), ["firstName", "roleUUID", "seatType"]);
        assert_eq!(
            drift[0],
            Drift { field: "firstName".into(), desired: "Ada".into(), actual: "Augusta".into() }
        );
        let body = serde_json::to_value(update(&spec, &remote, &drift, None).unwrap()).unwrap();
        assert_eq!(body, json!({"firstName": "Ada", "roleUUID": ROLE, "seat_type": "listener"}));
    }

    #[test]
    fn team_changes_travel_as_a_difference() {
        let spec = spec(&[(TEAM_B, true)]);
        let remote = listed("Ada", ROLE, &[TEAM_A], TEAM_A, "recording");
        let drift = differences(&spec, &remote);
        assert_eq!(fields(&drift), ["teams", "primaryTeam"]);
        let body = serde_json::to_value(update(&spec, &remote, &drift, None).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "teamsToAdd": [{"uuid": TEAM_B, "primary": true}],
                "teamUUIDsToRemove": [TEAM_A],
                "seat_type": "recording",
            })
        );
    }

    #[test]
    fn moving_the_primary_flag_re_adds_that_team_as_primary() {
        let spec = spec(&[(TEAM_A, false), (TEAM_B, true)]);
        let remote = listed("Ada", ROLE, &[TEAM_A, TEAM_B], TEAM_A, "recording");
        let drift = differences(&spec, &remote);
        assert_eq!(fields(&drift), ["primaryTeam"]);
        let update = update(&spec, &remote, &drift, None).unwrap();
        assert_eq!(update.teams_to_add, [NewTeam { uuid: TEAM_B.into(), primary: true }]);
        assert!(update.team_uuids_to_remove.is_empty());
    }

    #[test]
    fn uuids_compare_ignoring_case() {
        let spec = spec(&[(&TEAM_A.to_uppercase(), true)]);
        let remote = listed("Ada", &ROLE.to_uppercase(), &[TEAM_A], TEAM_A, "recording");
        assert_eq!(differences(&spec, &remote), []);
    }

    #[test]
    fn an_answer_without_role_and_teams_is_completed_from_the_spec_it_was_made_from() {
        let spec = spec(&[(TEAM_B, true)]);
        let answer: RemoteUser = serde_json::from_value(json!({
            "uuid": "u-1", "email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace",
            "primaryTeamUUID": TEAM_B, "settings": {"seat_type": "recording"},
        }))
        .unwrap();
        let known = with_declared_membership(answer, &spec);
        assert_eq!(differences(&spec, &known), []);
        let mut edited = spec.clone();
        edited.role_uuid = OTHER_ROLE.into();
        edited.teams[0].uuid = TEAM_A.into();
        assert_eq!(fields(&differences(&edited, &known)), ["roleUUID", "teams", "primaryTeam"]);
    }

    #[test]
    fn a_listed_role_and_teams_are_kept_as_answered() {
        let listed = listed("Ada", OTHER_ROLE, &[TEAM_A], TEAM_A, "recording");
        let kept = with_declared_membership(listed.clone(), &spec(&[(TEAM_B, true)]));
        assert_eq!(kept, listed);
    }

    #[test]
    fn a_password_alone_is_sent_with_the_seat_type() {
        let spec = spec(&[(TEAM_A, true)]);
        let remote = listed("Ada", ROLE, &[TEAM_A], TEAM_A, "recording");
        let update = update(&spec, &remote, &[], Some(Password::new("n3w"))).unwrap();
        assert_eq!(
            serde_json::to_value(update).unwrap(),
            json!({"password": "n3w", "seat_type": "recording"})
        );
    }
}
