//! Validation of create and update bodies, with the field names exactly as documented.
//!
//! Every error is a lowercase message naming the offending field; unknown fields are ignored
//! and `null` counts as absent.

use serde_json::{Map, Value};

use super::state::{SeatType, SeedTeam, SeedUser, UserPatch};

type Fields = Map<String, Value>;

/// Parses a `POST /organizations/users` body (snake_case names, except `roleUUID`).
pub(crate) fn parse_create(body: &Value) -> Result<SeedUser, String> {
    let fields = object(body)?;
    let seed = SeedUser {
        email: required_str(fields, "email")?.to_owned(),
        first_name: required_str(fields, "first_name")?.to_owned(),
        last_name: required_str(fields, "last_name")?.to_owned(),
        role_uuid: required_str(fields, "roleUUID")?.to_owned(),
        teams: teams(field(fields, "teams").ok_or("teams is required")?, "teams")?,
        seat_type: seat_type(fields)?,
        password: optional_str(fields, "password")?.map(str::to_owned),
    };
    check_seed(&seed)?;
    Ok(seed)
}

/// Checks what a user must satisfy however it arrives: a create body, a seed or a test.
pub(crate) fn check_seed(seed: &SeedUser) -> Result<(), String> {
    check_email(&seed.email)?;
    non_empty(&seed.first_name, "first_name")?;
    non_empty(&seed.last_name, "last_name")?;
    check_uuid(&seed.role_uuid, "roleUUID")?;
    if seed.teams.is_empty() {
        return Err("teams must have at least one item".to_owned());
    }
    check_teams(&seed.teams, "teams")?;
    if seed.password.as_deref() == Some("") {
        return Err("password must not be empty".to_owned());
    }
    Ok(())
}

/// Parses a `PATCH /organizations/users/{userId}` body (camelCase names, except `seat_type`).
pub(crate) fn parse_patch(body: &Value) -> Result<UserPatch, String> {
    let fields = object(body)?;
    if field(fields, "email").is_some() {
        return Err("email cannot be changed".to_owned());
    }
    let patch = UserPatch {
        first_name: optional_non_empty(fields, "firstName")?,
        last_name: optional_non_empty(fields, "lastName")?,
        password: optional_non_empty(fields, "password")?,
        bot_name: optional_non_empty(fields, "botName")?,
        deals_enabled: optional_bool(fields, "dealsEnabled")?,
        role_uuid: optional_uuid(fields, "roleUUID")?,
        teams_to_add: optional_teams(fields, "teamsToAdd")?,
        team_uuids_to_remove: uuid_list(fields, "teamUUIDsToRemove")?,
        seat_type: seat_type(fields)?.unwrap_or_default(),
    };
    Ok(patch)
}

fn object(body: &Value) -> Result<&Fields, String> {
    body.as_object().ok_or_else(|| "body must be a json object".to_owned())
}

/// The field `name`, with `null` treated as absent.
fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

fn required_str<'a>(fields: &'a Fields, name: &str) -> Result<&'a str, String> {
    optional_str(fields, name)?.ok_or_else(|| format!("{name} is required"))
}

fn optional_str<'a>(fields: &'a Fields, name: &str) -> Result<Option<&'a str>, String> {
    let Some(value) = field(fields, name) else {
        return Ok(None);
    };
    let text = value.as_str().ok_or_else(|| format!("{name} must be a string"))?;
    Ok(Some(text))
}

fn optional_non_empty(fields: &Fields, name: &str) -> Result<Option<String>, String> {
    let text = optional_str(fields, name)?;
    text.map(|t| non_empty(t, name).map(|()| t.to_owned())).transpose()
}

fn optional_bool(fields: &Fields, name: &str) -> Result<Option<bool>, String> {
    let value = field(fields, name);
    value.map(|v| v.as_bool().ok_or_else(|| format!("{name} must be a boolean"))).transpose()
}

fn optional_uuid(fields: &Fields, name: &str) -> Result<Option<String>, String> {
    let text = optional_str(fields, name)?;
    text.map(|t| check_uuid(t, name).map(|()| t.to_owned())).transpose()
}

fn seat_type(fields: &Fields) -> Result<Option<SeatType>, String> {
    let text = optional_str(fields, "seat_type")?;
    let parse = |t| SeatType::from_wire(t).ok_or("seat_type must be listener or recording");
    Ok(text.map(parse).transpose()?)
}

fn optional_teams(fields: &Fields, name: &str) -> Result<Vec<SeedTeam>, String> {
    field(fields, name).map_or(Ok(Vec::new()), |v| teams(v, name))
}

/// An array of `{"uuid", "primary"}`; `primary` may be left out and then is false.
fn teams(value: &Value, name: &str) -> Result<Vec<SeedTeam>, String> {
    let items = value.as_array().ok_or_else(|| format!("{name} must be an array"))?;
    let teams = items.iter().enumerate().map(|(i, item)| team(item, &format!("{name}[{i}]")));
    let teams = teams.collect::<Result<Vec<_>, _>>()?;
    check_teams(&teams, name)?;
    Ok(teams)
}

fn team(item: &Value, name: &str) -> Result<SeedTeam, String> {
    let fields = item.as_object().ok_or_else(|| format!("{name} must be an object"))?;
    let uuid = required_str(fields, "uuid").map_err(|e| format!("{name}.{e}"))?;
    let primary = optional_bool(fields, "primary").map_err(|e| format!("{name}.{e}"))?;
    Ok(SeedTeam { uuid: uuid.to_owned(), primary: primary.unwrap_or(false) })
}

fn check_teams(teams: &[SeedTeam], name: &str) -> Result<(), String> {
    for (i, team) in teams.iter().enumerate() {
        check_uuid(&team.uuid, &format!("{name}[{i}].uuid"))?;
        if teams[..i].iter().any(|t| t.uuid == team.uuid) {
            return Err(format!("{name} must not repeat a team uuid"));
        }
    }
    if teams.iter().filter(|t| t.primary).count() > 1 {
        return Err(format!("{name} must have at most one primary team"));
    }
    Ok(())
}

fn uuid_list(fields: &Fields, name: &str) -> Result<Vec<String>, String> {
    let Some(value) = field(fields, name) else {
        return Ok(Vec::new());
    };
    let items = value.as_array().ok_or_else(|| format!("{name} must be an array"))?;
    let uuid = |(i, item): (usize, &Value)| {
        let text = item.as_str().ok_or_else(|| format!("{name}[{i}] must be a string"))?;
        check_uuid(text, &format!("{name}[{i}]")).map(|()| text.to_owned())
    };
    items.iter().enumerate().map(uuid).collect()
}

fn non_empty(text: &str, name: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("{name} must not be empty"));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<(), String> {
    let mut parts = email.split('@');
    let valid = match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => !local.is_empty() && !domain.is_empty(),
        _ => false,
    };
    if !valid {
        return Err("email must contain exactly one @ between non-empty parts".to_owned());
    }
    Ok(())
}

/// A canonical UUID: 36 characters, hyphenated (`8-4-4-4-12` hex digits).
fn check_uuid(text: &str, name: &str) -> Result<(), String> {
    if text.len() != 36 || uuid::Uuid::try_parse(text).is_err() {
        return Err(format!("{name} must be a canonical hyphenated uuid"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TEAM_A: &str = "11111111-1111-4111-8111-111111111111";
    const TEAM_B: &str = "22222222-2222-4222-8222-222222222222";
    const ROLE: &str = "44444444-4444-4444-8444-444444444444";

    fn create_body() -> Value {
        json!({
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "roleUUID": ROLE,
            "teams": [{"uuid": TEAM_A, "primary": true}, {"uuid": TEAM_B, "primary": false}],
            "password": "pw",
            "seat_type": "listener",
            "somethingElse": 1,
        })
    }

    fn create_error(change: impl FnOnce(&mut Fields)) -> String {
        let mut body = create_body();
        change(body.as_object_mut().unwrap());
        parse_create(&body).unwrap_err()
    }

    #[test]
    fn documented_create_body_parses() {
        let seed = parse_create(&create_body()).unwrap();
        assert_eq!(seed.first_name, "Ada");
        assert_eq!(seed.role_uuid, ROLE);
        assert_eq!(seed.teams.len(), 2);
        assert!(seed.teams[0].primary);
        assert_eq!(seed.seat_type, Some(SeatType::Listener));
        assert_eq!(seed.password.as_deref(), Some("pw"));
    }

    #[test]
    fn create_defaults_optional_fields() {
        let mut body = create_body();
        let fields = body.as_object_mut().unwrap();
        fields.remove("password");
        fields.remove("seat_type");
        let seed = parse_create(&body).unwrap();
        assert_eq!((seed.seat_type, seed.password), (None, None));
    }

    #[test]
    fn camel_case_first_name_is_missing_first_name() {
        let error = create_error(|f| {
            let name = f.remove("first_name").unwrap();
            f.insert("firstName".to_owned(), name);
        });
        assert_eq!(error, "first_name is required");
    }

    #[test]
    fn create_requires_each_documented_field() {
        for name in ["email", "first_name", "last_name", "roleUUID", "teams"] {
            let error = create_error(|f| {
                f.remove(name);
            });
            assert_eq!(error, format!("{name} is required"));
        }
    }

    #[test]
    fn create_rejects_bad_values_naming_the_field() {
        let cases: [(&str, Value, &str); 8] = [
            ("email", json!("no-at-sign"), "email"),
            ("email", json!("a@b@c"), "email"),
            ("first_name", json!(""), "first_name"),
            ("last_name", json!(7), "last_name"),
            ("roleUUID", json!("84e67f54-5157-442b-a2b3-8b9c728b2fef1"), "roleUUID"),
            ("roleUUID", json!("84e67f545157442ba2b38b9c728b2fef"), "roleUUID"),
            ("teams", json!([]), "teams"),
            ("seat_type", json!("admin"), "seat_type"),
        ];
        for (name, value, expected) in cases {
            let error = create_error(|f| {
                f.insert(name.to_owned(), value);
            });
            assert!(error.starts_with(expected), "{name}: {error}");
        }
    }

    #[test]
    fn create_rejects_two_primaries_and_repeated_teams() {
        let two = create_error(|f| {
            f.insert(
                "teams".to_owned(),
                json!([{"uuid": TEAM_A, "primary": true},
                                                {"uuid": TEAM_B, "primary": true}]),
            );
        });
        assert_eq!(two, "teams must have at most one primary team");
        let repeated = create_error(|f| {
            f.insert("teams".to_owned(), json!([{"uuid": TEAM_A}, {"uuid": TEAM_A}]));
        });
        assert_eq!(repeated, "teams must not repeat a team uuid");
    }

    #[test]
    fn create_rejects_bad_team_items() {
        let bad_uuid = create_error(|f| {
            f.insert("teams".to_owned(), json!([{"uuid": "team-a"}]));
        });
        assert_eq!(bad_uuid, "teams[0].uuid must be a canonical hyphenated uuid");
        let bad_primary = create_error(|f| {
            f.insert("teams".to_owned(), json!([{"uuid": TEAM_A, "primary": "yes"}]));
        });
        assert_eq!(bad_primary, "teams[0].primary must be a boolean");
    }

    #[test]
    fn create_rejects_a_non_object_body() {
        assert_eq!(parse_create(&json!([1])).unwrap_err(), "body must be a json object");
    }

    #[test]
    fn empty_patch_resets_seat_type_only() {
        let patch = parse_patch(&json!({})).unwrap();
        assert_eq!(patch, UserPatch::default());
        assert_eq!(patch.seat_type, SeatType::Recording);
    }

    #[test]
    fn documented_patch_body_parses() {
        let body = json!({
            "firstName": "Augusta", "lastName": "King", "password": "pw", "botName": "Bot",
            "dealsEnabled": true, "roleUUID": ROLE,
            "teamsToAdd": [{"uuid": TEAM_B, "primary": true}],
            "teamUUIDsToRemove": [TEAM_A], "seat_type": "listener",
        });
        let patch = parse_patch(&body).unwrap();
        assert_eq!(patch.first_name.as_deref(), Some("Augusta"));
        assert_eq!(patch.deals_enabled, Some(true));
        assert_eq!(patch.teams_to_add[0].uuid, TEAM_B);
        assert_eq!(patch.team_uuids_to_remove, vec![TEAM_A]);
        assert_eq!(patch.seat_type, SeatType::Listener);
    }

    #[test]
    fn patch_rejects_email_and_bad_values() {
        let cases = [
            (json!({"email": "x@y"}), "email cannot be changed"),
            (json!({"dealsEnabled": "yes"}), "dealsEnabled must be a boolean"),
            (json!({"firstName": ""}), "firstName must not be empty"),
            (json!({"roleUUID": "r"}), "roleUUID must be a canonical hyphenated uuid"),
            (json!({"teamUUIDsToRemove": [1]}), "teamUUIDsToRemove[0] must be a string"),
            (json!({"teamsToAdd": {}}), "teamsToAdd must be an array"),
        ];
        for (body, expected) in cases {
            assert_eq!(parse_patch(&body).unwrap_err(), expected);
        }
    }

    #[test]
    fn null_counts_as_absent() {
        let patch = parse_patch(&json!({"firstName": null, "seat_type": null})).unwrap();
        assert_eq!(patch, UserPatch::default());
    }
}
