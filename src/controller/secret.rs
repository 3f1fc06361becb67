//! Reading a user's password from the Secret its spec names.

use k8s_openapi::api::core::v1::Secret;

use crate::attention::Password;
use crate::crd::SecretKeyRef;

/// The password held by `secret` under the referenced key, or what is wrong with it. The
/// explanation names the Secret and key, never the value.
pub fn password(secret: Option<&Secret>, reference: &SecretKeyRef) -> Result<Password, String> {
    let name = &reference.name;
    let key = &reference.key;
    let secret = secret.ok_or_else(|| format!("Secret {name} does not exist"))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .ok_or_else(|| format!("Secret {name} has no key {key}"))?;
    let text = std::str::from_utf8(&bytes.0)
        .map_err(|_| format!("key {key} of Secret {name} is not UTF-8 text"))?;
    let text = text.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(format!("key {key} of Secret {name} is empty"));
    }
    Ok(Password::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn reference() -> SecretKeyRef {
        SecretKeyRef { name: "ada-password".into(), key: "password".into() }
    }

    fn secret(key: &str, value: &[u8]) -> Secret {
        Secret {
            data: Some(BTreeMap::from([(key.to_owned(), ByteString(value.to_vec()))])),
            ..Secret::default()
        }
    }

    #[test]
    fn the_password_is_read_without_a_trailing_newline() {
        let found = password(Some(&secret("password", b"c0rrect horse\n")), &reference());
        assert_eq!(found.unwrap(), Password::new("c0rrect horse"));
    }

    #[test]
    fn each_problem_is_named_without_the_value() {
        let cases: [(Option<Secret>, &str); 4] = [
            (None, "Secret ada-password does not exist"),
            (Some(secret("other", b"hunter2")), "Secret ada-password has no key password"),
            (
                Some(secret("password", b"\xff\xfehunter2")),
                "key password of Secret ada-password is not UTF-8 text",
            ),
            (Some(secret("password", b"\n")), "key password of Secret ada-password is empty"),
        ];
        for (secret, expected) in cases {
            let problem = password(secret.as_ref(), &reference()).unwrap_err();
            assert_eq!(problem, expected);
            assert!(!problem.contains("hunter2"));
        }
    }
}
