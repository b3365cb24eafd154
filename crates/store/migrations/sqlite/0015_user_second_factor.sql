-- A user's optional second factor: a TOTP secret, sealed (the pending one while it is being set
-- up, then the confirmed one), and the last accepted step so a code works once. A login that
-- passed the password and waits for the code is a short-lived challenge named by a cookie.
ALTER TABLE users ADD COLUMN totp_sealed BLOB;
ALTER TABLE users ADD COLUMN totp_pending_sealed BLOB;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;

CREATE TABLE login_challenges (
    token_hash  BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
