-- +goose Up
-- transactions holds every accepted transaction as received (normalised).
CREATE TABLE transactions (
    transaction_id text        PRIMARY KEY,
    user_id        text        NOT NULL,
    amount         numeric     NOT NULL CHECK (amount > 0),
    currency       char(3)     NOT NULL,
    occurred_at    timestamptz NOT NULL,
    received_at    timestamptz NOT NULL
);
-- Keyset pagination, newest first, over everything and per user.
CREATE INDEX transactions_received_idx ON transactions (received_at DESC, transaction_id DESC);
CREATE INDEX transactions_user_received_idx ON transactions (user_id, received_at DESC, transaction_id DESC);

-- outbox holds the queue messages of committed transactions until the broker
-- has confirmed them; the relay deletes a row only after the confirm.
CREATE TABLE outbox (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id text        NOT NULL,
    payload        bytea       NOT NULL,
    headers        jsonb       NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Wake the relays as soon as outbox rows are committed, not on their next tick.
-- +goose StatementBegin
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('txpersister_outbox', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- +goose Down
DROP TABLE outbox;
DROP FUNCTION outbox_notify();
DROP TABLE transactions;
