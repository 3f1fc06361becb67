//! The operator's HTTP endpoints over loopback: probes follow the watches, metrics are
//! Prometheus text with bounded labels.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::sync::Arc;
use std::time::Duration;

use attention_operator::crd::AttentionUser;
use attention_operator::metrics::Metrics;
use attention_operator::server::{Health, serve};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;
use support::UserBuilder;
use tokio::net::TcpListener;

async fn start(health: Health, metrics: Arc<Metrics>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, health, metrics));
    base
}

async fn get(url: String) -> (u16, String, String) {
    attention_operator::attention::install_crypto_provider();
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    (status, content_type, response.text().await.unwrap())
}

fn ready_user(name: &str) -> AttentionUser {
    let mut user = UserBuilder::new(name, &format!("{name}@example.com")).build();
    let status = serde_json::json!({"observedGeneration": 1, "conditions": [{
        "type": "Ready", "status": "True", "reason": "Created", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    user.status = Some(serde_json::from_value(status).unwrap());
    user
}

/// A watch that has listed `users` and so completed its first sync.
fn synced(writer: &mut Writer<AttentionUser>, users: Vec<AttentionUser>) {
    writer.apply_watcher_event(&Event::Init);
    for user in users {
        writer.apply_watcher_event(&Event::InitApply(user));
    }
    writer.apply_watcher_event(&Event::InitDone);
}

#[tokio::test]
async fn liveness_answers_at_once() {
    let base = start(Health::default(), Arc::new(Metrics::new())).await;
    let (status, _, body) = get(format!("{base}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn readiness_waits_for_every_watch_to_list_its_resources() {
    let health = Health::default();
    let (first, mut first_writer) = reflector::store::<AttentionUser>();
    let (second, mut second_writer) = reflector::store::<AttentionUser>();
    health.watch(first);
    health.watch(second);
    tokio::spawn(health.clone().become_ready_when_synced());
    let base = start(health.clone(), Arc::new(Metrics::new())).await;

    assert_eq!(get(format!("{base}/readyz")).await.0, 503);
    synced(&mut first_writer, vec![]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(format!("{base}/readyz")).await.0, 503, "one watch is still listing");
    synced(&mut second_writer, vec![]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(format!("{base}/readyz")).await.0, 200);
}

#[tokio::test]
async fn readiness_also_waits_for_watches_that_fill_no_store() {
    let health = Health::default();
    let (store, mut writer) = reflector::store::<AttentionUser>();
    health.watch(store);
    let secrets = health.follow();
    tokio::spawn(health.clone().become_ready_when_synced());
    let base = start(health.clone(), Arc::new(Metrics::new())).await;

    synced(&mut writer, vec![]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(format!("{base}/readyz")).await.0, 503, "the Secret watch is still listing");
    secrets.done();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(format!("{base}/readyz")).await.0, 200);
}

#[tokio::test]
async fn a_replica_standing_by_for_the_lease_is_ready_and_a_new_leader_waits_for_its_watches() {
    let health = Health::default();
    let base = start(health.clone(), Arc::new(Metrics::new())).await;
    health.stand_by(true);
    let (status, _, body) = get(format!("{base}/readyz")).await;
    assert_eq!((status, body.as_str()), (200, "standing by for the lease"));

    health.stand_by(false);
    let (store, mut writer) = reflector::store::<AttentionUser>();
    health.watch(store);
    tokio::spawn(health.clone().become_ready_when_synced());
    assert_eq!(get(format!("{base}/readyz")).await.0, 503, "leading, not listed yet");
    synced(&mut writer, vec![]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(format!("{base}/readyz")).await.0, 200);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_users_by_ready_status() {
    let health = Health::default();
    let (store, mut writer) = reflector::store::<AttentionUser>();
    health.watch(store);
    let pending = UserBuilder::new("carol", "carol@example.com").build();
    synced(&mut writer, vec![ready_user("ada"), ready_user("bob"), pending]);
    let metrics = Arc::new(Metrics::new());
    metrics.api_request("list_users", "Success");
    let base = start(health, metrics).await;

    let (status, content_type, body) = get(format!("{base}/metrics")).await;

    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    assert!(body.contains(r#"attention_operator_users{ready="True"} 2"#), "{body}");
    assert!(body.contains(r#"attention_operator_users{ready="Unknown"} 1"#), "{body}");
    assert!(body.contains(r#"outcome="Success"} 1"#));
    assert!(body.trim_end().ends_with("# EOF"));
    assert!(!body.contains('@'), "no email in any label");
}
