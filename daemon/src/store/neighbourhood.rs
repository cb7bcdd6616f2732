//! Rows around a few nodes, read by indexed look-ups (migration 0005): the
//! edges into or out of given nodes, nodes by id, human accounts by their
//! derived keys. `crate::query` walks the graph with these instead of
//! loading every row of every source.

use super::{Backend, Store, StoreError, decode_json, to_micros};
use accessgraph_graph::{Edge, Node};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Values per `IN (…)` list.
const LOOKUP_BATCH: usize = 400;

/// An edge row and what orders it in a full load (`Store::load_rows` adds
/// edges source by source, each source's in insertion order).
#[derive(Clone, Debug)]
pub struct StoredEdge {
    /// The source that reported it.
    pub source: String,
    /// Insertion order within the source.
    pub seq: i64,
    /// The edge.
    pub edge: Edge,
}

/// Which end of an edge a look-up matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `from_id`: the edges out of the nodes.
    From,
    /// `to_id`: the edges into the nodes.
    To,
}

/// A derived key of human accounts (`keys.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HumanKey {
    /// Email, trimmed and lower-cased.
    Email,
    /// The id's KEY, lower-cased.
    Account,
    /// `attrs.user_name`, trimmed and lower-cased.
    UserName,
    /// `attrs.external_id`, trimmed and lower-cased.
    ExternalId,
}

impl HumanKey {
    fn column(self) -> &'static str {
        match self {
            HumanKey::Email => "email_key",
            HumanKey::Account => "account_key",
            HumanKey::UserName => "user_name_key",
            HumanKey::ExternalId => "external_id_key",
        }
    }

    fn index(self) -> &'static str {
        match self {
            HumanKey::Email => "nodes_email_key",
            HumanKey::Account => "nodes_account_key",
            HumanKey::UserName => "nodes_user_name_key",
            HumanKey::ExternalId => "nodes_external_id_key",
        }
    }
}

/// A look-up: `column IN (…)` on `table`, through `index` (migration 0005).
struct Lookup<'q> {
    select: &'q str,
    table: &'static str,
    column: &'static str,
    index: &'static str,
}

impl Lookup<'_> {
    /// The statement for `sources` sources, an instant or not, and `values`
    /// values, its placeholders in bind order (SQLite's `?` bind in text
    /// order): the sources, the instant twice, the values.
    ///
    /// SQLite is told the index: without statistics (no `ANALYZE`), its
    /// planner prefers `(source, valid_to)` for an `IN` list of more than a
    /// few values and scans every current row of the sources (at 2M rows,
    /// 0.4–1.4 s a statement instead of under a millisecond). PostgreSQL
    /// keeps statistics and has no such syntax.
    fn sql(&self, backend: Backend, sources: usize, at: bool, values: usize) -> String {
        let Lookup { select, table, column, index } = self;
        let source_list = backend.param_list(1, sources);
        let mut next = sources + 1;
        let time = if at {
            let (from, to) = (backend.param(next), backend.param(next + 1));
            next += 2;
            format!("valid_from <= {from} AND (valid_to IS NULL OR valid_to > {to})")
        } else {
            "valid_to IS NULL".to_string()
        };
        let hint = match backend {
            Backend::Sqlite => format!(" INDEXED BY {index}"),
            Backend::Postgres => String::new(),
        };
        let list = backend.param_list(next, values);
        format!(
            "SELECT {select} FROM {table}{hint} WHERE source IN ({source_list}) AND {time} \
             AND {column} IN ({list}) AND {column} IS NOT NULL"
        )
    }
}

impl Store {
    /// Rows of the look-up's table from `sources`, valid at `at` (None:
    /// current), whose column is one of `values`.
    async fn rows_where_in(
        &self,
        lookup: Lookup<'_>,
        sources: &[String],
        at: Option<DateTime<Utc>>,
        values: &[String],
    ) -> Result<Vec<AnyRow>, StoreError> {
        let mut out = Vec::new();
        if sources.is_empty() {
            return Ok(out);
        }
        let backend = self.backend();
        for chunk in values.chunks(LOOKUP_BATCH) {
            let sql = lookup.sql(backend, sources.len(), at.is_some(), chunk.len());
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for source in sources {
                query = query.bind(source.as_str());
            }
            if let Some(at) = at {
                query = query.bind(to_micros(at)).bind(to_micros(at));
            }
            for value in chunk {
                query = query.bind(value.as_str());
            }
            out.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Edges of `sources` valid at `at` (None: current) that start (`From`)
    /// or end (`To`) at one of `ids`.
    pub async fn edges_at(
        &self,
        sources: &[String],
        at: Option<DateTime<Utc>>,
        endpoint: Endpoint,
        ids: &[String],
    ) -> Result<Vec<StoredEdge>, StoreError> {
        let (column, index) = match endpoint {
            Endpoint::From => ("from_id", "edges_from"),
            Endpoint::To => ("to_id", "edges_to"),
        };
        let select = format!("source, {} AS seq, body", self.edge_seq_column());
        let lookup = Lookup { select: &select, table: "edges", column, index };
        let rows = self.rows_where_in(lookup, sources, at, ids).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let body: String = row.try_get("body")?;
            out.push(StoredEdge {
                source: row.try_get("source")?,
                seq: row.try_get("seq")?,
                edge: decode_json(&body)?,
            });
        }
        Ok(out)
    }

    /// Nodes of `sources` valid at `at` (None: current) with one of `ids`.
    pub async fn nodes_with_ids(
        &self,
        sources: &[String],
        at: Option<DateTime<Utc>>,
        ids: &[String],
    ) -> Result<Vec<Node>, StoreError> {
        let lookup = Lookup { select: "body", table: "nodes", column: "id", index: "nodes_id" };
        let rows = self.rows_where_in(lookup, sources, at, ids).await?;
        rows.iter().map(|row| decode_json(&row.try_get::<String, _>("body")?)).collect()
    }

    /// Human accounts of `sources` valid at `at` (None: current) whose
    /// derived `key` is one of `values`.
    pub async fn humans_with_key(
        &self,
        sources: &[String],
        at: Option<DateTime<Utc>>,
        key: HumanKey,
        values: &[String],
    ) -> Result<Vec<Node>, StoreError> {
        let lookup = Lookup { select: "body", table: "nodes", column: key.column(), index: key.index() };
        let rows = self.rows_where_in(lookup, sources, at, values).await?;
        rows.iter().map(|row| decode_json(&row.try_get::<String, _>("body")?)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdb::{PlanValue, sqlite_plan};

    /// Every look-up goes through its index on SQLite, whatever the number
    /// of values (the planner's own choice scans every current row).
    #[tokio::test]
    async fn sqlite_look_ups_use_their_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("store");
        let mut lookups = vec![
            Lookup { select: "body", table: "edges", column: "to_id", index: "edges_to" },
            Lookup { select: "body", table: "edges", column: "from_id", index: "edges_from" },
            Lookup { select: "body", table: "nodes", column: "id", index: "nodes_id" },
        ];
        for key in [HumanKey::Email, HumanKey::Account, HumanKey::UserName, HumanKey::ExternalId] {
            lookups.push(Lookup { select: "body", table: "nodes", column: key.column(), index: key.index() });
        }
        for lookup in &lookups {
            for (at, values) in [(false, 1), (false, 40), (true, 40), (true, LOOKUP_BATCH)] {
                let mut binds = vec![PlanValue::Text("a".into()), PlanValue::Text("b".into())];
                if at {
                    binds.extend([PlanValue::Int(1), PlanValue::Int(1)]);
                }
                binds.extend((0..values).map(|i| PlanValue::Text(format!("v{i}"))));
                let plan = sqlite_plan(&store, &lookup.sql(Backend::Sqlite, 2, at, values), binds).await;
                let wanted = format!("USING INDEX {}", lookup.index);
                assert!(plan.iter().any(|step| step.contains(&wanted)), "{}: {plan:?}", lookup.index);
            }
        }
    }
}
