//! A small builder of graphs for rule tests (source name `t`).

use super::{Context, Rule};
use crate::access::{AccessGraph, AccessSet, ResolveSettings};
use crate::findings::Finding;
use crate::model::{Edge, EdgeKind, LastUse, Node, NodeKind};
use crate::policy::PolicyEngine;
use crate::settings::{AnalysisSettings, CatalogAgent, Tier};
use chrono::{DateTime, TimeZone, Utc};

pub struct Kit {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub settings: AnalysisSettings,
    pub resolve: ResolveSettings,
    pub previous: Option<AccessSet>,
    pub policy: Option<String>,
    pub now: DateTime<Utc>,
}

impl Kit {
    pub fn new() -> Kit {
        Kit {
            nodes: Vec::new(),
            edges: Vec::new(),
            settings: AnalysisSettings::default(),
            resolve: ResolveSettings::default(),
            previous: None,
            policy: None,
            now: Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).single().expect("valid time"),
        }
    }

    fn push(&mut self, node: Node) -> String {
        let id = node.id.clone();
        self.nodes.push(node);
        id
    }

    /// A human account `t:user:ID`, active, with an email.
    pub fn human(&mut self, id: &str, email: &str) -> String {
        self.human_in("t", id, email)
    }

    /// A human account in another source.
    pub fn human_in(&mut self, source: &str, id: &str, email: &str) -> String {
        let mut node = Node::new(format!("{source}:user:{id}"), NodeKind::Human, source, id);
        node.email = Some(email.to_string());
        node.active = Some(true);
        self.push(node)
    }

    /// An agent `t:agent:ID` with an optional owner reference.
    pub fn agent(&mut self, id: &str, owner: Option<&str>) -> String {
        let mut node = Node::new(format!("t:agent:{id}"), NodeKind::Agent, "t", id);
        node.owner = owner.map(str::to_string);
        node.active = Some(true);
        self.push(node)
    }

    /// A service account `t:service_account:ID`.
    pub fn service_account(&mut self, id: &str, owner: Option<&str>) -> String {
        let mut node = Node::new(format!("t:service_account:{id}"), NodeKind::ServiceAccount, "t", id);
        node.owner = owner.map(str::to_string);
        self.push(node)
    }

    /// A group `t:group:ID`.
    pub fn group(&mut self, id: &str) -> String {
        self.push(Node::new(format!("t:group:{id}"), NodeKind::Group, "t", id))
    }

    /// A role `t:role:ID`.
    pub fn role(&mut self, id: &str) -> String {
        self.push(Node::new(format!("t:role:{id}"), NodeKind::Role, "t", id))
    }

    /// A resource `SOURCE:dataset:ID`.
    pub fn resource_in(&mut self, source: &str, id: &str) -> String {
        let mut node = Node::new(format!("{source}:dataset:{id}"), NodeKind::Resource, source, id);
        node.subkind = Some("dataset".to_string());
        self.push(node)
    }

    /// A resource `t:dataset:ID`.
    pub fn resource(&mut self, id: &str) -> String {
        self.resource_in("t", id)
    }

    /// An API key `t:api_key:ID` held by `holder`; last use unknown.
    pub fn credential(
        &mut self,
        id: &str,
        holder: &str,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> String {
        let mut node = Node::new(format!("t:api_key:{id}"), NodeKind::Credential, "t", id);
        node.subkind = Some("api_key".to_string());
        node.created_at = Some(created_at);
        node.expires_at = expires_at;
        node.last_used = LastUse::Unknown;
        let id = self.push(node);
        self.edges.push(Edge::new(holder, &id, EdgeKind::Holds));
        id
    }

    pub fn member(&mut self, member: &str, group: &str) {
        self.edges.push(Edge::new(member, group, EdgeKind::MemberOf));
    }

    pub fn can_assume(&mut self, who: &str, role: &str) {
        self.edges.push(Edge::new(who, role, EdgeKind::CanAssume));
    }

    pub fn grant(&mut self, principal: &str, resource: &str, actions: &[&str]) -> &mut Edge {
        self.edges.push(Edge::grant(principal, resource, actions.iter().copied()));
        self.edges.last_mut().expect("just pushed")
    }

    pub fn node_mut(&mut self, id: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).expect("node exists")
    }

    /// Adds a catalog record binding `identities`.
    pub fn catalog(
        &mut self,
        id: &str,
        owner: Option<&str>,
        tier: Option<Tier>,
        identities: &[&str],
    ) -> &mut CatalogAgent {
        self.settings.catalog.agents.push(CatalogAgent {
            id: id.to_string(),
            owner: owner.map(str::to_string),
            controller: None,
            purpose: None,
            risk_tier: tier,
            allowed_systems: None,
            expires: None,
            identities: identities.iter().map(|s| s.to_string()).collect(),
        });
        self.settings.catalog.agents.last_mut().expect("just pushed")
    }

    pub fn graph(&self) -> AccessGraph {
        AccessGraph::build(self.nodes.clone(), self.edges.clone(), &self.settings.catalog, &self.resolve)
            .expect("test graph builds")
    }

    /// Runs one rule and returns its findings sorted by (subject, object).
    pub fn run(&self, rule: &dyn Rule) -> Vec<Finding> {
        let graph = self.graph();
        let access = graph.effective_access(self.now);
        let engine = self.policy.as_deref().map(|text| PolicyEngine::parse(text).expect("test policy parses"));
        let denials = engine
            .as_ref()
            .map(|engine| engine.denials(&graph, &access, &self.settings, self.now).expect("cedar evaluates"));
        let ctx = Context {
            graph: &graph,
            access: &access,
            previous: self.previous.as_ref(),
            denials: denials.as_deref(),
            settings: &self.settings,
            now: self.now,
        };
        let mut findings = rule.evaluate(&ctx);
        findings.sort_by(|a, b| (&a.subject, &a.object).cmp(&(&b.subject, &b.object)));
        findings
    }
}
