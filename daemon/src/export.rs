//! `export`: the graph for scripts and graph tools.

use accessgraph_graph::access::AccessGraph;
use accessgraph_graph::model::{Edge, EdgeKind, Node, NodeKind};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;

/// CONTRACT §1 JSON: `{"nodes": [{"id","kind","name",…}], "edges": [{"from","to","kind","actions"?,"expires_at"?}]}`.
pub fn to_json(graph: &AccessGraph) -> String {
    let mut nodes: Vec<Value> = graph
        .nodes()
        .map(|node| {
            let mut value = serde_json::to_value(node).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value
                && node.source.is_empty()
            {
                map.remove("source");
            }
            value
        })
        .collect();
    nodes.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let mut edges: Vec<Value> = graph
        .edges()
        .map(|edge| {
            let mut value = json!({ "from": edge.from, "to": edge.to, "kind": edge.kind.as_str() });
            if !edge.actions.is_empty() {
                value["actions"] = json!(edge.actions);
            }
            if let Some(at) = edge.expires_at {
                value["expires_at"] = json!(at);
            }
            if let Some(at) = edge.granted_at {
                value["granted_at"] = json!(at);
            }
            if edge.conditional {
                value["conditional"] = json!(true);
            }
            value
        })
        .collect();
    edges.sort_by(|a, b| {
        (a["from"].as_str(), a["kind"].as_str(), a["to"].as_str()).cmp(&(
            b["from"].as_str(),
            b["kind"].as_str(),
            b["to"].as_str(),
        ))
    });
    let mut text = serde_json::to_string_pretty(&json!({ "nodes": nodes, "edges": edges })).unwrap_or_default();
    text.push('\n');
    text
}

/// Nodes and edges in a stable order: nodes by id, edges by (from, kind, to, actions).
fn sorted(graph: &AccessGraph) -> (Vec<&Node>, Vec<Edge>) {
    let mut nodes: Vec<&Node> = graph.nodes().collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    let mut edges: Vec<Edge> = graph.edges().collect();
    edges.sort_by(|a, b| (&a.from, a.kind, &a.to, &a.actions).cmp(&(&b.from, b.kind, &b.to, &b.actions)));
    (nodes, edges)
}

/// Escapes text for XML content and quoted attributes; drops what XML 1.0
/// cannot carry at all (control characters other than tab, newline, CR).
fn xml(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn time(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The string attributes exported for a node (GraphML keys, Cypher properties).
fn node_attributes(node: &Node) -> Vec<(&'static str, String)> {
    let mut attrs = vec![("kind", node.kind.as_str().to_string()), ("name", node.name.clone())];
    let optional = [
        ("source", Some(node.source.clone()).filter(|s| !s.is_empty())),
        ("subkind", node.subkind.clone()),
        ("email", node.email.clone()),
        ("active", node.active.map(|a| a.to_string())),
        ("owner", node.owner.clone()),
        ("environment", node.environment.clone()),
        ("data_domains", Some(node.data_domains.join(",")).filter(|s| !s.is_empty())),
        ("created_at", time(node.created_at)),
        ("rotated_at", time(node.rotated_at)),
        ("expires_at", time(node.expires_at)),
    ];
    attrs.extend(optional.into_iter().filter_map(|(key, value)| Some((key, value?))));
    attrs
}

fn edge_attributes(edge: &Edge) -> Vec<(&'static str, String)> {
    let mut attrs = vec![("kind", edge.kind.as_str().to_string())];
    let optional = [
        ("actions", Some(edge.actions.join(",")).filter(|s| !s.is_empty())),
        ("granted_at", time(edge.granted_at)),
        ("expires_at", time(edge.expires_at)),
        ("conditional", edge.conditional.then(|| "true".to_string())),
    ];
    attrs.extend(optional.into_iter().filter_map(|(key, value)| Some((key, value?))));
    attrs
}

const NODE_KEYS: [&str; 12] = [
    "kind",
    "name",
    "source",
    "subkind",
    "email",
    "active",
    "owner",
    "environment",
    "data_domains",
    "created_at",
    "rotated_at",
    "expires_at",
];
const EDGE_KEYS: [&str; 5] = ["kind", "actions", "granted_at", "expires_at", "conditional"];

/// GraphML (Gephi, yEd, NetworkX): node ids are the CONTRACT §3 ids.
pub fn to_graphml(graph: &AccessGraph) -> String {
    let (nodes, edges) = sorted(graph);
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
    );
    for key in NODE_KEYS {
        let _ = writeln!(out, "  <key id=\"n_{key}\" for=\"node\" attr.name=\"{key}\" attr.type=\"string\"/>");
    }
    for key in EDGE_KEYS {
        let _ = writeln!(out, "  <key id=\"e_{key}\" for=\"edge\" attr.name=\"{key}\" attr.type=\"string\"/>");
    }
    out.push_str("  <graph id=\"accessgraph\" edgedefault=\"directed\">\n");
    for node in nodes {
        let _ = writeln!(out, "    <node id=\"{}\">", xml(&node.id));
        for (key, value) in node_attributes(node) {
            let _ = writeln!(out, "      <data key=\"n_{key}\">{}</data>", xml(&value));
        }
        out.push_str("    </node>\n");
    }
    for (i, edge) in edges.iter().enumerate() {
        let _ = writeln!(out, "    <edge id=\"e{i}\" source=\"{}\" target=\"{}\">", xml(&edge.from), xml(&edge.to));
        for (key, value) in edge_attributes(edge) {
            let _ = writeln!(out, "      <data key=\"e_{key}\">{}</data>", xml(&value));
        }
        out.push_str("    </edge>\n");
    }
    out.push_str("  </graph>\n</graphml>\n");
    out
}

/// A DOT double-quoted string. In DOT only `\"` is an escape, but labels
/// interpret backslash sequences (`\N`, `\l`), so a backslash is doubled:
/// consistently for every occurrence of an id, so edges still meet nodes.
fn dot(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn dot_style(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Person | NodeKind::Human => "shape=ellipse, fillcolor=\"#ddf4ff\"",
        NodeKind::Agent => "shape=hexagon, fillcolor=\"#fbefff\"",
        NodeKind::ServiceAccount | NodeKind::App => "shape=hexagon, fillcolor=\"#dafbe1\"",
        NodeKind::Group | NodeKind::Role => "shape=box, style=\"rounded,filled\", fillcolor=\"#f6f8fa\"",
        NodeKind::Resource => "shape=box, fillcolor=\"#fff1e5\"",
        NodeKind::Credential => "shape=note, fillcolor=\"#ffebe9\"",
    }
}

/// Graphviz DOT: `dot -Tsvg` draws it; labels are names, ids are CONTRACT §3 ids.
pub fn to_dot(graph: &AccessGraph) -> String {
    let (nodes, edges) = sorted(graph);
    let mut out = String::from(
        "digraph accessgraph {\n  rankdir=LR;\n  node [style=filled, fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    for node in nodes {
        let label = if node.name.is_empty() { &node.id } else { &node.name };
        let _ = writeln!(
            out,
            "  {} [label={}, tooltip={}, kind={}, {}];",
            dot(&node.id),
            dot(label),
            dot(&node.id),
            dot(node.kind.as_str()),
            dot_style(node.kind)
        );
    }
    for edge in edges {
        let label = if edge.actions.is_empty() { edge.kind.as_str().to_string() } else { edge.actions.join(",") };
        let style = match edge.kind {
            EdgeKind::Grant => "",
            EdgeKind::Owns | EdgeKind::SameAs => ", style=dashed",
            _ => ", color=\"#6e7781\"",
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}, kind={}{style}];",
            dot(&edge.from),
            dot(&edge.to),
            dot(&label),
            dot(edge.kind.as_str())
        );
    }
    out.push_str("}\n");
    out
}

/// A Cypher single-quoted string literal.
fn cypher(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn cypher_map(attrs: &[(&str, String)]) -> String {
    let fields: Vec<String> = attrs.iter().map(|(key, value)| format!("{key}: {}", cypher(value))).collect();
    format!("{{{}}}", fields.join(", "))
}

fn label(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Person => "Person",
        NodeKind::Human => "Human",
        NodeKind::Agent => "Agent",
        NodeKind::ServiceAccount => "ServiceAccount",
        NodeKind::App => "App",
        NodeKind::Group => "Group",
        NodeKind::Role => "Role",
        NodeKind::Resource => "Resource",
        NodeKind::Credential => "Credential",
    }
}

/// Rows per `UNWIND` statement, so a large graph loads in bounded transactions.
const CYPHER_BATCH: usize = 500;

/// A Cypher script for Neo4j (`cypher-shell < export.cypher`): every node is
/// an `:AccessNode` with a kind label, every edge a relationship named after
/// its kind; `MERGE` on ids makes loading the same export twice harmless.
pub fn to_cypher(graph: &AccessGraph) -> String {
    let (nodes, edges) = sorted(graph);
    let mut out = String::from(
        "// accessgraph export: load with `cypher-shell -f FILE`\nCREATE CONSTRAINT accessgraph_node_id IF NOT EXISTS FOR (n:AccessNode) REQUIRE n.id IS UNIQUE;\n",
    );
    let mut by_kind: BTreeMap<NodeKind, Vec<&Node>> = BTreeMap::new();
    for node in nodes {
        by_kind.entry(node.kind).or_default().push(node);
    }
    for (kind, list) in by_kind {
        for chunk in list.chunks(CYPHER_BATCH) {
            let rows: Vec<String> = chunk
                .iter()
                .map(|node| {
                    let mut attrs = vec![("id", node.id.clone())];
                    attrs.extend(node_attributes(node));
                    cypher_map(&attrs)
                })
                .collect();
            let _ = writeln!(
                out,
                "UNWIND [\n  {}\n] AS row\nMERGE (n:AccessNode {{id: row.id}}) SET n += row, n:{};",
                rows.join(",\n  "),
                label(kind)
            );
        }
    }
    let mut by_kind: BTreeMap<EdgeKind, Vec<&Edge>> = BTreeMap::new();
    for edge in &edges {
        by_kind.entry(edge.kind).or_default().push(edge);
    }
    for (kind, list) in by_kind {
        for chunk in list.chunks(CYPHER_BATCH) {
            let rows: Vec<String> = chunk
                .iter()
                .map(|edge| {
                    let mut attrs = vec![("from", edge.from.clone()), ("to", edge.to.clone()), ("key", edge.key())];
                    attrs.extend(edge_attributes(edge).into_iter().filter(|(k, _)| *k != "kind"));
                    cypher_map(&attrs)
                })
                .collect();
            let _ = writeln!(
                out,
                "UNWIND [\n  {}\n] AS row\nMATCH (a:AccessNode {{id: row.from}}) MATCH (b:AccessNode {{id: row.to}})\nMERGE (a)-[r:{} {{key: row.key}}]->(b) SET r += row;",
                rows.join(",\n  "),
                kind.as_str().to_uppercase()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_ids_intact_per_format() {
        assert_eq!(xml("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(dot("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
        assert_eq!(cypher("it's a \\ line\nnext"), "'it\\'s a \\\\ line\\nnext'");
        assert_eq!(cypher("\u{7}"), "'\\u0007'");
    }
}
