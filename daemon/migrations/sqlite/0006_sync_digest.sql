-- The digest of every (key, body hash) a complete sync wrote: a re-sync
-- with the same digest as the source's latest complete sync changes no row,
-- so it is recorded without reading or diffing the source's rows.
-- NULL for partial syncs (kept slices) and for syncs before this migration.
ALTER TABLE sync_runs ADD COLUMN digest TEXT;
