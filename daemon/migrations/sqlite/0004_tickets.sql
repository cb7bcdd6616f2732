-- Ticket sinks' local mapping: one row per (sink, finding fingerprint).
-- Saves calls and remembers what the ticket last said; the fingerprint label
-- on the remote ticket stays the source of truth (a lost row files nothing twice).
CREATE TABLE tickets (
    sink TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    ticket_key TEXT,
    ticket_url TEXT,
    last_event_id TEXT,
    pending_event_id TEXT,
    rendered TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (sink, fingerprint)
);
