-- +goose Up
-- One row: the last sequence handed out. Every committing transaction locks it first, so
-- sequences are gap-free and in commit order across every replica.
CREATE TABLE lifecycle_sequence (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    last      BIGINT  NOT NULL
);
INSERT INTO lifecycle_sequence (last) VALUES (0);

-- Every event with sequence >= retained_from is retained (retention prunes older ones).
CREATE TABLE retention (
    singleton     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    retained_from BIGINT  NOT NULL
);
INSERT INTO retention (retained_from) VALUES (1);

CREATE TABLE agents (
    id             TEXT     PRIMARY KEY,
    state          SMALLINT NOT NULL,
    previous_state SMALLINT NOT NULL,
    revision       BIGINT   NOT NULL,
    metadata       JSONB,
    labels         JSONB,
    created_at     BIGINT   NOT NULL, -- Unix nanoseconds
    entered_at     BIGINT   NOT NULL,
    error          JSONB,
    last_sequence  BIGINT   NOT NULL
);

CREATE TABLE events (
    sequence     BIGINT   PRIMARY KEY,
    id           UUID     NOT NULL,
    agent_id     TEXT     NOT NULL,
    from_state   SMALLINT NOT NULL,
    to_state     SMALLINT NOT NULL,
    type         SMALLINT NOT NULL,
    time         BIGINT   NOT NULL,
    initiated_by TEXT     NOT NULL,
    reason       TEXT     NOT NULL,
    revision     BIGINT   NOT NULL,
    metadata     JSONB,
    error        JSONB,
    hooks        JSONB
);
CREATE INDEX events_by_agent ON events (agent_id, sequence);
CREATE INDEX events_by_time ON events (time);
-- Filtered history (agent + type + time range) touches only the matching rows.
CREATE INDEX events_by_agent_type_time ON events (agent_id, type, time);

CREATE TABLE hooks (
    id          TEXT   PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    spec        JSONB  NOT NULL,
    created_at  BIGINT NOT NULL,
    cursor      BIGINT NOT NULL,
    lease_owner TEXT,   -- the replica delivering a non-blocking hook
    lease_until BIGINT  -- Unix nanoseconds
);

-- +goose Down
DROP TABLE retention;
DROP TABLE hooks;
DROP TABLE events;
DROP TABLE agents;
DROP TABLE lifecycle_sequence;
