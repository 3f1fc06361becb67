//! Which AttentionUser holds an email when several declare it: the first to hold it keeps it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::crd::AttentionUser;

/// Longest a check waits for every watch to have listed its resources, so that a holder in a
/// namespace whose watch has not listed yet is not missed after a start.
const STORES_READY_WAIT: Duration = Duration::from_secs(30);

/// The AttentionUsers the controller watches, to find others that declare the same email, and
/// which resource this process let act for each email.
#[derive(Default)]
pub struct Claims {
    stores: Mutex<Vec<Store<AttentionUser>>>,
    /// Lowercased email to the uid of the resource last let act for it. It settles the
    /// resources that the watches show too late to tell apart: two applied at once, where the
    /// second would otherwise pass the check before the first's status shows its user.
    acting: Mutex<HashMap<String, String>>,
}

impl Claims {
    /// Includes the resources of `store` in every later check.
    pub fn watch(&self, store: Store<AttentionUser>) {
        self.stores.lock().expect("no thread panics while holding the lock").push(store);
    }

    /// `namespace/name` of the other resource that holds `user`'s email, if not `user` itself.
    pub async fn holder_other_than(&self, user: &AttentionUser) -> Option<String> {
        let everyone = self.everyone().await;
        let holder = holder(&claimed_email(user), &everyone)?;
        (holder.uid() != user.uid()).then(|| key(holder))
    }

    /// Like `holder_other_than`, and when `user` holds its email, records that it acts for it,
    /// so that no other resource acts for that email while `user` is there to hold it.
    pub async fn claim(&self, user: &AttentionUser) -> Option<String> {
        let everyone = self.everyone().await;
        let email = claimed_email(user);
        let mut acting = self.acting.lock().expect("no thread panics while holding the lock");
        let live: HashSet<String> = everyone
            .iter()
            .filter(|other| other.metadata.deletion_timestamp.is_none())
            .filter_map(|other| other.uid())
            .collect();
        acting.retain(|_, uid| live.contains(uid));
        let actor = acting
            .get(&email)
            .and_then(|uid| everyone.iter().find(|other| other.uid().as_ref() == Some(uid)))
            .map(AsRef::as_ref)
            .filter(|actor| claimed_email(actor) == email);
        // A recorded user settles it; else the one let act first; else the oldest.
        let by_watch = holder(&email, &everyone);
        match by_watch.filter(|first| has_recorded(first)).or(actor).or(by_watch) {
            Some(holder) if holder.uid() != user.uid() => Some(key(holder)),
            _ => {
                if let Some(uid) = user.uid() {
                    acting.insert(email, uid);
                }
                None
            }
        }
    }

    /// Every watched resource, once every watch has listed (or STORES_READY_WAIT has passed).
    async fn everyone(&self) -> Vec<Arc<AttentionUser>> {
        let stores = self.stores.lock().expect("no thread panics while holding the lock").clone();
        let listed = futures::future::join_all(stores.iter().map(Store::wait_until_ready));
        if tokio::time::timeout(STORES_READY_WAIT, listed).await.is_err() {
            tracing::warn!("A watch has not listed its AttentionUsers; checking claims without it");
        }
        stores.iter().flat_map(Store::state).collect()
    }
}

/// The resource that holds `email` among `users`: one that has recorded an Attention user for
/// it, else the oldest; ties go to the first by namespace and name. Resources being deleted
/// hold nothing, so another can take over.
pub fn holder<'a>(email: &str, users: &'a [Arc<AttentionUser>]) -> Option<&'a AttentionUser> {
    users
        .iter()
        .map(AsRef::as_ref)
        .filter(|user| user.metadata.deletion_timestamp.is_none())
        .filter(|user| claimed_email(user) == email.to_lowercase())
        .min_by_key(|user| (!has_recorded(user), user.creation_timestamp().map(|t| t.0), key(user)))
}

fn has_recorded(user: &AttentionUser) -> bool {
    user.status.as_ref().and_then(|status| status.uuid.as_ref()).is_some()
}

/// The email a resource holds: its recorded user's once it has one (even if the spec was
/// edited since), else the one its spec declares; lowercased.
pub fn claimed_email(user: &AttentionUser) -> String {
    let recorded = user.status.as_ref().filter(|status| status.uuid.is_some());
    let email = recorded.and_then(|status| status.email.as_deref()).unwrap_or(&user.spec.email);
    email.to_lowercase()
}

fn key(user: &AttentionUser) -> String {
    format!("{}/{}", user.namespace().unwrap_or_default(), user.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AttentionUserSpec, AttentionUserStatus};
    use kube::runtime::reflector::{self, store::Writer};
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn user(
        namespace: &str,
        name: &str,
        email: &str,
        created: &str,
        uuid: Option<&str>,
    ) -> Arc<AttentionUser> {
        let spec: AttentionUserSpec = serde_json::from_value(json!({
            "email": email, "firstName": "A", "lastName": "B",
            "roleUUID": "3f1c7a52-5d0e-4c59-9f7b-2f6a9e0c1d24",
            "teams": [{"uuid": "8b0e2d6c-1a4f-4e3b-9c5d-7f2a1b3c4d5e"}],
        }))
        .unwrap();
        let mut user = AttentionUser::new(name, spec);
        user.metadata.namespace = Some(namespace.into());
        user.metadata.uid = Some(format!("{namespace}-{name}"));
        user.metadata.creation_timestamp = Some(serde_json::from_value(json!(created)).unwrap());
        user.status =
            uuid.map(|uuid| AttentionUserStatus { uuid: Some(uuid.into()), ..Default::default() });
        Arc::new(user)
    }

    #[test]
    fn the_oldest_claim_holds_an_unrecorded_email() {
        let users = [
            user("b", "late", "ada@x.io", "2026-02-01T00:00:00Z", None),
            user("a", "early", "Ada@X.io", "2026-01-01T00:00:00Z", None),
            user("a", "other", "bob@x.io", "2025-01-01T00:00:00Z", None),
        ];
        assert_eq!(holder("ada@x.io", &users).map(key).as_deref(), Some("a/early"));
    }

    #[test]
    fn a_resource_that_recorded_the_user_keeps_it_whatever_its_age() {
        let users = [
            user("a", "early", "ada@x.io", "2026-01-01T00:00:00Z", None),
            user("b", "holder", "ada@x.io", "2026-03-01T00:00:00Z", Some("u-1")),
        ];
        assert_eq!(holder("ada@x.io", &users).map(key).as_deref(), Some("b/holder"));
    }

    #[test]
    fn a_resource_holds_its_recorded_users_email_even_after_its_spec_changed() {
        let mut edited =
            (*user("a", "edited", "ada2@x.io", "2026-01-01T00:00:00Z", Some("u-1"))).clone();
        edited.status.as_mut().unwrap().email = Some("ada@x.io".into());
        let users = [Arc::new(edited), user("b", "late", "ada@x.io", "2026-02-01T00:00:00Z", None)];
        assert_eq!(holder("ada@x.io", &users).map(key).as_deref(), Some("a/edited"));
        assert_eq!(holder("ada2@x.io", &users).map(key), None, "it does not hold its new email");
    }

    #[test]
    fn ties_go_to_the_first_by_namespace_and_name() {
        let users = [
            user("b", "x", "ada@x.io", "2026-01-01T00:00:00Z", None),
            user("a", "y", "ada@x.io", "2026-01-01T00:00:00Z", None),
        ];
        assert_eq!(holder("ada@x.io", &users).map(key).as_deref(), Some("a/y"));
    }

    /// Claims over one store that has listed `users`, and that store's writer.
    fn watching(users: &[&Arc<AttentionUser>]) -> (Claims, Writer<AttentionUser>) {
        let claims = Claims::default();
        let (store, writer) = listed(users);
        claims.watch(store);
        (claims, writer)
    }

    /// A store as a watch that has listed `users` leaves it, and its writer.
    fn listed(users: &[&Arc<AttentionUser>]) -> (Store<AttentionUser>, Writer<AttentionUser>) {
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&Event::Init);
        for user in users {
            writer.apply_watcher_event(&Event::InitApply((***user).clone()));
        }
        writer.apply_watcher_event(&Event::InitDone);
        (store, writer)
    }

    #[tokio::test]
    async fn of_two_resources_applied_at_once_the_one_let_act_first_keeps_the_email() {
        // Same second: by name "a/a-second" would win, but "a/first" was seen and let act first.
        let first = user("a", "first", "ada@x.io", "2026-01-01T00:00:00Z", None);
        let second = user("a", "a-second", "Ada@x.io", "2026-01-01T00:00:00Z", None);
        let (claims, mut writer) = watching(&[&first]);
        assert_eq!(claims.claim(&first).await, None);

        writer.apply_watcher_event(&Event::Apply((*second).clone()));
        assert_eq!(claims.claim(&second).await.as_deref(), Some("a/first"));
        assert_eq!(claims.claim(&first).await, None, "the first keeps acting");
        assert_eq!(claims.holder_other_than(&first).await.as_deref(), Some("a/a-second"));
    }

    #[tokio::test]
    async fn a_recorded_user_outranks_the_one_let_act_first() {
        let early = user("a", "early", "ada@x.io", "2026-01-01T00:00:00Z", None);
        let holder = user("b", "holder", "ada@x.io", "2026-03-01T00:00:00Z", Some("u-1"));
        let (claims, mut writer) = watching(&[&early]);
        assert_eq!(claims.claim(&early).await, None);

        writer.apply_watcher_event(&Event::Apply((*holder).clone()));
        assert_eq!(claims.claim(&early).await.as_deref(), Some("b/holder"));
    }

    #[tokio::test]
    async fn the_one_let_act_lets_go_when_it_is_deleted() {
        let first = user("a", "first", "ada@x.io", "2026-01-01T00:00:00Z", None);
        let later = user("a", "later", "ada@x.io", "2026-02-01T00:00:00Z", None);
        let (claims, mut writer) = watching(&[&first, &later]);
        assert_eq!(claims.claim(&first).await, None);
        assert_eq!(claims.claim(&later).await.as_deref(), Some("a/first"));

        writer.apply_watcher_event(&Event::Delete((*first).clone()));
        assert_eq!(claims.claim(&later).await, None);
    }

    #[tokio::test]
    async fn a_check_waits_for_every_watch_to_list() {
        let holder = user("b", "holder", "ada@x.io", "2026-03-01T00:00:00Z", Some("u-1"));
        let early = user("a", "early", "ada@x.io", "2026-01-01T00:00:00Z", None);
        let claims = Claims::default();
        let (own, _own_writer) = listed(&[&early]);
        claims.watch(own);
        let (other, mut writer) = reflector::store();
        claims.watch(other);
        let listing = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer.apply_watcher_event(&Event::Init);
            writer.apply_watcher_event(&Event::InitApply((*holder).clone()));
            writer.apply_watcher_event(&Event::InitDone);
            writer
        });
        assert_eq!(claims.claim(&early).await.as_deref(), Some("b/holder"));
        drop(listing.await.unwrap());
    }

    #[test]
    fn a_resource_being_deleted_lets_another_take_over() {
        let mut leaving =
            (*user("a", "old", "ada@x.io", "2026-01-01T00:00:00Z", Some("u-1"))).clone();
        leaving.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2026-05-01T00:00:00Z")).unwrap());
        let users = [Arc::new(leaving), user("b", "new", "ada@x.io", "2026-04-01T00:00:00Z", None)];
        assert_eq!(holder("ada@x.io", &users).map(key).as_deref(), Some("b/new"));
    }
}
