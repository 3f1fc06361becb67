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
    // The controller lists and watches its resources.
    Access {
        group: "attention.tech",
        resource: "attentionusers",
        verbs: &["get", "list", "watch"],
    },
    // Status is written with server-side apply on the status subresource.
    Access {
        group: "attention.tech",
        resource: "attentionusers/status",
        verbs: &["get", "patch"],
    },
    // Password Secrets are read one by one, by name, when a user is created.
    Access {
        group: "",
        resource: "secrets",
        verbs: &["get"],
    },
    // Events are created, and patched when kube's recorder folds repeats into a series.
    Access {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
    },
];

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
    fn status_writes_are_allowed_but_spec_writes_are_not() {
        assert!(allows("attention.tech", "attentionusers/status", "patch"));
        assert!(!allows("attention.tech", "attentionusers", "patch"));
        assert!(
            !allows("", "secrets", "list"),
            "Secrets are read by name, never listed"
        );
    }
}
