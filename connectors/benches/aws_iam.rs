//! The AWS IAM benchmark (issue 4): a generated authorization-details export
//! of 5,000 users, 2,000 roles and 500 customer managed policies (plus a
//! credential report), then each phase timed with its peak RSS: parse, map
//! (policy evaluation, trust evaluation), graph build, analysis (effective
//! access and every rule). Run:
//! `cargo bench -p accessgraph-connectors --bench aws_iam [-- USERS ROLES POLICIES] [dense]`.
//! Figures go to BENCHMARKS.md ("AWS IAM").

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use accessgraph_connectors::aws_iam::offline::{parse_details, parse_report};
use accessgraph_connectors::aws_iam::raw::AccountData;
use accessgraph_connectors::aws_iam::{MapSettings, map};
use accessgraph_graph::access::{AccessGraph, ResolveSettings};
use accessgraph_graph::settings::{AnalysisSettings, Catalog};
use accessgraph_graph::{EdgeKind, analyze};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";

fn reset_peak() {
    // Linux: writing 5 resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A small deterministic generator (xorshift), so every run sees the same account.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn per_mille(&mut self, n: u64) -> bool {
        self.next() % 1000 < n
    }
}

/// How permissive the generated account is.
#[derive(Clone, Copy)]
struct Shape {
    /// Per mille of customer policy statements that allow everything but IAM
    /// (`NotAction`, like PowerUserAccess, which group-1 holds anyway).
    not_action: u64,
    /// Percent of `sts:AssumeRole` statements on a pattern (a team's roles) rather than one role.
    assume_wild: u64,
    /// Team count: a pattern covers roles / teams roles.
    teams: usize,
}

/// Roles are named by team, so that a pattern like `team-3-*` covers one team's roles.
fn role_name(r: usize, teams: usize) -> String {
    format!("team-{}-role-{r}", r % teams)
}

const SERVICES: [&str; 8] = ["s3", "dynamodb", "sqs", "lambda", "ec2", "kms", "rds", "logs"];
const VERBS: [&str; 6] = ["Get*", "List*", "Put*", "Describe*", "Delete*", "*"];

fn statement(rng: &mut Rng, roles: usize, shape: Shape) -> Value {
    let service = SERVICES[rng.below(SERVICES.len())];
    let resource = if rng.chance(30) {
        json!("*")
    } else {
        json!(format!("arn:aws:{service}:us-east-1:{ACCOUNT}:team-{}/*", rng.below(40)))
    };
    let mut s = if rng.chance(8) {
        let target = if rng.chance(shape.assume_wild) {
            format!("team-{}-*", rng.below(shape.teams))
        } else {
            role_name(rng.below(roles), shape.teams)
        };
        json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": format!("arn:aws:iam::{ACCOUNT}:role/{target}")})
    } else if rng.per_mille(shape.not_action) {
        json!({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"})
    } else {
        let actions: Vec<String> =
            (0..1 + rng.below(3)).map(|_| format!("{service}:{}", VERBS[rng.below(VERBS.len())])).collect();
        json!({"Effect": if rng.chance(8) { "Deny" } else { "Allow" }, "Action": actions, "Resource": resource})
    };
    if rng.chance(10) {
        s["Condition"] = json!({"StringEquals": {"aws:RequestedRegion": "us-east-1"}});
    }
    s
}

fn document(rng: &mut Rng, roles: usize, shape: Shape) -> Value {
    let statements: Vec<Value> = (0..2 + rng.below(4)).map(|_| statement(rng, roles, shape)).collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn policy_arn(i: usize) -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/policy-{i}")
}

/// `min` to `min + spread - 1` attachments.
fn attached(rng: &mut Rng, policies: usize, min: usize, spread: usize) -> Vec<Value> {
    let n = min + rng.below(spread);
    (0..n)
        .map(|_| {
            let i = rng.below(policies);
            json!({"PolicyName": format!("policy-{i}"), "PolicyArn": policy_arn(i)})
        })
        .collect()
}

fn generate(users: usize, roles: usize, policies: usize, shape: Shape) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let groups = (users / 100).max(5);
    let mut policy_list: Vec<Value> = (0..policies)
        .map(|i| {
            json!({"PolicyName": format!("policy-{i}"), "PolicyId": format!("ANPA{i:016}"), "Arn": policy_arn(i),
                   "Path": "/", "DefaultVersionId": "v1", "AttachmentCount": 1,
                   "PolicyVersionList": [{"Document": document(&mut rng, roles, shape), "VersionId": "v1", "IsDefaultVersion": true}]})
        })
        .collect();
    policy_list.push(json!({"PolicyName": "AdministratorAccess", "Arn": "arn:aws:iam::aws:policy/AdministratorAccess",
        "DefaultVersionId": "v1", "PolicyVersionList": [{"IsDefaultVersion": true, "VersionId": "v1",
        "Document": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]}));
    policy_list.push(json!({"PolicyName": "PowerUserAccess", "Arn": "arn:aws:iam::aws:policy/PowerUserAccess",
        "DefaultVersionId": "v1", "PolicyVersionList": [{"IsDefaultVersion": true, "VersionId": "v1",
        "Document": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"}]}}]}));
    let group_list: Vec<Value> = (0..groups)
        .map(|g| {
            let mut managed = attached(&mut rng, policies, 2, 3);
            if g == 0 {
                managed.push(json!({"PolicyName": "AdministratorAccess", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}));
            }
            if g == 1 {
                managed.push(json!({"PolicyName": "PowerUserAccess", "PolicyArn": "arn:aws:iam::aws:policy/PowerUserAccess"}));
            }
            json!({"GroupName": format!("group-{g}"), "Arn": format!("arn:aws:iam::{ACCOUNT}:group/group-{g}"),
                   "GroupPolicyList": [{"PolicyName": "inline", "PolicyDocument": document(&mut rng, roles, shape)}],
                   "AttachedManagedPolicies": managed})
        })
        .collect();
    let mut report = String::from(
        "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n",
    );
    let user_list: Vec<Value> = (0..users)
        .map(|u| {
            let name = format!("user-{u}@acme.example");
            let arn = format!("arn:aws:iam::{ACCOUNT}:user/{name}");
            let member: Vec<String> =
                (0..1 + rng.below(3)).map(|_| format!("group-{}", 2 + rng.below(groups - 2))).collect();
            let mut member = member;
            // 0.2 % admins, 2 % power users.
            if u % 500 == 0 {
                member.push("group-0".into());
            }
            if u % 50 == 1 {
                member.push("group-1".into());
            }
            member.sort();
            member.dedup();
            let mut user = json!({"UserName": name, "Arn": arn, "Path": "/", "CreateDate": "2022-01-01T00:00:00Z",
                "GroupList": member, "AttachedManagedPolicies": attached(&mut rng, policies, 0, 3), "Tags": []});
            if rng.chance(10) {
                user["UserPolicyList"] = json!([{"PolicyName": "own", "PolicyDocument": document(&mut rng, roles, shape)}]);
            }
            if rng.chance(5) {
                user["PermissionsBoundary"] = json!({"PermissionsBoundaryArn": policy_arn(rng.below(policies))});
            }
            if rng.chance(3) {
                user["Tags"] = json!([{"Key": "accessgraph:kind", "Value": "agent"}, {"Key": "owner", "Value": "user-1@acme.example"}]);
            }
            let key = if rng.chance(60) {
                let used = if rng.chance(30) { "N/A".to_string() } else { "2025-05-01T00:00:00+00:00".to_string() };
                format!("true,2023-0{}-01T00:00:00+00:00,{used},us-east-1,s3", 1 + rng.below(9))
            } else {
                "false,N/A,N/A,N/A,N/A".to_string()
            };
            report.push_str(&format!(
                "{name},{arn},2022-01-01T00:00:00+00:00,true,2025-05-01T00:00:00+00:00,N/A,N/A,true,{key},false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
            ));
            user
        })
        .collect();
    let role_list: Vec<Value> = (0..roles)
        .map(|r| {
            let principal = match rng.below(20) {
                0..=7 => json!({"Service": "lambda.amazonaws.com"}),
                8..=13 => json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}),
                14..=16 => json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:role/{}", role_name(rng.below(roles), shape.teams))}),
                17 => json!({"AWS": format!("arn:aws:iam::{}:root", 100_000_000_000u64 + rng.below(50) as u64)}),
                _ => json!({"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com")}),
            };
            let name = role_name(r, shape.teams);
            let mut role = json!({"RoleName": name, "Arn": format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Principal": principal, "Action": ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]}]},
                "RolePolicyList": [{"PolicyName": "inline", "PolicyDocument": document(&mut rng, roles, shape)}],
                "AttachedManagedPolicies": attached(&mut rng, policies, 1, 3),
                "Tags": if rng.chance(20) { json!([{"Key": "owner", "Value": "user-2@acme.example"}]) } else { json!([]) }});
            if rng.chance(10) {
                role["PermissionsBoundary"] = json!({"PermissionsBoundaryArn": policy_arn(rng.below(policies))});
            }
            role
        })
        .collect();
    let export = json!({"UserDetailList": user_list, "GroupDetailList": group_list, "RoleDetailList": role_list,
                        "Policies": policy_list});
    (serde_json::to_vec(&export).unwrap_or_default(), report.into_bytes())
}

fn main() {
    let dense = std::env::args().any(|a| a == "dense");
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (users, roles, policies) = match args.as_slice() {
        [u, r, p, ..] => (*u, *r, *p),
        _ => (5_000, 2_000, 500),
    };
    // Typical: few PowerUser-like statements, role assumption mostly on named
    // roles. Dense: many PowerUser-like statements and team-wide patterns over
    // big teams, so most principals may assume most roles that trust the account.
    let shape = if dense {
        Shape { not_action: 20, assume_wild: 60, teams: 4 }
    } else {
        Shape { not_action: 0, assume_wild: 15, teams: 40 }
    };
    let (export, csv) = generate(users, roles, policies, shape);
    println!(
        "## AWS IAM ({})\n\nGenerated account: {users} users, {roles} roles, {policies} customer managed policies \
         (+ AdministratorAccess for 0.2 % and PowerUserAccess for 2 % of users), {} groups; export {:.1} MiB, credential report {:.1} MiB.\n",
        if dense { "dense" } else { "typical" },
        (users / 100).max(5),
        export.len() as f64 / 1_048_576.0,
        csv.len() as f64 / 1_048_576.0
    );
    println!("| phase | seconds | peak RSS (MiB) | note |\n|---|---|---|---|");
    let total = Instant::now();
    let mut peak = 0f64;
    let mut phase = |name: &str, started: Instant, note: String| {
        let hwm = status_mib("VmHWM:");
        peak = peak.max(hwm);
        println!("| {name} | {:.3} | {hwm:.0} | {note} |", started.elapsed().as_secs_f64());
        reset_peak();
        peak
    };
    reset_peak();

    let started = Instant::now();
    let details = parse_details("bench.json", &export).unwrap_or_else(|e| panic!("export parses: {e}"));
    let report = parse_report("bench.csv", &csv).unwrap_or_else(|e| panic!("report parses: {e}"));
    drop(export);
    phase("parse export + report", started, format!("{} report rows", report.len()));

    let started = Instant::now();
    let account =
        AccountData { label: "bench".into(), account_id: ACCOUNT.into(), details, report, access_keys: HashMap::new() };
    let owner_tags = vec!["owner".to_string()];
    let agent_tags = BTreeMap::from([("accessgraph:kind".to_string(), "agent".to_string())]);
    let settings =
        MapSettings { source: "aws", account_name: "bench", owner_tags: &owner_tags, agent_tags: &agent_tags };
    let fragment = map(&settings, &[account]).unwrap_or_else(|e| panic!("maps: {e}"));
    let assume = fragment.edges.iter().filter(|e| e.kind == EdgeKind::CanAssume).count();
    let grants = fragment.edges.iter().filter(|e| e.kind == EdgeKind::Grant).count();
    phase(
        "map (policy + trust evaluation)",
        started,
        format!("{} nodes, {} edges ({grants} grant, {assume} can_assume)", fragment.nodes.len(), fragment.edges.len()),
    );
    let map_seconds = total.elapsed().as_secs_f64();

    let started = Instant::now();
    let graph = AccessGraph::build(fragment.nodes, fragment.edges, &Catalog::default(), &ResolveSettings::default())
        .unwrap_or_else(|e| panic!("graph builds: {e}"));
    phase("graph build (people, owners)", started, format!("{} nodes", graph.node_count()));

    let now = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).single().unwrap_or_else(Utc::now);
    // Attribution only: analysis recomputes this first.
    let started = Instant::now();
    let entries = graph.effective_access(now).entries().len();
    let attribution = started.elapsed();
    phase("of which effective access alone", started, format!("{entries} entries"));

    let started = Instant::now();
    let analysis = analyze(&graph, None, None, &AnalysisSettings::default(), now).unwrap_or_else(|e| panic!("{e}"));
    let peak = phase(
        "analysis (effective access + every rule)",
        started,
        format!("{} effective access entries, {} findings", analysis.access.entries().len(), analysis.findings.len()),
    );
    println!(
        "\nParse + map: {map_seconds:.2} s; parse + map + graph + analysis: {:.2} s (the attribution-only pass \
         excluded); peak RSS {peak:.0} MiB (VmHWM, the generated input included).",
        (total.elapsed() - attribution).as_secs_f64(),
    );
}
