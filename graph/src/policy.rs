//! Declared access as Cedar: entities of CONTRACT §5b, one authorization
//! request per effective (principal, action, resource) in a governed source.

use crate::access::{AccessGraph, EffectiveAccess};
use crate::model::NodeKind;
use crate::parallel;
use crate::settings::AnalysisSettings;
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression,
};
use chrono::{DateTime, Utc};
use petgraph::graph::NodeIndex;
use rustc_hash::FxHashMap;
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
    /// Some policy names a single identity: principals cannot share answers.
    names_identities: bool,
    /// Some policy names a single resource or reads a `name`: resources
    /// cannot share answers.
    names_resources: bool,
    /// The groups some policy names (`Group::"…"` literals): the only
    /// memberships a policy can tell principals apart by.
    named_groups: HashSet<String>,
}

/// What a policy that names no single resource and reads no `name` can tell
/// resources apart by: the other attributes of CONTRACT §5b.
type ResourceKey<'g> = (&'g str, Option<&'g str>, Option<&'g str>, &'g [String]);

/// Whether the policy text could tell apart two resources whose attributes
/// other than `name` are equal: it names a resource entity, or mentions the
/// word `name` anywhere (an attribute read, `has name`, `["name"]`; a comment
/// or annotation only costs the sharing). Textual, so it errs towards
/// evaluating each resource on its own.
fn names_resources(source: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    source.contains("Resource::")
        || source.match_indices("name").any(|(at, _)| {
            !source[..at].chars().next_back().is_some_and(ident) && !source[at + 4..].chars().next().is_some_and(ident)
        })
}

/// What a policy can tell principals apart by: kind, system, tier, and the
/// groups it names that they are in (directly or not).
type ProfileKey = (NodeKind, String, Option<crate::settings::Tier>, Vec<NodeIndex>);

fn profile_key(
    graph: &AccessGraph,
    settings: &AnalysisSettings,
    named_groups: &HashSet<String>,
    principal: NodeIndex,
    now: DateTime<Utc>,
) -> ProfileKey {
    let node = graph.node(principal);
    let tier = settings.catalog.agent_for(&node.id).map(|a| a.risk_tier.unwrap_or(settings.thresholds.default_tier));
    let mut groups = graph.groups_of(principal, now);
    // `principal in Group::"g"` is the only way a policy reads membership,
    // and g is a literal: two principals in the same named groups cannot
    // be told apart by the groups no policy names.
    groups.retain(|&group| named_groups.contains(&graph.node(group).id));
    groups.sort();
    let system = if node.kind == NodeKind::Person { String::new() } else { node.source.clone() };
    (node.kind, system, tier, groups)
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
            .map(|policies| PolicyEngine {
                named_groups: policies
                    .policies()
                    .flat_map(|policy| policy.entity_literals())
                    .filter(|uid| uid.type_name().to_string() == "Group")
                    .map(|uid| uid.id().unescaped().to_string())
                    .collect(),
                policies,
                names_identities: source.contains("Identity::"),
                names_resources: names_resources(source),
            })
            .map_err(|e| PolicyError::Parse(e.to_string()))
    }

    fn display_id(&self, id: &cedar_policy::PolicyId) -> String {
        self.policies.policy(id).and_then(|p| p.annotation("id").map(str::to_string)).unwrap_or_else(|| id.to_string())
    }

    /// Builds the entities (identities with their groups, groups, resources)
    /// of every effective access.
    pub fn entities(
        graph: &AccessGraph,
        access: &EffectiveAccess,
        settings: &AnalysisSettings,
        now: DateTime<Utc>,
    ) -> Result<Entities, PolicyError> {
        let principals = access.entries().iter().map(|entry| entry.principal).collect();
        let resources = access.entries().iter().map(|entry| entry.resource).collect();
        Self::entities_of(graph, &principals, &resources, settings, now)
    }

    /// The entities of these principals (with their groups) and resources:
    /// only those that requests name, since Cedar computes the closure of
    /// every entity it is given.
    fn entities_of(
        graph: &AccessGraph,
        principals: &HashSet<NodeIndex>,
        resources: &HashSet<NodeIndex>,
        settings: &AnalysisSettings,
        now: DateTime<Utc>,
    ) -> Result<Entities, PolicyError> {
        let mut entities = Vec::new();
        let mut groups = HashSet::new();
        for &principal in principals {
            let node = graph.node(principal);
            let mut parents = HashSet::new();
            for group in graph.groups_of(principal, now) {
                groups.insert(group);
                parents.insert(uid("Group", &graph.node(group).id)?);
            }
            let system = if node.kind == NodeKind::Person { "person" } else { node.source.as_str() };
            // CONTRACT §5b: kind, system, risk_tier. No per-principal
            // attribute, so principals with the same groups and attributes
            // get the same answer and requests can be shared (see `denials`).
            let mut attrs =
                HashMap::from([("kind".to_string(), text(node.kind.as_str())), ("system".to_string(), text(system))]);
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
        for &resource in resources {
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
        // Principals with the same profile (`profile_key`) are
        // indistinguishable to a policy that names no single identity, so
        // one request answers for all of them. A policy naming
        // `Identity::"…"` turns the sharing off.
        let share = !self.names_identities;
        let mut profiles: HashMap<ProfileKey, NodeIndex> = HashMap::new();
        let mut representative: FxHashMap<NodeIndex, NodeIndex> = FxHashMap::default();
        // Likewise resources with the same attributes, name aside, when no
        // policy names a resource or reads a name.
        let share_resources = !self.names_resources;
        let mut resource_profiles: HashMap<ResourceKey<'_>, NodeIndex> = HashMap::new();
        let mut resource_representative: FxHashMap<NodeIndex, NodeIndex> = FxHashMap::default();
        // First the distinct requests and who asks about what, so that only
        // the askers and the resources asked about become entities. An
        // action is one allocation per analysis (`Action::key`); were it
        // two, a request would only be asked twice.
        let mut request_of: FxHashMap<(NodeIndex, usize, NodeIndex), u32> = FxHashMap::default();
        let mut requests: Vec<(NodeIndex, &str, NodeIndex)> = Vec::new();
        let mut askers = HashSet::new();
        let mut targets = HashSet::new();
        let mut governed: Vec<(usize, u32)> = Vec::new();
        for (i, entry) in access.entries().iter().enumerate() {
            let resource = graph.node(entry.resource);
            if !settings.is_governed(&resource.source) {
                continue;
            }
            let asker = if share {
                *representative.entry(entry.principal).or_insert_with(|| {
                    let key = profile_key(graph, settings, &self.named_groups, entry.principal, now);
                    *profiles.entry(key).or_insert(entry.principal)
                })
            } else {
                entry.principal
            };
            let target = if share_resources {
                *resource_representative.entry(entry.resource).or_insert_with(|| {
                    let key = (
                        resource.source.as_str(),
                        resource.subkind.as_deref(),
                        resource.environment.as_deref(),
                        resource.data_domains.as_slice(),
                    );
                    *resource_profiles.entry(key).or_insert(entry.resource)
                })
            } else {
                entry.resource
            };
            let request = *request_of.entry((asker, entry.action.key(), target)).or_insert_with(|| {
                askers.insert(asker);
                targets.insert(target);
                requests.push((asker, entry.action.as_str(), target));
                (requests.len() - 1) as u32
            });
            governed.push((i, request));
        }
        drop(request_of);
        let entities = Self::entities_of(graph, &askers, &targets, settings, now)?;
        // The requests are independent: they are asked on every core.
        let threads = parallel::worker_threads(requests.len(), 20_000);
        let verdicts = parallel::map_runs(parallel::even_runs(requests.len(), threads), |run| {
            let authorizer = Authorizer::new();
            requests[run]
                .iter()
                .map(|&(asker, action, target)| self.verdict(&authorizer, &entities, graph, asker, action, target))
                .collect::<Result<Vec<_>, _>>()
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .concat();
        Ok(governed
            .into_iter()
            .filter_map(|(entry, request)| {
                let forbidden_by = verdicts.get(request as usize).cloned().flatten()?;
                Some(Denial { entry, forbidden_by })
            })
            .collect())
    }

    /// Cedar's answer to one request: None when allowed, else the `forbid`
    /// policies that matched (empty when nothing permits it).
    fn verdict(
        &self,
        authorizer: &Authorizer,
        entities: &Entities,
        graph: &AccessGraph,
        asker: NodeIndex,
        action: &str,
        target: NodeIndex,
    ) -> Result<Option<Vec<String>>, PolicyError> {
        let principal = uid("Identity", &graph.node(asker).id)?;
        let action = uid("Action", action)?;
        let target = &graph.node(target).id;
        let request = Request::new(principal, action, uid("Resource", target)?, Context::empty(), None)
            .map_err(|e| PolicyError::Entity(target.clone(), e.to_string()))?;
        let response = authorizer.is_authorized(&request, &self.policies, entities);
        Ok((response.decision() == Decision::Deny).then(|| {
            let mut forbidden_by: Vec<String> = response.diagnostics().reason().map(|id| self.display_id(id)).collect();
            forbidden_by.sort();
            forbidden_by
        }))
    }
}

#[cfg(test)]
mod sharing_tests {
    use super::*;
    use crate::rules::testkit::Kit;

    /// Shared answers must equal one request per principal.
    #[test]
    fn shared_requests_give_the_same_denials_as_one_per_principal() {
        let mut kit = Kit::new();
        let team = kit.group("team");
        let ops = kit.group("ops");
        let prod = kit.resource("prod");
        let dev = kit.resource("dev");
        for i in 0..6 {
            let user = kit.human(&format!("u{i}"), &format!("u{i}@acme.example"));
            kit.member(&user, if i % 2 == 0 { &team } else { &ops });
            if i == 3 {
                kit.grant(&user, &prod, &["admin"]);
            }
        }
        let bot = kit.agent("bot", Some("u0@acme.example"));
        kit.member(&bot, &team);
        // In the named group only through a group no policy names, and in
        // other unnamed groups: shares with the direct members of `team`.
        let sub = kit.group("sub");
        kit.member(&sub, &team);
        for i in 6..9 {
            let user = kit.human(&format!("u{i}"), &format!("u{i}@acme.example"));
            let own = kit.group(&format!("own{i}"));
            kit.member(&user, &own);
            kit.member(&user, if i == 6 { &sub } else { &ops });
        }
        kit.grant(&team, &prod, &["read", "write"]);
        kit.grant(&ops, &dev, &["read", "admin"]);
        let policy = "permit (principal in Group::\"t:group:team\", action == Action::\"read\", resource);\n\
                      permit (principal, action, resource == Resource::\"t:dataset:dev\") when { principal.kind == \"human\" };\n\
                      forbid (principal, action == Action::\"write\", resource) when { principal.kind == \"agent\" };";
        let graph = kit.graph();
        let access = graph.effective_access(kit.now);
        let shared = PolicyEngine::parse(policy).expect("parses");
        let mut single = shared.clone();
        single.names_identities = true;
        single.names_resources = true;
        let a = shared.denials(&graph, &access, &kit.settings, kit.now).expect("evaluates");
        let b = single.denials(&graph, &access, &kit.settings, kit.now).expect("evaluates");
        assert_eq!(a, b);
        assert!(a.len() >= 4, "the case exercises denials: {a:?}");
        assert!(a.iter().any(|d| !d.forbidden_by.is_empty()), "and a forbid");
    }

    /// Resources that differ only by name share answers, and no others.
    #[test]
    fn shared_resources_give_the_same_denials_as_one_per_resource() {
        let mut kit = Kit::new();
        let team = kit.group("team");
        let mut resources = Vec::new();
        for (i, (environment, domains)) in
            [("prod", &["pii"][..]), ("prod", &[]), ("dev", &["pii"]), ("prod", &["pii"]), ("dev", &[])]
                .into_iter()
                .enumerate()
        {
            let resource = kit.resource(&format!("r{i}"));
            let node = kit.node_mut(&resource);
            node.environment = Some(environment.to_string());
            node.data_domains = domains.iter().map(|d| d.to_string()).collect();
            resources.push(resource);
        }
        let other_system = kit.resource_in("u", "r5");
        kit.node_mut(&other_system).environment = Some("prod".to_string());
        for (i, resource) in resources.iter().take(4).enumerate() {
            let user = kit.human(&format!("u{i}"), &format!("u{i}@acme.example"));
            kit.member(&user, &team);
            kit.grant(&user, resource, &["write"]);
        }
        let bot = kit.agent("bot", Some("u0@acme.example"));
        kit.member(&bot, &team);
        for resource in resources.iter().chain([&other_system]) {
            kit.grant(&team, resource, &["read", "write"]);
        }
        let policy = "permit (principal, action == Action::\"read\", resource) when { resource.environment == \"dev\" };\n\
                      permit (principal, action, resource) when { resource.system == \"t\" && !resource.data_domains.contains(\"pii\") };\n\
                      forbid (principal, action, resource) when { principal.kind == \"agent\" && resource.environment == \"prod\" };";
        let graph = kit.graph();
        let access = graph.effective_access(kit.now);
        let shared = PolicyEngine::parse(policy).expect("parses");
        assert!(!shared.names_resources, "the policy reads no name");
        let mut single = shared.clone();
        single.names_resources = true;
        let a = shared.denials(&graph, &access, &kit.settings, kit.now).expect("evaluates");
        let b = single.denials(&graph, &access, &kit.settings, kit.now).expect("evaluates");
        assert_eq!(a, b);
        assert!(a.len() >= 6 && a.len() < access.entries().len(), "the case both denies and permits: {a:?}");
        assert!(a.iter().any(|d| !d.forbidden_by.is_empty()), "and a forbid");
    }

    #[test]
    fn a_policy_that_names_a_resource_or_reads_a_name_evaluates_each_resource() {
        for (policy, names) in [
            ("permit (principal, action, resource == Resource::\"t:dataset:a\");", true),
            ("permit (principal, action, resource) when { resource.name == \"a\" };", true),
            ("permit (principal, action, resource) when { resource[\"name\"] like \"a*\" };", true),
            ("permit (principal, action, resource) when { resource has name };", true),
            ("permit (principal, action, resource) when { resource.environment == \"names\" };", false),
            ("permit (principal, action, resource) when { resource.kind == \"rename_me\" };", false),
            ("permit (principal in Group::\"t:group:team\", action, resource);", false),
        ] {
            let engine = PolicyEngine::parse(policy).expect("parses");
            assert_eq!(engine.names_resources, names, "{policy}");
        }
    }
}
