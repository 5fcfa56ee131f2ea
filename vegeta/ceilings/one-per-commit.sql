-- One transaction and its outbox row per commit, as a one-by-one ingest
-- would write them (pgbench -f; \set gives each a fresh id).
\set n random(1, 2000000000)
BEGIN;
INSERT INTO transactions (tenant, transaction_id, user_id, amount, currency, occurred_at, received_at)
    VALUES ('default', 'b-' || :client_id || '-' || :n || '-' || txid_current(), '123', 100.00, 'USD', '2024-09-11T00:00:00Z', now());
INSERT INTO outbox (tenant, transaction_id, payload) VALUES ('default', 'b-' || :client_id || '-' || :n, '\x7b7d');
COMMIT;
