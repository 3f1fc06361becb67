//! Full-sync benchmark: N AttentionUsers reconciled against the sandbox and a fake API server,
//! as the controller would after a start (4 at once), then again as at a resync.
//!
//! `cargo bench --bench full_sync` runs 500 users (BENCH_USERS to change; BENCH_LATENCY_MS,
//! default 20, delays every sandbox answer; BENCH_RPS, default 50, is the client-side limit).
//! Under `cargo test` it runs a 20-user smoke pass and checks only that the counts add up.
#![allow(clippy::unwrap_used)] // a benchmark fails loudly by design

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use attention_operator::attention::{AuthScheme, ClientSettings, HttpClient};
use attention_operator::controller::{Context, Settings, reconcile};
use attention_operator::metrics::Metrics;
use attention_operator::sandbox::{AuthMode, Faults, Sandbox, SandboxConfig};
use futures::StreamExt;
use support::{API_KEY, FakeKube, UserBuilder, seed};

struct Pass {
    took: Duration,
    lists: usize,
    creates: usize,
    others: usize,
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn pass(kube: &FakeKube, sandbox: &Sandbox, ctx: &Arc<Context>, names: &[String]) -> Pass {
    sandbox.clear_requests();
    let started = Instant::now();
    futures::stream::iter(names)
        .map(|name| reconcile(Arc::new(kube.user(name)), ctx.clone()))
        .buffer_unordered(4)
        .for_each(|result| async move {
            result.unwrap();
        })
        .await;
    let took = started.elapsed();
    let requests = sandbox.requests();
    let count = |method: &str| requests.iter().filter(|r| r.method == method).count();
    Pass {
        took,
        lists: count("GET"),
        creates: count("POST"),
        others: requests.len() - count("GET") - count("POST"),
    }
}

#[tokio::main]
async fn main() {
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let users = if benchmarking { setting("BENCH_USERS", 500) } else { 20 } as usize;
    let latency_ms = if benchmarking { setting("BENCH_LATENCY_MS", 20) } else { 0 };
    let rps = setting("BENCH_RPS", 50) as u32;

    let faults = Faults { latency_ms, ..Faults::default() };
    let config = SandboxConfig { api_key: API_KEY.to_owned(), auth: AuthMode::Bearer, faults };
    let sandbox = Sandbox::start_local(config).await.unwrap();
    let kube = FakeKube::default();
    let existing = users / 5;
    let mut names = Vec::new();
    for i in 0..users {
        let email = format!("user{i}@example.com");
        if i < existing {
            sandbox.insert_user(seed(&email));
        }
        let name = format!("user-{i}");
        kube.add_user(&UserBuilder::new(&name, &email).build());
        names.push(name);
    }
    let client = ClientSettings {
        base_url: sandbox.base_url().parse().unwrap(),
        api_key: API_KEY.to_owned(),
        auth_scheme: AuthScheme::Bearer,
        timeout: Duration::from_secs(30),
        requests_per_second: rps.try_into().unwrap(),
        max_in_flight: 4,
    };
    let api = Arc::new(HttpClient::new(client).unwrap());
    let ctx =
        Arc::new(Context::new(kube.client(), api, Settings::default(), Arc::new(Metrics::new())));

    let first = pass(&kube, &sandbox, &ctx, &names).await;
    let second = pass(&kube, &sandbox, &ctx, &names).await;

    assert_eq!(first.creates, users - existing, "one create per missing user");
    assert_eq!((second.lists, second.creates, second.others), (0, 0, 0), "a resync sends nothing");
    if benchmarking {
        println!("full sync of {users} AttentionUsers ({existing} already in Attention),");
        println!("sandbox latency {latency_ms} ms, {rps} requests/s:");
        for (label, pass) in [("first sync", &first), ("resync", &second)] {
            println!(
                "  {label:<10} {:>8.2} s  list calls {:>3}  creates {:>4}  other calls {:>3}",
                pass.took.as_secs_f64(),
                pass.lists,
                pass.creates,
                pass.others
            );
        }
    }
}
