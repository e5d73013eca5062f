-- The Slack channel: messages received and not yet handled, threads bound to sessions,
-- and the people an admin approved.

-- Every message received from Slack, by its identity "<channel>/<ts>": Slack's retries
-- and the two events one mention produces (app_mention, message) are one row. Slack
-- gets its answer once the row is written; the work happens after, and a restart
-- finishes what a crash left (handled_ms NULL).
CREATE TABLE slack_inbox (
    key         TEXT PRIMARY KEY NOT NULL,
    -- The event JSON as Slack sent it.
    event       TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    handled_ms  INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX slack_inbox_pending ON slack_inbox (received_ms) WHERE handled_ms IS NULL;

-- A thread that follows a session: the session's messages, answers, errors and files are
-- posted there. A session may have several threads (`take_over`).
CREATE TABLE slack_threads (
    channel       TEXT NOT NULL,
    thread_ts     TEXT NOT NULL,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- The last event of the session posted to the thread, or passed over.
    delivered_seq INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (channel, thread_ts)
) STRICT, WITHOUT ROWID;

CREATE INDEX slack_threads_by_session ON slack_threads (session_id);

-- People allowed beside the admins (`approve_user`), until revoked.
CREATE TABLE slack_approvals (
    user_id     TEXT PRIMARY KEY NOT NULL,
    approved_by TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Things said once, by a key (a refusal to one person in one thread).
CREATE TABLE slack_said (
    key        TEXT PRIMARY KEY NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
