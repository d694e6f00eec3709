-- +goose Up
-- The agent's own supervision policy (JSON SupervisionPolicy); NULL: the server's default.
ALTER TABLE agents ADD COLUMN policy TEXT;

-- +goose Down
ALTER TABLE agents DROP COLUMN policy;
