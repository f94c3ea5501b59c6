-- +goose Up
-- Erasure (internal/erase, docs/privacy.md): where erased text was, the
-- projections say when and in which role it was erased. Rebuilt by replay
-- (the `erased` events set them again).
ALTER TABLE tickets ADD COLUMN erased_at TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN erased_by_role TEXT NOT NULL DEFAULT '';
ALTER TABLE comments ADD COLUMN erased_at TEXT NOT NULL DEFAULT '';
ALTER TABLE comments ADD COLUMN erased_by_role TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN erased_at TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN erased_by_role TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE users DROP COLUMN erased_by_role;
ALTER TABLE users DROP COLUMN erased_at;
ALTER TABLE comments DROP COLUMN erased_by_role;
ALTER TABLE comments DROP COLUMN erased_at;
ALTER TABLE tickets DROP COLUMN erased_by_role;
ALTER TABLE tickets DROP COLUMN erased_at;
