-- +goose Up
-- conversions holds the converter's outcome for each transaction: the
-- converted amount and the rate when processed, the reason when failed.
-- One row per transaction at most: a redelivered message changes nothing.
-- The api reads this table (joined to its transactions) to answer
-- GET /v1/transactions: its columns are a contract between the services.
CREATE TABLE conversions (
    transaction_id   text        PRIMARY KEY,
    status           text        NOT NULL CHECK (status IN ('processed', 'failed')),
    converted_amount numeric,
    target_currency  char(3),
    exchange_rate    numeric,
    rate_date        date,
    failure_reason   text,
    attempts         integer     NOT NULL DEFAULT 1,
    processed_at     timestamptz NOT NULL,
    CHECK (status = 'failed' OR (converted_amount IS NOT NULL AND target_currency IS NOT NULL
                                  AND exchange_rate IS NOT NULL AND rate_date IS NOT NULL)),
    CHECK (status = 'processed' OR failure_reason IS NOT NULL)
);
CREATE INDEX conversions_status_idx ON conversions (status);

-- +goose Down
DROP TABLE conversions;
