//! What a ticket says, once for every ticket system.
//!
//! A ticket is rendered into a small document model ([`Doc`]) and then into
//! the target's format: Markdown for GitHub ([`Doc::to_markdown`]), Atlassian
//! Document Format for Jira ([`Doc::to_adf`]). Every piece of text that came
//! from a remote system (names, titles, node ids) goes through [`neutral`]
//! first: `@mentions` and `#123` references are broken with a zero-width
//! joiner so a ticket never pings people or cross-links issues, newlines are
//! flattened so text cannot start a new block, and anything shaped like a
//! token is redacted. The Markdown writer then escapes every character that
//! could start markup or HTML; ADF text nodes are literal by construction.

use super::TicketEvent;
use super::context::NodeFacts;
use accessgraph_graph::Finding;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// Longest title we send (GitHub allows 256, Jira 255).
const MAX_TITLE_CHARS: usize = 240;
/// Evidence paths listed in full; the rest are counted.
const MAX_PATHS: usize = 20;
/// GitHub rejects labels longer than 50 characters.
const MAX_LABEL_CHARS: usize = 50;
/// Zero-width joiner: invisible, but breaks `@name` and `#12` autolinks.
const ZWJ: char = '\u{200D}';

/// Inline text of a [`Doc`].
#[derive(Clone, Debug, PartialEq)]
pub enum Inline {
    /// Plain text.
    Text(String),
    /// Bold text.
    Strong(String),
    /// Monospace text (node ids, rule ids).
    Code(String),
    /// A link.
    Link {
        /// Link text.
        text: String,
        /// Target (our own URL, built from config).
        url: String,
    },
}

/// A block of a [`Doc`].
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A section heading.
    Heading(String),
    /// A paragraph.
    Paragraph(Vec<Inline>),
    /// A bullet list, one item per entry.
    Bullets(Vec<Vec<Inline>>),
    /// A machine marker (fingerprint, event id): hidden in Markdown, small
    /// print in Jira. Only ever our own ASCII.
    Marker(String),
}

/// A ticket body or comment, independent of the target format.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Doc {
    /// The blocks, in order.
    pub blocks: Vec<Block>,
}

fn text(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

fn strong(s: impl Into<String>) -> Inline {
    Inline::Strong(s.into())
}

fn code(s: impl Into<String>) -> Inline {
    Inline::Code(s.into())
}

impl Doc {
    fn heading(&mut self, title: &str) {
        self.blocks.push(Block::Heading(title.to_string()));
    }

    fn paragraph(&mut self, inlines: Vec<Inline>) {
        self.blocks.push(Block::Paragraph(inlines));
    }

    /// All text of the document, unformatted (tests, search for markers).
    pub fn plain_text(&self) -> String {
        let mut out = String::new();
        let inline_text = |inlines: &[Inline], out: &mut String| {
            for inline in inlines {
                match inline {
                    Inline::Text(t) | Inline::Strong(t) | Inline::Code(t) => out.push_str(t),
                    Inline::Link { text, url } => {
                        out.push_str(text);
                        out.push(' ');
                        out.push_str(url);
                    }
                }
            }
        };
        for block in &self.blocks {
            match block {
                Block::Heading(t) | Block::Marker(t) => out.push_str(t),
                Block::Paragraph(inlines) => inline_text(inlines, &mut out),
                Block::Bullets(items) => {
                    for item in items {
                        inline_text(item, &mut out);
                        out.push('\n');
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// GitHub-flavoured Markdown, every remote string neutralised and escaped.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        for block in &self.blocks {
            match block {
                Block::Heading(t) => {
                    out.push_str("### ");
                    out.push_str(&md_escape(&neutral(t)));
                }
                Block::Paragraph(inlines) => out.push_str(&md_inlines(inlines)),
                Block::Bullets(items) => {
                    let lines: Vec<String> = items.iter().map(|item| format!("- {}", md_inlines(item))).collect();
                    out.push_str(&lines.join("\n"));
                }
                Block::Marker(t) => {
                    // `--` would end the HTML comment early.
                    out.push_str(&format!("<!-- {} -->", t.replace("--", "- -")));
                }
            }
            out.push_str("\n\n");
        }
        out.trim_end().to_string()
    }

    /// An Atlassian Document Format `doc` node.
    pub fn to_adf(&self) -> Value {
        let mut content = Vec::new();
        for block in &self.blocks {
            match block {
                Block::Heading(t) => {
                    let t = neutral(t);
                    if !t.is_empty() {
                        content.push(json!({"type": "heading", "attrs": {"level": 3},
                            "content": [{"type": "text", "text": t}]}));
                    }
                }
                Block::Paragraph(inlines) => {
                    let nodes = adf_inlines(inlines);
                    if !nodes.is_empty() {
                        content.push(json!({"type": "paragraph", "content": nodes}));
                    }
                }
                Block::Bullets(items) => {
                    let items: Vec<Value> = items
                        .iter()
                        .map(|item| adf_inlines(item))
                        .filter(|nodes| !nodes.is_empty())
                        .map(|nodes| json!({"type": "listItem", "content": [{"type": "paragraph", "content": nodes}]}))
                        .collect();
                    if !items.is_empty() {
                        content.push(json!({"type": "bulletList", "content": items}));
                    }
                }
                Block::Marker(t) => content.push(json!({"type": "paragraph", "content": [
                    {"type": "text", "text": t, "marks": [{"type": "subsup", "attrs": {"type": "sub"}}]}]})),
            }
        }
        json!({"type": "doc", "version": 1, "content": content})
    }
}

fn md_inlines(inlines: &[Inline]) -> String {
    let mut out = String::new();
    for inline in inlines {
        match inline {
            Inline::Text(t) => out.push_str(&md_escape(&neutral(t))),
            Inline::Strong(t) => {
                let t = md_escape(&neutral(t));
                if !t.is_empty() {
                    out.push_str(&format!("**{t}**"));
                }
            }
            Inline::Code(t) => out.push_str(&md_code(&neutral(t))),
            Inline::Link { text, url } => {
                out.push_str(&format!("[{}]({})", md_escape(&neutral(text)), md_url(url)));
            }
        }
    }
    out
}

fn adf_inlines(inlines: &[Inline]) -> Vec<Value> {
    let mut out = Vec::new();
    for inline in inlines {
        let (t, marks) = match inline {
            Inline::Text(t) => (neutral(t), None),
            Inline::Strong(t) => (neutral(t), Some(json!([{"type": "strong"}]))),
            Inline::Code(t) => (neutral(t), Some(json!([{"type": "code"}]))),
            Inline::Link { text, url } => {
                (neutral(text), Some(json!([{"type": "link", "attrs": {"href": safe_url(url).unwrap_or_default()}}])))
            }
        };
        // ADF rejects empty text nodes.
        if t.is_empty() {
            continue;
        }
        let mut node = json!({"type": "text", "text": t});
        if let Some(marks) = marks {
            node["marks"] = marks;
        }
        out.push(node);
    }
    out
}

/// Makes remote text harmless in any ticket system: redacts token-shaped
/// words, breaks `@mentions` and `#123` references with a zero-width joiner,
/// defangs URLs (a joiner after `https:` and `www.`) so no tracker turns a
/// remote name into a link, and turns newlines and other control characters
/// into spaces.
pub fn neutral(input: &str) -> String {
    let scrubbed = scrub_secrets(input);
    let mut out = String::with_capacity(scrubbed.len());
    let mut chars = scrubbed.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_control() {
            out.push(' ');
            continue;
        }
        out.push(c);
        let breaks_reference =
            (c == '@' || c == '#') && chars.peek().is_some_and(|next| next.is_alphanumeric() || *next == '_');
        let breaks_url = c == ':' && chars.peek() == Some(&'/');
        let breaks_www = c == '.' && out[..out.len() - 1].to_ascii_lowercase().ends_with("www");
        if breaks_reference || breaks_url || breaks_www {
            out.push(ZWJ);
        }
    }
    out
}

/// Prefixes of credentials that must never reach a ticket, whatever a
/// remote system put in a name or description.
const SECRET_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "sk-",
    "sk_live_",
    "rk_live_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "glpat-",
    "AIza",
    "ASIA",
];

/// Replaces token-shaped words (a known credential prefix followed by at
/// least 16 more characters) and PEM private keys with `[redacted]`.
pub fn scrub_secrets(input: &str) -> String {
    let mut input = input.to_string();
    if let Some(start) = input.find("-----BEGIN") {
        input.truncate(start);
        input.push_str("[redacted]");
    }
    let mut out = String::with_capacity(input.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let secret = SECRET_PREFIXES.iter().any(|prefix| word.starts_with(prefix) && word.len() >= prefix.len() + 16);
        if secret {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in input.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Escapes every character that can start Markdown or HTML.
fn md_escape(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 8);
    for c in input.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.' | '!' | '|' | '~'
            | '"' | '\'' | ':' | '=' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A code span that cannot be closed early: the fence is one backtick
/// longer than the longest run inside.
fn md_code(input: &str) -> String {
    if input.is_empty() {
        return String::new();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in input.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if input.starts_with('`') || input.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{input}{pad}{fence}")
}

/// Only http(s) URLs, with characters that could end a Markdown link
/// destination percent-encoded.
fn safe_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    Some(parsed.as_str().replace('(', "%28").replace(')', "%29").replace(' ', "%20"))
}

fn md_url(url: &str) -> String {
    safe_url(url).unwrap_or_else(|| "#".to_string())
}

/// The label that marks a sink's ticket for one finding: the idempotency key
/// searched before every create. Fits GitHub's 50-character limit.
pub fn fingerprint_label(fingerprint: &str) -> String {
    let mut label = format!("accessgraph:{fingerprint}");
    label.truncate(MAX_LABEL_CHARS);
    label
}

/// The marker a comment carries, so a redelivery can see that it already
/// posted it.
pub fn event_marker(event: &TicketEvent) -> String {
    format!("accessgraph-event:{}:{}", event.fingerprint, event.event_id)
}

/// `[HIGH] secret.standing: title`, neutralised and cut to size.
pub fn title(finding: &Finding) -> String {
    let full =
        neutral(&format!("[{}] {}: {}", finding.severity.as_str().to_ascii_uppercase(), finding.rule, finding.title));
    match full.char_indices().nth(MAX_TITLE_CHARS) {
        Some((cut, _)) => format!("{}…", &full[..cut]),
        None => full,
    }
}

/// Facts the renderer uses besides the finding.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The subject node, when the store knows it.
    pub subject: Option<NodeFacts>,
    /// The object node, when the store knows it.
    pub object: Option<NodeFacts>,
    /// Base URL of the accessgraph API / reports, for links back.
    pub report_url: Option<String>,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Splits `SOURCE:KIND:KEY`; `person:EMAIL` is a person.
fn parse_id(id: &str) -> Option<(&str, &str, &str)> {
    if let Some(email) = id.strip_prefix("person:") {
        return Some(("", "person", email));
    }
    let (source, rest) = id.split_once(':')?;
    let (kind, key) = rest.split_once(':')?;
    Some((source, kind, key))
}

/// A node in words: `agent “PO bot” (netsuite:agent:po-bot) in netsuite`.
fn node_words(id: &str, facts: Option<&NodeFacts>) -> Vec<Inline> {
    let mut out = Vec::new();
    match (facts, parse_id(id)) {
        (Some(f), _) => {
            let kind = f.kind.replace('_', " ");
            out.push(text(format!("{kind} ")));
            out.push(strong(if f.name.is_empty() { id.to_string() } else { f.name.clone() }));
            out.push(text(" ("));
            out.push(code(id));
            out.push(text(")"));
            if !f.source.is_empty() {
                out.push(text(format!(" in {}", f.source)));
            }
        }
        (None, Some(("", "person", email))) => {
            out.push(text("person "));
            out.push(strong(email));
        }
        (None, Some((source, kind, key))) => {
            out.push(text(format!("{} ", kind.replace('_', " "))));
            out.push(code(key));
            out.push(text(format!(" in {source} (")));
            out.push(code(id));
            out.push(text(")"));
        }
        (None, None) => out.push(code(id)),
    }
    out
}

fn owner_words(facts: &Facts) -> Vec<Inline> {
    for node in [&facts.subject, &facts.object].into_iter().flatten() {
        if let Some(owner) = &node.owner {
            let mut out = vec![strong(if owner.name.is_empty() { owner.id.clone() } else { owner.name.clone() })];
            if let Some(email) = owner.email.as_deref().filter(|e| Some(*e) != Some(owner.name.as_str())) {
                out.push(text(format!(" <{email}>")));
            }
            out.push(text(" ("));
            out.push(code(&owner.id));
            out.push(text(")"));
            return out;
        }
        if let Some(reference) = &node.owner_reference {
            return vec![code(reference), text(" (named as owner, but unknown to every identity source)")];
        }
    }
    vec![text("none recorded")]
}

fn family(rule: &str) -> &str {
    rule.split('.').next().unwrap_or(rule)
}

/// Why a finding of this rule matters, for the people working the queue.
pub fn why_it_matters(rule: &str) -> &'static str {
    match rule {
        "drift.policy" => {
            "This access exists but the declared policy does not permit it. Access nobody declared is access nobody reviews: it is how privilege quietly accumulates and how an incident reaches further than expected."
        }
        "drift.baseline" => {
            "This access was added or widened since the previous snapshot. Unreviewed changes are the most common way standing privilege grows."
        }
        "drift.catalog" => {
            "An agent reaches a system outside its catalog record, or its record has expired: nobody currently vouches for what it can do."
        }
        "secret.standing" => {
            "A credential that never expires, or outlives its risk tier's limit, keeps working long after it is needed. If it leaks, it works until someone notices."
        }
        "secret.unused" => {
            "An unused credential is access nobody would miss and nobody watches: if it leaks, its use stands out to no one."
        }
        "secret.stale" => {
            "An old secret has had years to be copied into laptops, logs and CI systems. Rotation limits how long a leaked copy stays useful."
        }
        "sod.violation" => {
            "One principal holds both sides of a separation-of-duties rule (or dual control is missing), so a sensitive action can be completed by one person or agent alone."
        }
        _ => match family(rule) {
            "ownerless" => {
                "Nobody accountable stands behind this non-human identity. When it misbehaves or its credential leaks, there is no one to ask, and nobody rotates or retires it."
            }
            "drift" => "Effective access has drifted from what was declared or previously observed.",
            "secret" => "A credential is riskier than its policy allows.",
            _ => "This access breaks one of the organisation's access rules.",
        },
    }
}

/// General next steps for a rule, after the finding's own remediation.
pub fn next_steps(rule: &str) -> &'static [&'static str] {
    match rule {
        "drift.policy" | "drift.baseline" => &[
            "Remove the access where it is not needed, e.g. take the principal out of the group on the evidence path.",
            "If the access is intended, declare it in the Cedar policy so that it is reviewed like the rest.",
        ],
        "drift.catalog" => {
            &["Update the agent's catalog record (`allowed_systems`, `expires`) after review, or remove the access."]
        }
        "secret.standing" | "secret.stale" => &[
            "Rotate the key and switch to short-lived credentials (workload identity federation, or an expiry within the tier's limit).",
            "Revoke the old key once its consumers use the new one.",
        ],
        "secret.unused" => &["Revoke the credential; issue a short-lived one if it is ever needed again."],
        "sod.violation" => &[
            "Remove one side of the rule from the principal, or add a distinct controller where dual control is required.",
        ],
        _ if family(rule) == "ownerless" => &[
            "Assign an owner in the agent catalog (`agents.toml`) or in the source system.",
            "If nobody claims the identity, disable it and revoke its credentials.",
        ],
        _ => &[],
    }
}

fn evidence_items(paths: &[Vec<String>]) -> Vec<Vec<Inline>> {
    let mut items: Vec<Vec<Inline>> = paths.iter().take(MAX_PATHS).map(|path| path_inlines(path)).collect();
    if paths.len() > MAX_PATHS {
        items.push(vec![text(format!("… and {} more", paths.len() - MAX_PATHS))]);
    }
    items
}

fn path_inlines(path: &[String]) -> Vec<Inline> {
    let mut out = Vec::new();
    for (i, node) in path.iter().enumerate() {
        if i > 0 {
            out.push(text(" → "));
        }
        out.push(code(node));
    }
    out
}

fn link_back(facts: &Facts, finding: &Finding) -> Vec<Inline> {
    match facts.report_url.as_deref().map(|u| u.trim_end_matches('/')) {
        Some(base) if !base.is_empty() => {
            let mut api = url::Url::parse(&format!("{base}/api/v1/findings")).ok();
            if let Some(api) = api.as_mut() {
                api.query_pairs_mut().append_pair("rule", &finding.rule).append_pair("status", "all");
            }
            let mut out = vec![
                text("Details: "),
                Inline::Link { text: "latest drift report".into(), url: format!("{base}/reports/latest") },
            ];
            if let Some(api) = api {
                out.push(text(" · "));
                out.push(Inline::Link { text: "findings API".into(), url: api.to_string() });
            }
            out
        }
        _ => vec![text("Details: "), code(format!("accessgraph findings --rule {} --status all", finding.rule))],
    }
}

/// The body of a new ticket.
pub fn description(finding: &Finding, facts: &Facts, marker: &str) -> Doc {
    let mut doc = Doc::default();
    doc.paragraph(vec![
        strong("Severity: "),
        text(finding.severity.as_str()),
        text(" · "),
        strong("Rule: "),
        code(&finding.rule),
        text(" · "),
        strong("First seen: "),
        text(time(finding.first_seen)),
    ]);
    doc.heading("What was found");
    doc.paragraph(vec![text(&finding.title)]);
    if !finding.detail.is_empty() {
        doc.paragraph(vec![text(&finding.detail)]);
    }
    let mut who = vec![strong("Subject: ")];
    who.extend(node_words(&finding.subject, facts.subject.as_ref()));
    let mut what = vec![strong("Object: ")];
    what.extend(node_words(&finding.object, facts.object.as_ref()));
    let mut owner = vec![strong("Owner: ")];
    owner.extend(owner_words(facts));
    doc.blocks.push(Block::Bullets(vec![who, what, owner]));
    if !finding.evidence.is_empty() {
        doc.heading("Evidence");
        doc.paragraph(vec![text("Paths through the access graph that prove it:")]);
        doc.blocks.push(Block::Bullets(evidence_items(&finding.evidence)));
    }
    doc.heading("Why it matters");
    doc.paragraph(vec![text(why_it_matters(&finding.rule))]);
    doc.heading("What to do");
    let mut steps: Vec<Vec<Inline>> = Vec::new();
    if !finding.remediation.is_empty() {
        steps.push(vec![text(&finding.remediation)]);
    }
    steps.extend(next_steps(&finding.rule).iter().map(|s| vec![text(*s)]));
    steps.push(vec![
        text("If the risk is accepted for a while, mute it: "),
        code(format!("accessgraph findings mute {} --reason … --until …", finding.fingerprint)),
    ]);
    doc.blocks.push(Block::Bullets(steps));
    doc.heading("Tracking");
    doc.paragraph(vec![
        text("Fingerprint "),
        code(&finding.fingerprint),
        text(". This ticket is kept up to date by accessgraph: it is commented on when the evidence changes and closed when the finding resolves."),
    ]);
    doc.paragraph(link_back(facts, finding));
    doc.blocks.push(Block::Marker(marker.to_string()));
    doc
}

/// The comment for an `updated` event: what changed since the ticket last
/// said (`before`), or the current state when that is unknown.
pub fn change_comment(before: Option<&Finding>, now: &Finding, at: DateTime<Utc>, marker: &str) -> Doc {
    let mut doc = Doc::default();
    doc.paragraph(vec![strong("The finding changed"), text(format!(" (observed {}).", time(at)))]);
    let mut changes: Vec<Vec<Inline>> = Vec::new();
    match before {
        Some(before) => {
            if before.severity != now.severity {
                changes.push(vec![
                    strong("Severity: "),
                    text(format!("{} → {}", before.severity.as_str(), now.severity.as_str())),
                ]);
            }
            if before.title != now.title {
                changes.push(vec![strong("Now: "), text(&now.title)]);
            }
            if before.detail != now.detail {
                changes.push(vec![strong("Details: "), text(&now.detail)]);
            }
            let added: Vec<&Vec<String>> = now.evidence.iter().filter(|p| !before.evidence.contains(p)).collect();
            let gone: Vec<&Vec<String>> = before.evidence.iter().filter(|p| !now.evidence.contains(p)).collect();
            for path in added.iter().take(MAX_PATHS) {
                let mut item = vec![strong("New path: ")];
                item.extend(path_inlines(path));
                changes.push(item);
            }
            for path in gone.iter().take(MAX_PATHS) {
                let mut item = vec![strong("Path gone: ")];
                item.extend(path_inlines(path));
                changes.push(item);
            }
            if added.len() > MAX_PATHS || gone.len() > MAX_PATHS {
                changes.push(vec![text("… more path changes not listed")]);
            }
        }
        None => {
            changes.push(vec![strong("Severity: "), text(now.severity.as_str())]);
            changes.push(vec![strong("Details: "), text(&now.detail)]);
        }
    }
    if changes.is_empty() {
        changes.push(vec![text("Details of the finding were refreshed.")]);
    }
    doc.blocks.push(Block::Bullets(changes));
    if before.is_none() && !now.evidence.is_empty() {
        doc.paragraph(vec![strong("Current evidence:")]);
        doc.blocks.push(Block::Bullets(evidence_items(&now.evidence)));
    }
    doc.blocks.push(Block::Marker(marker.to_string()));
    doc
}

/// The closing comment for a `resolved` event.
pub fn resolved_comment(finding: &Finding, at: DateTime<Utc>, marker: &str) -> Doc {
    let mut doc = Doc::default();
    doc.paragraph(vec![
        strong("Resolved."),
        text(format!(
            " accessgraph no longer observes this finding (as of {}); closing the ticket. It reopens if the finding returns.",
            time(at)
        )),
    ]);
    doc.paragraph(vec![text("Fingerprint "), code(&finding.fingerprint), text(".")]);
    doc.blocks.push(Block::Marker(marker.to_string()));
    doc
}

/// The comment for a `reopened` event (or a ticket found closed for a
/// finding that is open).
pub fn reopened_comment(finding: &Finding, at: DateTime<Utc>, marker: &str) -> Doc {
    let mut doc = Doc::default();
    doc.paragraph(vec![strong("Reopened."), text(format!(" The finding is back (observed {}).", time(at)))]);
    if !finding.evidence.is_empty() {
        doc.paragraph(vec![strong("Current evidence:")]);
        doc.blocks.push(Block::Bullets(evidence_items(&finding.evidence)));
    }
    doc.blocks.push(Block::Marker(marker.to_string()));
    doc
}

/// GitHub logins in the owner chain of the finding's subject (then object):
/// the owner's own account when it is a `github` source user, or a person's
/// `github` accounts; up to two owners deep.
pub fn github_logins(facts: &Facts) -> Vec<String> {
    fn login_of(node: &NodeFacts) -> Option<String> {
        if node.source_kind.as_deref() != Some("github") {
            return None;
        }
        let (_, kind, key) = parse_id(&node.id)?;
        let valid = !key.is_empty() && key.len() <= 39 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        (kind == "user" && valid).then(|| key.to_string())
    }
    let mut out = Vec::new();
    for node in [&facts.subject, &facts.object].into_iter().flatten() {
        let mut owner = node.owner.as_deref();
        for _ in 0..2 {
            let Some(o) = owner else { break };
            out.extend(login_of(o));
            out.extend(o.accounts.iter().filter_map(login_of));
            if !out.is_empty() {
                out.dedup();
                return out;
            }
            owner = o.owner.as_deref();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use accessgraph_graph::Severity;

    fn finding() -> Finding {
        Finding::new(
            "secret.standing",
            Severity::High,
            "gh:app:deployer",
            "gh:pat:9",
            "Key of @octocat never expires #12",
            "Created 2025-01-01\n# injected heading [x](javascript:alert(1)) <img src=x> ghp_abcdefghijklmnopqrstuvwxyz012345",
            "Rotate it",
            vec![vec!["gh:app:deployer".into(), "gh:pat:9".into()]],
            Utc::now(),
        )
    }

    #[test]
    fn remote_text_is_neutralised_in_markdown() {
        let f = finding();
        let md = description(&f, &Facts::default(), "m").to_markdown();
        assert!(!md.contains("@octocat"), "mention broken: {md}");
        assert!(md.contains(&format!("@{ZWJ}octocat")));
        assert!(!md.contains("#12"));
        assert!(!md.contains("\n# injected"), "no heading injection");
        assert!(!md.contains("<img"), "no HTML");
        assert!(!md.contains("](javascript"), "no link injection");
        assert!(!md.contains("ghp_abc"), "token redacted");
        assert!(md.contains("redacted"));
        assert!(md.contains("<!-- m -->"));
        let title = title(&f);
        assert!(title.starts_with("[HIGH] secret.standing: Key of @\u{200D}octocat"), "{title}");
    }

    #[test]
    fn adf_is_literal_text_with_marks() {
        let doc = description(&finding(), &Facts::default(), "marker-1");
        let adf = doc.to_adf();
        assert_eq!(adf["type"], "doc");
        assert_eq!(adf["version"], 1);
        let text = adf.to_string();
        assert!(text.contains("marker-1"));
        assert!(!text.contains("ghp_abc"));
        // No empty text nodes (Jira rejects them).
        fn walk(v: &Value) {
            if v["type"] == "text" {
                assert!(!v["text"].as_str().unwrap_or_default().is_empty());
            }
            if let Some(items) = v["content"].as_array() {
                items.iter().for_each(walk);
            }
        }
        walk(&adf);
    }

    /// Remote text in a Jira body stays text: no mention, link, card or
    /// emoji node, no link mark but ours, no URL a renderer could linkify.
    #[test]
    fn adf_never_turns_remote_text_into_links_or_mentions() {
        let hostile = "@octocat [~accountid:5b10a2844c20165700ede21g] [click|https://evil.example/x] \
                       https://evil.example/y www.evil.example :smile: <a href=\"https://evil.example\">x</a>";
        let finding = Finding::new(
            "drift.policy",
            Severity::High,
            format!("gh:user:{hostile}"),
            "gh:repo:acme/https://evil.example",
            hostile,
            hostile,
            hostile,
            vec![vec![format!("gh:user:{hostile}"), "gh:repo:x".into()]],
            Utc::now(),
        );
        let facts = Facts { report_url: Some("https://accessgraph.acme.example".into()), ..Facts::default() };
        let docs = [
            description(&finding, &facts, "m"),
            change_comment(None, &finding, Utc::now(), "m"),
            reopened_comment(&finding, Utc::now(), "m"),
        ];
        fn walk(v: &Value, texts: &mut Vec<String>, hrefs: &mut Vec<String>) {
            let kind = v["type"].as_str().unwrap_or_default();
            assert!(
                ["doc", "paragraph", "heading", "bulletList", "listItem", "text"].contains(&kind),
                "unexpected ADF node {kind}: {v}"
            );
            if kind == "text" {
                texts.push(v["text"].as_str().unwrap_or_default().to_string());
                for mark in v["marks"].as_array().into_iter().flatten() {
                    let mark_type = mark["type"].as_str().unwrap_or_default();
                    assert!(["strong", "code", "link", "subsup"].contains(&mark_type), "mark {mark}");
                    if mark_type == "link" {
                        hrefs.push(mark["attrs"]["href"].as_str().unwrap_or_default().to_string());
                    }
                }
            }
            for child in v["content"].as_array().into_iter().flatten() {
                walk(child, texts, hrefs);
            }
        }
        for doc in docs {
            let (mut texts, mut hrefs) = (Vec::new(), Vec::new());
            walk(&doc.to_adf(), &mut texts, &mut hrefs);
            for href in &hrefs {
                assert!(href.starts_with("https://accessgraph.acme.example/"), "a link that is not ours: {href}");
            }
            let all = texts.concat();
            assert!(!all.contains("@octocat"), "mention: {all}");
            assert!(!all.contains("://"), "a URL a renderer could linkify: {all}");
            assert!(!all.to_ascii_lowercase().contains("www.evil"), "{all}");
            assert!(all.contains("evil"), "the text is kept, defanged: {all}");
        }
        // Markdown too: the only link destinations are ours.
        let md = description(&finding, &facts, "m").to_markdown();
        assert!(!md.contains("](https://evil"), "{md}");
        assert!(!md.contains("https://evil") && !md.contains("www.evil"), "{md}");
        assert!(md.contains("](https://accessgraph.acme.example/reports/latest)"), "{md}");
    }

    #[test]
    fn neutral_defangs_urls_and_keeps_ordinary_text() {
        assert_eq!(neutral("see https://x.example/a"), format!("see https:{ZWJ}//x.example/a"));
        assert_eq!(neutral("WWW.x.example"), format!("WWW.{ZWJ}x.example"));
        assert_eq!(neutral("arn:aws:iam::1:role/x"), "arn:aws:iam::1:role/x");
        assert_eq!(neutral("alice@acme.example"), format!("alice@{ZWJ}acme.example"));
        assert_eq!(neutral("a\nb"), "a b");
    }

    #[test]
    fn code_spans_cannot_be_closed_early() {
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`x"), "`` `x ``");
    }

    #[test]
    fn labels_fit_github() {
        let label = fingerprint_label(&"f".repeat(64));
        assert_eq!(label.len(), 50);
        assert_eq!(fingerprint_label("abc"), "accessgraph:abc");
    }

    #[test]
    fn change_comment_says_what_changed() {
        let before = finding();
        let mut after = before.clone();
        after.severity = Severity::Critical;
        after.evidence.push(vec!["gh:team:x".into(), "gh:pat:9".into()]);
        let text = change_comment(Some(&before), &after, Utc::now(), "m").plain_text();
        assert!(text.contains("high → critical"), "{text}");
        assert!(text.contains("New path: gh:team:x → gh:pat:9"), "{text}");
        assert!(!text.contains("Path gone"));
    }

    #[test]
    fn logins_come_from_the_owner_chain() {
        let account = NodeFacts {
            id: "gh:user:alice".into(),
            source_kind: Some("github".into()),
            kind: "human".into(),
            ..Default::default()
        };
        let person = NodeFacts {
            id: "person:alice@x".into(),
            kind: "person".into(),
            accounts: vec![account],
            ..Default::default()
        };
        let subject = NodeFacts { id: "gh:app:deployer".into(), owner: Some(Box::new(person)), ..Default::default() };
        let facts = Facts { subject: Some(subject), ..Default::default() };
        assert_eq!(github_logins(&facts), vec!["alice".to_string()]);
        assert!(github_logins(&Facts::default()).is_empty());
    }
}
