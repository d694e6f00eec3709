-- +goose Up
-- The agent's own supervision policy; NULL: the server's default.
ALTER TABLE agents ADD COLUMN policy JSONB;
-- The latest heartbeat any replica received (Unix nanoseconds), written in batches.
ALTER TABLE agents ADD COLUMN heartbeat_at BIGINT;

-- Named leases: the replica acting as supervisor.
CREATE TABLE leases (
    name  TEXT   PRIMARY KEY,
    owner TEXT   NOT NULL,
    until BIGINT NOT NULL -- Unix nanoseconds
);

-- +goose Down
DROP TABLE leases;
ALTER TABLE agents DROP COLUMN heartbeat_at;
ALTER TABLE agents DROP COLUMN policy;
