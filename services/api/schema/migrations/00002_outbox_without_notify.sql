-- +goose Up
-- The NOTIFY of every outbox insert serialised the commits of all writers:
-- PostgreSQL takes one database-wide lock at the commit of a transaction
-- that notified, and holds it through the WAL flush. Under load it was the
-- ingest's main wait (pg_stat_activity: Lock:object). Each api now wakes its
-- own relays in process after a commit; the relays of other instances find
-- the entries on their next poll.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();

-- +goose Down
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
