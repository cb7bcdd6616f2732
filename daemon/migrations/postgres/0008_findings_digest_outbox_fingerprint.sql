-- Digests of what a reconciliation compares in a finding (severity and
-- evidence; title, detail and remediation), so each analysis compares two
-- short columns instead of decoding every open finding's body. Rows written
-- before this migration have none: they are read with their body and
-- compared as before, and gain digests when next written.
ALTER TABLE findings ADD COLUMN material_digest TEXT;
ALTER TABLE findings ADD COLUMN record_digest TEXT;

-- The sinks that hold a ticket for a finding, looked up for the findings
-- whose state changed instead of reading the whole outbox (every event ever
-- queued) on each analysis.
CREATE INDEX outbox_fingerprint ON outbox (fingerprint, sink);
