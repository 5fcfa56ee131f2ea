-- +goose Up
-- Where each rate came from: the provider asked, the rule that chose its
-- day, and the quotes exactly as the provider wrote them, each the units
-- of its currency that one rate_base bought. With the amount they
-- recompute converted_amount by hand: amount × q(target) ÷ q(currency),
-- a quote of rate_base itself being 1, rounded half to even once to the
-- target's minor unit; exchange_rate is that quotient of quotes to ten
-- significant digits, for reading. A conversion to the same currency asks
-- no provider: rate_provider, rate_base and rate_quotes are NULL. Rows of
-- earlier versions have no provenance (NULL throughout).
--
-- Nullable columns without a default: adding them rewrites nothing. The
-- constraint is NOT VALID, so it holds for rows written from now on and
-- no scan of the existing rows takes the table's lock.
ALTER TABLE conversions
    ADD COLUMN rate_provider text,
    ADD COLUMN rate_rule     text,
    ADD COLUMN rate_base     char(3),
    ADD COLUMN rate_quotes   jsonb;
ALTER TABLE conversions
    ADD CONSTRAINT conversions_rate_rule_check
        CHECK (status = 'failed' OR rate_rule IN ('day', 'as-of')) NOT VALID;

-- +goose Down
ALTER TABLE conversions
    DROP CONSTRAINT conversions_rate_rule_check,
    DROP COLUMN rate_provider,
    DROP COLUMN rate_rule,
    DROP COLUMN rate_base,
    DROP COLUMN rate_quotes;
