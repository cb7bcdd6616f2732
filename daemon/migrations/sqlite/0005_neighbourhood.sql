-- who-can / what-can answered from the store (issue 9): walk edges by
-- endpoint and find nodes by id, instead of loading the whole graph.
CREATE INDEX edges_to ON edges (to_id, valid_to);
CREATE INDEX edges_from ON edges (from_id, valid_to);
CREATE INDEX nodes_id ON nodes (id, valid_to);

-- Keys of human accounts, derived when a node is written (see
-- daemon/src/store/keys.rs), so that the accounts of a person are found by
-- indexed look-ups: the email (trimmed, lower-cased), the id's KEY
-- (lower-cased) and, for accounts with an email, the IdP identifiers.
-- Rows written before this migration are filled in by the store when it
-- opens (store_meta 'node_keys' = 'pending').
ALTER TABLE nodes ADD COLUMN email_key TEXT;
ALTER TABLE nodes ADD COLUMN account_key TEXT;
ALTER TABLE nodes ADD COLUMN user_name_key TEXT;
ALTER TABLE nodes ADD COLUMN external_id_key TEXT;
CREATE INDEX nodes_email_key ON nodes (email_key) WHERE email_key IS NOT NULL;
CREATE INDEX nodes_account_key ON nodes (account_key) WHERE account_key IS NOT NULL;
CREATE INDEX nodes_user_name_key ON nodes (user_name_key) WHERE user_name_key IS NOT NULL;
CREATE INDEX nodes_external_id_key ON nodes (external_id_key) WHERE external_id_key IS NOT NULL;

-- SQLite: an edge's insertion order is its rowid (monotonic: rows are never
-- reused below the maximum), so no column is needed.

-- No query reads by (valid_from, valid_to) alone; every insert paid for them.
DROP INDEX edges_time;
DROP INDEX nodes_time;

CREATE TABLE store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO store_meta (key, value) VALUES ('node_keys', 'pending');
