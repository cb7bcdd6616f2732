//! Declared access as Cedar: entities of CONTRACT §5b, one authorization
//! request per effective (principal, action, resource) in a governed source.

use crate::access::{AccessGraph, EffectiveAccess};
use crate::model::NodeKind;
use crate::settings::AnalysisSettings;
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression,
};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

/// Errors preparing a Cedar evaluation.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy text does not parse (the config crate reports lines).
    #[error("invalid Cedar policy: {0}")]
    Parse(String),
    /// An entity could not be built.
    #[error("Cedar entity `{0}`: {1}")]
    Entity(String, String),
}

/// A parsed policy set.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    policies: PolicySet,
}

/// The verdict on one effective access that the policy does not allow.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    /// Index into `EffectiveAccess::entries()`.
    pub entry: usize,
    /// Policy ids (or their `@id` annotations) of the `forbid` policies that
    /// matched; empty when nothing permits the access.
    pub forbidden_by: Vec<String>,
}

fn uid(type_name: &str, id: &str) -> Result<EntityUid, PolicyError> {
    let type_name =
        EntityTypeName::from_str(type_name).map_err(|e| PolicyError::Entity(id.to_string(), e.to_string()))?;
    Ok(EntityUid::from_type_name_and_id(type_name, EntityId::new(id)))
}

fn text(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_string())
}

impl PolicyEngine {
    /// Parses a policy set.
    pub fn parse(source: &str) -> Result<PolicyEngine, PolicyError> {
        PolicySet::from_str(source)
            .map(|policies| PolicyEngine { policies })
            .map_err(|e| PolicyError::Parse(e.to_string()))
    }

    fn display_id(&self, id: &cedar_policy::PolicyId) -> String {
        self.policies.policy(id).and_then(|p| p.annotation("id").map(str::to_string)).unwrap_or_else(|| id.to_string())
    }

    /// Builds the entities (identities with their groups, groups, resources).
    pub fn entities(
        graph: &AccessGraph,
        access: &EffectiveAccess,
        settings: &AnalysisSettings,
        now: DateTime<Utc>,
    ) -> Result<Entities, PolicyError> {
        let mut entities = Vec::new();
        let mut principals: HashSet<_> = HashSet::new();
        let mut resources: HashSet<_> = HashSet::new();
        for entry in access.entries() {
            principals.insert(entry.principal);
            resources.insert(entry.resource);
        }
        let mut groups = HashSet::new();
        for &principal in &principals {
            let node = graph.node(principal);
            let mut parents = HashSet::new();
            for group in graph.groups_of(principal, now) {
                groups.insert(group);
                parents.insert(uid("Group", &graph.node(group).id)?);
            }
            let system = if node.kind == NodeKind::Person { "person" } else { node.source.as_str() };
            let mut attrs = HashMap::from([
                ("kind".to_string(), text(node.kind.as_str())),
                ("system".to_string(), text(system)),
                ("name".to_string(), text(&node.name)),
            ]);
            if let Some(agent) = settings.catalog.agent_for(&node.id) {
                let tier = agent.risk_tier.unwrap_or(settings.thresholds.default_tier);
                attrs.insert("risk_tier".to_string(), text(tier.as_str()));
            }
            entities.push(
                Entity::new(uid("Identity", &node.id)?, attrs, parents)
                    .map_err(|e| PolicyError::Entity(node.id.clone(), e.to_string()))?,
            );
        }
        // Cedar requires the group hierarchy to be a DAG, but memberships may
        // form cycles: a group's parents leave out the groups of its own cycle
        // (and itself). Principals still get every group of the cycle.
        let closures: HashMap<_, HashSet<_>> =
            groups.iter().map(|&group| (group, graph.groups_of(group, now).into_iter().collect())).collect();
        for (&group, ancestors) in &closures {
            let node = graph.node(group);
            let mut parents = HashSet::new();
            for &parent in ancestors {
                let in_cycle = parent == group || closures.get(&parent).is_some_and(|up| up.contains(&group));
                if !in_cycle {
                    parents.insert(uid("Group", &graph.node(parent).id)?);
                }
            }
            let attrs =
                HashMap::from([("system".to_string(), text(&node.source)), ("name".to_string(), text(&node.name))]);
            entities.push(
                Entity::new(uid("Group", &node.id)?, attrs, parents)
                    .map_err(|e| PolicyError::Entity(node.id.clone(), e.to_string()))?,
            );
        }
        for resource in resources {
            let node = graph.node(resource);
            let attrs = HashMap::from([
                ("system".to_string(), text(&node.source)),
                ("kind".to_string(), text(node.subkind.as_deref().unwrap_or("resource"))),
                ("name".to_string(), text(&node.name)),
                ("environment".to_string(), text(node.environment.as_deref().unwrap_or(""))),
                ("data_domains".to_string(), RestrictedExpression::new_set(node.data_domains.iter().map(|d| text(d)))),
            ]);
            entities.push(
                Entity::new(uid("Resource", &node.id)?, attrs, HashSet::new())
                    .map_err(|e| PolicyError::Entity(node.id.clone(), e.to_string()))?,
            );
        }
        Entities::from_entities(entities, None).map_err(|e| PolicyError::Entity("<set>".to_string(), e.to_string()))
    }

    /// Every effective access in a governed source that the policy denies.
    pub fn denials(
        &self,
        graph: &AccessGraph,
        access: &EffectiveAccess,
        settings: &AnalysisSettings,
        now: DateTime<Utc>,
    ) -> Result<Vec<Denial>, PolicyError> {
        let entities = Self::entities(graph, access, settings, now)?;
        let authorizer = Authorizer::new();
        let mut denials = Vec::new();
        for (i, entry) in access.entries().iter().enumerate() {
            let resource = graph.node(entry.resource);
            if !settings.is_governed(&resource.source) {
                continue;
            }
            let principal = uid("Identity", &graph.node(entry.principal).id)?;
            let action = uid("Action", &entry.action)?;
            let request = Request::new(principal, action, uid("Resource", &resource.id)?, Context::empty(), None)
                .map_err(|e| PolicyError::Entity(resource.id.clone(), e.to_string()))?;
            let response = authorizer.is_authorized(&request, &self.policies, &entities);
            if response.decision() == Decision::Deny {
                let mut forbidden_by: Vec<String> =
                    response.diagnostics().reason().map(|id| self.display_id(id)).collect();
                forbidden_by.sort();
                denials.push(Denial { entry: i, forbidden_by });
            }
        }
        Ok(denials)
    }
}
