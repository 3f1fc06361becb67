//! Leader election against a fake API server that keeps Leases as server-side apply would:
//! one replica leads, the others stand by, and a leader that loses the Lease stops.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::time::Duration;

use attention_operator::leader::{self, Election};
use support::{FakeKube, Replica, access_of};

const LEASE: &str = "attention-operator";
const LEASE_SECONDS: u64 = 2;

fn replica(kube: &FakeKube, identity: &str) -> Replica {
    let election = Election {
        lease_name: LEASE.to_owned(),
        namespace: "attention-system".to_owned(),
        identity: String::new(),
        lease_seconds: LEASE_SECONDS,
    };
    support::replica(kube.client(), &election, identity)
}

async fn within<T>(seconds: u64, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .unwrap_or_else(|_| panic!("{what} within {seconds} s"))
}

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_when_its_work_ends() {
    let kube = FakeKube::default();
    let mut first = replica(&kube, "replica-a");
    within(5, "the first replica leads", &mut first.leads).await.unwrap();
    let mut second = replica(&kube, "replica-b");

    // Two whole lease periods: the second looks again at each expiry and finds it renewed.
    tokio::time::sleep(Duration::from_secs(2 * LEASE_SECONDS)).await;
    assert!(second.leads.try_recv().is_err(), "two replicas led at once");
    assert!(second.health.is_standing_by() && !first.health.is_standing_by());
    assert_eq!(kube.lease_holder(LEASE).as_deref(), Some("replica-a"));

    first.stop.send(()).unwrap();
    within(5, "the first gives the lease up", first.task).await.unwrap().unwrap();
    within(3 * LEASE_SECONDS, "the second takes over", &mut second.leads).await.unwrap();
    assert_eq!(kube.lease_holder(LEASE).as_deref(), Some("replica-b"));
    assert!(!second.health.is_standing_by());

    for call in kube.calls() {
        let (group, resource, verb) = access_of(&call);
        let granted = attention_operator::rbac::LEADER_ELECTION.iter().any(|access| {
            access.group == group && access.resource == resource && access.verbs.contains(&&*verb)
        });
        assert!(granted, "{verb} {group}/{resource} is not in rbac::LEADER_ELECTION");
    }
    second.stop.send(()).unwrap();
    within(5, "the second stops", second.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_leader_that_loses_its_lease_stops_at_once() {
    let kube = FakeKube::default();
    let mut only = replica(&kube, "replica-a");
    within(5, "the replica leads", &mut only.leads).await.unwrap();

    kube.take_lease(LEASE, "intruder");

    let stopped = within(3 * LEASE_SECONDS, "the leader stops", only.task).await.unwrap();
    assert!(matches!(stopped, Err(leader::Error::Lost { .. })), "{stopped:?}");
    assert_eq!(kube.lease_holder(LEASE).as_deref(), Some("intruder"), "it did not take it back");
}
