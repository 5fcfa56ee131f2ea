-- +goose Up
-- status_index: the transactions that are not processed (received, or
-- failed), the few among the many, so that listing by status does not
-- walk every transaction looking for them (at 10 million transactions,
-- status=received took seconds when none was waiting). Processed ones are
-- not kept: they are nearly all, and the listing finds them in
-- transactions itself.
--
-- A trigger adds each inserted transaction as received, whoever inserts
-- it (the previous version's instances too, during a rolling upgrade);
-- the api's sweeper (store.Sweep) then reads the converter's outcomes
-- (conversion_outcomes) and deletes the processed ones and marks the
-- failed ones. The listings join the outcomes themselves, so they are
-- exact whatever the sweeper's lag; the sweeper keeps the table small.
-- 00008 adds the transactions stored before this migration.
SET LOCAL lock_timeout = '10s';
CREATE TABLE status_index (
    tenant         text        NOT NULL,
    transaction_id text        NOT NULL,
    user_id        text        NOT NULL,
    received_at    timestamptz NOT NULL,
    status         text        NOT NULL CHECK (status IN ('received', 'failed')),
    PRIMARY KEY (tenant, transaction_id)
);
CREATE INDEX status_index_status_idx ON status_index (tenant, status, received_at DESC, transaction_id DESC);
CREATE INDEX status_index_user_status_idx ON status_index (tenant, user_id, status, received_at DESC, transaction_id DESC);

-- +goose StatementBegin
CREATE FUNCTION status_index_add_received() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO status_index (tenant, transaction_id, user_id, received_at, status)
    SELECT tenant, transaction_id, user_id, received_at, 'received' FROM inserted_rows
    ON CONFLICT (tenant, transaction_id) DO NOTHING;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
-- One statement-level trigger a statement, over the rows it inserted: one
-- INSERT for a whole group commit, not one a row.
CREATE TRIGGER transactions_status_index AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION status_index_add_received();

-- enqueue_transactions (00006), as before, and the transactions it queues
-- are received again (txctl reprocess forgets their failed outcomes).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION enqueue_transactions(tenant text, ids text[], payloads bytea[], headers jsonb[]) RETURNS integer
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
    INSERT INTO status_index (tenant, transaction_id, user_id, received_at, status)
    SELECT t.tenant, t.transaction_id, t.user_id, t.received_at, 'received'
    FROM transactions t WHERE t.tenant = enqueue_transactions.tenant AND t.transaction_id = ANY (ids)
    ON CONFLICT ON CONSTRAINT status_index_pkey DO UPDATE SET status = 'received';
    RETURN queued;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION enqueue_transactions(tenant text, ids text[], payloads bytea[], headers jsonb[]) RETURNS integer
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
DROP TRIGGER transactions_status_index ON transactions;
DROP FUNCTION status_index_add_received();
DROP TABLE status_index;
