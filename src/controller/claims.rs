//! Which AttentionUser holds an email when several declare it: the first to hold it keeps it.

use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::crd::AttentionUser;

/// The AttentionUsers the controller watches, to find others that declare the same email.
#[derive(Default)]
pub struct Claims {
    stores: Mutex<Vec<Store<AttentionUser>>>,
}

impl Claims {
    /// Includes the resources of `store` in every later check.
    pub fn watch(&self, store: Store<AttentionUser>) {
        self.stores.lock().expect("no thread panics while holding the lock").push(store);
    }

    /// `namespace/name` of the other resource that holds `user`'s email, if not `user` itself.
    pub fn holder_other_than(&self, user: &AttentionUser) -> Option<String> {
        let stores = self.stores.lock().expect("no thread panics while holding the lock");
        let everyone: Vec<Arc<AttentionUser>> = stores.iter().flat_map(Store::state).collect();
        let holder = holder(&claimed_email(user), &everyone)?;
        (holder.uid() != user.uid()).then(|| key(holder))
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
        .min_by_key(|user| {
            let recorded = user.status.as_ref().and_then(|status| status.uuid.as_ref()).is_some();
            (!recorded, user.creation_timestamp().map(|time| time.0), key(user))
        })
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
