//! Secrets: referenced from the config (an environment variable or a file),
//! never written inline, and redacted wherever they could be printed.

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a secret comes from. In TOML: `{ env = "VARIABLE" }` or
/// `{ file = "PATH" }`; a plain string is refused, because secrets are
/// never written into the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// The value of this environment variable.
    Env(String),
    /// The contents of this file (a trailing newline is dropped). Relative
    /// paths are resolved against the config file's folder by `load`.
    File(PathBuf),
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set.
    #[error("environment variable {0} is not set")]
    EnvUnset(String),
    /// The environment variable is not valid Unicode.
    #[error("environment variable {0} is not valid UTF-8")]
    EnvNotUnicode(String),
    /// The file could not be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The variable or file is empty.
    #[error("{0} is empty")]
    Empty(String),
}

impl SecretRef {
    /// Reads the secret now (environment variables and files can change
    /// between calls, e.g. rotated tokens).
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let value = match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => {
                    return Err(SecretError::EnvUnset(name.clone()));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(SecretError::EnvNotUnicode(name.clone()));
                }
            },
            SecretRef::File(path) => {
                let mut text =
                    std::fs::read_to_string(path).map_err(|source| SecretError::File { path: path.clone(), source })?;
                let kept = text.trim_end_matches(['\n', '\r']).len();
                text.truncate(kept);
                text
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(Secret(value))
    }

    /// Resolves a relative file path against `base` (the config's folder).
    pub(crate) fn resolve_path(&mut self, base: &Path) {
        if let SecretRef::File(path) = self
            && path.is_relative()
        {
            *path = base.join(&*path);
        }
    }
}

/// Names the reference, never the value: `environment variable X`, `file P`.
impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "environment variable {name}"),
            SecretRef::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

const SECRET_SHAPE: &str = "a secret reference `{ env = \"VARIABLE\" }` or `{ file = \"PATH\" }` \
                            (secrets are never inline)";

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SecretRef, D::Error> {
        deserializer.deserialize_any(SecretRefVisitor)
    }
}

struct SecretRefVisitor;

impl<'de> Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_SHAPE)
    }

    fn visit_str<E: de::Error>(self, _value: &str) -> Result<SecretRef, E> {
        // Never echo the value: it is probably the secret itself.
        Err(E::custom("secrets are never inline: write `{ env = \"VARIABLE\" }` or `{ file = \"PATH\" }`"))
    }

    // Other scalars: refuse without echoing them either (serde's default
    // message would quote the value).
    fn visit_bool<E: de::Error>(self, _value: bool) -> Result<SecretRef, E> {
        Err(E::custom(format!("expected {SECRET_SHAPE}, found a boolean")))
    }

    fn visit_i64<E: de::Error>(self, _value: i64) -> Result<SecretRef, E> {
        Err(E::custom(format!("expected {SECRET_SHAPE}, found an integer")))
    }

    fn visit_u64<E: de::Error>(self, _value: u64) -> Result<SecretRef, E> {
        Err(E::custom(format!("expected {SECRET_SHAPE}, found an integer")))
    }

    fn visit_f64<E: de::Error>(self, _value: f64) -> Result<SecretRef, E> {
        Err(E::custom(format!("expected {SECRET_SHAPE}, found a float")))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<SecretRef, A::Error> {
        Err(de::Error::custom(format!("expected {SECRET_SHAPE}, found an array")))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
        let mut found: Option<SecretRef> = None;
        let mut count = 0;
        while let Some(key) = map.next_key::<String>()? {
            count += 1;
            let value = match key.as_str() {
                "env" => SecretRef::Env(map.next_value::<String>()?),
                "file" => SecretRef::File(PathBuf::from(map.next_value::<String>()?)),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown key `{other}` in a secret reference; expected one of: env, file"
                    )));
                }
            };
            found = Some(value);
        }
        match found {
            Some(_) if count > 1 => Err(de::Error::custom("a secret reference takes exactly one of `env`, `file`")),
            Some(SecretRef::Env(name)) if name.trim().is_empty() => {
                Err(de::Error::custom("`env` of a secret reference is empty"))
            }
            Some(SecretRef::File(path)) if path.as_os_str().is_empty() => {
                Err(de::Error::custom("`file` of a secret reference is empty"))
            }
            Some(found) => Ok(found),
            None => Err(de::Error::custom(format!("expected {SECRET_SHAPE}, found an empty table"))),
        }
    }
}

/// A secret value. `Debug` and `Display` print `[redacted]`; `expose` is the
/// only way to read it, so every use is greppable. Not `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value (for tests and for callers that read secrets elsewhere).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value. Do not log, store or file it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
