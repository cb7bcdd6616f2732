//! The raw shape of a snapshot file (CONTRACT §4), exactly as written.
//!
//! Parsing only checks JSON types and required fields; meaning (kinds,
//! references, timestamps) is validated by [`super::transform`]. Timestamps
//! stay strings here so a malformed one is reported by `transform` with its
//! JSON path and a message that says what RFC 3339 expects. Unknown fields are
//! ignored, so exporters may add their own.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_path_to_error::{Path, Segment};

use crate::connector::SyncError;

/// The file format version this build reads.
pub const SUPPORTED_VERSION: u64 = 1;

/// A whole snapshot file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename = "snapshot")]
pub struct RawSnapshot {
    /// Format version; must be [`SUPPORTED_VERSION`].
    pub version: u64,
    /// The exporting system (`netsuite`, `okta`); informational only, node ids
    /// use the configured source name.
    #[serde(default)]
    pub system: Option<String>,
    /// When the export was taken (RFC 3339).
    #[serde(default)]
    pub collected_at: Option<String>,
    /// People and non-human identities.
    #[serde(default, deserialize_with = "objects")]
    pub identities: Vec<RawIdentity>,
    /// Groups of identities and groups.
    #[serde(default, deserialize_with = "objects")]
    pub groups: Vec<RawGroup>,
    /// Roles that identities, groups or roles can assume.
    #[serde(default, deserialize_with = "objects")]
    pub roles: Vec<RawRole>,
    /// Things access is granted on.
    #[serde(default, deserialize_with = "objects")]
    pub resources: Vec<RawResource>,
    /// Grants of actions on resources.
    #[serde(default, deserialize_with = "objects")]
    pub grants: Vec<RawGrant>,
    /// Keys, tokens and secrets.
    #[serde(default, deserialize_with = "objects")]
    pub credentials: Vec<RawCredential>,
}

/// `identities[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename = "identity")]
pub struct RawIdentity {
    /// Stable id within the file.
    pub id: String,
    /// `human`, `agent`, `service_account` or `app`.
    pub kind: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email (people; optional for others).
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the account is active; absent when the system does not say.
    #[serde(default)]
    pub active: Option<bool>,
    /// An email, or the id of another identity of this file.
    #[serde(default)]
    pub owner: Option<String>,
}

/// `groups[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename = "group")]
pub struct RawGroup {
    /// Stable id within the file.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Ids of member identities or (nested) groups.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub members: Vec<String>,
}

/// `roles[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename = "role")]
pub struct RawRole {
    /// Stable id within the file.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Ids of identities, groups or roles that can assume this role.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub assumable_by: Vec<String>,
}

/// `resources[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename = "resource")]
pub struct RawResource {
    /// Stable id within the file.
    pub id: String,
    /// Resource type (`dataset`, `repo`); becomes the node id's KIND.
    pub kind: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// `prod`, `dev`, …
    #[serde(default)]
    pub environment: Option<String>,
    /// `finance`, `pii`, …
    #[serde(default, deserialize_with = "null_as_empty")]
    pub data_domains: Vec<String>,
}

/// `grants[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename = "grant")]
pub struct RawGrant {
    /// Id of an identity, group or role.
    pub principal: String,
    /// Id of a resource.
    pub resource: String,
    /// Granted actions; at least one.
    pub actions: Vec<String>,
    /// When the grant was made (RFC 3339).
    #[serde(default)]
    pub granted_at: Option<String>,
    /// When the grant lapses (RFC 3339); absent or null: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `credentials[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename = "credential")]
pub struct RawCredential {
    /// Stable id within the file (never the secret itself).
    pub id: String,
    /// Credential type (`api_key`, `deploy_token`); becomes the node id's KIND.
    pub kind: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Id of the identity that holds it.
    #[serde(default)]
    pub holder: Option<String>,
    /// An email, or the id of an identity of this file.
    #[serde(default)]
    pub owner: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last use. The outer `None` means the field is absent (the system cannot
    /// report use); `Some(None)` means `null` (never used).
    #[serde(default, deserialize_with = "present")]
    pub last_used_at: Option<Option<String>>,
    /// Expiry (RFC 3339); absent or null: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A list that exporters may write as `null` when empty.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Vec<T>>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// A list of records that exporters may write as `null` when empty; each
/// record must be a JSON object.
fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let records = Option::<Vec<Object<T>>>::deserialize(deserializer)?;
    Ok(records.unwrap_or_default().into_iter().map(|Object(record)| record).collect())
}

/// A `T` read from a JSON object only: derived structs also accept an array of
/// their fields in order, which no exporter means.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

/// Marks a field as present (even when `null`), so absent and `null` differ.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Only the version, read before the rest so a file of another version is
/// reported as such rather than as whatever field moved.
#[derive(Deserialize)]
#[serde(rename = "snapshot")]
struct VersionProbe {
    #[serde(default)]
    version: Option<serde_json::Value>,
}

/// Parses a snapshot file. `file` names it in errors.
pub fn parse(file: &str, bytes: &[u8]) -> Result<RawSnapshot, SyncError> {
    // Exports written on Windows often start with a byte-order mark.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);

    // A valid file parses once, untracked. Tracking the path of every value
    // is for the error message only: any failure (or another version) is
    // parsed again below, and reported exactly as that parse finds it.
    if let Ok(Object(raw)) = deserialize_untracked::<Object<RawSnapshot>>(bytes)
        && raw.version == SUPPORTED_VERSION
    {
        return Ok(raw);
    }
    let Object(probe): Object<VersionProbe> = deserialize(file, bytes)?;
    match probe.version {
        None => return Err(invalid(file, "$.version", "missing field `version`")),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(SUPPORTED_VERSION) => {}
        Some(other) => {
            return Err(invalid(
                file,
                "$.version",
                format!("unsupported snapshot version {other}; this build reads version {SUPPORTED_VERSION}"),
            ));
        }
    }
    deserialize(file, bytes).map(|Object(raw)| raw)
}

fn deserialize_untracked<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

fn deserialize<'a, T: Deserialize<'a>>(file: &str, bytes: &'a [u8]) -> Result<T, SyncError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| from_json_error(file, err))?;
    de.end().map_err(|err| invalid(file, "$", err.to_string()))?;
    Ok(value)
}

fn invalid(file: &str, location: &str, message: impl Into<String>) -> SyncError {
    SyncError::Invalid { path: file.to_string(), location: location.to_string(), message: message.into() }
}

/// Turns a serde error into `Invalid` whose location is the JSON path of the
/// offending value; for a missing field, the path of the field itself.
fn from_json_error(file: &str, err: serde_path_to_error::Error<serde_json::Error>) -> SyncError {
    let mut location = json_path(err.path());
    let message = err.inner().to_string();
    if let Some(field) = missing_field(&message) {
        location.push('.');
        location.push_str(field);
    }
    invalid(file, &location, message)
}

/// `$.grants[3].actions` from serde_path_to_error's segments.
fn json_path(path: &Path) -> String {
    let mut out = String::from("$");
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                out.push('.');
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                out.push('.');
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// The field name of serde's "missing field `name`" message.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}
