//! Pure mapping: what one sync read ([`OrgRecords`]) → a graph fragment.
//! The model is documented on the [module](super).

use std::collections::{BTreeMap, BTreeSet};

use accessgraph_graph::model::node_id;
use accessgraph_graph::{Edge, EdgeKind, Fragment, LastUse, Node, NodeKind};
use chrono::{DateTime, Utc};

use super::wire::{
    Actors, BranchRuleset, Bypass, Collaborator, CredentialAuthorization, DeployKey, Installation, OrgRecords,
    PatRecords, Permissions, Protection, RepoRecords, Repository, RepositoryTarget, User,
};
use crate::connector::SyncError;

/// GitHub's repository roles, weakest first. Each role includes the ones
/// before it, and a grant carries the whole prefix, so that
/// `who-can --action write` also finds maintainers and admins.
pub const ROLE_ACTIONS: [&str; 5] = ["read", "triage", "write", "maintain", "admin"];

/// The action on a branch node: may land on it without an approving review.
pub const BYPASS_REVIEW: &str = "bypass-review";

/// The cumulative actions of a repository role (`read`/`pull`, `triage`,
/// `write`/`push`, `maintain`, `admin`); `None` for a custom role name.
pub fn role_actions(role: &str) -> Option<&'static [&'static str]> {
    let n = match role {
        "read" | "pull" => 1,
        "triage" => 2,
        "write" | "push" => 3,
        "maintain" => 4,
        "admin" => 5,
        _ => return None,
    };
    Some(&ROLE_ACTIONS[..n])
}

/// The highest role the permission flags allow.
fn flags_role(flags: Permissions) -> Option<&'static str> {
    if flags.admin {
        Some("admin")
    } else if flags.maintain {
        Some("maintain")
    } else if flags.push {
        Some("write")
    } else if flags.triage {
        Some("triage")
    } else if flags.pull {
        Some("read")
    } else {
        None
    }
}

/// A role name when it is a built-in one, else (custom roles) the highest
/// built-in role its permission flags grant.
fn effective_actions(role_name: Option<&str>, flags: Option<Permissions>) -> Option<&'static [&'static str]> {
    role_name.and_then(role_actions).or_else(|| flags.and_then(flags_role).and_then(role_actions))
}

/// What an App installation may do on a repository, from its permissions:
/// `administration: write` → admin; `contents: write` → write; `issues` or
/// `pull_requests: write` → triage; read of contents, issues or pull
/// requests → read. `metadata` alone grants nothing.
pub fn app_actions(permissions: &BTreeMap<String, String>) -> Option<&'static [&'static str]> {
    let level = |key: &str| permissions.get(key).map(String::as_str);
    let writes = |key: &str| matches!(level(key), Some("write" | "admin"));
    let reads = |key: &str| matches!(level(key), Some("read" | "write" | "admin"));
    if writes("administration") {
        role_actions("admin")
    } else if writes("contents") {
        role_actions("write")
    } else if writes("issues") || writes("pull_requests") {
        role_actions("triage")
    } else if reads("contents") || reads("issues") || reads("pull_requests") {
        role_actions("read")
    } else {
        None
    }
}

/// The two organization-role groups.
const OWNERS: &str = "owner";
const MEMBERS: &str = "member";

struct Builder<'a> {
    source: &'a str,
    nodes: BTreeMap<String, Node>,
    /// (from, to) → actions: one grant edge per pair, actions merged.
    grants: BTreeMap<(String, String), BTreeSet<&'static str>>,
    edges: BTreeMap<String, Edge>,
}

impl<'a> Builder<'a> {
    fn id(&self, kind: &str, key: &str) -> String {
        node_id(self.source, kind, key)
    }

    fn add(&mut self, node: Node) {
        self.nodes.entry(node.id.clone()).or_insert(node);
    }

    /// A user (or bot) account, created on first sight; `org_role` is set
    /// by the listing that knows it.
    fn user(&mut self, login: &str, email: Option<&str>, name: Option<&str>, kind: Option<&str>) -> String {
        let id = self.id("user", login);
        let node = self.nodes.entry(id.clone()).or_insert_with(|| {
            let node_kind = if kind == Some("Bot") { NodeKind::ServiceAccount } else { NodeKind::Human };
            let mut node = Node::new(id.clone(), node_kind, self.source, login);
            node.active = Some(true);
            node
        });
        if node.email.is_none() {
            node.email = email.filter(|e| !e.trim().is_empty()).map(str::to_string);
        }
        if let Some(name) = name.filter(|n| !n.trim().is_empty()) {
            node.attrs.entry("display_name".to_string()).or_insert_with(|| name.to_string());
        }
        id
    }

    fn simple_user(&mut self, user: &User) -> String {
        self.user(&user.login, user.email.as_deref(), user.name.as_deref(), user.kind.as_deref())
    }

    fn set_org_role(&mut self, id: &str, role: &str) {
        if let Some(node) = self.nodes.get_mut(id) {
            node.attrs.entry("org_role".to_string()).or_insert_with(|| role.to_string());
        }
    }

    /// A user named by a record (a key's creator) who may have left: not a
    /// member or collaborator, so inactive and flagged.
    fn referenced_user(&mut self, login: &str) -> String {
        let id = self.id("user", login);
        if !self.nodes.contains_key(&id) {
            let mut node = Node::new(id.clone(), NodeKind::Human, self.source, login);
            node.active = Some(false);
            node.attrs.insert("org_role".to_string(), "none".to_string());
            self.nodes.insert(id.clone(), node);
        }
        id
    }

    fn member_of(&mut self, from: &str, to: &str) {
        let edge = Edge::new(from, to, EdgeKind::MemberOf);
        self.edges.insert(edge.key(), edge);
    }

    fn holds(&mut self, holder: &str, credential: &str) {
        let edge = Edge::new(holder, credential, EdgeKind::Holds);
        self.edges.insert(edge.key(), edge);
    }

    fn grant(&mut self, from: &str, to: &str, actions: &[&'static str]) {
        if actions.is_empty() {
            return;
        }
        self.grants.entry((from.to_string(), to.to_string())).or_default().extend(actions.iter().copied());
    }

    /// Principals holding `action` on `resource` through a direct grant.
    fn holders(&self, resource: &str, action: &str) -> Vec<String> {
        self.grants
            .iter()
            .filter(|((_, to), actions)| to == resource && actions.contains(action))
            .map(|((from, _), _)| from.clone())
            .collect()
    }

    fn finish(self) -> Fragment {
        let mut edges: Vec<Edge> = self.edges.into_values().collect();
        for ((from, to), actions) in self.grants {
            edges.push(Edge::grant(from, to, actions));
        }
        Fragment { source: self.source.to_string(), nodes: self.nodes.into_values().collect(), edges, kept: Vec::new() }
    }
}

/// Maps one sync's records. Fails (naming the record) on values the mapping
/// cannot key: an empty login, slug or repository name.
pub fn map(source: &str, records: &OrgRecords) -> Result<Fragment, SyncError> {
    validate(records)?;
    let mut b = Builder { source, nodes: BTreeMap::new(), grants: BTreeMap::new(), edges: BTreeMap::new() };
    let org = &records.org.login;

    // Organization roles as groups: owners are admin everywhere, members get
    // the base permission.
    let owners_group = b.id("org_role", OWNERS);
    let members_group = b.id("org_role", MEMBERS);
    let mut group = Node::new(owners_group.clone(), NodeKind::Group, source, format!("{org} owners"));
    group.attrs.insert("organization".to_string(), org.clone());
    b.add(group);
    let mut group = Node::new(members_group.clone(), NodeKind::Group, source, format!("{org} members"));
    group.attrs.insert("organization".to_string(), org.clone());
    group.attrs.insert(
        "base_permission".to_string(),
        records.org.default_repository_permission.clone().unwrap_or_else(|| "unknown".to_string()),
    );
    b.add(group);

    for user in &records.owners {
        let id = b.simple_user(user);
        b.set_org_role(&id, "owner");
        b.member_of(&id, &owners_group);
        b.member_of(&id, &members_group);
    }
    for user in &records.members {
        let id = b.simple_user(user);
        b.set_org_role(&id, "member");
        b.member_of(&id, &members_group);
    }
    for user in &records.outside_collaborators {
        let id = b.simple_user(user);
        b.set_org_role(&id, "outside_collaborator");
    }

    // Repositories first, so that grants only point at known ones.
    let mut repo_ids: BTreeMap<&str, String> = BTreeMap::new();
    for records in &records.repos {
        let id = repo_node(&mut b, &records.repo);
        repo_ids.insert(records.repo.full_name.as_str(), id);
    }
    let base_actions = records.org.default_repository_permission.as_deref().and_then(role_actions);
    for records in &records.repos {
        let repo_id = repo_ids[records.repo.full_name.as_str()].clone();
        b.grant(&owners_group, &repo_id, &ROLE_ACTIONS);
        if let Some(actions) = base_actions {
            b.grant(&members_group, &repo_id, actions);
        }
        // Internal repositories are readable by every member of the enterprise.
        if records.repo.visibility.as_deref() == Some("internal") {
            b.grant(&members_group, &repo_id, &ROLE_ACTIONS[..1]);
        }
    }

    // Teams: nested teams inherit their parent's access.
    for team in &records.teams {
        let id = b.id("team", &team.team.slug);
        let mut node = Node::new(id.clone(), NodeKind::Group, source, team.team.name.clone());
        node.attrs.insert("slug".to_string(), team.team.slug.clone());
        if let Some(privacy) = &team.team.privacy {
            node.attrs.insert("privacy".to_string(), privacy.clone());
        }
        b.add(node);
    }
    for team in &records.teams {
        let team_id = b.id("team", &team.team.slug);
        if let Some(parent) = &team.team.parent {
            let parent_id = b.id("team", &parent.slug);
            if b.nodes.contains_key(&parent_id) {
                b.member_of(&team_id, &parent_id);
                if let Some(node) = b.nodes.get_mut(&team_id) {
                    node.attrs.insert("parent".to_string(), parent.slug.clone());
                }
            }
        }
        for user in &team.members {
            let id = b.simple_user(user);
            b.member_of(&id, &team_id);
        }
        for user in &team.maintainers {
            let id = b.simple_user(user);
            b.member_of(&id, &team_id);
            // A maintainer adds and removes members: hands out the team's access.
            b.grant(&id, &team_id, &["maintain"]);
        }
        for repo in &team.repos {
            if let (Some(repo_id), Some(actions)) =
                (repo_ids.get(repo.full_name.as_str()), effective_actions(repo.role_name.as_deref(), repo.permissions))
            {
                let repo_id = repo_id.clone();
                b.grant(&team_id, &repo_id, actions);
            }
        }
    }

    for repo in &records.repos {
        let repo_id = repo_ids[repo.repo.full_name.as_str()].clone();
        for collaborator in repo.collaborators.iter().flatten() {
            collaborator_grant(&mut b, collaborator, &repo_id);
        }
        for key in repo.deploy_keys.iter().flatten() {
            deploy_key(&mut b, key, &repo.repo.full_name, &repo_id);
        }
        for secret in repo.secrets.iter().flatten() {
            let key = format!("{}/{}", repo.repo.full_name, secret.name);
            let mut node = secret_node(&b, &key, &secret.name, secret.created_at, secret.updated_at);
            node.attrs.insert("repository".to_string(), repo.repo.full_name.clone());
            b.add(node);
        }
    }

    for installation in records.installations.iter().flatten() {
        app(&mut b, &installation.installation, installation.repositories.as_deref(), &repo_ids);
    }
    for pat in records.pats.iter().flatten() {
        fine_grained_pat(&mut b, pat);
    }
    for authorization in records.credential_authorizations.iter().flatten() {
        credential_authorization(&mut b, authorization);
    }
    for secret in records.org_secrets.iter().flatten() {
        let key = format!("{org}/{}", secret.name);
        let mut node = secret_node(&b, &key, &secret.name, secret.created_at, secret.updated_at);
        let visibility = serde_json::to_value(&secret.visibility)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        node.attrs.insert("visibility".to_string(), visibility);
        node.attrs.insert("organization".to_string(), org.clone());
        b.add(node);
    }

    // Last: who can land on each default branch without an approving review,
    // from the repository grants collected above.
    let directory = Directory::new(&b, records);
    for repo in &records.repos {
        let rulesets = applicable_rulesets(repo, records.org_rulesets.as_deref());
        branch(&mut b, repo, &repo_ids[repo.repo.full_name.as_str()], &rulesets, &directory);
    }
    Ok(b.finish())
}

fn validate(records: &OrgRecords) -> Result<(), SyncError> {
    let invalid = |location: String, message: &str| SyncError::Invalid {
        path: format!("github organization {}", records.org.login),
        location,
        message: message.to_string(),
    };
    if records.org.login.trim().is_empty() {
        return Err(invalid("$.login".to_string(), "empty organization login"));
    }
    let users = records.owners.iter().chain(&records.members).chain(&records.outside_collaborators);
    for (i, user) in users.enumerate() {
        if user.login.trim().is_empty() {
            return Err(invalid(format!("members[{i}].login"), "empty login"));
        }
    }
    for (i, team) in records.teams.iter().enumerate() {
        if team.team.slug.trim().is_empty() {
            return Err(invalid(format!("teams[{i}].slug"), "empty team slug"));
        }
    }
    for (i, repo) in records.repos.iter().enumerate() {
        if !repo.repo.full_name.contains('/') || repo.repo.full_name.ends_with('/') {
            return Err(invalid(format!("repos[{i}].full_name"), "not OWNER/NAME"));
        }
    }
    for (i, installation) in records.installations.iter().flatten().enumerate() {
        if installation.installation.app_slug.trim().is_empty() {
            return Err(invalid(format!("installations[{i}].app_slug"), "empty App slug"));
        }
    }
    Ok(())
}

fn repo_node(b: &mut Builder<'_>, repo: &Repository) -> String {
    let id = b.id("repo", &repo.full_name);
    let mut node = Node::new(id.clone(), NodeKind::Resource, b.source, repo.full_name.clone());
    node.subkind = Some("repo".to_string());
    let visibility =
        repo.visibility.clone().unwrap_or_else(|| if repo.private { "private" } else { "public" }.to_string());
    node.attrs.insert("visibility".to_string(), visibility);
    node.attrs.insert("archived".to_string(), repo.archived.to_string());
    if repo.fork {
        node.attrs.insert("fork".to_string(), "true".to_string());
    }
    if repo.disabled {
        node.attrs.insert("disabled".to_string(), "true".to_string());
    }
    if let Some(branch) = &repo.default_branch {
        node.attrs.insert("default_branch".to_string(), branch.clone());
    }
    b.add(node);
    id
}

fn collaborator_grant(b: &mut Builder<'_>, collaborator: &Collaborator, repo_id: &str) {
    let id = b.user(
        &collaborator.login,
        collaborator.email.as_deref(),
        collaborator.name.as_deref(),
        collaborator.kind.as_deref(),
    );
    if let Some(actions) = effective_actions(Some(&collaborator.role_name), collaborator.permissions) {
        b.grant(&id, repo_id, actions);
    } else {
        tracing::warn!(repo = %repo_id, login = %collaborator.login, role = %collaborator.role_name,
            "collaborator role is neither built-in nor described by permission flags; no grant mapped");
    }
}

/// A deploy key: the credential, and the identity that holds it (whoever has
/// the private key), with the key's access on its repository.
fn deploy_key(b: &mut Builder<'_>, key: &DeployKey, full_name: &str, repo_id: &str) {
    let key_id = key.id.to_string();
    let credential_id = b.id("deploy_key", &key_id);
    let holder_id = b.id("deploy_key_holder", &key_id);
    let owner = key.added_by.as_deref().filter(|l| !l.trim().is_empty()).map(|login| b.referenced_user(login));
    let active = key.enabled != Some(false);

    let mut holder = Node::new(
        holder_id.clone(),
        NodeKind::ServiceAccount,
        b.source,
        format!("deploy key \"{}\" on {full_name}", key.title),
    );
    holder.active = Some(active);
    holder.owner = owner.clone();
    holder.owner_inferred = owner.is_some();
    holder.attrs.insert("repository".to_string(), full_name.to_string());
    holder.attrs.insert("deploy_key".to_string(), key_id.clone());
    b.add(holder);

    let mut credential = Node::new(credential_id.clone(), NodeKind::Credential, b.source, key.title.clone());
    credential.subkind = Some("deploy_key".to_string());
    credential.active = Some(active);
    credential.owner = owner.clone();
    credential.owner_inferred = owner.is_some();
    credential.created_at = Some(key.created_at);
    credential.last_used = key.last_used.map_or(LastUse::Never, LastUse::At);
    credential.attrs.insert("repository".to_string(), full_name.to_string());
    credential.attrs.insert("read_only".to_string(), key.read_only.to_string());
    credential.attrs.insert("verified".to_string(), key.verified.to_string());
    b.add(credential);

    b.holds(&holder_id, &credential_id);
    if active {
        // A deploy key reads, or reads and pushes: it cannot triage or administer.
        let actions: &[&'static str] = if key.read_only { &["read"] } else { &["read", "write"] };
        b.grant(&holder_id, repo_id, actions);
    }
}

fn secret_node(b: &Builder<'_>, key: &str, name: &str, created_at: DateTime<Utc>, updated_at: DateTime<Utc>) -> Node {
    let mut node = Node::new(b.id("secret", key), NodeKind::Credential, b.source, name);
    node.subkind = Some("actions_secret".to_string());
    node.created_at = Some(created_at);
    // Setting a secret's value again is its rotation.
    if updated_at > created_at {
        node.rotated_at = Some(updated_at);
    }
    // GitHub does not report when a secret was last used.
    node.last_used = LastUse::Unknown;
    node
}

fn app(
    b: &mut Builder<'_>,
    installation: &Installation,
    repositories: Option<&[Repository]>,
    repo_ids: &BTreeMap<&str, String>,
) {
    let id = b.id("app", &installation.app_slug);
    let mut node = Node::new(id.clone(), NodeKind::App, b.source, installation.app_slug.clone());
    let active = installation.suspended_at.is_none();
    node.active = Some(active);
    node.attrs.insert("app_id".to_string(), installation.app_id.to_string());
    node.attrs.insert("installation_id".to_string(), installation.id.to_string());
    node.attrs.insert("repository_selection".to_string(), installation.repository_selection.clone());
    let permissions: Vec<String> = installation.permissions.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    node.attrs.insert("permissions".to_string(), permissions.join(","));
    if let Some(at) = installation.created_at {
        node.attrs.insert("installed_at".to_string(), at.to_rfc3339());
    }
    let selected = installation.repository_selection == "selected";
    if selected && repositories.is_none() {
        node.attrs.insert("repositories".to_string(), "unknown".to_string());
    }
    b.add(node);
    let Some(actions) = app_actions(&installation.permissions).filter(|_| active) else {
        return;
    };
    let targets: Vec<String> = if selected {
        repositories.into_iter().flatten().filter_map(|repo| repo_ids.get(repo.full_name.as_str()).cloned()).collect()
    } else {
        repo_ids.values().cloned().collect()
    };
    for repo_id in targets {
        b.grant(&id, &repo_id, actions);
    }
}

/// A fine-grained PAT: held by its owner, whose access it can use (a PAT
/// never exceeds its owner's access; its own scope is kept as attributes).
fn fine_grained_pat(b: &mut Builder<'_>, pat: &PatRecords) {
    let grant = &pat.grant;
    let owner = b.simple_user(&grant.owner);
    let id = b.id("pat", &grant.id.to_string());
    let mut node = Node::new(id.clone(), NodeKind::Credential, b.source, grant.token_name.clone());
    node.subkind = Some("fine_grained_pat".to_string());
    node.owner = Some(owner.clone());
    node.active = Some(!grant.token_expired);
    // The grant time: the token itself is at least this old.
    node.created_at = Some(grant.access_granted_at);
    node.expires_at = grant.token_expires_at;
    node.last_used = grant.token_last_used_at.map_or(LastUse::Never, LastUse::At);
    node.attrs.insert("token_id".to_string(), grant.token_id.to_string());
    node.attrs.insert("repository_selection".to_string(), grant.repository_selection.clone());
    let mut permissions = Vec::new();
    for (scope, map) in [
        ("organization", &grant.permissions.organization),
        ("repository", &grant.permissions.repository),
        ("other", &grant.permissions.other),
    ] {
        permissions.extend(map.iter().map(|(k, v)| format!("{scope}.{k}:{v}")));
    }
    node.attrs.insert("permissions".to_string(), permissions.join(","));
    if let Some(repositories) = &pat.repositories {
        let names: Vec<&str> = repositories.iter().map(|r| r.full_name.as_str()).collect();
        node.attrs.insert("repositories".to_string(), names.join(","));
    }
    b.add(node);
    b.holds(&owner, &id);
}

/// A classic PAT or SSH key authorized for SAML SSO: held by its user.
/// OAuth and App tokens are the Apps' business and are skipped.
fn credential_authorization(b: &mut Builder<'_>, authorization: &CredentialAuthorization) {
    let (kind, key, subkind) = match authorization.credential_type.as_str() {
        "personal access token" => ("pat", format!("classic-{}", authorization.credential_id), "classic_pat"),
        "SSH key" => ("ssh_key", authorization.credential_id.to_string(), "ssh_key"),
        _ => return,
    };
    let owner = b.user(&authorization.login, None, None, None);
    let id = b.id(kind, &key);
    let name = authorization
        .authorized_credential_note
        .clone()
        .or_else(|| authorization.authorized_credential_title.clone())
        .unwrap_or_else(|| format!("{subkind} of {}", authorization.login));
    let mut node = Node::new(id.clone(), NodeKind::Credential, b.source, name);
    node.subkind = Some(subkind.to_string());
    node.owner = Some(owner.clone());
    node.created_at = Some(authorization.credential_authorized_at);
    node.expires_at = authorization.authorized_credential_expires_at;
    node.last_used = authorization.credential_accessed_at.map_or(LastUse::Never, LastUse::At);
    node.attrs.insert("sso_authorized".to_string(), "true".to_string());
    if let Some(scopes) = &authorization.scopes {
        node.attrs.insert("scopes".to_string(), scopes.join(","));
    }
    if let Some(fingerprint) = &authorization.fingerprint {
        node.attrs.insert("fingerprint".to_string(), fingerprint.clone());
    }
    b.add(node);
    b.holds(&owner, &id);
}

/// The default branch node and its `bypass-review` grants. Classic branch
/// protection first:
/// - no protection rule: everyone who can push (every write grant);
/// - a rule without required approvals (no pull request rule, or 0
///   approvals): everyone who can push, or only the push restrictions'
///   actors when the rule restricts pushes;
/// - a rule requiring approvals: its bypass allowances;
/// - and in the last two cases admins too, unless `enforce_admins`;
/// - a locked branch: only admins, unless `enforce_admins`.
///
/// Then rulesets: an active branch ruleset whose `pull_request` rule needs
/// at least one approval requires a review from everyone but its bypass
/// actors, and one with an `update` rule lets nobody but its bypass actors
/// land at all (other rule types decide nothing here: see
/// `wire::rule_effect`). A principal keeps `bypass-review` only if no
/// mechanism stops it: a group that is not itself exempt from a ruleset is
/// replaced by those of its members who are.
///
/// Archived repositories take no pushes; unknown protection maps nothing.
fn branch(b: &mut Builder<'_>, repo: &RepoRecords, repo_id: &str, rulesets: &[BranchRuleset], directory: &Directory) {
    let Some(branch_name) = repo.repo.default_branch.as_deref() else { return };
    let key = format!("{}@{branch_name}", repo.repo.full_name);
    let id = b.id("branch", &key);
    let mut node = Node::new(id.clone(), NodeKind::Resource, b.source, key);
    node.subkind = Some("branch".to_string());
    node.attrs.insert("repository".to_string(), repo.repo.full_name.clone());
    let state = match &repo.protection {
        Protection::Protected(_) => "protected",
        Protection::Unprotected => "unprotected",
        Protection::NotApplicable => "not_applicable",
        Protection::Unknown => "unknown",
    };
    node.attrs.insert("protection".to_string(), state.to_string());

    let writers = b.holders(repo_id, "write");
    let admins = b.holders(repo_id, "admin");
    let classic: Vec<String> = match &repo.protection {
        Protection::NotApplicable | Protection::Unknown => Vec::new(),
        Protection::Unprotected => writers,
        Protection::Protected(rule) => {
            let enforce_admins = rule.enforce_admins.is_some_and(|f| f.enabled);
            let locked = rule.lock_branch.is_some_and(|f| f.enabled);
            let approvals =
                rule.required_pull_request_reviews.as_ref().map(|r| r.required_approving_review_count.unwrap_or(1));
            node.attrs.insert("enforce_admins".to_string(), enforce_admins.to_string());
            node.attrs.insert("required_approving_review_count".to_string(), approvals.unwrap_or(0).to_string());
            if locked {
                node.attrs.insert("locked".to_string(), "true".to_string());
            }
            let mut who: Vec<String> = if locked {
                Vec::new()
            } else if approvals.unwrap_or(0) == 0 {
                match &rule.restrictions {
                    Some(actors) => actor_ids(b, actors),
                    None => writers,
                }
            } else {
                rule.required_pull_request_reviews
                    .as_ref()
                    .and_then(|r| r.bypass_pull_request_allowances.as_ref())
                    .map(|actors| actor_ids(b, actors))
                    .unwrap_or_default()
            };
            if !enforce_admins {
                who.extend(admins);
            }
            who
        }
    };

    // Rulesets that require a review on this branch, or let only their
    // bypass actors update it, each with the node ids exempt from it. One
    // whose exemptions cannot be read or resolved is left out: it would
    // hide bypasses, never show false ones.
    let mut reviewing: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut unresolved: Vec<String> = Vec::new();
    for ruleset in rulesets {
        let restricts = ruleset.required_approvals.unwrap_or(0) > 0 || ruleset.restricts_updates;
        if !restricts || !ref_matches(ruleset, branch_name) {
            continue;
        }
        match ruleset.bypass.as_deref().and_then(|actors| directory.resolve(b, repo, repo_id, actors)) {
            Some(exempt) => reviewing.push((ruleset.name.clone(), exempt)),
            None => unresolved.push(ruleset.name.clone()),
        }
    }
    if !reviewing.is_empty() {
        let names: Vec<&str> = reviewing.iter().map(|(name, _)| name.as_str()).collect();
        node.attrs.insert("rulesets".to_string(), names.join(","));
    }
    if !unresolved.is_empty() {
        tracing::warn!(branch = %id, rulesets = %unresolved.join(","),
            "github: ruleset bypass actors not visible or not resolvable; the ruleset is not counted as protection");
        node.attrs.insert("rulesets_unresolved".to_string(), unresolved.join(","));
    }
    b.add(node);

    let bypass: BTreeSet<String> = if reviewing.is_empty() {
        classic.into_iter().collect()
    } else {
        let exempt_sets: Vec<&BTreeSet<String>> = reviewing.iter().map(|(_, exempt)| exempt).collect();
        directory.narrow(classic, &exempt_sets)
    };
    for principal in bypass {
        b.grant(&principal, &id, &[BYPASS_REVIEW]);
    }
}

/// Lookups the bypass actors of rulesets need, built once per sync.
struct Directory {
    owners_group: String,
    /// Team id → node id.
    teams_by_id: BTreeMap<u64, String>,
    /// App id → node id.
    apps_by_id: BTreeMap<u64, String>,
    /// User id → node id.
    users_by_id: BTreeMap<u64, String>,
    /// Group → its direct members (`member_of` reversed).
    members: BTreeMap<String, Vec<String>>,
    /// Principal → the groups it is directly in.
    parents: BTreeMap<String, Vec<String>>,
    /// (repository, custom role name) → principals granted it directly.
    custom_roles: BTreeMap<(String, String), Vec<String>>,
}

impl Directory {
    fn new(b: &Builder<'_>, records: &OrgRecords) -> Directory {
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for edge in b.edges.values().filter(|e| e.kind == EdgeKind::MemberOf) {
            members.entry(edge.to.clone()).or_default().push(edge.from.clone());
            parents.entry(edge.from.clone()).or_default().push(edge.to.clone());
        }
        let teams_by_id = records.teams.iter().map(|t| (t.team.id, b.id("team", &t.team.slug))).collect();
        let apps_by_id = records
            .installations
            .iter()
            .flatten()
            .map(|i| (i.installation.app_id, b.id("app", &i.installation.app_slug)))
            .collect();
        let mut users_by_id = BTreeMap::new();
        let users = records.owners.iter().chain(&records.members).chain(&records.outside_collaborators);
        for user in users.chain(records.teams.iter().flat_map(|t| t.members.iter().chain(&t.maintainers))) {
            users_by_id.insert(user.id, b.id("user", &user.login));
        }
        let mut custom_roles: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for repo in &records.repos {
            for collaborator in repo.collaborators.iter().flatten() {
                users_by_id.entry(collaborator.id).or_insert_with(|| b.id("user", &collaborator.login));
                if role_actions(&collaborator.role_name).is_none() {
                    custom_roles
                        .entry((repo.repo.full_name.clone(), collaborator.role_name.clone()))
                        .or_default()
                        .push(b.id("user", &collaborator.login));
                }
            }
        }
        for team in &records.teams {
            for repo in &team.repos {
                if let Some(role) = repo.role_name.as_deref().filter(|r| role_actions(r).is_none()) {
                    custom_roles
                        .entry((repo.full_name.clone(), role.to_string()))
                        .or_default()
                        .push(b.id("team", &team.team.slug));
                }
            }
        }
        Directory {
            owners_group: b.id("org_role", OWNERS),
            teams_by_id,
            apps_by_id,
            users_by_id,
            members,
            parents,
            custom_roles,
        }
    }

    /// The node ids a ruleset's bypass actors stand for on one repository;
    /// `None` when one of them cannot be resolved (a custom role known only
    /// by id, an actor type this build does not know).
    fn resolve(
        &self,
        b: &Builder<'_>,
        repo: &RepoRecords,
        repo_id: &str,
        actors: &[Bypass],
    ) -> Option<BTreeSet<String>> {
        let mut exempt = BTreeSet::new();
        for actor in actors {
            match actor {
                Bypass::OrganizationAdmin => {
                    exempt.insert(self.owners_group.clone());
                }
                Bypass::RepositoryRole { id, name } => {
                    // GitHub's ids of the built-in roles (not in permission order).
                    let builtin = match id {
                        Some(1) => Some("read"),
                        Some(2) => Some("maintain"),
                        Some(3) => Some("triage"),
                        Some(4) => Some("write"),
                        Some(5) => Some("admin"),
                        _ => name
                            .as_deref()
                            .map(str::to_lowercase)
                            .and_then(|n| role_actions(&n))
                            .and_then(|actions| actions.last().copied()),
                    };
                    match (builtin, name) {
                        // Cumulative: everyone whose role includes it.
                        (Some(role), _) => exempt.extend(b.holders(repo_id, role)),
                        (None, Some(custom)) => exempt.extend(
                            self.custom_roles
                                .get(&(repo.repo.full_name.clone(), custom.clone()))
                                .into_iter()
                                .flatten()
                                .cloned(),
                        ),
                        (None, None) => return None,
                    }
                }
                Bypass::Team { id, slug } => {
                    let node = match (slug, id) {
                        (Some(slug), _) => Some(b.id("team", slug)),
                        (None, Some(id)) => self.teams_by_id.get(id).cloned(),
                        (None, None) => None,
                    };
                    // A team unknown to the organization has no members here.
                    exempt.extend(node.filter(|n| b.nodes.contains_key(n)));
                }
                Bypass::App { id, slug } => {
                    let node = match (slug, id) {
                        (Some(slug), _) => Some(b.id("app", slug)),
                        (None, Some(id)) => self.apps_by_id.get(id).cloned(),
                        (None, None) => None,
                    };
                    exempt.extend(node.filter(|n| b.nodes.contains_key(n)));
                }
                Bypass::User { id } => {
                    exempt.extend(id.and_then(|id| self.users_by_id.get(&id).cloned()));
                }
                Bypass::DeployKey => {
                    for key in repo.deploy_keys.iter().flatten() {
                        exempt.insert(b.id("deploy_key_holder", &key.id.to_string()));
                    }
                }
                // Enterprise owners are not principals of the organization's graph.
                Bypass::EnterpriseOwner => {}
                Bypass::Other(_) => return None,
            }
        }
        Some(exempt)
    }

    /// Whether `principal`, or a group it is in (transitively), is in `set`.
    fn covered(&self, principal: &str, set: &BTreeSet<String>) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![principal.to_string()];
        while let Some(current) = stack.pop() {
            if set.contains(&current) {
                return true;
            }
            if seen.insert(current.clone()) {
                stack.extend(self.parents.get(&current).into_iter().flatten().cloned());
            }
        }
        false
    }

    /// Those of `candidates` exempt from every set; a candidate group that
    /// is not is replaced by its members (transitively) that are.
    fn narrow(&self, candidates: Vec<String>, exempt_sets: &[&BTreeSet<String>]) -> BTreeSet<String> {
        let exempt_everywhere = |p: &str| exempt_sets.iter().all(|set| self.covered(p, set));
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut stack = candidates;
        while let Some(principal) = stack.pop() {
            if !seen.insert(principal.clone()) {
                continue;
            }
            if exempt_everywhere(&principal) {
                out.insert(principal);
            } else {
                stack.extend(self.members.get(&principal).into_iter().flatten().cloned());
            }
        }
        out
    }
}

/// The branch rulesets that apply to a repository: GraphQL's list (GitHub
/// resolved which organization rulesets target it), with the bypass actors
/// of organization rulesets taken from their REST detail when GraphQL did
/// not show them; without GraphQL, the organization's rulesets whose
/// repository condition matches.
pub fn applicable_rulesets(repo: &RepoRecords, org_rulesets: Option<&[BranchRuleset]>) -> Vec<BranchRuleset> {
    let active = |r: &BranchRuleset| r.target == "branch" && r.enforcement == "active";
    match &repo.rulesets {
        Some(list) => list
            .iter()
            .filter(|r| active(r))
            .map(|r| {
                let mut r = r.clone();
                if r.source_type == "Organization"
                    && let Some(rest) = org_rulesets.into_iter().flatten().find(|o| o.id == r.id)
                    && rest.bypass.is_some()
                {
                    r.bypass = rest.bypass.clone();
                }
                r
            })
            .collect(),
        None => org_rulesets
            .into_iter()
            .flatten()
            .filter(|r| active(r) && targets_repository(r, &repo.repo))
            .cloned()
            .collect(),
    }
}

/// Whether an organization ruleset's repository condition takes `repo`.
/// A condition on custom properties cannot be evaluated from here: such a
/// ruleset is not counted (it could only remove bypasses).
fn targets_repository(ruleset: &BranchRuleset, repo: &Repository) -> bool {
    match &ruleset.repositories {
        None => true,
        Some(RepositoryTarget::Ids(ids)) => ids.contains(&repo.id),
        Some(RepositoryTarget::Names { include, exclude }) => {
            let hit = |pattern: &String| pattern == "~ALL" || glob(pattern.as_bytes(), repo.name.as_bytes());
            include.iter().any(hit) && !exclude.iter().any(hit)
        }
        Some(RepositoryTarget::Properties) => false,
    }
}

/// Whether a ruleset's `ref_name` condition takes the default branch
/// `branch`: one include pattern matches (`~DEFAULT_BRANCH`, `~ALL`, or an
/// fnmatch pattern on `refs/heads/BRANCH`) and no exclude pattern does. No
/// include pattern: the ruleset targets nothing (GitHub applies it nowhere).
pub fn ref_matches(ruleset: &BranchRuleset, branch: &str) -> bool {
    let full = format!("refs/heads/{branch}");
    let hit = |pattern: &String| match pattern.as_str() {
        "~DEFAULT_BRANCH" | "~ALL" => true,
        p if p.starts_with("refs/") => glob(p.as_bytes(), full.as_bytes()),
        p => glob(p.as_bytes(), branch.as_bytes()),
    };
    ruleset.ref_include.iter().any(hit) && !ruleset.ref_exclude.iter().any(hit)
}

/// fnmatch as GitHub's ruleset patterns use it: `*` any run without `/`,
/// `**` any run, `?` one character but `/`.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => {
            if let Some(rest) = rest.strip_prefix(b"*") {
                (0..=text.len()).any(|i| glob(rest, &text[i..]))
            } else {
                for i in 0..=text.len() {
                    if glob(rest, &text[i..]) {
                        return true;
                    }
                    if text.get(i) == Some(&b'/') {
                        return false;
                    }
                }
                false
            }
        }
        Some((b'?', rest)) => text.first().is_some_and(|c| *c != b'/') && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// Node ids of the users, teams and Apps a rule names. Users unknown to the
/// organization get an inactive account; unknown teams and Apps are
/// skipped (they cannot act here).
fn actor_ids(b: &mut Builder<'_>, actors: &Actors) -> Vec<String> {
    let mut ids = Vec::new();
    for user in &actors.users {
        ids.push(b.referenced_user(&user.login));
    }
    for team in &actors.teams {
        let id = b.id("team", &team.slug);
        if b.nodes.contains_key(&id) {
            ids.push(id);
        }
    }
    for slug in actors.apps.iter().filter_map(|app| app.slug.as_deref()) {
        let id = b.id("app", slug);
        if b.nodes.contains_key(&id) {
            ids.push(id);
        }
    }
    ids
}
