-- Temporal store: every node and edge row is valid over [valid_from, valid_to).
-- Times are microseconds since the Unix epoch (UTC).
CREATE TABLE sync_runs (
    id BIGSERIAL PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    stats TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sync_runs_source ON sync_runs (source, id);

CREATE TABLE nodes (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_to BIGINT,
    PRIMARY KEY (source, id, valid_from)
);
CREATE INDEX nodes_current ON nodes (source, valid_to);
CREATE INDEX nodes_time ON nodes (valid_from, valid_to);

CREATE TABLE edges (
    source TEXT NOT NULL,
    edge_key TEXT NOT NULL,
    from_id TEXT NOT NULL,
    to_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_to BIGINT,
    PRIMARY KEY (source, edge_key, valid_from)
);
CREATE INDEX edges_current ON edges (source, valid_to);
CREATE INDEX edges_time ON edges (valid_from, valid_to);

CREATE TABLE analyses (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    summary TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX analyses_at ON analyses (at);

CREATE TABLE findings (
    fingerprint TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    subject TEXT NOT NULL,
    object TEXT NOT NULL,
    status TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    resolved_at BIGINT,
    muted_reason TEXT,
    muted_until BIGINT,
    last_event TEXT,
    body TEXT NOT NULL
);
CREATE INDEX findings_status ON findings (status, rule);

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    sink TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_pending ON outbox (delivered_at, sink, id);
