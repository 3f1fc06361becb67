//! The generated CRD: committed copy up to date, admission rules that say what they refuse,
//! and CEL rules that every Kubernetes from 1.24 on accepts.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use attention_operator::crd::{AttentionUser, EMAIL_PATTERN, UUID_PATTERN, crd_yaml};
use kube::CustomResourceExt;
use kube_cel::{Validator, compile_schema, estimate_rule_cost};
use serde::Deserialize;
use serde_json::{Value, json};

const COMMITTED: &str = "crds/attentionuser.yaml";
const TEAM_A: &str = "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e";
const TEAM_B: &str = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a";

fn schema() -> Value {
    let crd = serde_json::to_value(AttentionUser::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn object(email: &str, teams: Value) -> Value {
    json!({
        "apiVersion": "attention.tech/v1alpha1",
        "kind": "AttentionUser",
        "metadata": {"name": "ada", "namespace": "team-a"},
        "spec": {
            "email": email,
            "firstName": "Ada",
            "lastName": "Lovelace",
            "roleUUID": "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24",
            "teams": teams,
        }
    })
}

/// Messages of the CEL rules `object` breaks, as the API server would report them.
fn refusals(object: &Value, old: Option<&Value>) -> Vec<String> {
    match Validator::new().validate(&schema(), object, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.as_slice().iter().map(|e| e.message.clone()).collect(),
    }
}

/// Every schema node carrying `x-kubernetes-validations`, with its path.
fn nodes_with_rules(node: &Value, path: String, found: &mut Vec<(String, Value)>) {
    if node.get("x-kubernetes-validations").is_some() {
        found.push((path.clone(), node.clone()));
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            nodes_with_rules(child, format!("{path}.{name}"), found);
        }
    }
    if let Some(items) = node.get("items") {
        nodes_with_rules(items, format!("{path}[]"), found);
    }
}

fn rule_nodes() -> Vec<(String, Value)> {
    let mut found = Vec::new();
    nodes_with_rules(&schema(), String::new(), &mut found);
    found
}

/// Paths of strings without maxLength and lists without maxItems at or below `node`.
fn unbounded(node: &Value, path: &str) -> Vec<String> {
    let mut missing = Vec::new();
    match node.get("type").and_then(Value::as_str) {
        Some("string") if node.get("maxLength").is_none() && node.get("enum").is_none() => {
            missing.push(path.to_owned());
        }
        Some("array") if node.get("maxItems").is_none() => missing.push(path.to_owned()),
        _ => {}
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            missing.extend(unbounded(child, &format!("{path}.{name}")));
        }
    }
    if let Some(items) = node.get("items") {
        missing.extend(unbounded(items, &format!("{path}[]")));
    }
    missing
}

#[test]
fn committed_crd_matches_the_rust_types() {
    let committed = std::fs::read_to_string(COMMITTED).unwrap();
    assert!(
        committed == crd_yaml(),
        "{COMMITTED} is out of date: run `make generate` (cargo run -- crd > {COMMITTED})"
    );
}

#[test]
fn crd_names_columns_and_status_subresource() {
    let crd = serde_json::to_value(AttentionUser::crd()).unwrap();
    assert_eq!(crd["metadata"]["name"], "attentionusers.attention.tech");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["atu"]));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|column| column["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Email", "UUID", "Seat", "Ready", "Reason", "Age"]);
}

#[test]
fn every_spec_and_status_field_is_documented_by_its_own_comment() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/crd.rs")).unwrap();
    let schema = schema();
    for (part, type_name) in [("spec", "AttentionUserSpec"), ("status", "AttentionUserStatus")] {
        let properties = schema["properties"][part]["properties"].as_object().unwrap();
        for (name, field) in properties {
            let description = field["description"].as_str().unwrap_or("");
            assert!(!description.is_empty(), "{part}.{name} has no description");
            let comment = field_comment(&source, type_name, &snake_case(name));
            assert_eq!(words(description), words(&comment), "{part}.{name}");
        }
    }
}

/// The doc comment above `pub <field>:` in `pub struct <type_name>` of `source`.
fn field_comment(source: &str, type_name: &str, field: &str) -> String {
    let body = &source[source.find(&format!("pub struct {type_name} {{")).unwrap()..];
    let body = &body[..body.find("\n}").unwrap()];
    let lines: Vec<&str> = body.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| l.starts_with(&format!("pub {field}:"))).unwrap();
    // Up to the blank line (or the struct's opening) before the field: comment and attributes.
    let above = lines[..at].iter().rev().take_while(|l| !l.is_empty() && !l.ends_with('{'));
    let mut comment: Vec<&str> =
        above.filter_map(|l| l.strip_prefix("///")).map(str::trim).collect();
    comment.reverse();
    comment.join(" ")
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_lowercase();
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

#[test]
fn a_valid_user_passes_the_cel_rules() {
    let teams = json!([{"uuid": TEAM_A, "primary": true}, {"uuid": TEAM_B}]);
    assert!(refusals(&object("ada@example.com", teams), None).is_empty());
}

#[test]
fn two_primary_teams_are_refused_with_a_plain_message() {
    let teams = json!([{"uuid": TEAM_A, "primary": true}, {"uuid": TEAM_B, "primary": true}]);
    assert_eq!(
        refusals(&object("ada@example.com", teams), None),
        ["at most one team can be primary"]
    );
}

#[test]
fn the_email_cannot_be_changed() {
    let teams = json!([{"uuid": TEAM_A, "primary": true}]);
    let old = object("ada@example.com", teams.clone());
    let same = object("ada@example.com", json!([{"uuid": TEAM_B}]));
    assert!(refusals(&same, Some(&old)).is_empty());
    let moved = object("ada@example.org", teams);
    let refused = refusals(&moved, Some(&old));
    assert_eq!(refused.len(), 1);
    assert!(refused[0].starts_with("email cannot be changed"), "{refused:?}");
}

#[test]
fn cel_rules_use_only_fields_kubernetes_1_24_knows() {
    for (path, node) in rule_nodes() {
        for rule in node["x-kubernetes-validations"].as_array().unwrap() {
            let mut keys: Vec<&str> =
                rule.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["message", "rule"], "rule at {path} uses newer fields");
        }
    }
}

#[test]
fn everything_a_cel_rule_touches_is_bounded() {
    let nodes = rule_nodes();
    assert!(nodes.len() >= 2, "expected rules on spec.email and spec.teams");
    for (path, node) in nodes {
        assert_eq!(unbounded(&node, &path), Vec::<String>::new());
        let compiled = compile_schema(&node);
        for rule in node["x-kubernetes-validations"].as_array().unwrap() {
            let rule = rule["rule"].as_str().unwrap();
            // Cost and bounds only: kube-cel's scope check mistakes the variables of CEL
            // macros such as `filter(t, ...)` for unknown names.
            let warnings = estimate_rule_cost(rule, &compiled);
            assert!(warnings.is_empty(), "{path}: {rule}: {warnings:?}");
        }
    }
}

#[test]
fn teams_are_a_map_keyed_by_uuid_so_duplicates_are_refused() {
    let teams = &schema()["properties"]["spec"]["properties"]["teams"];
    assert_eq!(teams["x-kubernetes-list-type"], "map");
    assert_eq!(teams["x-kubernetes-list-map-keys"], json!(["uuid"]));
    assert_eq!(teams["minItems"], 1);
}

#[test]
fn schema_patterns_refuse_bad_emails_and_uuids() {
    let email = regex::Regex::new(EMAIL_PATTERN).unwrap();
    assert!(email.is_match("ada@example.com"));
    for bad in ["ada", "ada@example", "a b@example.com", "ada@@example.com"] {
        assert!(!email.is_match(bad), "{bad}");
    }
    let uuid = regex::Regex::new(UUID_PATTERN).unwrap();
    assert!(uuid.is_match(TEAM_A));
    assert!(
        !uuid.is_match("84e67f54-5157-442b-a2b3-8b9c728b2fef1"),
        "the API doc's 37-char example"
    );
    assert!(!uuid.is_match("8b0e2d6c1a4f4e3b9c5d7f2a1b3c4d5e"));
}

#[test]
fn example_users_are_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir("examples/users").unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value =
                Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if value["kind"] != "AttentionUser" {
                continue;
            }
            let user: AttentionUser = serde_json::from_value(value.clone()).unwrap();
            let problems = attention_operator::controller::spec_problems(&user.spec);
            assert!(problems.is_empty(), "{}: {problems:?}", path.display());
            assert!(refusals(&value, None).is_empty(), "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} example users found");
}
