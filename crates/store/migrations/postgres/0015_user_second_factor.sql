-- A user's optional second factor: see the SQLite migration of the same name.
ALTER TABLE users ADD COLUMN totp_sealed bytea;
ALTER TABLE users ADD COLUMN totp_pending_sealed bytea;
ALTER TABLE users ADD COLUMN totp_last_step bigint;

CREATE TABLE login_challenges (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
