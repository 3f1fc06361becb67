//! A shared view of the organisation's users, so that reconciles do not each list it.
//!
//! The view is refreshed when it is older than its maximum age, after it was invalidated (a
//! create failed and may still have reached the server), and before a user recorded in status
//! is declared missing. Users the operator creates are added to it at once, so its own creates
//! can never be hidden by a stale view. Refreshes are serialised: callers that arrive during a
//! refresh wait for it and use its result, a failure included, instead of listing again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::attention::{ApiError, AttentionApi, RemoteUser};

/// Longest a Retry-After on the list is honoured for, whatever Attention says.
const MAX_THROTTLE: Duration = Duration::from_secs(3600);

pub struct Directory {
    api: Arc<dyn AttentionApi>,
    max_age: Duration,
    view: Mutex<View>,
}

#[derive(Default)]
struct View {
    users: Vec<RemoteUser>,
    /// When the list behind `users` was fetched; `None` when it must be fetched again.
    fetched: Option<Instant>,
    /// Until when Attention asked not to list again (a 429 with Retry-After): lookups before
    /// then are answered rate-limited, with the time left, instead of sending another list.
    throttled_until: Option<Instant>,
    /// When the last list failed, and how: lookups that were already waiting for that list
    /// share its failure instead of each sending a list of its own into an outage.
    failed: Option<(Instant, ApiError)>,
}

impl Directory {
    pub fn new(api: Arc<dyn AttentionApi>, max_age: Duration) -> Directory {
        Directory { api, max_age, view: Mutex::default() }
    }

    /// The user with this email (ignoring case), from a view at most `max_age` old.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<RemoteUser>, ApiError> {
        let asked = Instant::now();
        let mut view = self.view.lock().await;
        if view.is_older_than(self.max_age) {
            self.refresh(&mut view, asked).await?;
        }
        Ok(view.users.iter().find(|user| user.has_email(email)).cloned())
    }

    /// The user with this UUID. A user absent from the view is only reported absent by a view
    /// fetched after this call began, so a stale view never declares a user missing.
    pub async fn find_by_uuid(&self, uuid: &str) -> Result<Option<RemoteUser>, ApiError> {
        let asked = Instant::now();
        let mut view = self.view.lock().await;
        if view.is_older_than(self.max_age) {
            self.refresh(&mut view, asked).await?;
        }
        if let Some(user) = view.find_uuid(uuid) {
            return Ok(Some(user.clone()));
        }
        if view.fetched.is_none_or(|fetched| fetched < asked) {
            self.refresh(&mut view, asked).await?;
        }
        Ok(view.find_uuid(uuid).cloned())
    }

    /// Adds or replaces a user the operator itself created or changed.
    pub async fn record(&self, user: RemoteUser) {
        let mut view = self.view.lock().await;
        view.users.retain(|known| known.uuid != user.uuid);
        view.users.push(user);
    }

    /// Removes a user the operator itself deleted.
    pub async fn forget(&self, uuid: &str) {
        self.view.lock().await.users.retain(|known| known.uuid != uuid);
    }

    /// Forces the next lookup to list the organisation again.
    pub async fn invalidate(&self) {
        self.view.lock().await.fetched = None;
    }

    /// Lists the organisation again for a lookup that began at `asked`.
    async fn refresh(&self, view: &mut View, asked: Instant) -> Result<(), ApiError> {
        if let Some((at, error)) = &view.failed
            && *at >= asked
        {
            return Err(error.clone());
        }
        if let Some(until) = view.throttled_until
            && let Some(left) = until.checked_duration_since(Instant::now())
        {
            return Err(ApiError::RateLimited { retry_after: Some(left) });
        }
        let users = match self.api.list_users().await {
            Ok(users) => users,
            Err(error) => {
                if let ApiError::RateLimited { retry_after: Some(delay) } = &error {
                    view.throttled_until = Instant::now().checked_add((*delay).min(MAX_THROTTLE));
                }
                view.failed = Some((Instant::now(), error.clone()));
                return Err(error);
            }
        };
        tracing::debug!(users = users.len(), "Refreshed the view of the organisation's users");
        *view = View { users, fetched: Some(Instant::now()), ..View::default() };
        Ok(())
    }
}

impl View {
    fn is_older_than(&self, max_age: Duration) -> bool {
        self.fetched.is_none_or(|fetched| fetched.elapsed() > max_age)
    }

    fn find_uuid(&self, uuid: &str) -> Option<&RemoteUser> {
        self.users.iter().find(|user| user.uuid == uuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::{NewUser, UserUpdate};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An organisation in memory that counts list calls.
    #[derive(Default)]
    struct Org {
        users: std::sync::Mutex<Vec<RemoteUser>>,
        lists: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
        rate_limit: std::sync::Mutex<Option<Duration>>,
    }

    #[async_trait]
    impl AttentionApi for Org {
        async fn list_users(&self) -> Result<Vec<RemoteUser>, ApiError> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(ApiError::Unavailable { detail: "status 503: down".into() });
            }
            if let Some(delay) = *self.rate_limit.lock().unwrap() {
                return Err(ApiError::RateLimited { retry_after: Some(delay) });
            }
            Ok(self.users.lock().unwrap().clone())
        }

        async fn create_user(&self, _: &NewUser) -> Result<RemoteUser, ApiError> {
            unreachable!("the directory never creates users")
        }

        async fn update_user(&self, _: &str, _: &UserUpdate) -> Result<RemoteUser, ApiError> {
            unreachable!("the directory never changes users")
        }

        async fn delete_user(&self, _: &str) -> Result<(), ApiError> {
            unreachable!("the directory never deletes users")
        }
    }

    fn user(uuid: &str, email: &str) -> RemoteUser {
        serde_json::from_value(serde_json::json!({"uuid": uuid, "email": email})).unwrap()
    }

    fn org_with(users: &[RemoteUser]) -> Arc<Org> {
        let org = Org::default();
        *org.users.lock().unwrap() = users.to_vec();
        Arc::new(org)
    }

    #[tokio::test]
    async fn many_lookups_within_the_maximum_age_cost_one_list() {
        let org = org_with(&[user("u-1", "a@x.io"), user("u-2", "b@x.io")]);
        let directory = Arc::new(Directory::new(org.clone(), Duration::from_secs(60)));
        let lookups = (0..50).map(|i| {
            let directory = directory.clone();
            async move { directory.find_by_email(&format!("user{i}@x.io")).await }
        });
        for found in futures::future::join_all(lookups).await {
            assert_eq!(found.unwrap(), None);
        }
        assert_eq!(directory.find_by_email("B@X.IO").await.unwrap().unwrap().uuid, "u-2");
        assert_eq!(org.lists.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stale_view_is_listed_again() {
        let org = org_with(&[]);
        let directory = Directory::new(org.clone(), Duration::ZERO);
        directory.find_by_email("a@x.io").await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        org.users.lock().unwrap().push(user("u-1", "a@x.io"));
        assert!(directory.find_by_email("a@x.io").await.unwrap().is_some());
        assert_eq!(org.lists.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn recorded_users_are_found_without_listing_again() {
        let org = org_with(&[]);
        let directory = Directory::new(org.clone(), Duration::from_secs(60));
        assert_eq!(directory.find_by_email("new@x.io").await.unwrap(), None);
        directory.record(user("u-9", "new@x.io")).await;
        assert_eq!(directory.find_by_email("new@x.io").await.unwrap().unwrap().uuid, "u-9");
        assert_eq!(directory.find_by_uuid("u-9").await.unwrap().unwrap().email, "new@x.io");
        assert_eq!(org.lists.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn forgotten_users_are_no_longer_found_by_email() {
        let org = org_with(&[user("u-1", "a@x.io")]);
        let directory = Directory::new(org.clone(), Duration::from_secs(60));
        assert!(directory.find_by_email("a@x.io").await.unwrap().is_some());
        directory.forget("u-1").await;
        assert_eq!(directory.find_by_email("a@x.io").await.unwrap(), None);
        assert_eq!(org.lists.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalidation_makes_the_next_lookup_list_again() {
        let org = org_with(&[]);
        let directory = Directory::new(org.clone(), Duration::from_secs(60));
        directory.find_by_email("a@x.io").await.unwrap();
        org.users.lock().unwrap().push(user("u-1", "a@x.io"));
        directory.invalidate().await;
        assert!(directory.find_by_email("a@x.io").await.unwrap().is_some());
        assert_eq!(org.lists.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_uuid_is_declared_missing_only_by_a_fresh_list() {
        let org = org_with(&[user("u-1", "a@x.io")]);
        let directory = Directory::new(org.clone(), Duration::from_secs(60));
        directory.find_by_email("a@x.io").await.unwrap();
        org.users.lock().unwrap().push(user("u-2", "b@x.io"));
        // u-2 is not in the cached view: the directory lists again instead of saying missing.
        assert_eq!(directory.find_by_uuid("u-2").await.unwrap().unwrap().email, "b@x.io");
        org.users.lock().unwrap().clear();
        assert_eq!(directory.find_by_uuid("u-3").await.unwrap(), None);
        assert_eq!(org.lists.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_missing_uuids_share_one_confirming_list() {
        let org = org_with(&[]);
        let directory = Arc::new(Directory::new(org.clone(), Duration::from_secs(60)));
        directory.find_by_email("warm@x.io").await.unwrap();
        let lookups = (0..20).map(|i| {
            let directory = directory.clone();
            async move { directory.find_by_uuid(&format!("gone-{i}")).await }
        });
        for found in futures::future::join_all(lookups).await {
            assert_eq!(found.unwrap(), None);
        }
        assert_eq!(org.lists.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_rate_limited_list_is_not_sent_again_before_the_delay_attention_asked_for() {
        let org = org_with(&[user("u-1", "a@x.io")]);
        *org.rate_limit.lock().unwrap() = Some(Duration::from_millis(300));
        let directory = Arc::new(Directory::new(org.clone(), Duration::ZERO));
        let lookups = (0..10).map(|_| {
            let directory = directory.clone();
            async move { directory.find_by_email("a@x.io").await }
        });
        for found in futures::future::join_all(lookups).await {
            let ApiError::RateLimited { retry_after: Some(left) } = found.unwrap_err() else {
                panic!("expected the 429 shared");
            };
            assert!(left <= Duration::from_millis(300), "only what is left of the delay");
        }
        assert_eq!(org.lists.load(Ordering::SeqCst), 1);
        *org.rate_limit.lock().unwrap() = None;
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(directory.find_by_email("a@x.io").await.unwrap().is_some());
        assert_eq!(org.lists.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn lookups_waiting_during_an_outage_share_one_failed_list() {
        let org = org_with(&[]);
        org.fail.store(true, Ordering::SeqCst);
        let directory = Arc::new(Directory::new(org.clone(), Duration::from_secs(60)));
        let lookups = (0..10).map(|i| {
            let directory = directory.clone();
            async move {
                match i % 2 {
                    0 => directory.find_by_email("a@x.io").await,
                    _ => directory.find_by_uuid("u-1").await,
                }
            }
        });
        for found in futures::future::join_all(lookups).await {
            assert_eq!(found.unwrap_err().reason(), "Unavailable");
        }
        assert_eq!(org.lists.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_refresh_is_reported_and_retried_next_time() {
        let org = org_with(&[user("u-1", "a@x.io")]);
        org.fail.store(true, Ordering::SeqCst);
        let directory = Directory::new(org.clone(), Duration::from_secs(60));
        let error = directory.find_by_email("a@x.io").await.unwrap_err();
        assert_eq!(error.reason(), "Unavailable");
        org.fail.store(false, Ordering::SeqCst);
        assert!(directory.find_by_email("a@x.io").await.unwrap().is_some());
    }
}
