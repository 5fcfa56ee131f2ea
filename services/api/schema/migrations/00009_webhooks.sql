-- +goose Up
-- Webhooks: a tenant's endpoints, the news of its transactions' outcomes
-- (messages), and their delivery to each endpoint.
--
-- The api's sweeper (store.Sweep) records a message in the same database
-- transaction in which it settles the transaction's entry of the status
-- index (00007): an entry is settled once for each outcome, so a message
-- exists exactly for each outcome settled while the tenant had an
-- endpoint for its event, and a crash cannot lose it or make one up.
-- Senders (the api's internal/webhook) claim due deliveries with FOR
-- UPDATE SKIP LOCKED and lease them, so several share the work and one
-- that dies hands its leases back when they run out.
SET LOCAL lock_timeout = '10s';
CREATE TABLE webhook_endpoints (
    tenant      text        NOT NULL,
    endpoint_id text        NOT NULL,
    url         text        NOT NULL,
    events      text[]      NOT NULL CHECK (cardinality(events) > 0),
    -- The signing secret (whsec_…), and the one it replaced while both
    -- sign (rotate-secret).
    secret                text        NOT NULL,
    previous_secret       text,
    previous_secret_until timestamptz,
    created_at  timestamptz NOT NULL,
    -- Since when every delivery failed (null after a success); past a
    -- limit the endpoint is disabled, and says why.
    failing_since   timestamptz,
    disabled_at     timestamptz,
    disabled_reason text,
    -- DELETE marks it; the senders' pruner then deletes its deliveries in
    -- rounds, and it, so that a DELETE answers at once however many
    -- deliveries it had.
    deleted_at      timestamptz,
    PRIMARY KEY (tenant, endpoint_id)
);

CREATE TABLE webhook_messages (
    tenant         text        NOT NULL,
    -- The webhook-id header: one per message, the same on every attempt.
    message_id     text        NOT NULL,
    event_type     text        NOT NULL,
    transaction_id text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    -- The exact bytes signed and sent.
    body           bytea       NOT NULL,
    PRIMARY KEY (tenant, message_id)
);
-- Retention: messages older than WEBHOOK_RETENTION go, with their
-- deliveries and attempts, once nothing is left to send.
CREATE INDEX webhook_messages_occurred_idx ON webhook_messages (occurred_at);

CREATE TABLE webhook_deliveries (
    tenant          text        NOT NULL,
    endpoint_id     text        NOT NULL,
    message_id      text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    -- Attempts begun; a claim counts one and leases the delivery until
    -- next_attempt_at, when another sender may take it again. tries
    -- counts them since the delivery was made or last replayed: its place
    -- in the retry schedule.
    attempts        integer     NOT NULL DEFAULT 0,
    tries           integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    occurred_at     timestamptz NOT NULL,
    last_attempt_at timestamptz,
    last_error      text,
    PRIMARY KEY (tenant, endpoint_id, message_id),
    FOREIGN KEY (tenant, endpoint_id) REFERENCES webhook_endpoints ON DELETE CASCADE,
    FOREIGN KEY (tenant, message_id) REFERENCES webhook_messages ON DELETE CASCADE
);
-- The senders' queue: only what is still to be sent.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- Replay by time.
CREATE INDEX webhook_deliveries_occurred_idx ON webhook_deliveries (tenant, endpoint_id, occurred_at);
CREATE INDEX webhook_deliveries_message_idx ON webhook_deliveries (tenant, message_id);

-- Every attempt, for GET /v1/webhooks/{id}/deliveries.
CREATE TABLE webhook_attempts (
    tenant      text        NOT NULL,
    endpoint_id text        NOT NULL,
    message_id  text        NOT NULL,
    attempt     integer     NOT NULL,
    started_at  timestamptz NOT NULL,
    duration    interval    NOT NULL,
    -- The answer's status, null when there was none (refused, timed out).
    status_code integer,
    error       text,
    PRIMARY KEY (tenant, endpoint_id, message_id, attempt),
    FOREIGN KEY (tenant, endpoint_id, message_id) REFERENCES webhook_deliveries ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_recent_idx ON webhook_attempts (tenant, endpoint_id, started_at DESC);

-- +goose Down
SET LOCAL lock_timeout = '10s';
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_messages;
DROP TABLE webhook_endpoints;
