//! Prometheus metrics of the operator. Labels take values from small fixed sets (reasons,
//! operations, outcomes), never emails, names or UUIDs.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadyLabel {
    ready: &'static str,
}

/// Every metric the operator exports, registered under the `attention_operator` prefix.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabel, Counter>,
    failures: Family<ReasonLabel, Counter>,
    reconcile_duration: Histogram,
    api_requests: Family<CallLabels, Counter>,
    rate_limited: Counter,
    limiter_wait: Counter<f64, AtomicU64>,
    users: Family<ReadyLabel, Gauge>,
    releases: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("attention_operator"),
            reconciles: Family::default(),
            failures: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            api_requests: Family::default(),
            rate_limited: Counter::default(),
            limiter_wait: Counter::default(),
            users: Family::default(),
            releases: Family::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "reconciles",
            "Reconciles by result: ready, not_ready (reported in status) or error",
            self.reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that did not end Ready, by reason",
            self.failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            self.reconcile_duration.clone(),
        );
        registry.register(
            "api_requests",
            "Requests to the Attention API by operation and outcome",
            self.api_requests.clone(),
        );
        registry.register(
            "api_rate_limited",
            "Answers 429 (rate limited) from the Attention API",
            self.rate_limited.clone(),
        );
        registry.register(
            "api_limiter_wait_seconds",
            "Time requests waited for the client-side rate and concurrency limits",
            self.limiter_wait.clone(),
        );
        registry.register(
            "users",
            "AttentionUser resources by the status of their Ready condition",
            self.users.clone(),
        );
        registry.register(
            "releases",
            "Deleted resources let go by the finalizer: Deleted, Retained or DeletionAbandoned",
            self.releases.clone(),
        );
    }

    /// Counts a reconcile that reported its outcome in status, and its failure by reason.
    pub fn reconciled(&self, ready: bool, failure: Option<&'static str>) {
        let result = if ready { "ready" } else { "not_ready" };
        self.reconciles.get_or_create(&ResultLabel { result }).inc();
        if let Some(reason) = failure {
            self.failures.get_or_create(&ReasonLabel { reason }).inc();
        }
    }

    /// Records how long one reconcile took, whatever it ended in.
    pub fn reconcile_took(&self, took: Duration) {
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Counts a reconcile that could not report its outcome.
    pub fn reconcile_error(&self, reason: &'static str) {
        self.reconciles.get_or_create(&ResultLabel { result: "error" }).inc();
        self.failures.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts one request to Attention.
    pub fn api_request(&self, operation: &'static str, outcome: &'static str) {
        self.api_requests.get_or_create(&CallLabels { operation, outcome }).inc();
        if outcome == "RateLimited" {
            self.rate_limited.inc();
        }
    }

    /// Counts a resource the finalizer let go, by what happened to its Attention user.
    pub fn released(&self, reason: &'static str) {
        self.releases.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Adds time a request spent waiting for the client-side limits.
    pub fn limiter_waited(&self, waited: Duration) {
        self.limiter_wait.inc_by(waited.as_secs_f64());
    }

    /// Sets how many resources have each Ready status (`True`, `False` or `Unknown`).
    pub fn set_users(&self, true_: i64, false_: i64, unknown: i64) {
        for (ready, count) in [("True", true_), ("False", false_), ("Unknown", unknown)] {
            self.users.get_or_create(&ReadyLabel { ready }).set(count);
        }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_are_counted_by_result_and_failures_by_reason() {
        let metrics = Metrics::new();
        metrics.reconciled(true, None);
        metrics.reconciled(false, Some("RateLimited"));
        metrics.reconcile_error("WriteStatus");
        metrics.reconciled(false, None);
        metrics.reconcile_took(Duration::from_millis(20));
        metrics.reconcile_took(Duration::from_millis(5));
        let text = metrics.encode();
        assert!(
            text.contains(r#"attention_operator_reconciles_total{result="ready"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"attention_operator_reconciles_total{result="not_ready"} 2"#));
        assert!(text.contains(r#"attention_operator_reconciles_total{result="error"} 1"#));
        assert!(
            text.contains(r#"attention_operator_reconcile_failures_total{reason="RateLimited"} 1"#)
        );
        assert!(!text.contains(r#"reason="Paused""#), "a pause is no failure: {text}");
        assert!(text.contains("attention_operator_reconcile_duration_seconds_count 2"));
        assert!(text.contains("attention_operator_reconcile_duration_seconds_sum 0.025"), "{text}");
    }

    #[test]
    fn api_requests_count_429s_and_limiter_waits() {
        let metrics = Metrics::new();
        metrics.api_request("list_users", "Success");
        metrics.api_request("create_user", "RateLimited");
        metrics.limiter_waited(Duration::from_millis(1500));
        let text = metrics.encode();
        assert!(text.contains(
            r#"attention_operator_api_requests_total{operation="list_users",outcome="Success"} 1"#
        ));
        assert!(text.contains("attention_operator_api_rate_limited_total 1"), "{text}");
        assert!(text.contains("attention_operator_api_limiter_wait_seconds_total 1.5"), "{text}");
    }

    #[test]
    fn releases_are_counted_by_what_became_of_the_user() {
        let metrics = Metrics::new();
        metrics.released("Deleted");
        metrics.released("DeletionAbandoned");
        let text = metrics.encode();
        assert!(
            text.contains(r#"attention_operator_releases_total{reason="Deleted"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"attention_operator_releases_total{reason="DeletionAbandoned"} 1"#)
        );
    }

    #[test]
    fn users_are_counted_by_ready_status() {
        let metrics = Metrics::new();
        metrics.set_users(3, 1, 0);
        let text = metrics.encode();
        assert!(text.contains(r#"attention_operator_users{ready="True"} 3"#), "{text}");
        assert!(text.contains(r#"attention_operator_users{ready="False"} 1"#));
        assert!(text.contains(r#"attention_operator_users{ready="Unknown"} 0"#));
    }
}
