//! Pure mapping of a parsed snapshot to a graph fragment (CONTRACT §3, §4).
//!
//! Strict (STYLE habit 5): any invalid record fails the whole mapping with the
//! JSON path of the offending value; nothing is half-loaded.
//!
//! References (`members`, `assumable_by`, `principal`, `resource`, `holder`,
//! `owner`) name records of the same file:
//!
//! - a bare id (`"u1"`) is looked up among the categories the field accepts
//!   (identities, groups, roles; resources for a grant's `resource`). An id
//!   found in more than one of them is ambiguous and rejected;
//! - a qualified id (`"group:u1"`, `"role:u1"`, `"dataset:po"`, i.e. the node
//!   id without its source, optionally with it) removes the ambiguity.

use std::collections::HashMap;

use accessgraph_graph::model::{Edge, EdgeKind, Fragment, LastUse, Node, NodeKind, node_id};
use chrono::{DateTime, Utc};

use super::parse::{RawSnapshot, SUPPORTED_VERSION};
use crate::connector::SyncError;

/// Maps a parsed snapshot of the source named `source` to its fragment.
/// `file` names the input in errors.
pub fn map(source: &str, file: &str, raw: RawSnapshot) -> Result<Fragment, SyncError> {
    let mut mapper = Mapper::new(source, file);
    if raw.version != SUPPORTED_VERSION {
        return Err(mapper.invalid(
            "$.version",
            format!("unsupported snapshot version {}; this build reads version {SUPPORTED_VERSION}", raw.version),
        ));
    }
    if let Some(collected_at) = &raw.collected_at {
        mapper.time(collected_at, "$.collected_at")?;
    }
    mapper.index(&raw)?;

    let mut nodes = Vec::new();
    let mut edges = Edges::default();

    for (i, identity) in raw.identities.iter().enumerate() {
        let path = format!("$.identities[{i}]");
        let entry = mapper.lookup_own(Category::Identity, &identity.id);
        let email = non_empty(identity.email.as_deref());
        let name = non_empty(identity.name.as_deref()).or_else(|| email.clone()).unwrap_or_else(|| identity.id.clone());
        let mut node = Node::new(mapper.entries[entry].node_id.clone(), mapper.entries[entry].kind, source, name);
        node.email = email;
        node.active = identity.active;
        node.owner = mapper.owner(identity.owner.as_deref(), &format!("{path}.owner"), Some(entry))?;
        nodes.push(node);
    }

    for (i, group) in raw.groups.iter().enumerate() {
        let path = format!("$.groups[{i}]");
        let entry = mapper.lookup_own(Category::Group, &group.id);
        let group_node = mapper.entries[entry].node_id.clone();
        let name = non_empty(group.name.as_deref()).unwrap_or_else(|| group.id.clone());
        nodes.push(Node::new(group_node.clone(), NodeKind::Group, source, name));
        for (j, member) in group.members.iter().enumerate() {
            let location = format!("{path}.members[{j}]");
            let found = mapper.resolve(member, &[Category::Identity, Category::Group], &location, "member")?;
            if found == entry {
                return Err(mapper.invalid(&location, format!("group `{}` cannot be a member of itself", group.id)));
            }
            edges.push(Edge::new(mapper.entries[found].node_id.clone(), group_node.clone(), EdgeKind::MemberOf));
        }
    }

    for (i, role) in raw.roles.iter().enumerate() {
        let path = format!("$.roles[{i}]");
        let entry = mapper.lookup_own(Category::Role, &role.id);
        let role_node = mapper.entries[entry].node_id.clone();
        let name = non_empty(role.name.as_deref()).unwrap_or_else(|| role.id.clone());
        nodes.push(Node::new(role_node.clone(), NodeKind::Role, source, name));
        for (j, assumer) in role.assumable_by.iter().enumerate() {
            let location = format!("{path}.assumable_by[{j}]");
            let found = mapper.resolve(
                assumer,
                &[Category::Identity, Category::Group, Category::Role],
                &location,
                "assumable_by entry",
            )?;
            if found == entry {
                return Err(mapper.invalid(&location, format!("role `{}` cannot assume itself", role.id)));
            }
            edges.push(Edge::new(mapper.entries[found].node_id.clone(), role_node.clone(), EdgeKind::CanAssume));
        }
    }

    for resource in &raw.resources {
        let entry = mapper.lookup_own(Category::Resource, &resource.id);
        let name = non_empty(resource.name.as_deref()).unwrap_or_else(|| resource.id.clone());
        let mut node = Node::new(mapper.entries[entry].node_id.clone(), NodeKind::Resource, source, name);
        node.subkind = Some(resource.kind.clone());
        node.environment = non_empty(resource.environment.as_deref());
        for domain in &resource.data_domains {
            let domain = domain.trim();
            if !domain.is_empty() && !node.data_domains.iter().any(|d| d == domain) {
                node.data_domains.push(domain.to_string());
            }
        }
        nodes.push(node);
    }

    for (i, grant) in raw.grants.iter().enumerate() {
        let path = format!("$.grants[{i}]");
        let principal = mapper.resolve(
            &grant.principal,
            &[Category::Identity, Category::Group, Category::Role],
            &format!("{path}.principal"),
            "principal",
        )?;
        let resource =
            mapper.resolve(&grant.resource, &[Category::Resource], &format!("{path}.resource"), "resource")?;
        if grant.actions.is_empty() {
            return Err(mapper.invalid(&format!("{path}.actions"), "a grant needs at least one action"));
        }
        let mut actions = Vec::with_capacity(grant.actions.len());
        for (j, action) in grant.actions.iter().enumerate() {
            let action = action.trim();
            if action.is_empty() {
                return Err(mapper.invalid(&format!("{path}.actions[{j}]"), "an action must not be empty"));
            }
            actions.push(action.to_string());
        }
        let mut edge =
            Edge::grant(mapper.entries[principal].node_id.clone(), mapper.entries[resource].node_id.clone(), actions);
        edge.granted_at = mapper.optional_time(grant.granted_at.as_deref(), &format!("{path}.granted_at"))?;
        edge.expires_at = mapper.optional_time(grant.expires_at.as_deref(), &format!("{path}.expires_at"))?;
        if let (Some(granted), Some(expires)) = (edge.granted_at, edge.expires_at)
            && expires < granted
        {
            return Err(mapper.invalid(&format!("{path}.expires_at"), "the grant expires before it was granted"));
        }
        edges.merge_grant(edge);
    }

    for (i, credential) in raw.credentials.iter().enumerate() {
        let path = format!("$.credentials[{i}]");
        let id = node_id(source, &credential.kind, &credential.id);
        let name = non_empty(credential.name.as_deref()).unwrap_or_else(|| credential.id.clone());
        let mut node = Node::new(id.clone(), NodeKind::Credential, source, name);
        node.subkind = Some(credential.kind.clone());
        node.owner = mapper.owner(credential.owner.as_deref(), &format!("{path}.owner"), None)?;
        node.created_at = mapper.optional_time(credential.created_at.as_deref(), &format!("{path}.created_at"))?;
        node.expires_at = mapper.optional_time(credential.expires_at.as_deref(), &format!("{path}.expires_at"))?;
        if let (Some(created), Some(expires)) = (node.created_at, node.expires_at)
            && expires < created
        {
            return Err(mapper.invalid(&format!("{path}.expires_at"), "the credential expires before it was created"));
        }
        node.last_used = match &credential.last_used_at {
            None => LastUse::Unknown,
            Some(None) => LastUse::Never,
            Some(Some(at)) => LastUse::At(mapper.time(at, &format!("{path}.last_used_at"))?),
        };
        if let Some(holder) = &credential.holder {
            let found = mapper.resolve(holder, &[Category::Identity], &format!("{path}.holder"), "holder")?;
            edges.push(Edge::new(mapper.entries[found].node_id.clone(), id, EdgeKind::Holds));
        }
        nodes.push(node);
    }

    Ok(Fragment { source: source.to_string(), nodes, edges: edges.edges, kept: Vec::new() })
}

/// The sections a reference can point into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    Identity,
    Group,
    Role,
    Resource,
}

impl Category {
    fn noun(self) -> &'static str {
        match self {
            Category::Identity => "identity",
            Category::Group => "group",
            Category::Role => "role",
            Category::Resource => "resource",
        }
    }

    /// "an identity, group or role", for messages.
    fn list(categories: &[Category]) -> String {
        let nouns: Vec<&str> = categories.iter().map(|c| c.noun()).collect();
        match nouns.as_slice() {
            [] => String::new(),
            [one] => format!("{} {one}", article(one)),
            [first, .., last] => format!("{} {} or {last}", article(first), nouns[..nouns.len() - 1].join(", ")),
        }
    }
}

/// One referenceable record.
struct Entry {
    category: Category,
    /// `$.groups[2]`, for messages.
    path: String,
    /// `SOURCE:KIND:ID`.
    node_id: String,
    kind: NodeKind,
}

struct Mapper<'a> {
    source: &'a str,
    file: &'a str,
    entries: Vec<Entry>,
    /// Bare id → entries with that id (at most one per category).
    by_id: HashMap<String, Vec<usize>>,
    /// `KIND:ID` (the node id without its source) → entry.
    by_local: HashMap<String, usize>,
}

impl<'a> Mapper<'a> {
    fn new(source: &'a str, file: &'a str) -> Mapper<'a> {
        Mapper { source, file, entries: Vec::new(), by_id: HashMap::new(), by_local: HashMap::new() }
    }

    fn invalid(&self, location: &str, message: impl Into<String>) -> SyncError {
        SyncError::Invalid { path: self.file.to_string(), location: location.to_string(), message: message.into() }
    }

    /// Checks ids, kinds and uniqueness of every record, so references can be
    /// resolved in any order (a group may list a group defined after it).
    fn index(&mut self, raw: &RawSnapshot) -> Result<(), SyncError> {
        // Node id → path of the record that produced it: resource and
        // credential kinds are free-form, so ids can collide across sections.
        let mut node_ids: HashMap<String, String> = HashMap::new();

        for (i, identity) in raw.identities.iter().enumerate() {
            let path = format!("$.identities[{i}]");
            let kind = NodeKind::identity_from_str(&identity.kind).ok_or_else(|| {
                self.invalid(
                    &format!("{path}.kind"),
                    format!("unknown identity kind `{}`; expected human, agent, service_account or app", identity.kind),
                )
            })?;
            let key_kind = if kind == NodeKind::Human { "user" } else { kind.as_str() };
            self.add(Category::Identity, &identity.id, key_kind, kind, path, &mut node_ids)?;
        }
        for (i, group) in raw.groups.iter().enumerate() {
            self.add(Category::Group, &group.id, "group", NodeKind::Group, format!("$.groups[{i}]"), &mut node_ids)?;
        }
        for (i, role) in raw.roles.iter().enumerate() {
            self.add(Category::Role, &role.id, "role", NodeKind::Role, format!("$.roles[{i}]"), &mut node_ids)?;
        }
        for (i, resource) in raw.resources.iter().enumerate() {
            let path = format!("$.resources[{i}]");
            self.check_kind_token(&resource.kind, &format!("{path}.kind"), "resource")?;
            self.add(Category::Resource, &resource.id, &resource.kind, NodeKind::Resource, path, &mut node_ids)?;
        }
        let mut credential_ids: HashMap<&str, String> = HashMap::new();
        for (i, credential) in raw.credentials.iter().enumerate() {
            let path = format!("$.credentials[{i}]");
            self.check_id(&credential.id, &path)?;
            self.check_kind_token(&credential.kind, &format!("{path}.kind"), "credential")?;
            if let Some(first) = credential_ids.insert(&credential.id, path.clone()) {
                return Err(self.invalid(
                    &format!("{path}.id"),
                    format!("duplicate credential id `{}` (first at {first})", credential.id),
                ));
            }
            let id = node_id(self.source, &credential.kind, &credential.id);
            if let Some(first) = node_ids.insert(id.clone(), path.clone()) {
                return Err(self.invalid(&format!("{path}.id"), format!("node id `{id}` is already used by {first}")));
            }
        }
        Ok(())
    }

    fn check_id(&self, id: &str, path: &str) -> Result<(), SyncError> {
        if id.trim().is_empty() {
            return Err(self.invalid(&format!("{path}.id"), "an id must not be empty"));
        }
        Ok(())
    }

    fn check_kind_token(&self, kind: &str, location: &str, what: &str) -> Result<(), SyncError> {
        let ok = !kind.is_empty()
            && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(self.invalid(
                location,
                format!("{what} kind `{kind}` must be a non-empty token of a-z, 0-9, `_` and `-`"),
            ));
        }
        Ok(())
    }

    fn add(
        &mut self,
        category: Category,
        id: &str,
        key_kind: &str,
        kind: NodeKind,
        path: String,
        node_ids: &mut HashMap<String, String>,
    ) -> Result<(), SyncError> {
        self.check_id(id, &path)?;
        let duplicate =
            self.by_id.get(id).and_then(|same_id| same_id.iter().find(|&&e| self.entries[e].category == category));
        if let Some(&first) = duplicate {
            let first = &self.entries[first].path;
            return Err(self.invalid(
                &format!("{path}.id"),
                format!("duplicate {} id `{id}` (first at {first})", category.noun()),
            ));
        }
        let node = node_id(self.source, key_kind, id);
        if let Some(first) = node_ids.insert(node.clone(), path.clone()) {
            return Err(self.invalid(&format!("{path}.id"), format!("node id `{node}` is already used by {first}")));
        }
        let entry = self.entries.len();
        self.by_id.entry(id.to_string()).or_default().push(entry);
        self.by_local.insert(format!("{key_kind}:{id}"), entry);
        self.entries.push(Entry { category, path, node_id: node, kind });
        Ok(())
    }

    /// The entry a record itself produced (indexed by `index`).
    fn lookup_own(&self, category: Category, id: &str) -> usize {
        self.by_id[id]
            .iter()
            .copied()
            .find(|&e| self.entries[e].category == category)
            .expect("every record was indexed")
    }

    /// Resolves a reference to one entry of the `allowed` categories.
    fn resolve(&self, reference: &str, allowed: &[Category], location: &str, field: &str) -> Result<usize, SyncError> {
        let bare: Vec<usize> = self
            .by_id
            .get(reference)
            .map(|entries| entries.iter().copied().filter(|&e| allowed.contains(&self.entries[e].category)).collect())
            .unwrap_or_default();
        match bare.as_slice() {
            [one] => return Ok(*one),
            [] => {}
            many => {
                let found: Vec<String> = many
                    .iter()
                    .map(|&e| {
                        let noun = self.entries[e].category.noun();
                        format!("{} {noun} ({})", article(noun), self.entries[e].path)
                    })
                    .collect();
                let qualified: Vec<String> = many.iter().map(|&e| format!("`{}`", self.local_key(e))).collect();
                return Err(self.invalid(
                    location,
                    format!(
                        "{field} `{reference}` is ambiguous: it is the id of {}; write {} instead",
                        found.join(" and of "),
                        qualified.join(" or ")
                    ),
                ));
            }
        }

        let qualified = reference
            .strip_prefix(self.source)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|local| self.by_local.get(local))
            .or_else(|| self.by_local.get(reference))
            .copied();
        if let Some(entry) = qualified
            && allowed.contains(&self.entries[entry].category)
        {
            return Ok(entry);
        }

        let elsewhere = self.by_id.get(reference).and_then(|entries| entries.first().copied()).or(qualified);
        let message = match elsewhere {
            Some(e) => format!(
                "{field} `{reference}` is {} {} ({}), but it must be {}",
                article(self.entries[e].category.noun()),
                self.entries[e].category.noun(),
                self.entries[e].path,
                Category::list(allowed)
            ),
            None => format!("{field} `{reference}` is not the id of {} in this file", Category::list(allowed)),
        };
        Err(self.invalid(location, message))
    }

    /// `group:buyers`: the node id without its source.
    fn local_key(&self, entry: usize) -> &str {
        let id = &self.entries[entry].node_id;
        &id[self.source.len() + 1..]
    }

    /// An owner: an email kept as written (trimmed), or an identity of this
    /// file stored as its node id. `this` is the identity being mapped, which
    /// cannot own itself.
    fn owner(&self, owner: Option<&str>, location: &str, this: Option<usize>) -> Result<Option<String>, SyncError> {
        let Some(owner) = owner.map(str::trim).filter(|o| !o.is_empty()) else {
            return Ok(None);
        };
        if owner.contains('@') {
            return Ok(Some(owner.to_string()));
        }
        let found = self.resolve(owner, &[Category::Identity], location, "owner")?;
        if Some(found) == this {
            return Err(self.invalid(location, format!("identity `{owner}` cannot own itself")));
        }
        Ok(Some(self.entries[found].node_id.clone()))
    }

    fn time(&self, value: &str, location: &str) -> Result<DateTime<Utc>, SyncError> {
        DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|e| {
            self.invalid(location, format!("`{value}` is not an RFC 3339 timestamp such as 2026-11-20T00:00:00Z ({e})"))
        })
    }

    fn optional_time(&self, value: Option<&str>, location: &str) -> Result<Option<DateTime<Utc>>, SyncError> {
        value.map(|v| self.time(v, location)).transpose()
    }
}

/// Edges unique by key; duplicate grants merge.
#[derive(Default)]
struct Edges {
    edges: Vec<Edge>,
    by_key: HashMap<String, usize>,
}

impl Edges {
    /// Adds an edge unless the same fact is already there.
    fn push(&mut self, edge: Edge) {
        let key = edge.key();
        if !self.by_key.contains_key(&key) {
            self.by_key.insert(key, self.edges.len());
            self.edges.push(edge);
        }
    }

    /// Adds a grant; a grant of the same actions by the same principal on the
    /// same resource merges into it: the latest expiry wins (none beats any),
    /// and the earliest known grant time is kept (the access is that old).
    fn merge_grant(&mut self, edge: Edge) {
        let key = edge.key();
        let Some(&at) = self.by_key.get(&key) else {
            self.by_key.insert(key, self.edges.len());
            self.edges.push(edge);
            return;
        };
        let existing = &mut self.edges[at];
        existing.expires_at = match (existing.expires_at, edge.expires_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        existing.granted_at = match (existing.granted_at, edge.granted_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

fn article(noun: &str) -> &'static str {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}
