-- The GitHub channel: webhook deliveries received and not yet handled, the issues and
-- pull requests bound to sessions, and where each session's answers go.

-- Every webhook delivery worth handling, by GitHub's delivery id (X-GitHub-Delivery):
-- a redelivery is the same row. GitHub gets its answer once the row is written; the work
-- happens after, and a restart finishes what a crash left (handled_ms NULL).
CREATE TABLE github_inbox (
    delivery_id TEXT PRIMARY KEY NOT NULL,
    -- The X-GitHub-Event header: issue_comment, issues, pull_request_review, ...
    event       TEXT NOT NULL,
    -- The JSON payload as GitHub sent it.
    payload     TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    handled_ms  INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX github_inbox_pending ON github_inbox (received_ms) WHERE handled_ms IS NULL;

-- An issue or a pull request bound to a session: comments and reviews there reach it.
-- A session may have several (the issue that started it, the pull request it opened).
CREATE TABLE github_items (
    -- Lowercase `owner/name` (GitHub ignores case in both).
    repo       TEXT NOT NULL,
    number     INTEGER NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- 1: the item that started the session.
    origin     INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (repo, number)
) STRICT, WITHOUT ROWID;

CREATE INDEX github_items_by_session ON github_items (session_id);

-- Where a session's answers go now (the item of its latest request), and the last event
-- of the session posted there, or passed over.
CREATE TABLE github_replies (
    session_id    TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- Lowercase `owner/name`.
    repo          TEXT NOT NULL,
    number        INTEGER NOT NULL,
    delivered_seq INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
