-- The gateway's own state (services/gateway): users, their login sessions, and the
-- settings of each linked account (published as AccountSettingsChanged).
-- Passwords are stored only as argon2 hashes (the PHC string argon2-cffi writes).
-- A session is stored by the SHA-256 of its token, so the table alone cannot be used to
-- log in; the CSRF token beside it is only useful together with the session cookie.

CREATE TABLE gateway_users (
    user_id       text        PRIMARY KEY,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gateway_sessions (
    token_hash text        PRIMARY KEY,
    user_id    text        NOT NULL REFERENCES gateway_users (user_id) ON DELETE CASCADE,
    csrf_token text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX gateway_sessions_user ON gateway_sessions (user_id);
CREATE INDEX gateway_sessions_expiry ON gateway_sessions (expires_at);

-- The latest settings snapshot per account; every change is also an event.
CREATE TABLE gateway_account_settings (
    account_number text        PRIMARY KEY,
    user_id        text        NOT NULL,
    settings       jsonb       NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
