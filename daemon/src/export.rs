//! `export`: the graph for scripts and graph tools.

use accessgraph_graph::access::AccessGraph;
use serde_json::{Value, json};

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
