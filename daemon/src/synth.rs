//! A synthetic enterprise for benchmarks: deterministic (seeded), with the
//! shape of a real company — divisions ⊃ departments ⊃ teams, teams owning
//! resources, per-department read, role chains, agents with owners and keys,
//! some deprovisioned people, grants with and without expiry, and a Cedar
//! policy covering part of it. Written as snapshot sources (CONTRACT §4).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::io;
use std::path::{Path, PathBuf};

/// How big a company to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// People (each has an IdP account and an app account).
    pub people: usize,
    /// AI agents.
    pub agents: usize,
    /// Resources.
    pub resources: usize,
    /// Direct grants per person (SaaS-style assignments).
    pub direct_grants_per_person: usize,
}

impl Size {
    /// S, M or L of the benchmark suite.
    pub fn named(name: &str) -> Option<Size> {
        match name.to_ascii_uppercase().as_str() {
            "XS" => Some(Size { people: 100, agents: 10, resources: 50, direct_grants_per_person: 15 }),
            "S" => Some(Size { people: 1_000, agents: 100, resources: 500, direct_grants_per_person: 15 }),
            "M" => Some(Size { people: 10_000, agents: 1_000, resources: 5_000, direct_grants_per_person: 15 }),
            // 18 direct grants a person: the "≥ 2M edges" at L.
            "L" => Some(Size { people: 100_000, agents: 10_000, resources: 50_000, direct_grants_per_person: 18 }),
            _ => None,
        }
    }
}

/// Where the generated company is.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The config file (sqlite store beside it).
    pub config: PathBuf,
    /// The app source's snapshot file (the one a 1 % change rewrites).
    pub apps_file: PathBuf,
    /// Edges written across all files.
    pub edges: usize,
    /// Nodes written across all files.
    pub nodes: usize,
}

const TEAM_SIZE: usize = 10;
const TEAMS_PER_DEPT: usize = 10;
const DEPTS_PER_DIVISION: usize = 10;
const ACTIONS: [&str; 4] = ["read", "write", "approve", "admin"];

fn time(days_ago: i64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-27T00:00:00Z").map(|t| t.timestamp()).unwrap_or(0);
    let at = chrono::DateTime::from_timestamp(base - days_ago * 86_400, 0).unwrap_or_default();
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The app source with `changed_percent` of its direct grants re-pointed
/// (a 1 % change re-sync).
pub fn apps_snapshot(size: Size, seed: u64, changed_percent: u32) -> (Value, usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut change = StdRng::seed_from_u64(seed ^ 0xC0FFEE);
    let teams = size.people.div_ceil(TEAM_SIZE);
    let depts = teams.div_ceil(TEAMS_PER_DEPT);
    let per_dept = size.resources.div_ceil(depts).max(1);
    let mut identities = Vec::with_capacity(size.people + size.agents);
    let mut groups = Vec::new();
    let mut roles = Vec::new();
    let mut resources = Vec::with_capacity(size.resources);
    let mut grants = Vec::new();
    let mut credentials = Vec::new();
    for r in 0..size.resources {
        let dept = r / per_dept;
        let env = if r % 3 == 0 { "dev" } else { "prod" };
        let domains: Vec<&str> = match r % 7 {
            0 => vec!["pii"],
            1 => vec!["finance"],
            _ => vec![],
        };
        resources.push(json!({"id": format!("r{r}"), "kind": if r % 2 == 0 { "app" } else { "dataset" },
            "name": format!("d{dept}-resource-{r}"), "environment": env, "data_domains": domains}));
    }
    let mut team_members: Vec<Vec<String>> = vec![Vec::new(); teams];
    for p in 0..size.people {
        let email = if p % 5 == 0 { format!("P{p}@Corp.Example") } else { format!("p{p}@corp.example") };
        identities.push(json!({"id": format!("a{p}"), "kind": "human", "name": format!("Person {p}"), "email": email, "active": true}));
        team_members[p / TEAM_SIZE].push(format!("a{p}"));
        let dept = p / TEAM_SIZE / TEAMS_PER_DEPT;
        for g in 0..size.direct_grants_per_person {
            let mut target = dept * per_dept + rng.random_range(0..per_dept);
            // The change stream is separate, so a 1 % change moves 1 % of the
            // grants and leaves every other draw as it was.
            let moved = change.random_range(0..size.resources);
            if g == 0 && change.random_range(0..100u32) < changed_percent {
                target = moved;
            }
            let target = target.min(size.resources - 1);
            // Mostly read and write; approve and admin are the rare, risky ones.
            let action = match rng.random_range(0..100u32) {
                0..60 => ACTIONS[0],
                60..95 => ACTIONS[1],
                95..98 => ACTIONS[2],
                _ => ACTIONS[3],
            };
            let expires = if rng.random_bool(0.1) { Value::String(time(-30)) } else { Value::Null };
            grants.push(json!({"principal": format!("a{p}"), "resource": format!("r{target}"), "actions": [action],
                "granted_at": time(rng.random_range(0..700)), "expires_at": expires}));
        }
    }
    for a in 0..size.agents {
        let owner = rng.random_range(0..size.people);
        let team = rng.random_range(0..teams);
        identities.push(json!({"id": format!("agent{a}"), "kind": "agent", "name": format!("Agent {a}"),
            "owner": if a % 13 == 0 { Value::Null } else { Value::String(format!("p{owner}@corp.example")) }, "active": true}));
        team_members[team].push(format!("agent{a}"));
        for k in 0..(1 + a % 2) {
            let created = rng.random_range(1..800);
            let last_used = match rng.random_range(0..3) {
                0 => Value::Null,
                _ => Value::String(time(rng.random_range(0..created))),
            };
            let expires =
                if rng.random_bool(0.3) { Value::String(time(-rng.random_range(1..60))) } else { Value::Null };
            credentials.push(json!({"id": format!("k{a}-{k}"), "kind": "api_key", "holder": format!("agent{a}"),
                "created_at": time(created), "last_used_at": last_used, "expires_at": expires}));
        }
    }
    for (t, members) in team_members.into_iter().enumerate() {
        let dept = t / TEAMS_PER_DEPT;
        groups.push(json!({"id": format!("team{t}"), "name": format!("Team {t}"), "members": members}));
        for i in 0..5 {
            let target = (dept * per_dept + (t * 5 + i) % per_dept).min(size.resources - 1);
            grants
                .push(json!({"principal": format!("team{t}"), "resource": format!("r{target}"), "actions": ["write"]}));
        }
    }
    for d in 0..depts {
        let members: Vec<String> =
            (d * TEAMS_PER_DEPT..((d + 1) * TEAMS_PER_DEPT).min(teams)).map(|t| format!("team{t}")).collect();
        groups.push(json!({"id": format!("dept{d}"), "name": format!("Department {d}"), "members": members}));
        let first = d * per_dept;
        for r in first..(first + per_dept).min(size.resources) {
            if r % 4 == 0 {
                grants.push(json!({"principal": format!("dept{d}"), "resource": format!("r{r}"), "actions": ["read"]}));
            }
        }
        roles.push(json!({"id": format!("operator{d}"), "name": format!("Operator {d}"), "assumable_by": [format!("dept{d}")]}));
        roles.push(json!({"id": format!("breakglass{d}"), "name": format!("Break glass {d}"), "assumable_by": [format!("operator{d}")]}));
        grants.push(
            json!({"principal": format!("breakglass{d}"), "resource": format!("r{first}"), "actions": ["admin"]}),
        );
    }
    let edges = grants.len()
        + groups.iter().map(|g| g["members"].as_array().map_or(0, Vec::len)).sum::<usize>()
        + roles.len()
        + credentials.len();
    let nodes = identities.len() + groups.len() + roles.len() + resources.len() + credentials.len();
    let value = json!({"version": 1, "system": "apps", "collected_at": "2026-11-26T00:00:00Z",
        "identities": identities, "groups": groups, "roles": roles, "resources": resources,
        "grants": grants, "credentials": credentials});
    (value, nodes, edges)
}

fn idp_snapshot(size: Size) -> (Value, usize, usize) {
    let teams = size.people.div_ceil(TEAM_SIZE);
    let depts = teams.div_ceil(TEAMS_PER_DEPT);
    let divisions = depts.div_ceil(DEPTS_PER_DIVISION);
    let mut identities = Vec::with_capacity(size.people);
    let mut groups = Vec::new();
    for p in 0..size.people {
        identities.push(json!({"id": format!("u{p}"), "kind": "human", "name": format!("Person {p}"),
            "email": format!("p{p}@corp.example"), "active": p % 50 != 7}));
    }
    for t in 0..teams {
        let members: Vec<String> =
            (t * TEAM_SIZE..((t + 1) * TEAM_SIZE).min(size.people)).map(|p| format!("u{p}")).collect();
        groups.push(json!({"id": format!("team{t}"), "name": format!("Team {t}"), "members": members}));
    }
    for d in 0..depts {
        let members: Vec<String> =
            (d * TEAMS_PER_DEPT..((d + 1) * TEAMS_PER_DEPT).min(teams)).map(|t| format!("team{t}")).collect();
        groups.push(json!({"id": format!("dept{d}"), "name": format!("Department {d}"), "members": members}));
    }
    for v in 0..divisions {
        let members: Vec<String> =
            (v * DEPTS_PER_DIVISION..((v + 1) * DEPTS_PER_DIVISION).min(depts)).map(|d| format!("dept{d}")).collect();
        groups.push(json!({"id": format!("div{v}"), "name": format!("Division {v}"), "members": members}));
    }
    let edges = size.people + teams + depts;
    let nodes = identities.len() + groups.len();
    (
        json!({"version": 1, "system": "idp", "collected_at": "2026-11-26T00:00:00Z", "identities": identities, "groups": groups}),
        nodes,
        edges,
    )
}

fn write_json(path: &Path, value: &Value) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    std::fs::write(path, bytes)
}

/// Writes the company (config, catalog, policy, two snapshot sources) into `dir`.
pub fn generate(dir: &Path, size: Size, seed: u64) -> io::Result<Generated> {
    std::fs::create_dir_all(dir)?;
    let (idp, idp_nodes, idp_edges) = idp_snapshot(size);
    write_json(&dir.join("idp.json"), &idp)?;
    let (apps, apps_nodes, apps_edges) = apps_snapshot(size, seed, 0);
    let apps_file = dir.join("apps.json");
    write_json(&apps_file, &apps)?;
    let mut catalog = String::new();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xCA7A);
    for a in 0..size.agents {
        if a % 5 == 4 {
            continue; // shadow agents
        }
        let tier = ["low", "medium", "high"][a % 3];
        let owner = rng.random_range(0..size.people);
        let controller = if a % 6 == 2 {
            String::new()
        } else {
            format!("controller = \"p{}@corp.example\"\n", (owner + 1) % size.people)
        };
        catalog.push_str(&format!(
            "[[agent]]\nid = \"agent{a}\"\nowner = \"p{owner}@corp.example\"\n{controller}risk_tier = \"{tier}\"\nallowed_systems = [\"apps\"]\nidentities = [\"apps:agent:agent{a}\"]\n\n"
        ));
    }
    std::fs::write(dir.join("agents.toml"), catalog)?;
    std::fs::write(
        dir.join("policy.cedar"),
        "permit (principal, action in [Action::\"read\", Action::\"write\"], resource);\n\
         permit (principal, action, resource) when { resource.environment == \"dev\" };\n\
         permit (principal in Group::\"idp:group:div0\", action, resource);\n\
         permit (principal in Group::\"apps:group:dept1\", action in [Action::\"read\", Action::\"write\"], resource);\n\
         forbid (principal, action, resource) when { principal.kind == \"agent\" && resource.data_domains.contains(\"pii\") };\n",
    )?;
    let config = dir.join("accessgraph.toml");
    std::fs::write(
        &config,
        "[store]\nurl = \"sqlite://bench.db\"\n\n\
         [[source]]\nname = \"idp\"\nkind = \"snapshot\"\npath = \"idp.json\"\nidentity_source = true\n\n\
         [[source]]\nname = \"apps\"\nkind = \"snapshot\"\npath = \"apps.json\"\n\n\
         [catalog]\npath = \"agents.toml\"\n\n[policy]\ncedar = \"policy.cedar\"\ngoverns = [\"apps\"]\n\n\
         [[sod]]\nname = \"write-vs-approve-r1\"\nleft = { resource = \"apps:dataset:r1\", action = \"write\" }\nright = { resource = \"apps:dataset:r1\", action = \"approve\" }\n\n\
         [[sink]]\nkind = \"jsonl\"\npath = \"events.jsonl\"\n",
    )?;
    Ok(Generated { config, apps_file, nodes: idp_nodes + apps_nodes, edges: idp_edges + apps_edges })
}
