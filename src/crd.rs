//! The `AttentionUser` custom resource: spec, status and the generated CRD.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every resource this operator serves.
pub const GROUP: &str = "attention.tech";

/// Name under which the operator writes (field manager) and reports (Events).
pub const MANAGER: &str = "attention.tech/operator";

/// The `Ready` condition type: the only condition this version reports.
pub const READY: &str = "Ready";

/// Finalizer that holds a resource with `deletionPolicy: Delete` until its user is deleted.
pub const FINALIZER: &str = "attention.tech/delete-user";

/// Annotation that pauses reconciliation of one resource when set to `"true"`.
pub const PAUSED_ANNOTATION: &str = "attention.tech/paused";

/// Most teams one user may be declared in; bounds the cost of the CEL rule on `teams`.
pub const MAX_TEAMS: usize = 64;

/// A hyphenated, 36-character UUID as Kubernetes and the Attention API write them.
pub const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// One address, one `@`, a dot in the domain, no spaces.
pub const EMAIL_PATTERN: &str = r"^[^@\s]+@[^@\s]+\.[^@\s]+$";

/// A user of the Attention organisation, declared as code.
///
/// The operator makes sure a user with this email exists in the organisation the API key
/// belongs to, creating it or adopting an existing one, and reports the result in `status`.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "attention.tech",
    version = "v1alpha1",
    kind = "AttentionUser",
    plural = "attentionusers",
    shortname = "atu",
    category = "attention",
    namespaced,
    status = "AttentionUserStatus",
    doc = "A user of the Attention organisation, managed by attention-operator.",
    printcolumn = r#"{"name": "Email", "type": "string", "jsonPath": ".spec.email"}"#,
    printcolumn = r#"{"name": "UUID", "type": "string", "jsonPath": ".status.uuid"}"#,
    printcolumn = r#"{"name": "Seat", "type": "string", "jsonPath": ".spec.seatType"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AttentionUserSpec {
    /// Email address of the user: its identity in Attention, compared case-insensitively.
    /// It cannot be changed once set, because the Attention API cannot change it: to move a
    /// person to another address, create a new AttentionUser.
    #[schemars(length(min = 3, max = 254), regex(pattern = EMAIL_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message(
        "email cannot be changed: the Attention API cannot change it; create a new AttentionUser"
    ))]
    pub email: String,

    /// Given name of the user.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"\S"))]
    pub first_name: String,

    /// Family name of the user.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"\S"))]
    pub last_name: String,

    /// UUID of the organisation role given to the user.
    #[serde(rename = "roleUUID")]
    #[schemars(length(max = 36), regex(pattern = UUID_PATTERN))]
    pub role_uuid: String,

    /// Teams the user belongs to: at least one, each UUID once, at most one marked primary.
    #[schemars(length(min = 1, max = MAX_TEAMS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["uuid"]))]
    #[x_kube(validation = Rule::new("self.filter(t, t.primary).size() <= 1")
        .message("at most one team can be primary"))]
    pub teams: Vec<TeamMembership>,

    /// Kind of seat the user takes: `recording` (the default) or `listener`.
    #[serde(default)]
    pub seat_type: SeatType,

    /// Secret in the same namespace holding the user's password: sent when the user is
    /// created, and again whenever the Secret changes (an adopted user keeps its own password
    /// until then). Optional. The password is never stored or shown by the operator; deleting
    /// the Secret after creation leaves the user alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,

    /// `Manage` (the default): create the user and correct any difference from this spec.
    /// `Observe`: create and change nothing; report differences in `status.drift`.
    #[serde(default)]
    pub management_policy: ManagementPolicy,

    /// What to do when a user with this email already exists and this resource has never
    /// recorded it: `Adopt` it (the default) or `Refuse` and report the conflict.
    #[serde(default)]
    pub adoption_policy: AdoptionPolicy,

    /// What deleting this resource does to the Attention user: `Retain` leaves it, `Delete`
    /// deletes it first. When unset, the operator's default applies (`Retain` unless
    /// configured otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_enum::<DeletionPolicy>")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Whether the operator acts on differences or only reports them.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ManagementPolicy {
    /// Create the user and correct differences.
    #[default]
    Manage,
    /// Change nothing; report differences.
    Observe,
}

/// What to do with a user that exists before this resource claimed it.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AdoptionPolicy {
    /// Take the existing user over.
    #[default]
    Adopt,
    /// Leave it alone and report the conflict.
    Refuse,
}

/// What deleting the resource does to the Attention user.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema, clap::ValueEnum,
)]
pub enum DeletionPolicy {
    /// Leave the Attention user in place.
    #[default]
    Retain,
    /// Delete the Attention user before the resource goes away.
    Delete,
}

/// Membership of one team.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamMembership {
    /// UUID of the team.
    #[schemars(length(max = 36), regex(pattern = UUID_PATTERN))]
    pub uuid: String,

    /// Whether this is the user's primary team. At most one team can be primary.
    #[serde(default)]
    pub primary: bool,
}

/// Seat types Attention knows.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeatType {
    /// A seat that can only listen to recordings.
    Listener,
    /// A full seat that records calls.
    #[default]
    Recording,
}

impl SeatType {
    /// The name the Attention API uses for this seat type.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatType::Listener => "listener",
            SeatType::Recording => "recording",
        }
    }
}

/// A key of a Secret in the resource's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,

    /// Key within the Secret whose value is the password.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// How the operator came to manage the user.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Origin {
    /// The operator created the user.
    Created,
    /// A user with this email already existed and the operator took it over.
    Adopted,
    /// The user it managed disappeared from Attention and the operator created it again.
    Recreated,
}

/// One field on which Attention and the spec disagree.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct Drift {
    /// The spec field, such as `lastName` or `teams`.
    pub field: String,
    /// What the spec declares.
    pub desired: String,
    /// What Attention reports.
    pub actual: String,
}

/// What the operator found or did, as last observed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttentionUserStatus {
    /// UUID of the Attention user this resource manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,

    /// Email of the Attention user this resource manages, as Attention reports it: the email
    /// this resource holds against other AttentionUsers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,

    /// Whether the operator created the user (`Created`), adopted one that already existed
    /// (`Adopted`), or created it again after it disappeared from Attention (`Recreated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_enum::<Origin>")]
    pub origin: Option<Origin>,

    /// True while a create has been sent whose result is not known (it failed in a way that
    /// may still have reached Attention). The operator looks the email up before creating
    /// again, and a user found then counts as created, not adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_pending: Option<bool>,

    /// Name of the user's note-taking bot, as Attention reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_name: Option<String>,

    /// UUID of the user's primary team, as Attention reports it.
    #[serde(default, rename = "primaryTeamUUID", skip_serializing_if = "Option::is_none")]
    pub primary_team_uuid: Option<String>,

    /// Transcript language of the user, as Attention reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_lang: Option<String>,

    /// The user's settings, exactly as Attention reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object")]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,

    /// Fields on which Attention differs from the spec, when `managementPolicy` is `Observe`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,

    /// Which version of the password Secret was last sent (`<secret>/<resourceVersion>`),
    /// never the password itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_version: Option<String>,

    /// Failed attempts to delete the Attention user while the resource is being deleted. The
    /// resource is never held for ever: see `deletionPolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_attempts: Option<u32>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Standard conditions; `Ready` says whether the user exists as declared.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl AttentionUserStatus {
    /// The `Ready` condition, if reported.
    pub fn ready(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == READY)
    }
}

/// The schema of an optional enum field, inline and nullable, described by the field's own doc
/// comment rather than the enum's (which would otherwise replace it in `kubectl explain`).
fn optional_enum<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = T::json_schema(generator);
    schema.remove("description");
    schema.insert("nullable".to_owned(), true.into());
    schema
}

fn preserved_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// The CRD as YAML, exactly as committed in `crds/`.
pub fn crd_yaml() -> String {
    let yaml = serde_yaml::to_string(&AttentionUser::crd())
        .expect("a CustomResourceDefinition always serialises to YAML");
    format!("# Generated by `attention-operator crd`; do not edit.\n{yaml}")
}
