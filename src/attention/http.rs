//! The Attention client on reqwest: auth, timeouts, a shared rate limit and error mapping.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use serde_json::Value;
use tokio::sync::Semaphore;
use url::Url;

use super::AttentionApi;
use super::error::{ApiError, redact};
use super::wire::{NewUser, RemoteUser, UserUpdate, decode_user, decode_users};
use crate::metrics::Metrics;

/// Most bytes of an error answer read; the excerpt kept is far shorter.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// How the API key is put in the `Authorization` header; the API's own pages disagree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthScheme {
    /// `Authorization: Bearer <key>`, as the authentication guide shows.
    #[default]
    Bearer,
    /// `Authorization: <key>`, as the per-endpoint examples show.
    Raw,
}

/// Everything the client needs to reach the API.
#[derive(Clone)]
pub struct ClientSettings {
    /// API root including the version, such as `https://api.attention.tech/v2`.
    pub base_url: Url,
    pub api_key: String,
    pub auth_scheme: AuthScheme,
    /// Limit on a whole request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// Requests per second, shared by every reconcile.
    pub requests_per_second: NonZeroU32,
    /// Requests under way at once, shared by every reconcile.
    pub max_in_flight: usize,
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &"<redacted>")
            .field("auth_scheme", &self.auth_scheme)
            .field("timeout", &self.timeout)
            .field("requests_per_second", &self.requests_per_second)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the API key is empty")]
    EmptyKey,
    #[error("the API URL must be an http or https URL, such as https://api.attention.tech/v2")]
    BadUrl,
    #[error("the API key contains characters an HTTP header cannot carry")]
    KeyNotAHeader,
    #[error("failed to build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The real Attention API over HTTPS.
pub struct HttpClient {
    http: reqwest::Client,
    base: Url,
    api_key: String,
    rate: DefaultDirectRateLimiter,
    in_flight: Semaphore,
    metrics: Option<Arc<Metrics>>,
}

impl HttpClient {
    pub fn new(settings: ClientSettings) -> Result<HttpClient, BuildError> {
        let key = settings.api_key.trim().to_owned();
        if key.is_empty() {
            return Err(BuildError::EmptyKey);
        }
        let url = &settings.base_url;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(BuildError::BadUrl);
        }
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .default_headers(auth_headers(&key, settings.auth_scheme)?)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("attention-operator/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpClient {
            http,
            base: with_trailing_slash(settings.base_url),
            api_key: key,
            rate: RateLimiter::direct(Quota::per_second(settings.requests_per_second)),
            in_flight: Semaphore::new(settings.max_in_flight.max(1)),
            metrics: None,
        })
    }

    /// Counts every request, its outcome and its wait for the limits in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> HttpClient {
        self.metrics = Some(metrics);
        self
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("relative API paths always join onto the base URL")
    }

    /// The URL of one user; the UUID is one path segment, escaped as such.
    fn user_url(&self, uuid: &str) -> Url {
        let mut url = self.url("organizations/users");
        url.path_segments_mut().expect("an http(s) URL has path segments").push(uuid);
        url
    }

    /// Sends one request under the shared limits and returns the decoded JSON answer, or
    /// `Null` when the answer's body does not matter.
    async fn send(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
        secrets: &[&str],
        body: Body,
    ) -> Result<Value, ApiError> {
        let queued = Instant::now();
        self.rate.until_ready().await;
        let _permit = self.in_flight.acquire().await.expect("the semaphore is never closed");
        let started = Instant::now();
        let result = self.exchange(request, secrets, body).await;
        let outcome = result.as_ref().map_or_else(|e| e.reason(), |_| "Success");
        if let Some(metrics) = &self.metrics {
            metrics.limiter_waited(started - queued);
            metrics.api_request(operation, outcome);
        }
        tracing::debug!(
            operation,
            outcome,
            elapsed_ms = started.elapsed().as_millis(),
            "Attention call"
        );
        result
    }

    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        secrets: &[&str],
        body: Body,
    ) -> Result<Value, ApiError> {
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        if status.is_success() && body == Body::Ignored {
            return Ok(Value::Null);
        }
        if status.is_success() {
            let body = response.bytes().await.map_err(transport_error)?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&body).map_err(|e| ApiError::Unavailable {
                detail: format!("undecodable answer: {:?} error", e.classify()).to_lowercase(),
            });
        }
        let retry_after = retry_after(response.headers());
        let body = error_body(response).await;
        let mut secrets = secrets.to_vec();
        secrets.push(&self.api_key);
        let body = redact(&body, &secrets);
        Err(ApiError::from_status(status.as_u16(), retry_after, &body))
    }
}

#[async_trait]
impl AttentionApi for HttpClient {
    async fn list_users(&self) -> Result<Vec<RemoteUser>, ApiError> {
        let request = self.http.get(self.url("organizations/users"));
        let body = self.send("list_users", request, &[], Body::Json).await?;
        let (users, skipped) =
            decode_users(body).map_err(|detail| ApiError::Unavailable { detail })?;
        if skipped > 0 {
            tracing::warn!(skipped, "Skipped users without uuid or email in the list answer");
        }
        Ok(users)
    }

    async fn create_user(&self, user: &NewUser) -> Result<RemoteUser, ApiError> {
        let request = self.http.post(self.url("organizations/users")).json(user);
        let secrets: Vec<&str> = user.password.iter().map(|p| p.expose()).collect();
        let body = self.send("create_user", request, &secrets, Body::Json).await?;
        decode_user(body).map_err(|detail| ApiError::Unavailable { detail })
    }

    async fn update_user(&self, uuid: &str, update: &UserUpdate) -> Result<RemoteUser, ApiError> {
        check_user_id(uuid)?;
        let request = self.http.patch(self.user_url(uuid)).json(update);
        let secrets: Vec<&str> = update.password.iter().map(|p| p.expose()).collect();
        let body = self.send("update_user", request, &secrets, Body::Json).await?;
        decode_user(body).map_err(|detail| ApiError::Unavailable { detail })
    }

    async fn delete_user(&self, uuid: &str) -> Result<(), ApiError> {
        check_user_id(uuid)?;
        let request = self.http.delete(self.user_url(uuid));
        self.send("delete_user", request, &[], Body::Ignored).await.map(drop)
    }
}

/// What a successful answer's body is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    /// A JSON document to decode.
    Json,
    /// Nothing the operator reads (a delete's answer is not documented).
    Ignored,
}

/// Refuses, without sending anything, an id that no user can have and that would address the
/// user collection itself once put in a URL: empty, `.` or `..`.
fn check_user_id(uuid: &str) -> Result<(), ApiError> {
    match uuid {
        "" | "." | ".." => Err(ApiError::NotFound),
        _ => Ok(()),
    }
}

/// Makes ring the process's TLS provider, as kube uses it; later calls change nothing.
/// Every reqwest client of the process needs it, tests' ones included.
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

fn auth_headers(key: &str, scheme: AuthScheme) -> Result<HeaderMap, BuildError> {
    let value = match scheme {
        AuthScheme::Bearer => format!("Bearer {key}"),
        AuthScheme::Raw => key.to_owned(),
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| BuildError::KeyNotAHeader)?;
    value.set_sensitive(true);
    Ok(HeaderMap::from_iter([(AUTHORIZATION, value)]))
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Longest `Retry-After` taken as it is; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The `Retry-After` delay, when given in seconds (the form APIs use for 429), at most an hour.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The start of an error answer's body: enough to explain it, never the whole of a huge one.
async fn error_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}

fn transport_error(error: reqwest::Error) -> ApiError {
    let detail = if error.is_timeout() {
        "request timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else if error.is_decode() || error.is_body() {
        "answer body could not be read".to_owned()
    } else {
        format!("request failed: {}", error.without_url())
    };
    ApiError::Unavailable { detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_keep_their_version_segment() {
        let base = with_trailing_slash(Url::parse("https://api.attention.tech/v2").unwrap());
        assert_eq!(
            base.join("organizations/users").unwrap().as_str(),
            "https://api.attention.tech/v2/organizations/users"
        );
        let base = with_trailing_slash(Url::parse("http://127.0.0.1:9/v2/").unwrap());
        assert_eq!(base.as_str(), "http://127.0.0.1:9/v2/");
    }

    #[test]
    fn auth_header_follows_the_scheme_and_is_sensitive() {
        let bearer = auth_headers("k.e.y", AuthScheme::Bearer).unwrap();
        assert_eq!(bearer[AUTHORIZATION], "Bearer k.e.y");
        assert!(bearer[AUTHORIZATION].is_sensitive());
        let raw = auth_headers("k.e.y", AuthScheme::Raw).unwrap();
        assert_eq!(raw[AUTHORIZATION], "k.e.y");
    }

    #[test]
    fn keys_that_cannot_be_a_header_are_refused_without_echoing_them() {
        let error = auth_headers("bad\nkey", AuthScheme::Bearer).unwrap_err();
        assert!(!error.to_string().contains("bad"));
    }

    #[test]
    fn retry_after_reads_seconds_and_ignores_other_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("12"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(12)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("9223372036854775807"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER), "an absurd delay is capped");
    }

    #[test]
    fn only_http_urls_are_accepted() {
        let settings = |url: &str| ClientSettings {
            base_url: Url::parse(url).unwrap(),
            api_key: "k".into(),
            auth_scheme: AuthScheme::Bearer,
            timeout: Duration::from_secs(1),
            requests_per_second: NonZeroU32::new(5).unwrap(),
            max_in_flight: 2,
        };
        assert!(HttpClient::new(settings("https://api.attention.tech/v2")).is_ok());
        for bad in ["mailto:ops@example.com", "ftp://example.com/v2"] {
            assert!(matches!(HttpClient::new(settings(bad)), Err(BuildError::BadUrl)), "{bad}");
        }
    }

    #[test]
    fn settings_debug_hides_the_key() {
        let settings = ClientSettings {
            base_url: Url::parse("http://127.0.0.1:1/v2").unwrap(),
            api_key: "super-secret-key".into(),
            auth_scheme: AuthScheme::Bearer,
            timeout: Duration::from_secs(1),
            requests_per_second: NonZeroU32::new(5).unwrap(),
            max_in_flight: 2,
        };
        assert!(!format!("{settings:?}").contains("super-secret-key"));
    }
}
