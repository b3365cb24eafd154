-- Connected providers. The credential is sealed with the organization's data key (S1); only its
-- last four characters are kept in clear, to show which key is set.
CREATE TABLE sources (
    id               BLOB PRIMARY KEY,
    org_id           BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    config           TEXT NOT NULL,
    secret_sealed    BLOB NOT NULL,
    secret_hint      TEXT NOT NULL,
    secret_set_at    TEXT NOT NULL,
    paused           INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    last_attempt_at  TEXT,
    last_success_at  TEXT,
    last_error       TEXT,
    UNIQUE (org_id, name)
);
