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

use hashbrown::HashMap;
use hashbrown::hash_map::Entry as Slot;

use accessgraph_graph::model::{Edge, EdgeKind, Fragment, LastUse, Node, NodeKind, node_id};
use chrono::{DateTime, Utc};

use super::parse::{RawSnapshot, SUPPORTED_VERSION};
use crate::connector::SyncError;
use crate::fragment::UniqueEdges;

/// Maps a parsed snapshot of the source named `source` to its fragment.
/// `file` names the input in errors.
///
/// JSON paths for errors are formatted only when an error names them: at a
/// million grants, formatting five paths a grant was most of the mapping.
pub fn map(source: &str, file: &str, raw: RawSnapshot) -> Result<Fragment, SyncError> {
    let mut mapper = Mapper::new(source, file);
    if raw.version != SUPPORTED_VERSION {
        return Err(mapper.invalid(
            "$.version",
            format!("unsupported snapshot version {}; this build reads version {SUPPORTED_VERSION}", raw.version),
        ));
    }
    if let Some(collected_at) = &raw.collected_at {
        mapper.time(collected_at, &|| "$.collected_at".to_string())?;
    }
    mapper.index(&raw)?;

    let node_count = raw.identities.len() + raw.groups.len() + raw.roles.len() + raw.resources.len();
    let mut nodes = Vec::with_capacity(node_count + raw.credentials.len());
    let edge_count = raw.groups.iter().map(|g| g.members.len()).sum::<usize>()
        + raw.roles.iter().map(|r| r.assumable_by.len()).sum::<usize>()
        + raw.grants.len()
        + raw.credentials.len();
    let mut edges = UniqueEdges::with_capacity(edge_count);

    for (i, identity) in raw.identities.iter().enumerate() {
        let entry = mapper.lookup_own(Category::Identity, &identity.id);
        let email = non_empty(identity.email.as_deref());
        let name = non_empty(identity.name.as_deref()).or_else(|| email.clone()).unwrap_or_else(|| identity.id.clone());
        let mut node = Node::new(mapper.entries[entry].node_id.clone(), mapper.entries[entry].kind, source, name);
        node.email = email;
        node.active = identity.active;
        node.owner = mapper.owner(identity.owner.as_deref(), &|| format!("$.identities[{i}].owner"), Some(entry))?;
        nodes.push(node);
    }

    for (i, group) in raw.groups.iter().enumerate() {
        let entry = mapper.lookup_own(Category::Group, &group.id);
        let group_node = &mapper.entries[entry].node_id;
        let name = non_empty(group.name.as_deref()).unwrap_or_else(|| group.id.clone());
        nodes.push(Node::new(group_node.clone(), NodeKind::Group, source, name));
        for (j, member) in group.members.iter().enumerate() {
            let location = || format!("$.groups[{i}].members[{j}]");
            let found = mapper.resolve(member, &[Category::Identity, Category::Group], &location, "member")?;
            if found == entry {
                return Err(mapper.invalid(&location(), format!("group `{}` cannot be a member of itself", group.id)));
            }
            edges.push(Edge::new(mapper.entries[found].node_id.clone(), group_node.clone(), EdgeKind::MemberOf));
        }
    }

    for (i, role) in raw.roles.iter().enumerate() {
        let entry = mapper.lookup_own(Category::Role, &role.id);
        let role_node = &mapper.entries[entry].node_id;
        let name = non_empty(role.name.as_deref()).unwrap_or_else(|| role.id.clone());
        nodes.push(Node::new(role_node.clone(), NodeKind::Role, source, name));
        for (j, assumer) in role.assumable_by.iter().enumerate() {
            let location = || format!("$.roles[{i}].assumable_by[{j}]");
            let found = mapper.resolve(
                assumer,
                &[Category::Identity, Category::Group, Category::Role],
                &location,
                "assumable_by entry",
            )?;
            if found == entry {
                return Err(mapper.invalid(&location(), format!("role `{}` cannot assume itself", role.id)));
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
        let principal = mapper.resolve(
            &grant.principal,
            &[Category::Identity, Category::Group, Category::Role],
            &|| format!("$.grants[{i}].principal"),
            "principal",
        )?;
        let resource = mapper.resolve(
            &grant.resource,
            &[Category::Resource],
            &|| format!("$.grants[{i}].resource"),
            "resource",
        )?;
        if grant.actions.is_empty() {
            return Err(mapper.invalid(&format!("$.grants[{i}].actions"), "a grant needs at least one action"));
        }
        let mut actions = Vec::with_capacity(grant.actions.len());
        for (j, action) in grant.actions.iter().enumerate() {
            let action = action.trim();
            if action.is_empty() {
                return Err(mapper.invalid(&format!("$.grants[{i}].actions[{j}]"), "an action must not be empty"));
            }
            actions.push(action.to_string());
        }
        let mut edge =
            Edge::grant(mapper.entries[principal].node_id.clone(), mapper.entries[resource].node_id.clone(), actions);
        edge.granted_at = mapper.optional_time(grant.granted_at.as_deref(), &|| format!("$.grants[{i}].granted_at"))?;
        edge.expires_at = mapper.optional_time(grant.expires_at.as_deref(), &|| format!("$.grants[{i}].expires_at"))?;
        if let (Some(granted), Some(expires)) = (edge.granted_at, edge.expires_at)
            && expires < granted
        {
            return Err(mapper.invalid(&format!("$.grants[{i}].expires_at"), "the grant expires before it was granted"));
        }
        merge_grant(&mut edges, edge);
    }

    for (i, credential) in raw.credentials.iter().enumerate() {
        let field = |name: &str| format!("$.credentials[{i}].{name}");
        let id = node_id(source, &credential.kind, &credential.id);
        let name = non_empty(credential.name.as_deref()).unwrap_or_else(|| credential.id.clone());
        let mut node = Node::new(id.clone(), NodeKind::Credential, source, name);
        node.subkind = Some(credential.kind.clone());
        node.owner = mapper.owner(credential.owner.as_deref(), &|| field("owner"), None)?;
        node.created_at = mapper.optional_time(credential.created_at.as_deref(), &|| field("created_at"))?;
        node.expires_at = mapper.optional_time(credential.expires_at.as_deref(), &|| field("expires_at"))?;
        if let (Some(created), Some(expires)) = (node.created_at, node.expires_at)
            && expires < created
        {
            return Err(mapper.invalid(&field("expires_at"), "the credential expires before it was created"));
        }
        node.last_used = match &credential.last_used_at {
            None => LastUse::Unknown,
            Some(None) => LastUse::Never,
            Some(Some(at)) => LastUse::At(mapper.time(at, &|| field("last_used_at"))?),
        };
        if let Some(holder) = &credential.holder {
            let found = mapper.resolve(holder, &[Category::Identity], &|| field("holder"), "holder")?;
            edges.push(Edge::new(mapper.entries[found].node_id.clone(), id, EdgeKind::Holds));
        }
        nodes.push(node);
    }

    Ok(Fragment { source: source.to_string(), nodes, edges: edges.into_vec(), kept: Vec::new() })
}

/// A JSON path, formatted only for an error message.
type Location<'l> = &'l dyn Fn() -> String;

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

    /// The file's section holding records of this category.
    fn section(self) -> &'static str {
        match self {
            Category::Identity => "identities",
            Category::Group => "groups",
            Category::Role => "roles",
            Category::Resource => "resources",
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

/// A record of the file: its section and position, for messages.
#[derive(Clone, Copy)]
struct Record {
    section: &'static str,
    index: usize,
}

impl Record {
    /// `$.groups[2]`.
    fn path(self) -> String {
        format!("$.{}[{}]", self.section, self.index)
    }
}

/// One referenceable record.
struct Entry {
    category: Category,
    /// Its position in its section.
    index: usize,
    /// `SOURCE:KIND:ID`.
    node_id: String,
    kind: NodeKind,
}

impl Entry {
    fn path(&self) -> String {
        Record { section: self.category.section(), index: self.index }.path()
    }
}

/// Ids come from the file, so the maps keep a seeded hasher (foldhash's),
/// which is fast on strings without being open to crafted collisions.
type StringMap<V> = HashMap<String, V>;

struct Mapper<'a> {
    source: &'a str,
    file: &'a str,
    entries: Vec<Entry>,
    /// Bare id → entries with that id (at most one per category).
    by_id: StringMap<Vec<usize>>,
    /// `KIND:ID` (the node id without its source) → entry.
    by_local: StringMap<usize>,
}

impl<'a> Mapper<'a> {
    fn new(source: &'a str, file: &'a str) -> Mapper<'a> {
        Mapper { source, file, entries: Vec::new(), by_id: StringMap::default(), by_local: StringMap::default() }
    }

    fn invalid(&self, location: &str, message: impl Into<String>) -> SyncError {
        SyncError::Invalid { path: self.file.to_string(), location: location.to_string(), message: message.into() }
    }

    /// Checks ids, kinds and uniqueness of every record, so references can be
    /// resolved in any order (a group may list a group defined after it).
    fn index(&mut self, raw: &RawSnapshot) -> Result<(), SyncError> {
        let records = raw.identities.len() + raw.groups.len() + raw.roles.len() + raw.resources.len();
        self.entries.reserve(records);
        self.by_id.reserve(records);
        self.by_local.reserve(records);
        // Node id → the record that produced it: resource and credential
        // kinds are free-form, so ids can collide across sections.
        let mut node_ids: StringMap<Record> = StringMap::default();
        node_ids.reserve(records + raw.credentials.len());

        for (i, identity) in raw.identities.iter().enumerate() {
            let kind = NodeKind::identity_from_str(&identity.kind).ok_or_else(|| {
                self.invalid(
                    &format!("$.identities[{i}].kind"),
                    format!("unknown identity kind `{}`; expected human, agent, service_account or app", identity.kind),
                )
            })?;
            let key_kind = if kind == NodeKind::Human { "user" } else { kind.as_str() };
            self.add(Category::Identity, i, &identity.id, key_kind, kind, &mut node_ids)?;
        }
        for (i, group) in raw.groups.iter().enumerate() {
            self.add(Category::Group, i, &group.id, "group", NodeKind::Group, &mut node_ids)?;
        }
        for (i, role) in raw.roles.iter().enumerate() {
            self.add(Category::Role, i, &role.id, "role", NodeKind::Role, &mut node_ids)?;
        }
        for (i, resource) in raw.resources.iter().enumerate() {
            self.check_kind_token(&resource.kind, &|| format!("$.resources[{i}].kind"), "resource")?;
            self.add(Category::Resource, i, &resource.id, &resource.kind, NodeKind::Resource, &mut node_ids)?;
        }
        let mut credential_ids: HashMap<&str, usize> = HashMap::default();
        for (i, credential) in raw.credentials.iter().enumerate() {
            let record = Record { section: "credentials", index: i };
            self.check_id(&credential.id, record)?;
            self.check_kind_token(&credential.kind, &|| format!("$.credentials[{i}].kind"), "credential")?;
            if let Some(first) = credential_ids.insert(&credential.id, i) {
                return Err(self.invalid(
                    &format!("$.credentials[{i}].id"),
                    format!("duplicate credential id `{}` (first at $.credentials[{first}])", credential.id),
                ));
            }
            match node_ids.entry(node_id(self.source, &credential.kind, &credential.id)) {
                Slot::Occupied(first) => {
                    return Err(self.invalid(
                        &format!("$.credentials[{i}].id"),
                        format!("node id `{}` is already used by {}", first.key(), first.get().path()),
                    ));
                }
                Slot::Vacant(slot) => {
                    slot.insert(record);
                }
            }
        }
        Ok(())
    }

    fn check_id(&self, id: &str, record: Record) -> Result<(), SyncError> {
        if id.trim().is_empty() {
            return Err(self.invalid(&format!("{}.id", record.path()), "an id must not be empty"));
        }
        Ok(())
    }

    fn check_kind_token(&self, kind: &str, location: Location<'_>, what: &str) -> Result<(), SyncError> {
        let ok = !kind.is_empty()
            && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(self.invalid(
                &location(),
                format!("{what} kind `{kind}` must be a non-empty token of a-z, 0-9, `_` and `-`"),
            ));
        }
        Ok(())
    }

    fn add(
        &mut self,
        category: Category,
        index: usize,
        id: &str,
        key_kind: &str,
        kind: NodeKind,
        node_ids: &mut StringMap<Record>,
    ) -> Result<(), SyncError> {
        let record = Record { section: category.section(), index };
        self.check_id(id, record)?;
        let duplicate =
            self.by_id.get(id).and_then(|same_id| same_id.iter().find(|&&e| self.entries[e].category == category));
        if let Some(&first) = duplicate {
            return Err(self.invalid(
                &format!("{}.id", record.path()),
                format!("duplicate {} id `{id}` (first at {})", category.noun(), self.entries[first].path()),
            ));
        }
        let node = node_id(self.source, key_kind, id);
        if let Some(first) = node_ids.insert(node.clone(), record) {
            return Err(self.invalid(
                &format!("{}.id", record.path()),
                format!("node id `{node}` is already used by {}", first.path()),
            ));
        }
        let entry = self.entries.len();
        match self.by_id.get_mut(id) {
            Some(same_id) => same_id.push(entry),
            None => {
                self.by_id.insert(id.to_string(), vec![entry]);
            }
        }
        // `KIND:ID` is the node id after `SOURCE:`.
        self.by_local.insert(node[self.source.len() + 1..].to_string(), entry);
        self.entries.push(Entry { category, index, node_id: node, kind });
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
    fn resolve(
        &self,
        reference: &str,
        allowed: &[Category],
        location: Location<'_>,
        field: &str,
    ) -> Result<usize, SyncError> {
        let same_id = self.by_id.get(reference).map(Vec::as_slice).unwrap_or_default();
        let bare = || same_id.iter().copied().filter(|&e| allowed.contains(&self.entries[e].category));
        match (bare().next(), bare().nth(1)) {
            (Some(one), None) => return Ok(one),
            (None, _) => {}
            (Some(_), Some(_)) => {
                let many: Vec<usize> = bare().collect();
                let found: Vec<String> = many
                    .iter()
                    .map(|&e| {
                        let noun = self.entries[e].category.noun();
                        format!("{} {noun} ({})", article(noun), self.entries[e].path())
                    })
                    .collect();
                let qualified: Vec<String> = many.iter().map(|&e| format!("`{}`", self.local_key(e))).collect();
                return Err(self.invalid(
                    &location(),
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

        let elsewhere = same_id.first().copied().or(qualified);
        let message = match elsewhere {
            Some(e) => format!(
                "{field} `{reference}` is {} {} ({}), but it must be {}",
                article(self.entries[e].category.noun()),
                self.entries[e].category.noun(),
                self.entries[e].path(),
                Category::list(allowed)
            ),
            None => format!("{field} `{reference}` is not the id of {} in this file", Category::list(allowed)),
        };
        Err(self.invalid(&location(), message))
    }

    /// `group:buyers`: the node id without its source.
    fn local_key(&self, entry: usize) -> &str {
        let id = &self.entries[entry].node_id;
        &id[self.source.len() + 1..]
    }

    /// An owner: an email kept as written (trimmed), or an identity of this
    /// file stored as its node id. `this` is the identity being mapped, which
    /// cannot own itself.
    fn owner(
        &self,
        owner: Option<&str>,
        location: Location<'_>,
        this: Option<usize>,
    ) -> Result<Option<String>, SyncError> {
        let Some(owner) = owner.map(str::trim).filter(|o| !o.is_empty()) else {
            return Ok(None);
        };
        if owner.contains('@') {
            return Ok(Some(owner.to_string()));
        }
        let found = self.resolve(owner, &[Category::Identity], location, "owner")?;
        if Some(found) == this {
            return Err(self.invalid(&location(), format!("identity `{owner}` cannot own itself")));
        }
        Ok(Some(self.entries[found].node_id.clone()))
    }

    fn time(&self, value: &str, location: Location<'_>) -> Result<DateTime<Utc>, SyncError> {
        DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|e| {
            self.invalid(
                &location(),
                format!("`{value}` is not an RFC 3339 timestamp such as 2026-11-20T00:00:00Z ({e})"),
            )
        })
    }

    fn optional_time(&self, value: Option<&str>, location: Location<'_>) -> Result<Option<DateTime<Utc>>, SyncError> {
        value.map(|v| self.time(v, location)).transpose()
    }
}

/// Adds a grant; a grant of the same actions by the same principal on the
/// same resource merges into it: the latest expiry wins (none beats any),
/// and the earliest known grant time is kept (the access is that old).
fn merge_grant(edges: &mut UniqueEdges, edge: Edge) {
    let Err((at, edge)) = edges.find_or_add(edge) else {
        return;
    };
    let existing = edges.get_mut(at);
    existing.expires_at = match (existing.expires_at, edge.expires_at) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    existing.granted_at = match (existing.granted_at, edge.granted_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
}

fn article(noun: &str) -> &'static str {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    /// Duplicate grants merge their times, whichever order their actions
    /// were written in.
    #[test]
    fn duplicate_grants_merge() {
        let mut edges = UniqueEdges::with_capacity(0);
        let at = |day: u32| Some(format!("2026-01-{day:02}T00:00:00Z").parse::<DateTime<Utc>>().expect("time"));
        for round in 0..2u32 {
            for i in 0..500 {
                let mut grant = Edge::grant(format!("s:user:u{i}"), "s:repo:r", ["write", "read"]);
                grant.granted_at = at(round + 1);
                merge_grant(&mut edges, grant);
            }
        }
        merge_grant(&mut edges, Edge::grant("s:user:u1", "s:repo:r", ["read", "write", "read"]));
        let edges = edges.into_vec();
        assert_eq!(edges.len(), 500);
        assert!(edges.iter().all(|e| e.granted_at == at(1)), "the earliest grant time is kept");
    }
}
