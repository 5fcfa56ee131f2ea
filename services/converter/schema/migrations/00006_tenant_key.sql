-- +goose Up
-- The key of an outcome becomes (tenant, transaction_id), on the index
-- 00005 built (no row is read: the columns are NOT NULL already), and the
-- tenant's default goes: every writer from now on names the tenant.
-- Converters of the previous version stop recording here (their ON
-- CONFLICT (transaction_id) has no index to use any more).
SET LOCAL lock_timeout = '10s';
ALTER TABLE conversions
    DROP CONSTRAINT conversions_pkey,
    ADD CONSTRAINT conversions_pkey PRIMARY KEY USING INDEX conversions_tenant_id_key,
    ALTER COLUMN tenant DROP DEFAULT;

-- The published contract (00003) names the tenant: the view gains the
-- column (last, as CREATE OR REPLACE VIEW requires), and
-- forget_failed_outcomes forgets outcomes of one tenant.
CREATE OR REPLACE VIEW conversion_outcomes AS
SELECT transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date,
       failure_reason, attempts, processed_at, rate_provider, rate_rule, rate_base, rate_quotes, tenant
FROM conversions;

DROP FUNCTION forget_failed_outcomes(text[]);
-- forget_failed_outcomes deletes the failed outcomes of tenant's ids, so
-- that their transactions can be converted again (txctl reprocess), and
-- returns the ids it forgot. A processed outcome is never touched.
-- +goose StatementBegin
CREATE FUNCTION forget_failed_outcomes(tenant text, ids text[]) RETURNS SETOF text
LANGUAGE sql AS $$
    DELETE FROM conversions c
    WHERE c.tenant = forget_failed_outcomes.tenant AND c.transaction_id = ANY(ids) AND c.status = 'failed'
    RETURNING c.transaction_id
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE conversions ALTER COLUMN tenant SET DEFAULT 'default';
DROP FUNCTION forget_failed_outcomes(text, text[]);
-- +goose StatementBegin
CREATE FUNCTION forget_failed_outcomes(ids text[]) RETURNS SETOF text
LANGUAGE sql AS $$
    DELETE FROM conversions WHERE transaction_id = ANY(ids) AND status = 'failed'
    RETURNING transaction_id
$$;
-- +goose StatementEnd
DROP VIEW conversion_outcomes;
CREATE VIEW conversion_outcomes AS
SELECT transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date,
       failure_reason, attempts, processed_at, rate_provider, rate_rule, rate_base, rate_quotes
FROM conversions;
ALTER TABLE conversions
    DROP CONSTRAINT conversions_pkey,
    ADD CONSTRAINT conversions_pkey PRIMARY KEY (transaction_id);
CREATE UNIQUE INDEX conversions_tenant_id_key ON conversions (tenant, transaction_id);
