-- Responses kept between syncs for conditional requests (ETag / If-None-Match):
-- a connector's cache, one slice per source. Only complete 2xx bodies are
-- stored; keys are request URLs, which never carry credentials.
CREATE TABLE http_cache (
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    etag TEXT NOT NULL,
    link TEXT,
    body BLOB NOT NULL,
    stored_at BIGINT NOT NULL,
    PRIMARY KEY (source, key)
);
