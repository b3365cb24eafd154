-- Credentials for external SQL clients (S11): the id is the Postgres user name; only the
-- SCRAM-SHA-256 verifier is kept.
CREATE TABLE sql_credentials (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name          text NOT NULL,
    verifier      text NOT NULL,
    created_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX sql_credentials_org ON sql_credentials(org_id);

ALTER TABLE sql_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE sql_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sql_credentials USING (org_id = app_org()) WITH CHECK (org_id = app_org());
-- A login names its credential before its organization is known: the user name makes exactly
-- that one row readable, as a scoped token's organization part does for API keys.
CREATE POLICY login ON sql_credentials FOR SELECT
    USING (id = NULLIF(current_setting('app.sql_login', true), '')::uuid);
