//! How a failed Attention call is classified, and secret-free excerpts of what it answered.

use std::time::Duration;

use serde_json::Value;

/// Longest excerpt of an answer body kept in an error, in characters.
const EXCERPT_CHARS: usize = 160;

/// A failed call to the Attention API, classified by what the operator should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The API refused the request as it stands (4xx other than 401, 403, 404 and 429): it
    /// will not succeed until the request changes.
    #[error("attention rejected the request with status {status}: {excerpt}")]
    Rejected { status: u16, excerpt: String },

    /// The API key is missing, wrong, expired or lacks the rights (401 or 403).
    #[error("attention refused the API key with status {status}")]
    Unauthorized { status: u16 },

    /// The thing asked for does not exist (404).
    #[error("attention answered not found")]
    NotFound,

    /// Too many requests (429); `retry_after` is the delay the API asked for, if any.
    #[error("attention is rate limiting requests{}", retry_after_text(*.retry_after))]
    RateLimited { retry_after: Option<Duration> },

    /// The API could not be reached or answered something unusable: 5xx, a timeout, a lost
    /// connection or a body that cannot be decoded. The request may or may not have taken
    /// effect.
    #[error("attention is unavailable: {detail}")]
    Unavailable { detail: String },
}

impl ApiError {
    /// Classifies an HTTP answer that was not a success.
    pub fn from_status(status: u16, retry_after: Option<Duration>, body: &str) -> ApiError {
        match status {
            401 | 403 => ApiError::Unauthorized { status },
            404 => ApiError::NotFound,
            429 => ApiError::RateLimited { retry_after },
            408 => ApiError::Unavailable { detail: "status 408: request timed out".to_owned() },
            400..=499 => ApiError::Rejected { status, excerpt: excerpt(body) },
            _ => ApiError::Unavailable { detail: format!("status {status}: {}", excerpt(body)) },
        }
    }

    /// Whether the failed request may still have taken effect on the server: the API did not
    /// answer, or answered with a server error.
    pub fn may_have_taken_effect(&self) -> bool {
        matches!(self, ApiError::Unavailable { .. })
    }

    /// The reason of a refused request, as `reason` names it.
    pub const REJECTED: &'static str = "Rejected";

    /// A short, stable name for the class of error, for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Rejected { .. } => ApiError::REJECTED,
            ApiError::Unauthorized { .. } => "Unauthorized",
            ApiError::NotFound => "NotFound",
            ApiError::RateLimited { .. } => "RateLimited",
            ApiError::Unavailable { .. } => "Unavailable",
        }
    }
}

fn retry_after_text(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(delay) => format!(" (retry after {})", humantime::format_duration(delay)),
        None => String::new(),
    }
}

/// The start of an answer body on one line, without control characters, for error messages.
pub fn excerpt(body: &str) -> String {
    let flat: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if flat.is_empty() {
        return "empty body".to_owned();
    }
    match flat.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

/// `text` with every occurrence of each non-empty secret replaced by `<redacted>`: as written,
/// as a JSON string would escape it, and inside the strings of a JSON body, whose escapes
/// (`\"`, `\\`, `\u0026`, ...) could otherwise hide it.
///
/// Applied to a whole answer body before it is cut to an excerpt, so no part of a secret survives.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let secrets: Vec<&str> = secrets.iter().copied().filter(|secret| !secret.is_empty()).collect();
    let text = match serde_json::from_str::<Value>(text) {
        Ok(mut json) => {
            redact_strings(&mut json, &secrets);
            json.to_string()
        }
        Err(_) => text.to_owned(),
    };
    secrets.iter().fold(text, |text, secret| {
        let escaped = serde_json::to_string(secret).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        text.replace(secret, "<redacted>").replace(escaped, "<redacted>")
    })
}

fn redact_strings(value: &mut Value, secrets: &[&str]) {
    match value {
        Value::String(text) => {
            *text = secrets
                .iter()
                .fold(std::mem::take(text), |text, secret| text.replace(secret, "<redacted>"));
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_strings(item, secrets)),
        Value::Object(fields) => {
            fields.values_mut().for_each(|field| redact_strings(field, secrets));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_by_what_the_operator_should_do() {
        let class = |status| ApiError::from_status(status, None, "body").reason();
        assert_eq!(class(400), "Rejected");
        assert_eq!(class(409), "Rejected");
        assert_eq!(class(408), "Unavailable");
        assert_eq!(class(422), "Rejected");
        assert_eq!(class(401), "Unauthorized");
        assert_eq!(class(403), "Unauthorized");
        assert_eq!(class(404), "NotFound");
        assert_eq!(class(429), "RateLimited");
        assert_eq!(class(500), "Unavailable");
        assert_eq!(class(502), "Unavailable");
        assert_eq!(class(503), "Unavailable");
    }

    #[test]
    fn rate_limit_keeps_the_retry_after_delay() {
        let error = ApiError::from_status(429, Some(Duration::from_secs(7)), "");
        assert_eq!(error, ApiError::RateLimited { retry_after: Some(Duration::from_secs(7)) });
        assert_eq!(error.to_string(), "attention is rate limiting requests (retry after 7s)");
    }

    #[test]
    fn excerpt_is_one_short_line() {
        let body = format!("<html>\n\t<h1>Bad Gateway</h1>\r\n{}</html>", "x".repeat(500));
        let text = excerpt(&body);
        assert!(text.starts_with("<html> <h1>Bad Gateway</h1> xxx"));
        assert!(!text.contains('\n') && !text.contains('\t'));
        assert_eq!(text.chars().count(), EXCERPT_CHARS + 3);
    }

    #[test]
    fn excerpt_cuts_on_character_boundaries() {
        let text = excerpt(&"é".repeat(400));
        assert_eq!(text, format!("{}...", "é".repeat(EXCERPT_CHARS)));
    }

    #[test]
    fn secrets_escaped_in_json_are_redacted_too() {
        let secret = r#"pa"ss\w0rd&<x>"#;
        let go_style = r#"{"message":"password pa\"ss\\w0rd\u0026\u003cx\u003e is weak"}"#;
        let plain_json = serde_json::json!({"message": format!("password {secret} is weak")});
        for body in [go_style.to_owned(), plain_json.to_string(), format!("<p>{secret}</p>")] {
            let text = redact(&body, &[secret]);
            assert!(text.contains("<redacted>"), "nothing was redacted");
            assert!(!text.contains("w0rd"), "part of the secret survives");
        }
    }

    #[test]
    fn empty_bodies_say_so() {
        assert_eq!(excerpt(" \n "), "empty body");
    }

    #[test]
    fn redaction_removes_every_secret_from_the_text() {
        let body = redact("password hunter2 is weak; key abc.def", &["hunter2", "abc.def", ""]);
        let text = ApiError::from_status(400, None, &body).to_string();
        assert!(!text.contains("hunter2") && !text.contains("abc.def"), "a secret survives");
        assert!(text.contains("password <redacted> is weak"), "the redaction marker is missing");
    }
}
