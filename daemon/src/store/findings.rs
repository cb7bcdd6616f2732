//! The findings lifecycle: open, update, resolve, reopen, mute; each state
//! change becomes outbox rows in the same transaction.

use super::{Store, StoreError, decode_json, from_micros, opt_time, to_micros};
use accessgraph_config::SinkConfig;
use accessgraph_connectors::sinks::{EventKind, TicketEvent};
use accessgraph_graph::{Finding, FindingStatus};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// A state change the reconciliation produced.
pub type StateChange = (EventKind, Finding);

/// What reconciling an analysis with the stored findings did.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// Every finding of this analysis with its stored status and dates.
    pub current: Vec<Finding>,
    /// Findings that resolved in this analysis.
    pub resolved: Vec<Finding>,
    /// State changes (opened, updated, resolved, reopened).
    pub changes: Vec<StateChange>,
    /// Outbox rows written.
    pub outbox_rows: u64,
}

struct Stored {
    finding: Finding,
    muted_until: Option<DateTime<Utc>>,
    last_event: Option<String>,
}

fn visible_open(last_event: Option<&str>) -> bool {
    matches!(last_event, Some("opened" | "updated" | "reopened"))
}

fn changed(old: &Finding, new: &Finding) -> bool {
    old.severity != new.severity || old.evidence != new.evidence || old.detail != new.detail || old.title != new.title
}

fn row_to_finding(row: &sqlx::any::AnyRow) -> Result<Stored, StoreError> {
    let body: String = row.try_get("body")?;
    let mut finding: Finding = decode_json(&body)?;
    let status: String = row.try_get("status")?;
    finding.status = FindingStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status `{status}`")))?;
    finding.first_seen = from_micros(row.try_get("first_seen")?);
    finding.last_seen = from_micros(row.try_get("last_seen")?);
    Ok(Stored { finding, muted_until: opt_time(row, "muted_until")?, last_event: row.try_get("last_event")? })
}

impl Store {
    /// Reconciles the findings of an analysis at `now` with the stored ones
    /// and queues each state change for every sink that takes it.
    pub async fn reconcile_findings(
        &self,
        findings: &[Finding],
        now: DateTime<Utc>,
        sinks: &[SinkConfig],
    ) -> Result<Reconciled, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("SELECT body, status, first_seen, last_seen, muted_until, last_event FROM findings")
            .fetch_all(&mut *tx)
            .await?;
        let mut stored: BTreeMap<String, Stored> = BTreeMap::new();
        for row in &rows {
            let entry = row_to_finding(row)?;
            stored.insert(entry.finding.fingerprint.clone(), entry);
        }
        let filed = filed_sinks(&mut tx).await?;
        let now_us = to_micros(now);
        let mut out = Reconciled::default();
        let mut seen = BTreeSet::new();
        for new in findings {
            seen.insert(new.fingerprint.clone());
            let mut finding = new.clone();
            let (event, status, muted_until, last_event) = match stored.get(&new.fingerprint) {
                None => (Some(EventKind::Opened), FindingStatus::Open, None, None),
                Some(old) => {
                    finding.first_seen = old.finding.first_seen;
                    let muted =
                        old.muted_until.is_some_and(|until| until > now) && old.finding.status == FindingStatus::Muted;
                    let event = if muted {
                        None
                    } else if !visible_open(old.last_event.as_deref()) {
                        Some(if old.last_event.is_none() { EventKind::Opened } else { EventKind::Reopened })
                    } else if changed(&old.finding, new) {
                        Some(EventKind::Updated)
                    } else {
                        None
                    };
                    let status = if muted { FindingStatus::Muted } else { FindingStatus::Open };
                    (event, status, if muted { old.muted_until } else { None }, old.last_event.clone())
                }
            };
            finding.status = status;
            finding.last_seen = now;
            let body = serde_json::to_string(&finding).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let last_event = event.map(|e| e.as_str().to_string()).or(last_event);
            if stored.contains_key(&finding.fingerprint) {
                sqlx::query(
                    "UPDATE findings SET rule = $1, severity = $2, subject = $3, object = $4, status = $5, \
                     last_seen = $6, resolved_at = NULL, muted_until = $7, last_event = $8, body = $9 \
                     WHERE fingerprint = $10",
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
                .bind(finding.fingerprint.as_str())
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "INSERT INTO findings (fingerprint, rule, severity, subject, object, status, first_seen, \
                     last_seen, last_event, body) VALUES ($1, $2, $3, $4, $5, 'open', $6, $6, $7, $8)",
                )
                .bind(finding.fingerprint.as_str())
                .bind(finding.rule.as_str())
                .bind(finding.severity.as_str())
                .bind(finding.subject.as_str())
                .bind(finding.object.as_str())
                .bind(now_us)
                .bind(last_event)
                .bind(body)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(event) = event {
                out.outbox_rows += enqueue(&mut tx, sinks, &filed, event, &finding, now).await?;
                out.changes.push((event, finding.clone()));
            }
            out.current.push(finding);
        }
        for (fingerprint, old) in &stored {
            if seen.contains(fingerprint) || old.finding.status == FindingStatus::Resolved {
                continue;
            }
            // A ticket that was filed (or queued) is closed even if the finding
            // was muted since: the mute suppresses filing, not the record.
            let mut finding = old.finding.clone();
            finding.status = FindingStatus::Resolved;
            let event = visible_open(old.last_event.as_deref()).then_some(EventKind::Resolved);
            let last_event = event.map(|e| e.as_str().to_string()).or(old.last_event.clone());
            let body = serde_json::to_string(&finding).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "UPDATE findings SET status = 'resolved', resolved_at = $1, last_event = $2, body = $3 \
                 WHERE fingerprint = $4",
            )
            .bind(now_us)
            .bind(last_event)
            .bind(body)
            .bind(fingerprint.as_str())
            .execute(&mut *tx)
            .await?;
            if let Some(event) = event {
                out.outbox_rows += enqueue(&mut tx, sinks, &filed, event, &finding, now).await?;
                out.changes.push((event, finding.clone()));
            }
            out.resolved.push(finding);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Stored findings, filtered.
    pub async fn findings(
        &self,
        status: Option<FindingStatus>,
        rule: Option<&str>,
    ) -> Result<Vec<Finding>, StoreError> {
        let rows = sqlx::query(
            "SELECT body, status, first_seen, last_seen, muted_until, last_event FROM findings ORDER BY fingerprint",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let stored = row_to_finding(row)?;
            if status.is_some_and(|s| s != stored.finding.status) {
                continue;
            }
            if rule.is_some_and(|r| !accessgraph_config::glob_match(r, &stored.finding.rule)) {
                continue;
            }
            out.push(stored.finding);
        }
        accessgraph_graph::analyze::sort_findings(&mut out);
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
/// them even if the finding no longer passes their filter.
async fn filed_sinks(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
    let rows = sqlx::query("SELECT DISTINCT fingerprint, sink FROM outbox").fetch_all(&mut **tx).await?;
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in rows {
        map.entry(row.try_get("fingerprint")?).or_default().insert(row.try_get("sink")?);
    }
    Ok(map)
}

async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    sinks: &[SinkConfig],
    filed: &BTreeMap<String, BTreeSet<String>>,
    event: EventKind,
    finding: &Finding,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut rows = 0;
    for sink in sinks {
        let already = filed.get(&finding.fingerprint).is_some_and(|set| set.contains(&sink.name));
        let wanted = match event {
            EventKind::Opened => sink.accepts(&finding.rule, finding.severity),
            _ => already || sink.accepts(&finding.rule, finding.severity),
        };
        if !wanted {
            continue;
        }
        // The event id is fixed once the row exists; the payload is rebuilt at
        // delivery from the row id, so store the event without it here.
        let payload = TicketEvent::new(event, String::new(), finding, now);
        let payload = serde_json::to_string(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO outbox (sink, fingerprint, event, payload, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(sink.name.as_str())
        .bind(finding.fingerprint.as_str())
        .bind(event.as_str())
        .bind(payload)
        .bind(to_micros(now))
        .execute(&mut **tx)
        .await?;
        rows += 1;
    }
    Ok(rows)
}
