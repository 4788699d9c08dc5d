-- Broker credentials vault (libs/broker/vault.py): one row per linked broker account.
-- The secret and refresh token are stored only as a Fernet token (AES-128-CBC + HMAC),
-- encrypted together with the account number so a ciphertext copied onto another row
-- is refused. key_id names the key that encrypted the row (SHA-256 prefix of the key).

CREATE TABLE broker_credentials (
    account_number text        PRIMARY KEY,
    user_id        text        NOT NULL,
    mode           text        NOT NULL CHECK (mode IN ('PAPER', 'LIVE')),
    nickname       text,
    ciphertext     bytea       NOT NULL,
    key_id         text        NOT NULL,
    linked_at      timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX broker_credentials_user ON broker_credentials (user_id);
