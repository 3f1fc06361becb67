//! The create request for a spec, in the form the Attention API documents.

use crate::attention::{NewTeam, NewUser, Password};
use crate::crd::AttentionUserSpec;

/// The body of the create call for `spec`, with the password when one is configured.
pub fn new_user(spec: &AttentionUserSpec, password: Option<Password>) -> NewUser {
    NewUser {
        email: spec.email.clone(),
        first_name: spec.first_name.clone(),
        last_name: spec.last_name.clone(),
        role_uuid: spec.role_uuid.clone(),
        teams: spec
            .teams
            .iter()
            .map(|team| NewTeam { uuid: team.uuid.clone(), primary: team.primary })
            .collect(),
        password,
        seat_type: spec.seat_type.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{SeatType, TeamMembership};
    use serde_json::json;

    #[test]
    fn the_spec_maps_onto_the_documented_create_body() {
        let spec = AttentionUserSpec {
            email: "Ada@Example.com".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            role_uuid: "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24".into(),
            teams: vec![
                TeamMembership {
                    uuid: "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e".into(),
                    primary: false,
                },
                TeamMembership {
                    uuid: "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a".into(),
                    primary: true,
                },
            ],
            seat_type: SeatType::Listener,
            password_secret_ref: None,
            management_policy: Default::default(),
            adoption_policy: Default::default(),
            deletion_policy: None,
        };
        let body = serde_json::to_value(new_user(&spec, Some(Password::new("pw")))).unwrap();
        assert_eq!(
            body,
            json!({
                "email": "Ada@Example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "roleUUID": "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24",
                "teams": [
                    {"uuid": "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e", "primary": false},
                    {"uuid": "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a", "primary": true},
                ],
                "password": "pw",
                "seat_type": "listener",
            })
        );
    }
}
