//! Entry points for the `cargo fuzz` targets in `fuzz/` (not an API).
//!
//! Each function takes the bytes a remote system (or an export file) could
//! send and runs the connector's real decoders and mapping on them, the way
//! a sync does, so that a fuzz target stays one line and no parsing logic is
//! duplicated outside this crate. They must never panic, whatever the input:
//! an `Err` is the expected answer to garbage.
//!
//! Inputs that stand for several HTTP responses hold one response body per
//! section, sections separated by NUL bytes (a raw NUL is never valid JSON,
//! so a real body never contains one). A missing section stands for an empty
//! listing, or for an optional listing the token may not read; a present one
//! is decoded with [`crate::http::decode_json`], exactly as the client does.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use accessgraph_graph::Fragment;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::aws_iam::offline;
use crate::aws_iam::policy::{self, PolicyDocument};
use crate::aws_iam::raw::AccountData;
use crate::connector::SyncError;
use crate::http::{self, CursorPage, HttpError, ScimListResponse, decode_json};
use crate::{anthropic, github, openai, scim, snapshot};

/// The source name every mapping is given.
pub const SOURCE: &str = "fuzz";

/// The section separator of multi-response inputs.
pub const SEPARATOR: u8 = 0;

/// One fuzz input cut into response bodies.
struct Pages<'a> {
    sections: std::vec::IntoIter<&'a [u8]>,
}

impl<'a> Pages<'a> {
    fn new(data: &'a [u8]) -> Pages<'a> {
        let sections: Vec<&[u8]> = if data.is_empty() { Vec::new() } else { data.split(|b| *b == SEPARATOR).collect() };
        Pages { sections: sections.into_iter() }
    }

    /// The next body decoded as `T`; `None` for an empty section (the
    /// listing answered 404 or 403) and once the input is used up.
    fn next<T: DeserializeOwned>(&mut self, what: &str) -> Result<Option<T>, HttpError> {
        match self.sections.next() {
            Some([]) | None => Ok(None),
            Some(body) => decode_json(what, body).map(Some),
        }
    }

    /// A listing that the sync cannot do without: missing means empty.
    fn list<T: DeserializeOwned>(&mut self, what: &str) -> Result<Vec<T>, HttpError> {
        Ok(self.next::<Vec<T>>(what)?.unwrap_or_default())
    }

    /// One page of a `{data, has_more, last_id}` listing: missing means empty.
    fn cursor<T: DeserializeOwned>(&mut self, what: &str) -> Result<Vec<T>, HttpError> {
        Ok(self.next::<CursorPage<T>>(what)?.map(|page| page.data).unwrap_or_default())
    }

    /// One page of a SCIM `ListResponse`: missing means empty.
    fn scim<T: DeserializeOwned>(&mut self, what: &str) -> Result<Vec<T>, HttpError> {
        Ok(self.next::<ScimListResponse<T>>(what)?.map(|page| page.resources).unwrap_or_default())
    }
}

/// A snapshot file (CONTRACT §4): parse, validate and map.
pub fn snapshot(data: &[u8]) -> Result<Fragment, SyncError> {
    snapshot::parse_and_map(SOURCE, "fuzz.json", data)
}

/// A GitHub organization read, one body per section in the client's order:
/// the organization, owners, members, outside collaborators, teams,
/// repositories, installations, fine-grained PATs, credential
/// authorizations, organization secrets, organization rulesets (in full),
/// `/rate_limit`; then per team its members, maintainers and repositories;
/// per repository its collaborators, deploy keys, default-branch protection,
/// secrets and the rulesets applying to it; per `selected`
/// installation and per `subset` PAT its repositories.
pub fn github_org(data: &[u8]) -> Result<Fragment, SyncError> {
    use github::wire::{
        BranchProtection, InstallationRecords, InstallationRepositories, Installations, OrgRecords, Organization,
        OrganizationSecrets, PatRecords, Protection, RateLimitOverview, RepoRecords, RepositorySecrets, TeamRecords,
    };
    let mut pages = Pages::new(data);
    let Some(org) = pages.next::<Organization>("orgs/fuzz")? else {
        return Err(SyncError::Read { path: "orgs/fuzz".into(), message: "empty input".into() });
    };
    let owners = pages.list("members?role=admin")?;
    let members = pages.list("members?role=member")?;
    let outside_collaborators = pages.list("outside_collaborators")?;
    let teams: Vec<github::wire::Team> = pages.list("teams")?;
    let repos: Vec<github::wire::Repository> = pages.list("repos")?;
    let installations = pages.next::<Installations>("installations")?.map(|page| page.installations);
    let pats: Option<Vec<github::wire::PatGrant>> = pages.next("personal-access-tokens")?;
    let credential_authorizations = pages.next("credential-authorizations")?;
    let org_secrets = pages.next::<OrganizationSecrets>("actions/secrets")?.map(|page| page.secrets);
    let org_rulesets = pages
        .next::<Vec<github::wire::Ruleset>>("rulesets")?
        .map(|list| list.iter().map(github::wire::BranchRuleset::from_rest).collect());
    let _budget: Option<RateLimitOverview> = pages.next("rate_limit")?;

    let mut team_records = Vec::with_capacity(teams.len());
    for team in teams {
        let members = pages.list("team members")?;
        let maintainers = pages.list("team maintainers")?;
        let repos = pages.list("team repos")?;
        team_records.push(TeamRecords { team, members, maintainers, repos });
    }
    let mut repo_records = Vec::with_capacity(repos.len());
    for repo in repos {
        let collaborators = pages.next("collaborators")?;
        let deploy_keys = pages.next("keys")?;
        let protection = match (&repo.default_branch, repo.archived) {
            (Some(_), false) => match pages.next::<BranchProtection>("protection")? {
                Some(protection) => Protection::Protected(protection),
                None => Protection::Unprotected,
            },
            _ => Protection::NotApplicable,
        };
        let secrets = pages.next::<RepositorySecrets>("repo secrets")?.map(|page| page.secrets);
        let rulesets = pages
            .next::<Vec<github::wire::GqlRuleset>>("repo rulesets")?
            .map(|list| list.iter().map(github::wire::GqlRuleset::to_branch_ruleset).collect());
        repo_records.push(RepoRecords { repo, collaborators, deploy_keys, protection, secrets, rulesets });
    }
    let installations = match installations {
        Some(list) => {
            let mut records = Vec::with_capacity(list.len());
            for installation in list {
                let repositories = if installation.repository_selection == "selected" {
                    pages.next::<InstallationRepositories>("installation repositories")?.map(|p| p.repositories)
                } else {
                    None
                };
                records.push(InstallationRecords { installation, repositories });
            }
            Some(records)
        }
        None => None,
    };
    let pats = match pats {
        Some(list) => {
            let mut records = Vec::with_capacity(list.len());
            for grant in list {
                let repositories =
                    if grant.repository_selection == "subset" { pages.next("pat repositories")? } else { None };
                records.push(PatRecords { grant, repositories });
            }
            Some(records)
        }
        None => None,
    };
    let records = OrgRecords {
        org,
        owners,
        members,
        outside_collaborators,
        teams: team_records,
        repos: repo_records,
        installations,
        pats,
        credential_authorizations,
        org_secrets,
        org_rulesets,
    };
    github::transform::map(SOURCE, &records)
}

/// An OpenAI organization read, one cursor page per section: users,
/// invites, projects, admin keys; then per active project its users,
/// service accounts and API keys.
pub fn openai_org(data: &[u8]) -> Result<Fragment, SyncError> {
    use openai::wire::{Organization, Project, ProjectRecords};
    let mut pages = Pages::new(data);
    let users = pages.cursor("organization/users")?;
    let invites = pages.cursor("organization/invites")?;
    let projects: Vec<Project> = pages.cursor("organization/projects")?;
    let admin_keys = pages.cursor("organization/admin_api_keys")?;
    let mut records = Vec::with_capacity(projects.len());
    for project in projects {
        if project.is_archived() {
            records.push(ProjectRecords {
                project,
                users: Vec::new(),
                service_accounts: Vec::new(),
                api_keys: Vec::new(),
            });
            continue;
        }
        let users = pages.cursor("project users")?;
        let service_accounts = pages.cursor("project service_accounts")?;
        let api_keys = pages.cursor("project api_keys")?;
        records.push(ProjectRecords { project, users, service_accounts, api_keys });
    }
    openai::transform::map(SOURCE, &Organization { users, invites, projects: records, admin_keys })
}

/// An Anthropic organization read, one cursor page per section: users,
/// invites, workspaces, API keys; then per active workspace its members.
pub fn anthropic_org(data: &[u8]) -> Result<Fragment, SyncError> {
    use anthropic::wire::{Organization, Workspace, WorkspaceRecords};
    let mut pages = Pages::new(data);
    let users = pages.cursor("v1/organizations/users")?;
    let invites = pages.cursor("v1/organizations/invites")?;
    let workspaces: Vec<Workspace> = pages.cursor("v1/organizations/workspaces")?;
    let api_keys = pages.cursor("v1/organizations/api_keys")?;
    let mut records = Vec::with_capacity(workspaces.len());
    for workspace in workspaces {
        let members = if workspace.archived_at.is_some() { Vec::new() } else { pages.cursor("workspace members")? };
        records.push(WorkspaceRecords { workspace, members });
    }
    anthropic::transform::map(SOURCE, &Organization { users, invites, workspaces: records, api_keys })
}

/// A SCIM directory read: a `/Users` `ListResponse`, a `/Groups` one, then
/// (as for Entra) optional single `/Groups/{id}` bodies replacing the
/// listed groups in order.
pub fn scim_directory(data: &[u8]) -> Result<Fragment, SyncError> {
    let mut pages = Pages::new(data);
    let users: Vec<Value> = pages.scim("Users")?;
    let mut groups: Vec<Value> = pages.scim("Groups")?;
    for group in &mut groups {
        match pages.next::<Value>("Groups/{id}")? {
            Some(full) => *group = full,
            None => break,
        }
    }
    scim::transform::map(SOURCE, &scim::client::Directory { users, groups })
}

/// An offline AWS IAM account: the authorization-details JSON, a NUL, then
/// the credential report CSV; parsed and mapped as `read_account` does.
pub fn aws_iam_offline(data: &[u8]) -> Result<Fragment, SyncError> {
    let (details, report) = match data.iter().position(|b| *b == SEPARATOR) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let details = offline::parse_details("details.json", details)?;
    let report = offline::parse_report("report.csv", report)?;
    let account_id = offline::account_of(&details, &report).unwrap_or_default();
    let account = AccountData { label: "fuzz".into(), account_id, details, report, access_keys: HashMap::new() };
    aws_iam_map(&[account])
}

/// The credential report CSV alone.
pub fn aws_iam_report(data: &[u8]) -> Result<usize, SyncError> {
    offline::parse_report("report.csv", data).map(|rows| rows.len())
}

/// Maps accounts with the settings of a source that reads owner and agent
/// tags (so the tag paths are exercised too).
pub fn aws_iam_map(accounts: &[AccountData]) -> Result<Fragment, SyncError> {
    let owner_tags = ["owner".to_string(), "Owner".to_string()];
    let agent_tags = BTreeMap::from([("kind".to_string(), "agent".to_string())]);
    let settings = crate::aws_iam::MapSettings {
        source: SOURCE,
        account_name: "fuzz",
        owner_tags: &owner_tags,
        agent_tags: &agent_tags,
    };
    crate::aws_iam::map(&settings, accounts)
}

/// IAM policy documents: the input is one or two documents (JSON, or the
/// API's URL-encoded text) separated by a NUL, the second acting as a
/// permissions boundary. Parses them, computes the effective grants and
/// evaluates a few concrete requests.
pub fn aws_iam_policy(data: &[u8]) -> Result<usize, policy::PolicyError> {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let document = parse_policy(parts.next().unwrap_or_default())?;
    let boundary = match parts.next() {
        Some(text) => Some(parse_policy(text)?),
        None => None,
    };
    let grants = policy::effective_grants(&[&document], boundary.as_ref());
    let _ = policy::admin_level(&grants);
    for grant in &grants {
        let _ = (grant.action.text(), grant.resource.text(), grant.action.is_everything(true));
    }
    for statement in &document.statements {
        let _ = policy::is_assume_statement(statement);
    }
    for (action, resource) in [
        ("s3:GetObject", "arn:aws:s3:::bucket/key"),
        ("sts:AssumeRole", "arn:aws:iam::123456789012:role/admin"),
        ("iam:CreateUser", "*"),
    ] {
        let _ = policy::decide(&[&document], boundary.as_ref(), action, resource);
        let _ = policy::allow_state(&[&document], action, resource);
    }
    Ok(grants.len())
}

fn parse_policy(text: &str) -> Result<PolicyDocument, policy::PolicyError> {
    let value = serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_string()));
    PolicyDocument::parse(&value)
}

/// IAM's wildcard matching: pattern, NUL, text. Returns whether the
/// pattern matches (case-folded and not), covers and overlaps the text.
pub fn aws_iam_glob(data: &[u8]) -> [bool; 4] {
    let text = String::from_utf8_lossy(data);
    let (pattern, subject) = text.split_once('\0').unwrap_or((&text, ""));
    [
        policy::glob_match(pattern, subject, true),
        policy::glob_match(pattern, subject, false),
        policy::glob_covers(pattern, subject, false),
        policy::glob_overlaps(pattern, subject, true),
    ]
}

/// The response headers and error bodies every connector reads: the input
/// is `name: value` lines, a NUL, then an error body. Runs the `Link`,
/// `Retry-After` and rate-limit parsers and the error-message extractor.
pub fn http_response(data: &[u8]) -> Option<String> {
    let (head, body) = match data.iter().position(|b| *b == SEPARATOR) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(line[colon + 1..].trim_ascii()))
        else {
            continue;
        };
        if let Ok(text) = value.to_str() {
            let _ = http::parse_link_next(text);
            let _ = http::parse_go_duration(text);
        }
        headers.append(name, value);
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let _ = http::parse_retry_after(&headers, now);
    let _ = http::parse_rate_limit(&headers, now);
    http::error_message(body)
}

#[cfg(test)]
mod tests {
    //! The harnesses must reach the mapping on real responses, or the fuzz
    //! targets would only ever test the first decoder.
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(path);
        std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    }

    fn join(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.join(&[SEPARATOR][..])
    }

    #[test]
    fn fuzzing_snapshot_maps_the_contract_example() {
        let fragment = snapshot(&fixture("snapshot/contract-example.json")).expect("maps");
        assert!(!fragment.nodes.is_empty());
    }

    #[test]
    fn fuzzing_openai_maps_fixture_pages() {
        let input = join(&[
            fixture("openai/users.page1.json"),
            fixture("openai/invites.json"),
            fixture("openai/projects.json"),
            fixture("openai/admin_api_keys.json"),
            fixture("openai/project-payments.users.json"),
            fixture("openai/project-payments.service_accounts.json"),
            fixture("openai/project-payments.api_keys.json"),
        ]);
        let fragment = openai_org(&input).expect("maps");
        assert!(fragment.nodes.iter().any(|n| n.id.contains(":api_key:")), "{:?}", fragment.nodes);
    }

    #[test]
    fn fuzzing_anthropic_maps_fixture_pages() {
        let input = join(&[
            fixture("anthropic/users.page1.json"),
            fixture("anthropic/invites.json"),
            fixture("anthropic/workspaces.json"),
            fixture("anthropic/api_keys.page1.json"),
            fixture("anthropic/workspace-payments.members.json"),
        ]);
        let fragment = anthropic_org(&input).expect("maps");
        assert!(fragment.edges.len() > 1);
    }

    #[test]
    fn fuzzing_github_maps_fixture_pages() {
        let input = join(&[
            fixture("github/org.json"),
            fixture("github/members-admin.json"),
            fixture("github/members-member-1.json"),
            fixture("github/outside-collaborators.json"),
            fixture("github/teams.json"),
            fixture("github/repos.json"),
        ]);
        let fragment = github_org(&input).expect("maps");
        assert!(fragment.nodes.iter().any(|n| n.id.starts_with("fuzz:repo:")));
        assert!(fragment.nodes.iter().any(|n| n.id.starts_with("fuzz:team:")));
    }

    #[test]
    fn fuzzing_aws_iam_offline_maps_the_export() {
        let input = join(&[fixture("aws/authorization-details.json"), fixture("aws/credential-report.csv")]);
        let fragment = aws_iam_offline(&input).expect("maps");
        assert!(fragment.edges.iter().any(|e| e.kind == accessgraph_graph::EdgeKind::Grant));
    }

    #[test]
    fn fuzzing_a_section_that_does_not_decode_fails_the_read() {
        let input = join(&[b"{\"login\":\"acme\",\"id\":1}".to_vec(), b"[{\"login\":7}]".to_vec()]);
        assert!(matches!(github_org(&input), Err(SyncError::Http(HttpError::Decode { .. }))));
    }
}
