-- Support access (S18). Operators are instance staff with their own accounts (sealed email, bcrypt
-- password, sealed TOTP secret; the last accepted TOTP step, so a code works once). A support
-- grant names the customer-reported issue; it becomes active only when the organization's admin
-- has consented and a second operator (not the requester) has approved, and from then lasts its
-- duration unless revoked. Instance-wide tables: reached through the instance scope only.
CREATE TABLE operators (
    id              BLOB PRIMARY KEY,
    name            TEXT NOT NULL,
    email_sealed    BLOB NOT NULL,
    email_index     BLOB NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    totp_sealed     BLOB NOT NULL,
    totp_last_step  INTEGER,
    created_at      TEXT NOT NULL
);

CREATE TABLE operator_sessions (
    token_hash    BLOB PRIMARY KEY,
    operator_id   BLOB NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);

CREATE TABLE support_grants (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    issue           TEXT NOT NULL,
    duration_secs   INTEGER NOT NULL CHECK (duration_secs > 0),
    requested_by    BLOB NOT NULL REFERENCES operators(id),
    requested_at    TEXT NOT NULL,
    consented_by    BLOB,
    consented_at    TEXT,
    declined_by     BLOB,
    declined_at     TEXT,
    approved_by     BLOB REFERENCES operators(id),
    approved_at     TEXT,
    starts_at       TEXT,
    expires_at      TEXT,
    revoked_at      TEXT,
    revoked_by      TEXT,
    CHECK (approved_by IS NULL OR approved_by <> requested_by)
);
CREATE INDEX support_grants_org ON support_grants(org_id, requested_at);
