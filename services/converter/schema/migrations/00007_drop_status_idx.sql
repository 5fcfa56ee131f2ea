-- +goose NO TRANSACTION
-- +goose Up
-- conversions_status_idx (00001) served no query since the tenants
-- migrations: every reader finds an outcome by its key (tenant,
-- transaction_id), and the api's listings by status walk its own
-- status_index. It cost every outcome written an insert into a B-tree of
-- as many entries as there are outcomes, a level deeper as they grow
-- (docs/SCALING.md, "Growth"). Dropped without blocking writes.
DROP INDEX CONCURRENTLY IF EXISTS conversions_status_idx;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS conversions_status_idx ON conversions (status);
