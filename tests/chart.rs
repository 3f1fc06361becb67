//! Packaging checks that need neither helm nor a cluster: the chart's values and schema, its
//! copy of the CRD, its RBAC against `rbac::REQUIRED`, the Deployment's settings and
//! hardening, the Dockerfile, the GitOps examples, and the Argo CD health check run in Lua.
//! What only helm or a cluster can check is listed in charts/attention-operator/README.md.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use attention_operator::attention::{ApiError, RemoteUser};
use attention_operator::cli::{API_KEY_ENV, Cli};
use attention_operator::controller::{Found, Outcome, Step};
use attention_operator::crd::{AttentionUser, Origin, UUID_PATTERN};
use attention_operator::rbac::{Access, LEADER_ELECTION, REQUIRED};
use clap::{CommandFactory, Parser};
use kube::CustomResourceExt;
use mlua::{Lua, LuaOptions, StdLib, Table};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

const CHART: &str = "charts/attention-operator";
const KEY_FILE_ENV: &str = "ATTENTION_API_KEY_FILE";
/// Settings the operator announced but whose flag may not be merged yet: the chart sets them
/// already. Once src/cli.rs has them, they are checked like every other.
const ANNOUNCED: &[&str] = &[];

// ---------------------------------------------------------------------------------------------
// Reading the repository

fn path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn yaml(relative: &str) -> Value {
    serde_yaml::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn files_in(relative: &str, extension: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(path(relative))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(extension))
        .map(|name| format!("{relative}/{name}"))
        .collect();
    files.sort();
    files
}

fn values() -> Value {
    yaml(&format!("{CHART}/values.yaml"))
}

fn schema() -> Value {
    serde_json::from_str(&read(&format!("{CHART}/values.schema.json"))).unwrap()
}

fn schema_errors(instance: &Value) -> Vec<String> {
    let schema = schema();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

/// `base` with `overlay` merged in, maps key by key, as helm merges values files.
fn merged(base: &Value, overlay: &Value) -> Value {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            let mut out = base.clone();
            for (key, value) in overlay {
                let merged_value = match base.get(key) {
                    Some(old) => merged(old, value),
                    None => value.clone(),
                };
                out.insert(key.clone(), merged_value);
            }
            Value::Object(out)
        }
        _ => overlay.clone(),
    }
}

fn at<'a>(value: &'a Value, dotted: &str) -> &'a Value {
    dotted.split('.').fold(value, |node, key| &node[key])
}

// ---------------------------------------------------------------------------------------------
// Reading templates without helm

/// A chart template made parseable YAML: comments and lines holding nothing but directives
/// are dropped, every other `{{ ... }}` becomes a `__TPL_n__` placeholder whose directive is
/// `directives[n]`. Enough for templates whose structure does not depend on directives.
struct Template {
    text: String,
    docs: Vec<Value>,
    directives: Vec<String>,
}

impl Template {
    fn load(name: &str) -> Template {
        let text = read(&format!("{CHART}/templates/{name}"));
        let comment = Regex::new(r"(?s)\{\{-?\s*/\*.*?\*/\s*-?\}\}").unwrap();
        let directive = Regex::new(r"\{\{-?\s*(.*?)\s*-?\}\}").unwrap();
        let uncommented = comment.replace_all(&text, "");
        let mut directives = Vec::new();
        let mut body = String::new();
        for line in uncommented.lines() {
            if directive.is_match(line) && directive.replace_all(line, "").trim().is_empty() {
                continue;
            }
            let line = directive.replace_all(line, |found: &regex::Captures| {
                directives.push(found[1].to_owned());
                format!("__TPL_{}__", directives.len() - 1)
            });
            body.push_str(&line);
            body.push('\n');
        }
        let docs = serde_yaml::Deserializer::from_str(&body)
            .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}\n{body}")))
            .filter(|doc| !doc.is_null())
            .collect();
        Template { text, docs, directives }
    }

    /// The only document of the template.
    fn doc(&self) -> &Value {
        assert_eq!(self.docs.len(), 1, "one document expected");
        &self.docs[0]
    }

    /// `value` as the template writes it: every placeholder in it back as its directive.
    fn source_of(&self, value: &Value) -> String {
        let placeholder = Regex::new(r"__TPL_(\d+)__").unwrap();
        let text = value.as_str().unwrap_or_else(|| panic!("not text: {value}"));
        placeholder
            .replace_all(text, |found: &regex::Captures| {
                format!("{{{{ {} }}}}", self.directives[found[1].parse::<usize>().unwrap()])
            })
            .into_owned()
    }

    /// The directive that `value`, a placeholder, stands for.
    fn directive(&self, value: &Value) -> &str {
        let text = value.as_str().unwrap_or_else(|| panic!("not templated: {value}"));
        let index = text
            .strip_prefix("__TPL_")
            .and_then(|rest| rest.strip_suffix("__"))
            .unwrap_or_else(|| panic!("not templated: {text}"));
        &self.directives[index.parse::<usize>().unwrap()]
    }
}

fn container(deployment: &Template) -> &Value {
    let containers = deployment.doc()["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn env(deployment: &Template) -> BTreeMap<String, Value> {
    container(deployment)["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["name"].as_str().unwrap().to_owned(), entry.clone()))
        .collect()
}

/// The value helm would render for an env directive, from `values`; only the forms the
/// Deployment uses are known, and any other fails the test so that this is kept in step.
fn render(directive: &str, values: &Value) -> Option<String> {
    let scalar = |dotted: &str| match at(values, dotted) {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        other => panic!("{dotted} is not a scalar: {other}"),
    };
    let simple = Regex::new(r"^\.Values\.([\w.]+)( \| int)? \| quote$").unwrap();
    let joined = Regex::new(r#"^join "," \.Values\.([\w.]+) \| quote$"#).unwrap();
    let address =
        Regex::new(r#"^printf "%s:%d" \.Values\.([\w.]+) \(int \.Values\.([\w.]+)\) \| quote$"#)
            .unwrap();
    if let Some(found) = simple.captures(directive) {
        return Some(scalar(&found[1]));
    }
    if let Some(found) = joined.captures(directive) {
        let items = at(values, &found[1]).as_array().unwrap();
        let names: Vec<&str> = items.iter().map(|item| item.as_str().unwrap()).collect();
        return (!names.is_empty()).then(|| names.join(","));
    }
    if let Some(found) = address.captures(directive) {
        return Some(format!("{}:{}", scalar(&found[1]), scalar(&found[2])));
    }
    panic!("unknown env directive form: {directive}");
}

/// Every environment variable of `attention-operator run` with its long flag: from clap, and
/// from the `env = "..."` attributes of src/cli.rs in case one is read outside clap.
fn operator_env() -> BTreeMap<String, Option<String>> {
    let command = Cli::command();
    let run = command.find_subcommand("run").unwrap();
    let mut found: BTreeMap<String, Option<String>> = run
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_string_lossy().into_owned();
            Some((env, arg.get_long().map(str::to_owned)))
        })
        .collect();
    let attribute = Regex::new(r#"env\s*=\s*"([A-Z0-9_]+)""#).unwrap();
    for name in attribute.captures_iter(&read("src/cli.rs")) {
        found.entry(name[1].to_owned()).or_insert(None);
    }
    assert!(found.contains_key("ATTENTION_API_URL"), "{found:?}");
    found
}

/// `run` parsed from the env values the Deployment would get with `values`, as flags.
fn run_args_from(values: &Value, skip: &[&str]) -> Result<String, clap::Error> {
    let deployment = Template::load("deployment.yaml");
    let flags = operator_env();
    let mut argv = vec!["attention-operator".to_owned(), "run".to_owned()];
    for (name, entry) in env(&deployment) {
        let Some(Some(long)) = flags.get(&name) else {
            continue;
        };
        if skip.contains(&name.as_str()) || entry.get("value").is_none() {
            continue;
        }
        let value = match entry["value"].as_str() {
            Some(text) if text.starts_with("__TPL_") => {
                render(deployment.directive(&entry["value"]), values)
            }
            Some(text) => Some(text.to_owned()),
            None => panic!("{name} has a value that is not a string"),
        };
        if let Some(value) = value {
            argv.push(format!("--{long}={value}"));
        }
    }
    Cli::try_parse_from(argv).map(|cli| format!("{:?}", cli.command))
}

// ---------------------------------------------------------------------------------------------
// Values and schema

#[test]
fn values_yaml_satisfies_its_schema() {
    let schema = schema();
    assert!(jsonschema::meta::is_valid(&schema), "not a valid JSON Schema");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema_errors(&values()), Vec::<String>::new());
}

#[test]
fn schema_refuses_wrong_types_unknown_keys_and_unsafe_choices() {
    let cases = [
        ("unknown top-level key", json!({"replicas": 1})),
        ("typo in config", json!({"config": {"resyncIntervall": "1m"}})),
        ("number as text", json!({"config": {"concurrency": "four"}})),
        ("zero concurrency", json!({"config": {"concurrency": 0}})),
        ("unknown auth scheme", json!({"config": {"authScheme": "basic"}})),
        ("duration without unit", json!({"config": {"resyncInterval": "600"}})),
        ("two replicas without leader election", json!({"replicaCount": 2})),
        ("lease name that is no DNS name", json!({"leaderElection": {"leaseName": "Lease_1"}})),
        ("leader election as text", json!({"leaderElection": {"enabled": "yes"}})),
        ("created Secret without a key", json!({"apiKey": {"create": true}})),
        ("no Secret at all", json!({"apiKey": {"existingSecret": ""}})),
        ("key as an extra env var", json!({"extraEnv": [{"name": "ATTENTION_API_KEY"}]})),
        ("namespace that is no DNS label", json!({"watchNamespaces": ["Team_A"]})),
        ("pull policy", json!({"image": {"pullPolicy": "Sometimes"}})),
        ("port", json!({"metrics": {"port": 70000}})),
        ("IPv6 address without brackets", json!({"metrics": {"bindAddress": "::"}})),
        ("host name as bind address", json!({"metrics": {"bindAddress": "localhost"}})),
        (
            "scrape interval with a space",
            json!({"metrics": {"serviceMonitor": {"interval": "1m 30s"}}}),
        ),
        ("extra env value that is no text", json!({"extraEnv": [{"name": "X", "value": 1}]})),
    ];
    for (what, overlay) in cases {
        let candidate = merged(&values(), &overlay);
        assert!(!schema_errors(&candidate).is_empty(), "accepted: {what}");
    }
    let trial = json!({
        "apiKey": {"create": true, "value": "k"},
        "watchNamespaces": ["team-a"],
        "global": {"imageRegistry": "registry.example.com"},
        "metrics": {"bindAddress": "[::]", "serviceMonitor": {"interval": "1m30s"}},
        "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
        "replicaCount": 3,
        "leaderElection": {"enabled": true, "leaseNamespace": "platform"},
    });
    assert_eq!(schema_errors(&merged(&values(), &trial)), Vec::<String>::new());
}

#[test]
fn durations_the_schema_accepts_are_ones_the_operator_parses() {
    let schema = schema();
    let duration = jsonschema::draft7::new(&schema["definitions"]["duration"]).unwrap();
    for good in ["30s", "10m", "1h", "1h 30m", "1h30m", "2d", "500ms"] {
        assert!(duration.is_valid(&json!(good)), "schema refuses {good}");
        assert!(humantime::parse_duration(good).is_ok(), "operator refuses {good}");
    }
    for bad in ["600", "soon", "10 minutes", "-5m", ""] {
        assert!(!duration.is_valid(&json!(bad)), "schema accepts {bad}");
    }
}

/// Every value in values.yaml has a `# --` comment right above it, or sits inside a block
/// whose key has one (like `resources`). Plain `#` comments head groups and do not count.
#[test]
fn every_value_in_values_yaml_is_commented() {
    let key = Regex::new(r"^(\s*)([A-Za-z][\w.]*):(.*)$").unwrap();
    let text = read(&format!("{CHART}/values.yaml"));
    let lines: Vec<&str> = text.lines().collect();
    let documented_above = |number: usize| {
        lines[..number]
            .iter()
            .rev()
            .take_while(|line| line.trim_start().starts_with('#'))
            .any(|line| line.trim_start().starts_with("# --"))
    };
    let mut blocks: Vec<(usize, bool)> = Vec::new();
    let mut undocumented = Vec::new();
    for (number, line) in lines.iter().enumerate() {
        let Some(found) = key.captures(line) else {
            continue;
        };
        let indent = found[1].len();
        blocks.retain(|(outer, _)| *outer < indent);
        let documented = documented_above(number) || blocks.iter().any(|(_, whole)| *whole);
        let is_block = found[3].trim().is_empty();
        if !is_block && !documented {
            undocumented.push(found[2].to_owned());
        }
        blocks.push((indent, documented));
    }
    assert_eq!(undocumented, Vec::<String>::new());
}

/// Every value of a structured part of values.yaml (where the schema lists the keys) is read
/// by some template: no dead settings.
#[test]
fn every_value_is_used_by_a_template() {
    let reference = Regex::new(r"\.Values\.([\w.]*\w)").unwrap();
    let mut referenced = BTreeSet::new();
    for file in files_in(&format!("{CHART}/templates"), "") {
        for found in reference.captures_iter(&read(&file)) {
            referenced.insert(found[1].to_owned());
        }
    }
    // A value is used when a template names it, or names a map holding it as a whole (as
    // `toYaml .Values.resources` does).
    let used = |dotted: &str| {
        let mut prefix = String::new();
        dotted.split('.').any(|part| {
            prefix = if prefix.is_empty() { part.to_owned() } else { format!("{prefix}.{part}") };
            referenced.contains(&prefix)
        })
    };
    let mut unused = Vec::new();
    let mut pending = vec![(String::new(), values(), schema())];
    while let Some((prefix, node, node_schema)) = pending.pop() {
        for (key, value) in node.as_object().unwrap() {
            let dotted = format!("{prefix}{key}");
            let child_schema = &node_schema["properties"][key];
            if child_schema["additionalProperties"] == false {
                pending.push((format!("{dotted}."), value.clone(), child_schema.clone()));
            } else if !used(&dotted) {
                unused.push(dotted);
            }
        }
    }
    assert_eq!(unused, Vec::<String>::new());
}

#[test]
fn chart_is_v2_and_versioned_with_the_crate() {
    let chart = yaml(&format!("{CHART}/Chart.yaml"));
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "attention-operator");
    assert_eq!(chart["version"], "0.1.0");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn chart_crd_is_byte_identical_to_the_committed_one() {
    let chart = std::fs::read(path(&format!("{CHART}/crds/attentionuser.yaml"))).unwrap();
    let top = std::fs::read(path("crds/attentionuser.yaml")).unwrap();
    assert!(chart == top, "copy crds/attentionuser.yaml to {CHART}/crds/ after regenerating it");
}

#[test]
fn one_template_per_kind() {
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    for file in files_in(&format!("{CHART}/templates"), ".yaml") {
        let name = file.rsplit('/').next().unwrap();
        let template = Template::load(name);
        let kinds: BTreeSet<&str> =
            template.docs.iter().map(|doc| doc["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds.len(), 1, "{name} holds {kinds:?}");
        let kind = kinds.into_iter().next().unwrap().to_owned();
        if let Some(other) = owners.insert(kind.clone(), name.to_owned()) {
            panic!("{kind} is in both {other} and {name}");
        }
    }
    let expected = [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ];
    assert_eq!(owners.keys().map(String::as_str).collect::<Vec<_>>(), expected);
}

// ---------------------------------------------------------------------------------------------
// RBAC

type Grant = (String, String, String);

fn grants_of(accesses: &[Access]) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for access in accesses {
        for verb in access.verbs {
            grants.insert((access.group.into(), access.resource.into(), (*verb).into()));
        }
    }
    grants
}

fn granted(rules: &Value) -> BTreeSet<Grant> {
    let strings = |list: &Value| -> Vec<String> {
        list.as_array().unwrap().iter().map(|item| item.as_str().unwrap().to_owned()).collect()
    };
    let mut grants = BTreeSet::new();
    for rule in rules.as_array().unwrap() {
        let keys: BTreeSet<&str> = rule.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["apiGroups", "resources", "verbs"]), "{rule}");
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    grants.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    grants
}

/// Checks that document `doc` of `template` is a `kind` granting exactly `required`.
fn assert_grants_exactly(template: &str, doc: usize, kind: &str, required: &[Access]) {
    let role = Template::load(template);
    let doc = &role.docs[doc];
    assert_eq!(doc["kind"], kind);
    let grants = granted(&doc["rules"]);
    let required = grants_of(required);
    let extra: Vec<_> = grants.difference(&required).collect();
    let missing: Vec<_> = required.difference(&grants).collect();
    assert!(extra.is_empty(), "{template} grants more than src/rbac.rs: {extra:?}");
    assert!(missing.is_empty(), "{template} lacks what src/rbac.rs needs: {missing:?}");
}

#[test]
fn cluster_role_grants_exactly_what_the_operator_requires() {
    assert_grants_exactly("clusterrole.yaml", 0, "ClusterRole", REQUIRED);
    let text = Template::load("clusterrole.yaml").text;
    assert!(text.contains("{{- if and .Values.rbac.create (not .Values.watchNamespaces) }}"));
}

#[test]
fn namespaced_roles_grant_the_same_rules_in_each_watched_namespace() {
    assert_grants_exactly("role.yaml", 0, "Role", REQUIRED);
    let role = Template::load("role.yaml");
    assert!(role.text.contains("{{- range $namespace := .Values.watchNamespaces }}"));
    assert_eq!(role.directive(&role.docs[0]["metadata"]["namespace"]), "$namespace");
}

#[test]
fn leader_election_grants_exactly_its_lease_access_in_the_lease_namespace() {
    assert_grants_exactly("role.yaml", 1, "Role", LEADER_ELECTION);
    for template in ["role.yaml", "rolebinding.yaml"] {
        let loaded = Template::load(template);
        let guard = "{{- if and .Values.rbac.create .Values.leaderElection.enabled }}";
        assert!(loaded.text.contains(guard), "{template}");
        let namespace = loaded.directive(&loaded.docs[1]["metadata"]["namespace"]);
        assert_eq!(namespace, ".Values.leaderElection.leaseNamespace | default .Release.Namespace");
    }
    let deployment = Template::load("deployment.yaml");
    let env = env(&deployment);
    let lease_namespace = deployment.directive(&env["ATTENTION_LEASE_NAMESPACE"]["value"]);
    assert_eq!(lease_namespace, ".Values.leaderElection.leaseNamespace | quote");
    assert_eq!(
        *at(&values(), "leaderElection.enabled"),
        false,
        "off by default, as in the operator"
    );
}

#[test]
fn bindings_give_the_roles_to_the_operators_service_account() {
    for (binding, kind, role, index) in [
        ("clusterrolebinding.yaml", "ClusterRole", "clusterrole.yaml", 0),
        ("rolebinding.yaml", "Role", "role.yaml", 0),
        ("rolebinding.yaml", "Role", "role.yaml", 1),
    ] {
        let binding = Template::load(binding);
        let role = Template::load(role);
        let doc = &binding.docs[index];
        assert_eq!(doc["roleRef"]["kind"], kind);
        assert_eq!(
            binding.source_of(&doc["roleRef"]["name"]),
            role.source_of(&role.docs[index]["metadata"]["name"])
        );
        let subjects = doc["subjects"].as_array().unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0]["kind"], "ServiceAccount");
        let account = binding.directive(&subjects[0]["name"]);
        assert!(account.starts_with(r#"include "attention-operator.serviceAccountName""#));
        assert!(binding.directive(&subjects[0]["namespace"]).ends_with(".Release.Namespace"));
    }
    let deployment = Template::load("deployment.yaml");
    let pod = &deployment.doc()["spec"]["template"]["spec"];
    let account = deployment.directive(&pod["serviceAccountName"]);
    assert_eq!(account, r#"include "attention-operator.serviceAccountName" ."#);
}

// ---------------------------------------------------------------------------------------------
// Deployment

#[test]
fn every_operator_setting_is_set_from_values() {
    let deployment = Template::load("deployment.yaml");
    let env = env(&deployment);
    let operator = operator_env();
    for name in operator.keys().filter(|name| *name != API_KEY_ENV) {
        let entry = env.get(name).unwrap_or_else(|| panic!("{name} is not set by the chart"));
        if name == KEY_FILE_ENV {
            continue; // a path the chart itself mounts: see the API key test
        }
        let directive = deployment.directive(&entry["value"]);
        assert!(directive.contains(".Values."), "{name} = {{{{ {directive} }}}}");
    }
    for name in env.keys().filter(|name| name.starts_with("ATTENTION_")) {
        assert!(
            operator.contains_key(name) || ANNOUNCED.contains(&name.as_str()),
            "the chart sets {name}, which the operator does not read"
        );
    }
}

#[test]
fn chart_defaults_are_the_operators_defaults() {
    let leaked: Vec<String> =
        std::env::vars().map(|(name, _)| name).filter(|n| n.starts_with("ATTENTION_")).collect();
    assert!(leaked.is_empty(), "unset {leaked:?} to compare defaults");
    let from_chart = run_args_from(&values(), &[KEY_FILE_ENV]).unwrap();
    let bare = Cli::try_parse_from(["attention-operator", "run"]).unwrap();
    assert_eq!(from_chart, format!("{:?}", bare.command));
}

#[test]
fn settings_rendered_from_values_are_accepted_by_the_operator() {
    let custom = merged(
        &values(),
        &json!({
            "watchNamespaces": ["team-a", "team-b"],
            "config": {
                "apiUrl": "http://attention-sandbox.attention-system:8089/v2",
                "authScheme": "raw",
                "resyncInterval": "1h 30m",
                "concurrency": 16,
                "requestsPerSecond": 20,
                "logFormat": "json",
            },
            "metrics": {"port": 9090},
        }),
    );
    assert_eq!(schema_errors(&custom), Vec::<String>::new());
    let parsed = run_args_from(&custom, &[]).unwrap();
    assert!(parsed.contains(r#"namespaces: ["team-a", "team-b"]"#), "{parsed}");
    assert!(parsed.contains("auth_scheme: Raw"), "{parsed}");
    assert!(parsed.contains("resync_interval: 5400s"), "{parsed}");
    assert!(parsed.contains("concurrency: 16"), "{parsed}");
    let metrics = render(deployment_env_directive("ATTENTION_METRICS_ADDR").as_str(), &custom);
    assert_eq!(metrics.as_deref(), Some("0.0.0.0:9090"));
}

fn deployment_env_directive(name: &str) -> String {
    let deployment = Template::load("deployment.yaml");
    let env = env(&deployment);
    deployment.directive(&env[name]["value"]).to_owned()
}

#[test]
fn watched_namespaces_are_passed_only_when_listed() {
    let text = Template::load("deployment.yaml").text;
    let guarded = "{{- if .Values.watchNamespaces }}\n            \
                   - name: ATTENTION_NAMESPACES\n              \
                   value: {{ join \",\" .Values.watchNamespaces | quote }}\n            \
                   {{- end }}";
    assert!(text.contains(guarded), "ATTENTION_NAMESPACES must be set only for a list");
    assert_eq!(render(&deployment_env_directive("ATTENTION_NAMESPACES"), &values()), None);
}

#[test]
fn deployment_is_hardened() {
    let deployment = Template::load("deployment.yaml");
    let spec = &deployment.doc()["spec"];
    assert_eq!(deployment.directive(&spec["replicas"]), ".Values.replicaCount");
    let strategy = deployment.directive(&spec["strategy"]["type"]);
    let expected = r#"ternary "RollingUpdate" "Recreate" .Values.leaderElection.enabled"#;
    assert_eq!(strategy, expected, "never two operators at once without leader election");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], true, "the operator calls the API");
    assert_eq!(
        pod["securityContext"],
        json!({
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    );
    let container = container(&deployment);
    assert_eq!(
        container["securityContext"],
        json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
        })
    );
    assert!(deployment.text.contains("{{- toYaml .Values.resources | nindent 12 }}"));
    let resources = &values()["resources"];
    for side in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(resources[side][resource].is_string(), "{side}.{resource} unset");
        }
    }
    let account = Template::load("serviceaccount.yaml");
    assert_eq!(account.doc()["automountServiceAccountToken"], false);
}

#[test]
fn probes_and_metrics_use_the_metrics_port() {
    let deployment = Template::load("deployment.yaml");
    let container = container(&deployment);
    let ports = container["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["name"], "metrics");
    assert_eq!(deployment.directive(&ports[0]["containerPort"]), ".Values.metrics.port");
    let probe = |name: &str| &container[name]["httpGet"];
    assert_eq!(probe("livenessProbe")["path"], "/healthz");
    assert_eq!(probe("livenessProbe")["port"], "metrics");
    assert_eq!(probe("readinessProbe")["path"], "/readyz");
    assert_eq!(probe("readinessProbe")["port"], "metrics");
    let address = render(&deployment_env_directive("ATTENTION_METRICS_ADDR"), &values());
    assert_eq!(address.as_deref(), Some("0.0.0.0:8080"), "the operator's default");
    let service = Template::load("service.yaml");
    let port = &service.doc()["spec"]["ports"][0];
    assert_eq!(port["targetPort"], "metrics");
    assert_eq!(port["name"], "metrics");
    assert_eq!(container["args"], json!(["run"]));
}

#[test]
fn pod_name_comes_from_the_downward_api() {
    let deployment = Template::load("deployment.yaml");
    let env = env(&deployment);
    assert_eq!(env["POD_NAME"]["valueFrom"], json!({"fieldRef": {"fieldPath": "metadata.name"}}));
}

#[test]
fn api_key_is_a_file_from_a_secret_and_never_an_env_value() {
    let deployment = Template::load("deployment.yaml");
    let env = env(&deployment);
    assert!(!env.contains_key(API_KEY_ENV));
    for (name, entry) in &env {
        assert!(entry["valueFrom"].get("secretKeyRef").is_none(), "{name} reads a Secret");
    }
    assert!(!deployment.text.contains("apiKey.value"), "the key itself is only for secret.yaml");

    let pod = &deployment.doc()["spec"]["template"]["spec"];
    let volumes = pod["volumes"].as_array().unwrap();
    let volume = volumes.iter().find(|v| v["name"] == "api-key").unwrap();
    let secret = &volume["secret"];
    assert_eq!(
        deployment.directive(&secret["secretName"]),
        r#"include "attention-operator.apiKeySecretName" ."#
    );
    let item = &secret["items"][0];
    assert_eq!(deployment.directive(&item["key"]), ".Values.apiKey.secretKey | quote");
    assert_eq!(secret["defaultMode"], 0o440);

    let mounts = container(&deployment)["volumeMounts"].as_array().unwrap();
    let mount = mounts.iter().find(|m| m["name"] == "api-key").unwrap();
    assert_eq!(mount["readOnly"], true);
    let file =
        format!("{}/{}", mount["mountPath"].as_str().unwrap(), item["path"].as_str().unwrap());
    assert_eq!(env[KEY_FILE_ENV]["value"], file.as_str());

    let created = Template::load("secret.yaml");
    assert!(created.text.contains("{{- if .Values.apiKey.create }}"));
    assert_eq!(
        created.directive(&created.doc()["metadata"]["name"]),
        r#"include "attention-operator.apiKeySecretName" ."#
    );
    assert_eq!(values()["apiKey"]["create"], false);
}

#[test]
fn optional_resources_are_off_by_default() {
    for (template, switch) in [
        ("servicemonitor.yaml", "metrics.serviceMonitor.enabled"),
        ("networkpolicy.yaml", "networkPolicy.enabled"),
        ("secret.yaml", "apiKey.create"),
    ] {
        let text = Template::load(template).text;
        let guard = format!("{{{{- if .Values.{switch} }}}}");
        let first = text.lines().find(|line| !line.starts_with("{{- /*")).unwrap();
        assert_eq!(first, guard, "{template} must be wrapped in its switch");
        assert!(text.trim_end().ends_with("{{- end }}"), "{template}");
        assert_eq!(*at(&values(), switch), false, "{switch} defaults to off");
    }
}

#[test]
fn network_policy_admits_metrics_only_and_lets_out_dns_https_and_the_api_server() {
    let policy = Template::load("networkpolicy.yaml");
    let spec = &policy.doc()["spec"];
    assert_eq!(spec["policyTypes"], json!(["Ingress", "Egress"]));
    let ingress = spec["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0]["ports"], json!([{"port": "metrics", "protocol": "TCP"}]));
    let egress = spec["egress"].as_array().unwrap();
    let ports: Vec<&Value> = egress.iter().map(|rule| &rule["ports"]).collect();
    assert_eq!(
        *ports[0],
        json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}])
    );
    assert_eq!(*ports[1], json!([{"port": 443, "protocol": "TCP"}]));
    assert!(policy.text.contains("{{- range .Values.networkPolicy.apiServer.ports }}"));
    assert_eq!(egress.len(), 3, "DNS, HTTPS and the API server, nothing else by default");
    assert_eq!(values()["networkPolicy"]["apiServer"]["ports"], json!([443, 6443]));
}

// ---------------------------------------------------------------------------------------------
// Container image

/// Cargo loads every target Cargo.toml names, so the image build needs each one's source,
/// even to build the binary alone.
#[test]
fn the_image_build_context_holds_every_target_cargo_toml_names() {
    let manifest = read("Cargo.toml");
    let dockerfile = read("Dockerfile");
    let ignore = read(".dockerignore");
    let sections = [("[[bench]]", "benches"), ("[[example]]", "examples"), ("[[test]]", "tests")];
    for (header, folder) in sections {
        if !manifest.lines().any(|line| line.trim() == header) {
            continue;
        }
        assert!(dockerfile.contains(&format!("COPY {folder} ./{folder}")), "Dockerfile: {folder}");
        assert!(
            ignore.lines().any(|line| line == format!("!{folder}/")),
            ".dockerignore: {folder}"
        );
    }
}

#[test]
fn dockerfile_builds_a_static_binary_into_a_non_root_image_without_a_shell() {
    let dockerfile = read("Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .collect();
    let stages: Vec<&&str> = instructions.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "build and run stages");
    assert!(stages[0].contains("alpine") || stages[0].contains("musl"), "{}", stages[0]);
    let run_stage = stages[1];
    assert!(
        run_stage.starts_with("FROM scratch")
            || run_stage.starts_with("FROM gcr.io/distroless/static-debian12:nonroot"),
        "{run_stage}"
    );
    let final_lines = &instructions[instructions.iter().position(|l| l == run_stage).unwrap()..];
    assert!(final_lines.contains(&"USER 65532:65532"));
    assert!(final_lines.contains(&r#"ENTRYPOINT ["/attention-operator"]"#));
    assert!(final_lines.contains(&r#"CMD ["run"]"#));
    assert!(!final_lines.iter().any(|l| l.starts_with("RUN ")), "no shell in the final image");
    assert!(dockerfile.contains("cargo build --release --locked --bin attention-operator"));
    assert_eq!(env!("CARGO_PKG_NAME"), "attention-operator", "the binary's name");

    let ignore = read(".dockerignore");
    let rules: Vec<&str> = ignore.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rules.first(), Some(&"*"), "allow-list: only what the build needs");
    for needed in ["!Cargo.toml", "!Cargo.lock", "!src/"] {
        assert!(rules.contains(&needed), "{needed}");
    }
}

// ---------------------------------------------------------------------------------------------
// GitOps examples

#[test]
fn example_users_are_valid_attention_users() {
    let crd = serde_json::to_value(AttentionUser::crd()).unwrap();
    let openapi = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let structural = jsonschema::validator_for(openapi).unwrap();
    let uuid = Regex::new(UUID_PATTERN.trim_start_matches('^').trim_end_matches('$')).unwrap();
    let uuid_like = Regex::new(r"[0-9a-fA-F]{8}-[0-9a-fA-F-]{20,}").unwrap();
    let files = files_in("examples/gitops/users", ".yaml");
    assert!(files.len() >= 2, "{files:?}");
    let mut with_password = 0;
    for file in &files {
        let object = yaml(file);
        let errors: Vec<String> = structural.iter_errors(&object).map(|e| e.to_string()).collect();
        assert_eq!(errors, Vec::<String>::new(), "{file}");
        if let Err(errors) = kube_cel::Validator::new().validate(openapi, &object, None) {
            let messages: Vec<&str> =
                errors.as_slice().iter().map(|e| e.message.as_str()).collect();
            panic!("{file}: {messages:?}");
        }
        let user: AttentionUser = serde_json::from_value(object).unwrap();
        with_password += usize::from(user.spec.password_secret_ref.is_some());
        for found in uuid_like.find_iter(&read(file)) {
            assert_eq!(found.len(), 36, "{file}: {} is not a 36-character UUID", found.as_str());
            assert!(uuid.is_match(found.as_str()), "{file}: {}", found.as_str());
        }
    }
    assert!(with_password >= 1, "one example shows passwordSecretRef");
}

#[test]
fn example_applications_point_at_the_chart_and_the_users_folder() {
    let operator = yaml("examples/gitops/apps/attention-operator.yaml");
    let users = yaml("examples/gitops/apps/attention-users.yaml");
    for app in [&operator, &users] {
        assert_eq!(app["apiVersion"], "argoproj.io/v1alpha1");
        assert_eq!(app["kind"], "Application");
        let source = &app["spec"]["source"];
        let repo = source["repoURL"].as_str().unwrap();
        assert!(repo.starts_with("https://git.example.com/"), "placeholder: {repo}");
        let folder = source["path"].as_str().unwrap();
        assert!(path(folder).is_dir(), "{folder} is not a folder of this repository");
    }
    assert_eq!(operator["spec"]["source"]["path"], CHART);
    assert_eq!(users["spec"]["source"]["path"], "examples/gitops/users");
    let overrides = &operator["spec"]["source"]["helm"]["valuesObject"];
    assert!(overrides.is_object());
    assert_eq!(schema_errors(&merged(&values(), overrides)), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Argo CD health check

const HEALTH: &str = "argocd/health.lua";
const HEALTH_KEY: &str = "resource.customizations.health.attention.tech_AttentionUser";

fn to_lua(lua: &Lua, value: &Value) -> mlua::Value {
    match value {
        Value::Null => mlua::Value::Nil,
        Value::Bool(flag) => mlua::Value::Boolean(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => mlua::Value::Integer(integer),
            None => mlua::Value::Number(number.as_f64().unwrap()),
        },
        Value::String(text) => mlua::Value::String(lua.create_string(text).unwrap()),
        Value::Array(items) => {
            let table = lua.create_table().unwrap();
            for (index, item) in items.iter().enumerate() {
                table.raw_set(index + 1, to_lua(lua, item)).unwrap();
            }
            mlua::Value::Table(table)
        }
        Value::Object(fields) => {
            let table = lua.create_table().unwrap();
            for (key, item) in fields {
                table.raw_set(key.as_str(), to_lua(lua, item)).unwrap();
            }
            mlua::Value::Table(table)
        }
    }
}

/// Runs health.lua as Argo CD does: the live object in the global `obj`, only the base,
/// string, table and math libraries, the returned table's `status` and `message`.
fn health(object: &Value) -> (String, String) {
    let lua = Lua::new_with(StdLib::STRING | StdLib::TABLE | StdLib::MATH, LuaOptions::default())
        .unwrap();
    lua.globals().set("obj", to_lua(&lua, object)).unwrap();
    let hs: Table = lua
        .load(read(HEALTH))
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("health.lua failed on {object}: {e}"));
    let status: String = hs.get("status").unwrap();
    let message: String = hs.get("message").unwrap();
    assert!(
        ["Healthy", "Progressing", "Degraded", "Suspended"].contains(&status.as_str()),
        "{status}"
    );
    (status, message)
}

fn user(generation: i64, status: Option<Value>) -> Value {
    let mut object = json!({
        "apiVersion": "attention.tech/v1alpha1",
        "kind": "AttentionUser",
        "metadata": {"name": "ada", "namespace": "team-a", "generation": generation},
        "spec": {"email": "ada@example.com"},
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    object
}

fn ready(observed: i64, status: &str, reason: &str, message: &str) -> Value {
    json!({
        "observedGeneration": observed,
        "conditions": [{
            "type": "Ready",
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": "2025-01-01T00:00:00Z",
            "observedGeneration": observed,
        }],
    })
}

fn paused(mut object: Value) -> Value {
    object["metadata"]["annotations"] = json!({"attention.tech/paused": "true"});
    object
}

#[test]
fn health_without_status_is_progressing() {
    let (status, message) = health(&user(1, None));
    assert_eq!(status, "Progressing");
    assert!(message.contains("status"), "{message}");
}

#[test]
fn health_of_a_stale_status_is_progressing_never_healthy() {
    let stale = user(3, Some(ready(2, "True", "Created", "the user exists")));
    let (status, message) = health(&stale);
    assert_eq!(status, "Progressing");
    assert!(message.contains("generation 3"), "{message}");
    let mut unknown = ready(3, "True", "Created", "the user exists");
    unknown.as_object_mut().unwrap().remove("observedGeneration");
    assert_eq!(health(&user(3, Some(unknown))).0, "Progressing");
}

#[test]
fn health_of_a_ready_user_is_healthy_with_its_message() {
    for reason in ["Created", "Adopted"] {
        let object = user(2, Some(ready(2, "True", reason, "the user exists in Attention")));
        let (status, message) = health(&object);
        assert_eq!(status, "Healthy", "{reason}");
        assert_eq!(message, "the user exists in Attention");
    }
    let newer = user(2, Some(ready(5, "True", "Created", "fine")));
    assert_eq!(health(&newer).0, "Healthy", "status newer than the object is not stale");
}

#[test]
fn health_of_a_paused_user_is_suspended() {
    let (status, message) = health(&paused(user(1, None)));
    assert_eq!(status, "Suspended");
    assert!(message.contains("attention.tech/paused"), "{message}");
    let stale = paused(user(4, Some(ready(3, "True", "Created", "fine"))));
    assert_eq!(health(&stale).0, "Suspended", "the operator will not catch up while paused");
    let by_reason = user(2, Some(ready(2, "False", "Paused", "paused by annotation")));
    assert_eq!(health(&by_reason), ("Suspended".into(), "paused by annotation".into()));
    let mut not_paused = user(2, Some(ready(2, "True", "Created", "fine")));
    not_paused["metadata"]["annotations"] = json!({"attention.tech/paused": "false"});
    assert_eq!(health(&not_paused).0, "Healthy");
}

#[test]
fn health_is_degraded_for_reasons_that_need_a_spec_change() {
    for reason in [
        "InvalidSpec",
        "Rejected",
        "UserMissing",
        "Conflict",
        "Drifted",
        "AdoptionRefused",
        "NotPresent",
    ] {
        let message = format!("{reason}: fix the spec");
        let object = user(1, Some(ready(1, "False", reason, &message)));
        assert_eq!(health(&object), ("Degraded".into(), message), "{reason}");
    }
}

#[test]
fn health_is_progressing_while_the_operator_retries() {
    for reason in [
        "Creating",
        "SecretMissing",
        "Unauthorized",
        "NotFound",
        "RateLimited",
        "Unavailable",
        "SomethingNew",
    ] {
        let object = user(1, Some(ready(1, "False", reason, "retrying")));
        assert_eq!(health(&object), ("Progressing".into(), "retrying".into()), "{reason}");
    }
    let unknown = user(1, Some(ready(1, "Unknown", "InvalidSpec", "not known yet")));
    assert_eq!(health(&unknown).0, "Progressing");
    let other_condition = json!({"observedGeneration": 1, "conditions": [
        {"type": "Synced", "status": "True", "reason": "Created", "message": "x"}
    ]});
    let (status, message) = health(&user(1, Some(other_condition)));
    assert_eq!(status, "Progressing");
    assert!(message.contains("Ready"), "{message}");
}

/// The conditions the operator itself builds for each outcome get the intended health.
#[test]
fn health_of_every_outcome_the_operator_reports() {
    let remote: RemoteUser =
        serde_json::from_value(json!({"uuid": "5b0f6a3e-2c1d-4e8f-9a7b-6c5d4e3f2a1b",
                                      "email": "ada@example.com"}))
        .unwrap();
    let failed = |error| Outcome::ApiFailed { step: Step::CreateUser, error };
    let found = |origin| Box::new(Found::new(remote.clone(), origin));
    let cases = [
        (Outcome::Ready(found(Origin::Created)), "Healthy"),
        (Outcome::Ready(found(Origin::Adopted)), "Healthy"),
        (Outcome::Ready(found(Origin::Recreated)), "Healthy"),
        (Outcome::Drifted(found(Origin::Adopted), vec![]), "Degraded"),
        (Outcome::NotPresent, "Degraded"),
        (Outcome::AdoptionRefused { uuid: "u".into() }, "Degraded"),
        (Outcome::Conflict { holder: "a/b".into() }, "Degraded"),
        (Outcome::Paused, "Suspended"),
        (Outcome::InvalidSpec("bad".into()), "Degraded"),
        (Outcome::SecretMissing("gone".into()), "Progressing"),
        (Outcome::UserMissing { uuid: "u".into() }, "Degraded"),
        (failed(ApiError::Rejected { status: 422, excerpt: "no".into() }), "Degraded"),
        (failed(ApiError::Unauthorized { status: 401 }), "Progressing"),
        (failed(ApiError::NotFound), "Progressing"),
        (failed(ApiError::RateLimited { retry_after: None }), "Progressing"),
        (failed(ApiError::Unavailable { detail: "timeout".into() }), "Progressing"),
    ];
    for (outcome, expected) in cases {
        let status = ready(7, outcome.ready_status(), outcome.reason(), &outcome.message());
        let (health, message) = health(&user(7, Some(status)));
        assert_eq!(health, expected, "{}", outcome.reason());
        assert_eq!(message, outcome.message());
    }
}

#[test]
fn health_check_never_fails_on_malformed_objects() {
    let odd = [
        json!({}),
        json!({"metadata": "x", "status": "x"}),
        json!({"metadata": {"annotations": ["x"], "generation": "3"}, "status": {}}),
        json!({"metadata": {"generation": 1}, "status": {"observedGeneration": "1"}}),
        json!({"status": {"conditions": "x"}}),
        json!({"status": {"conditions": [1, "a", {}, {"type": 5}, null]}}),
        json!({"status": {"conditions": [{"type": "Ready"}]}}),
        json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": {"x": 1}, "message": 5}
        ]}}),
        json!({"status": {"conditions": [{"type": "Ready", "status": true, "reason": null}]}}),
    ];
    for object in odd {
        let (status, _) = health(&object);
        assert_ne!(status, "Healthy", "{object}");
    }
}

/// Argo CD runs health checks with gopher-lua, a Lua 5.1: the script must not use what later
/// versions added, even though the tests above run it on Lua 5.4.
#[test]
fn health_check_uses_nothing_beyond_lua_5_1() {
    let code: String = read(HEALTH)
        .lines()
        .map(|line| line.split("--").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let later = [
        r"\bgoto\b",
        "//",
        "&",
        r"\|",
        "<<",
        ">>",
        "~[^=]",
        "::",
        "<const>",
        "<close>",
        r"\butf8\.",
        r"table\.unpack",
        r"math\.type",
        r"math\.tointeger",
        r"string\.pack",
    ];
    let later = Regex::new(&later.join("|")).unwrap();
    let found: Vec<&str> = later.find_iter(&code).map(|m| m.as_str()).collect();
    assert!(found.is_empty(), "not Lua 5.1: {found:?}");
}

#[test]
fn argocd_config_files_embed_health_lua_byte_for_byte() {
    let script = read(HEALTH);
    let patch = yaml("argocd/argocd-cm-patch.yaml");
    assert_eq!(patch["kind"], "ConfigMap");
    assert_eq!(patch["metadata"]["name"], "argocd-cm");
    assert!(patch["data"][HEALTH_KEY] == script.as_str(), "refresh argocd/argocd-cm-patch.yaml");
    let helm = yaml("argocd/argo-cd-values.yaml");
    let embedded = &helm["configs"]["cm"][HEALTH_KEY];
    assert!(*embedded == script.as_str(), "refresh argocd/argo-cd-values.yaml");
    assert!(read("argocd/README.md").contains(&format!("{HEALTH_KEY}: |")));
}
