//! Fault switches of the sandbox and the pure decisions taken from them.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Faults the sandbox injects into API requests; all off by default.
///
/// Settable at start, through [`super::Sandbox::set_faults`] and at `PUT /_sandbox/faults`.
/// Counters (`rate_limit_next`, `commit_then_502_next`) count down as they fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Sleep this long before answering any API request.
    pub latency_ms: u64,
    /// Fraction (0..=1) of API requests answered `error_status` before doing anything.
    pub error_rate: f64,
    /// Status used for `error_rate` failures.
    pub error_status: u16,
    /// The next N API requests answer 429.
    pub rate_limit_next: u32,
    /// Sent as `Retry-After` (seconds) on the 429s of `rate_limit_next`.
    pub retry_after_secs: Option<u64>,
    /// The next N creates are committed, then answered 502 with an HTML body.
    pub commit_then_502_next: u32,
    /// A create is committed, then its answer is held back this long.
    pub hold_after_commit_ms: u64,
    /// Status of the answer to a create with an email that already exists.
    pub duplicate_status: u16,
    /// `DELETE` on a user answers `delete_unsupported_status`, as if the API had no such route.
    pub delete_unsupported: bool,
    /// Status of those answers: 405 (the default) or 404, which the API documentation also
    /// allows for a missing delete call.
    pub delete_unsupported_status: u16,
    /// `PATCH` answers the user flat instead of wrapped in `data`.
    pub flat_update_answers: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            error_rate: 0.0,
            error_status: 500,
            rate_limit_next: 0,
            retry_after_secs: None,
            commit_then_502_next: 0,
            hold_after_commit_ms: 0,
            duplicate_status: 409,
            delete_unsupported: false,
            delete_unsupported_status: 405,
            flat_update_answers: false,
        }
    }
}

impl Faults {
    /// Checks the values a status code or a rate must have; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err("error_rate must be between 0 and 1".to_owned());
        }
        if !is_error_status(self.error_status) {
            return Err("error_status must be an http status from 400 to 599".to_owned());
        }
        if !is_error_status(self.duplicate_status) {
            return Err("duplicate_status must be an http status from 400 to 599".to_owned());
        }
        if !is_error_status(self.delete_unsupported_status) {
            return Err("delete_unsupported_status must be an http status from 400 to 599".into());
        }
        Ok(())
    }

    /// Consumes one pending 429; answers the `Retry-After` seconds to send, if any.
    pub(crate) fn take_rate_limit(&mut self) -> Option<Option<u64>> {
        if self.rate_limit_next == 0 {
            return None;
        }
        self.rate_limit_next -= 1;
        Some(self.retry_after_secs)
    }

    /// The status to fail with when `roll` (uniform in 0..1) falls under `error_rate`.
    pub(crate) fn error_for_roll(&self, roll: f64) -> Option<StatusCode> {
        (roll < self.error_rate).then(|| status_or(self.error_status, 500))
    }

    /// Consumes one pending commit-then-502; true when this create must answer 502.
    pub(crate) fn take_commit_then_502(&mut self) -> bool {
        if self.commit_then_502_next == 0 {
            return false;
        }
        self.commit_then_502_next -= 1;
        true
    }

    /// The status a duplicate create answers with.
    pub(crate) fn duplicate_status_code(&self) -> StatusCode {
        status_or(self.duplicate_status, 409)
    }
}

fn is_error_status(code: u16) -> bool {
    (400..=599).contains(&code)
}

/// `code` as a status when it is a valid error status, else `fallback`.
fn status_or(code: u16, fallback: u16) -> StatusCode {
    let code = if is_error_status(code) { code } else { fallback };
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_all_off() {
        let faults: Faults = serde_json::from_str("{}").unwrap();
        assert_eq!(faults, Faults::default());
        assert_eq!(faults.error_status, 500);
        assert_eq!(faults.duplicate_status, 409);
        assert!(faults.validate().is_ok());
    }

    #[test]
    fn partial_json_keeps_other_defaults() {
        let faults: Faults = serde_json::from_str(r#"{"rate_limit_next": 2}"#).unwrap();
        assert_eq!(faults.rate_limit_next, 2);
        assert_eq!(faults.duplicate_status, 409);
    }

    #[test]
    fn rate_limit_counts_down() {
        let mut faults =
            Faults { rate_limit_next: 2, retry_after_secs: Some(3), ..Faults::default() };
        assert_eq!(faults.take_rate_limit(), Some(Some(3)));
        assert_eq!(faults.take_rate_limit(), Some(Some(3)));
        assert_eq!(faults.take_rate_limit(), None);
    }

    #[test]
    fn error_roll_respects_rate_bounds() {
        let never = Faults::default();
        assert_eq!(never.error_for_roll(0.0), None);
        let always = Faults { error_rate: 1.0, error_status: 503, ..Faults::default() };
        assert_eq!(always.error_for_roll(0.999_999), Some(StatusCode::SERVICE_UNAVAILABLE));
    }

    #[test]
    fn commit_then_502_counts_down() {
        let mut faults = Faults { commit_then_502_next: 1, ..Faults::default() };
        assert!(faults.take_commit_then_502());
        assert!(!faults.take_commit_then_502());
    }

    #[test]
    fn validate_rejects_out_of_range_values() {
        let rate = Faults { error_rate: 1.5, ..Faults::default() };
        assert!(rate.validate().unwrap_err().contains("error_rate"));
        let status = Faults { duplicate_status: 200, ..Faults::default() };
        assert!(status.validate().unwrap_err().contains("duplicate_status"));
    }

    #[test]
    fn invalid_statuses_fall_back_when_used() {
        let faults = Faults {
            error_rate: 1.0,
            error_status: 42,
            duplicate_status: 1000,
            ..Faults::default()
        };
        assert_eq!(faults.error_for_roll(0.5), Some(StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(faults.duplicate_status_code(), StatusCode::CONFLICT);
    }
}
