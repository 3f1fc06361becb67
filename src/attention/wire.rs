//! Request and answer bodies of the Attention API, with the field names it documents.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// A user as the Attention API answers it. Parsing is lenient: every field but `uuid` and
/// `email` may be missing, and fields this version does not know are kept in `extra`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RemoteUser {
    pub uuid: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_name: Option<String>,
    #[serde(default, rename = "primaryTeamUUID", skip_serializing_if = "Option::is_none")]
    pub primary_team_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Map<String, Value>>,
    /// Only list answers carry roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<RemoteRole>>,
    /// Only list answers carry teams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<RemoteTeam>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RemoteUser {
    /// Whether this user has the given email, compared as Attention does: ignoring case.
    pub fn has_email(&self, email: &str) -> bool {
        self.email.to_lowercase() == email.to_lowercase()
    }
}

/// A role or team in a list answer: a UUID and a name, with whatever else the API adds.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
pub struct RemoteRef {
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A role in a list answer.
pub type RemoteRole = RemoteRef;

/// A team in a list answer.
pub type RemoteTeam = RemoteRef;

/// The body of `POST /organizations/users`, with the documented mix of snake and camel case.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct NewUser {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    #[serde(rename = "roleUUID")]
    pub role_uuid: String,
    pub teams: Vec<NewTeam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
    pub seat_type: String,
}

/// The body of `PATCH /organizations/users/{userId}`: camelCase but for `seat_type`, which is
/// always sent because the API resets a missing one to `recording`. Team membership changes
/// as a difference.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(rename = "roleUUID", skip_serializing_if = "Option::is_none")]
    pub role_uuid: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub teams_to_add: Vec<NewTeam>,
    #[serde(rename = "teamUUIDsToRemove", skip_serializing_if = "Vec::is_empty")]
    pub team_uuids_to_remove: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
    #[serde(rename = "seat_type")]
    pub seat_type: String,
}

impl UserUpdate {
    /// An update that changes nothing but states the seat type, as every update must.
    pub fn keeping(seat_type: &str) -> UserUpdate {
        UserUpdate {
            first_name: None,
            last_name: None,
            role_uuid: None,
            teams_to_add: Vec::new(),
            team_uuids_to_remove: Vec::new(),
            password: None,
            seat_type: seat_type.to_owned(),
        }
    }
}

/// One team of a new user.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct NewTeam {
    pub uuid: String,
    pub primary: bool,
}

/// A user password: sent to Attention, never printed. `Debug` and `Display` show
/// `<redacted>`; only serialising it into a request body reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Password {
        Password(value.into())
    }

    /// The password itself, for redacting it from text the API answered.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Password {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The payload of an answer that may or may not be wrapped in `{"data": ...}`.
pub(crate) fn unwrap_data(body: Value) -> Value {
    match body {
        Value::Object(mut map) if map.contains_key("data") && !map.contains_key("uuid") => {
            map.remove("data").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// Decodes a one-user answer, wrapped or flat. The error says what kind of value was wrong,
/// never the value itself, which could be an echoed password.
pub(crate) fn decode_user(body: Value) -> Result<RemoteUser, String> {
    let user: RemoteUser = serde_json::from_value(unwrap_data(body))
        .map_err(|e| format!("unexpected user answer: {:?} error", e.classify()).to_lowercase())?;
    Ok(without_passwords(user))
}

/// Drops unknown fields whose name mentions a password, should the API ever echo one, so
/// that no copy of it is kept or printed.
fn without_passwords(mut user: RemoteUser) -> RemoteUser {
    user.extra.retain(|name, _| !name.to_lowercase().contains("password"));
    user
}

/// Decodes a list answer, wrapped or flat. Entries without a uuid or email cannot be
/// matched to anything and are counted in the second value instead of failing the list.
pub(crate) fn decode_users(body: Value) -> Result<(Vec<RemoteUser>, usize), String> {
    let Value::Array(entries) = unwrap_data(body) else {
        return Err("unexpected list answer: not a list of users".to_owned());
    };
    let total = entries.len();
    let users: Vec<RemoteUser> = entries
        .into_iter()
        .filter_map(|entry| serde_json::from_value(entry).ok())
        .map(without_passwords)
        .collect();
    let skipped = total - users.len();
    Ok((users, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new_user(password: Option<&str>) -> NewUser {
        NewUser {
            email: "ada@example.com".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            role_uuid: "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24".into(),
            teams: vec![NewTeam {
                uuid: "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e".into(),
                primary: true,
            }],
            password: password.map(Password::new),
            seat_type: "listener".into(),
        }
    }

    #[test]
    fn create_body_uses_the_documented_field_names() {
        let body = serde_json::to_value(new_user(Some("s3cret"))).unwrap();
        assert_eq!(
            body,
            json!({
                "email": "ada@example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "roleUUID": "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24",
                "teams": [{"uuid": "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e", "primary": true}],
                "password": "s3cret",
                "seat_type": "listener",
            })
        );
    }

    #[test]
    fn update_body_uses_the_documented_field_names() {
        let update = UserUpdate {
            first_name: Some("Ada".into()),
            role_uuid: Some("3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24".into()),
            teams_to_add: vec![NewTeam { uuid: "t-2".into(), primary: true }],
            team_uuids_to_remove: vec!["t-1".into()],
            password: Some(Password::new("n3w")),
            ..UserUpdate::keeping("listener")
        };
        assert_eq!(
            serde_json::to_value(update).unwrap(),
            json!({
                "firstName": "Ada",
                "roleUUID": "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24",
                "teamsToAdd": [{"uuid": "t-2", "primary": true}],
                "teamUUIDsToRemove": ["t-1"],
                "password": "n3w",
                "seat_type": "listener",
            })
        );
        assert_eq!(
            serde_json::to_value(UserUpdate::keeping("recording")).unwrap(),
            json!({"seat_type": "recording"}),
            "an update always states the seat type, and only what changes besides"
        );
    }

    #[test]
    fn create_body_leaves_out_a_missing_password() {
        let body = serde_json::to_value(new_user(None)).unwrap();
        assert!(body.get("password").is_none());
    }

    #[test]
    fn passwords_never_show_in_debug_or_display() {
        let user = new_user(Some("s3cret"));
        assert!(!format!("{user:?}").contains("s3cret"));
        assert_eq!(Password::new("s3cret").to_string(), "<redacted>");
    }

    #[test]
    fn wrapped_and_flat_users_decode_alike() {
        let user = json!({"uuid": "u-1", "email": "a@b.co", "firstName": "A"});
        let wrapped = decode_user(json!({"data": user.clone()})).unwrap();
        let flat = decode_user(user).unwrap();
        assert_eq!(wrapped, flat);
        assert_eq!(flat.first_name.as_deref(), Some("A"));
    }

    #[test]
    fn unknown_fields_are_kept_and_missing_optional_ones_tolerated() {
        let user = decode_user(json!({"data": {
            "uuid": "u-1", "email": "a@b.co", "seatType": "listener", "createdAt": "2026-01-01"
        }}))
        .unwrap();
        assert_eq!(user.extra.get("seatType"), Some(&json!("listener")));
        assert_eq!(user.extra.get("createdAt"), Some(&json!("2026-01-01")));
        assert_eq!(user.bot_name, None);
        assert_eq!(user.teams, None);
    }

    #[test]
    fn full_list_entries_decode_with_roles_teams_and_settings() {
        let (users, skipped) = decode_users(json!({"data": [{
            "uuid": "u-1", "email": "a@b.co", "botName": "A's Notetaker",
            "primaryTeamUUID": "t-1", "transcriptLang": "en",
            "settings": {"seat_type": "recording", "joinWhenIAmHostAndAlone": true},
            "roles": [{"name": "Member", "type": "member", "uuid": "r-1"}],
            "teams": [{"uuid": "t-1", "name": "Sales", "domain": null, "children": []}]
        }]}))
        .unwrap();
        assert_eq!(skipped, 0);
        let user = &users[0];
        assert_eq!(user.primary_team_uuid.as_deref(), Some("t-1"));
        assert_eq!(user.settings.as_ref().unwrap()["seat_type"], json!("recording"));
        assert_eq!(user.roles.as_ref().unwrap()[0].uuid.as_deref(), Some("r-1"));
        assert_eq!(user.teams.as_ref().unwrap()[0].extra["domain"], Value::Null);
    }

    #[test]
    fn list_entries_without_identity_are_skipped_and_counted() {
        let (users, skipped) = decode_users(json!([
            {"uuid": "u-1", "email": "a@b.co"},
            {"uuid": "u-2"},
            "nonsense"
        ]))
        .unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(skipped, 2);
    }

    #[test]
    fn a_list_answer_that_is_not_a_list_is_an_error() {
        assert!(decode_users(json!({"data": {"uuid": "u-1"}})).is_err());
        assert!(decode_users(json!({"message": "hello"})).is_err());
    }

    #[test]
    fn echoed_passwords_are_neither_kept_nor_quoted_in_errors() {
        let user = decode_user(json!({"uuid": "u", "email": "a@b.co", "password": "hunter2"}));
        assert!(!format!("{:?}", user.unwrap()).contains("hunter2"));
        let (users, _) =
            decode_users(json!([{"uuid": "u", "email": "a@b.co", "Password": "x1"}])).unwrap();
        assert!(users[0].extra.is_empty(), "{:?}", users[0].extra);
        let error = decode_user(json!({"uuid": "u", "email": "a@b.co", "settings": "hunter2"}));
        assert_eq!(error.unwrap_err(), "unexpected user answer: data error");
    }

    #[test]
    fn emails_match_ignoring_case() {
        let user = decode_user(json!({"uuid": "u-1", "email": "Ada@Example.com"})).unwrap();
        assert!(user.has_email("ada@example.COM"));
        assert!(!user.has_email("ada@example.org"));
    }
}
