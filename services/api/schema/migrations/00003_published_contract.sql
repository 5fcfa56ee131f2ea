-- +goose Up
-- What the api publishes of its tables to the other modules (the
-- converter reads nothing of them; txctl and the load tools do); they use
-- these, never the tables.
--
-- accepted_transactions: every transaction the api accepted, as received
-- (normalised).
CREATE VIEW accepted_transactions AS
SELECT transaction_id, user_id, amount, currency, occurred_at, received_at
FROM transactions;

-- outbox_backlog: how many queue messages wait for the relay, and since
-- when the oldest.
CREATE VIEW outbox_backlog AS
SELECT count(*) AS backlog, min(created_at) AS oldest FROM outbox;

-- enqueue_transactions queues stored transactions for conversion again:
-- an outbox entry for each of ids, with its message (payloads, the queue
-- message as txmodel encodes it) and headers. It returns how many it
-- queued; an id the api never accepted is refused (a foreign transaction
-- would never be converted).
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

-- +goose Down
DROP FUNCTION enqueue_transactions(text[], bytea[], jsonb[]);
DROP VIEW outbox_backlog;
DROP VIEW accepted_transactions;
