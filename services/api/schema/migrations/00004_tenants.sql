-- +goose Up
-- Every transaction belongs to a tenant: the clients of the pipeline are
-- separate businesses, and a transaction id is unique within its tenant
-- only. Rows written before tenants belong to the implicit tenant
-- 'default' (txmodel.DefaultTenant).
--
-- A column added NOT NULL with a constant default rewrites nothing
-- (PostgreSQL 11 and later keep the default in the catalogue for the rows
-- that predate it), and takes the table's lock for an instant. The default
-- stays until 00006, so that api instances of the previous version, which
-- name no tenant, keep writing while 00005 builds the indexes; 00006 drops
-- it. The CHECK is NOT VALID: it holds for new rows without a scan of the
-- old ones (all 'default').
SET LOCAL lock_timeout = '10s';
ALTER TABLE transactions ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE transactions ADD CONSTRAINT transactions_tenant_check CHECK (tenant <> '') NOT VALID;
ALTER TABLE outbox ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE outbox ADD CONSTRAINT outbox_tenant_check CHECK (tenant <> '') NOT VALID;

-- +goose Down
ALTER TABLE outbox DROP COLUMN tenant;
ALTER TABLE transactions DROP COLUMN tenant;
