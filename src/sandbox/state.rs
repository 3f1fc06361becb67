//! In-memory user store of the sandbox and how its users and requests look on the wire.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Text that stands in for a password wherever one would otherwise show.
pub(crate) const REDACTED: &str = "<redacted>";

/// The kind of seat a user holds (`settings.seat_type` on the wire).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeatType {
    /// A seat that only listens.
    Listener,
    /// A full seat: the API's default.
    #[default]
    Recording,
}

impl SeatType {
    /// The wire name of the seat type.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatType::Listener => "listener",
            SeatType::Recording => "recording",
        }
    }

    /// The seat type named `name` on the wire, if it is one.
    pub fn from_wire(name: &str) -> Option<SeatType> {
        match name {
            "listener" => Some(SeatType::Listener),
            "recording" => Some(SeatType::Recording),
            _ => None,
        }
    }
}

/// One team membership of a seed or create body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedTeam {
    /// The team's UUID.
    pub uuid: String,
    /// Whether this is the user's primary team.
    #[serde(default)]
    pub primary: bool,
}

/// A user put into the sandbox directly: by a test, a seed file or `POST /_sandbox/users`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedUser {
    /// Email, unique case-insensitively among users.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The user's one role.
    #[serde(rename = "roleUUID")]
    pub role_uuid: String,
    /// Team memberships, at most one primary.
    pub teams: Vec<SeedTeam>,
    /// Seat type; `recording` when absent.
    #[serde(default)]
    pub seat_type: Option<SeatType>,
    /// Password, kept in memory only and never shown.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
}

impl fmt::Debug for SeedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedUser")
            .field("email", &self.email)
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("role_uuid", &self.role_uuid)
            .field("teams", &self.teams)
            .field("seat_type", &self.seat_type)
            .field("password", &redacted(&self.password))
            .finish()
    }
}

/// A validated `PATCH` body: absent fields are `None`, except the seat type (see below).
#[derive(Clone, Default, PartialEq)]
pub(crate) struct UserPatch {
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) bot_name: Option<String>,
    pub(crate) deals_enabled: Option<bool>,
    pub(crate) role_uuid: Option<String>,
    pub(crate) teams_to_add: Vec<SeedTeam>,
    pub(crate) team_uuids_to_remove: Vec<String>,
    /// Always set: the documented quirk resets an absent `seat_type` to `recording`.
    pub(crate) seat_type: SeatType,
}

impl fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserPatch")
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("password", &redacted(&self.password))
            .field("bot_name", &self.bot_name)
            .field("deals_enabled", &self.deals_enabled)
            .field("role_uuid", &self.role_uuid)
            .field("teams_to_add", &self.teams_to_add)
            .field("team_uuids_to_remove", &self.team_uuids_to_remove)
            .field("seat_type", &self.seat_type)
            .finish()
    }
}

fn redacted(password: &Option<String>) -> Option<&'static str> {
    password.as_ref().map(|_| REDACTED)
}

/// Which form of the user object an answer carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Create and update answers: no `roles`, no `teams`.
    Single,
    /// List answers: with `roles` and `teams`.
    Listed,
}

/// A user as the sandbox keeps it.
pub(crate) struct StoredUser {
    uuid: String,
    email: String,
    first_name: String,
    last_name: String,
    bot_name: String,
    role_uuid: String,
    teams: Vec<String>,
    primary_team: Option<String>,
    seat_type: SeatType,
    deals_enabled: bool,
    password: Option<String>,
    created_at: String,
}

impl StoredUser {
    fn from_seed(seed: SeedUser, uuid: String, created_at: String) -> Self {
        let primary_team = seed.teams.iter().find(|t| t.primary).map(|t| t.uuid.clone());
        StoredUser {
            uuid,
            bot_name: format!("{}'s Notetaker", seed.first_name),
            email: seed.email,
            first_name: seed.first_name,
            last_name: seed.last_name,
            role_uuid: seed.role_uuid,
            teams: dedup(seed.teams.into_iter().map(|t| t.uuid)),
            primary_team,
            seat_type: seed.seat_type.unwrap_or_default(),
            deals_enabled: false,
            password: seed.password,
            created_at,
        }
    }

    fn has_email(&self, email: &str) -> bool {
        self.email.to_lowercase() == email.to_lowercase()
    }

    /// Applies `patch`; on error (a user left without a team) nothing changes.
    pub(crate) fn apply(&mut self, patch: UserPatch) -> Result<(), String> {
        let (teams, primary_team) = self.teams_after(&patch)?;
        self.teams = teams;
        self.primary_team = primary_team;
        replace(&mut self.first_name, patch.first_name);
        replace(&mut self.last_name, patch.last_name);
        replace(&mut self.bot_name, patch.bot_name);
        replace(&mut self.role_uuid, patch.role_uuid);
        replace(&mut self.deals_enabled, patch.deals_enabled);
        self.password = patch.password.or(self.password.take());
        self.seat_type = patch.seat_type;
        Ok(())
    }

    /// Memberships after removing, then adding; a `primary` addition becomes the primary.
    fn teams_after(&self, patch: &UserPatch) -> Result<(Vec<String>, Option<String>), String> {
        let kept = self.teams.iter().filter(|t| !patch.team_uuids_to_remove.contains(t));
        let teams = dedup(kept.chain(patch.teams_to_add.iter().map(|t| &t.uuid)).cloned());
        if teams.is_empty() {
            return Err("a user must keep at least one team".to_owned());
        }
        let added_primary = patch.teams_to_add.iter().find(|t| t.primary).map(|t| &t.uuid);
        let primary = added_primary.or(self.primary_team.as_ref());
        let primary = primary.filter(|p| teams.contains(p)).cloned();
        Ok((teams, primary))
    }

    fn primary_team_uuid(&self) -> Option<&String> {
        self.primary_team.as_ref().or(self.teams.first())
    }

    /// The user object as the API shows it.
    pub(crate) fn render(&self, organization_uuid: &str, shape: Shape) -> Value {
        let mut user = json!({
            "uuid": self.uuid,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "botName": self.bot_name,
            "primaryTeamUUID": self.primary_team_uuid(),
            "transcriptLang": "en",
            "settings": {
                "autoCalculateCRMFields": false,
                "joinWhenIAmHostAndAlone": true,
                "joinWhenIAmHostWithPeers": true,
                "joinWhenUnlicensedPeerIsHost": false,
                "realTimeCapabilitiesOFF": false,
                "seat_type": self.seat_type.as_str(),
            },
            "dealsEnabled": self.deals_enabled,
            "createdAt": self.created_at,
        });
        if let (Shape::Listed, Value::Object(fields)) = (shape, &mut user) {
            fields.insert("roles".to_owned(), json!([render_role(&self.role_uuid)]));
            let teams = self.teams.iter().map(|t| render_team(t, organization_uuid));
            fields.insert("teams".to_owned(), Value::Array(teams.collect()));
        }
        user
    }
}

fn replace<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// Keeps the first occurrence of each item, in order.
fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

fn render_role(role_uuid: &str) -> Value {
    json!({ "name": "Member", "type": "organization", "uuid": role_uuid })
}

fn render_team(team_uuid: &str, organization_uuid: &str) -> Value {
    let short = team_uuid.get(..8).unwrap_or(team_uuid);
    json!({
        "uuid": team_uuid,
        "name": format!("Team {short}"),
        "domain": "sandbox.invalid",
        "organizationUUID": organization_uuid,
        "parentTeamUUID": null,
        "children": [],
    })
}

/// Why an update did not happen.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UpdateError {
    NotFound,
    Invalid(String),
}

/// The users of the one organisation the sandbox serves, in creation order.
pub(crate) struct Store {
    organization_uuid: String,
    users: Vec<StoredUser>,
}

impl Store {
    pub(crate) fn new() -> Self {
        Store { organization_uuid: uuid::Uuid::new_v4().to_string(), users: Vec::new() }
    }

    /// Stores `seed` without any check; answers the new user's UUID.
    pub(crate) fn insert(&mut self, seed: SeedUser) -> String {
        let user = new_user(seed);
        let uuid = user.uuid.clone();
        self.users.push(user);
        uuid
    }

    /// Stores `seed` unless its email is taken; answers the create answer's user object.
    pub(crate) fn create(&mut self, seed: SeedUser) -> Option<Value> {
        if self.email_taken(&seed.email) {
            return None;
        }
        let user = new_user(seed);
        let answer = user.render(&self.organization_uuid, Shape::Single);
        self.users.push(user);
        Some(answer)
    }

    pub(crate) fn email_taken(&self, email: &str) -> bool {
        self.users.iter().any(|u| u.has_email(email))
    }

    /// Users as a list answer shows them, only members of `team` when given.
    pub(crate) fn list(&self, team: Option<&str>) -> Vec<Value> {
        let members =
            self.users.iter().filter(|u| team.is_none_or(|t| u.teams.iter().any(|m| m == t)));
        members.map(|u| u.render(&self.organization_uuid, Shape::Listed)).collect()
    }

    /// Applies `patch` to user `uuid`; answers the user as an update answer shows it.
    pub(crate) fn update(&mut self, uuid: &str, patch: UserPatch) -> Result<Value, UpdateError> {
        let user = self.users.iter_mut().find(|u| u.uuid == uuid).ok_or(UpdateError::NotFound)?;
        user.apply(patch).map_err(UpdateError::Invalid)?;
        Ok(user.render(&self.organization_uuid, Shape::Single))
    }

    /// The user `uuid` as a list answer shows it.
    pub(crate) fn get(&self, uuid: &str) -> Option<Value> {
        let user = self.users.iter().find(|u| u.uuid == uuid)?;
        Some(user.render(&self.organization_uuid, Shape::Listed))
    }

    pub(crate) fn remove(&mut self, uuid: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|u| u.uuid != uuid);
        self.users.len() != before
    }

    pub(crate) fn clear(&mut self) {
        self.users.clear();
    }

    /// True when the user with `email` (any case) has exactly `password`.
    pub(crate) fn password_matches(&self, email: &str, password: &str) -> bool {
        let user = self.users.iter().find(|u| u.has_email(email));
        user.and_then(|u| u.password.as_deref()) == Some(password)
    }
}

fn new_user(seed: SeedUser) -> StoredUser {
    let created_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    StoredUser::from_seed(seed, uuid::Uuid::new_v4().to_string(), created_at)
}

/// One API request as the sandbox received it, with any password redacted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/v2/organizations/users?teamUUID=...`.
    pub path: String,
    /// Whether the request carried the API key in an accepted form.
    pub authorized: bool,
    /// The JSON body; `None` when empty or not JSON. Passwords read `<redacted>`.
    pub body: Option<Value>,
}

impl RecordedRequest {
    pub(crate) fn new(method: &str, path: &str, authorized: bool, body: &[u8]) -> Self {
        let mut body = serde_json::from_slice::<Value>(body).ok();
        if let Some(body) = &mut body {
            redact_passwords(body);
        }
        RecordedRequest { method: method.to_owned(), path: path.to_owned(), authorized, body }
    }
}

/// Replaces the value of every key that names a password, at any depth.
pub(crate) fn redact_passwords(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if name.to_lowercase().contains("password") {
                    *field = Value::String(REDACTED.to_owned());
                } else {
                    redact_passwords(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_passwords),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEAM_A: &str = "11111111-1111-4111-8111-111111111111";
    const TEAM_B: &str = "22222222-2222-4222-8222-222222222222";
    const TEAM_C: &str = "33333333-3333-4333-8333-333333333333";
    const ROLE: &str = "44444444-4444-4444-8444-444444444444";

    fn seed(teams: &[(&str, bool)]) -> SeedUser {
        SeedUser {
            email: "Ada@Example.com".to_owned(),
            first_name: "Ada".to_owned(),
            last_name: "Lovelace".to_owned(),
            role_uuid: ROLE.to_owned(),
            teams: teams
                .iter()
                .map(|(uuid, primary)| SeedTeam { uuid: (*uuid).to_owned(), primary: *primary })
                .collect(),
            seat_type: None,
            password: Some("s3cret-pass".to_owned()),
        }
    }

    fn user(teams: &[(&str, bool)]) -> StoredUser {
        StoredUser::from_seed(seed(teams), "u-1".to_owned(), "2026-01-01T00:00:00Z".to_owned())
    }

    fn patch() -> UserPatch {
        UserPatch::default()
    }

    #[test]
    fn single_shape_has_no_roles_or_teams() {
        let shown = user(&[(TEAM_A, true)]).render("org", Shape::Single);
        assert!(shown.get("roles").is_none());
        assert!(shown.get("teams").is_none());
        assert_eq!(shown["botName"], "Ada's Notetaker");
        assert_eq!(shown["transcriptLang"], "en");
        assert_eq!(shown["settings"]["seat_type"], "recording");
        assert_eq!(shown["createdAt"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn listed_shape_has_roles_and_teams() {
        let shown = user(&[(TEAM_A, false), (TEAM_B, false)]).render("org", Shape::Listed);
        assert_eq!(shown["roles"][0]["uuid"], ROLE);
        assert_eq!(shown["teams"][1]["uuid"], TEAM_B);
        assert_eq!(shown["teams"][1]["organizationUUID"], "org");
        assert_eq!(shown["teams"][1]["children"], json!([]));
    }

    #[test]
    fn primary_team_is_the_primary_else_the_first() {
        let with_primary = user(&[(TEAM_A, false), (TEAM_B, true)]).render("o", Shape::Single);
        assert_eq!(with_primary["primaryTeamUUID"], TEAM_B);
        let without = user(&[(TEAM_A, false), (TEAM_B, false)]).render("o", Shape::Single);
        assert_eq!(without["primaryTeamUUID"], TEAM_A);
    }

    #[test]
    fn rendering_never_shows_the_password() {
        let shown = user(&[(TEAM_A, true)]).render("o", Shape::Listed).to_string();
        assert!(!shown.contains("s3cret-pass"));
    }

    #[test]
    fn absent_seat_type_resets_to_recording() {
        let mut listener = user(&[(TEAM_A, true)]);
        listener.seat_type = SeatType::Listener;
        listener.apply(patch()).unwrap();
        assert_eq!(listener.seat_type, SeatType::Recording);
    }

    #[test]
    fn patch_replaces_only_given_fields() {
        let mut ada = user(&[(TEAM_A, true)]);
        let change = UserPatch {
            last_name: Some("King".to_owned()),
            deals_enabled: Some(true),
            seat_type: SeatType::Listener,
            ..patch()
        };
        ada.apply(change).unwrap();
        assert_eq!((ada.first_name.as_str(), ada.last_name.as_str()), ("Ada", "King"));
        assert!(ada.deals_enabled);
        assert_eq!(ada.seat_type, SeatType::Listener);
        assert_eq!(ada.password.as_deref(), Some("s3cret-pass"));
    }

    #[test]
    fn added_primary_team_becomes_primary() {
        let mut ada = user(&[(TEAM_A, true)]);
        let change = UserPatch {
            teams_to_add: vec![SeedTeam { uuid: TEAM_B.to_owned(), primary: true }],
            ..patch()
        };
        ada.apply(change).unwrap();
        assert_eq!(ada.teams, vec![TEAM_A, TEAM_B]);
        assert_eq!(ada.primary_team.as_deref(), Some(TEAM_B));
    }

    #[test]
    fn removing_the_primary_falls_back_to_the_first_team() {
        let mut ada = user(&[(TEAM_A, true), (TEAM_B, false), (TEAM_C, false)]);
        let change = UserPatch { team_uuids_to_remove: vec![TEAM_A.to_owned()], ..patch() };
        ada.apply(change).unwrap();
        assert_eq!(ada.primary_team, None);
        assert_eq!(ada.primary_team_uuid().map(String::as_str), Some(TEAM_B));
    }

    #[test]
    fn removing_every_team_is_refused_and_changes_nothing() {
        let mut ada = user(&[(TEAM_A, true)]);
        let change = UserPatch {
            first_name: Some("Augusta".to_owned()),
            team_uuids_to_remove: vec![TEAM_A.to_owned()],
            ..patch()
        };
        assert!(ada.apply(change).is_err());
        assert_eq!(ada.first_name, "Ada");
        assert_eq!(ada.teams, vec![TEAM_A]);
    }

    #[test]
    fn store_refuses_duplicate_email_in_any_case() {
        let mut store = Store::new();
        assert!(store.create(seed(&[(TEAM_A, true)])).is_some());
        let mut again = seed(&[(TEAM_A, true)]);
        again.email = "ada@EXAMPLE.com".to_owned();
        assert!(store.create(again).is_none());
    }

    #[test]
    fn store_lists_members_of_a_team() {
        let mut store = Store::new();
        store.insert(seed(&[(TEAM_A, true)]));
        let mut other = seed(&[(TEAM_B, true)]);
        other.email = "grace@example.com".to_owned();
        store.insert(other);
        assert_eq!(store.list(None).len(), 2);
        let members = store.list(Some(TEAM_B));
        assert_eq!(members.len(), 1);
        assert_eq!(members[0]["email"], "grace@example.com");
    }

    #[test]
    fn store_checks_passwords_by_email_in_any_case() {
        let mut store = Store::new();
        store.insert(seed(&[(TEAM_A, true)]));
        assert!(store.password_matches("ada@example.com", "s3cret-pass"));
        assert!(!store.password_matches("ada@example.com", "wrong"));
        assert!(!store.password_matches("nobody@example.com", "s3cret-pass"));
    }

    #[test]
    fn store_update_reports_unknown_users() {
        let mut store = Store::new();
        assert_eq!(store.update("nope", patch()), Err(UpdateError::NotFound));
    }

    #[test]
    fn recorded_bodies_redact_passwords_at_any_depth() {
        let body = json!({"password": "p1", "nested": [{"newPassword": "p2"}], "email": "a@b"});
        let recorded = RecordedRequest::new("POST", "/v2/x", true, body.to_string().as_bytes());
        let shown = serde_json::to_string(&recorded).unwrap();
        assert!(!shown.contains("p1") && !shown.contains("p2"));
        assert_eq!(recorded.body.unwrap()["email"], "a@b");
    }

    #[test]
    fn recorded_non_json_bodies_are_none() {
        assert_eq!(RecordedRequest::new("GET", "/v2/x", false, b"").body, None);
        assert_eq!(RecordedRequest::new("POST", "/v2/x", false, b"<xml/>").body, None);
    }

    #[test]
    fn debug_hides_passwords() {
        let shown = format!("{:?}", seed(&[(TEAM_A, true)]));
        assert!(!shown.contains("s3cret-pass"));
        let change = UserPatch { password: Some("n3w-pass".to_owned()), ..patch() };
        assert!(!format!("{change:?}").contains("n3w-pass"));
    }
}
