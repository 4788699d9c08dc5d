-- The event log: one append-only, hash-chained table of every business event.
-- position is the global sequence (the JetStream stream sequence), gapless from 1;
-- hash = sha256(prev_hash || canonical row encoding), see libs/eventlog/canonical.py.

DO $$
BEGIN
    -- jsonb strings are stored in the server encoding; the hash chain assumes the
    -- Unicode text the producers wrote survives unchanged.
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'the event log needs a UTF8 database, not %',
            current_setting('server_encoding');
    END IF;
END
$$;

CREATE TABLE events (
    position    bigint      PRIMARY KEY CHECK (position > 0),
    event_id    uuid        NOT NULL UNIQUE,
    type        text        NOT NULL,
    account_id  text        NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    payload     jsonb       NOT NULL,
    metadata    jsonb       NOT NULL,
    prev_hash   bytea       NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash        bytea       NOT NULL CHECK (octet_length(hash) = 32)
);

COMMENT ON TABLE events IS
    'Append-only, hash-chained log of business events (UPDATE/DELETE/TRUNCATE rejected).';

-- Audit queries: an account's events over time (market-wide events have no account),
-- events of a type over time, and the causal chain of a correlation id.
CREATE INDEX events_account_time_idx ON events (account_id, occurred_at)
    WHERE account_id IS NOT NULL;
CREATE INDEX events_type_time_idx ON events (type, occurred_at);
CREATE INDEX events_correlation_idx ON events ((metadata ->> 'correlation_id'));
