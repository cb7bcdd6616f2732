//! Pure mapping of what the OpenAI admin API listed to a graph fragment
//! (CONTRACT §3 ids: `user:USER_ID`, `project:PROJECT_ID`,
//! `service_account:ID`, `api_key:KEY_ID`, `admin_key:ID`; plus
//! `invite:INVITE_ID` for pending invites). See the module docs of
//! [`super`] for the model and its choices.

use accessgraph_graph::model::{Edge, EdgeKind, Fragment, LastUse, Node, NodeKind, node_id};
use chrono::{DateTime, Utc};

use super::wire::{AdminApiKey, Invite, Organization, ProjectApiKey, ProjectRecords, User};
use crate::connector::SyncError;
use crate::fragment::{Builder, first_text, non_empty, redacted_hint};

/// Actions of a project role: `member` uses the project, `owner` also
/// administers it (members, keys, limits). Service accounts with role `none`
/// get nothing. An unknown role is read as a member, the least a listed
/// member can do.
pub fn project_actions(role: &str) -> &'static [&'static str] {
    match role.to_ascii_lowercase().as_str() {
        "owner" => &["admin", "use"],
        "none" => &[],
        _ => &["use"],
    }
}

/// Maps one organization read of the source named `source`.
pub fn map(source: &str, org: &Organization) -> Result<Fragment, SyncError> {
    let mut b = Builder::new(source);

    for user in &org.users {
        b.add(user_node(source, user));
    }
    for (i, invite) in org.invites.iter().enumerate() {
        if invite.status.eq_ignore_ascii_case("pending") {
            let node = invite_node(source, invite, &format!("$.invites[{i}]"))?;
            b.add(node);
        }
    }

    let active_projects: Vec<String> = org
        .projects
        .iter()
        .filter(|p| !p.project.is_archived())
        .map(|p| node_id(source, "project", &p.project.id))
        .collect();

    for (i, records) in org.projects.iter().enumerate() {
        map_project(&mut b, records, &format!("$.projects[{i}]"))?;
    }

    // Organization owners administer every project, member or not (they can
    // add themselves and create keys anywhere): `admin` on each active project.
    for user in org.users.iter().filter(|u| u.role.as_deref().is_some_and(|r| r.eq_ignore_ascii_case("owner"))) {
        let from = node_id(source, "user", &user.id);
        for project in &active_projects {
            b.grant(&from, project, &["admin"]);
        }
    }

    for (i, key) in org.admin_keys.iter().enumerate() {
        map_admin_key(&mut b, key, &active_projects, &format!("$.admin_keys[{i}]"))?;
    }
    Ok(b.finish())
}

fn user_node(source: &str, user: &User) -> Node {
    let name = first_text(&[user.name.as_deref(), user.email.as_deref()]).unwrap_or_else(|| user.id.clone());
    let mut node = Node::new(node_id(source, "user", &user.id), NodeKind::Human, source, name);
    node.email = non_empty(user.email.as_deref());
    node.active = Some(true);
    if let Some(role) = non_empty(user.role.as_deref()) {
        node.attrs.insert("role".into(), role);
    }
    if user.is_scim_managed == Some(true) {
        node.attrs.insert("scim_managed".into(), "true".into());
    }
    node
}

/// A pending invite: not access yet, so an inactive human account; kept so
/// that the report shows who is about to join, with which role.
fn invite_node(source: &str, invite: &Invite, path: &str) -> Result<Node, SyncError> {
    let mut node = Node::new(node_id(source, "invite", &invite.id), NodeKind::Human, source, invite.email.trim());
    node.email = non_empty(Some(&invite.email));
    node.active = Some(false);
    node.attrs.insert("invite_status".into(), invite.status.to_ascii_lowercase());
    if let Some(role) = non_empty(invite.role.as_deref()) {
        node.attrs.insert("role".into(), role);
    }
    if let Some(expires) = invite.expires_at {
        node.attrs.insert("invite_expires_at".into(), unix(expires, &format!("{path}.expires_at"))?.to_rfc3339());
    }
    if !invite.projects.is_empty() {
        let projects: Vec<String> =
            invite.projects.iter().map(|p| format!("{} ({})", p.id, p.role.as_deref().unwrap_or("member"))).collect();
        node.attrs.insert("invite_projects".into(), projects.join(", "));
    }
    Ok(node)
}

fn map_project(b: &mut Builder, records: &ProjectRecords, path: &str) -> Result<(), SyncError> {
    let source = b.source.clone();
    let project = &records.project;
    let project_id = node_id(&source, "project", &project.id);
    let name = non_empty(project.name.as_deref()).unwrap_or_else(|| project.id.clone());
    let mut node = Node::new(project_id.clone(), NodeKind::Resource, &source, name);
    node.subkind = Some("project".into());
    let archived = project.is_archived();
    node.attrs.insert("status".into(), if archived { "archived" } else { "active" }.into());
    if archived {
        // Kept so the report can say so; it grants nothing.
        node.attrs.insert("archived".into(), "true".into());
        b.add(node);
        return Ok(());
    }
    b.add(node);

    for member in &records.users {
        let user_id = node_id(&source, "user", &member.id);
        if !b.has(&user_id) {
            // Listed in the project but not (yet) in the organization listing
            // read a moment earlier: keep the account.
            let name = first_text(&[member.name.as_deref(), member.email.as_deref()]).unwrap_or(member.id.clone());
            let mut node = Node::new(user_id.clone(), NodeKind::Human, &source, name);
            node.email = non_empty(member.email.as_deref());
            b.add(node);
        }
        b.grant(&user_id, &project_id, project_actions(&member.role));
    }

    for (i, account) in records.service_accounts.iter().enumerate() {
        let sa_id = node_id(&source, "service_account", &account.id);
        let name = non_empty(account.name.as_deref()).unwrap_or_else(|| account.id.clone());
        let mut node = Node::new(sa_id.clone(), NodeKind::ServiceAccount, &source, name);
        node.active = Some(true);
        node.attrs.insert("project".into(), project_id.clone());
        node.attrs.insert("project_role".into(), account.role.clone());
        if let Some(created) = account.created_at {
            let at = unix(created, &format!("{path}.service_accounts[{i}].created_at"))?;
            node.attrs.insert("created_at".into(), at.to_rfc3339());
        }
        b.add(node);
        b.grant(&sa_id, &project_id, project_actions(&account.role));
    }

    for (i, key) in records.api_keys.iter().enumerate() {
        map_project_key(b, key, &project_id, &format!("{path}.api_keys[{i}]"))?;
    }
    Ok(())
}

fn map_project_key(b: &mut Builder, key: &ProjectApiKey, project_id: &str, path: &str) -> Result<(), SyncError> {
    let source = b.source.clone();
    let key_id = node_id(&source, "api_key", &key.id);
    let name = non_empty(key.name.as_deref()).unwrap_or_else(|| key.id.clone());
    let mut node = Node::new(key_id.clone(), NodeKind::Credential, &source, name);
    node.subkind = Some("api_key".into());
    node.created_at = Some(unix(key.created_at, &format!("{path}.created_at"))?);
    node.last_used = last_use(key.last_used_at, &format!("{path}.last_used_at"))?;
    node.attrs.insert("project".into(), project_id.to_string());
    if let Some(hint) = redacted_hint(key.redacted_value.as_deref()) {
        node.attrs.insert("key_hint".into(), hint);
    }
    if let Some(access) = non_empty(key.owner_project_access.as_deref()) {
        node.attrs.insert("owner_project_access".into(), access);
    }

    let holder = match key.owner.kind.as_str() {
        "user" => {
            let owner = key.owner.user.as_ref().ok_or_else(|| {
                invalid(&format!("{path}.owner.user"), "owner.type is `user` but owner.user is missing")
            })?;
            let user_id = node_id(&source, "user", &owner.id);
            if !b.has(&user_id) {
                // The key outlived its owner's membership of the organization.
                let name = first_text(&[owner.name.as_deref(), owner.email.as_deref()]).unwrap_or(owner.id.clone());
                let mut stub = Node::new(user_id.clone(), NodeKind::Human, &source, name);
                stub.email = non_empty(owner.email.as_deref());
                stub.active = Some(false);
                stub.attrs.insert("in_organization".into(), "false".into());
                b.add(stub);
            }
            node.owner = Some(user_id.clone());
            Some(user_id)
        }
        "service_account" => {
            let owner = key.owner.service_account.as_ref().ok_or_else(|| {
                invalid(
                    &format!("{path}.owner.service_account"),
                    "owner.type is `service_account` but owner.service_account is missing",
                )
            })?;
            let sa_id = node_id(&source, "service_account", &owner.id);
            if !b.has(&sa_id) {
                let name = non_empty(owner.name.as_deref()).unwrap_or_else(|| owner.id.clone());
                let mut stub = Node::new(sa_id.clone(), NodeKind::ServiceAccount, &source, name);
                stub.attrs.insert("project".into(), project_id.to_string());
                if let Some(role) = non_empty(owner.role.as_deref()) {
                    stub.attrs.insert("project_role".into(), role);
                }
                b.add(stub);
            }
            Some(sa_id)
        }
        other => {
            node.attrs.insert("owner_type".into(), other.to_string());
            None
        }
    };
    b.add(node);
    if let Some(holder) = holder {
        b.edge(Edge::new(holder, key_id, EdgeKind::Holds));
    }
    Ok(())
}

fn map_admin_key(b: &mut Builder, key: &AdminApiKey, projects: &[String], path: &str) -> Result<(), SyncError> {
    let source = b.source.clone();
    let key_id = node_id(&source, "admin_key", &key.id);
    let name = non_empty(key.name.as_deref()).unwrap_or_else(|| key.id.clone());
    let mut node = Node::new(key_id.clone(), NodeKind::Credential, &source, name);
    node.subkind = Some("admin_key".into());
    node.created_at = Some(unix(key.created_at, &format!("{path}.created_at"))?);
    node.last_used = last_use(key.last_used_at, &format!("{path}.last_used_at"))?;
    node.expires_at = key.expires_at.map(|at| unix(at, &format!("{path}.expires_at"))).transpose()?;
    node.attrs.insert("scope".into(), "organization".into());
    if let Some(hint) = redacted_hint(key.redacted_value.as_deref()) {
        node.attrs.insert("key_hint".into(), hint);
    }

    let owner = &key.owner;
    let holder = match owner.kind.as_str() {
        "user" => {
            let user_id = node_id(&source, "user", &owner.id);
            if !b.has(&user_id) {
                let name = non_empty(owner.name.as_deref()).unwrap_or_else(|| owner.id.clone());
                let mut stub = Node::new(user_id.clone(), NodeKind::Human, &source, name);
                stub.active = Some(false);
                stub.attrs.insert("in_organization".into(), "false".into());
                b.add(stub);
            }
            node.owner = Some(user_id.clone());
            Some(user_id)
        }
        "service_account" => {
            // An organization-level service account: whatever holds an admin
            // key administers the whole organization.
            let sa_id = node_id(&source, "service_account", &owner.id);
            if !b.has(&sa_id) {
                let name = non_empty(owner.name.as_deref()).unwrap_or_else(|| owner.id.clone());
                let mut sa = Node::new(sa_id.clone(), NodeKind::ServiceAccount, &source, name);
                sa.active = Some(true);
                sa.attrs.insert("scope".into(), "organization".into());
                if let Some(role) = non_empty(owner.role.as_deref()) {
                    sa.attrs.insert("role".into(), role);
                }
                b.add(sa);
            }
            for project in projects {
                b.grant(&sa_id, project, &["admin"]);
            }
            Some(sa_id)
        }
        other => {
            node.attrs.insert("owner_type".into(), other.to_string());
            None
        }
    };
    b.add(node);
    if let Some(holder) = holder {
        b.edge(Edge::new(holder, key_id, EdgeKind::Holds));
    }
    Ok(())
}

/// `last_used_at`: `null` means the API saw no use; a number is the instant.
fn last_use(at: Option<i64>, location: &str) -> Result<LastUse, SyncError> {
    Ok(match at {
        None => LastUse::Never,
        Some(secs) => LastUse::At(unix(secs, location)?),
    })
}

fn unix(secs: i64, location: &str) -> Result<DateTime<Utc>, SyncError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| invalid(location, &format!("{secs} is not a Unix timestamp in seconds")))
}

fn invalid(location: &str, message: &str) -> SyncError {
    SyncError::Invalid {
        path: "openai admin API".to_string(),
        location: location.to_string(),
        message: message.to_string(),
    }
}
