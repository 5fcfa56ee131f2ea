-- A hundred transactions and their outbox rows per commit, as the api's
-- group commit writes them (one statement).
\set n random(1, 2000000000)
WITH ins AS (
    INSERT INTO transactions (tenant, transaction_id, user_id, amount, currency, occurred_at, received_at)
    SELECT 'default', 'b-' || :client_id || '-' || :n || '-' || txid_current() || '-' || g, '123', 100.00, 'USD', '2024-09-11T00:00:00Z', now()
    FROM generate_series(1, 100) g
    RETURNING transaction_id
)
INSERT INTO outbox (tenant, transaction_id, payload) SELECT 'default', transaction_id, '\x7b7d' FROM ins;
