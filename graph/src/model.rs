//! The ontology: what a source's sync produces and what the store keeps.
//!
//! Nodes and edges are plain data keyed by strings (CONTRACT §3 node ids) so a
//! fragment can be hashed, stored, diffed and rebuilt without knowing petgraph.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a node is. Identities are split by kind because rules treat humans and
/// non-humans differently; a `Person` is the cross-source human that accounts
/// resolve to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A human resolved across sources (`person:EMAIL`).
    Person,
    /// A human's account in one source.
    Human,
    /// An AI agent.
    Agent,
    /// A service account or other workload identity.
    ServiceAccount,
    /// An installed application (GitHub App, OAuth app).
    App,
    /// A set of principals that share grants.
    Group,
    /// A role a principal can assume.
    Role,
    /// Something access is granted on.
    Resource,
    /// A key, token or secret that lets its holder act.
    Credential,
}

impl NodeKind {
    /// The contract's spelling (`human`, `service_account`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Person => "person",
            NodeKind::Human => "human",
            NodeKind::Agent => "agent",
            NodeKind::ServiceAccount => "service_account",
            NodeKind::App => "app",
            NodeKind::Group => "group",
            NodeKind::Role => "role",
            NodeKind::Resource => "resource",
            NodeKind::Credential => "credential",
        }
    }

    /// Parses the contract's spelling of an identity kind.
    pub fn identity_from_str(kind: &str) -> Option<NodeKind> {
        match kind {
            "human" => Some(NodeKind::Human),
            "agent" => Some(NodeKind::Agent),
            "service_account" => Some(NodeKind::ServiceAccount),
            "app" => Some(NodeKind::App),
            _ => None,
        }
    }

    /// People and accounts, agents, service accounts and apps: whatever can act.
    pub fn is_identity(self) -> bool {
        matches!(self, NodeKind::Person | NodeKind::Human | NodeKind::Agent | NodeKind::ServiceAccount | NodeKind::App)
    }

    /// Identities that are not people: the ones that need an owner.
    pub fn is_non_human(self) -> bool {
        matches!(self, NodeKind::Agent | NodeKind::ServiceAccount | NodeKind::App)
    }
}

/// When a credential was last used, as honestly as its source can say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastUse {
    /// The source does not report use: rules must not guess.
    #[default]
    Unknown,
    /// The source reports the credential was never used.
    Never,
    /// Last used at this instant.
    At(DateTime<Utc>),
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// One node of a source's slice of the graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// `SOURCE:KIND:KEY` (CONTRACT §3).
    pub id: String,
    /// What the node is.
    pub kind: NodeKind,
    /// The source name that reported it (empty for resolved people).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Human-readable name for reports.
    pub name: String,
    /// Resource type (`repo`, `dataset`) or credential type (`api_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subkind: Option<String>,
    /// Email of a human account, used to resolve people across sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the source reports the identity as active (None: not reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Owner as the source names it: an email, or an identity key of the same source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// True when the owner was inferred (e.g. a key's creator) rather than declared.
    #[serde(default, skip_serializing_if = "is_default")]
    pub owner_inferred: bool,
    /// Resource environment (`prod`, `dev`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Resource data domains (`finance`, `pii`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_domains: Vec<String>,
    /// Credential creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Credential last rotation, when the source reports it separately from creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<DateTime<Utc>>,
    /// Credential last use.
    #[serde(default, skip_serializing_if = "is_default")]
    pub last_used: LastUse,
    /// Credential expiry (None: never expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Anything else worth showing (never secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

impl Node {
    /// A node with only the required fields set.
    pub fn new(id: impl Into<String>, kind: NodeKind, source: impl Into<String>, name: impl Into<String>) -> Node {
        Node {
            id: id.into(),
            kind,
            source: source.into(),
            name: name.into(),
            subkind: None,
            email: None,
            active: None,
            owner: None,
            owner_inferred: false,
            environment: None,
            data_domains: Vec::new(),
            created_at: None,
            rotated_at: None,
            last_used: LastUse::Unknown,
            expires_at: None,
            attrs: BTreeMap::new(),
        }
    }
}

/// The relations of DESIGN.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// principal → group
    MemberOf,
    /// principal → role
    CanAssume,
    /// principal → resource, with actions
    Grant,
    /// owner → identity
    Owns,
    /// identity → credential
    Holds,
    /// person → account
    SameAs,
}

impl EdgeKind {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::MemberOf => "member_of",
            EdgeKind::CanAssume => "can_assume",
            EdgeKind::Grant => "grant",
            EdgeKind::Owns => "owns",
            EdgeKind::Holds => "holds",
            EdgeKind::SameAs => "same_as",
        }
    }
}

/// One relation between two node ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// Relation.
    pub kind: EdgeKind,
    /// Actions of a grant, sorted and unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// When a grant was made, if the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_at: Option<DateTime<Utc>>,
    /// When a grant or membership lapses (None: standing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The grant only holds under conditions the source attaches (e.g. IAM `Condition`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub conditional: bool,
}

impl Edge {
    /// An edge with no actions or times.
    pub fn new(from: impl Into<String>, to: impl Into<String>, kind: EdgeKind) -> Edge {
        Edge {
            from: from.into(),
            to: to.into(),
            kind,
            actions: Vec::new(),
            granted_at: None,
            expires_at: None,
            conditional: false,
        }
    }

    /// A grant of `actions` (normalised: sorted, unique).
    pub fn grant<S: Into<String>>(
        from: impl Into<String>,
        to: impl Into<String>,
        actions: impl IntoIterator<Item = S>,
    ) -> Edge {
        let mut edge = Edge::new(from, to, EdgeKind::Grant);
        edge.actions = actions.into_iter().map(Into::into).collect();
        edge.actions.sort();
        edge.actions.dedup();
        edge
    }

    /// Identity of the edge within its source: two edges with the same key are
    /// the same fact (a change of times closes one row and opens another).
    pub fn key(&self) -> String {
        let mut key = String::new();
        self.write_key(&mut key);
        key
    }

    /// [`Edge::key`] into a buffer the caller reuses: a mapper deduplicating
    /// millions of grants need not allocate a key for each.
    pub fn write_key(&self, out: &mut String) {
        out.clear();
        out.reserve(self.from.len() + self.to.len() + 16);
        out.push_str(&self.from);
        out.push('|');
        out.push_str(self.kind.as_str());
        out.push('|');
        out.push_str(&self.to);
        for (i, action) in self.actions.iter().enumerate() {
            out.push(if i == 0 { '|' } else { ',' });
            out.push_str(action);
        }
    }
}

/// What one sync of one source produced: everything it read, and the parts
/// it could not read (`kept`), whose stored rows carry over unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    /// The source name (CONTRACT §2 `name`).
    pub source: String,
    /// Nodes, unique by id.
    pub nodes: Vec<Node>,
    /// Edges, unique by key.
    pub edges: Vec<Edge>,
    /// Slices of the source this sync could not read (one AWS account of
    /// several): empty for a complete sync. The store keeps their previous
    /// rows instead of closing them, so a partial sync never reads as
    /// "access removed".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<KeptSlice>,
}

impl Fragment {
    /// The errors of the slices not read (`None` for a complete sync), one
    /// `name: error` per slice, for the sync run record.
    pub fn kept_error(&self) -> Option<String> {
        if self.kept.is_empty() {
            return None;
        }
        Some(self.kept.iter().map(|k| format!("{}: {}", k.name, k.error)).collect::<Vec<_>>().join("; "))
    }
}

/// A slice of a source that a sync could not read, named by an exact node-id
/// scope. The stored rows it keeps: nodes whose id starts with one of
/// `prefixes`, edges with either end under one, and the node at the other
/// end of such an edge (a key its user holds, a shared resource pattern),
/// unless the sync's own fragment reports that row, which then wins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptSlice {
    /// What the slice is, for reports (`account 222222222222`).
    pub name: String,
    /// Node-id prefixes of the slice (`aws-prod:role:222222222222/`).
    pub prefixes: Vec<String>,
    /// Why it could not be read.
    pub error: String,
}

impl KeptSlice {
    /// Whether a node id lies in the slice's scope.
    pub fn covers(&self, id: &str) -> bool {
        self.prefixes.iter().any(|prefix| id.starts_with(prefix.as_str()))
    }
}

/// Builds a node id `SOURCE:KIND:KEY`.
pub fn node_id(source: &str, kind: &str, key: &str) -> String {
    format!("{source}:{kind}:{key}")
}

/// The id of the person an email resolves to (lower-cased, CONTRACT §3).
pub fn person_id(email: &str) -> String {
    format!("person:{}", email.trim().to_lowercase())
}
