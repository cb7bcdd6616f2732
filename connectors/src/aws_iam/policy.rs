//! Pure IAM policy semantics: parsing policy documents and evaluating them
//! the way AWS does, for one request or for whole patterns.
//!
//! Two questions are answered here:
//!
//! - [`decide`]: is one concrete request (`s3:GetObject` on one ARN) allowed
//!   by a principal's identity policies and permissions boundary? Explicit
//!   Deny wins; without an Allow the answer is an implicit deny; a boundary
//!   must allow too. A statement with a `Condition` only *may* apply, so it
//!   makes an Allow conditional and a Deny "conditional" (the request is
//!   allowed only when the Deny's condition is false).
//! - [`effective_grants`]: which (action pattern, resource pattern) pairs do
//!   the policies allow, as patterns (wildcards are kept: the graph holds
//!   `s3:Get*` on `arn:aws:s3:::reports/*`, not every expansion)? An Allow
//!   entirely covered by an unconditional Deny disappears; one the Deny only
//!   partly overlaps (or a boundary only partly allows, or a `Condition`
//!   limits) stays, marked conditional, because a pattern cannot express
//!   "all of `s3:*` except `s3:DeleteBucket`".
//!
//! Actions compare case-insensitively, resources case-sensitively (as AWS
//! does). `NotAction` / `NotResource` become "everything except" sets, shown
//! as `* except a, b`.

use std::collections::BTreeMap;

use serde_json::Value;

/// A policy document that could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct PolicyError {
    /// Where inside the document (`Statement[2].Action`).
    pub location: String,
    /// What is wrong there.
    pub message: String,
}

fn error(location: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError { location: location.into(), message: message.into() }
}

/// Allow or Deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// `"Effect": "Allow"`.
    Allow,
    /// `"Effect": "Deny"`.
    Deny,
}

/// The patterns of `Action` (or `Resource`), or the exceptions of
/// `NotAction` (or `NotResource`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Patterns {
    /// Any of these patterns.
    Only(Vec<String>),
    /// Anything matching none of these patterns.
    AllExcept(Vec<String>),
}

/// Who a resource policy (a role's trust policy) names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// `"*"` or `{"AWS": "*"}`: any principal of any account.
    Any,
    /// `{"AWS": …}`: an account id, a root ARN, a user or role ARN, a unique id.
    Aws(String),
    /// `{"Service": …}`: an AWS service (`ec2.amazonaws.com`).
    Service(String),
    /// `{"Federated": …}`: an OIDC or SAML provider.
    Federated(String),
    /// `{"CanonicalUser": …}`.
    CanonicalUser(String),
}

/// `Principal` or `NotPrincipal` of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principals {
    /// `Principal`: these principals.
    Only(Vec<Principal>),
    /// `NotPrincipal`: everybody but these.
    AllExcept(Vec<Principal>),
}

/// One statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// `Sid`, when given.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// `Action` / `NotAction`.
    pub actions: Patterns,
    /// `Resource` / `NotResource` (`*` when absent, as in trust policies).
    pub resources: Patterns,
    /// `Principal` / `NotPrincipal` (resource policies only).
    pub principals: Option<Principals>,
    /// The statement has a non-empty `Condition`: it only applies sometimes.
    pub conditional: bool,
}

/// A parsed policy document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyDocument {
    /// Statements in document order.
    pub statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Parses a policy document as IAM returns it: a JSON object, a JSON text,
    /// or a URL-encoded JSON text (the API's form).
    pub fn parse(value: &Value) -> Result<PolicyDocument, PolicyError> {
        match value {
            Value::String(text) => {
                let text = decode_policy_text(text);
                let value: Value =
                    serde_json::from_str(&text).map_err(|e| error("", format!("policy document is not JSON: {e}")))?;
                PolicyDocument::parse_object(&value)
            }
            other => PolicyDocument::parse_object(other),
        }
    }

    fn parse_object(value: &Value) -> Result<PolicyDocument, PolicyError> {
        let Value::Object(map) = value else {
            return Err(error("", "policy document is not a JSON object"));
        };
        let statements = match map.get("Statement") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(single @ Value::Object(_)) => vec![single],
            Some(_) => return Err(error("Statement", "must be an object or an array of objects")),
        };
        let mut parsed = Vec::with_capacity(statements.len());
        for (i, statement) in statements.into_iter().enumerate() {
            parsed.push(parse_statement(statement, &format!("Statement[{i}]"))?);
        }
        Ok(PolicyDocument { statements: parsed })
    }

    /// Whether any statement is a Deny (cheap pre-check for evaluation).
    pub fn has_deny(&self) -> bool {
        self.statements.iter().any(|s| s.effect == Effect::Deny)
    }
}

/// Percent-decodes a policy text when it is URL-encoded (IAM's API form);
/// JSON text as the CLI prints it is returned unchanged.
pub fn decode_policy_text(text: &str) -> String {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return text.to_string();
    }
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

fn parse_statement(value: &Value, at: &str) -> Result<Statement, PolicyError> {
    let Value::Object(map) = value else {
        return Err(error(at, "statement is not an object"));
    };
    let effect = match map.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return Err(error(format!("{at}.Effect"), format!("`{other}` is neither Allow nor Deny"))),
        None => return Err(error(format!("{at}.Effect"), "missing")),
    };
    let actions = match (map.get("Action"), map.get("NotAction")) {
        (Some(v), None) => Patterns::Only(strings(v, &format!("{at}.Action"))?),
        (None, Some(v)) => Patterns::AllExcept(strings(v, &format!("{at}.NotAction"))?),
        (Some(_), Some(_)) => return Err(error(at, "has both Action and NotAction")),
        (None, None) => return Err(error(at, "has neither Action nor NotAction")),
    };
    let resources = match (map.get("Resource"), map.get("NotResource")) {
        (Some(v), None) => Patterns::Only(strings(v, &format!("{at}.Resource"))?),
        (None, Some(v)) => Patterns::AllExcept(strings(v, &format!("{at}.NotResource"))?),
        (Some(_), Some(_)) => return Err(error(at, "has both Resource and NotResource")),
        (None, None) => Patterns::Only(vec!["*".to_string()]),
    };
    let principals = match (map.get("Principal"), map.get("NotPrincipal")) {
        (Some(v), None) => Some(Principals::Only(principals(v, &format!("{at}.Principal"))?)),
        (None, Some(v)) => Some(Principals::AllExcept(principals(v, &format!("{at}.NotPrincipal"))?)),
        (Some(_), Some(_)) => return Err(error(at, "has both Principal and NotPrincipal")),
        (None, None) => None,
    };
    let conditional = match map.get("Condition") {
        None | Some(Value::Null) => false,
        Some(Value::Object(c)) => !c.is_empty(),
        Some(_) => return Err(error(format!("{at}.Condition"), "must be an object")),
    };
    let sid = map.get("Sid").and_then(Value::as_str).map(str::to_string);
    Ok(Statement { sid, effect, actions, resources, principals, conditional })
}

fn strings(value: &Value, at: &str) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(error(format!("{at}[{i}]"), "must be a string")),
            })
            .collect(),
        _ => Err(error(at, "must be a string or an array of strings")),
    }
}

fn principals(value: &Value, at: &str) -> Result<Vec<Principal>, PolicyError> {
    match value {
        Value::String(s) if s == "*" => Ok(vec![Principal::Any]),
        Value::String(s) => Err(error(at, format!("`{s}`: a principal is `*` or an object"))),
        Value::Object(map) => {
            let mut out = Vec::new();
            for (kind, values) in map {
                for item in strings(values, &format!("{at}.{kind}"))? {
                    out.push(match kind.as_str() {
                        "AWS" if item == "*" => Principal::Any,
                        "AWS" => Principal::Aws(item),
                        "Service" => Principal::Service(item),
                        "Federated" => Principal::Federated(item),
                        "CanonicalUser" => Principal::CanonicalUser(item),
                        other => return Err(error(format!("{at}.{other}"), "unknown principal type")),
                    });
                }
            }
            Ok(out)
        }
        _ => Err(error(at, "must be `*` or an object")),
    }
}

// ---------------------------------------------------------------------------
// Glob patterns (`*` any run, `?` one character).

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    Star,
    One,
    Lit(char),
}

fn tokens(pattern: &str, fold: bool) -> Vec<Tok> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c if fold => Tok::Lit(c.to_ascii_lowercase()),
            c => Tok::Lit(c),
        })
        .collect()
}

fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// The part before the first wildcard.
fn literal_prefix(pattern: &str) -> &str {
    pattern.find(['*', '?']).map_or(pattern, |at| &pattern[..at])
}

fn same(a: &str, b: &str, fold: bool) -> bool {
    if fold { a.eq_ignore_ascii_case(b) } else { a == b }
}

fn starts_with(text: &str, prefix: &str, fold: bool) -> bool {
    text.len() >= prefix.len() && text.is_char_boundary(prefix.len()) && same(&text[..prefix.len()], prefix, fold)
}

/// Whether `text` matches the glob `pattern`.
pub fn glob_match(pattern: &str, text: &str, fold: bool) -> bool {
    if pattern == "*" {
        return true;
    }
    if pattern.is_ascii() && text.is_ascii() {
        return ascii_match(pattern.as_bytes(), text.as_bytes(), fold);
    }
    let p = tokens(pattern, fold);
    let t: Vec<char> =
        if fold { text.chars().map(|c| c.to_ascii_lowercase()).collect() } else { text.chars().collect() };
    // Iterative matcher with single backtrack point (linear-ish).
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(Tok::Star) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(Tok::One) => {
                pi += 1;
                ti += 1;
            }
            Some(Tok::Lit(c)) if *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|tok| *tok == Tok::Star)
}

/// [`glob_match`] without allocation, for ASCII (nearly every IAM string).
fn ascii_match(p: &[u8], t: &[u8], fold: bool) -> bool {
    let eq = |a: u8, b: u8| if fold { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(b'?') => {
                pi += 1;
                ti += 1;
            }
            Some(&c) if eq(c, t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether every text `narrow` matches is matched by `wide`.
pub fn glob_covers(wide: &str, narrow: &str, fold: bool) -> bool {
    if wide == "*" {
        return true;
    }
    // Quick answers before the general algorithm: a literal covers only
    // itself, and every text `narrow` matches starts with its literal
    // prefix, which must then start with `wide`'s.
    if !has_wildcard(wide) {
        return !has_wildcard(narrow) && same(wide, narrow, fold);
    }
    if !starts_with(literal_prefix(narrow), literal_prefix(wide), fold) {
        return false;
    }
    let p = tokens(wide, fold);
    let q = tokens(narrow, fold);
    // dp[i][j]: p[i..] covers q[j..].
    let mut dp = vec![vec![false; q.len() + 1]; p.len() + 1];
    dp[p.len()][q.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=q.len()).rev() {
            dp[i][j] = match p[i] {
                // A star absorbs nothing more, or the next token of q (any kind).
                Tok::Star => dp[i + 1][j] || (j < q.len() && dp[i][j + 1]),
                // `?` takes exactly one character: a literal or a `?` of q.
                Tok::One => j < q.len() && matches!(q[j], Tok::One | Tok::Lit(_)) && dp[i + 1][j + 1],
                Tok::Lit(c) => j < q.len() && q[j] == Tok::Lit(c) && dp[i + 1][j + 1],
            };
        }
    }
    dp[0][0]
}

/// Whether some text matches both globs.
pub fn glob_overlaps(a: &str, b: &str, fold: bool) -> bool {
    if a == "*" || b == "*" {
        return true;
    }
    // Quick rejection: literal prefixes that disagree (`s3:…` and `ec2:…`).
    let (pa, pb) = (literal_prefix(a), literal_prefix(b));
    if !(starts_with(pa, pb, fold) || starts_with(pb, pa, fold)) {
        return false;
    }
    if !has_wildcard(a) && !has_wildcard(b) {
        return same(a, b, fold);
    }
    let p = tokens(a, fold);
    let q = tokens(b, fold);
    let mut dp = vec![vec![false; q.len() + 1]; p.len() + 1];
    dp[p.len()][q.len()] = true;
    for i in (0..=p.len()).rev() {
        for j in (0..=q.len()).rev() {
            if i == p.len() && j == q.len() {
                continue;
            }
            let pi = p.get(i).copied();
            let qj = q.get(j).copied();
            dp[i][j] = match (pi, qj) {
                (Some(Tok::Star), _) if dp[i + 1][j] => true,
                (_, Some(Tok::Star)) if dp[i][j + 1] => true,
                (Some(Tok::Star), Some(_)) => dp[i][j + 1],
                (Some(_), Some(Tok::Star)) => dp[i + 1][j],
                (Some(Tok::Lit(x)), Some(Tok::Lit(y))) => x == y && dp[i + 1][j + 1],
                (Some(_), Some(_)) => dp[i + 1][j + 1],
                _ => false,
            };
        }
    }
    dp[0][0]
}

// ---------------------------------------------------------------------------
// Pattern sets.

/// One side of a grant: a pattern, or "everything except".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// A glob.
    Glob(String),
    /// Anything matching none of these globs (`NotAction`/`NotResource`).
    AllExcept(Vec<String>),
}

impl Pattern {
    /// The text shown in the graph: the glob, or `* except a, b`.
    pub fn text(&self) -> String {
        match self {
            Pattern::Glob(glob) => glob.clone(),
            Pattern::AllExcept(except) => format!("* except {}", except.join(", ")),
        }
    }

    /// Whether the pattern is (or covers) everything.
    pub fn is_everything(&self, fold: bool) -> bool {
        matches!(self, Pattern::Glob(glob) if glob_covers(glob, "*", fold))
    }
}

impl Patterns {
    fn matches(&self, text: &str, fold: bool) -> bool {
        match self {
            Patterns::Only(globs) => globs.iter().any(|g| glob_match(g, text, fold)),
            Patterns::AllExcept(globs) => !globs.iter().any(|g| glob_match(g, text, fold)),
        }
    }

    /// The grant-side patterns of this set (one per glob, or one "except").
    fn split(&self) -> Vec<Pattern> {
        match self {
            Patterns::Only(globs) => globs.iter().map(|g| Pattern::Glob(g.clone())).collect(),
            Patterns::AllExcept(globs) => {
                let mut except = globs.clone();
                except.sort();
                except.dedup();
                vec![Pattern::AllExcept(except)]
            }
        }
    }

    /// Whether every text `target` matches is in this set.
    fn covers(&self, target: &Pattern, fold: bool) -> bool {
        match (self, target) {
            (Patterns::Only(globs), Pattern::Glob(q)) => globs.iter().any(|g| glob_covers(g, q, fold)),
            (Patterns::Only(globs), Pattern::AllExcept(_)) => globs.iter().any(|g| glob_covers(g, "*", fold)),
            (Patterns::AllExcept(except), Pattern::Glob(q)) => !except.iter().any(|n| glob_overlaps(n, q, fold)),
            (Patterns::AllExcept(except), Pattern::AllExcept(xs)) => {
                except.iter().all(|n| xs.iter().any(|x| glob_covers(x, n, fold)))
            }
        }
    }

    /// Whether some text `target` matches is in this set.
    fn overlaps(&self, target: &Pattern, fold: bool) -> bool {
        match (self, target) {
            (Patterns::Only(globs), Pattern::Glob(q)) => globs.iter().any(|g| glob_overlaps(g, q, fold)),
            (Patterns::Only(globs), Pattern::AllExcept(xs)) => {
                globs.iter().any(|g| !xs.iter().any(|x| glob_covers(x, g, fold)))
            }
            (Patterns::AllExcept(except), Pattern::Glob(q)) => !except.iter().any(|n| glob_covers(n, q, fold)),
            (Patterns::AllExcept(_), Pattern::AllExcept(_)) => true,
        }
    }
}

// ---------------------------------------------------------------------------
// Evaluation of one request.

/// The outcome of evaluating one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; `conditional` when a `Condition` (on the Allow, a Deny or the
    /// boundary) decides at request time.
    Allowed {
        /// Whether conditions decide.
        conditional: bool,
    },
    /// An unconditional explicit Deny.
    Denied,
    /// No Allow (or the boundary does not allow): implicit deny.
    NotAllowed,
}

impl Decision {
    /// Allowed, conditionally or not.
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

/// How Deny statements bear on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyState {
    /// No Deny matches.
    None,
    /// Only Deny statements with conditions match.
    Conditional,
    /// An unconditional Deny matches.
    Denied,
}

impl Statement {
    /// Whether the statement's `Action`/`NotAction` matches a concrete action.
    pub fn actions_match(&self, action: &str) -> bool {
        self.actions.matches(action, true)
    }
}

fn statement_applies(statement: &Statement, action: &str, resource: &str) -> bool {
    statement.actions.matches(action, true) && statement.resources.matches(resource, false)
}

/// How the Deny statements of `policies` (and of the boundary) bear on one request.
pub fn deny_state(
    policies: &[&PolicyDocument],
    boundary: Option<&PolicyDocument>,
    action: &str,
    resource: &str,
) -> DenyState {
    let mut state = DenyState::None;
    for statement in policies.iter().copied().chain(boundary).flat_map(|p| &p.statements) {
        if statement.effect == Effect::Deny && statement_applies(statement, action, resource) {
            if !statement.conditional {
                return DenyState::Denied;
            }
            state = DenyState::Conditional;
        }
    }
    state
}

/// Whether the Allow statements of `policies` allow a request: `None` when
/// none does, `Some(conditional)` otherwise (unconditional wins).
pub fn allow_state(policies: &[&PolicyDocument], action: &str, resource: &str) -> Option<bool> {
    let mut found: Option<bool> = None;
    for statement in policies.iter().flat_map(|p| &p.statements) {
        if statement.effect == Effect::Allow && statement_applies(statement, action, resource) {
            if !statement.conditional {
                return Some(false);
            }
            found = Some(true);
        }
    }
    found
}

/// Evaluates one request against a principal's identity policies and
/// permissions boundary (AWS's order: explicit Deny, then Allow in the
/// identity policies, then Allow in the boundary).
pub fn decide(
    policies: &[&PolicyDocument],
    boundary: Option<&PolicyDocument>,
    action: &str,
    resource: &str,
) -> Decision {
    let deny = deny_state(policies, boundary, action, resource);
    if deny == DenyState::Denied {
        return Decision::Denied;
    }
    let Some(mut conditional) = allow_state(policies, action, resource) else {
        return Decision::NotAllowed;
    };
    if let Some(boundary) = boundary {
        match allow_state(&[boundary], action, resource) {
            None => return Decision::NotAllowed,
            Some(c) => conditional |= c,
        }
    }
    Decision::Allowed { conditional: conditional || deny == DenyState::Conditional }
}

// ---------------------------------------------------------------------------
// Evaluation of patterns.

/// One allowed (action pattern, resource pattern).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The action side.
    pub action: Pattern,
    /// The resource side.
    pub resource: Pattern,
    /// Conditions, a partial Deny or a partial boundary narrow it.
    pub conditional: bool,
}

/// What the policies allow, as patterns, after explicit Denies and the
/// permissions boundary. Unique by (action, resource); an unconditional
/// grant wins over a conditional one of the same patterns. Sorted.
pub fn effective_grants(policies: &[&PolicyDocument], boundary: Option<&PolicyDocument>) -> Vec<Grant> {
    let denies: Vec<&Statement> = policies
        .iter()
        .copied()
        .chain(boundary)
        .flat_map(|p| &p.statements)
        .filter(|s| s.effect == Effect::Deny)
        .collect();
    let boundary_allows: Option<Vec<&Statement>> =
        boundary.map(|b| b.statements.iter().filter(|s| s.effect == Effect::Allow).collect());
    let mut out: BTreeMap<(Pattern, Pattern), bool> = BTreeMap::new();
    for statement in policies.iter().flat_map(|p| &p.statements) {
        if statement.effect != Effect::Allow {
            continue;
        }
        for action in statement.actions.split() {
            'resources: for resource in statement.resources.split() {
                let mut conditional = statement.conditional;
                for deny in &denies {
                    let covers = deny.actions.covers(&action, true) && deny.resources.covers(&resource, false);
                    if covers && !deny.conditional {
                        continue 'resources;
                    }
                    if deny.actions.overlaps(&action, true) && deny.resources.overlaps(&resource, false) {
                        conditional = true;
                    }
                }
                if let Some(allows) = &boundary_allows {
                    let mut best: Option<bool> = None; // Some(conditional)
                    for allow in allows {
                        if allow.actions.covers(&action, true) && allow.resources.covers(&resource, false) {
                            best = Some(best.unwrap_or(true) && allow.conditional);
                        } else if allow.actions.overlaps(&action, true) && allow.resources.overlaps(&resource, false) {
                            best = Some(best.unwrap_or(true));
                        }
                    }
                    match best {
                        None => continue 'resources,
                        Some(c) => conditional |= c,
                    }
                }
                let entry = out.entry((action.clone(), resource)).or_insert(conditional);
                *entry &= conditional;
            }
        }
    }
    out.into_iter().map(|((action, resource), conditional)| Grant { action, resource, conditional }).collect()
}

/// Whether grants make their holder an administrator: `*` or `iam:*` on
/// every resource. `Some(conditional)` when they do.
pub fn admin_level(grants: &[Grant]) -> Option<bool> {
    let mut level: Option<bool> = None;
    for grant in grants {
        let Pattern::Glob(action) = &grant.action else { continue };
        if grant.resource.is_everything(false) && glob_covers(action, "iam:*", true) {
            if !grant.conditional {
                return Some(false);
            }
            level = Some(true);
        }
    }
    level
}

/// The actions of STS that assume a role.
pub const ASSUME_ACTIONS: [&str; 3] = ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML"];

/// Whether a (trust) statement is about assuming the role.
pub fn is_assume_statement(statement: &Statement) -> bool {
    ASSUME_ACTIONS.iter().any(|action| statement.actions.matches(action, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(value: Value) -> PolicyDocument {
        PolicyDocument::parse(&value).expect("valid policy")
    }

    #[test]
    fn globs_match_cover_and_overlap() {
        let cases = [
            // pattern, text, fold, match
            ("s3:Get*", "s3:GetObject", true, true),
            ("s3:get*", "S3:GetObject", true, true),
            ("s3:Get*", "s3:PutObject", true, false),
            ("arn:aws:s3:::a/*", "arn:aws:s3:::a/x/y", false, true),
            ("arn:aws:s3:::A/*", "arn:aws:s3:::a/x", false, false),
            ("s3:?etObject", "s3:GetObject", true, true),
            ("*", "", true, true),
            ("a*b*c", "aXbYbZc", false, true),
            ("a*b*c", "aXbYbZ", false, false),
            ("arn:aws:s3:::caf\u{e9}/*", "arn:aws:s3:::caf\u{e9}/x", false, true),
            ("arn:aws:s3:::caf?/*", "arn:aws:s3:::caf\u{e9}/x", false, true),
            ("arn:aws:s3:::caf?/*", "arn:aws:s3:::cafe\u{e9}/x", false, false),
        ];
        for (pattern, text, fold, expected) in cases {
            assert_eq!(glob_match(pattern, text, fold), expected, "{pattern} ~ {text}");
        }
        let covers = [
            ("s3:*", "s3:Get*", true),
            ("s3:Get*", "s3:*", false),
            ("*", "anything*", true),
            ("s3:?et*", "s3:Get*", true),
            ("a?", "a*", false),
            ("*Object", "s3:*Object", true),
            ("arn:aws:s3:::b/*", "arn:aws:s3:::b/secret/*", true),
            ("arn:aws:s3:::b/secret/*", "arn:aws:s3:::b/*", false),
            ("iam:*", "iam:PassRole", true),
        ];
        for (wide, narrow, expected) in covers {
            assert_eq!(glob_covers(wide, narrow, true), expected, "{wide} covers {narrow}");
        }
        let overlaps = [
            ("s3:Get*", "s3:*Object", true),
            ("s3:Get*", "s3:Put*", false),
            ("a*", "*b", true),
            ("arn:aws:s3:::x/*", "arn:aws:s3:::y/*", false),
            ("?", "ab", false),
            ("*", "x", true),
        ];
        for (a, b, expected) in overlaps {
            assert_eq!(glob_overlaps(a, b, true), expected, "{a} overlaps {b}");
            assert_eq!(glob_overlaps(b, a, true), expected, "{b} overlaps {a}");
        }
    }

    #[test]
    fn url_encoded_and_plain_documents_parse_alike() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Aacme-reports%2F%2A%22%7D%5D%7D";
        let plain = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::acme-reports/*"}]});
        assert_eq!(doc(Value::String(encoded.into())), doc(plain.clone()));
        assert_eq!(doc(Value::String(plain.to_string())), doc(plain));
    }

    #[test]
    fn malformed_documents_name_the_statement() {
        let bad = [
            (json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]}), "Statement[0]"),
            (json!({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}), "Statement[0].Effect"),
            (json!({"Statement": [{"Effect": "Allow", "Action": [1], "Resource": "*"}]}), "Statement[0].Action[0]"),
            (json!({"Statement": "x"}), "Statement"),
            (json!([1]), ""),
        ];
        for (value, location) in bad {
            let err = PolicyDocument::parse(&value).expect_err("invalid");
            assert_eq!(err.location, location, "{value}");
        }
        assert!(PolicyDocument::parse(&Value::String("%7Bnot json".into())).is_err());
    }

    /// The table of AWS evaluation semantics for single requests.
    #[test]
    fn decide_follows_aws_evaluation_logic() {
        let allow_s3 = doc(json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}));
        let deny_delete = doc(json!({"Statement": {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}}));
        let deny_without_mfa = doc(json!({"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}}));
        let not_action =
            doc(json!({"Statement": {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}}));
        let not_resource = doc(json!({"Statement": {"Effect": "Allow", "Action": "s3:*",
            "NotResource": "arn:aws:s3:::secret/*"}}));
        let conditional_allow = doc(json!({"Statement": {"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}}}));
        let boundary_s3_read =
            doc(json!({"Statement": {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}}));
        let allowed = Decision::Allowed { conditional: false };
        let conditional = Decision::Allowed { conditional: true };
        let b = "arn:aws:s3:::reports/q1.csv";
        type Case<'a> = (&'a str, Vec<&'a PolicyDocument>, Option<&'a PolicyDocument>, &'a str, &'a str, Decision);
        let cases: Vec<Case<'_>> = vec![
            ("allow matches", vec![&allow_s3], None, "s3:GetObject", b, allowed),
            ("action case-insensitive", vec![&allow_s3], None, "S3:getobject", b, allowed),
            ("no allow is implicit deny", vec![&allow_s3], None, "ec2:RunInstances", "*", Decision::NotAllowed),
            ("no policies", vec![], None, "s3:GetObject", b, Decision::NotAllowed),
            (
                "explicit deny wins",
                vec![&allow_s3, &deny_delete],
                None,
                "s3:DeleteBucket",
                "arn:aws:s3:::reports",
                Decision::Denied,
            ),
            ("deny elsewhere keeps allow", vec![&allow_s3, &deny_delete], None, "s3:GetObject", b, allowed),
            (
                "conditional deny makes allow conditional",
                vec![&allow_s3, &deny_without_mfa],
                None,
                "s3:GetObject",
                b,
                conditional,
            ),
            ("NotAction allows the rest", vec![&not_action], None, "s3:GetObject", b, allowed),
            ("NotAction excludes", vec![&not_action], None, "iam:CreateUser", "*", Decision::NotAllowed),
            ("NotResource allows the rest", vec![&not_resource], None, "s3:GetObject", b, allowed),
            (
                "NotResource excludes",
                vec![&not_resource],
                None,
                "s3:GetObject",
                "arn:aws:s3:::secret/k",
                Decision::NotAllowed,
            ),
            ("condition recorded", vec![&conditional_allow], None, "ec2:RunInstances", "*", conditional),
            ("boundary allows", vec![&allow_s3], Some(&boundary_s3_read), "s3:GetObject", b, allowed),
            ("boundary limits", vec![&allow_s3], Some(&boundary_s3_read), "s3:PutObject", b, Decision::NotAllowed),
            ("boundary alone grants nothing", vec![], Some(&boundary_s3_read), "s3:GetObject", b, Decision::NotAllowed),
            ("deny in boundary", vec![&allow_s3], Some(&deny_delete), "s3:DeleteBucket", "x", Decision::Denied),
        ];
        for (name, policies, boundary, action, resource, expected) in cases {
            assert_eq!(decide(&policies, boundary, action, resource), expected, "{name}");
        }
    }

    fn grant(action: &str, resource: &str, conditional: bool) -> Grant {
        Grant { action: Pattern::Glob(action.into()), resource: Pattern::Glob(resource.into()), conditional }
    }

    /// The table of pattern-level semantics: what the graph's grant edges hold.
    #[test]
    fn effective_grants_apply_denies_boundaries_and_conditions() {
        let admin = doc(json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}));
        let s3_bucket = doc(json!({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"]}]}));
        let deny_b = doc(json!({"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}}));
        let deny_put_conditional = doc(json!({"Statement": {"Effect": "Deny", "Action": "s3:Put*", "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}}));
        let deny_iam = doc(json!({"Statement": {"Effect": "Deny", "Action": "iam:*", "Resource": "*"}}));
        let deny_all_but_s3 = doc(json!({"Statement": {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}}));
        let boundary_a =
            doc(json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::a/*"}}));
        let boundary_two = doc(json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::a/*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a/x*"}]}));
        let power_user =
            doc(json!({"Statement": {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}}));
        let conditional = doc(json!({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}}));
        let unconditional = doc(json!({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}}));

        type Case<'a> = (&'a str, Vec<&'a PolicyDocument>, Option<&'a PolicyDocument>, Vec<Grant>);
        let cases: Vec<Case<'_>> = vec![
            (
                "allow as written",
                vec![&s3_bucket],
                None,
                vec![
                    grant("s3:GetObject", "arn:aws:s3:::a/*", false),
                    grant("s3:GetObject", "arn:aws:s3:::b/*", false),
                    grant("s3:PutObject", "arn:aws:s3:::a/*", false),
                    grant("s3:PutObject", "arn:aws:s3:::b/*", false),
                ],
            ),
            (
                "a covering deny removes the pair",
                vec![&s3_bucket, &deny_b],
                None,
                vec![
                    grant("s3:GetObject", "arn:aws:s3:::a/*", false),
                    grant("s3:PutObject", "arn:aws:s3:::a/*", false),
                ],
            ),
            (
                "a conditional deny marks overlaps",
                vec![&s3_bucket, &deny_put_conditional],
                None,
                vec![
                    grant("s3:GetObject", "arn:aws:s3:::a/*", false),
                    grant("s3:GetObject", "arn:aws:s3:::b/*", false),
                    grant("s3:PutObject", "arn:aws:s3:::a/*", true),
                    grant("s3:PutObject", "arn:aws:s3:::b/*", true),
                ],
            ),
            ("a partial deny marks the wider allow", vec![&admin, &deny_iam], None, vec![grant("*", "*", true)]),
            (
                "NotAction deny removes all but s3",
                vec![&s3_bucket, &admin, &deny_all_but_s3],
                None,
                vec![
                    grant("*", "*", true),
                    grant("s3:GetObject", "arn:aws:s3:::a/*", false),
                    grant("s3:GetObject", "arn:aws:s3:::b/*", false),
                    grant("s3:PutObject", "arn:aws:s3:::a/*", false),
                    grant("s3:PutObject", "arn:aws:s3:::b/*", false),
                ],
            ),
            (
                "boundary keeps the covered, drops the disjoint",
                vec![&s3_bucket],
                Some(&boundary_a),
                vec![
                    grant("s3:GetObject", "arn:aws:s3:::a/*", false),
                    grant("s3:PutObject", "arn:aws:s3:::a/*", false),
                ],
            ),
            ("boundary narrows admin", vec![&admin], Some(&boundary_a), vec![grant("*", "*", true)]),
            (
                "a covering boundary statement wins over a partial one",
                vec![&s3_bucket],
                Some(&boundary_two),
                vec![
                    grant("s3:GetObject", "arn:aws:s3:::a/*", false),
                    grant("s3:PutObject", "arn:aws:s3:::a/*", false),
                ],
            ),
            ("condition recorded", vec![&conditional], None, vec![grant("sts:AssumeRole", "*", true)]),
            (
                "unconditional wins over conditional duplicate",
                vec![&conditional, &unconditional],
                None,
                vec![grant("sts:AssumeRole", "*", false)],
            ),
        ];
        for (name, policies, boundary, expected) in cases {
            assert_eq!(effective_grants(&policies, boundary), expected, "{name}");
        }
        let power = effective_grants(&[&power_user], None);
        assert_eq!(power.len(), 1);
        assert_eq!(power[0].action.text(), "* except iam:*, organizations:*");
        assert_eq!(admin_level(&power), None, "PowerUser is not admin");
        assert_eq!(admin_level(&effective_grants(&[&admin], None)), Some(false));
        assert_eq!(admin_level(&effective_grants(&[&admin, &deny_iam], None)), Some(true));
        let iam_full = doc(json!({"Statement": {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}}));
        assert_eq!(admin_level(&effective_grants(&[&iam_full], None)), Some(false));
        assert_eq!(admin_level(&effective_grants(&[&s3_bucket], None)), None);
    }

    #[test]
    fn trust_principals_parse() {
        let trust = doc(json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:root", "*"]}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
             "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*"}}},
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
        ]}));
        let s = &trust.statements;
        assert_eq!(
            s[0].principals,
            Some(Principals::Only(vec![Principal::Aws("arn:aws:iam::111122223333:root".into()), Principal::Any]))
        );
        assert!(s[1].conditional && is_assume_statement(&s[1]));
        assert_eq!(s[2].principals, Some(Principals::Only(vec![Principal::Service("ec2.amazonaws.com".into())])));
        assert!(!is_assume_statement(&s[3]));
        assert_eq!(s[0].resources, Patterns::Only(vec!["*".into()]));
    }
}
