-- +goose NO TRANSACTION
-- +goose Up
-- Uniqueness of (tenant, transaction_id), built without blocking writes;
-- the DROP removes what an interrupted run may have left, so running it
-- again is safe. 00006 makes it the key.
DROP INDEX CONCURRENTLY IF EXISTS conversions_tenant_id_key;
CREATE UNIQUE INDEX CONCURRENTLY conversions_tenant_id_key ON conversions (tenant, transaction_id);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS conversions_tenant_id_key;
