-- Who may use `rswe serve`: API keys and browser sessions. Secrets are never stored,
-- only their SHA-256 hashes; the server hashes and compares them.

-- One row per API key, revoked ones included (they are kept for the record).
CREATE TABLE api_keys (
    -- The key's public part (`rswe_<id>_<secret>`), used to find the row.
    id           TEXT PRIMARY KEY NOT NULL,
    -- What the key is for, e.g. "ci".
    name         TEXT NOT NULL,
    -- SHA-256 of the whole key.
    key_hash     BLOB NOT NULL,
    created_ms   INTEGER NOT NULL,
    -- Updated at most about once a minute.
    last_used_ms INTEGER,
    -- Set when the key is revoked; a revoked key is never accepted again.
    revoked_ms   INTEGER
) STRICT;

CREATE INDEX api_keys_by_created ON api_keys (created_ms);

-- Signed-in browsers: one row per session cookie.
CREATE TABLE web_sessions (
    -- SHA-256 of the cookie's value.
    id_hash    BLOB PRIMARY KEY NOT NULL,
    -- The token state-changing requests of this session must carry.
    csrf       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    -- The key the browser signed in with; NULL for the one-time sign-in link. Revoking
    -- the key ends its sessions.
    key_id     TEXT REFERENCES api_keys (id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_ms);
CREATE INDEX web_sessions_by_key ON web_sessions (key_id);
