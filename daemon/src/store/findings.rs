//! The findings lifecycle: open, update, resolve, reopen, mute; each state
//! change becomes outbox rows in the same transaction.

use super::write::{BulkConnection, Pipeline};
use super::{Store, StoreError, decode_json, from_micros, to_micros};
use accessgraph_config::SinkConfig;
use accessgraph_connectors::sinks::{EventKind, TicketEvent};
use accessgraph_graph::{Finding, FindingStatus};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// A state change the reconciliation produced: the event and the finding,
/// by its position (findings are not copied per change: a first analysis
/// at 100k people opens 200k of them).
pub type StateChange = (EventKind, Changed);

/// Where the finding of a [`StateChange`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    /// The finding at this position of the analysis's findings.
    Current(usize),
    /// The finding at this position of [`Reconciled::resolved`].
    Resolved(usize),
}

/// What reconciling an analysis with the stored findings did. The
/// analysis's own findings now carry their stored status and dates.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// Findings that resolved in this analysis.
    pub resolved: Vec<Finding>,
    /// State changes (opened, updated, resolved, reopened).
    pub changes: Vec<StateChange>,
    /// Outbox rows written.
    pub outbox_rows: u64,
}

impl Reconciled {
    /// Each state change with its finding; `current` is the slice that was
    /// reconciled.
    pub fn events<'a>(&'a self, current: &'a [Finding]) -> impl Iterator<Item = (EventKind, &'a Finding)> + 'a {
        self.changes.iter().filter_map(move |&(event, changed)| {
            let finding = match changed {
                Changed::Current(i) => current.get(i),
                Changed::Resolved(i) => self.resolved.get(i),
            };
            finding.map(|f| (event, f))
        })
    }
}

/// A stored finding's lifecycle and digests: what a reconciliation needs of
/// it, without its body (decoded only for the findings that resolve).
struct Stored {
    status: FindingStatus,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    muted_until: Option<DateTime<Utc>>,
    last_event: Option<String>,
    digests: Digests,
    /// This analysis has it.
    seen: bool,
}

/// What a reconciliation compares of a finding, as digests (the first 16
/// bytes of SHA-256, hex, like row body hashes): `material` covers severity
/// and evidence, whose change files an `updated` event; `record` covers the
/// wording (title, detail, remediation), refreshed in the store silently.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Digests {
    material: String,
    record: String,
}

impl Digests {
    fn of(finding: &Finding) -> Digests {
        let mut material = Sha256::new();
        digest_field(&mut material, finding.severity.as_str());
        material.update((finding.evidence.len() as u64).to_le_bytes());
        for row in &finding.evidence {
            material.update((row.len() as u64).to_le_bytes());
            row.iter().for_each(|cell| digest_field(&mut material, cell));
        }
        let mut record = Sha256::new();
        for field in [&finding.title, &finding.detail, &finding.remediation] {
            digest_field(&mut record, field);
        }
        let text = |digest| String::from_utf8_lossy(&super::short_hex(digest)).into_owned();
        Digests { material: text(material), record: text(record) }
    }
}

/// A field with its length first, so no two field lists digest alike.
fn digest_field(digest: &mut Sha256, field: &str) {
    digest.update((field.len() as u64).to_le_bytes());
    digest.update(field.as_bytes());
}

fn visible_open(last_event: Option<&str>) -> bool {
    matches!(last_event, Some("opened" | "updated" | "reopened"))
}

/// Rows per multi-row INSERT: under both databases' bind limits.
const BATCH: usize = 200;

/// Fingerprints per `IN (…)` look-up of resolved findings.
const LOOKUP_BATCH: usize = 500;

/// `store_meta` key: the instant of the last reconciliation. Every finding
/// not resolved was seen by it, so its `last_seen` is that instant; the row
/// keeps the instant it was last written. Moving one value instead of
/// rewriting every open finding's row (bodies of a kilobyte or more, 200k
/// of them at 100k people) each cycle.
const SEEN_AT: &str = "findings_seen_at";

/// `SELECT … FROM findings` of the columns `row_to_finding` reads, the
/// reconciliation instant with them (one statement: one snapshot of both,
/// on either database).
fn select_findings(tail: &str) -> String {
    format!(
        "SELECT body, status, first_seen, last_seen, muted_until, last_event, \
         (SELECT value FROM store_meta WHERE key = '{SEEN_AT}') AS seen_at FROM findings{tail}"
    )
}

/// What a reconciliation reads of a stored finding ([`StoredRow`]): the
/// body only of rows written before digests were kept.
const STORED_COLUMNS: &str = "fingerprint, status, first_seen, last_seen, muted_until, last_event, material_digest, \
     record_digest, CASE WHEN material_digest IS NULL OR record_digest IS NULL THEN body END";

/// `SELECT` [`STORED_COLUMNS`] `FROM findings`, `tail` appended.
fn select_stored(tail: &str) -> String {
    format!("SELECT {STORED_COLUMNS} FROM findings{tail}")
}

/// [`STORED_COLUMNS`] of one row, from a row or from an element of an
/// SQLite window (a JSON array of them).
#[derive(serde::Deserialize)]
struct StoredRow(String, String, i64, i64, Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>);

impl StoredRow {
    fn of(row: &sqlx::any::AnyRow) -> Result<StoredRow, StoreError> {
        Ok(StoredRow(
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            row.try_get(6)?,
            row.try_get(7)?,
            row.try_get(8)?,
        ))
    }

    /// (fingerprint, lifecycle); `seen_at` is the last reconciliation's instant.
    fn into_stored(self, seen_at: Option<i64>) -> Result<(String, Stored), StoreError> {
        let StoredRow(fingerprint, status, first_seen, last_seen, muted_until, last_event, material, record, body) =
            self;
        let status = parse_status(&status)?;
        let digests = match (material, record) {
            (Some(material), Some(record)) => Digests { material, record },
            _ => {
                let body = body.ok_or_else(|| StoreError::Corrupt(format!("finding `{fingerprint}` has no body")))?;
                Digests::of(&decode_json::<Finding>(&body)?)
            }
        };
        let stored = Stored {
            status,
            first_seen: from_micros(first_seen),
            last_seen: seen_by(last_seen, seen_at, status),
            muted_until: muted_until.map(from_micros),
            last_event,
            digests,
            seen: false,
        };
        Ok((fingerprint, stored))
    }
}

/// One SQLite window ([`super::json_window_sql`]) of the open and muted
/// findings' [`STORED_COLUMNS`], past the rowid bound to `$1`.
pub(super) fn open_findings_window_sql() -> String {
    super::json_window_sql(
        Some(&format!("json_array({STORED_COLUMNS})")),
        "findings NOT INDEXED WHERE status IN ('open', 'muted')",
        1,
    )
}

/// The last reconciliation's instant ([`SEEN_AT`]).
async fn read_seen_at(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<Option<i64>, StoreError> {
    let row =
        sqlx::query("SELECT value FROM store_meta WHERE key = $1").bind(SEEN_AT).fetch_optional(&mut **tx).await?;
    let value: Option<String> = row.map(|row| row.try_get("value")).transpose()?;
    value.map(|value| parse_seen_at(&value)).transpose()
}

fn parse_seen_at(value: &str) -> Result<i64, StoreError> {
    value.parse().map_err(|_| StoreError::Corrupt(format!("store_meta {SEEN_AT} `{value}`")))
}

/// When a finding was last seen: the instant its row was written, or the
/// last reconciliation's for a finding not resolved (see [`SEEN_AT`]).
fn seen_by(written: i64, seen_at: Option<i64>, status: FindingStatus) -> DateTime<Utc> {
    from_micros(match seen_at {
        Some(seen) if status != FindingStatus::Resolved => written.max(seen),
        _ => written,
    })
}

fn parse_status(status: &str) -> Result<FindingStatus, StoreError> {
    FindingStatus::parse(status).ok_or_else(|| StoreError::Corrupt(format!("status `{status}`")))
}

fn row_to_finding(row: &sqlx::any::AnyRow) -> Result<Finding, StoreError> {
    let body: String = row.try_get("body")?;
    let mut finding: Finding = decode_json(&body)?;
    finding.status = parse_status(&row.try_get::<String, _>("status")?)?;
    finding.first_seen = from_micros(row.try_get("first_seen")?);
    let seen_at: Option<String> = row.try_get("seen_at")?;
    let seen_at = seen_at.map(|value| parse_seen_at(&value)).transpose()?;
    finding.last_seen = seen_by(row.try_get("last_seen")?, seen_at, finding.status);
    Ok(finding)
}

impl Store {
    /// Reconciles the findings of an analysis at `now` with the stored ones
    /// and queues each state change for every sink that takes it. Each
    /// finding is updated in place with its stored lifecycle (status, first
    /// and last sighting).
    pub async fn reconcile_findings(
        &self,
        findings: &mut [Finding],
        now: DateTime<Utc>,
        sinks: &[SinkConfig],
    ) -> Result<Reconciled, StoreError> {
        let _turn = self.write_turn().await;
        let mut conn = self.bulk_connection().await?;
        let mut tx = conn.begin().await?;
        if self.backend == super::Backend::Postgres {
            // Replicas (or a `scan` beside the daemon) reconcile one at a
            // time: two concurrent reconciliations would both see a finding
            // change and both queue its event. The lock ends with the
            // transaction; the reads below see the previous one's commit.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(super::lease_key("reconcile"))
                .execute(&mut *tx)
                .await?;
        }
        let started = std::time::Instant::now();
        let seen_at = read_seen_at(&mut tx).await?;
        let mut stored: BTreeMap<String, Stored> = BTreeMap::new();
        // Resolved findings are history that grows every cycle; only those
        // this analysis has again (reopened) are read, below.
        match self.backend {
            super::Backend::Sqlite => {
                // In windows of rows (see `sqlite_windows`), by rowid: the
                // status index is not in rowid order.
                let sql = open_findings_window_sql();
                let mut windows = super::json_windows(&mut tx, sql, Vec::new(), "open findings".into());
                while let Some(window) = futures_util::TryStreamExt::try_next(&mut windows).await? {
                    for row in super::decode_window::<StoredRow>(&window)? {
                        let (fingerprint, entry) = row.into_stored(seen_at)?;
                        stored.insert(fingerprint, entry);
                    }
                }
            }
            super::Backend::Postgres => {
                // Decoded as they come: the rows are never all held beside them.
                let sql = select_stored(" WHERE status IN ('open', 'muted')");
                let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *tx);
                while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
                    let (fingerprint, entry) = StoredRow::of(&row)?.into_stored(seen_at)?;
                    stored.insert(fingerprint, entry);
                }
            }
        }
        let resolved: i64 = sqlx::query("SELECT COUNT(*) AS n FROM findings WHERE status = 'resolved'")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if resolved > 0 {
            let unseen: Vec<&str> =
                findings.iter().map(|f| f.fingerprint.as_str()).filter(|fp| !stored.contains_key(*fp)).collect();
            for chunk in unseen.chunks(LOOKUP_BATCH) {
                let tail = format!(
                    " WHERE status = 'resolved' AND fingerprint IN ({})",
                    self.backend.param_list(1, chunk.len())
                );
                let query = super::bind_texts(sqlx::query(sqlx::AssertSqlSafe(select_stored(&tail))), chunk);
                for row in query.fetch_all(&mut *tx).await? {
                    let (fingerprint, entry) = StoredRow::of(&row)?.into_stored(seen_at)?;
                    stored.insert(fingerprint, entry);
                }
            }
        }
        let mut updated = 0u64;
        let now_us = to_micros(now);
        let mut out = Reconciled::default();
        let mut new_rows: Vec<(usize, Option<String>)> = Vec::new();
        for (position, finding) in findings.iter_mut().enumerate() {
            let old = stored.get_mut(&finding.fingerprint);
            let digests = old.is_some().then(|| Digests::of(finding));
            let (event, status, muted_until, last_event) = match (&old, &digests) {
                (Some(old), Some(digests)) => {
                    finding.first_seen = old.first_seen;
                    let muted = old.muted_until.is_some_and(|until| until > now) && old.status == FindingStatus::Muted;
                    let event = if muted {
                        None
                    } else if !visible_open(old.last_event.as_deref()) {
                        Some(if old.last_event.is_none() { EventKind::Opened } else { EventKind::Reopened })
                    } else if old.digests.material != digests.material {
                        // Severity or evidence: worth telling a ticket about.
                        // Wording that moves on its own (ages in days) is
                        // refreshed in the store silently.
                        Some(EventKind::Updated)
                    } else {
                        None
                    };
                    let status = if muted { FindingStatus::Muted } else { FindingStatus::Open };
                    (event, status, if muted { old.muted_until } else { None }, old.last_event.clone())
                }
                _ => (Some(EventKind::Opened), FindingStatus::Open, None, None),
            };
            finding.status = status;
            finding.last_seen = now;
            let last_event = event.map(|e| e.as_str().to_string()).or(last_event);
            match (old, digests) {
                // Unchanged: only `last_seen` moves, in one statement below.
                (Some(old), Some(digests)) if event.is_none() && old.status == status && old.digests == digests => {
                    old.seen = true;
                }
                (Some(old), Some(digests)) => {
                    old.seen = true;
                    updated += 1;
                    let body = serde_json::to_string(&*finding).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    sqlx::query(
                        "UPDATE findings SET rule = $1, severity = $2, subject = $3, object = $4, status = $5, \
                         last_seen = $6, resolved_at = NULL, muted_until = $7, last_event = $8, body = $9, \
                         material_digest = $10, record_digest = $11 WHERE fingerprint = $12",
                    )
                    .bind(finding.rule.as_str())
                    .bind(finding.severity.as_str())
                    .bind(finding.subject.as_str())
                    .bind(finding.object.as_str())
                    .bind(status.as_str())
                    .bind(now_us)
                    .bind(muted_until.map(to_micros))
                    .bind(last_event)
                    .bind(body)
                    .bind(digests.material)
                    .bind(digests.record)
                    .bind(finding.fingerprint.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                _ => new_rows.push((position, last_event)),
            }
            if let Some(event) = event {
                out.changes.push((event, Changed::Current(position)));
            }
        }
        {
            let mut pipeline = Pipeline::new(&mut tx);
            insert_findings(&mut pipeline, self.backend, findings, &new_rows, now_us).await?;
            pipeline.settle().await?;
        }
        // Resolutions, written in batches of rows that take the same values.
        // The body is left as it was: the status column is the record's
        // status (`row_to_finding`), and nothing else in it changes. Only
        // these findings' bodies are read: their events carry them.
        let resolving: Vec<&str> = stored
            .iter()
            .filter(|(_, old)| !old.seen && old.status != FindingStatus::Resolved)
            .map(|(fingerprint, _)| fingerprint.as_str())
            .collect();
        let mut resolutions: BTreeMap<(i64, Option<String>), Vec<&str>> = BTreeMap::new();
        for chunk in resolving.chunks(LOOKUP_BATCH) {
            let tail = format!(" WHERE fingerprint IN ({})", self.backend.param_list(1, chunk.len()));
            let query = super::bind_texts(sqlx::query(sqlx::AssertSqlSafe(select_findings(&tail))), chunk);
            let mut bodies: BTreeMap<String, Finding> = BTreeMap::new();
            for row in query.fetch_all(&mut *tx).await? {
                let finding = row_to_finding(&row)?;
                bodies.insert(finding.fingerprint.clone(), finding);
            }
            for &fingerprint in chunk {
                let (Some(old), Some(mut finding)) = (stored.get(fingerprint), bodies.remove(fingerprint)) else {
                    return Err(StoreError::Corrupt(format!("finding `{fingerprint}` has no body to resolve")));
                };
                // A ticket that was filed (or queued) is closed even if the
                // finding was muted since: the mute suppresses filing, not the record.
                finding.status = FindingStatus::Resolved;
                let event = visible_open(old.last_event.as_deref()).then_some(EventKind::Resolved);
                let last_event = event.map(|e| e.as_str().to_string()).or(old.last_event.clone());
                // Last seen by the previous reconciliation (the row may be older).
                resolutions.entry((to_micros(old.last_seen), last_event)).or_default().push(fingerprint);
                if let Some(event) = event {
                    out.changes.push((event, Changed::Resolved(out.resolved.len())));
                }
                out.resolved.push(finding);
            }
        }
        for ((last_seen, last_event), fingerprints) in &resolutions {
            for chunk in fingerprints.chunks(BATCH) {
                let sql = format!(
                    "UPDATE findings SET status = 'resolved', resolved_at = {}, last_seen = {}, last_event = {} \
                     WHERE fingerprint IN ({})",
                    self.backend.param(1),
                    self.backend.param(2),
                    self.backend.param(3),
                    self.backend.param_list(4, chunk.len())
                );
                let query = super::bind_texts(
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_us).bind(*last_seen).bind(last_event.clone()),
                    chunk,
                );
                query.execute(&mut *tx).await?;
            }
        }
        // Every finding still open or muted was seen by this analysis.
        sqlx::query("DELETE FROM store_meta WHERE key = $1").bind(SEEN_AT).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO store_meta (key, value) VALUES ($1, $2)")
            .bind(SEEN_AT)
            .bind(now_us.to_string())
            .execute(&mut *tx)
            .await?;
        // Each state change queued for every sink that takes it, in the
        // order of the changes.
        let filed = filed_sinks(&mut tx, self.backend, &out, findings).await?;
        {
            let mut outbox = OutboxWriter::new(self.backend, now_us);
            let mut pipeline = Pipeline::new(&mut tx);
            for (event, finding) in out.events(findings) {
                outbox.push(&mut pipeline, outbox_rows(sinks, &filed, event, finding, now)?).await?;
            }
            out.outbox_rows = outbox.finish(&mut pipeline).await?;
            pipeline.settle().await?;
        }
        let committed = BulkConnection::commit(tx, self.backend).await;
        if committed.is_ok() {
            conn.checkpoint_in_background();
        }
        committed?;
        tracing::debug!(
            stored = stored.len(),
            new = new_rows.len(),
            updated,
            resolved = out.resolved.len(),
            outbox_rows = out.outbox_rows,
            elapsed_ms = started.elapsed().as_millis() as u64,
            rss_mib = crate::memory::resident_mib(),
            "findings reconciled"
        );
        Ok(out)
    }

    /// Stored findings, filtered.
    pub async fn findings(
        &self,
        status: Option<FindingStatus>,
        rule: Option<&str>,
    ) -> Result<Vec<Finding>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(select_findings(" ORDER BY fingerprint"))).fetch_all(&self.pool).await?;
        let mut out = Vec::new();
        for row in &rows {
            let finding = row_to_finding(row)?;
            if status.is_some_and(|s| s != finding.status) {
                continue;
            }
            if rule.is_some_and(|r| !accessgraph_config::glob_match(r, &finding.rule)) {
                continue;
            }
            out.push(finding);
        }
        accessgraph_graph::analyze::sort_findings(&mut out);
        Ok(out)
    }

    /// Stored findings counted by status, rule and severity (for metrics).
    pub async fn finding_counts(&self) -> Result<Vec<(FindingStatus, String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT status, rule, severity, COUNT(*) AS n FROM findings GROUP BY status, rule, severity \
             ORDER BY status, rule, severity",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let status: String = row.try_get("status")?;
            let status =
                FindingStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status `{status}`")))?;
            out.push((status, row.try_get("rule")?, row.try_get("severity")?, row.try_get("n")?));
        }
        Ok(out)
    }

    /// Mutes a finding until `until`; false when no finding has that fingerprint.
    pub async fn mute(&self, fingerprint: &str, reason: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE findings SET status = 'muted', muted_reason = $1, muted_until = $2 \
             WHERE fingerprint = $3 AND status <> 'resolved'",
        )
        .bind(reason)
        .bind(to_micros(until))
        .bind(fingerprint)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }
}

/// Sinks that already hold a ticket per fingerprint: later changes go to
/// them even if the finding no longer passes their filter. Read only for
/// the findings of changes other than `opened` (an opening goes by the
/// sink's filter alone), through `outbox_fingerprint`: the outbox keeps
/// every event ever queued, and reading all of it each analysis grew with
/// every cycle.
async fn filed_sinks(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: super::Backend,
    reconciled: &Reconciled,
    current: &[Finding],
) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
    let asked: BTreeSet<&str> = reconciled
        .events(current)
        .filter(|(event, _)| *event != EventKind::Opened)
        .map(|(_, finding)| finding.fingerprint.as_str())
        .collect();
    let asked: Vec<&str> = asked.into_iter().collect();
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for chunk in asked.chunks(LOOKUP_BATCH) {
        let sql = format!(
            "SELECT DISTINCT fingerprint, sink FROM outbox WHERE fingerprint IN ({})",
            backend.param_list(1, chunk.len())
        );
        let query = super::bind_texts(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk);
        for row in query.fetch_all(&mut **tx).await? {
            map.entry(row.try_get("fingerprint")?).or_default().insert(row.try_get("sink")?);
        }
    }
    Ok(map)
}

/// One outbox row to write.
struct OutboxInsert {
    sink: String,
    fingerprint: String,
    event: EventKind,
    payload: String,
}

/// The outbox rows of one state change: one per sink that takes it.
fn outbox_rows(
    sinks: &[SinkConfig],
    filed: &BTreeMap<String, BTreeSet<String>>,
    event: EventKind,
    finding: &Finding,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxInsert>, StoreError> {
    let mut rows = Vec::new();
    for sink in sinks {
        let already = filed.get(&finding.fingerprint).is_some_and(|set| set.contains(&sink.name));
        let wanted = match event {
            EventKind::Opened => sink.accepts(&finding.rule, finding.severity),
            _ => already || sink.accepts(&finding.rule, finding.severity),
        };
        if !wanted {
            continue;
        }
        // The event id is the outbox row id, set at delivery.
        let payload = TicketEvent::new(event, String::new(), finding, now);
        let payload = serde_json::to_string(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        rows.push(OutboxInsert { sink: sink.name.clone(), fingerprint: finding.fingerprint.clone(), event, payload });
    }
    Ok(rows)
}

/// Outbox rows written in batches as the changes are met, instead of
/// every payload held to the end (200k of them on a first analysis at 100k
/// people). The order of the rows is the order they were pushed.
struct OutboxWriter {
    backend: super::Backend,
    now_us: i64,
    pending: Vec<OutboxInsert>,
    written: u64,
}

impl OutboxWriter {
    fn new(backend: super::Backend, now_us: i64) -> OutboxWriter {
        OutboxWriter { backend, now_us, pending: Vec::with_capacity(BATCH), written: 0 }
    }

    async fn push(&mut self, pipeline: &mut Pipeline<'_, '_>, rows: Vec<OutboxInsert>) -> Result<(), StoreError> {
        self.pending.extend(rows);
        if self.pending.len() >= BATCH {
            self.flush(pipeline).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, pipeline: &mut Pipeline<'_, '_>) -> Result<(), StoreError> {
        self.written += insert_outbox(pipeline, self.backend, std::mem::take(&mut self.pending), self.now_us).await?;
        self.pending.reserve(BATCH);
        Ok(())
    }

    /// Writes what is left; the number of rows written in all.
    async fn finish(mut self, pipeline: &mut Pipeline<'_, '_>) -> Result<u64, StoreError> {
        self.flush(pipeline).await?;
        Ok(self.written)
    }
}

async fn insert_outbox(
    pipeline: &mut Pipeline<'_, '_>,
    backend: super::Backend,
    rows: Vec<OutboxInsert>,
    now_us: i64,
) -> Result<u64, StoreError> {
    let written = rows.len() as u64;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<OutboxInsert> = rows.by_ref().take(BATCH).collect();
        let sql = format!(
            "{} outbox (sink, fingerprint, event, payload, created_at, next_attempt_at) VALUES {}",
            backend.bulk_insert(),
            backend.values_clause(chunk.len(), 6)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = query
                .bind(row.sink)
                .bind(row.fingerprint)
                .bind(row.event.as_str())
                .bind(row.payload)
                .bind(now_us)
                .bind(now_us);
        }
        pipeline.send(query).await?;
    }
    Ok(written)
}

/// Inserts the new findings: `rows` are (position in `findings`, last event).
async fn insert_findings(
    pipeline: &mut Pipeline<'_, '_>,
    backend: super::Backend,
    findings: &[Finding],
    rows: &[(usize, Option<String>)],
    now_us: i64,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(BATCH) {
        let sql = format!(
            "{} findings (fingerprint, rule, severity, subject, object, status, first_seen, last_seen, \
             last_event, body, material_digest, record_digest) VALUES {}",
            backend.bulk_insert(),
            backend.values_clause(chunk.len(), 12)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (position, last_event) in chunk {
            let Some(finding) = findings.get(*position) else { continue };
            let body = serde_json::to_string(finding).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let digests = Digests::of(finding);
            query = query
                .bind(finding.fingerprint.clone())
                .bind(finding.rule.clone())
                .bind(finding.severity.as_str())
                .bind(finding.subject.clone())
                .bind(finding.object.clone())
                .bind(finding.status.as_str())
                .bind(now_us)
                .bind(now_us)
                .bind(last_event.clone())
                .bind(body)
                .bind(digests.material)
                .bind(digests.record);
        }
        pipeline.send(query).await?;
    }
    Ok(())
}
