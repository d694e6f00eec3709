-- +goose Up
CREATE TABLE agents (
    id             TEXT    PRIMARY KEY,
    state          INTEGER NOT NULL,
    previous_state INTEGER NOT NULL,
    revision       INTEGER NOT NULL,
    metadata       TEXT,             -- JSON object, NULL when empty
    labels         TEXT,             -- JSON object, NULL when empty
    created_at     INTEGER NOT NULL, -- Unix nanoseconds
    entered_at     INTEGER NOT NULL,
    error          TEXT,             -- JSON ErrorInfo, NULL unless in ERROR
    last_sequence  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    sequence     INTEGER PRIMARY KEY, -- assigned by the single writer: gap-free, commit order
    id           BLOB    NOT NULL,
    agent_id     TEXT    NOT NULL,
    from_state   INTEGER NOT NULL,
    to_state     INTEGER NOT NULL,
    type         INTEGER NOT NULL,
    time         INTEGER NOT NULL,
    initiated_by TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    revision     INTEGER NOT NULL,
    metadata     TEXT,
    error        TEXT,
    hooks        TEXT
);
CREATE INDEX events_by_agent ON events (agent_id, sequence);
CREATE INDEX events_by_time ON events (time);

CREATE TABLE hooks (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    spec       TEXT    NOT NULL, -- JSON HookSpec
    created_at INTEGER NOT NULL,
    cursor      INTEGER NOT NULL,
    lease_owner TEXT,             -- the process delivering a non-blocking hook
    lease_until INTEGER           -- Unix nanoseconds
) WITHOUT ROWID;

-- Every event with sequence >= retained_from is retained (retention prunes older ones).
CREATE TABLE retention (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    retained_from INTEGER NOT NULL
);
INSERT INTO retention VALUES (1, 1);

-- +goose Down
DROP TABLE retention;
DROP TABLE hooks;
DROP TABLE events;
DROP TABLE agents;
