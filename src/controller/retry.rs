//! Per-object retry delays: exponential with jitter, capped, forgotten on success.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use kube::runtime::reflector::ObjectRef;

use crate::crd::AttentionUser;

/// Retry delays of every object that is failing, each growing on its own.
pub struct Retries {
    builder: ExponentialBuilder,
    /// Each failing object's delays, and when it last failed.
    failing: Mutex<HashMap<ObjectRef<AttentionUser>, (ExponentialBackoff, Instant)>>,
    /// How long an object that stopped failing without a success is remembered: one deleted
    /// while failing never succeeds, and a failing one fails again within the cap.
    forget_after: Duration,
}

impl Retries {
    /// Delays start between `first` and twice `first`, double on each failure and never
    /// exceed `cap`. The jitter spreads retries of objects that failed together.
    pub fn new(first: Duration, cap: Duration) -> Retries {
        let builder = ExponentialBuilder::default()
            .with_min_delay(first.min(cap / 2))
            .with_max_delay(cap / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Retries { builder, failing: Mutex::default(), forget_after: cap * 4 }
    }

    /// The delay before the next retry of `object`; each call counts one more failure.
    pub fn next_delay(&self, object: &ObjectRef<AttentionUser>) -> Duration {
        let mut failing = self.failing.lock().expect("no thread panics while holding the lock");
        failing.retain(|_, (_, failed)| failed.elapsed() < self.forget_after);
        let (delays, failed) =
            failing.entry(object.clone()).or_insert_with(|| (self.builder.build(), Instant::now()));
        *failed = Instant::now();
        delays.next().expect("a backoff without a maximum number of times never ends")
    }

    /// Forgets the failures of `object` after it succeeded.
    pub fn reset(&self, object: &ObjectRef<AttentionUser>) {
        self.failing.lock().expect("no thread panics while holding the lock").remove(object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str) -> ObjectRef<AttentionUser> {
        ObjectRef::new(name).within("team-a")
    }

    #[test]
    fn delays_grow_from_the_first_delay_to_the_cap() {
        let retries = Retries::new(Duration::from_secs(1), Duration::from_secs(300));
        let delays: Vec<Duration> = (0..20).map(|_| retries.next_delay(&object("ada"))).collect();
        assert!(delays[0] >= Duration::from_secs(1) && delays[0] < Duration::from_secs(2));
        assert!(delays[3] >= Duration::from_secs(8) && delays[3] < Duration::from_secs(16));
        assert!(delays.iter().all(|delay| *delay <= Duration::from_secs(300)));
        assert!(delays[10..].iter().all(|delay| *delay >= Duration::from_secs(150)));
    }

    #[test]
    fn jitter_spreads_objects_that_fail_together() {
        let retries = Retries::new(Duration::from_secs(10), Duration::from_secs(300));
        let delays: Vec<Duration> =
            (0..20).map(|i| retries.next_delay(&object(&format!("user-{i}")))).collect();
        let mut distinct = delays.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 10, "{delays:?}");
    }

    #[test]
    fn each_object_backs_off_on_its_own_and_success_resets_it() {
        let retries = Retries::new(Duration::from_secs(1), Duration::from_secs(300));
        for _ in 0..6 {
            retries.next_delay(&object("ada"));
        }
        assert!(retries.next_delay(&object("bob")) < Duration::from_secs(2));
        assert!(retries.next_delay(&object("ada")) >= Duration::from_secs(64));
        retries.reset(&object("ada"));
        assert!(retries.next_delay(&object("ada")) < Duration::from_secs(2));
    }

    #[test]
    fn an_object_that_stopped_failing_without_a_success_is_forgotten() {
        let retries = Retries::new(Duration::from_millis(1), Duration::from_millis(4));
        retries.next_delay(&object("deleted-while-failing"));
        std::thread::sleep(Duration::from_millis(30));
        retries.next_delay(&object("bob"));
        let failing = retries.failing.lock().unwrap();
        assert!(!failing.contains_key(&object("deleted-while-failing")));
        assert!(failing.contains_key(&object("bob")));
    }
}
