-- +goose Up
-- What the converter publishes of its table to the other services; they
-- use these, never the table. Changing conversions is the converter's
-- business as long as these keep their meaning.
--
-- conversion_outcomes: one row per transaction the converter has decided,
-- processed or failed, with the rate's provenance (see 00002).
CREATE VIEW conversion_outcomes AS
SELECT transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date,
       failure_reason, attempts, processed_at, rate_provider, rate_rule, rate_base, rate_quotes
FROM conversions;

-- forget_failed_outcomes deletes the failed outcomes of ids, so that their
-- transactions can be converted again (txctl reprocess), and returns the
-- ids it forgot. A processed outcome is never touched.
-- +goose StatementBegin
CREATE FUNCTION forget_failed_outcomes(ids text[]) RETURNS SETOF text
LANGUAGE sql AS $$
    DELETE FROM conversions WHERE transaction_id = ANY(ids) AND status = 'failed'
    RETURNING transaction_id
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION forget_failed_outcomes(text[]);
DROP VIEW conversion_outcomes;
