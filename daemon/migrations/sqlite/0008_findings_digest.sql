-- Digests of what a reconciliation compares in a finding (severity and
-- evidence; title, detail and remediation), so each analysis compares two
-- short columns instead of decoding every open finding's body. Rows written
-- before this migration have none: they are read with their body and
-- compared as before, and gain digests when next written.
ALTER TABLE findings ADD COLUMN material_digest TEXT;
ALTER TABLE findings ADD COLUMN record_digest TEXT;
