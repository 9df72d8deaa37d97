//! Which keys verify the hub's tokens: each role's own key, key file or JWK Set URL, else the
//! shared key or key file. A key that is given but empty, or a file that cannot be read, stops
//! the start-up with its name: a deployment whose secret did not arrive must not start open.

use std::path::Path;

use anyhow::{Context as _, bail};
use herald_hub::JwtKey;

use super::settings::Settings;

/// What verifies each role's tokens.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    pub(crate) publisher: Option<JwtKey>,
    pub(crate) subscriber: Option<JwtKey>,
    pub(crate) publisher_jwks_url: Option<String>,
    pub(crate) subscriber_jwks_url: Option<String>,
    /// Mercure 1.0's trusted issuers with their keys.
    pub(crate) issuers: Vec<herald_hub::config::IssuerKey>,
}

/// `ISS=KEY` as `--issuer` takes it; `KEY` may be `@path` to a file holding it.
fn issuer(text: &str) -> anyhow::Result<herald_hub::config::IssuerKey> {
    let Some((issuer, key)) = text.split_once('=') else {
        bail!(
            "--issuer {text:?}: expected ISS=KEY (the issuer as tokens spell it in `iss`, then its secret, PEM public key, https:// JWK Set URL, or @path to a file)"
        );
    };
    let key = match key.strip_prefix('@') {
        Some(path) => read(Path::new(path), "issuer key file")?,
        None => given(key, "issuer")?,
    };
    Ok(herald_hub::config::IssuerKey {
        issuer: issuer.to_owned(),
        key,
    })
}

/// One role's settings, with the names that error messages give them.
struct Role<'a> {
    name: &'static str,
    key: &'a Option<String>,
    file: &'a Option<std::path::PathBuf>,
    jwks: &'a Option<String>,
    alg: &'a Option<String>,
}

impl Keys {
    /// Resolves the keys of `settings` (with defaults), reading key files.
    pub(crate) fn resolve(settings: &Settings) -> anyhow::Result<Keys> {
        let shared = match (&settings.jwt_key, &settings.jwt_key_file) {
            (Some(_), Some(_)) => bail!("give either jwt-key or jwt-key-file, not both"),
            (Some(key), None) => Some(given(key, "jwt-key")?),
            (None, Some(path)) => Some(read(path, "jwt-key-file")?),
            (None, None) => None,
        };
        let shared_alg = settings
            .jwt_alg
            .clone()
            .unwrap_or_else(|| "HS256".to_owned());
        let mut keys = Keys::default();
        for (role, key, jwks) in [
            (
                Role {
                    name: "publisher",
                    key: &settings.publisher_jwt_key,
                    file: &settings.publisher_jwt_key_file,
                    jwks: &settings.publisher_jwks_url,
                    alg: &settings.publisher_jwt_alg,
                },
                &mut keys.publisher,
                &mut keys.publisher_jwks_url,
            ),
            (
                Role {
                    name: "subscriber",
                    key: &settings.subscriber_jwt_key,
                    file: &settings.subscriber_jwt_key_file,
                    jwks: &settings.subscriber_jwks_url,
                    alg: &settings.subscriber_jwt_alg,
                },
                &mut keys.subscriber,
                &mut keys.subscriber_jwks_url,
            ),
        ] {
            let name = role.name;
            let given_count = [role.key.is_some(), role.file.is_some(), role.jwks.is_some()]
                .into_iter()
                .filter(|&given| given)
                .count();
            if given_count > 1 {
                bail!("give only one of {name}-jwt-key, {name}-jwt-key-file and {name}-jwks-url");
            }
            let alg = role.alg.clone().unwrap_or_else(|| shared_alg.clone());
            if let Some(url) = role.jwks {
                if url.trim().is_empty() {
                    bail!("{name}-jwks-url is empty");
                }
                *jwks = Some(url.clone());
                continue;
            }
            let text = match (role.key, role.file) {
                (Some(key), _) => Some(given(key, &format!("{name}-jwt-key"))?),
                (_, Some(path)) => Some(read(path, &format!("{name}-jwt-key-file"))?),
                (None, None) => shared.clone(),
            };
            *key = text.map(|text| JwtKey::new(text, alg));
        }
        keys.issuers = settings
            .issuer
            .iter()
            .map(|text| issuer(text))
            .collect::<anyhow::Result<_>>()?;
        Ok(keys)
    }
}

/// A key given as a value, refused when empty.
fn given(key: &str, setting: &str) -> anyhow::Result<String> {
    if key.trim().is_empty() {
        bail!(
            "{setting} is empty (--{setting}, HERALD_{}): refusing to start without its key",
            setting.to_ascii_uppercase().replace('-', "_")
        );
    }
    Ok(key.to_owned())
}

/// A key read from a file (one trailing line break dropped), refused when empty.
fn read(path: &Path, setting: &str) -> anyhow::Result<String> {
    let mut text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {} ({setting})", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.trim().is_empty() {
        bail!(
            "the key file {} ({setting}) is empty: refusing to start without its key",
            path.display()
        );
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_key_wins_over_the_shared_one_and_takes_the_shared_algorithm() {
        let settings = Settings {
            jwt_key: Some("shared".into()),
            jwt_alg: Some("HS512".into()),
            subscriber_jwt_key: Some("own".into()),
            subscriber_jwt_alg: Some("HS384".into()),
            ..Settings::default()
        };
        let keys = Keys::resolve(&settings).expect("keys");
        assert_eq!(keys.publisher, Some(JwtKey::new("shared", "HS512")));
        assert_eq!(keys.subscriber, Some(JwtKey::new("own", "HS384")));
    }

    #[test]
    fn empty_keys_and_contradictions_are_refused_by_name() {
        let empty = Settings {
            subscriber_jwt_key: Some(" ".into()),
            ..Settings::default()
        };
        let error = Keys::resolve(&empty).expect_err("empty").to_string();
        assert!(error.contains("subscriber-jwt-key is empty"), "{error}");
        let both = Settings {
            publisher_jwt_key: Some("k".into()),
            publisher_jwks_url: Some("https://example.com/jwks.json".into()),
            ..Settings::default()
        };
        let error = Keys::resolve(&both).expect_err("both").to_string();
        assert!(error.contains("only one of publisher-jwt-key"), "{error}");
    }

    #[test]
    fn issuers_are_iss_equals_key_with_files_read() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("key.pem");
        std::fs::write(
            &file,
            "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n",
        )
        .expect("write");
        let settings = Settings {
            issuer: vec![
                "https://a.example=se=cret".into(),
                format!("https://b.example=@{}", file.display()),
            ],
            ..Settings::default()
        };
        let keys = Keys::resolve(&settings).expect("keys");
        assert_eq!(keys.issuers[0].issuer, "https://a.example");
        assert_eq!(keys.issuers[0].key, "se=cret", "split at the first `=`");
        assert!(keys.issuers[1].key.ends_with("-----END PUBLIC KEY-----"));
        for bad in ["no-equals-sign", "https://a.example= "] {
            let settings = Settings {
                issuer: vec![bad.into()],
                ..Settings::default()
            };
            assert!(Keys::resolve(&settings).is_err(), "{bad}");
        }
    }
}
