-- Delivery order per (sink, finding): an outbox row waits for earlier rows of
-- its finding; this index answers that question.
CREATE INDEX outbox_order ON outbox (sink, fingerprint, id);
