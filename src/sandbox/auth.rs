//! API-key check of the sandbox: which `Authorization` header forms it accepts.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which forms of the `Authorization` header the sandbox accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Both `Bearer <key>` and the bare `<key>`, as the API's two documentation pages disagree.
    #[default]
    Any,
    /// Only `Bearer <key>`.
    Bearer,
    /// Only the bare `<key>`.
    Raw,
}

/// The expected key and the accepted header forms; `Debug` never shows the key.
#[derive(Clone)]
pub(crate) struct KeyCheck {
    key: String,
    mode: AuthMode,
}

impl fmt::Debug for KeyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCheck").field("key", &"<redacted>").field("mode", &self.mode).finish()
    }
}

impl KeyCheck {
    pub(crate) fn new(key: String, mode: AuthMode) -> Self {
        KeyCheck { key, mode }
    }

    /// True when `header` (the raw `Authorization` value, if any) carries the key.
    pub(crate) fn accepts(&self, header: Option<&[u8]>) -> bool {
        let Some(header) = header else {
            return false;
        };
        let bearer = header.strip_prefix(b"Bearer ");
        match self.mode {
            AuthMode::Any => bearer.is_some_and(|k| self.matches(k)) || self.matches(header),
            AuthMode::Bearer => bearer.is_some_and(|k| self.matches(k)),
            AuthMode::Raw => self.matches(header),
        }
    }

    fn matches(&self, candidate: &[u8]) -> bool {
        constant_time_eq(self.key.as_bytes(), candidate)
    }
}

/// Compares without stopping at the first difference, so timing tells nothing of the key.
fn constant_time_eq(expected: &[u8], candidate: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != candidate.len());
    for (i, byte) in expected.iter().enumerate() {
        diff |= byte ^ candidate.get(i).copied().unwrap_or(!byte);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mode: AuthMode) -> KeyCheck {
        KeyCheck::new("k3y".to_owned(), mode)
    }

    #[test]
    fn any_accepts_both_forms() {
        let any = check(AuthMode::Any);
        assert!(any.accepts(Some(b"Bearer k3y")));
        assert!(any.accepts(Some(b"k3y")));
        assert!(!any.accepts(Some(b"Bearer nope")));
        assert!(!any.accepts(Some(b"")));
        assert!(!any.accepts(None));
    }

    #[test]
    fn bearer_and_raw_accept_only_their_form() {
        assert!(check(AuthMode::Bearer).accepts(Some(b"Bearer k3y")));
        assert!(!check(AuthMode::Bearer).accepts(Some(b"k3y")));
        assert!(check(AuthMode::Raw).accepts(Some(b"k3y")));
        assert!(!check(AuthMode::Raw).accepts(Some(b"Bearer k3y")));
    }

    #[test]
    fn prefixes_and_extensions_of_the_key_fail() {
        let any = check(AuthMode::Any);
        assert!(!any.accepts(Some(b"k3")));
        assert!(!any.accepts(Some(b"k3yy")));
        assert!(!any.accepts(Some(b"Bearer k3y ")));
    }

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", check(AuthMode::Any));
        assert!(!shown.contains("k3y"));
    }
}
