//! The Kubernetes access the operator needs, as RBAC rules; the Helm chart must grant exactly
//! these, and tests check both the chart and the calls the reconcile makes against them.

/// One RBAC rule: API group ("" is the core group), resource, verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
}

/// Everything the operator reads or writes in Kubernetes.
pub const REQUIRED: &[Access] = &[
    // The controller lists and watches its resources, and patches their finalizers when the
    // deletion policy needs one.
    Access {
        group: "attention.tech",
        resource: "attentionusers",
        verbs: &["list", "watch", "patch"],
    },
    // Status is written with server-side apply on the status subresource.
    Access { group: "attention.tech", resource: "attentionusers/status", verbs: &["patch"] },
    // Password Secrets are read by name; the metadata of Secrets (never their data) is
    // watched so that a rotated password reaches its user at once.
    Access { group: "", resource: "secrets", verbs: &["get", "list", "watch"] },
    // Events are created, and patched when kube's recorder folds repeats into a series.
    Access { group: "events.k8s.io", resource: "events", verbs: &["create", "patch"] },
];

/// What leader election needs, in the Lease's namespace only, when it is on: the Lease is
/// read, created when missing, and patched to take, renew or give it up.
pub const LEADER_ELECTION: &[Access] = &[Access {
    group: "coordination.k8s.io",
    resource: "leases",
    verbs: &["get", "create", "patch"],
}];

/// Whether `REQUIRED` grants `verb` on `resource` of `group`.
pub fn allows(group: &str, resource: &str, verb: &str) -> bool {
    REQUIRED
        .iter()
        .any(|rule| rule.group == group && rule.resource == resource && rule.verbs.contains(&verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_may_patch_but_never_replace_or_delete() {
        assert!(allows("attention.tech", "attentionusers/status", "patch"));
        assert!(allows("attention.tech", "attentionusers", "patch"), "finalizers");
        assert!(!allows("attention.tech", "attentionusers", "update"));
        assert!(!allows("attention.tech", "attentionusers", "delete"));
        assert!(!allows("", "secrets", "patch"), "Secrets are only ever read");
    }
}
