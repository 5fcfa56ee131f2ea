-- +goose Up
-- An outcome belongs to the tenant of its transaction: transaction ids
-- are unique per tenant (the api's migration 00004). Rows written before
-- tenants belong to the implicit tenant 'default'. As in the api's, the
-- column is added with a constant default (no rewrite) that stays until
-- 00006, so that converters of the previous version keep recording while
-- 00005 builds the index.
SET LOCAL lock_timeout = '10s';
ALTER TABLE conversions ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE conversions ADD CONSTRAINT conversions_tenant_check CHECK (tenant <> '') NOT VALID;

-- +goose Down
ALTER TABLE conversions DROP COLUMN tenant;
