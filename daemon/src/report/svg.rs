//! Inline SVG pictures for the HTML report, generated here so the report
//! needs no script library: evidence paths as small layered diagrams, and
//! the posture trend as line charts. Every text is escaped with [`esc`].

use super::NodeLabel;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

/// Escapes text for HTML and SVG content and double- or single-quoted
/// attributes; drops control characters.
pub(crate) fn esc(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, with an ellipsis in place of the rest.
fn clip(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        return value.to_string();
    }
    let kept: String = value.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// At most `max` characters, keeping the end (ids are most specific there).
fn clip_start(value: &str, max: usize) -> String {
    let count = value.chars().count();
    if count <= max {
        return value.to_string();
    }
    let kept: String = value.chars().skip(count - max.saturating_sub(1)).collect();
    format!("…{kept}")
}

/// CSS class of a node kind (a fixed set, never text from a source).
fn kind_class(kind: &str) -> &'static str {
    match kind {
        "person" | "human" => "k-person",
        "agent" => "k-agent",
        "service_account" | "app" => "k-service",
        "group" | "role" => "k-group",
        "resource" => "k-resource",
        "credential" => "k-credential",
        _ => "k-other",
    }
}

const BOX_W: i64 = 180;
const BOX_H: i64 = 40;
const COL_GAP: i64 = 72;
const ROW_GAP: i64 = 14;
const PAD: i64 = 6;

/// A finding's evidence paths as one layered diagram: each node once, in the
/// column of its longest distance from a path start, edges labelled with the
/// relation (membership, role, granted actions). `uid` makes marker ids unique.
pub(crate) fn evidence(
    paths: &[Vec<String>],
    labels: &BTreeMap<String, NodeLabel>,
    edge_labels: &BTreeMap<(String, String), String>,
    uid: &str,
) -> String {
    let mut order: Vec<&str> = Vec::new();
    let mut edges: BTreeSet<(&str, &str)> = BTreeSet::new();
    for path in paths {
        for hop in path {
            if !order.contains(&hop.as_str()) {
                order.push(hop);
            }
        }
        for pair in path.windows(2) {
            if pair[0] != pair[1] {
                edges.insert((&pair[0], &pair[1]));
            }
        }
    }
    if order.is_empty() {
        return String::new();
    }
    // Longest-path layering; the bound keeps a cycle (which evidence never
    // has, but input is input) from looping.
    let mut layer: HashMap<&str, usize> = order.iter().map(|id| (*id, 0)).collect();
    for _ in 0..order.len() {
        let mut changed = false;
        for (from, to) in &edges {
            let want = layer[from] + 1;
            if layer[to] < want && want < order.len() {
                layer.insert(to, want);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let columns = layer.values().max().copied().unwrap_or(0) + 1;
    let mut rows: Vec<Vec<&str>> = vec![Vec::new(); columns];
    for id in &order {
        rows[layer[id]].push(id);
    }
    let max_rows = rows.iter().map(Vec::len).max().unwrap_or(1) as i64;
    let mut position: HashMap<&str, (i64, i64)> = HashMap::new();
    for (column, ids) in rows.iter().enumerate() {
        for (row, id) in ids.iter().enumerate() {
            position.insert(id, (PAD + column as i64 * (BOX_W + COL_GAP), PAD + row as i64 * (BOX_H + ROW_GAP)));
        }
    }
    let width = PAD * 2 + columns as i64 * BOX_W + (columns as i64 - 1) * COL_GAP;
    let height = PAD * 2 + max_rows * BOX_H + (max_rows - 1) * ROW_GAP;
    let marker = format!("ah-{}", esc(uid));
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="evidence" role="img" aria-label="evidence path" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}"><defs><marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" class="arrow"/></marker></defs>"#
    );
    for (from, to) in &edges {
        let (x1, y1) = position[from];
        let (x2, y2) = position[to];
        let (sx, sy, ex, ey) = if x2 > x1 {
            (x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2)
        } else {
            // Same or earlier column (only with odd input): loop below.
            (x1 + BOX_W / 2, y1 + BOX_H, x2 + BOX_W / 2, y2 + BOX_H)
        };
        let (c1x, c2x) = if x2 > x1 { ((sx + ex) / 2, (sx + ex) / 2) } else { (sx, ex) };
        let (c1y, c2y) = if x2 > x1 { (sy, ey) } else { (sy + 30, ey + 30) };
        let _ = write!(
            out,
            r#"<path class="edge" d="M{sx},{sy} C{c1x},{c1y} {c2x},{c2y} {ex},{ey}" marker-end="url(#{marker})"/>"#
        );
        if let Some(label) = edge_labels.get(&(from.to_string(), to.to_string())) {
            let mx = (sx + ex) / 2;
            let my = (sy + ey) / 2 - 4;
            let _ = write!(
                out,
                r#"<text class="edge-label" x="{mx}" y="{my}" text-anchor="middle"><title>{}</title>{}</text>"#,
                esc(label),
                esc(&clip(label, 14))
            );
        }
    }
    for id in &order {
        let (x, y) = position[id];
        let (name, kind) = match labels.get(*id) {
            Some(label) if !label.name.is_empty() => (label.name.as_str(), label.kind.as_str()),
            Some(label) => (*id, label.kind.as_str()),
            None => (*id, ""),
        };
        // About 27 monospace characters fit the box.
        let caption = if kind.is_empty() {
            clip_start(id, 27)
        } else {
            format!("{kind} · {}", clip_start(id, 27usize.saturating_sub(kind.chars().count() + 3).max(8)))
        };
        let _ = write!(
            out,
            r#"<g class="node {}"><title>{}</title><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6"/><text class="node-name" x="{}" y="{}">{}</text><text class="node-id" x="{}" y="{}">{}</text></g>"#,
            kind_class(kind),
            esc(id),
            x + 8,
            y + 17,
            esc(&clip(name, 25)),
            x + 8,
            y + 32,
            esc(&caption),
        );
    }
    out.push_str("</svg>");
    out
}

/// One series of a line chart.
pub(crate) struct Series {
    /// Legend text.
    pub name: String,
    /// CSS class (a fixed string, not source text).
    pub class: &'static str,
    /// (time, value) points, oldest first.
    pub points: Vec<(DateTime<Utc>, f64)>,
}

const CHART_W: f64 = 320.0;
const CHART_H: f64 = 150.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;

fn number(value: f64, percent: bool) -> String {
    if percent {
        format!("{:.0} %", value * 100.0)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A small line chart of one or more series over time, with its own scale.
pub(crate) fn line_chart(title: &str, series: &[Series], percent: bool) -> String {
    let points: Vec<(DateTime<Utc>, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<figure class="chart"><figcaption>{}</figcaption><svg role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" height="{CHART_H}">"#,
        esc(title),
        esc(title)
    );
    let (Some(first), Some(last)) = (points.iter().map(|p| p.0).min(), points.iter().map(|p| p.0).max()) else {
        out.push_str("</svg></figure>");
        return out;
    };
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let max = if percent { ((max * 10.0).ceil() / 10.0).max(0.1) } else { max.ceil().max(1.0) };
    let span = (last - first).num_seconds().max(0) as f64;
    let plot_w = CHART_W - LEFT - RIGHT;
    let plot_h = CHART_H - TOP - BOTTOM;
    let x = |at: DateTime<Utc>| {
        if span == 0.0 { LEFT + plot_w / 2.0 } else { LEFT + (at - first).num_seconds() as f64 / span * plot_w }
    };
    let y = |value: f64| TOP + plot_h - value / max * plot_h;
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}"/><line class="axis" x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}"/>"#,
        b = TOP + plot_h,
        r = CHART_W - RIGHT
    );
    let _ = write!(
        out,
        r#"<text class="tick" x="{}" y="{}" text-anchor="end">{}</text><text class="tick" x="{}" y="{}" text-anchor="end">0</text>"#,
        LEFT - 4.0,
        TOP + 4.0,
        number(max, percent),
        LEFT - 4.0,
        TOP + plot_h + 4.0
    );
    let _ = write!(
        out,
        r#"<text class="tick" x="{LEFT}" y="{}" text-anchor="start">{}</text>"#,
        CHART_H - BOTTOM + 14.0,
        first.format("%Y-%m-%d %H:%M")
    );
    if span > 0.0 {
        let _ = write!(
            out,
            r#"<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>"#,
            CHART_W - RIGHT,
            CHART_H - BOTTOM + 14.0,
            last.format("%Y-%m-%d %H:%M")
        );
    }
    let mut legend_x = LEFT;
    for line in series {
        if line.points.is_empty() {
            continue;
        }
        let coords: Vec<String> = line.points.iter().map(|(at, v)| format!("{:.1},{:.1}", x(*at), y(*v))).collect();
        let _ = write!(out, r#"<polyline class="series {}" points="{}"/>"#, line.class, coords.join(" "));
        for (at, value) in &line.points {
            let _ = write!(
                out,
                r#"<circle class="dot {}" cx="{:.1}" cy="{:.1}" r="3"><title>{}: {} at {}</title></circle>"#,
                line.class,
                x(*at),
                y(*value),
                esc(&line.name),
                number(*value, percent),
                at.format("%Y-%m-%d %H:%M UTC")
            );
        }
        if series.len() > 1 {
            let _ = write!(
                out,
                r#"<rect class="swatch {}" x="{legend_x:.1}" y="{}" width="8" height="8"/><text class="legend" x="{:.1}" y="{}">{}</text>"#,
                line.class,
                CHART_H - 12.0,
                legend_x + 11.0,
                CHART_H - 4.0,
                esc(&line.name)
            );
            legend_x += 14.0 + 6.5 * line.name.chars().count() as f64 + 8.0;
        }
    }
    out.push_str("</svg></figure>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_and_quotes() {
        assert_eq!(
            esc(r#"<img src=x onerror="alert(1)">&'"#),
            "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;"
        );
        assert_eq!(esc("a\u{0}b\nc"), "ab c");
    }

    #[test]
    fn evidence_layers_shared_hops_once() {
        let paths =
            vec![vec!["p".to_string(), "g".to_string(), "r".to_string()], vec!["p".to_string(), "r".to_string()]];
        let svg = evidence(&paths, &BTreeMap::new(), &BTreeMap::new(), "f1");
        assert_eq!(svg.matches("<rect").count(), 3, "three nodes, drawn once each");
        assert_eq!(svg.matches(r#"class="edge""#).count(), 3);
        // `r` sits in the third column (longest path), not the second.
        let x_of_r = 6 + 2 * (BOX_W + COL_GAP);
        assert!(svg.contains(&format!(r#"<title>r</title><rect x="{x_of_r}""#)), "{svg}");
    }

    #[test]
    fn evidence_escapes_ids() {
        let paths = vec![vec!["<script>".to_string(), "a\"b".to_string()]];
        let svg = evidence(&paths, &BTreeMap::new(), &BTreeMap::new(), "f2");
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;") && svg.contains("a&quot;b"));
    }
}
