-- +goose Up
-- The key of a transaction becomes (tenant, transaction_id), on the index
-- 00005 built: swapping the primary key reads no row, the columns being
-- NOT NULL already. The indexes that led with received_at and user_id
-- give way to those that lead with the tenant. The tenant's default goes:
-- from now on every writer names the tenant, and a forgotten one is an
-- error, never the implicit tenant by accident (rows that predate 00004
-- keep 'default'). Writers of the previous version stop working here
-- (their ON CONFLICT (transaction_id) has no index to use any more):
-- replace them with this version's. Each statement takes the table's
-- lock for an instant; lock_timeout makes the migration fail (and be
-- retried at the next start) rather than queue every writer behind a
-- long reader.
SET LOCAL lock_timeout = '10s';
ALTER TABLE transactions
    DROP CONSTRAINT transactions_pkey,
    ADD CONSTRAINT transactions_pkey PRIMARY KEY USING INDEX transactions_tenant_id_key,
    ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE outbox ALTER COLUMN tenant DROP DEFAULT;
DROP INDEX transactions_received_idx;
DROP INDEX transactions_user_received_idx;

-- The published contract (00003) names the tenant: the view gains the
-- column (last, as CREATE OR REPLACE VIEW requires), and
-- enqueue_transactions queues the transactions of one tenant.
CREATE OR REPLACE VIEW accepted_transactions AS
SELECT transaction_id, user_id, amount, currency, occurred_at, received_at, tenant
FROM transactions;

DROP FUNCTION enqueue_transactions(text[], bytea[], jsonb[]);
-- enqueue_transactions queues stored transactions of tenant for
-- conversion again: an outbox entry for each of ids, with its message
-- (payloads, the queue message as txmodel encodes it) and headers. It
-- returns how many it queued; an id the tenant does not have is refused (a
-- foreign transaction would never be converted).
-- +goose StatementBegin
CREATE FUNCTION enqueue_transactions(tenant text, ids text[], payloads bytea[], headers jsonb[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    queued integer;
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(ids) AS i(id)
               WHERE NOT EXISTS (SELECT 1 FROM transactions t
                                 WHERE t.tenant = enqueue_transactions.tenant AND t.transaction_id = i.id)) THEN
        RAISE EXCEPTION 'enqueue_transactions: not every id is an accepted transaction of tenant %', tenant USING ERRCODE = '23503';
    END IF;
    INSERT INTO outbox (tenant, transaction_id, payload, headers)
    SELECT enqueue_transactions.tenant, i.* FROM unnest(ids, payloads, headers) AS i;
    GET DIAGNOSTICS queued = ROW_COUNT;
    RETURN queued;
END;
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE outbox ALTER COLUMN tenant SET DEFAULT 'default';
ALTER TABLE transactions ALTER COLUMN tenant SET DEFAULT 'default';
DROP FUNCTION enqueue_transactions(text, text[], bytea[], jsonb[]);
-- +goose StatementBegin
CREATE FUNCTION enqueue_transactions(ids text[], payloads bytea[], headers jsonb[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    queued integer;
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(ids) AS i(id) WHERE NOT EXISTS (SELECT 1 FROM transactions t WHERE t.transaction_id = i.id)) THEN
        RAISE EXCEPTION 'enqueue_transactions: not every id is an accepted transaction' USING ERRCODE = '23503';
    END IF;
    INSERT INTO outbox (transaction_id, payload, headers)
    SELECT * FROM unnest(ids, payloads, headers);
    GET DIAGNOSTICS queued = ROW_COUNT;
    RETURN queued;
END;
$$;
-- +goose StatementEnd
DROP VIEW accepted_transactions;
CREATE VIEW accepted_transactions AS
SELECT transaction_id, user_id, amount, currency, occurred_at, received_at
FROM transactions;
CREATE INDEX transactions_received_idx ON transactions (received_at DESC, transaction_id DESC);
CREATE INDEX transactions_user_received_idx ON transactions (user_id, received_at DESC, transaction_id DESC);
ALTER TABLE transactions
    DROP CONSTRAINT transactions_pkey,
    ADD CONSTRAINT transactions_pkey PRIMARY KEY (transaction_id);
CREATE UNIQUE INDEX transactions_tenant_id_key ON transactions (tenant, transaction_id);
