-- Credentials for external SQL clients (S11): the id is the Postgres user name; only the
-- SCRAM-SHA-256 verifier is kept.
CREATE TABLE sql_credentials (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    verifier      TEXT NOT NULL,
    created_by    BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
CREATE INDEX sql_credentials_org ON sql_credentials(org_id);
