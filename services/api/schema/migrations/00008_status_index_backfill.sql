-- +goose Up
-- The transactions stored before 00007 that are not processed, into
-- status_index: received when they have no outcome, failed when theirs
-- is. It reads the whole of transactions once and blocks no writer (the
-- trigger of 00007 already adds the new ones; ON CONFLICT skips those it
-- added). Measured in docs/SCALING.md. On a database where the converter
-- has not published its outcomes yet, nothing was converted: every stored
-- transaction is received. Where its schema predates tenants (the api may
-- migrate before the converter), its outcomes are all the tenant
-- default's, as are the transactions stored then.
-- +goose StatementBegin
DO $$
BEGIN
    IF to_regclass('conversion_outcomes') IS NULL THEN
        INSERT INTO status_index (tenant, transaction_id, user_id, received_at, status)
        SELECT tenant, transaction_id, user_id, received_at, 'received' FROM transactions
        ON CONFLICT (tenant, transaction_id) DO NOTHING;
    ELSIF NOT EXISTS (SELECT 1 FROM information_schema.columns
                      WHERE table_schema = current_schema() AND table_name = 'conversion_outcomes' AND column_name = 'tenant') THEN
        INSERT INTO status_index (tenant, transaction_id, user_id, received_at, status)
        SELECT t.tenant, t.transaction_id, t.user_id, t.received_at, coalesce(c.status, 'received')
        FROM transactions t LEFT JOIN conversion_outcomes c ON t.tenant = 'default' AND c.transaction_id = t.transaction_id
        WHERE c.status IS DISTINCT FROM 'processed'
        ON CONFLICT (tenant, transaction_id) DO NOTHING;
    ELSE
        INSERT INTO status_index (tenant, transaction_id, user_id, received_at, status)
        SELECT t.tenant, t.transaction_id, t.user_id, t.received_at, coalesce(c.status, 'received')
        FROM transactions t LEFT JOIN conversion_outcomes c USING (tenant, transaction_id)
        WHERE c.status IS DISTINCT FROM 'processed'
        ON CONFLICT (tenant, transaction_id) DO NOTHING;
    END IF;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- 00007's down drops the table.
SELECT 1;
