-- Support access (S18): see the SQLite migration of the same name. Instance-wide tables, without
-- row-level security: the web layer reaches them only through the instance scope, and an
-- organization reads its own grants filtered by its id.
CREATE TABLE operators (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    email_sealed    bytea NOT NULL,
    email_index     bytea NOT NULL UNIQUE,
    password_hash   text NOT NULL,
    totp_sealed     bytea NOT NULL,
    totp_last_step  bigint,
    created_at      timestamptz NOT NULL
);

CREATE TABLE operator_sessions (
    token_hash    bytea PRIMARY KEY,
    operator_id   uuid NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);

CREATE TABLE support_grants (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    issue           text NOT NULL,
    duration_secs   bigint NOT NULL CHECK (duration_secs > 0),
    requested_by    uuid NOT NULL REFERENCES operators(id),
    requested_at    timestamptz NOT NULL,
    consented_by    uuid,
    consented_at    timestamptz,
    declined_by     uuid,
    declined_at     timestamptz,
    approved_by     uuid REFERENCES operators(id),
    approved_at     timestamptz,
    starts_at       timestamptz,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    revoked_by      text,
    CHECK (approved_by IS NULL OR approved_by <> requested_by)
);
CREATE INDEX support_grants_org ON support_grants(org_id, requested_at);
