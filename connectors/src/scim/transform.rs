//! Pure mapping of SCIM `/Users` and `/Groups` resources to a graph
//! fragment (CONTRACT §3 ids: `user:ID`, `group:ID`, ID being the server's
//! immutable `id`).
//!
//! Attribute names are matched case-insensitively (RFC 7643 §2.1: servers
//! written for Entra ID capitalise them, `Active`, `UserName`, `Emails`), and
//! booleans are also accepted as the strings `"True"`/`"False"` (as Entra
//! writes them). Strict where it matters: a resource without an `id`, a
//! member without a `value`, or an `active` that is no boolean fails the
//! sync with its JSON path. A member that names a resource the listing does
//! not hold is skipped: index paging is not snapshot-consistent, so a user
//! deleted between two pages must not fail the sync.

use std::collections::HashSet;

use accessgraph_graph::model::{Edge, EdgeKind, Fragment, Node, NodeKind, node_id};
use serde_json::{Map, Value};

use super::client::Directory;
use crate::connector::SyncError;

/// The enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Maps one directory read of the source named `source`.
pub fn map(source: &str, directory: &Directory) -> Result<Fragment, SyncError> {
    let mut nodes = Vec::new();
    let mut user_ids: HashSet<String> = HashSet::new();
    for (i, raw) in directory.users.iter().enumerate() {
        let path = format!("$.Users[{i}]");
        let user = object(raw, &path)?;
        let id = required_id(user, &path)?;
        if user_ids.insert(id.clone()) {
            nodes.push(user_node(source, &id, user, &path)?);
        }
    }

    let mut groups: Vec<(String, &Map<String, Value>, String)> = Vec::new();
    let mut group_ids: HashSet<String> = HashSet::new();
    for (i, raw) in directory.groups.iter().enumerate() {
        let path = format!("$.Groups[{i}]");
        let group = object(raw, &path)?;
        let id = required_id(group, &path)?;
        if group_ids.insert(id.clone()) {
            let name = text(group, "displayName").unwrap_or_else(|| id.clone());
            let mut node = Node::new(node_id(source, "group", &id), NodeKind::Group, source, name);
            if let Some(external) = text(group, "externalId") {
                node.attrs.insert("external_id".into(), external);
            }
            nodes.push(node);
            groups.push((id, group, path));
        }
    }

    let mut edges = Vec::new();
    let mut seen = HashSet::new();
    let mut dangling = 0usize;
    for (group_id, group, path) in &groups {
        let to = node_id(source, "group", group_id);
        let members = match get(group, "members") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(members)) => members,
            Some(_) => return Err(invalid(&format!("{path}.members"), "`members` is not an array")),
        };
        for (j, member) in members.iter().enumerate() {
            let at = format!("{path}.members[{j}]");
            let member = object(member, &at)?;
            let value = text(member, "value")
                .ok_or_else(|| invalid(&format!("{at}.value"), "a member without `value` (the member's id)"))?;
            let kind = text(member, "type").map(|t| t.to_ascii_lowercase());
            let is_user = user_ids.contains(&value);
            let is_group = group_ids.contains(&value);
            let from = match kind.as_deref() {
                Some("user") if is_user => node_id(source, "user", &value),
                Some("group") if is_group => node_id(source, "group", &value),
                // Okta-facing servers often omit `type`: look the id up.
                None if is_user => node_id(source, "user", &value),
                None if is_group => node_id(source, "group", &value),
                _ => {
                    dangling += 1;
                    continue;
                }
            };
            if from == to {
                continue;
            }
            let edge = Edge::new(from, to.clone(), EdgeKind::MemberOf);
            if seen.insert(edge.key()) {
                edges.push(edge);
            }
        }
    }
    if dangling > 0 {
        tracing::debug!(source = %source, dangling, "group members naming no listed user or group were skipped");
    }
    Ok(Fragment { source: source.to_string(), nodes, edges, kept: Vec::new() })
}

fn user_node(source: &str, id: &str, user: &Map<String, Value>, path: &str) -> Result<Node, SyncError> {
    let user_name = text(user, "userName");
    let formatted = get(user, "name").and_then(Value::as_object).and_then(|name| text(name, "formatted"));
    let name = text(user, "displayName").or(formatted).or_else(|| user_name.clone()).unwrap_or_else(|| id.to_string());
    let mut node = Node::new(node_id(source, "user", id), NodeKind::Human, source, name);
    node.email = primary_email(user, path)?.or_else(|| user_name.clone().filter(|u| u.contains('@')));
    node.active = match get(user, "active") {
        None | Some(Value::Null) => None,
        Some(value) => {
            Some(boolean(value).ok_or_else(|| invalid(&format!("{path}.active"), "`active` is not a boolean"))?)
        }
    };
    if let Some(user_name) = user_name {
        node.attrs.insert("user_name".into(), user_name);
    }
    for (attr, key) in [("external_id", "externalId"), ("title", "title"), ("user_type", "userType")] {
        if let Some(value) = text(user, key) {
            node.attrs.insert(attr.into(), value);
        }
    }
    if let Some(enterprise) = get(user, ENTERPRISE_USER).and_then(Value::as_object) {
        if let Some(department) = text(enterprise, "department") {
            node.attrs.insert("department".into(), department);
        }
        match get(enterprise, "manager") {
            Some(Value::Object(manager)) => {
                if let Some(value) = text(manager, "value") {
                    node.attrs.insert("manager".into(), node_id(source, "user", &value));
                }
                if let Some(display) = text(manager, "displayName") {
                    node.attrs.insert("manager_name".into(), display);
                }
            }
            // Some servers write the manager's id as a bare string.
            Some(Value::String(value)) if !value.trim().is_empty() => {
                node.attrs.insert("manager".into(), node_id(source, "user", value.trim()));
            }
            _ => {}
        }
    }
    Ok(node)
}

/// The primary email (`primary: true`), else the first of type `work`, else
/// the first.
fn primary_email(user: &Map<String, Value>, path: &str) -> Result<Option<String>, SyncError> {
    let emails = match get(user, "emails") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(emails)) => emails,
        Some(_) => return Err(invalid(&format!("{path}.emails"), "`emails` is not an array")),
    };
    let mut candidates = Vec::new();
    for (k, email) in emails.iter().enumerate() {
        let email = object(email, &format!("{path}.emails[{k}]"))?;
        let Some(value) = text(email, "value") else { continue };
        let primary = get(email, "primary").and_then(boolean).unwrap_or(false);
        let work = text(email, "type").is_some_and(|t| t.eq_ignore_ascii_case("work"));
        candidates.push((value, primary, work));
    }
    let pick = candidates
        .iter()
        .find(|(_, primary, _)| *primary)
        .or_else(|| candidates.iter().find(|(_, _, work)| *work))
        .or_else(|| candidates.first());
    Ok(pick.map(|(value, _, _)| value.clone()))
}

/// A JSON boolean, or the strings `true`/`false` in any case.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// An attribute, its name matched case-insensitively (an exact match wins).
fn get<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object.get(name).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// A non-empty string attribute (numbers are read as text: some servers
/// send numeric ids).
fn text(object: &Map<String, Value>, name: &str) -> Option<String> {
    match get(object, name)? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn required_id(object: &Map<String, Value>, path: &str) -> Result<String, SyncError> {
    text(object, "id").ok_or_else(|| invalid(&format!("{path}.id"), "missing required `id`"))
}

fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, SyncError> {
    value.as_object().ok_or_else(|| invalid(path, "not a JSON object"))
}

fn invalid(location: &str, message: &str) -> SyncError {
    SyncError::Invalid { path: "SCIM".to_string(), location: location.to_string(), message: message.to_string() }
}
