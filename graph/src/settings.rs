//! What the analyzer is told by the operator: the agent catalog, risk tiers,
//! thresholds and separation-of-duties rules. The config crate deserializes
//! these types directly, so the user's reference and the analyzer agree.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Risk tier of an agent (DESIGN.md "Policy and tiers").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Sandbox work, auto-approved.
    #[default]
    Low,
    /// Single approver.
    Medium,
    /// Dual control, ephemeral credentials only.
    High,
}

impl Tier {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::Medium => "medium",
            Tier::High => "high",
        }
    }
}

/// One record of the agent catalog (CONTRACT §5): the system of record for non-humans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogAgent {
    /// The catalog's own id for the agent.
    pub id: String,
    /// Accountable person (email) or identity id.
    #[serde(default)]
    pub owner: Option<String>,
    /// Second approver; required for tiers with dual control.
    #[serde(default)]
    pub controller: Option<String>,
    /// What the agent is for.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Risk tier; the `[rules] default_tier` applies when absent.
    #[serde(default)]
    pub risk_tier: Option<Tier>,
    /// Source names the agent may reach; absent means unrestricted.
    #[serde(default)]
    pub allowed_systems: Option<Vec<String>>,
    /// After this day the agent must no longer hold access.
    #[serde(default)]
    pub expires: Option<NaiveDate>,
    /// Node ids this agent acts as.
    #[serde(default)]
    pub identities: Vec<String>,
}

/// The catalog: every record, in file order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Agents.
    pub agents: Vec<CatalogAgent>,
    /// Node id → record index, built on first lookup (the analyzer asks once
    /// per identity; a scan per question is quadratic at 10k agents). Build
    /// the catalog fully before asking.
    #[serde(skip)]
    index: std::sync::OnceLock<std::collections::HashMap<String, usize>>,
}

impl Catalog {
    /// A catalog of these records.
    pub fn new(agents: Vec<CatalogAgent>) -> Catalog {
        Catalog { agents, index: std::sync::OnceLock::new() }
    }

    /// The record that binds a node id, if any (the first, in file order).
    pub fn agent_for(&self, node_id: &str) -> Option<&CatalogAgent> {
        let index = self.index.get_or_init(|| {
            let mut index = std::collections::HashMap::new();
            for (i, agent) in self.agents.iter().enumerate() {
                for id in &agent.identities {
                    index.entry(id.clone()).or_insert(i);
                }
            }
            index
        });
        index.get(node_id).map(|&i| &self.agents[i])
    }
}

/// Limits of one risk tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPolicy {
    /// A credential living longer than this many days is standing.
    pub max_credential_days: u32,
    /// The agent needs a controller distinct from its owner.
    #[serde(default)]
    pub dual_control: bool,
}

/// The three tiers, with DESIGN.md's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tiers {
    /// Low tier.
    pub low: TierPolicy,
    /// Medium tier.
    pub medium: TierPolicy,
    /// High tier.
    pub high: TierPolicy,
}

impl Default for Tiers {
    fn default() -> Tiers {
        Tiers {
            low: TierPolicy { max_credential_days: 90, dual_control: false },
            medium: TierPolicy { max_credential_days: 30, dual_control: false },
            high: TierPolicy { max_credential_days: 1, dual_control: true },
        }
    }
}

impl Tiers {
    /// The limits of a tier.
    pub fn policy(&self, tier: Tier) -> &TierPolicy {
        match tier {
            Tier::Low => &self.low,
            Tier::Medium => &self.medium,
            Tier::High => &self.high,
        }
    }
}

/// Rule thresholds (`[rules]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// `secret.unused` past this many idle days.
    pub secret_unused_days: u32,
    /// `secret.stale` past this age.
    pub secret_max_age_days: u32,
    /// Tier of identities no catalog record places.
    pub default_tier: Tier,
    /// With no previous snapshot, grants the source dates within this many
    /// days count as added for `drift.baseline`.
    pub baseline_window_days: u32,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds { secret_unused_days: 90, secret_max_age_days: 90, default_tier: Tier::Low, baseline_window_days: 7 }
    }
}

/// One side of a separation-of-duties rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SodSide {
    /// Resource node id.
    pub resource: String,
    /// Action on it.
    pub action: String,
}

/// `[[sod]]`: no principal may hold both sides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SodRule {
    /// Unique rule name (part of the finding's identity).
    pub name: String,
    /// One duty.
    pub left: SodSide,
    /// The conflicting duty.
    pub right: SodSide,
}

/// Everything the analyzer needs besides the graph.
#[derive(Clone, Debug, Default)]
pub struct AnalysisSettings {
    /// The agent catalog.
    pub catalog: Catalog,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Tier limits.
    pub tiers: Tiers,
    /// Separation-of-duties rules.
    pub sod: Vec<SodRule>,
    /// Sources under the Cedar policy (None: all).
    pub governed: Option<BTreeSet<String>>,
}

impl AnalysisSettings {
    /// Whether a source is under the Cedar policy.
    pub fn is_governed(&self, source: &str) -> bool {
        self.governed.as_ref().is_none_or(|set| set.contains(source))
    }
}
