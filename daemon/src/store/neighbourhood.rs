//! Rows around a few nodes, read by indexed look-ups (migration 0005): the
//! edges into or out of given nodes, nodes by id, human accounts by their
//! derived keys. `crate::query` walks the graph with these instead of
//! loading every row of every source.

use super::{Store, StoreError, decode_json, to_micros};
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
}

impl Store {
    /// Rows of `table` from `sources`, valid at `at` (None: current), whose
    /// `column` is one of `values`.
    async fn rows_where_in(
        &self,
        select: &str,
        table: &str,
        column: &str,
        sources: &[String],
        at: Option<DateTime<Utc>>,
        values: &[String],
    ) -> Result<Vec<AnyRow>, StoreError> {
        let mut out = Vec::new();
        if sources.is_empty() {
            return Ok(out);
        }
        let source_list = (1..=sources.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
        let mut next = sources.len() + 1;
        let time = match at {
            None => "valid_to IS NULL".to_string(),
            Some(_) => {
                next += 1;
                format!("valid_from <= ${0} AND (valid_to IS NULL OR valid_to > ${0})", next - 1)
            }
        };
        for chunk in values.chunks(LOOKUP_BATCH) {
            let list = (next..next + chunk.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT {select} FROM {table} WHERE {column} IN ({list}) AND source IN ({source_list}) AND {time}"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for source in sources {
                query = query.bind(source.as_str());
            }
            if let Some(at) = at {
                query = query.bind(to_micros(at));
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
        let column = match endpoint {
            Endpoint::From => "from_id",
            Endpoint::To => "to_id",
        };
        let select = format!("source, {} AS seq, body", self.edge_seq_column());
        let rows = self.rows_where_in(&select, "edges", column, sources, at, ids).await?;
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
        let rows = self.rows_where_in("body", "nodes", "id", sources, at, ids).await?;
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
        let rows = self.rows_where_in("body", "nodes", key.column(), sources, at, values).await?;
        rows.iter().map(|row| decode_json(&row.try_get::<String, _>("body")?)).collect()
    }
}
