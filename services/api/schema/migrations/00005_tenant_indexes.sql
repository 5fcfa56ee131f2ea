-- +goose NO TRANSACTION
-- +goose Up
-- The indexes of tenants, built without blocking writes (CONCURRENTLY,
-- which cannot run inside a transaction): uniqueness of (tenant, id), and
-- the keyset pagination of a tenant's listings, over everything and per
-- user. Each DROP first removes what an interrupted run of this migration
-- may have left (CONCURRENTLY leaves an invalid index when it fails), so
-- running it again is safe; nothing uses these indexes before 00006.
DROP INDEX CONCURRENTLY IF EXISTS transactions_tenant_id_key;
CREATE UNIQUE INDEX CONCURRENTLY transactions_tenant_id_key ON transactions (tenant, transaction_id);
DROP INDEX CONCURRENTLY IF EXISTS transactions_tenant_received_idx;
CREATE INDEX CONCURRENTLY transactions_tenant_received_idx ON transactions (tenant, received_at DESC, transaction_id DESC);
DROP INDEX CONCURRENTLY IF EXISTS transactions_tenant_user_received_idx;
CREATE INDEX CONCURRENTLY transactions_tenant_user_received_idx ON transactions (tenant, user_id, received_at DESC, transaction_id DESC);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS transactions_tenant_user_received_idx;
DROP INDEX CONCURRENTLY IF EXISTS transactions_tenant_received_idx;
DROP INDEX CONCURRENTLY IF EXISTS transactions_tenant_id_key;
