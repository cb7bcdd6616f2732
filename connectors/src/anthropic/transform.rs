//! Pure mapping of what the Anthropic Admin API listed to a graph fragment
//! (CONTRACT §3 ids: `user:USER_ID`, `workspace:WORKSPACE_ID`,
//! `api_key:KEY_ID`; plus `invite:INVITE_ID` for pending invites and
//! `service_account:…` for whom a key acts as). See the module docs of
//! [`super`] for the model and its choices.

use accessgraph_graph::model::{Edge, EdgeKind, Fragment, LastUse, Node, NodeKind, node_id};

use super::wire::{ApiKey, Invite, Organization, User, Workspace};
use crate::connector::SyncError;
use crate::fragment::{Builder, first_text, non_empty, redacted_hint};

/// Key of the default workspace when the API names it by no id (older API
/// versions report `workspace_id: null` for it).
pub const DEFAULT_WORKSPACE: &str = "default";

/// What `last_used` means for every Anthropic key, in words, for reports.
pub const LAST_USED_UNKNOWN: &str = "unknown (the Anthropic Admin API does not report key use)";

/// Actions of a workspace role: `use` (call the API and the Workbench in the
/// workspace), `develop` (create and manage the workspace's API keys and
/// resources), `admin` (manage members and settings), `billing`. An unknown
/// role is read as `use`, the least a listed member can do.
pub fn workspace_actions(role: &str) -> &'static [&'static str] {
    match role.to_ascii_lowercase().as_str() {
        "workspace_admin" => &["admin", "develop", "use"],
        "workspace_developer" | "workspace_restricted_developer" => &["develop", "use"],
        "workspace_billing" => &["billing"],
        _ => &["use"],
    }
}

/// Organization roles that administer every workspace (organization admins
/// are workspace admins everywhere).
pub fn is_org_admin(role: &str) -> bool {
    matches!(role.to_ascii_lowercase().as_str(), "admin" | "owner" | "primary_owner")
}

/// The node id standing for whoever holds a classic key (one with no
/// `principal`): `SOURCE:service_account:key-KEY_ID`.
pub fn key_identity_id(source: &str, key_id: &str) -> String {
    node_id(source, "service_account", &format!("key-{key_id}"))
}

/// Where a key works.
enum Reach {
    /// Every workspace.
    Organization,
    /// One workspace: its id (or [`DEFAULT_WORKSPACE`]) and whether the key
    /// names it as the default workspace.
    Workspace(String, bool),
}

fn reach(key: &ApiKey) -> Reach {
    if let Some(scope) = &key.scope {
        if scope.kind.eq_ignore_ascii_case("organization") {
            return Reach::Organization;
        }
        if let Some(id) = scope.workspace_id.as_deref().filter(|id| !id.is_empty()) {
            return Reach::Workspace(id.to_string(), key.workspace_id.is_none());
        }
    }
    match key.workspace_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => Reach::Workspace(id.to_string(), false),
        None => Reach::Workspace(DEFAULT_WORKSPACE.to_string(), true),
    }
}

/// Maps one organization read of the source named `source`.
pub fn map(source: &str, org: &Organization) -> Result<Fragment, SyncError> {
    let mut b = Builder::new(source);
    for user in &org.users {
        b.add(user_node(source, user));
    }
    for invite in org.invites.iter().filter(|i| i.status.eq_ignore_ascii_case("pending")) {
        b.add(invite_node(source, invite));
    }

    let mut active_workspaces = Vec::new();
    for records in &org.workspaces {
        let node = workspace_node(source, &records.workspace);
        if records.workspace.archived_at.is_none() {
            active_workspaces.push(node.id.clone());
        }
        b.add(node);
    }
    // Workspaces that keys name but the listing did not show (the default
    // workspace is not listed): nodes of their own, so the keys reach them.
    for key in org.api_keys.iter() {
        if let Reach::Workspace(id, is_default) = reach(key) {
            let ws_id = node_id(source, "workspace", &id);
            if !b.has(&ws_id) {
                let name = if is_default { "Default workspace".to_string() } else { id.clone() };
                let mut node = Node::new(ws_id.clone(), NodeKind::Resource, source, name);
                node.subkind = Some("workspace".into());
                node.attrs.insert("listed".into(), "false".into());
                b.add(node);
                active_workspaces.push(ws_id);
            }
        }
    }

    for records in &org.workspaces {
        if records.workspace.archived_at.is_some() {
            continue;
        }
        let ws_id = node_id(source, "workspace", &records.workspace.id);
        for member in &records.members {
            let user_id = node_id(source, "user", &member.user_id);
            ensure_user(&mut b, &user_id, &member.user_id);
            b.grant(&user_id, &ws_id, workspace_actions(&member.workspace_role));
        }
    }
    for user in org.users.iter().filter(|u| u.role.as_deref().is_some_and(is_org_admin)) {
        let from = node_id(source, "user", &user.id);
        for ws in &active_workspaces {
            b.grant(&from, ws, workspace_actions("workspace_admin"));
        }
    }

    for (i, key) in org.api_keys.iter().enumerate() {
        map_key(&mut b, key, &active_workspaces, &format!("$.api_keys[{i}]"))?;
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
    node
}

/// A pending invite: not access yet, so an inactive human account.
fn invite_node(source: &str, invite: &Invite) -> Node {
    let mut node = Node::new(node_id(source, "invite", &invite.id), NodeKind::Human, source, invite.email.trim());
    node.email = non_empty(Some(&invite.email));
    node.active = Some(false);
    node.attrs.insert("invite_status".into(), invite.status.to_ascii_lowercase());
    if let Some(role) = non_empty(invite.role.as_deref()) {
        node.attrs.insert("role".into(), role);
    }
    if let Some(expires) = invite.expires_at {
        node.attrs.insert("invite_expires_at".into(), expires.to_rfc3339());
    }
    node
}

fn workspace_node(source: &str, workspace: &Workspace) -> Node {
    let name = non_empty(workspace.name.as_deref()).unwrap_or_else(|| workspace.id.clone());
    let mut node = Node::new(node_id(source, "workspace", &workspace.id), NodeKind::Resource, source, name);
    node.subkind = Some("workspace".into());
    if workspace.archived_at.is_some() {
        node.attrs.insert("archived".into(), "true".into());
    }
    // A tag `environment` or `env` is the workspace's environment.
    if let Some(tags) = &workspace.tags {
        node.environment = tags
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("environment") || k.eq_ignore_ascii_case("env"))
            .and_then(|(_, v)| non_empty(Some(v)));
    }
    node
}

/// A user named by a membership or a key but not in the user listing: an
/// account no longer (or not yet) in the organization.
fn ensure_user(b: &mut Builder, user_id: &str, key: &str) {
    if !b.has(user_id) {
        let mut stub = Node::new(user_id, NodeKind::Human, b.source.clone(), key);
        stub.active = Some(false);
        stub.attrs.insert("in_organization".into(), "false".into());
        b.add(stub);
    }
}

fn map_key(b: &mut Builder, key: &ApiKey, active_workspaces: &[String], path: &str) -> Result<(), SyncError> {
    let source = b.source.clone();
    let key_id = node_id(&source, "api_key", &key.id);
    let name = non_empty(key.name.as_deref()).unwrap_or_else(|| key.id.clone());
    let mut node = Node::new(key_id.clone(), NodeKind::Credential, &source, name.clone());
    node.subkind = Some("api_key".into());
    node.created_at = Some(key.created_at);
    node.expires_at = key.expires_at;
    // The API reports no use: rules must not guess (secret.unused stays silent).
    node.last_used = LastUse::Unknown;
    node.attrs.insert("last_used".into(), LAST_USED_UNKNOWN.into());
    let status = key.status.to_ascii_lowercase();
    node.attrs.insert("status".into(), status.clone());
    if let Some(hint) = redacted_hint(key.partial_key_hint.as_deref()) {
        node.attrs.insert("key_hint".into(), hint);
    }
    let live = status == "active";
    node.active = Some(live);

    let targets: Vec<String> = match reach(key) {
        Reach::Organization => {
            node.attrs.insert("scope".into(), "organization".into());
            active_workspaces.to_vec()
        }
        Reach::Workspace(id, _) => {
            let ws = node_id(&source, "workspace", &id);
            node.attrs.insert("scope".into(), "workspace".into());
            node.attrs.insert("workspace".into(), ws.clone());
            vec![ws]
        }
    };

    // The owner is the creator: inferred, the API does not say who answers for the key.
    let creator = match &key.created_by {
        Some(actor) if actor.kind.eq_ignore_ascii_case("user") => {
            let user_id = node_id(&source, "user", &actor.id);
            ensure_user(b, &user_id, &actor.id);
            Some(user_id)
        }
        Some(actor) if actor.kind.eq_ignore_ascii_case("service_account") => {
            Some(node_id(&source, "service_account", &actor.id))
        }
        Some(actor) => {
            node.attrs.insert("created_by_type".into(), actor.kind.clone());
            None
        }
        None => None,
    };
    if let Some(creator) = &creator {
        node.attrs.insert("created_by".into(), creator.clone());
        node.owner = Some(creator.clone());
        node.owner_inferred = true;
    }

    if !live {
        // Archived, inactive or expired: not access. The node stays (inactive)
        // so reports can tell a dead key from a missing one.
        b.add(node);
        return Ok(());
    }

    let holder = match &key.principal {
        None => {
            // A classic key acts as nobody in particular: whoever holds the
            // secret. That holder is a workload identity of its own, owned
            // (by inference) by the key's creator.
            let identity = key_identity_id(&source, &key.id);
            let mut sa = Node::new(identity.clone(), NodeKind::ServiceAccount, &source, format!("API key {name}"));
            sa.active = Some(true);
            sa.owner = creator.clone();
            sa.owner_inferred = creator.is_some();
            sa.attrs.insert("api_key".into(), key_id.clone());
            sa.attrs.insert("identity".into(), "holder of a classic API key".into());
            b.add(sa);
            for ws in &targets {
                b.grant(&identity, ws, &["use"]);
            }
            Some(identity)
        }
        Some(principal) if principal.kind.eq_ignore_ascii_case("user_actor") => {
            let user = principal.user_id.as_deref().filter(|id| !id.is_empty()).ok_or_else(|| {
                invalid(&format!("{path}.principal.user_id"), "principal of type `user_actor` names no user_id")
            })?;
            let user_id = node_id(&source, "user", user);
            ensure_user(b, &user_id, user);
            Some(user_id)
        }
        Some(principal) if principal.kind.eq_ignore_ascii_case("service_account_actor") => {
            let account = principal.service_account_id.as_deref().filter(|id| !id.is_empty()).ok_or_else(|| {
                invalid(
                    &format!("{path}.principal.service_account_id"),
                    "principal of type `service_account_actor` names no service_account_id",
                )
            })?;
            let sa_id = node_id(&source, "service_account", account);
            if !b.has(&sa_id) {
                let mut sa = Node::new(sa_id.clone(), NodeKind::ServiceAccount, &source, account);
                sa.active = Some(true);
                b.add(sa);
            }
            for ws in &targets {
                b.grant(&sa_id, ws, &["use"]);
            }
            Some(sa_id)
        }
        Some(principal) => {
            node.attrs.insert("principal_type".into(), principal.kind.clone());
            None
        }
    };
    b.add(node);
    if let Some(holder) = holder {
        b.edge(Edge::new(holder, key_id, EdgeKind::Holds));
    }
    Ok(())
}

fn invalid(location: &str, message: &str) -> SyncError {
    SyncError::Invalid {
        path: "anthropic admin API".to_string(),
        location: location.to_string(),
        message: message.to_string(),
    }
}
