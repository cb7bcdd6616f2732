//! Pure mapping of accounts' raw records to a graph fragment (CONTRACT §3).
//!
//! Ids: `SOURCE:user:NAME`, `group:NAME`, `role:NAME`, `policy:NAME`,
//! `access_key:AKIA…`, `resource:ARN_PATTERN`, `external:ARN`; with several
//! accounts NAME becomes `ACCOUNT_ID/NAME`, and a resource pattern that names
//! no single account (`*`, `arn:aws:ec2:*:*:instance/*`) becomes
//! `ACCOUNT_ID/PATTERN` (it means "in the account whose policy says it").
//!
//! Grants come from evaluating each principal's policies together
//! ([`policy::effective_grants`]): the user's inline and attached policies
//! plus its groups', limited by its permissions boundary, with explicit Deny
//! winning. A group's grants hang on the group (so evidence paths show it)
//! unless one of its members' own Deny or boundary cuts them; then they hang
//! on each member instead, so the graph never overstates anyone's access.
//!
//! Role assumption follows AWS: a trust policy that names a principal's ARN in
//! the role's own account suffices (an explicit Deny still removes it; a
//! role principal's boundary must allow it); a trust of an account (`root`,
//! the bare id, or `*`) needs the principal's identity policies to allow
//! `sts:AssumeRole` on the role too, and so does any cross-account trust.
//! Principals outside the synced accounts, and OIDC/SAML providers, become
//! `external:` nodes. Service principals are recorded on the role
//! (`trusted_services`). Conditions make an edge `conditional`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use accessgraph_graph::model::{Edge, EdgeKind, Fragment, LastUse, Node, NodeKind, node_id};

use super::offline::arn_account;
use super::policy::{
    self, Decision, DenyState, Effect, Grant, Pattern, PolicyDocument, Principal, Principals, Statement,
};
use super::raw::{AccountData, AttachedPolicy, Boundary, InlinePolicy, ReportRow, Tag};
use crate::connector::SyncError;

/// What the mapping needs from the source's settings.
#[derive(Clone, Debug)]
pub struct MapSettings<'a> {
    /// Source name (node id prefix).
    pub source: &'a str,
    /// Readable account name (the credentials' account).
    pub account_name: &'a str,
    /// Tag keys naming an owner, first present wins.
    pub owner_tags: &'a [String],
    /// Tag key → value marking an agent.
    pub agent_tags: &'a BTreeMap<String, String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Role,
}

/// A user or role, with what evaluating its access needs.
struct Actor {
    node_id: String,
    arn: String,
    account: usize,
    kind: Kind,
    /// Arena indices of its identity policies (a user's include its groups').
    policies: Vec<usize>,
    boundary: Option<usize>,
    /// Group indices (users).
    groups: Vec<usize>,
    /// Its statements about `sts:AssumeRole` only, for fast trust checks.
    assume: PolicyDocument,
    assume_boundary: Option<PolicyDocument>,
    owner: Option<String>,
}

struct GroupInfo {
    node_id: String,
    account: usize,
    policies: Vec<usize>,
}

/// Maps every account. `accounts` holds one entry per synced account; with
/// more than one, names are qualified by account id.
pub fn map(settings: &MapSettings<'_>, accounts: &[AccountData]) -> Result<Fragment, SyncError> {
    map_partial(settings, accounts, &Unread::default())
}

/// The configured accounts a sync could not read. Their ids keep names
/// qualified (the source still has several accounts), and trusts naming
/// their principals produce no `external:` node: those principals' edges are
/// in the unread account's slice, which the store keeps.
#[derive(Clone, Debug, Default)]
pub struct Unread {
    /// Their 12-digit account ids.
    pub accounts: Vec<String>,
    /// Whether the credentials' own account (the one `account_name` names)
    /// is among them.
    pub primary: bool,
}

/// [`map`] for a sync that read `accounts` but not `unread`.
pub fn map_partial(
    settings: &MapSettings<'_>,
    accounts: &[AccountData],
    unread: &Unread,
) -> Result<Fragment, SyncError> {
    Mapper::new(settings, accounts, unread).run()
}

/// The node-id prefixes of one account's slice when a source has several
/// accounts: its users, groups, roles, customer policies and the resource
/// patterns scoped to it. Keys, shared resource patterns and external
/// principals are reached through its edges (see `KeptSlice`).
pub fn account_prefixes(source: &str, account_id: &str) -> Vec<String> {
    ["user", "group", "role", "policy", "resource"]
        .iter()
        .map(|kind| format!("{}/", node_id(source, kind, account_id)))
        .collect()
}

struct Mapper<'a> {
    s: &'a MapSettings<'a>,
    accounts: &'a [AccountData],
    unread: &'a Unread,
    multi: bool,
    arena: Vec<PolicyDocument>,
    nodes: BTreeMap<String, Node>,
    edges: BTreeMap<(String, EdgeKind, String), bool>,
    grants: Vec<Edge>,
    actors: Vec<Actor>,
    groups: Vec<GroupInfo>,
    by_arn: HashMap<String, usize>,
    /// Role ARN → actors whose policies allow `sts:AssumeRole` on exactly it.
    assume_literal: HashMap<String, Vec<usize>>,
    /// account index → actors allowed `sts:AssumeRole` on some pattern.
    assume_wild: Vec<Vec<usize>>,
}

fn invalid(label: &str, location: String, message: impl Into<String>) -> SyncError {
    SyncError::Invalid { path: label.to_string(), location, message: message.into() }
}

impl<'a> Mapper<'a> {
    fn new(s: &'a MapSettings<'a>, accounts: &'a [AccountData], unread: &'a Unread) -> Mapper<'a> {
        Mapper {
            s,
            accounts,
            unread,
            multi: accounts.len() + unread.accounts.len() > 1,
            arena: Vec::new(),
            nodes: BTreeMap::new(),
            edges: BTreeMap::new(),
            grants: Vec::new(),
            actors: Vec::new(),
            groups: Vec::new(),
            by_arn: HashMap::new(),
            assume_literal: HashMap::new(),
            assume_wild: vec![Vec::new(); accounts.len()],
        }
    }

    fn key(&self, account: usize, name: &str) -> String {
        if self.multi { format!("{}/{name}", self.accounts[account].account_id) } else { name.to_string() }
    }

    fn id(&self, kind: &str, key: &str) -> String {
        node_id(self.s.source, kind, key)
    }

    fn add_node(&mut self, label: &str, location: String, node: Node) -> Result<(), SyncError> {
        if self.nodes.contains_key(&node.id) {
            return Err(invalid(label, location, format!("duplicate name: node `{}` already exists", node.id)));
        }
        self.nodes.insert(node.id.clone(), node);
        Ok(())
    }

    fn edge(&mut self, from: &str, kind: EdgeKind, to: &str, conditional: bool) {
        let entry = self.edges.entry((from.to_string(), kind, to.to_string())).or_insert(conditional);
        *entry &= conditional;
    }

    fn parse_doc(&mut self, label: &str, location: &str, value: &serde_json::Value) -> Result<usize, SyncError> {
        let doc = PolicyDocument::parse(value).map_err(|e| {
            let inner = if e.location.is_empty() { String::new() } else { format!(".{}", e.location) };
            invalid(label, format!("{location}{inner}"), e.message)
        })?;
        self.arena.push(doc);
        Ok(self.arena.len() - 1)
    }

    fn run(mut self) -> Result<Fragment, SyncError> {
        let mut role_trusts: Vec<(usize, Option<usize>)> = Vec::new(); // (actor, trust document)
        let mut key_holders: Vec<(usize, usize)> = Vec::new(); // (account, actor) users for keys
        let mut referenced: Vec<HashSet<String>> = vec![HashSet::new(); self.accounts.len()];
        for (ai, account) in self.accounts.iter().enumerate() {
            let label = account.label.as_str();
            let d = &account.details;
            // Managed policies: parse the version in force.
            let mut managed: HashMap<String, usize> = HashMap::new();
            for (i, p) in d.policies.iter().enumerate() {
                let at = format!("$.Policies[{i}]");
                let Some((v, doc)) = p.default_document() else {
                    return Err(invalid(
                        label,
                        format!("{at}.PolicyVersionList"),
                        "no document of the default version",
                    ));
                };
                let index = self.parse_doc(label, &format!("{at}.PolicyVersionList[{v}].Document"), doc)?;
                managed.insert(p.arn.clone(), index);
            }
            // Groups.
            let mut group_index: HashMap<&str, usize> = HashMap::new();
            for (i, g) in d.group_detail_list.iter().enumerate() {
                let at = format!("$.GroupDetailList[{i}]");
                require(label, &format!("{at}.GroupName"), &g.group_name)?;
                let node_id = self.id("group", &self.key(ai, &g.group_name));
                let policies = self.principal_policies(
                    label,
                    &at,
                    "GroupPolicyList",
                    &g.group_policy_list,
                    &g.attached_managed_policies,
                    &managed,
                    &mut referenced[ai],
                )?;
                let mut node = Node::new(node_id.clone(), NodeKind::Group, self.s.source, g.group_name.clone());
                self.common_attrs(&mut node, ai, &g.arn, &g.path, &g.attached_managed_policies, &g.group_policy_list);
                self.add_node(label, format!("{at}.GroupName"), node)?;
                group_index.insert(g.group_name.as_str(), self.groups.len());
                self.groups.push(GroupInfo { node_id, account: ai, policies });
            }
            // Users.
            let report: HashMap<&str, &ReportRow> = account.report.iter().map(|r| (r.user.as_str(), r)).collect();
            for (i, u) in d.user_detail_list.iter().enumerate() {
                let at = format!("$.UserDetailList[{i}]");
                require(label, &format!("{at}.UserName"), &u.user_name)?;
                require(label, &format!("{at}.Arn"), &u.arn)?;
                let node_id = self.id("user", &self.key(ai, &u.user_name));
                let mut policies = self.principal_policies(
                    label,
                    &at,
                    "UserPolicyList",
                    &u.user_policy_list,
                    &u.attached_managed_policies,
                    &managed,
                    &mut referenced[ai],
                )?;
                let mut groups = Vec::new();
                for (j, name) in u.group_list.iter().enumerate() {
                    let Some(&gi) = group_index.get(name.as_str()) else {
                        return Err(invalid(
                            label,
                            format!("{at}.GroupList[{j}]"),
                            format!("group `{name}` is not in GroupDetailList"),
                        ));
                    };
                    groups.push(gi);
                    policies.extend(self.groups[gi].policies.iter().copied());
                }
                let boundary =
                    self.boundary(label, &at, u.permissions_boundary.as_ref(), &managed, &mut referenced[ai])?;
                let agent = self.is_agent(&u.tags);
                let kind = if agent { NodeKind::Agent } else { NodeKind::Human };
                let mut node = Node::new(node_id.clone(), kind, self.s.source, u.user_name.clone());
                if !agent && u.user_name.contains('@') {
                    node.email = Some(u.user_name.clone());
                }
                let owner = self.owner(ai, &u.tags);
                node.owner = owner.clone();
                self.common_attrs(&mut node, ai, &u.arn, &u.path, &u.attached_managed_policies, &u.user_policy_list);
                if let Some(at) = u.create_date {
                    node.attrs.insert("created_at".into(), at.to_rfc3339());
                }
                if let Some(row) = report.get(u.user_name.as_str()) {
                    if let Some(enabled) = row.password_enabled {
                        node.attrs.insert("password_enabled".into(), enabled.to_string());
                    }
                    if let Some(at) = row.password_last_used {
                        node.attrs.insert("password_last_used".into(), at.to_rfc3339());
                    }
                    node.attrs.insert("mfa_active".into(), row.mfa_active.to_string());
                }
                self.add_node(label, format!("{at}.UserName"), node)?;
                for &gi in &groups {
                    let group = self.groups[gi].node_id.clone();
                    self.edge(&node_id, EdgeKind::MemberOf, &group, false);
                }
                let actor = self.actors.len();
                self.push_actor(Actor {
                    node_id,
                    arn: u.arn.clone(),
                    account: ai,
                    kind: Kind::User,
                    policies,
                    boundary,
                    groups,
                    assume: PolicyDocument::default(),
                    assume_boundary: None,
                    owner,
                });
                key_holders.push((ai, actor));
            }
            // Roles.
            for (i, r) in d.role_detail_list.iter().enumerate() {
                let at = format!("$.RoleDetailList[{i}]");
                require(label, &format!("{at}.RoleName"), &r.role_name)?;
                require(label, &format!("{at}.Arn"), &r.arn)?;
                let node_id = self.id("role", &self.key(ai, &r.role_name));
                let policies = self.principal_policies(
                    label,
                    &at,
                    "RolePolicyList",
                    &r.role_policy_list,
                    &r.attached_managed_policies,
                    &managed,
                    &mut referenced[ai],
                )?;
                let boundary =
                    self.boundary(label, &at, r.permissions_boundary.as_ref(), &managed, &mut referenced[ai])?;
                let trust = match &r.assume_role_policy_document {
                    Some(doc) => Some(self.parse_doc(label, &format!("{at}.AssumeRolePolicyDocument"), doc)?),
                    None => None,
                };
                let agent = self.is_agent(&r.tags);
                let kind = if agent { NodeKind::Agent } else { NodeKind::Role };
                let mut node = Node::new(node_id.clone(), kind, self.s.source, r.role_name.clone());
                let owner = self.owner(ai, &r.tags);
                node.owner = owner.clone();
                self.common_attrs(&mut node, ai, &r.arn, &r.path, &r.attached_managed_policies, &r.role_policy_list);
                if let Some(at) = r.create_date {
                    node.attrs.insert("created_at".into(), at.to_rfc3339());
                }
                if let Some(at) = r.role_last_used.as_ref().and_then(|l| l.last_used_date) {
                    node.attrs.insert("last_used".into(), at.to_rfc3339());
                }
                self.add_node(label, format!("{at}.RoleName"), node)?;
                let actor = self.actors.len();
                self.push_actor(Actor {
                    node_id,
                    arn: r.arn.clone(),
                    account: ai,
                    kind: Kind::Role,
                    policies,
                    boundary,
                    groups: Vec::new(),
                    assume: PolicyDocument::default(),
                    assume_boundary: None,
                    owner,
                });
                role_trusts.push((actor, trust));
            }
        }
        self.policy_nodes(&referenced)?;
        self.grant_edges();
        self.prepare_assume();
        for (actor, trust) in &role_trusts {
            self.trust_edges(*actor, *trust);
        }
        for (ai, actor) in key_holders {
            self.access_keys(ai, actor);
        }
        Ok(self.finish())
    }

    fn push_actor(&mut self, actor: Actor) {
        let index = self.actors.len();
        self.by_arn.insert(actor.arn.clone(), index);
        self.actors.push(actor);
    }

    #[allow(clippy::too_many_arguments)]
    fn principal_policies(
        &mut self,
        label: &str,
        at: &str,
        inline_field: &str,
        inline: &[InlinePolicy],
        attached: &[AttachedPolicy],
        managed: &HashMap<String, usize>,
        referenced: &mut HashSet<String>,
    ) -> Result<Vec<usize>, SyncError> {
        let mut out = Vec::with_capacity(inline.len() + attached.len());
        for (j, p) in inline.iter().enumerate() {
            out.push(self.parse_doc(label, &format!("{at}.{inline_field}[{j}].PolicyDocument"), &p.policy_document)?);
        }
        for (j, p) in attached.iter().enumerate() {
            let Some(&index) = managed.get(&p.policy_arn) else {
                return Err(invalid(
                    label,
                    format!("{at}.AttachedManagedPolicies[{j}].PolicyArn"),
                    format!(
                        "policy `{}` is not in the export's Policies list (export without a --filter, so that \
                         AWS managed policies are included)",
                        p.policy_arn
                    ),
                ));
            };
            referenced.insert(p.policy_arn.clone());
            out.push(index);
        }
        Ok(out)
    }

    fn boundary(
        &mut self,
        label: &str,
        at: &str,
        boundary: Option<&Boundary>,
        managed: &HashMap<String, usize>,
        referenced: &mut HashSet<String>,
    ) -> Result<Option<usize>, SyncError> {
        let Some(boundary) = boundary else { return Ok(None) };
        match managed.get(&boundary.permissions_boundary_arn) {
            Some(&index) => {
                referenced.insert(boundary.permissions_boundary_arn.clone());
                Ok(Some(index))
            }
            None => Err(invalid(
                label,
                format!("{at}.PermissionsBoundary.PermissionsBoundaryArn"),
                format!("boundary policy `{}` is not in the export's Policies list", boundary.permissions_boundary_arn),
            )),
        }
    }

    fn common_attrs(
        &self,
        node: &mut Node,
        account: usize,
        arn: &str,
        path: &str,
        attached: &[AttachedPolicy],
        inline: &[InlinePolicy],
    ) {
        node.attrs.insert("arn".into(), arn.to_string());
        let account_id = &self.accounts[account].account_id;
        if !account_id.is_empty() {
            node.attrs.insert("account_id".into(), account_id.clone());
        }
        if (account == 0 && !self.unread.primary) || !self.multi {
            node.attrs.insert("account_name".into(), self.s.account_name.to_string());
        }
        if !path.is_empty() && path != "/" {
            node.attrs.insert("path".into(), path.to_string());
        }
        let names: Vec<&str> = attached
            .iter()
            .map(|p| p.policy_name.as_deref().unwrap_or_else(|| p.policy_arn.rsplit('/').next().unwrap_or_default()))
            .collect();
        if !names.is_empty() {
            node.attrs.insert("managed_policies".into(), names.join(", "));
        }
        let inline: Vec<&str> = inline.iter().map(|p| p.policy_name.as_str()).collect();
        if !inline.is_empty() {
            node.attrs.insert("inline_policies".into(), inline.join(", "));
        }
    }

    fn is_agent(&self, tags: &[Tag]) -> bool {
        tags.iter().any(|t| self.s.agent_tags.get(&t.key).is_some_and(|want| want.eq_ignore_ascii_case(t.value.trim())))
    }

    /// The owner the first present owner tag names; an empty value is no owner.
    fn owner(&self, account: usize, tags: &[Tag]) -> Option<String> {
        let value = self.s.owner_tags.iter().find_map(|key| tags.iter().find(|t| &t.key == key))?.value.trim();
        if value.is_empty() {
            None
        } else if value.contains('@') || value.contains(':') {
            Some(value.to_string())
        } else {
            // A bare name is an IAM user of the same account.
            Some(self.id("user", &self.key(account, value)))
        }
    }

    fn policy_nodes(&mut self, referenced: &[HashSet<String>]) -> Result<(), SyncError> {
        for (ai, account) in self.accounts.iter().enumerate() {
            let names: HashSet<&str> = account
                .details
                .policies
                .iter()
                .filter(|p| arn_account(&p.arn) != Some("aws"))
                .map(|p| p.policy_name.as_str())
                .collect();
            for (i, p) in account.details.policies.iter().enumerate() {
                let aws_managed = arn_account(&p.arn) == Some("aws");
                if aws_managed && !referenced[ai].contains(&p.arn) {
                    continue;
                }
                let key = match (aws_managed, self.multi) {
                    (true, true) => format!("aws/{}", p.policy_name),
                    (true, false) if names.contains(p.policy_name.as_str()) => format!("aws/{}", p.policy_name),
                    _ => self.key(ai, &p.policy_name),
                };
                let id = self.id("policy", &key);
                if aws_managed && self.nodes.contains_key(&id) {
                    continue; // the same AWS managed policy seen from another account
                }
                let mut node = Node::new(id, NodeKind::Resource, self.s.source, p.policy_name.clone());
                node.subkind = Some("iam_policy".into());
                node.attrs.insert("arn".into(), p.arn.clone());
                node.attrs.insert("managed_by".into(), if aws_managed { "aws" } else { "customer" }.into());
                if let Some(count) = p.attachment_count {
                    node.attrs.insert("attachment_count".into(), count.to_string());
                }
                if let Some(version) = &p.default_version_id {
                    node.attrs.insert("default_version".into(), version.clone());
                }
                if let Some((_, doc)) = p.default_document()
                    && let Ok(parsed) = PolicyDocument::parse(doc)
                    && policy::admin_level(&policy::effective_grants(&[&parsed], None)) == Some(false)
                {
                    node.attrs.insert("admin".into(), "true".into());
                }
                self.add_node(&account.label, format!("$.Policies[{i}].PolicyName"), node)?;
            }
        }
        Ok(())
    }

    fn docs(&self, indices: &[usize]) -> Vec<&PolicyDocument> {
        indices.iter().map(|&i| &self.arena[i]).collect()
    }

    fn evaluate(&self, policies: &[usize], boundary: Option<usize>) -> Vec<Grant> {
        let docs = self.docs(policies);
        policy::effective_grants(&docs, boundary.map(|b| &self.arena[b]))
    }

    /// Grant edges of groups, users and roles (see the module docs).
    fn grant_edges(&mut self) {
        // group → action → resource → conditional
        let group_grants: Vec<GrantMap> =
            self.groups.iter().map(|g| grant_map(self.evaluate(&g.policies, None))).collect();
        let mut restricted = vec![false; self.groups.len()];
        // Principals with the same policies and boundary (typically: the same
        // groups and nothing else) share one evaluation.
        let mut cache: HashMap<(Vec<usize>, Option<usize>), usize> = HashMap::new();
        let mut results: Vec<Vec<Grant>> = Vec::new();
        let mut full: Vec<usize> = Vec::with_capacity(self.actors.len());
        for actor in &self.actors {
            let mut key = actor.policies.clone();
            key.sort_unstable();
            key.dedup();
            let index = match cache.get(&(key.clone(), actor.boundary)) {
                Some(&index) => index,
                None => {
                    results.push(self.evaluate(&key, actor.boundary));
                    cache.insert((key, actor.boundary), results.len() - 1);
                    results.len() - 1
                }
            };
            let grants = &results[index];
            if !actor.groups.is_empty() {
                let mine: HashMap<(&Pattern, &Pattern), bool> =
                    grants.iter().map(|g| ((&g.action, &g.resource), g.conditional)).collect();
                for &gi in &actor.groups {
                    let preserved = group_grants[gi].iter().all(|(a, by_resource)| {
                        by_resource
                            .iter()
                            .all(|(r, &group_conditional)| mine.get(&(a, r)).is_some_and(|&c| !c || group_conditional))
                    });
                    if !preserved {
                        restricted[gi] = true;
                    }
                }
            }
            full.push(index);
        }
        let mut admin: Vec<(usize, bool)> = Vec::new();
        for (ai, &index) in full.iter().enumerate() {
            let grants = &results[index];
            let actor = &self.actors[ai];
            if let Some(conditional) = policy::admin_level(grants) {
                admin.push((ai, conditional));
            }
            let kept: Vec<&Grant> = grants
                .iter()
                .filter(|g| {
                    !actor.groups.iter().any(|&gi| {
                        !restricted[gi] && lookup(&group_grants[gi], &g.action, &g.resource) == Some(g.conditional)
                    })
                })
                .collect();
            let from = actor.node_id.clone();
            let account = actor.account;
            self.emit_grants(&from, account, kept.into_iter().map(|g| (&g.action, &g.resource, g.conditional)));
        }
        for (ai, conditional) in admin {
            let id = self.actors[ai].node_id.clone();
            if let Some(node) = self.nodes.get_mut(&id) {
                node.attrs.insert("admin".into(), if conditional { "conditional" } else { "true" }.into());
            }
        }
        // Groups: on the group, or pushed down to the members (done above).
        for (gi, grants) in group_grants.iter().enumerate() {
            let from = self.groups[gi].node_id.clone();
            if restricted[gi] {
                if let Some(node) = self.nodes.get_mut(&from) {
                    node.attrs.insert(
                        "grants".into(),
                        "on each member: a member's deny or permissions boundary restricts this group's policies"
                            .into(),
                    );
                }
                continue;
            }
            let account = self.groups[gi].account;
            let flat = grants.iter().flat_map(|(a, by_resource)| by_resource.iter().map(move |(r, &c)| (a, r, c)));
            self.emit_grants(&from, account, flat);
        }
    }

    fn emit_grants<'g>(
        &mut self,
        from: &str,
        account: usize,
        grants: impl Iterator<Item = (&'g Pattern, &'g Pattern, bool)>,
    ) {
        // resource id → (unconditional actions, conditional actions)
        let mut by_resource: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for (action, resource, conditional) in grants {
            let id = self.resource_node(account, resource);
            let entry = by_resource.entry(id).or_default();
            if conditional {
                entry.1.insert(action.text());
            } else {
                entry.0.insert(action.text());
            }
        }
        for (resource, (plain, conditional)) in by_resource {
            let conditional: Vec<String> = conditional.difference(&plain).cloned().collect();
            if !plain.is_empty() {
                self.grants.push(Edge::grant(from, resource.clone(), plain));
            }
            if !conditional.is_empty() {
                let mut edge = Edge::grant(from, resource, conditional);
                edge.conditional = true;
                self.grants.push(edge);
            }
        }
    }

    /// The node of a resource pattern, created on first use.
    fn resource_node(&mut self, account: usize, pattern: &Pattern) -> String {
        let text = pattern.text();
        let scoped = self.multi
            && match pattern {
                Pattern::AllExcept(_) => true,
                Pattern::Glob(glob) => {
                    (glob.contains('*') || glob.contains('?'))
                        && !arn_account(glob).is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
                }
            };
        let key = if scoped { format!("{}/{text}", self.accounts[account].account_id) } else { text.clone() };
        let id = self.id("resource", &key);
        if !self.nodes.contains_key(&id) {
            let service = match pattern {
                Pattern::Glob(glob) if glob.starts_with("arn:") => glob.split(':').nth(2).unwrap_or("*").to_string(),
                _ => "*".to_string(),
            };
            let name = if scoped { format!("{text} (account {})", self.accounts[account].account_id) } else { text };
            let mut node = Node::new(id.clone(), NodeKind::Resource, self.s.source, name);
            node.subkind = Some(if service.is_empty() { "*".to_string() } else { service });
            node.attrs.insert("pattern".into(), pattern.text());
            self.nodes.insert(id.clone(), node);
        }
        id
    }

    /// Each actor's statements about `sts:AssumeRole`, so that trust checks
    /// over every principal of an account stay cheap.
    fn prepare_assume(&mut self) {
        let keep = |s: &&Statement| s.actions_match("sts:AssumeRole");
        for i in 0..self.actors.len() {
            let statements: Vec<Statement> = self.actors[i]
                .policies
                .iter()
                .flat_map(|&p| self.arena[p].statements.iter())
                .filter(keep)
                .cloned()
                .collect();
            let boundary = self.actors[i].boundary.map(|b| PolicyDocument {
                statements: self.arena[b].statements.iter().filter(keep).cloned().collect(),
            });
            // Index who may assume what, so that a trust of a whole account
            // only evaluates the principals that could pass.
            let mut wild = false;
            let mut literals: Vec<String> = Vec::new();
            for statement in statements.iter().filter(|s| s.effect == Effect::Allow) {
                match &statement.resources {
                    policy::Patterns::Only(globs) => {
                        for glob in globs {
                            if glob.contains('*') || glob.contains('?') {
                                wild = true;
                            } else {
                                literals.push(glob.clone());
                            }
                        }
                    }
                    policy::Patterns::AllExcept(_) => wild = true,
                }
            }
            if wild {
                let account = self.actors[i].account;
                self.assume_wild[account].push(i);
            }
            literals.sort();
            literals.dedup();
            for arn in literals {
                self.assume_literal.entry(arn).or_default().push(i);
            }
            self.actors[i].assume = PolicyDocument { statements };
            self.actors[i].assume_boundary = boundary;
        }
    }

    /// The actors (of one account, or of all) that may be allowed to assume
    /// `role_arn` by their identity policies; each still needs [`Self::decide_assume`].
    fn assume_candidates(&self, role_arn: &str, account: Option<usize>) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .assume_literal
            .get(role_arn)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&a| account.is_none_or(|ai| self.actors[a].account == ai))
            .collect();
        match account {
            Some(ai) => out.extend(self.assume_wild[ai].iter().copied()),
            None => out.extend(self.assume_wild.iter().flatten().copied()),
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn decide_assume(&self, actor: usize, role_arn: &str) -> Decision {
        let a = &self.actors[actor];
        if !a.assume.statements.iter().any(|s| s.effect == Effect::Allow) {
            return Decision::NotAllowed;
        }
        policy::decide(&[&a.assume], a.assume_boundary.as_ref(), "sts:AssumeRole", role_arn)
    }

    /// A trust that names the principal's ARN in the role's own account:
    /// only an explicit Deny (or a role principal's boundary) stops it.
    fn direct_assume(&self, actor: usize, role_arn: &str) -> Option<bool> {
        let a = &self.actors[actor];
        let deny = policy::deny_state(&[&a.assume], a.assume_boundary.as_ref(), "sts:AssumeRole", role_arn);
        if deny == DenyState::Denied {
            return None;
        }
        let mut conditional = deny == DenyState::Conditional;
        if a.kind == Kind::Role
            && let Some(boundary) = &a.assume_boundary
        {
            conditional |= policy::allow_state(&[boundary], "sts:AssumeRole", role_arn)?;
        }
        Some(conditional)
    }

    fn trust_edges(&mut self, role: usize, trust: Option<usize>) {
        let Some(trust) = trust else { return };
        let role_arn = self.actors[role].arn.clone();
        let role_account = self.actors[role].account;
        let role_id = self.actors[role].node_id.clone();
        let mut services: BTreeSet<String> = BTreeSet::new();
        // candidate → conditional
        let mut local: BTreeMap<usize, bool> = BTreeMap::new();
        let mut external: BTreeMap<String, bool> = BTreeMap::new();
        let statements = self.arena[trust].statements.clone();
        let add = |map: &mut BTreeMap<usize, bool>, key: usize, conditional: bool| {
            let entry = map.entry(key).or_insert(conditional);
            *entry &= conditional;
        };
        let add_ext = |map: &mut BTreeMap<String, bool>, key: String, conditional: bool| {
            let entry = map.entry(key).or_insert(conditional);
            *entry &= conditional;
        };
        for statement in statements.iter().filter(|s| s.effect == Effect::Allow && policy::is_assume_statement(s)) {
            let (principals, except) = match &statement.principals {
                None => continue,
                Some(Principals::Only(list)) => (list.clone(), false),
                Some(Principals::AllExcept(_)) => (vec![Principal::Any], true),
            };
            let base = statement.conditional || except;
            for principal in principals {
                match principal {
                    Principal::Any => {
                        add_ext(&mut external, "*".into(), base);
                        for actor in self.assume_candidates(&role_arn, None) {
                            if actor == role {
                                continue;
                            }
                            if let Decision::Allowed { conditional } = self.decide_assume(actor, &role_arn) {
                                add(&mut local, actor, base || conditional);
                            }
                        }
                    }
                    Principal::Aws(value) if self.is_unread(&value) => {
                        // A principal of an account not read this time: its
                        // edges are in that account's kept slice.
                    }
                    Principal::Aws(value) => {
                        if let Some(account_id) = account_principal(&value) {
                            match self.accounts.iter().position(|a| a.account_id == account_id) {
                                Some(ai) => {
                                    for actor in self.assume_candidates(&role_arn, Some(ai)) {
                                        if actor == role {
                                            continue;
                                        }
                                        if let Decision::Allowed { conditional } = self.decide_assume(actor, &role_arn)
                                        {
                                            add(&mut local, actor, base || conditional);
                                        }
                                    }
                                }
                                None => add_ext(&mut external, format!("arn:aws:iam::{account_id}:root"), base),
                            }
                        } else if let Some(&actor) = self.by_arn.get(&value) {
                            if actor == role {
                                // Explicit self-trust: the role can re-assume itself; no edge needed.
                                continue;
                            }
                            if self.actors[actor].account == role_account {
                                if let Some(conditional) = self.direct_assume(actor, &role_arn) {
                                    add(&mut local, actor, base || conditional);
                                }
                            } else if let Decision::Allowed { conditional } = self.decide_assume(actor, &role_arn) {
                                add(&mut local, actor, base || conditional);
                            }
                        } else {
                            add_ext(&mut external, value, base);
                        }
                    }
                    Principal::Service(service) => {
                        services.insert(service);
                    }
                    Principal::Federated(provider) | Principal::CanonicalUser(provider) => {
                        add_ext(&mut external, provider, base);
                    }
                }
            }
        }
        // Deny statements of the trust policy.
        for statement in statements.iter().filter(|s| s.effect == Effect::Deny && policy::is_assume_statement(s)) {
            match &statement.principals {
                Some(Principals::Only(list)) => {
                    let hits_local = |actor: usize| {
                        let a = &self.actors[actor];
                        let account = &self.accounts[a.account].account_id;
                        list.iter().any(|p| match p {
                            Principal::Any => true,
                            Principal::Aws(v) => v == &a.arn || account_principal(v).is_some_and(|id| &id == account),
                            _ => false,
                        })
                    };
                    let hits_external = |key: &str| {
                        list.iter().any(|p| match p {
                            Principal::Any => true,
                            Principal::Aws(v) | Principal::Federated(v) | Principal::CanonicalUser(v) => {
                                v == key
                                    || account_principal(v).is_some_and(|id| key == format!("arn:aws:iam::{id}:root"))
                            }
                            Principal::Service(_) => false,
                        })
                    };
                    if statement.conditional {
                        local.iter_mut().filter(|(a, _)| hits_local(**a)).for_each(|(_, c)| *c = true);
                        external.iter_mut().filter(|(k, _)| hits_external(k)).for_each(|(_, c)| *c = true);
                    } else {
                        local.retain(|a, _| !hits_local(*a));
                        external.retain(|k, _| !hits_external(k));
                    }
                }
                // Deny to everybody but some: whoever is left holds it only sometimes.
                Some(Principals::AllExcept(_)) | None => {
                    local.values_mut().for_each(|c| *c = true);
                    external.values_mut().for_each(|c| *c = true);
                }
            }
        }
        for (actor, conditional) in local {
            let from = self.actors[actor].node_id.clone();
            self.edge(&from, EdgeKind::CanAssume, &role_id, conditional);
        }
        let owner = self.actors[role].owner.clone();
        for (key, conditional) in external {
            let id = self.external_node(&key, &role_id, owner.as_deref());
            self.edge(&id, EdgeKind::CanAssume, &role_id, conditional);
        }
        if !services.is_empty()
            && let Some(node) = self.nodes.get_mut(&role_id)
        {
            node.attrs.insert("trusted_services".into(), services.into_iter().collect::<Vec<_>>().join(", "));
        }
    }

    /// Whether an `AWS` principal (an account, or an ARN) belongs to an
    /// account configured but not read by this sync.
    fn is_unread(&self, principal: &str) -> bool {
        let account = account_principal(principal).or_else(|| arn_account(principal).map(str::to_string));
        account.is_some_and(|id| self.unread.accounts.contains(&id))
    }

    /// An `external:` node for a principal outside the synced accounts.
    fn external_node(&mut self, key: &str, trusted_by: &str, owner: Option<&str>) -> String {
        let id = self.id("external", key);
        if let Some(node) = self.nodes.get_mut(&id) {
            let list = node.attrs.entry("trusted_by".into()).or_default();
            if !list.split(", ").any(|t| t == trusted_by) {
                list.push_str(", ");
                list.push_str(trusted_by);
            }
            if node.owner.is_none()
                && let Some(owner) = owner
            {
                node.owner = Some(owner.to_string());
                node.owner_inferred = true;
            }
            return id;
        }
        let (subkind, name) = describe_external(key);
        let mut node = Node::new(id.clone(), NodeKind::ServiceAccount, self.s.source, name);
        node.subkind = Some(subkind.into());
        node.attrs.insert("external".into(), "true".into());
        node.attrs.insert("principal".into(), key.to_string());
        node.attrs.insert("trusted_by".into(), trusted_by.to_string());
        if let Some(owner) = owner {
            // Whoever owns the trusting role answers for who it lets in.
            node.owner = Some(owner.to_string());
            node.owner_inferred = true;
        }
        self.nodes.insert(id.clone(), node);
        id
    }

    fn access_keys(&mut self, account: usize, actor: usize) {
        let data = &self.accounts[account];
        let user_id = self.actors[actor].node_id.clone();
        let arn = &self.actors[actor].arn;
        let Some(user_name) = self.nodes.get(&user_id).map(|n| n.name.clone()) else { return };
        let row = data.report.iter().find(|r| r.user == user_name || &r.arn == arn);
        let mut keys: Vec<Node> = Vec::new();
        match data.access_keys.get(&user_name) {
            // Live: ListAccessKeys says which keys exist; the report adds use.
            Some(metas) => {
                let mut slots_taken = [false; 2];
                for meta in metas {
                    let slot = row.and_then(|row| {
                        (0..2).find(|&n| {
                            !slots_taken[n]
                                && row.keys[n].last_rotated.is_some()
                                && row.keys[n].last_rotated.map(|t| t.timestamp())
                                    == meta.created_at.map(|t| t.timestamp())
                        })
                    });
                    let mut node = self.key_node(&meta.id, &format!("{user_name} access key {}", meta.id));
                    node.active = Some(meta.active);
                    node.created_at = meta.created_at;
                    node.rotated_at = meta.created_at;
                    node.attrs.insert("access_key_id".into(), meta.id.clone());
                    if let (Some(n), Some(row)) = (slot, row) {
                        slots_taken[n] = true;
                        let key = &row.keys[n];
                        node.rotated_at = key.last_rotated.or(meta.created_at);
                        node.last_used = key.last_used;
                        if let Some(service) = &key.last_used_service {
                            node.attrs.insert("last_used_service".into(), service.clone());
                        }
                    }
                    keys.push(node);
                }
            }
            // Offline: the report's two slots are all there is.
            None => {
                let Some(row) = row else { return };
                for (n, key) in row.keys.iter().enumerate() {
                    if key.last_rotated.is_none() && !key.active {
                        continue;
                    }
                    let local = format!("{}/{}", self.key(account, &user_name), n + 1);
                    let mut node = self.key_node(&local, &format!("{user_name} access key {}", n + 1));
                    node.active = Some(key.active);
                    node.created_at = key.last_rotated;
                    node.rotated_at = key.last_rotated;
                    node.last_used = key.last_used;
                    node.attrs.insert("slot".into(), (n + 1).to_string());
                    if let Some(service) = &key.last_used_service {
                        node.attrs.insert("last_used_service".into(), service.clone());
                    }
                    keys.push(node);
                }
            }
        }
        for node in keys {
            let id = node.id.clone();
            self.nodes.insert(id.clone(), node);
            self.edge(&user_id, EdgeKind::Holds, &id, false);
        }
    }

    fn key_node(&self, key: &str, name: &str) -> Node {
        let mut node = Node::new(self.id("access_key", key), NodeKind::Credential, self.s.source, name);
        node.subkind = Some("access_key".into());
        node.last_used = LastUse::Unknown;
        node
    }

    fn finish(self) -> Fragment {
        let mut edges: Vec<Edge> = self
            .edges
            .into_iter()
            .map(|((from, kind, to), conditional)| {
                let mut edge = Edge::new(from, to, kind);
                edge.conditional = conditional;
                edge
            })
            .collect();
        edges.extend(self.grants);
        edges.sort_by_cached_key(Edge::key);
        edges.dedup_by(|a, b| a.kind == b.kind && a.from == b.from && a.to == b.to && a.actions == b.actions);
        Fragment {
            source: self.s.source.to_string(),
            nodes: self.nodes.into_values().collect(),
            edges,
            kept: Vec::new(),
        }
    }
}

/// Grants by action, then resource: whether each is conditional.
type GrantMap = HashMap<Pattern, HashMap<Pattern, bool>>;

fn grant_map(grants: Vec<Grant>) -> GrantMap {
    let mut map: GrantMap = HashMap::new();
    for grant in grants {
        map.entry(grant.action).or_default().insert(grant.resource, grant.conditional);
    }
    map
}

fn lookup(map: &GrantMap, action: &Pattern, resource: &Pattern) -> Option<bool> {
    map.get(action).and_then(|by_resource| by_resource.get(resource)).copied()
}

fn require(label: &str, location: &str, value: &str) -> Result<(), SyncError> {
    if value.trim().is_empty() {
        return Err(invalid(label, location.to_string(), "empty"));
    }
    Ok(())
}

/// The account id a principal value names as a whole account: a bare
/// 12-digit id or `arn:aws:iam::ID:root`.
fn account_principal(value: &str) -> Option<String> {
    let digits = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    if digits(value) {
        return Some(value.to_string());
    }
    let account = arn_account(value)?;
    (value.ends_with(":root") && digits(account)).then(|| account.to_string())
}

fn describe_external(key: &str) -> (&'static str, String) {
    if key == "*" {
        return ("any_principal", "any AWS principal".into());
    }
    if let Some(account) = account_principal(key) {
        return ("aws_account", format!("AWS account {account}"));
    }
    if let Some(rest) = key.split(":oidc-provider/").nth(1) {
        return ("oidc_provider", format!("OIDC provider {rest}"));
    }
    if let Some(rest) = key.split(":saml-provider/").nth(1) {
        return ("saml_provider", format!("SAML provider {rest}"));
    }
    if key.starts_with("arn:") {
        let account = arn_account(key).unwrap_or_default();
        let resource = key.splitn(6, ':').nth(5).unwrap_or(key);
        return ("aws_principal", format!("{resource} (account {account})"));
    }
    if key.starts_with("AIDA") || key.starts_with("AROA") {
        return ("deleted_principal", format!("deleted principal {key}"));
    }
    ("federated", key.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws_iam::offline::{account_of, parse_details, parse_report};

    pub(crate) fn fixture_account() -> AccountData {
        let details = parse_details("export.json", include_bytes!("../../../fixtures/aws/authorization-details.json"))
            .expect("export");
        let report =
            parse_report("report.csv", include_bytes!("../../../fixtures/aws/credential-report.csv")).expect("report");
        let account_id = account_of(&details, &report).expect("account id");
        AccountData { label: "export.json".into(), account_id, details, report, access_keys: HashMap::new() }
    }

    fn settings_map<'a>(owner_tags: &'a [String], agent_tags: &'a BTreeMap<String, String>) -> MapSettings<'a> {
        MapSettings { source: "acme", account_name: "acme-prod", owner_tags, agent_tags }
    }

    fn defaults() -> (Vec<String>, BTreeMap<String, String>) {
        (
            vec!["owner".into(), "Owner".into(), "accessgraph:owner".into()],
            BTreeMap::from([("accessgraph:kind".to_string(), "agent".to_string())]),
        )
    }

    fn fixture_fragment() -> Fragment {
        let (o, a) = defaults();
        map(&settings_map(&o, &a), &[fixture_account()]).expect("maps")
    }

    fn node<'f>(f: &'f Fragment, id: &str) -> &'f Node {
        f.nodes.iter().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    fn edges_of(f: &Fragment, kind: EdgeKind) -> BTreeSet<(String, String, bool)> {
        f.edges.iter().filter(|e| e.kind == kind).map(|e| (e.from.clone(), e.to.clone(), e.conditional)).collect()
    }

    fn grant_actions(f: &Fragment, from: &str, to: &str) -> Vec<String> {
        f.edges
            .iter()
            .filter(|e| e.kind == EdgeKind::Grant && e.from == from && e.to == to)
            .flat_map(|e| e.actions.clone())
            .collect()
    }

    #[test]
    fn principals_map_to_kinds_owners_and_agents() {
        let f = fixture_fragment();
        let alice = node(&f, "acme:user:alice@acme.example");
        assert_eq!((alice.kind, alice.email.as_deref()), (NodeKind::Human, Some("alice@acme.example")));
        assert_eq!(alice.attrs.get("admin").map(String::as_str), Some("true"), "admin through group admins");
        let bot = node(&f, "acme:user:ci-bot");
        assert_eq!(bot.kind, NodeKind::Agent, "agent tag");
        assert_eq!(bot.owner.as_deref(), Some("bob@acme.example"));
        assert_eq!(bot.email, None);
        let etl = node(&f, "acme:role:etl-agent");
        assert_eq!((etl.kind, etl.owner.as_deref()), (NodeKind::Agent, None));
        assert_eq!(etl.attrs.get("trusted_services").map(String::as_str), Some("lambda.amazonaws.com"));
        let github = node(&f, "acme:role:github-deploy");
        assert_eq!((github.kind, github.owner.as_deref()), (NodeKind::Role, None), "empty Owner tag is no owner");
        assert_eq!(node(&f, "acme:role:deployer").owner.as_deref(), Some("bob@acme.example"));
        assert_eq!(node(&f, "acme:group:admins").kind, NodeKind::Group);
        assert_eq!(node(&f, "acme:policy:AdministratorAccess").attrs.get("admin").map(String::as_str), Some("true"));
        assert!(!f.nodes.iter().any(|n| n.id.contains("AdministratorAccess") && n.kind != NodeKind::Resource));
        assert!(!node(&f, "acme:user:bob@acme.example").attrs.contains_key("admin"));
        let ids: HashSet<&str> = f.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids.len(), f.nodes.len(), "unique ids");
    }

    #[test]
    fn access_keys_come_from_the_credential_report() {
        let f = fixture_fragment();
        let old = node(&f, "acme:access_key:bob@acme.example/1");
        assert_eq!(old.kind, NodeKind::Credential);
        assert_eq!(old.active, Some(true));
        assert_eq!(old.last_used, LastUse::Never, "N/A is never used");
        assert_eq!(old.rotated_at.map(|t| t.to_rfc3339()).as_deref(), Some("2023-01-10T09:30:00+00:00"));
        assert_eq!(old.expires_at, None, "AWS keys never expire");
        assert_eq!(node(&f, "acme:access_key:bob@acme.example/2").active, Some(false));
        let bot_key = node(&f, "acme:access_key:ci-bot/1");
        assert!(matches!(bot_key.last_used, LastUse::At(_)));
        let holds = edges_of(&f, EdgeKind::Holds);
        assert!(holds.contains(&("acme:user:ci-bot".into(), "acme:access_key:ci-bot/1".into(), false)));
        assert!(!f.nodes.iter().any(|n| n.id.starts_with("acme:access_key:alice")), "alice has no key");
    }

    #[test]
    fn role_assumption_follows_trust_identity_policies_denies_and_boundaries() {
        let f = fixture_fragment();
        let expected: BTreeSet<(String, String, bool)> = [
            // Root trust + identity allow (developers policy, AdministratorAccess, ci-bot inline within its boundary).
            ("acme:user:bob@acme.example", "acme:role:deployer", false),
            ("acme:user:alice@acme.example", "acme:role:deployer", false),
            ("acme:user:ci-bot", "acme:role:deployer", false),
            // The trust names deployer's ARN: a chain deployer → db-admin.
            ("acme:role:deployer", "acme:role:db-admin", false),
            // Cross-account and federated trusts, with their conditions.
            ("acme:external:arn:aws:iam::999999999999:root", "acme:role:partner-audit", true),
            (
                "acme:external:arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com",
                "acme:role:github-deploy",
                true,
            ),
        ]
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c))
        .collect();
        // carol's explicit Deny removes her path to deployer.
        assert_eq!(edges_of(&f, EdgeKind::CanAssume), expected);
        let external = node(&f, "acme:external:arn:aws:iam::999999999999:root");
        assert_eq!(external.kind, NodeKind::ServiceAccount);
        assert_eq!((external.owner.as_deref(), external.owner_inferred), (Some("alice@acme.example"), true));
    }

    #[test]
    fn grants_keep_patterns_and_respect_denies_and_boundaries() {
        let f = fixture_fragment();
        assert_eq!(grant_actions(&f, "acme:group:admins", "acme:resource:*"), vec!["*"]);
        assert_eq!(
            grant_actions(&f, "acme:role:deployer", "acme:resource:arn:aws:iam::111111111111:role/app-*"),
            vec!["iam:PassRole"]
        );
        // Boundary: ci-bot's ec2:* is cut, its s3 and sts within the boundary stay.
        assert!(grant_actions(&f, "acme:user:ci-bot", "acme:resource:*").is_empty());
        assert_eq!(
            grant_actions(&f, "acme:user:ci-bot", "acme:resource:arn:aws:s3:::acme-artifacts/*"),
            vec!["s3:GetObject", "s3:PutObject"]
        );
        // carol's Deny cuts the developers group's sts grant for her, so the
        // group's grants hang on each member instead of the group.
        let deployer = "acme:resource:arn:aws:iam::111111111111:role/deployer";
        assert!(grant_actions(&f, "acme:group:developers", deployer).is_empty());
        assert_eq!(grant_actions(&f, "acme:user:bob@acme.example", deployer), vec!["sts:AssumeRole"]);
        assert!(grant_actions(&f, "acme:user:carol@acme.example", deployer).is_empty());
        assert_eq!(
            grant_actions(&f, "acme:user:carol@acme.example", "acme:resource:arn:aws:s3:::acme-reports/*"),
            vec!["s3:GetObject", "s3:ListBucket"]
        );
        let keys: HashSet<String> = f.edges.iter().map(Edge::key).collect();
        assert_eq!(keys.len(), f.edges.len(), "unique edge keys");
    }

    #[test]
    fn an_unrestricted_group_keeps_its_grants() {
        let mut account = fixture_account();
        account.details.user_detail_list.retain(|u| !u.user_name.starts_with("carol"));
        let (o, a) = defaults();
        let f = map(&settings_map(&o, &a), &[account]).expect("maps");
        let deployer = "acme:resource:arn:aws:iam::111111111111:role/deployer";
        assert_eq!(grant_actions(&f, "acme:group:developers", deployer), vec!["sts:AssumeRole"]);
        assert!(grant_actions(&f, "acme:user:bob@acme.example", deployer).is_empty(), "no duplicate on the member");
    }

    #[test]
    fn dangling_references_fail_with_the_json_path() {
        let mut account = fixture_account();
        account.details.user_detail_list[1].group_list.push("nope".into());
        let (o, a) = defaults();
        match map(&settings_map(&o, &a), &[account]) {
            Err(SyncError::Invalid { location, .. }) => assert_eq!(location, "$.UserDetailList[1].GroupList[1]"),
            other => panic!("expected an error, got {other:?}"),
        }
        let mut account = fixture_account();
        account.details.policies.remove(0);
        match map(&settings_map(&o, &a), &[account]) {
            Err(SyncError::Invalid { location, .. }) => {
                assert_eq!(location, "$.GroupDetailList[0].AttachedManagedPolicies[0].PolicyArn")
            }
            other => panic!("expected an error, got {other:?}"),
        }
        let mut account = fixture_account();
        account.details.role_detail_list[0].assume_role_policy_document =
            Some(serde_json::json!({"Statement": [{"Effect": "Allow"}]}));
        match map(&settings_map(&o, &a), &[account]) {
            Err(SyncError::Invalid { location, .. }) => {
                assert_eq!(location, "$.RoleDetailList[0].AssumeRolePolicyDocument.Statement[0]")
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn account(id: &str, details: serde_json::Value) -> AccountData {
        AccountData {
            label: format!("iam account {id}"),
            account_id: id.into(),
            details: serde_json::from_value(details).expect("details"),
            report: Vec::new(),
            access_keys: HashMap::new(),
        }
    }

    #[test]
    fn several_accounts_qualify_names_and_walk_cross_account_trusts() {
        let a = account(
            "111111111111",
            serde_json::json!({"RoleDetailList": [{"RoleName": "shared", "Arn": "arn:aws:iam::111111111111:role/shared",
                "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                    "Principal": {"AWS": ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]}}]},
                "RolePolicyList": [{"PolicyName": "all", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]}]}),
        );
        let b = account(
            "222222222222",
            serde_json::json!({"UserDetailList": [
                {"UserName": "ops", "Arn": "arn:aws:iam::222222222222:user/ops", "UserPolicyList": [{"PolicyName": "hop",
                    "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::111111111111:role/*"}]}}]},
                {"UserName": "dev", "Arn": "arn:aws:iam::222222222222:user/dev"}],
             "RoleDetailList": [{"RoleName": "shared", "Arn": "arn:aws:iam::222222222222:role/shared"}]}),
        );
        let (o, t) = defaults();
        let f = map(&settings_map(&o, &t), &[a, b]).expect("maps");
        assert!(f.nodes.iter().any(|n| n.id == "acme:role:111111111111/shared"));
        assert!(f.nodes.iter().any(|n| n.id == "acme:role:222222222222/shared"), "same name, two accounts");
        let assume = edges_of(&f, EdgeKind::CanAssume);
        assert!(assume.contains(&("acme:user:222222222222/ops".into(), "acme:role:111111111111/shared".into(), false)));
        assert!(!assume.iter().any(|(from, _, _)| from == "acme:user:222222222222/dev"), "no identity allow, no edge");
        assert!(assume.contains(&(
            "acme:external:arn:aws:iam::333333333333:root".into(),
            "acme:role:111111111111/shared".into(),
            false
        )));
        // `*` in account 111's policy means account 111's resources.
        assert_eq!(grant_actions(&f, "acme:role:111111111111/shared", "acme:resource:111111111111/*"), vec!["*"]);
    }
}
