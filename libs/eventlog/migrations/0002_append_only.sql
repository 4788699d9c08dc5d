-- Immutability in the database: statement-level triggers reject every UPDATE, DELETE
-- and TRUNCATE of events, even one matching no row. SQLSTATE SXA01 lets clients tell
-- this rejection from other errors (libs/eventlog/errors.py).

CREATE FUNCTION events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % rejected', TG_OP
        USING ERRCODE = 'SXA01',
              HINT = 'rows of the event log are never changed; append a new event instead';
END
$$;

CREATE TRIGGER events_reject_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

CREATE TRIGGER events_reject_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();
