-- The rswe store. The event log (`events`) is the source of truth; `sessions` and
-- `usage` are summaries of it, written in the same transaction as the event they follow.

-- One row per session.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    title        TEXT,
    -- `SessionStatus` as text: working, idle, failed, stopped.
    status       TEXT NOT NULL,
    repository   TEXT,
    model        TEXT NOT NULL,
    -- Where the session was started: cli, web, slack, github, api, ...
    channel      TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    -- Never decreases, even when the clock steps back.
    updated_ms   INTEGER NOT NULL,
    -- The seq of the session's newest event; the next event gets last_seq + 1.
    last_seq     INTEGER NOT NULL DEFAULT 0,
    -- Sum of the known costs of the session's model requests, in dollars.
    cost_usd     REAL NOT NULL DEFAULT 0,
    -- 1 when some model request had no known price: cost_usd is then a lower bound.
    cost_unknown INTEGER NOT NULL DEFAULT 0,
    -- A short preview of the newest message, for lists.
    last_message TEXT,
    -- A JSON object: channel bindings (Slack thread, GitHub issue, ...).
    metadata     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    -- The session's place in the "most recently updated first" order: the key of its
    -- newest row in session_moves. Unique, and increases with every change.
    list_key     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX sessions_by_list_key ON sessions (list_key);

-- Every change of a session's list_key, kept for a few hours so that a paginated listing
-- can place each session where it stood when the listing began (see `Store::list_sessions`).
-- AUTOINCREMENT: keys are never reused, even after old rows are pruned.
CREATE TABLE session_moves (
    list_key   INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- The session's list_key before this move; NULL when the move created the session.
    prev_key   INTEGER,
    at_ms      INTEGER NOT NULL
) STRICT;

CREATE INDEX session_moves_by_session ON session_moves (session_id, list_key);
CREATE INDEX session_moves_by_time ON session_moves (at_ms);

-- The append-only log: seq is 1, 2, 3, ... per session, without gaps.
CREATE TABLE events (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    -- The EventKind tag ("user_message", "assistant_message", ...), for filtering.
    type       TEXT NOT NULL,
    -- The whole `Event` as JSON, exactly as it was appended.
    data       TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) STRICT;

-- One row per model request (assistant message): the tokens it used and what it cost.
CREATE TABLE usage (
    session_id         TEXT NOT NULL,
    seq                INTEGER NOT NULL,
    model              TEXT NOT NULL,
    at_ms              INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    -- Dollars; NULL when the model's price was unknown.
    cost_usd           REAL,
    PRIMARY KEY (session_id, seq),
    FOREIGN KEY (session_id, seq) REFERENCES events (session_id, seq) ON DELETE CASCADE
) STRICT;

CREATE INDEX usage_by_time ON usage (at_ms);

-- Keys of requests already handled (webhook deliveries, client retries), per scope.
CREATE TABLE idempotency_keys (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_ms);
